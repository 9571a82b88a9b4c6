//! Chunks follow the headings and fit the budget.

use kaltalk_ai::chunk::{Chunk, ChunkInput, chunk_markdown};

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

fn input(markdown: &str) -> ChunkInput {
    ChunkInput {
        title: Some("Help".to_owned()),
        url: Some("https://help.acme.test/guide".to_owned()),
        markdown: markdown.to_owned(),
    }
}

fn paths(chunks: &[Chunk]) -> Vec<Vec<&str>> {
    chunks
        .iter()
        .map(|chunk| chunk.heading_path.iter().map(String::as_str).collect())
        .collect()
}

#[test]
fn each_chunk_carries_the_headings_above_it() {
    let markdown = "\
Intro before any heading.

# Billing

About billing.

## Invoices

Invoices are monthly.

### Downloading

Use the dashboard.

## Refunds

Within 30 days.

# Setup
Setext heading
--------------

Under a setext heading.
";

    let chunks = chunk_markdown(&input(markdown), 100, &words);

    assert_eq!(
        paths(&chunks),
        vec![
            vec![],
            vec!["Billing"],
            vec!["Billing", "Invoices"],
            vec!["Billing", "Invoices", "Downloading"],
            vec!["Billing", "Refunds"],
            vec!["Setup", "Setext heading"],
        ]
    );
    let texts: Vec<&str> = chunks.iter().map(|chunk| chunk.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "Intro before any heading.",
            "About billing.",
            "Invoices are monthly.",
            "Use the dashboard.",
            "Within 30 days.",
            "Under a setext heading.",
        ]
    );
}

#[test]
fn chunks_are_numbered_in_order_and_carry_title_and_url() {
    let markdown = "# A\n\none\n\n# B\n\ntwo\n\n# C\n\nthree";

    let chunks = chunk_markdown(&input(markdown), 100, &words);

    assert_eq!(
        chunks.iter().map(|chunk| chunk.ordinal).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(
        chunks
            .iter()
            .map(|chunk| chunk.text.as_str())
            .collect::<Vec<_>>(),
        vec!["one", "two", "three"]
    );
    for chunk in &chunks {
        assert_eq!(chunk.title.as_deref(), Some("Help"));
        assert_eq!(chunk.url.as_deref(), Some("https://help.acme.test/guide"));
    }
}

#[test]
fn long_sections_split_at_sentences_within_the_budget() {
    let sentence =
        |n: usize| format!("Sentence number {n} explains one more detail of the refund rules.");
    let paragraph = (0..30).map(sentence).collect::<Vec<_>>().join(" ");
    let markdown = format!("# Refunds\n\n{paragraph}\n\n{paragraph}\n\n# Next\n\nShort.");

    let chunks = chunk_markdown(&input(&markdown), 40, &words);

    let refunds: Vec<&Chunk> = chunks
        .iter()
        .filter(|chunk| chunk.heading_path == ["Refunds"])
        .collect();
    assert!(
        refunds.len() >= 2 * 30 * 11 / 40,
        "only {} chunks",
        refunds.len()
    );
    for chunk in &chunks {
        assert!(
            words(&chunk.text) <= 40,
            "{} words: {}",
            words(&chunk.text),
            chunk.text
        );
        assert!(
            chunk.text.ends_with('.'),
            "split mid-sentence: {}",
            chunk.text
        );
    }
    // Nothing lost, nothing repeated, order kept.
    let rejoined: Vec<&str> = refunds
        .iter()
        .flat_map(|chunk| chunk.text.split_whitespace())
        .collect();
    let both = format!("{paragraph} {paragraph}");
    let original: Vec<&str> = both.split_whitespace().collect();
    assert_eq!(rejoined, original);
    assert_eq!(
        chunks.last().map(|chunk| chunk.text.as_str()),
        Some("Short.")
    );
}

#[test]
fn a_chunk_never_spans_two_sections_even_when_both_would_fit() {
    let markdown = "# One\n\nFirst.\n\n## Two\n\nSecond.\n\n# Three\n\nThird.";

    let chunks = chunk_markdown(&input(markdown), 1000, &words);

    assert_eq!(chunks.len(), 3);
    for chunk in &chunks {
        assert!(!chunk.text.contains('#'), "a heading leaked into {chunk:?}");
        assert_eq!(words(&chunk.text), 1);
    }
}

#[test]
fn small_pieces_of_one_section_merge() {
    let markdown = "# FAQ\n\nShort one.\n\nShort two.\n\n- item a\n- item b\n\nShort three.";

    let chunks = chunk_markdown(&input(markdown), 50, &words);

    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0].text,
        "Short one.\n\nShort two.\n\n- item a\n- item b\n\nShort three."
    );
}

#[test]
fn empty_sections_vanish_but_keep_their_place_in_the_path() {
    let markdown = "# Empty\n\n# Parent\n\n## Child\n\nOnly text.\n\n## Also empty\n   \n";

    let chunks = chunk_markdown(&input(markdown), 100, &words);

    assert_eq!(paths(&chunks), vec![vec!["Parent", "Child"]]);
}

#[test]
fn hashes_in_code_and_quotes_are_not_headings() {
    let markdown =
        "# Shell\n\n```sh\n# install it\nnpm i widget\n```\n\n> # quoted\n> text\n\nAfter.";

    let chunks = chunk_markdown(&input(markdown), 100, &words);

    assert_eq!(paths(&chunks), vec![vec!["Shell"]]);
    assert!(chunks[0].text.contains("# install it"));
    assert!(chunks[0].text.ends_with("After."));
}

#[test]
fn heading_text_loses_its_markup() {
    let markdown = "# The `widget` *snippet* and [docs](https://x.test)\n\nBody.";

    let chunks = chunk_markdown(&input(markdown), 100, &words);

    assert_eq!(paths(&chunks), vec![vec!["The widget snippet and docs"]]);
}

#[test]
fn no_markdown_no_chunks() {
    assert!(chunk_markdown(&input(""), 100, &words).is_empty());
    assert!(chunk_markdown(&input("# Only a heading"), 100, &words).is_empty());
}
