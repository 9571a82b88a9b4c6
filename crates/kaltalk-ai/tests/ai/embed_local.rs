//! The local embedder against vectors made by sentence-transformers itself.

use kaltalk_ai::embed::{EmbedError, Embedder, MAX_SEQUENCE_TOKENS, MiniLm};

use crate::embed_helpers::{max_abs_diff, model, model_dir, reference};

const TOLERANCE: f32 = 1e-4;

#[tokio::test]
async fn matches_the_sentence_transformers_reference_vectors() {
    let reference = reference();
    assert_eq!(reference.items.len(), 8);
    let embedder = Embedder::Local(model());

    let texts = reference.items.iter().map(|i| i.text.clone()).collect();
    let vectors = embedder.embed(texts).await.expect("embedding");

    assert_eq!(vectors.len(), reference.items.len());
    for (item, vector) in reference.items.iter().zip(&vectors) {
        assert_eq!(vector.len(), 384);
        let diff = max_abs_diff(vector, &item.embedding);
        assert!(diff <= TOLERANCE, "{:?}: off by {diff}", item.text);
    }
}

#[tokio::test]
async fn counts_word_pieces_like_the_reference_tokenizer() {
    let model = model();
    for item in reference().items {
        let with_specials = (model.count_tokens(&item.text) + 2).min(MAX_SEQUENCE_TOKENS);
        assert_eq!(
            with_specials, item.tokens_after_truncation,
            "{:?}",
            item.text
        );
    }
    assert_eq!(model.max_input_tokens(), 254);
}

#[tokio::test]
async fn text_over_256_tokens_is_cut_there() {
    let model = model();
    let long = reference()
        .items
        .into_iter()
        .find(|i| i.tokens_after_truncation == MAX_SEQUENCE_TOKENS)
        .expect("the reference has a text over 256 tokens");
    assert!(model.count_tokens(&long.text) > model.max_input_tokens());

    let alone = model
        .embed(vec![long.text.clone()])
        .await
        .expect("embedding");
    let longer = model
        .embed(vec![format!(
            "{} Nothing past the limit counts.",
            long.text
        )])
        .await
        .expect("embedding");

    assert!(max_abs_diff(&alone[0], &long.embedding) <= TOLERANCE);
    assert_eq!(alone[0], longer[0]);
}

#[tokio::test]
async fn a_batch_of_mixed_lengths_equals_one_by_one() {
    let model = model();
    // More than one micro-batch, lengths from empty to past the limit.
    let mut texts: Vec<String> = reference().items.into_iter().map(|i| i.text).collect();
    texts.extend([
        "Where is my parcel?".to_owned(),
        "Can I pay by bank transfer, or only by card? I'd rather not use PayPal.".to_owned(),
        "ok".to_owned(),
        "Shipping to Canada takes 8 to 12 business days; customs fees are paid on delivery."
            .repeat(3),
    ]);

    let batched = model.embed(texts.clone()).await.expect("embedding");
    for (text, vector) in texts.iter().zip(&batched) {
        let single = model.embed(vec![text.clone()]).await.expect("embedding");
        let diff = max_abs_diff(vector, &single[0]);
        assert!(diff <= 1e-5, "{text:?}: batched differs by {diff}");
    }
}

#[tokio::test]
async fn vectors_are_unit_length() {
    let vectors = model()
        .embed(vec!["a".to_owned(), "Where is my parcel?".to_owned()])
        .await
        .expect("embedding");
    for vector in vectors {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[tokio::test]
async fn the_local_embedder_names_its_model() {
    let embedder = Embedder::Local(model());
    let dir_name = model_dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("a model dir with a name");

    assert_eq!(embedder.model_id(), format!("local:{dir_name}"));
    assert_eq!(embedder.dimensions(), 384);
    assert!(
        embedder
            .embed(Vec::new())
            .await
            .expect("nothing to do")
            .is_empty()
    );
}

#[test]
fn a_missing_model_names_the_path_and_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");

    let err = MiniLm::load(dir.path()).expect_err("no model there");

    assert!(matches!(err, EmbedError::MissingFile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&dir.path().join("config.json").display().to_string()));
    assert!(message.contains("scripts/fetch-model.sh"), "{message}");
    assert!(message.contains("KALTALK_EMBEDDING_MODEL_DIR"), "{message}");
}
