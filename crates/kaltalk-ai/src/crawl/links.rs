//! What the crawler needs from a page: its title and the pages it links to.

use std::sync::LazyLock;

use scraper::{Html, Selector};
use url::Url;

static TITLE: LazyLock<Selector> = LazyLock::new(|| selector("title"));
static BASE: LazyLock<Selector> = LazyLock::new(|| selector("base[href]"));
static ANCHORS: LazyLock<Selector> = LazyLock::new(|| selector("a[href]"));

fn selector(css: &str) -> Selector {
    // The selectors are fixed strings: a typo fails every test, not a request.
    Selector::parse(css).expect("a valid selector")
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct PageLinks {
    pub title: Option<String>,
    /// Absolute http(s) links without fragments, in page order, each once.
    pub links: Vec<Url>,
}

/// A page nested too deeply to parse safely yields nothing (its text is refused with a
/// reason when it is read; see `extract_html`).
pub fn extract(html: &str, page_url: &Url) -> PageLinks {
    if kaltalk_core::html::too_deeply_nested(html) {
        return PageLinks::default();
    }
    let document = Html::parse_document(html);
    let title = document
        .select(&TITLE)
        .next()
        .map(|t| collapse_whitespace(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let base = document
        .select(&BASE)
        .next()
        .and_then(|b| b.attr("href"))
        .and_then(|href| page_url.join(href.trim()).ok())
        .unwrap_or_else(|| page_url.clone());
    let mut links: Vec<Url> = Vec::new();
    for anchor in document.select(&ANCHORS) {
        let Some(href) = anchor.attr("href") else {
            continue;
        };
        let Ok(mut url) = base.join(href.trim()) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        if !links.contains(&url) {
            links.push(url);
        }
    }
    PageLinks { title, links }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Extensions that are never HTML pages, so the crawler needn't fetch them to find out.
pub fn not_html_by_extension(url: &Url) -> bool {
    const BINARY: &[&str] = &[
        "7z", "avi", "bin", "bmp", "bz2", "css", "csv", "deb", "dmg", "doc", "docx", "eot", "epub",
        "exe", "flac", "gif", "gz", "ico", "iso", "jar", "jpeg", "jpg", "js", "json", "m4a", "mkv",
        "mov", "mp3", "mp4", "msi", "odp", "ods", "odt", "ogg", "otf", "pdf", "png", "ppt", "pptx",
        "ps", "rar", "rpm", "svg", "tar", "tgz", "tif", "tiff", "ttf", "txt", "wav", "webm",
        "webp", "woff", "woff2", "xls", "xlsx", "xz", "zip", "zst",
    ];
    let last = url.path().rsplit('/').next().unwrap_or_default();
    match last.rsplit_once('.') {
        Some((_, ext)) => BINARY.contains(&ext.to_ascii_lowercase().as_str()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|_| panic!("bad test url {s}"))
    }

    #[test]
    fn a_page_nested_too_deep_yields_no_links() {
        let bomb = format!(
            "<title>Deep</title><a href=\"/a\">a</a>{}",
            "<div>".repeat(100_000)
        );
        assert_eq!(
            extract(&bomb, &url("http://docs.example/")),
            PageLinks::default()
        );
    }

    #[test]
    fn resolves_dedupes_and_drops_fragments() {
        let html = r##"<html><head><title>
            The  Guide
        </title></head><body>
          <a href="next.html">next</a>
          <a href="next.html#part-2">same page</a>
          <a href="/abs/">absolute</a>
          <a href="../up.html">up</a>
          <a href="https://other.example/x">off site</a>
          <a href="#top">top</a>
          <a href="mailto:help@example.com">mail</a>
          <a href="javascript:void(0)">js</a>
          <a>no href</a>
        </body></html>"##;
        let found = extract(html, &url("http://docs.example/guide/start.html"));
        assert_eq!(found.title.as_deref(), Some("The Guide"));
        let links: Vec<String> = found.links.iter().map(Url::to_string).collect();
        assert_eq!(
            links,
            [
                "http://docs.example/guide/next.html",
                "http://docs.example/abs/",
                "http://docs.example/up.html",
                "https://other.example/x",
                "http://docs.example/guide/start.html",
            ]
        );
    }

    #[test]
    fn base_href_changes_resolution() {
        let html = r#"<head><base href="/v2/"></head><a href="intro.html">i</a>"#;
        let found = extract(html, &url("http://docs.example/index.html"));
        assert_eq!(found.title, None);
        assert_eq!(found.links, vec![url("http://docs.example/v2/intro.html")]);
    }

    #[test]
    fn binary_extensions() {
        assert!(not_html_by_extension(&url("http://x.example/manual.PDF")));
        assert!(not_html_by_extension(&url(
            "http://x.example/a/logo.png?v=2"
        )));
        assert!(!not_html_by_extension(&url("http://x.example/a/page.html")));
        assert!(!not_html_by_extension(&url("http://x.example/a/")));
        assert!(!not_html_by_extension(&url("http://x.example/v1.2/intro")));
    }
}
