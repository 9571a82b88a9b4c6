//! Light formatting for messages, the same in the inbox, the widget and outbound email:
//! `**bold**`, `*italic*` / `_italic_`, `` `code` ``, `[text](https://…)` and bare
//! http(s) links, `- ` and `1. ` lists, paragraphs and line breaks. Nothing else of
//! Markdown: no HTML passes through, no headings, images or quotes, so an email's `>`
//! history or a visitor's `#` stay as they were written.
//!
//! Text is parsed once to a small tree, then written as HTML (everything escaped, links
//! only to http, https and mailto) or as plain text (email text parts, previews). The
//! widget's `chat.js` ports the same rules; `tests/format_vectors.json` holds the cases
//! both must render identically.

/// A paragraph or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Lines shown with line breaks between them.
    Paragraph(Vec<Line>),
    List {
        kind: ListKind,
        items: Vec<Line>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Bullet,
    /// Numbered from `start` (the first item's number).
    Ordered {
        start: u32,
    },
}

pub type Line = Vec<Inline>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Code(String),
    Strong(Vec<Inline>),
    Emphasis(Vec<Inline>),
    /// `url` is always http, https or mailto.
    Link {
        url: String,
        children: Vec<Inline>,
    },
}

/// Emphasis nested deeper than this stays literal: real messages never need more, and
/// the renderers recurse once per level.
pub const MAX_NESTING: usize = 4;

/// The blocks of `text`. Lines are trimmed; a blank line ends a paragraph; list items of
/// one kind form one list even with blank lines between them; any other line ends it.
pub fn parse(text: &str) -> Vec<Block> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut blocks: Vec<Block> = Vec::new();
    let mut paragraph: Vec<Line> = Vec::new();
    for line in text.split('\n').map(str::trim) {
        if line.is_empty() {
            flush(&mut blocks, &mut paragraph);
            continue;
        }
        let Some((kind, content)) = list_item(line) else {
            paragraph.push(inline(line));
            continue;
        };
        flush(&mut blocks, &mut paragraph);
        match blocks.last_mut() {
            Some(Block::List { kind: open, items }) if same_kind(*open, kind) => {
                items.push(inline(content));
            }
            _ => blocks.push(Block::List {
                kind,
                items: vec![inline(content)],
            }),
        }
    }
    flush(&mut blocks, &mut paragraph);
    blocks
}

fn flush(blocks: &mut Vec<Block>, paragraph: &mut Vec<Line>) {
    if !paragraph.is_empty() {
        blocks.push(Block::Paragraph(std::mem::take(paragraph)));
    }
}

fn same_kind(a: ListKind, b: ListKind) -> bool {
    matches!(
        (a, b),
        (ListKind::Bullet, ListKind::Bullet) | (ListKind::Ordered { .. }, ListKind::Ordered { .. })
    )
}

/// `- item` or `12. item` (a trimmed line): the kind and the item's text.
fn list_item(line: &str) -> Option<(ListKind, &str)> {
    if let Some(rest) = line.strip_prefix('-') {
        return starts_with_space(rest).map(|content| (ListKind::Bullet, content));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = line[digits..].strip_prefix('.')?;
    let content = starts_with_space(rest)?;
    let start = line[..digits].parse().ok()?;
    Some((ListKind::Ordered { start }, content))
}

/// The text after at least one space or tab, if there is any.
fn starts_with_space(rest: &str) -> Option<&str> {
    let content = rest.trim_start_matches([' ', '\t']);
    (content.len() < rest.len() && !content.is_empty()).then_some(content)
}

/// What a line is scanned into before emphasis is matched.
enum Piece {
    Done(Inline, usize),
    /// A run of `*`, `**` or `_` that may open or close emphasis.
    Delim {
        ch: char,
        len: usize,
        open: bool,
        close: bool,
    },
}

fn inline(line: &str) -> Line {
    let chars: Vec<char> = line.chars().collect();
    inline_chars(&chars, true)
}

fn inline_chars(chars: &[char], links: bool) -> Line {
    let ahead = links.then(|| Ahead::new(chars));
    let mut pieces: Vec<Piece> = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            let run = run_length(chars, i);
            match closing_run(chars, i + run, run) {
                Some(end) => {
                    push_text(&mut pieces, &mut text);
                    let code = chars[i + run..end].iter().collect();
                    pieces.push(Piece::Done(Inline::Code(code), 0));
                    i = end + run;
                }
                None => {
                    text.extend(&chars[i..i + run]);
                    i += run;
                }
            }
            continue;
        }
        if links && let Some(end) = bare_link_end(chars, i) {
            push_text(&mut pieces, &mut text);
            let url: String = chars[i..end].iter().collect();
            let children = vec![Inline::Text(url.clone())];
            pieces.push(Piece::Done(Inline::Link { url, children }, 0));
            i = end;
            continue;
        }
        if let Some(ahead) = &ahead
            && c == '['
            && let Some((label_end, url_end)) = link_at(chars, ahead, i)
        {
            push_text(&mut pieces, &mut text);
            let children = inline_chars(&chars[i + 1..label_end], false);
            let url = chars[label_end + 2..url_end].iter().collect();
            let depth = children.iter().map(depth_of).max().unwrap_or(0);
            pieces.push(Piece::Done(Inline::Link { url, children }, depth));
            i = url_end + 1;
            continue;
        }
        if c == '*' || c == '_' {
            let run = run_length(chars, i);
            let before = i.checked_sub(1).map(|p| chars[p]);
            let after = chars.get(i + run).copied();
            if (c == '*' && run <= 2) || (c == '_' && run == 1) {
                // As in CommonMark: an opener is followed by a non-space, a closer follows
                // one; `_` also needs a word boundary, so snake_case stays as written.
                let open = after.is_some_and(|a| !a.is_whitespace())
                    && (c == '*' || !before.is_some_and(char::is_alphanumeric));
                let close = before.is_some_and(|b| !b.is_whitespace())
                    && (c == '*' || !after.is_some_and(char::is_alphanumeric));
                if open || close {
                    push_text(&mut pieces, &mut text);
                    pieces.push(Piece::Delim {
                        ch: c,
                        len: run,
                        open,
                        close,
                    });
                    i += run;
                    continue;
                }
            }
            text.extend(&chars[i..i + run]);
            i += run;
            continue;
        }
        text.push(c);
        i += 1;
    }
    push_text(&mut pieces, &mut text);
    resolve(pieces)
}

fn push_text(pieces: &mut Vec<Piece>, text: &mut String) {
    if !text.is_empty() {
        pieces.push(Piece::Done(Inline::Text(std::mem::take(text)), 0));
    }
}

fn run_length(chars: &[char], i: usize) -> usize {
    chars[i..].iter().take_while(|&&c| c == chars[i]).count()
}

/// Where the next run of exactly `len` backticks starts, from `from`.
fn closing_run(chars: &[char], from: usize, len: usize) -> Option<usize> {
    let mut j = from;
    while j < chars.len() {
        if chars[j] == '`' {
            let run = run_length(chars, j);
            if run == len {
                return Some(j);
            }
            j += run;
        } else {
            j += 1;
        }
    }
    None
}

fn starts_with(chars: &[char], i: usize, prefix: &str) -> bool {
    (i..)
        .zip(prefix.chars())
        .all(|(j, p)| chars.get(j).map(char::to_ascii_lowercase) == Some(p))
}

/// Characters a link never contains (they end a bare link).
fn ends_link(c: char) -> bool {
    c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`')
}

/// The end of a bare `http://` or `https://` link at `i`: up to a space, without trailing
/// punctuation (a `)` stays when it closes a `(` inside the link).
fn bare_link_end(chars: &[char], i: usize) -> Option<usize> {
    let scheme = if starts_with(chars, i, "https://") {
        8
    } else if starts_with(chars, i, "http://") {
        7
    } else {
        return None;
    };
    let mut end = i;
    while end < chars.len() && !ends_link(chars[end]) {
        end += 1;
    }
    let count = |c: char| chars[i..end].iter().filter(|&&x| x == c).count();
    let (mut opens, mut closes) = (count('('), count(')'));
    while end > i + scheme {
        match chars[end - 1] {
            ')' if opens >= closes => break,
            ')' => closes -= 1,
            '(' => opens -= 1,
            '.' | ',' | ':' | ';' | '!' | '?' | '\'' | '[' | ']' | '*' | '_' => {}
            _ => break,
        }
        end -= 1;
    }
    (end > i + scheme).then_some(end)
}

/// `[label](url)` at `i`: where the label ends (its `]`) and where the url ends (its `)`).
/// Only http, https and mailto urls make a link; anything else stays text.
fn link_at(chars: &[char], ahead: &Ahead, i: usize) -> Option<(usize, usize)> {
    let label_end = ahead.bracket[i + 1];
    if label_end == chars.len() || label_end == i + 1 || chars.get(label_end + 1) != Some(&'(') {
        return None;
    }
    let url_start = label_end + 2;
    let url_end = ahead.paren[url_start];
    if url_end == chars.len() || ahead.not_in_link[url_start] < url_end {
        return None;
    }
    let scheme = ["https://", "http://", "mailto:"]
        .into_iter()
        .find(|s| starts_with(chars, url_start, s))?;
    (url_end - url_start > scheme.len()).then_some((label_end, url_end))
}

/// For each position of a line, where the next `]`, `)` and character no link holds are
/// (the length when there is none): a line of many `[` is then scanned once, not once
/// per `[`.
struct Ahead {
    bracket: Vec<usize>,
    paren: Vec<usize>,
    not_in_link: Vec<usize>,
}

impl Ahead {
    fn new(chars: &[char]) -> Self {
        let n = chars.len();
        let mut ahead = Ahead {
            bracket: vec![n; n + 1],
            paren: vec![n; n + 1],
            not_in_link: vec![n; n + 1],
        };
        for (i, &c) in chars.iter().enumerate().rev() {
            ahead.bracket[i] = if c == ']' { i } else { ahead.bracket[i + 1] };
            ahead.paren[i] = if c == ')' { i } else { ahead.paren[i + 1] };
            ahead.not_in_link[i] = if ends_link(c) || c.is_control() {
                i
            } else {
                ahead.not_in_link[i + 1]
            };
        }
        ahead
    }
}

fn depth_of(node: &Inline) -> usize {
    match node {
        Inline::Strong(children) | Inline::Emphasis(children) => {
            1 + children.iter().map(depth_of).max().unwrap_or(0)
        }
        Inline::Link { children, .. } => children.iter().map(depth_of).max().unwrap_or(0),
        Inline::Text(_) | Inline::Code(_) => 0,
    }
}

/// Matches each closing run with the nearest open run of the same kind; runs left over
/// (or crossed by a match) are text.
fn resolve(pieces: Vec<Piece>) -> Line {
    let mut out: Vec<Piece> = Vec::new();
    for piece in pieces {
        let Piece::Delim {
            ch,
            len,
            open,
            close,
        } = piece
        else {
            out.push(piece);
            continue;
        };
        let opener = close
            .then(|| {
                out.iter().rposition(
                    |p| matches!(p, Piece::Delim { ch: c, len: l, open: true, .. } if *c == ch && *l == len),
                )
            })
            .flatten();
        if let Some(at) = opener {
            let inner = out.split_off(at + 1);
            let depth = 1 + inner
                .iter()
                .map(|p| match p {
                    Piece::Done(_, depth) => *depth,
                    Piece::Delim { .. } => 0,
                })
                .max()
                .unwrap_or(0);
            if depth <= MAX_NESTING {
                out.pop();
                let children = finish(inner);
                let node = if len == 2 {
                    Inline::Strong(children)
                } else {
                    Inline::Emphasis(children)
                };
                out.push(Piece::Done(node, depth));
                continue;
            }
            out.extend(inner);
        }
        out.push(Piece::Delim {
            ch,
            len,
            open,
            close: false,
        });
    }
    finish(out)
}

/// Pieces as inlines: open runs become their text, neighbouring texts are joined.
fn finish(pieces: Vec<Piece>) -> Line {
    let mut line: Line = Vec::new();
    for piece in pieces {
        let node = match piece {
            Piece::Done(node, _) => node,
            Piece::Delim { ch, len, .. } => Inline::Text(ch.to_string().repeat(len)),
        };
        match (line.last_mut(), node) {
            (Some(Inline::Text(last)), Inline::Text(more)) => last.push_str(&more),
            (_, node) => line.push(node),
        }
    }
    line
}

/// `text` as HTML: escaped, with only `p`, `br`, `ul`, `ol`, `li`, `strong`, `em`,
/// `code` and `a` (http, https or mailto; opened in a new tab without the opener).
pub fn to_html(text: &str) -> String {
    to_html_with(text, &mut escape_into)
}

/// [`to_html`] with the plain runs of text (not code, not link targets) written by
/// `write_text`, which must escape what it writes (the inbox marks @mentions this way).
pub fn to_html_with(text: &str, write_text: &mut dyn FnMut(&str, &mut String)) -> String {
    let mut out = String::new();
    for block in parse(text) {
        match block {
            Block::Paragraph(lines) => {
                out.push_str("<p>");
                for (n, line) in lines.iter().enumerate() {
                    if n > 0 {
                        out.push_str("<br>");
                    }
                    inline_html(line, &mut out, write_text);
                }
                out.push_str("</p>");
            }
            Block::List { kind, items } => {
                let (open, close) = match kind {
                    ListKind::Bullet => ("<ul>".to_owned(), "</ul>"),
                    ListKind::Ordered { start: 1 } => ("<ol>".to_owned(), "</ol>"),
                    ListKind::Ordered { start } => (format!("<ol start=\"{start}\">"), "</ol>"),
                };
                out.push_str(&open);
                for item in &items {
                    out.push_str("<li>");
                    inline_html(item, &mut out, write_text);
                    out.push_str("</li>");
                }
                out.push_str(close);
            }
        }
    }
    out
}

fn inline_html(nodes: &[Inline], out: &mut String, write_text: &mut dyn FnMut(&str, &mut String)) {
    for node in nodes {
        match node {
            Inline::Text(text) => write_text(text, out),
            Inline::Code(code) => {
                out.push_str("<code>");
                escape_into(code, out);
                out.push_str("</code>");
            }
            Inline::Strong(children) => {
                out.push_str("<strong>");
                inline_html(children, out, write_text);
                out.push_str("</strong>");
            }
            Inline::Emphasis(children) => {
                out.push_str("<em>");
                inline_html(children, out, write_text);
                out.push_str("</em>");
            }
            Inline::Link { url, children } => {
                out.push_str("<a href=\"");
                escape_into(url, out);
                out.push_str("\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">");
                inline_html(children, out, write_text);
                out.push_str("</a>");
            }
        }
    }
}

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `text` as plain text: markers gone, a link as `label (url)` unless the label is the
/// url, list items as `- ` / `1. `, blocks separated by a blank line.
pub fn to_plain(text: &str) -> String {
    let mut blocks: Vec<String> = Vec::new();
    for block in parse(text) {
        let lines: Vec<String> = match block {
            Block::Paragraph(lines) => lines.iter().map(|l| inline_plain(l)).collect(),
            Block::List { kind, items } => items
                .iter()
                .enumerate()
                .map(|(n, item)| match kind {
                    ListKind::Bullet => format!("- {}", inline_plain(item)),
                    ListKind::Ordered { start } => {
                        format!("{}. {}", u64::from(start) + n as u64, inline_plain(item))
                    }
                })
                .collect(),
        };
        blocks.push(lines.join("\n"));
    }
    blocks.join("\n\n")
}

fn inline_plain(nodes: &[Inline]) -> String {
    let mut out = String::new();
    for node in nodes {
        match node {
            Inline::Text(text) | Inline::Code(text) => out.push_str(text),
            Inline::Strong(children) | Inline::Emphasis(children) => {
                out.push_str(&inline_plain(children));
            }
            Inline::Link { url, children } => {
                let label = inline_plain(children);
                let shown = url.strip_prefix("mailto:").unwrap_or(url);
                out.push_str(&label);
                if label != *url && label != shown {
                    out.push_str(&format!(" ({shown})"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_parsed_into_blocks() {
        assert_eq!(
            parse("Hi **Ada**\nsee:\n\n- one\n- two"),
            vec![
                Block::Paragraph(vec![
                    vec![
                        Inline::Text("Hi ".into()),
                        Inline::Strong(vec![Inline::Text("Ada".into())])
                    ],
                    vec![Inline::Text("see:".into())],
                ]),
                Block::List {
                    kind: ListKind::Bullet,
                    items: vec![
                        vec![Inline::Text("one".into())],
                        vec![Inline::Text("two".into())]
                    ],
                },
            ]
        );
    }

    #[test]
    fn nesting_is_capped() {
        let deep = format!("{}x{}", "*a **b ".repeat(10), " b** a*".repeat(10));
        fn deepest(line: &[Inline]) -> usize {
            line.iter().map(depth_of).max().unwrap_or(0)
        }
        let blocks = parse(&deep);
        let Block::Paragraph(lines) = &blocks[0] else {
            panic!("a paragraph");
        };
        assert!(deepest(&lines[0]) <= MAX_NESTING, "{lines:?}");
        assert!(to_html(&deep).contains("<em>"));
    }

    #[test]
    fn plain_text_keeps_link_targets_and_list_numbers() {
        assert_eq!(
            to_plain("**Hi** [docs](https://a.test/x) and https://b.test\n\n3. one\n4. two"),
            "Hi docs (https://a.test/x) and https://b.test\n\n3. one\n4. two"
        );
        assert_eq!(to_plain("[ada@b.test](mailto:ada@b.test)"), "ada@b.test");
    }
}
