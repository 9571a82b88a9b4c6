//! The landing page after signing in: for those who set the organization up, a checklist
//! that ticks itself from what is in the database; for everyone, their own work.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use kaltalk_core::Permission;
use kaltalk_core::chat::InboxKind;
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::setup::{AgentWork, SetupProgress};

use super::NoticeQuery;
use crate::auth::AgentSession;
use crate::state::AppState;
use crate::web::{Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

/// One step of the first-run checklist.
pub struct Step {
    /// Stable, for tests and anchors: `add-channel`, `widget-on-site`, …
    pub id: &'static str,
    pub title: &'static str,
    pub done: bool,
    /// What doing it means, or what was found when done.
    pub hint: String,
    pub href: String,
    pub action: &'static str,
}

/// The checklist for someone who may set up channels; inviting people only for those who
/// may manage the team.
fn steps(progress: &SetupProgress, web: Option<&Inbox>, can_manage_team: bool) -> Vec<Step> {
    let web_href = web.map_or("/settings/inboxes".to_owned(), |inbox| {
        format!("/settings/inboxes/{}", inbox.id)
    });
    let plural = |n: i64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut steps = vec![
        Step {
            id: "add-channel",
            title: "Add a channel",
            done: progress.channels > 0,
            hint: if progress.channels > 0 {
                format!(
                    "{} set up.",
                    plural(progress.channels, "channel", "channels")
                )
            } else {
                "A chat widget for your website, or a support email address.".to_owned()
            },
            href: "/settings/inboxes".to_owned(),
            action: "Add a channel",
        },
        Step {
            id: "widget-on-site",
            title: "Put the widget on your site",
            done: progress.sessions_elsewhere > 0,
            hint: if progress.sessions_elsewhere > 0 {
                "Visitors have opened the chat on your site.".to_owned()
            } else if web.is_some() {
                "Paste the snippet into your pages; this ticks when the first visitor opens the chat there.".to_owned()
            } else {
                "Add a website chat first.".to_owned()
            },
            href: web_href.clone(),
            action: "Widget settings",
        },
        Step {
            id: "add-knowledge",
            title: "Add knowledge",
            done: progress.knowledge_sources > 0,
            hint: if progress.knowledge_sources > 0 {
                format!(
                    "{} in the knowledge base.",
                    plural(progress.knowledge_sources, "source", "sources")
                )
            } else {
                "Texts, web pages or files the AI agent answers from.".to_owned()
            },
            href: "/settings/knowledge".to_owned(),
            action: "Add knowledge",
        },
        Step {
            id: "try-playground",
            title: "Try the playground",
            done: progress.playground_tried,
            hint: "Ask the AI agent a question and see what it would answer, before customers do."
                .to_owned(),
            href: "/settings/ai/playground".to_owned(),
            action: "Open the playground",
        },
        Step {
            id: "turn-ai-on",
            title: "Turn the AI agent on",
            done: progress.ai_enabled,
            hint: if progress.ai_enabled {
                "The AI agent answers new website conversations first.".to_owned()
            } else {
                "Let it answer new website conversations first; it hands over to your team."
                    .to_owned()
            },
            href: "/settings/ai".to_owned(),
            action: "AI agent settings",
        },
    ];
    if can_manage_team {
        steps.push(Step {
            id: "invite-team",
            title: "Invite your team",
            done: progress.teammates > 0,
            hint: if progress.teammates > 0 {
                format!(
                    "{} besides you (members and open invitations).",
                    plural(progress.teammates, "person", "people")
                )
            } else {
                "Agents answer conversations; admins also manage settings.".to_owned()
            },
            href: "/settings/team".to_owned(),
            action: "Invite people",
        });
    }
    steps.push(Step {
        id: "test-message",
        title: "Send a test message",
        done: progress.conversations > 0,
        hint: if progress.conversations > 0 {
            "Conversations are arriving in your inbox.".to_owned()
        } else if web.is_some() {
            "Write to yourself through the widget preview below, then answer it in the inbox."
                .to_owned()
        } else {
            "Add a website chat first; its preview sends test messages.".to_owned()
        },
        href: match web {
            Some(inbox) => format!("/settings/inboxes/{}/preview?open=yes", inbox.id),
            None => "/settings/inboxes".to_owned(),
        },
        action: "Send a test message",
    });
    steps
}

#[derive(Template, WebTemplate)]
#[template(path = "app/home.html")]
struct HomePage {
    layout: Layout,
    notice: Option<&'static str>,
    name: String,
    email: String,
    verified: bool,
    org_name: String,
    role: &'static str,
    csrf: String,
    /// The checklist, for those who may set channels up; `None` for agents.
    steps: Option<Vec<Step>>,
    steps_done: usize,
    /// The first website chat: its snippet and preview are on the checklist.
    web: Option<Inbox>,
    snippet: String,
    work: AgentWork,
    setup_js: String,
}

async fn home(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult<HomePage> {
    let notice = match query.notice.as_deref() {
        Some("verification-sent") => Some("We sent a new confirmation link."),
        Some("joined") => Some("You joined the organization."),
        Some("switched") => Some("Switched organization."),
        Some("organization-deleted") => Some("The organization and everything in it were deleted."),
        _ => None,
    };
    let org = session.org_id();
    let role = session.role();
    let (steps, web) = if role.can(Permission::ManageInboxes) {
        let progress = state
            .store
            .setup_progress(org, &state.public_base, state.now())
            .await?;
        let web = state
            .store
            .list_inboxes(org)
            .await?
            .into_iter()
            .find(|inbox| inbox.kind == InboxKind::Web);
        let steps = steps(&progress, web.as_ref(), role.can(Permission::ManageTeam));
        (Some(steps), web)
    } else {
        (None, None)
    };
    let steps_done = steps
        .as_ref()
        .map_or(0, |steps| steps.iter().filter(|s| s.done).count());
    let snippet = web.as_ref().map_or(String::new(), |inbox| {
        super::inboxes::embed_snippet(&state.public_base, &inbox.public_token)
    });
    Ok(HomePage {
        layout: Layout::signed_in(&state, &session, "home").await?,
        notice,
        name: session.user.name.clone(),
        email: session.user.email.clone(),
        verified: session.user.email_verified_at.is_some(),
        org_name: session.org.name.clone(),
        role: role.label(),
        csrf: session.csrf_token.clone(),
        work: state.store.agent_work(org, session.user.id).await?,
        steps,
        steps_done,
        web,
        snippet,
        setup_js: state.assets.url("setup.js"),
    })
}
