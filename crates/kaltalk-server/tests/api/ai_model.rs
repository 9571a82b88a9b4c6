//! The AI agent with a chat model: a fake OpenAI-compatible server on 127.0.0.1:0 that
//! speaks the real wire format (SSE), and records what it was sent.

use std::time::Duration;

use kaltalk_core::chat::Handling;
use kaltalk_server::config::Secret;
use kaltalk_server::jobs::Ran;
use kaltalk_server::testing::fake_chat::{FakeChatModel, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat_helpers::{Socket, Visitor, create_inbox, page_context, session_cookie};
use crate::helpers::{Browser, TestApp, spawn_app_with};
use crate::knowledge::{RETURNS, add_text};

const QUESTION: &str = "How many days until my refund arrives?";

/// A server whose AI agent uses `fake`, with the returns policy indexed and AI on.
async fn app_with_model(fake: &FakeChatModel) -> (TestApp, Browser) {
    app_with_model_waiting(fake, 10.0).await
}

/// Like [`app_with_model`], giving the model `first_token` seconds to start answering.
async fn app_with_model_waiting(fake: &FakeChatModel, first_token: f64) -> (TestApp, Browser) {
    let base_url = fake.base_url.parse().expect("url");
    let app = spawn_app_with(|config| {
        config.ai.base_url = Some(base_url);
        config.ai.model = Some("fake-model".into());
        config.ai.api_key = Some(Secret::new("sk-test-key"));
        config.ai.first_token_timeout_seconds = first_token;
        config.ai.total_timeout_seconds = 30.0;
    })
    .await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    assert_eq!(
        add_text(&owner, "Returns policy", RETURNS).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    crate::ai::enable_ai(&app, &owner, "0.3").await;
    (app, owner)
}

fn conversation_id(said: &Value) -> kaltalk_core::ConversationId {
    said["conversation_id"]
        .as_str()
        .expect("conversation_id")
        .parse()
        .expect("uuid")
}

async fn messages(visitor: &Visitor<'_>) -> Vec<Value> {
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    history["messages"].as_array().expect("list").clone()
}

/// The widget socket's frames up to and including the first that `stop` accepts.
async fn frames_until(socket: &mut Socket, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = socket.next().await;
        let done = stop(&frame);
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

#[tokio::test]
async fn a_generated_answer_streams_to_the_widget_then_commits_with_citations_and_usage() {
    let fake = FakeChatModel::start(Reply::answer(
        &[
            "Refunds reach your card ",
            "within 5 to 7 working days ",
            "after we receive the parcel [1].",
        ],
        (321, 17),
        Duration::from_millis(80),
    ))
    .await
    .expect("fake model");
    let (app, owner) = app_with_model(&fake).await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let said = visitor.say(QUESTION).await;
    let mut socket = visitor.socket(None).await;

    assert_eq!(app.run_jobs().await, vec![Ran::Done("ai.turn".into())]);

    let frames = frames_until(&mut socket, |f| {
        f["type"] == "message.created" && f["message"]["sender"] == "bot"
    })
    .await;
    let deltas: Vec<&Value> = frames.iter().filter(|f| f["type"] == "bot.delta").collect();
    assert!(
        !deltas.is_empty(),
        "the answer is shown while it is written: {frames:?}"
    );
    let streamed: String = deltas
        .iter()
        .map(|f| f["delta"].as_str().expect("delta"))
        .collect();
    let answer = &frames.last().expect("answer")["message"];
    let text =
        "Refunds reach your card within 5 to 7 working days after we receive the parcel [1].";
    // Drafts go out at most every 50 ms: pieces that reach the server closer together
    // (a loaded machine reads two at once) travel in one delta, and the last may come
    // only with the committed message. What is streamed is always the answer's start.
    assert!(
        !streamed.is_empty() && text.starts_with(&streamed),
        "{streamed:?} begins the answer"
    );
    assert_eq!(answer["text"], text);
    assert!(deltas.iter().all(|f| f["end"] == false));
    assert_eq!(
        answer["metadata"]["draft_id"], deltas[0]["draft_id"],
        "the message names the draft it replaces"
    );
    assert_eq!(
        answer["metadata"]["citations"],
        json!([{ "title": "Returns policy — Refunds", "url": null }]),
        "the source it cited"
    );
    assert_eq!(answer["metadata"]["mode"], "generative");
    let end = socket.next_of("bot.delta").await;
    assert_eq!(end["end"], true);
    assert_eq!(end["draft_id"], deltas[0]["draft_id"]);

    let usage = app
        .state
        .store
        .ai_usage(org, app.clock_now())
        .await
        .expect("usage");
    assert_eq!(
        (usage.answers, usage.prompt_tokens, usage.completion_tokens),
        (1, 321, 17)
    );
    let conversation = app
        .state
        .store
        .get_conversation(org, conversation_id(&said))
        .await
        .expect("conversation");
    assert_eq!(conversation.handling, Handling::Bot);
    assert_eq!(conversation.bot_turns, 1);

    assert!(
        owner
            .get_html("/settings/ai")
            .await
            .contains("this server's default, fake-model"),
        "the settings page names the model in use"
    );
    let sent = fake.received().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].authorization.as_deref(), Some("Bearer sk-test-key"));
    assert_eq!(sent[0].body["model"], "fake-model");
    assert_eq!(sent[0].body["stream"], true);
    assert_eq!(sent[0].body["stream_options"]["include_usage"], true);
    assert_eq!(
        sent[0].body["tools"][0]["function"]["name"],
        "hand_over_to_human"
    );
}

#[tokio::test]
async fn the_provider_gets_the_sources_as_delimited_data_a_short_history_and_nothing_personal() {
    let fake = FakeChatModel::start(Reply::answer(
        &["We ship to every country in Europe [1]."],
        (100, 9),
        Duration::ZERO,
    ))
    .await
    .expect("fake model");
    let (app, owner) = app_with_model(&fake).await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let response = visitor
        .send(json!({
            "text": "Do you ship to Norway?",
            "client_id": "c-1",
            "context": page_context(),
            "prechat": { "name": "Ada Lovelace", "email": "ada@lovelace.test" },
        }))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let said: Value = response.json().await.expect("json");
    visitor.token = said["visitor_token"].as_str().map(str::to_owned);
    let id = conversation_id(&said);
    let contact = app
        .state
        .store
        .get_conversation(org, id)
        .await
        .expect("conversation")
        .contact_id;
    assert_eq!(
        app.state
            .store
            .get_contact(org, contact)
            .await
            .expect("contact")
            .email
            .as_deref(),
        Some("ada@lovelace.test"),
        "the server knows who this is; the provider must not"
    );
    app.run_jobs().await;
    // A private note of the team's, and a follow-up question.
    let noted = owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{id}/messages"),
            &[("text", "VIP customer, door code 4711"), ("kind", "note")],
        )
        .await;
    assert_eq!(noted.status(), StatusCode::SEE_OTHER);
    fake.set_reply(Reply::answer(
        &["Within 5 to 7 working days [1]."],
        (200, 8),
        Duration::ZERO,
    ))
    .await;
    visitor.say(QUESTION).await;
    assert_eq!(app.run_jobs().await, vec![Ran::Done("ai.turn".into())]);

    let sent = fake.received().await;
    assert_eq!(sent.len(), 2);
    let request = &sent[1].body;
    let messages = request["messages"].as_array().expect("messages");
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert!(
        messages[0]["content"]
            .as_str()
            .expect("system")
            .contains("You are Kai")
    );
    assert_eq!(messages[1]["content"], "Do you ship to Norway?");
    assert_eq!(
        messages[2]["content"],
        "We ship to every country in Europe [1]."
    );
    let last = messages[3]["content"].as_str().expect("question");
    assert!(last.ends_with(&format!("The visitor's question:\n{QUESTION}")));
    let sources: Vec<Value> = last
        .lines()
        .skip_while(|l| !l.starts_with("BEGIN SOURCES"))
        .skip(1)
        .take_while(|l| *l != "END SOURCES")
        .map(|l| serde_json::from_str(l).expect("one JSON object per source"))
        .collect();
    assert!(!sources.is_empty());
    assert_eq!(sources[0]["n"], 1);
    assert_eq!(sources[0]["title"], "Returns policy — Refunds");
    assert!(
        sources[0]["text"]
            .as_str()
            .expect("text")
            .contains("5 to 7 working days")
    );

    // Nothing else about the visitor or the team leaves the machine.
    let whole = request.to_string();
    for private in [
        "Ada",
        "Lovelace",
        "ada@lovelace.test",
        "door code",
        "shop.example.com",
        "Pricing",
        "Olivia",
        &id.to_string(),
        &contact.to_string(),
        &org.to_string(),
    ] {
        assert!(!whole.contains(private), "{private:?} reached the provider");
    }
    let mut keys: Vec<&String> = request.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "messages",
            "model",
            "stream",
            "stream_options",
            "temperature",
            "tool_choice",
            "tools"
        ]
    );
}

#[tokio::test]
async fn the_handover_tool_call_hands_over_with_the_models_reason() {
    let fake = FakeChatModel::start(Reply::hand_over(
        "the visitor wants to talk to a manager",
        (50, 12),
    ))
    .await
    .expect("fake model");
    let (app, owner) = app_with_model(&fake).await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let mut agents = Socket::agent(&app, &cookie, None).await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = conversation_id(
        &visitor
            .say("My refund is late, is it within 5 to 7 days? I want a manager.")
            .await,
    );

    app.run_jobs().await;
    let escalated = agents.next_of("conversation.escalated").await;
    assert_eq!(escalated["conversation_id"], id.to_string());
    assert_eq!(
        escalated["payload"]["reason"],
        "the model handed over: the visitor wants to talk to a manager"
    );
    let current = app
        .state
        .store
        .get_conversation(org, id)
        .await
        .expect("conversation");
    assert_eq!(current.handling, Handling::WaitingHuman);
    let said: Vec<(String, String)> = messages(&visitor)
        .await
        .iter()
        .map(|m| {
            (
                m["sender"].as_str().unwrap_or("").to_owned(),
                m["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(said.len(), 2);
    assert_eq!(
        said[1],
        ("bot".into(), kaltalk_store::ai::HANDOFF_MESSAGE.into()),
        "the bot says so once"
    );
    assert!(
        owner
            .get_html(&format!("/inbox?view=unassigned&c={id}"))
            .await
            .contains("the model handed over: the visitor wants to talk to a manager"),
        "the reason is a note in the unassigned queue"
    );
    let usage = app
        .state
        .store
        .ai_usage(org, app.clock_now())
        .await
        .expect("usage");
    assert_eq!((usage.answers, usage.handoffs), (0, 1));
}

#[tokio::test]
async fn a_failing_or_stalled_provider_hands_over_saying_the_ai_was_unavailable() {
    let fake = FakeChatModel::start(Reply::Status {
        status: 500,
        body: json!({ "error": { "message": "The server had an error while processing your request.", "type": "server_error" } }).to_string(),
    })
    .await
    .expect("fake model");
    let (app, owner) = app_with_model_waiting(&fake, 0.5).await;
    let inbox = create_inbox(&app, &owner, "").await;
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let mut agents = Socket::agent(&app, &cookie, None).await;

    let mut first = Visitor::new(&app, &inbox);
    first.say(QUESTION).await;
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("ai.turn".into())],
        "handled, not failed"
    );
    let reason = agents.next_of("conversation.escalated").await["payload"]["reason"]
        .as_str()
        .expect("reason")
        .to_owned();
    assert!(
        reason.contains("AI model was unavailable")
            && reason.contains("HTTP 500")
            && reason.contains("The server had an error"),
        "{reason}"
    );
    assert_eq!(
        messages(&first).await.last().expect("bot")["text"],
        kaltalk_store::ai::HANDOFF_MESSAGE
    );

    fake.set_reply(Reply::Stall).await;
    let mut second = Visitor::new(&app, &inbox);
    let id = conversation_id(&second.say(QUESTION).await);
    app.run_jobs().await;
    let escalated = agents.next_of("conversation.escalated").await;
    assert_eq!(escalated["conversation_id"], id.to_string());
    let reason = escalated["payload"]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("AI model was unavailable") && reason.contains("first token"),
        "{reason}"
    );
    assert_eq!(fake.received().await.len(), 2);
}

#[tokio::test]
async fn opted_out_contacts_and_orgs_with_ai_off_never_reach_the_provider() {
    let fake = FakeChatModel::start(Reply::answer(
        &["Within a week [1]."],
        (10, 5),
        Duration::ZERO,
    ))
    .await
    .expect("fake model");
    let (app, owner) = app_with_model(&fake).await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = conversation_id(&visitor.say("Hello").await);
    let contact = app
        .state
        .store
        .get_conversation(org, id)
        .await
        .expect("conversation")
        .contact_id;
    let marked = owner
        .submit(
            "/inbox",
            &format!("/inbox/contacts/{contact}/ai"),
            &[("opt_out", "yes"), ("conversation_id", &id.to_string())],
        )
        .await;
    assert_eq!(marked.status(), StatusCode::SEE_OTHER);
    app.run_jobs().await;
    // An agent hands the conversation back to the bot: the flag still holds.
    owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{id}/hand-back"),
            &[],
        )
        .await;
    visitor.say(QUESTION).await;
    assert_eq!(app.run_jobs().await, vec![Ran::Done("ai.turn".into())]);
    assert!(
        fake.received().await.is_empty(),
        "nothing about them was sent"
    );
    let current = app
        .state
        .store
        .get_conversation(org, id)
        .await
        .expect("conversation");
    assert_eq!(
        current.handling,
        Handling::WaitingHuman,
        "a person takes it"
    );
    assert!(
        owner
            .get_html(&format!("/inbox?view=all&c={id}"))
            .await
            .contains("the contact asked not to be processed by AI")
    );

    // The org turns AI off while a conversation is still the bot's.
    let mut other = Visitor::new(&app, &inbox);
    let other_id = conversation_id(&other.say("Hi").await);
    let mut settings = app.state.store.ai_settings(org).await.expect("settings");
    settings.enabled = false;
    app.state
        .store
        .save_ai_settings(org, &settings, app.clock_now())
        .await
        .expect("save");
    app.run_jobs().await;
    assert!(fake.received().await.is_empty(), "AI off: nothing was sent");
    assert_eq!(
        app.state
            .store
            .get_conversation(org, other_id)
            .await
            .expect("conversation")
            .handling,
        Handling::WaitingHuman,
        "never left hanging"
    );
}

#[tokio::test]
async fn a_person_replying_while_the_model_streams_silences_the_bot() {
    let fake = FakeChatModel::start(Reply::answer(
        &[
            "Refunds ",
            "reach ",
            "your ",
            "card ",
            "within ",
            "5 to 7 ",
            "working ",
            "days ",
            "after ",
            "we ",
            "receive ",
            "the parcel [1].",
        ],
        (300, 20),
        Duration::from_millis(250),
    ))
    .await
    .expect("fake model");
    let (app, owner) = app_with_model(&fake).await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = conversation_id(&visitor.say(QUESTION).await);
    let mut socket = visitor.socket(None).await;

    let (ran, ()) = tokio::join!(app.run_jobs(), async {
        // The first streamed words reach the widget; then Olivia answers herself.
        let delta = socket.next_of("bot.delta").await;
        assert_eq!(delta["end"], false);
        let replied = owner
            .submit(
                "/inbox",
                &format!("/inbox/conversations/{id}/messages"),
                &[("text", "Olivia here: it is on its way."), ("kind", "text")],
            )
            .await;
        assert_eq!(replied.status(), StatusCode::SEE_OTHER);
    });
    assert_eq!(ran, vec![Ran::Done("ai.turn".into())]);
    let rest = frames_until(&mut socket, |f| {
        f["type"] == "bot.delta" && f["end"] == true
    })
    .await;
    assert!(
        rest.iter().all(|f| f["message"]["sender"] != "bot"),
        "no bot message: {rest:?}"
    );
    // It had twelve pieces to say, a quarter second apart: it was cut off, not read to
    // its end.
    let more = rest
        .iter()
        .filter(|f| f["type"] == "bot.delta" && f["end"] == false)
        .count();
    assert!(1 + more < 12, "{more} more deltas after the reply");
    let senders: Vec<String> = messages(&visitor)
        .await
        .iter()
        .map(|m| m["sender"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(senders, ["contact", "agent"], "the bot stayed silent");
    assert_eq!(
        app.state
            .store
            .get_conversation(org, id)
            .await
            .expect("conversation")
            .handling,
        Handling::Human
    );
    assert_eq!(
        app.state
            .store
            .ai_usage(org, app.clock_now())
            .await
            .expect("usage")
            .answers,
        0
    );
}

#[tokio::test]
async fn another_organizations_widget_never_sees_the_draft() {
    let fake = FakeChatModel::start(Reply::answer(
        &["Refunds take ", "5 to 7 working days [1]."],
        (10, 5),
        Duration::from_millis(80),
    ))
    .await
    .expect("fake model");
    let (app, owner) = app_with_model(&fake).await;
    let inbox = create_inbox(&app, &owner, "").await;
    let other_owner = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let other_inbox = create_inbox(&app, &other_owner, "").await;
    let mut stranger = Visitor::new(&app, &other_inbox);
    stranger.say("Hello from Globex").await;
    let mut stranger_socket = stranger.socket(None).await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say(QUESTION).await;

    app.run_jobs().await;
    // The stranger's socket hears only its own conversation: a frame we cause now
    // arrives, and nothing of the draft came before it.
    stranger.say("Still there?").await;
    let frames = frames_until(&mut stranger_socket, |f| {
        f["type"] == "message.created" && f["message"]["text"] == "Still there?"
    })
    .await;
    assert!(
        frames.iter().all(|f| f["type"] != "bot.delta"),
        "{frames:?}"
    );
}
