//! TLS probing: one handshake over an already-connected stream, measured and classified.
//!
//! [`probe`] runs a real rustls handshake against [`TrustStore`] (webpki roots plus `--ca-file`)
//! with verification fully on, and reports what happened: the negotiated parameters, every
//! certificate the server presented (kept even when verification fails), and a precise
//! [`TlsFailure`]. It judges nothing: verdicts and catalog rows belong to the `tls.account` check.
//! [`trusted_by_os_store`] and [`inspection_product`] supply the facts for telling TLS inspection
//! apart from a plain untrusted certificate.

mod cert;
mod failure;
mod inspection;
mod trust;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;

pub use cert::CertInfo;
pub use failure::TlsFailure;
pub use inspection::inspection_product;
pub use trust::{TlsSetupError, TlsVersions, TrustStore, trusted_by_os_store};

/// ALPN offered by [`probe`]: what netcheck's HTTP client offers, so a middlebox that treats
/// ALPN specially treats the probe the same way.
pub const PROBE_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// What a completed handshake agreed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Negotiated {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// IANA-style rustls name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The ALPN protocol the server selected, if any (`h2`, `http/1.1`).
    pub alpn: Option<String>,
    /// The key-exchange group, e.g. `X25519`.
    pub key_exchange: Option<String>,
}

/// The result of one handshake.
#[derive(Debug, Clone)]
pub struct TlsProbe {
    /// From the start of the handshake to success, failure or timeout.
    pub elapsed: Duration,
    /// Set when the handshake completed.
    pub negotiated: Option<Negotiated>,
    /// The certificates as presented (end entity first), also when verification failed. A
    /// certificate x509-parser cannot read is left out here but kept in `chain_der`.
    pub chain: Vec<CertInfo>,
    /// The presented certificates as DER, for [`trusted_by_os_store`].
    pub chain_der: Vec<CertificateDer<'static>>,
    /// `Ok` when the handshake completed and the chain validated.
    pub result: Result<(), TlsFailure>,
}

/// One handshake over `stream` (TCP, or a proxy tunnel) for `server_name` (SNI and the name the
/// certificate must carry), offering `versions` and [`PROBE_ALPN`], bounded by `timeout`. Never
/// fails: every outcome, including a timeout, is in the returned [`TlsProbe`]. The connection is
/// dropped afterwards.
pub async fn probe<S>(
    stream: S,
    server_name: &str,
    trust: &TrustStore,
    versions: TlsVersions,
    timeout: Duration,
) -> TlsProbe
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    handshake(stream, server_name, trust, versions, PROBE_ALPN, timeout)
        .await
        .0
}

/// The stream a completed [`handshake`] hands back.
pub type TlsStream<S> = tokio_rustls::client::TlsStream<Recorded<S>>;

/// Like [`probe`], offering `alpn`, and handing back the encrypted stream when the handshake
/// completed and the chain validated (a TLS proxy's connection, for what follows it).
pub async fn handshake<S>(
    stream: S,
    server_name: &str,
    trust: &TrustStore,
    versions: TlsVersions,
    alpn: &[&[u8]],
    timeout: Duration,
) -> (TlsProbe, Option<TlsStream<S>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let start = Instant::now();
    let name = match ServerName::try_from(server_name.to_owned()) {
        Ok(name) => name,
        Err(e) => {
            let probe = TlsProbe {
                elapsed: start.elapsed(),
                negotiated: None,
                chain: Vec::new(),
                chain_der: Vec::new(),
                result: Err(TlsFailure::Other {
                    detail: format!("invalid server name {server_name:?}: {e}"),
                }),
            };
            return (probe, None);
        }
    };
    let (config, recorder) = trust.recording_config(versions, alpn);
    let received = Arc::new(Received::default());
    let stream = Recorded {
        inner: stream,
        received: received.clone(),
    };
    let handshake =
        tokio::time::timeout(timeout, TlsConnector::from(config).connect(name, stream)).await;
    let elapsed = start.elapsed();
    let seen = recorder.take();
    let chain: Vec<CertInfo> = seen
        .chain
        .iter()
        .filter_map(|der| CertInfo::from_der(der).ok())
        .collect();
    let server_answered = received.count.load(Ordering::Relaxed) > 0;
    let (negotiated, result, tls) = match handshake {
        Ok(Ok(tls)) => (Some(negotiated(tls.get_ref().1)), Ok(()), Some(tls)),
        Ok(Err(err)) => {
            let observed = failure::Observed {
                server_answered,
                certificate_seen: !seen.chain.is_empty(),
                chain: &chain,
            };
            // An HTTP answer to a ClientHello (a plain-HTTP proxy, a block page) says more than
            // whatever rustls made of its first bytes.
            let failure = failure::http_answer(&received.head())
                .unwrap_or_else(|| failure::classify(&err, seen.error.as_ref(), observed));
            (None, Err(failure), None)
        }
        Err(_elapsed) => (None, Err(TlsFailure::Timeout { server_answered }), None),
    };
    let probe = TlsProbe {
        elapsed,
        negotiated,
        chain,
        chain_der: seen.chain,
        result,
    };
    (probe, tls)
}

fn negotiated(conn: &rustls::ClientConnection) -> Negotiated {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    };
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| s.suite())
        .map_or_else(String::new, |s| {
            s.as_str().map_or_else(|| format!("{s:?}"), str::to_owned)
        });
    Negotiated {
        version,
        cipher_suite,
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        key_exchange: conn.negotiated_key_exchange_group().map(|g| {
            let name = g.name();
            name.as_str()
                .map_or_else(|| format!("{name:?}"), str::to_owned)
        }),
    }
}

/// How many bytes the peer sent, and the first [`HEAD_BYTES`] of them.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    head: std::sync::Mutex<Vec<u8>>,
}

/// How many received bytes are kept: enough for an HTTP status line, headers and `<title>`.
const HEAD_BYTES: usize = 4096;

impl Received {
    fn head(&self) -> Vec<u8> {
        self.head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A stream that counts what it reads and keeps its first bytes, so a failed handshake can be
/// placed (a reset before any answer is filtering) and a non-TLS answer quoted. Shared because the
/// handshake future owns, and on failure drops, the stream.
pub struct Recorded<S> {
    inner: S,
    received: Arc<Received>,
}

impl<S> Recorded<S> {
    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        self.received.count.fetch_add(
            u64::try_from(read.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let mut head = self
            .received
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = HEAD_BYTES.saturating_sub(head.len()).min(read.len());
        head.extend_from_slice(&read[..room]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invalid_server_name_is_reported_not_panicked() {
        let (client, _server) = tokio::io::duplex(64);
        let trust = TrustStore::new(Vec::new());
        let probe = probe(
            client,
            "bad name!",
            &trust,
            TlsVersions::Both,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(probe.result.unwrap_err().kind(), "other");
        assert!(probe.chain.is_empty());
    }

    #[tokio::test]
    async fn peer_that_closes_without_answering_is_reset_after_hello() {
        let (client, server) = tokio::io::duplex(4096);
        drop(server);
        let trust = TrustStore::new(Vec::new());
        let probe = probe(
            client,
            "localhost",
            &trust,
            TlsVersions::Both,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(probe.result.unwrap_err().kind(), "reset_after_hello");
    }

    #[tokio::test]
    async fn silent_peer_times_out_without_an_answer() {
        let (client, _server) = tokio::io::duplex(4096);
        let trust = TrustStore::new(Vec::new());
        let probe = probe(
            client,
            "localhost",
            &trust,
            TlsVersions::Both,
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(
            probe.result,
            Err(TlsFailure::Timeout {
                server_answered: false
            })
        );
        assert!(probe.elapsed >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn garbage_answer_is_other_and_counts_as_answered() {
        let failure = answer_with(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        assert_eq!(failure.kind(), "other", "{failure:?}");
    }

    #[tokio::test]
    async fn an_http_answer_is_quoted() {
        let failure = answer_with(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        assert_eq!(
            failure,
            TlsFailure::HttpAnswer {
                status_line: "HTTP/1.1 400 Bad Request".into(),
                title: None
            }
        );
    }

    /// The failure of a handshake whose peer answers the `ClientHello` with `answer`.
    async fn answer_with(answer: &'static [u8]) -> TlsFailure {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut server) = tokio::io::duplex(4096);
        let peer = tokio::spawn(async move {
            let mut hello = [0u8; 512];
            let _ = server.read(&mut hello).await;
            server.write_all(answer).await.unwrap();
            server
        });
        let trust = TrustStore::new(Vec::new());
        let probe = probe(
            client,
            "localhost",
            &trust,
            TlsVersions::Both,
            Duration::from_secs(2),
        )
        .await;
        drop(peer.await);
        probe.result.unwrap_err()
    }
}
