//! Opening an authenticated IMAP session: TCP, then implicit TLS, STARTTLS or (on loopback
//! only) plain text, then LOGIN.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{ImapAccount, ImapError, ImapSecurity, TlsOptions};

/// An authenticated session, whatever the transport underneath.
pub(crate) type ImapSession = async_imap::Session<MailStream>;

/// One concrete stream type for plain and TLS connections, so the rest of the module is not
/// generic over the transport.
#[derive(Debug)]
pub(crate) enum MailStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for MailStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            MailStream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            MailStream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            MailStream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            MailStream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connects, secures the connection as the account asks, and logs in. The caller bounds the
/// time this takes.
pub(crate) async fn open_session(
    account: &ImapAccount,
    tls: &TlsOptions,
) -> Result<ImapSession, ImapError> {
    let connected = if account.connect_to.is_empty() {
        TcpStream::connect((account.host.as_str(), account.port)).await
    } else {
        TcpStream::connect(account.connect_to.as_slice()).await
    };
    let tcp = connected.map_err(|source| ImapError::Connect {
        host: account.host.clone(),
        port: account.port,
        source,
    })?;
    let client = match account.security {
        ImapSecurity::Tls => {
            let stream = tls_handshake(tcp, &account.host, tls).await?;
            let mut client = async_imap::Client::new(MailStream::Tls(Box::new(stream)));
            read_greeting(&mut client).await?;
            client
        }
        ImapSecurity::StartTls => {
            let mut client = async_imap::Client::new(MailStream::Plain(tcp));
            read_greeting(&mut client).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|err| ImapError::Tls {
                    host: account.host.clone(),
                    reason: format!(
                        "the server refused STARTTLS ({err}); use implicit TLS (usually port 993) if it offers it"
                    ),
                })?;
            // Whatever the server sent after its STARTTLS answer is dropped with the old
            // buffer, as RFC 3501 requires (it could be injected by a man in the middle).
            let MailStream::Plain(tcp) = client.into_inner() else {
                unreachable!("the STARTTLS client was built on a plain stream");
            };
            let stream = tls_handshake(tcp, &account.host, tls).await?;
            async_imap::Client::new(MailStream::Tls(Box::new(stream)))
        }
        ImapSecurity::Plain => {
            // The password would cross the network readable by anyone on the path.
            let peer_is_loopback = tcp.peer_addr().is_ok_and(|addr| addr.ip().is_loopback());
            if !peer_is_loopback {
                return Err(ImapError::Tls {
                    host: account.host.clone(),
                    reason: "plain-text IMAP is only allowed to a server on this machine (loopback); choose TLS or STARTTLS".to_owned(),
                });
            }
            let mut client = async_imap::Client::new(MailStream::Plain(tcp));
            read_greeting(&mut client).await?;
            client
        }
    };
    client
        .login(&account.user, &account.password)
        .await
        .map_err(|(err, _client)| login_error(err, &account.user))
}

fn login_error(err: async_imap::error::Error, user: &str) -> ImapError {
    match err {
        async_imap::error::Error::No(server_said) | async_imap::error::Error::Bad(server_said) => {
            ImapError::Login {
                user: user.to_owned(),
                server_said,
            }
        }
        other => ImapError::Protocol {
            step: "logging in",
            detail: other.to_string(),
        },
    }
}

/// The server speaks first; its greeting must be consumed before the first command.
async fn read_greeting(client: &mut async_imap::Client<MailStream>) -> Result<(), ImapError> {
    match client.read_response().await {
        Ok(Some(_greeting)) => Ok(()),
        Ok(None) => Err(ImapError::Protocol {
            step: "waiting for the greeting",
            detail: "the server closed the connection before greeting".to_owned(),
        }),
        Err(err) => Err(ImapError::Protocol {
            step: "waiting for the greeting",
            detail: err.to_string(),
        }),
    }
}

async fn tls_handshake(
    tcp: TcpStream,
    host: &str,
    tls: &TlsOptions,
) -> Result<TlsStream<TcpStream>, ImapError> {
    let tls_error = |reason: String| ImapError::Tls {
        host: host.to_owned(),
        reason,
    };
    let config = client_config(tls).map_err(|err| {
        tls_error(format!(
            "no usable root certificates ({err}); install the system's CA certificates (ca-certificates)"
        ))
    })?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| tls_error(format!("{host:?} is not a host name or IP address")))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|err| {
            tls_error(format!(
                "{err}; check that the server's certificate is valid for {host} and that the port speaks the chosen security (993 implicit TLS, 143 STARTTLS)"
            ))
        })
}

/// The platform's roots (re-read on each poll, so a renewed CA bundle is picked up) plus the
/// extra roots a test or a private deployment adds.
fn client_config(tls: &TlsOptions) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        tls.extra_roots.iter().cloned(),
        provider.clone(),
    )?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}
