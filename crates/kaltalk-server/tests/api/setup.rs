//! First run and widget setup: the home checklist ticks from what is in the database, the
//! widget preview, the company name and colour, allowed websites with ports, rotating the
//! identity secret, deleting a channel, editing canned responses and text sources in
//! place, the settings overview.

use kaltalk_server::jobs::Ran;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, TestApp, location, spawn_app};

/// Whether the home page shows the checklist step `id` as done; panics if it is absent.
fn step_done(html: &str, id: &str) -> bool {
    let marker = format!("id=\"step-{id}\" data-done=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no step {id} on the home page:\n{html}"))
        + marker.len();
    html[start..].starts_with("yes")
}

async fn save_widget(
    owner: &Browser,
    inbox: &kaltalk_store::inboxes::Inbox,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let path = format!("/settings/inboxes/{}", inbox.id);
    let mut all = vec![
        ("name", "Website"),
        ("color", "#4338ca"),
        ("position", "right"),
        ("identity", "off"),
    ];
    for field in fields {
        all.retain(|(name, _)| name != &field.0);
        all.push(*field);
    }
    owner.submit(&path, &path, &all).await
}

async fn config(
    app: &TestApp,
    inbox: &kaltalk_store::inboxes::Inbox,
    origin: &str,
) -> reqwest::Response {
    app.api()
        .get(app.url(&format!("/widget/v1/inboxes/{}/config", inbox.public_token)))
        .header("origin", origin)
        .send()
        .await
        .expect("config")
}

#[tokio::test]
async fn the_checklist_ticks_itself_from_what_the_organization_did() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let home = owner.get_html("/").await;
    for step in [
        "add-channel",
        "widget-on-site",
        "add-knowledge",
        "try-playground",
        "turn-ai-on",
        "invite-team",
        "test-message",
    ] {
        assert!(!step_done(&home, step), "{step} is not done yet");
    }
    assert!(home.contains("0 of 7 done"));
    assert!(!home.contains("arrive here next"), "the stale copy is gone");

    let inbox = create_inbox(&app, &owner, "shop.example.com").await;
    let home = owner.get_html("/").await;
    assert!(step_done(&home, "add-channel"));
    assert!(
        home.contains(&inbox.public_token) && home.contains("data-copy=\"home-snippet\""),
        "the snippet to copy is on the checklist"
    );
    assert!(home.contains(&format!("/settings/inboxes/{}/preview", inbox.id)));

    // A test message from the preview (our own origin) is a conversation, but not the
    // widget being on the customer's site.
    let mut tester = Visitor::new(&app, &inbox);
    tester.origin = app.base.clone();
    let preview_page = format!("{}/settings/inboxes/{}/preview", app.base, inbox.id);
    let sent = tester
        .send(json!({ "text": "Testing", "context": { "page_url": preview_page } }))
        .await;
    assert_eq!(sent.status(), StatusCode::CREATED, "the preview may chat");
    let home = owner.get_html("/").await;
    assert!(step_done(&home, "test-message"));
    assert!(!step_done(&home, "widget-on-site"));

    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("Hello from the shop").await;
    assert!(step_done(&owner.get_html("/").await, "widget-on-site"));

    crate::knowledge::add_text(&owner, "Returns", crate::knowledge::RETURNS).await;
    assert!(step_done(&owner.get_html("/").await, "add-knowledge"));

    let asked = owner
        .submit(
            "/settings/ai/playground",
            "/settings/ai/playground",
            &[("question", "Can I return a product?")],
        )
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(step_done(&owner.get_html("/").await, "try-playground"));

    crate::ai::enable_ai(&app, &owner, "0.3").await;
    assert!(step_done(&owner.get_html("/").await, "turn-ai-on"));

    crate::teams::invite(&app, &owner, "alex@acme.test", "agent").await;
    let home = owner.get_html("/").await;
    assert!(step_done(&home, "invite-team"));
    assert!(home.contains("7 of 7 done"));
}

#[tokio::test]
async fn an_agent_sees_their_work_and_is_not_told_to_set_things_up() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    Visitor::new(&app, &inbox).say("First").await;
    Visitor::new(&app, &inbox).say("Second").await;
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    let home = agent.get_html("/").await;
    assert!(!home.contains("id=\"setup\""), "no checklist for an agent");
    assert!(!home.contains("Invite your team") && !home.contains("Add a channel"));
    assert!(home.contains("<strong id=\"count-unassigned\">2</strong>"));
    assert!(home.contains("<strong id=\"count-mine\">0</strong>"));
    assert!(home.contains("href=\"/inbox\""));

    // An admin sets channels up but is not told to invite people unless they may.
    let owner_home = owner.get_html("/").await;
    assert!(owner_home.contains("id=\"setup\"") && owner_home.contains("Invite your team"));
}

#[tokio::test]
async fn the_preview_loads_the_real_widget_and_only_our_pages_may_frame_it() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "shop.example.com").await;
    let response = owner
        .get(&format!("/settings/inboxes/{}/preview", inbox.id))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
    assert!(
        csp.contains("script-src 'self';"),
        "no inline scripts: {csp}"
    );
    assert_eq!(response.headers()["x-frame-options"], "SAMEORIGIN");
    let html = response.text().await.expect("body");
    assert!(html.contains(&format!(
        "<script src=\"/widget.js\" data-kaltalk-inbox=\"{}\" async></script>",
        inbox.public_token
    )));
    // Every other page still may not be framed.
    let settings = owner.get(&format!("/settings/inboxes/{}", inbox.id)).await;
    assert_eq!(settings.headers()["x-frame-options"], "DENY");

    // The widget admits our own origin whatever the allowed websites, and still refuses
    // other sites.
    assert_eq!(
        config(&app, &inbox, &app.base).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        config(&app, &inbox, "https://evil.test").await.status(),
        StatusCode::FORBIDDEN
    );

    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    assert_eq!(
        agent
            .get(&format!("/settings/inboxes/{}/preview", inbox.id))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_widget_header_shows_the_company_name_and_the_colour_is_checked() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let shown: Value = config(&app, &inbox, "https://shop.example.com")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        shown["name"], "Acme",
        "without a company name, the organization's, never the inbox's internal name"
    );

    let bad = save_widget(
        &owner,
        &inbox,
        &[
            ("company_name", "Acme Support"),
            ("color", "#12345g"),
            ("greeting", "Hey there"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("body");
    assert!(html.contains("Use a colour like #4338ca."));
    assert!(
        html.contains("value=\"Acme Support\"") && html.contains("value=\"Hey there\""),
        "what was typed stays on the page"
    );

    let good = save_widget(
        &owner,
        &inbox,
        &[
            ("company_name", "Acme Support"),
            ("color", "#0F766E"),
            ("greeting", "Hey there"),
        ],
    )
    .await;
    assert_eq!(good.status(), StatusCode::SEE_OTHER);
    let shown: Value = config(&app, &inbox, "https://shop.example.com")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["name"], "Acme Support");
    assert_eq!(shown["color"], "#0f766e");
    assert_eq!(shown["greeting"], "Hey there");
    let page = owner
        .get_html(&format!("/settings/inboxes/{}", inbox.id))
        .await;
    assert!(page.contains("type=\"color\"") && page.contains("value=\"#0f766e\""));
}

#[tokio::test]
async fn allowed_websites_keep_their_ports_and_the_check_matches_the_port() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "http://localhost:8080/shop\nexample.com").await;
    assert_eq!(
        inbox.settings.0.allowed_domains,
        ["localhost:8080", "example.com"]
    );
    let page = owner
        .get_html(&format!("/settings/inboxes/{}", inbox.id))
        .await;
    assert!(
        page.contains("localhost:8080\nexample.com"),
        "shown with its port"
    );
    assert_eq!(
        config(&app, &inbox, "http://localhost:8080").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        config(&app, &inbox, "http://localhost:3000").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        config(&app, &inbox, "https://example.com:8443")
            .await
            .status(),
        StatusCode::OK
    );

    let bad = save_widget(&owner, &inbox, &[("allowed_domains", "localhost:99999")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.expect("body").contains("port"));
}

#[tokio::test]
async fn an_email_inbox_keeps_the_name_given_at_creation() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let created = owner
        .submit(
            "/settings/inboxes",
            "/settings/inboxes/email",
            &[
                ("address", "help@acme.test"),
                ("email_name", "Customer care"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let inboxes = app
        .state
        .store
        .list_inboxes(owner.org_id().await)
        .await
        .expect("inboxes");
    assert_eq!(inboxes[0].name, "Customer care");
}

#[tokio::test]
async fn rotating_the_identity_secret_stops_the_old_one() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    assert_eq!(
        save_widget(&owner, &inbox, &[("identity", "required")])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let old = inbox.identity_secret.clone();
    let signed = |secret: &str| json!({ "id": "user-42", "name": "Ada", "hash": kaltalk_server::widget::sign(secret, "user-42") });
    let ada = Visitor::new(&app, &inbox);
    assert_eq!(
        ada.send(json!({ "text": "before", "identity": signed(&old) }))
            .await
            .status(),
        StatusCode::CREATED
    );

    let path = format!("/settings/inboxes/{}", inbox.id);
    let rotated = owner
        .submit(&path, &format!("{path}/rotate-secret"), &[])
        .await;
    assert_eq!(rotated.status(), StatusCode::SEE_OTHER);
    assert!(location(&rotated).ends_with("?notice=secret-rotated"));
    let new = app
        .state
        .store
        .get_inbox(inbox.org_id, inbox.id)
        .await
        .expect("inbox")
        .identity_secret;
    assert_ne!(new, old);
    let refused = ada
        .send(json!({ "text": "old", "identity": signed(&old) }))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["code"], "identity_invalid");
    assert_eq!(
        ada.send(json!({ "text": "new", "identity": signed(&new) }))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert!(owner.get_html(&path).await.contains(&new));

    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    let csrf = crate::helpers::csrf_token(&agent.get_html("/").await);
    let forbidden = agent
        .post_form(&format!("{path}/rotate-secret"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deleting_a_channel_deletes_its_conversations_and_keeps_contacts() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let said = Visitor::new(&app, &inbox).say("Please delete me").await;
    let conversation: kaltalk_core::ConversationId = said["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let contact = app
        .state
        .store
        .get_conversation(org, conversation)
        .await
        .expect("conversation")
        .contact_id;

    let path = format!("/settings/inboxes/{}", inbox.id);
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    let csrf = crate::helpers::csrf_token(&agent.get_html("/").await);
    assert_eq!(
        agent
            .post_form(&format!("{path}/delete"), &[("csrf_token", &csrf)])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    let deleted = owner.submit(&path, &format!("{path}/delete"), &[]).await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/settings/inboxes?notice=deleted");
    assert!(
        owner
            .get_html("/settings/inboxes?notice=deleted")
            .await
            .contains("Channel deleted")
    );
    assert!(
        app.state
            .store
            .list_inboxes(org)
            .await
            .expect("inboxes")
            .is_empty()
    );
    assert!(matches!(
        app.state.store.get_conversation(org, conversation).await,
        Err(kaltalk_store::StoreError::NotFound)
    ));
    assert!(
        app.state.store.get_contact(org, contact).await.is_ok(),
        "the contact stays"
    );
    assert_eq!(owner.get(&path).await.status(), StatusCode::NOT_FOUND);
    let gone = config(&app, &inbox, "https://shop.example.com").await;
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "the snippet stops working"
    );
}

#[tokio::test]
async fn canned_responses_are_edited_in_place() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    for (shortcut, text) in [("refund", "Refunds take 5 days."), ("hello", "Hello!")] {
        let created = owner
            .submit(
                "/settings/canned-responses",
                "/settings/canned-responses",
                &[("shortcut", shortcut), ("text", text)],
            )
            .await;
        assert_eq!(created.status(), StatusCode::SEE_OTHER);
    }
    let responses = app
        .state
        .store
        .list_canned_responses(org)
        .await
        .expect("list");
    let refund = responses
        .iter()
        .find(|r| r.shortcut == "refund")
        .expect("refund");
    let path = format!("/settings/canned-responses/{}", refund.id);
    let page = owner.get_html("/settings/canned-responses").await;
    assert!(
        page.contains(&format!("action=\"{path}\"")),
        "an edit form per row"
    );

    let taken = owner
        .submit(
            "/settings/canned-responses",
            &path,
            &[("shortcut", "hello"), ("text", "Refunds take 3 days.")],
        )
        .await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = taken.text().await.expect("body");
    assert!(html.contains("/hello already exists.") && html.contains("Refunds take 3 days."));

    let saved = owner
        .submit(
            "/settings/canned-responses",
            &path,
            &[("shortcut", "/refunds"), ("text", "Refunds take 3 days.")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let responses = app
        .state
        .store
        .list_canned_responses(org)
        .await
        .expect("list");
    let edited = responses
        .iter()
        .find(|r| r.id == refund.id)
        .expect("same row");
    assert_eq!(
        (edited.shortcut.as_str(), edited.text.as_str()),
        ("refunds", "Refunds take 3 days.")
    );
    assert_eq!(responses.len(), 2, "edited, not added");
}

#[tokio::test]
async fn a_text_source_is_edited_in_place_and_indexed_again() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    crate::knowledge::add_text(&owner, "Returns", "# Returns\n\nReturn within 30 days.").await;
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let source = app.state.store.list_sources(org).await.expect("sources")[0].clone();
    let path = format!("/settings/knowledge/{}", source.id);
    let page = owner.get_html(&path).await;
    assert!(
        page.contains("Return within 30 days."),
        "the text is in its edit form"
    );

    let empty = owner
        .submit(
            &path,
            &format!("{path}/edit"),
            &[("title", "Returns policy"), ("body", "  ")],
        )
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = empty.text().await.expect("body");
    assert!(html.contains("Write the text") && html.contains("value=\"Returns policy\""));

    let saved = owner
        .submit(
            &path,
            &format!("{path}/edit"),
            &[
                ("title", "Returns policy"),
                ("body", "# Returns\n\nReturn within 60 days."),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let queued = app
        .state
        .store
        .get_source(org, source.id)
        .await
        .expect("source");
    assert_eq!(
        (queued.title.as_str(), queued.state.as_str()),
        ("Returns policy", "queued")
    );
    assert_eq!(
        app.run_jobs().await,
        vec![Ran::Done("knowledge.index".into())]
    );
    let chunks = app
        .state
        .store
        .source_chunks(org, source.id)
        .await
        .expect("chunks");
    assert!(chunks.iter().any(|c| c.text.contains("60 days")));
    assert!(!chunks.iter().any(|c| c.text.contains("30 days")));
}

#[tokio::test]
async fn the_settings_overview_groups_the_pages_a_role_may_open() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let html = owner.get_html("/settings").await;
    for group in [
        "Channels",
        "AI &#38; knowledge",
        "Team",
        "Developers",
        "Organization",
        "Profile",
    ] {
        assert!(
            html.contains(&format!(">{group}</h2>")),
            "{group} on the overview"
        );
    }
    for href in [
        "/settings/inboxes",
        "/settings/knowledge",
        "/settings/api-keys",
        "/settings/webhooks",
        "/settings/api/reference",
    ] {
        assert!(html.contains(&format!("href=\"{href}\"")), "{href}");
    }
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    let html = agent.get_html("/settings").await;
    assert!(
        !html.contains("href=\"/settings/inboxes\"")
            && !html.contains("href=\"/settings/api-keys\"")
    );
    assert!(
        !html.contains("AI &#38; knowledge"),
        "a group with nothing for the role is left out"
    );
    assert!(
        html.contains("href=\"/settings/canned-responses\"")
            && html.contains("href=\"/settings/profile\"")
    );
}
