//! HTML: the page's main content (readability, via dom_smoothie) as Markdown (htmd).

use dom_smoothie::{Readability, ReadabilityError};
use htmd::HtmlToMarkdown;

use super::{Document, ExtractError, FileKind, text};

/// Never content, whatever readability kept: page chrome, code, embedded widgets.
const SKIPPED_TAGS: [&str; 17] = [
    "head", "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "button", "input", "select", "textarea", "iframe", "svg", "canvas",
];

/// Reads a page's main content as Markdown, keeping its title. `url` makes relative links
/// absolute. CPU-bound: async callers run it on the blocking pool.
pub fn extract_html(html: &str, url: Option<&str>) -> Result<Document, ExtractError> {
    let unreadable = |reason: String| ExtractError::Unreadable {
        kind: FileKind::Html,
        reason,
    };
    // html5ever's time grows with the square of the nesting: a hostile page could hold
    // an indexing worker for minutes.
    if kaltalk_core::html::too_deeply_nested(html) {
        return Err(unreadable(format!(
            "it nests elements more than {} levels deep",
            kaltalk_core::html::MAX_NESTING
        )));
    }
    let mut readability = Readability::new(html, url, None).map_err(|error| match error {
        ReadabilityError::BadDocumentURL => {
            unreadable("its address is not an absolute URL".to_owned())
        }
        other => unreadable(other.to_string()),
    })?;
    let page_title = readability.get_article_title().to_string();
    let (title, content) = match readability.parse() {
        Ok(article) => (article.title, article.content.to_string()),
        // Short pages (a FAQ entry, a contact page) can fall under readability's
        // thresholds: keep the whole page then, chrome still dropped by the converter.
        Err(ReadabilityError::GrabFailed) => (page_title, html.to_owned()),
        Err(error) => return Err(unreadable(error.to_string())),
    };
    let converter = HtmlToMarkdown::builder()
        .skip_tags(SKIPPED_TAGS.to_vec())
        .build();
    let markdown = converter
        .convert(&content)
        .map_err(|error| unreadable(format!("the page could not be converted ({error})")))?;
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Document {
        title: (!title.is_empty()).then_some(title),
        markdown: text::tidy_markdown(&markdown),
    })
}
