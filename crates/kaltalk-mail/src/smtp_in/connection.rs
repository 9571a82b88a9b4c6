//! The socket side of one SMTP connection: reads bounded lines with a timeout, feeds the
//! [`Session`], writes its replies, and upgrades to TLS on STARTTLS.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::data::{DataReader, MemoryBudget};
use super::reply::Reply;
use super::session::{MAX_COMMAND_LINE, Next, Session};
use super::{MailSink, SmtpConfig};

/// Pieces of a DATA line are read at most this long; longer lines arrive in pieces.
const MAX_DATA_PIECE: usize = 64 * 1024;

/// Tells a client over the connection cap to come back later.
pub(super) async fn refuse_busy(mut stream: TcpStream, peer: SocketAddr, config: &SmtpConfig) {
    tracing::warn!(%peer, limit = config.max_connections, "SMTP: too many connections, refused one");
    let reply = Reply::new(
        421,
        format!(
            "4.3.2 {} too many connections, try again later",
            config.hostname
        ),
    );
    // The client may already be gone; there is nobody else to tell.
    let _ = stream.write_all(&reply.to_bytes()).await;
    let _ = stream.shutdown().await;
}

pub(super) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<SmtpConfig>,
    sink: Arc<dyn MailSink>,
    budget: MemoryBudget,
    mut stopping: watch::Receiver<bool>,
) {
    let mut session = Session::new(Arc::clone(&config), peer);
    let mut plain = BufReader::new(stream);
    if let Err(error) = write_reply(&mut plain, &session.greeting()).await {
        tracing::debug!(%peer, %error, "SMTP: client left before the greeting");
        return;
    }
    let ending = converse(
        &mut plain,
        &mut session,
        sink.as_ref(),
        &config,
        &budget,
        &mut stopping,
    )
    .await;
    let Ending::StartTls = ending else {
        log_ending(peer, ending);
        return;
    };
    let Some(tls) = config.tls.clone() else {
        return; // The session never asks for TLS without a certificate.
    };
    // `into_inner` drops whatever the client pipelined after STARTTLS: it was sent in
    // plain text and must not be taken as commands inside TLS (CVE-2011-0411).
    let buffered = plain.buffer().len();
    if buffered > 0 {
        tracing::info!(%peer, bytes = buffered, "SMTP: discarded commands pipelined after STARTTLS");
    }
    let tcp = plain.into_inner();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let handshake = tokio::time::timeout(config.command_timeout, acceptor.accept(tcp)).await;
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "SMTP: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "SMTP: TLS handshake timed out");
            return;
        }
    };
    session.tls_started();
    let mut secure = BufReader::new(stream);
    let ending = converse(
        &mut secure,
        &mut session,
        sink.as_ref(),
        &config,
        &budget,
        &mut stopping,
    )
    .await;
    log_ending(peer, ending);
    let _ = secure.get_mut().shutdown().await;
}

enum Ending {
    Quit,
    StartTls,
    ClientGone,
    TimedOut,
    ShuttingDown,
    Io(std::io::Error),
}

fn log_ending(peer: SocketAddr, ending: Ending) {
    match ending {
        Ending::Io(error) => tracing::debug!(%peer, %error, "SMTP: connection failed"),
        Ending::TimedOut => tracing::debug!(%peer, "SMTP: idle client disconnected"),
        Ending::ClientGone => tracing::debug!(%peer, "SMTP: client disconnected without QUIT"),
        Ending::Quit | Ending::StartTls | Ending::ShuttingDown => {}
    }
}

enum Piece {
    /// The piece ended with `\n`.
    Line,
    /// The limit was reached first; the line goes on.
    Partial,
    Eof,
}

/// Runs commands until the client quits, asks for TLS, goes silent or away, or the server
/// stops.
async fn converse<S>(
    stream: &mut BufReader<S>,
    session: &mut Session,
    sink: &dyn MailSink,
    config: &SmtpConfig,
    budget: &MemoryBudget,
    stopping: &mut watch::Receiver<bool>,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        let read = tokio::select! {
            read = tokio::time::timeout(
                config.command_timeout,
                read_piece(stream, &mut line, MAX_COMMAND_LINE + 2),
            ) => read,
            () = stopped(stopping) => {
                let _ = write_reply(stream, &session.shutdown_reply()).await;
                return Ending::ShuttingDown;
            }
        };
        let piece = match read {
            Ok(Ok(piece)) => piece,
            Ok(Err(error)) => return Ending::Io(error),
            Err(_) => {
                let _ = write_reply(stream, &session.timeout_reply()).await;
                return Ending::TimedOut;
            }
        };
        match piece {
            Piece::Eof => return Ending::ClientGone,
            Piece::Partial => {
                if let Err(error) = skip_rest_of_line(stream, config).await {
                    return error;
                }
                let (reply, next) = session.line_too_long();
                if let Err(error) = write_reply(stream, &reply).await {
                    return Ending::Io(error);
                }
                if next == Next::Close {
                    return Ending::Quit;
                }
                continue;
            }
            Piece::Line => {}
        }
        let command = trim_line_ending(&line);
        let (reply, next) = if command.len() > MAX_COMMAND_LINE {
            session.line_too_long()
        } else {
            session.command(command, sink).await
        };
        if let Err(error) = write_reply(stream, &reply).await {
            return Ending::Io(error);
        }
        match next {
            Next::ReadCommand => {}
            Next::Close => return Ending::Quit,
            Next::StartTls => return Ending::StartTls,
            Next::ReadData => {
                let mut data = DataReader::new(config.max_message_bytes, budget.clone());
                loop {
                    line.clear();
                    let read = tokio::time::timeout(
                        config.command_timeout,
                        read_piece(stream, &mut line, MAX_DATA_PIECE),
                    )
                    .await;
                    match read {
                        Ok(Ok(Piece::Eof)) => return Ending::ClientGone,
                        Ok(Ok(Piece::Line | Piece::Partial)) => {
                            if data.feed(&line) {
                                break;
                            }
                        }
                        Ok(Err(error)) => return Ending::Io(error),
                        Err(_) => {
                            let _ = write_reply(stream, &session.timeout_reply()).await;
                            return Ending::TimedOut;
                        }
                    }
                }
                let reply = session.finish_data(data.finish(), sink).await;
                if let Err(error) = write_reply(stream, &reply).await {
                    return Ending::Io(error);
                }
            }
        }
    }
}

/// Completes once the server is stopping (or gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // An error means the server dropped the sender: it is gone, which also means stop.
    let _ = stopping.wait_for(|stopping| *stopping).await;
}

/// Reads up to and including the next `\n`, but never more than `limit` bytes.
async fn read_piece<R>(reader: &mut R, out: &mut Vec<u8>, limit: usize) -> std::io::Result<Piece>
where
    R: AsyncBufRead + Unpin,
{
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if out.is_empty() {
                Piece::Eof
            } else {
                Piece::Partial
            });
        }
        let room = limit - out.len();
        let window = &available[..available.len().min(room)];
        if let Some(newline) = window.iter().position(|byte| *byte == b'\n') {
            out.extend_from_slice(&window[..=newline]);
            reader.consume(newline + 1);
            return Ok(Piece::Line);
        }
        let taken = window.len();
        out.extend_from_slice(window);
        reader.consume(taken);
        if out.len() >= limit {
            return Ok(Piece::Partial);
        }
    }
}

/// Throws away the rest of an over-long command line.
async fn skip_rest_of_line<S>(stream: &mut BufReader<S>, config: &SmtpConfig) -> Result<(), Ending>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut discard = Vec::new();
    loop {
        discard.clear();
        let read = tokio::time::timeout(
            config.command_timeout,
            read_piece(stream, &mut discard, MAX_COMMAND_LINE),
        )
        .await;
        match read {
            Ok(Ok(Piece::Line)) => return Ok(()),
            Ok(Ok(Piece::Partial)) => {}
            Ok(Ok(Piece::Eof)) => return Err(Ending::ClientGone),
            Ok(Err(error)) => return Err(Ending::Io(error)),
            Err(_) => return Err(Ending::TimedOut),
        }
    }
}

fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

async fn write_reply<W>(writer: &mut W, reply: &Reply) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    writer.write_all(&reply.to_bytes()).await?;
    writer.flush().await
}
