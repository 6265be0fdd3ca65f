//! The tunnel through a proxy of any kind curl speaks, one leg at a time: TCP to the proxy, TLS
//! with it for `https://`, then HTTP CONNECT or the SOCKS handshake. Each leg fails in its own
//! way ([`TunnelError`]), and a scheme that does not match what the proxy speaks is recognised
//! from the proxy's own answer.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::proxy_url::{ProxyScheme, ProxyUrl};
use super::socks::{SocksReply, socks_handshake};
use super::tunnel::{ConnectReply, TunnelError, connect_tunnel};
use crate::net::connect;
use crate::net::tls::{self, Negotiated, TlsFailure, TlsVersions, TrustStore};

/// ALPN offered to an `https://` proxy: CONNECT is HTTP/1.1 (as curl offers it).
const PROXY_ALPN: &[&[u8]] = &[b"http/1.1"];

/// A connection to the destination: TCP (direct, or tunnelled through an `http://` or SOCKS
/// proxy), or a TLS session with an `https://` proxy carrying the tunnel.
pub enum RouteStream {
    /// A TCP stream whose bytes reach the destination.
    Tcp(TcpStream),
    /// The TLS session with the proxy, whose plaintext reaches the destination.
    Tls(Box<tls::TlsStream<TcpStream>>),
}

impl RouteStream {
    /// The TCP connection underneath (to the host, or to the proxy).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Tcp(s) => s,
            Self::Tls(s) => s.get_ref().0.get_ref(),
        }
    }
}

impl AsyncRead for RouteStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for RouteStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What the proxy said when it opened the tunnel.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum TunnelReply {
    /// The answer to HTTP CONNECT.
    HttpConnect(ConnectReply),
    /// The SOCKS grant.
    Socks(SocksReply),
}

/// An open tunnel's facts, for evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Tunnel {
    /// The proxy's answer.
    pub reply: TunnelReply,
    /// What the TLS session with an `https://` proxy agreed on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_tls: Option<Negotiated>,
}

/// Where the tunnel leads.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The name (what CONNECT, `socks4a` and `socks5h` send).
    pub host: &'a str,
    pub port: u16,
    /// The name's address, for `socks4` and `socks5`, where the client resolves.
    pub resolved: Option<IpAddr>,
}

/// Opens a tunnel to `to` through `proxy`, reached at `proxy_addr`, each leg bounded by
/// `timeout`. `proxy_trust` verifies an `https://` proxy's certificate (the trust roots plus
/// `--proxy-cacert`). `mss`, when given, is advertised on the connection to the proxy (see
/// [`connect::connect_with`]): a path-MTU black hole between here and the proxy lets only small
/// segments through.
pub async fn open_tunnel(
    proxy_addr: SocketAddr,
    proxy: &ProxyUrl,
    to: Destination<'_>,
    proxy_trust: &TrustStore,
    timeout: Duration,
    mss: Option<u32>,
) -> Result<(RouteStream, Tunnel), TunnelError> {
    let (tcp, _) = connect::connect_with(proxy_addr, timeout, mss)
        .await
        .map_err(TunnelError::Connect)?;
    match proxy.scheme {
        ProxyScheme::Http => match connect_tunnel(tcp, proxy, to.host, to.port, timeout).await {
            Ok((stream, reply)) => Ok((
                RouteStream::Tcp(stream),
                Tunnel {
                    reply: TunnelReply::HttpConnect(reply),
                    proxy_tls: None,
                },
            )),
            Err(err) => Err(speaks_tls(&err, proxy_addr, proxy, proxy_trust, timeout)
                .await
                .unwrap_or(err)),
        },
        ProxyScheme::Https => {
            let (probe, session) = tls::handshake(
                tcp,
                &proxy.host,
                proxy_trust,
                TlsVersions::Both,
                PROXY_ALPN,
                timeout,
            )
            .await;
            let Some(session) = session else {
                return Err(match probe.result {
                    Err(TlsFailure::HttpAnswer { status_line, .. }) => {
                        TunnelError::SpeaksHttp { status_line }
                    }
                    Err(failure) => TunnelError::ProxyTls(failure),
                    Ok(()) => TunnelError::Closed,
                });
            };
            let (session, reply) =
                connect_tunnel(session, proxy, to.host, to.port, timeout).await?;
            Ok((
                RouteStream::Tls(Box::new(session)),
                Tunnel {
                    reply: TunnelReply::HttpConnect(reply),
                    proxy_tls: probe.negotiated,
                },
            ))
        }
        ProxyScheme::Socks4 | ProxyScheme::Socks4a | ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
            let (stream, reply) =
                socks_handshake(tcp, proxy, to.host, to.port, to.resolved, timeout)
                    .await
                    .map_err(TunnelError::Socks)?;
            Ok((
                RouteStream::Tcp(stream),
                Tunnel {
                    reply: TunnelReply::Socks(reply),
                    proxy_tls: None,
                },
            ))
        }
    }
}

/// An `http://` proxy that hung up on the plain CONNECT (TLS servers close without a word on
/// plaintext) or answered it with a TLS record is asked for a TLS handshake on a new connection:
/// if a certificate comes back, the proxy speaks TLS and the URL should say `https://`.
async fn speaks_tls(
    err: &TunnelError,
    proxy_addr: SocketAddr,
    proxy: &ProxyUrl,
    trust: &TrustStore,
    timeout: Duration,
) -> Option<TunnelError> {
    let what = match err {
        TunnelError::Closed => "closed the plain CONNECT unanswered",
        TunnelError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
            ) =>
        {
            "reset the plain CONNECT unanswered"
        }
        TunnelError::NotHttp {
            looks_like_tls: true,
            ..
        } => "answered the plain CONNECT with a TLS record",
        _ => return None,
    };
    let (tcp, _) = connect::connect(proxy_addr, timeout).await.ok()?;
    let probe = tls::probe(tcp, &proxy.host, trust, TlsVersions::Both, timeout).await;
    (probe.negotiated.is_some() || !probe.chain_der.is_empty())
        .then_some(TunnelError::SpeaksTls { what })
}
