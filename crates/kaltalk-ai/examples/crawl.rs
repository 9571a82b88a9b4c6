//! Crawls a site by hand and lists what the crawler found, to compare with
//! `shared/eval/site_stats.py`:
//! `cargo run -p kaltalk-ai --example crawl -- URL [MAX_PAGES] [--allow-loopback]`
//! Prints one line per page (`depth bytes url title`), then each skipped address and why,
//! to standard error.

use std::time::Instant;

use kaltalk_ai::crawl::{CrawlOptions, crawl_site};
use kaltalk_ai::fetch::{FetchPolicy, Fetcher};
use url::Url;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(start) = args.first() else {
        return Err("usage: crawl URL [MAX_PAGES] [--allow-loopback]".into());
    };
    let start = Url::parse(start)?;
    let max_pages = match args.get(1).filter(|a| !a.starts_with("--")) {
        Some(n) => n.parse()?,
        None => 1000,
    };
    let fetcher = Fetcher::new(FetchPolicy {
        allow_loopback: args.iter().any(|a| a == "--allow-loopback"),
        ..FetchPolicy::default()
    })?;
    let options = CrawlOptions {
        max_pages,
        ..CrawlOptions::new(start)
    };

    let began = Instant::now();
    let mut bytes = 0;
    let report = crawl_site(&fetcher, options, |page| {
        bytes += page.html.len();
        eprintln!(
            "{} {} {} {}",
            page.depth,
            page.html.len(),
            page.url,
            page.title.unwrap_or_default()
        );
    })
    .await;
    for skipped in &report.skipped {
        eprintln!("skipped {} ({})", skipped.url, skipped.reason);
    }
    eprintln!(
        "pages={} bytes={bytes} skipped={} in {:.1} s",
        report.pages,
        report.skipped.len(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}
