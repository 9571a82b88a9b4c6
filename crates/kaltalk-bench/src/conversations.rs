//! Conversation data at scale: fills an organization with a realistic support history
//! (real documentation sentences as messages, one contact per conversation, through the
//! store's own writes) and measures, over HTTP against the server running in this
//! process, every conversation list view of the REST API, each shape of search, and the
//! inbox page's server time: p50 / p95 / max per request.
//!
//! The text is the Python 3.11 documentation's reStructuredText sources from Debian
//! (`python3.11-doc`, installed when missing), cut into sentences.
//!
//! Filling a million messages takes minutes: `--keep-as` keeps the data (a folder for
//! SQLite, a database name for PostgreSQL) and a later run with the same name measures it
//! again without filling.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use kaltalk_core::chat::{InboxKind, WidgetSettings};
use kaltalk_core::{EmailAddress, OrgName, PersonName, Role, SystemClock, token};
use kaltalk_server::{Config, Kaltalk};
use kaltalk_store::inboxes::NewInbox;
use kaltalk_store::testing::{HISTORY_LABELS, HistoryPlan, fill_history};
use kaltalk_store::{NewUser, Store};
use serde::Serialize;

use crate::report::Latency;
use crate::server::PgDatabase;

/// Where the corpus comes from (Debian's `python3.11-doc`).
const CORPUS_DIR: &str = "/usr/share/doc/python3.11/html/_sources";
const CORPUS_PACKAGE: &str = "python3.11-doc";
/// The organization the history belongs to (how a kept one is found again).
const ORG_NAME: &str = "Bench history";
const OWNER_EMAIL: &str = "owner@history.bench";

#[derive(Args)]
pub struct ConversationsArgs {
    /// Messages in all (ten per conversation unless --conversations says otherwise).
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Conversations (each with its own contact); default: messages / 10.
    #[arg(long)]
    conversations: Option<usize>,
    /// Run on PostgreSQL (this server; a fresh database dropped after, unless --keep-as).
    /// Without it: SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Keep the data under this name (SQLite: a folder; PostgreSQL: a database on the
    /// --database-url server) and reuse it when it is already filled.
    #[arg(long)]
    keep_as: Option<String>,
    /// Requests per measured shape (after two to warm up).
    #[arg(long, default_value_t = 30)]
    repeat: usize,
    /// Print the report as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Measured {
    name: String,
    request: String,
    ms: Latency,
    /// Conversations in the (first) answer.
    results: usize,
}

#[derive(Debug, Serialize)]
struct ConversationsReport {
    backend: &'static str,
    messages: usize,
    conversations: usize,
    /// Seconds the fill took (`None`: the kept data was reused).
    fill_seconds: Option<f64>,
    measured: Vec<Measured>,
}

pub async fn run(args: ConversationsArgs) -> anyhow::Result<()> {
    let conversations = args.conversations.unwrap_or(args.messages / 10).max(1);
    if args.messages < conversations {
        bail!("--messages must be at least --conversations (one message each)");
    }
    if args.repeat == 0 {
        bail!("--repeat must be positive");
    }
    let sentences = corpus().await?;

    // Where the data lives: kept, or thrown away at the end.
    let scratch = tempfile::tempdir()?;
    let (data_dir, fresh_pg, kept_pg): (PathBuf, Option<PgDatabase>, Option<String>) =
        match (&args.database_url, &args.keep_as) {
            (None, None) => (scratch.path().to_path_buf(), None, None),
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
                (PathBuf::from(dir), None, None)
            }
            (Some(url), None) => (
                scratch.path().to_path_buf(),
                Some(PgDatabase::create(url).await?),
                None,
            ),
            (Some(url), Some(name)) => (
                scratch.path().to_path_buf(),
                None,
                Some(PgDatabase::ensure(url, name).await?),
            ),
        };
    let database_url = fresh_pg.as_ref().map(|db| db.url.clone()).or(kept_pg);
    let outcome = measure(&args, conversations, &sentences, &data_dir, database_url).await;
    if let Some(database) = fresh_pg {
        database.drop_database().await?;
    }
    let report = outcome?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "conversations ({}, {} messages in {} conversations{}):",
            report.backend,
            report.messages,
            report.conversations,
            match report.fill_seconds {
                Some(s) => format!(", filled in {s:.0} s"),
                None => ", kept data".into(),
            }
        );
        for m in &report.measured {
            println!(
                "  {:<34} p50 {:>8.1} ms  p95 {:>8.1} ms  max {:>8.1} ms  ({} results)  {}",
                m.name, m.ms.p50, m.ms.p95, m.ms.max, m.results, m.request
            );
        }
    }
    Ok(())
}

async fn measure(
    args: &ConversationsArgs,
    conversations: usize,
    sentences: &[String],
    data_dir: &Path,
    database_url: Option<String>,
) -> anyhow::Result<ConversationsReport> {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    config.smtp_listen = String::new();
    config.database_url = database_url.map(kaltalk_server::config::Secret::new);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = Kaltalk::new(listener, config, Arc::new(SystemClock)).await?;
    let state = server.state.clone();
    let backend = match state.store.backend() {
        kaltalk_store::Backend::Sqlite => "sqlite",
        kaltalk_store::Backend::Postgres => "postgres",
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));

    let store = &state.store;
    let history = match find_history(store).await? {
        Some(history) => (history, None),
        None => {
            let started = Instant::now();
            let history = fill(store, conversations, args.messages, sentences).await?;
            (history, Some(started.elapsed().as_secs_f64()))
        }
    };
    let (history, fill_seconds) = history;
    let messages_per = args.messages / conversations;

    // Credentials: an API key for the organization and a dashboard session for the
    // owner, made as the operator CLI and the login make them.
    let key =
        kaltalk_server::admin::create_api_key(store, history.org, "bench", state.now()).await?;
    let cookie = kaltalk_server::auth::session::start(&state, history.owner, history.org)
        .await
        .map_err(|e| anyhow!("starting a session: {e}"))?;
    let cookie = format!("{}={}", cookie.name(), cookie.value());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let words = Words::of(sentences);
    let agent = history.agents[0];
    let team = history.teams[0];
    let inbox = history.inbox;
    let name = format!("{} {}", FIRST_NAMES[0], LAST_NAMES[0]);
    let api: Vec<(String, String)> = vec![
        ("API list, all".into(), String::new()),
        ("API list, open".into(), "status=open".into()),
        ("API list, resolved".into(), "status=resolved".into()),
        ("API list, inbox".into(), format!("inbox_id={inbox}")),
        ("API list, assignee".into(), format!("assignee_id={agent}")),
        (
            "API list, unassigned".into(),
            "assignee_id=unassigned".into(),
        ),
        (
            "API list, label".into(),
            format!("label={}", HISTORY_LABELS[0]),
        ),
        ("API list, team".into(), format!("team_id={team}")),
        (
            "API list, team + open".into(),
            format!("team_id={team}&status=open"),
        ),
        (
            "API search, a rare word".into(),
            format!("q={}", words.rare),
        ),
        (
            "API search, a common word".into(),
            format!("q={}", words.common),
        ),
        (
            "API search, two words".into(),
            format!("q={}+{}", words.pair.0, words.pair.1),
        ),
        ("API search, a prefix".into(), format!("q={}", words.prefix)),
        (
            "API search, a customer's name".into(),
            format!("q={}", name.replace(' ', "+")),
        ),
    ];
    let pages: Vec<(String, String)> = vec![
        (
            "inbox page, all open".into(),
            "/inbox?view=all&status=open".into(),
        ),
        (
            "inbox page, mine".into(),
            "/inbox?view=mine&status=open".into(),
        ),
        (
            "inbox page, unassigned".into(),
            "/inbox?view=unassigned&status=open".into(),
        ),
        (
            "inbox page, resolved".into(),
            "/inbox?view=all&status=resolved".into(),
        ),
        (
            "inbox page, label".into(),
            format!(
                "/inbox?view=all&status=resolved&label={}",
                HISTORY_LABELS[0]
            ),
        ),
        (
            "inbox page, search".into(),
            format!("/inbox?q={}", words.common),
        ),
    ];

    // One list of requests: what each is called, its path, and how its answer is asked.
    let api_count = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["data"].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    let page_count = |body: &str| body.matches("data-conversation-link=").count();
    let shapes = api
        .into_iter()
        .map(|(name, query)| {
            (
                name,
                format!("/api/v1/conversations?limit=25&{query}"),
                true,
            )
        })
        .chain(pages.into_iter().map(|(name, path)| (name, path, false)));
    let mut measured = Vec::new();
    for (name, path, is_api) in shapes {
        let url = format!("{base}{path}");
        let request = if is_api {
            http.get(&url).bearer_auth(&key)
        } else {
            http.get(&url).header("cookie", &cookie)
        };
        let count: &dyn Fn(&str) -> usize = if is_api { &api_count } else { &page_count };
        let (ms, results) = timed(request, args.repeat, count)
            .await
            .with_context(|| format!("GET {url}"))?;
        measured.push(Measured {
            name,
            request: format!("GET {path}"),
            ms,
            results,
        });
    }

    let _ = stop.send(());
    serving.await??;
    Ok(ConversationsReport {
        backend,
        messages: conversations * messages_per,
        conversations,
        fill_seconds,
        measured,
    })
}

/// Sends `request` twice to warm up, then `repeat` times, timing each to its whole body.
async fn timed(
    request: reqwest::RequestBuilder,
    repeat: usize,
    count: impl Fn(&str) -> usize,
) -> anyhow::Result<(Latency, usize)> {
    let mut micros = Vec::with_capacity(repeat);
    let mut results = 0;
    for n in 0..repeat + 2 {
        let request = request
            .try_clone()
            .ok_or_else(|| anyhow!("a request without a body clones"))?;
        let started = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let body = response.text().await?;
        let took = started.elapsed();
        if !status.is_success() {
            bail!(
                "answered {status}: {}",
                body.chars().take(300).collect::<String>()
            );
        }
        if n == 0 {
            results = count(&body);
        }
        if n >= 2 {
            micros.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        }
    }
    let latency = Latency::from_micros(&mut micros).context("nothing measured")?;
    Ok((latency, results))
}

/// What the benchmark needs to know of the history's organization.
struct History {
    org: kaltalk_core::OrgId,
    owner: kaltalk_core::UserId,
    inbox: kaltalk_core::InboxId,
    agents: Vec<kaltalk_core::UserId>,
    teams: Vec<kaltalk_core::TeamId>,
}

/// The history of an earlier run kept in this database, if any.
async fn find_history(store: &Store) -> anyhow::Result<Option<History>> {
    let email = EmailAddress::parse("email", OWNER_EMAIL).map_err(|e| anyhow!("{e:?}"))?;
    let Some(owner) = store.find_user_by_email(&email).await? else {
        return Ok(None);
    };
    let memberships = store.memberships_of(owner.id).await?;
    let Some(org) = memberships.first().map(|m| m.org_id) else {
        return Ok(None);
    };
    let inbox = store
        .list_inboxes(org)
        .await?
        .first()
        .map(|i| i.id)
        .context("the kept history has no inbox: delete it and fill again")?;
    let mut agents: Vec<_> = store
        .member_statuses(org)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .filter(|u| *u != owner.id)
        .collect();
    agents.sort();
    let teams = store
        .list_teams(org)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    Ok(Some(History {
        org,
        owner: owner.id,
        inbox,
        agents,
        teams,
    }))
}

/// A new organization (its owner, five agents, two teams, a web inbox) filled with
/// `conversations` conversations of `messages / conversations` messages each.
async fn fill(
    store: &Store,
    conversations: usize,
    messages: usize,
    sentences: &[String],
) -> anyhow::Result<History> {
    let now = chrono::Utc::now();
    let person = |name: &str, email: &str| -> anyhow::Result<NewUser> {
        Ok(NewUser {
            name: PersonName::parse("name", name).map_err(|e| anyhow!("{e:?}"))?,
            email: EmailAddress::parse("email", email).map_err(|e| anyhow!("{e:?}"))?,
            password_hash: String::new(),
            email_verified: true,
        })
    };
    let org_name = OrgName::parse("org_name", ORG_NAME).map_err(|e| anyhow!("{e:?}"))?;
    let (owner, org) = store
        .sign_up(&person("Olivia Owner", OWNER_EMAIL)?, &org_name, None, now)
        .await?;
    let mut agents = Vec::new();
    for n in 1..=5 {
        agents.push(
            store
                .create_member_user(
                    &person(&format!("Agent {n}"), &format!("agent{n}@history.bench"))?,
                    org.id,
                    Role::Agent,
                    now,
                )
                .await?,
        );
    }
    agents.sort();
    let mut teams = Vec::new();
    for (n, name) in ["Support", "Billing"].into_iter().enumerate() {
        let team = store.create_team(org.id, name, now).await?.value;
        for agent in agents.iter().skip(n).step_by(2) {
            store.add_team_member(org.id, team.id, *agent, now).await?;
        }
        teams.push(team.id);
    }
    let inbox = store
        .create_inbox(
            &NewInbox {
                org_id: org.id,
                kind: InboxKind::Web,
                name: "Website".into(),
                public_token: token::generate("wi_"),
                identity_secret: token::generate(""),
                settings: WidgetSettings::default(),
                email: None,
            },
            now,
        )
        .await?;
    let plan = HistoryPlan {
        org: org.id,
        inbox: inbox.id,
        agents: &agents,
        teams: &teams,
        conversations,
        messages_per_conversation: messages / conversations,
        sentences,
        first_names: &FIRST_NAMES,
        last_names: &LAST_NAMES,
        until: now - chrono::Duration::hours(1),
        span: chrono::Duration::days(365),
    };
    let started = Instant::now();
    let mut last_said = Instant::now();
    fill_history(store, &plan, 500, |done| {
        if last_said.elapsed() > Duration::from_secs(10) || done == conversations {
            last_said = Instant::now();
            let rate = done as f64 / started.elapsed().as_secs_f64();
            eprintln!("filled {done} of {conversations} conversations ({rate:.0}/s)");
        }
    })
    .await?;
    Ok(History {
        org: org.id,
        owner,
        inbox: inbox.id,
        agents,
        teams,
    })
}

/// The words searched for, picked from the corpus by how often they occur.
struct Words {
    rare: String,
    common: String,
    pair: (String, String),
    prefix: String,
}

impl Words {
    fn of(sentences: &[String]) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for sentence in sentences {
            for word in sentence
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| w.len() >= 6)
            {
                *counts.entry(word.to_lowercase()).or_default() += 1;
            }
        }
        let mut by_count: Vec<(&String, &usize)> = counts.iter().collect();
        // Most frequent first, then alphabetical: the same words every run.
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let word = |i: usize| {
            by_count
                .get(i)
                .map(|(w, _)| (*w).clone())
                .unwrap_or_default()
        };
        let rare = by_count
            .iter()
            .find(|(_, n)| **n == 2)
            .map(|(w, _)| (*w).clone())
            .unwrap_or_else(|| word(by_count.len().saturating_sub(1)));
        let common = word(0);
        let prefix = common.chars().take(4).collect();
        Self {
            rare,
            pair: (word(1), word(2)),
            common,
            prefix,
        }
    }
}

/// The corpus's sentences, installing the documentation when missing.
async fn corpus() -> anyhow::Result<Vec<String>> {
    if !Path::new(CORPUS_DIR).is_dir() {
        eprintln!("installing {CORPUS_PACKAGE} for its text (the Python documentation)");
        let status = tokio::process::Command::new("apt-get")
            .args(["install", "-y", "-q", CORPUS_PACKAGE])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .await
            .context("running apt-get")?;
        if !status.success() {
            bail!("apt-get install {CORPUS_PACKAGE} failed: install it and run again");
        }
    }
    let mut files = Vec::new();
    let mut folders = vec![PathBuf::from(CORPUS_DIR)];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.to_string_lossy().ends_with(".rst.txt") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut sentences = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for sentence in sentences_of(&text) {
            if seen.insert(sentence.clone()) {
                sentences.push(sentence);
            }
        }
    }
    if sentences.len() < 1000 {
        bail!("only {} sentences in {CORPUS_DIR}", sentences.len());
    }
    Ok(sentences)
}

/// The prose sentences of a reStructuredText file: paragraphs that start at the margin
/// (not code, directives or headings), markup taken out.
fn sentences_of(rst: &str) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in rst.split("\n\n") {
        let first = paragraph.lines().next().unwrap_or("");
        if first.starts_with([' ', '\t', '.', '>', '=', '-', '*', '+', '|', ':', '#'])
            || paragraph
                .lines()
                .any(|l| l.chars().all(|c| "=-~^*#".contains(c)) && !l.is_empty())
        {
            continue;
        }
        let joined = paragraph
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let plain = strip_roles(&joined);
        for sentence in plain.split_inclusive(". ") {
            let sentence = sentence.trim();
            let words = sentence.split_whitespace().count();
            if (40..=280).contains(&sentence.len()) && words >= 6 && sentence.ends_with('.') {
                out.push(sentence.to_owned());
            }
        }
    }
    out
}

/// `` :func:`len` `` → `len`, ``` ``x`` ``` → `x`, `*word*` → `word`.
fn strip_roles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // A role's name: `:name:` right before a backtick.
            ':' if chars.peek().is_some_and(|c| c.is_ascii_lowercase()) => {
                let rest: String = chars
                    .clone()
                    .take_while(|c| *c != ':' && *c != ' ')
                    .collect();
                let after = chars.clone().nth(rest.len() + 1);
                if after == Some('`') {
                    for _ in 0..=rest.len() {
                        chars.next();
                    }
                } else {
                    out.push(c);
                }
            }
            '`' | '*' => {}
            _ => out.push(c),
        }
    }
    out
}

const FIRST_NAMES: [&str; 40] = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Hedy",
    "Vint",
    "Katherine",
    "Donald",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Joan",
    "Edsger",
    "Mary",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Karen",
    "Robin",
    "Adele",
    "Butler",
    "Evelyn",
    "Fernando",
    "Jean",
    "Larry",
    "Lynn",
    "Martin",
    "Ruth",
    "Steve",
    "Yukihiro",
    "Zoe",
];

const LAST_NAMES: [&str; 40] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "McCarthy",
    "Perlman",
    "Berners",
    "Lamarr",
    "Cerf",
    "Johnson",
    "Knuth",
    "Wilson",
    "Rossum",
    "Borg",
    "Stroustrup",
    "Clarke",
    "Dijkstra",
    "Keller",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Sparck",
    "Milner",
    "Goldberg",
    "Lampson",
    "Boyd",
    "Corbato",
    "Sammet",
    "Page",
    "Conway",
    "Fowler",
    "Teitelbaum",
    "Wozniak",
    "Matsumoto",
    "Ellis",
];
