//! Every endpoint that takes an id, tried with another organization's ids: 404, and
//! nothing changes.

use kaltalk_core::Role;
use reqwest::StatusCode;

use crate::helpers::spawn_app;
use crate::teams::{invite, join};

#[tokio::test]
async fn another_organizations_ids_are_not_found() {
    let app = spawn_app().await;
    // Two organizations, each with an agent, an invitation, an API key and an email.
    let acme = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let globex = app.sign_up("Hank", "hank@globex.test", "Globex").await;
    let acme_org = acme.org_id().await;
    let globex_org = globex.org_id().await;
    let globex_agent = join(&app, &globex, "agent@globex.test", "agent").await;
    let globex_agent_id = globex_agent.user_id().await;
    let globex_owner_id = globex.user_id().await;
    invite(&app, &globex, "pending@globex.test", "agent").await;
    let globex_invitation = app
        .state
        .store
        .pending_invitations(globex_org)
        .await
        .expect("list")
        .remove(0);
    crate::api::create_key(&app, &globex, "Globex key").await;
    let globex_key = app
        .state
        .store
        .list_api_keys(globex_org)
        .await
        .expect("keys")
        .remove(0);
    let globex_email = app
        .state
        .store
        .list_emails(globex_org, 1)
        .await
        .expect("emails")
        .remove(0);

    // Acme's owner tries each of Globex's ids.
    let attempts: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            format!("/settings/team/members/{globex_agent_id}/role"),
            vec![("role", "admin".into())],
        ),
        (
            format!("/settings/team/members/{globex_agent_id}/remove"),
            vec![],
        ),
        (
            "/settings/team/transfer-ownership".into(),
            vec![("user_id", globex_agent_id.to_string())],
        ),
        (
            format!("/settings/team/invitations/{}/revoke", globex_invitation.id),
            vec![],
        ),
        (
            format!("/settings/api-keys/{}/revoke", globex_key.id),
            vec![],
        ),
        (
            "/orgs/switch".into(),
            vec![("org_id", globex_org.to_string())],
        ),
    ];
    for (path, fields) in &attempts {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = acme.submit("/settings/team", path, &fields).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    let email = acme
        .get(&format!("/settings/outbox/{}", globex_email.id))
        .await;
    assert_eq!(email.status(), StatusCode::NOT_FOUND, "another org's email");

    // Nothing changed at Globex.
    assert_eq!(
        app.state
            .store
            .get_member(globex_org, globex_agent_id)
            .await
            .expect("agent")
            .role(),
        Role::Agent
    );
    assert_eq!(
        app.state
            .store
            .get_member(globex_org, globex_owner_id)
            .await
            .expect("owner")
            .role(),
        Role::Owner
    );
    assert_eq!(
        app.state
            .store
            .pending_invitations(globex_org)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(
        app.state
            .store
            .list_api_keys(globex_org)
            .await
            .expect("keys")[0]
            .revoked_at
            .is_none()
    );
    assert_eq!(acme.org_id().await, acme_org, "the switch did not happen");

    // Acme's API sees only Acme.
    let acme_key = crate::api::create_key(&app, &acme, "Acme key").await;
    let team: serde_json::Value = app
        .api()
        .get(app.url("/api/v1/team"))
        .header("authorization", format!("Bearer {acme_key}"))
        .send()
        .await
        .expect("team")
        .json()
        .await
        .expect("json");
    let emails: Vec<&str> = team["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["email"].as_str())
        .collect();
    assert_eq!(emails, ["olivia@acme.test"]);
}

#[tokio::test]
async fn malformed_ids_are_not_found_either() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let response = owner
        .submit(
            "/settings/team",
            "/settings/team/members/not-a-uuid/remove",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        owner.get("/settings/outbox/42").await.status(),
        StatusCode::NOT_FOUND
    );
}
