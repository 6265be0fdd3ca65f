//! A hand-written HTTP CONNECT: HTTP client libraries report a refused tunnel without the
//! proxy's status code, and the code (403, 407, 502…) is what tells a network engineer what
//! to change.
//!
//! The reply head is read through a bounded buffer and never past its blank line, because the
//! bytes after it already belong to the tunnel (the TLS handshake that follows). The stream is a
//! TCP connection to an `http://` proxy or the TLS session with an `https://` one.

use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::proxy_url::{ProxyAuth, ProxyUrl, authority};
use super::socks::SocksFailure;
use crate::net::connect::ConnectFailure;
use crate::net::tls::TlsFailure;

/// The longest reply head accepted; real proxies send a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;
/// How many received bytes a [`TunnelError::NotHttp`] preview shows.
const PREVIEW_BYTES: usize = 64;
/// How many characters of a header value are kept.
const MAX_HEADER_VALUE: usize = 256;

/// What the proxy answered to CONNECT: the status line and the headers that identify the
/// proxy and what it wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectReply {
    /// The status code (2xx means the tunnel is open).
    pub status: u16,
    /// The reason phrase, sanitised (may be empty).
    pub reason: String,
    /// The `Proxy-Agent` header (tinyproxy and many appliances name themselves here).
    pub proxy_agent: Option<String>,
    /// The `Server` header (squid names itself here).
    pub server: Option<String>,
    /// Every `Proxy-Authenticate` challenge, e.g. `Basic realm="corp"` or `Negotiate`: it says
    /// which authentication schemes the proxy would accept.
    pub proxy_authenticate: Vec<String>,
    /// Every `WWW-Authenticate` challenge: tinyproxy answers *wrong* proxy credentials with
    /// `401 Unauthorized` and this header instead of 407 and `Proxy-Authenticate`.
    pub www_authenticate: Vec<String>,
    /// From sending CONNECT to the end of the reply head.
    #[serde(rename = "elapsed_ms", serialize_with = "crate::units::serialize_ms")]
    pub elapsed: Duration,
}

/// Why no tunnel was opened. The caller classifies; nothing here judges.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The TCP connection to the proxy failed.
    #[error("cannot reach the proxy: {0}")]
    Connect(ConnectFailure),
    /// The TLS handshake with an `https://` proxy failed (its certificate, its versions…).
    #[error("TLS with the proxy failed: {0}")]
    ProxyTls(TlsFailure),
    /// An `https://` proxy answered the TLS `ClientHello` in plain HTTP: it is an `http://` one.
    #[error(
        "the proxy speaks plain HTTP (it answered the TLS handshake with {status_line:?}): write http:// in the proxy URL"
    )]
    SpeaksHttp {
        /// The status line it answered with.
        status_line: String,
    },
    /// An `http://` proxy closed the plain CONNECT unanswered (or answered it with TLS) and then
    /// completed a TLS handshake: it is an `https://` one.
    #[error(
        "the proxy speaks TLS (it {what} and completes a TLS handshake): write https:// in the proxy URL"
    )]
    SpeaksTls {
        /// What it did with the plain CONNECT.
        what: &'static str,
    },
    /// The SOCKS handshake failed; the proxy's reply code says why.
    #[error("{0}")]
    Socks(SocksFailure),
    /// The proxy answered with a non-2xx status (407, 403, 5xx…; tinyproxy answers wrong
    /// credentials with 401).
    #[error("proxy answered {} {}", .0.status, .0.reason)]
    Status(ConnectReply),
    /// The bytes received are not an HTTP reply (a TLS alert from a proxy that expects TLS,
    /// another protocol, garbage). The preview never contains the credentials sent.
    #[error("proxy answered something that is not HTTP: {preview}")]
    NotHttp {
        /// The first bytes received, printable ASCII with everything else as `\xNN`.
        preview: String,
        /// The bytes start like a TLS record (e.g. an alert from an `https://` proxy port).
        looks_like_tls: bool,
    },
    /// The reply head did not end within the buffer limit.
    #[error("proxy reply head is longer than {limit} bytes")]
    HeadTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// No complete reply head within the timeout.
    #[error("no reply from the proxy within {0:?}")]
    Timeout(Duration),
    /// The proxy closed the connection before a complete reply head (a status line that
    /// did arrive and refuses the tunnel is reported as [`TunnelError::Status`] instead).
    #[error("proxy closed the connection before replying")]
    Closed,
    /// The target host cannot be written into a request line.
    #[error("target host {0:?} contains whitespace or control characters")]
    BadTarget(String),
    /// Reading or writing the socket failed (reset, broken pipe…).
    #[error("proxy connection failed: {0}")]
    Io(#[from] io::Error),
}

/// Opens an HTTP CONNECT tunnel to `host:port` over `stream`, an already-connected stream to
/// `proxy` (TCP, or TLS for an `https://` proxy), all within `timeout`. Sends
/// `Proxy-Authorization: Basic` when the proxy URL has credentials. On success the stream is
/// positioned just after the reply head, ready for TLS.
pub async fn connect_tunnel<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(S, ConnectReply), TunnelError> {
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TunnelError::BadTarget(host.escape_debug().to_string()));
    }
    let credentials = proxy.auth.as_ref().map(ProxyAuth::basic);
    let request = connect_request(&authority(host, port), credentials.as_deref());
    let started = Instant::now();
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        read_head(&mut stream).await
    };
    let head = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| TunnelError::Timeout(timeout))??;
    let elapsed = started.elapsed();
    let secrets: Vec<&str> = credentials
        .iter()
        .map(String::as_str)
        .chain(proxy.auth.iter().map(|a| a.password.expose().as_str()))
        .collect();
    let reply = match head {
        Head::Complete(bytes) => {
            parse_head(&bytes, elapsed).ok_or_else(|| not_http(&bytes, &secrets))?
        }
        Head::NotHttp(bytes) => return Err(not_http(&bytes, &secrets)),
        // A refusal cut short still carries its status; anything else is a hang-up.
        Head::Truncated(bytes) => match parse_head(&bytes, elapsed) {
            Some(reply) if !is_success(reply.status) => return Err(TunnelError::Status(reply)),
            _ => return Err(TunnelError::Closed),
        },
    };
    if is_success(reply.status) {
        Ok((stream, reply))
    } else {
        Err(TunnelError::Status(reply))
    }
}

/// curl, too, takes any 2xx answer to CONNECT as an open tunnel.
fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn connect_request(target: &str, credentials: Option<&str>) -> String {
    let auth = credentials
        .map(|c| format!("Proxy-Authorization: Basic {c}\r\n"))
        .unwrap_or_default();
    format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}User-Agent: netcheck/{}\r\n\
         Proxy-Connection: Keep-Alive\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// What [`read_head`] got.
enum Head {
    /// Up to and including the blank line.
    Complete(Vec<u8>),
    /// Bytes that cannot start an HTTP reply; such a peer may never send a blank line.
    NotHttp(Vec<u8>),
    /// The peer closed first, after these bytes (possibly none).
    Truncated(Vec<u8>),
}

/// Reads up to and including the blank line that ends the reply head, and not one byte more:
/// one byte at a time, since a TLS session cannot be peeked (a head is a few hundred bytes).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Head, TunnelError> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte).await? == 0 {
            return Ok(Head::Truncated(head));
        }
        head.push(byte[0]);
        if head_end(&head, head.len().saturating_sub(4)).is_some() {
            return Ok(Head::Complete(head));
        }
        let prefix = head.len().min(5);
        if head[..prefix] != b"HTTP/"[..prefix] {
            return Ok(Head::NotHttp(read_some_more(stream, head).await));
        }
        if head.len() > MAX_HEAD {
            return Err(TunnelError::HeadTooLong { limit: MAX_HEAD });
        }
    }
}

/// What else the peer already sent after a first byte that is not HTTP, for the preview: a
/// single read, as the peer may never send more.
async fn read_some_more<S: AsyncRead + Unpin>(stream: &mut S, mut head: Vec<u8>) -> Vec<u8> {
    let mut more = [0u8; PREVIEW_BYTES];
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut more)).await
    {
        head.extend_from_slice(&more[..n]);
    }
    head
}

/// The index just past the blank line ending a head (`\r\n\r\n`, or bare `\n\n` as lenient
/// parsers accept), searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| {
        let rest = &buf[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// Parses `HTTP/x.y NNN reason` and the headers of interest; `None` when it is not HTTP.
fn parse_head(head: &[u8], elapsed: Duration) -> Option<ConnectReply> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let (version, rest) = lines.next()?.strip_prefix("HTTP/")?.split_once(' ')?;
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let (code, reason) = rest
        .trim_start()
        .split_once(' ')
        .unwrap_or((rest.trim_start(), ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut reply = ConnectReply {
        status: code.parse().ok()?,
        reason: sanitize(reason.as_bytes()),
        proxy_agent: None,
        server: None,
        proxy_authenticate: Vec::new(),
        www_authenticate: Vec::new(),
        elapsed,
    };
    for (name, value) in lines.filter_map(|line| line.split_once(':')) {
        let value = sanitize(value.trim().as_bytes());
        match name.trim().to_ascii_lowercase().as_str() {
            "proxy-agent" => reply.proxy_agent = Some(value),
            "server" => reply.server = Some(value),
            "proxy-authenticate" => reply.proxy_authenticate.push(value),
            "www-authenticate" => reply.www_authenticate.push(value),
            _ => {}
        }
    }
    Some(reply)
}

/// Builds [`TunnelError::NotHttp`] from the received bytes. A peer that echoes the request
/// would echo our credentials: they are replaced, and the preview stops at the header that
/// carried them in case only part of a credential arrived.
fn not_http(received: &[u8], secrets: &[&str]) -> TunnelError {
    let mut shown = received.to_vec();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        shown = replace_all(&shown, secret.as_bytes(), b"***");
    }
    let auth_at = shown
        .windows(b"proxy-authorization".len())
        .position(|w| w.eq_ignore_ascii_case(b"proxy-authorization"));
    let limit = auth_at.unwrap_or(shown.len()).min(PREVIEW_BYTES);
    let mut preview = shown[..limit].escape_ascii().to_string();
    match auth_at {
        Some(at) if at <= PREVIEW_BYTES => preview.push_str("Proxy-Authorization: ***"),
        _ if limit < shown.len() => preview.push('…'),
        _ => {}
    }
    TunnelError::NotHttp {
        preview,
        looks_like_tls: matches!(received, [0x14..=0x17, 0x03, ..]),
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(with);
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// Printable ASCII as is, everything else escaped, cut to a bounded length.
fn sanitize(bytes: &[u8]) -> String {
    let mut text = bytes.escape_ascii().to_string();
    if text.len() > MAX_HEADER_VALUE {
        text.truncate(MAX_HEADER_VALUE);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use test_case::test_case;

    #[test_case(b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n", 200, "Connection established", Some("tinyproxy/1.11.1"), None ; "tinyproxy")]
    #[test_case(b"HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nContent-Length: 10\r\n\r\n", 403, "Forbidden", None, Some("squid/5.7") ; "squid")]
    #[test_case(b"HTTP/1.1 200\r\n\r\n", 200, "", None, None ; "no reason phrase")]
    #[test_case(b"HTTP/1.1 502 Bad\x01Gateway\n\n", 502, "Bad\\x01Gateway", None, None ; "bare newlines and control bytes")]
    fn parses_reply_heads(
        head: &[u8],
        status: u16,
        reason: &str,
        agent: Option<&str>,
        server: Option<&str>,
    ) {
        let reply = parse_head(head, Duration::ZERO).unwrap();
        assert_eq!(
            (
                reply.status,
                reply.reason.as_str(),
                reply.proxy_agent.as_deref(),
                reply.server.as_deref()
            ),
            (status, reason, agent, server)
        );
    }

    #[test]
    fn collects_every_auth_challenge() {
        let head =
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\n\
                     proxy-authenticate: Basic realm=\"corp\"\r\n\r\n";
        let reply = parse_head(head, Duration::ZERO).unwrap();
        assert_eq!(
            reply.proxy_authenticate,
            ["Negotiate", "Basic realm=\\\"corp\\\""]
        );
    }

    #[test_case(b"SSH-2.0-OpenSSH_9.2\r\n\r\n" ; "other protocol")]
    #[test_case(b"HTTP/1.1 20 OK\r\n\r\n" ; "two digit status")]
    #[test_case(b"HTTP/x 200 OK\r\n\r\n" ; "bad version")]
    #[test_case(b"\x15\x03\x03\x00\x02\x02\x28" ; "tls alert")]
    fn rejects_non_http(head: &[u8]) {
        assert!(parse_head(head, Duration::ZERO).is_none());
    }

    #[test_case(b"HTTP/1.1 200 OK\r\n\r\nTLS", 0, Some(19) ; "crlf")]
    #[test_case(b"HTTP/1.1 200 OK\n\nTLS", 0, Some(17) ; "bare lf")]
    #[test_case(b"HTTP/1.1 200 OK\r\n", 0, None ; "incomplete")]
    fn finds_the_end_of_the_head(buf: &[u8], from: usize, end: Option<usize>) {
        assert_eq!(head_end(buf, from), end);
    }

    #[test]
    fn request_carries_basic_credentials_only_when_given() {
        let with = connect_request("[::1]:443", Some("dTpw"));
        assert!(with.starts_with("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n"));
        assert!(
            with.contains("\r\nProxy-Authorization: Basic dTpw\r\n") && with.ends_with("\r\n\r\n")
        );
        assert!(!connect_request("h:443", None).contains("Proxy-Authorization"));
    }

    #[test]
    fn not_http_preview_hides_echoed_credentials() {
        let token = BASE64.encode("user:hunter2");
        let echoed = connect_request("h:443", Some(&token));
        let TunnelError::NotHttp {
            preview,
            looks_like_tls,
        } = not_http(echoed.as_bytes(), &[token.as_str(), "hunter2"])
        else {
            panic!("expected NotHttp");
        };
        assert!(!looks_like_tls);
        assert!(
            !preview.contains(&token[..8]) && !preview.contains("hunter2"),
            "{preview}"
        );
        assert!(
            preview.starts_with("CONNECT h:443 HTTP/1.1\\r\\n"),
            "{preview}"
        );
    }

    #[test]
    fn not_http_recognises_a_tls_record() {
        let TunnelError::NotHttp {
            preview,
            looks_like_tls,
        } = not_http(b"\x15\x03\x03\x00\x02\x02\x28", &[])
        else {
            panic!("expected NotHttp");
        };
        assert!(looks_like_tls);
        assert_eq!(preview, "\\x15\\x03\\x03\\x00\\x02\\x02(");
    }
}
