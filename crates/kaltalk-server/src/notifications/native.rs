//! Pushes to the operator's own native apps, with the operator's own credentials and no
//! relay: FCM HTTP v1 for Android (the service account's OAuth 2 JWT-bearer flow, the
//! access token cached until shortly before it expires) and APNs for iOS (a `.p8` key's
//! ES256 provider token, reused for 50 minutes, over HTTP/2). The `push.native` job sends
//! one notification to one device; what it says is Web Push's [`payload`].

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kaltalk_core::chat::NotificationReason;
use kaltalk_core::job::DeliverNativePush;
use kaltalk_store::devices::{Device, Platform};
use kaltalk_store::{NewJob, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::push::{Outcome, PushPayload, TTL_SECONDS, outcome, payload};
use crate::config::PushConfig;
use crate::outbound::{Answer, TIMEOUT};
use crate::state::AppState;

/// The OAuth 2 scope FCM's `messages:send` asks for.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// How long before its expiry an access token is fetched again (a clock a little off, a
/// slow request).
const TOKEN_MARGIN: Duration = Duration::minutes(5);
/// How long an APNs provider token is reused: Apple refuses one older than an hour and
/// one made more often than every 20 minutes.
pub const PROVIDER_TOKEN_REUSE: Duration = Duration::minutes(50);

/// The senders this instance has credentials for.
pub struct NativePush {
    fcm: Option<Fcm>,
    apns: Option<Apns>,
}

impl NativePush {
    /// Reads the credentials once at start: a key that does not read stops the server
    /// there, not at the first push.
    pub fn from_config(config: &PushConfig) -> anyhow::Result<Self> {
        let fcm = match &config.fcm_service_account {
            Some(path) => Some(Fcm::load(path, &config.fcm_base_url)?),
            None => None,
        };
        let apns = match (
            &config.apns_key_path,
            &config.apns_key_id,
            &config.apns_team_id,
            &config.apns_topic,
        ) {
            (Some(key), Some(key_id), Some(team_id), Some(topic)) => Some(Apns::load(
                key,
                key_id,
                team_id,
                topic,
                &config.apns_base_url,
                config.apns_ca_path.as_deref(),
            )?),
            _ => None,
        };
        Ok(Self { fcm, apns })
    }

    /// Whether devices of `platform` can be pushed to (registering one needs it).
    pub fn supports(&self, platform: Platform) -> bool {
        match platform {
            Platform::Fcm => self.fcm.is_some(),
            Platform::Apns => self.apns.is_some(),
        }
    }
}

fn client(
    extra_root: Option<&reqwest::Certificate>,
    http2_only: bool,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(format!("KalTalk-Push/{}", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT);
    if let Some(root) = extra_root {
        builder = builder.add_root_certificate(root.clone());
    }
    if http2_only {
        builder = builder.http2_prior_knowledge();
    }
    Ok(builder.build()?)
}

/// What an answer says beyond its status: FCM's `errorCode`, APNs' `reason`.
fn error_reason(platform: Platform, body: &Value) -> Option<String> {
    match platform {
        Platform::Fcm => body["error"]["details"]
            .as_array()
            .and_then(|details| {
                details
                    .iter()
                    .find_map(|d| d["errorCode"].as_str().map(str::to_owned))
            })
            .or_else(|| body["error"]["status"].as_str().map(str::to_owned)),
        Platform::Apns => body["reason"].as_str().map(str::to_owned),
    }
}

/// A sent push's answer: its status, `Retry-After`, and the service's reason.
struct Sent {
    answer: Answer,
    reason: Option<String>,
}

async fn read_answer(platform: Platform, response: reqwest::Response, now: DateTime<Utc>) -> Sent {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::outbound::retry_after(v, now));
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Sent {
        answer: Answer {
            status,
            retry_after,
        },
        reason: error_reason(platform, &body),
    }
}

// ---- FCM ---------------------------------------------------------------------------------

/// The fields of a Google service-account JSON that the token flow uses.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    client_email: String,
    private_key: String,
    token_uri: String,
}

struct CachedToken {
    value: String,
    until: DateTime<Utc>,
}

struct Fcm {
    client: reqwest::Client,
    send_url: String,
    client_email: String,
    token_uri: String,
    key: EncodingKey,
    token: Mutex<Option<CachedToken>>,
}

impl Fcm {
    fn load(path: &std::path::Path, base_url: &str) -> anyhow::Result<Self> {
        let raw = std::fs::read(path)
            .with_context(|| format!("reading push.fcm_service_account {}", path.display()))?;
        let account: ServiceAccount = serde_json::from_slice(&raw).with_context(|| {
            format!(
                "push.fcm_service_account {} is not a service-account JSON (project_id, client_email, private_key, token_uri)",
                path.display()
            )
        })?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .context("the service account's private_key is not an RSA key in PEM")?;
        Ok(Self {
            client: client(None, false)?,
            send_url: format!(
                "{}/v1/projects/{}/messages:send",
                base_url.trim_end_matches('/'),
                account.project_id
            ),
            client_email: account.client_email,
            token_uri: account.token_uri,
            key,
            token: Mutex::new(None),
        })
    }

    /// The cached access token, or a new one when it is near its end (or `stale`, the one
    /// FCM just refused).
    async fn access_token(
        &self,
        now: DateTime<Utc>,
        stale: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && token.until - TOKEN_MARGIN > now
            && stale != Some(token.value.as_str())
        {
            return Ok(token.value.clone());
        }
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            scope: &'a str,
            aud: &'a str,
            iat: i64,
            exp: i64,
        }
        let assertion = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &Claims {
                iss: &self.client_email,
                scope: FCM_SCOPE,
                aud: &self.token_uri,
                iat: now.timestamp(),
                exp: (now + Duration::hours(1)).timestamp(),
            },
            &self.key,
        )?;
        let response = self
            .client
            .post(&self.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .context("asking for an FCM access token")?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("the token endpoint answered HTTP {status} for the FCM access token");
        }
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            expires_in: i64,
        }
        let granted: Granted = response
            .json()
            .await
            .context("the token endpoint's answer has no access_token")?;
        *cached = Some(CachedToken {
            value: granted.access_token.clone(),
            until: now + Duration::seconds(granted.expires_in),
        });
        Ok(granted.access_token)
    }

    async fn send(
        &self,
        device: &Device,
        push: &PushPayload,
        reason: NotificationReason,
        conversation: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Sent> {
        let message = fcm_message(device, push, reason, conversation);
        let token = self.access_token(now, None).await?;
        let sent = self.post(&message, &token, now).await?;
        if sent.answer.status != 401 {
            return Ok(sent);
        }
        // Revoked or expired early: one new token, one more try.
        let token = self.access_token(now, Some(&token)).await?;
        self.post(&message, &token, now).await
    }

    async fn post(&self, message: &Value, token: &str, now: DateTime<Utc>) -> anyhow::Result<Sent> {
        let response = self
            .client
            .post(&self.send_url)
            .bearer_auth(token)
            .json(message)
            .send()
            .await?;
        Ok(read_answer(Platform::Fcm, response, now).await)
    }
}

/// The HTTP v1 `messages:send` body.
fn fcm_message(
    device: &Device,
    push: &PushPayload,
    reason: NotificationReason,
    conversation: &str,
) -> Value {
    let priority = if reason.is_urgent() { "high" } else { "normal" };
    json!({
        "message": {
            "token": device.push_token,
            "notification": { "title": push.title, "body": push.body },
            "data": {
                "url": push.url,
                "reason": push.reason,
                "conversation_id": conversation,
            },
            "android": {
                "priority": priority,
                "ttl": format!("{TTL_SECONDS}s"),
                "collapse_key": push.tag,
            },
        }
    })
}

// ---- APNs --------------------------------------------------------------------------------

struct Apns {
    client: reqwest::Client,
    base_url: String,
    topic: String,
    key_id: String,
    team_id: String,
    key: EncodingKey,
    /// The provider token and when it was made.
    token: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl Apns {
    fn load(
        key_path: &std::path::Path,
        key_id: &str,
        team_id: &str,
        topic: &str,
        base_url: &str,
        ca_path: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let pem = std::fs::read(key_path)
            .with_context(|| format!("reading push.apns_key_path {}", key_path.display()))?;
        let key = EncodingKey::from_ec_pem(&pem).with_context(|| {
            format!(
                "push.apns_key_path {} is not an APNs auth key (.p8, a P-256 key in PEM)",
                key_path.display()
            )
        })?;
        let root = match ca_path {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading push.apns_ca_path {}", path.display()))?;
                Some(reqwest::Certificate::from_pem(&pem).with_context(|| {
                    format!(
                        "push.apns_ca_path {} is not a PEM certificate",
                        path.display()
                    )
                })?)
            }
            None => None,
        };
        Ok(Self {
            // APNs speaks HTTP/2 only.
            client: client(root.as_ref(), true)?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            topic: topic.to_owned(),
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            key,
            token: Mutex::new(None),
        })
    }

    /// The provider token: the cached one while younger than 50 minutes (and not the one
    /// APNs just called expired), else a new one.
    async fn provider_token(
        &self,
        now: DateTime<Utc>,
        stale: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut cached = self.token.lock().await;
        if let Some((token, made)) = cached.as_ref()
            && now - *made < PROVIDER_TOKEN_REUSE
            && stale != Some(token.as_str())
        {
            return Ok(token.clone());
        }
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            iat: i64,
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let token = jsonwebtoken::encode(
            &header,
            &Claims {
                iss: &self.team_id,
                iat: now.timestamp(),
            },
            &self.key,
        )?;
        *cached = Some((token.clone(), now));
        Ok(token)
    }

    async fn send(
        &self,
        device: &Device,
        push: &PushPayload,
        reason: NotificationReason,
        conversation: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Sent> {
        let token = self.provider_token(now, None).await?;
        let sent = self
            .post(device, push, reason, conversation, &token, now)
            .await?;
        let expired = sent.answer.status == 403
            && matches!(
                sent.reason.as_deref(),
                Some("ExpiredProviderToken" | "InvalidProviderToken")
            );
        if !expired {
            return Ok(sent);
        }
        let token = self.provider_token(now, Some(&token)).await?;
        self.post(device, push, reason, conversation, &token, now)
            .await
    }

    async fn post(
        &self,
        device: &Device,
        push: &PushPayload,
        reason: NotificationReason,
        conversation: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Sent> {
        let priority = if reason.is_urgent() { "10" } else { "5" };
        let expiration = (now + Duration::seconds(i64::from(TTL_SECONDS))).timestamp();
        let response = self
            .client
            .post(format!("{}/3/device/{}", self.base_url, device.push_token))
            .bearer_auth(token)
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", priority)
            .header("apns-expiration", expiration.to_string())
            .header("apns-collapse-id", conversation)
            .json(&apns_body(push, conversation))
            .send()
            .await?;
        Ok(read_answer(Platform::Apns, response, now).await)
    }
}

/// The APNs payload: the alert, one thread per conversation, and where a tap leads.
fn apns_body(push: &PushPayload, conversation: &str) -> Value {
    json!({
        "aps": {
            "alert": { "title": push.title, "body": push.body },
            "thread-id": conversation,
            "sound": "default",
        },
        "url": push.url,
        "reason": push.reason,
        "conversation_id": conversation,
    })
}

// ---- the job -----------------------------------------------------------------------------

/// What an answer means for the device. Only the services' own word deletes it: FCM's
/// `UNREGISTERED` (on a 404, sometimes a 400) and APNs' 410. Any other 404 or 410 (a
/// wrong base URL or project) gives the push up and keeps the device, or one mistyped
/// setting would forget every phone. The rest is decided as for Web Push.
fn decide(platform: Platform, sent: &Sent, attempt: i32, now: DateTime<Utc>) -> Outcome {
    let status = sent.answer.status;
    match platform {
        Platform::Fcm if sent.reason.as_deref() == Some("UNREGISTERED") => Outcome::Gone,
        Platform::Apns if status == 410 => Outcome::Gone,
        _ if matches!(status, 404 | 410) => Outcome::GiveUp(format!(
            "{} answered HTTP {status} ({}): check its base URL and credentials",
            platform.as_str(),
            sent.reason.as_deref().unwrap_or("no reason given")
        )),
        _ => outcome(&sent.answer, attempt, now),
    }
}

/// The `push.native` job: one attempt at one push to one device.
pub async fn deliver(state: &AppState, job: DeliverNativePush) -> anyhow::Result<()> {
    let delivery = match state
        .store
        .native_delivery(job.notification_id, job.device_id)
        .await
    {
        Ok(found) => found,
        // Signed out, revoked, or the conversation deleted: nothing to send.
        Err(StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    if delivery.message.already_read {
        return Ok(());
    }
    let now = state.now();
    let device = &delivery.device;
    let push = payload(&delivery.message);
    let reason = delivery.message.reason;
    let conversation = delivery
        .message
        .conversation_id
        .as_uuid()
        .simple()
        .to_string();
    let senders = &state.native_push;
    let sent = match device.platform {
        Platform::Fcm => match &senders.fcm {
            Some(fcm) => fcm.send(device, &push, reason, &conversation, now).await,
            None => {
                tracing::warn!(device = %device.id, "an FCM device, but push.fcm_service_account is not set: push given up");
                return Ok(());
            }
        },
        Platform::Apns => match &senders.apns {
            Some(apns) => apns.send(device, &push, reason, &conversation, now).await,
            None => {
                tracing::warn!(device = %device.id, "an APNs device, but push.apns_* is not set: push given up");
                return Ok(());
            }
        },
    };
    let sent = match sent {
        Ok(sent) => sent,
        // No answer (or no token to send with): retried like a 5xx.
        Err(err) => {
            tracing::warn!(device = %device.id, error = %format!("{err:#}"), "native push not sent");
            Sent {
                answer: Answer {
                    status: 503,
                    retry_after: None,
                },
                reason: None,
            }
        }
    };
    metrics::counter!(
        "kaltalk_native_pushes_total",
        "platform" => device.platform.as_str(),
        "status" => sent.answer.status.to_string()
    )
    .increment(1);
    match decide(device.platform, &sent, job.attempt, now) {
        Outcome::Delivered => state.store.record_device_push(device.id, now).await?,
        Outcome::Gone => state.store.forget_device(device.id).await?,
        Outcome::RetryAt(at) => {
            let next = DeliverNativePush {
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
            tracing::warn!(device = %device.id, reason = %why, detail = ?sent.reason, "native push given up");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(status: u16, reason: Option<&str>) -> Sent {
        Sent {
            answer: Answer {
                status,
                retry_after: None,
            },
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn only_the_services_own_word_forgets_a_device() {
        let now = Utc::now();
        let fcm = |status, reason| decide(Platform::Fcm, &sent(status, reason), 1, now);
        let apns = |status, reason| decide(Platform::Apns, &sent(status, reason), 1, now);
        assert_eq!(fcm(404, Some("UNREGISTERED")), Outcome::Gone);
        assert_eq!(fcm(400, Some("UNREGISTERED")), Outcome::Gone);
        assert!(matches!(fcm(404, Some("NOT_FOUND")), Outcome::GiveUp(_)));
        assert!(matches!(
            fcm(400, Some("INVALID_ARGUMENT")),
            Outcome::GiveUp(_)
        ));
        assert_eq!(apns(410, Some("Unregistered")), Outcome::Gone);
        assert!(matches!(apns(404, Some("BadPath")), Outcome::GiveUp(_)));
        assert_eq!(fcm(200, None), Outcome::Delivered);
        assert!(matches!(apns(503, None), Outcome::RetryAt(_)));
        assert!(matches!(
            fcm(429, Some("QUOTA_EXCEEDED")),
            Outcome::RetryAt(_)
        ));
    }

    #[test]
    fn error_reasons_are_read_where_each_service_puts_them() {
        let fcm = json!({ "error": { "code": 404, "status": "NOT_FOUND", "details": [
            { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED" }
        ] } });
        assert_eq!(
            error_reason(Platform::Fcm, &fcm).as_deref(),
            Some("UNREGISTERED")
        );
        let plain = json!({ "error": { "code": 401, "status": "UNAUTHENTICATED" } });
        assert_eq!(
            error_reason(Platform::Fcm, &plain).as_deref(),
            Some("UNAUTHENTICATED")
        );
        let apns = json!({ "reason": "ExpiredProviderToken" });
        assert_eq!(
            error_reason(Platform::Apns, &apns).as_deref(),
            Some("ExpiredProviderToken")
        );
        assert_eq!(error_reason(Platform::Apns, &Value::Null), None);
    }
}
