//! Guards for parsing HTML that someone else wrote (received email, crawled pages).

/// Deeper than this, HTML is not parsed: html5ever's work grows with the square of the
/// nesting (100,000 nested `<div>`s took minutes), and no real email or web page nests this deep.
pub const MAX_NESTING: usize = 500;

/// Elements that never have a closing tag, so they add no nesting.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// Elements whose end tag may be left out (`<li>one<li>two`). They are not counted: an
/// unclosed one is closed by its next sibling, and they cannot nest without an element
/// between them (`<ul>`, `<table>`) that is counted.
const OPTIONAL_END_TAG: &[&str] = &[
    "html", "head", "body", "p", "li", "dt", "dd", "rt", "rp", "optgroup", "option", "colgroup",
    "caption", "thead", "tbody", "tfoot", "tr", "td", "th",
];

/// Whether the HTML nests deeper than [`MAX_NESTING`], by a linear scan of its tags (an
/// upper bound: an element left unclosed that the parser would close counts as nesting).
pub fn too_deeply_nested(html: &str) -> bool {
    let bytes = html.as_bytes();
    let mut depth: usize = 0;
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'<') {
        i += offset + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let start = if closing { i + 1 } else { i };
        let name_len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            continue; // a comment, a doctype, or a stray `<`
        }
        let name = html[start..start + name_len].to_ascii_lowercase();
        let self_closing = bytes[start + name_len..]
            .iter()
            .position(|&b| b == b'>')
            .is_some_and(|end| end > 0 && bytes[start + name_len + end - 1] == b'/');
        if OPTIONAL_END_TAG.contains(&name.as_str()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if !self_closing && !VOID_ELEMENTS.contains(&name.as_str()) {
            depth += 1;
            if depth > MAX_NESTING {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_html_is_not_too_deep_and_a_nesting_bomb_is() {
        let ordinary = format!(
            "<html><body>{}</body></html>",
            "<div><p>Hello<br>there <img src=\"cid:x\"></p></div>".repeat(2000)
        );
        assert!(!too_deeply_nested(&ordinary));
        let bomb = "<div>".repeat(MAX_NESTING + 1);
        assert!(too_deeply_nested(&bomb));
        let closed = "<div>".repeat(MAX_NESTING) + &"</div>".repeat(MAX_NESTING) + "<div></div>";
        assert!(!too_deeply_nested(&closed));
    }

    #[test]
    fn end_tags_html_lets_you_leave_out_are_not_nesting() {
        let long_list = format!(
            "<ul>{}</ul>",
            "<li>an item<p>with a paragraph".repeat(5_000)
        );
        assert!(!too_deeply_nested(&long_list));
        let table = format!("<table>{}</table>", "<tr><td>a<td>b".repeat(5_000));
        assert!(!too_deeply_nested(&table));
        // Nested lists still count, by their <ul>s.
        let nested_lists = "<ul><li>".repeat(MAX_NESTING + 1);
        assert!(too_deeply_nested(&nested_lists));
    }
}
