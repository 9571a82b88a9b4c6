//! Teams, availability and routing through their screens and the API: Settings → Teams
//! (create, rename, members, capacity, offline-after, delete), the availability control,
//! an inbox's routing form, the inbox's team views and bulk "move to team", and
//! `/api/v1/teams` with `team_id` on conversations. Bad input is refused with the reason
//! and changes nothing; an agent may look but not manage.

use kaltalk_core::chat::Availability;
use kaltalk_core::{OrgId, TeamId, UserId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::create_key;
use crate::chat_helpers::{Visitor, create_inbox};
use crate::helpers::{Browser, TestApp, location, spawn_app};
use crate::teams::join;

/// The organization's team called `name`.
async fn team_named(app: &TestApp, org: OrgId, name: &str) -> Option<TeamId> {
    app.state
        .store
        .list_teams(org)
        .await
        .expect("teams")
        .into_iter()
        .find(|t| t.name == name)
        .map(|t| t.id)
}

async fn members_of(app: &TestApp, org: OrgId, team: TeamId) -> Vec<UserId> {
    app.state
        .store
        .team_members(org, team)
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.user_id)
        .collect()
}

async fn body(response: reqwest::Response) -> String {
    response.text().await.expect("body")
}

#[tokio::test]
async fn settings_teams_creates_renames_fills_and_deletes_a_team() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let agent = join(&app, &owner, "agent@acme.test", "agent").await;
    let agent_id = agent.user_id().await;
    let page = "/settings/teams";

    // Refused with the reason, nothing created.
    let empty = owner.submit(page, page, &[("name", "  ")]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(empty).await.contains("Give the team a name."));
    let long = "x".repeat(81);
    let too_long = owner.submit(page, page, &[("name", &long)]).await;
    assert_eq!(too_long.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        app.state
            .store
            .list_teams(org)
            .await
            .expect("teams")
            .is_empty()
    );

    let created = owner.submit(page, page, &[("name", "Billing")]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&created), "/settings/teams?notice=created");
    let billing = team_named(&app, org, "Billing").await.expect("created");
    let taken = owner.submit(page, page, &[("name", "Billing")]).await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body(taken)
            .await
            .contains("A team with this name already exists.")
    );

    // Members in and out; the page shows who is in it and their availability.
    let add = format!("/settings/teams/{billing}/members");
    for user in [agent_id.to_string(), owner.user_id().await.to_string()] {
        let added = owner.submit(page, &add, &[("user_id", &user)]).await;
        assert_eq!(added.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(members_of(&app, org, billing).await.len(), 2);
    let not_a_member = owner.submit(page, &add, &[("user_id", "someone")]).await;
    assert_eq!(not_a_member.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let removed = owner
        .submit(
            page,
            &format!("/settings/teams/{billing}/members/remove"),
            &[("user_id", &owner.user_id().await.to_string())],
        )
        .await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert_eq!(members_of(&app, org, billing).await, vec![agent_id]);
    let html = owner.get_html(page).await;
    let card = &html[html.find(r#"<h2 id="team-"#).expect("the team's card")..];
    let card = &card[..card.find("</section>").expect("its end")];
    assert!(
        card.contains("Billing") && card.contains("Member agent"),
        "{card}"
    );
    assert!(!card.contains("Olivia (you)"), "removed: {card}");

    // Rename; a blank name is refused and the old one stays.
    let rename = format!("/settings/teams/{billing}/rename");
    let blank = owner.submit(page, &rename, &[("name", "")]).await;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let renamed = owner.submit(page, &rename, &[("name", "Payments")]).await;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    assert_eq!(team_named(&app, org, "Payments").await, Some(billing));

    // Capacity and offline-after: whole numbers in range, or the reason.
    let capacity = "/settings/teams/capacity";
    for bad in ["-1", "1001", "lots"] {
        let refused = owner
            .submit(
                page,
                capacity,
                &[("user_id", &agent_id.to_string()), ("capacity", bad)],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(
            body(refused)
                .await
                .contains("Capacity is a whole number from 0 to 1000.")
        );
    }
    let saved = owner
        .submit(
            page,
            capacity,
            &[("user_id", &agent_id.to_string()), ("capacity", "3")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let status = app
        .state
        .store
        .member_status(org, agent_id)
        .await
        .expect("status");
    assert_eq!(status.capacity, 3);
    let offline_after = "/settings/teams/offline-after";
    let refused = owner.submit(page, offline_after, &[("minutes", "0")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let saved = owner
        .submit(page, offline_after, &[("minutes", "30")])
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.state
            .store
            .offline_after_minutes(org)
            .await
            .expect("minutes"),
        30
    );

    // An agent sees the teams but cannot change them.
    let seen = agent.get_html(page).await;
    assert!(seen.contains("Payments"));
    assert!(
        !seen.contains("Create team"),
        "an agent gets no management forms"
    );
    let forbidden = agent.submit(page, page, &[("name", "Agents only")]).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(team_named(&app, org, "Agents only").await, None);

    // Deleting the team leaves its conversations with no team.
    let inbox = create_inbox(&app, &owner, "example.com").await;
    let visitor = Visitor::new(&app, &inbox);
    let sent: Value = visitor
        .send(json!({ "text": "Invoice question" }))
        .await
        .json()
        .await
        .expect("json");
    let conversation = sent["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    app.state
        .store
        .set_conversation_team(org, conversation, Some(billing), app.clock_now())
        .await
        .expect("team");
    let deleted = owner
        .submit(page, &format!("/settings/teams/{billing}/delete"), &[])
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert!(
        app.state
            .store
            .list_teams(org)
            .await
            .expect("teams")
            .is_empty()
    );
    let after = app
        .state
        .store
        .get_conversation(org, conversation)
        .await
        .expect("conversation");
    assert_eq!(after.team_id, None);
}

#[tokio::test]
async fn the_availability_control_sets_it_on_the_server_and_returns_to_the_page() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let me = owner.user_id().await;
    let html = owner.get_html("/settings/profile").await;
    let token = crate::helpers::csrf_token(&html);
    let set = |availability: &'static str, referer: &'static str| {
        let owner = owner.clone();
        let token = token.clone();
        async move {
            owner
                .client
                .post(format!("{}/availability", owner.base))
                .header("origin", &owner.base)
                .header("referer", format!("{}{referer}", owner.base))
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("availability", availability),
                ])
                .send()
                .await
                .expect("POST")
        }
    };

    let busy = set("busy", "/inbox?view=all&status=open").await;
    assert_eq!(busy.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&busy), "/inbox?view=all&status=open");
    let status = app
        .state
        .store
        .member_status(org, me)
        .await
        .expect("status");
    assert_eq!(status.availability, Availability::Busy);
    // The control shows it on every page.
    let page = owner.get_html("/settings/teams").await;
    assert!(page.contains(r#"<option value="busy" selected>"#));

    let refused = set("asleep", "/").await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body(refused)
            .await
            .contains("Choose online, busy or offline.")
    );
    let status = app
        .state
        .store
        .member_status(org, me)
        .await
        .expect("status");
    assert_eq!(status.availability, Availability::Busy, "unchanged");

    // Another site's address in the Referer is not followed.
    let elsewhere = owner
        .client
        .post(format!("{}/availability", owner.base))
        .header("origin", &owner.base)
        .header("referer", "https://evil.example/phish")
        .form(&[("csrf_token", token.as_str()), ("availability", "online")])
        .send()
        .await
        .expect("POST");
    assert_eq!(location(&elsewhere), "/phish");
    let status = app
        .state
        .store
        .member_status(org, me)
        .await
        .expect("status");
    assert_eq!(status.availability, Availability::Online);
}

/// Owner and agent in a team `Support` that the widget inbox routes to.
async fn routed(app: &TestApp) -> (Browser, Browser, kaltalk_store::inboxes::Inbox, TeamId) {
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let agent = join(app, &owner, "agent@acme.test", "agent").await;
    let page = "/settings/teams";
    owner.submit(page, page, &[("name", "Support")]).await;
    let team = team_named(app, org, "Support").await.expect("team");
    for user in [owner.user_id().await, agent.user_id().await] {
        owner
            .submit(
                page,
                &format!("/settings/teams/{team}/members"),
                &[("user_id", &user.to_string())],
            )
            .await;
    }
    let inbox = create_inbox(app, &owner, "example.com").await;
    (owner, agent, inbox, team)
}

#[tokio::test]
async fn an_inboxs_routing_form_routes_and_auto_assigns_its_conversations() {
    let app = spawn_app().await;
    let (owner, agent, inbox, team) = routed(&app).await;
    let org = owner.org_id().await;
    let settings = format!("/settings/inboxes/{}", inbox.id);
    let routing = format!("/settings/inboxes/{}/routing", inbox.id);
    let agent_id = agent.user_id().await;
    // Only the agent is online.
    let store = &app.state.store;
    store
        .set_availability(
            org,
            owner.user_id().await,
            Availability::Offline,
            false,
            app.clock_now(),
        )
        .await
        .expect("offline");
    store
        .set_availability(org, agent_id, Availability::Online, false, app.clock_now())
        .await
        .expect("online");

    // Auto-assignment needs a team; an id that is not one of ours is not found.
    let no_team = owner
        .submit(
            &settings,
            &routing,
            &[("team_id", ""), ("auto_assign", "yes")],
        )
        .await;
    assert_eq!(no_team.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body(no_team)
            .await
            .contains("Choose a team to auto-assign to")
    );
    let nowhere = uuid::Uuid::now_v7().to_string();
    let unknown = owner
        .submit(
            &settings,
            &routing,
            &[("team_id", &nowhere), ("auto_assign", "yes")],
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        store
            .get_inbox(org, inbox.id)
            .await
            .expect("inbox")
            .routing
            .team_id,
        None,
        "nothing saved"
    );

    let saved = owner
        .submit(
            &settings,
            &routing,
            &[("team_id", &team.to_string()), ("auto_assign", "yes")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = owner.get_html(&settings).await;
    assert!(page.contains(r#"name="auto_assign" value="yes" checked"#));

    let visitor = Visitor::new(&app, &inbox);
    let sent: Value = visitor
        .send(json!({ "text": "Hello" }))
        .await
        .json()
        .await
        .expect("json");
    let id = sent["conversation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let conversation = store.get_conversation(org, id).await.expect("conversation");
    assert_eq!(conversation.team_id, Some(team));
    assert_eq!(conversation.assignee_id, Some(agent_id), "the one online");

    // The inbox's team view lists it with its count, and the agent's Mine has it.
    let view = owner
        .get_html(&format!("/inbox?view=all&status=open&team={team}"))
        .await;
    assert!(view.contains(&format!(r#"data-conversation-link="{id}""#)));
    assert!(view.contains(&format!(
        r#"<option value="{team}" selected>Support (1)</option>"#
    )));
    let mine = agent.get_html("/inbox?view=mine&status=open").await;
    assert!(mine.contains(&format!(r#"data-conversation-link="{id}""#)));
}

#[tokio::test]
async fn the_bulk_bar_moves_conversations_to_a_team_and_out_of_it() {
    let app = spawn_app().await;
    let (owner, _agent, inbox, team) = routed(&app).await;
    let org = owner.org_id().await;
    let mut ids = Vec::new();
    for text in ["One", "Two"] {
        let visitor = Visitor::new(&app, &inbox);
        let sent: Value = visitor
            .send(json!({ "text": text }))
            .await
            .json()
            .await
            .expect("json");
        ids.push(sent["conversation_id"].as_str().expect("id").to_owned());
    }
    let list = "/inbox?view=all&status=open";
    let team_action = format!("team:{team}");
    let moved = owner
        .submit(
            list,
            "/inbox/bulk",
            &[
                ("conversation", &ids[0]),
                ("conversation", &ids[1]),
                ("action", &team_action),
                ("back", "view=all&status=open"),
            ],
        )
        .await;
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    for id in &ids {
        let c = app
            .state
            .store
            .get_conversation(org, id.parse().expect("uuid"))
            .await
            .expect("c");
        assert_eq!(c.team_id, Some(team));
    }
    let view = owner
        .get_html(&format!("/inbox?view=all&status=open&team={team}"))
        .await;
    assert!(view.contains("Support (2)"));
    assert!(view.contains(r#"<span class="badge team">Support</span>"#));

    // Another organization's team is no choice.
    let globex = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    globex
        .submit("/settings/teams", "/settings/teams", &[("name", "Theirs")])
        .await;
    let theirs = team_named(&app, globex.org_id().await, "Theirs")
        .await
        .expect("team");
    let refused = owner
        .submit(
            list,
            "/inbox/bulk",
            &[
                ("conversation", &ids[0]),
                ("action", &format!("team:{theirs}")),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(refused).await.contains("Choose one of the teams."));

    let out = owner
        .submit(
            list,
            "/inbox/bulk",
            &[("conversation", &ids[0]), ("action", "no-team")],
        )
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let c = app
        .state
        .store
        .get_conversation(org, ids[0].parse().expect("uuid"))
        .await
        .expect("c");
    assert_eq!(c.team_id, None);
}

#[tokio::test]
async fn the_api_lists_teams_and_sets_and_filters_a_conversations_team() {
    let app = spawn_app().await;
    let (owner, agent, _inbox, team) = routed(&app).await;
    let key = create_key(&app, &owner, "CRM").await;
    let api = |method: reqwest::Method, path: String| {
        app.api()
            .request(method, app.url(&format!("/api/v1{path}")))
            .bearer_auth(&key)
    };

    let teams: Value = api(reqwest::Method::GET, "/teams".into())
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(teams["data"][0]["id"], json!(team.to_string()));
    assert_eq!(teams["data"][0]["name"], json!("Support"));
    let members: Vec<&str> = teams["data"][0]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["user_id"].as_str().expect("id"))
        .collect();
    assert!(members.contains(&agent.user_id().await.to_string().as_str()));
    let one = api(reqwest::Method::GET, format!("/teams/{team}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(one.status(), StatusCode::OK);
    let missing = api(
        reqwest::Method::GET,
        format!("/teams/{}", uuid::Uuid::now_v7()),
    )
    .send()
    .await
    .expect("GET");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let api_inbox: Value = api(reqwest::Method::POST, "/inboxes".into())
        .json(&json!({ "kind": "api", "name": "App" }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    let started: Value = api(
        reqwest::Method::POST,
        format!(
            "/inboxes/{}/conversations",
            api_inbox["id"].as_str().expect("id")
        ),
    )
    .json(&json!({ "contact": { "email": "c@example.com" }, "text": "Hi" }))
    .send()
    .await
    .expect("POST")
    .json()
    .await
    .expect("json");
    let id = started["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(started["conversation"]["team_id"], Value::Null);

    let bad = api(reqwest::Method::PATCH, format!("/conversations/{id}"))
        .json(&json!({ "team_id": uuid::Uuid::now_v7().to_string(), "status": "pending" }))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = bad.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], json!("team_id"), "{problem}");
    let unchanged: Value = api(reqwest::Method::GET, format!("/conversations/{id}"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(
        unchanged["status"],
        json!("open"),
        "nothing of a refused change is written"
    );

    let set: Value = api(reqwest::Method::PATCH, format!("/conversations/{id}"))
        .json(&json!({ "team_id": team.to_string() }))
        .send()
        .await
        .expect("PATCH")
        .json()
        .await
        .expect("json");
    assert_eq!(set["team_id"], json!(team.to_string()));
    let listed: Value = api(
        reqwest::Method::GET,
        format!("/conversations?team_id={team}"),
    )
    .send()
    .await
    .expect("GET")
    .json()
    .await
    .expect("json");
    let listed: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, vec![id.as_str()]);
    let other_team: Value = api(
        reqwest::Method::GET,
        format!("/conversations?team_id={}", uuid::Uuid::now_v7()),
    )
    .send()
    .await
    .expect("GET")
    .json()
    .await
    .expect("json");
    assert_eq!(other_team["data"], json!([]));

    let cleared: Value = api(reqwest::Method::PATCH, format!("/conversations/{id}"))
        .json(&json!({ "team_id": null }))
        .send()
        .await
        .expect("PATCH")
        .json()
        .await
        .expect("json");
    assert_eq!(cleared["team_id"], Value::Null);
}

#[tokio::test]
async fn an_inbox_tells_its_team_of_a_customer_waiting_longer_than_it_allows() {
    let app = spawn_app().await;
    let (owner, agent, inbox, team) = routed(&app).await;
    let org = owner.org_id().await;
    let settings = format!("/settings/inboxes/{}", inbox.id);
    let routing = format!("/settings/inboxes/{}/routing", inbox.id);
    let store = &app.state.store;
    let minutes = || async move {
        store
            .get_inbox(org, inbox.id)
            .await
            .expect("inbox")
            .routing
            .waiting_alert_minutes
    };
    let team_id = team.to_string();
    let (owner_ref, settings, routing, team_id) = (&owner, &settings, &routing, &team_id);
    let save = |minutes: &'static str| async move {
        owner_ref
            .submit(
                settings,
                routing,
                &[("team_id", team_id), ("waiting_alert_minutes", minutes)],
            )
            .await
    };
    let sweep = || async {
        kaltalk_server::notifications::alert_waiting(&app.state)
            .await
            .expect("sweep")
    };
    let notify = || async {
        kaltalk_server::notifications::notify_pending(&app.state)
            .await
            .expect("notify")
    };
    assert_eq!(minutes().await, Some(15), "a quarter of an hour by default");
    let page = owner.get_html(settings).await;
    assert!(page.contains(r#"name="waiting_alert_minutes" type="number" inputmode="numeric" min="1" max="10080" value="15" class="narrow""#));

    // Not a whole number of minutes from 1 to a week: refused with the reason, kept.
    for bad in ["0", "10081", "ten", "1.5"] {
        let refused = save(bad).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(
            body(refused).await.contains("whole number from 1 to 10080"),
            "{bad}"
        );
    }
    assert_eq!(minutes().await, Some(15), "nothing saved");
    assert_eq!(
        store
            .get_inbox(org, inbox.id)
            .await
            .expect("inbox")
            .routing
            .team_id,
        None,
        "not the team either"
    );
    assert_eq!(save(" 5 ").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(minutes().await, Some(5));

    // A visitor writes and nobody answers: after five minutes the team hears of it,
    // in the bell, once.
    let visitor = Visitor::new(&app, &inbox);
    visitor.send(json!({ "text": "Hello?" })).await;
    notify().await;
    app.clock.advance(chrono::Duration::minutes(4));
    assert_eq!(sweep().await, 0, "not yet");
    app.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(sweep().await, 1);
    notify().await;
    assert_eq!(sweep().await, 0, "once per wait");
    for member in [&owner, &agent] {
        let bell = member.get_html("/notifications").await;
        assert!(bell.contains("Waiting for a reply"), "{bell}");
    }
    let preferences = agent.get_html("/notifications").await;
    assert!(preferences.contains("Conversations waiting too long for a reply"));

    // Empty: never.
    save("").await;
    assert_eq!(minutes().await, None);
}
