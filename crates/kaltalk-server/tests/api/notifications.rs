//! The bell: a member's notifications on their page and in the count of every page's
//! bell and title, followed to their conversation (read on the way), marked read one by
//! one or all at once; another member's notification does not exist for them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat_helpers::{Socket, Visitor, create_inbox, session_cookie};
use crate::helpers::{location, spawn_app};
use crate::teams::join;

#[tokio::test]
async fn the_bell_lists_counts_opens_and_reads_a_members_notifications() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let agent = join(&app, &owner, "agent@acme.test", "agent").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let mut ids = Vec::new();
    for text in ["Where is my parcel?", "Can I return this?"] {
        let visitor = Visitor::new(&app, &inbox);
        let sent: Value = visitor
            .send(json!({ "text": text }))
            .await
            .json()
            .await
            .expect("json");
        ids.push(sent["conversation_id"].as_str().expect("id").to_owned());
    }
    let before = agent.get_html("/notifications").await;
    assert!(
        before.contains("No notifications yet."),
        "nothing before the notifier runs"
    );
    assert_eq!(
        kaltalk_server::notifications::notify_pending(&app.state)
            .await
            .expect("notify"),
        4,
        "two new conversations, told to both members"
    );

    // The page lists them newest first; the bell and the title count them.
    let page = agent.get_html("/notifications").await;
    assert!(
        page.contains("<title>(2) Notifications · KalTalk</title>"),
        "{page}"
    );
    assert!(page.contains("<span data-notification-count>2</span>"));
    assert_eq!(
        page.matches(r#"<span class="what">New conversation</span>"#)
            .count(),
        2
    );
    assert!(page.contains("2 unread."));
    let unread: Value = agent
        .get("/notifications/unread")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unread, json!({ "unread": 2 }));
    let every_page = agent.get_html("/settings/profile").await;
    assert!(
        every_page.contains("<title>(2) "),
        "the count is in every page's title"
    );

    // Following one opens its conversation and reads it.
    let org = owner.org_id().await;
    let me = agent.user_id().await;
    let mine = app
        .state
        .store
        .list_notifications(org, me, 10)
        .await
        .expect("list");
    let newest = &mine[0].notification;
    let opened = agent
        .get(&format!("/notifications/{}/open", newest.id))
        .await;
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&opened), format!("/inbox?view=all&c={}", ids[1]));
    assert_eq!(
        app.state
            .store
            .unread_notifications(org, me)
            .await
            .expect("count"),
        1
    );

    // The owner's own are hers: Grace's are not found for her, and she has her own two.
    let theirs = owner
        .submit(
            "/notifications",
            &format!("/notifications/{}/read", mine[1].notification.id),
            &[],
        )
        .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        owner
            .get(&format!("/notifications/{}/open", newest.id))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.state
            .store
            .unread_notifications(org, me)
            .await
            .expect("count"),
        1,
        "unchanged"
    );

    let read = agent
        .submit(
            "/notifications",
            &format!("/notifications/{}/read", mine[1].notification.id),
            &[],
        )
        .await;
    assert_eq!(read.status(), StatusCode::SEE_OTHER);
    let page = agent.get_html("/notifications").await;
    assert!(
        page.contains("<title>Notifications · KalTalk</title>"),
        "no count once all are read"
    );
    assert!(page.contains("Nothing unread."));
    assert!(!page.contains("Mark all read"));

    let owners = owner.get_html("/notifications").await;
    assert!(owners.contains("Mark all read") && owners.contains("2 unread."));
    let all = owner
        .submit("/notifications", "/notifications/read-all", &[])
        .await;
    assert_eq!(all.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.state
            .store
            .unread_notifications(org, owner.user_id().await)
            .await
            .expect("count"),
        0
    );
}

#[tokio::test]
async fn a_member_turns_a_kind_off_and_the_bell_stops_telling_them() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let agent = join(&app, &owner, "agent@acme.test", "agent").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let page = agent.get_html("/notifications").await;
    assert_eq!(
        page.matches(r#"name="in_app""#).count(),
        6,
        "one choice per kind"
    );
    assert_eq!(
        page.matches(" checked>").count(),
        15,
        "in the app and by push everything, by email what waits on the member, by default (names and words in pushes, and the sound, are off)"
    );

    // Everything but new conversations, in the app; no pushes.
    let keep = ["assigned", "handed_over", "new_message", "mentioned"];
    let fields: Vec<(&str, &str)> = keep.iter().map(|k| ("in_app", *k)).collect();
    let saved = agent
        .submit("/notifications", "/notifications/preferences", &fields)
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = agent.get_html(&location(&saved)).await;
    assert!(page.contains("Saved: you are told about what is ticked."));
    assert!(
        page.contains(r#"value="new_conversation" aria-label="In the app: New conversations in my team (or, with no team, anywhere)">"#),
        "unticked: {page}"
    );
    assert_eq!(page.matches(" checked>").count(), 4);

    // A made-up kind is refused with the reason, and nothing changes.
    let refused = agent
        .submit(
            "/notifications",
            "/notifications/preferences",
            &[("in_app", "everything")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("Choose among the kinds listed.")
    );
    assert_eq!(
        agent
            .get_html("/notifications")
            .await
            .matches(" checked>")
            .count(),
        4
    );

    let visitor = Visitor::new(&app, &inbox);
    visitor.send(json!({ "text": "Hello?" })).await;
    kaltalk_server::notifications::notify_pending(&app.state)
        .await
        .expect("notify");
    let org = owner.org_id().await;
    let store = &app.state.store;
    assert_eq!(
        store
            .unread_notifications(org, agent.user_id().await)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .unread_notifications(org, owner.user_id().await)
            .await
            .expect("count"),
        1,
        "the owner still hears"
    );
}

#[tokio::test]
async fn the_conversation_on_an_agents_screen_does_not_notify_them() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let agent = join(&app, &owner, "agent@acme.test", "agent").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Hello?").await;
    let id = first["conversation_id"].as_str().expect("id").to_owned();
    let (org, me) = (owner.org_id().await, agent.user_id().await);
    let store = &app.state.store;
    store
        .assign_conversation(
            org,
            id.parse().expect("uuid"),
            Some(me),
            Some(owner.user_id().await),
            app.clock_now(),
        )
        .await
        .expect("assign");
    kaltalk_server::notifications::notify_pending(&app.state)
        .await
        .expect("notify");
    let before = store.unread_notifications(org, me).await.expect("count");

    // The agent's dashboard says it shows the conversation; a typing frame after it, heard
    // by the widget, proves the server has read it.
    let cookie = session_cookie(&app, "agent@acme.test").await;
    let mut dashboard = Socket::agent(&app, &cookie, None).await;
    let mut widget = visitor.socket(None).await;
    widget.next_of("message.created").await;
    dashboard
        .send(json!({ "type": "viewing", "conversation_id": id }))
        .await;
    dashboard
        .send(json!({ "type": "typing", "conversation_id": id, "typing": true }))
        .await;
    widget.next_of("typing").await;
    // A moment later (the manual clock), so each message has its own time.
    app.clock.advance(chrono::Duration::seconds(30));
    visitor.say("Are you there?").await;
    kaltalk_server::notifications::notify_pending(&app.state)
        .await
        .expect("notify");
    assert_eq!(
        store.unread_notifications(org, me).await.expect("count"),
        before,
        "on screen"
    );

    // Back to the list: the next message is news again.
    dashboard
        .send(json!({ "type": "viewing", "conversation_id": null }))
        .await;
    dashboard
        .send(json!({ "type": "typing", "conversation_id": id, "typing": false }))
        .await;
    widget.next_of("typing").await;
    app.clock.advance(chrono::Duration::seconds(30));
    visitor.say("Hello??").await;
    kaltalk_server::notifications::notify_pending(&app.state)
        .await
        .expect("notify");
    assert_eq!(
        store.unread_notifications(org, me).await.expect("count"),
        before + 1
    );
    let listed = store.list_notifications(org, me, 50).await.expect("list");
    assert_eq!(
        listed.len() as i64,
        before + 1,
        "what was on screen is not listed"
    );
}

#[tokio::test]
async fn a_member_who_is_not_online_gets_one_email_per_conversation_with_what_is_still_unread() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let agent = join(&app, &owner, "grace@acme.test", "agent").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let (org, grace, olivia) = (
        owner.org_id().await,
        agent.user_id().await,
        owner.user_id().await,
    );
    let store = &app.state.store;
    let notify = || kaltalk_server::notifications::notify_pending(&app.state);
    let emails_to = |to: &'static str| async move {
        store
            .list_emails(org, 100)
            .await
            .expect("outbox")
            .into_iter()
            .filter(|e| e.to_address == to && e.kind == "notification")
            .collect::<Vec<_>>()
    };

    // Olivia is online (her dashboard's socket is open); Grace is not.
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let _dashboard = Socket::agent(&app, &cookie, None).await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("My parcel never came").await;
    let conversation = first["conversation_id"].as_str().expect("id").to_owned();
    store
        .assign_conversation(
            org,
            conversation.parse().expect("uuid"),
            Some(grace),
            Some(olivia),
            app.clock_now(),
        )
        .await
        .expect("assign");
    notify().await.expect("notify");
    app.clock.advance(chrono::Duration::seconds(30));
    visitor.say("Hello? Anyone?").await;
    notify().await.expect("notify");
    app.run_jobs().await;
    assert!(
        emails_to("grace@acme.test").await.is_empty(),
        "gathering for 3 minutes"
    );

    app.clock.advance(chrono::Duration::minutes(3));
    app.run_jobs().await;
    let emails = emails_to("grace@acme.test").await;
    assert_eq!(emails.len(), 1, "one email for the conversation");
    let email = &emails[0];
    assert_eq!(email.subject, "Assigned to you and 1 more · KalTalk");
    assert!(
        email.text_body.contains("Hi Member agent,"),
        "{}",
        email.text_body
    );
    assert!(email.text_body.contains("- Assigned to you at "));
    assert!(email.text_body.contains("- New message at "));
    let newest = &store
        .list_notifications(org, grace, 10)
        .await
        .expect("list")[0];
    assert!(
        email
            .text_body
            .contains(&format!("/notifications/{}/open", newest.notification.id)),
        "links to the newest"
    );
    for words in ["parcel", "Anyone"] {
        assert!(
            !email.text_body.contains(words) && !email.html_body.contains(words),
            "never the customer's words"
        );
    }
    assert!(
        emails_to("olivia@acme.test").await.is_empty(),
        "Olivia was online: the bell told her"
    );

    // A mention starts a new email; read before it is due, it is not sent.
    let noted = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{conversation}/messages"),
            &[
                ("text", "@Member agent can you check the tracking?"),
                ("kind", "note"),
            ],
        )
        .await;
    assert_eq!(noted.status(), StatusCode::SEE_OTHER);
    notify().await.expect("notify");
    let unread = store
        .list_notifications(org, grace, 10)
        .await
        .expect("list");
    agent
        .get(&format!(
            "/notifications/{}/open",
            unread[0].notification.id
        ))
        .await;
    app.clock.advance(chrono::Duration::minutes(3));
    app.run_jobs().await;
    assert_eq!(
        emails_to("grace@acme.test").await.len(),
        1,
        "all read: no email"
    );

    // Email turned off for every kind: nothing more.
    agent
        .submit(
            "/notifications",
            "/notifications/preferences",
            &[("in_app", "mentioned")],
        )
        .await;
    app.clock.advance(chrono::Duration::seconds(30));
    visitor.say("Still waiting").await;
    notify().await.expect("notify");
    app.clock.advance(chrono::Duration::minutes(3));
    app.run_jobs().await;
    assert_eq!(emails_to("grace@acme.test").await.len(), 1);
}
