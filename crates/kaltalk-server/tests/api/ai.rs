//! The AI agent's handoff state machine, as visitors and agents meet it.

use kaltalk_core::chat::{AiSettings, Handling};
use kaltalk_server::jobs::Ran;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat_helpers::{Socket, Visitor, create_inbox, session_cookie};
use crate::helpers::{Browser, TestApp, spawn_app};

/// Turns the AI agent on through the settings page, with this confidence threshold.
pub async fn enable_ai(app: &TestApp, owner: &Browser, threshold: &str) {
    let fields = [
        ("enabled", "yes"),
        ("bot_name", "Kai"),
        ("tone", "friendly"),
        ("temperature", "0.2"),
        ("max_bot_turns", "3"),
        ("confidence_threshold", threshold),
    ];
    let response = owner.submit("/settings/ai", "/settings/ai", &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let settings = app
        .state
        .store
        .ai_settings(owner.org_id().await)
        .await
        .expect("settings");
    assert!(settings.enabled);
    assert_eq!(settings.bot_name, "Kai");
}

async fn conversation(
    app: &TestApp,
    org: kaltalk_core::OrgId,
    id: &str,
) -> kaltalk_store::conversations::Conversation {
    app.state
        .store
        .get_conversation(org, id.parse().expect("uuid"))
        .await
        .expect("conversation")
}

#[tokio::test]
async fn without_an_answer_the_bot_hands_over_once_with_a_note_and_an_event() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    enable_ai(&app, &owner, "0.3").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let mut agents = Socket::agent(&app, &cookie, None).await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("What is the warranty on the X200?").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        conversation(&app, org, &id).await.handling,
        Handling::Bot,
        "the bot answers first"
    );

    assert_eq!(app.run_jobs().await, vec![Ran::Done("ai.turn".into())]);
    let escalated = agents.next_of("conversation.escalated").await;
    assert_eq!(escalated["conversation_id"], id.as_str());
    assert!(
        escalated["payload"]["reason"]
            .as_str()
            .expect("reason")
            .contains("knowledge base has no answer")
    );
    let current = conversation(&app, org, &id).await;
    assert_eq!(current.handling, Handling::WaitingHuman);
    assert_eq!(current.assignee_id, None);

    // The visitor hears the bot once; the reason is a note only the team sees.
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let said: Vec<(&str, &str)> = history["messages"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| {
            (
                m["sender"].as_str().unwrap_or(""),
                m["text"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("contact", "What is the warranty on the X200?"),
            ("bot", kaltalk_store::ai::HANDOFF_MESSAGE)
        ]
    );
    let page = owner
        .get_html(&format!("/inbox?view=unassigned&c={id}"))
        .await;
    assert!(
        page.contains("Handed over to the team: the knowledge base has no answer"),
        "the note"
    );
    assert!(page.contains("needs a person"));
    // The bot handed this one over, so it can be given back to it (and only then: a
    // conversation the bot never touched has no such button, see tests/api/workspace.rs).
    assert!(page.contains("Hand back to the bot"));

    // While waiting for a person, visitor messages start no bot turn.
    visitor.say("Hello?").await;
    assert!(app.run_jobs().await.is_empty());
    assert_eq!(
        app.state
            .store
            .ai_usage(org, app.clock_now())
            .await
            .expect("usage")
            .handoffs,
        1
    );
}

#[tokio::test]
async fn talk_to_a_person_and_keyword_requests_hand_over() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    enable_ai(&app, &owner, "0.3").await;
    let inbox = create_inbox(&app, &owner, "").await;

    let mut pressed = Visitor::new(&app, &inbox);
    let id = pressed.say("Hi").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        pressed.post("/widget/v1/handoff", json!({})).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        pressed.post("/widget/v1/handoff", json!({})).await.status(),
        StatusCode::NO_CONTENT,
        "pressing twice is harmless"
    );
    assert_eq!(
        conversation(&app, org, &id).await.handling,
        Handling::WaitingHuman
    );
    let history: Value = pressed
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let bot_lines = history["messages"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|m| m["sender"] == "bot")
        .count();
    assert_eq!(bot_lines, 1, "the bot says it once");
    // The queued turn for "Hi" finds the conversation handed over and stays silent.
    app.run_jobs().await;
    let history: Value = pressed
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2));

    let mut asked = Visitor::new(&app, &inbox);
    let id = asked.say("Can I talk to a human please?").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_jobs().await;
    assert_eq!(
        conversation(&app, org, &id).await.handling,
        Handling::WaitingHuman
    );
    assert!(
        owner
            .get_html(&format!("/inbox?view=all&c={id}"))
            .await
            .contains("the visitor asked for a person")
    );
}

#[tokio::test]
async fn once_a_person_replies_the_bot_is_silent_until_handed_back() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    enable_ai(&app, &owner, "0.3").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("Hello").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let conversation_id = id.parse().expect("uuid");

    // A person answers before the bot's turn runs: the bot must not speak.
    owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{id}/messages"),
            &[("text", "Olivia here, how can I help?"), ("kind", "text")],
        )
        .await;
    assert_eq!(conversation(&app, org, &id).await.handling, Handling::Human);
    app.run_jobs().await;
    let late = app
        .state
        .store
        .bot_writes(
            org,
            conversation_id,
            "too late",
            json!({}),
            (0, 0),
            app.clock_now(),
        )
        .await
        .expect("bot write");
    assert!(late.is_none(), "the bot stays silent once a person replied");
    visitor.say("Thanks").await;
    assert!(
        app.run_jobs().await.is_empty(),
        "no bot turn in a human conversation"
    );

    // Handed back, the next message is a bot turn again.
    let back = owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{id}/hand-back"),
            &[],
        )
        .await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(conversation(&app, org, &id).await.handling, Handling::Bot);
    visitor.say("One more question").await;
    assert_eq!(app.run_jobs().await, vec![Ran::Done("ai.turn".into())]);
}

#[tokio::test]
async fn a_contact_marked_dont_process_with_ai_never_meets_the_bot() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    enable_ai(&app, &owner, "0.3").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("Hello").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let contact = conversation(&app, org, &id).await.contact_id;
    app.run_jobs().await;
    owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{id}/hand-back"),
            &[],
        )
        .await;

    let marked = owner
        .submit(
            "/inbox",
            &format!("/inbox/contacts/{contact}/ai"),
            &[("opt_out", "yes"), ("conversation_id", &id)],
        )
        .await;
    assert_eq!(marked.status(), StatusCode::SEE_OTHER);
    assert!(
        app.state
            .store
            .ai_opt_out(org, contact)
            .await
            .expect("flag")
    );
    assert_eq!(
        conversation(&app, org, &id).await.handling,
        Handling::Human,
        "the open conversation leaves the bot"
    );
    visitor.say("Another thing").await;
    assert!(
        app.run_jobs().await.is_empty(),
        "nothing about them reaches the AI"
    );
}

#[tokio::test]
async fn ai_settings_are_validated_and_the_bot_is_off_by_default() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    assert_eq!(
        app.state
            .store
            .ai_settings(owner.org_id().await)
            .await
            .expect("settings"),
        AiSettings::default()
    );
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("Hello").await;
    assert!(app.run_jobs().await.is_empty(), "no bot unless enabled");

    let bad = owner
        .submit(
            "/settings/ai",
            "/settings/ai",
            &[
                ("enabled", "yes"),
                ("bot_name", ""),
                ("temperature", "7"),
                ("max_bot_turns", "0"),
                ("confidence_threshold", "x"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("body");
    assert!(
        html.contains("Name the bot")
            && html.contains("from 0 to 2")
            && html.contains("from 1 to 50")
            && html.contains("from 0 to 1")
    );
    assert!(
        !app.state
            .store
            .ai_settings(owner.org_id().await)
            .await
            .expect("settings")
            .enabled,
        "nothing saved"
    );
    assert!(
        owner
            .get_html("/settings/ai")
            .await
            .contains("No chat model is configured on this server"),
        "without a model the page says answers are extractive"
    );
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    assert_eq!(
        agent.get("/settings/ai").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn another_organizations_conversation_and_contact_are_not_found() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let other = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("Hello").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let contact = conversation(&app, org, &id).await.contact_id;
    assert_eq!(
        other
            .submit(
                "/inbox",
                &format!("/inbox/conversations/{id}/hand-back"),
                &[]
            )
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other
            .submit(
                "/inbox",
                &format!("/inbox/contacts/{contact}/ai"),
                &[("opt_out", "yes"), ("conversation_id", &id)]
            )
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        !app.state
            .store
            .ai_opt_out(org, contact)
            .await
            .expect("flag")
    );
}

#[tokio::test]
async fn the_widget_signs_bot_messages_with_the_bot_name_only_while_the_ai_is_on() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let visitor = Visitor::new(&app, &inbox);
    let config = || async {
        let path = format!("/widget/v1/inboxes/{}/config", inbox.public_token);
        visitor
            .get(&path)
            .await
            .json::<Value>()
            .await
            .expect("json")
    };
    assert_eq!(config().await["bot_name"], Value::Null, "AI off");
    enable_ai(&app, &owner, "0.3").await;
    assert_eq!(config().await["bot_name"], "Kai");
}
