//! Web Push against a loopback push service that plays the browser: the member's browser
//! registers its subscription; a handover reaches it encrypted (`aes128gcm`, decrypted
//! there with `http_ece`), signed (a VAPID JWT checked against `k=`), with `TTL`,
//! `Urgency` and `Topic`; no customer words unless the member chose them; 410 forgets the
//! browser; 429 with `Retry-After` is retried once, not sooner; quiet hours and the
//! per-kind choice keep pushes back; an endpoint the SSRF guard refuses is forgotten;
//! Profile lists the browser and removes it.

use chrono::{Duration, Timelike};
use kaltalk_core::chat::AiSettings;
use kaltalk_server::notifications::notify_pending;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, PASSWORD, TestApp, csrf_token, location, spawn_app_with};
use crate::push_service::PushService;
use crate::teams::join;

async fn push_app() -> TestApp {
    spawn_app_with(|config| {
        config.push.allow_loopback = true;
        config.push.contact = Some("mailto:ops@acme.test".into());
    })
    .await
}

/// Registers `subscription` for the browser's member, as the dashboard's script does.
async fn register(
    browser: &Browser,
    subscription: &Value,
    csrf: Option<&str>,
) -> reqwest::Response {
    let token = match csrf {
        Some(token) => token.to_owned(),
        None => csrf_token(&browser.get_html("/notifications").await),
    };
    browser
        .client
        .post(format!("{}/notifications/push-subscriptions", browser.base))
        .header("origin", &browser.base)
        .header("x-csrf-token", token)
        .json(subscription)
        .send()
        .await
        .expect("POST")
}

/// Runs the notifier, then every due job; returns the pushes the service has now.
async fn notify_and_send(app: &TestApp, push: &PushService) -> Vec<Value> {
    notify_pending(&app.state).await.expect("notify");
    app.run_jobs().await;
    push.received().await
}

fn problems(push: &Value) -> Vec<String> {
    push["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_handover_reaches_the_members_browser_encrypted_signed_and_without_the_customers_words() {
    let push = PushService::start();
    let app = push_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let agent = join(&app, &owner, "grace@acme.test", "agent").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let org = owner.org_id().await;

    // The key browsers subscribe with: an uncompressed P-256 point, the same for every
    // instance on this database (a second start reads it back).
    let key: Value = agent
        .get("/notifications/vapid-public-key")
        .await
        .json()
        .await
        .expect("json");
    let public = key["public_key"].as_str().expect("key").to_owned();
    assert_eq!(public.len(), 87, "65 bytes in base64url: {public}");
    assert!(public.starts_with('B'), "0x04: uncompressed");
    let again =
        kaltalk_server::notifications::push::Vapid::ensure(&app.state.store, app.clock_now())
            .await
            .expect("keys");
    assert_eq!(again.public_key, public, "kept, not made again");
    assert_eq!(
        app.browser()
            .get("/notifications/vapid-public-key")
            .await
            .status(),
        StatusCode::SEE_OTHER,
        "signed in only"
    );

    // Registering: the CSRF token is required, and bad subscriptions are refused with why.
    let subscription = push.subscription().await;
    assert_eq!(
        register(&agent, &subscription, Some("not-the-token"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let mut bad_key = subscription.clone();
    bad_key["keys"]["p256dh"] = json!("AAAA");
    let refused = register(&agent, &bad_key, None).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("not a P-256 public key")
    );
    let mut plain_http = subscription.clone();
    plain_http["endpoint"] = json!("http://push.example.com/1");
    assert_eq!(
        register(&agent, &plain_http, None).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        register(
            &agent,
            &json!({ "endpoint": subscription["endpoint"] }),
            None
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST,
        "no keys"
    );
    let registered = register(&agent, &subscription, None).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    // The same browser again is the same subscription.
    assert_eq!(
        register(&agent, &subscription, None).await.status(),
        StatusCode::CREATED
    );
    let grace = agent.user_id().await;
    assert_eq!(
        app.state
            .store
            .list_push_subscriptions(org, grace)
            .await
            .expect("list")
            .len(),
        1
    );

    // The bot answers first; with nothing in the knowledge base it hands over.
    app.state
        .store
        .save_ai_settings(
            org,
            &AiSettings {
                enabled: true,
                ..AiSettings::default()
            },
            app.clock_now(),
        )
        .await
        .expect("AI on");
    let mut visitor = Visitor::new(&app, &inbox);
    let secret_words = "My card number is 4111 and my parcel never came";
    let sent = visitor.say(secret_words).await;
    let conversation = sent["conversation_id"].as_str().expect("id").to_owned();
    notify_pending(&app.state).await.expect("notify");
    app.run_jobs().await; // the bot's turn: no answer, so it hands over
    let pushes = notify_and_send(&app, &push).await;
    assert_eq!(pushes.len(), 1, "Grace's one browser: {pushes:#?}");
    let handover = &pushes[0];
    assert_eq!(problems(handover), Vec::<String>::new(), "{handover:#?}");
    assert_eq!(handover["status"], 201);
    let headers = &handover["headers"];
    assert_eq!(headers["urgency"], "high", "someone waits for a person");
    let topic = conversation.replace('-', "");
    assert_eq!(headers["topic"], topic.as_str(), "one per conversation");
    assert_eq!(headers["ttl"], "21600");
    assert_eq!(headers["content-encoding"], "aes128gcm");
    let claims = &handover["vapid"]["claims"];
    assert_eq!(claims["sub"], "mailto:ops@acme.test");
    assert_eq!(claims["aud"], push.url.as_str());
    assert_eq!(handover["vapid"]["k"], public.as_str());
    let payload = &handover["payload"];
    assert_eq!(payload["title"], "The bot handed it over");
    assert_eq!(payload["body"], "New message from a customer");
    assert_eq!(payload["tag"], format!("conversation-{conversation}"));
    let mine = app
        .state
        .store
        .list_notifications(org, grace, 10)
        .await
        .expect("list");
    assert_eq!(
        payload["url"],
        format!("/notifications/{}/open", mine[0].notification.id)
    );
    assert!(
        !payload.to_string().contains("4111") && !payload.to_string().contains("parcel"),
        "no customer words in a push by default: {payload}"
    );

    // Grace chooses message text in pushes; assigned to her, she reads the customer.
    let settings = agent
        .submit(
            "/notifications",
            "/notifications/preferences",
            &[
                ("in_app", "assigned"),
                ("push", "assigned"),
                ("push", "handed_over"),
                ("push_text", "yes"),
                ("time_zone", "Europe/Berlin"),
            ],
        )
        .await;
    assert_eq!(settings.status(), StatusCode::SEE_OTHER);
    app.state
        .store
        .assign_conversation(
            org,
            conversation.parse().expect("uuid"),
            Some(grace),
            Some(owner.user_id().await),
            app.clock_now(),
        )
        .await
        .expect("assign");
    let pushes = notify_and_send(&app, &push).await;
    assert_eq!(pushes.len(), 2, "{pushes:#?}");
    let assigned = &pushes[1];
    assert_eq!(problems(assigned), Vec::<String>::new());
    assert_eq!(assigned["headers"]["urgency"], "normal");
    assert_eq!(assigned["payload"]["title"], "A customer: Assigned to you");
    assert_eq!(assigned["payload"]["body"], secret_words);

    // Profile lists the browser, the export has it, and removing it stops the pushes.
    let profile = agent.get_html("/settings/profile").await;
    assert!(profile.contains("A browser using 127.0.0.1"), "{profile}");
    assert!(profile.contains("last push"));
    let export = agent
        .get("/settings/profile/export")
        .await
        .text()
        .await
        .expect("export");
    assert!(export.contains(subscription["endpoint"].as_str().expect("endpoint")));
    let id = app
        .state
        .store
        .list_push_subscriptions(org, grace)
        .await
        .expect("list")[0]
        .id;
    let removed = agent
        .submit(
            "/settings/profile",
            &format!("/notifications/push-subscriptions/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert!(
        agent
            .get_html(&location(&removed))
            .await
            .contains("That device gets no more pushes.")
    );
    assert!(
        app.state
            .store
            .list_push_subscriptions(org, grace)
            .await
            .expect("list")
            .is_empty()
    );
    // Olivia cannot remove Grace's (it is not found for her).
    register(&agent, &subscription, None).await;
    let id = app
        .state
        .store
        .list_push_subscriptions(org, grace)
        .await
        .expect("list")[0]
        .id;
    let theirs = owner
        .submit(
            "/settings/profile",
            &format!("/notifications/push-subscriptions/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);

    // Deleting her account takes her browsers with it.
    let deleted = agent
        .submit(
            "/settings/profile",
            "/settings/profile/delete",
            &[("delete_password", PASSWORD)],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert!(
        app.state
            .store
            .list_push_subscriptions(org, grace)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn a_busy_push_service_is_retried_once_when_it_said_and_a_gone_browser_is_forgotten() {
    let push = PushService::start();
    let app = push_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let org = owner.org_id().await;
    let olivia = owner.user_id().await;
    let subscription = push.subscription().await;
    assert_eq!(
        register(&owner, &subscription, None).await.status(),
        StatusCode::CREATED
    );

    // A subscription whose push service sits on a private network is refused by the SSRF
    // guard when pushed to, and forgotten (no retry would change it).
    let mut private = push.subscription().await;
    private["endpoint"] = json!("https://10.1.2.3/push/1");
    assert_eq!(
        register(&owner, &private, None).await.status(),
        StatusCode::CREATED
    );

    push.answer_next(json!([{ "status": 429, "retry_after": "120" }]))
        .await;
    Visitor::new(&app, &inbox).say("Hello?").await;
    assert_eq!(notify_and_send(&app, &push).await.len(), 1, "tried at once");
    let left = app
        .state
        .store
        .list_push_subscriptions(org, olivia)
        .await
        .expect("list");
    assert_eq!(left.len(), 1, "the private one is forgotten");
    assert_eq!(
        left[0].endpoint,
        subscription["endpoint"].as_str().expect("endpoint")
    );
    app.clock.advance(Duration::seconds(119));
    assert_eq!(
        notify_and_send(&app, &push).await.len(),
        1,
        "not sooner than Retry-After"
    );
    app.clock.advance(Duration::seconds(1));
    let pushes = notify_and_send(&app, &push).await;
    assert_eq!(pushes.len(), 2, "once it may");
    assert_eq!(pushes[1]["status"], 201);
    assert_eq!(
        pushes[0]["payload"], pushes[1]["payload"],
        "the same push again"
    );
    app.clock.advance(Duration::hours(2));
    assert_eq!(
        notify_and_send(&app, &push).await.len(),
        2,
        "exactly one retry"
    );

    // The browser unsubscribed: 410 forgets it, and nothing is queued for it after.
    push.answer_next(json!([{ "status": 410 }])).await;
    Visitor::new(&app, &inbox).say("Anyone?").await;
    assert_eq!(notify_and_send(&app, &push).await.len(), 3);
    assert!(
        app.state
            .store
            .list_push_subscriptions(org, olivia)
            .await
            .expect("list")
            .is_empty(),
        "forgotten after 410"
    );
    Visitor::new(&app, &inbox).say("Still there?").await;
    assert_eq!(notify_and_send(&app, &push).await.len(), 3);
}

#[tokio::test]
async fn quiet_hours_and_the_per_kind_choice_keep_pushes_back_but_not_the_bell() {
    let push = PushService::start();
    let app = push_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let org = owner.org_id().await;
    let olivia = owner.user_id().await;
    assert_eq!(
        register(&owner, &push.subscription().await, None)
            .await
            .status(),
        StatusCode::CREATED
    );

    // Quiet for the next hour on her clock in Tokyo (UTC+9, no daylight saving).
    let tokyo = app.clock_now() + Duration::hours(9);
    let from = format!("{:02}:{:02}", tokyo.hour(), tokyo.minute());
    let later = tokyo + Duration::hours(1);
    let until = format!("{:02}:{:02}", later.hour(), later.minute());
    let every_kind = [
        "new_conversation",
        "assigned",
        "handed_over",
        "new_message",
        "mentioned",
    ];
    let mut fields: Vec<(&str, &str)> = every_kind.iter().map(|k| ("in_app", *k)).collect();
    fields.extend(every_kind.iter().map(|k| ("push", *k)));
    fields.extend([
        ("quiet_from", from.as_str()),
        ("quiet_until", until.as_str()),
        ("time_zone", "Asia/Tokyo"),
    ]);
    let saved = owner
        .submit("/notifications", "/notifications/preferences", &fields)
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = owner.get_html("/notifications").await;
    assert!(page.contains(&format!(r#"value="{from}""#)), "{page}");
    assert!(page.contains(r#"<option value="Asia/Tokyo" selected>"#));

    Visitor::new(&app, &inbox).say("Hello at night").await;
    assert!(notify_and_send(&app, &push).await.is_empty(), "quiet");
    assert_eq!(
        app.state
            .store
            .unread_notifications(org, olivia)
            .await
            .expect("count"),
        1,
        "the bell still counts"
    );

    // After the quiet hour, pushes again.
    app.clock.advance(Duration::minutes(61));
    Visitor::new(&app, &inbox).say("Hello in the morning").await;
    assert_eq!(notify_and_send(&app, &push).await.len(), 1);

    // New conversations kept to the bell only: no push, still counted.
    let mut fields: Vec<(&str, &str)> = every_kind.iter().map(|k| ("in_app", *k)).collect();
    fields.extend(every_kind[1..].iter().map(|k| ("push", *k)));
    owner
        .submit("/notifications", "/notifications/preferences", &fields)
        .await;
    Visitor::new(&app, &inbox).say("Hello again").await;
    assert_eq!(
        notify_and_send(&app, &push).await.len(),
        1,
        "no push for it"
    );
    assert_eq!(
        app.state
            .store
            .unread_notifications(org, olivia)
            .await
            .expect("count"),
        3
    );

    // The other way round: pushed but kept out of the bell.
    let mut fields: Vec<(&str, &str)> = every_kind[1..].iter().map(|k| ("in_app", *k)).collect();
    fields.extend(every_kind.iter().map(|k| ("push", *k)));
    owner
        .submit("/notifications", "/notifications/preferences", &fields)
        .await;
    Visitor::new(&app, &inbox).say("Hello once more").await;
    assert_eq!(notify_and_send(&app, &push).await.len(), 2, "pushed");
    assert_eq!(
        app.state
            .store
            .unread_notifications(org, olivia)
            .await
            .expect("count"),
        3,
        "not counted"
    );

    // Half a range, or the same start and end, is explained, and nothing changes.
    for (from, until, why) in [
        ("22:00", "", "both a start and an end"),
        ("22:00", "22:00", "same time"),
        ("25:00", "07:00", "25:00"),
    ] {
        let refused = owner
            .submit(
                "/notifications",
                "/notifications/preferences",
                &[("quiet_from", from), ("quiet_until", until)],
            )
            .await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{from}-{until}"
        );
        assert!(refused.text().await.expect("body").contains(why), "{why}");
    }
    let settings = app
        .state
        .store
        .notification_settings(org, olivia)
        .await
        .expect("settings");
    assert_eq!(settings.time_zone.name(), "Asia/Tokyo");
}
