//! The website widget's server side: its two scripts, the JSON API it calls, and its
//! WebSocket. See `docs/widget-protocol.md`. No cookie is read or set here: a visitor is
//! known by the bearer token the widget keeps in localStorage.

mod identity;
mod limits;
mod socket;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kaltalk_core::chat::{IdentityMode, InboxKind, VisitorDetails};
use kaltalk_core::{MessageText, Text, token};
use kaltalk_store::contacts::{Contact, ContactFields, SessionChoice, VisitorSession};
use kaltalk_store::inboxes::Inbox;
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use rust_embed::RustEmbed;
use serde::Deserialize;
use serde_json::{Value, json};

pub use identity::{Identity, sign};
pub use limits::WidgetLimits;

use crate::attachments::{Refused, Upload};
use crate::auth::ClientIp;
use crate::error::{AppError, PROBLEM_JSON};
use crate::state::AppState;

/// The widget's scripts, from the repository's `widget/` folder.
#[derive(RustEmbed)]
#[folder = "../../widget/"]
struct Scripts;

/// Visitor tokens start with this.
pub const VISITOR_TOKEN_PREFIX: &str = "vt_";

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/inboxes/{token}/config", get(config))
        .route("/inboxes/{token}/messages", post(post_message))
        .route(
            "/inboxes/{token}/attachments",
            // A little over the file cap, for the multipart framing and fields.
            post(post_attachment).layer(DefaultBodyLimit::max(
                crate::attachments::MAX_BYTES + 64 * 1024,
            )),
        )
        .route(
            "/attachments/{id}",
            get(crate::attachments::serve_to_visitor),
        )
        .route("/conversation", get(conversation))
        .route("/context", post(context))
        .route("/identify", post(identify))
        .route("/handoff", post(handoff))
        .route("/ws", get(socket::upgrade))
        // Bodies over the size limit and other refusals axum answers itself.
        .layer(from_fn(crate::problems::plain_errors_as_problems))
        .layer(from_fn(cors));
    Router::new()
        .route("/widget.js", get(|| script("loader.js")))
        .route("/widget/chat.js", get(|| script("chat.js")))
        .nest("/widget/v1", api)
}

async fn script(name: &'static str) -> Response {
    let Some(file) = Scripts::get(name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // The URL is fixed (it is pasted into customers' pages): cache briefly.
            (header::CACHE_CONTROL, "public, max-age=300"),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                "cross-origin",
            ),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

/// Errors the widget shows or acts on, each with a stable code.
#[derive(Debug)]
pub enum WidgetError {
    InboxNotFound,
    DomainNotAllowed,
    /// A state-changing request without `Origin`: not from a web page.
    OriginRequired,
    InvalidVisitorToken,
    IdentityRequired,
    IdentityInvalid,
    FileTooLarge,
    UnsupportedFileType,
    /// Too many new sessions from the address or messages on the session; retry after
    /// this many seconds.
    RateLimited(u64),
    Invalid(&'static str, String),
    App(AppError),
}

impl From<AppError> for WidgetError {
    fn from(err: AppError) -> Self {
        WidgetError::App(err)
    }
}

impl From<kaltalk_store::StoreError> for WidgetError {
    fn from(err: kaltalk_store::StoreError) -> Self {
        WidgetError::App(err.into())
    }
}

impl IntoResponse for WidgetError {
    fn into_response(self) -> Response {
        let retry_after = match self {
            WidgetError::RateLimited(secs) => Some(secs),
            _ => None,
        };
        let (status, code, detail) = match self {
            WidgetError::InboxNotFound => (
                StatusCode::NOT_FOUND,
                "inbox_not_found",
                "This chat is not available: the inbox does not exist.".to_owned(),
            ),
            WidgetError::DomainNotAllowed => (
                StatusCode::FORBIDDEN,
                "domain_not_allowed",
                "This chat is not enabled on this website.".to_owned(),
            ),
            WidgetError::OriginRequired => (
                StatusCode::FORBIDDEN,
                "origin_required",
                "Chat messages must come from a web page: the request has no Origin header."
                    .to_owned(),
            ),
            WidgetError::InvalidVisitorToken => (
                StatusCode::UNAUTHORIZED,
                "invalid_visitor_token",
                "The chat session has expired. Write again to start a new one.".to_owned(),
            ),
            WidgetError::IdentityRequired => (
                StatusCode::FORBIDDEN,
                "identity_required",
                "Sign in on this website to chat with us.".to_owned(),
            ),
            WidgetError::IdentityInvalid => (
                StatusCode::FORBIDDEN,
                "identity_invalid",
                "Your identity could not be verified. Reload the page and try again.".to_owned(),
            ),
            WidgetError::FileTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!(
                    "Files can be at most {} MB.",
                    crate::attachments::MAX_BYTES / (1024 * 1024)
                ),
            ),
            WidgetError::UnsupportedFileType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_file_type",
                "Send an image (PNG, JPEG, GIF, WebP) or a PDF.".to_owned(),
            ),
            WidgetError::RateLimited(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "You are sending messages too quickly. Wait {secs} second{} and try again.",
                    if secs == 1 { "" } else { "s" }
                ),
            ),
            WidgetError::Invalid(field, message) => {
                return AppError::invalid(field, message).into_response();
            }
            WidgetError::App(err) => return err.into_response(),
        };
        let body = json!({ "type": "about:blank", "title": status.canonical_reason(), "status": status.as_u16(), "code": code, "detail": detail });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// CORS for the widget API: any site may ask (preflight), and each handler then checks
/// the site against its inbox's allowed domains. No credentials are ever allowed. A
/// state-changing request must say which page sent it: browsers always do, and a script
/// that leaves `Origin` out must not slip past the allowed domains.
async fn cors(request: axum::extract::Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else if request.method() == Method::POST && origin.is_none() {
        WidgetError::OriginRequired.into_response()
    } else {
        next.run(request).await
    };
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// Refuses pages on sites the inbox does not allow. Reads without an `Origin` (not from a
/// browser page) pass; writes without one never get here (see [`cors`]). Our own origin
/// always passes: it is the dashboard's widget preview, which only the team can open.
fn check_origin(state: &AppState, inbox: &Inbox, headers: &HeaderMap) -> Result<(), WidgetError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let Ok(url) = url::Url::parse(origin) else {
        return Err(WidgetError::DomainNotAllowed);
    };
    if is_own_origin(&state.public_base, &url) {
        return Ok(());
    }
    match url.host_str() {
        Some(host) if inbox.settings.0.allows(host, url.port_or_known_default()) => Ok(()),
        _ => Err(WidgetError::DomainNotAllowed),
    }
}

/// Whether `url` has the origin (scheme, host, port) of our public address.
fn is_own_origin(public_base: &str, url: &url::Url) -> bool {
    url::Url::parse(public_base).is_ok_and(|own| own.origin() == url.origin())
}

async fn web_inbox(state: &AppState, token: &str) -> Result<Inbox, WidgetError> {
    match state.store.find_inbox_by_token(token).await? {
        Some(inbox) if inbox.kind == InboxKind::Web => Ok(inbox),
        _ => Err(WidgetError::InboxNotFound),
    }
}

async fn config(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, WidgetError> {
    let inbox = web_inbox(&state, &token).await?;
    check_origin(&state, &inbox, &headers)?;
    let settings = &inbox.settings.0;
    // The bot answers under its own name (AI settings); none while the AI is off.
    let ai = state.store.ai_settings(inbox.org_id).await?;
    // The header shows the company, never the inbox's internal name ("Website (test)").
    let name = match settings.company_name.trim() {
        "" => state.store.get_organization(inbox.org_id).await?.name,
        company => company.to_owned(),
    };
    let mut body = json!({
        "name": name,
        "bot_name": ai.enabled.then_some(ai.bot_name),
        "color": settings.color,
        "greeting": settings.greeting,
        "position": settings.position,
        "prechat": { "name": settings.prechat_name, "email": settings.prechat_email },
        "offline_message": settings.offline_message,
        "identity": settings.identity,
    });
    let team_available = state
        .store
        .presence(inbox.org_id)
        .await?
        .available(inbox.routing.team_id);
    if let (Value::Object(body), Value::Object(presence)) = (
        &mut body,
        presence(inbox.hours(), team_available, state.now()),
    ) {
        body.extend(presence);
    }
    Ok(Json(body))
}

/// The widget's "Online" / "Away" / "We're back …": the inbox's business hours ANDed with
/// whether the team is there (`team_available`: a member online, of the inbox's team when it routes to one), and when
/// closed, when the team is back; while open under business hours, when they end. The
/// config's and the socket's presence frame's fields.
pub(crate) fn presence(
    hours: Option<&kaltalk_core::hours::InboxHours>,
    team_available: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let presence = kaltalk_core::hours::presence(hours, team_available, now);
    json!({
        "agents_online": presence.agents_online,
        "open": presence.open,
        "back_at": presence.back_at,
        "closes_at": presence.closes_at,
    })
}

/// What the widget reports about the page; every field is optional and capped.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Context {
    timezone: Option<String>,
    language: Option<String>,
    page_url: Option<String>,
    page_title: Option<String>,
    referrer: Option<String>,
}

fn cap(value: Option<String>, max: usize) -> Option<String> {
    value
        .map(|v| {
            v.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(max)
                .collect::<String>()
        })
        .filter(|v| !v.is_empty())
}

/// The request's own facts (address, browser) with the page facts the widget sent.
fn details(
    state: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    context: Context,
) -> VisitorDetails {
    VisitorDetails {
        timezone: cap(context.timezone, 64),
        language: cap(context.language, 35),
        page_url: cap(context.page_url, 2048),
        page_title: cap(context.page_title, 300),
        referrer: cap(context.referrer, 2048),
        ..crate::visitors::from_request(ip, headers, &state.config.visitors, state.geoip.as_deref())
    }
}

/// A widget visitor, from `Authorization: Bearer vt_…`.
pub struct WidgetVisitor {
    pub session: VisitorSession,
    pub inbox: Inbox,
}

impl FromRequestParts<AppState> for WidgetVisitor {
    type Rejection = WidgetError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(WidgetError::InvalidVisitorToken)?;
        let visitor = visitor_by_token(state, token)
            .await?
            .ok_or(WidgetError::InvalidVisitorToken)?;
        check_origin(state, &visitor.inbox, &parts.headers)?;
        Ok(visitor)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

async fn visitor_by_token(
    state: &AppState,
    token: &str,
) -> Result<Option<WidgetVisitor>, WidgetError> {
    let Some(session) = state
        .store
        .find_visitor_session(&token::hash(token), state.now())
        .await?
    else {
        return Ok(None);
    };
    let inbox = state
        .store
        .get_inbox(session.org_id, session.inbox_id)
        .await?;
    // An inbox switched to "required" ends its anonymous sessions, reads included.
    if !admits(&inbox, &session) {
        return Err(WidgetError::IdentityRequired);
    }
    Ok(Some(WidgetVisitor { session, inbox }))
}

/// Whether the inbox's identity mode lets this session go on: in "required" mode only a
/// session whose contact is a verified user.
fn admits(inbox: &Inbox, session: &VisitorSession) -> bool {
    inbox.settings.0.identity != IdentityMode::Required || session.contact_external_id.is_some()
}

/// Whether `fields` name a verified user other than the one the session belongs to (a
/// shared browser where someone else signed in): that user gets a session of their own.
fn someone_else(session: &VisitorSession, fields: &ContactFields) -> bool {
    matches!(
        (&session.contact_external_id, &fields.external_id),
        (Some(before), Some(now)) if before != now
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PostMessage {
    text: Text,
    client_id: Option<String>,
    context: Context,
    identity: Option<Identity>,
    prechat: Option<Prechat>,
    /// The visitor pressed "Talk to a person" before this, their first message.
    handoff: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Prechat {
    name: Option<String>,
    email: Option<String>,
}

/// A visitor's message. Creates the session, contact and conversation as needed; an
/// unknown or expired token starts a new session rather than failing the message.
async fn post_message(
    State(state): State<AppState>,
    Path(inbox_token): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, WidgetError> {
    let inbox = web_inbox(&state, &inbox_token).await?;
    check_origin(&state, &inbox, &headers)?;
    let body: PostMessage = read_json("body", &body)?;
    deliver(&state, &inbox, ip, &headers, body, None).await
}

/// A visitor's file (multipart: `file`, and `client_id`, `text`, `context`, `identity`,
/// `prechat` as in a message, the objects as JSON strings).
async fn post_attachment(
    State(state): State<AppState>,
    Path(inbox_token): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, WidgetError> {
    let inbox = web_inbox(&state, &inbox_token).await?;
    check_origin(&state, &inbox, &headers)?;
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return WidgetError::FileTooLarge;
        }
        WidgetError::Invalid(
            "file",
            format!("The upload could not be read: {}", e.body_text()),
        )
    };
    let mut body = PostMessage::default();
    let mut upload = None;
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let filename = field.file_name().unwrap_or("file").to_owned();
            let bytes = field.bytes().await.map_err(unreadable)?;
            upload = Some(Upload::accept(&filename, bytes.to_vec()).map_err(
                |refused| match refused {
                    Refused::TooLarge => WidgetError::FileTooLarge,
                    Refused::UnsupportedType => WidgetError::UnsupportedFileType,
                    Refused::Empty => WidgetError::Invalid("file", "The file is empty.".into()),
                },
            )?);
            continue;
        }
        let text = field.text().await.map_err(unreadable)?;
        match name.as_str() {
            "client_id" => body.client_id = Some(text),
            "text" => {
                body.text = Text::parse("text", text)
                    .map_err(|e| WidgetError::Invalid("text", e.message))?;
            }
            "context" => body.context = json_field("context", &text)?,
            "identity" => body.identity = json_field("identity", &text)?,
            "prechat" => body.prechat = json_field("prechat", &text)?,
            "handoff" => body.handoff = text == "true",
            _ => {}
        }
    }
    let upload =
        upload.ok_or_else(|| WidgetError::Invalid("file", "Choose a file to send.".into()))?;
    deliver(&state, &inbox, ip, &headers, body, Some(upload)).await
}

fn json_field<T: serde::de::DeserializeOwned>(
    field: &'static str,
    text: &str,
) -> Result<T, WidgetError> {
    read_json(field, text.as_bytes())
}

/// Reads a JSON body or field; a value its type refuses (a NUL in a text) is a 422 naming
/// the top-level field it is in.
fn read_json<T: serde::de::DeserializeOwned>(
    field: &'static str,
    json: &[u8],
) -> Result<T, WidgetError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(json)).map_err(|e| {
        let path = e.path().to_string();
        let named = [
            "text",
            "client_id",
            "context",
            "identity",
            "prechat",
            "handoff",
        ]
        .into_iter()
        .find(|f| path == *f || path.starts_with(&format!("{f}.")))
        .unwrap_or(field);
        let what = if field == "body" {
            "The message"
        } else {
            field
        };
        WidgetError::Invalid(named, format!("{what} could not be read: {}", e.inner()))
    })
}

/// What a message and an upload share: identity, pre-chat, session, storage.
async fn deliver(
    state: &AppState,
    inbox: &Inbox,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: PostMessage,
    upload: Option<Upload>,
) -> Result<Response, WidgetError> {
    let text = MessageText::parse("text", body.text.as_str())
        .map_err(|e| WidgetError::Invalid("text", e.message))?;
    if text.is_empty() && upload.is_none() {
        return Err(WidgetError::Invalid(
            "text",
            "Write a message first.".into(),
        ));
    }
    let client_id = cap(body.client_id, 64);

    let settings = &inbox.settings.0;
    let mut contact = identity::verify(
        settings.identity,
        &inbox.identity_secret,
        body.identity.as_ref(),
    )?;

    // The inbox is known already: only the session is looked up.
    let existing = match bearer(headers) {
        Some(token) => state
            .store
            .find_visitor_session(&token::hash(token), state.now())
            .await?
            .filter(|session| session.inbox_id == inbox.id)
            .map(|session| (token.to_owned(), session)),
        None => None,
    };
    // Another signed-in user, or an anonymous session the inbox no longer admits: that
    // session ends here and the message starts a new one (and a new contact, unless the
    // user is known), so nobody reads or takes over another's conversations.
    let existing = match existing {
        Some((_, session)) if someone_else(&session, &contact) || !admits(inbox, &session) => {
            state.store.end_visitor_session(session.id).await?;
            None
        }
        other => other,
    };
    // A returning visitor is asked only for what their contact does not hold yet (the
    // pre-chat form may have been switched on after they first wrote).
    let known = match existing.as_ref().and_then(|(_, s)| s.contact_id) {
        Some(id) => Some(state.store.get_contact(inbox.org_id, id).await?),
        None => None,
    };
    apply_prechat(&mut contact, body.prechat, settings, known.as_ref())?;
    let visitor_ip =
        crate::visitors::client_ip(ip, headers, &state.config.visitors.trusted_proxies);
    match &existing {
        Some((_, session)) => state.widget_limits.message(session.id),
        None => state.widget_limits.new_session(visitor_ip),
    }
    .map_err(WidgetError::RateLimited)?;
    let new_token = existing
        .is_none()
        .then(|| token::generate(VISITOR_TOKEN_PREFIX));
    let new_hash = new_token.as_deref().map(token::hash);
    let session = match (&existing, &new_hash) {
        (Some((_, session)), _) => SessionChoice::Existing(session),
        (None, Some(hash)) => SessionChoice::New { token_hash: hash },
        (None, None) => unreachable!("a new token is made when there is no session"),
    };
    let details = details(state, ip, headers, body.context);
    let attachments = match &upload {
        Some(upload) => vec![crate::attachments::store(state, inbox.org_id, upload).await?],
        None => Vec::new(),
    };
    let message = CustomerMessage {
        inbox,
        from: Customer::Visitor {
            session,
            details: &details,
            fields: &contact,
        },
        thread: Thread::Latest,
        text: &text,
        attachments: &attachments,
        client_id: client_id.as_deref(),
        wants_a_person: body.handoff,
        email: None,
    };
    let stored = crate::intake::take_in(state, message).await?;
    let visitor_token = new_token.or(existing.map(|(token, _)| token));
    let body = json!({
        "visitor_token": visitor_token,
        "conversation_id": stored.conversation.id,
        "message": stored.message.to_json(),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Which pre-chat fields the visitor must still give: those the inbox asks for that
/// neither their verified identity nor their contact (`known`, a returning visitor's)
/// holds. Nothing in "required" identity mode, where the site vouches for them.
fn prechat_missing(
    settings: &kaltalk_core::chat::WidgetSettings,
    contact: &ContactFields,
    known: Option<&Contact>,
) -> (bool, bool) {
    if contact.external_id.is_some() || settings.identity == IdentityMode::Required {
        return (false, false);
    }
    let has = |given: &Option<String>, held: Option<&Option<String>>| {
        given.is_some() || held.is_some_and(Option::is_some)
    };
    (
        settings.prechat_name && !has(&contact.name, known.map(|k| &k.name)),
        settings.prechat_email && !has(&contact.email, known.map(|k| &k.email)),
    )
}

/// Pre-chat answers fill what identity did not; asked-for fields must be there. The
/// messages are shown under the form's fields, so they are said as a person would.
fn apply_prechat(
    contact: &mut ContactFields,
    prechat: Option<Prechat>,
    settings: &kaltalk_core::chat::WidgetSettings,
    known: Option<&Contact>,
) -> Result<(), WidgetError> {
    let prechat = prechat.unwrap_or_default();
    let name = cap(prechat.name, 100);
    let email = match cap(prechat.email, 254) {
        Some(email) => Some(
            kaltalk_core::EmailAddress::parse("email", &email)
                .map_err(|e| WidgetError::Invalid("email", e.message))?
                .to_string(),
        ),
        None => None,
    };
    let (need_name, need_email) = prechat_missing(settings, contact, known);
    if need_name && name.is_none() {
        return Err(WidgetError::Invalid(
            "name",
            "Please enter your name.".into(),
        ));
    }
    if need_email && email.is_none() {
        return Err(WidgetError::Invalid(
            "email",
            "Please enter your email address, so we can reply.".into(),
        ));
    }
    contact.name = contact.name.take().or(name);
    contact.email = contact.email.take().or(email);
    Ok(())
}

async fn conversation(
    State(state): State<AppState>,
    visitor: WidgetVisitor,
) -> Result<Json<Value>, WidgetError> {
    // What the pre-chat form must still ask this returning visitor (their contact may
    // predate the form being switched on); the widget shows the form for just that.
    let known = match visitor.session.contact_id {
        Some(id) => Some(state.store.get_contact(visitor.session.org_id, id).await?),
        None => None,
    };
    let identified = ContactFields {
        external_id: visitor.session.contact_external_id.clone(),
        ..ContactFields::default()
    };
    let (name, email) = prechat_missing(&visitor.inbox.settings.0, &identified, known.as_ref());
    let prechat = json!({ "name": name, "email": email });
    let Some(conversation_id) = visitor.session.conversation_id else {
        return Ok(Json(
            json!({ "conversation": null, "messages": [], "last_event_id": null, "prechat": prechat }),
        ));
    };
    let conversation = state
        .store
        .get_conversation(visitor.session.org_id, conversation_id)
        .await?;
    let messages = state
        .store
        .list_messages(visitor.session.org_id, conversation_id, false)
        .await?;
    let last_event = state.store.last_conversation_event(conversation_id).await?;
    Ok(Json(json!({
        "conversation": { "id": conversation.id, "status": conversation.status },
        "messages": messages.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
        "last_event_id": last_event,
        "prechat": prechat,
    })))
}

async fn context(
    State(state): State<AppState>,
    visitor: WidgetVisitor,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, WidgetError> {
    let context: Context = serde_json::from_slice(&body).map_err(|e| {
        WidgetError::Invalid(
            "context",
            format!("The page details could not be read: {e}"),
        )
    })?;
    let details = details(&state, ip, &headers, context);
    state
        .store
        .touch_visitor_session(visitor.session.id, &details, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn identify(
    State(state): State<AppState>,
    visitor: WidgetVisitor,
    body: axum::body::Bytes,
) -> Result<StatusCode, WidgetError> {
    let identity: Identity = serde_json::from_slice(&body).map_err(|e| {
        WidgetError::Invalid("identity", format!("The identity could not be read: {e}"))
    })?;
    let settings = &visitor.inbox.settings.0;
    let fields = identity::verify(
        settings.identity,
        &visitor.inbox.identity_secret,
        Some(&identity),
    )?;
    if someone_else(&visitor.session, &fields) {
        // The previous user's session ends; the widget forgets it and this user's first
        // message starts their own.
        state.store.end_visitor_session(visitor.session.id).await?;
        return Ok(StatusCode::RESET_CONTENT);
    }
    state
        .store
        .identify_contact(&visitor.session, &fields, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Talk to a person": always available in the widget; hands the conversation to the team.
async fn handoff(
    State(state): State<AppState>,
    visitor: WidgetVisitor,
) -> Result<StatusCode, WidgetError> {
    let Some(conversation) = visitor.session.conversation_id else {
        return Ok(StatusCode::NO_CONTENT); // nothing written yet: the team sees the first message anyway
    };
    crate::bot::hand_over(
        &state,
        visitor.session.org_id,
        conversation,
        crate::bot::reasons::VISITOR_PRESSED,
    )
    .await
    .map_err(|e| WidgetError::App(AppError::Internal(e)))?;
    Ok(StatusCode::NO_CONTENT)
}
