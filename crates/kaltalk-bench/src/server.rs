//! The server under test: a throw-away data directory (and PostgreSQL database), the
//! operator CLI to seed it, `kaltalk serve` on port 0, and what `/proc` says about it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, oneshot};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Server log lines kept to show after the run, per level (WARN, ERROR).
const KEPT_LOG_LINES: usize = 5;

/// A fresh PostgreSQL database on the server of the URL given, dropped at the end.
pub struct PgDatabase {
    /// The URL given, used to create and drop the database.
    admin_url: String,
    name: String,
    /// The same server, the new database.
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let suffix: u64 = rand::rng().random();
        let name = format!("kaltalk_bench_{suffix:016x}");
        let mut url = url::Url::parse(admin_url).context("--database-url is not a URL")?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            bail!("--database-url must be a postgres:// URL (SQLite is the default)");
        }
        url.set_path(&format!("/{name}"));
        psql(admin_url, &format!("CREATE DATABASE {name}")).await?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.into(),
        })
    }

    /// The database `name` on the server of `admin_url`, created when missing and kept;
    /// its URL.
    pub async fn ensure(admin_url: &str, name: &str) -> anyhow::Result<String> {
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("--keep-as on PostgreSQL is a database name: lower-case letters, digits and _");
        }
        let mut url = url::Url::parse(admin_url).context("--database-url is not a URL")?;
        url.set_path(&format!("/{name}"));
        // CREATE DATABASE has no IF NOT EXISTS: a failure because it exists is fine.
        if let Err(err) = psql(admin_url, &format!("CREATE DATABASE {name}")).await
            && !err.to_string().contains("already exists")
        {
            return Err(err);
        }
        Ok(url.into())
    }

    pub async fn drop_database(&self) -> anyhow::Result<()> {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
    }
}

async fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running psql (install the PostgreSQL client)")?;
    if !output.status.success() {
        bail!(
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Where the server keeps its data for one run.
pub struct Fixture {
    bin: PathBuf,
    data_dir: tempfile::TempDir,
    database: Option<PgDatabase>,
}

impl Fixture {
    pub async fn prepare(bin: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        if !bin.is_file() {
            bail!("--server-bin {}: no such file", bin.display());
        }
        let data_dir = tempfile::Builder::new()
            .prefix("kaltalk-bench-")
            .tempdir()
            .context("creating a temporary data directory")?;
        let database = match database_url {
            Some(url) => Some(PgDatabase::create(url).await?),
            None => None,
        };
        Ok(Self {
            bin: bin.to_owned(),
            data_dir,
            database,
        })
    }

    pub fn backend(&self) -> &'static str {
        if self.database.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// `kaltalk ARGS` with this run's configuration and none of ours: the server reads
    /// every `KALTALK_*` variable and rejects unknown ones.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(args).current_dir(self.data_dir.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KALTALK_") {
                command.env_remove(&key);
            }
        }
        command.env("KALTALK_DATA_DIR", self.data_dir.path());
        if let Some(db) = &self.database {
            command.env("KALTALK_DATABASE_URL", &db.url);
        }
        command.kill_on_drop(true);
        command
    }

    /// Runs an operator command and returns its `key=value` lines.
    pub async fn cli(&self, args: &[&str], stdin: &str) -> anyhow::Result<HashMap<String, String>> {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await?;
        }
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            bail!(
                "kaltalk {} failed ({}):\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(key_values(&String::from_utf8_lossy(&output.stdout)))
    }

    /// Starts `kaltalk serve` on an ephemeral port and waits for its "listening on" line.
    pub async fn serve(&self) -> anyhow::Result<Server> {
        let mut child = self
            .command(&["serve"])
            .env("KALTALK_LISTEN", "127.0.0.1:0")
            // "listening on" is logged at info by kaltalk_server; everything else at warn.
            .env("KALTALK_LOG_LEVEL", "warn,kaltalk_server=info")
            .env("KALTALK_LOG_FORMAT", "text")
            // The figures are of the server as configured, not of a 90 MB model download
            // (and re-embedding) running beside the load.
            .env("KALTALK_EMBEDDINGS__DOWNLOAD", "false")
            // Not measured here, and the default port may be taken.
            .env("KALTALK_SMTP_LISTEN", "")
            // Every agent logs in from 127.0.0.1.
            .env("KALTALK_LOGIN_LIMITS__PER_IP", "100000")
            // Every simulated visitor writes from 127.0.0.1 too.
            .env("KALTALK_WIDGET__SESSIONS_PER_IP_PER_MINUTE", "1000000")
            .env("KALTALK_WIDGET__MESSAGES_PER_SESSION_PER_MINUTE", "1000000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} serve", self.bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let log = Arc::new(ServerLog::default());
        let (url_tx, url_rx) = oneshot::channel();
        let url_tx = Arc::new(Mutex::new(Some(url_tx)));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(read_log(out, log.clone(), url_tx.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(read_log(err, log.clone(), url_tx));
        }
        let base_url = match tokio::time::timeout(STARTUP_TIMEOUT, url_rx).await {
            Ok(Ok(url)) => url,
            Ok(Err(_)) => bail!(
                "the server exited before listening:\n{}",
                log.kept().await.join("\n")
            ),
            Err(_) => bail!("the server did not log \"listening on\" within {STARTUP_TIMEOUT:?}"),
        };
        Ok(Server {
            child,
            pid,
            base_url,
            log,
        })
    }

    pub async fn cleanup(self) -> anyhow::Result<()> {
        if let Some(db) = &self.database {
            db.drop_database().await?;
        }
        self.data_dir.close().context("removing the data directory")
    }
}

/// The `key=value` lines of a CLI's output.
fn key_values(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// What the server wrote: its warnings and errors are counted, the first few of each
/// kept.
#[derive(Default)]
pub struct ServerLog {
    pub warnings: AtomicU64,
    pub errors: AtomicU64,
    kept: Mutex<Vec<String>>,
}

impl ServerLog {
    pub async fn kept(&self) -> Vec<String> {
        self.kept.lock().await.clone()
    }

    async fn note(&self, line: String) {
        let (count, level) = if line.contains(" ERROR ") {
            (&self.errors, " ERROR ")
        } else if line.contains(" WARN ") {
            (&self.warnings, " WARN ")
        } else {
            return;
        };
        count.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.kept.lock().await;
        if kept.iter().filter(|l| l.contains(level)).count() < KEPT_LOG_LINES {
            kept.push(line);
        }
    }
}

/// Reads the server's output to the end (a full pipe would stall the server), handing
/// the URL of the "listening on" line over once.
async fn read_log(
    stream: impl AsyncRead + Unpin,
    log: Arc<ServerLog>,
    url_tx: Arc<Mutex<Option<oneshot::Sender<String>>>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(url) = listening_url(&line)
            && let Some(tx) = url_tx.lock().await.take()
        {
            let _ = tx.send(url);
            continue;
        }
        log.note(line).await;
    }
}

fn listening_url(line: &str) -> Option<String> {
    let rest = line.split("listening on ").nth(1)?;
    let url = rest.split_whitespace().next()?;
    Some(
        url.trim_end_matches(['/', ')', '"', ',', '.', ';'])
            .to_owned(),
    )
}

/// A running `kaltalk serve`.
pub struct Server {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub log: Arc<ServerLog>,
}

impl Server {
    /// `VmRSS` in MiB.
    pub fn rss_mib(&self) -> f64 {
        proc_status_kib(self.pid, "VmRSS").map_or(0.0, kib_to_mib)
    }

    /// `VmHWM` (the peak resident size so far) in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        proc_status_kib(self.pid, "VmHWM").map_or(0.0, kib_to_mib)
    }

    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.pid)).unwrap_or(0.0)
    }

    /// SIGTERM, then SIGKILL if it has not stopped in time.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("the server did not stop within {STOP_TIMEOUT:?}: killing it");
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User + system CPU time of a process from its `/proc/…/stat`.
pub fn cpu_seconds(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    parse_stat_cpu_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_second())
}

fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces; fields are counted after its ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as f64,
        _ => 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_url_from_a_text_log_line() {
        let line = "2026-11-27T10:00:00.000Z  INFO kaltalk_server: listening on http://127.0.0.1:41234 backend=Sqlite address=127.0.0.1:41234";
        assert_eq!(
            listening_url(line).as_deref(),
            Some("http://127.0.0.1:41234")
        );
        assert_eq!(listening_url("nothing here"), None);
    }

    #[test]
    fn reads_proc_figures() {
        let status = "Name:\tkaltalk\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(40960));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        let stat = "1234 (tokio runtime) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn cli_output_becomes_key_values() {
        let values = key_values("user_id=u1\norg_id=o2\nsnippet=<script a=b>\n");
        assert_eq!(values["org_id"], "o2");
        assert_eq!(values["snippet"], "<script a=b>");
    }
}
