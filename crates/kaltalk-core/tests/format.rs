//! Light formatting: the shared vectors (the widget's renderer is checked against the same
//! file), and properties over random text: whatever is typed, the HTML holds no markup but
//! the renderer's own, no link but http, https and mailto, and no text is lost.

use kaltalk_core::format::{to_html, to_plain};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(serde::Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    input: String,
    html: String,
    text: Option<String>,
}

fn vectors() -> Vec<Vector> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/format_vectors.json");
    let json = std::fs::read_to_string(path).expect("format_vectors.json");
    serde_json::from_str::<Vectors>(&json)
        .expect("valid vectors")
        .vectors
}

#[test]
fn every_vector_renders_as_written() {
    let mut failures = Vec::new();
    for vector in vectors() {
        let html = to_html(&vector.input);
        if html != vector.html {
            failures.push(format!(
                "{}: html\n  got  {html}\n  want {}",
                vector.name, vector.html
            ));
        }
        if let Some(text) = &vector.text {
            let plain = to_plain(&vector.input);
            if plain != *text {
                failures.push(format!(
                    "{}: text\n  got  {plain:?}\n  want {text:?}",
                    vector.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Pieces that exercise every rule and every escape, joined at random.
const PIECES: &[&str] = &[
    "*",
    "**",
    "***",
    "_",
    "__",
    "`",
    "``",
    "[",
    "]",
    "(",
    ")",
    "](",
    "<",
    ">",
    "&",
    "\"",
    "'",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
    "- ",
    "1. ",
    "12. ",
    "a",
    "word",
    "é",
    "👍",
    "x_y",
    "https://",
    "http://a.test/",
    "https://b.test/p?q=1&r=2",
    "javascript:",
    "mailto:",
    "data:",
    "<script>",
    "</script>",
    "onerror=",
    "alert(1)",
    "<a href=",
    "&lt;",
    "\u{2028}",
    ".",
];

fn random_text(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..40);
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// The tags the renderer writes, as they appear in its output.
const OUR_TAGS: &[&str] = &[
    "<p>",
    "</p>",
    "<br>",
    "<ul>",
    "</ul>",
    "<ol>",
    "</ol>",
    "<li>",
    "</li>",
    "<strong>",
    "</strong>",
    "<em>",
    "</em>",
    "<code>",
    "</code>",
    "</a>",
];

/// `html` with each of our tags replaced by a space, and each link (checked) by its url.
fn strip_our_markup(html: &str) -> Result<String, String> {
    let mut rest = html.to_owned();
    while let Some(start) = rest.find("<a href=\"") {
        let after = &rest[start + 9..];
        let end = after.find('"').ok_or("unterminated href")?;
        let href = &after[..end];
        let lower = href.to_ascii_lowercase();
        if !(lower.starts_with("https://")
            || lower.starts_with("http://")
            || lower.starts_with("mailto:"))
        {
            return Err(format!("link to {href}"));
        }
        let tail = "\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">";
        if !after[end..].starts_with(tail) {
            return Err("link without rel/target".into());
        }
        rest = format!("{} {href} {}", &rest[..start], &after[end + tail.len()..]);
    }
    for ol in rest
        .match_indices("<ol start=\"")
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let end = rest[ol..].find("\">").ok_or("unterminated ol")? + ol;
        if !rest[ol + 11..end].bytes().all(|b| b.is_ascii_digit()) {
            return Err("ol start is not a number".into());
        }
        rest.replace_range(ol..end + 2, " ");
    }
    for tag in OUR_TAGS {
        rest = rest.replace(tag, " ");
    }
    Ok(rest)
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[test]
fn random_text_never_becomes_markup_and_loses_no_words() {
    let mut rng = StdRng::seed_from_u64(13);
    for _ in 0..20_000 {
        let input = random_text(&mut rng);
        let html = to_html(&input);
        let left =
            strip_our_markup(&html).unwrap_or_else(|e| panic!("{e} in {html:?} from {input:?}"));
        // Outside our own tags there is no markup at all: every `<`, `>` and quote the
        // person typed is escaped.
        assert!(
            !left.contains(['<', '>', '"']),
            "markup left in {html:?} from {input:?}"
        );
        // Every letter typed is still there (list numbers become the list's numbering).
        let letters = |s: &str| -> std::collections::HashMap<char, usize> {
            let mut counts = std::collections::HashMap::new();
            for c in s.chars().filter(|c| c.is_alphabetic()) {
                *counts.entry(c).or_insert(0) += 1;
            }
            counts
        };
        let plain = to_plain(&input);
        for (shown, typed, what) in [
            (letters(&unescape(&left)), letters(&input), "html"),
            // Plain text shows a mail link's address without its scheme.
            (
                letters(&plain),
                letters(&input.replace("mailto:", "")),
                "plain",
            ),
        ] {
            for (c, n) in &typed {
                assert!(
                    shown.get(c).copied().unwrap_or(0) >= *n,
                    "{what} lost {c:?}: {html:?} / {plain:?} from {input:?}"
                );
            }
        }
    }
}

#[test]
fn long_and_hostile_input_is_rendered_quickly() {
    let started = std::time::Instant::now();
    for input in [
        "*".repeat(10_000),
        "*a ".repeat(3_000),
        "**a ".repeat(3_000),
        "[".repeat(10_000),
        "[a](".repeat(3_000),
        "`".repeat(10_000),
        "` ``".repeat(3_000),
        format!("https://a.test/{}", "(".repeat(10_000)),
        format!("https://a.test/{}", ")".repeat(10_000)),
        "- a\n".repeat(3_000),
    ] {
        let html = to_html(&input);
        assert!(!html.is_empty());
        to_plain(&input);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
