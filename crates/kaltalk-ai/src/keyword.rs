//! Keyword retrieval: BM25 over an organization's chunks with tantivy, in memory. The
//! index is derived from the store (rebuilt when the knowledge version changes), so every
//! instance ranks the same way.

use std::sync::Arc;

use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::query::QueryParser;
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, TantivyDocument, doc};

const ANALYZER: &str = "kaltalk_en";
const POSITION: &str = "position";

/// What the index needs of a chunk: its position in the caller's list, and its words.
pub struct IndexedText<'a> {
    pub title: &'a str,
    pub heading_path: &'a str,
    pub text: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("keyword index: {0}")]
pub struct KeywordError(#[from] tantivy::TantivyError);

pub struct KeywordIndex {
    index: Index,
    reader: IndexReader,
    position: Field,
    title: Field,
    body: Field,
}

/// English function words, and the words questions are made of ("how many", "can I"):
/// they carry no topic, so they neither rank passages nor count toward confidence.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing",
    "for", "from", "get", "got", "had", "has", "have", "having", "he", "her", "here", "hi",
    "hello", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "know",
    "let", "like", "many", "may", "me", "might", "more", "much", "must", "my", "need", "no", "not",
    "now", "of", "on", "or", "our", "please", "she", "should", "so", "some", "such", "tell",
    "than", "thank", "thanks", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "to", "until", "up", "us", "want", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "why", "will", "with", "would", "you", "your",
];

fn analyzer() -> TextAnalyzer {
    let stop = StopWordFilter::remove(STOP_WORDS.iter().map(|w| (*w).to_owned()));
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop)
        .filter(Stemmer::new(tantivy::tokenizer::Language::English))
        .build()
}

/// The analyzed terms of `text`, as the index sees them.
pub fn terms(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// How much of the question a passage covers: the share of the question's distinct terms
/// that appear in it (0 to 1). Readable, and comparable across questions, unlike BM25.
pub fn coverage(question: &str, passage: &str) -> f32 {
    let mut asked = terms(question);
    asked.sort();
    asked.dedup();
    if asked.is_empty() {
        return 0.0;
    }
    let present: std::collections::HashSet<String> = terms(passage).into_iter().collect();
    asked.iter().filter(|t| present.contains(*t)).count() as f32 / asked.len() as f32
}

impl KeywordIndex {
    pub fn build(chunks: &[IndexedText<'_>]) -> Result<Self, KeywordError> {
        let mut schema = Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let text_options = TextOptions::default().set_indexing_options(indexing);
        // FAST too: filtering by source reads it as a column.
        let position = schema.add_u64_field(POSITION, STORED | FAST);
        let title = schema.add_text_field("title", text_options.clone());
        let body = schema.add_text_field("body", text_options);
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(ANALYZER, analyzer());
        let mut writer = index.writer_with_num_threads(1, 15_000_000)?;
        for (n, chunk) in chunks.iter().enumerate() {
            let heading = format!("{} {}", chunk.title, chunk.heading_path);
            writer
                .add_document(doc!(position => n as u64, title => heading, body => chunk.text))?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(Self {
            index,
            reader,
            position,
            title,
            body,
        })
    }

    /// The best `limit` chunks for `query` as (position in the build list, BM25 score).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<(usize, f32)>, KeywordError> {
        self.search_filtered(query, limit, None)
    }

    /// As [`KeywordIndex::search`], keeping only the chunks `allowed` (indexed by
    /// position) marks `true`. Filtered inside the collector, so the best `limit` allowed
    /// chunks come back however many others rank above them.
    pub fn search_filtered(
        &self,
        query: &str,
        limit: usize,
        allowed: Option<Arc<[bool]>>,
    ) -> Result<Vec<(usize, f32)>, KeywordError> {
        let words = terms(query).join(" ");
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let mut parser = QueryParser::for_index(&self.index, vec![self.title, self.body]);
        parser.set_field_boost(self.title, 0.5);
        let (parsed, _) = parser.parse_query_lenient(&words);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(limit.max(1)).order_by_score();
        let hits = match allowed {
            None => searcher.search(&parsed, &top)?,
            Some(allowed) => {
                let keep =
                    move |position: u64| allowed.get(position as usize).copied().unwrap_or(false);
                searcher.search(&parsed, &FilterCollector::new(POSITION.into(), keep, top))?
            }
        };
        let mut out = Vec::with_capacity(hits.len());
        for (score, address) in hits {
            let document: TantivyDocument = searcher.doc(address)?;
            if let Some(position) = document.get_first(self.position).and_then(|v| v.as_u64()) {
                out.push((position as usize, score));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk<'a>(title: &'a str, text: &'a str) -> IndexedText<'a> {
        IndexedText {
            title,
            heading_path: "",
            text,
        }
    }

    #[test]
    fn bm25_ranks_the_passage_about_the_question_first() {
        let chunks = [
            chunk(
                "Shipping",
                "We ship to every country in Europe within three working days.",
            ),
            chunk(
                "Returns",
                "Returns are free within 30 days. Refunds reach your card in 5 to 7 days.",
            ),
            chunk(
                "Warranty",
                "Every device has a two-year warranty covering manufacturing defects.",
            ),
        ];
        let index = KeywordIndex::build(&chunks).expect("index");
        let hits = index
            .search("How long does a refund take?", 3)
            .expect("search");
        assert_eq!(hits.first().map(|h| h.0), Some(1), "{hits:?}");
        let hits = index.search("warranties", 3).expect("search");
        assert_eq!(hits.first().map(|h| h.0), Some(2), "stemming: {hits:?}");
        assert!(
            index.search("the of and", 3).expect("search").is_empty(),
            "stop words alone match nothing"
        );
        let only_shipping: Arc<[bool]> = Arc::from([true, false, false]);
        let hits = index
            .search_filtered("refund days", 3, Some(only_shipping))
            .expect("search");
        assert_eq!(
            hits.iter().map(|h| h.0).collect::<Vec<_>>(),
            [0],
            "the filter keeps the allowed chunk though another ranks higher"
        );
    }

    #[test]
    fn coverage_is_the_share_of_question_terms_present() {
        assert_eq!(coverage("refund days", "Refunds take 5 days."), 1.0);
        assert_eq!(coverage("refund warranty", "Refunds take 5 days."), 0.5);
        assert_eq!(coverage("the of", "anything"), 0.0);
    }
}
