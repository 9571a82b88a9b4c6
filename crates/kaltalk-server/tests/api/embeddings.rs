//! Embeddings in the knowledge base, with the real all-MiniLM-L6-v2 (scripts/fetch-model.sh):
//! sources get vectors with their model's id, hybrid retrieval finds what keywords
//! miss, a search can be limited to sources, and a changed model re-embeds.

use std::path::PathBuf;

use kaltalk_server::jobs::Ran;
use kaltalk_server::knowledge::{Mode, SearchOptions};
use kaltalk_store::knowledge::vector_from_bytes;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{Browser, TestApp, spawn_app, spawn_app_with};

const MODEL: &str = "local:all-MiniLM-L6-v2";

/// `KALTALK_EMBEDDING_MODEL_DIR`, or where scripts/fetch-model.sh puts the model. A
/// missing model fails the test loudly (the server refuses a configured model it cannot
/// load), never skips it.
fn model_dir() -> PathBuf {
    match std::env::var_os("KALTALK_EMBEDDING_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"),
    }
}

async fn spawn_with_model(dir: PathBuf) -> TestApp {
    spawn_app_with(|config| config.embeddings.model_dir = Some(dir)).await
}

async fn add_text(owner: &Browser, title: &str, body: &str) {
    let response = owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge",
            &[("title", title), ("body", body)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

const RETURNS: &str = "# Refunds\n\nRefunds reach your card within 5 to 7 working days after the parcel arrives at our warehouse.";
const SHIPPING: &str =
    "# Delivery\n\nParcels travel with DHL and arrive in three working days anywhere in Europe.";
const WARRANTY: &str =
    "# Warranty\n\nEvery device is covered for two years against manufacturing defects.";

#[tokio::test]
async fn a_text_source_gets_vectors_of_the_model_and_the_page_says_so() {
    let app = spawn_with_model(model_dir()).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    add_text(&owner, "Returns", RETURNS).await;
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );

    let chunks = app.state.store.org_chunks(org).await.expect("chunks");
    assert_eq!(chunks.len(), 1);
    let vector = vector_from_bytes(chunks[0].embedding.as_deref().expect("a vector"))
        .expect("f32 little-endian");
    assert_eq!(vector.len(), 384);
    let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "normalised: {norm}");
    assert_eq!(chunks[0].embedding_model.as_deref(), Some(MODEL));
    let source = &app.state.store.list_sources(org).await.expect("sources")[0];
    assert_eq!(source.state, "ready");
    assert_eq!(
        (source.progress_done, source.progress_total),
        (None, None),
        "progress is cleared once ready"
    );

    let index = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");
    assert_eq!(index.model(), Some(MODEL));
    assert_eq!(index.embedded_chunks(), 1);
    let html = owner.get_html("/settings/knowledge").await;
    assert!(
        html.contains("embeddings by local:all-MiniLM-L6-v2"),
        "{html}"
    );

    // Progress of a run under way shows on the source.
    app.state
        .store
        .set_source_state(org, source.id, "indexing", None, app.clock_now())
        .await
        .expect("state");
    app.state
        .store
        .set_source_progress(org, source.id, 120, 480, app.clock_now())
        .await
        .expect("progress");
    let html = owner.get_html("/settings/knowledge").await;
    assert!(html.contains("120/480 chunks"), "{html}");
}

#[tokio::test]
async fn without_a_model_retrieval_is_keyword_only_and_the_page_says_so() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    add_text(&owner, "Returns", RETURNS).await;
    app.run_jobs().await;
    let chunks = app.state.store.org_chunks(org).await.expect("chunks");
    assert!(chunks[0].embedding.is_none() && chunks[0].embedding_model.is_none());
    let html = owner.get_html("/settings/knowledge").await;
    assert!(html.contains("Retrieval is keyword-only"), "{html}");
    assert!(
        html.contains("KALTALK_EMBEDDING_MODEL_DIR"),
        "says how to fix it: {html}"
    );
    let index = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");
    assert_eq!(index.model(), None);
    let hits = index.search("refunds", 3).await.expect("keyword search");
    assert_eq!(hits.len(), 1);
}

#[tokio::test]
async fn hybrid_finds_a_paraphrase_that_keywords_miss() {
    let app = spawn_with_model(model_dir()).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    add_text(&owner, "Returns", RETURNS).await;
    add_text(&owner, "Shipping", SHIPPING).await;
    add_text(&owner, "Warranty", WARRANTY).await;
    app.run_jobs().await;
    let index = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");

    // No word of the question (after stop words and stemming) is in the refund passage.
    let question = "When do I get my money back?";
    let keyword = index
        .search_with(
            question,
            &SearchOptions {
                limit: 3,
                mode: Mode::Keyword,
                sources: None,
            },
        )
        .await
        .expect("keyword");
    assert!(
        keyword.iter().all(|h| h.chunk.title != "Returns"),
        "BM25 alone misses it"
    );
    let hits = index.search(question, 3).await.expect("hybrid");
    assert_eq!(hits[0].chunk.title, "Returns", "hybrid finds it first");
    assert!(
        hits[0].confidence >= 0.3,
        "its calibrated cosine counts as confidence: {}",
        hits[0].confidence
    );
    let unrelated = index
        .search("Do you sell gift cards?", 3)
        .await
        .expect("hybrid");
    assert!(
        unrelated.iter().all(|h| h.confidence < 0.5),
        "an unrelated question stays under the default hand-over threshold"
    );
}

#[tokio::test]
async fn a_search_can_be_limited_to_some_sources() {
    let app = spawn_with_model(model_dir()).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    add_text(&owner, "Returns", RETURNS).await;
    add_text(&owner, "Shipping", SHIPPING).await;
    app.run_jobs().await;
    let sources = app.state.store.list_sources(org).await.expect("sources");
    let shipping = sources
        .iter()
        .find(|s| s.title == "Shipping")
        .expect("shipping")
        .id;
    let index = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");

    for mode in [Mode::Keyword, Mode::Dense, Mode::Hybrid] {
        let options = SearchOptions {
            limit: 5,
            mode,
            sources: Some(vec![shipping]),
        };
        let hits = index
            .search_with("refund to my card working days", &options)
            .await
            .expect("search");
        assert!(
            !hits.is_empty(),
            "{mode:?}: the allowed source still answers"
        );
        assert!(
            hits.iter().all(|h| h.chunk.source_id == shipping),
            "{mode:?}: only the chosen source"
        );
    }
    // Another organization's source id (or any unknown id) finds nothing here.
    let options = SearchOptions {
        limit: 5,
        mode: Mode::Hybrid,
        sources: Some(vec![Uuid::now_v7()]),
    };
    assert!(
        index
            .search_with("refund", &options)
            .await
            .expect("search")
            .is_empty()
    );
}

#[tokio::test]
async fn changing_the_model_re_embeds_and_never_mixes_models() {
    let first = spawn_with_model(model_dir()).await;
    let owner = first.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    add_text(&owner, "Returns", RETURNS).await;
    add_text(&owner, "Shipping", SHIPPING).await;
    first.run_jobs().await;

    // The same weights under another directory name are another model id, as a model
    // change looks to the server.
    let renamed = tempfile::tempdir().expect("tmp");
    let other_dir = renamed.path().join("minilm-renamed");
    std::fs::create_dir(&other_dir).expect("dir");
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(model_dir().join(file), other_dir.join(file)).expect("copy model");
    }
    let database = first.state.config.database_url();
    let second = spawn_app_with(|config| {
        config.database_url = Some(kaltalk_server::config::Secret::new(database));
        config.embeddings.model_dir = Some(other_dir);
    })
    .await;

    let before = second
        .state
        .knowledge
        .get(&second.state, org)
        .await
        .expect("index");
    assert_eq!(before.embedded_chunks(), 0, "old vectors are not mixed in");
    assert_eq!(before.model(), None);
    assert!(
        !before
            .search("refund", 3)
            .await
            .expect("keyword still works")
            .is_empty()
    );

    assert_eq!(
        second.run_jobs().await,
        vec![Ran::Done("knowledge.reembed".into())]
    );
    let chunks = second.state.store.org_chunks(org).await.expect("chunks");
    assert!(
        chunks
            .iter()
            .all(|c| c.embedding_model.as_deref() == Some("local:minilm-renamed")),
        "every chunk re-embedded"
    );
    let after = second
        .state
        .knowledge
        .get(&second.state, org)
        .await
        .expect("index");
    assert_eq!(after.model(), Some("local:minilm-renamed"));
    assert_eq!(after.embedded_chunks(), chunks.len());
}
