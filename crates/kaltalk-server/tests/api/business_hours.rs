//! Business hours with the manual clock: set on the inbox settings page; outside them the
//! widget says when the team is back and every channel's conversation gets the
//! out-of-office reply once; the bot still answers, and the reply waits for its handover.

use chrono::{DateTime, Utc};
use kaltalk_core::OrgId;
use kaltalk_core::chat::{Handling, SenderKind};
use kaltalk_server::jobs::Ran;
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::messages::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, TestApp, spawn_app};

/// Friday 9 January 2026, 20:00 in Berlin (19:00 UTC): closed until Monday 09:00.
const FRIDAY_EVENING: &str = "2026-01-09T19:00:00Z";
/// Monday 12 January 2026, 09:00 in Berlin.
const MONDAY_OPENING: &str = "2026-01-12T08:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

/// Moves the server's clock to `when` (forward or back).
fn set_clock(app: &TestApp, when: &str) {
    app.clock.advance(at(when) - app.clock_now());
}

/// Berlin, Monday to Friday 09:00–17:00, on, with the default reply: through the form.
async fn berlin_hours(owner: &Browser, inbox: &Inbox, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut fields: Vec<(String, String)> = vec![
        ("hours_enabled".into(), "yes".into()),
        ("time_zone".into(), "Europe/Berlin".into()),
        (
            "out_of_office".into(),
            kaltalk_core::hours::DEFAULT_OUT_OF_OFFICE.into(),
        ),
    ];
    for day in ["mon", "tue", "wed", "thu", "fri"] {
        fields.push((format!("{day}_open"), "yes".into()));
        fields.push((format!("{day}_from"), "09:00".into()));
        fields.push((format!("{day}_to"), "17:00".into()));
    }
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.extend_from_slice(extra);
    owner
        .submit(
            &format!("/settings/inboxes/{}", inbox.id),
            &format!("/settings/inboxes/{}/hours", inbox.id),
            &pairs,
        )
        .await
}

/// A page's text with the quotes askama escapes put back.
fn unescaped(html: String) -> String {
    html.replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
}

async fn messages(app: &TestApp, org: OrgId, id: kaltalk_core::ConversationId) -> Vec<Message> {
    app.state
        .store
        .list_messages(org, id, false)
        .await
        .expect("messages")
}

fn automatic(messages: &[Message]) -> Vec<&Message> {
    messages.iter().filter(|m| m.is_automatic()).collect()
}

const MONDAY_REPLY: &str = "Thanks for your message. We're away right now and will reply when we're back on Monday at 09:00 (Europe/Berlin time).";

async fn config(visitor: &Visitor<'_>) -> Value {
    visitor
        .get(&format!(
            "/widget/v1/inboxes/{}/config",
            visitor.inbox_token
        ))
        .await
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn outside_hours_the_widget_says_when_the_team_is_back_and_a_conversation_gets_one_reply() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let visitor = Visitor::new(&app, &inbox);
    set_clock(&app, FRIDAY_EVENING);

    // Off by default: always open (the team's presence alone decides "online").
    let before = config(&visitor).await;
    assert_eq!(before["open"], true);
    assert_eq!(before["back_at"], Value::Null);

    let saved = berlin_hours(&owner, &inbox, &[]).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = unescaped(
        owner
            .get_html(&format!(
                "/settings/inboxes/{}?notice=hours-saved",
                inbox.id
            ))
            .await,
    );
    assert!(page.contains("Business hours saved."), "{page}");
    assert!(
        page.contains("Closed now: back on Monday at 09:00 (Europe/Berlin time)."),
        "{page}"
    );
    assert!(page.contains(MONDAY_REPLY), "the preview: {page}");

    let closed = config(&visitor).await;
    assert_eq!(closed["open"], false);
    assert_eq!(closed["agents_online"], false);
    assert_eq!(closed["back_at"], json!(at(MONDAY_OPENING)));
    assert_eq!(closed["closes_at"], Value::Null);

    let mut visitor = visitor;
    let said = visitor.say("Is anyone there?").await;
    let id = said["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let first = messages(&app, org, id).await;
    let replies = automatic(&first);
    assert_eq!(replies.len(), 1, "{first:?}");
    assert_eq!(replies[0].text, MONDAY_REPLY);
    assert_eq!(replies[0].sender_kind, SenderKind::Bot);

    // The socket's presence frame says the same as the config.
    let mut socket = visitor.socket(None).await;
    let frame = socket.next_of("presence").await;
    assert_eq!(frame["agents_online"], false);
    assert_eq!(frame["open"], false);
    assert_eq!(frame["back_at"], json!(at(MONDAY_OPENING)));

    // An hour later, a second message: no second reply.
    app.clock.advance(chrono::Duration::hours(1));
    visitor.say("Hello?").await;
    let second = messages(&app, org, id).await;
    assert_eq!(second.len(), 3, "{second:?}");
    assert_eq!(automatic(&second).len(), 1);

    // The team sees it labelled as the automatic reply.
    let shown = owner.get_html(&format!("/inbox?view=all&c={id}")).await;
    assert!(shown.contains("Automatic reply"), "{shown}");

    // Inside hours a new conversation gets none, and the widget says the team is open.
    set_clock(&app, "2026-01-12T09:00:00Z");
    let mut morning = Visitor::new(&app, &inbox);
    let said = morning.say("Good morning").await;
    let id = said["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    assert!(automatic(&messages(&app, org, id).await).is_empty());
    let open = config(&morning).await;
    assert_eq!(open["open"], true);
    assert_eq!(open["back_at"], Value::Null);
    assert_eq!(
        open["closes_at"],
        json!(at("2026-01-12T16:00:00Z")),
        "17:00 in Berlin"
    );
}

#[tokio::test]
async fn an_email_conversation_gets_the_reply_by_email_and_an_api_one_gets_it_too() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    set_clock(&app, FRIDAY_EVENING);

    // An email inbox with the hours.
    let created = owner
        .submit(
            "/settings/inboxes",
            "/settings/inboxes/email",
            &[("address", "support@acme.test"), ("email_name", "")],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let inboxes = app.state.store.list_inboxes(org).await.expect("inboxes");
    let email_inbox = inboxes
        .iter()
        .find(|i| i.email_address.is_some())
        .expect("email inbox")
        .clone();
    assert_eq!(
        berlin_hours(&owner, &email_inbox, &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    let email_inbox = app
        .state
        .store
        .get_inbox(org, email_inbox.id)
        .await
        .expect("inbox");
    let details = json!({ "subject": "Broken vase", "from": "ada@customer.test" });
    let conversation =
        crate::chat_helpers::ada_emails(&app, &email_inbox, "first@customer.test", &details)
            .await
            .conversation;
    let replies = messages(&app, org, conversation.id).await;
    let reply = automatic(&replies);
    assert_eq!(reply.len(), 1, "{replies:?}");
    assert_eq!(reply[0].email_fact("delivery"), Some("pending"));
    assert_eq!(app.run_jobs().await, vec![Ran::Done("email.reply".into())]);
    let sent = app.last_email_to(org, "ada@customer.test").await;
    assert_eq!(sent.subject, "Re: Broken vase");
    assert!(sent.text_body.contains(MONDAY_REPLY), "{}", sent.text_body);

    // API inbox: the conversation an external system starts gets the reply, once.
    let key = crate::api::create_key(&app, &owner, "Backend").await;
    let api = |method: reqwest::Method, path: &str, body: Value| {
        app.api()
            .request(method, app.url(&format!("/api/v1{path}")))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let inbox: Value = api(
        reqwest::Method::POST,
        "/inboxes",
        json!({ "kind": "api", "name": "App" }),
    )
    .await
    .expect("create")
    .json()
    .await
    .expect("json");
    let api_inbox = app
        .state
        .store
        .get_inbox(
            org,
            inbox["id"].as_str().expect("id").parse().expect("uuid"),
        )
        .await
        .expect("inbox");
    assert_eq!(
        berlin_hours(&owner, &api_inbox, &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    let started = api(
        reqwest::Method::POST,
        &format!("/inboxes/{}/conversations", api_inbox.id),
        json!({ "contact": { "email": "grace@customer.test" }, "text": "Order 42?" }),
    )
    .await
    .expect("start");
    assert_eq!(started.status(), StatusCode::CREATED);
    let started: Value = started.json().await.expect("json");
    let id: kaltalk_core::ConversationId = started["conversation"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let next = api(
        reqwest::Method::POST,
        &format!("/conversations/{id}/messages"),
        json!({ "kind": "incoming", "text": "Anyone?" }),
    )
    .await
    .expect("message");
    assert_eq!(
        next.status(),
        StatusCode::CREATED,
        "{:?}",
        next.text().await
    );
    let all = messages(&app, org, id).await;
    assert_eq!(all.len(), 3, "{all:?}");
    let reply = automatic(&all);
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0].text, MONDAY_REPLY);
}

#[tokio::test]
async fn with_the_bot_on_it_answers_and_the_reply_waits_for_its_handover() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    assert_eq!(
        crate::knowledge::add_text(&owner, "Returns policy", crate::knowledge::RETURNS)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    crate::ai::enable_ai(&app, &owner, "0.3").await;
    let inbox = create_inbox(&app, &owner, "").await;
    set_clock(&app, FRIDAY_EVENING);
    assert_eq!(
        berlin_hours(&owner, &inbox, &[]).await.status(),
        StatusCode::SEE_OTHER
    );

    let mut visitor = Visitor::new(&app, &inbox);
    let said = visitor.say("How many days until my refund arrives?").await;
    let id: kaltalk_core::ConversationId = said["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    assert_eq!(app.run_jobs().await, vec![Ran::Done("ai.turn".into())]);
    let answered = messages(&app, org, id).await;
    assert_eq!(
        answered
            .iter()
            .map(|m| (m.sender_kind, m.is_automatic()))
            .collect::<Vec<_>>(),
        [(SenderKind::Contact, false), (SenderKind::Bot, false)],
        "the bot answers, no out-of-office reply: {answered:?}"
    );

    // "Talk to a person", outside hours: the handover, then the reply.
    let handed = visitor.post("/widget/v1/handoff", json!({})).await;
    assert_eq!(handed.status(), StatusCode::NO_CONTENT);
    let conversation = app
        .state
        .store
        .get_conversation(org, id)
        .await
        .expect("conversation");
    assert_eq!(conversation.handling, Handling::WaitingHuman);
    let after = messages(&app, org, id).await;
    let texts: Vec<&str> = after.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!(texts[2], kaltalk_store::ai::HANDOFF_MESSAGE);
    assert_eq!(texts[3], MONDAY_REPLY);
}

#[tokio::test]
async fn the_settings_form_refuses_a_bad_schedule_on_the_page_and_another_orgs_inbox_is_not_found()
{
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let refused = owner
        .submit(
            &format!("/settings/inboxes/{}", inbox.id),
            &format!("/settings/inboxes/{}/hours", inbox.id),
            &[
                ("hours_enabled", "yes"),
                ("time_zone", "Mars/Olympus"),
                ("mon_open", "yes"),
                ("mon_from", "17:00"),
                ("mon_to", "09:00"),
                ("holiday_new", "someday"),
                ("out_of_office", "Back {back}."),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = unescaped(refused.text().await.expect("page"));
    assert!(
        page.contains("On Monday, 17:00–09:00 closes before it opens."),
        "{page}"
    );
    assert!(
        page.contains("\"someday\" is not a date like 2026-12-25."),
        "{page}"
    );
    assert!(
        page.contains("Back {back}."),
        "what was typed stays: {page}"
    );
    let stored = app
        .state
        .store
        .get_inbox(org, inbox.id)
        .await
        .expect("inbox");
    assert!(stored.hours().is_none(), "nothing saved");

    let wrong_zone = owner
        .submit(
            &format!("/settings/inboxes/{}", inbox.id),
            &format!("/settings/inboxes/{}/hours", inbox.id),
            &[("time_zone", "Mars/Olympus"), ("out_of_office", "Back.")],
        )
        .await;
    assert_eq!(wrong_zone.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = wrong_zone.text().await.expect("page");
    assert!(page.contains("is not a time zone we know"), "{page}");

    // A holiday added, then removed by unticking it.
    let with_holiday = berlin_hours(&owner, &inbox, &[("holiday_new", "2026-12-25")]).await;
    assert_eq!(with_holiday.status(), StatusCode::SEE_OTHER);
    let stored = app
        .state
        .store
        .get_inbox(org, inbox.id)
        .await
        .expect("inbox");
    let holidays = stored.hours().expect("hours").hours.holidays().to_vec();
    assert_eq!(
        holidays,
        ["2026-12-25".parse::<chrono::NaiveDate>().expect("date")]
    );
    let page = owner
        .get_html(&format!("/settings/inboxes/{}", inbox.id))
        .await;
    assert!(page.contains("Friday 25 December 2026"), "{page}");
    berlin_hours(&owner, &inbox, &[]).await;
    let stored = app
        .state
        .store
        .get_inbox(org, inbox.id)
        .await
        .expect("inbox");
    assert!(stored.hours().expect("hours").hours.holidays().is_empty());

    // Another organization's owner: not found.
    let other = app.sign_up("Mallory", "mallory@evil.test", "Evil").await;
    let response = other
        .submit(
            "/settings/inboxes",
            &format!("/settings/inboxes/{}/hours", inbox.id),
            &[("time_zone", "UTC"), ("out_of_office", "Pwned")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let stored = app
        .state
        .store
        .get_inbox(org, inbox.id)
        .await
        .expect("inbox");
    assert_ne!(
        stored.hours().map(|h| h.out_of_office.as_str()),
        Some("Pwned")
    );
}
