//! The native app's endpoints: signing in for a device-bound bearer token, signing out,
//! and registering (or unregistering) the device its pushes go to. Devices belong to a
//! person: only an app's own token registers one, never an API key or a browser.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use kaltalk_core::EmailAddress;
use kaltalk_store::devices::{Device, NewDevice, Platform};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{AgentSession, ApiPrincipal, ClientIp, SessionKind, password, session};
use crate::error::AppError;
use crate::state::AppState;

use super::OrgView;
use super::body::{JsonObject, refuse_unknown, required_text};

/// The longest push token accepted (FCM's are about 160 characters, APNs' 64 hex digits).
const MAX_PUSH_TOKEN: usize = 4096;
/// The longest OS or app version accepted ("17.4.1", "14", "2.3.0 (451)").
const MAX_VERSION: usize = 64;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(register, unregister))
}

/// `POST /sessions`: the app's email and password (and organization, for someone in
/// several). Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by utoipa only: the handler reads the body field by field
struct SignIn {
    email: String,
    password: String,
    /// Required when the person belongs to several organizations.
    organization_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
struct Person {
    id: String,
    name: String,
    email: String,
}

/// A new app session. The token is shown this once: keep it in the device's keychain.
#[derive(Serialize, ToSchema)]
struct AppSessionView {
    /// `Authorization: Bearer <token>` on the API and the dashboard socket (`/ws`).
    token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    expires_at: DateTime<Utc>,
    user: Person,
    organization: OrgView,
}

/// Signs a native app in: answers a bearer token bound to this app (its device is
/// registered with `POST /devices`), revocable by `DELETE /sessions/current` or from
/// Profile, expiring like a dashboard session. Counted by the sign-in page's rate limits.
#[utoipa::path(post, path = "/sessions", tag = "apps", security(()),
    request_body(content = SignIn, content_type = "application/json"),
    responses(
        (status = 201, body = AppSessionView),
        (status = 401, description = "The email and password do not match an account.", body = super::spec::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or wrong, or `organization_id` is needed.", body = super::spec::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-in attempts: wait `Retry-After` seconds.", body = super::spec::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (a body that is not JSON, or not a JSON object).", body = super::spec::Problem, content_type = "application/problem+json"),
    ))]
async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonObject(map): JsonObject,
) -> Result<(StatusCode, Json<AppSessionView>), AppError> {
    refuse_unknown(&map, &["email", "password", "organization_id"])?;
    let email_text = required_text(&map, "email", 320)?;
    let password_text = match map.get("password") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(AppError::invalid("password", "Required."));
        }
        Some(_) => return Err(AppError::invalid("password", "Must be a string.")),
    };
    let organization: Option<kaltalk_core::OrgId> = match map.get("organization_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.parse().map_err(|_| {
            AppError::invalid("organization_id", "Must be an organization's id (a UUID).")
        })?),
        Some(_) => return Err(AppError::invalid("organization_id", "Must be a string.")),
    };
    // The sign-in page's limits: per address, and per account for the addresses that
    // failed on it.
    state
        .login_limiter
        .attempt_from(ip)
        .await
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })?;
    let account = email_text.to_lowercase();
    state
        .login_limiter
        .account_blocked(&account, ip)
        .await
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })?;
    let user = match EmailAddress::parse("email", &email_text) {
        Ok(email) => state.store.find_user_by_email(&email).await?,
        Err(_) => None,
    };
    let ok = password::verify(
        &password_text,
        user.as_ref().map(|u| u.password_hash.as_str()),
        state.bcrypt_cost,
    )
    .await?;
    let Some(user) = user.filter(|_| ok) else {
        state.login_limiter.record_failure(&account, ip).await;
        return Err(AppError::Unauthorized);
    };
    let memberships = state.store.memberships_of(user.id).await?;
    let org = match (organization, memberships.as_slice()) {
        (_, []) => return Err(AppError::NoOrganization),
        (None, [only]) => only.org_id,
        (None, several) => {
            let mut ids = Vec::new();
            for member in several {
                let org = state.store.get_organization(member.org_id).await?;
                ids.push(format!("{} ({})", org.id, org.name));
            }
            return Err(AppError::invalid(
                "organization_id",
                format!(
                    "You belong to several organizations: give organization_id, one of {}.",
                    ids.join(", ")
                ),
            ));
        }
        (Some(wanted), all) => all
            .iter()
            .find(|m| m.org_id == wanted)
            .map(|m| m.org_id)
            .ok_or_else(|| {
                AppError::invalid(
                    "organization_id",
                    "You are not a member of that organization.",
                )
            })?,
    };
    let (token, expires_at, _) = session::start_app(&state, user.id, org).await?;
    let org = state.store.get_organization(org).await?;
    Ok((
        StatusCode::CREATED,
        Json(AppSessionView {
            token,
            token_type: "Bearer",
            expires_at,
            user: Person {
                id: user.id.to_string(),
                name: user.name,
                email: user.email,
            },
            organization: OrgView {
                id: org.id.to_string(),
                name: org.name,
            },
        }),
    ))
}

/// The app session a request was made with; API keys and browsers have none.
fn app_session(principal: ApiPrincipal) -> Result<AgentSession, AppError> {
    match principal {
        ApiPrincipal::Session(session) if session.kind == SessionKind::App => Ok(*session),
        _ => Err(AppError::Forbidden(
            "Only a native app's own session does this: sign in with POST /api/v1/sessions and use its token.",
        )),
    }
}

/// Signs this app out: its token stops working and its device gets no more pushes.
#[utoipa::path(delete, path = "/sessions/current", tag = "apps",
    responses((status = 204, description = "Signed out.")))]
async fn sign_out(
    State(state): State<AppState>,
    principal: ApiPrincipal,
) -> Result<StatusCode, AppError> {
    let session = app_session(principal)?;
    state
        .store
        .revoke_app_session(session.user.id, session.session_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /devices`: what the privacy policy lists, and nothing more (no device name, no
/// hardware id). Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by utoipa only
struct NewDeviceBody {
    /// `fcm` (Android, Firebase Cloud Messaging) or `apns` (iOS).
    #[schema(pattern = "^(fcm|apns)$")]
    platform: String,
    /// The registration token FCM gave the app, or the APNs device token in hex.
    push_token: String,
    /// e.g. `14` or `17.4.1`.
    os_version: String,
    /// The app's version, e.g. `2.3.0`.
    app_version: String,
}

/// The device registered for this app session.
#[derive(Serialize, ToSchema)]
struct DeviceView {
    id: String,
    #[schema(pattern = "^(fcm|apns)$")]
    platform: &'static str,
    os_version: String,
    app_version: String,
    created_at: DateTime<Utc>,
}

impl From<Device> for DeviceView {
    fn from(device: Device) -> Self {
        Self {
            id: device.id.to_string(),
            platform: device.platform.as_str(),
            os_version: device.os_version,
            app_version: device.app_version,
            created_at: device.created_at,
        }
    }
}

/// Registers the device this app runs on for the member's pushes (again: replaces this
/// app's earlier registration). Only with an app's token: an API key has no person to
/// push to. A platform the operator did not configure is refused.
#[utoipa::path(post, path = "/devices", tag = "apps",
    request_body(content = NewDeviceBody, content_type = "application/json"),
    responses(
        (status = 201, body = DeviceView),
        (status = 403, description = "Not an app's session (an API key, or a browser).", body = super::spec::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or wrong, or the server cannot push to this platform.", body = super::spec::Problem, content_type = "application/problem+json"),
    ))]
async fn register(
    State(state): State<AppState>,
    principal: ApiPrincipal,
    JsonObject(map): JsonObject,
) -> Result<(StatusCode, Json<DeviceView>), AppError> {
    let session = app_session(principal)?;
    refuse_unknown(
        &map,
        &["platform", "push_token", "os_version", "app_version"],
    )?;
    let platform = match map.get("platform").and_then(Value::as_str) {
        Some("fcm") => Platform::Fcm,
        Some("apns") => Platform::Apns,
        _ => {
            return Err(AppError::invalid(
                "platform",
                "Must be \"fcm\" (Android) or \"apns\" (iOS).",
            ));
        }
    };
    let push_token = required_text(&map, "push_token", MAX_PUSH_TOKEN)?;
    check_push_token(platform, &push_token)?;
    let os_version = required_text(&map, "os_version", MAX_VERSION)?;
    let app_version = required_text(&map, "app_version", MAX_VERSION)?;
    if !state.native_push.supports(platform) {
        return Err(AppError::invalid(
            "platform",
            match platform {
                Platform::Fcm => {
                    "This server cannot push to Android apps: its operator has not set push.fcm_service_account."
                }
                Platform::Apns => {
                    "This server cannot push to iOS apps: its operator has not set push.apns_key_path, apns_key_id, apns_team_id and apns_topic."
                }
            },
        ));
    }
    let device = state
        .store
        .register_device(
            session.session_id,
            session.org_id(),
            session.user.id,
            &NewDevice {
                platform,
                push_token: &push_token,
                os_version: &os_version,
                app_version: &app_version,
            },
            state.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(device.into())))
}

/// Unregisters this app's device: the app stays signed in, without pushes.
#[utoipa::path(delete, path = "/devices", tag = "apps",
    responses(
        (status = 204, description = "No more pushes to this device."),
        (status = 403, description = "Not an app's session.", body = super::spec::Problem, content_type = "application/problem+json"),
        (status = 404, description = "This app registered no device.", body = super::spec::Problem, content_type = "application/problem+json"),
    ))]
async fn unregister(
    State(state): State<AppState>,
    principal: ApiPrincipal,
) -> Result<StatusCode, AppError> {
    let session = app_session(principal)?;
    state
        .store
        .delete_session_device(session.session_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A push token goes into a URL path (APNs) or a JSON string (FCM): only the characters
/// either service hands out.
fn check_push_token(platform: Platform, token: &str) -> Result<(), AppError> {
    let ok = match platform {
        Platform::Apns => token.len() >= 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        Platform::Fcm => token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')),
    };
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "push_token",
            match platform {
                Platform::Apns => "An APNs device token is hexadecimal (64 digits).",
                Platform::Fcm => "An FCM registration token has only letters, digits and - _ : .",
            },
        ))
    }
}
