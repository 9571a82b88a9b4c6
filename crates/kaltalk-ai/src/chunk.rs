//! Cutting a document's Markdown into chunks for the embedding model: one section at a
//! time, each chunk small enough for the model's window, each knowing where it sits.
//!
//! Two crates, two jobs. pulldown-cmark finds the sections: it knows a `#` in a code
//! block or a quote is no heading, and gives setext headings and heading text without
//! markup. text-splitter then fits each section to the token budget: it splits at the
//! largest Markdown unit that fits (block, then line, sentence, word) and packs small
//! neighbours together, which is the hard part to get right by hand. Giving it a
//! section at a time is what keeps a chunk from spanning two sections.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter};

/// A document on its way to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInput {
    pub title: Option<String>,
    pub url: Option<String>,
    pub markdown: String,
}

/// A piece of a document that the embedding model sees whole. `text` is the Markdown
/// of the piece alone: whether to prefix the title or heading path is the indexer's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the document, from 0.
    pub ordinal: usize,
    pub title: Option<String>,
    /// The headings above this chunk, outermost first; empty before the first heading.
    pub heading_path: Vec<String>,
    pub url: Option<String>,
    pub text: String,
}

/// Cuts `doc` into chunks of at most `max_tokens` by `count_tokens` (the embedding
/// model's tokenizer; leave room for its special tokens). A chunk never spans two
/// sections; empty sections give no chunk. Only a single unbreakable grapheme larger
/// than the budget can exceed it.
pub fn chunk_markdown(
    doc: &ChunkInput,
    max_tokens: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    let config = ChunkConfig::new(max_tokens.max(1))
        .with_sizer(Counter(count_tokens))
        .with_trim(true);
    let splitter = MarkdownSplitter::new(config);
    let mut chunks = Vec::new();
    for section in sections(&doc.markdown) {
        for text in splitter.chunks(section.body) {
            if text.trim().is_empty() {
                continue;
            }
            chunks.push(Chunk {
                ordinal: chunks.len(),
                title: doc.title.clone(),
                heading_path: section.heading_path.clone(),
                url: doc.url.clone(),
                text: text.to_owned(),
            });
        }
    }
    chunks
}

struct Counter<'a>(&'a dyn Fn(&str) -> usize);

impl ChunkSizer for Counter<'_> {
    fn size(&self, chunk: &str) -> usize {
        (self.0)(chunk)
    }
}

/// The text under one heading, up to the next heading of any level.
struct Section<'a> {
    heading_path: Vec<String>,
    body: &'a str,
}

fn sections(markdown: &str) -> Vec<Section<'_>> {
    let mut sections = Vec::new();
    let mut open_headings: Vec<(HeadingLevel, String)> = Vec::new();
    let mut body_start = 0;
    // Headings inside quotes and list items are content, not structure.
    let mut container_depth = 0usize;
    let mut heading: Option<(HeadingLevel, String)> = None;
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    for (event, range) in parser.into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) if container_depth == 0 => {
                sections.push(Section {
                    heading_path: path(&open_headings),
                    body: &markdown[body_start..range.start],
                });
                heading = Some((level, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, text)) = heading.take() {
                    while open_headings.last().is_some_and(|(open, _)| *open >= level) {
                        open_headings.pop();
                    }
                    open_headings
                        .push((level, text.split_whitespace().collect::<Vec<_>>().join(" ")));
                    body_start = range.end;
                }
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, heading)) = heading.as_mut() {
                    heading.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, heading)) = heading.as_mut() {
                    heading.push(' ');
                }
            }
            Event::Start(
                Tag::BlockQuote(_) | Tag::List(_) | Tag::Item | Tag::FootnoteDefinition(_),
            ) => {
                container_depth += 1;
            }
            Event::End(
                TagEnd::BlockQuote(_) | TagEnd::List(_) | TagEnd::Item | TagEnd::FootnoteDefinition,
            ) => {
                container_depth = container_depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    sections.push(Section {
        heading_path: path(&open_headings),
        body: &markdown[body_start..],
    });
    sections.retain(|section| !section.body.trim().is_empty());
    sections
}

fn path(open_headings: &[(HeadingLevel, String)]) -> Vec<String> {
    open_headings
        .iter()
        .map(|(_, text)| text.clone())
        .filter(|text| !text.is_empty())
        .collect()
}
