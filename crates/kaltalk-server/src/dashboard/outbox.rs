//! The local outbox: the organization's own email, readable by owners. Without an SMTP
//! relay this is how invitation links reach people on a laptop install (personal mail such
//! as reset links is the operator's: `kaltalk admin outbox`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use kaltalk_core::{EmailId, Permission};
use kaltalk_store::OutboundEmail;

use crate::auth::AgentSession;
use crate::state::AppState;
use crate::web::{IdPath, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/outbox", get(list))
        .route("/settings/outbox/{id}", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/outbox.html")]
struct OutboxPage {
    layout: Layout,
    delivers: bool,
    emails: Vec<OutboundEmail>,
}

async fn list(State(state): State<AppState>, session: AgentSession) -> PageResult<OutboxPage> {
    session.require(Permission::ReadOutbox)?;
    Ok(OutboxPage {
        layout: Layout::signed_in(&state, &session, "outbox").await?,
        delivers: state.mailer.delivers(),
        emails: state.store.list_emails(session.org_id(), 200).await?,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "app/outbox_email.html")]
struct EmailPage {
    layout: Layout,
    email: OutboundEmail,
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<EmailId>,
) -> PageResult<EmailPage> {
    session.require(Permission::ReadOutbox)?;
    Ok(EmailPage {
        layout: Layout::signed_in(&state, &session, "outbox").await?,
        email: state.store.get_email(session.org_id(), id).await?,
    })
}
