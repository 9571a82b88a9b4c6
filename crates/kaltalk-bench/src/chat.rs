//! `kaltalk-bench chat`: N visitors with their widget sockets open and M agents on the
//! live inbox; visitors write at a steady rate and the agents' sockets time each message
//! from its POST to its first arrival.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::report::{ChatReport, Latency, Rss};
use crate::server::{Fixture, Server, cpu_seconds};

const PASSWORD: &str = "bench password 1234";
const SESSION_COOKIE: &str = "kaltalk_session";
/// The `client_id` of a measured message is this prefix and its sequence number.
const CLIENT_ID_PREFIX: &str = "bench-";
/// How long to wait after the load for answers still under way.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait after that for accepted messages to reach the agents.
const DELIVERY_GRACE: Duration = Duration::from_secs(5);
/// Most POSTs in flight during the load; past that the ticker waits (and the achieved
/// rate drops below the asked one, which the report shows).
const MAX_IN_FLIGHT: usize = 4096;
/// File descriptors beyond one per socket and POST in flight: the runtime, the files.
const FD_MARGIN: u64 = 1024;
/// Setup progress goes to standard error every this many visitors.
const SETUP_PROGRESS_EVERY: usize = 1000;

#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The `kaltalk` binary to start (build it with --release for figures).
    #[arg(long)]
    server_bin: PathBuf,
    /// Run on PostgreSQL: a fresh database is created on this server and dropped after.
    /// Without it the server uses SQLite in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Widget sockets (visitors) to open.
    #[arg(long, default_value_t = 100)]
    widgets: usize,
    /// Agent sockets (each agent a user of its own) on the live inbox.
    #[arg(long, default_value_t = 1)]
    agents: usize,
    /// Visitor messages per second, overall.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before the measured window (not counted).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Visitors set up at once.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    /// Print the report as one JSON line.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    if args.widgets == 0 || args.agents == 0 {
        bail!("--widgets and --agents must be at least 1");
    }
    if !(args.rate > 0.0 && args.rate.is_finite()) || args.duration == 0 {
        bail!("--rate and --duration must be positive");
    }
    // Before the server starts: it inherits the limit.
    raise_fd_limit(args.widgets as u64 + args.agents as u64 + MAX_IN_FLIGHT as u64 + FD_MARGIN)?;
    let fixture = Fixture::prepare(&args.server_bin, args.database_url.as_deref()).await?;
    let outcome = drive(&fixture, &args).await;
    let cleaned = fixture.cleanup().await;
    let report = outcome?;
    cleaned?;
    if args.json {
        println!("{}", report.to_json_line());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// Raises the soft open-files limit to what the run needs (up to the hard limit).
fn raise_fd_limit(needed: u64) -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft >= needed {
        return Ok(());
    }
    // Root may raise the hard limit too; others get the hard limit at most.
    let target = if setrlimit(Resource::RLIMIT_NOFILE, needed, needed.max(hard)).is_ok() {
        needed
    } else {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising RLIMIT_NOFILE")?;
        hard
    };
    if target < needed {
        bail!(
            "this run needs about {needed} open files and the hard limit is {hard}: \
             raise it (ulimit -Hn) or ask for fewer widgets"
        );
    }
    Ok(())
}

/// Microseconds since the run began, never 0 (0 means "not yet").
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64 + 1
    }
}

/// Per measured-or-warm-up message, written by the sender and the agent sockets.
struct Tracker {
    clock: Clock,
    sent_us: Vec<AtomicU64>,
    answered_us: Vec<AtomicU64>,
    /// HTTP status of the POST; 0 when it got no answer.
    status: Vec<AtomicU16>,
    first_seen_us: Vec<AtomicU64>,
    /// How many agent sockets received it.
    seen_by: Vec<AtomicU8>,
}

impl Tracker {
    fn new(clock: Clock, messages: usize) -> Self {
        let zeros = || (0..messages).map(|_| AtomicU64::new(0)).collect();
        Self {
            clock,
            sent_us: zeros(),
            answered_us: zeros(),
            status: (0..messages).map(|_| AtomicU16::new(0)).collect(),
            first_seen_us: zeros(),
            seen_by: (0..messages).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// An agent socket received message `seq`.
    fn seen(&self, seq: usize) {
        let Some(first) = self.first_seen_us.get(seq) else {
            return;
        };
        let now = self.clock.now_us();
        let _ = first.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        self.seen_by[seq].fetch_add(1, Ordering::AcqRel);
    }
}

struct Visitor {
    token: String,
}

async fn drive(fixture: &Fixture, args: &ChatArgs) -> anyhow::Result<ChatReport> {
    let agents = create_agents(fixture, args.agents).await?;
    let inbox = fixture
        .cli(
            &[
                "admin",
                "create-inbox",
                "--org-id",
                &agents.org_id,
                "--name",
                "Bench",
            ],
            "",
        )
        .await?;
    let inbox_token = inbox
        .get("embed_token")
        .context("create-inbox printed no embed_token")?
        .clone();

    let server = fixture.serve().await?;
    let result = load(
        &server,
        fixture.backend(),
        &agents.emails,
        &inbox_token,
        args,
    )
    .await;
    let warnings = server.log.warnings.load(Ordering::Relaxed);
    let errors = server.log.errors.load(Ordering::Relaxed);
    if warnings + errors > 0 {
        eprintln!("the server logged {errors} errors and {warnings} warnings; the first:");
        for line in server.log.kept().await {
            eprintln!("  {line}");
        }
    }
    server.stop().await?;
    result
}

struct Agents {
    org_id: String,
    emails: Vec<String>,
}

/// The first agent owns a new organization; the others join it.
async fn create_agents(fixture: &Fixture, count: usize) -> anyhow::Result<Agents> {
    let mut emails = Vec::with_capacity(count);
    let mut org_id = String::new();
    for n in 0..count {
        let email = format!("agent{n}@bench.example");
        let name = format!("Agent {n}");
        let mut args = vec![
            "admin",
            "create-user",
            "--email",
            &email,
            "--name",
            &name,
            "--password-stdin",
        ];
        if n == 0 {
            args.extend(["--org", "Bench"]);
        } else {
            args.extend(["--org-id", &org_id, "--role", "agent"]);
        }
        let values = fixture.cli(&args, PASSWORD).await?;
        if n == 0 {
            org_id = values
                .get("org_id")
                .context("create-user printed no org_id")?
                .clone();
        }
        emails.push(email);
    }
    Ok(Agents { org_id, emails })
}

async fn load(
    server: &Server,
    backend: &str,
    agent_emails: &[String],
    inbox_token: &str,
    args: &ChatArgs,
) -> anyhow::Result<ChatReport> {
    let rss_idle = server.rss_mib();
    let base = server.base_url.clone();
    let ws_base = base.replacen("http://", "ws://", 1);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let warmup_n = (args.rate * args.warmup as f64).ceil() as usize;
    let measured_n = (args.rate * args.duration as f64).ceil() as usize;
    let clock = Clock(Instant::now());
    let tracker = Arc::new(Tracker::new(clock, warmup_n + measured_n));

    // Agents first, so they are there when visitors write.
    let mut sockets = JoinSet::new();
    for email in agent_emails {
        let cookie = log_in(&http, &base, email).await?;
        let mut request = format!("{ws_base}/inbox/ws").into_client_request()?;
        let headers = request.headers_mut();
        headers.insert("cookie", HeaderValue::from_str(&cookie)?);
        headers.insert("origin", HeaderValue::from_str(&base)?);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .with_context(|| format!("opening the inbox socket of {email}"))?;
        sockets.spawn(agent_socket(socket, tracker.clone()));
    }

    // Visitors: a first message each (which makes the conversation), then the socket.
    let widget_frames = Arc::new(AtomicU64::new(0));
    let setup_started = Instant::now();
    let post_url = format!("{base}/widget/v1/inboxes/{inbox_token}/messages");
    let mut results = stream::iter(0..args.widgets)
        .map(|n| {
            let (http, post_url, ws_base) = (http.clone(), post_url.clone(), ws_base.clone());
            async move { open_visitor(&http, &post_url, &ws_base, n).await }
        })
        .buffer_unordered(args.setup_concurrency.max(1));
    let mut visitors = Vec::with_capacity(args.widgets);
    let mut setup_errors = 0usize;
    let mut first_error = None;
    while let Some(result) = results.next().await {
        match result {
            Ok((visitor, socket)) => {
                sockets.spawn(widget_socket(socket, widget_frames.clone()));
                visitors.push(visitor);
                if visitors.len() % SETUP_PROGRESS_EVERY == 0 {
                    eprintln!(
                        "setup: {} of {} visitors in {:.1} s",
                        visitors.len(),
                        args.widgets,
                        setup_started.elapsed().as_secs_f64()
                    );
                }
            }
            Err(err) => {
                setup_errors += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    drop(results);
    let setup_s = setup_started.elapsed().as_secs_f64();
    if let Some(err) = first_error {
        eprintln!(
            "{setup_errors} of {} visitors could not be set up; the first error: {err:#}",
            args.widgets
        );
    }
    if visitors.is_empty() {
        bail!("no visitor could be set up");
    }
    let rss_after_setup = server.rss_mib();

    // The load: one message per tick, from a random visitor.
    let visitors = Arc::new(visitors);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut posts = JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut rng = StdRng::from_os_rng();
    let mut measured_started = Instant::now();
    let mut measured_started_us = clock.now_us();
    let (mut server_cpu0, mut loader_cpu0) = (server.cpu_seconds(), own_cpu_seconds());
    // A server that cannot keep up must not stretch the run: past the planned end (and a
    // second of grace) the ticker stops, and what it did not send is reported as unsent.
    let load_deadline = tokio::time::Instant::now()
        + Duration::from_secs(args.warmup + args.duration)
        + Duration::from_secs(1);
    for seq in 0..warmup_n + measured_n {
        ticker.tick().await;
        if tokio::time::Instant::now() >= load_deadline {
            eprintln!(
                "the planned load time is over with {} of {} messages sent: stopping",
                seq,
                warmup_n + measured_n
            );
            break;
        }
        if seq == warmup_n {
            measured_started = Instant::now();
            measured_started_us = clock.now_us();
            server_cpu0 = server.cpu_seconds();
            loader_cpu0 = own_cpu_seconds();
        }
        let Ok(permit) =
            tokio::time::timeout_at(load_deadline, in_flight.clone().acquire_owned()).await
        else {
            eprintln!("{MAX_IN_FLIGHT} messages still in flight at the planned end: stopping");
            break;
        };
        let permit = permit?;
        let visitor = rng.random_range(0..visitors.len());
        let (http, url, visitors, tracker) = (
            http.clone(),
            post_url.clone(),
            visitors.clone(),
            tracker.clone(),
        );
        posts.spawn(async move {
            post_message(&http, &url, &visitors[visitor], &tracker, seq).await;
            drop(permit);
        });
        // Reap finished tasks as we go, so the set stays small.
        while posts.try_join_next().is_some() {}
    }
    // n ticks span n - 1 intervals; the window is n intervals long.
    let sending_s = measured_started.elapsed().as_secs_f64() + 1.0 / args.rate;
    let server_cpu = server.cpu_seconds() - server_cpu0;
    let loader_cpu = own_cpu_seconds() - loader_cpu0;
    let load_average = load_average();

    // Let answers under way arrive; what has none by then counts as unanswered.
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while tokio::time::timeout_at(drain_deadline.into(), posts.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    posts.abort_all();
    // Then give every accepted message its own time to reach the agents: a busy server
    // may answer the POST before the agents' sockets get their turn.
    let delivery_deadline = Instant::now() + DELIVERY_GRACE;
    while Instant::now() < delivery_deadline && !all_seen(&tracker, agent_emails.len()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_after = server.rss_mib();
    let rss_peak = server.peak_rss_mib();
    sockets.abort_all();

    // Figures over the measured window only.
    let measured = warmup_n..warmup_n + measured_n;
    let (mut accepted, mut errors, mut delivered, mut lost, mut partial) = (0u64, 0, 0, 0, 0);
    let mut errors_by_status = BTreeMap::new();
    let mut latencies = Vec::with_capacity(measured_n);
    let mut post_times = Vec::with_capacity(measured_n);
    let mut last_answer_us = 0;
    for seq in measured {
        let sent = tracker.sent_us[seq].load(Ordering::Acquire);
        let answered = tracker.answered_us[seq].load(Ordering::Acquire);
        match tracker.status[seq].load(Ordering::Acquire) {
            201 => {}
            status => {
                errors += 1;
                let key = match (sent, status) {
                    (0, _) => "unsent".to_owned(),
                    (_, 0) => "none".to_owned(),
                    (_, status) => status.to_string(),
                };
                *errors_by_status.entry(key).or_insert(0) += 1;
                continue;
            }
        }
        accepted += 1;
        last_answer_us = last_answer_us.max(answered);
        post_times.push(answered.saturating_sub(sent));
        match tracker.first_seen_us[seq].load(Ordering::Acquire) {
            0 => lost += 1,
            seen => {
                delivered += 1;
                latencies.push(seen.saturating_sub(sent));
                if usize::from(tracker.seen_by[seq].load(Ordering::Acquire)) < agent_emails.len() {
                    partial += 1;
                }
            }
        }
    }
    // The window ends when the last measured message was accepted, if that was later.
    let window_s = sending_s.max(last_answer_us.saturating_sub(measured_started_us) as f64 / 1e6);
    Ok(ChatReport {
        backend: backend.to_owned(),
        widgets_asked: args.widgets,
        widgets: visitors.len(),
        agents: agent_emails.len(),
        rate_asked: args.rate,
        rate_achieved: accepted as f64 / window_s.max(f64::EPSILON),
        duration_s: args.duration as f64,
        warmup_s: args.warmup as f64,
        sent: measured_n as u64,
        errors,
        errors_by_status,
        delivered,
        lost,
        partial,
        latency_ms: Latency::from_micros(&mut latencies),
        post_ms: Latency::from_micros(&mut post_times),
        setup_s,
        rss_mib: Rss {
            idle: rss_idle,
            after_setup: rss_after_setup,
            peak: rss_peak,
            after: rss_after,
        },
        server_cpu_pct: server_cpu / sending_s * 100.0,
        loader_cpu_pct: loader_cpu / sending_s * 100.0,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        load_average,
    })
}

/// The 1-minute load average: the machine is shared, and this says how busy it was.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn own_cpu_seconds() -> f64 {
    cpu_seconds("/proc/self/stat").unwrap_or(0.0)
}

/// Every accepted message reached every agent socket.
fn all_seen(tracker: &Tracker, agents: usize) -> bool {
    (0..tracker.status.len()).all(|seq| {
        tracker.status[seq].load(Ordering::Acquire) != 201
            || usize::from(tracker.seen_by[seq].load(Ordering::Acquire)) >= agents
    })
}

/// Signs an agent in and returns the `Cookie` header value of its session.
async fn log_in(http: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/login"))
        .form(&[("email", email), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .context("POST /login")?;
    let status = response.status();
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{SESSION_COOKIE}=")))
        .map(str::to_owned)
        .with_context(|| format!("logging in {email}: {status} without a session cookie"))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Creates a visitor with a first message and opens its widget socket.
/// The page the simulated visitors chat from (the widget API requires an Origin).
const VISITOR_SITE: &str = "https://shop.example.com";

async fn open_visitor(
    http: &reqwest::Client,
    post_url: &str,
    ws_base: &str,
    n: usize,
) -> anyhow::Result<(Visitor, Socket)> {
    let response = http
        .post(post_url)
        .header("origin", VISITOR_SITE)
        .json(&json!({ "text": format!("Hello from visitor {n}"), "client_id": format!("setup-{n}") }))
        .send()
        .await
        .context("posting a first message")?;
    let status = response.status();
    if status.as_u16() != 201 {
        bail!(
            "first message: {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let body: Value = response.json().await?;
    let token = body["visitor_token"]
        .as_str()
        .context("no visitor_token in the answer")?
        .to_owned();
    // Small buffers: a widget socket here only hears its own conversation.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(
        format!("{ws_base}/widget/v1/ws?token={token}"),
        Some(config),
        true,
    )
    .await
    .context("opening the widget socket")?;
    Ok((Visitor { token }, socket))
}

/// A visitor's socket: read everything (which also answers the server's pings).
async fn widget_socket(mut socket: Socket, frames: Arc<AtomicU64>) {
    while let Some(Ok(message)) = socket.next().await {
        if message.is_text() {
            frames.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An agent's socket: note each measured message the first time it arrives.
async fn agent_socket(mut socket: Socket, tracker: Arc<Tracker>) {
    while let Some(Ok(message)) = socket.next().await {
        // tungstenite answers pings by itself while the socket is read.
        if let Message::Text(text) = message
            && let Some(seq) = measured_seq(text.as_str())
        {
            tracker.seen(seq);
        }
    }
}

/// The sequence number of a bench message in an inbox `message.created` frame.
fn measured_seq(frame: &str) -> Option<usize> {
    // Most frames are not ours; skip parsing them.
    if !frame.contains(CLIENT_ID_PREFIX) {
        return None;
    }
    let value: Value = serde_json::from_str(frame).ok()?;
    if value["type"] != "message.created" {
        return None;
    }
    value["payload"]["message"]["client_id"]
        .as_str()?
        .strip_prefix(CLIENT_ID_PREFIX)?
        .parse()
        .ok()
}

async fn post_message(
    http: &reqwest::Client,
    url: &str,
    visitor: &Visitor,
    tracker: &Tracker,
    seq: usize,
) {
    let body = json!({
        "text": format!("Bench message {seq}: how do I reset my password?"),
        "client_id": format!("{CLIENT_ID_PREFIX}{seq}"),
    });
    tracker.sent_us[seq].store(tracker.clock.now_us(), Ordering::Release);
    let result = http
        .post(url)
        .header("origin", VISITOR_SITE)
        .bearer_auth(&visitor.token)
        .json(&body)
        .send()
        .await;
    tracker.answered_us[seq].store(tracker.clock.now_us(), Ordering::Release);
    if let Ok(response) = result {
        tracker.status[seq].store(response.status().as_u16(), Ordering::Release);
        // Read the body so the connection goes back to the pool.
        let _ = response.bytes().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sequence_number_of_a_bench_message_frame() {
        let frame = json!({
            "type": "message.created", "event_id": "e", "conversation_id": "c",
            "payload": { "message": { "id": "m", "client_id": "bench-42", "text": "Bench message 42" } }
        })
        .to_string();
        assert_eq!(measured_seq(&frame), Some(42));
        let setup = frame.replace("bench-42", "setup-42");
        assert_eq!(measured_seq(&setup), None);
        let other = frame.replace("message.created", "conversation.updated");
        assert_eq!(measured_seq(&other), None);
    }

    #[test]
    fn a_message_counts_once_as_first_seen_and_once_per_agent() {
        let tracker = Tracker::new(Clock(Instant::now()), 2);
        tracker.seen(1);
        let first = tracker.first_seen_us[1].load(Ordering::Acquire);
        tracker.seen(1);
        assert_eq!(tracker.first_seen_us[1].load(Ordering::Acquire), first);
        assert_eq!(tracker.seen_by[1].load(Ordering::Acquire), 2);
        tracker.seen(7); // not a message of this run: ignored
    }
}
