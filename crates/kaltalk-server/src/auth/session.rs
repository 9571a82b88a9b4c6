//! Authentication extractors. A credential that is present but wrong is refused, never
//! treated as anonymous.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::Duration;
use kaltalk_core::{ApiKeyId, OrgId, Permission, Role, SessionId, token};
use kaltalk_store::{Member, NewSession, Organization, StoreError, User};

use crate::error::AppError;
use crate::state::AppState;
use crate::web::PageError;

pub const SESSION_COOKIE: &str = "kaltalk_session";
/// What a native app's bearer token starts with, so the API tells it from an API key
/// before looking either up.
pub const APP_TOKEN_PREFIX: &str = "kt_app_";

/// How the person signed in: the dashboard's cookie, or a native app's bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Browser,
    App,
}

/// The signed-in person, in the organization the session currently acts for.
#[derive(Debug, Clone)]
pub struct AgentSession {
    pub session_id: SessionId,
    pub csrf_token: String,
    pub user: User,
    pub org: Organization,
    pub member: Member,
    pub kind: SessionKind,
}

impl AgentSession {
    pub fn role(&self) -> Role {
        self.member.role()
    }

    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.role().can(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "Your role in this organization does not allow this.",
            ))
        }
    }

    pub fn org_id(&self) -> OrgId {
        self.org.id
    }
}

/// Pages answer a missing session with the login page; the API with a 401 document.
impl FromRequestParts<AppState> for AgentSession {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(AgentSession::from_parts(parts, state).await?)
    }
}

impl AgentSession {
    /// The session of the request's cookie, looked up once per request.
    pub async fn from_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(session) = parts.extensions.get::<AgentSession>() {
            return Ok(session.clone());
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .ok_or(AppError::Unauthorized)?;
        let record = state
            .store
            .find_session(&token::hash(&token), state.now())
            .await?
            .ok_or(AppError::Unauthorized)?;
        let session = load(state, record, SessionKind::Browser).await?;
        parts.extensions.insert(session.clone());
        Ok(session)
    }

    /// The native app's session of a bearer token (`kt_app_…`); 401 for anything else.
    pub async fn from_app_token(state: &AppState, token: &str) -> Result<Self, AppError> {
        if !token.starts_with(APP_TOKEN_PREFIX) {
            return Err(AppError::Unauthorized);
        }
        let record = state
            .store
            .find_app_session(&token::hash(token), state.now())
            .await?
            .ok_or(AppError::Unauthorized)?;
        load(state, record, SessionKind::App).await
    }
}

/// The token of an `Authorization: Bearer <token>` header; a header of any other shape is
/// a wrong credential (401), not none.
pub fn bearer(parts: &Parts) -> Option<Result<&str, AppError>> {
    let header = parts.headers.get(AUTHORIZATION)?;
    Some(
        header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AppError::Unauthorized),
    )
}

/// A signed-in person from the dashboard's cookie or, when the request has an
/// `Authorization` header, a native app's bearer token (the agent's realtime socket takes
/// both).
#[derive(Debug, Clone)]
pub struct AgentOrApp(pub AgentSession);

impl FromRequestParts<AppState> for AgentOrApp {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            Some(token) => Ok(AgentOrApp(
                AgentSession::from_app_token(state, token?).await?,
            )),
            None => Ok(AgentOrApp(AgentSession::from_parts(parts, state).await?)),
        }
    }
}

async fn load(
    state: &AppState,
    record: kaltalk_store::SessionRecord,
    kind: SessionKind,
) -> Result<AgentSession, AppError> {
    let user = state.store.get_user(record.user_id).await?;
    // The session's organization may have removed this person since: fall back to another
    // of their organizations rather than signing them out.
    let member = match state.store.get_member(record.org_id, user.id).await {
        Ok(member) => member,
        Err(StoreError::NotFound) => {
            let first = state
                .store
                .memberships_of(user.id)
                .await?
                .into_iter()
                .next()
                .ok_or(AppError::NoOrganization)?;
            state
                .store
                .switch_session_org(record.id, first.org_id)
                .await?;
            first
        }
        Err(err) => return Err(err.into()),
    };
    let org = state.store.get_organization(member.org_id).await?;
    Ok(AgentSession {
        session_id: record.id,
        csrf_token: record.csrf_token,
        user,
        org,
        member,
        kind,
    })
}

/// Starts a native app's session for `user` acting for `org`: the bearer token (shown
/// this once) and when it stops working, as a dashboard session would.
pub async fn start_app(
    state: &AppState,
    user: kaltalk_core::UserId,
    org: OrgId,
) -> Result<(String, chrono::DateTime<chrono::Utc>, SessionId), AppError> {
    let token = token::generate(APP_TOKEN_PREFIX);
    let expires_at = state.now() + Duration::hours(state.config.sessions.lifetime_hours);
    let id = state
        .store
        .create_app_session(
            &NewSession {
                token_hash: token::hash(&token),
                user_id: user,
                org_id: org,
                // Bearer tokens ride on no request by themselves: never asked for, but the
                // column is kept secret all the same.
                csrf_token: token::generate(""),
                expires_at,
            },
            state.now(),
        )
        .await?;
    Ok((token, expires_at, id))
}

/// Starts a session for `user` acting for `org`; returns the cookie to set.
pub async fn start(
    state: &AppState,
    user: kaltalk_core::UserId,
    org: OrgId,
) -> Result<Cookie<'static>, AppError> {
    let token = token::generate("");
    let lifetime = Duration::hours(state.config.sessions.lifetime_hours);
    state
        .store
        .create_session(
            &NewSession {
                token_hash: token::hash(&token),
                user_id: user,
                org_id: org,
                csrf_token: token::generate(""),
                expires_at: state.now() + lifetime,
            },
            state.now(),
        )
        .await?;
    let mut cookie = session_cookie(state, token);
    cookie.set_max_age(time_duration(lifetime));
    Ok(cookie)
}

/// The cookie that ends the session in the browser.
pub fn removal_cookie(state: &AppState) -> Cookie<'static> {
    let mut cookie = session_cookie(state, String::new());
    cookie.make_removal();
    cookie
}

fn session_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure)
        .build()
}

fn time_duration(d: Duration) -> time::Duration {
    time::Duration::seconds(d.num_seconds())
}

/// Who an API request acts as: an organization's API key, or a signed-in person.
#[derive(Debug, Clone)]
pub enum ApiPrincipal {
    Key {
        org_id: OrgId,
        key_id: ApiKeyId,
        name: String,
    },
    Session(Box<AgentSession>),
}

impl ApiPrincipal {
    pub fn org_id(&self) -> OrgId {
        match self {
            ApiPrincipal::Key { org_id, .. } => *org_id,
            ApiPrincipal::Session(session) => session.org_id(),
        }
    }
}

impl FromRequestParts<AppState> for ApiPrincipal {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The API's rate limiter identified the caller already.
        if let Some(principal) = parts.extensions.get::<ApiPrincipal>() {
            return Ok(principal.clone());
        }
        let principal = ApiPrincipal::identify(parts, state).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

impl ApiPrincipal {
    async fn identify(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(key) = bearer(parts) {
            let key = key?;
            if key.starts_with(APP_TOKEN_PREFIX) {
                let session = AgentSession::from_app_token(state, key).await?;
                return Ok(ApiPrincipal::Session(Box::new(session)));
            }
            let found = state
                .store
                .authenticate_api_key(&token::hash(key), state.now())
                .await?
                .ok_or(AppError::Unauthorized)?;
            return Ok(ApiPrincipal::Key {
                org_id: found.org_id,
                key_id: found.id,
                name: found.name,
            });
        }
        let session = AgentSession::from_parts(parts, state).await?;
        Ok(ApiPrincipal::Session(Box::new(session)))
    }
}

/// The peer address of a connection, plain or TLS.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The client's address as the socket saw it. (Trusted proxy headers come with the
/// widget, which needs visitor IPs.)
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<ClientAddr>>()
            .map(|ConnectInfo(ClientAddr(addr))| addr.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(ip))
    }
}
