//! The team's side of live chat: the inbox pages, the dashboard socket, channels
//! settings, and the conversations API.

use reqwest::StatusCode;
use serde_json::Value;

use crate::chat_helpers::{Socket, Visitor, create_inbox, session_cookie};
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_inbox_shows_the_conversation_with_its_visitor_context_and_takes_replies() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let first = visitor.say("Where is my order?").await;
    let id = first["conversation_id"].as_str().expect("id").to_owned();

    let unassigned = owner.get_html("/inbox?view=unassigned").await;
    assert!(
        unassigned.contains("Where is my order?"),
        "the list previews the last message"
    );
    assert!(unassigned.contains("aria-label=\"1 unread\""));
    let mine = owner.get_html("/inbox?view=mine").await;
    assert!(mine.contains("No open conversations here."));

    let page = owner.get_html(&format!("/inbox?view=all&c={id}")).await;
    for expected in [
        "Chrome 131.0",
        "Linux",
        "Europe/Paris",
        "Pricing",
        "fr-FR",
        "127.0.0.1",
        "https://search.example/",
    ] {
        assert!(page.contains(expected), "sidebar shows {expected}");
    }

    let reply = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/messages"),
            &[("text", "It ships today."), ("kind", "text")],
        )
        .await;
    assert_eq!(reply.status(), StatusCode::SEE_OTHER);
    let note = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/messages"),
            &[("text", "Check the warehouse"), ("kind", "note")],
        )
        .await;
    assert_eq!(note.status(), StatusCode::SEE_OTHER);
    let empty = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/messages"),
            &[("text", "  ")],
        )
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The first reply assigned the conversation to Olivia.
    let mine = owner.get_html("/inbox?view=mine").await;
    assert!(mine.contains("It ships today."));
    // htmx partial: the messages, note included, marked as such.
    let partial = owner
        .client
        .get(app.url(&format!("/inbox/conversations/{id}/messages")))
        .header("hx-request", "true")
        .send()
        .await
        .expect("partial")
        .text()
        .await
        .expect("body");
    assert!(partial.contains("Check the warehouse") && partial.contains("private note"));
    assert!(!partial.contains("<html"), "a partial, not a page");

    let visible: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    let texts: Vec<&str> = visible["messages"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["Where is my order?", "It ships today."],
        "the visitor never sees notes"
    );

    let resolved = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/status"),
            &[("status", "resolved")],
        )
        .await;
    assert_eq!(resolved.status(), StatusCode::SEE_OTHER);
    assert!(
        owner
            .get_html("/inbox?view=all&status=resolved")
            .await
            .contains("It ships today.")
    );
    let snoozed = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/status"),
            &[("status", "snoozed"), ("snooze_hours", "4")],
        )
        .await;
    assert_eq!(snoozed.status(), StatusCode::SEE_OTHER);
    let bad = owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/status"),
            &[("status", "closed")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn assignment_takes_members_only() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    let agent_id = agent.user_id().await;
    let stranger = app.sign_up("Eve", "eve@evil.test", "Evil").await;
    let stranger_id = stranger.user_id().await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("Hello").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let path = format!("/inbox/conversations/{id}/assign");
    assert_eq!(
        owner
            .submit("/inbox", &path, &[("assignee", &agent_id.to_string())])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert!(
        agent.get_html("/inbox?view=mine").await.contains("Hello"),
        "in Alex's view now"
    );
    assert_eq!(
        owner
            .submit("/inbox", &path, &[("assignee", &stranger_id.to_string())])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        owner
            .submit("/inbox", &path, &[("assignee", "")])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert!(
        owner
            .get_html("/inbox?view=unassigned")
            .await
            .contains("Hello")
    );
}

#[tokio::test]
async fn the_dashboard_socket_streams_the_organizations_events_and_resumes() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let other = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let other_inbox = create_inbox(&app, &other, "").await;
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    let mut socket = Socket::agent(&app, &cookie, None).await;

    // Another organization's traffic never reaches this socket.
    Visitor::new(&app, &other_inbox)
        .say("Globex question")
        .await;
    let mut visitor = Visitor::new(&app, &inbox);
    visitor.say("Acme question").await;
    let frame = socket.next_of("message.created").await;
    assert_eq!(frame["payload"]["message"]["text"], "Acme question");
    let seen = frame["event_id"].as_str().expect("event").to_owned();
    socket.close().await;

    visitor.say("Are you there?").await;
    let mut resumed = Socket::agent(&app, &cookie, Some(&seen)).await;
    loop {
        let frame = resumed.next_of("message.created").await;
        if frame["payload"]["message"]["text"] == "Are you there?" {
            break;
        }
        assert_eq!(
            frame["payload"]["message"]["text"], "Acme question",
            "only the overlap repeats"
        );
    }
}

#[tokio::test]
async fn a_cross_site_page_cannot_open_the_dashboard_socket() {
    let app = spawn_app().await;
    app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let cookie = session_cookie(&app, "olivia@acme.test").await;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/inbox/ws", app.addr)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    request
        .headers_mut()
        .insert("origin", "https://evil.test".parse().expect("header"));
    assert!(
        tokio_tungstenite::connect_async(request).await.is_err(),
        "handshake refused"
    );
    let anonymous = format!("ws://{}/inbox/ws", app.addr)
        .into_client_request()
        .expect("request");
    assert!(
        tokio_tungstenite::connect_async(anonymous).await.is_err(),
        "no session, no socket"
    );
}

#[tokio::test]
async fn another_organizations_conversations_and_inboxes_are_not_found() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let other = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut visitor = Visitor::new(&app, &inbox);
    let id = visitor.say("Private matter").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();

    assert_eq!(
        other.get(&format!("/inbox?view=all&c={id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let partial = other
        .client
        .get(app.url(&format!("/inbox/conversations/{id}")))
        .header("hx-request", "true")
        .send()
        .await
        .expect("get");
    assert_eq!(partial.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        other
            .get(&format!("/inbox/conversations/{id}/messages"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    for (path, fields) in [
        (
            format!("/inbox/conversations/{id}/messages"),
            vec![("text", "hijack"), ("kind", "text")],
        ),
        (
            format!("/inbox/conversations/{id}/status"),
            vec![("status", "resolved")],
        ),
        (
            format!("/inbox/conversations/{id}/assign"),
            vec![("assignee", "")],
        ),
        (
            format!("/settings/inboxes/{}", inbox.id),
            vec![
                ("name", "Mine"),
                ("color", "#000000"),
                ("position", "right"),
                ("identity", "off"),
            ],
        ),
    ] {
        let response = other.submit("/inbox", &path, &fields).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    assert_eq!(
        other
            .get(&format!("/settings/inboxes/{}", inbox.id))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        !other
            .get_html("/inbox?view=all")
            .await
            .contains("Private matter")
    );

    let key = crate::api::create_key(&app, &other, "Globex").await;
    let api = app.api();
    let messages = api
        .get(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(messages.status(), StatusCode::NOT_FOUND);
    let list: Value = api
        .get(app.url("/api/v1/conversations"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0));
    let history: Value = visitor
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        history["messages"].as_array().map(Vec::len),
        Some(1),
        "nothing was written"
    );
}

#[tokio::test]
async fn the_conversations_api_filters_and_pages_stably() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let key = crate::api::create_key(&app, &owner, "Reports").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut visitor = Visitor::new(&app, &inbox);
        ids.push(
            visitor.say(&format!("Question {n}")).await["conversation_id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
        app.clock.advance(chrono::Duration::seconds(1));
    }
    let api = app.api();
    let get = |query: String| {
        let api = api.clone();
        let key = key.clone();
        let url = app.url(&format!("/api/v1/conversations{query}"));
        async move { api.get(url).bearer_auth(key).send().await.expect("get") }
    };
    let first: Value = get("?limit=2".into()).await.json().await.expect("json");
    let page_ids: Vec<&str> = first["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(page_ids, [ids[4].as_str(), ids[3].as_str()], "newest first");
    let cursor = first["next_cursor"].as_str().expect("cursor").to_owned();

    // A new conversation arrives between pages: the next page does not shift.
    Visitor::new(&app, &inbox).say("Newcomer").await;
    let second: Value = get(format!("?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .expect("json");
    let page_ids: Vec<&str> = second["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(page_ids, [ids[2].as_str(), ids[1].as_str()]);

    let open: Value = get("?status=open&assignee_id=unassigned".into())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(open["data"].as_array().map(Vec::len), Some(6));
    let bad = get("?status=closed".into()).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "status");
    assert_eq!(
        get("?limit=0".into()).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let messages: Value = api
        .get(app.url(&format!("/api/v1/conversations/{}/messages", ids[0])))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(messages["data"][0]["text"], "Question 0");
    let unauthenticated = app
        .api()
        .get(app.url("/api/v1/conversations"))
        .send()
        .await
        .expect("get");
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn channels_are_managed_by_admins_with_clear_errors() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(
        &app,
        &owner,
        "shop.example.com, https://www.example.org/path",
    )
    .await;
    assert_eq!(
        inbox.settings.0.allowed_domains,
        ["shop.example.com", "www.example.org"]
    );
    let page = owner
        .get_html(&format!("/settings/inboxes/{}", inbox.id))
        .await;
    let snippet = format!(
        "&#60;script src=&#34;{}/widget.js&#34; data-kaltalk-inbox=&#34;{}&#34; async&#62;&#60;/script&#62;",
        app.base, inbox.public_token
    );
    assert!(
        page.contains(&snippet),
        "the escaped embed snippet is on the page:\n{page}"
    );

    let path = format!("/settings/inboxes/{}", inbox.id);
    let bad = owner
        .submit(
            &path,
            &path,
            &[
                ("name", "Website"),
                ("color", "red"),
                ("position", "right"),
                ("identity", "off"),
                ("allowed_domains", "not a domain!"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("body");
    assert!(html.contains("Use a colour like #4338ca.") && html.contains("is not a domain"));

    let good = owner
        .submit(
            &path,
            &path,
            &[
                ("name", "Help"),
                ("color", "#0F766E"),
                ("greeting", "Hello!"),
                ("position", "left"),
                ("identity", "required"),
                ("prechat_email", "yes"),
                ("allowed_domains", "example.com"),
            ],
        )
        .await;
    assert_eq!(good.status(), StatusCode::SEE_OTHER);
    let config: Value = Visitor::new(&app, &inbox)
        .get(&format!("/widget/v1/inboxes/{}/config", inbox.public_token))
        .await
        .json()
        .await
        .expect("json");
    // The header shows the company (the organization's name until one is set), not the
    // inbox's internal name.
    assert_eq!(config["name"], "Acme");
    assert_eq!(config["color"], "#0f766e");
    assert_eq!(config["position"], "left");
    assert_eq!(config["identity"], "required");
    assert_eq!(config["prechat"]["email"], true);

    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    assert_eq!(
        agent.get("/settings/inboxes").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn labels_views_search_canned_responses_and_snoozes() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut refund = Visitor::new(&app, &inbox);
    let refund_id = refund.say("I want a refund for order 77").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut shipping = Visitor::new(&app, &inbox);
    shipping.say("When do you ship to Lisbon?").await;

    // Labels: normalized, shown, filterable.
    let path = format!("/inbox/conversations/{refund_id}/labels");
    assert_eq!(
        owner
            .submit("/inbox", &path, &[("label", "  Billing Issue ")])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        owner
            .submit("/inbox", &path, &[("label", "no/slashes")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let labelled = owner.get_html("/inbox?view=all&label=billing-issue").await;
    assert!(
        labelled.contains("refund for order 77") && !labelled.contains("Lisbon"),
        "the label view"
    );
    assert!(
        owner
            .get_html(&format!("/inbox?view=all&c={refund_id}"))
            .await
            .contains("#billing-issue")
    );
    owner
        .submit(
            "/inbox",
            &format!("{path}/remove"),
            &[("label", "billing-issue")],
        )
        .await;
    assert!(
        !owner
            .get_html("/inbox?view=all&label=billing-issue")
            .await
            .contains("refund for order 77")
    );

    // Search: message words and contact details, any status. The customer wrote again
    // since: the preview is still the message that matched, not the last one.
    refund.say("Any news?").await;
    owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{refund_id}/status"),
            &[("status", "resolved")],
        )
        .await;
    let found = owner.get_html("/inbox?view=mine&q=refund").await;
    // The preview is the matching passage, the searched word marked.
    assert!(
        found.contains("<mark>refund</mark> for order 77") && !found.contains("Lisbon"),
        "resolved conversations are found too, the word marked:\n{found}"
    );
    let key = crate::api::create_key(&app, &owner, "Search").await;
    let api: Value = app
        .api()
        .get(app.url("/api/v1/conversations?q=lisb"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(api["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        api["data"][0]["matched_text"], "When do you ship to Lisbon?",
        "the message that matched"
    );

    // Canned responses: managed in settings, expanded from /shortcut.
    let created = owner
        .submit(
            "/settings/canned-responses",
            "/settings/canned-responses",
            &[
                ("shortcut", "/Refund"),
                ("text", "Refunds take 5 to 7 days."),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let duplicate = owner
        .submit(
            "/settings/canned-responses",
            "/settings/canned-responses",
            &[("shortcut", "refund"), ("text", "Again")],
        )
        .await;
    assert_eq!(duplicate.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        duplicate
            .text()
            .await
            .expect("body")
            .contains("/refund already exists.")
    );
    let inbox_page = owner.get_html("/inbox").await;
    assert!(
        inbox_page.contains(r#""shortcut":"refund""#),
        "the page carries the shortcuts for the composer"
    );
    owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{refund_id}/messages"),
            &[("text", "/refund"), ("kind", "text")],
        )
        .await;
    let history: Value = refund
        .get("/widget/v1/conversation")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        history["messages"]
            .as_array()
            .and_then(|m| m.last())
            .map(|m| m["text"].clone()),
        Some("Refunds take 5 to 7 days.".into())
    );
    let agent = crate::teams::join(&app, &owner, "alex@acme.test", "agent").await;
    assert!(
        agent
            .get_html("/settings/canned-responses")
            .await
            .contains("/refund"),
        "agents can read them"
    );
    let token = crate::helpers::csrf_token(&agent.get_html("/settings/canned-responses").await);
    let refused = agent
        .post_form(
            "/settings/canned-responses",
            &[("csrf_token", &token), ("shortcut", "x"), ("text", "y")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Snooze until a time: the conversation comes back by itself.
    let snooze = owner
        .submit(
            "/inbox",
            &format!("/inbox/conversations/{refund_id}/status"),
            &[("status", "snoozed"), ("snooze_hours", "3")],
        )
        .await;
    assert_eq!(snooze.status(), StatusCode::SEE_OTHER);
    assert!(
        owner
            .get_html("/inbox?view=all&status=snoozed")
            .await
            .contains("Refunds take")
    );
    assert_eq!(
        kaltalk_server::wake_snoozed(&app.state)
            .await
            .expect("wake"),
        0
    );
    app.clock.advance(chrono::Duration::hours(3));
    assert_eq!(
        kaltalk_server::wake_snoozed(&app.state)
            .await
            .expect("wake"),
        1
    );
    assert!(
        owner
            .get_html("/inbox?view=all&status=open")
            .await
            .contains("Refunds take")
    );
}

/// A canned response is text, wherever it is shown: the inbox embeds it for the composer
/// as JSON that cannot end its `<script>` block (it once could, and markup in it ran with
/// the reader's session).
#[tokio::test]
async fn a_canned_response_cannot_break_out_of_the_inbox_page_data() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let text = "</script><form hx-post=/settings/team/transfer-ownership hx-trigger=load>\
                <input name=user_id value=1></form><!-- \u{2028} & '";
    let created = owner
        .submit(
            "/settings/canned-responses",
            "/settings/canned-responses",
            &[("shortcut", "evil"), ("text", text)],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);

    let page = owner.get_html("/inbox").await;
    assert!(!page.contains("<form hx-post"), "{page}");
    let open = r#"<script type="application/json" id="canned-responses">"#;
    let start = page.find(open).expect("the canned responses") + open.len();
    let end = page[start..]
        .find("</script>")
        .expect("the end of the block")
        + start;
    let embedded: Value = serde_json::from_str(&page[start..end]).expect("JSON");
    assert_eq!(embedded[0]["shortcut"], "evil");
    assert_eq!(
        embedded[0]["text"], text,
        "the text reads back as it was written"
    );

    let settings = owner.get_html("/settings/canned-responses").await;
    assert!(!settings.contains("<form hx-post"), "{settings}");
}
