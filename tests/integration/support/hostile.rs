//! A hostile HTTPS server for netcheck's API client: real rustls with an rcgen certificate from
//! the test PKI (trusted with `--ca-file`), on 127.0.0.1:0, for the account and ingest host names
//! (pinned with `--resolve`). It forwards every request to an in-process emulator, so the run gets
//! as far as a real one, except the calls named in its rules, which it answers as an attacker, a
//! captive portal or a broken middlebox would: a 200 MB or endless body, a drip-feed, a redirect,
//! an echo of the request's credentials, control characters. Or it is hostile at the TLS layer: a
//! huge certificate chain, garbage after the handshake.
//!
//! It never holds a large body in memory (bodies are written in chunks as they are generated), and
//! it records every request it received, so a test can tell a redirect was not followed.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netcheck::emulator::Emulator;
use netcheck::snowflake::rest::{ApiCall, Route};
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::pki::TestPki;
use super::tls_servers::{Background, accept_loop};

/// How the server answers one kind of call.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `200` with a body of `len` bytes, with its `Content-Length` declared or sent chunked.
    Oversized { len: u64, declared: bool },
    /// `200`, chunked, never ending.
    Endless,
    /// `200`, chunked, one byte a second.
    Drip,
    /// A redirect to `location`.
    Redirect { status: u16, location: String },
    /// `status` with a Snowflake-shaped error (`code`) whose message quotes the request's
    /// `Authorization` header and body back, as a debugging proxy or a careless server does.
    Echo { status: u16, code: &'static str },
    /// `status` with a Snowflake-shaped error whose message is `message` (JSON-escaped on the
    /// wire, so control characters in it reach the client's parsed message).
    Text { status: u16, message: String },
}

/// How the server behaves at the TLS layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// A normal handshake, then HTTP/1.1.
    Normal,
    /// A certificate chain of several megabytes (the leaf, its issuer, then thousands of copies
    /// of the issuer).
    HugeChain,
    /// A normal handshake, then bytes that are no HTTP, endlessly.
    GarbageAfterHandshake,
}

/// One request as the hostile server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its `Host` header: a followed redirect would name the host it pointed to.
    pub host: String,
    /// Its `Authorization` header, so a test can look for any part of the credential in the
    /// outputs.
    pub authorization: String,
}

/// A running hostile server; dropping it stops it.
pub struct Hostile {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The root to trust (`--ca-file`).
    pub ca_pem: String,
    received: Arc<Mutex<Vec<Received>>>,
    rules: Arc<Mutex<Vec<(ApiCall, Answer)>>>,
    _background: Background,
}

struct State {
    acceptor: TlsAcceptor,
    tls: Tls,
    rules: Arc<Mutex<Vec<(ApiCall, Answer)>>>,
    upstream: reqwest::Client,
    upstream_port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

/// The most of a request head or body read (netcheck's largest request is an append, under 4 MB).
const MAX_REQUEST: usize = 8 * 1024 * 1024;

impl Hostile {
    /// Starts a server in front of `emu` that answers the calls in `rules` itself.
    pub fn start(emu: &Emulator, tls: Tls, rules: Vec<(ApiCall, Answer)>) -> Self {
        let pki = TestPki::new();
        let hosts = [emu.account_host(), emu.ingest_host()];
        let mut cert = pki.for_hosts(&hosts);
        if tls == Tls::HugeChain {
            let filler = pki.intermediate.der();
            cert.chain
                .extend(std::iter::repeat_n(filler, 6000).collect::<Vec<_>>());
        }
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports TLS 1.2 and 1.3")
                .with_no_client_auth()
                .with_single_cert(cert.chain, cert.key)
                .expect("the leaf key matches the leaf");
        // HTTP/1.1 only: the answers are written by hand.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let received = Arc::new(Mutex::new(Vec::new()));
        let rules = Arc::new(Mutex::new(rules));
        let state = Arc::new(State {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            tls,
            rules: rules.clone(),
            upstream: upstream(emu),
            upstream_port: emu.addr().port(),
            received: received.clone(),
        });
        let (addr, background) = Background::spawn(move |listener| {
            accept_loop(listener, move |tcp| serve(tcp, state.clone()))
        });
        Self {
            addr,
            ca_pem: pki.root_pem(),
            received,
            rules,
            _background: background,
        }
    }

    /// Answers `endpoint` with `answer` from now on (for answers that name the server's port).
    pub fn answer(&self, endpoint: ApiCall, answer: Answer) {
        self.rules.lock().unwrap().push((endpoint, answer));
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A client to the emulator that trusts only its CA and reaches its host names at its address.
fn upstream(emu: &Emulator) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(emu.ca_pem().as_bytes()) {
        roots.add(cert.expect("the emulator's CA PEM")).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(emu.account_host(), emu.addr())
        .resolve(emu.ingest_host(), emu.addr())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn serve(tcp: TcpStream, state: Arc<State>) {
    let Ok(mut tls) = state.acceptor.accept(tcp).await else {
        return;
    };
    if state.tls == Tls::GarbageAfterHandshake {
        let garbage: Vec<u8> = (0..16 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
        while tls.write_all(&garbage).await.is_ok() {}
        return;
    }
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut tls, &mut buffer).await {
        let endpoint = Route::parse(&request.method, request.path.split('?').next().unwrap())
            .map_or(ApiCall::Other, |r| r.endpoint());
        let rule = state
            .rules
            .lock()
            .unwrap()
            .iter()
            .find(|(e, _)| *e == endpoint)
            .cloned();
        state.received.lock().unwrap().push(Received {
            host: request.header("host").unwrap_or_default().to_owned(),
            authorization: request
                .header("authorization")
                .unwrap_or_default()
                .to_owned(),
        });
        let Some((_, answer)) = &rule else {
            if forward(&mut tls, &state, &request).await.is_err() {
                return;
            }
            continue;
        };
        // After a hostile answer the connection is closed (`Connection: close` says so).
        let _ = hostile_answer(&mut tls, answer, &request).await;
        let _ = tls.shutdown().await;
        return;
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 request (head, then a `Content-Length` body); `None` at the end of the
/// connection or on anything malformed or oversized.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S, buffer: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_REQUEST || !fill(s, buffer).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_REQUEST {
        return None;
    }
    while buffer.len() < head_end + len {
        if !fill(s, buffer).await {
            return None;
        }
    }
    let body = buffer[head_end..head_end + len].to_vec();
    buffer.drain(..head_end + len);
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn fill<S: AsyncRead + Unpin>(s: &mut S, buffer: &mut Vec<u8>) -> bool {
    buffer.reserve(16 * 1024);
    matches!(s.read_buf(buffer).await, Ok(n) if n > 0)
}

/// Sends the request on to the emulator and its answer back (keep-alive).
async fn forward<S: AsyncWrite + Unpin>(
    s: &mut S,
    state: &State,
    request: &Request,
) -> std::io::Result<()> {
    let host = request.header("host").unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let url = format!("https://{host}:{}{}", state.upstream_port, request.path);
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut upstream = state.upstream.request(method, url);
    for (k, v) in &request.headers {
        let hop = ["host", "content-length", "connection", "accept-encoding"];
        if !hop.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            upstream = upstream.header(k, v);
        }
    }
    let (status, headers, body) = match upstream.body(request.body.clone()).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let keep = ["content-type", "date", "retry-after"];
            let headers: Vec<(String, String)> = keep
                .iter()
                .filter_map(|k| {
                    r.headers()
                        .get(*k)
                        .map(|v| ((*k).to_owned(), v.to_str().unwrap_or_default().to_owned()))
                })
                .collect();
            (
                status,
                headers,
                r.bytes().await.unwrap_or_default().to_vec(),
            )
        }
        Err(_) => (502, Vec::new(), b"upstream failed".to_vec()),
    };
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    s.write_all(&body).await?;
    s.flush().await
}

async fn hostile_answer<S: AsyncWrite + Unpin>(
    s: &mut S,
    answer: &Answer,
    request: &Request,
) -> std::io::Result<()> {
    const CHUNK: usize = 64 * 1024;
    let filler = vec![b'a'; CHUNK];
    match answer {
        Answer::Oversized { len, declared } => {
            let framing = if *declared {
                format!("content-length: {len}")
            } else {
                "transfer-encoding: chunked".to_owned()
            };
            head(s, 200, &[&framing, "content-type: text/plain"]).await?;
            let mut left = *len;
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                if *declared {
                    s.write_all(&filler[..n]).await?;
                } else {
                    chunk(s, &filler[..n]).await?;
                }
                left -= n as u64;
            }
            if !*declared {
                s.write_all(b"0\r\n\r\n").await?;
            }
        }
        Answer::Endless => {
            head(
                s,
                200,
                &["transfer-encoding: chunked", "content-type: text/plain"],
            )
            .await?;
            loop {
                chunk(s, &filler).await?;
            }
        }
        Answer::Drip => {
            head(
                s,
                200,
                &["transfer-encoding: chunked", "content-type: text/plain"],
            )
            .await?;
            loop {
                chunk(s, b"a").await?;
                s.flush().await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Answer::Redirect { status, location } => {
            let location = format!("location: {location}");
            let body = "<html>Moved</html>";
            let length = format!("content-length: {}", body.len());
            head(s, *status, &[&location, &length, "content-type: text/html"]).await?;
            s.write_all(body.as_bytes()).await?;
        }
        Answer::Echo { status, code } => {
            let message = format!(
                "you sent Authorization: {} and body: {}",
                request.header("authorization").unwrap_or_default(),
                String::from_utf8_lossy(&request.body)
            );
            json_error(s, *status, code, &message).await?;
        }
        Answer::Text { status, message } => json_error(s, *status, "HOSTILE", message).await?,
    }
    s.flush().await
}

async fn head<S: AsyncWrite + Unpin>(
    s: &mut S,
    status: u16,
    headers: &[&str],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await
}

async fn chunk<S: AsyncWrite + Unpin>(s: &mut S, data: &[u8]) -> std::io::Result<()> {
    s.write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    s.write_all(data).await?;
    s.write_all(b"\r\n").await
}

async fn json_error<S: AsyncWrite + Unpin>(
    s: &mut S,
    status: u16,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let length = format!("content-length: {}", body.len());
    head(s, status, &[&length, "content-type: application/json"]).await?;
    s.write_all(body.as_bytes()).await
}
