//! Channels: creating web and email inboxes; a web inbox's widget settings and embed
//! snippet; an email inbox's AI switch and IMAP mailbox; every inbox's business hours.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kaltalk_core::chat::{
    EmailSettings, IdentityMode, ImapSecurity, ImapSettings, InboxKind, LauncherPosition,
    WidgetSettings,
};
use kaltalk_core::{InboxId, Permission, Text, ValidationError, token};
use kaltalk_store::StoreError;
use kaltalk_store::inboxes::{Inbox, InboxSettings};
use serde::Deserialize;

use super::business_hours::{self, HoursForm, HoursView};
use crate::auth::{AgentSession, SessionForm};
use crate::error::AppError;
use crate::inboxes::{
    create_email_inbox, create_web_inbox, embed_snippet, parse_domains, parse_support_address,
};
use crate::state::AppState;
use crate::web::forms::{NoticeQuery, see_other, ticked};
use crate::web::{FieldErrors, IdPath, Layout, PageResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/inboxes", get(list).post(create))
        .route("/settings/inboxes/{id}", get(show).post(update))
        .route("/settings/inboxes/{id}/preview", get(preview))
        .route("/settings/inboxes/{id}/hours", post(save_hours))
        .route(
            "/settings/inboxes/{id}/routing",
            post(super::routing::save_routing),
        )
        .route("/settings/inboxes/{id}/rotate-secret", post(rotate_secret))
        .route("/settings/inboxes/{id}/delete", post(delete))
        .route("/settings/inboxes/email", axum::routing::post(create_email))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/inboxes.html")]
struct InboxesPage {
    layout: Layout,
    notice: Option<&'static str>,
    csrf: String,
    inboxes: Vec<Inbox>,
    name: String,
    domains: String,
    errors: FieldErrors,
    email_name: String,
    email_address: String,
    email_errors: FieldErrors,
}

async fn list_page(state: &AppState, session: &AgentSession) -> Result<InboxesPage, AppError> {
    Ok(InboxesPage {
        layout: Layout::signed_in(state, session, "inboxes").await?,
        notice: None,
        csrf: session.csrf_token.clone(),
        inboxes: state.store.list_inboxes(session.org_id()).await?,
        name: String::new(),
        domains: String::new(),
        errors: FieldErrors::default(),
        email_name: String::new(),
        email_address: String::new(),
        email_errors: FieldErrors::default(),
    })
}

#[derive(Deserialize)]
struct CreateEmailForm {
    /// The form's field is `email_name` (the page's web-inbox form has its own `name`);
    /// reading `name` here lost the name typed and called every email inbox after its
    /// address.
    #[serde(default)]
    email_name: Text,
    #[serde(default)]
    address: Text,
}

async fn create_email(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<CreateEmailForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut errors = FieldErrors::default();
    let address = errors.take(parse_support_address(&form.address));
    let name = match form.email_name.trim() {
        "" => address.clone().unwrap_or_default(),
        name => name.to_owned(),
    };
    if name.chars().count() > 100 {
        errors.add(ValidationError::new(
            "email_name",
            "Keep the name under 100 characters.",
        ));
    }
    let created = match (address, errors.is_empty()) {
        (Some(address), true) => {
            match create_email_inbox(&state.store, session.org_id(), &name, &address, state.now())
                .await
            {
                Ok(inbox) => Some(inbox),
                Err(StoreError::Conflict(kaltalk_store::Conflict::InboxAddressTaken)) => {
                    errors.add(ValidationError::new(
                        "address",
                        format!("Another inbox already receives mail for {address}."),
                    ));
                    None
                }
                Err(err) => return Err(err.into()),
            }
        }
        _ => None,
    };
    let Some(inbox) = created else {
        let mut page = list_page(&state, &session).await?;
        page.email_name = form.email_name.into_string();
        page.email_address = form.address.into_string();
        page.email_errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    Ok(see_other(&format!(
        "/settings/inboxes/{}?notice=created",
        inbox.id
    )))
}

async fn list(
    State(state): State<AppState>,
    session: AgentSession,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut page = list_page(&state, &session).await?;
    page.notice = match query.notice.as_deref() {
        Some("deleted") => Some("Channel deleted, with its conversations."),
        _ => None,
    };
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: Text,
    #[serde(default)]
    allowed_domains: Text,
}

async fn create(
    State(state): State<AppState>,
    SessionForm { session, form }: SessionForm<CreateForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut errors = FieldErrors::default();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(ValidationError::new(
            "name",
            "Name the inbox (1 to 100 characters), e.g. Website.",
        ));
    }
    let domains = errors.take(parse_domains(&form.allowed_domains));
    let (Some(domains), true) = (domains, errors.is_empty()) else {
        let mut page = list_page(&state, &session).await?;
        page.name = form.name.into_string();
        page.domains = form.allowed_domains.into_string();
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let inbox =
        create_web_inbox(&state.store, session.org_id(), name, domains, state.now()).await?;
    Ok(see_other(&format!(
        "/settings/inboxes/{}?notice=created",
        inbox.id
    )))
}

#[derive(Template, WebTemplate)]
#[template(path = "app/inbox_settings.html")]
struct InboxPage {
    layout: Layout,
    notice: Option<&'static str>,
    /// The section the notice is about, shown there: the save jumps to that section, so a
    /// notice at the page's top would be out of sight.
    notice_in: Option<&'static str>,
    csrf: String,
    inbox: Inbox,
    name: String,
    settings: WidgetSettings,
    domains: String,
    snippet: String,
    /// The organization's name: what the widget header shows while the company name is
    /// empty.
    org_name: String,
    setup_js: String,
    errors: FieldErrors,
    email: EmailSettings,
    /// The IMAP form as typed (the password never goes back to the page).
    imap: ImapForm,
    imap_error: Option<String>,
    smtp_listen: String,
    /// The "Business hours" section (every kind of inbox has one).
    hours: HoursView,
    /// The teams the "Routing" section offers.
    teams: Vec<kaltalk_store::teams::Team>,
}

async fn inbox_page(
    state: &AppState,
    session: &AgentSession,
    id: InboxId,
) -> Result<InboxPage, AppError> {
    let inbox = state.store.get_inbox(session.org_id(), id).await?;
    let email = inbox.email();
    let imap_error = match inbox.kind {
        InboxKind::Email => state.store.imap_error(inbox.id).await?,
        _ => None,
    };
    Ok(InboxPage {
        imap: ImapForm::from_settings(email.imap.as_ref()),
        email,
        imap_error,
        smtp_listen: state.config.smtp_listen.clone(),
        hours: HoursView::of(inbox.hours(), state.now()),
        teams: state.store.list_teams(session.org_id()).await?,
        layout: Layout::signed_in(state, session, "inboxes").await?,
        notice: None,
        notice_in: None,
        csrf: session.csrf_token.clone(),
        name: inbox.name.clone(),
        settings: inbox.settings.0.clone(),
        domains: inbox.settings.0.allowed_domains.join("\n"),
        snippet: embed_snippet(&state.public_base, &inbox.public_token),
        org_name: session.org.name.clone(),
        setup_js: state.assets.url("setup.js"),
        inbox,
        errors: FieldErrors::default(),
    })
}

async fn show(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<InboxId>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut page = inbox_page(&state, &session, id).await?;
    let created = if page.inbox.kind == InboxKind::Email {
        "Inbox created. Forward your support mail to it, as shown below."
    } else {
        "Inbox created. Paste the snippet below into your website."
    };
    page.notice = match query.notice.as_deref() {
        Some("created") => Some(created),
        Some("saved") => Some("Settings saved. The preview shows them."),
        Some("hours-saved") => Some("Business hours saved."),
        Some("routing-saved") => Some("Routing saved."),
        Some("secret-rotated") => Some(
            "New identity secret made. Signatures made with the old one no longer verify: put the new one on your server.",
        ),
        _ => None,
    };
    page.notice_in = match query.notice.as_deref() {
        Some("hours-saved") => Some("business-hours"),
        Some("routing-saved") => Some("routing"),
        _ => None,
    };
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    name: Text,
    #[serde(default)]
    color: Text,
    #[serde(default)]
    greeting: Text,
    #[serde(default)]
    company_name: Text,
    #[serde(default)]
    position: String,
    #[serde(default)]
    allowed_domains: Text,
    prechat_name: Option<String>,
    prechat_email: Option<String>,
    #[serde(default)]
    offline_message: Text,
    #[serde(default)]
    identity: String,
    // An email inbox's fields.
    ai_replies: Option<String>,
    #[serde(flatten)]
    imap: ImapForm,
}

/// The IMAP part of an email inbox's form. An empty host means no mailbox is polled; an
/// empty password keeps the saved one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ImapForm {
    imap_host: String,
    imap_port: String,
    imap_security: String,
    imap_user: String,
    imap_password: String,
    imap_mailbox: String,
    imap_poll_seconds: String,
    #[serde(skip)]
    password_saved: bool,
}

impl ImapForm {
    fn from_settings(imap: Option<&ImapSettings>) -> Self {
        match imap {
            Some(imap) => Self {
                imap_host: imap.host.clone(),
                imap_port: imap.port.to_string(),
                imap_security: imap.security.as_str().to_owned(),
                imap_user: imap.user.clone(),
                imap_password: String::new(),
                imap_mailbox: imap.mailbox.clone(),
                imap_poll_seconds: imap.poll_seconds.to_string(),
                password_saved: !imap.password.is_empty(),
            },
            None => Self {
                imap_security: ImapSecurity::Tls.as_str().to_owned(),
                imap_mailbox: "INBOX".into(),
                imap_poll_seconds: "60".into(),
                ..Self::default()
            },
        }
    }

    fn parse(
        &self,
        saved: Option<&ImapSettings>,
        errors: &mut FieldErrors,
    ) -> Option<ImapSettings> {
        let host = self.imap_host.trim();
        if host.is_empty() {
            return None;
        }
        // Each is a `String` (the form is also filled from saved settings), so they are
        // checked as `Text` here, before any reaches the settings stored as JSON.
        for (field, value) in [
            ("imap_user", &self.imap_user),
            ("imap_password", &self.imap_password),
            ("imap_mailbox", &self.imap_mailbox),
        ] {
            errors.take(Text::parse(field, value.as_str()));
        }
        if host.len() > 253
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            errors.add(ValidationError::new(
                "imap_host",
                "Enter a host name like imap.example.com.",
            ));
        }
        let security = errors.take(
            self.imap_security
                .parse::<ImapSecurity>()
                .map_err(|e| ValidationError::new("imap_security", e)),
        );
        let port = match self.imap_port.trim() {
            "" => Some(if security == Some(ImapSecurity::Tls) {
                993
            } else {
                143
            }),
            port => errors.take(port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                ValidationError::new(
                    "imap_port",
                    "Enter a port from 1 to 65535 (993 for IMAPS, 143 for STARTTLS).",
                )
            })),
        };
        let user = self.imap_user.trim();
        if user.is_empty() {
            errors.add(ValidationError::new(
                "imap_user",
                "Enter the mailbox's user name.",
            ));
        }
        let password = match (self.imap_password.as_str(), saved) {
            ("", Some(saved)) if !saved.password.is_empty() => saved.password.clone(),
            ("", _) => {
                errors.add(ValidationError::new(
                    "imap_password",
                    "Enter the mailbox's password.",
                ));
                String::new()
            }
            (password, _) => password.to_owned(),
        };
        let mailbox = match self.imap_mailbox.trim() {
            "" => "INBOX",
            mailbox => mailbox,
        };
        let poll_seconds = match self.imap_poll_seconds.trim() {
            "" => Some(60),
            seconds => errors.take(
                seconds
                    .parse::<u32>()
                    .ok()
                    .filter(|s| (10..=3600).contains(s))
                    .ok_or_else(|| {
                        ValidationError::new("imap_poll_seconds", "Poll every 10 to 3600 seconds.")
                    }),
            ),
        };
        Some(ImapSettings {
            host: host.to_owned(),
            port: port?,
            security: security?,
            user: user.to_owned(),
            password,
            mailbox: mailbox.to_owned(),
            poll_seconds: poll_seconds?,
        })
    }
}

fn parse_settings(form: &SettingsForm, errors: &mut FieldErrors) -> Option<WidgetSettings> {
    let color = form.color.trim().to_ascii_lowercase();
    if !WidgetSettings::valid_color(&color) {
        errors.add(ValidationError::new("color", "Use a colour like #4338ca."));
    }
    let greeting = form.greeting.trim();
    if greeting.chars().count() > 300 {
        errors.add(ValidationError::new(
            "greeting",
            "Keep the greeting under 300 characters.",
        ));
    }
    let company_name = form.company_name.trim();
    if company_name.chars().count() > 100 {
        errors.add(ValidationError::new(
            "company_name",
            "Keep the company name under 100 characters.",
        ));
    }
    let offline = form.offline_message.trim();
    if offline.chars().count() > 500 {
        errors.add(ValidationError::new(
            "offline_message",
            "Keep the offline message under 500 characters.",
        ));
    }
    let position = form
        .position
        .parse::<LauncherPosition>()
        .map_err(|e| ValidationError::new("position", e));
    let position = errors.take(position);
    let identity = errors.take(
        form.identity
            .parse::<IdentityMode>()
            .map_err(|e| ValidationError::new("identity", e)),
    );
    let domains = errors.take(parse_domains(&form.allowed_domains));
    Some(WidgetSettings {
        color,
        greeting: greeting.to_owned(),
        company_name: company_name.to_owned(),
        position: position?,
        allowed_domains: domains?,
        prechat_name: ticked(&form.prechat_name),
        prechat_email: ticked(&form.prechat_email),
        offline_message: offline.to_owned(),
        identity: identity?,
    })
    .filter(|_| errors.is_empty())
}

async fn update(
    State(state): State<AppState>,
    IdPath(id): IdPath<InboxId>,
    SessionForm { session, form }: SessionForm<SettingsForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let mut errors = FieldErrors::default();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(ValidationError::new(
            "name",
            "Name the inbox (1 to 100 characters).",
        ));
    }
    let inbox = state.store.get_inbox(session.org_id(), id).await?;
    // Each kind reads its own part of the form; the name is saved the same way for all.
    let (email_settings, widget_settings);
    let settings = match inbox.kind {
        InboxKind::Email => {
            let saved = inbox.email();
            let imap = form.imap.parse(saved.imap.as_ref(), &mut errors);
            if !errors.is_empty() {
                let mut page = inbox_page(&state, &session, id).await?;
                page.name = form.name.to_string();
                page.imap = ImapForm {
                    password_saved: page.imap.password_saved,
                    imap_password: String::new(),
                    ..form.imap
                };
                page.email.ai_replies = ticked(&form.ai_replies);
                page.errors = errors;
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
            email_settings = EmailSettings {
                ai_replies: ticked(&form.ai_replies),
                imap,
            };
            InboxSettings::Email(&email_settings)
        }
        // An api inbox has only its name; its widget settings stay as they are.
        InboxKind::Api => {
            if !errors.is_empty() {
                let mut page = inbox_page(&state, &session, id).await?;
                page.name = form.name.to_string();
                page.errors = errors;
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
            InboxSettings::Widget(&inbox.settings.0)
        }
        InboxKind::Web => {
            let Some(settings) = parse_settings(&form, &mut errors) else {
                // Everything typed goes back to the page, not only the field in error.
                let mut page = inbox_page(&state, &session, id).await?;
                page.name = form.name.to_string();
                page.domains = form.allowed_domains.to_string();
                page.settings.color = form.color.to_string();
                page.settings.greeting = form.greeting.to_string();
                page.settings.company_name = form.company_name.to_string();
                page.settings.offline_message = form.offline_message.to_string();
                page.settings.prechat_name = ticked(&form.prechat_name);
                page.settings.prechat_email = ticked(&form.prechat_email);
                page.errors = errors;
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            };
            widget_settings = settings;
            InboxSettings::Widget(&widget_settings)
        }
    };
    state
        .store
        .update_inbox(session.org_id(), id, name, settings, state.now())
        .await?;
    Ok(see_other(&format!("/settings/inboxes/{id}?notice=saved")))
}

/// Saves the "Business hours" section; refused, the page comes back with what was typed
/// and each error beside its field.
async fn save_hours(
    State(state): State<AppState>,
    IdPath(id): IdPath<InboxId>,
    SessionForm { session, form }: SessionForm<HoursForm>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let inbox = state.store.get_inbox(session.org_id(), id).await?;
    let (view, parsed) = business_hours::parse(&form, inbox.hours(), state.now());
    match parsed {
        Ok(hours) => {
            state
                .store
                .save_business_hours(session.org_id(), id, &hours, state.now())
                .await?;
            Ok(see_other(&format!(
                "/settings/inboxes/{id}?notice=hours-saved#business-hours"
            )))
        }
        Err(errors) => {
            let mut page = inbox_page(&state, &session, id).await?;
            page.hours = view;
            page.errors = errors;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// A page of our own that loads the real widget loader for this inbox, as a customer's
/// site would: the settings page and the home checklist show it in a frame. The widget
/// admits our own origin for it (see `widget::check_origin`), so it works whatever the
/// allowed websites are, and its sessions are not counted as the widget being on a site.
#[derive(Template, WebTemplate)]
#[template(path = "app/widget_preview.html")]
struct PreviewPage {
    layout: Layout,
    inbox: Inbox,
    /// Open the chat at once ("send a test message").
    open: bool,
    setup_js: String,
}

#[derive(Deserialize)]
struct PreviewQuery {
    open: Option<String>,
}

/// The preview's own headers: it may be framed by our pages (only), and the widget's
/// shadow root carries its styles in `<style>` elements, as on a customer's page. Nothing
/// a user wrote is on this page.
const PREVIEW_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'self'";

async fn preview(
    State(state): State<AppState>,
    session: AgentSession,
    IdPath(id): IdPath<InboxId>,
    Query(query): Query<PreviewQuery>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let inbox = state.store.get_inbox(session.org_id(), id).await?;
    if inbox.kind != InboxKind::Web {
        return Err(AppError::NotFound.into());
    }
    let page = PreviewPage {
        // Only the stylesheet is used: the preview is a stand-in for the customer's page.
        layout: Layout::public(&state),
        inbox,
        open: ticked(&query.open),
        setup_js: state.assets.url("setup.js"),
    };
    Ok((
        [
            (axum::http::header::CONTENT_SECURITY_POLICY, PREVIEW_CSP),
            (axum::http::header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        page,
    )
        .into_response())
}

/// A new identity secret; the old one stops verifying at once.
async fn rotate_secret(
    State(state): State<AppState>,
    IdPath(id): IdPath<InboxId>,
    SessionForm { session, .. }: SessionForm<crate::web::forms::NoFields>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    state
        .store
        .rotate_identity_secret(session.org_id(), id, &token::generate(""), state.now())
        .await?;
    Ok(see_other(&format!(
        "/settings/inboxes/{id}?notice=secret-rotated"
    )))
}

/// Deletes a channel with its conversations, as Chatwoot does; its contacts stay.
async fn delete(
    State(state): State<AppState>,
    IdPath(id): IdPath<InboxId>,
    SessionForm { session, .. }: SessionForm<crate::web::forms::NoFields>,
) -> PageResult {
    session.require(Permission::ManageInboxes)?;
    let written = state
        .store
        .delete_inbox(session.org_id(), id, state.now())
        .await?;
    for key in &written.value {
        state.blobs.delete(key).await;
    }
    state.hub.publish_events(written.events);
    Ok(see_other("/settings/inboxes?notice=deleted"))
}
