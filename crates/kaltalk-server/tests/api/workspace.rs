//! The agent workspace's server side: the list's counts and default view, bulk actions,
//! snooze presets, the conversation's timeline lines and live header, and "Hand back to
//! the bot" only where a bot is involved.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, TestApp, csrf_token, spawn_app};

/// A conversation's facts, through the REST API.
async fn conversation(app: &TestApp, key: &str, id: &str) -> Value {
    app.api()
        .get(app.url(&format!("/api/v1/conversations/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// An htmx request's body: the partial the inbox swaps in.
async fn partial(app: &TestApp, agent: &Browser, path: &str) -> (StatusCode, String) {
    let response = agent
        .client
        .get(app.url(path))
        .header("hx-request", "true")
        .send()
        .await
        .expect("partial");
    (response.status(), response.text().await.expect("body"))
}

fn current_view(page: &str) -> &str {
    for view in ["mine", "unassigned", "all"] {
        if page.contains(&format!("view={view}&status=open\" aria-current=\"page\"")) {
            return view;
        }
    }
    "none"
}

#[tokio::test]
async fn the_inbox_opens_on_unassigned_while_mine_is_empty_and_counts_each_view() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let first = Visitor::new(&app, &inbox).say("Where is my order?").await;
    Visitor::new(&app, &inbox)
        .say("Do you ship to Norway?")
        .await;
    let id = first["conversation_id"].as_str().expect("id");

    let page = owner.get_html("/inbox").await;
    assert_eq!(current_view(&page), "unassigned", "nothing is Olivia's yet");
    assert!(page.contains("Where is my order?") && page.contains("Do you ship to Norway?"));
    for (n, what) in [(0, "Mine"), (2, "Unassigned"), (2, "All")] {
        assert!(
            page.contains(&format!(
                "{what} <span class=\"n\" aria-label=\"{n} open\">{n}</span>"
            )),
            "{what} counts {n}:\n{page}"
        );
    }

    // Her reply makes the conversation hers: the inbox opens on Mine again.
    owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/messages"),
            &[("text", "Today."), ("kind", "text")],
        )
        .await;
    let page = owner.get_html("/inbox").await;
    assert_eq!(current_view(&page), "mine");
    assert!(page.contains("Mine <span class=\"n\" aria-label=\"1 open\">1</span>"));
    // An explicit view is kept, empty or not.
    let page = owner.get_html("/inbox?view=all").await;
    assert_eq!(current_view(&page), "all");
}

#[tokio::test]
async fn bulk_actions_assign_label_and_resolve_the_selected_conversations_only() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let key = crate::api::create_key(&app, &owner, "Bulk").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let mut ids = Vec::new();
    for text in ["One", "Two", "Three"] {
        let said = Visitor::new(&app, &inbox).say(text).await;
        ids.push(said["conversation_id"].as_str().expect("id").to_owned());
    }
    let picked = [
        ("conversation", ids[0].as_str()),
        ("conversation", ids[1].as_str()),
    ];

    let mut fields = picked.to_vec();
    fields.extend([
        ("action", "assign-me"),
        ("label", "VIP customer"),
        ("back", "view=all&status=open"),
    ]);
    let done = owner
        .submit("/inbox?view=all", "/inbox/bulk", &fields)
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        done.headers()["location"],
        "/inbox?view=all&status=open",
        "back to the same view"
    );
    for id in &ids[..2] {
        let c = conversation(&app, &key, id).await;
        assert!(c["assignee_id"].is_string(), "{id} assigned: {c}");
        assert_eq!(c["labels"], serde_json::json!(["vip-customer"]), "{c}");
    }
    // The label view counts its open conversations.
    let page = owner.get_html("/inbox?view=all").await;
    assert!(page.contains("#vip-customer (2)</option>"), "{page}");
    let untouched = conversation(&app, &key, &ids[2]).await;
    assert!(untouched["assignee_id"].is_null() && untouched["labels"] == serde_json::json!([]));

    let mut fields = picked.to_vec();
    fields.push(("action", "resolve"));
    owner
        .submit("/inbox?view=all", "/inbox/bulk", &fields)
        .await;
    for id in &ids[..2] {
        assert_eq!(conversation(&app, &key, id).await["status"], "resolved");
    }
    assert_eq!(conversation(&app, &key, &ids[2]).await["status"], "open");
    let page = owner.get_html("/inbox?view=all").await;
    assert!(
        page.contains("#vip-customer (0)</option>"),
        "none of them open now"
    );

    // Nothing selected, an unknown action, or a stranger's id: refused, nothing changed.
    let none = owner
        .submit("/inbox?view=all", "/inbox/bulk", &[("action", "resolve")])
        .await;
    assert_eq!(none.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad = owner
        .submit(
            "/inbox?view=all",
            "/inbox/bulk",
            &[("conversation", &ids[2]), ("action", "explode")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let globex = app.sign_up("Gina", "gina@globex.test", "Globex").await;
    let theirs = globex
        .submit(
            "/inbox?view=all",
            "/inbox/bulk",
            &[("conversation", &ids[2]), ("action", "resolve")],
        )
        .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(conversation(&app, &key, &ids[2]).await["status"], "open");
}

#[tokio::test]
async fn snoozing_takes_the_agents_own_time_or_a_preset_and_refuses_the_past() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let key = crate::api::create_key(&app, &owner, "Snooze").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let said = Visitor::new(&app, &inbox).say("Call me next week").await;
    let id = said["conversation_id"].as_str().expect("id");
    let path = format!("/inbox/conversations/{id}/status");
    let now = app.clock_now();
    let snoozed_until = |c: &Value| {
        c["snoozed_until"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };

    // The browser sends the time it computed from "tonight" in the agent's zone.
    let tonight = (now + Duration::hours(5)).to_rfc3339();
    let done = owner
        .submit(
            "/inbox?view=all",
            &path,
            &[("status", "snoozed"), ("snooze_until", &tonight)],
        )
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let c = conversation(&app, &key, id).await;
    assert_eq!(c["status"], "snoozed");
    let until = snoozed_until(&c).expect("snoozed_until");
    assert!((until - (now + Duration::hours(5))).num_seconds().abs() <= 1);

    // Without a script, a preset is read in UTC.
    owner
        .submit(
            "/inbox?view=all",
            &path,
            &[("status", "snoozed"), ("snooze_preset", "tomorrow")],
        )
        .await;
    let until = snoozed_until(&conversation(&app, &key, id).await).expect("until");
    assert_eq!(until.date_naive(), now.date_naive() + Duration::days(1));
    assert_eq!(until.format("%H:%M").to_string(), "09:00");
    let in_a_month = (now + Duration::days(30)).date_naive();
    let date = owner
        .submit(
            "/inbox?view=all",
            &path,
            &[
                ("status", "snoozed"),
                ("snooze_preset", "date"),
                ("snooze_at", &format!("{in_a_month}T10:00")),
            ],
        )
        .await;
    assert_eq!(date.status(), StatusCode::SEE_OTHER);

    for bad in [
        vec![("snooze_until", (now - Duration::hours(1)).to_rfc3339())],
        vec![("snooze_until", (now + Duration::days(400)).to_rfc3339())],
        vec![("snooze_until", "next tuesday".to_owned())],
        vec![("snooze_preset", "someday".to_owned())],
        vec![
            ("snooze_preset", "date".to_owned()),
            ("snooze_at", "soon".to_owned()),
        ],
    ] {
        let mut fields = vec![("status", "snoozed")];
        fields.extend(bad.iter().map(|(k, v)| (*k, v.as_str())));
        let refused = owner.submit("/inbox?view=all", &path, &fields).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}"
        );
        let body = refused.text().await.expect("body");
        assert!(body.contains("Pick a time in the future"), "{body}");
    }
    // The last good snooze stands.
    assert_eq!(
        snoozed_until(&conversation(&app, &key, id).await).map(|t| t.date_naive().to_string()),
        Some(in_a_month.to_string())
    );
}

#[tokio::test]
async fn the_timeline_shows_what_happened_and_the_header_is_served_alone_for_live_refresh() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let inbox = create_inbox(&app, &owner, "").await;
    let said = Visitor::new(&app, &inbox).say("Hello").await;
    let id = said["conversation_id"].as_str().expect("id");
    let page = owner.get_html(&format!("/inbox?view=all&c={id}")).await;
    assert!(
        page.contains("class=\"day\"") && page.contains(">Today<"),
        "a day separator"
    );
    assert!(
        !page.contains("Hand back to the bot"),
        "no bot is involved here"
    );

    let me = owner.me().await["actor"]["id"]
        .as_str()
        .expect("my id")
        .to_owned();
    owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/assign"),
            &[("assignee", &me)],
        )
        .await;
    owner
        .submit(
            "/inbox?view=all",
            &format!("/inbox/conversations/{id}/status"),
            &[("status", "resolved")],
        )
        .await;

    let (status, messages) =
        partial(&app, &owner, &format!("/inbox/conversations/{id}/messages")).await;
    assert_eq!(status, StatusCode::OK);
    let assigned = messages
        .find("Assigned to Olivia")
        .expect("an assignment line");
    let resolved = messages.find(">Resolved<").expect("a resolution line");
    assert!(assigned < resolved, "in the order they happened");

    let (status, header) =
        partial(&app, &owner, &format!("/inbox/conversations/{id}/header")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header.contains("id=\"thread-head\""), "{header}");
    assert!(
        header.contains("id=\"conversation-status\">resolved<"),
        "{header}"
    );
    assert!(header.contains("Olivia") && header.contains(">Reopen<"));
    assert!(!header.contains("class=\"messages\""), "the header alone");

    // A header form answers with the header (the timeline hears of it from the feed).
    let reopen = owner
        .client
        .post(app.url(&format!("/inbox/conversations/{id}/status")))
        .header("hx-request", "true")
        .header("x-csrf-token", csrf_token(&owner.get_html("/inbox").await))
        .header(
            "hx-current-url",
            app.url(&format!(
                "/inbox?view=unassigned&status=open&label=vip&c={id}"
            )),
        )
        .form(&[("status", "open")])
        .send()
        .await
        .expect("reopen");
    assert_eq!(reopen.status(), StatusCode::OK);
    let body = reopen.text().await.expect("body");
    assert!(body.contains("id=\"conversation-status\">open<") && !body.contains("id=\"messages\""));
    // Its "back to the list" returns to the view the page showed.
    assert!(
        body.contains("href=\"/inbox?view=unassigned&#38;status=open&#38;label=vip\" data-back"),
        "{body}"
    );
}
