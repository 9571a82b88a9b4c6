//! One intake for every channel: the same customer, writing through the widget, by email
//! or through an API inbox, gets the same decision about who handles the conversation
//! (the bot first when the AI agent is on, people when it is off or the contact opted out
//! of AI; outside business hours, the out-of-office reply once, and still the bot when it
//! is on; routed to the inbox's team, round robin among its available members). Each story goes through the channel's real entry point: the widget's HTTP API,
//! the email channel's `receive` (what the SMTP listener and the IMAP poller call), the
//! REST API's inbox endpoint.

use kaltalk_core::chat::{
    AiSettings, Availability, EmailSettings, Handling, IdentityMode, InboxKind, WidgetSettings,
};
use kaltalk_core::hours::{BusinessHours, DEFAULT_OUT_OF_OFFICE, InboxHours, Week};
use kaltalk_core::{ConversationId, OrgId};
use kaltalk_store::contacts::ContactFields;
use kaltalk_store::conversations::Conversation;
use kaltalk_store::inboxes::{Inbox, InboxSettings, NewInbox};
use kaltalk_store::messages::Message;
use kaltalk_store::routing::InboxRouting;
use kaltalk_store::{JobState, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::create_key;
use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, TestApp, spawn_app};
use crate::teams::join;

#[derive(Debug, Clone, Copy)]
enum Channel {
    Widget,
    Email,
    Api,
}

const CHANNELS: [Channel; 3] = [Channel::Widget, Channel::Email, Channel::Api];

/// An organization with one inbox of each kind, its owner, and an API key.
struct Org {
    id: OrgId,
    owner: Browser,
    web: Inbox,
    email: Inbox,
    api: Inbox,
    key: String,
}

async fn org(app: &TestApp) -> Org {
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let id = owner.org_id().await;
    let web = create_inbox(app, &owner, "example.com").await;
    let mut settings = web.settings.0.clone();
    settings.identity = IdentityMode::Optional;
    app.state
        .store
        .update_inbox(
            id,
            web.id,
            "Website",
            InboxSettings::Widget(&settings),
            app.clock_now(),
        )
        .await
        .expect("identity on");
    let web = app.state.store.get_inbox(id, web.id).await.expect("inbox");
    let store = &app.state.store;
    let new = |kind, name: &str, token: &str, email| NewInbox {
        org_id: id,
        kind,
        name: name.into(),
        public_token: token.into(),
        identity_secret: "secret".into(),
        settings: WidgetSettings::default(),
        email,
    };
    let email_settings = EmailSettings {
        ai_replies: true,
        ..EmailSettings::default()
    };
    let email = store
        .create_inbox(
            &new(
                InboxKind::Email,
                "Support",
                "em_support",
                Some(("support@acme.test".into(), email_settings)),
            ),
            app.clock_now(),
        )
        .await
        .expect("email inbox");
    let api = store
        .create_inbox(&new(InboxKind::Api, "App", "ai_app", None), app.clock_now())
        .await
        .expect("api inbox");
    let key = create_key(app, &owner, "CRM").await;
    Org {
        id,
        owner,
        web,
        email,
        api,
        key,
    }
}

async fn set_ai(store: &Store, org: OrgId, enabled: bool) {
    let settings = AiSettings {
        enabled,
        ..AiSettings::default()
    };
    store
        .save_ai_settings(
            org,
            &settings,
            kaltalk_core::Clock::now(&kaltalk_core::SystemClock),
        )
        .await
        .expect("AI settings");
}

/// The customer `n` (external id `customer-n`, email `customer-n@example.com`) writes
/// `text` through `channel`; returns the conversation as stored after it.
async fn customer_writes(
    app: &TestApp,
    org: &Org,
    channel: Channel,
    n: usize,
    text: &str,
) -> Conversation {
    let external_id = format!("customer-{n}");
    let email = format!("customer-{n}@example.com");
    let id: ConversationId = match channel {
        Channel::Widget => {
            let mut visitor = Visitor::new(app, &org.web);
            let identity = json!({
                "id": external_id,
                "email": email,
                "hash": kaltalk_server::widget::sign(&org.web.identity_secret, &external_id),
            });
            let response = visitor
                .send(json!({ "text": text, "identity": identity }))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED, "widget");
            let body: Value = response.json().await.expect("json");
            visitor.token = body["visitor_token"].as_str().map(str::to_owned);
            body["conversation_id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid")
        }
        Channel::Email => {
            let raw = format!(
                "From: Customer {n} <{email}>\r\nTo: support@acme.test\r\nSubject: Help {n}\r\n\
                 Message-ID: <m{n}-{}@example.com>\r\n\r\n{text}\r\n",
                uuid::Uuid::now_v7().simple()
            );
            let arrival = kaltalk_server::email::Arrival {
                source: "smtp",
                recipient: Some("support@acme.test"),
            };
            match kaltalk_server::email::receive(&app.state, &org.email, raw.into_bytes(), arrival)
                .await
                .expect("email")
            {
                kaltalk_store::email::Received::Message { conversation, .. } => conversation.id,
                other => panic!("the email was not a customer message: {other:?}"),
            }
        }
        Channel::Api => {
            let response = app
                .api()
                .post(app.url(&format!("/api/v1/inboxes/{}/conversations", org.api.id)))
                .header("authorization", format!("Bearer {}", org.key))
                .json(&json!({ "contact": { "external_id": external_id, "email": email }, "text": text }))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), StatusCode::CREATED, "api");
            let body: Value = response.json().await.expect("json");
            body["conversation"]["id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid")
        }
    };
    app.state
        .store
        .get_conversation(org.id, id)
        .await
        .expect("conversation")
}

/// The `ai.turn` jobs queued for a conversation.
async fn bot_turns(store: &Store, conversation: ConversationId) -> usize {
    store
        .list_jobs(JobState::Queued, 1000)
        .await
        .expect("jobs")
        .iter()
        .filter(|job| {
            job.kind == "ai.turn" && job.payload.0["conversation_id"] == json!(conversation)
        })
        .count()
}

#[tokio::test]
async fn every_channel_gets_the_same_decision_from_the_intake() {
    let app = spawn_app().await;
    let org = org(&app).await;
    let store = &app.state.store;
    let mut n = 0;

    // The AI agent off: people handle every new conversation, and no bot turn is queued.
    for channel in CHANNELS {
        n += 1;
        let conversation = customer_writes(&app, &org, channel, n, "Where is my order?").await;
        assert_eq!(
            conversation.handling,
            Handling::Human,
            "{channel:?}, AI off"
        );
        assert_eq!(
            bot_turns(store, conversation.id).await,
            0,
            "{channel:?}, AI off"
        );
    }

    // On: the bot takes the first turn everywhere.
    set_ai(store, org.id, true).await;
    for channel in CHANNELS {
        n += 1;
        let conversation = customer_writes(&app, &org, channel, n, "Where is my order?").await;
        assert_eq!(conversation.handling, Handling::Bot, "{channel:?}, AI on");
        assert_eq!(
            bot_turns(store, conversation.id).await,
            1,
            "{channel:?}, AI on"
        );
    }

    // A contact who opted out of AI never meets the bot, whichever way they write.
    for channel in CHANNELS {
        n += 1;
        let fields = ContactFields {
            external_id: Some(format!("customer-{n}")),
            email: Some(format!("customer-{n}@example.com")),
            ..ContactFields::default()
        };
        let contact = store
            .create_contact(org.id, &fields, app.clock_now())
            .await
            .expect("contact")
            .value;
        store
            .set_ai_opt_out(org.id, contact.id, true, app.clock_now())
            .await
            .expect("opt out");
        let conversation = customer_writes(&app, &org, channel, n, "Where is my order?").await;
        assert_eq!(
            conversation.contact_id, contact.id,
            "{channel:?}: the known contact"
        );
        assert_eq!(
            conversation.handling,
            Handling::Human,
            "{channel:?}, opted out"
        );
        assert_eq!(
            bot_turns(store, conversation.id).await,
            0,
            "{channel:?}, opted out"
        );
    }
}

/// The automatic out-of-office replies in a conversation.
async fn out_of_office_replies(store: &Store, org: OrgId, id: ConversationId) -> Vec<Message> {
    let messages = store.list_messages(org, id, false).await.expect("messages");
    messages
        .into_iter()
        .filter(|m| m.is_automatic() && m.text.contains("We're away right now"))
        .collect()
}

#[tokio::test]
async fn outside_business_hours_every_channel_gets_one_out_of_office_reply_and_the_bot_still_answers()
 {
    let app = spawn_app().await;
    let org = org(&app).await;
    let store = &app.state.store;
    // Berlin office hours on all three inboxes; the clock on Friday 9 January 2026 at
    // 20:00 in Berlin, closed until Monday 09:00.
    let hours = InboxHours {
        enabled: true,
        hours: BusinessHours::new("Europe/Berlin", Week::office_hours(), Vec::new())
            .expect("hours"),
        out_of_office: DEFAULT_OUT_OF_OFFICE.into(),
    };
    for inbox in [&org.web, &org.email, &org.api] {
        store
            .save_business_hours(org.id, inbox.id, &hours, app.clock_now())
            .await
            .expect("hours");
    }
    let friday_evening: chrono::DateTime<chrono::Utc> =
        "2026-01-09T19:00:00Z".parse().expect("time");
    app.clock.advance(friday_evening - app.clock_now());
    let mut n = 0;

    // The AI agent off: people will answer on Monday, and the customer hears so once,
    // however many times they write.
    for channel in CHANNELS {
        n += 1;
        let first = customer_writes(&app, &org, channel, n, "Where is my order?").await;
        assert_eq!(first.handling, Handling::Human, "{channel:?}, closed");
        let again = customer_writes(&app, &org, channel, n, "Hello?").await;
        // The widget continues the visitor's open conversation; a new email that is not a
        // reply, and the API's "start a conversation", open another, with its own reply.
        if matches!(channel, Channel::Widget) {
            assert_eq!(again.id, first.id, "{channel:?}: the same conversation");
        } else {
            assert_ne!(again.id, first.id, "{channel:?}: a new conversation");
            assert_eq!(
                out_of_office_replies(store, org.id, again.id).await.len(),
                1,
                "{channel:?}: the new conversation's own reply"
            );
        }
        let replies = out_of_office_replies(store, org.id, first.id).await;
        assert_eq!(replies.len(), 1, "{channel:?}: one out-of-office reply");
        assert!(
            replies[0]
                .text
                .contains("Monday at 09:00 (Europe/Berlin time)"),
            "{channel:?}: {:?}",
            replies[0].text
        );
        assert_eq!(bot_turns(store, first.id).await, 0, "{channel:?}, AI off");
    }

    // On: the bot answers at any hour, and nobody is told to wait for people yet.
    set_ai(store, org.id, true).await;
    for channel in CHANNELS {
        n += 1;
        let conversation = customer_writes(&app, &org, channel, n, "Where is my order?").await;
        assert_eq!(
            conversation.handling,
            Handling::Bot,
            "{channel:?}, bot at night"
        );
        assert_eq!(bot_turns(store, conversation.id).await, 1, "{channel:?}");
        assert!(
            out_of_office_replies(store, org.id, conversation.id)
                .await
                .is_empty(),
            "{channel:?}: no out-of-office reply while the bot answers"
        );
    }
}

#[tokio::test]
async fn every_channel_routes_to_the_inboxs_team_and_auto_assigns_its_available_members() {
    let app = spawn_app().await;
    let org = org(&app).await;
    let store = &app.state.store;
    let now = app.clock_now();
    let owner = org.owner.user_id().await;
    let agent = join(&app, &org.owner, "agent@acme.test", "agent")
        .await
        .user_id()
        .await;
    let team = store
        .create_team(org.id, "Support", now)
        .await
        .expect("team")
        .value
        .id;
    for user in [owner, agent] {
        store
            .add_team_member(org.id, team, user, now)
            .await
            .expect("member");
        store
            .set_availability(org.id, user, Availability::Online, false, now)
            .await
            .expect("online");
    }
    let routing = InboxRouting {
        team_id: Some(team),
        auto_assign: true,
        hand_back_on_offline: false,
        waiting_alert_minutes: Some(kaltalk_store::waiting::DEFAULT_WAITING_ALERT_MINUTES),
    };
    for inbox in [&org.web, &org.email, &org.api] {
        store
            .set_inbox_routing(org.id, inbox.id, routing, now)
            .await
            .expect("routing");
    }
    let mut n = 0;

    // Both online: the team's conversation, to each member in turn, whatever the channel.
    let mut assignees = Vec::new();
    for channel in CHANNELS.into_iter().chain(CHANNELS) {
        n += 1;
        let conversation = customer_writes(&app, &org, channel, n, "Where is my order?").await;
        assert_eq!(conversation.team_id, Some(team), "{channel:?}: the team's");
        assert_eq!(conversation.handling, Handling::Human, "{channel:?}");
        assignees.push(conversation.assignee_id.expect("auto-assigned"));
    }
    assert!(
        assignees.windows(2).all(|pair| pair[0] != pair[1]),
        "round robin across channels: {assignees:?}"
    );

    // The agent busy: everything goes to the one who is available.
    store
        .set_availability(org.id, agent, Availability::Busy, false, now)
        .await
        .expect("busy");
    for channel in CHANNELS {
        n += 1;
        let conversation = customer_writes(&app, &org, channel, n, "Where is my order?").await;
        assert_eq!(
            conversation.assignee_id,
            Some(owner),
            "{channel:?}, agent busy"
        );
    }

    // The AI agent on: still the team's, but the bot answers first and nobody is assigned.
    set_ai(store, org.id, true).await;
    for channel in CHANNELS {
        n += 1;
        let conversation = customer_writes(&app, &org, channel, n, "Where is my order?").await;
        assert_eq!(conversation.team_id, Some(team), "{channel:?}, bot first");
        assert_eq!(
            conversation.handling,
            Handling::Bot,
            "{channel:?}, bot first"
        );
        assert_eq!(conversation.assignee_id, None, "{channel:?}, bot first");
    }
}
