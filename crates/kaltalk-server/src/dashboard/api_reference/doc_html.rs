//! The Markdown the API's doc comments are written in, as HTML for the reference page.
//! Only a tiny subset is understood (paragraphs, `- ` lists, `code`, **bold** and
//! `[text](url)` links to http(s) or this server); everything else is escaped text, so
//! whatever a description holds, it can only ever come out as text.

use std::fmt;

/// HTML made by [`DocHtml::new`]: safe to write into a page unescaped, so templates
/// write it as it is (like `crate::web::embed`'s types; templates never use `|safe`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DocHtml(String);

impl DocHtml {
    /// Blocks (paragraphs and lists) from `markdown`.
    pub(crate) fn new(markdown: &str) -> Self {
        let mut out = String::new();
        for block in markdown.split("\n\n") {
            let lines: Vec<&str> = block
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if lines.is_empty() {
                continue;
            }
            let items: Option<Vec<&str>> = lines
                .iter()
                .map(|l| l.strip_prefix("- ").or_else(|| l.strip_prefix("* ")))
                .collect();
            match items {
                Some(items) => {
                    out.push_str("<ul>");
                    for item in items {
                        out.push_str("<li>");
                        inline(item, &mut out);
                        out.push_str("</li>");
                    }
                    out.push_str("</ul>");
                }
                None => {
                    out.push_str("<p>");
                    inline(&lines.join("\n"), &mut out);
                    out.push_str("</p>");
                }
            }
        }
        Self(out)
    }

    /// One line of text (a summary, a table cell): inline markup only, no paragraph; a
    /// text with blank lines in it keeps its paragraphs.
    pub(crate) fn inline(markdown: &str) -> Self {
        if markdown.contains("\n\n") {
            return Self::new(markdown);
        }
        let mut out = String::new();
        inline(markdown.trim(), &mut out);
        Self(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl askama::filters::HtmlSafe for DocHtml {}

impl fmt::Display for DocHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Appends `text` with its inline markup as HTML.
fn inline(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '`'
            && let Some(end) = rest[1..].find('`')
        {
            out.push_str("<code>");
            escape_into(&rest[1..1 + end], out);
            out.push_str("</code>");
            rest = &rest[end + 2..];
            continue;
        }
        if rest.starts_with("**")
            && let Some(end) = rest[2..].find("**")
            && end > 0
        {
            out.push_str("<strong>");
            inline(&rest[2..2 + end], out);
            out.push_str("</strong>");
            rest = &rest[end + 4..];
            continue;
        }
        if c == '['
            && let Some((label, url, len)) = link(rest)
        {
            out.push_str("<a href=\"");
            escape_into(url, out);
            out.push_str("\">");
            inline(label, out);
            out.push_str("</a>");
            rest = &rest[len..];
            continue;
        }
        escape_into(&rest[..c.len_utf8()], out);
        rest = &rest[c.len_utf8()..];
    }
}

/// `[label](url)` at the start of `text`: its label, URL and length, when the URL is one
/// a reader may follow (http, https, or a path or anchor on this server).
fn link(text: &str) -> Option<(&str, &str, usize)> {
    let close = text.find("](")?;
    let label = &text[1..close];
    let end = close + 2 + text[close + 2..].find(')')?;
    let url = &text[close + 2..end];
    let followable = url.starts_with("https://")
        || url.starts_with("http://")
        || (url.starts_with('/') && !url.starts_with("//"))
        || url.starts_with('#');
    let plain = !label.is_empty() && !label.contains('[') && !url.contains(char::is_whitespace);
    (followable && plain).then_some((label, url, end + 1))
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(markdown: &str) -> String {
        DocHtml::new(markdown).to_string()
    }

    #[test]
    fn code_links_bold_paragraphs_and_lists_become_html() {
        assert_eq!(
            html(
                "Send `Authorization: Bearer kt_…`.\nSee [the guide](https://example.com/a?b=1&c=2).\n\n- **one**\n- two"
            ),
            "<p>Send <code>Authorization: Bearer kt_…</code>.\nSee <a href=\"https://example.com/a?b=1&amp;c=2\">the guide</a>.</p><ul><li><strong>one</strong></li><li>two</li></ul>"
        );
        assert_eq!(
            DocHtml::inline("The `limit` (at most 100)").to_string(),
            "The <code>limit</code> (at most 100)"
        );
    }

    #[test]
    fn everything_else_is_escaped_text() {
        assert_eq!(
            html("<script>alert(1)</script> `<b>` [x](javascript:alert(1)) [y](//evil.test)"),
            "<p>&lt;script&gt;alert(1)&lt;/script&gt; <code>&lt;b&gt;</code> [x](javascript:alert(1)) [y](//evil.test)</p>"
        );
        assert_eq!(
            html("[a\"b](https://x.test/\"onmouseover=\"1)"),
            "<p><a href=\"https://x.test/&quot;onmouseover=&quot;1\">a&quot;b</a></p>"
        );
        // An unclosed mark is just a character.
        assert_eq!(html("a ` b ** c [d"), "<p>a ` b ** c [d</p>");
    }
}
