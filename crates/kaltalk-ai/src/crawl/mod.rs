//! Crawls one website for the knowledge base: from a start page or a sitemap.xml, same
//! site only, honouring robots.txt, a few requests at a time, within page and depth caps.

mod links;
mod robots;
mod sitemap;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use url::{Origin, Url};

use crate::fetch::{FetchError, Fetched, Fetcher};
use robots::Robots;

/// Sitemap files read in one crawl (an index and the sitemaps it lists).
const MAX_SITEMAP_FILES: usize = 20;

#[derive(Clone, Debug)]
pub struct CrawlOptions {
    /// A page to start from, or a sitemap (a path ending in `.xml`) listing the pages.
    pub start: Url,
    /// Pages handed to `on_page` at most.
    pub max_pages: usize,
    /// Links followed from the start page at most (0: the start page alone). Pages listed
    /// in a sitemap named by robots.txt count as one link away; those in a start sitemap
    /// as start pages.
    pub max_depth: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Pause between starting two requests, to be gentle with the site.
    pub delay_ms: u64,
}

impl CrawlOptions {
    pub fn new(start: Url) -> Self {
        Self {
            start,
            max_pages: 500,
            max_depth: 10,
            concurrency: 2,
            delay_ms: 100,
        }
    }
}

/// A crawled HTML page.
#[derive(Clone, Debug)]
pub struct Page {
    /// Where the page was found, after redirects.
    pub url: Url,
    pub title: Option<String>,
    pub html: String,
    /// Links followed from the start to reach it.
    pub depth: usize,
}

#[derive(Debug, Default)]
pub struct CrawlReport {
    /// Pages handed to `on_page`.
    pub pages: usize,
    /// Every address seen but not crawled, once each, with why.
    pub skipped: Vec<Skipped>,
}

impl CrawlReport {
    /// The skipped addresses for one kind of reason.
    pub fn skipped_for(&self, reason: impl Fn(&SkipReason) -> bool) -> Vec<&str> {
        self.skipped
            .iter()
            .filter(|s| reason(&s.reason))
            .map(|s| s.url.as_str())
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub url: String,
    pub reason: SkipReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// robots.txt disallows it (or could not be read, which disallows everything).
    Robots,
    /// The crawl had reached `max_pages`.
    PageCap,
    /// More than `max_depth` links from the start.
    DepthCap,
    /// Another scheme, host or port than the start.
    OffSite,
    /// Not an HTML page: its extension or the content type it came with.
    NotHtml(String),
    /// A redirect led to a page already crawled.
    Duplicate,
    /// The fetch failed or the server answered with an error.
    Failed(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Robots => f.write_str("disallowed by robots.txt"),
            Self::PageCap => f.write_str("page limit reached"),
            Self::DepthCap => f.write_str("too many links from the start"),
            Self::OffSite => f.write_str("on another site"),
            Self::NotHtml(what) => write!(f, "not an HTML page ({what})"),
            Self::Duplicate => f.write_str("already crawled under another address"),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

/// Crawls the site of `options.start`, calling `on_page` for every HTML page found.
/// Never fails as a whole: what went wrong with each address is in the report.
pub async fn crawl_site(
    fetcher: &Fetcher,
    options: CrawlOptions,
    mut on_page: impl FnMut(Page),
) -> CrawlReport {
    let mut crawl = Crawl::new(fetcher, &options).await;
    if is_sitemap(&options.start) {
        crawl.read_sitemaps(vec![options.start.clone()], 0).await;
    } else {
        crawl.consider(options.start.clone(), 0);
        let listed = crawl.listed_sitemaps();
        crawl.read_sitemaps(listed, 1).await;
    }

    let concurrency = options.concurrency.max(1);
    let delay = Duration::from_millis(options.delay_ms);
    let mut in_flight: JoinSet<Outcome> = JoinSet::new();
    let mut last_start: Option<Instant> = None;
    let mut crawled: HashSet<String> = HashSet::new();
    loop {
        while in_flight.len() < concurrency
            && crawl.report.pages + in_flight.len() < options.max_pages
        {
            let Some((url, depth)) = crawl.queue.pop_front() else {
                break;
            };
            if let Some(previous) = last_start {
                tokio::time::sleep_until(previous + delay).await;
            }
            last_start = Some(Instant::now());
            let fetcher = fetcher.clone();
            in_flight.spawn(fetch_page(fetcher, url, depth));
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let outcome = match joined {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, "a crawl fetch task failed");
                continue;
            }
        };
        let Outcome { url, depth, result } = outcome;
        let (fetched, found) = match result {
            Ok(ok) => ok,
            Err(reason) => {
                crawl.skip(url.as_str(), reason);
                continue;
            }
        };
        let final_url = fetched.final_url;
        if final_url != url {
            // A redirect: judge where it led as if it had been linked.
            if final_url.origin() != crawl.origin {
                if url != options.start || crawl.report.pages > 0 {
                    crawl.skip(url.as_str(), SkipReason::OffSite);
                    continue;
                }
                // The start itself moved (http → https, a www. host): the site lives
                // there, with its own robots.txt and sitemaps.
                crawl.move_to(&final_url).await;
                let listed = crawl.listed_sitemaps();
                crawl.read_sitemaps(listed, 1).await;
            }
            if !crawl.robots.allows(&path_and_query(&final_url)) {
                crawl.skip(url.as_str(), SkipReason::Robots);
                continue;
            }
            crawl.seen.insert(final_url.to_string());
        }
        if !crawled.insert(final_url.to_string()) {
            crawl.skip(url.as_str(), SkipReason::Duplicate);
            continue;
        }
        for link in found.links {
            crawl.consider(link, depth + 1);
        }
        crawl.report.pages += 1;
        on_page(Page {
            url: final_url,
            title: found.title,
            html: found.html,
            depth,
        });
    }

    while let Some((url, _)) = crawl.queue.pop_front() {
        crawl.skip(url.as_str(), SkipReason::PageCap);
    }
    crawl.report
}

/// The crawl's bookkeeping: what was seen, what waits, what the report says.
struct Crawl<'a> {
    fetcher: &'a Fetcher,
    origin: Origin,
    max_depth: usize,
    robots: Robots,
    queue: VecDeque<(Url, usize)>,
    /// Every address considered, so each is fetched or reported once.
    seen: HashSet<String>,
    sitemap_entries: usize,
    report: CrawlReport,
}

impl<'a> Crawl<'a> {
    async fn new(fetcher: &'a Fetcher, options: &CrawlOptions) -> Self {
        let mut crawl = Self {
            fetcher,
            origin: options.start.origin(),
            max_depth: options.max_depth,
            robots: Robots::allow_all(),
            queue: VecDeque::new(),
            seen: HashSet::new(),
            sitemap_entries: 0,
            report: CrawlReport::default(),
        };
        crawl.robots = crawl.load_robots(&options.start).await;
        crawl
    }

    /// Fetches /robots.txt once. Missing (4xx) allows everything; unreachable (5xx, a
    /// network error) disallows everything, as RFC 9309 asks.
    async fn load_robots(&mut self, start: &Url) -> Robots {
        let Ok(robots_url) = start.join("/robots.txt") else {
            return Robots::allow_all();
        };
        let agent = product_token(&self.fetcher.policy().user_agent);
        match self.fetcher.fetch(&robots_url).await {
            Ok(f) if f.is_success() => Robots::parse(&String::from_utf8_lossy(&f.body), agent),
            Ok(f) if (400..500).contains(&f.status) => Robots::allow_all(),
            Ok(f) => {
                let why = format!("robots.txt unreadable (HTTP {}): nothing crawled", f.status);
                self.skip(robots_url.as_str(), SkipReason::Failed(why));
                Robots::deny_all()
            }
            Err(e) => {
                let why = format!("robots.txt unreadable ({e}): nothing crawled");
                self.skip(robots_url.as_str(), SkipReason::Failed(why));
                Robots::deny_all()
            }
        }
    }

    /// Crawls `url`'s site instead of the start's, under its robots.txt.
    async fn move_to(&mut self, url: &Url) {
        tracing::debug!(from = ?self.origin, to = ?url.origin(), "the crawl start moved");
        self.origin = url.origin();
        self.robots = self.load_robots(url).await;
    }

    fn listed_sitemaps(&self) -> Vec<Url> {
        self.robots
            .sitemaps
            .iter()
            .filter_map(|s| Url::parse(s).ok())
            .collect()
    }

    /// Reads sitemaps (following sitemap indexes) and queues the pages they list.
    async fn read_sitemaps(&mut self, sitemaps: Vec<Url>, depth: usize) {
        let mut to_read: VecDeque<Url> = sitemaps.into();
        let mut read: HashSet<Url> = HashSet::new();
        while let Some(url) = to_read.pop_front() {
            if !read.insert(url.clone()) {
                continue;
            }
            if read.len() > MAX_SITEMAP_FILES {
                let why = format!("more than {MAX_SITEMAP_FILES} sitemap files");
                self.skip(url.as_str(), SkipReason::Failed(why));
                continue;
            }
            if url.origin() != self.origin {
                self.skip(url.as_str(), SkipReason::OffSite);
                continue;
            }
            if !self.robots.allows(&path_and_query(&url)) {
                self.skip(url.as_str(), SkipReason::Robots);
                continue;
            }
            let fetched = self.fetcher.fetch(&url).await;
            if let Ok(f) = &fetched
                && depth == 0
                && read.len() == 1
                && f.final_url.origin() != self.origin
            {
                // A start sitemap that moved: the site lives where it led.
                self.move_to(&f.final_url).await;
            }
            let parsed = match fetched {
                Ok(f) if f.is_success() => sitemap::parse(&String::from_utf8_lossy(&f.body)),
                Ok(f) => Err(format!("HTTP {}", f.status)),
                Err(e) => Err(e.to_string()),
            };
            match parsed {
                Ok(sitemap::Sitemap::Index(locs)) => {
                    to_read.extend(locs.iter().filter_map(|l| Url::parse(l).ok()));
                }
                Ok(sitemap::Sitemap::Pages(locs)) => {
                    for loc in locs {
                        if self.sitemap_entries >= sitemap::MAX_ENTRIES {
                            break;
                        }
                        self.sitemap_entries += 1;
                        if let Ok(page) = Url::parse(&loc) {
                            self.consider(page, depth);
                        }
                    }
                }
                Err(why) => self.skip(url.as_str(), SkipReason::Failed(why)),
            }
        }
    }

    /// Queues `url` unless it was seen before or must be skipped.
    fn consider(&mut self, mut url: Url, depth: usize) {
        url.set_fragment(None);
        if !self.seen.insert(url.to_string()) {
            return;
        }
        let skip = if url.origin() != self.origin {
            Some(SkipReason::OffSite)
        } else if links::not_html_by_extension(&url) {
            Some(SkipReason::NotHtml("by its extension".to_owned()))
        } else if !self.robots.allows(&path_and_query(&url)) {
            Some(SkipReason::Robots)
        } else if depth > self.max_depth {
            Some(SkipReason::DepthCap)
        } else {
            None
        };
        match skip {
            Some(reason) => self.skip(url.as_str(), reason),
            None => self.queue.push_back((url, depth)),
        }
    }

    fn skip(&mut self, url: &str, reason: SkipReason) {
        tracing::debug!(url, %reason, "crawl skipped");
        self.report.skipped.push(Skipped {
            url: url.to_owned(),
            reason,
        });
    }
}

struct Outcome {
    url: Url,
    depth: usize,
    result: Result<(Fetched, Found), SkipReason>,
}

struct Found {
    title: Option<String>,
    html: String,
    links: Vec<Url>,
}

async fn fetch_page(fetcher: Fetcher, url: Url, depth: usize) -> Outcome {
    let result = fetch_and_parse(&fetcher, &url).await;
    Outcome { url, depth, result }
}

async fn fetch_and_parse(fetcher: &Fetcher, url: &Url) -> Result<(Fetched, Found), SkipReason> {
    let mut fetched = fetcher.fetch(url).await.map_err(failed)?;
    if !fetched.is_success() {
        return Err(SkipReason::Failed(format!("HTTP {}", fetched.status)));
    }
    if !fetched.is_html() {
        let mime = fetched
            .mime()
            .unwrap_or_else(|| "no content type".to_owned());
        return Err(SkipReason::NotHtml(mime));
    }
    let body = std::mem::take(&mut fetched.body);
    let base = fetched.final_url.clone();
    // Parsing a few megabytes of HTML is CPU work: keep it off the async workers.
    let found = tokio::task::spawn_blocking(move || {
        let html = String::from_utf8_lossy(&body).into_owned();
        let page = links::extract(&html, &base);
        Found {
            title: page.title,
            html,
            links: page.links,
        }
    })
    .await
    .map_err(|e| SkipReason::Failed(format!("parsing failed: {e}")))?;
    Ok((fetched, found))
}

fn failed(error: FetchError) -> SkipReason {
    SkipReason::Failed(error.to_string())
}

fn is_sitemap(url: &Url) -> bool {
    url.path().to_ascii_lowercase().ends_with(".xml")
}

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// `KalTalk/0.1.0 (…)` → `KalTalk`: the name robots.txt groups address.
fn product_token(user_agent: &str) -> &str {
    user_agent
        .split(['/', ' '])
        .next()
        .filter(|t| !t.is_empty())
        .unwrap_or("*")
}
