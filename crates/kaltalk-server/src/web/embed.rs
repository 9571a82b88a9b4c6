//! The only text a template writes unescaped, each kind behind a type that can only be
//! made safely: JSON for page scripts, sanitized email HTML and formatted message text.
//! Templates never use `|safe`; a value of one of these types is written as it is,
//! anything else is escaped.

use std::fmt;

use anyhow::Context;
use askama::filters::HtmlSafe;
use serde::Serialize;

use crate::error::AppError;

/// A value as JSON that is safe inside `<script type="application/json">` (read with
/// `JSON.parse(el.textContent)`) and inside a single-quoted attribute.
///
/// `serde_json` leaves `</script>` and `<!--` as they are, which end or change the
/// script block: text a user wrote could then become markup (and htmx attributes in it
/// would fire with the reader's session). `<`, `>`, `&` and `'` are written as `\u`
/// escapes (they only ever occur inside JSON strings, so the JSON means the same), and
/// so are U+2028/9, which some JavaScript parsers take for line ends.
pub struct ScriptJson(String);

impl ScriptJson {
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self, AppError> {
        let json = serde_json::to_string(value).context("serializing data for a page")?;
        Ok(Self(escape_json(&json)))
    }
}

fn escape_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\'' => out.push_str("\\u0027"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for ScriptJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl HtmlSafe for ScriptJson {}

/// HTML the server made safe when the page is built, never a stored value trusted as
/// markup: an email's HTML after the mail crate's sanitizer (no scripts, styles, event
/// handlers, forms, frames or remote images), or message text with its light formatting
/// (everything escaped, only the formatter's own tags and http/https/mailto links).
pub struct SanitizedHtml(String);

impl SanitizedHtml {
    pub fn email(html: &str) -> Self {
        Self(kaltalk_mail::inbound::sanitize_html(html))
    }

    /// Message text as the widget and outbound email show it too (`kaltalk_core::format`).
    pub fn formatted(text: &str) -> Self {
        Self(kaltalk_core::format::to_html(text))
    }

    /// [`SanitizedHtml::formatted`] with a note's @mentions of `marks` highlighted (each
    /// name escaped like the rest of the text).
    pub fn mentioning(text: &str, marks: &[crate::conversations::mentions::Mark]) -> Self {
        if marks.is_empty() {
            return Self::formatted(text);
        }
        Self(kaltalk_core::format::to_html_with(text, &mut |run, out| {
            crate::conversations::mentions::write_marked(run, marks, out)
        }))
    }
}

impl fmt::Display for SanitizedHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl HtmlSafe for SanitizedHtml {}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPLOIT: &str = "</script><form hx-post=/settings/team/transfer-ownership \
         hx-trigger=load><input name=user_id value=1></form><!-- & ' \u{2028}\u{2029}";

    #[test]
    fn script_json_cannot_end_the_script_block() {
        let embedded = ScriptJson::new(&[EXPLOIT]).expect("JSON").to_string();
        for forbidden in ["<", ">", "&", "'", "\u{2028}", "\u{2029}"] {
            assert!(
                !embedded.contains(forbidden),
                "{forbidden:?} left in {embedded}"
            );
        }
        let back: Vec<String> = serde_json::from_str(&embedded).expect("valid JSON");
        assert_eq!(back, [EXPLOIT]);
    }

    #[test]
    fn script_json_keeps_other_text() {
        let embedded = ScriptJson::new(&serde_json::json!({"a": "é \"q\" \\ /"}))
            .expect("JSON")
            .to_string();
        assert_eq!(embedded, r#"{"a":"é \"q\" \\ /"}"#);
    }

    #[test]
    fn sanitized_html_drops_scripts_and_htmx_attributes() {
        let html = SanitizedHtml::email(
            "<p hx-post=\"/settings/team/transfer-ownership\" hx-trigger=\"load\" \
             onclick=\"x()\">Hi</p><script>alert(1)</script><form><input></form>",
        )
        .to_string();
        assert_eq!(html, "<p>Hi</p>");
    }

    #[test]
    fn formatted_text_is_escaped_and_keeps_its_formatting_in_a_template() {
        #[derive(askama::Template)]
        #[template(
            source = "<div>{{ crate::web::embed::SanitizedHtml::formatted(text) }}</div>",
            ext = "html"
        )]
        struct Page<'a> {
            text: &'a str,
        }
        let page = askama::Template::render(&Page {
            text: "**Hi** <script>alert(1)</script> [x](javascript:alert(1))",
        })
        .expect("render");
        assert_eq!(
            page,
            "<div><p><strong>Hi</strong> &lt;script&gt;alert(1)&lt;/script&gt; \
             [x](javascript:alert(1))</p></div>"
        );
    }

    /// `|safe` would write a string unescaped whatever it holds; the types above are the
    /// only way to do that.
    #[test]
    fn no_template_uses_the_safe_filter() {
        fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("templates") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    visit(&path, found);
                } else if std::fs::read_to_string(&path)
                    .expect("a template")
                    .replace(' ', "")
                    .contains("|safe")
                {
                    found.push(path.display().to_string());
                }
            }
        }
        let mut found = Vec::new();
        visit(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &mut found,
        );
        assert!(found.is_empty(), "templates using |safe: {found:?}");
    }
}
