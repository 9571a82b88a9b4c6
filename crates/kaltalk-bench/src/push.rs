//! Web Push under load: from the bot's handover to the push reaching the browser's push
//! service, and pushes per second sustained. The server runs in this process as `kaltalk
//! serve` runs it (its notifier polling the event log every second, its job workers
//! sending), against the loopback push service of the tests
//! (`crates/kaltalk-server/tests/peers/push_service.py`), which checks every push's VAPID
//! signature and decrypts its payload, as a browser's push service and browser would.
//!
//! Every member of the organization has one subscribed browser; a handover in an
//! organization without teams tells every member, so each handover is `--members` pushes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use kaltalk_core::chat::{AiSettings, InboxKind, VisitorDetails, WidgetSettings};
use kaltalk_core::{EmailAddress, MessageText, OrgName, PersonName, Role, SystemClock};
use kaltalk_server::{Config, Kaltalk};
use kaltalk_store::NewUser;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::inboxes::{Inbox, NewInbox};
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use serde::Serialize;
use serde_json::Value;

use crate::report::Latency;
use crate::server::PgDatabase;

#[derive(Args)]
pub struct PushArgs {
    /// Run on PostgreSQL: a fresh database is created on this server and dropped after.
    /// Without it the server uses SQLite in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Members, each with one subscribed browser: every handover pushes to each.
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Handovers at a steady rate, for the latency.
    #[arg(long, default_value_t = 100)]
    handovers: usize,
    /// Their rate, per second.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Then this many handovers at once, for the throughput.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// Print the report as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct PushReport {
    backend: &'static str,
    members: usize,
    /// From the handover (the store's write returning) to the push service receiving the
    /// push, at the steady rate.
    handover_to_push_ms: Latency,
    steady_pushes: usize,
    burst_handovers: usize,
    burst_pushes: usize,
    /// Burst pushes over the time from the first handover to the last push received.
    pushes_per_second: f64,
    /// Pushes the service found anything wrong with (signature, headers, decryption).
    problems: usize,
}

pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    if args.members == 0 || args.handovers == 0 || args.rate <= 0.0 {
        bail!("--members, --handovers and --rate must be positive");
    }
    let database = match &args.database_url {
        Some(url) => Some(PgDatabase::create(url).await?),
        None => None,
    };
    let outcome = measure(&args, database.as_ref()).await;
    if let Some(database) = database {
        database.drop_database().await?;
    }
    let report = outcome?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let l = &report.handover_to_push_ms;
        println!(
            "push ({backend}, {members} browsers): handover to push p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms, max {max:.1} ms over {steady} pushes; \
             burst of {burst} handovers: {pushes} pushes at {rate:.0}/s; {problems} with problems",
            backend = report.backend,
            members = report.members,
            p50 = l.p50,
            p95 = l.p95,
            p99 = l.p99,
            max = l.max,
            steady = report.steady_pushes,
            burst = report.burst_handovers,
            pushes = report.burst_pushes,
            rate = report.pushes_per_second,
            problems = report.problems,
        );
    }
    Ok(())
}

async fn measure(args: &PushArgs, database: Option<&PgDatabase>) -> anyhow::Result<PushReport> {
    let service = PushService::start()?;
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.smtp_listen = String::new();
    config.push.allow_loopback = true;
    config.push.contact = Some("mailto:bench@bench.test".into());
    config.database_url = database.map(|db| kaltalk_server::config::Secret::new(db.url.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Kaltalk::new(listener, config, Arc::new(SystemClock)).await?;
    let state = server.state.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));

    let store = &state.store;
    let now = state.now();
    let person = |n: usize| -> anyhow::Result<NewUser> {
        Ok(NewUser {
            name: PersonName::parse("name", &format!("Agent {n}")).map_err(|e| anyhow!("{e:?}"))?,
            email: EmailAddress::parse("email", &format!("agent{n}@bench.test"))
                .map_err(|e| anyhow!("{e:?}"))?,
            password_hash: String::new(),
            email_verified: true,
        })
    };
    let org_name = OrgName::parse("org_name", "Bench").map_err(|e| anyhow!("{e:?}"))?;
    let (owner, org) = store.sign_up(&person(0)?, &org_name, None, now).await?;
    let mut members = vec![owner];
    for n in 1..args.members {
        members.push(
            store
                .create_member_user(&person(n)?, org.id, Role::Agent, now)
                .await?,
        );
    }
    for member in &members {
        let subscription = service.subscription().await?;
        store
            .save_push_subscription(
                org.id,
                *member,
                subscription["endpoint"].as_str().context("endpoint")?,
                subscription["keys"]["p256dh"].as_str().context("p256dh")?,
                subscription["keys"]["auth"].as_str().context("auth")?,
                now,
            )
            .await?;
    }
    let ai = AiSettings {
        enabled: true,
        ..AiSettings::default()
    };
    store.save_ai_settings(org.id, &ai, now).await?;
    let inbox = store
        .create_inbox(
            &NewInbox {
                org_id: org.id,
                kind: InboxKind::Web,
                name: "Bench".into(),
                public_token: "bench-inbox".into(),
                identity_secret: "bench-secret".into(),
                settings: WidgetSettings::default(),
                email: None,
            },
            now,
        )
        .await?;

    // Steady: one handover every 1/rate s; each its time, by conversation.
    let mut handed_over: HashMap<String, DateTime<Utc>> = HashMap::new();
    let every = Duration::from_secs_f64(1.0 / args.rate);
    let mut tick = tokio::time::interval(every);
    for n in 0..args.handovers {
        tick.tick().await;
        let (conversation, at) = hand_over(&state, &inbox, n).await?;
        handed_over.insert(conversation, at);
    }
    let steady_pushes = args.handovers * args.members;
    let steady = service
        .wait_for(steady_pushes, Duration::from_secs(120))
        .await?;

    // Burst: all at once, as fast as the store takes them.
    let burst_started = Utc::now();
    for n in 0..args.burst {
        let (conversation, at) = hand_over(&state, &inbox, args.handovers + n).await?;
        handed_over.insert(conversation, at);
    }
    let burst_pushes = args.burst * args.members;
    let all = service
        .wait_for(steady_pushes + burst_pushes, Duration::from_secs(600))
        .await?;

    let _ = stop.send(());
    serving.await??;

    let mut micros = Vec::with_capacity(steady_pushes);
    for push in &steady {
        let conversation = conversation_of(push)?;
        let handover = handed_over
            .get(&conversation)
            .context("a push about a conversation not handed over")?;
        let received = received_at(push)?;
        micros.push(
            u64::try_from((received - *handover).num_microseconds().unwrap_or(0)).unwrap_or(0),
        );
    }
    let last = all[steady_pushes..]
        .iter()
        .map(received_at)
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .max()
        .context("no burst push")?;
    let seconds = (last - burst_started).num_milliseconds() as f64 / 1000.0;
    let problems = all
        .iter()
        .filter(|p| p["problems"].as_array().is_some_and(|a| !a.is_empty()))
        .count();
    Ok(PushReport {
        backend: if database.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        members: args.members,
        handover_to_push_ms: Latency::from_micros(&mut micros).context("no push measured")?,
        steady_pushes,
        burst_handovers: args.burst,
        burst_pushes,
        pushes_per_second: burst_pushes as f64 / seconds.max(0.001),
        problems,
    })
}

/// A visitor's question the bot takes, then its handover; returns the conversation and
/// when the handover was written.
async fn hand_over(
    state: &kaltalk_server::AppState,
    inbox: &Inbox,
    n: usize,
) -> anyhow::Result<(String, DateTime<Utc>)> {
    let token = format!("bench-visitor-{n}");
    let stored = state
        .store
        .take_in(
            CustomerMessage {
                inbox,
                from: Customer::Visitor {
                    session: SessionChoice::New { token_hash: &token },
                    details: &VisitorDetails::default(),
                    fields: &ContactFields::default(),
                },
                thread: Thread::Latest,
                text: &MessageText::parse("text", "Where is my parcel?")?,
                attachments: &[],
                client_id: None,
                wants_a_person: false,
                email: None,
            },
            state.now(),
        )
        .await?
        .value;
    let conversation = stored.conversation.id;
    let written = state
        .store
        .escalate(
            inbox.org_id,
            conversation,
            "the visitor asked for a person.",
            state.now(),
        )
        .await?;
    // As the bot's handover does: its dashboards (and the notifier) hear of it at once.
    state.hub.publish_events(written.events);
    Ok((conversation.to_string(), Utc::now()))
}

fn conversation_of(push: &Value) -> anyhow::Result<String> {
    push["payload"]["tag"]
        .as_str()
        .and_then(|tag| tag.strip_prefix("conversation-"))
        .map(str::to_owned)
        .context("a push without its conversation's tag")
}

fn received_at(push: &Value) -> anyhow::Result<DateTime<Utc>> {
    let seconds = push["at"].as_f64().context("a push without its time")?;
    DateTime::from_timestamp_micros((seconds * 1e6) as i64).context("a push time out of range")
}

/// The loopback push service, in the venv `scripts/push-venv.sh` makes.
struct PushService {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl PushService {
    fn start() -> anyhow::Result<Self> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let made = Command::new("bash")
            .arg(root.join("scripts/push-venv.sh"))
            .stderr(Stdio::inherit())
            .output()
            .context("running scripts/push-venv.sh")?;
        if !made.status.success() {
            bail!("scripts/push-venv.sh could not make the push service's venv");
        }
        let python = String::from_utf8(made.stdout)?.trim().to_owned();
        let mut child = Command::new(python)
            .arg(root.join("crates/kaltalk-server/tests/peers/push_service.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the push service")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("its stdout")?).read_line(&mut line)?;
        let hello: Value = serde_json::from_str(&line)?;
        Ok(Self {
            child,
            url: hello["url"].as_str().context("its url")?.to_owned(),
            http: reqwest::Client::new(),
        })
    }

    async fn subscription(&self) -> anyhow::Result<Value> {
        Ok(self
            .http
            .post(format!("{}/subscriptions", self.url))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Waits until `count` pushes arrived; returns them in the order received.
    async fn wait_for(&self, count: usize, limit: Duration) -> anyhow::Result<Vec<Value>> {
        let started = Instant::now();
        loop {
            let received: Vec<Value> = self
                .http
                .get(format!("{}/received", self.url))
                .send()
                .await?
                .json()
                .await?;
            if received.len() >= count {
                return Ok(received);
            }
            if started.elapsed() > limit {
                bail!("{} of {count} pushes arrived in {limit:?}", received.len());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
