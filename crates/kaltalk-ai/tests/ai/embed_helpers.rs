//! Shared test setup: the real embedding model and its reference vectors.

use std::path::PathBuf;
use std::sync::OnceLock;

use kaltalk_ai::embed::{MODEL_DIR_ENV, MiniLm};
use serde::Deserialize;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `KALTALK_EMBEDDING_MODEL_DIR`, or where scripts/fetch-model.sh puts the model.
pub fn model_dir() -> PathBuf {
    match std::env::var_os(MODEL_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("models/all-MiniLM-L6-v2"),
    }
}

/// The real all-MiniLM-L6-v2, loaded once per test binary. A missing model fails the
/// test: these tests are the proof that the local embedder works, never to be skipped.
pub fn model() -> MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = model_dir();
            MiniLm::load(&dir).unwrap_or_else(|err| {
                panic!(
                    "cannot load the test embedding model from {}: {err}\n\
                     Run `bash scripts/fetch-model.sh` (the test command does) or set \
                     {MODEL_DIR_ENV}.",
                    dir.display()
                )
            })
        })
        .clone()
}

#[derive(Deserialize)]
pub struct Reference {
    pub items: Vec<ReferenceItem>,
}

#[derive(Deserialize)]
pub struct ReferenceItem {
    pub text: String,
    pub tokens_after_truncation: usize,
    pub embedding: Vec<f32>,
}

/// The vectors sentence-transformers made for eight texts (shared/eval, beside the
/// repository).
pub fn reference() -> Reference {
    let path = workspace_root().join("../shared/eval/minilm_reference.json");
    let text =
        std::fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|err| panic!("parsing {}: {err}", path.display()))
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
