//! The knowledge base: sources become chunks (a job), and the bot answers from them with
//! a citation, or hands over when they do not cover the question.

use kaltalk_core::chat::Handling;
use kaltalk_server::jobs::Ran;
use reqwest::StatusCode;
use serde_json::Value;

use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, spawn_app};

const RETURNS: &str = "# Returns\n\nYou can return any product within 30 days of delivery.\n\n## Refunds\n\nRefunds reach your card within 5 to 7 working days after we receive the parcel.\n\n# Shipping\n\nWe ship to every country in Europe in three working days.";

async fn add_text(owner: &Browser, title: &str, body: &str) -> reqwest::Response {
    owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge",
            &[("title", title), ("body", body)],
        )
        .await
}

#[tokio::test]
async fn a_text_source_is_indexed_and_the_bot_answers_from_it_with_its_source() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    assert_eq!(
        add_text(&owner, "Returns policy", RETURNS).await.status(),
        StatusCode::SEE_OTHER
    );
    let sources = app.state.store.list_sources(org).await.expect("sources");
    assert_eq!(sources[0].state, "queued");
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let source = &app.state.store.list_sources(org).await.expect("sources")[0];
    assert_eq!(source.state, "ready");
    assert_eq!(source.chunks, 3, "one chunk per section");
    assert!(
        owner
            .get_html("/settings/knowledge")
            .await
            .contains("Returns policy")
    );

    crate::ai::enable_ai(&app, &owner, "0.5").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("How many days until my refund arrives?").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(app.run_jobs().await, vec![Ran::Done("ai.turn".into())]);
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let answer = history["messages"]
        .as_array()
        .expect("list")
        .last()
        .expect("answer")
        .clone();
    assert_eq!(answer["sender"], "bot");
    assert!(
        answer["text"]
            .as_str()
            .expect("text")
            .contains("5 to 7 working days"),
        "{answer}"
    );
    assert_eq!(
        answer["metadata"]["citations"][0]["title"],
        "Returns policy — Refunds"
    );
    let conversation = app
        .state
        .store
        .get_conversation(org, id.parse().expect("uuid"))
        .await
        .expect("conversation");
    assert_eq!(
        conversation.handling,
        Handling::Bot,
        "answered, still the bot's"
    );
    assert_eq!(conversation.bot_turns, 1);
    assert_eq!(
        app.state
            .store
            .ai_usage(org, app.clock_now())
            .await
            .expect("usage")
            .answers,
        1
    );

    // A question the knowledge base does not cover is handed over, not guessed.
    visitor.say("Do you sell gift cards?").await;
    app.run_jobs().await;
    let conversation = app
        .state
        .store
        .get_conversation(org, id.parse().expect("uuid"))
        .await
        .expect("conversation");
    assert_eq!(conversation.handling, Handling::WaitingHuman);
}

#[tokio::test]
async fn deleting_a_source_takes_its_knowledge_away_at_once() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    add_text(&owner, "Returns policy", RETURNS).await;
    app.run_jobs().await;
    let source = app
        .state
        .store
        .list_sources(org)
        .await
        .expect("sources")
        .remove(0);
    let before = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");
    assert!(!before.search("refund", 3).await.expect("search").is_empty());

    let deleted = owner
        .submit(
            "/settings/knowledge",
            &format!("/settings/knowledge/{}/delete", source.id),
            &[],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let after = app
        .state
        .knowledge
        .get(&app.state, org)
        .await
        .expect("index");
    assert!(
        after.search("refund", 3).await.expect("search").is_empty(),
        "the index follows the knowledge version"
    );
}

#[tokio::test]
async fn bad_input_is_explained_and_other_organizations_cannot_touch_sources() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let other = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let bad = add_text(&owner, "", "").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("body");
    assert!(html.contains("Give it a title") && html.contains("Write the text"));

    add_text(&owner, "Returns policy", RETURNS).await;
    let source = app
        .state
        .store
        .list_sources(owner.org_id().await)
        .await
        .expect("sources")
        .remove(0);
    for action in ["resync", "delete"] {
        let response = other
            .submit(
                "/settings/knowledge",
                &format!("/settings/knowledge/{}/{action}", source.id),
                &[],
            )
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{action}");
    }
    assert!(
        !other
            .get_html("/settings/knowledge")
            .await
            .contains("Returns policy")
    );
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    assert_eq!(
        agent.get("/settings/knowledge").await.status(),
        StatusCode::FORBIDDEN
    );

    let resync = owner
        .submit(
            "/settings/knowledge",
            &format!("/settings/knowledge/{}/resync", source.id),
            &[],
        )
        .await;
    assert_eq!(resync.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.run_jobs().await.len(),
        2,
        "the first index and the re-sync"
    );
}

/// A small help site on loopback, as a customer's docs would be.
async fn help_site() -> String {
    use axum::response::Html;
    use axum::routing::get;
    let page = |title: &'static str, body: &'static str| async move {
        Html(format!(
            "<html><head><title>{title}</title></head><body><nav><a href=\"/\">Home</a> <a href=\"/returns.html\">Returns</a> <a href=\"/shipping.html\">Shipping</a></nav><main><article><h1>{title}</h1>{body}</article></main><footer>© Acme</footer></body></html>"
        ))
    };
    let app = axum::Router::new()
        .route("/", get(move || page("Acme Help", "<p>Welcome to the Acme help center. Find answers about returns and shipping below.</p>")))
        .route("/returns.html", get(move || page("Returns", "<h2>Refunds</h2><p>Refunds reach your card within 5 to 7 working days after the parcel arrives at our warehouse.</p>")))
        .route("/shipping.html", get(move || page("Shipping", "<h2>Europe</h2><p>Parcels to every country in Europe travel for three working days.</p>")))
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /private/\n" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_whole_site_is_crawled_and_answers_cite_the_page() {
    let app = crate::helpers::spawn_app_with(|config| config.knowledge.allow_loopback = true).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let site = help_site().await;
    let added = owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", &format!("{site}/")), ("whole_site", "yes")],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let source = app
        .state
        .store
        .list_sources(org)
        .await
        .expect("sources")
        .remove(0);
    assert_eq!(source.state, "ready", "{:?}", source.error);
    assert_eq!(source.pages, 3, "the three pages reached by links");

    crate::ai::enable_ai(&app, &owner, "0.5").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("How many working days for a refund?").await;
    app.run_jobs().await;
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let answer = history["messages"]
        .as_array()
        .expect("list")
        .last()
        .expect("answer")
        .clone();
    assert_eq!(answer["sender"], "bot", "{history}");
    assert!(
        answer["text"]
            .as_str()
            .expect("text")
            .contains("5 to 7 working days")
    );
    assert_eq!(
        answer["metadata"]["citations"][0]["url"],
        format!("{site}/returns.html"),
        "the answer links its page"
    );
}

#[tokio::test]
async fn web_sources_refuse_private_addresses_and_bad_urls() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    // Loopback is refused by default (no SSRF): the source fails alone, saying why.
    let site = help_site().await;
    owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", &format!("{site}/returns.html"))],
        )
        .await;
    owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", "http://10.0.0.7/wiki")],
        )
        .await;
    app.run_jobs().await;
    let sources = app.state.store.list_sources(org).await.expect("sources");
    assert_eq!(sources.len(), 2);
    for source in &sources {
        assert_eq!(source.state, "failed", "{}", source.title);
        assert!(
            source
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("refused"),
            "{:?}",
            source.error
        );
    }
    let bad = owner
        .submit(
            "/settings/knowledge",
            "/settings/knowledge/web",
            &[("url", "ftp://example.com/file")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text()
            .await
            .expect("body")
            .contains("starting with https://")
    );
}
