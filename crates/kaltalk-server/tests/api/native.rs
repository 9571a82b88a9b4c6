//! Native apps: the app signs in for a device-bound bearer token (the sign-in page's rate
//! limits, 401 problems, an organization to pick when there are several), the token
//! works on the API and the dashboard socket and signs out; only an app's token registers
//! a device (not an API key, not a browser), and only for a platform the operator
//! configured. Pushes reach a fake FCM (its token endpoint verifies the RS256 assertion;
//! the access token is cached; a 401 costs one refresh; `UNREGISTERED` forgets the
//! device) and a fake APNs (HTTP/2 over TLS with a test CA; topic, push type, priority,
//! the ES256 provider token reused for 50 minutes; 410 forgets the device). Profile lists
//! the apps and signs them out; the export lists the devices; deleting the account
//! deletes them.

use chrono::Duration;
use kaltalk_core::chat::AiSettings;
use kaltalk_server::notifications::notify_pending;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::chat_helpers::{Socket, Visitor, create_inbox};
use crate::helpers::{PASSWORD, TestApp, spawn_app_with};
use crate::native_fakes::{APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, FCM_SCOPE, FakeApns, FakeFcm};
use crate::teams::join;

const FCM_TOKEN: &str = "fcm-registration-token:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx";
const APNS_TOKEN: &str = "8d6f1c2e9b7a4f3e8d6f1c2e9b7a4f3e8d6f1c2e9b7a4f3e8d6f1c2e9b7a4f3e";

async fn native_app(fcm: Option<&FakeFcm>, apns: Option<&FakeApns>) -> TestApp {
    let fcm = fcm.map(|f| (f.base.clone(), f.service_account.clone()));
    let apns = apns.map(|a| (a.base.clone(), a.key_path.clone(), a.ca_path.clone()));
    spawn_app_with(move |config| {
        config.login_limits.per_account = 3;
        if let Some((base, account)) = fcm {
            config.push.fcm_base_url = base;
            config.push.fcm_service_account = Some(account);
        }
        if let Some((base, key, ca)) = apns {
            config.push.apns_base_url = base;
            config.push.apns_key_path = Some(key);
            config.push.apns_key_id = Some(APNS_KEY_ID.into());
            config.push.apns_team_id = Some(APNS_TEAM_ID.into());
            config.push.apns_topic = Some(APNS_TOPIC.into());
            config.push.apns_ca_path = Some(ca);
        }
    })
    .await
}

async fn post_json(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = app.api().post(app.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("POST")
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.api()
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("DELETE")
}

/// Signs the app in as `email`; returns the token.
async fn sign_in(app: &TestApp, email: &str) -> String {
    let response = post_json(
        app,
        "/api/v1/sessions",
        None,
        &json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("token").to_owned()
}

async fn register(
    app: &TestApp,
    token: &str,
    platform: &str,
    push_token: &str,
) -> reqwest::Response {
    post_json(
        app,
        "/api/v1/devices",
        Some(token),
        &json!({ "platform": platform, "push_token": push_token, "os_version": "17.4.1", "app_version": "2.3.0" }),
    )
    .await
}

async fn notify_and_run(app: &TestApp) {
    notify_pending(&app.state).await.expect("notify");
    app.run_jobs().await;
}

async fn problem(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "a problem document"
    );
    response.json().await.expect("json")
}

#[tokio::test]
async fn an_app_signs_in_for_a_device_bound_token_that_the_api_and_socket_take_and_that_signs_out()
{
    let app = native_app(None, None).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;

    // Wrong credentials: a 401 problem; three of them lock the account for this address,
    // on the sign-in page too (one limit for both).
    let wrong = post_json(
        &app,
        "/api/v1/sessions",
        None,
        &json!({ "email": "olivia@acme.test", "password": "not it" }),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(problem(wrong).await["code"], "unauthorized");
    let missing = post_json(
        &app,
        "/api/v1/sessions",
        None,
        &json!({ "email": "olivia@acme.test" }),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let token = sign_in(&app, "olivia@acme.test").await;
    assert!(token.starts_with("kt_app_"), "{token}");
    // An Idempotency-Key is no way to read a token again: a sign-in's answer is never kept.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let response = app
            .api()
            .post(app.url("/api/v1/sessions"))
            .header("idempotency-key", "same-key")
            .json(&json!({ "email": "olivia@acme.test", "password": PASSWORD }))
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(!response.headers().contains_key("idempotent-replayed"));
        let body: Value = response.json().await.expect("json");
        tokens.push(body["token"].as_str().expect("token").to_owned());
    }
    assert_ne!(tokens[0], tokens[1]);
    // Stored hashed only: the token itself finds nothing.
    let now = app.clock_now();
    let store = &app.state.store;
    assert!(
        store
            .find_app_session(&kaltalk_core::token::hash(&token), now)
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        store
            .find_app_session(&token, now)
            .await
            .expect("find")
            .is_none()
    );
    // Not a browser's session either.
    assert!(
        store
            .find_session(&kaltalk_core::token::hash(&token), now)
            .await
            .expect("find")
            .is_none()
    );

    // The token is the person on the API…
    let me: Value = app
        .api()
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["actor"]["kind"], "user");
    assert_eq!(me["actor"]["email"], "olivia@acme.test");
    // …but not a dashboard cookie.
    let as_cookie = app
        .api()
        .get(app.url("/inbox"))
        .header("cookie", format!("kaltalk_session={token}"))
        .send()
        .await
        .expect("inbox");
    assert_eq!(
        as_cookie.status(),
        StatusCode::SEE_OTHER,
        "to the login page"
    );

    // The dashboard socket takes it in `Authorization`, and hears the organization.
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let mut request = format!("ws://{}/inbox/ws", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let mut socket = Socket::connect(request).await;
    Visitor::new(&app, &inbox)
        .say("Hello from the widget")
        .await;
    let frame = socket.next_of("message.created").await;
    assert_eq!(frame["payload"]["message"]["text"], "Hello from the widget");
    let mut wrong_token = format!("ws://{}/inbox/ws", app.addr)
        .into_client_request()
        .expect("request");
    wrong_token.headers_mut().insert(
        "authorization",
        "Bearer kt_app_not-a-token".parse().expect("header"),
    );
    assert!(
        tokio_tungstenite::connect_async(wrong_token).await.is_err(),
        "a wrong token is refused"
    );

    // Devices belong to a person: an API key may not register one, nor a browser.
    let key = crate::api::create_key(&app, &owner, "Integration").await;
    let by_key = register(&app, &key, "fcm", FCM_TOKEN).await;
    assert_eq!(by_key.status(), StatusCode::FORBIDDEN);
    let by_browser = owner
        .client
        .post(format!("{}/api/v1/devices", owner.base))
        .header("origin", &owner.base)
        .json(&json!({ "platform": "fcm", "push_token": FCM_TOKEN, "os_version": "14", "app_version": "2.3.0" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(by_browser.status(), StatusCode::FORBIDDEN);
    // A platform the operator has no credentials for is refused, saying so.
    let unconfigured = register(&app, &token, "apns", APNS_TOKEN).await;
    assert_eq!(unconfigured.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = problem(unconfigured).await;
    assert!(body.to_string().contains("push.apns_key_path"), "{body}");
    // Nothing beyond what the privacy policy lists.
    let extra = post_json(
        &app,
        "/api/v1/devices",
        Some(&token),
        &json!({ "platform": "fcm", "push_token": FCM_TOKEN, "os_version": "14", "app_version": "2.3.0", "device_name": "Olivia's Pixel" }),
    )
    .await;
    assert_eq!(extra.status(), StatusCode::BAD_REQUEST);

    // Signing out: the token stops working at once.
    assert_eq!(
        delete(&app, "/api/v1/sessions/current", &token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let after = app
        .api()
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        delete(&app, "/api/v1/sessions/current", &key)
            .await
            .status(),
        StatusCode::FORBIDDEN,
        "an API key is no app session"
    );

    // Someone in two organizations says which.
    let olivia = owner.user_id().await;
    let globex = app
        .state
        .store
        .create_organization(
            olivia,
            &kaltalk_core::OrgName::parse("org_name", "Globex").expect("name"),
            app.clock_now(),
        )
        .await
        .expect("second organization")
        .id;
    let ambiguous = post_json(
        &app,
        "/api/v1/sessions",
        None,
        &json!({ "email": "olivia@acme.test", "password": PASSWORD }),
    )
    .await;
    assert_eq!(ambiguous.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = problem(ambiguous).await;
    assert!(body.to_string().contains(&globex.to_string()), "{body}");
    let chosen = post_json(
        &app,
        "/api/v1/sessions",
        None,
        &json!({ "email": "olivia@acme.test", "password": PASSWORD, "organization_id": globex.to_string() }),
    )
    .await;
    assert_eq!(chosen.status(), StatusCode::CREATED);
    let chosen: Value = chosen.json().await.expect("json");
    assert_eq!(chosen["organization"]["id"], globex.to_string());

    // Two more wrong passwords make three: the account is closed to this address, in the
    // app and on the sign-in page alike.
    for _ in 0..2 {
        let wrong = post_json(
            &app,
            "/api/v1/sessions",
            None,
            &json!({ "email": "olivia@acme.test", "password": "still not it" }),
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = post_json(
        &app,
        "/api/v1/sessions",
        None,
        &json!({ "email": "olivia@acme.test", "password": PASSWORD }),
    )
    .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let page = app
        .browser()
        .post_form(
            "/login",
            &[
                ("email", "olivia@acme.test"),
                ("password", PASSWORD),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn fcm_gets_each_push_with_a_verified_assertion_a_cached_token_one_refresh_after_a_401_and_unregistered_forgets_the_device()
 {
    let fcm = FakeFcm::start().await;
    let app = native_app(Some(&fcm), None).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let org = owner.org_id().await;
    let olivia = owner.user_id().await;
    let token = sign_in(&app, "olivia@acme.test").await;
    let bad = register(&app, &token, "fcm", "not a token!").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let registered = register(&app, &token, "fcm", FCM_TOKEN).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let device: Value = registered.json().await.expect("json");
    assert_eq!(device["platform"], "fcm");
    assert_eq!(device["os_version"], "17.4.1");
    // Registering again from the same app is the same one device.
    assert_eq!(
        register(&app, &token, "fcm", FCM_TOKEN).await.status(),
        StatusCode::CREATED
    );
    let apps = app
        .state
        .store
        .list_app_sessions(olivia, app.clock_now())
        .await
        .expect("apps");
    assert_eq!(apps.len(), 1);
    assert!(apps[0].device.is_some());

    // A new conversation: one push, after one token request whose assertion verified.
    let said = Visitor::new(&app, &inbox).say("My parcel never came").await;
    notify_and_run(&app).await;
    let pushes = fcm.pushes().await;
    assert_eq!(pushes.len(), 1, "{pushes:#?}");
    let push = &pushes[0];
    assert_eq!(push.problems, Vec::<String>::new(), "{push:#?}");
    assert_eq!(push.status, 200);
    let message = &push.body["message"];
    assert_eq!(message["token"], FCM_TOKEN);
    assert_eq!(
        message["notification"]["body"], "New message from a customer",
        "no text by default"
    );
    assert!(
        !push.body.to_string().contains("parcel"),
        "the customer's words stay out"
    );
    let conversation = said["conversation_id"]
        .as_str()
        .expect("id")
        .replace('-', "");
    assert_eq!(message["data"]["conversation_id"], conversation);
    assert_eq!(message["data"]["reason"], "new_conversation");
    assert!(
        message["data"]["url"]
            .as_str()
            .expect("url")
            .starts_with("/notifications/")
    );
    assert_eq!(message["android"]["priority"], "normal");
    let tokens = fcm.token_requests().await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["scope"], FCM_SCOPE);
    assert_eq!(tokens[0]["aud"], format!("{}/token", fcm.base));

    // The next push reuses the access token.
    Visitor::new(&app, &inbox).say("Second question").await;
    notify_and_run(&app).await;
    let pushes = fcm.pushes().await;
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[1].bearer, pushes[0].bearer, "the cached token");
    assert_eq!(fcm.token_requests().await.len(), 1);

    // FCM stops taking it (401): one new token, the same push once more, and done.
    fcm.answer_next(&[401]).await;
    Visitor::new(&app, &inbox).say("Third question").await;
    notify_and_run(&app).await;
    let pushes = fcm.pushes().await;
    assert_eq!(pushes.len(), 4, "refused, then sent again: {pushes:#?}");
    assert_eq!(pushes[2].status, 401);
    assert_eq!(pushes[3].status, 200);
    assert_ne!(pushes[3].bearer, pushes[2].bearer, "a fresh token");
    assert_eq!(pushes[3].body, pushes[2].body, "the same message");
    assert_eq!(fcm.token_requests().await.len(), 2, "exactly one refresh");

    // A token near its end is replaced before it is used.
    app.clock.advance(Duration::minutes(56));
    Visitor::new(&app, &inbox).say("Fourth question").await;
    notify_and_run(&app).await;
    assert_eq!(fcm.token_requests().await.len(), 3);
    assert_eq!(fcm.pushes().await.len(), 5);

    // The app was uninstalled: UNREGISTERED forgets the device, and nothing goes after.
    fcm.answer_next(&[404]).await;
    Visitor::new(&app, &inbox).say("Fifth question").await;
    notify_and_run(&app).await;
    assert_eq!(fcm.pushes().await.len(), 6);
    let apps = app
        .state
        .store
        .list_app_sessions(olivia, app.clock_now())
        .await
        .expect("apps");
    assert!(apps[0].device.is_none(), "forgotten after UNREGISTERED");
    Visitor::new(&app, &inbox).say("Sixth question").await;
    notify_and_run(&app).await;
    assert_eq!(fcm.pushes().await.len(), 6);
    let _ = org;
}

#[tokio::test]
async fn apns_gets_each_push_over_http2_with_its_headers_and_a_reused_provider_token_and_410_forgets_the_device()
 {
    let apns = FakeApns::start().await;
    let app = native_app(None, Some(&apns)).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let org = owner.org_id().await;
    let olivia = owner.user_id().await;
    let token = sign_in(&app, "olivia@acme.test").await;
    assert_eq!(
        register(&app, &token, "apns", "zz-not-hex").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        register(&app, &token, "fcm", FCM_TOKEN).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "no FCM here"
    );
    assert_eq!(
        register(&app, &token, "apns", APNS_TOKEN).await.status(),
        StatusCode::CREATED
    );

    // A new conversation: priority 5, through the test CA, over HTTP/2.
    let said = Visitor::new(&app, &inbox).say("Where is my order?").await;
    notify_and_run(&app).await;
    let pushes = apns.pushes().await;
    assert_eq!(pushes.len(), 1);
    let first = &pushes[0];
    assert_eq!(first.problems, Vec::<String>::new(), "{first:#?}");
    assert_eq!(first.status, 200);
    let conversation = said["conversation_id"]
        .as_str()
        .expect("id")
        .replace('-', "");
    assert_eq!(first.headers["apns-priority"], "5");
    assert_eq!(first.headers["apns-collapse-id"], conversation.as_str());
    assert_eq!(first.body["aps"]["thread-id"], conversation);
    assert_eq!(
        first.body["aps"]["alert"]["body"],
        "New message from a customer"
    );
    assert!(!first.body.to_string().contains("order"));

    // A handover (the bot has nothing to say): priority 10, the same provider token.
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
    Visitor::new(&app, &inbox).say("I need a person").await;
    notify_and_run(&app).await; // the bot's turn hands over
    notify_and_run(&app).await;
    let pushes = apns.pushes().await;
    let handover = pushes
        .iter()
        .find(|p| p.body["reason"] == "handed_over")
        .unwrap_or_else(|| panic!("a handover push: {pushes:#?}"));
    assert_eq!(handover.problems, Vec::<String>::new());
    assert_eq!(handover.headers["apns-priority"], "10");
    assert!(
        pushes.iter().all(|p| p.bearer == first.bearer),
        "one provider token, reused"
    );

    // Still the same at 49 minutes; after 50, a new one.
    app.clock.advance(Duration::minutes(49));
    Visitor::new(&app, &inbox)
        .say("A question at 49 minutes")
        .await;
    notify_and_run(&app).await;
    notify_and_run(&app).await;
    let pushes = apns.pushes().await;
    assert!(pushes.len() >= 3, "{pushes:#?}");
    assert!(
        pushes.iter().all(|p| p.bearer == first.bearer),
        "reused at 49 minutes"
    );
    app.clock.advance(Duration::minutes(2));
    Visitor::new(&app, &inbox).say("Later question").await;
    notify_and_run(&app).await;
    notify_and_run(&app).await;
    let pushes = apns.pushes().await;
    let last = pushes.last().expect("a push");
    assert_eq!(last.problems, Vec::<String>::new());
    assert_ne!(
        last.bearer, first.bearer,
        "a provider token is reused 50 minutes at most"
    );
    let sent = pushes.len();

    // The app was uninstalled: 410 forgets the device.
    apns.answer_next(&[410]).await;
    save_ai_off(&app, org).await;
    Visitor::new(&app, &inbox).say("Anyone?").await;
    notify_and_run(&app).await;
    assert_eq!(apns.pushes().await.len(), sent + 1);
    assert_eq!(apns.pushes().await[sent].status, 410);
    let apps = app
        .state
        .store
        .list_app_sessions(olivia, app.clock_now())
        .await
        .expect("apps");
    assert!(apps[0].device.is_none(), "forgotten after 410");
    Visitor::new(&app, &inbox).say("Still there?").await;
    notify_and_run(&app).await;
    assert_eq!(apns.pushes().await.len(), sent + 1);
}

async fn save_ai_off(app: &TestApp, org: kaltalk_core::OrgId) {
    app.state
        .store
        .save_ai_settings(org, &AiSettings::default(), app.clock_now())
        .await
        .expect("AI off");
}

#[tokio::test]
async fn profile_lists_the_app_and_signs_it_out_the_export_lists_its_device_and_deleting_the_account_deletes_it()
 {
    let fcm = FakeFcm::start().await;
    let app = native_app(Some(&fcm), None).await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let agent = join(&app, &owner, "grace@acme.test", "agent").await;
    let org = owner.org_id().await;
    let grace = agent.user_id().await;

    let first = sign_in(&app, "grace@acme.test").await;
    assert_eq!(
        register(&app, &first, "fcm", FCM_TOKEN).await.status(),
        StatusCode::CREATED
    );
    let profile = agent.get_html("/settings/profile").await;
    assert!(
        profile.contains("The app on Android 17.4.1, version 2.3.0"),
        "{profile}"
    );

    // The export lists the device with what the policy names, and not its push token.
    let export: Value = agent
        .get("/settings/profile/export")
        .await
        .json()
        .await
        .expect("export");
    let devices = export["account"]["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 1, "{export:#}");
    assert_eq!(devices[0]["platform"], "fcm");
    assert_eq!(devices[0]["os_version"], "17.4.1");
    assert_eq!(devices[0]["app_version"], "2.3.0");
    assert!(!export.to_string().contains(FCM_TOKEN));
    assert!(
        export["account"]["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .any(|s| s["kind"] == "app")
    );

    // Signing the app out from Profile ends its token and its device.
    let apps = app
        .state
        .store
        .list_app_sessions(grace, app.clock_now())
        .await
        .expect("apps");
    let signed_out = agent
        .submit(
            "/settings/profile",
            &format!("/settings/profile/apps/{}/sign-out", apps[0].id),
            &[],
        )
        .await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    let me = app
        .api()
        .get(app.url("/api/v1/me"))
        .bearer_auth(&first)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert!(
        app.state
            .store
            .list_app_sessions(grace, app.clock_now())
            .await
            .expect("apps")
            .is_empty()
    );
    // Someone else's app is not hers to sign out.
    let olivias = sign_in(&app, "olivia@acme.test").await;
    let olivia = owner.user_id().await;
    let olivias_app = app
        .state
        .store
        .list_app_sessions(olivia, app.clock_now())
        .await
        .expect("apps")[0]
        .id;
    let refused = agent
        .submit(
            "/settings/profile",
            &format!("/settings/profile/apps/{olivias_app}/sign-out"),
            &[],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.api()
            .get(app.url("/api/v1/me"))
            .bearer_auth(&olivias)
            .send()
            .await
            .expect("me")
            .status(),
        StatusCode::OK
    );

    // Unregistering the device keeps the app signed in, without pushes.
    let second = sign_in(&app, "grace@acme.test").await;
    assert_eq!(
        register(&app, &second, "fcm", FCM_TOKEN).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        delete(&app, "/api/v1/devices", &second).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&app, "/api/v1/devices", &second).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        register(&app, &second, "fcm", FCM_TOKEN).await.status(),
        StatusCode::CREATED
    );

    // Deleting her account deletes the session and the device with it.
    let session = app
        .state
        .store
        .list_app_sessions(grace, app.clock_now())
        .await
        .expect("apps")[0]
        .id;
    assert!(
        app.state
            .store
            .device_of_session(session)
            .await
            .expect("device")
            .is_some()
    );
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
            .list_app_sessions(grace, app.clock_now())
            .await
            .expect("apps")
            .is_empty()
    );
    assert!(
        app.state
            .store
            .device_of_session(session)
            .await
            .expect("device")
            .is_none()
    );
    let _ = org;
}
