//! `connect_tunnel` against real proxies (tinyproxy, squid) and against fakes for the answers
//! real proxies do not give on demand. Every target is a loopback echo server, so a 200 is
//! proven by bytes making the round trip through the tunnel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::proxies::ProxyKind::{self, Squid, Tinyproxy};
use crate::support::proxies::{EchoTarget, FakeBehaviour, FakeProxy, Proxy, ProxyOpts};
use base64::Engine as _;
use netcheck::net::proxy::{ConnectReply, ProxyUrl, TunnelError, connect_tunnel};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use test_case::test_case;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous for a loopback proxy on a busy machine; the timeout test uses its own.
const TIMEOUT: Duration = Duration::from_secs(10);
const USER: &str = "streamer";
const PASSWORD: &str = "s3cret-Proxy-pw";

async fn tunnel(
    proxy: SocketAddr,
    url: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(TcpStream, ConnectReply), TunnelError> {
    let url = ProxyUrl::parse(url).unwrap();
    let stream = TcpStream::connect(proxy).await.unwrap();
    connect_tunnel(stream, &url, host, port, timeout).await
}

/// A tunnel through the proxy at `proxy` (`url`) to the echo target, with the test timeout.
async fn to_target(
    proxy: SocketAddr,
    url: &str,
    target: &EchoTarget,
) -> Result<(TcpStream, ConnectReply), TunnelError> {
    tunnel(proxy, url, "127.0.0.1", target.addr().port(), TIMEOUT).await
}

/// Proves the tunnel reaches the echo target and that nothing was left unread or over-read.
async fn assert_round_trip(stream: &mut TcpStream) {
    let message = b"bytes through the tunnel";
    stream.write_all(message).await.unwrap();
    let mut echoed = [0u8; 24];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, message);
}

fn expect_status(result: Result<(TcpStream, ConnectReply), TunnelError>) -> ConnectReply {
    match result {
        Err(TunnelError::Status(reply)) => reply,
        Err(other) => panic!("expected a status error, got {other}"),
        Ok((_, reply)) => panic!("expected a refusal, got {reply:?}"),
    }
}

/// squid is given a name its `hosts_file` pins; tinyproxy resolves names with the system
/// resolver, so it is only ever given an address.
#[test_case(Tinyproxy, "127.0.0.1", "Established connection to host \"127.0.0.1\"", Some("tinyproxy/") ; "tinyproxy to an address")]
#[test_case(Squid, "xy12345.snowflakecomputing.com", "TCP_TUNNEL/200", None ; "squid to a pinned name")]
#[tokio::test]
async fn allows_connect_and_tunnels_bytes(
    kind: ProxyKind,
    host: &str,
    logged: &str,
    agent: Option<&str>,
) {
    let opts = ProxyOpts {
        hosts: vec![(host.to_owned(), "127.0.0.1".parse().unwrap())],
        ..ProxyOpts::default()
    };
    let Some(proxy) = Proxy::start(kind, &opts) else {
        return;
    };
    let target = EchoTarget::start().await;
    let (mut stream, reply) = tunnel(
        proxy.addr(),
        &proxy.url(),
        host,
        target.addr().port(),
        TIMEOUT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", proxy.log()));
    assert_eq!(reply.status, 200);
    if let Some(agent) = agent {
        assert!(
            reply
                .proxy_agent
                .as_deref()
                .is_some_and(|a| a.starts_with(agent)),
            "{reply:?}"
        );
    }
    assert_round_trip(&mut stream).await;
    drop(stream);
    assert!(proxy.logged(logged), "{}", proxy.log());
}

#[test_case(Tinyproxy, "Refused CONNECT method" ; "tinyproxy")]
#[test_case(Squid, "TCP_DENIED/403" ; "squid")]
#[tokio::test]
async fn denial_is_a_403_with_the_proxy_named(kind: ProxyKind, logged: &str) {
    let Some(proxy) = Proxy::start(kind, &ProxyOpts::deny()) else {
        return;
    };
    let target = EchoTarget::start().await;
    let reply = expect_status(to_target(proxy.addr(), &proxy.url(), &target).await);
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(
        reply
            .server
            .iter()
            .chain(&reply.proxy_agent)
            .any(|v| v.starts_with(kind.name())),
        "{reply:?}"
    );
    assert!(proxy.logged(logged), "{}", proxy.log());
}

/// A destination ACL refuses one host and lets another through the same proxy. IP literals
/// keep both proxies away from any resolver.
#[test_case(Tinyproxy ; "tinyproxy")]
#[test_case(Squid ; "squid")]
#[tokio::test]
async fn destination_acl(kind: ProxyKind) {
    let Some(proxy) = Proxy::start(kind, &ProxyOpts::deny_hosts(&["127.0.0.2"])) else {
        return;
    };
    let (addr, url) = (proxy.addr(), proxy.url());
    let target = EchoTarget::start().await;
    let port = target.addr().port();
    let reply = expect_status(tunnel(addr, &url, "127.0.0.2", port, TIMEOUT).await);
    assert_eq!(reply.status, 403, "{reply:?}");
    let (mut stream, _) = tunnel(addr, &url, "127.0.0.1", port, TIMEOUT)
        .await
        .unwrap();
    assert_round_trip(&mut stream).await;
}

/// Without credentials: 407 and a Basic challenge; wrong ones: `wrong_status`; right ones: a
/// tunnel.
#[test_case(Tinyproxy, 401 ; "tinyproxy answers wrong credentials with 401")]
#[test_case(Squid, 407 ; "squid answers wrong credentials with 407")]
#[tokio::test]
async fn basic_auth(kind: ProxyKind, wrong_status: u16) {
    let Some(proxy) = Proxy::start(kind, &ProxyOpts::with_auth(USER, PASSWORD)) else {
        return;
    };
    let addr = proxy.addr();
    let target = EchoTarget::start().await;
    let port = target.addr().port();
    let reply = expect_status(tunnel(addr, &proxy.url(), "127.0.0.1", port, TIMEOUT).await);
    assert_eq!(reply.status, 407, "{reply:?}");
    assert!(
        reply
            .proxy_authenticate
            .iter()
            .any(|c| c.starts_with("Basic")),
        "{reply:?}"
    );
    let wrong = proxy.url_with_auth(USER, "wrong");
    let reply = expect_status(tunnel(addr, &wrong, "127.0.0.1", port, TIMEOUT).await);
    assert_eq!(reply.status, wrong_status, "{reply:?}");
    let right = proxy.url_with_auth(USER, PASSWORD);
    let (mut stream, reply) = tunnel(addr, &right, "127.0.0.1", port, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_round_trip(&mut stream).await;
}

#[tokio::test]
async fn a_tls_answer_is_not_http_and_recognised_as_tls() {
    // What a proxy port that expects TLS sends back to a plain-text CONNECT: an alert record.
    let fake = FakeProxy::start(FakeBehaviour::Reply(
        b"\x15\x03\x03\x00\x02\x02\x32".to_vec(),
    ))
    .await;
    let url = format!("http://{}", fake.addr());
    match tunnel(fake.addr(), &url, "127.0.0.1", 443, TIMEOUT).await {
        Err(TunnelError::NotHttp {
            preview,
            looks_like_tls,
        }) => {
            assert!(looks_like_tls);
            assert!(preview.starts_with("\\x15\\x03\\x03"), "{preview}");
        }
        other => panic!("expected NotHttp, got {:?}", other.map(|(_, r)| r)),
    }
}

#[tokio::test]
async fn a_peer_echoing_the_request_never_shows_the_credentials() {
    let fake = FakeProxy::start(FakeBehaviour::Echo).await;
    let url = format!("http://{USER}:{PASSWORD}@{}", fake.addr());
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let err = tunnel(fake.addr(), &url, "127.0.0.1", 443, TIMEOUT)
        .await
        .expect_err("an echo is no proxy");
    let TunnelError::NotHttp { preview, .. } = &err else {
        panic!("expected NotHttp, got {err}")
    };
    assert!(preview.starts_with("CONNECT 127.0.0.1:443"), "{preview}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(
            !shown.contains(PASSWORD) && !shown.contains(&token[..12]),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn a_silent_proxy_times_out_within_the_timeout_plus_one_second() {
    let fake = FakeProxy::start(FakeBehaviour::Silent).await;
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let result = tunnel(
        fake.addr(),
        &format!("http://{}", fake.addr()),
        "127.0.0.1",
        443,
        timeout,
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(TunnelError::Timeout(t)) if t == timeout),
        "{:?}",
        result.map(|(_, r)| r)
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(1),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_proxy_hanging_up_before_replying_is_closed() {
    let fake = FakeProxy::start(FakeBehaviour::CloseAfterRequest).await;
    let result = tunnel(
        fake.addr(),
        &format!("http://{}", fake.addr()),
        "127.0.0.1",
        443,
        TIMEOUT,
    )
    .await;
    assert!(
        matches!(result, Err(TunnelError::Closed)),
        "{:?}",
        result.map(|(_, r)| r)
    );
}

#[tokio::test]
async fn a_refusal_cut_short_keeps_its_status() {
    let fake = FakeProxy::start(FakeBehaviour::ReplyAndClose(
        b"HTTP/1.1 502 Bad Gateway\r\nServer: edge".to_vec(),
    ))
    .await;
    let url = format!("http://{}", fake.addr());
    let reply = expect_status(tunnel(fake.addr(), &url, "127.0.0.1", 443, TIMEOUT).await);
    assert_eq!((reply.status, reply.server.as_deref()), (502, Some("edge")));
}

#[tokio::test]
async fn an_open_tunnel_cut_short_is_closed() {
    let fake = FakeProxy::start(FakeBehaviour::ReplyAndClose(
        b"HTTP/1.1 200 Connection established\r\n".to_vec(),
    ))
    .await;
    let url = format!("http://{}", fake.addr());
    let result = tunnel(fake.addr(), &url, "127.0.0.1", 443, TIMEOUT).await;
    assert!(
        matches!(result, Err(TunnelError::Closed)),
        "{:?}",
        result.map(|(_, r)| r)
    );
}

#[tokio::test]
async fn bytes_after_the_reply_head_stay_in_the_tunnel() {
    let reply = b"HTTP/1.1 200 Connection established\r\n\r\nearly".to_vec();
    let fake = FakeProxy::start(FakeBehaviour::Reply(reply)).await;
    let (mut stream, reply) = tunnel(
        fake.addr(),
        &format!("http://{}", fake.addr()),
        "127.0.0.1",
        443,
        TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(
        (reply.status, reply.reason.as_str()),
        (200, "Connection established")
    );
    let mut early = [0u8; 5];
    stream.read_exact(&mut early).await.unwrap();
    assert_eq!(&early, b"early");
    assert_round_trip(&mut stream).await;
}

#[tokio::test]
async fn an_endless_reply_head_is_cut_off() {
    let mut reply = b"HTTP/1.1 200 OK\r\n".to_vec();
    reply.extend(std::iter::repeat_n(b"X-Padding: 0123456789\r\n".as_slice(), 1000).flatten());
    let fake = FakeProxy::start(FakeBehaviour::Reply(reply)).await;
    let result = tunnel(
        fake.addr(),
        &format!("http://{}", fake.addr()),
        "127.0.0.1",
        443,
        TIMEOUT,
    )
    .await;
    assert!(
        matches!(result, Err(TunnelError::HeadTooLong { .. })),
        "{:?}",
        result.map(|(_, r)| r)
    );
}

/// A TLS echo server with a CA + leaf made now by rcgen; returns its address and the CA.
async fn tls_echo_target() -> (
    SocketAddr,
    CertificateDer<'static>,
    tokio::task::JoinHandle<()>,
) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone(), ca.der().clone()],
        PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let (mut reader, mut writer) = tokio::io::split(tls);
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                }
            });
        }
    });
    (addr, ca.der().clone(), task)
}

#[test_case(Tinyproxy ; "tinyproxy")]
#[test_case(Squid ; "squid")]
#[tokio::test]
async fn the_tunnel_carries_a_tls_handshake_and_data(kind: ProxyKind) {
    let Some(proxy) = Proxy::start(kind, &ProxyOpts::default()) else {
        return;
    };
    let (target, ca, server) = tls_echo_target().await;
    let (stream, _) = tunnel(
        proxy.addr(),
        &proxy.url(),
        "127.0.0.1",
        target.port(),
        TIMEOUT,
    )
    .await
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap();
    tls.write_all(b"over tls").await.unwrap();
    let mut echoed = [0u8; 8];
    tokio::time::timeout(TIMEOUT, tls.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"over tls");
    server.abort();
}
