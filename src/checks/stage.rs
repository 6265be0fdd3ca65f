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
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// The most of an answer `stage.reach` reads: a provider's refusal is under 1 KiB, and a block
/// page is recognised by its first bytes.
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
        // The answer carries upload credentials: only the location's public fields are read.
        let unusable = |why: String| (RowId::StageLocationUnusable, why);
        let info: PipeInfo = serde_json::from_str(&reply.body)
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
    #[error("no answer within {0:?}")]
    Timeout(Duration),
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
    let timeout = ctx.settings.timeout;
    let result = match tokio::time::timeout(timeout, anonymous_get(&ctx, target, &path)).await {
        Ok(r) => r,
        Err(_) => Err(ReachError::Timeout(timeout)),
    };
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
                ReachError::Timeout(_) => RowId::StageTimeout,
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

/// One `GET` without credentials over the stage host's route, HTTP/1.1, read up to
/// [`ANSWER_CAP`]; the caller bounds it in time.
async fn anonymous_get(ctx: &Ctx, target: &StageTarget, path: &str) -> Result<Answer, ReachError> {
    let host = &target.endpoint.host;
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
    let mut buf = Vec::new();
    let read = (&mut tls)
        .take(ANSWER_CAP as u64)
        .read_to_end(&mut buf)
        .await;
    // A server that closes without close_notify (common) still sent its answer.
    if let Err(e) = read {
        if buf.is_empty() {
            return Err(io_error(e));
        }
    }
    parse_answer(&buf)
}

/// A reset is its own failure; other I/O errors are kept as they are.
fn io_error(e: std::io::Error) -> ReachError {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => ReachError::Reset,
        std::io::ErrorKind::UnexpectedEof => ReachError::Closed,
        _ => ReachError::Io(e),
    }
}

/// Parses the status line and headers; the body is what follows them (possibly chunked: only
/// its text is looked at).
fn parse_answer(buf: &[u8]) -> Result<Answer, ReachError> {
    if buf.is_empty() {
        return Err(ReachError::Closed);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Ok(Answer {
            status: response.code.unwrap_or_default(),
            headers: response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&buf[len..]).into_owned(),
        }),
        Ok(httparse::Status::Partial) | Err(_) => Err(ReachError::NotHttp),
    }
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

    #[test]
    fn parses_a_providers_refusal_and_tells_non_http() {
        let a = parse_answer(
            b"HTTP/1.1 403 Forbidden\r\nx-amz-request-id: 1\r\n\r\n<Error><Code>AccessDenied</Code></Error>",
        )
        .unwrap();
        assert_eq!(a.status, 403);
        assert!(a.body.contains("AccessDenied"));
        assert!(matches!(
            parse_answer(b"\x15\x03\x03"),
            Err(ReachError::NotHttp)
        ));
        assert!(matches!(parse_answer(b""), Err(ReachError::Closed)));
    }
}
