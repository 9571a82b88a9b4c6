//! What every dashboard page shares: the layout, form errors, the HTML error page,
//! embedded assets, data embedded for page scripts and the security headers.

pub mod assets;
pub mod embed;
pub mod forms;
pub mod headers;

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Redirect, Response};
use kaltalk_core::{OrgId, Permission, ValidationError};

use crate::auth::AgentSession;
use crate::error::AppError;
use crate::state::AppState;

/// The navigation of a signed-in page.
pub struct Nav {
    pub user_name: String,
    pub user_email: String,
    pub org_id: OrgId,
    pub orgs: Vec<(OrgId, String)>,
    pub csrf_token: String,
    /// Which section is open, to mark it in the sidebar.
    pub section: &'static str,
    pub can_manage_team: bool,
    pub can_manage_api_keys: bool,
    pub can_manage_org: bool,
    pub can_read_outbox: bool,
    pub can_manage_inboxes: bool,
    /// The member's own availability, for the control every page shows.
    pub availability: kaltalk_core::chat::Availability,
    /// Their unread notifications, on the bell and in the tab's title.
    pub unread_notifications: i64,
    /// Whether a new one plays a sound (their choice; off by default).
    pub notification_sound: bool,
}

impl Nav {
    /// The open section's name, for the phone's top bar.
    pub fn section_title(&self) -> &'static str {
        match self.section {
            "home" => "Home",
            "inbox" => "Inbox",
            "contacts" => "Contacts",
            "settings" => "Settings",
            "inboxes" => "Channels",
            "canned" => "Canned responses",
            "outbox" => "Outbox",
            "ai" => "AI agent",
            "knowledge" => "Knowledge base",
            "team" => "Team",
            "notifications" => "Notifications",
            "teams" => "Teams",
            "api-keys" => "API keys",
            "webhooks" => "Webhooks",
            "api-reference" => "API reference",
            "organization" => "Organization",
            "profile" => "Profile",
            _ => "KalTalk",
        }
    }
}

/// Fields of the base layout.
pub struct Layout {
    pub css: String,
    pub js: String,
    pub htmx: String,
    pub nav: Option<Nav>,
}

impl Layout {
    /// For pages shown before signing in.
    pub fn public(state: &AppState) -> Self {
        Self {
            css: state.assets.url("app.css"),
            js: state.assets.url("app.js"),
            htmx: state.assets.url("htmx-2.0.11.min.js"),
            nav: None,
        }
    }

    pub async fn signed_in(
        state: &AppState,
        session: &AgentSession,
        section: &'static str,
    ) -> Result<Self, AppError> {
        let orgs = state
            .store
            .organizations_of(session.user.id)
            .await?
            .into_iter()
            .map(|(org, _)| (org.id, org.name))
            .collect();
        let role = session.role();
        Ok(Self {
            nav: Some(Nav {
                user_name: session.user.name.clone(),
                user_email: session.user.email.clone(),
                org_id: session.org_id(),
                orgs,
                csrf_token: session.csrf_token.clone(),
                section,
                can_manage_team: role.can(Permission::ManageTeam),
                can_manage_api_keys: role.can(Permission::ManageApiKeys),
                can_manage_org: role.can(Permission::ManageOrganization),
                can_read_outbox: role.can(Permission::ReadOutbox),
                can_manage_inboxes: role.can(Permission::ManageInboxes),
                availability: state
                    .store
                    .member_status(session.org_id(), session.user.id)
                    .await?
                    .availability,
                unread_notifications: state
                    .store
                    .unread_notifications(session.org_id(), session.user.id)
                    .await?,
                notification_sound: state
                    .store
                    .notification_settings(session.org_id(), session.user.id)
                    .await?
                    .sound,
            }),
            ..Self::public(state)
        })
    }
}

/// Validation messages by field name, for inline display next to each input.
#[derive(Default, Debug)]
pub struct FieldErrors(HashMap<&'static str, String>);

impl FieldErrors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn add(&mut self, error: ValidationError) {
        self.0.entry(error.field).or_insert(error.message);
    }

    /// Records the error of a parse and returns its value, if any.
    pub fn take<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(error);
                None
            }
        }
    }
}

impl From<Vec<ValidationError>> for FieldErrors {
    fn from(errors: Vec<ValidationError>) -> Self {
        let mut out = FieldErrors::default();
        for error in errors {
            out.add(error);
        }
        out
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    title: &'static str,
    message: String,
}

/// An error shown as a page. Not signed in → the login page; everything else → an error
/// page with the status, in the same words as the API.
#[derive(Debug)]
pub struct PageError {
    error: AppError,
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        Self { error }
    }
}

impl From<kaltalk_store::StoreError> for PageError {
    fn from(error: kaltalk_store::StoreError) -> Self {
        AppError::from(error).into()
    }
}

impl From<anyhow::Error> for PageError {
    fn from(error: anyhow::Error) -> Self {
        AppError::from(error).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.error;
        if matches!(error, AppError::Unauthorized) {
            return Redirect::to("/login").into_response();
        }
        let (title, message) = match &error {
            AppError::NotFound => ("Not found", "There is nothing here, or it belongs to another organization.".to_owned()),
            AppError::CsrfRejected => ("Form expired", error.to_string()),
            AppError::Forbidden(_) => ("Not allowed", error.to_string()),
            AppError::RateLimited { .. } => ("Slow down", error.to_string()),
            AppError::Busy => ("Taking too long", "The database took too long with this page and stopped. Try again in a few seconds.".to_owned()),
            AppError::NoOrganization => (
                "No organization",
                "You are no longer a member of any organization. Ask an owner for a new invitation, or sign up to create one.".to_owned(),
            ),
            AppError::Internal(_) => ("Something went wrong", "The error was logged. Try again in a moment.".to_owned()),
            AppError::Validation(errors) => ("Check the form", errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join(" ")),
            other => ("Request refused", other.to_string()),
        };
        // An error has no state to hash assets with: the asset route serves any hash, only
        // without the long cache when it is not the current one.
        let (css, js, htmx) = (
            "/assets/0/app.css".to_owned(),
            "/assets/0/app.js".to_owned(),
            "/assets/0/htmx-2.0.11.min.js".to_owned(),
        );
        let page = ErrorPage {
            layout: Layout {
                css,
                js,
                htmx,
                nav: None,
            },
            title,
            message,
        };
        let status = error.status();
        let mut response = (status, page).into_response();
        error.decorate(&mut response);
        response
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// A path parameter that must parse as an id: anything else is a 404 page, the same answer
/// as an id that belongs to another organization.
pub struct IdPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for IdPath<T>
{
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| IdPath(value))
            .map_err(|_| AppError::NotFound.into())
    }
}
