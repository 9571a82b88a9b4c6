//! The AI playground: a question answered the way the bot would, with the passages, the
//! answer or the hand-over reason, and the timing; nothing written to any conversation.

use std::time::Duration;

use kaltalk_server::jobs::Ran;
use kaltalk_server::testing::fake_chat::{FakeChatModel, Reply};
use reqwest::StatusCode;

use crate::helpers::{Browser, TestApp, spawn_app, spawn_app_with};
use crate::knowledge::{RETURNS, add_text};

const PAGE: &str = "/settings/ai/playground";

async fn with_returns_policy(app: &TestApp) -> Browser {
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    assert_eq!(
        add_text(&owner, "Returns policy", RETURNS).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    owner
}

async fn ask(owner: &Browser, question: &str) -> (StatusCode, String) {
    let response = owner.submit(PAGE, PAGE, &[("question", question)]).await;
    let status = response.status();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn without_a_model_the_playground_quotes_the_best_passage_and_lists_what_it_retrieved() {
    let app = spawn_app().await;
    let owner = with_returns_policy(&app).await;
    let org = owner.org_id().await;

    let (status, html) = ask(&owner, "How many days until my refund arrives?").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("<h2 id=\"outcome-heading\">Answer</h2>"),
        "{html}"
    );
    assert!(
        html.contains("Refunds reach your card within 5 to 7 working days"),
        "{html}"
    );
    assert!(
        html.contains("Returns policy — Refunds"),
        "the citation: {html}"
    );
    assert!(
        html.contains("id=\"passages\""),
        "the retrieved passages: {html}"
    );
    assert!(html.contains("Retrieval "), "the timing: {html}");
    assert!(html.contains("extractive"), "{html}");

    let (_, html) = ask(&owner, "Do you sell gift cards for birthdays?").await;
    assert!(html.contains("The bot would hand over"), "{html}");
    assert!(html.contains("the knowledge base has no answer"), "{html}");

    let (_, html) = ask(&owner, "Can I speak to a human?").await;
    assert!(html.contains("the visitor asked for a person"), "{html}");

    // Only a preview: no conversation, no usage.
    let usage = app
        .state
        .store
        .ai_usage(org, app.clock_now())
        .await
        .expect("usage");
    assert_eq!((usage.answers, usage.handoffs), (0, 0));
    assert!(
        app.run_jobs().await.is_empty(),
        "the playground queues nothing"
    );
}

#[tokio::test]
async fn the_playground_refuses_an_empty_or_overlong_question_on_the_page() {
    let app = spawn_app().await;
    let owner = with_returns_policy(&app).await;
    let (status, html) = ask(&owner, "   ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Ask a question."), "{html}");
    let long = "why ".repeat(600);
    let (status, html) = ask(&owner, &long).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("under 2000 characters"), "{html}");
    assert!(html.contains("why why"), "the question is kept: {html}");
}

#[tokio::test]
async fn only_those_who_manage_the_ai_may_use_the_playground() {
    let app = spawn_app().await;
    let owner = with_returns_policy(&app).await;
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    assert_eq!(agent.get(PAGE).await.status(), StatusCode::FORBIDDEN);
    let stranger = app.browser();
    let response = stranger.get(PAGE).await;
    assert!(
        response.status().is_redirection(),
        "signed out: to the login page, got {}",
        response.status()
    );
}

#[tokio::test]
async fn with_a_model_the_playground_shows_its_answer_citations_tokens_and_model_time() {
    let fake = FakeChatModel::start(Reply::answer(
        &["Refunds take 5 to 7 ", "working days [1]."],
        (210, 9),
        Duration::from_millis(10),
    ))
    .await
    .expect("fake model");
    let base_url = fake.base_url.parse().expect("url");
    let app = spawn_app_with(|config| {
        config.ai.base_url = Some(base_url);
        config.ai.model = Some("fake-model".into());
    })
    .await;
    let owner = with_returns_policy(&app).await;

    let (status, html) = ask(&owner, "How many days until my refund arrives?").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Refunds take 5 to 7 working days [1]."),
        "{html}"
    );
    assert!(html.contains("model "), "the model's time: {html}");
    assert!(html.contains("210 prompt + 9 completion tokens"), "{html}");
    assert!(html.contains("generative"), "{html}");
    let received = fake.received().await;
    assert_eq!(received.len(), 1, "one model call");
}
