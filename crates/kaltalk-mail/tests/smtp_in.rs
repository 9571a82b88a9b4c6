//! The SMTP listener on a real socket, driven by Python's smtplib, by lettre, and by raw
//! TCP for the protocol's edge cases.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kaltalk_mail::smtp_in::testing::{CollectingSink, SinkServer, spawn_server_with};
use kaltalk_mail::smtp_in::{SmtpConfig, tls_config_from_pem};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SUPPORT: &str = "support@acme.test";

async fn spawn(config: SmtpConfig) -> SinkServer {
    spawn_server_with(config, CollectingSink::with_recipients([SUPPORT]))
        .await
        .1
}

/// A self-signed certificate for `localhost`, as the server's TLS config and as PEM for
/// clients to trust.
struct TestCert {
    server: Arc<rustls::ServerConfig>,
    der: CertificateDer<'static>,
    pem_file: tempfile::NamedTempFile,
}

fn test_cert() -> TestCert {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("rcgen generates a self-signed certificate");
    let server = tls_config_from_pem(
        generated.cert.pem().as_bytes(),
        generated.signing_key.serialize_pem().as_bytes(),
    )
    .expect("the generated PEM files make a TLS config");
    let pem_file = tempfile::NamedTempFile::new().expect("a temporary file for the PEM");
    std::fs::write(pem_file.path(), generated.cert.pem()).expect("writing the PEM");
    TestCert {
        server,
        der: CertificateDer::from(generated.cert.der().to_vec()),
        pem_file,
    }
}

/// Runs a Python script with `sys.argv[1]` = the server's port plus `args`, and returns its
/// stdout. The script fails the test by raising.
async fn python(script: &str, addr: SocketAddr, args: &[&str]) -> String {
    let script = script.to_owned();
    let mut argv = vec![addr.port().to_string()];
    argv.extend(args.iter().map(|arg| (*arg).to_owned()));
    // Blocking in the runtime would stop the server under test from answering.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(argv)
            .output()
            .expect("python3 runs")
    })
    .await
    .expect("the python task finishes");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("python prints UTF-8")
}

/// A hand-driven SMTP client over any stream.
struct Raw<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    fn new(stream: S) -> Self {
        Self {
            stream: BufReader::new(stream),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .get_mut()
            .write_all(bytes)
            .await
            .expect("writing to the server");
    }

    /// Reads one (possibly multi-line) reply: its code and its lines' text.
    async fn reply(&mut self) -> (u16, Vec<String>) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = self
                .stream
                .read_line(&mut line)
                .await
                .expect("reading a reply");
            assert!(
                read > 0,
                "the server closed the connection; replies so far: {lines:?}"
            );
            let code = line[..3]
                .parse::<u16>()
                .expect("a reply starts with a code");
            let last = line.as_bytes()[3] == b' ';
            lines.push(line[4..].trim_end().to_owned());
            if last {
                return (code, lines);
            }
        }
    }

    async fn code(&mut self) -> u16 {
        self.reply().await.0
    }

    /// Sends one command and returns its reply code.
    async fn say(&mut self, command: &str) -> u16 {
        self.send(format!("{command}\r\n").as_bytes()).await;
        self.code().await
    }

    /// True when the server has closed the connection.
    async fn closed(&mut self) -> bool {
        let mut rest = String::new();
        matches!(self.stream.read_line(&mut rest).await, Ok(0) | Err(_))
    }
}

async fn connect(addr: SocketAddr) -> Raw<TcpStream> {
    let mut client = Raw::new(TcpStream::connect(addr).await.expect("connecting"));
    assert_eq!(client.code().await, 220);
    client
}

async fn start_transaction<S: AsyncRead + AsyncWrite + Unpin>(client: &mut Raw<S>) {
    assert_eq!(client.say("MAIL FROM:<ada@example.test>").await, 250);
    assert_eq!(client.say(&format!("RCPT TO:<{SUPPORT}>")).await, 250);
    assert_eq!(client.say("DATA").await, 354);
}

const SEND_WITH_SMTPLIB: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
message = bytes.fromhex(sys.argv[2])
with smtplib.SMTP("127.0.0.1", port) as client:
    client.ehlo("client.test")
    print(client.sendmail("ada@example.test", ["support@acme.test"], message))
"#;

#[tokio::test]
async fn smtplib_delivers_a_message_byte_exact_after_dot_unstuffing() {
    let server = spawn(SmtpConfig::default()).await;
    // smtplib doubles leading dots on the wire; the server must undo exactly that.
    let message = "From: Ada <ada@example.test>\r\nTo: support@acme.test\r\nSubject: Dots\r\n\r\n\
                   .one dot\r\n..two dots\r\n.\r\n8-bit: caf\u{e9}\r\nlast line\r\n";
    let hex: String = message.bytes().map(|byte| format!("{byte:02x}")).collect();

    let printed = python(SEND_WITH_SMTPLIB, server.addr, &[&hex]).await;

    assert_eq!(
        printed.trim(),
        "{}",
        "smtplib reports no refused recipients"
    );
    let messages = server.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].raw, message.as_bytes());
    assert_eq!(messages[0].envelope.mail_from, "ada@example.test");
    assert_eq!(messages[0].envelope.rcpt_to, [SUPPORT]);
    assert!(!messages[0].envelope.tls);
}

#[tokio::test]
async fn an_unknown_recipient_is_refused_with_550() {
    let server = spawn(SmtpConfig::default()).await;
    let script = r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as client:
    try:
        client.sendmail("ada@example.test", ["nobody@acme.test"], b"Subject: x\r\n\r\nhi\r\n")
        print("accepted")
    except smtplib.SMTPRecipientsRefused as refused:
        code, text = refused.recipients["nobody@acme.test"]
        print(code, text.decode())
"#;

    let printed = python(script, server.addr, &[]).await;

    assert!(printed.starts_with("550 5.1.1"), "got {printed:?}");
    assert!(server.messages().await.is_empty());
}

#[tokio::test]
async fn smtplib_delivers_over_starttls_with_a_self_signed_certificate() {
    let cert = test_cert();
    let server = spawn(SmtpConfig {
        tls: Some(Arc::clone(&cert.server)),
        require_tls: true,
        ..SmtpConfig::default()
    })
    .await;
    let script = r#"
import smtplib, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
context.check_hostname = False
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as client:
    client.ehlo("client.test")
    print("offered" if client.has_extn("starttls") else "not offered")
    client.starttls(context=context)
    client.ehlo("client.test")
    print("offered again" if client.has_extn("starttls") else "not offered again")
    client.sendmail("ada@example.test", ["support@acme.test"], b"Subject: secret\r\n\r\nhi\r\n")
    print("sent")
"#;
    let pem = cert.pem_file.path().to_str().expect("a UTF-8 temp path");

    let printed = python(script, server.addr, &[pem]).await;

    assert_eq!(printed, "offered\nnot offered again\nsent\n");
    let messages = server.messages().await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].envelope.tls);
    assert_eq!(messages[0].raw, b"Subject: secret\r\n\r\nhi\r\n");
}

#[tokio::test]
async fn require_tls_refuses_mail_in_plain_text() {
    let cert = test_cert();
    let server = spawn(SmtpConfig {
        tls: Some(cert.server),
        require_tls: true,
        ..SmtpConfig::default()
    })
    .await;
    let mut client = connect(server.addr).await;
    assert_eq!(client.say("EHLO client.test").await, 250);
    assert_eq!(client.say("MAIL FROM:<ada@example.test>").await, 530);
}

#[tokio::test]
async fn commands_pipelined_after_starttls_are_discarded() {
    let cert = test_cert();
    let server = spawn(SmtpConfig {
        tls: Some(Arc::clone(&cert.server)),
        ..SmtpConfig::default()
    })
    .await;
    let mut client = connect(server.addr).await;
    assert_eq!(client.say("EHLO client.test").await, 250);

    // The injection: plain-text commands sent with STARTTLS, hoping the server runs them
    // inside the TLS session as if the client had sent them there.
    client
        .send(b"STARTTLS\r\nMAIL FROM:<evil@example.test>\r\nRCPT TO:<support@acme.test>\r\n")
        .await;
    assert_eq!(client.code().await, 220);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.der.clone())
        .expect("the test certificate is a valid root");
    let tls_client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = client.stream.into_inner();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_client))
        .connect(ServerName::try_from("localhost").expect("a DNS name"), tcp)
        .await
        .expect("the TLS handshake succeeds: the injected bytes were not read as TLS");
    let mut secure = Raw::new(tls);

    assert_eq!(secure.say("EHLO client.test").await, 250);
    // Had the injected MAIL and RCPT run, DATA would be accepted.
    assert_eq!(secure.say("DATA").await, 503);
    assert_eq!(secure.say("RCPT TO:<support@acme.test>").await, 503);
    assert_eq!(
        secure.say("STARTTLS").await,
        503,
        "TLS cannot be started twice"
    );
    start_transaction(&mut secure).await;
    secure.send(b"Subject: fine\r\n\r\nhi\r\n.\r\n").await;
    assert_eq!(secure.code().await, 250);
    let messages = server.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].envelope.mail_from, "ada@example.test");
    assert!(messages[0].envelope.tls);
}

#[tokio::test]
async fn smtplib_too_big_by_size_parameter_then_a_small_message_in_the_same_session() {
    let server = spawn(SmtpConfig {
        max_message_bytes: 1000,
        ..SmtpConfig::default()
    })
    .await;
    // smtplib sends SIZE=<length> on MAIL FROM because the server advertises SIZE.
    let script = r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as client:
    try:
        client.sendmail("ada@example.test", ["support@acme.test"], b"Subject: big\r\n\r\n" + b"x" * 2000 + b"\r\n")
        print("accepted")
    except smtplib.SMTPSenderRefused as refused:
        print(refused.smtp_code, refused.smtp_error.decode())
    client.sendmail("ada@example.test", ["support@acme.test"], b"Subject: small\r\n\r\nhi\r\n")
    print("small sent")
"#;

    let printed = python(script, server.addr, &[]).await;

    let mut lines = printed.lines();
    let refusal = lines.next().expect("a first line");
    assert!(refusal.starts_with("552 5.3.4"), "got {refusal:?}");
    assert_eq!(lines.next(), Some("small sent"));
    let messages = server.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].raw, b"Subject: small\r\n\r\nhi\r\n");
}

#[tokio::test]
async fn too_big_in_data_is_read_to_the_end_then_552_and_the_session_goes_on() {
    let server = spawn(SmtpConfig {
        max_message_bytes: 1000,
        ..SmtpConfig::default()
    })
    .await;
    let mut client = connect(server.addr).await;
    assert_eq!(client.say("EHLO client.test").await, 250);
    assert_eq!(client.say("MAIL FROM:<a@b.test> SIZE=100000").await, 552);

    start_transaction(&mut client).await;
    let line = format!("{}\r\n", "y".repeat(98));
    let mut big = "Subject: big\r\n\r\n".to_owned();
    for _ in 0..50 {
        big.push_str(&line);
    }
    // The terminator comes long after the cap; nothing of the body may be read as commands.
    big.push_str("QUIT\r\n.\r\n");
    client.send(big.as_bytes()).await;
    let (code, text) = client.reply().await;
    assert_eq!(code, 552, "{text:?}");
    assert!(text[0].starts_with("5.3.4"));

    start_transaction(&mut client).await;
    client.send(b"Subject: small\r\n\r\nhi\r\n.\r\n").await;
    assert_eq!(client.code().await, 250);
    assert_eq!(client.say("QUIT").await, 221);
    let messages = server.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].raw, b"Subject: small\r\n\r\nhi\r\n");
}

#[tokio::test]
async fn a_failing_sink_gets_451_and_nothing_is_claimed_delivered() {
    let (addr, server) = spawn_server_with(SmtpConfig::default(), CollectingSink::new()).await;
    server.sink.set_fail_deliveries(true);
    let script = r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as client:
    try:
        client.sendmail("ada@example.test", ["support@acme.test"], b"Subject: x\r\n\r\nhi\r\n")
        print("accepted")
    except smtplib.SMTPDataError as failed:
        print(failed.smtp_code, failed.smtp_error.decode())
"#;

    let printed = python(script, addr, &[]).await;

    assert!(printed.starts_with("451 4.3.0"), "got {printed:?}");
    assert!(server.messages().await.is_empty());

    // The client retries, and once storage works again the message is accepted.
    server.sink.set_fail_deliveries(false);
    let mut client = connect(addr).await;
    assert_eq!(client.say("EHLO client.test").await, 250);
    start_transaction(&mut client).await;
    client.send(b"Subject: x\r\n\r\nhi\r\n.\r\n").await;
    let (code, text) = client.reply().await;
    assert_eq!((code, text[0].as_str()), (250, "2.0.0 queued as test-1"));
}

#[tokio::test]
async fn rset_clears_the_transaction_and_data_needs_recipients() {
    let server = spawn(SmtpConfig::default()).await;
    let mut client = connect(server.addr).await;
    assert_eq!(client.say("EHLO client.test").await, 250);
    assert_eq!(client.say("DATA").await, 503);
    assert_eq!(
        client.say("MAIL FROM:<>").await,
        250,
        "the null sender is allowed"
    );
    assert_eq!(client.say("DATA").await, 503, "DATA before RCPT");
    assert_eq!(client.say(&format!("RCPT TO:<{SUPPORT}>")).await, 250);
    assert_eq!(client.say("RSET").await, 250);
    assert_eq!(
        client.say("DATA").await,
        503,
        "RSET forgot the sender and recipient"
    );
    assert_eq!(client.say("RCPT TO:<support@acme.test>").await, 503);

    start_transaction(&mut client).await;
    client.send(b"Subject: after rset\r\n\r\nhi\r\n.\r\n").await;
    assert_eq!(client.code().await, 250);
    assert_eq!(server.messages().await.len(), 1);
}

#[tokio::test]
async fn ehlo_advertises_the_extensions_and_odd_commands_get_their_codes() {
    let server = spawn(SmtpConfig {
        max_message_bytes: 12345,
        ..SmtpConfig::default()
    })
    .await;
    let mut client = connect(server.addr).await;
    client.send(b"EHLO client.test\r\n").await;
    let (code, lines) = client.reply().await;
    assert_eq!(code, 250);
    for extension in [
        "PIPELINING",
        "SIZE 12345",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
    ] {
        assert!(
            lines.iter().any(|line| line == extension),
            "{extension} missing from {lines:?}"
        );
    }
    assert!(
        !lines.iter().any(|line| line == "STARTTLS"),
        "no certificate, no STARTTLS"
    );
    assert_eq!(client.say("NOOP").await, 250);
    assert_eq!(client.say("VRFY support").await, 252);
    assert_eq!(client.say("HELP").await, 214);
    assert_eq!(client.say("EXPN staff").await, 502);
    assert_eq!(client.say("STARTTLS").await, 502);
    assert_eq!(client.say("WHAT").await, 500);
    assert_eq!(client.say(&format!("NOOP {}", "z".repeat(2000))).await, 500);
    assert_eq!(
        client.say("NOOP").await,
        250,
        "the session survives a line too long"
    );
    assert_eq!(client.say("QUIT").await, 221);
    assert!(client.closed().await);
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let server = spawn(SmtpConfig::default()).await;
    let mut client = connect(server.addr).await;
    client
        .send(
            b"EHLO client.test\r\nMAIL FROM:<ada@example.test>\r\nRCPT TO:<nobody@acme.test>\r\n\
              RCPT TO:<support@acme.test>\r\nDATA\r\n",
        )
        .await;
    assert_eq!(client.code().await, 250);
    assert_eq!(client.code().await, 250);
    assert_eq!(client.code().await, 550);
    assert_eq!(client.code().await, 250);
    assert_eq!(client.code().await, 354);
    // Bare LF is content; a dot line next to one does not end the message (that would
    // allow SMTP smuggling), only CRLF.CRLF does.
    client
        .send(b"Subject: p\r\n\r\nbare\nline feeds\n.\r\nstill content\r\n.\r\n")
        .await;
    assert_eq!(client.code().await, 250);
    let messages = server.messages().await;
    assert_eq!(
        messages[0].raw,
        b"Subject: p\r\n\r\nbare\nline feeds\n.\r\nstill content\r\n"
    );
    assert_eq!(messages[0].envelope.rcpt_to, [SUPPORT]);
}

#[tokio::test]
async fn lettre_delivers_through_the_listener() {
    let server = spawn(SmtpConfig::default()).await;
    let mailer = kaltalk_mail::Mailer::new(
        Some(&format!("smtp://{}", server.addr)),
        "KalTalk <noreply@acme.test>",
    )
    .expect("a valid relay URL");

    mailer
        .send(kaltalk_mail::OutgoingEmail {
            to: SUPPORT,
            subject: "Via lettre",
            text: ".leading dot survives\r\n",
            html: "<p>hi</p>",
        })
        .await
        .expect("lettre sends through our listener");

    let messages = server.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].envelope.mail_from, "noreply@acme.test");
    let raw = String::from_utf8_lossy(&messages[0].raw);
    assert!(raw.contains("Subject: Via lettre\r\n"), "{raw}");
    assert!(raw.contains("\r\n.leading dot survives\r\n"), "{raw}");
}

#[tokio::test]
async fn lettre_delivers_over_starttls() {
    use lettre::AsyncTransport;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};

    let cert = test_cert();
    let server = spawn(SmtpConfig {
        tls: Some(Arc::clone(&cert.server)),
        require_tls: true,
        ..SmtpConfig::default()
    })
    .await;
    let pem = std::fs::read(cert.pem_file.path()).expect("reading the PEM");
    let tls = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_pem(&pem).expect("a PEM certificate"))
        .build_rustls()
        .expect("TLS parameters");
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(server.addr.port())
            .tls(Tls::Required(tls))
            .build();
    let message = lettre::Message::builder()
        .from("ada@example.test".parse().expect("an address"))
        .to(SUPPORT.parse().expect("an address"))
        .subject("Over TLS")
        .body("hi".to_owned())
        .expect("a message");

    transport
        .send(message)
        .await
        .expect("lettre sends over STARTTLS");

    let messages = server.messages().await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].envelope.tls);
}

#[tokio::test]
async fn connections_over_the_cap_get_421() {
    let server = spawn(SmtpConfig {
        max_connections: 1,
        ..SmtpConfig::default()
    })
    .await;
    let mut first = connect(server.addr).await;

    let mut second = Raw::new(TcpStream::connect(server.addr).await.expect("connecting"));
    assert_eq!(second.code().await, 421);
    assert!(second.closed().await);
    assert_eq!(first.say("NOOP").await, 250);
}

#[tokio::test]
async fn an_idle_client_gets_421_and_is_disconnected() {
    let server = spawn(SmtpConfig {
        command_timeout: Duration::from_millis(200),
        ..SmtpConfig::default()
    })
    .await;
    let mut client = connect(server.addr).await;
    let (code, text) = client.reply().await;
    assert_eq!(code, 421);
    assert!(text[0].starts_with("4.4.2"));
    assert!(client.closed().await);
}

#[tokio::test]
async fn shutdown_tells_idle_sessions_421_and_stops_accepting() {
    let server = spawn(SmtpConfig::default()).await;
    let mut client = connect(server.addr).await;
    assert_eq!(client.say("EHLO client.test").await, 250);

    drop(server);

    let (code, text) = client.reply().await;
    assert_eq!(code, 421);
    assert!(text[0].starts_with("4.3.2"));
    assert!(client.closed().await);
}

#[tokio::test]
async fn shutdown_lets_a_message_in_progress_finish() {
    let server = spawn(SmtpConfig::default()).await;
    let sink = std::sync::Arc::clone(&server.sink);
    let mut client = connect(server.addr).await;
    assert_eq!(client.say("EHLO client.test").await, 250);
    start_transaction(&mut client).await;
    client.send(b"Subject: half\r\n\r\nfirst half\r\n").await;

    drop(server);
    client.send(b"second half\r\n.\r\n").await;

    assert_eq!(
        client.code().await,
        250,
        "the message was stored despite the shutdown"
    );
    assert_eq!(client.code().await, 421, "then the session is closed");
    let messages = sink.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].raw,
        b"Subject: half\r\n\r\nfirst half\r\nsecond half\r\n"
    );
}

#[tokio::test]
async fn messages_over_the_shared_memory_budget_get_452_and_go_through_later() {
    let server = spawn(SmtpConfig {
        max_message_bytes: 2000,
        max_buffered_bytes: 3000,
        ..SmtpConfig::default()
    })
    .await;
    let lines = |tag: &str| format!("{tag}{}\r\n", "x".repeat(98)).repeat(15); // 1,500 bytes

    // One sender is in the middle of a 1,500-byte message...
    let mut first = connect(server.addr).await;
    assert_eq!(first.say("EHLO first.test").await, 250);
    start_transaction(&mut first).await;
    first
        .send(format!("Subject: first\r\n\r\n{}", lines("a")).as_bytes())
        .await;

    // ...so a second one of the same size does not fit beside it: read to its end, then
    // a temporary refusal. (Until the server has read the first sender's bytes the second
    // may still fit; it retries like a real sender would.)
    let mut second = connect(server.addr).await;
    assert_eq!(second.say("EHLO second.test").await, 250);
    let second_message = format!("Subject: second\r\n\r\n{}.\r\n", lines("b"));
    let mut refused = None;
    for _ in 0..100 {
        start_transaction(&mut second).await;
        second.send(second_message.as_bytes()).await;
        let (code, text) = second.reply().await;
        if code == 452 {
            refused = Some(text);
            break;
        }
        assert_eq!(code, 250, "{text:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = refused.expect("a 452 once the first message holds its share");
    assert!(refused[0].starts_with("4.3.1"), "{refused:?}");

    // Once the first message is delivered its share is back, and the retry goes through.
    first.send(b".\r\n").await;
    assert_eq!(first.code().await, 250);
    start_transaction(&mut second).await;
    second.send(second_message.as_bytes()).await;
    assert_eq!(second.code().await, 250);
    let messages = server.messages().await;
    assert!(
        messages
            .iter()
            .any(|m| m.raw.starts_with(b"Subject: first"))
    );
    let last = messages.last().expect("messages");
    assert!(
        last.raw.starts_with(b"Subject: second"),
        "{:?}",
        String::from_utf8_lossy(&last.raw)
    );
}
