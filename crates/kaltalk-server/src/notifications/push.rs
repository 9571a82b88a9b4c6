//! Web Push (RFC 8030 / 8291 / 8292), with this instance's own keys and no relay: the
//! VAPID key pair (made at first start, kept in the database), the browser's subscription
//! routes, and the `push.deliver` job that encrypts one notification for one browser
//! (`aes128gcm`), signs it (a VAPID JWT naming the operator's contact) and sends it to the
//! browser's push service through the SSRF guard.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::extract::State;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use kaltalk_core::chat::NotificationReason;
use kaltalk_core::job::DeliverPush;
use kaltalk_store::push::{PushKeys, PushMessage};
use kaltalk_store::{NewJob, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use web_push_native::{Auth, WebPushBuilder, p256};

use crate::auth::AgentSession;
use crate::auth::csrf::SessionJson;
use crate::error::AppError;
use crate::outbound::Answer;
use crate::state::AppState;
use crate::web::{IdPath, PageResult};

/// How long a push service keeps a push for a browser that is offline: after that, the
/// bell still has it, and a late alert about a long-answered conversation is noise.
pub const TTL_SECONDS: u32 = 6 * 60 * 60;
/// How long a VAPID signature is valid (RFC 8292 allows up to 24 hours).
const VAPID_VALID_FOR: Duration = Duration::hours(12);
/// Sends of one push before it is given up (429 and 5xx are retried).
const MAX_ATTEMPTS: i32 = 5;
/// The longest `Retry-After` honoured: a later one gives the push up (its TTL is near).
const LONGEST_WAIT: Duration = Duration::hours(1);
/// What a push says when the member keeps message text out of pushes.
pub const NO_TEXT: &str = "New message from a customer";
/// The most characters of a message a push shows.
const PREVIEW_CHARS: usize = 140;
/// The largest subscription field accepted (endpoints are URLs of a few hundred bytes).
const MAX_FIELD: usize = 2048;

/// The instance's VAPID key pair, ready to sign.
pub struct Vapid {
    pkcs8: Vec<u8>,
    /// The uncompressed public point, base64url: `k=` and the `applicationServerKey`.
    pub public_key: String,
}

impl Vapid {
    /// The stored key pair, or a new one stored now (the first instance to start wins).
    pub async fn ensure(store: &Store, now: DateTime<Utc>) -> anyhow::Result<Self> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("could not generate a P-256 key pair"))?;
        let candidate = Self::from_pkcs8(pkcs8.as_ref().to_vec())?;
        let stored = store
            .ensure_push_keys(
                &PushKeys {
                    private_key: URL_SAFE_NO_PAD.encode(&candidate.pkcs8),
                    public_key: candidate.public_key.clone(),
                },
                now,
            )
            .await?;
        Self::from_pkcs8(URL_SAFE_NO_PAD.decode(stored.private_key)?)
    }

    fn from_pkcs8(pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|e| anyhow::anyhow!("the stored VAPID key does not read: {e}"))?;
        let public_key = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        Ok(Self { pkcs8, public_key })
    }

    /// `Authorization: vapid t=<JWT>, k=<key>` for a push to `endpoint`: `aud` its origin,
    /// `exp` within 12 hours, `sub` the operator's contact.
    pub fn authorization(
        &self,
        endpoint: &url::Url,
        contact: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: i64,
            sub: &'a str,
        }
        let claims = Claims {
            aud: endpoint.origin().ascii_serialization(),
            exp: (now + VAPID_VALID_FOR).timestamp(),
            sub: contact,
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let key = jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8);
        let token = jsonwebtoken::encode(&header, &claims, &key)?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// What the service worker gets (decrypted in the browser): what to show and where a tap
/// leads.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PushPayload {
    pub title: String,
    pub body: String,
    /// Opening it marks the notification read and shows the conversation.
    pub url: String,
    /// One per conversation: a newer push replaces the older one on the screen.
    pub tag: String,
    pub reason: String,
}

/// The payload for one delivery (to a browser or a native app); the customer's words and
/// name only when the member chose message text in pushes.
pub fn payload(delivery: &PushMessage) -> PushPayload {
    let reason = delivery.reason;
    let (title, body) = if delivery.push_text {
        let who = delivery
            .contact_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "A customer".to_owned());
        let text = delivery
            .last_customer_text
            .as_deref()
            .map(|t| preview(t, PREVIEW_CHARS))
            .unwrap_or_else(|| NO_TEXT.to_owned());
        (format!("{who}: {}", reason.headline()), text)
    } else {
        (reason.headline().to_owned(), NO_TEXT.to_owned())
    };
    PushPayload {
        title,
        body,
        url: format!("/notifications/{}/open", delivery.notification_id),
        tag: format!("conversation-{}", delivery.conversation_id),
        reason: reason.as_str().to_owned(),
    }
}

/// The first `chars` characters of `text` on one line, an ellipsis where it was cut.
fn preview(text: &str, chars: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= chars {
        return line;
    }
    let cut: String = line.chars().take(chars.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// `Urgency`: high for someone waiting for a person now.
fn urgency(reason: NotificationReason) -> &'static str {
    if reason.is_urgent() { "high" } else { "normal" }
}

/// What one attempt's answer means (for a browser's push service, FCM or APNs alike).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    /// The subscription is gone (the browser unsubscribed, or it expired).
    Gone,
    RetryAt(DateTime<Utc>),
    GiveUp(String),
}

pub(crate) fn outcome(answer: &Answer, attempt: i32, now: DateTime<Utc>) -> Outcome {
    match answer.status {
        200..=299 => Outcome::Delivered,
        404 | 410 => Outcome::Gone,
        429 | 500..=599 if attempt < MAX_ATTEMPTS => {
            let at = answer
                .retry_after
                .unwrap_or_else(|| now + kaltalk_store::backoff(attempt));
            if at - now > LONGEST_WAIT {
                Outcome::GiveUp(format!(
                    "the push service answered {} and asked to wait until {at}, past the push's usefulness",
                    answer.status
                ))
            } else {
                Outcome::RetryAt(at.max(now))
            }
        }
        status => Outcome::GiveUp(format!("the push service answered HTTP {status}")),
    }
}

/// The `push.deliver` job: one attempt at one push.
pub async fn deliver(state: &AppState, job: DeliverPush) -> anyhow::Result<()> {
    let delivery = match state
        .store
        .push_delivery(job.notification_id, job.subscription_id)
        .await
    {
        Ok(found) => found,
        // The browser was revoked, or the conversation deleted: nothing to send.
        Err(StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    if delivery.message.already_read {
        return Ok(()); // opened from another device before this went out
    }
    let now = state.now();
    let subscription = &delivery.subscription;
    let endpoint = url::Url::parse(&subscription.endpoint)?;
    let body = serde_json::to_vec(&payload(&delivery.message))?;
    let encrypted = encrypt(subscription, body)?;
    let headers = [
        ("content-type", "application/octet-stream".to_owned()),
        ("content-encoding", "aes128gcm".to_owned()),
        ("ttl", TTL_SECONDS.to_string()),
        ("urgency", urgency(delivery.message.reason).to_owned()),
        (
            "topic",
            delivery
                .message
                .conversation_id
                .as_uuid()
                .simple()
                .to_string(),
        ),
        (
            "authorization",
            state
                .push_keys
                .authorization(&endpoint, &state.config.push_contact(), now)?,
        ),
    ];
    let answer = state
        .push_client
        .post(endpoint.as_str(), &headers, encrypted, now)
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        // Not a push service anyone may reach from here (loopback, a private network):
        // no retry will change that, and the subscription was never a browser's.
        Err(crate::outbound::PostError::Refused(why)) => {
            tracing::warn!(subscription = %subscription.id, reason = %why, "push endpoint refused; subscription forgotten");
            state
                .store
                .forget_push_subscription(subscription.id)
                .await?;
            return Ok(());
        }
        // No answer at all: retried like a 5xx.
        Err(err) => {
            tracing::warn!(subscription = %subscription.id, error = %err, "push not sent");
            Answer {
                status: 503,
                retry_after: None,
            }
        }
    };
    metrics::counter!("kaltalk_pushes_total", "status" => answer.status.to_string()).increment(1);
    match outcome(&answer, job.attempt, now) {
        Outcome::Delivered => state.store.record_push(subscription.id, now).await?,
        Outcome::Gone => {
            state
                .store
                .forget_push_subscription(subscription.id)
                .await?
        }
        Outcome::RetryAt(at) => {
            let next = DeliverPush {
                attempt: job.attempt + 1,
                ..job
            };
            let job = NewJob {
                run_at: Some(at),
                ..NewJob::new(&next)
            };
            state.store.enqueue_job(job, now).await?;
        }
        Outcome::GiveUp(why) => {
            tracing::warn!(subscription = %subscription.id, reason = %why, "push given up");
        }
    }
    Ok(())
}

/// The payload encrypted for the browser's key and auth secret (RFC 8291, `aes128gcm`).
fn encrypt(
    subscription: &kaltalk_store::push::PushSubscription,
    body: Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    let (public, auth) = browser_keys(&subscription.p256dh, &subscription.auth)
        .map_err(|why| anyhow::anyhow!("the stored subscription does not read: {why}"))?;
    let endpoint: axum::http::Uri = subscription.endpoint.parse()?;
    let request = WebPushBuilder::new(endpoint, public, auth)
        .build(body)
        .map_err(|e| anyhow::anyhow!("encrypting the push: {e}"))?;
    Ok(request.into_body())
}

/// The browser's key (`p256dh`) and auth secret, as `PushSubscription.toJSON()` gives them.
fn browser_keys(p256dh: &str, auth: &str) -> Result<(p256::PublicKey, Auth), &'static str> {
    let point = URL_SAFE_NO_PAD
        .decode(p256dh.trim_end_matches('='))
        .map_err(|_| "keys.p256dh is not base64url")?;
    let public = p256::PublicKey::from_sec1_bytes(&point)
        .map_err(|_| "keys.p256dh is not a P-256 public key")?;
    let secret = URL_SAFE_NO_PAD
        .decode(auth.trim_end_matches('='))
        .map_err(|_| "keys.auth is not base64url")?;
    let secret: [u8; 16] = secret
        .try_into()
        .map_err(|_| "keys.auth must be 16 bytes")?;
    Ok((public, Auth::from(secret)))
}

/// `GET /notifications/vapid-public-key`: the `applicationServerKey` to subscribe with,
/// and the session's CSRF token for the registration that follows (the service worker,
/// re-subscribing on `pushsubscriptionchange`, has no page to read it from; a JSON answer
/// is readable by our own origin only).
pub(crate) async fn public_key(State(state): State<AppState>, session: AgentSession) -> PageResult {
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "public_key": state.push_keys.public_key,
            "csrf_token": session.csrf_token,
        })),
    )
        .into_response())
}

/// The body of `POST /notifications/push-subscriptions`: `PushSubscription.toJSON()`.
#[derive(Deserialize)]
pub(crate) struct SubscriptionJson {
    endpoint: String,
    keys: SubscriptionKeys,
}

#[derive(Deserialize)]
struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

/// Registers this browser for the signed-in member. The endpoint must be an https URL
/// (or http to loopback when `push.allow_loopback` is on, for tests); where it points is
/// checked again at every push.
pub(crate) async fn subscribe(
    State(state): State<AppState>,
    SessionJson { session, body }: SessionJson<SubscriptionJson>,
) -> PageResult {
    let endpoint = parse_endpoint(&body.endpoint, state.config.push.allow_loopback)?;
    if body.keys.p256dh.len() > MAX_FIELD || body.keys.auth.len() > MAX_FIELD {
        return Err(AppError::invalid("keys", "The subscription's keys are too long.").into());
    }
    browser_keys(&body.keys.p256dh, &body.keys.auth)
        .map_err(|why| AppError::invalid("keys", why))?;
    let saved = state
        .store
        .save_push_subscription(
            session.org_id(),
            session.user.id,
            endpoint.as_str(),
            &body.keys.p256dh,
            &body.keys.auth,
            state.now(),
        )
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(json!({ "id": saved.id })),
    )
        .into_response())
}

/// Forgets one of the member's browsers (Profile's "Stop pushes to this browser").
pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    IdPath(id): IdPath<kaltalk_core::PushSubscriptionId>,
    crate::auth::SessionForm { session, .. }: crate::auth::SessionForm<crate::web::forms::NoFields>,
) -> PageResult {
    state
        .store
        .delete_push_subscription(session.org_id(), session.user.id, id)
        .await?;
    Ok(crate::web::forms::see_other(
        "/settings/profile?notice=device-removed#devices",
    ))
}

/// Which push service a browser's pushes go through, as people know it (Profile lists
/// the devices by it: the endpoint itself is a secret of sorts, and unreadable).
pub fn push_service_name(endpoint: &str) -> String {
    let host = url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let known = if host.ends_with(".googleapis.com") {
        "Chrome, Edge or Android (Google's push service)"
    } else if host.ends_with(".mozilla.com") {
        "Firefox (Mozilla's push service)"
    } else if host.ends_with(".push.apple.com") {
        "Safari or iPhone (Apple's push service)"
    } else if host.ends_with(".notify.windows.com") {
        "Edge (Microsoft's push service)"
    } else {
        return format!("A browser using {host}");
    };
    known.to_owned()
}

fn parse_endpoint(raw: &str, allow_loopback: bool) -> Result<url::Url, AppError> {
    let invalid = |why: &str| AppError::invalid("endpoint", why);
    if raw.len() > MAX_FIELD {
        return Err(invalid("The endpoint is too long."));
    }
    let url = url::Url::parse(raw).map_err(|_| invalid("The endpoint is not a URL."))?;
    let loopback = url
        .host_str()
        .is_some_and(|h| h == "127.0.0.1" || h == "[::1]" || h == "localhost");
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_loopback && loopback => Ok(url),
        _ => Err(invalid(
            "A push endpoint is an https:// URL of the browser's push service.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(preview("Hello\n  there", 140), "Hello there");
        assert_eq!(preview("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn answers_decide_between_done_gone_retry_and_giving_up() {
        let now = Utc::now();
        let answer = |status, retry_after| Answer {
            status,
            retry_after,
        };
        assert_eq!(outcome(&answer(201, None), 1, now), Outcome::Delivered);
        assert_eq!(outcome(&answer(410, None), 1, now), Outcome::Gone);
        assert_eq!(outcome(&answer(404, None), 1, now), Outcome::Gone);
        let later = now + Duration::seconds(120);
        assert_eq!(
            outcome(&answer(429, Some(later)), 1, now),
            Outcome::RetryAt(later)
        );
        assert!(matches!(
            outcome(&answer(503, None), 1, now),
            Outcome::RetryAt(_)
        ));
        assert!(matches!(
            outcome(&answer(503, None), MAX_ATTEMPTS, now),
            Outcome::GiveUp(_)
        ));
        assert!(matches!(
            outcome(&answer(429, Some(now + Duration::hours(2))), 1, now),
            Outcome::GiveUp(_)
        ));
        assert!(matches!(
            outcome(&answer(400, None), 1, now),
            Outcome::GiveUp(_)
        ));
    }

    #[test]
    fn endpoints_are_https_unless_loopback_is_allowed() {
        assert!(parse_endpoint("https://fcm.googleapis.com/fcm/send/abc", false).is_ok());
        assert!(parse_endpoint("http://127.0.0.1:9/push/1", false).is_err());
        assert!(parse_endpoint("http://127.0.0.1:9/push/1", true).is_ok());
        assert!(parse_endpoint("http://example.com/push/1", true).is_err());
        assert!(parse_endpoint("not a url", true).is_err());
    }
}
