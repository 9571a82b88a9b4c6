//! `kaltalk`: parse the command line and configuration, set up logging, hand over to the
//! library.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kaltalk_core::{Clock, OrgId, Role, SystemClock};
use kaltalk_server::admin::{self, OrgChoice};
use kaltalk_server::config::LogFormat;
use kaltalk_server::{Config, launch, open_store};
use tracing_subscriber::EnvFilter;

mod eval;

#[derive(Parser)]
#[command(
    name = "kaltalk",
    version,
    about = "Open-source, self-hostable AI customer support"
)]
struct Cli {
    /// A TOML configuration file (see `kaltalk config example`).
    #[arg(long, global = true, env = "KALTALK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the dashboard, the API and the background workers (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Measurements on public test collections.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Retrieval quality and latency on a BEIR-style collection: ingests the corpus as
    /// text sources of a throwaway organization, then ranks documents by their best chunk.
    Retrieval {
        /// `{"id", "title", "text"}` one document a line.
        #[arg(long)]
        corpus: PathBuf,
        /// `{"id", "text"}` one query a line.
        #[arg(long)]
        queries: PathBuf,
        /// `query-id <TAB> doc-id <TAB> score`, a header line first.
        #[arg(long)]
        qrels: PathBuf,
        #[arg(long, value_enum, default_value = "hybrid")]
        mode: eval::EvalMode,
        /// Write the ranking, one JSON line a query (score.py's run format).
        #[arg(long)]
        run_out: Option<PathBuf>,
        /// Keep the index here; a rerun with the same corpus and model reuses it (so
        /// the three modes embed once). Default: a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a documented example configuration file.
    Example,
}

#[derive(Subcommand)]
#[allow(clippy::enum_variant_names)] // they are the CLI verbs: create-user, create-inbox, create-api-key
enum AdminCommand {
    /// Create a user: owner of a new organization (--org) or member of one (--org-id).
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Read the password from standard input (required: passwords never go in argv).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Name of a new organization the user will own.
        #[arg(long, conflicts_with = "org_id", required_unless_present = "org_id")]
        org: Option<String>,
        /// Id of an existing organization to join.
        #[arg(long)]
        org_id: Option<OrgId>,
        /// Role in the existing organization: admin or agent.
        #[arg(long, default_value = "agent", requires = "org_id")]
        role: Role,
    },
    /// Create an inbox; prints its id, its embed token and the embed snippet.
    CreateInbox {
        #[arg(long)]
        org_id: OrgId,
        /// `web` (the website widget) or `email` (a support address).
        #[arg(long, default_value = "web")]
        kind: String,
        /// Required for a web inbox; an email inbox is named after its address by default.
        #[arg(long)]
        name: Option<String>,
        /// A website allowed to embed the widget (repeatable; subdomains included).
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// An email inbox's support address, e.g. support@example.com.
        #[arg(long)]
        address: Option<String>,
    },
    /// Add a sample conversation (30 messages of every kind, in a new "Sample website"
    /// inbox) to an organization, to see the inbox at work; prints its id.
    SeedDemo {
        #[arg(long)]
        org_id: OrgId,
    },
    /// Create an API key for an organization and print it (shown only this once).
    CreateApiKey {
        #[arg(long)]
        org_id: OrgId,
        #[arg(long)]
        name: String,
    },
    /// Print the personal outbox, newest first: mail to people about their own account
    /// (address confirmations, password resets), which no organization's owner can read.
    /// Without an SMTP relay, this is where those links are.
    Outbox {
        /// Only mail to this address.
        #[arg(long)]
        to: Option<String>,
        /// How many emails at most.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests and jobs");
}

#[allow(clippy::print_stdout)] // the CLI's output is its interface
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Config {
        command: ConfigCommand::Example,
    }) = &cli.command
    {
        print!("{}", Config::example());
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    init_logging(&config);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(&config.listen)
                .await
                .with_context(|| {
                    format!(
                        "binding {} (set KALTALK_LISTEN to another host:port)",
                        config.listen
                    )
                })?;
            launch(listener, config, shutdown_signal()).await?;
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations applied");
        }
        Command::Config { .. } => unreachable!("handled above"),
        Command::Eval {
            command:
                EvalCommand::Retrieval {
                    corpus,
                    queries,
                    qrels,
                    mode,
                    run_out,
                    data_dir,
                },
        } => {
            eval::retrieval(
                &config,
                eval::RetrievalArgs {
                    corpus,
                    queries,
                    qrels,
                    mode,
                    run_out,
                    data_dir,
                },
            )
            .await?;
        }
        Command::Admin { command } => {
            let store = open_store(&config).await?;
            let now = SystemClock.now();
            match command {
                AdminCommand::CreateUser {
                    email,
                    name,
                    password_stdin: _,
                    org,
                    org_id,
                    role,
                } => {
                    let mut password = String::new();
                    std::io::stdin()
                        .read_to_string(&mut password)
                        .context("reading the password from standard input")?;
                    let password = password.trim_end_matches(['\r', '\n']);
                    let choice = match (org, org_id) {
                        (_, Some(id)) => OrgChoice::Existing(id, role),
                        (Some(name), None) => OrgChoice::New(name),
                        (None, None) => anyhow::bail!("give --org NAME or --org-id ID"),
                    };
                    let (user, org) =
                        admin::create_user(&store, &email, &name, password, choice, now).await?;
                    println!("user_id={user}");
                    println!("org_id={org}");
                }
                AdminCommand::CreateInbox {
                    org_id,
                    kind,
                    name,
                    domains,
                    address,
                } => match kind.as_str() {
                    "web" => {
                        let name = name.context("--name is required for a web inbox")?;
                        let created =
                            admin::create_web_inbox(&store, &config, org_id, &name, &domains, now)
                                .await?;
                        println!("inbox_id={}", created.inbox_id);
                        println!("embed_token={}", created.embed_token);
                        println!("snippet={}", created.snippet);
                    }
                    "email" => {
                        let address =
                            address.context("--address is required for an email inbox")?;
                        let inbox = admin::create_email_inbox(
                            &store,
                            org_id,
                            name.as_deref(),
                            &address,
                            now,
                        )
                        .await?;
                        println!("inbox_id={}", inbox.id);
                        println!(
                            "address={}",
                            inbox.email_address.as_deref().unwrap_or_default()
                        );
                        println!("smtp_listen={}", config.smtp_listen);
                    }
                    other => anyhow::bail!("--kind {other}: use web or email"),
                },
                AdminCommand::SeedDemo { org_id } => {
                    let conversation =
                        kaltalk_server::demo::seed(&store, &config, org_id, now).await?;
                    println!("conversation_id={conversation}");
                }
                AdminCommand::CreateApiKey { org_id, name } => {
                    let key = admin::create_api_key(&store, org_id, &name, now).await?;
                    println!("{key}");
                }
                AdminCommand::Outbox { to, limit } => {
                    print!(
                        "{}",
                        admin::personal_outbox(&store, to.as_deref(), limit).await?
                    );
                }
            }
        }
    }
    Ok(())
}
