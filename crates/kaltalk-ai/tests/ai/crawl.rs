use std::collections::BTreeSet;

use kaltalk_ai::crawl::{CrawlOptions, CrawlReport, Page, SkipReason, crawl_site};
use url::Url;

use crate::helpers::{TestSite, loopback_fetcher};

async fn crawl(options: CrawlOptions) -> (Vec<Page>, CrawlReport) {
    let mut pages = Vec::new();
    let report = crawl_site(&loopback_fetcher(), options, |page| pages.push(page)).await;
    (pages, report)
}

fn options(start: Url) -> CrawlOptions {
    CrawlOptions {
        delay_ms: 0,
        ..CrawlOptions::new(start)
    }
}

fn paths(pages: &[Page]) -> BTreeSet<String> {
    pages.iter().map(|p| p.url.path().to_owned()).collect()
}

fn skipped_paths(report: &CrawlReport, reason: impl Fn(&SkipReason) -> bool) -> BTreeSet<String> {
    report
        .skipped_for(reason)
        .into_iter()
        .map(|u| {
            let url = Url::parse(u).expect("a reported url");
            match url.host_str() {
                Some("127.0.0.1") => url.path().to_owned(),
                _ => url.to_string(),
            }
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn a_site_is_crawled_through_links_and_its_sitemap() {
    let site = TestSite::spawn().await;

    let (pages, report) = crawl(options(site.url("/"))).await;

    assert_eq!(
        paths(&pages),
        set(&[
            "/",
            "/about.html",
            "/faq.html",
            "/guide/",
            "/guide/install.html",
            "/orphan.html",
        ]),
        "links, the sitemap-only page, and the redirect target"
    );
    assert_eq!(report.pages, 6);
    let home = pages.iter().find(|p| p.url.path() == "/").expect("home");
    assert_eq!((home.title.as_deref(), home.depth), (Some("Home"), 0));
    let install = pages
        .iter()
        .find(|p| p.url.path() == "/guide/install.html")
        .expect("install");
    assert_eq!(
        (install.title.as_deref(), install.depth),
        (Some("Install"), 2)
    );
    assert!(install.html.contains("href=\"/old-faq\""));

    assert_eq!(
        skipped_paths(&report, |r| *r == SkipReason::Robots),
        set(&["/private/listed.html", "/private/secret.html"])
    );
    assert_eq!(
        skipped_paths(&report, |r| *r == SkipReason::OffSite),
        set(&["http://other.example/page"])
    );
    assert_eq!(
        skipped_paths(&report, |r| matches!(r, SkipReason::NotHtml(_))),
        set(&["/files/manual.pdf", "/logo"])
    );
    let failures: Vec<(String, String)> = report
        .skipped
        .iter()
        .filter(|s| matches!(s.reason, SkipReason::Failed(_)))
        .map(|s| (s.url.clone(), s.reason.to_string()))
        .collect();
    assert_eq!(
        failures,
        vec![
            (site.url("/missing.html").to_string(), "HTTP 404".to_owned()),
            (
                site.url("/metadata").to_string(),
                "refused: redirect to http://169.254.169.254/latest/meta-data/ \
                 (169.254.169.254 is a link-local address)"
                    .to_owned()
            ),
        ]
    );

    let hits = site.hits().await;
    assert_eq!(
        hits.iter().filter(|h| *h == "/robots.txt").count(),
        1,
        "robots.txt is read once"
    );
    assert!(
        !hits.iter().any(|h| h.starts_with("/private/")),
        "robots.txt is honoured: {hits:?}"
    );
    assert!(!hits.iter().any(|h| h == "/files/manual.pdf"));
    let mut pages_fetched = hits.clone();
    pages_fetched.sort();
    pages_fetched.dedup();
    assert_eq!(
        pages_fetched.len(),
        hits.len(),
        "no address fetched twice: {hits:?}"
    );
}

#[tokio::test]
async fn a_start_that_redirects_to_another_host_moves_the_crawl_there() {
    let site = TestSite::spawn().await;
    let port = site.base.port().expect("a port");
    let start = Url::parse(&format!("http://localhost:{port}/")).expect("url");

    let (pages, report) = crawl(options(start)).await;

    assert_eq!(report.pages, 6, "{:?}", report.skipped);
    assert!(
        pages.iter().all(|p| p.url.host_str() == Some("127.0.0.1")),
        "pages are reported where they were found"
    );
    assert!(
        paths(&pages).contains("/orphan.html"),
        "the new host's sitemap is read"
    );
    assert_eq!(
        skipped_paths(&report, |r| *r == SkipReason::Robots),
        set(&["/private/listed.html", "/private/secret.html"])
    );
}

#[tokio::test]
async fn the_page_cap_stops_the_crawl() {
    let site = TestSite::spawn().await;

    let (pages, report) = crawl(CrawlOptions {
        max_pages: 3,
        ..options(site.url("/"))
    })
    .await;

    assert_eq!(pages.len(), 3);
    assert_eq!(report.pages, 3);
    assert_eq!(paths(&pages), set(&["/", "/guide/", "/orphan.html"]));
    let page_requests: Vec<String> = site
        .hits()
        .await
        .into_iter()
        .filter(|h| !h.ends_with(".xml") && h != "/robots.txt")
        .collect();
    assert_eq!(
        page_requests.len(),
        3,
        "no fetch beyond the cap: {page_requests:?}"
    );
    let capped = skipped_paths(&report, |r| *r == SkipReason::PageCap);
    assert!(capped.contains("/about.html"), "{capped:?}");
    assert!(capped.contains("/missing.html"), "{capped:?}");
}

#[tokio::test]
async fn the_depth_cap_stops_following_links() {
    let site = TestSite::spawn().await;

    let (pages, report) = crawl(CrawlOptions {
        max_depth: 1,
        ..options(site.url("/"))
    })
    .await;

    assert_eq!(
        paths(&pages),
        set(&["/", "/about.html", "/guide/", "/orphan.html"])
    );
    assert_eq!(
        skipped_paths(&report, |r| *r == SkipReason::DepthCap),
        set(&["/guide/install.html", "/logo"])
    );
}

#[tokio::test]
async fn a_sitemap_start_crawls_the_pages_it_lists() {
    let site = TestSite::spawn().await;

    let (pages, report) = crawl(CrawlOptions {
        max_depth: 0,
        ..options(site.url("/sitemap-pages.xml"))
    })
    .await;

    assert_eq!(paths(&pages), set(&["/", "/orphan.html"]));
    assert!(pages.iter().all(|p| p.depth == 0));
    assert_eq!(
        skipped_paths(&report, |r| *r == SkipReason::Robots),
        set(&["/private/listed.html", "/private/secret.html"])
    );
    assert!(
        skipped_paths(&report, |r| *r == SkipReason::DepthCap).contains("/guide/"),
        "links from the listed pages are one step further"
    );
}

#[tokio::test]
async fn a_crawl_with_loopback_refused_fetches_nothing() {
    let site = TestSite::spawn().await;
    let strict = crate::helpers::fetcher(kaltalk_ai::fetch::FetchPolicy::default());

    let report = crawl_site(&strict, options(site.url("/")), |_| {}).await;

    assert_eq!(report.pages, 0);
    assert!(site.hits().await.is_empty());
    assert!(
        report.skipped.iter().any(|s| s
            .reason
            .to_string()
            .contains("127.0.0.1 is a loopback address")),
        "{:?}",
        report.skipped
    );
}
