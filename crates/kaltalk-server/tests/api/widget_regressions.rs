//! Regression tests for widget bugs found while building the agent workspace (issue 13,
//! item 9): a returning visitor locked out by the pre-chat form, "Talk to a person"
//! before the first message, and the widget's presence not following the team.

use kaltalk_core::chat::Handling;
use kaltalk_server::jobs::Ran;
use kaltalk_store::inboxes::{Inbox, InboxSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::ai::enable_ai;
use crate::chat_helpers::{Socket, Visitor, create_inbox, session_cookie};
use crate::helpers::{Browser, TestApp, spawn_app};

async fn ask_for_name(app: &TestApp, owner: &Browser, inbox: &Inbox) {
    let mut settings = inbox.settings.0.clone();
    settings.prechat_name = true;
    app.state
        .store
        .update_inbox(
            owner.org_id().await,
            inbox.id,
            "Website",
            InboxSettings::Widget(&settings),
            app.clock_now(),
        )
        .await
        .expect("update");
}

#[tokio::test]
async fn a_returning_visitor_is_asked_only_for_the_prechat_details_their_contact_lacks() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("Hello before the form existed").await;
    ask_for_name(&app, &owner, &inbox).await;

    // The returning visitor learns what the form must ask, instead of a bare 422.
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        history["prechat"],
        json!({ "name": true, "email": false }),
        "{history}"
    );
    let refused = visitor.send(json!({ "text": "Still there?" })).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = refused.json().await.expect("json");
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    assert_eq!(problem["errors"][0]["message"], "Please enter your name.");

    let named = visitor
        .send(json!({ "text": "Still there?", "prechat": { "name": "Ada" } }))
        .await;
    assert_eq!(named.status(), StatusCode::CREATED);
    let named: Value = named.json().await.expect("json");
    assert_eq!(
        named["visitor_token"].as_str(),
        visitor.token.as_deref(),
        "the same session goes on"
    );

    // Once we hold the name, the form is not shown again and messages need nothing.
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["prechat"], json!({ "name": false, "email": false }));
    visitor.say("And one more thing").await;
}

#[tokio::test]
async fn talk_to_a_person_before_the_first_message_hands_the_new_conversation_over() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    enable_ai(&app, &owner, "0.3").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let visitor = Visitor::new(&app, &inbox);

    let sent = visitor
        .send(json!({ "text": "My parcel is damaged", "handoff": true }))
        .await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let sent: Value = sent.json().await.expect("json");
    let id: kaltalk_core::ConversationId = sent["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let conversation = app
        .state
        .store
        .get_conversation(org, id)
        .await
        .expect("conversation");
    assert_eq!(conversation.handling, Handling::WaitingHuman);
    // No bot turn: the visitor asked for a person, so the bot does not answer first.
    let ran = app.run_jobs().await;
    assert!(
        !ran.contains(&Ran::Done("ai.turn".into())),
        "no bot turn: {ran:?}"
    );
    let messages = app
        .state
        .store
        .list_messages(org, id, true)
        .await
        .expect("messages");
    let said: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m.sender_kind.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            ("contact", "My parcel is damaged"),
            ("bot", kaltalk_store::ai::HANDOFF_MESSAGE),
            (
                "system",
                "Handed over to the team: the visitor pressed “Talk to a person”."
            ),
        ]
    );
}

#[tokio::test]
async fn the_widget_socket_hears_the_team_come_online_and_go_away() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("Anyone there?").await;
    let mut widget = visitor.socket(None).await;
    assert_eq!(
        widget.next_of("presence").await["agents_online"],
        false,
        "told on opening"
    );

    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let agent = Socket::agent(&app, &cookie, None).await;
    assert_eq!(widget.next_of("presence").await["agents_online"], true);
    let second = Socket::agent(&app, &cookie, None).await;
    second.close().await;
    // One of two dashboards closing leaves the team online: a socket opened now is told
    // so at once.
    let mut later = visitor.socket(None).await;
    assert_eq!(later.next_of("presence").await["agents_online"], true);

    // The last one closing: away once the organization's minutes pass without a
    // dashboard (the sweep), for every open widget.
    agent.close().await;
    // The server hears of the close a moment later and counts the minutes from then:
    // until it has, a sweep finds the dashboard still seen just now.
    let mut swept = 0;
    for _ in 0..50 {
        app.clock.advance(chrono::Duration::minutes(10));
        swept = kaltalk_server::availability::sweep(&app.state)
            .await
            .expect("sweep");
        if swept > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(swept, 1);
    assert_eq!(widget.next_of("presence").await["agents_online"], false);
    assert_eq!(later.next_of("presence").await["agents_online"], false);
}
