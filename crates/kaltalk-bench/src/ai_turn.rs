//! The AI agent's own cost: how long one `ai.turn` job takes when the model costs nothing.
//! The server runs in this process (its library, as `kaltalk serve` runs it) against a
//! fake OpenAI-compatible model on loopback that streams a short answer at once, so what
//! is timed is retrieval, the prompt, the stream's parsing, the database writes and the
//! realtime publish — plus one loopback HTTP exchange.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use kaltalk_core::chat::{AiSettings, InboxKind, VisitorDetails, WidgetSettings};
use kaltalk_core::{EmailAddress, MessageText, OrgName, PersonName, SystemClock};
use kaltalk_server::jobs::{self, Ran};
use kaltalk_server::testing::fake_chat::{FakeChatModel, Reply};
use kaltalk_server::{Config, Kaltalk};
use kaltalk_store::NewUser;
use kaltalk_store::contacts::{ContactFields, SessionChoice};
use kaltalk_store::inboxes::NewInbox;
use kaltalk_store::intake::{Customer, CustomerMessage, Thread};
use serde::Serialize;

use crate::report::Latency;
use crate::server::PgDatabase;

#[derive(Args)]
pub struct AiTurnArgs {
    /// Run on PostgreSQL: a fresh database is created on this server and dropped after.
    /// Without it the server uses SQLite in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Knowledge-base documents (four sections, so four chunks, each).
    #[arg(long, default_value_t = 250)]
    documents: usize,
    /// Measured turns, each a visitor's first question in a new conversation.
    #[arg(long, default_value_t = 300)]
    turns: usize,
    /// Turns before the measured ones (the first builds the search index).
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// No chat model: time the extractive answer instead.
    #[arg(long)]
    no_model: bool,
    /// Print the report as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct AiTurnReport {
    backend: &'static str,
    mode: &'static str,
    documents: usize,
    chunks: i64,
    turns: usize,
    /// Time per `ai.turn` job, from claiming it to completing it.
    turn_ms: Latency,
    answers: i64,
    handoffs: i64,
}

pub async fn run(args: AiTurnArgs) -> anyhow::Result<()> {
    if args.turns == 0 || args.documents == 0 {
        bail!("--turns and --documents must be at least 1");
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
        println!(
            "ai.turn ({mode}, {backend}, {chunks} chunks): {turns} turns, p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; {answers} answers, {handoffs} handoffs",
            mode = report.mode,
            backend = report.backend,
            chunks = report.chunks,
            turns = report.turns,
            p50 = report.turn_ms.p50,
            p95 = report.turn_ms.p95,
            p99 = report.turn_ms.p99,
            max = report.turn_ms.max,
            answers = report.answers,
            handoffs = report.handoffs,
        );
    }
    Ok(())
}

async fn measure(args: &AiTurnArgs, database: Option<&PgDatabase>) -> anyhow::Result<AiTurnReport> {
    let fake = FakeChatModel::start(Reply::answer(
        &["The X0001 carries ", "a two-year warranty ", "[1]."],
        (420, 12),
        Duration::ZERO,
    ))
    .await?;
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.jobs.run_in_caller(); // this loop runs the jobs, one at a time, and times them
    config.smtp_listen = String::new(); // no mail here; the default port may be taken
    config.database_url = database.map(|db| kaltalk_server::config::Secret::new(db.url.clone()));
    if !args.no_model {
        config.ai.base_url = Some(fake.base_url.parse()?);
        config.ai.model = Some("fake".into());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Kaltalk::new(listener, config, Arc::new(SystemClock)).await?;
    let state = server.state.clone();
    let store = &state.store;
    let now = state.now();

    let user = NewUser {
        name: PersonName::parse("name", "Bench").map_err(|e| anyhow!("{e:?}"))?,
        email: EmailAddress::parse("email", "bench@bench.test").map_err(|e| anyhow!("{e:?}"))?,
        password_hash: String::new(),
        email_verified: true,
    };
    let org_name = OrgName::parse("org_name", "Bench").map_err(|e| anyhow!("{e:?}"))?;
    let (_, org) = store.sign_up(&user, &org_name, None, now).await?;
    for n in 0..args.documents {
        let (title, body) = document(n);
        store.add_text_source(org.id, &title, &body, now).await?;
    }
    drain(&state).await?;
    let chunks = store
        .list_sources(org.id)
        .await?
        .iter()
        .map(|s| i64::from(s.chunks))
        .sum();
    store
        .save_ai_settings(
            org.id,
            &AiSettings {
                enabled: true,
                ..AiSettings::default()
            },
            now,
        )
        .await?;
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

    let mut micros = Vec::with_capacity(args.turns);
    for turn in 0..args.warmup + args.turns {
        let question = question(turn % args.documents);
        let token = format!("bench-visitor-{turn}");
        store
            .take_in(
                CustomerMessage {
                    inbox: &inbox,
                    from: Customer::Visitor {
                        session: SessionChoice::New { token_hash: &token },
                        details: &VisitorDetails::default(),
                        fields: &ContactFields::default(),
                    },
                    thread: Thread::Latest,
                    text: &MessageText::parse("text", &question)?,
                    attachments: &[],
                    client_id: None,
                    wants_a_person: false,
                    email: None,
                },
                state.now(),
            )
            .await?;
        let started = Instant::now();
        let ran = jobs::run_one(&state, "bench").await?;
        let took = started.elapsed();
        if ran != Ran::Done("ai.turn".into()) {
            bail!("turn {turn}: expected an ai.turn job to run, got {ran:?}");
        }
        if turn >= args.warmup {
            micros.push(took.as_micros() as u64);
        }
    }
    let usage = store.ai_usage(org.id, state.now()).await?;
    let received = fake.received().await.len();
    if !args.no_model && received != args.warmup + args.turns - usage.handoffs as usize {
        bail!(
            "the model was asked {received} times for {} answers",
            usage.answers
        );
    }
    Ok(AiTurnReport {
        backend: if database.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        mode: if args.no_model {
            "extractive"
        } else {
            "generative"
        },
        documents: args.documents,
        chunks,
        turns: args.turns,
        turn_ms: Latency::from_micros(&mut micros).context("no turn measured")?,
        answers: usage.answers,
        handoffs: usage.handoffs,
    })
}

/// Runs jobs until none is due (the knowledge indexing).
async fn drain(state: &kaltalk_server::AppState) -> anyhow::Result<()> {
    loop {
        match jobs::run_one(state, "bench").await? {
            Ran::Nothing => return Ok(()),
            Ran::Done(_) => {}
            failed => bail!("a setup job failed: {failed:?}"),
        }
    }
}

const PRODUCTS: &[&str] = &[
    "kettle", "toaster", "blender", "lamp", "router", "speaker", "heater", "camera",
];

/// A product manual of four sections; product `n` has its own model number.
fn document(n: usize) -> (String, String) {
    let product = PRODUCTS[n % PRODUCTS.len()];
    let model = format!("X{n:04}");
    let title = format!("{model} {product} manual");
    let body = format!(
        "# Warranty\n\nThe {model} {product} carries a {years}-year warranty covering parts and labour. \
         Keep the receipt: the warranty starts on the day of purchase.\n\n\
         # Returns\n\nYou can return the {model} within {days} days of delivery in its original box. \
         Refunds reach your card within five working days after we receive it.\n\n\
         # Shipping\n\nThe {model} ships from our warehouse within {ship} working days to every country in Europe.\n\n\
         # Cleaning\n\nClean the {model} {product} with a dry cloth. Never use solvents or put it in water.",
        years = 1 + n % 3,
        days = 14 + n % 30,
        ship = 1 + n % 4,
    );
    (title, body)
}

fn question(n: usize) -> String {
    let model = format!("X{n:04}");
    match n % 4 {
        0 => format!("What warranty does the {model} carry?"),
        1 => format!("How many days do I have to return the {model}?"),
        2 => format!("How many working days until the {model} ships?"),
        _ => format!("How do I clean the {model}?"),
    }
}
