use chrono::Duration;
use kaltalk_core::EmailAddress;
use reqwest::StatusCode;

use crate::helpers::{Browser, PASSWORD, link_in, location, path_of, spawn_app};

#[tokio::test]
async fn sign_up_creates_a_bcrypt_cost_12_account_owner_session_and_org() {
    let app = spawn_app().await;
    let browser = app
        .sign_up("Ada Lovelace", "Ada@Example.com", "Analytical Engines")
        .await;

    let home = browser.get_html("/").await;
    assert!(home.contains("Welcome, Ada Lovelace"), "{home}");
    let me = browser.me().await;
    assert_eq!(me["organization"]["name"], "Analytical Engines");
    assert_eq!(me["actor"]["role"], "owner");
    assert_eq!(
        me["actor"]["email"], "ada@example.com",
        "address is normalized"
    );

    let email = EmailAddress::parse("e", "ada@example.com").expect("email");
    let user = app
        .state
        .store
        .find_user_by_email(&email)
        .await
        .expect("query")
        .expect("user");
    assert!(
        user.password_hash.starts_with("$2b$12$"),
        "{}",
        user.password_hash
    );
    assert!(user.email_verified_at.is_none());
}

#[tokio::test]
async fn sign_up_explains_each_invalid_field_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let browser = app.browser();
    let long = "a".repeat(73);
    let response = browser
        .post_form(
            "/signup",
            &[
                ("name", "Ada"),
                ("email", "not-an-email"),
                ("password", &long),
                ("org_name", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    assert!(
        html.contains("Use at most 72 bytes (this one has 73)"),
        "{html}"
    );
    assert!(html.contains("Enter an email address like name@example.com."));
    assert!(
        html.contains("Enter the organization&#39;s name.")
            || html.contains("Enter the organization's name.")
    );
    assert!(html.contains("confirm that you are 16 or older"));
    assert!(html.contains("value=\"Ada\""), "the typed name is kept");
    assert!(html.contains("aria-invalid=\"true\""));

    let short = browser
        .post_form(
            "/signup",
            &[
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("password", "123456789"),
                ("org_name", "Acme"),
                ("age_confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        short
            .text()
            .await
            .expect("body")
            .contains("Use at least 10 characters.")
    );
    assert!(
        app.state
            .store
            .find_user_by_email(&EmailAddress::parse("e", "ada@example.com").expect("e"))
            .await
            .expect("q")
            .is_none()
    );
}

#[tokio::test]
async fn sign_up_with_a_taken_address_says_so() {
    let app = spawn_app().await;
    app.sign_up("Ada", "ada@example.com", "Acme").await;
    let response = app
        .browser()
        .post_form(
            "/signup",
            &[
                ("name", "Eve"),
                ("email", "ADA@example.com"),
                ("password", PASSWORD),
                ("org_name", "Evil"),
                ("age_confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("already exists")
    );
}

#[tokio::test]
async fn log_in_and_log_out() {
    let app = spawn_app().await;
    app.sign_up("Ada", "ada@example.com", "Acme").await;

    let browser = app.browser();
    let wrong = browser
        .post_form(
            "/login",
            &[("email", "ada@example.com"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.expect("body").contains("do not match"));
    assert_eq!(location(&browser.get("/").await), "/login");

    let ok = browser
        .post_form(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "/settings/team"),
            ],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), "/settings/team");
    let cookie = ok
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http without an https public URL"
    );
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);

    // An outside `next` is ignored.
    let other = app.browser();
    let bounced = other
        .post_form(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "//evil.test/"),
            ],
        )
        .await;
    assert_eq!(location(&bounced), "/");

    let out = browser.submit("/", "/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&browser.get("/").await), "/login", "logged out");
    // The other browser's session is untouched.
    assert_eq!(other.get("/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_next_goes_only_to_a_same_origin_path() {
    let app = spawn_app().await;
    app.sign_up("Ada", "ada@example.com", "Acme").await;
    let log_in_with = |next: &'static str| {
        let browser = app.browser();
        async move {
            let response = browser
                .post_form(
                    "/login",
                    &[
                        ("email", "ada@example.com"),
                        ("password", PASSWORD),
                        ("next", next),
                    ],
                )
                .await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "next={next:?}");
            location(&response)
        }
    };
    for outside in [
        "//evil.test",
        "/\\evil.test",
        "/\t/evil.test",
        "/\n/evil.test",
        "/\r\n//evil.test",
        "/ /evil.test",
        "/settings\\..\\\\evil.test",
        "https://evil.test/",
        "javascript:alert(1)",
        "evil.test",
        "",
    ] {
        assert_eq!(log_in_with(outside).await, "/", "next={outside:?}");
    }
    assert_eq!(
        log_in_with("/settings/team?tab=invites").await,
        "/settings/team?tab=invites"
    );
    // The login page carries only a safe `next` into its form.
    let page = app
        .browser()
        .get_html("/login?next=%2F%09%2Fevil.test")
        .await;
    assert!(page.contains(r#"name="next" value="/""#), "{page}");
}

#[tokio::test]
async fn a_copied_session_cookie_stops_working_after_logout() {
    let app = spawn_app().await;
    app.sign_up("Ada", "ada@example.com", "Acme").await;
    let login = app
        .api()
        .post(app.url("/login"))
        .form(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .expect("login");
    let set_cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    let pair = set_cookie.split(';').next().expect("name=value").to_owned();
    let client = app.api();
    let me = || {
        client
            .get(app.url("/api/v1/me"))
            .header("cookie", pair.clone())
            .send()
    };
    assert_eq!(me().await.expect("me").status(), StatusCode::OK);

    let html = client
        .get(app.url("/"))
        .header("cookie", pair.clone())
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("body");
    let token = crate::helpers::csrf_token(&html);
    let logout = client
        .post(app.url("/logout"))
        .header("cookie", pair.clone())
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        me().await.expect("me").status(),
        StatusCode::UNAUTHORIZED,
        "the stored session is gone, not just the cookie"
    );
}

#[tokio::test]
async fn sessions_expire() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);
    app.clock
        .advance(Duration::hours(app.state.config.sessions.lifetime_hours) + Duration::seconds(1));
    assert_eq!(location(&browser.get("/").await), "/login");
}

#[tokio::test]
async fn password_change_revokes_every_session_and_keeps_this_browser_signed_in() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let laptop = app.browser();
    laptop
        .post_form(
            "/login",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(laptop.get("/").await.status(), StatusCode::OK);

    let wrong = browser
        .submit(
            "/settings/profile",
            "/settings/profile/password",
            &[
                ("current_password", "nope nope nope"),
                ("new_password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong
            .text()
            .await
            .expect("body")
            .contains("not your current password")
    );

    let changed = browser
        .submit(
            "/settings/profile",
            "/settings/profile/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&laptop.get("/").await),
        "/login",
        "other sessions are revoked"
    );
    assert_eq!(
        browser.get("/").await.status(),
        StatusCode::OK,
        "this browser got a fresh session"
    );

    let old = app
        .browser()
        .post_form(
            "/login",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = app
        .browser()
        .post_form(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(new.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_is_rate_limited_per_account_with_retry_after() {
    let app = spawn_app().await;
    app.sign_up("Ada", "ada@example.com", "Acme").await;
    let browser = app.browser();
    for _ in 0..app.state.config.login_limits.per_account {
        let response = browser
            .post_form(
                "/login",
                &[("email", "ada@example.com"), ("password", "wrong password")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked now, even with the right password.
    let locked = browser
        .post_form(
            "/login",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after > 0 && retry_after <= 900, "{retry_after}");
    assert!(
        locked
            .text()
            .await
            .expect("body")
            .contains("Too many login attempts")
    );

    app.clock.advance(Duration::seconds(
        app.state.config.login_limits.window_seconds,
    ));
    let after = browser
        .post_form(
            "/login",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        after.status(),
        StatusCode::SEE_OTHER,
        "the lock lifts after the window"
    );
}

#[tokio::test]
async fn a_stranger_cannot_lock_the_owner_out_from_another_ip() {
    let app = spawn_app().await;
    app.sign_up("Ada", "ada@example.com", "Acme").await;
    let limits = app.state.config.login_limits.clone();
    let stranger = app.browser_from([127, 0, 0, 2].into());
    for _ in 0..limits.per_account {
        let response = stranger
            .post_form(
                "/login",
                &[("email", "ada@example.com"), ("password", "wrong password")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let log_in = |browser: Browser| async move {
        browser
            .post_form(
                "/login",
                &[("email", "ada@example.com"), ("password", PASSWORD)],
            )
            .await
    };

    // From her own IP Ada waits a short delay, not the whole window.
    let owner = app.browser_from([127, 0, 0, 3].into());
    let early = log_in(owner.clone()).await;
    assert_eq!(early.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = early.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert_eq!(retry_after, limits.lockout_delay_seconds);
    assert!(retry_after < limits.window_seconds);
    app.clock
        .advance(Duration::seconds(limits.lockout_delay_seconds));
    let in_time = log_in(owner).await;
    assert_eq!(in_time.status(), StatusCode::SEE_OTHER, "the owner gets in");

    // The stranger's IP stays locked out of the account for the window, even with the
    // right password.
    let still = log_in(stranger).await;
    assert_eq!(still.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn login_is_rate_limited_per_ip() {
    let app = crate::helpers::spawn_app_with(|config| config.login_limits.per_ip = 3).await;
    let browser = app.browser();
    for n in 0..3 {
        let response = browser
            .post_form(
                "/login",
                &[
                    ("email", &format!("user{n}@example.com")),
                    ("password", "whatever123"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = browser
        .post_form(
            "/login",
            &[("email", "user9@example.com"), ("password", "whatever123")],
        )
        .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn email_verification_link_confirms_the_address_and_expires() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let email = app.last_personal_email_to("ada@example.com").await;
    assert_eq!(email.subject, "Confirm your email address");
    let link = link_in(&email.text_body, "/verify-email?token=");
    assert!(email.html_body.contains(&link), "both parts carry the link");

    let visitor = app.browser();
    let ok = visitor.get(&path_of(&link)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.expect("body").contains("Email confirmed"));
    let user = app
        .state
        .store
        .find_user_by_email(&EmailAddress::parse("e", "ada@example.com").expect("e"))
        .await
        .expect("q")
        .expect("user");
    assert!(user.email_verified_at.is_some());
    assert_eq!(
        visitor.get(&path_of(&link)).await.status(),
        StatusCode::BAD_REQUEST,
        "single use"
    );

    // A new link, left for more than a day, is refused.
    browser.submit("/", "/verify-email/resend", &[]).await;
    let resent = app.last_personal_email_to("ada@example.com").await;
    let late = link_in(&resent.text_body, "/verify-email?token=");
    app.clock
        .advance(Duration::hours(24) + Duration::seconds(1));
    assert_eq!(
        visitor.get(&path_of(&late)).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn password_reset_answers_the_same_for_unknown_addresses_and_works_once_within_an_hour() {
    let app = spawn_app().await;
    let owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let org = owner.org_id().await;
    let visitor = app.browser();

    let unknown = visitor
        .post_form("/forgot-password", &[("email", "nobody@example.com")])
        .await;
    let known = visitor
        .post_form("/forgot-password", &[("email", "ada@example.com")])
        .await;
    assert_eq!(unknown.status(), known.status());
    let unknown_text = unknown
        .text()
        .await
        .expect("body")
        .replace("nobody@example.com", "X");
    let known_text = known
        .text()
        .await
        .expect("body")
        .replace("ada@example.com", "X");
    assert_eq!(
        unknown_text, known_text,
        "the answer does not reveal who has an account"
    );
    assert!(
        app.state
            .store
            .list_personal_emails(None, 100)
            .await
            .expect("outbox")
            .iter()
            .all(|e| e.to_address != "nobody@example.com")
    );
    assert!(
        app.state
            .store
            .list_emails(org, 100)
            .await
            .expect("outbox")
            .is_empty(),
        "the reset is not the organization's mail"
    );

    let email = app.last_personal_email_to("ada@example.com").await;
    assert_eq!(email.subject, "Reset your KalTalk password");
    let link = link_in(&email.text_body, "/reset-password?token=");
    let page = visitor.get(&path_of(&link)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let token = link.split("token=").nth(1).expect("token");

    let weak = visitor
        .post_form(
            "/reset-password",
            &[("token", token), ("password", "short")],
        )
        .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let reset = visitor
        .post_form(
            "/reset-password",
            &[("token", token), ("password", "a fresh new password")],
        )
        .await;
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&owner.get("/").await),
        "/login",
        "the reset ends existing sessions"
    );
    let again = visitor
        .post_form(
            "/reset-password",
            &[("token", token), ("password", "another new password")],
        )
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "single use");
    let login = app
        .browser()
        .post_form(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", "a fresh new password"),
            ],
        )
        .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);

    // A second link, used after an hour, is refused.
    visitor
        .post_form("/forgot-password", &[("email", "ada@example.com")])
        .await;
    let second = link_in(
        &app.last_personal_email_to("ada@example.com")
            .await
            .text_body,
        "/reset-password?token=",
    );
    app.clock.advance(Duration::minutes(61));
    assert_eq!(
        visitor.get(&path_of(&second)).await.status(),
        StatusCode::BAD_REQUEST
    );
    let late_token = second.split("token=").nth(1).expect("token");
    let late = visitor
        .post_form(
            "/reset-password",
            &[("token", late_token), ("password", "too late password")],
        )
        .await;
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_owner_cannot_read_a_members_account_mail() {
    let app = spawn_app().await;
    let acme_owner = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let acme = acme_owner.org_id().await;
    // Bob's account began with his Acme membership, then he started his own Globex.
    let bob = crate::teams::join(&app, &acme_owner, "bob@example.com", "agent").await;
    let created = bob
        .submit("/", "/orgs", &[("new_org_name", "Globex")])
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);

    let visitor = app.browser();
    visitor
        .post_form("/forgot-password", &[("email", "bob@example.com")])
        .await;
    bob.submit("/", "/verify-email/resend", &[]).await;

    let reset = app.last_personal_email_to("bob@example.com").await;
    assert_eq!(reset.org_id, None);
    let outbox = app
        .state
        .store
        .list_emails(acme, 100)
        .await
        .expect("outbox");
    assert!(
        outbox.iter().all(|e| e.kind == "invitation"),
        "only Acme's own mail: {:?}",
        outbox.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
    let page = acme_owner.get_html("/settings/outbox").await;
    assert!(!page.contains("Reset your KalTalk password"), "{page}");
    assert!(!page.contains("Confirm your email address"), "{page}");
    let detail = acme_owner
        .get(&format!("/settings/outbox/{}", reset.id))
        .await;
    assert_eq!(detail.status(), StatusCode::NOT_FOUND);
    assert!(
        !detail
            .text()
            .await
            .expect("body")
            .contains("/reset-password?token=")
    );
}

#[tokio::test]
async fn profile_name_and_email_changes() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    app.sign_up("Bob", "bob@example.com", "Bobs").await;

    let renamed = browser
        .submit(
            "/settings/profile",
            "/settings/profile/name",
            &[("name", "Ada King")],
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.me().await["actor"]["name"], "Ada King");

    let taken = browser
        .submit(
            "/settings/profile",
            "/settings/profile/email",
            &[("email", "bob@example.com"), ("email_password", PASSWORD)],
        )
        .await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.text().await.expect("body").contains("already exists"));
}

async fn log_in_as(app: &crate::helpers::TestApp, email: &str) -> StatusCode {
    app.browser()
        .post_form("/login", &[("email", email), ("password", PASSWORD)])
        .await
        .status()
}

#[tokio::test]
async fn changing_the_email_needs_the_current_password() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let before = app
        .state
        .store
        .list_personal_emails(None, 100)
        .await
        .expect("outbox")
        .len();
    for password in ["", "not my password"] {
        let refused = browser
            .submit(
                "/settings/profile",
                "/settings/profile/email",
                &[("email", "mallory@evil.test"), ("email_password", password)],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused
                .text()
                .await
                .expect("body")
                .contains("That is not your password")
        );
    }
    assert_eq!(browser.me().await["actor"]["email"], "ada@example.com");
    let after = app.state.store.list_personal_emails(None, 100).await;
    assert_eq!(after.expect("outbox").len(), before, "no link was sent");
}

#[tokio::test]
async fn a_new_email_signs_in_only_after_its_link_is_followed() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    let changed = browser
        .submit(
            "/settings/profile",
            "/settings/profile/email",
            &[
                ("email", "ada.king@example.com"),
                ("email_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&changed), "/settings/profile?notice=email");

    // Nothing changed yet.
    assert_eq!(browser.me().await["actor"]["email"], "ada@example.com");
    assert_eq!(
        log_in_as(&app, "ada.king@example.com").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in_as(&app, "ada@example.com").await,
        StatusCode::SEE_OTHER
    );

    let email = app.last_personal_email_to("ada.king@example.com").await;
    assert_eq!(email.org_id, None, "personal mail");
    assert_eq!(email.subject, "Confirm your new KalTalk sign-in address");
    let link = link_in(&email.text_body, "/change-email/confirm?token=");
    assert!(email.html_body.contains(&link), "both parts carry the link");
    let followed = app.browser().get(&path_of(&link)).await;
    assert_eq!(followed.status(), StatusCode::OK);
    assert!(
        followed
            .text()
            .await
            .expect("body")
            .contains("Email changed")
    );

    assert_eq!(browser.me().await["actor"]["email"], "ada.king@example.com");
    let user = app
        .state
        .store
        .find_user_by_email(&EmailAddress::parse("e", "ada.king@example.com").expect("e"))
        .await
        .expect("q")
        .expect("user");
    assert!(user.email_verified_at.is_some(), "the link proved it");
    assert_eq!(
        log_in_as(&app, "ada.king@example.com").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        log_in_as(&app, "ada@example.com").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.browser().get(&path_of(&link)).await.status(),
        StatusCode::BAD_REQUEST,
        "single use"
    );
}

#[tokio::test]
async fn the_old_address_gets_a_notice_whose_link_undoes_the_change() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    // Someone in Ada's session moves the account to their address and confirms it.
    let changed = browser
        .submit(
            "/settings/profile",
            "/settings/profile/email",
            &[("email", "mallory@evil.test"), ("email_password", PASSWORD)],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let confirm = link_in(
        &app.last_personal_email_to("mallory@evil.test")
            .await
            .text_body,
        "/change-email/confirm?token=",
    );
    assert_eq!(
        app.browser().get(&path_of(&confirm)).await.status(),
        StatusCode::OK
    );
    assert_eq!(browser.me().await["actor"]["email"], "mallory@evil.test");

    let notice = app.last_personal_email_to("ada@example.com").await;
    assert_eq!(
        notice.subject,
        "Your KalTalk sign-in address is being changed"
    );
    assert!(notice.text_body.contains("mallory@evil.test"));
    let undo = link_in(&notice.text_body, "/change-email/undo?token=");
    assert!(
        notice.html_body.contains(&undo),
        "both parts carry the link"
    );

    // Opening the link only shows a button (a mail scanner must not undo a wanted change).
    let ada = app.browser();
    let page = ada.get_html(&path_of(&undo)).await;
    assert!(page.contains("Undo the change"), "{page}");
    assert_eq!(browser.me().await["actor"]["email"], "mallory@evil.test");

    let token = undo.split("token=").nth(1).expect("token");
    let undone = ada
        .post_form("/change-email/undo", &[("token", token)])
        .await;
    assert_eq!(undone.status(), StatusCode::OK);
    assert!(undone.text().await.expect("body").contains("Change undone"));
    assert_eq!(
        location(&browser.get("/").await),
        "/login",
        "every session was signed out"
    );
    assert_eq!(
        log_in_as(&app, "ada@example.com").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        log_in_as(&app, "mallory@evil.test").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ada.post_form("/change-email/undo", &[("token", token)])
            .await
            .status(),
        StatusCode::BAD_REQUEST,
        "single use"
    );
}

#[tokio::test]
async fn undoing_a_pending_change_voids_its_link() {
    let app = spawn_app().await;
    let browser = app.sign_up("Ada", "ada@example.com", "Acme").await;
    browser
        .submit(
            "/settings/profile",
            "/settings/profile/email",
            &[("email", "mallory@evil.test"), ("email_password", PASSWORD)],
        )
        .await;
    let confirm = link_in(
        &app.last_personal_email_to("mallory@evil.test")
            .await
            .text_body,
        "/change-email/confirm?token=",
    );
    let undo = link_in(
        &app.last_personal_email_to("ada@example.com")
            .await
            .text_body,
        "/change-email/undo?token=",
    );
    let token = undo.split("token=").nth(1).expect("token");
    let undone = app
        .browser()
        .post_form("/change-email/undo", &[("token", token)])
        .await;
    assert_eq!(undone.status(), StatusCode::OK);
    assert_eq!(
        app.browser().get(&path_of(&confirm)).await.status(),
        StatusCode::BAD_REQUEST,
        "the pending change is cancelled"
    );
    assert_eq!(
        log_in_as(&app, "ada@example.com").await,
        StatusCode::SEE_OTHER
    );
}

/// Ada alone in Acme and an agent in Bob's Globex; Bob owns Globex.
async fn ada_and_bob(
    app: &crate::helpers::TestApp,
) -> (crate::helpers::Browser, crate::helpers::Browser) {
    let ada = app.sign_up("Ada Lovelace", "ada@example.com", "Acme").await;
    let bob = app
        .sign_up("Bob Builder", "bob@example.com", "Globex")
        .await;
    let globex = bob.org_id().await;
    let invitation = kaltalk_store::NewInvitation {
        org_id: globex,
        email: EmailAddress::parse("email", "ada@example.com").expect("email"),
        role: kaltalk_core::Role::Agent,
        token_hash: "invite-ada".into(),
        invited_by: bob.user_id().await,
        expires_at: app.clock_now() + Duration::days(1),
    };
    let store = &app.state.store;
    let email = kaltalk_store::NewEmail {
        org_id: Some(globex),
        to: "ada@example.com".into(),
        subject: "Bob invited you to Globex".into(),
        text_body: "Join us".into(),
        html_body: "<p>Join us</p>".into(),
        kind: "invitation",
        delivery: kaltalk_store::Delivery::KeepInOutbox,
    };
    store
        .create_invitation(&invitation, &email, app.clock_now())
        .await
        .expect("invitation");
    store
        .accept_invitation(
            "invite-ada",
            kaltalk_store::Acceptor::Existing(ada.user_id().await),
            app.clock_now(),
        )
        .await
        .expect("accepted");
    (ada, bob)
}

#[tokio::test]
async fn a_person_downloads_their_data_as_json() {
    let app = spawn_app().await;
    let (ada, _bob) = ada_and_bob(&app).await;

    let response = ada.get("/settings/profile/export").await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"kaltalk-account-"),
        "{disposition}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let data: serde_json::Value = response.json().await.expect("JSON");
    let account = &data["account"];
    assert_eq!(account["user"]["email"], "ada@example.com");
    assert_eq!(account["user"]["name"], "Ada Lovelace");
    assert!(account["user"].get("password_hash").is_none(), "{account}");
    let orgs: Vec<&str> = account["organizations"]
        .as_array()
        .expect("organizations")
        .iter()
        .map(|o| o["organization"].as_str().expect("name"))
        .collect();
    assert_eq!(orgs, ["Acme", "Globex"]);
    assert!(!account["sessions"].as_array().expect("sessions").is_empty());
    let subjects: Vec<&str> = account["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .map(|e| e["subject"].as_str().expect("subject"))
        .collect();
    assert!(
        subjects.contains(&"Bob invited you to Globex"),
        "{subjects:?}"
    );
    assert!(
        !data.to_string().contains("bob@example.com"),
        "nothing of Bob's own account"
    );

    let anonymous = app.browser().get("/settings/profile/export").await;
    assert_eq!(location(&anonymous), "/login");
}

#[tokio::test]
async fn deleting_an_account_needs_the_password_and_a_new_owner_for_shared_organizations() {
    let app = spawn_app().await;
    let (ada, bob) = ada_and_bob(&app).await;
    let acme = ada.org_id().await;
    let blobs = &app.state.blobs;
    for key in [
        format!("{acme}/a-file"),
        format!("knowledge/{acme}/a-document"),
    ] {
        blobs.put(&key, b"Acme's file").await.expect("blob");
    }

    // Bob owns Globex, where Ada is: the page says so, and the store refuses.
    let page = bob.get_html("/settings/profile").await;
    assert!(page.contains("you own it and others are members"), "{page}");
    assert!(
        page.contains(r#"<button type="submit" class="danger" disabled"#),
        "the button is off: {page}"
    );
    let refused = bob
        .submit(
            "/settings/profile",
            "/settings/profile/delete",
            &[("delete_password", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("You own Globex")
    );

    // Ada: a wrong password changes nothing.
    let page = ada.get_html("/settings/profile").await;
    assert!(
        page.contains("deleted with your account: you are its only member"),
        "{page}"
    );
    let wrong = ada
        .submit(
            "/settings/profile",
            "/settings/profile/delete",
            &[("delete_password", "not my password")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong
            .text()
            .await
            .expect("body")
            .contains("That is not your password.")
    );
    assert_eq!(ada.get("/").await.status(), StatusCode::OK);

    let deleted = ada
        .submit(
            "/settings/profile",
            "/settings/profile/delete",
            &[("delete_password", PASSWORD)],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/login?notice=account-deleted");
    assert_eq!(location(&ada.get("/").await), "/login", "signed out");
    let login = app
        .browser()
        .post_form(
            "/login",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        login.status(),
        StatusCode::UNAUTHORIZED,
        "the account is gone"
    );

    // Acme went with her, files included; Globex stays, without her.
    assert!(app.state.store.get_organization(acme).await.is_err());
    for key in [
        format!("{acme}/a-file"),
        format!("knowledge/{acme}/a-document"),
    ] {
        assert!(blobs.get(&key).await.is_err(), "{key} is still stored");
    }
    let team = bob.get_html("/settings/team").await;
    assert!(
        team.contains("Bob Builder") && !team.contains("ada@example.com"),
        "{team}"
    );
    // Bob can delete his account now that he is alone in Globex.
    let page = bob.get_html("/settings/profile").await;
    assert!(page.contains("deleted with your account"), "{page}");
}

#[tokio::test]
async fn an_owner_deletes_an_organization_and_carries_on_in_another() {
    let app = spawn_app().await;
    let (ada, bob) = ada_and_bob(&app).await;
    let globex = bob.org_id().await;
    app.state
        .blobs
        .put(&format!("{globex}/a-file"), b"Globex's file")
        .await
        .expect("blob");
    let delete = |browser: &crate::helpers::Browser, name: &str, password: &str| {
        let fields = [
            ("confirm_name", name.to_owned()),
            ("delete_password", password.to_owned()),
        ];
        let browser = browser.clone();
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser
                .submit(
                    "/settings/organization",
                    "/settings/organization/delete",
                    &fields,
                )
                .await
        }
    };

    // Globex is Bob's only organization: he is sent to delete his account instead.
    let only = delete(&bob, "Globex", PASSWORD).await;
    assert_eq!(only.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        only.text()
            .await
            .expect("body")
            .contains("This is your only organization")
    );
    // An agent may not delete it at all.
    ada.submit(
        "/settings/organization",
        "/orgs/switch",
        &[("org_id", &globex.to_string())],
    )
    .await;
    assert_eq!(ada.org_id().await, globex);
    let agent = delete(&ada, "Globex", PASSWORD).await;
    assert_eq!(agent.status(), StatusCode::FORBIDDEN);

    // With a second organization, Bob can, after typing its name and his password.
    bob.submit(
        "/settings/organization",
        "/orgs",
        &[("new_org_name", "Initech")],
    )
    .await;
    bob.submit(
        "/settings/organization",
        "/orgs/switch",
        &[("org_id", &globex.to_string())],
    )
    .await;
    assert_eq!(bob.org_id().await, globex);
    let wrong_name = delete(&bob, "Globe", PASSWORD).await;
    assert_eq!(wrong_name.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong_name
            .text()
            .await
            .expect("body")
            .contains("name, Globex, to confirm")
    );
    let wrong_password = delete(&bob, "Globex", "not my password").await;
    assert_eq!(wrong_password.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        app.state.store.get_organization(globex).await.is_ok(),
        "nothing deleted yet"
    );

    let deleted = delete(&bob, "Globex", PASSWORD).await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/?notice=organization-deleted");
    let home = bob.get_html("/?notice=organization-deleted").await;
    assert!(
        home.contains("The organization and everything in it were deleted."),
        "{home}"
    );
    assert_eq!(bob.me().await["organization"]["name"], "Initech");
    assert!(app.state.store.get_organization(globex).await.is_err());
    assert!(
        app.state
            .blobs
            .get(&format!("{globex}/a-file"))
            .await
            .is_err()
    );
    // Ada's session in Globex went with it; she still has Acme.
    assert_eq!(location(&ada.get("/").await), "/login");
    let again = app.browser();
    again
        .post_form(
            "/login",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(again.me().await["organization"]["name"], "Acme");
}
