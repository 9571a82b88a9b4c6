//! Typed, layered configuration: defaults, then an optional TOML file, then `KALTALK_*`
//! environment variables (nested keys with `__`, e.g. `KALTALK_SMTP__URL`). Unknown keys
//! are an error so a typo never silently falls back to a default.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

/// A secret string (database password, SMTP credentials). `Debug` never shows it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// Where KalTalk keeps its files (the SQLite database, uploads).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: `sqlite://<data_dir>/kaltalk.db`.
    pub database_url: Option<Secret>,
    /// The longest one database statement may run, in milliseconds (0: unbounded); past
    /// it the statement is stopped and its request answers 503 with `Retry-After`.
    pub statement_timeout_ms: u64,
    /// The address people reach KalTalk at; used in emailed links and for the `Secure`
    /// cookie flag. Default: `http://<listen>`.
    pub public_url: Option<Url>,
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `kaltalk=debug,info`.
    pub log_level: String,
    pub tls: Option<TlsConfig>,
    pub smtp: SmtpConfig,
    /// Where the built-in SMTP listener takes mail for email inboxes (host:port); empty
    /// turns it off. Environment: `KALTALK_SMTP_LISTEN`.
    pub smtp_listen: String,
    pub inbound_email: InboundEmailConfig,
    pub sessions: SessionConfig,
    pub login_limits: LoginLimits,
    pub jobs: JobsConfig,
    pub visitors: VisitorsConfig,
    pub realtime: RealtimeConfig,
    pub knowledge: KnowledgeConfig,
    pub ai: AiConfig,
    pub embeddings: EmbeddingsConfig,
    pub api: ApiConfig,
    pub webhooks: WebhooksConfig,
    pub push: PushConfig,
    pub widget: WidgetConfig,
    /// On SIGTERM or Ctrl-C, how long in-flight requests and jobs may take to finish
    /// before the server exits anyway (a runaway request must not keep it alive).
    pub shutdown_grace_seconds: u64,
}

/// The JSON API under `/api/v1`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Requests each API key may make per minute (a steady rate, bursts up to this many).
    pub rate_limit_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
        }
    }
}

/// Delivering events to the organizations' webhook endpoints. Its own switches, not the
/// crawler's: opening the crawler to a site on this machine must not also let any admin
/// point webhooks at services on it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Let webhooks be delivered to loopback addresses (tests; a receiver on this machine).
    pub allow_loopback: bool,
    /// Let webhooks be delivered to private-network addresses.
    pub allow_private: bool,
}

/// Web Push to the members' browsers, with this instance's own VAPID keys (kept in the
/// database) and no relay; and pushes to the operator's own native apps through FCM and
/// APNs with the operator's own credentials. A platform without its credentials refuses
/// its apps' device registrations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Who the push services may contact about our pushes (the VAPID `sub`): a
    /// `mailto:` or `https:` address. Default: `mailto:` the `smtp.from` address.
    pub contact: Option<String>,
    /// Let pushes go to push services on loopback addresses (tests only: a real browser's
    /// push service is never on this machine).
    pub allow_loopback: bool,
    /// The Firebase project's service-account JSON (its `project_id`, `client_email`,
    /// `private_key` and `token_uri` are used): Android apps' pushes through FCM HTTP v1.
    pub fcm_service_account: Option<PathBuf>,
    /// Where FCM's `messages:send` is.
    pub fcm_base_url: String,
    /// The APNs auth key (`AuthKey_XXXXXXXXXX.p8`): iOS apps' pushes, token-based.
    pub apns_key_path: Option<PathBuf>,
    /// The key's id (the 10 characters in its file name).
    pub apns_key_id: Option<String>,
    /// The Apple developer team id.
    pub apns_team_id: Option<String>,
    /// The app's bundle id (`apns-topic`).
    pub apns_topic: Option<String>,
    /// `https://api.push.apple.com`, or `https://api.sandbox.push.apple.com` for
    /// development builds of the app.
    pub apns_base_url: String,
    /// An extra root certificate (PEM) to trust for APNs (tests; a TLS-inspecting proxy).
    pub apns_ca_path: Option<PathBuf>,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            contact: None,
            allow_loopback: false,
            fcm_service_account: None,
            fcm_base_url: "https://fcm.googleapis.com".into(),
            apns_key_path: None,
            apns_key_id: None,
            apns_team_id: None,
            apns_topic: None,
            apns_base_url: "https://api.push.apple.com".into(),
            apns_ca_path: None,
        }
    }
}

/// Limits on the website widget's public API, per instance. A visitor's address is the
/// one `visitors.trusted_proxies` lets us see.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetConfig {
    /// New visitor sessions (first messages without a visitor token) per address per minute.
    pub sessions_per_ip_per_minute: u32,
    /// Messages and files each visitor session may send per minute.
    pub messages_per_session_per_minute: u32,
    /// Bot answers per visitor address per hour; past it, the team answers instead of the
    /// AI agent (each answer may be a paid model call).
    pub bot_turns_per_ip_per_hour: u32,
}

impl Default for WidgetConfig {
    fn default() -> Self {
        Self {
            sessions_per_ip_per_minute: 10,
            messages_per_session_per_minute: 20,
            bot_turns_per_ip_per_hour: 60,
        }
    }
}

/// Where the knowledge base's embeddings come from.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    /// all-MiniLM-L6-v2 (or another BERT sentence model) run on this machine's CPU.
    #[default]
    Local,
    /// Any OpenAI-compatible `/v1/embeddings` endpoint.
    Openai,
    /// No embeddings: retrieval is keyword-only (BM25).
    None,
}

/// Embeddings for semantic retrieval. The model's id is stored with every vector;
/// changing the model here re-embeds the knowledge base (a background job at start).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingsConfig {
    pub provider: EmbeddingProvider,
    /// `local`: a directory holding `config.json`, `tokenizer.json` and
    /// `model.safetensors` (scripts/fetch-model.sh makes one). Unset: the environment
    /// variable `KALTALK_EMBEDDING_MODEL_DIR`, else `<data_dir>/models/all-MiniLM-L6-v2`;
    /// when that default is missing the server runs keyword-only and says so.
    pub model_dir: Option<PathBuf>,
    /// `openai`: the API base, e.g. `https://api.openai.com/v1`.
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// `openai`: the model name, e.g. `text-embedding-3-small`.
    pub model: Option<String>,
    /// `openai`: the vectors' length, when the model can shorten them.
    pub dimensions: Option<usize>,
    /// `local` with no `model_dir`: when the default directory lacks the model, fetch
    /// it from `download_url` in the background at start (hashes checked) instead of
    /// staying keyword-only.
    pub download: bool,
    /// Where the model is fetched from: Hugging Face, or a mirror serving its
    /// `/{repo}/resolve/{revision}/{file}` paths.
    pub download_url: String,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        Self {
            provider: EmbeddingProvider::default(),
            model_dir: None,
            base_url: None,
            api_key: None,
            model: None,
            dimensions: None,
            download: true,
            download_url: "https://huggingface.co".into(),
        }
    }
}

/// The environment variable the issue and scripts name for the local model; an alias
/// of `embeddings.model_dir` (which wins when both are set).
pub const EMBEDDING_MODEL_DIR_ENV: &str = "KALTALK_EMBEDDING_MODEL_DIR";

impl EmbeddingsConfig {
    /// The local model's directory, and whether it was configured (`true`) or is the
    /// default under the data directory (`false`, allowed to be missing).
    pub fn local_model_dir(&self, data_dir: &Path) -> (PathBuf, bool) {
        match &self.model_dir {
            Some(dir) => (dir.clone(), true),
            None => (data_dir.join("models").join("all-MiniLM-L6-v2"), false),
        }
    }
}

/// The chat model the AI agent answers with: any OpenAI-compatible chat completions
/// endpoint. Without `base_url` the agent answers extractively (the best passage).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AiConfig {
    /// The provider's root, e.g. `https://api.openai.com` or `http://127.0.0.1:11434`
    /// (Ollama); a trailing `/v1` is accepted.
    pub base_url: Option<Url>,
    /// Sent as `Authorization: Bearer …`; local servers usually need none.
    pub api_key: Option<Secret>,
    /// The model unless an organization picks another in its AI settings.
    pub model: Option<String>,
    /// Seconds to open the connection.
    pub connect_timeout_seconds: f64,
    /// Seconds from the request to the model's first word.
    pub first_token_timeout_seconds: f64,
    /// Seconds for the whole answer.
    pub total_timeout_seconds: f64,
}

impl Default for AiConfig {
    fn default() -> Self {
        let defaults = kaltalk_ai::chat::Timeouts::default();
        Self {
            base_url: None,
            api_key: None,
            model: None,
            connect_timeout_seconds: defaults.connect.as_secs_f64(),
            first_token_timeout_seconds: defaults.first_token.as_secs_f64(),
            total_timeout_seconds: defaults.total.as_secs_f64(),
        }
    }
}

impl AiConfig {
    pub fn timeouts(&self) -> kaltalk_ai::chat::Timeouts {
        let seconds = std::time::Duration::from_secs_f64;
        kaltalk_ai::chat::Timeouts {
            connect: seconds(self.connect_timeout_seconds),
            first_token: seconds(self.first_token_timeout_seconds),
            total: seconds(self.total_timeout_seconds),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("connect_timeout_seconds", self.connect_timeout_seconds),
            (
                "first_token_timeout_seconds",
                self.first_token_timeout_seconds,
            ),
            ("total_timeout_seconds", self.total_timeout_seconds),
        ] {
            // from_secs_f64 panics on these, and a zero timeout fails every answer.
            if !(value.is_finite() && value > 0.0 && value <= 3600.0) {
                return Err(ConfigError::Invalid(format!(
                    "ai.{key} = {value} must be a number of seconds above 0 and at most 3600"
                )));
            }
        }
        if let Some(url) = &self.base_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid(format!(
                    "ai.base_url {url} must start with http:// or https://"
                )));
            }
            if self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
                return Err(ConfigError::Invalid(
                    "ai.base_url is set but ai.model is not: name the default chat model \
                     (KALTALK_AI__MODEL), e.g. gpt-4o-mini or llama3.1"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

/// Reading web pages and uploaded files into the knowledge base.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeConfig {
    /// Let the crawler fetch loopback addresses (tests; a site on this machine).
    pub allow_loopback: bool,
    /// Let the crawler fetch private-network addresses (an intranet wiki).
    pub allow_private: bool,
    /// Pages a site source reads at most.
    pub max_pages: usize,
    /// The largest file accepted as a source (bytes); larger uploads are refused.
    pub max_file_bytes: u64,
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_private: false,
            max_pages: 200,
            max_file_bytes: 20 * 1024 * 1024,
        }
    }
}

/// The WebSocket fan-out.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeConfig {
    /// Events a socket may fall behind before it catches up from the database instead
    /// (a widget socket's conversation buffers at most 64 of them).
    pub buffer: usize,
    /// Seconds between pings; a socket that misses a pong is closed.
    pub ping_seconds: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            buffer: 4096,
            ping_seconds: 20,
        }
    }
}

/// How the server learns where widget visitors are.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VisitorsConfig {
    /// Proxies whose `X-Forwarded-For` (and country header) we believe, as addresses or
    /// CIDR ranges. Empty: the socket's peer address is the visitor's.
    pub trusted_proxies: Vec<crate::visitors::Cidr>,
    /// A header a trusted proxy sets to the visitor's country (e.g. `CF-IPCountry`).
    pub country_header: Option<String>,
    /// A country database in MaxMind DB format (GeoLite2-Country, GeoIP2-Country, DB-IP's
    /// country file), read into memory at start; used when no trusted header names the
    /// country. Unset: no lookups and no memory spent.
    pub geoip_database: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// `smtp://user:pass@host:587?tls=required`; unset keeps every email in the outbox.
    pub url: Option<Secret>,
    pub from: String,
}

/// Mail for email inboxes: the SMTP listener's limits and TLS, and IMAP polling.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundEmailConfig {
    /// The name the SMTP listener greets with.
    pub hostname: String,
    /// The largest message accepted, in bytes; a larger one is refused at DATA (552).
    pub max_message_bytes: usize,
    /// The most bytes of messages all SMTP connections together hold in memory at once;
    /// past it a message is refused with 452 (try again later). At least
    /// `max_message_bytes`.
    pub max_buffered_bytes: usize,
    /// Attachments larger than this are not kept; the message says so to the agent.
    pub max_attachment_bytes: usize,
    /// The certificate STARTTLS offers; default: the `[tls]` one. Without either, the
    /// listener offers no STARTTLS.
    pub tls_cert_path: Option<PathBuf>,
    pub tls_key_path: Option<PathBuf>,
    /// Refuse mail from clients that did not STARTTLS first.
    pub require_tls: bool,
    /// Poll the IMAP mailboxes of email inboxes in this process.
    pub imap_poller: bool,
    /// Let an inbox's IMAP settings name a loopback or private-network host (a mail server
    /// on this machine or the LAN). Off: only public addresses, so inbox settings cannot
    /// be used to probe the internal network.
    pub imap_allow_private: bool,
}

impl Default for InboundEmailConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_buffered_bytes: 128 * 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
            tls_cert_path: None,
            tls_key_path: None,
            require_tls: false,
            imap_poller: true,
            imap_allow_private: false,
        }
    }
}

impl InboundEmailConfig {
    /// The certificate and key STARTTLS uses, if any.
    pub fn tls_files<'a>(&'a self, tls: Option<&'a TlsConfig>) -> Option<(&'a Path, &'a Path)> {
        match (&self.tls_cert_path, &self.tls_key_path, tls) {
            (Some(cert), Some(key), _) => Some((cert, key)),
            (None, None, Some(tls)) => Some((&tls.cert_path, &tls.key_path)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub lifetime_hours: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginLimits {
    /// Login attempts per client IP per window.
    pub per_ip: u32,
    /// Failed attempts per account per window. An IP that made this many fails for
    /// the account stays locked out of it for the window; any other IP waits only
    /// `lockout_delay_seconds` after the account's last failure, so whoever knows an
    /// address cannot lock its owner out.
    pub per_account: u32,
    pub window_seconds: i64,
    pub lockout_delay_seconds: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Workers for conversation jobs (the bot's turns, email) in this process; 0 runs
    /// none (another instance does the work).
    pub workers: usize,
    /// Workers for knowledge jobs (indexing, re-embedding), which can take minutes: kept
    /// apart so they never hold up the bot's turns.
    pub knowledge_workers: usize,
    pub lease_seconds: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            public_url: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            tls: None,
            smtp: SmtpConfig::default(),
            smtp_listen: "127.0.0.1:2525".into(),
            inbound_email: InboundEmailConfig::default(),
            sessions: SessionConfig::default(),
            login_limits: LoginLimits::default(),
            jobs: JobsConfig::default(),
            visitors: VisitorsConfig::default(),
            realtime: RealtimeConfig::default(),
            widget: WidgetConfig::default(),
            knowledge: KnowledgeConfig::default(),
            ai: AiConfig::default(),
            embeddings: EmbeddingsConfig::default(),
            api: ApiConfig::default(),
            webhooks: WebhooksConfig::default(),
            push: PushConfig::default(),
            shutdown_grace_seconds: 30,
            statement_timeout_ms: u64::try_from(kaltalk_store::DEFAULT_STATEMENT_BOUND.as_millis())
                .unwrap_or(10_000),
        }
    }
}

impl Config {
    /// The defaults with nothing a test cannot own: both listeners on port 0 (a developer's
    /// `kaltalk serve` may hold 3000 and 2525 on the same machine), the data in
    /// `data_dir`, no model download (only loopback is reachable), no IMAP poller (tests
    /// poll themselves) and private IMAP hosts allowed (the test Dovecot is on loopback).
    pub fn for_tests(data_dir: &std::path::Path) -> Self {
        let mut config = Self {
            listen: "127.0.0.1:0".into(),
            smtp_listen: "127.0.0.1:0".into(),
            data_dir: data_dir.to_path_buf(),
            ..Self::default()
        };
        config.embeddings.download = false;
        config.inbound_email.imap_poller = false;
        config.inbound_email.imap_allow_private = true;
        config
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            url: None,
            from: "KalTalk <noreply@localhost>".into(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            lifetime_hours: 24 * 14,
        }
    }
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_ip: 30,
            per_account: 5,
            window_seconds: 15 * 60,
            lockout_delay_seconds: 30,
        }
    }
}

impl JobsConfig {
    /// No worker of either lane in this process: the caller runs the jobs itself (tests,
    /// benchmarks, the evaluation), one at a time.
    pub fn run_in_caller(&mut self) {
        self.workers = 0;
        self.knowledge_workers = 0;
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            knowledge_workers: 1,
            lease_seconds: 300,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Environment variables that belong to the test harness, not to the server.
const RESERVED_ENV_PREFIX: &str = "KALTALK_TEST_";

impl Config {
    /// Loads defaults < `file` < the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let mut model_dir_alias = None;
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(key, value)| {
                // Not a nested key (it has no `__`): read apart, so it is no unknown key.
                if key == EMBEDDING_MODEL_DIR_ENV {
                    model_dir_alias = Some(PathBuf::from(value));
                    return false;
                }
                key.starts_with("KALTALK_") && !key.starts_with(RESERVED_ENV_PREFIX)
            })
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("KALTALK")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                // List-valued keys take comma-separated values from the environment.
                .list_separator(",")
                .with_list_parse_key("visitors.trusted_proxies")
                .source(Some(env)),
        );
        let mut config: Config = builder.build()?.try_deserialize()?;
        if config.embeddings.model_dir.is_none() {
            config.embeddings.model_dir = model_dir_alias;
        }
        config.validate()?;
        Ok(config)
    }

    /// The VAPID `sub`: `push.contact`, else `mailto:` the `smtp.from` address.
    pub fn push_contact(&self) -> String {
        if let Some(contact) = &self.push.contact {
            return contact.clone();
        }
        let from = self.smtp.from.trim();
        let address = match (from.rfind('<'), from.rfind('>')) {
            (Some(open), Some(close)) if open < close => &from[open + 1..close],
            _ => from,
        };
        format!("mailto:{}", address.trim())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|_| {
            ConfigError::Invalid(format!(
                "listen = {:?} is not host:port (e.g. 127.0.0.1:3000)",
                self.listen
            ))
        })?;
        if let Some(url) = self
            .public_url
            .as_ref()
            .filter(|u| !matches!(u.scheme(), "http" | "https"))
        {
            return Err(ConfigError::Invalid(format!(
                "public_url {url} must start with http:// or https://"
            )));
        }
        if !self.smtp_listen.is_empty() && self.smtp_listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "smtp_listen = {:?} is not host:port (e.g. 127.0.0.1:2525), nor empty to turn the SMTP listener off",
                self.smtp_listen
            )));
        }
        if self.inbound_email.tls_cert_path.is_some() != self.inbound_email.tls_key_path.is_some() {
            return Err(ConfigError::Invalid(
                "inbound_email.tls_cert_path and inbound_email.tls_key_path go together: set both or neither".into(),
            ));
        }
        if self.inbound_email.max_message_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "inbound_email.max_message_bytes must be at least 1024 (26214400 is 25 MB)".into(),
            ));
        }
        if self.inbound_email.max_buffered_bytes < self.inbound_email.max_message_bytes {
            return Err(ConfigError::Invalid(format!(
                "inbound_email.max_buffered_bytes ({}) must be at least inbound_email.max_message_bytes ({}), \
                 or no message of the largest size could ever be received",
                self.inbound_email.max_buffered_bytes, self.inbound_email.max_message_bytes
            )));
        }
        if let Some(contact) = self
            .push
            .contact
            .as_deref()
            .filter(|c| !(c.starts_with("mailto:") || c.starts_with("https://")))
        {
            return Err(ConfigError::Invalid(format!(
                "push.contact = {contact:?} must be a mailto: or https:// address (e.g. mailto:ops@example.com): push services write there about our pushes"
            )));
        }
        let apns = [
            ("push.apns_key_path", self.push.apns_key_path.is_some()),
            ("push.apns_key_id", self.push.apns_key_id.is_some()),
            ("push.apns_team_id", self.push.apns_team_id.is_some()),
            ("push.apns_topic", self.push.apns_topic.is_some()),
        ];
        if apns.iter().any(|(_, set)| *set) && !apns.iter().all(|(_, set)| *set) {
            let missing: Vec<&str> = apns
                .iter()
                .filter_map(|(key, set)| (!set).then_some(*key))
                .collect();
            return Err(ConfigError::Invalid(format!(
                "APNs needs all of push.apns_key_path, apns_key_id, apns_team_id and apns_topic; missing: {}",
                missing.join(", ")
            )));
        }
        self.ai.validate()?;
        if self.embeddings.provider == EmbeddingProvider::Openai {
            let missing: Vec<&str> = [
                ("embeddings.base_url", self.embeddings.base_url.is_none()),
                ("embeddings.model", self.embeddings.model.is_none()),
            ]
            .into_iter()
            .filter_map(|(key, missing)| missing.then_some(key))
            .collect();
            if !missing.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "embeddings.provider = \"openai\" needs {}",
                    missing.join(" and ")
                )));
            }
        }
        if self.sessions.lifetime_hours < 1 {
            return Err(ConfigError::Invalid(
                "sessions.lifetime_hours must be at least 1".into(),
            ));
        }
        if self.api.rate_limit_per_minute == 0 {
            return Err(ConfigError::Invalid(
                "api.rate_limit_per_minute must be at least 1 (600 is the default)".into(),
            ));
        }
        let widget = &self.widget;
        for (key, value) in [
            (
                "widget.sessions_per_ip_per_minute",
                widget.sessions_per_ip_per_minute,
            ),
            (
                "widget.messages_per_session_per_minute",
                widget.messages_per_session_per_minute,
            ),
            (
                "widget.bot_turns_per_ip_per_hour",
                widget.bot_turns_per_ip_per_hour,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        if self.knowledge.max_file_bytes == 0 {
            // Zero would refuse every upload with a message that blames the file.
            return Err(ConfigError::Invalid(
                "knowledge.max_file_bytes must be at least 1 (20971520 is 20 MB)".into(),
            ));
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("kaltalk.db").display()),
        }
    }

    /// The public base URL without a trailing slash, given the address actually bound.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{bound}")
            }
        }
    }

    /// A documented example file (`kaltalk config example`).
    pub fn example() -> &'static str {
        include_str!("../config.example.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::load_from(None, env(&[])).expect("defaults");
        assert_eq!(config.listen, "127.0.0.1:3000");
        assert_eq!(config.database_url(), "sqlite://./data/kaltalk.db");
        assert!(config.smtp.url.is_none());
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("k.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:8080\"\ndata_dir = \"/srv/k\"\n[smtp]\nfrom = \"Help <help@acme.test>\"\n").expect("write");
        let config = Config::load_from(
            Some(&file),
            env(&[
                ("KALTALK_LISTEN", "127.0.0.1:9999"),
                ("KALTALK_SMTP__URL", "smtp://u:p@mail:25"),
                ("KALTALK_TEST_DATABASE_URL", "ignored"),
            ]),
        )
        .expect("layered");
        assert_eq!(config.listen, "127.0.0.1:9999");
        assert_eq!(config.data_dir, PathBuf::from("/srv/k"));
        assert_eq!(config.smtp.from, "Help <help@acme.test>");
        assert_eq!(
            config.smtp.url.as_ref().map(Secret::expose),
            Some("smtp://u:p@mail:25")
        );
    }

    #[test]
    fn lists_come_from_comma_separated_environment_values() {
        let config = Config::load_from(
            None,
            env(&[("KALTALK_VISITORS__TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]),
        )
        .expect("list");
        assert_eq!(config.visitors.trusted_proxies.len(), 2);
        assert!(config.visitors.trusted_proxies[0].contains("10.1.2.3".parse().expect("ip")));
    }

    #[test]
    fn the_chat_model_comes_from_the_environment_and_needs_a_model_name() {
        let config = Config::load_from(
            None,
            env(&[
                ("KALTALK_AI__BASE_URL", "http://127.0.0.1:11434/v1"),
                ("KALTALK_AI__API_KEY", "sk-hunter2"),
                ("KALTALK_AI__MODEL", "llama3.1"),
                ("KALTALK_AI__TOTAL_TIMEOUT_SECONDS", "2.5"),
            ]),
        )
        .expect("ai section");
        assert_eq!(config.ai.model.as_deref(), Some("llama3.1"));
        assert_eq!(
            config.ai.timeouts().total,
            std::time::Duration::from_millis(2500)
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = Config::load_from(None, env(&[("KALTALK_AI__BASE_URL", "http://x.test")]))
            .expect_err("no model");
        assert!(err.to_string().contains("ai.model"), "{err}");
        let err = Config::load_from(
            None,
            env(&[("KALTALK_AI__FIRST_TOKEN_TIMEOUT_SECONDS", "0")]),
        )
        .expect_err("zero timeout");
        assert!(
            err.to_string().contains("first_token_timeout_seconds"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err =
            Config::load_from(None, env(&[("KALTALK_LISTNE", "127.0.0.1:1")])).expect_err("typo");
        assert!(err.to_string().contains("listne"), "{err}");
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("k.toml");
        std::fs::write(&file, "[smtp]\nhost = \"x\"\n").expect("write");
        assert!(Config::load_from(Some(&file), env(&[])).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = Config::load_from(
            None,
            env(&[("KALTALK_DATABASE_URL", "postgres://u:hunter2@db/k")]),
        )
        .expect("ok");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn apns_needs_all_four_settings_or_none() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("partial.toml");
        std::fs::write(&file, "[push]\napns_key_id = \"ABC123DEFG\"\n").expect("write");
        let err = Config::load_from(Some(&file), env(&[])).expect_err("partial APNs");
        assert!(err.to_string().contains("apns_team_id"), "{err}");
    }

    #[test]
    fn the_example_file_parses() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("example.toml");
        std::fs::write(&file, Config::example()).expect("write");
        Config::load_from(Some(&file), env(&[])).expect("example parses");
    }

    #[test]
    fn the_file_cap_comes_from_the_environment_and_is_not_zero() {
        let config = Config::load_from(
            None,
            env(&[("KALTALK_KNOWLEDGE__MAX_FILE_BYTES", "1048576")]),
        )
        .expect("a cap");
        assert_eq!(config.knowledge.max_file_bytes, 1024 * 1024);
        let zero = Config::load_from(None, env(&[("KALTALK_KNOWLEDGE__MAX_FILE_BYTES", "0")]))
            .expect_err("zero refuses everything");
        assert!(
            zero.to_string().contains("knowledge.max_file_bytes"),
            "{zero}"
        );
    }

    #[test]
    fn the_smtp_memory_budget_must_hold_the_largest_message() {
        let config = Config::load_from(
            None,
            env(&[("KALTALK_INBOUND_EMAIL__MAX_BUFFERED_BYTES", "67108864")]),
        )
        .expect("a budget");
        assert_eq!(config.inbound_email.max_buffered_bytes, 64 * 1024 * 1024);
        let small = Config::load_from(
            None,
            env(&[
                ("KALTALK_INBOUND_EMAIL__MAX_MESSAGE_BYTES", "2048"),
                ("KALTALK_INBOUND_EMAIL__MAX_BUFFERED_BYTES", "1024"),
            ]),
        )
        .expect_err("smaller than one message");
        assert!(
            small
                .to_string()
                .contains("inbound_email.max_buffered_bytes (1024)"),
            "{small}"
        );
    }

    #[test]
    fn the_country_database_can_come_from_the_environment() {
        let config = Config::load_from(
            None,
            env(&[(
                "KALTALK_VISITORS__GEOIP_DATABASE",
                "/var/lib/geoip/GeoLite2-Country.mmdb",
            )]),
        )
        .expect("ok");
        assert_eq!(
            config.visitors.geoip_database,
            Some(PathBuf::from("/var/lib/geoip/GeoLite2-Country.mmdb"))
        );
        assert!(Config::default().visitors.geoip_database.is_none());
    }

    #[test]
    fn the_model_download_is_on_by_default_and_can_be_switched_off_or_mirrored() {
        let config = Config::default();
        assert!(config.embeddings.download);
        assert_eq!(config.embeddings.download_url, "https://huggingface.co");
        let config = Config::load_from(
            None,
            env(&[
                ("KALTALK_EMBEDDINGS__DOWNLOAD", "false"),
                (
                    "KALTALK_EMBEDDINGS__DOWNLOAD_URL",
                    "https://hf-mirror.example",
                ),
            ]),
        )
        .expect("ok");
        assert!(!config.embeddings.download);
        assert_eq!(config.embeddings.download_url, "https://hf-mirror.example");
    }

    #[test]
    fn embeddings_come_from_their_section_and_the_model_dir_alias() {
        let config = Config::load_from(
            None,
            env(&[
                ("KALTALK_EMBEDDING_MODEL_DIR", "/opt/models/minilm"),
                ("KALTALK_DATA_DIR", "/srv/k"),
            ]),
        )
        .expect("alias is no unknown key");
        assert_eq!(config.embeddings.provider, EmbeddingProvider::Local);
        assert_eq!(
            config.embeddings.local_model_dir(&config.data_dir),
            (PathBuf::from("/opt/models/minilm"), true)
        );
        let config = Config::load_from(None, env(&[("KALTALK_DATA_DIR", "/srv/k")])).expect("ok");
        assert_eq!(
            config.embeddings.local_model_dir(&config.data_dir),
            (PathBuf::from("/srv/k/models/all-MiniLM-L6-v2"), false)
        );

        let config = Config::load_from(
            None,
            env(&[
                ("KALTALK_EMBEDDINGS__PROVIDER", "openai"),
                ("KALTALK_EMBEDDINGS__BASE_URL", "https://api.openai.com/v1"),
                ("KALTALK_EMBEDDINGS__MODEL", "text-embedding-3-small"),
                ("KALTALK_EMBEDDINGS__API_KEY", "sk-secret"),
            ]),
        )
        .expect("remote");
        assert_eq!(config.embeddings.provider, EmbeddingProvider::Openai);
        assert!(!format!("{config:?}").contains("sk-secret"));

        let err = Config::load_from(None, env(&[("KALTALK_EMBEDDINGS__PROVIDER", "openai")]))
            .expect_err("incomplete");
        assert!(
            err.to_string()
                .contains("embeddings.base_url and embeddings.model"),
            "{err}"
        );
    }

    #[test]
    fn bad_listen_address_is_explained() {
        let err =
            Config::load_from(None, env(&[("KALTALK_LISTEN", "localhost")])).expect_err("bad");
        assert!(err.to_string().contains("host:port"), "{err}");
    }
}
