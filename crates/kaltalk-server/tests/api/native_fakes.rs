//! Loopback fakes of the two push services native apps use, speaking their documented wire
//! formats and checking what we send: FCM HTTP v1 (a Google OAuth 2 token endpoint that
//! verifies the service account's RS256 JWT-bearer assertion, and `messages:send`) and
//! APNs (HTTP/2 over TLS with a test CA, the ES256 provider token checked against the
//! `.p8` key's public half). Each can be told how to answer the next pushes.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::sync::Mutex;

pub const FCM_PROJECT: &str = "kaltalk-test";
const FCM_CLIENT_EMAIL: &str = "push@kaltalk-test.iam.gserviceaccount.com";
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
pub const APNS_KEY_ID: &str = "ABC123DEFG";
pub const APNS_TEAM_ID: &str = "DEF123GHIJ";
pub const APNS_TOPIC: &str = "test.kaltalk.app";

/// One request a fake received, as it judged it.
#[derive(Debug, Clone)]
pub struct Received {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    /// The bearer token it came with (FCM's access token, APNs' provider token).
    pub bearer: String,
    /// What was wrong with it; empty when all was as documented.
    pub problems: Vec<String>,
}

#[derive(Default)]
struct Log {
    /// The token endpoint's verified assertions' claims, in order.
    token_requests: Vec<Value>,
    /// Access tokens the token endpoint handed out and not revoked since.
    live: Vec<String>,
    issued: usize,
    script: VecDeque<u16>,
    pushes: Vec<Received>,
}

async fn bind() -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

// ---- FCM ---------------------------------------------------------------------------------

pub struct FakeFcm {
    pub base: String,
    /// The service-account JSON to configure (`push.fcm_service_account`).
    pub service_account: PathBuf,
    log: Arc<Mutex<Log>>,
    _dir: tempfile::TempDir,
}

struct FcmState {
    token_uri: String,
    key: DecodingKey,
    log: Arc<Mutex<Log>>,
}

impl FakeFcm {
    pub async fn start() -> Self {
        let (listener, addr) = bind().await;
        let base = format!("http://{addr}");
        let token_uri = format!("{base}/token");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let dir = tempfile::tempdir().expect("tmp");
        let service_account = dir.path().join("service-account.json");
        std::fs::write(
            &service_account,
            serde_json::to_vec_pretty(&json!({
                "type": "service_account",
                "project_id": FCM_PROJECT,
                "private_key_id": "0123456789abcdef",
                "private_key": key.serialize_pem(),
                "client_email": FCM_CLIENT_EMAIL,
                "client_id": "1234567890",
                "token_uri": token_uri,
            }))
            .expect("json"),
        )
        .expect("write the service account");
        let log = Arc::new(Mutex::new(Log::default()));
        let state = Arc::new(FcmState {
            token_uri,
            key: DecodingKey::from_rsa_pem(key.public_key_pem().as_bytes()).expect("public key"),
            log: log.clone(),
        });
        let router = axum::Router::new()
            .route("/token", post(fcm_token))
            .route("/v1/projects/{project}/messages:send", post(fcm_send))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            base,
            service_account,
            log,
            _dir: dir,
        }
    }

    /// The statuses the next pushes get (401 also revokes the token it came with; 404 is
    /// `UNREGISTERED`), then 200 again.
    pub async fn answer_next(&self, statuses: &[u16]) {
        self.log.lock().await.script.extend(statuses);
    }

    pub async fn pushes(&self) -> Vec<Received> {
        self.log.lock().await.pushes.clone()
    }

    /// The claims of each assertion the token endpoint accepted.
    pub async fn token_requests(&self) -> Vec<Value> {
        self.log.lock().await.token_requests.clone()
    }
}

async fn fcm_token(
    State(state): State<Arc<FcmState>>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response();
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&state.token_uri]);
    validation.set_issuer(&[FCM_CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let claims = match jsonwebtoken::decode::<Value>(&assertion, &state.key, &validation) {
        Ok(data) => data.claims,
        Err(err) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "invalid_grant", "error_description": err.to_string() })),
            )
                .into_response();
        }
    };
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    if claims["scope"] != FCM_SCOPE || !(1..=3600).contains(&lifetime) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_scope", "claims": claims })),
        )
            .into_response();
    }
    let mut log = state.log.lock().await;
    log.issued += 1;
    let token = format!("ya29.fake-access-token-{}", log.issued);
    log.live.push(token.clone());
    log.token_requests.push(claims);
    Json(json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}

/// What `messages:send` requires of a message, as our app reads it.
fn fcm_problems(body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let message = &body["message"];
    if message["token"].as_str().is_none_or(str::is_empty) {
        problems.push("message.token is missing".to_owned());
    }
    for field in ["title", "body"] {
        if !message["notification"][field].is_string() {
            problems.push(format!("message.notification.{field} is not a string"));
        }
    }
    match message["data"].as_object() {
        Some(data) => {
            if data.values().any(|v| !v.is_string()) {
                problems.push("every message.data value must be a string".to_owned());
            }
            for key in ["url", "reason", "conversation_id"] {
                if !data.contains_key(key) {
                    problems.push(format!("message.data.{key} is missing"));
                }
            }
        }
        None => problems.push("message.data is not an object".to_owned()),
    }
    if !matches!(
        message["android"]["priority"].as_str(),
        Some("high" | "normal")
    ) {
        problems.push("message.android.priority is not high or normal".to_owned());
    }
    if !message["android"]["ttl"]
        .as_str()
        .is_some_and(|t| t.ends_with('s') && t[..t.len() - 1].parse::<u32>().is_ok())
    {
        problems.push("message.android.ttl is not a duration in seconds".to_owned());
    }
    let known = ["token", "notification", "data", "android"];
    if let Some(unknown) = message
        .as_object()
        .and_then(|m| m.keys().find(|k| !known.contains(&k.as_str())))
    {
        problems.push(format!("message.{unknown} is not expected"));
    }
    problems
}

async fn fcm_send(
    State(state): State<Arc<FcmState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let token = bearer(&headers);
    let mut log = state.log.lock().await;
    let mut problems = fcm_problems(&body);
    if project != FCM_PROJECT {
        problems.push(format!("project {project} is not the service account's"));
    }
    let (status, answer) = if !log.live.contains(&token) {
        (
            401,
            json!({ "error": { "code": 401, "status": "UNAUTHENTICATED" } }),
        )
    } else {
        match log.script.pop_front() {
            Some(401) => {
                // The token was revoked: it works no more.
                log.live.retain(|t| *t != token);
                (
                    401,
                    json!({ "error": { "code": 401, "status": "UNAUTHENTICATED" } }),
                )
            }
            Some(404) => (
                404,
                json!({ "error": { "code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found.",
                    "details": [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED" }] } }),
            ),
            Some(other) => (other, json!({ "error": { "code": other } })),
            None => (
                200,
                json!({ "name": format!("projects/{FCM_PROJECT}/messages/{}", log.pushes.len()) }),
            ),
        }
    };
    if status == 200 && !problems.is_empty() {
        problems.push("answered 200 all the same".to_owned());
    }
    log.pushes.push(Received {
        status,
        headers,
        body,
        bearer: token,
        problems,
    });
    (StatusCode::from_u16(status).expect("status"), Json(answer)).into_response()
}

// ---- APNs --------------------------------------------------------------------------------

pub struct FakeApns {
    pub base: String,
    /// The test CA's certificate (`push.apns_ca_path`).
    pub ca_path: PathBuf,
    /// The `.p8` auth key (`push.apns_key_path`).
    pub key_path: PathBuf,
    log: Arc<Mutex<Log>>,
    _dir: tempfile::TempDir,
}

struct ApnsState {
    key: DecodingKey,
    log: Arc<Mutex<Log>>,
}

impl FakeApns {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        // A CA of our own, and the server's certificate for 127.0.0.1 signed by it.
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "KalTalk test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let ca_path = dir.path().join("ca.pem");
        let cert_path = dir.path().join("server.pem");
        let server_key_path = dir.path().join("server.key");
        std::fs::write(&ca_path, ca_cert.pem()).expect("write");
        std::fs::write(&cert_path, server_cert.pem()).expect("write");
        std::fs::write(&server_key_path, server_key.serialize_pem()).expect("write");
        // The auth key, as Apple hands it out: a P-256 key in PKCS#8 PEM.
        let auth_key = rcgen::KeyPair::generate().expect("P-256 key");
        let key_path = dir.path().join(format!("AuthKey_{APNS_KEY_ID}.p8"));
        std::fs::write(&key_path, auth_key.serialize_pem()).expect("write");

        let (listener, addr) = bind().await;
        let tls = kaltalk_server::tls::server_config(&cert_path, &server_key_path).expect("TLS");
        let listener = kaltalk_server::tls::TlsListener::new(listener, tls).expect("listener");
        let log = Arc::new(Mutex::new(Log::default()));
        let state = Arc::new(ApnsState {
            key: DecodingKey::from_ec_pem(auth_key.public_key_pem().as_bytes())
                .expect("public key"),
            log: log.clone(),
        });
        let router = axum::Router::new()
            .route("/3/device/{token}", post(apns_push))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            base: format!("https://{addr}"),
            ca_path,
            key_path,
            log,
            _dir: dir,
        }
    }

    /// The statuses the next pushes get (410: `Unregistered`), then 200 again.
    pub async fn answer_next(&self, statuses: &[u16]) {
        self.log.lock().await.script.extend(statuses);
    }

    pub async fn pushes(&self) -> Vec<Received> {
        self.log.lock().await.pushes.clone()
    }
}

/// The provider token's claims when it is one Apple would take, else why not.
fn provider_token(key: &DecodingKey, token: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.alg != Algorithm::ES256 {
        return Err(format!("alg {:?}, not ES256", header.alg));
    }
    if header.kid.as_deref() != Some(APNS_KEY_ID) {
        return Err(format!("kid {:?}, not the key's id", header.kid));
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[APNS_TEAM_ID]);
    validation.set_required_spec_claims(&["iss"]);
    // Provider tokens carry `iat` only; Apple refuses one older than an hour.
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    if !claims["iat"].is_i64() {
        return Err("no iat".to_owned());
    }
    Ok(claims)
}

async fn apns_push(
    State(state): State<Arc<ApnsState>>,
    Path(device): Path<String>,
    version: Version,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut problems = Vec::new();
    if version != Version::HTTP_2 {
        problems.push(format!("{version:?}, not HTTP/2"));
    }
    if !device.chars().all(|c| c.is_ascii_hexdigit()) {
        problems.push(format!("device token {device} is not hex"));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("apns-topic") != Some(APNS_TOPIC) {
        problems.push(format!("apns-topic {:?}", header("apns-topic")));
    }
    if header("apns-push-type") != Some("alert") {
        problems.push(format!("apns-push-type {:?}", header("apns-push-type")));
    }
    if !matches!(header("apns-priority"), Some("10" | "5")) {
        problems.push(format!("apns-priority {:?}", header("apns-priority")));
    }
    if !header("apns-collapse-id").is_some_and(|id| !id.is_empty() && id.len() <= 64) {
        problems.push("apns-collapse-id missing or over 64 bytes".to_owned());
    }
    for field in ["title", "body"] {
        if !body["aps"]["alert"][field].is_string() {
            problems.push(format!("aps.alert.{field} is not a string"));
        }
    }
    if !body["aps"]["thread-id"].is_string() {
        problems.push("aps.thread-id is not a string".to_owned());
    }
    let token = bearer(&headers);
    let authorised = provider_token(&state.key, &token);
    if let Err(why) = &authorised {
        problems.push(format!("provider token: {why}"));
    }
    let mut log = state.log.lock().await;
    let (status, answer) = if authorised.is_err() {
        (403, json!({ "reason": "InvalidProviderToken" }))
    } else {
        match log.script.pop_front() {
            Some(410) => (
                410,
                json!({ "reason": "Unregistered", "timestamp": 1_700_000_000_000_i64 }),
            ),
            Some(other) => (other, json!({ "reason": "InternalServerError" })),
            None => (200, Value::Null),
        }
    };
    log.pushes.push(Received {
        status,
        headers,
        body,
        bearer: token,
        problems,
    });
    let status = StatusCode::from_u16(status).expect("status");
    if answer.is_null() {
        (
            status,
            [("apns-id", "00000000-0000-0000-0000-000000000001")],
        )
            .into_response()
    } else {
        (status, Json(answer)).into_response()
    }
}
