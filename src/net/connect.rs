//! TCP connect with a timeout per attempt; a failure says which of the kinds a network engineer
//! tells apart (refused, timed out, unreachable, reset) it was.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpStream;

/// Why a TCP connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectFailureKind {
    /// RST in answer to the SYN: nothing listens, or a firewall rejects with a reset.
    Refused,
    /// No answer within the timeout: a firewall that drops, or loss on the path.
    TimedOut,
    /// No route, or an ICMP host/net/admin-prohibited answer.
    Unreachable,
    /// The connection was reset or aborted while being set up.
    Reset,
    /// This machine ran out of file descriptors (`EMFILE`/`ENFILE`): no packet was sent.
    LocalLimit,
    /// No local address and port could be given to the socket (`EADDRNOTAVAIL`): the ephemeral
    /// ports towards that destination are used up (connections churned faster than `TIME_WAIT`
    /// frees them, or held open), or no local address of that family. No packet was sent.
    NoLocalPort,
    /// Anything else (the message is kept in the evidence).
    Other,
}

/// The segment size a stalled handshake is retried with (`TCP_MAXSEG`): IPv4's default MSS
/// (576-byte packets), which passes any path whose MTU is not broken beyond repair. A handshake
/// that stalls with full-size segments and completes with these is a path-MTU black hole.
pub const CLAMPED_MSS: u32 = 536;

/// A failed connect: the address, what happened, and how long it took to find out.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("connect {addr}: {message}")]
pub struct ConnectFailure {
    pub addr: SocketAddr,
    pub kind: ConnectFailureKind,
    pub message: String,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    pub elapsed: Duration,
}

/// Connects to `addr`, giving up after `timeout`.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(TcpStream, Duration), ConnectFailure> {
    connect_with(addr, timeout, None).await
}

/// Like [`connect`]; with `mss`, the SYN advertises it as the maximum segment size
/// (`TCP_MAXSEG` set before the connect), so the peer sends only small packets: what tells a
/// path-MTU black hole apart.
pub async fn connect_with(
    addr: SocketAddr,
    timeout: Duration,
    mss: Option<u32>,
) -> Result<(TcpStream, Duration), ConnectFailure> {
    let start = Instant::now();
    let fail = |kind, message: String| ConnectFailure {
        addr,
        kind,
        message,
        elapsed: start.elapsed(),
    };
    let connecting = async {
        match mss {
            None => TcpStream::connect(addr).await,
            Some(mss) => {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(addr),
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )?;
                socket.set_tcp_mss(mss)?;
                socket.set_nonblocking(true)?;
                tokio::net::TcpSocket::from_std_stream(socket.into())
                    .connect(addr)
                    .await
            }
        }
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(stream)) => {
            // Small probes and API calls are latency-bound; Nagle only delays them.
            let _ = stream.set_nodelay(true);
            Ok((stream, start.elapsed()))
        }
        Ok(Err(e)) => Err(fail(classify(&e), e.to_string())),
        Err(_) => Err(fail(
            ConnectFailureKind::TimedOut,
            format!("no answer within {timeout:?}"),
        )),
    }
}

/// Maps an I/O error from `connect` to the kind of failure.
#[must_use]
pub fn classify(e: &io::Error) -> ConnectFailureKind {
    use io::ErrorKind as K;
    if crate::limits::is_descriptor_exhaustion(e) {
        return ConnectFailureKind::LocalLimit;
    }
    match e.kind() {
        K::ConnectionRefused => ConnectFailureKind::Refused,
        K::TimedOut => ConnectFailureKind::TimedOut,
        // EACCES/EPERM: a local firewall (e.g. an OUTPUT reject) refuses the packet.
        K::AddrNotAvailable => ConnectFailureKind::NoLocalPort,
        K::HostUnreachable | K::NetworkUnreachable | K::PermissionDenied => {
            ConnectFailureKind::Unreachable
        }
        K::ConnectionReset | K::ConnectionAborted => ConnectFailureKind::Reset,
        _ => ConnectFailureKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case(libc_err(111), ConnectFailureKind::Refused; "econnrefused")]
    #[test_case(libc_err(110), ConnectFailureKind::TimedOut; "etimedout")]
    #[test_case(libc_err(113), ConnectFailureKind::Unreachable; "ehostunreach")]
    #[test_case(libc_err(101), ConnectFailureKind::Unreachable; "enetunreach")]
    #[test_case(libc_err(104), ConnectFailureKind::Reset; "econnreset")]
    #[test_case(libc_err(13), ConnectFailureKind::Unreachable; "eacces from local firewall")]
    #[test_case(libc_err(24), ConnectFailureKind::LocalLimit; "emfile")]
    #[test_case(libc_err(99), ConnectFailureKind::NoLocalPort; "eaddrnotavail")]
    #[test_case(libc_err(23), ConnectFailureKind::LocalLimit; "enfile")]
    #[allow(clippy::needless_pass_by_value)] // test_case hands over values
    fn classifies(e: io::Error, kind: ConnectFailureKind) {
        assert_eq!(classify(&e), kind);
    }

    fn libc_err(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[tokio::test]
    async fn closed_port_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = connect(addr, Duration::from_secs(2)).await.unwrap_err();
        assert_eq!(err.kind, ConnectFailureKind::Refused);
    }
}
