//! The Contacts section: the list and its filters, a contact's page (profile, attributes,
//! conversations, notes), merge and delete with confirmation, attribute definitions and
//! their permissions, CSV import with a preview and CSV export, and the attribute panel
//! and filter in the inbox.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::create_key;
use crate::helpers::{Browser, TestApp, csrf_token, location, spawn_app};
use crate::teams::join;

/// An API conversation from `email`; returns the contact's and the conversation's ids.
async fn conversation_from(app: &TestApp, key: &str, inbox: &str, email: &str) -> (String, String) {
    let started: Value = app
        .api()
        .post(app.url(&format!("/api/v1/inboxes/{inbox}/conversations")))
        .bearer_auth(key)
        .json(&json!({ "contact": { "email": email, "name": "Ada Lovelace" }, "text": "Where is my invoice?" }))
        .send()
        .await
        .expect("conversation")
        .json()
        .await
        .expect("json");
    (
        started["contact"]["id"]
            .as_str()
            .expect("contact")
            .to_owned(),
        started["conversation"]["id"]
            .as_str()
            .expect("conversation")
            .to_owned(),
    )
}

async fn api_inbox(app: &TestApp, key: &str) -> String {
    let inbox: Value = app
        .api()
        .post(app.url("/api/v1/inboxes"))
        .bearer_auth(key)
        .json(&json!({ "kind": "api", "name": "App" }))
        .send()
        .await
        .expect("inbox")
        .json()
        .await
        .expect("json");
    inbox["id"].as_str().expect("id").to_owned()
}

async fn define(
    owner: &Browser,
    key: &str,
    label: &str,
    kind: &str,
    options: &str,
) -> reqwest::Response {
    owner
        .submit(
            "/settings/contact-attributes",
            "/settings/contact-attributes",
            &[
                ("key", key),
                ("label", label),
                ("kind", kind),
                ("options", options),
            ],
        )
        .await
}

async fn new_contact(
    app: &TestApp,
    org: kaltalk_core::OrgId,
    name: &str,
    email: Option<&str>,
) -> kaltalk_core::ContactId {
    app.state
        .store
        .create_contact(
            org,
            &kaltalk_store::contacts::ContactFields {
                name: Some(name.into()),
                email: email.map(str::to_owned),
                ..Default::default()
            },
            app.clock_now(),
        )
        .await
        .expect("contact")
        .value
        .id
}

#[tokio::test]
async fn the_list_searches_filters_and_pages_fifty_at_a_time() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    assert!(
        owner
            .get_html("/contacts")
            .await
            .contains("No contacts yet")
    );
    assert!(
        owner.get_html("/").await.contains("href=\"/contacts\""),
        "the navigation links the section"
    );
    for i in 0..55 {
        new_contact(
            &app,
            org,
            &format!("Customer {i:02}"),
            Some(&format!("c{i}@shop.test")),
        )
        .await;
    }
    let ada = new_contact(&app, org, "Ada Lovelace", None).await;
    app.state
        .store
        .set_contact_attributes(
            org,
            ada,
            &[("plan".into(), Some(json!("pro")))],
            app.clock_now(),
        )
        .await
        .expect("attribute");

    let first = owner.get_html("/contacts").await;
    assert_eq!(
        first.matches("<td><a href=\"/contacts/").count(),
        50,
        "fifty a page"
    );
    let next = first
        .split("href=\"")
        .find(|s| s.starts_with("/contacts?after="))
        .and_then(|s| s.split('"').next())
        .expect("a next page link")
        .replace("&amp;", "&");
    let second = owner.get_html(&next).await;
    assert_eq!(
        second.matches("<td><a href=\"/contacts/").count(),
        6,
        "the rest"
    );
    assert!(
        !second.contains("/contacts?after="),
        "no page after the last"
    );

    let found = owner.get_html("/contacts?q=lovel").await;
    assert!(found.contains("Ada Lovelace"));
    assert_eq!(found.matches("<td><a href=\"/contacts/").count(), 1);
    let by_email = owner.get_html("/contacts?q=c7%40shop.test").await;
    assert!(by_email.contains("Customer 07"), "search by email");
    let by_attribute = owner.get_html("/contacts?attr=plan&value=pro").await;
    assert_eq!(by_attribute.matches("<td><a href=\"/contacts/").count(), 1);
    assert!(by_attribute.contains("Ada Lovelace"));
    let with_email = owner.get_html("/contacts?has=email").await;
    assert!(!with_email.contains("Ada Lovelace"), "Ada has no email");
    assert!(
        owner
            .get_html("/contacts?q=nobody")
            .await
            .contains("No contacts match")
    );
}

#[tokio::test]
async fn a_contacts_page_shows_and_edits_the_profile_attributes_conversations_and_notes() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let inbox = api_inbox(&app, &key).await;
    let (contact, conversation) = conversation_from(&app, &key, &inbox, "ada@engines.test").await;
    assert_eq!(
        define(&owner, "plan", "Plan", "list", "Free\nPro")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        define(&owner, "seats", "Seats", "number", "")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let page_path = format!("/contacts/{contact}");

    let page = owner.get_html(&page_path).await;
    assert!(page.contains("Ada Lovelace") && page.contains("ada@engines.test"));
    assert!(
        page.contains(&format!(
            "/inbox?view=all&amp;status=open&amp;c={conversation}"
        )),
        "links into the inbox"
    );
    assert!(
        page.contains("Where is my invoice?"),
        "the conversation's last message"
    );
    assert!(page.contains("name=\"attr.plan\"") && page.contains("name=\"attr.seats\""));

    // Profile: a bad phone is refused, and what was typed stays in the form.
    let refused = owner
        .submit(
            &page_path,
            &page_path,
            &[
                ("name", "Ada King"),
                ("email", "ada@engines.test"),
                ("phone", "call me"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = refused.text().await.expect("body");
    assert!(
        body.contains("Enter a phone number")
            && body.contains("value=\"Ada King\"")
            && body.contains("value=\"call me\"")
    );
    let saved = owner
        .submit(
            &page_path,
            &page_path,
            &[
                ("name", "Ada King"),
                ("email", "ADA@Engines.test"),
                ("phone", "+47 912 34 567"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let contact_id: kaltalk_core::ContactId = contact.parse().expect("id");
    let stored = app
        .state
        .store
        .get_contact(owner.org_id().await, contact_id)
        .await
        .expect("contact");
    assert_eq!(
        (
            stored.name.as_deref(),
            stored.email.as_deref(),
            stored.phone.as_deref()
        ),
        (
            Some("Ada King"),
            Some("ada@engines.test"),
            Some("+47 912 34 567")
        )
    );

    // Attributes: every value is checked by its type; a refusal saves nothing.
    let attributes = format!("/contacts/{contact}/attributes");
    let bad = owner
        .submit(
            &page_path,
            &attributes,
            &[("attr.plan", "Pro"), ("attr.seats", "lots")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = bad.text().await.expect("body");
    assert!(
        body.contains("Seats: enter a number") && body.contains("value=\"lots\""),
        "{body}"
    );
    let stored = app
        .state
        .store
        .get_contact(owner.org_id().await, contact_id)
        .await
        .expect("contact");
    assert_eq!(stored.attributes.0, json!({}), "nothing saved");
    let good = owner
        .submit(
            &page_path,
            &attributes,
            &[("attr.plan", "pro"), ("attr.seats", "12")],
        )
        .await;
    assert_eq!(good.status(), StatusCode::SEE_OTHER);
    let stored = app
        .state
        .store
        .get_contact(owner.org_id().await, contact_id)
        .await
        .expect("contact");
    assert_eq!(stored.attributes.0, json!({"plan": "Pro", "seats": 12}));

    // Notes: an empty one is refused; one is added and deleted.
    let notes = format!("/contacts/{contact}/notes");
    assert_eq!(
        owner
            .submit(&page_path, &notes, &[("text", "  ")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        owner
            .submit(&page_path, &notes, &[("text", "Prefers email.")])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let page = owner.get_html(&page_path).await;
    assert!(
        page.contains("Prefers email.") && page.contains("Olivia"),
        "the note and its author"
    );
    let delete = page
        .split("action=\"")
        .find(|s| s.contains("/notes/") && s.contains("/delete\""))
        .and_then(|s| s.split('"').next())
        .expect("a delete form")
        .to_owned();
    assert_eq!(
        owner.submit(&page_path, &delete, &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(!owner.get_html(&page_path).await.contains("Prefers email."));
}

#[tokio::test]
async fn the_inbox_sidebar_edits_attributes_over_htmx_and_the_list_filters_by_them() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let inbox = api_inbox(&app, &key).await;
    let (contact, conversation) = conversation_from(&app, &key, &inbox, "ada@engines.test").await;
    let (_, other) = conversation_from(&app, &key, &inbox, "bob@engines.test").await;
    define(&owner, "vip", "VIP", "boolean", "").await;
    let inbox_page = format!("/inbox?view=all&c={conversation}");
    let page = owner.get_html(&inbox_page).await;
    assert!(
        page.contains(&format!("id=\"contact-attributes-{contact}\"")),
        "the panel is in the sidebar"
    );

    let token = csrf_token(&page);
    let htmx = |value: &'static str| {
        let owner = owner.clone();
        let token = token.clone();
        let path = format!("{}/contacts/{contact}/attributes", owner.base);
        async move {
            owner
                .client
                .post(path)
                .header("origin", &owner.base)
                .header("hx-request", "true")
                .form(&[("csrf_token", token.as_str()), ("attr.vip", value)])
                .send()
                .await
                .expect("POST")
        }
    };
    let refused = htmx("perhaps").await;
    assert_eq!(refused.status(), StatusCode::OK, "htmx swaps only a 200");
    let body = refused.text().await.expect("body");
    assert!(
        body.starts_with("<section class=\"attributes-panel\""),
        "the panel alone"
    );
    assert!(body.contains("VIP: answer yes or no."));
    let saved = htmx("yes").await.text().await.expect("body");
    assert!(saved.contains("Saved") && saved.contains("value=\"yes\" selected"));

    let listed = owner
        .get_html("/inbox/list?view=all&attr=vip&attr_value=yes")
        .await;
    assert!(listed.contains(&conversation), "Ada's conversation");
    assert!(!listed.contains(&other), "not Bob's");
    assert!(
        owner
            .get_html("/inbox/list?view=all")
            .await
            .contains(&other)
    );
}

#[tokio::test]
async fn merging_asks_first_then_moves_everything_onto_the_contact() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let key = create_key(&app, &owner, "Acme").await;
    let inbox = api_inbox(&app, &key).await;
    let (duplicate, conversation) =
        conversation_from(&app, &key, &inbox, "ada.l@engines.test").await;
    let keep = new_contact(&app, org, "Ada Lovelace", Some("ada@engines.test")).await;
    let duplicate_id: kaltalk_core::ContactId = duplicate.parse().expect("id");
    app.state
        .store
        .add_contact_note(
            org,
            duplicate_id,
            owner.user_id().await,
            "VIP customer",
            app.clock_now(),
        )
        .await
        .expect("note");

    let search = owner
        .get_html(&format!("/contacts/{keep}/merge?q=ada.l"))
        .await;
    let pick = format!("/contacts/{keep}/merge?q=ada.l&amp;other={duplicate}");
    assert!(search.contains(&pick), "the duplicate is offered");
    let confirm = owner.get_html(&pick.replace("&amp;", "&")).await;
    assert!(
        confirm.contains("1 conversation, 1 note") && confirm.contains("cannot be undone"),
        "{confirm}"
    );

    let refused = owner
        .submit(
            &format!("/contacts/{keep}"),
            &format!("/contacts/{keep}/merge"),
            &[("other", &keep.to_string())],
        )
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "not into itself"
    );
    let merged = owner
        .submit(
            &format!("/contacts/{keep}"),
            &format!("/contacts/{keep}/merge"),
            &[("other", &duplicate)],
        )
        .await;
    assert_eq!(merged.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&merged), format!("/contacts/{keep}?notice=merged"));
    assert_eq!(
        owner.get(&format!("/contacts/{duplicate}")).await.status(),
        StatusCode::NOT_FOUND,
        "the duplicate is gone"
    );
    let page = owner.get_html(&format!("/contacts/{keep}")).await;
    assert!(
        page.contains(&conversation) && page.contains("VIP customer"),
        "its conversation and note moved"
    );
}

#[tokio::test]
async fn deleting_needs_the_confirmation_and_uses_the_thorough_deletion() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let key = create_key(&app, &owner, "Acme").await;
    let inbox = api_inbox(&app, &key).await;
    let (contact, conversation) = conversation_from(&app, &key, &inbox, "ada@engines.test").await;
    let confirm_page = owner.get_html(&format!("/contacts/{contact}/delete")).await;
    assert!(confirm_page.contains("1 conversation") && confirm_page.contains("cannot be undone"));

    let unticked = owner
        .submit(
            &format!("/contacts/{contact}/delete"),
            &format!("/contacts/{contact}/delete"),
            &[],
        )
        .await;
    assert_eq!(unticked.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        owner.get(&format!("/contacts/{contact}")).await.status(),
        StatusCode::OK,
        "still there"
    );
    let deleted = owner
        .submit(
            &format!("/contacts/{contact}/delete"),
            &format!("/contacts/{contact}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(location(&deleted), "/contacts?notice=deleted");
    assert_eq!(
        owner.get(&format!("/contacts/{contact}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let gone = app
        .api()
        .get(app.url(&format!("/api/v1/conversations/{conversation}")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("GET");
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "its conversations went with it"
    );
}

#[tokio::test]
async fn admins_define_attributes_and_agents_only_read_them() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let agent = join(&app, &owner, "agent@acme.test", "agent").await;
    assert_eq!(
        define(&owner, "plan", "Plan", "list", "Free\nPro")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let taken = define(&owner, "plan", "Plan again", "text", "").await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.text().await.expect("body").contains("already exists"));
    let bad = define(&owner, "Plan Name!", "", "list", "").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = bad.text().await.expect("body");
    assert!(
        body.contains("lower-case letters")
            && body.contains("Give it a label")
            && body.contains("A list needs its choices")
    );
    assert!(
        body.contains("value=\"Plan Name!\""),
        "what was typed stays"
    );

    let seen = agent.get_html("/settings/contact-attributes").await;
    assert!(seen.contains("Plan") && seen.contains("Only admins and owners"));
    assert!(!seen.contains("Add an attribute"), "no form for agents");
    let refused = define(&agent, "seats", "Seats", "number", "").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let definition = app
        .state
        .store
        .list_attribute_definitions(owner.org_id().await)
        .await
        .expect("list")[0]
        .id;
    let path = format!("/settings/contact-attributes/{definition}");
    assert_eq!(
        agent
            .submit("/contacts", &format!("{path}/delete"), &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let renamed = owner
        .submit(
            "/settings/contact-attributes",
            &path,
            &[("label", "Subscription"), ("options", "Free\nPro\nTeam")],
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    let listed = owner.get_html("/settings/contact-attributes").await;
    assert!(listed.contains("value=\"Subscription\"") && listed.contains("Team"));
    assert_eq!(
        owner
            .submit("/contacts", &format!("{path}/delete"), &[])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert!(
        owner
            .get_html("/settings/contact-attributes")
            .await
            .contains("No attributes defined yet")
    );
}

async fn upload_csv(owner: &Browser, csv: &str) -> reqwest::Response {
    let token = csrf_token(&owner.get_html("/contacts/import").await);
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("contacts.csv"),
        );
    owner
        .client
        .post(format!("{}/contacts/import", owner.base))
        .header("origin", &owner.base)
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

#[tokio::test]
async fn an_import_previews_each_row_then_imports_the_valid_ones_and_the_export_has_them_all() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    define(&owner, "plan", "Plan", "list", "Free\nPro").await;
    let existing = new_contact(&app, org, "Ada", Some("ada@engines.test")).await;
    let csv = "name,email,phone,Plan\n\
               Ada Lovelace,ADA@engines.test,+47 912 34 567,pro\n\
               Bob,bob@,,\n\
               Cy,cy@engines.test,,enterprise\n\
               Dee,dee@engines.test,,Free\n\
               Dee again,dee@engines.test,,\n";
    let preview = upload_csv(&owner, csv).await;
    assert_eq!(preview.status(), StatusCode::OK);
    let body = preview.text().await.expect("body");
    assert!(
        body.contains("2 will be imported") && body.contains("3 refused"),
        "{body}"
    );
    assert!(body.contains("Invalid email address “bob@”"));
    assert!(body.contains("Plan: choose one of Free, Pro."));
    assert!(body.contains("Duplicate: row 5"));
    assert!(body.contains("updates"), "Ada is matched by email");
    assert_eq!(
        app.state.store.all_contacts(org).await.expect("all").len(),
        1,
        "nothing imported yet"
    );

    let unknown = upload_csv(&owner, "name,colour\nAda,blue\n").await;
    assert!(
        unknown
            .text()
            .await
            .expect("body")
            .contains("Unknown attribute “colour”")
    );
    let unreadable = upload_csv(&owner, "plan\npro\n").await;
    assert_eq!(unreadable.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let confirmed = owner
        .submit(
            "/contacts/import",
            "/contacts/import/confirm",
            &[("csv", csv)],
        )
        .await;
    assert_eq!(location(&confirmed), "/contacts/import?created=1&updated=1");
    assert!(
        owner
            .get_html(&location(&confirmed))
            .await
            .contains("Imported: 1 new contact, 1 updated")
    );
    let ada = app
        .state
        .store
        .get_contact(org, existing)
        .await
        .expect("ada");
    assert_eq!(ada.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada.attributes.0, json!({"plan": "Pro"}));

    let export = owner.get("/contacts/export.csv").await;
    assert_eq!(export.status(), StatusCode::OK);
    assert_eq!(export.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        export.headers()["content-disposition"]
            .to_str()
            .expect("header")
            .starts_with("attachment; filename=\"contacts-")
    );
    let text = export.text().await.expect("csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("id,name,email,phone,created,last seen,plan")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0].starts_with(&existing.to_string())
            && rows[0].contains(",Ada Lovelace,ada@engines.test,+47 912 34 567,")
            && rows[0].ends_with(",Pro"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains(",Dee,dee@engines.test,,") && rows[1].ends_with(",Free"),
        "{}",
        rows[1]
    );

    // The export imports back as it is: every row matches its contact by email.
    let again = upload_csv(&owner, &text).await.text().await.expect("body");
    assert!(
        again.contains("2 will be imported</strong> (2 of them update"),
        "{again}"
    );
}
