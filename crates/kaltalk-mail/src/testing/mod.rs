//! Test support shared with other crates' tests (feature `testing`): real servers started on
//! loopback, never mocks.

pub mod dovecot;

use std::net::SocketAddr;

/// A loopback port that refuses connections, by construction: the socket is bound (so no
/// other process can take the port while this value lives) but never listens, so a
/// connection to it is answered with a reset ("connection refused"). Dropping a freshly
/// bound listener instead leaves a port that a parallel test may bind a moment later.
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("binding a loopback port");
        let addr = socket.local_addr().expect("the bound address");
        Self {
            _socket: socket,
            addr,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}
