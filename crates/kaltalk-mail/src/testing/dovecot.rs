//! A real Dovecot IMAP server on loopback for tests: private config, ports, TLS certificate
//! and mail store in a temporary directory; stopped when the [`Dovecot`] value is dropped.
//!
//! Needs root (Dovecot's login and mail processes switch to the `dovenull` and `dovecot`
//! users the Debian package creates) and Dovecot 2.3, which `scripts/dovecot-setup.sh`
//! installs the first time a test starts a server.

use std::fs;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

use crate::imap_in::{ImapAccount, ImapSecurity, ImapSession, TlsOptions, open_session};

const DOVECOT: &str = "/usr/sbin/dovecot";
const USER: &str = "kaltalk-test";
const PASSWORD: &str = "imap-test-password";
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running Dovecot with one user whose INBOX starts empty.
pub struct Dovecot {
    child: Child,
    imap_port: u16,
    imaps_port: u16,
    ca_cert: CertificateDer<'static>,
    // Last, so the files outlive the server while it stops.
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// Installs Dovecot if needed (once per process), then starts a fresh server. Panics with
    /// Dovecot's own log when it cannot start: this is test setup.
    pub async fn start() -> Dovecot {
        install_once();
        match Self::try_start().await {
            Ok(dovecot) => dovecot,
            Err(failure) => panic!("Dovecot did not start:\n{failure}"),
        }
    }

    async fn try_start() -> Result<Dovecot, String> {
        let dir = tempfile::Builder::new()
            .prefix("kaltalk-dovecot-")
            .tempdir()
            .map_err(|err| format!("creating a temporary directory: {err}"))?;
        // Dovecot's unprivileged processes (users dovecot and dovenull) read the password
        // file and write the mail store inside it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .map_err(|err| format!("making the temporary directory readable: {err}"))?;
        // Dovecot cannot listen on port 0 and say which port it got, but it takes sockets
        // its parent already bound and listens on (systemd's socket activation:
        // LISTEN_FDS, fds from 3 on, matched to the configured listeners by port). So the
        // ports are bound to port 0 here and handed over: no other process can take them
        // in between, and connections made before Dovecot is up wait in the backlog.
        let bind = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(|err| format!("binding a loopback port for Dovecot: {err}"))
        };
        let (imap, imaps) = (bind()?, bind()?);
        let port = |listener: &std::net::TcpListener| {
            listener
                .local_addr()
                .map(|addr| addr.port())
                .map_err(|err| format!("the bound port: {err}"))
        };
        let (imap_port, imaps_port) = (port(&imap)?, port(&imaps)?);
        let ca_cert = write_config(dir.path(), imap_port, imaps_port)?;
        let config = dir.path().join("dovecot.conf");
        let stderr = fs::File::create(dir.path().join("stderr.log"))
            .map_err(|err| format!("creating stderr.log: {err}"))?;
        // The two sockets arrive as the shell's stdin and stdout, move to fds 3 and 4, and
        // `exec` keeps the shell's pid, which LISTEN_PID must name: the pid we hold (and
        // kill on drop) is Dovecot's master.
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                r#"exec 3<&0 4>&1 0</dev/null 1>/dev/null
LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" -F -c "$1""#,
            )
            .arg(DOVECOT)
            .arg(&config)
            .stdin(Stdio::from(OwnedFd::from(imap)))
            .stdout(Stdio::from(OwnedFd::from(imaps)))
            .stderr(stderr)
            .spawn()
            .map_err(|err| {
                format!("running {DOVECOT}: {err}; run scripts/dovecot-setup.sh as root")
            })?;
        let mut dovecot = Dovecot {
            child,
            imap_port,
            imaps_port,
            ca_cert,
            dir,
        };
        dovecot.wait_for_greeting().await?;
        Ok(dovecot)
    }

    /// Ready once Dovecot greets on the plain port. If it dies instead, its sockets close
    /// with it (this process holds no copy) and the read ends at once.
    async fn wait_for_greeting(&mut self) -> Result<(), String> {
        let greeting = async {
            let mut stream = TcpStream::connect(("127.0.0.1", self.imap_port))
                .await
                .map_err(|err| err.to_string())?;
            let mut line = [0_u8; 64];
            let read = stream
                .read(&mut line)
                .await
                .map_err(|err| err.to_string())?;
            if line[..read].starts_with(b"* OK") {
                Ok(())
            } else {
                Err(format!(
                    "greeted with {:?}",
                    String::from_utf8_lossy(&line[..read])
                ))
            }
        };
        let result = tokio::time::timeout(READY_WITHIN, greeting)
            .await
            .unwrap_or_else(|_| Err(format!("no greeting within {READY_WITHIN:?}")));
        result.map_err(|problem| {
            let status = match self.child.try_wait() {
                Ok(Some(status)) => format!("exited ({status})"),
                _ => "still running".to_owned(),
            };
            format!("Dovecot {status}, {problem}:\n{}", self.logs())
        })
    }

    /// Dovecot's log and anything it printed before its log was set up.
    pub fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("dovecot.log"))
    }

    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// Plain IMAP, which also offers STARTTLS.
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// IMAP over implicit TLS.
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    pub fn user(&self) -> &str {
        USER
    }

    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// The CA that signed the server's certificate (valid for 127.0.0.1 and localhost).
    pub fn ca_cert(&self) -> CertificateDer<'static> {
        self.ca_cert.clone()
    }

    /// Trusts [`Dovecot::ca_cert`].
    pub fn tls_options(&self) -> TlsOptions {
        TlsOptions {
            extra_roots: vec![self.ca_cert()],
        }
    }

    /// The test user's INBOX, reached the given way (the right port for it included).
    pub fn account(&self, security: ImapSecurity) -> ImapAccount {
        let port = match security {
            ImapSecurity::Tls => self.imaps_port,
            ImapSecurity::StartTls | ImapSecurity::Plain => self.imap_port,
        };
        ImapAccount {
            host: self.host().to_owned(),
            port,
            connect_to: Vec::new(),
            security,
            user: USER.to_owned(),
            password: PASSWORD.to_owned(),
            mailbox: "INBOX".to_owned(),
        }
    }

    /// Delivers a message into the test user's INBOX, byte for byte.
    pub async fn append(&self, raw: &[u8]) {
        self.append_to("INBOX", raw).await;
    }

    /// Delivers a message into one of the test user's mailboxes.
    pub async fn append_to(&self, mailbox: &str, raw: &[u8]) {
        let mut session = self.session().await;
        session
            .append(mailbox, None, None, raw)
            .await
            .unwrap_or_else(|err| panic!("APPEND to {mailbox}: {err}\n{}", self.logs()));
        self.log_out(session).await;
    }

    /// Creates a mailbox; deleting and creating one again gives it a new UIDVALIDITY.
    pub async fn create_mailbox(&self, mailbox: &str) {
        let mut session = self.session().await;
        session
            .create(mailbox)
            .await
            .unwrap_or_else(|err| panic!("CREATE {mailbox}: {err}\n{}", self.logs()));
        self.log_out(session).await;
    }

    pub async fn delete_mailbox(&self, mailbox: &str) {
        let mut session = self.session().await;
        session
            .delete(mailbox)
            .await
            .unwrap_or_else(|err| panic!("DELETE {mailbox}: {err}\n{}", self.logs()));
        self.log_out(session).await;
    }

    /// Deletes for good every message of `mailbox` whose UID is above `uid`.
    pub async fn expunge_all_after(&self, mailbox: &str, uid: u32) {
        use futures_util::StreamExt as _;

        let mut session = self.session().await;
        session
            .select(mailbox)
            .await
            .unwrap_or_else(|err| panic!("SELECT {mailbox}: {err}\n{}", self.logs()));
        let range = format!("{}:*", uid + 1);
        {
            let responses = session
                .uid_store(&range, "+FLAGS.SILENT (\\Deleted)")
                .await
                .unwrap_or_else(|err| panic!("UID STORE {range}: {err}\n{}", self.logs()));
            let mut responses = std::pin::pin!(responses);
            while let Some(response) = responses.next().await {
                response.unwrap_or_else(|err| panic!("UID STORE {range}: {err}"));
            }
        }
        {
            let expunged = session
                .expunge()
                .await
                .unwrap_or_else(|err| panic!("EXPUNGE: {err}\n{}", self.logs()));
            let mut expunged = std::pin::pin!(expunged);
            while let Some(seq) = expunged.next().await {
                seq.unwrap_or_else(|err| panic!("EXPUNGE: {err}"));
            }
        }
        self.log_out(session).await;
    }

    /// The flags of the message with this UID, e.g. `["\\Seen"]`.
    pub async fn flags(&self, mailbox: &str, uid: u32) -> Vec<String> {
        use futures_util::StreamExt as _;

        let mut session = self.session().await;
        session
            .examine(mailbox)
            .await
            .unwrap_or_else(|err| panic!("EXAMINE {mailbox}: {err}\n{}", self.logs()));
        let mut flags = Vec::new();
        {
            let responses = session
                .uid_fetch(uid.to_string(), "(UID FLAGS)")
                .await
                .unwrap_or_else(|err| panic!("UID FETCH {uid} FLAGS: {err}\n{}", self.logs()));
            let mut responses = std::pin::pin!(responses);
            while let Some(response) = responses.next().await {
                let fetch = response.unwrap_or_else(|err| panic!("FETCH FLAGS: {err}"));
                if fetch.uid == Some(uid) {
                    flags.extend(fetch.flags().map(|flag| format!("{flag:?}")));
                }
            }
        }
        self.log_out(session).await;
        flags
    }

    async fn session(&self) -> ImapSession {
        open_session(&self.account(ImapSecurity::Plain), &self.tls_options())
            .await
            .unwrap_or_else(|err| panic!("logging in to the test Dovecot: {err}\n{}", self.logs()))
    }

    async fn log_out(&self, mut session: ImapSession) {
        session
            .logout()
            .await
            .unwrap_or_else(|err| panic!("LOGOUT: {err}\n{}", self.logs()));
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGKILL rather than a clean stop: Dovecot's children exit within milliseconds of
        // the master's death (they watch a pipe to it), while `dovecot stop` takes ~3 s and
        // SIGTERM ~1 s, per test. Nothing in a throwaway server needs a clean shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `scripts/dovecot-setup.sh` once per test process, so `cargo test` on a fresh machine
/// installs what it needs.
fn install_once() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dovecot-setup.sh");
        let output = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("running {}: {err}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} failed ({}):\n{}{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let version = Command::new(DOVECOT)
            .arg("--version")
            .output()
            .map_err(|err| format!("running {DOVECOT} --version: {err}"))?;
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        if !version.starts_with("2.3.") {
            return Err(format!(
                "this harness writes a Dovecot 2.3 configuration, but {DOVECOT} is {version}"
            ));
        }
        Ok(())
    });
    if let Err(problem) = installed {
        panic!("Dovecot is not available for the IMAP tests: {problem}");
    }
}

/// Writes the CA-signed certificate, the password file and `dovecot.conf`; returns the CA.
fn write_config(
    dir: &Path,
    imap_port: u16,
    imaps_port: u16,
) -> Result<CertificateDer<'static>, String> {
    let (ca_cert, server_cert_pem, server_key_pem) =
        certificates().map_err(|err| format!("generating certificates: {err}"))?;
    let write = |name: &str, contents: &str, mode: u32| -> Result<(), String> {
        let path = dir.join(name);
        let mut file = fs::File::create(&path).map_err(|err| format!("creating {name}: {err}"))?;
        file.write_all(contents.as_bytes())
            .map_err(|err| format!("writing {name}: {err}"))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|err| format!("setting the mode of {name}: {err}"))
    };
    // Only the master (root) reads the key.
    write("server.key", &server_key_pem, 0o600)?;
    write("server.crt", &server_cert_pem, 0o644)?;
    // The auth process runs as the `dovecot` user and reads this file.
    write(
        "users",
        &format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        0o644,
    )?;
    for (sub, mode) in [("run", 0o755), ("state", 0o755), ("mail", 0o1777)] {
        let path = dir.join(sub);
        fs::create_dir(&path).map_err(|err| format!("creating {sub}: {err}"))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|err| format!("setting the mode of {sub}: {err}"))?;
    }
    let dir = dir.display();
    let config = format!(
        r#"# Written by kaltalk_mail::testing::dovecot for one test run (Dovecot 2.3).
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = yes
ssl_cert = <{dir}/server.crt
ssl_key = <{dir}/server.key
# Plain-text logins on the non-TLS port are what the Plain tests exercise; loopback only.
disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password is answered at once instead of after the default 2 s.
auth_failure_delay = 0
# Dovecot refuses mail access as root; the mail store belongs to the package's `dovecot`
# user, whose uid is below the default first_valid_uid of 500.
first_valid_uid = 1
mail_location = maildir:{dir}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"#
    );
    write("dovecot.conf", &config, 0o644)?;
    Ok(ca_cert)
}

/// A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost: clients
/// trust the CA, as they would a private CA in production.
fn certificates() -> Result<(CertificateDer<'static>, String, String), rcgen::Error> {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "KalTalk test IMAP CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;

    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let server_key = rcgen::KeyPair::generate()?;
    let server_cert = server_params.signed_by(&server_key, &ca)?;
    Ok((
        ca.der().clone(),
        server_cert.pem(),
        server_key.serialize_pem(),
    ))
}
