//! One SMTP conversation's state, without any I/O: the connection hands it command lines
//! and finished DATA, and it answers with a reply and what to do next. Tests drive it
//! directly.

use std::net::SocketAddr;
use std::sync::Arc;

use super::data::DataOutcome;
use super::reply::Reply;
use super::{Envelope, MailSink, RecipientVerdict, SmtpConfig};

/// RFC 5321 §4.5.3.1.4 allows 512 octets for a command line; we take up to 1000 so that
/// long parameters from real clients still fit.
pub(crate) const MAX_COMMAND_LINE: usize = 1000;

/// A client that keeps getting errors is a probe or a broken bot: after this many failed
/// commands (unknown recipients included, which stops address harvesting) it is cut off.
const MAX_FAILED_COMMANDS: u32 = 20;

/// What the connection must do after sending the reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    ReadCommand,
    /// Read the message up to `CRLF.CRLF`, then call [`Session::finish_data`].
    ReadData,
    /// Discard anything already buffered, then run the TLS handshake and call
    /// [`Session::tls_started`].
    StartTls,
    Close,
}

struct Transaction {
    mail_from: String,
    rcpt_to: Vec<String>,
}

pub(crate) struct Session {
    config: Arc<SmtpConfig>,
    peer: SocketAddr,
    tls: bool,
    greeted: bool,
    transaction: Option<Transaction>,
    failed_commands: u32,
}

impl Session {
    pub fn new(config: Arc<SmtpConfig>, peer: SocketAddr) -> Self {
        Self {
            config,
            peer,
            tls: false,
            greeted: false,
            transaction: None,
            failed_commands: 0,
        }
    }

    pub fn greeting(&self) -> Reply {
        Reply::new(220, format!("{} ESMTP KalTalk ready", self.config.hostname))
    }

    pub fn timeout_reply(&self) -> Reply {
        Reply::new(
            421,
            format!(
                "4.4.2 {} idle too long, closing connection",
                self.config.hostname
            ),
        )
    }

    pub fn shutdown_reply(&self) -> Reply {
        Reply::new(
            421,
            format!(
                "4.3.2 {} shutting down, try again later",
                self.config.hostname
            ),
        )
    }

    pub fn line_too_long(&mut self) -> (Reply, Next) {
        self.counted((Reply::new(500, "5.5.2 Line too long"), Next::ReadCommand))
    }

    /// Counts permanent failures and ends the session once there are too many.
    fn counted(&mut self, (reply, next): (Reply, Next)) -> (Reply, Next) {
        if reply.code < 500 {
            return (reply, next);
        }
        self.failed_commands += 1;
        if self.failed_commands < MAX_FAILED_COMMANDS {
            return (reply, next);
        }
        tracing::info!(peer = %self.peer, "SMTP: disconnected a client after too many failed commands");
        (
            Reply::new(
                421,
                format!(
                    "4.7.0 {} too many errors, closing connection",
                    self.config.hostname
                ),
            ),
            Next::Close,
        )
    }

    /// After a successful handshake everything learnt in plain text is forgotten (RFC 3207
    /// §4.2): the client must say EHLO again.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.greeted = false;
        self.transaction = None;
    }

    /// `line` is one command without its line ending.
    pub async fn command(&mut self, line: &[u8], sink: &dyn MailSink) -> (Reply, Next) {
        let outcome = self.answer(line, sink).await;
        self.counted(outcome)
    }

    async fn answer(&mut self, line: &[u8], sink: &dyn MailSink) -> (Reply, Next) {
        let Ok(line) = std::str::from_utf8(line) else {
            return (
                Reply::new(500, "5.5.2 Syntax error: not UTF-8"),
                Next::ReadCommand,
            );
        };
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb, argument.trim()),
            None => (line.trim(), ""),
        };
        let continue_with = |reply| (reply, Next::ReadCommand);
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => continue_with(self.hello(argument, true)),
            "HELO" => continue_with(self.hello(argument, false)),
            "STARTTLS" => self.start_tls(argument),
            "MAIL" => continue_with(self.mail(argument)),
            "RCPT" => continue_with(self.rcpt(argument, sink).await),
            "DATA" => self.data(argument),
            "RSET" => {
                self.transaction = None;
                continue_with(Reply::new(250, "2.0.0 OK"))
            }
            "NOOP" => continue_with(Reply::new(250, "2.0.0 OK")),
            "QUIT" => (
                Reply::new(
                    221,
                    format!("2.0.0 {} closing connection", self.config.hostname),
                ),
                Next::Close,
            ),
            // We never confirm which addresses exist to a probe (RFC 5321 §3.5.3).
            "VRFY" => continue_with(Reply::new(
                252,
                "2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
            )),
            "HELP" => continue_with(Reply::new(
                214,
                "2.0.0 Commands: EHLO HELO STARTTLS MAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
            )),
            "EXPN" | "TURN" | "ETRN" | "AUTH" | "BDAT" | "SEND" | "SOML" | "SAML" => {
                continue_with(Reply::new(502, "5.5.1 Command not implemented"))
            }
            _ => continue_with(Reply::new(500, "5.5.2 Command not recognized")),
        }
    }

    fn hello(&mut self, domain: &str, extended: bool) -> Reply {
        if domain.is_empty() {
            return Reply::new(501, "5.5.4 Syntax: EHLO your-hostname");
        }
        self.greeted = true;
        self.transaction = None;
        let first = format!("{} greets {domain}", self.config.hostname);
        if !extended {
            return Reply::new(250, first);
        }
        let mut lines = vec![
            first,
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.config.max_message_bytes),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.config.tls.is_some() && !self.tls {
            lines.push("STARTTLS".to_owned());
        }
        lines.push("HELP".to_owned());
        Reply::multiline(250, lines)
    }

    fn start_tls(&mut self, argument: &str) -> (Reply, Next) {
        if !argument.is_empty() {
            return (
                Reply::new(501, "5.5.4 STARTTLS takes no parameters"),
                Next::ReadCommand,
            );
        }
        if self.tls {
            return (
                Reply::new(503, "5.5.1 TLS is already active"),
                Next::ReadCommand,
            );
        }
        if self.config.tls.is_none() {
            return (
                Reply::new(502, "5.5.1 STARTTLS not offered here"),
                Next::ReadCommand,
            );
        }
        (Reply::new(220, "2.0.0 Ready to start TLS"), Next::StartTls)
    }

    fn mail(&mut self, argument: &str) -> Reply {
        if !self.greeted {
            return Reply::new(503, "5.5.1 Send EHLO first");
        }
        if self.config.require_tls && !self.tls {
            return Reply::new(530, "5.7.0 Must issue a STARTTLS command first");
        }
        if self.transaction.is_some() {
            return Reply::new(503, "5.5.1 Sender already given; RSET to start over");
        }
        let Some(rest) = strip_prefix_ignore_case(argument, "FROM:") else {
            return Reply::new(501, "5.5.4 Syntax: MAIL FROM:<address>");
        };
        let Some((address, parameters)) = parse_path(rest) else {
            return Reply::new(501, "5.1.7 Bad sender address syntax");
        };
        for parameter in parameters.split_ascii_whitespace() {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match name.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(size) if size > self.config.max_message_bytes as u64 => {
                        return Reply::new(
                            552,
                            format!(
                                "5.3.4 Message too big: the limit is {} bytes",
                                self.config.max_message_bytes
                            ),
                        );
                    }
                    Ok(_) => {}
                    Err(_) => return Reply::new(501, "5.5.4 SIZE needs a number"),
                },
                // We store bytes as they come, so 7-bit and 8-bit bodies are the same to us.
                "BODY" if matches!(value.to_ascii_uppercase().as_str(), "7BIT" | "8BITMIME") => {}
                _ => {
                    return Reply::new(555, format!("5.5.4 Unsupported parameter {name}"));
                }
            }
        }
        self.transaction = Some(Transaction {
            mail_from: address.to_owned(),
            rcpt_to: Vec::new(),
        });
        Reply::new(250, "2.1.0 Sender OK")
    }

    async fn rcpt(&mut self, argument: &str, sink: &dyn MailSink) -> Reply {
        let max_recipients = self.config.max_recipients;
        let Some(transaction) = self.transaction.as_mut() else {
            return Reply::new(503, "5.5.1 Need MAIL before RCPT");
        };
        let Some(rest) = strip_prefix_ignore_case(argument, "TO:") else {
            return Reply::new(501, "5.5.4 Syntax: RCPT TO:<address>");
        };
        let Some((address, parameters)) = parse_path(rest) else {
            return Reply::new(501, "5.1.3 Bad recipient address syntax");
        };
        if address.is_empty() {
            return Reply::new(501, "5.1.3 Bad recipient address syntax");
        }
        if !parameters.is_empty() {
            return Reply::new(555, "5.5.4 RCPT parameters are not supported");
        }
        if transaction.rcpt_to.len() >= max_recipients {
            return Reply::new(452, "4.5.3 Too many recipients");
        }
        match sink.recipient(address).await {
            RecipientVerdict::Accept => {
                transaction.rcpt_to.push(address.to_owned());
                Reply::new(250, "2.1.5 Recipient OK")
            }
            RecipientVerdict::Unknown => Reply::new(550, "5.1.1 No such mailbox here"),
            RecipientVerdict::TempFail => Reply::new(
                451,
                "4.3.0 Cannot check this recipient now, try again later",
            ),
        }
    }

    fn data(&mut self, argument: &str) -> (Reply, Next) {
        if !argument.is_empty() {
            return (
                Reply::new(501, "5.5.4 DATA takes no parameters"),
                Next::ReadCommand,
            );
        }
        match &self.transaction {
            Some(transaction) if !transaction.rcpt_to.is_empty() => (
                Reply::new(354, "Start mail input; end with <CRLF>.<CRLF>"),
                Next::ReadData,
            ),
            Some(_) => (
                Reply::new(503, "5.5.1 Need RCPT before DATA"),
                Next::ReadCommand,
            ),
            None => (
                Reply::new(503, "5.5.1 Need MAIL before DATA"),
                Next::ReadCommand,
            ),
        }
    }

    /// Ends the transaction whatever happens: a refused or failed message is retried by
    /// the client from MAIL on.
    pub async fn finish_data(&mut self, outcome: DataOutcome, sink: &dyn MailSink) -> Reply {
        let Some(transaction) = self.transaction.take() else {
            // Unreachable through `command`, which only asks for DATA inside a transaction.
            return Reply::new(503, "5.5.1 Need MAIL before DATA");
        };
        // The message's share of the memory budget is held until it has been delivered.
        let (raw, _reservation) = match outcome {
            DataOutcome::Complete(raw, reservation) => (raw, reservation),
            DataOutcome::OutOfMemoryBudget => {
                tracing::warn!(
                    peer = %self.peer,
                    limit = self.config.max_buffered_bytes,
                    "SMTP: messages being received hold the whole memory budget; asked the sender to retry"
                );
                return Reply::new(452, "4.3.1 Insufficient system storage, try again later");
            }
            DataOutcome::TooLarge { received_bytes } => {
                tracing::info!(
                    peer = %self.peer,
                    received_bytes,
                    limit = self.config.max_message_bytes,
                    "SMTP: refused a message over the size limit"
                );
                return Reply::new(
                    552,
                    format!(
                        "5.3.4 Message too big: the limit is {} bytes",
                        self.config.max_message_bytes
                    ),
                );
            }
        };
        let envelope = Envelope {
            mail_from: transaction.mail_from,
            rcpt_to: transaction.rcpt_to,
            peer: self.peer,
            tls: self.tls,
        };
        let bytes = raw.len();
        match sink.deliver(&envelope, raw).await {
            Ok(id) => {
                tracing::info!(
                    peer = %envelope.peer,
                    from = %envelope.mail_from,
                    rcpt_count = envelope.rcpt_to.len(),
                    bytes,
                    id = %id,
                    tls = envelope.tls,
                    "SMTP: accepted a message"
                );
                // A line break in the id would end our reply early and desynchronise
                // the client.
                let id: String = id.chars().filter(|c| !c.is_control()).collect();
                Reply::new(250, format!("2.0.0 queued as {id}"))
            }
            Err(error) => {
                tracing::warn!(
                    peer = %envelope.peer,
                    from = %envelope.mail_from,
                    bytes,
                    error = %error,
                    "SMTP: could not store a message; the sender was told to retry"
                );
                Reply::new(451, "4.3.0 Could not store the message, try again later")
            }
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits `<address> PARAMS` into the address and the parameters. Leniently accepts a
/// space after the colon and an address without brackets, as many clients send them;
/// drops an obsolete source route (`<@relay:user@host>`). `<>` gives an empty address.
fn parse_path(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let (path, parameters) = match text.strip_prefix('<') {
        Some(rest) => {
            let end = rest.find('>')?;
            (&rest[..end], &rest[end + 1..])
        }
        None => text.split_once(' ').unwrap_or((text, "")),
    };
    let address = match path.strip_prefix('@') {
        Some(routed) => routed.split_once(':')?.1,
        None => path,
    };
    let valid = address.is_empty()
        || (!address.contains(char::is_whitespace)
            && !address.contains(['<', '>'])
            && address.chars().all(|c| !c.is_control()));
    valid.then_some((address, parameters.trim()))
}

#[cfg(test)]
mod tests {
    use super::super::DeliveryError;
    use super::*;

    /// A complete message outside any budget.
    fn complete(raw: &[u8]) -> DataOutcome {
        let budget = crate::smtp_in::data::MemoryBudget::new(0);
        DataOutcome::Complete(raw.to_vec(), crate::smtp_in::data::Reservation::new(budget))
    }
    use tokio::sync::Mutex;

    /// Knows one address, and records deliveries (or fails them).
    #[derive(Default)]
    struct FakeSink {
        fail_delivery: bool,
        delivered: Mutex<Vec<(Envelope, Vec<u8>)>>,
    }

    #[async_trait::async_trait]
    impl MailSink for FakeSink {
        async fn recipient(&self, address: &str) -> RecipientVerdict {
            match address {
                "support@acme.test" | "sales@acme.test" => RecipientVerdict::Accept,
                "busy@acme.test" => RecipientVerdict::TempFail,
                _ => RecipientVerdict::Unknown,
            }
        }

        async fn deliver(
            &self,
            envelope: &Envelope,
            raw: Vec<u8>,
        ) -> Result<String, DeliveryError> {
            if self.fail_delivery {
                return Err(DeliveryError::new("database is down"));
            }
            let mut delivered = self.delivered.lock().await;
            delivered.push((envelope.clone(), raw));
            Ok(format!("m{}", delivered.len()))
        }
    }

    fn session(config: SmtpConfig) -> Session {
        let peer = "127.0.0.1:40000".parse().expect("a literal socket address");
        Session::new(Arc::new(config), peer)
    }

    async fn say(session: &mut Session, sink: &FakeSink, line: &str) -> (u16, Next) {
        let (reply, next) = session.command(line.as_bytes(), sink).await;
        (reply.code, next)
    }

    async fn code(session: &mut Session, sink: &FakeSink, line: &str) -> u16 {
        say(session, sink, line).await.0
    }

    #[tokio::test]
    async fn a_whole_transaction_reaches_the_sink_with_its_envelope() {
        let sink = FakeSink::default();
        let mut session = session(SmtpConfig::default());
        assert_eq!(code(&mut session, &sink, "EHLO client.test").await, 250);
        assert_eq!(
            code(
                &mut session,
                &sink,
                "MAIL FROM:<ada@example.test> SIZE=100 BODY=8BITMIME"
            )
            .await,
            250
        );
        assert_eq!(
            code(&mut session, &sink, "RCPT TO:<support@acme.test>").await,
            250
        );
        assert_eq!(
            code(&mut session, &sink, "rcpt to: <sales@acme.test>").await,
            250
        );
        assert_eq!(
            say(&mut session, &sink, "DATA").await,
            (354, Next::ReadData)
        );
        let reply = session.finish_data(complete(b"hello\r\n"), &sink).await;
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines, vec!["2.0.0 queued as m1".to_owned()]);
        let delivered = sink.delivered.lock().await;
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].0.mail_from, "ada@example.test");
        assert_eq!(
            delivered[0].0.rcpt_to,
            ["support@acme.test", "sales@acme.test"]
        );
        assert!(!delivered[0].0.tls);
        assert_eq!(delivered[0].1, b"hello\r\n");
    }

    #[tokio::test]
    async fn sequence_errors_are_503() {
        let sink = FakeSink::default();
        let mut session = session(SmtpConfig::default());
        assert_eq!(code(&mut session, &sink, "MAIL FROM:<a@b.test>").await, 503);
        assert_eq!(code(&mut session, &sink, "HELO client.test").await, 250);
        assert_eq!(
            code(&mut session, &sink, "RCPT TO:<support@acme.test>").await,
            503
        );
        assert_eq!(code(&mut session, &sink, "DATA").await, 503);
        assert_eq!(code(&mut session, &sink, "MAIL FROM:<>").await, 250);
        assert_eq!(code(&mut session, &sink, "MAIL FROM:<a@b.test>").await, 503);
        assert_eq!(code(&mut session, &sink, "DATA").await, 503);
    }

    #[tokio::test]
    async fn recipient_verdicts_and_the_recipient_cap() {
        let sink = FakeSink::default();
        let mut session = session(SmtpConfig {
            max_recipients: 1,
            ..SmtpConfig::default()
        });
        code(&mut session, &sink, "EHLO c").await;
        code(&mut session, &sink, "MAIL FROM:<>").await;
        assert_eq!(
            code(&mut session, &sink, "RCPT TO:<nobody@acme.test>").await,
            550
        );
        assert_eq!(
            code(&mut session, &sink, "RCPT TO:<busy@acme.test>").await,
            451
        );
        assert_eq!(code(&mut session, &sink, "RCPT TO:<>").await, 501);
        assert_eq!(
            code(&mut session, &sink, "RCPT TO:<support@acme.test>").await,
            250
        );
        assert_eq!(
            code(&mut session, &sink, "RCPT TO:<sales@acme.test>").await,
            452
        );
    }

    #[tokio::test]
    async fn size_parameter_over_the_limit_is_refused_before_data() {
        let sink = FakeSink::default();
        let mut session = session(SmtpConfig {
            max_message_bytes: 100,
            ..SmtpConfig::default()
        });
        code(&mut session, &sink, "EHLO c").await;
        assert_eq!(
            code(&mut session, &sink, "MAIL FROM:<a@b.test> SIZE=101").await,
            552
        );
        assert_eq!(
            code(&mut session, &sink, "MAIL FROM:<a@b.test> SIZE=x").await,
            501
        );
        assert_eq!(
            code(&mut session, &sink, "MAIL FROM:<a@b.test> FOO=1").await,
            555
        );
        assert_eq!(
            code(&mut session, &sink, "MAIL FROM:<a@b.test> SIZE=100").await,
            250
        );
    }

    #[tokio::test]
    async fn a_failed_delivery_is_451_and_ends_the_transaction() {
        let sink = FakeSink {
            fail_delivery: true,
            ..FakeSink::default()
        };
        let mut session = session(SmtpConfig::default());
        code(&mut session, &sink, "EHLO c").await;
        code(&mut session, &sink, "MAIL FROM:<a@b.test>").await;
        code(&mut session, &sink, "RCPT TO:<support@acme.test>").await;
        code(&mut session, &sink, "DATA").await;
        let reply = session.finish_data(complete(b"x\r\n"), &sink).await;
        assert_eq!(reply.code, 451);
        assert!(
            !reply.lines.concat().contains("database"),
            "internal cause leaked"
        );
        assert_eq!(code(&mut session, &sink, "DATA").await, 503);
    }

    #[tokio::test]
    async fn starttls_offered_only_with_a_certificate_and_required_when_configured() {
        let sink = FakeSink::default();
        let mut plain = session(SmtpConfig::default());
        let (ehlo, _) = plain.command(b"EHLO c", &sink).await;
        assert!(!ehlo.lines.iter().any(|line| line == "STARTTLS"));
        assert!(ehlo.lines.iter().any(|line| line == "SIZE 26214400"));
        assert_eq!(code(&mut plain, &sink, "STARTTLS").await, 502);

        let mut strict = session(SmtpConfig {
            require_tls: true,
            ..SmtpConfig::default()
        });
        code(&mut strict, &sink, "EHLO c").await;
        assert_eq!(code(&mut strict, &sink, "MAIL FROM:<a@b.test>").await, 530);
        strict.tls_started();
        assert_eq!(
            code(&mut strict, &sink, "MAIL FROM:<a@b.test>").await,
            503,
            "EHLO must be repeated after TLS"
        );
        code(&mut strict, &sink, "EHLO c").await;
        assert_eq!(code(&mut strict, &sink, "MAIL FROM:<a@b.test>").await, 250);
    }

    #[tokio::test]
    async fn other_commands() {
        let sink = FakeSink::default();
        let mut session = session(SmtpConfig::default());
        assert_eq!(code(&mut session, &sink, "NOOP").await, 250);
        assert_eq!(code(&mut session, &sink, "VRFY support").await, 252);
        assert_eq!(code(&mut session, &sink, "HELP").await, 214);
        assert_eq!(code(&mut session, &sink, "EXPN staff").await, 502);
        assert_eq!(code(&mut session, &sink, "FROB").await, 500);
        assert_eq!(code(&mut session, &sink, "EHLO").await, 501);
        assert_eq!(session.command(b"\xff\xfe", &sink).await.0.code, 500);
        assert_eq!(say(&mut session, &sink, "QUIT").await, (221, Next::Close));
    }

    #[tokio::test]
    async fn too_many_failed_commands_end_the_session() {
        let sink = FakeSink::default();
        let mut session = session(SmtpConfig::default());
        code(&mut session, &sink, "EHLO c").await;
        code(&mut session, &sink, "MAIL FROM:<>").await;
        for _ in 1..MAX_FAILED_COMMANDS {
            assert_eq!(
                code(&mut session, &sink, "RCPT TO:<guess@acme.test>").await,
                550
            );
            assert_eq!(code(&mut session, &sink, "NOOP").await, 250);
        }
        assert_eq!(
            say(&mut session, &sink, "RCPT TO:<guess@acme.test>").await,
            (421, Next::Close)
        );
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("<a@b.test>"), Some(("a@b.test", "")));
        assert_eq!(
            parse_path(" <a@b.test> SIZE=5"),
            Some(("a@b.test", "SIZE=5"))
        );
        assert_eq!(parse_path("<>"), Some(("", "")));
        assert_eq!(parse_path("a@b.test SIZE=5"), Some(("a@b.test", "SIZE=5")));
        assert_eq!(parse_path("<@relay.test:a@b.test>"), Some(("a@b.test", "")));
        assert_eq!(parse_path("<a@b.test"), None);
        assert_eq!(parse_path("<a b@c.test>"), None);
    }
}
