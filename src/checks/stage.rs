//! The stage: where the official SDKs (and the Kafka connector v4) upload file fragments, a
//! destination of its own ("Successful access to your Snowflake account doesn't establish access
//! to … SDK upload destinations"). They are part of `--full`, as the SDK's uploads are part of
//! streaming. `stage.info` learns the storage host — from `:pipe-info`, as the SDK asks it when it
//! opens a channel, or, with no table or pipe configured, from a `SYSTEM$ALLOWLIST` STAGE entry
//! (`--allowlist`) — and `dns.stage`, `tcp.stage` and `tls.stage`
//! check it along the route the SDK takes (its `HTTPS_PROXY`/`NO_PROXY`, the rules every check
//! follows). `stage.reach` then sends one anonymous `GET` for an object that does not exist:
//! the storage provider answers it with its own refusal (S3's XML `AccessDenied`, Azure's
//! `x-ms-request-id`, …), which proves uploads would reach it; anything else — a proxy's page, a
//! reset, silence — is not. Nothing is ever written to the stage, and a redirect is not
//! followed. Pairs with `checks/stage.toml`.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::answer::{self, Judged};
use crate::checks::tls;
use crate::checks::{auth, stream};
use crate::context::{Ctx, HostRole};
use crate::net::tls::{TlsFailure, TlsVersions, handshake};
use crate::outcome::{Outcome, SkipReason, Status};
use crate::snowflake::rest::ApiCall;
use crate::snowflake::stage::{self, PipeInfo, StageTarget, StorageAnswer};

// Beside tls.ingest, as stream.open is: the call's own handshake overlaps the TLS check's. After
// stream.open (with --full), whatever its verdict: the two calls would otherwise race for the
// ingest host's first connection and open two.
pub const INFO: CheckSpec = CheckSpec::new(
    "stage.info",
    "Stage: where the SDK uploads files",
    &["auth.scoped_token", "dns.ingest"],
    |ctx| Box::pin(info(ctx)),
)
.early(&["tls.ingest"])
.after(&["stream.open"])
.full();
pub const REACH: CheckSpec = CheckSpec::new(
    "stage.reach",
    "Stage: the storage provider answers",
    &["tls.stage"],
    |ctx| Box::pin(reach(ctx)),
)
.full();

/// The most of an answer `stage.reach` reads, head and body: a provider's refusal is under 1 KiB,
/// and a block page is recognised by its first bytes.
const ANSWER_CAP: usize = 64 * 1024;

async fn info(ctx: Ctx) -> Outcome {
    if ctx.settings.snowflake.is_none() {
        return auth::not_configured();
    }
    if let Ok(pipe) = stream::pipe(&ctx) {
        return from_pipe_info(&ctx, &pipe).await;
    }
    match allowlisted(&ctx) {
        Some(target) => {
            let finding = format!(
                "{} stage {} (a STAGE entry of --allowlist)",
                target.provider, target.endpoint.host
            );
            let evidence = serde_json::json!({ "source": "allowlist", "stage": &target });
            let _ = ctx.facts.stage.set(target);
            Outcome::pass(finding, evidence)
        }
        None => Outcome::skip(SkipReason::NotConfigured(
            "no table or pipe to ask :pipe-info about, and no STAGE entry in --allowlist".into(),
        )),
    }
}

/// The first STAGE entry of `--allowlist` that names a storage host (wildcards name none).
fn allowlisted(ctx: &Ctx) -> Option<StageTarget> {
    ctx.settings
        .allowlist
        .as_deref()?
        .iter()
        .filter(|e| e.kind.eq_ignore_ascii_case("STAGE") && !e.host.starts_with('*'))
        .find_map(|e| stage::allowlist_target(&e.host, e.port))
}

/// `POST …/pipes/{pipe}:pipe-info` on the ingest host with the scoped token, as the SDK asks it.
async fn from_pipe_info(ctx: &Ctx, pipe: &crate::snowflake::rest::PipeRef) -> Outcome {
    let (base, token) = match stream::ingest(ctx) {
        Ok(x) => x,
        Err(skip) => return skip,
    };
    let url = format!("{base}{}?requestId={}", pipe.pipe_info_path(), request_id());
    let result = ctx
        .net
        .api
        .call(ApiCall::PipeInfo, || {
            stream::request(ctx, reqwest::Method::POST, &url, token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(stage::PIPE_INFO_BODY)
        })
        .await;
    answer::judge(ApiCall::PipeInfo, &result, |reply, ev| -> Judged {
        // The answer carries upload credentials: only the location's public fields are read,
        // and the credentials are registered as secrets before anything is said of it.
        let unusable = |why: String| (RowId::StageLocationUnusable, why);
        let info = PipeInfo::parse(&reply.body)
            .map_err(|e| unusable(format!("no rowset_stage_location in the answer ({e})")))?;
        let target = info
            .rowset_stage_location
            .target()
            .map_err(|e| unusable(e.to_string()))?;
        ev.add("source", "pipe-info");
        ev.add("stage", &target);
        let finding = format!(
            "{} stage {}{} (from :pipe-info)",
            target.provider, target.endpoint.host, target.path
        );
        let _ = ctx.facts.stage.set(target);
        Ok(finding)
    })
}

/// A random RFC 4122 version-4 id, as the SDK sends with each call.
fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let hex = b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    });
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        8 | (b[8] & 3),
        &hex[17..20],
        &hex[20..]
    )
}

/// Names the provider in a stage host check's finding (`dns.stage`, `tcp.stage`, `tls.stage`
/// share the account and ingest checks' code and rows; the finding says it is the stage).
pub(crate) fn named(ctx: &Ctx, outcome: Outcome) -> Outcome {
    match (ctx.facts.stage.get(), &outcome.status) {
        (Some(t), Status::Pass | Status::Warn(_) | Status::Fail(_) | Status::TimedOut) => {
            let finding = format!("{} stage: {}", t.provider, outcome.finding);
            outcome.with_finding(finding)
        }
        _ => outcome,
    }
}

#[derive(Serialize)]
struct ReachEvidence<'a> {
    provider: stage::Provider,
    host: &'a str,
    port: u16,
    /// The object asked for (one that does not exist).
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_answer: Option<StorageAnswer>,
    /// The start of an answer that is not the provider's.
    #[serde(skip_serializing_if = "Option::is_none")]
    excerpt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    elapsed: Duration,
}

/// Why the anonymous request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
enum ReachError {
    #[error("could not open a connection: {0}")]
    Open(Box<crate::context::OpenError>),
    #[error("TLS: {0}")]
    Tls(TlsFailure),
    #[error("connection reset by the peer before an answer")]
    Reset,
    #[error("the connection closed without an answer")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within the step timeout")]
    Timeout,
    #[error("an answer that is not HTTP")]
    NotHttp,
}

/// An HTTP answer: status, headers and the start of the body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

async fn reach(ctx: Ctx) -> Outcome {
    let Some(target) = ctx.facts.stage.get() else {
        return Outcome::skip(SkipReason::NotConfigured("no stage host".into()));
    };
    let path = format!(
        "{}netcheck-probe-{:016x}",
        target.path,
        rand::random::<u64>()
    );
    let start = Instant::now();
    let result = anonymous_get(&ctx, target, &path, start + ctx.settings.timeout).await;
    let mut evidence = ReachEvidence {
        provider: target.provider,
        host: &target.endpoint.host,
        port: target.endpoint.port,
        path: &path,
        status: None,
        storage_answer: None,
        excerpt: None,
        error: None,
        elapsed: start.elapsed(),
    };
    let who = format!("{} stage {}", target.provider, target.endpoint.host);
    match result {
        Ok(a) => {
            evidence.status = Some(a.status);
            if let Some(s) = stage::storage_answer(target.provider, &a.headers, &a.body) {
                let code = s
                    .error_code
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default();
                let finding = format!(
                    "{who} answered an anonymous GET itself ({}{code}): uploads reach it",
                    a.status
                );
                evidence.storage_answer = Some(s);
                Outcome::pass(finding, evidence)
            } else {
                let excerpt = answer::excerpt(&a.body);
                let finding = format!(
                    "{who}: {} answered by something else than {} (no request id, no XML \
                         error): {excerpt}",
                    a.status, target.provider
                );
                evidence.excerpt = Some(excerpt);
                Outcome::fail(RowId::StageBlockPage, finding, evidence)
            }
        }
        Err(e) => {
            let row = match &e {
                ReachError::Timeout => RowId::StageTimeout,
                ReachError::Reset | ReachError::Closed | ReachError::Io(_) => RowId::StageReset,
                // tls.stage passed a moment ago: the same failures on this connection get the
                // same rows as there.
                ReachError::Open(open) => tls::open_row(open),
                ReachError::Tls(_) => RowId::TlsHandshake,
                ReachError::NotHttp => RowId::StageBlockPage,
            };
            let finding = format!("{who}: {e}");
            evidence.error = Some(e.to_string());
            Outcome::fail(row, finding, evidence)
        }
    }
}

/// One `GET` without credentials over the stage host's route, HTTP/1.1, its answer read as
/// [`read_answer`] does; every phase ends by `deadline`.
async fn anonymous_get(
    ctx: &Ctx,
    target: &StageTarget,
    path: &str,
    deadline: Instant,
) -> Result<Answer, ReachError> {
    let host = &target.endpoint.host;
    let send = async {
        let stream = ctx
            .open_stream(HostRole::Stage)
            .await
            .map_err(|e| ReachError::Open(Box::new(e)))?;
        let (probe, tls) = handshake(
            stream,
            host,
            &ctx.net.trust,
            TlsVersions::Both,
            &[b"http/1.1"],
            ctx.settings.timeout,
        )
        .await;
        let mut tls = match (tls, probe.result) {
            (Some(t), _) => t,
            (None, Err(f)) => return Err(ReachError::Tls(f)),
            (None, Ok(())) => return Err(ReachError::Closed),
        };
        let authority = match target.endpoint.port {
            443 => host.clone(),
            port => format!("{host}:{port}"),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: netcheck/{}\r\nAccept: */*\r\n\
             Connection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        tls.write_all(request.as_bytes()).await.map_err(io_error)?;
        Ok(tls)
    };
    let mut tls = tokio::time::timeout_at(deadline, send)
        .await
        .map_err(|_| ReachError::Timeout)??;
    read_answer(&mut tls, deadline).await
}

/// Reads one answer as HTTP/1.1 frames it: until the head is complete, then the body the head
/// announces — `Content-Length` bytes, chunks up to the last, else up to the close — at most
/// [`ANSWER_CAP`] in all. Nothing waits for the connection to close after a whole answer (an
/// intercepting proxy may keep it open whatever `Connection: close` asked). Before the head is
/// complete a reset, a close or the deadline is the failure, whatever bytes came first; after it,
/// the answer is judged as far as it was read.
async fn read_answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Instant,
) -> Result<Answer, ReachError> {
    let mut buf = Vec::new();
    let (mut answer, framing, head_len) = loop {
        if let Some(head) = parse_head(&buf)? {
            break head;
        }
        if buf.len() >= ANSWER_CAP {
            return Err(ReachError::NotHttp);
        }
        if read_more(stream, &mut buf, deadline).await? == 0 {
            return Err(ReachError::Closed);
        }
    };
    let body = loop {
        let (body, complete) = framing.body(&buf[head_len..]);
        if complete
            || buf.len() >= ANSWER_CAP
            || !matches!(read_more(stream, &mut buf, deadline).await, Ok(n) if n > 0)
        {
            break body;
        }
    };
    answer.body = String::from_utf8_lossy(&body).into_owned();
    Ok(answer)
}

/// Appends what the stream has next to `buf` (up to [`ANSWER_CAP`]): how many bytes, 0 at its
/// end.
async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, ReachError> {
    let mut chunk = [0u8; 8192];
    let room = ANSWER_CAP.saturating_sub(buf.len()).min(chunk.len());
    match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..room])).await {
        Err(_) => Err(ReachError::Timeout),
        Ok(Err(e)) => Err(io_error(e)),
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
    }
}

/// A reset is its own failure; other I/O errors are kept as they are.
fn io_error(e: std::io::Error) -> ReachError {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => ReachError::Reset,
        // A TLS peer that closes without close_notify.
        std::io::ErrorKind::UnexpectedEof => ReachError::Closed,
        _ => ReachError::Io(e),
    }
}

/// How the head says its body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    ToClose,
}

impl Framing {
    /// The body in `raw` (what followed the head) so far, and whether it is whole.
    fn body(self, raw: &[u8]) -> (Vec<u8>, bool) {
        match self {
            Self::Length(n) => (raw[..n.min(raw.len())].to_vec(), raw.len() >= n),
            Self::Chunked => dechunk(raw),
            Self::ToClose => (raw.to_vec(), false),
        }
    }
}

/// The data of a chunked body so far, and whether its last chunk has come (a chunk size that
/// does not parse ends it too: no more bytes can make it whole).
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let (at, size) = match httparse::parse_chunk_size(raw) {
            Ok(httparse::Status::Complete(chunk)) => chunk,
            Ok(httparse::Status::Partial) => return (body, false),
            Err(_) => return (body, true),
        };
        if size == 0 {
            return (body, true);
        }
        let data = &raw[at..];
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if data.len() < size {
            body.extend_from_slice(data);
            return (body, false);
        }
        body.extend_from_slice(&data[..size]);
        // The chunk's CRLF; until it comes the next size is Partial.
        raw = data.get(size + 2..).unwrap_or_default();
    }
}

/// The status line and headers once the head is complete (`None` while it is not), its body
/// framing and length.
fn parse_head(buf: &[u8]) -> Result<Option<(Answer, Framing, usize)>, ReachError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ReachError::NotHttp),
    };
    let status = response.code.unwrap_or_default();
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let framing = if header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().ends_with("chunked"))
    {
        Framing::Chunked
    } else if let Some(n) = header("content-length").and_then(|n| n.parse().ok()) {
        Framing::Length(n)
    } else if matches!(status, 100..=199 | 204 | 304) {
        Framing::Length(0)
    } else {
        Framing::ToClose
    };
    let answer = Answer {
        status,
        headers,
        body: String::new(),
    };
    Ok(Some((answer, framing, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        let id = request_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    /// `read_answer` on `answer`, from a server that then keeps the connection open (or closes
    /// it, with `close`); the deadline 5 s away, or 300 ms with `short`.
    async fn read_within(answer: &[u8], close: bool, short: bool) -> Result<Answer, ReachError> {
        let (mut client, mut server) = tokio::io::duplex(ANSWER_CAP * 2);
        server.write_all(answer).await.unwrap();
        let _open = (!close).then_some(server);
        let within = Duration::from_millis(if short { 300 } else { 5000 });
        read_answer(&mut client, Instant::now() + within).await
    }

    async fn read(answer: &[u8], close: bool) -> Result<Answer, ReachError> {
        read_within(answer, close, false).await
    }

    const DENIED: &[u8] = b"HTTP/1.1 403 Forbidden\r\nx-amz-request-id: 1\r\nContent-Length: 40\r\n\r\n<Error><Code>AccessDenied</Code></Error>";

    #[tokio::test]
    async fn reads_a_whole_answer_on_a_connection_kept_open() {
        let start = std::time::Instant::now();
        let a = read(DENIED, false).await.unwrap();
        assert_eq!(a.status, 403);
        assert_eq!(a.body, "<Error><Code>AccessDenied</Code></Error>");
        let chunked = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n\
            6\r\n<html>\r\n7\r\nblocked\r\n0\r\n\r\n";
        assert_eq!(read(chunked, false).await.unwrap().body, "<html>blocked");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn reads_no_further_than_the_framing_or_the_cap() {
        let extra = [DENIED, b"HTTP/1.1 200 OK\r\n\r\nmore"].concat();
        assert_eq!(
            read(&extra, true).await.unwrap().body,
            "<Error><Code>AccessDenied</Code></Error>"
        );
        let huge = [
            b"HTTP/1.1 200 OK\r\n\r\n".as_slice(),
            &vec![b'x'; ANSWER_CAP * 2 - 100],
        ]
        .concat();
        let a = read(&huge, false).await.unwrap();
        assert!(a.body.len() < ANSWER_CAP, "{}", a.body.len());
    }

    #[tokio::test]
    async fn an_unframed_body_is_read_to_the_close_or_the_deadline() {
        let page = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>blocked";
        assert_eq!(read(page, true).await.unwrap().body, "<html>blocked");
        // Kept open: judged as far as it was read when the step's time is up.
        let kept = read_within(page, false, true).await.unwrap();
        assert_eq!(kept.body, "<html>blocked");
    }

    #[tokio::test]
    async fn an_incomplete_head_is_no_answer() {
        let half = b"HTTP/1.1 403 Forbidden\r\nContent-Ty";
        assert!(matches!(read(half, true).await, Err(ReachError::Closed)));
        assert!(matches!(
            read_within(half, false, true).await,
            Err(ReachError::Timeout)
        ));
        assert!(matches!(read(b"", true).await, Err(ReachError::Closed)));
        assert!(matches!(
            read(b"\x15\x03\x03\x00\x02\x02\x28", true).await,
            Err(ReachError::NotHttp)
        ));
    }
}
