use chrono::Duration;
use kaltalk_core::Role;
use reqwest::StatusCode;

use crate::helpers::{Browser, PASSWORD, TestApp, link_in, location, path_of, spawn_app};

/// Invites `email` as `role` from `owner`'s organization; returns the invitation link.
pub async fn invite(app: &TestApp, owner: &Browser, email: &str, role: &str) -> String {
    let response = owner
        .submit(
            "/settings/team",
            "/settings/team/invitations",
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "invite {email}: {}",
        response.text().await.unwrap_or_default()
    );
    let mail = app.last_email_to(owner.org_id().await, email).await;
    assert!(mail.subject.contains("invited you to"), "{}", mail.subject);
    link_in(&mail.text_body, "/invitations/")
}

/// Invites and signs up a new member; returns their browser.
pub async fn join(app: &TestApp, owner: &Browser, email: &str, role: &str) -> Browser {
    let link = invite(app, owner, email, role).await;
    let browser = app.browser();
    let response = browser
        .post_form(
            &path_of(&link),
            &[
                ("name", &format!("Member {role}")),
                ("password", PASSWORD),
                ("age_confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "join: {}",
        response.text().await.unwrap_or_default()
    );
    browser
}

#[tokio::test]
async fn an_invited_newcomer_signs_up_from_the_link_and_joins() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let link = invite(&app, &owner, "alex@acme.test", "agent").await;
    let pending = owner.get_html("/settings/team").await;
    assert!(pending.contains("Pending invitations") && pending.contains("alex@acme.test"));

    let alex = app.browser();
    let page = alex.get_html(&path_of(&link)).await;
    assert!(
        page.contains("Join Acme") && page.contains("alex@acme.test"),
        "{page}"
    );
    let missing_age = alex
        .post_form(&path_of(&link), &[("name", "Alex"), ("password", PASSWORD)])
        .await;
    assert_eq!(missing_age.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let joined = alex
        .post_form(
            &path_of(&link),
            &[
                ("name", "Alex"),
                ("password", PASSWORD),
                ("age_confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(joined.status(), StatusCode::SEE_OTHER);
    let me = alex.me().await;
    assert_eq!(me["organization"]["name"], "Acme");
    assert_eq!(me["actor"]["role"], "agent");
    assert_eq!(me["actor"]["email"], "alex@acme.test");

    // Used once: the link is dead now, and the invitation is no longer pending.
    assert_eq!(
        app.browser().get(&path_of(&link)).await.status(),
        StatusCode::FORBIDDEN
    );
    let team = owner.get_html("/settings/team").await;
    assert!(team.contains("No pending invitations"), "{team}");
}

#[tokio::test]
async fn an_invitation_expires_after_seven_days() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let link = invite(&app, &owner, "late@acme.test", "agent").await;
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    let browser = app.browser();
    let page = browser.get(&path_of(&link)).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.expect("body").contains("expired"));
    let post = browser
        .post_form(
            &path_of(&link),
            &[
                ("name", "Late"),
                ("password", PASSWORD),
                ("age_confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.state
            .store
            .list_members(owner.org_id().await)
            .await
            .expect("members")
            .len(),
        1
    );
}

#[tokio::test]
async fn an_existing_user_logs_in_then_accepts_and_can_switch_between_organizations() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let bob = app.sign_up("Bob", "bob@example.com", "Bobs Bikes").await;
    let bobs_org = bob.org_id().await;
    let link = invite(&app, &owner, "bob@example.com", "admin").await;

    // Someone else's session cannot take Bob's invitation.
    let eve = app.sign_up("Eve", "eve@example.com", "Eve Inc").await;
    let html = eve.get_html(&path_of(&link)).await;
    assert!(
        html.contains("but this invitation is for bob@example.com"),
        "{html}"
    );
    let taken = eve
        .post_form(
            &path_of(&link),
            &[(
                "csrf_token",
                &crate::helpers::csrf_token(&eve.get_html("/").await),
            )],
        )
        .await;
    assert_eq!(taken.status(), StatusCode::FORBIDDEN);

    // A signed-out visitor is sent to log in first.
    let page = app.browser().get_html(&path_of(&link)).await;
    assert!(
        page.contains("Log in") && page.contains("?next=/invitations/"),
        "{page}"
    );

    let accepted = bob.submit(&path_of(&link), &path_of(&link), &[]).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let me = bob.me().await;
    assert_eq!(
        me["organization"]["name"], "Acme",
        "the session moves to the joined organization"
    );
    assert_eq!(me["actor"]["role"], "admin");

    let switched = bob
        .submit("/", "/orgs/switch", &[("org_id", &bobs_org.to_string())])
        .await;
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    assert_eq!(bob.me().await["organization"]["name"], "Bobs Bikes");
    let home = bob.get_html("/").await;
    assert!(
        home.contains("Acme") && home.contains("Bobs Bikes"),
        "the switcher lists both"
    );
}

#[tokio::test]
async fn roles_are_enforced_on_the_server() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let admin = join(&app, &owner, "admin@acme.test", "admin").await;
    let agent = join(&app, &owner, "agent@acme.test", "agent").await;
    let agent_id = agent.user_id().await;
    let owner_id = owner.user_id().await;

    // Agents see the team but cannot invite or change anyone.
    assert_eq!(agent.get("/settings/team").await.status(), StatusCode::OK);
    let token = crate::helpers::csrf_token(&agent.get_html("/settings/team").await);
    let invite = agent
        .post_form(
            "/settings/team/invitations",
            &[
                ("csrf_token", &token),
                ("email", "x@acme.test"),
                ("role", "agent"),
            ],
        )
        .await;
    assert_eq!(invite.status(), StatusCode::FORBIDDEN);
    let promote = agent
        .post_form(
            &format!("/settings/team/members/{agent_id}/role"),
            &[("csrf_token", &token), ("role", "admin")],
        )
        .await;
    assert_eq!(promote.status(), StatusCode::FORBIDDEN);

    // Admins manage agents, but cannot touch the owner or transfer ownership.
    let to_admin = admin
        .submit(
            "/settings/team",
            &format!("/settings/team/members/{agent_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(to_admin.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.state
            .store
            .get_member(org, agent_id)
            .await
            .expect("member")
            .role(),
        Role::Admin
    );
    let demote_owner = admin
        .submit(
            "/settings/team",
            &format!("/settings/team/members/{owner_id}/role"),
            &[("role", "agent")],
        )
        .await;
    assert_eq!(demote_owner.status(), StatusCode::FORBIDDEN);
    let remove_owner = admin
        .submit(
            "/settings/team",
            &format!("/settings/team/members/{owner_id}/remove"),
            &[],
        )
        .await;
    assert_eq!(remove_owner.status(), StatusCode::FORBIDDEN);
    let transfer = admin
        .submit(
            "/settings/team",
            "/settings/team/transfer-ownership",
            &[("user_id", &agent_id.to_string())],
        )
        .await;
    assert_eq!(transfer.status(), StatusCode::FORBIDDEN);
    let owner_invite = admin
        .submit(
            "/settings/team",
            "/settings/team/invitations",
            &[("email", "boss@acme.test"), ("role", "owner")],
        )
        .await;
    assert_eq!(owner_invite.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.state
            .store
            .get_member(org, owner_id)
            .await
            .expect("owner")
            .role(),
        Role::Owner
    );

    // Removing a member ends their access to the organization.
    let removed = admin
        .submit(
            "/settings/team",
            &format!("/settings/team/members/{agent_id}/remove"),
            &[],
        )
        .await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    let after = agent.get("/").await;
    assert_eq!(
        after.status(),
        StatusCode::FORBIDDEN,
        "no organization left"
    );
    assert!(
        after
            .text()
            .await
            .expect("body")
            .contains("no longer a member")
    );
}

#[tokio::test]
async fn the_owner_transfers_ownership_and_becomes_an_admin() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let org = owner.org_id().await;
    let admin = join(&app, &owner, "admin@acme.test", "admin").await;
    let admin_id = admin.user_id().await;
    let response = owner
        .submit(
            "/settings/team",
            "/settings/team/transfer-ownership",
            &[("user_id", &admin_id.to_string())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/team?notice=transferred");
    assert_eq!(
        app.state
            .store
            .get_member(org, admin_id)
            .await
            .expect("member")
            .role(),
        Role::Owner
    );
    assert_eq!(owner.me().await["actor"]["role"], "admin");
    assert_eq!(
        owner.get("/settings/outbox").await.status(),
        StatusCode::FORBIDDEN,
        "the outbox is the owner's now"
    );
}

#[tokio::test]
async fn invitations_can_be_revoked() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let link = invite(&app, &owner, "alex@acme.test", "agent").await;
    let invitation = app
        .state
        .store
        .pending_invitations(owner.org_id().await)
        .await
        .expect("list")
        .remove(0);
    let revoked = owner
        .submit(
            "/settings/team",
            &format!("/settings/team/invitations/{}/revoke", invitation.id),
            &[],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.browser().get(&path_of(&link)).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn organizations_can_be_created_and_renamed() {
    let app = spawn_app().await;
    let owner = app.sign_up("Olivia", "olivia@acme.test", "Acme").await;
    let renamed = owner
        .submit(
            "/settings/organization",
            "/settings/organization",
            &[("name", "Acme Support")],
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    assert_eq!(owner.me().await["organization"]["name"], "Acme Support");
    let empty = owner
        .submit(
            "/settings/organization",
            "/settings/organization",
            &[("name", "  ")],
        )
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let created = owner
        .submit(
            "/settings/organization",
            "/orgs",
            &[("new_org_name", "Second Shop")],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let me = owner.me().await;
    assert_eq!(me["organization"]["name"], "Second Shop");
    assert_eq!(me["actor"]["role"], "owner");
    let agent = join(&app, &owner, "agent@acme.test", "agent").await;
    let token = crate::helpers::csrf_token(&agent.get_html("/settings/organization").await);
    let refused = agent
        .post_form(
            "/settings/organization",
            &[("csrf_token", &token), ("name", "Mine now")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}
