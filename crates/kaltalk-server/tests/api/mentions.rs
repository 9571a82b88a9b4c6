//! @mentions in private notes through the dashboard and the API: the server reads who is
//! mentioned from the note (the composer's picked ids are only a hint), one
//! `conversation.mentioned` event per person, the timeline highlights the names
//! (escaped), and nothing of it reaches the widget.

use kaltalk_core::event::{ConversationMentioned, EventPayload};
use kaltalk_core::{ConversationId, OrgId, UserId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::create_key;
use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, PASSWORD, TestApp, path_of, spawn_app};
use crate::teams::invite;

/// Invites `email` into `owner`'s organization and signs them up as `name`.
async fn join_as(app: &TestApp, owner: &Browser, name: &str, email: &str) -> Browser {
    let link = invite(app, owner, email, "agent").await;
    let browser = app.browser();
    let response = browser
        .post_form(
            &path_of(&link),
            &[
                ("name", name),
                ("password", PASSWORD),
                ("age_confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{name} joins");
    browser
}

async fn note(
    owner: &Browser,
    conversation: ConversationId,
    kind: &str,
    text: &str,
    picked: &str,
) -> StatusCode {
    owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[("text", text), ("kind", kind), ("mentions", picked)],
        )
        .await
        .status()
}

async fn mentioned(app: &TestApp, org: OrgId) -> Vec<ConversationMentioned> {
    app.state
        .store
        .events_since(org, None, 10_000)
        .await
        .expect("events")
        .iter()
        .filter_map(|e| match e.payload() {
            Ok(EventPayload::ConversationMentioned(m)) => Some(m),
            _ => None,
        })
        .collect()
}

async fn message_with(
    app: &TestApp,
    org: OrgId,
    conversation: ConversationId,
    text: &str,
) -> kaltalk_store::messages::Message {
    app.state
        .store
        .list_messages(org, conversation, true)
        .await
        .expect("messages")
        .into_iter()
        .find(|m| m.text == text)
        .unwrap_or_else(|| panic!("a message {text:?}"))
}

fn mentions_of(message: &kaltalk_store::messages::Message) -> Value {
    message
        .metadata
        .as_ref()
        .and_then(|m| m.0.get("mentions").cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_note_mentions_teammates_the_timeline_marks_them_and_the_widget_hears_nothing() {
    let app = spawn_app().await;
    let olivia = app
        .sign_up("Olivia Owner", "olivia@acme.test", "Acme")
        .await;
    let org = olivia.org_id().await;
    let olivia_id = olivia.user_id().await;
    let grace = join_as(&app, &olivia, "Grace Hopper", "grace@acme.test").await;
    let grace_id = grace.user_id().await;
    let script = join_as(&app, &olivia, "<script>alert(1)</script>", "x@acme.test").await;
    let script_id = script.user_id().await;
    let mallory = app.sign_up("Mallory", "mallory@other.test", "Other").await;
    let mallory_id = mallory.user_id().await;

    // The composer's list offers this organization's members, escaped for the page.
    let page = olivia.get_html("/inbox?view=all").await;
    let start = page.find("id=\"teammates\">").expect("the teammates") + 15;
    let end = start + page[start..].find("</script>").expect("its end");
    let teammates = &page[start..end];
    assert!(teammates.contains("Grace Hopper") && teammates.contains("grace@acme.test"));
    assert!(teammates.contains("\\u003cscript\\u003e"), "{teammates}");
    assert!(
        !teammates.contains("Mallory"),
        "another organization's people"
    );

    let inbox = create_inbox(&app, &olivia, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let said = visitor.say("Hello").await;
    let conversation: ConversationId = said["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("id");
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let mut widget = visitor.socket(history["last_event_id"].as_str()).await;

    // Grace and the oddly named member by name; Mallory (another organization) named and
    // sent as picked, with a hint that is not an id at all: the note is kept regardless.
    let text = "@Grace Hopper can you check the order? \
                Ask @<script>alert(1)</script> and @Mallory, or mail grace@acme.test.";
    let picked = format!("{grace_id} {mallory_id} not-an-id");
    assert_eq!(
        note(&olivia, conversation, "note", text, &picked).await,
        StatusCode::SEE_OTHER
    );
    let stored = message_with(&app, org, conversation, text).await;
    assert_eq!(mentions_of(&stored), json!([grace_id, script_id]));
    let events = mentioned(&app, org).await;
    let told: Vec<(UserId, UserId)> = events.iter().map(|m| (m.user_id, m.by)).collect();
    assert_eq!(told, [(grace_id, olivia_id), (script_id, olivia_id)]);
    assert!(
        events
            .iter()
            .all(|m| m.message_id == stored.id && m.conversation_id == conversation)
    );

    // The same words as a reply to the customer: no mention, no event.
    let reply = "@Grace Hopper will call you.";
    assert_eq!(
        note(&olivia, conversation, "text", reply, &grace_id.to_string()).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        mentions_of(&message_with(&app, org, conversation, reply).await),
        Value::Null
    );
    assert_eq!(mentioned(&app, org).await.len(), 2, "no event for a reply");

    // The widget hears the reply and never the note nor its mentions.
    loop {
        let frame = widget.next().await;
        let body = frame.to_string();
        assert!(
            !body.contains("check the order") && !body.contains("mention"),
            "the widget got {body}"
        );
        if frame["type"] == "message.created" && frame["message"]["text"] == reply {
            break;
        }
    }
    let history = visitor
        .get("/widget/v1/conversation")
        .await
        .text()
        .await
        .expect("body");
    assert!(history.contains("will call you") && !history.contains("check the order"));

    // The timeline marks each mention; Grace sees her own marked more strongly; a name
    // with markup stays text; Mallory is not a member here and stays plain.
    let messages = format!("/inbox/conversations/{conversation}/messages");
    let for_olivia = olivia.get_html(&messages).await;
    assert!(
        for_olivia.contains("<span class=\"mention\">@Grace Hopper</span> can you check"),
        "{for_olivia}"
    );
    assert!(for_olivia.contains(
        "<span class=\"mention\">@&lt;script&gt;alert(1)&lt;/script&gt;</span> and @Mallory,"
    ));
    assert!(!for_olivia.contains("<script>alert(1)"));
    assert!(!for_olivia.contains("mention-me"));
    let for_grace = grace.get_html(&messages).await;
    assert!(
        for_grace.contains(
            "<span class=\"mention mention-me\">@Grace Hopper<span class=\"sr-only\"> (you)</span></span>"
        ),
        "{for_grace}"
    );
    // The reply names Grace too, but mentions nobody: no mark there.
    assert!(for_grace.contains("@Grace Hopper will call you."));
}

#[tokio::test]
async fn another_organization_cannot_note_here_nor_mention_our_people() {
    let app = spawn_app().await;
    let olivia = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let grace = join_as(&app, &olivia, "Grace Hopper", "grace@acme.test").await;
    let grace_id = grace.user_id().await;
    let inbox = create_inbox(&app, &olivia, "").await;
    let said = Visitor::new(&app, &inbox).say("Hello").await;
    let ours: ConversationId = said["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("id");

    let mallory = app.sign_up("Mallory", "mallory@other.test", "Other").await;
    let other_org = mallory.org_id().await;
    let text = "@Grace Hopper look";
    assert_eq!(
        note(&mallory, ours, "note", text, &grace_id.to_string()).await,
        StatusCode::NOT_FOUND
    );
    let theirs = create_inbox(&app, &mallory, "").await;
    let said = Visitor::new(&app, &theirs).say("Hi").await;
    let theirs: ConversationId = said["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("id");
    assert_eq!(
        note(&mallory, theirs, "note", text, &grace_id.to_string()).await,
        StatusCode::SEE_OTHER,
        "the note is kept"
    );
    let stored = message_with(&app, other_org, theirs, text).await;
    assert_eq!(mentions_of(&stored), Value::Null, "Grace is not theirs");
    assert_eq!(mentioned(&app, other_org).await, []);
    assert_eq!(mentioned(&app, olivia.org_id().await).await, []);
    assert!(
        app.state
            .store
            .list_messages(olivia.org_id().await, ours, true)
            .await
            .expect("messages")
            .iter()
            .all(|m| m.text != text),
        "nothing written in our conversation"
    );
}

#[tokio::test]
async fn a_note_through_the_api_mentions_by_name() {
    let app = spawn_app().await;
    let olivia = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = olivia.org_id().await;
    let grace = join_as(&app, &olivia, "Grace Hopper", "grace@acme.test").await;
    let grace_id = grace.user_id().await;
    let inbox = create_inbox(&app, &olivia, "").await;
    let said = Visitor::new(&app, &inbox).say("Hello").await;
    let conversation = said["conversation_id"].as_str().expect("id").to_owned();
    let key = create_key(&app, &olivia, "Notes").await;
    let response = app
        .api()
        .post(app.url(&format!("/api/v1/conversations/{conversation}/messages")))
        .bearer_auth(&key)
        .json(&json!({ "text": "Over to you, @grace hopper.", "kind": "note" }))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["metadata"]["mentions"], json!([grace_id]));
    let events = mentioned(&app, org).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].user_id, grace_id);
}
