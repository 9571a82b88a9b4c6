//! The settings overview: every settings page, grouped as a team lead looks for them
//! (Channels · AI & knowledge · Team · Developers · Organization · Profile), showing each
//! person only the pages their role opens.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use kaltalk_core::{Permission, Role};

use crate::auth::AgentSession;
use crate::state::AppState;
use crate::web::{Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings", get(overview))
}

/// A settings page as the overview links it.
pub struct SettingsLink {
    pub href: &'static str,
    pub title: &'static str,
    pub about: &'static str,
}

/// A group of settings pages; a group with no page for this role is left out.
pub struct SettingsGroup {
    pub id: &'static str,
    pub title: &'static str,
    pub links: Vec<SettingsLink>,
}

/// The groups and the pages `role` may open in each, in the overview's order.
pub fn groups(role: Role) -> Vec<SettingsGroup> {
    let can = |permission| role.can(permission);
    let link = |href, title, about| SettingsLink { href, title, about };
    let mut channels = Vec::new();
    if can(Permission::ManageInboxes) {
        channels.push(link(
            "/settings/inboxes",
            "Channels",
            "Website chat widgets, support email addresses and API inboxes.",
        ));
    }
    channels.push(link(
        "/settings/canned-responses",
        "Canned responses",
        "Saved replies the team inserts with /shortcut.",
    ));
    let mut ai = Vec::new();
    if can(Permission::ManageInboxes) {
        ai.push(link(
            "/settings/ai",
            "AI agent",
            "Whether the bot answers first, its name, tone and when it hands over.",
        ));
        ai.push(link(
            "/settings/knowledge",
            "Knowledge base",
            "Texts, web pages and files the bot answers from.",
        ));
        ai.push(link(
            "/settings/ai/playground",
            "Playground",
            "Ask the bot a question and see its answer and sources.",
        ));
    }
    let team = vec![link(
        "/settings/team",
        "Team",
        if can(Permission::ManageTeam) {
            "Members, roles, invitations and teams."
        } else {
            "Who is in the organization."
        },
    )];
    let mut developers = Vec::new();
    if can(Permission::ManageApiKeys) {
        developers.push(link(
            "/settings/api-keys",
            "API keys",
            "Keys for the REST API.",
        ));
        developers.push(link(
            "/settings/webhooks",
            "Webhooks",
            "Events sent to your systems as they happen.",
        ));
    }
    developers.push(link(
        "/settings/api/reference",
        "API reference",
        "Every endpoint of /api/v1, with examples.",
    ));
    let mut organization = vec![link(
        "/settings/organization",
        "Organization",
        if can(Permission::ManageOrganization) {
            "Name, data retention and deleting the organization."
        } else {
            "The organization you are in."
        },
    )];
    if can(Permission::ReadOutbox) {
        organization.push(link(
            "/settings/outbox",
            "Outbox",
            "Emails sent or waiting to be sent.",
        ));
    }
    let profile = vec![link(
        "/settings/profile",
        "Profile",
        "Your name, email, password, two-factor sign-in and your data.",
    )];
    [
        ("channels", "Channels", channels),
        ("ai", "AI & knowledge", ai),
        ("team", "Team", team),
        ("developers", "Developers", developers),
        ("organization", "Organization", organization),
        ("profile", "Profile", profile),
    ]
    .into_iter()
    .filter(|(_, _, links)| !links.is_empty())
    .map(|(id, title, links)| SettingsGroup { id, title, links })
    .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "app/settings.html")]
struct SettingsPage {
    layout: Layout,
    groups: Vec<SettingsGroup>,
}

async fn overview(
    State(state): State<AppState>,
    session: AgentSession,
) -> PageResult<SettingsPage> {
    Ok(SettingsPage {
        layout: Layout::signed_in(&state, &session, "settings").await?,
        groups: groups(session.role()),
    })
}
