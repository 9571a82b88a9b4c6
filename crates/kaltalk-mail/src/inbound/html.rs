//! HTML bodies: sanitized for display in the dashboard, and turned into readable text,
//! optionally without the quoted history that mail clients append to replies.

use std::borrow::Cow;
use std::collections::HashSet;

use scraper::{Html, Node};

/// Sanitizes an email's HTML for display: ammonia's safe defaults (no script, style,
/// event handlers, iframes, forms), links get `rel="noopener noreferrer"`, and images
/// keep only `cid:` sources so a remote tracking pixel never loads when an agent reads.
pub fn sanitize(html: &str) -> String {
    ammonia::Builder::default()
        .add_url_schemes(["cid"])
        .clean_content_tags(HashSet::from(["script", "style", "title", "head"]))
        .attribute_filter(|element, attribute, value| {
            if element == "img" && attribute == "src" && !is_cid_url(value) {
                return None;
            }
            Some(Cow::Borrowed(value))
        })
        .clean(html)
        .to_string()
        .trim()
        .to_owned()
}

fn is_cid_url(value: &str) -> bool {
    value
        .trim_start()
        .get(..4)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("cid:"))
}

/// Turns HTML into readable plain text: paragraphs and line breaks kept, list items
/// bulleted, quoted blocks prefixed with `> `, links shown as `text (url)`.
pub fn html_to_text(html: &str) -> String {
    render(html, Quotes::Keep)
}

/// Like [`html_to_text`], but drops the reply history the common clients mark up
/// (Gmail, Outlook, Apple Mail, Thunderbird), so HTML-only mail can be trimmed.
pub(crate) fn html_to_text_without_quotes(html: &str) -> String {
    render(html, Quotes::Drop)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quotes {
    Keep,
    Drop,
}

/// What a quoting client's markup means for the text that follows.
enum QuoteMarker {
    /// The element is the quote; what comes after it is the sender's again.
    Element,
    /// Outlook puts the history AFTER its header div, as siblings: stop reading there.
    RestOfDocument,
}

fn quote_marker(element: &scraper::node::Element) -> Option<QuoteMarker> {
    let id = element.attr("id").unwrap_or_default();
    if id.eq_ignore_ascii_case("divRplyFwdMsg")
        || id.eq_ignore_ascii_case("appendonsend")
        || id.eq_ignore_ascii_case("mail-editor-reference-message-container")
    {
        return Some(QuoteMarker::RestOfDocument);
    }
    if element.name() == "blockquote" {
        return Some(QuoteMarker::Element);
    }
    let quoting_class = element.classes().any(|class| {
        matches!(
            class,
            "gmail_quote" | "gmail_quote_container" | "moz-cite-prefix" | "yahoo_quoted"
        )
    });
    quoting_class.then_some(QuoteMarker::Element)
}

fn render(html: &str, quotes: Quotes) -> String {
    let document = Html::parse_document(html);
    let mut out = TextWriter::default();
    let mut open_links = Vec::new();
    let root = *document.root_element();
    let mut node = root;
    // An explicit walk instead of recursion: hostile mail can nest elements deeper than
    // the stack allows.
    'walk: loop {
        let mut entered = false;
        match node.value() {
            Node::Text(text) => out.push_text(text),
            Node::Element(element) => {
                let name = element.name();
                let ignored = matches!(name, "script" | "style" | "head" | "title" | "template");
                let marker = match quotes {
                    Quotes::Drop => quote_marker(element),
                    Quotes::Keep => None,
                };
                if matches!(marker, Some(QuoteMarker::RestOfDocument)) {
                    break 'walk;
                }
                if !ignored && marker.is_none() {
                    out.open(name);
                    if name == "a"
                        && let Some(href) = element.attr("href")
                    {
                        open_links.push((node.id(), href.trim().to_owned(), out.text.len()));
                    }
                    if let Some(child) = node.first_child() {
                        node = child;
                        continue 'walk;
                    }
                    entered = true;
                }
            }
            _ => {
                if let Some(child) = node.first_child() {
                    node = child;
                    continue 'walk;
                }
            }
        }
        // Leave `node` (closing it if it was entered), then every ancestor that has no
        // further sibling, until a next sibling or the root.
        loop {
            if entered && let Node::Element(element) = node.value() {
                if open_links.last().is_some_and(|(id, _, _)| *id == node.id())
                    && let Some((_, href, start)) = open_links.pop()
                {
                    out.close_link(&href, start);
                }
                out.close(element.name());
            }
            if node.id() == root.id() {
                break 'walk;
            }
            if let Some(sibling) = node.next_sibling() {
                node = sibling;
                continue 'walk;
            }
            match node.parent() {
                Some(parent) => {
                    node = parent;
                    entered = true;
                }
                None => break 'walk,
            }
        }
    }
    out.finish()
}

/// Accumulates text with HTML's whitespace rules and block-level line breaks.
#[derive(Default)]
struct TextWriter {
    text: String,
    /// Line breaks owed before the next text; blocks only ever add, never stack up.
    pending_breaks: usize,
    pending_space: bool,
    quote_depth: usize,
    pre_depth: usize,
}

impl TextWriter {
    fn open(&mut self, name: &str) {
        match name {
            "br" => {
                self.text.push('\n');
                self.start_line_prefix();
            }
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "table" | "pre"
            | "hr" => self.want_breaks(2),
            "blockquote" => {
                self.want_breaks(2);
                self.quote_depth += 1;
            }
            "li" => {
                self.want_breaks(1);
                self.flush_breaks();
                self.text.push_str("- ");
            }
            "div" | "tr" | "section" | "article" | "header" | "footer" | "address" | "center"
            | "dl" | "dt" | "dd" | "body" => self.want_breaks(1),
            "td" | "th" => self.pending_space = true,
            _ => {}
        }
        if name == "pre" {
            self.pre_depth += 1;
        }
    }

    fn close(&mut self, name: &str) {
        match name {
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "table" | "pre"
            | "hr" => self.want_breaks(2),
            "blockquote" => {
                self.want_breaks(2);
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            "div" | "tr" | "li" | "section" | "article" | "header" | "footer" | "address"
            | "center" | "dl" | "dt" | "dd" => self.want_breaks(1),
            _ => {}
        }
        if name == "pre" {
            self.pre_depth = self.pre_depth.saturating_sub(1);
        }
    }

    fn close_link(&mut self, href: &str, start: usize) {
        let shown = self.text.get(start..).unwrap_or_default();
        let target = href
            .strip_prefix("mailto:")
            .unwrap_or(href)
            .split('?')
            .next()
            .unwrap_or_default();
        let worth_showing = (href.starts_with("http://")
            || href.starts_with("https://")
            || href.starts_with("mailto:"))
            && !target.is_empty()
            && !shown.contains(target);
        if worth_showing {
            self.text.push_str(" (");
            self.text.push_str(target);
            self.text.push(')');
        }
    }

    fn want_breaks(&mut self, count: usize) {
        if !self.text.is_empty() {
            self.pending_breaks = self.pending_breaks.max(count);
        }
        self.pending_space = false;
    }

    fn flush_breaks(&mut self) {
        if self.pending_breaks > 0 {
            for _ in 0..self.pending_breaks {
                self.text.push('\n');
                self.start_line_prefix();
            }
            self.pending_breaks = 0;
            self.pending_space = false;
        }
    }

    fn start_line_prefix(&mut self) {
        for _ in 0..self.quote_depth {
            self.text.push_str("> ");
        }
    }

    fn at_line_start(&self) -> bool {
        let line = self.text.rsplit('\n').next().unwrap_or_default();
        line.chars().all(|c| c == '>' || c == ' ')
    }

    fn push_text(&mut self, text: &str) {
        if self.pre_depth > 0 {
            self.flush_breaks();
            for (index, line) in text.split('\n').enumerate() {
                if index > 0 {
                    self.text.push('\n');
                    self.start_line_prefix();
                }
                self.text.push_str(line);
            }
            return;
        }
        let mut words = text
            .split(|c: char| c.is_whitespace() && c != '\u{a0}')
            .filter(|word| !word.is_empty())
            .peekable();
        let starts_with_space = text.starts_with(|c: char| c.is_whitespace());
        let ends_with_space = text.ends_with(|c: char| c.is_whitespace());
        if words.peek().is_none() {
            if starts_with_space {
                self.pending_space = true;
            }
            return;
        }
        if self.text.is_empty() && self.quote_depth > 0 {
            self.start_line_prefix();
        }
        self.flush_breaks();
        if (starts_with_space || self.pending_space) && !self.at_line_start() {
            self.text.push(' ');
        }
        let mut first = true;
        for word in words {
            if !first {
                self.text.push(' ');
            }
            self.text.push_str(&word.replace('\u{a0}', " "));
            first = false;
        }
        self.pending_space = ends_with_space;
    }

    fn finish(self) -> String {
        let is_blank = |line: &str| line.chars().all(|c| c == '>' || c.is_whitespace());
        let is_quoted = |line: &str| line.starts_with('>');
        let lines: Vec<&str> = self.text.lines().map(str::trim_end).collect();
        let mut kept: Vec<&str> = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            if !is_blank(line) {
                kept.push(line);
                continue;
            }
            let after_text = kept
                .last()
                .is_some_and(|last| !last.is_empty() && *last != ">");
            if !after_text {
                continue;
            }
            // A blank line stays inside a quote only when the quote goes on after it.
            let next = lines[index + 1..].iter().find(|next| !is_blank(next));
            let inside_quote = kept.last().is_some_and(|last| is_quoted(last))
                && next.is_some_and(|next| is_quoted(next));
            kept.push(if inside_quote { ">" } else { "" });
        }
        while kept.last().is_some_and(|line| is_blank(line)) {
            kept.pop();
        }
        kept.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_breaks_lists_and_links_read_as_text() {
        let html = "<html><head><title>t</title><style>p{}</style></head><body>\
            <p>Hello   <b>there</b>,</p><p>line one<br>line two</p>\
            <ul><li>first</li><li>second</li></ul>\
            <p>See <a href=\"https://example.test/docs\">the docs</a> or \
            <a href=\"mailto:help@example.test\">help@example.test</a>.</p></body></html>";
        assert_eq!(
            html_to_text(html),
            "Hello there,\n\nline one\nline two\n\n- first\n- second\n\n\
             See the docs (https://example.test/docs) or help@example.test."
        );
    }

    #[test]
    fn blockquotes_are_prefixed_when_kept_and_gone_when_dropped() {
        let html = "<div>New text</div><div class=\"gmail_quote\">On Tue, Ada wrote:\
            <blockquote class=\"gmail_quote\">old text</blockquote></div>";
        assert_eq!(
            html_to_text(html),
            "New text\nOn Tue, Ada wrote:\n\n> old text"
        );
        assert_eq!(html_to_text_without_quotes(html), "New text");
    }

    #[test]
    fn outlook_history_after_the_reply_header_is_dropped() {
        let html = "<div>Answer</div><div id=\"appendonsend\"></div><hr>\
            <div id=\"divRplyFwdMsg\"><b>From:</b> Ada</div><div>old question</div>";
        assert_eq!(html_to_text_without_quotes(html), "Answer");
        assert!(html_to_text(html).contains("old question"));
    }

    #[test]
    fn sanitize_drops_scripts_handlers_and_remote_images_but_keeps_cid_and_links() {
        let html = "<p onclick=\"steal()\">Hi<script>alert(1)</script></p>\
            <img src=\"https://tracker.example/p.gif\" width=\"1\">\
            <img src=\"cid:logo@example.test\" alt=\"logo\">\
            <a href=\"https://example.test/\">site</a><iframe src=\"https://x\"></iframe>\
            <form><input name=\"q\"></form>";
        let clean = sanitize(html);
        assert!(
            !clean.contains("script") && !clean.contains("alert"),
            "{clean}"
        );
        assert!(!clean.contains("onclick"), "{clean}");
        assert!(!clean.contains("tracker.example"), "{clean}");
        assert!(!clean.contains("iframe") && !clean.contains("<form") && !clean.contains("<input"));
        assert!(clean.contains("src=\"cid:logo@example.test\""), "{clean}");
        assert!(clean.contains("href=\"https://example.test/\""), "{clean}");
        assert!(clean.contains("noopener"), "{clean}");
    }

    #[test]
    fn deeply_nested_html_still_reads_as_text() {
        let html = "<div>".repeat(3_000) + "deep" + &"</div>".repeat(3_000);
        assert_eq!(html_to_text(&html), "deep");
    }
}
