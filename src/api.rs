//! Snowflake REST calls as netcheck makes them: every request goes through the run's one HTTP
//! client ([`crate::net::http`]), is bounded by the step timeout, timed, and logged as an
//! [`Exchange`] (never with its headers or body: those carry JWTs and tokens). Throttling and
//! retryable server errors are retried with exponential backoff and jitter, a bounded number of
//! times, honouring `Retry-After` up to a cap.
//!
//! Nothing a server sends is trusted to be small or to come from Snowflake: an answer is read as a
//! stream and cut at [`answer_cap`] (inside the step timeout, so a drip-feed ends too), and a
//! redirect is never followed (the client is built with `redirect::Policy::none()`): a 3xx is
//! [`CallError::Redirected`], so no verdict is ever drawn from another host's answer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use time::OffsetDateTime;

use crate::net::proxy::{self, ProxyDecision, ProxySettings, TargetScheme};
use crate::snowflake::rest::{ApiCall, ApiError};

/// At most this many attempts of one call (the first included).
const MAX_ATTEMPTS: u32 = 4;
/// The first backoff; it doubles, with jitter, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The most netcheck reads of an answer to `call` (after decompression). Real answers are far
/// smaller: a host name or a token is under 4 KiB, a channel call's answer under 8 KiB, and a SQL
/// result of the statements netcheck runs (`SYSTEM$ALLOWLIST()` the largest) under 1 MiB.
/// Anything past the cap is a middlebox's page or garbage, and reading on would only cost memory.
#[must_use]
pub const fn answer_cap(call: ApiCall) -> usize {
    match call {
        ApiCall::Statements | ApiCall::Status => 8 * MIB,
        ApiCall::Open
        | ApiCall::Append
        | ApiCall::Filebuffer
        | ApiCall::Drop
        | ApiCall::PipeInfo => MIB,
        ApiCall::Hostname
        | ApiCall::Token
        | ApiCall::IdpToken
        | ApiCall::Telemetry
        | ApiCall::Other => 64 * KIB,
    }
}

/// The most of a redirect's `Location` kept as evidence.
const MAX_LOCATION: usize = 256;

/// One request/response as evidence: what was called, how it ended, how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub call: ApiCall,
    pub method: String,
    pub host: String,
    /// The path without its query (the query may carry offset and continuation tokens).
    pub path: String,
    pub status: Option<u16>,
    /// The stable error code of an error body (`390144`, `ERR_PIPE_…`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The server's error message (it quotes the client IP for a network-policy block).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    pub elapsed: std::time::Duration,
    pub attempt: u32,
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// The server's `Date` header.
    pub date: Option<OffsetDateTime>,
    /// Of the last attempt.
    pub elapsed: Duration,
    /// How many attempts were throttled or failed retryably before this answer.
    pub retries: u32,
    /// The call's latency budget, scaled by `--budget-scale` (`None`: the call has none).
    pub budget: Option<Duration>,
}

impl Reply {
    /// Whether the status is 2xx.
    #[must_use]
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error body, in whichever shape it came.
    #[must_use]
    pub fn error(&self) -> Option<ApiError> {
        ApiError::parse(&self.body)
    }
}

/// No answer at all.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallError {
    #[error("no answer within {0:?}")]
    Timeout(#[serde(serialize_with = "crate::units::serialize_ms")] Duration),
    /// The answer ran past [`answer_cap`]; the rest was not read.
    #[error("answer larger than {} KiB, the most netcheck reads of a {call} answer", cap / KIB)]
    TooLarge { call: ApiCall, cap: usize },
    /// A 3xx (never followed), or an answer pointing to another host for the next request.
    #[error("{status} pointing to {location} (not followed)")]
    Redirected { status: u16, location: String },
    /// The proxy's tunnel closed while the answer was awaited, after the request had waited
    /// long enough for an idle timeout (not a refusal).
    #[error("the proxy {proxy} closed the tunnel after the request had waited {:.1} s for the answer ({message})", waited.as_secs_f64())]
    TunnelClosed {
        /// The proxy the request went through.
        proxy: String,
        /// From sending the request to the close.
        #[serde(rename = "waited_ms", serialize_with = "crate::units::serialize_ms")]
        waited: Duration,
        message: String,
    },
    #[error("{message}")]
    Transport {
        message: String,
        /// What the socket underneath said, when it said something a network engineer names.
        #[serde(skip_serializing_if = "Option::is_none")]
        socket: Option<crate::net::connect::ConnectFailureKind>,
        /// It failed while connecting (TCP, proxy CONNECT or TLS), so the request never left.
        #[serde(skip)]
        unsent: bool,
    },
}

impl CallError {
    /// A failure before anything was sent (no credentials, nothing to send).
    #[must_use]
    pub fn local(message: impl Into<String>) -> Self {
        Self::Transport {
            message: message.into(),
            socket: None,
            unsent: true,
        }
    }

    /// A redirect to `location`, without its query or fragment (a login redirect's state or
    /// code), cut to a length fit for a report.
    #[must_use]
    pub fn redirected(status: u16, location: Option<&str>) -> Self {
        let location = location.map(|l| l.split(['?', '#']).next().unwrap_or_default());
        let location = location.map_or_else(
            || "no Location".to_owned(),
            |l| match l.char_indices().nth(MAX_LOCATION) {
                Some((at, _)) => format!("{}…", &l[..at]),
                None => l.to_owned(),
            },
        );
        Self::Redirected { status, location }
    }

    /// Whether the request certainly never reached the server.
    #[must_use]
    pub fn unsent(&self) -> bool {
        matches!(self, Self::Transport { unsent: true, .. })
    }
}

/// A connection that closes this long after the request or later, through a proxy, is taken
/// for the proxy's idle timeout rather than a refusal (which comes at once).
const IDLE_CLOSE_AFTER: Duration = Duration::from_millis(500);

/// The run's API client and its exchange log.
pub struct Api {
    http: reqwest::Client,
    timeout: Duration,
    /// The proxy decision the client follows, to name the proxy when a tunnel closes.
    proxies: ProxySettings,
    /// `--budget-scale`: how much slower than the latency table a call may be before it warns.
    budget_scale: f64,
    log: Mutex<Vec<Exchange>>,
}

impl Api {
    /// Wraps the run's HTTP client, built to follow `proxies`.
    #[must_use]
    pub fn new(
        http: reqwest::Client,
        timeout: Duration,
        proxies: ProxySettings,
        budget_scale: f64,
    ) -> Self {
        Self {
            http,
            timeout,
            proxies,
            budget_scale,
            log: Mutex::default(),
        }
    }

    /// A call's latency budget as this run judges it (scaled by `--budget-scale`).
    #[must_use]
    pub fn budget(&self, call: ApiCall) -> Option<Duration> {
        call.budget().map(|b| b.mul_f64(self.budget_scale))
    }

    /// The client, to build requests with.
    #[must_use]
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Every exchange so far, in order.
    #[must_use]
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().expect("exchange log").clone()
    }

    /// Sends the request `make` builds, retrying 429, 500 and 503 with backoff and jitter
    /// (at most four attempts); each attempt is bounded by the step timeout.
    pub async fn call(
        &self,
        call: ApiCall,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Reply, CallError> {
        let mut backoff = FIRST_BACKOFF;
        let mut retries = 0;
        loop {
            let attempt = retries + 1;
            let reply = self.once(call, make(), attempt).await?;
            let retryable = matches!(reply.0.status, 429 | 500 | 503);
            if !retryable || attempt >= MAX_ATTEMPTS {
                return Ok(Reply {
                    retries,
                    budget: self.budget(call),
                    ..reply.0
                });
            }
            let wait = reply.1.unwrap_or(backoff).min(MAX_BACKOFF);
            let jitter = rand::thread_rng().gen_range(0..=wait.as_millis() / 4);
            tokio::time::sleep(wait + Duration::from_millis(u64::try_from(jitter).unwrap_or(0)))
                .await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            retries += 1;
        }
    }

    /// One attempt; returns the reply and its `Retry-After`.
    async fn once(
        &self,
        call: ApiCall,
        request: reqwest::RequestBuilder,
        attempt: u32,
    ) -> Result<(Reply, Option<Duration>), CallError> {
        let request = request
            .build()
            .map_err(|e| CallError::local(e.to_string()))?;
        let (method, host, path) = (
            request.method().to_string(),
            request.url().host_str().unwrap_or_default().to_owned(),
            request.url().path().to_owned(),
        );
        let headers = tracing::enabled!(tracing::Level::DEBUG).then(|| shown_headers(&request));
        let start = Instant::now();
        let cap = answer_cap(call);
        let result = tokio::time::timeout(self.timeout, async {
            let response = self.http.execute(request).await?;
            let status = response.status().as_u16();
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            };
            if response.status().is_redirection() {
                let location = header(reqwest::header::LOCATION);
                return Ok(Err(CallError::redirected(status, location.as_deref())));
            }
            let date = header(reqwest::header::DATE)
                .and_then(|d| httpdate::parse_http_date(&d).ok())
                .map(OffsetDateTime::from);
            let retry_after = header(reqwest::header::RETRY_AFTER)
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let Some(body) = read_capped(response, cap).await? else {
                return Ok(Err(CallError::TooLarge { call, cap }));
            };
            Ok::<_, reqwest::Error>(Ok((status, date, retry_after, body)))
        })
        .await;
        let elapsed = start.elapsed();
        let outcome = match result {
            Err(_) => Err(CallError::Timeout(self.timeout)),
            // reqwest's own timeout (the same bound) can fire first: it is still a timeout.
            Ok(Err(e)) if e.is_timeout() => Err(CallError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(match self.proxy_for(&host) {
                Some(proxy) if !e.is_connect() && elapsed >= IDLE_CLOSE_AFTER && closed(&e) => {
                    CallError::TunnelClosed {
                        proxy,
                        waited: elapsed,
                        message: describe(&e.without_url()),
                    }
                }
                _ => CallError::Transport {
                    unsent: e.is_connect(),
                    socket: socket_failure(&e),
                    message: describe(&e.without_url()),
                },
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Ok(Ok((status, date, retry_after, body)))) => Ok((
                Reply {
                    status,
                    body,
                    date,
                    elapsed,
                    retries: 0,
                    budget: None,
                },
                retry_after,
            )),
        };
        if let Some(headers) = headers {
            log_exchange(
                call,
                &format!("{method} https://{host}{path}"),
                &headers,
                &outcome,
                elapsed,
            );
        }
        let (status, error) = match &outcome {
            Ok((r, _)) => (Some(r.status), (!r.ok()).then(|| r.error()).flatten()),
            Err(CallError::Redirected { status, .. }) => (Some(*status), None),
            Err(_) => (None, None),
        };
        let (error_code, message) = error.map_or((None, None), |e| (Some(e.code), e.message));
        self.log.lock().expect("exchange log").push(Exchange {
            call,
            method,
            host,
            path,
            status,
            error_code,
            message,
            elapsed,
            attempt,
        });
        outcome
    }
}

/// A request's headers for `-vv`: credentials as `***` here, whatever the sink also scrubs.
fn shown_headers(request: &reqwest::Request) -> String {
    use reqwest::header::{AUTHORIZATION, PROXY_AUTHORIZATION};
    request
        .headers()
        .iter()
        .map(|(name, value)| {
            if name == AUTHORIZATION || name == PROXY_AUTHORIZATION {
                format!("{name}: ***")
            } else {
                format!("{name}: {}", String::from_utf8_lossy(value.as_bytes()))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One HTTP exchange at debug level (`-vv`), through the log writer's sink. An answer that
/// carries credentials is withheld (see [`ApiCall::answer_carries_credentials`]).
fn log_exchange(
    call: ApiCall,
    request: &str,
    headers: &str,
    outcome: &Result<(Reply, Option<Duration>), CallError>,
    elapsed: Duration,
) {
    const SHOWN: usize = 512;
    let answer = match outcome {
        Ok((reply, _)) if call.answer_carries_credentials() => {
            format!("{} (body withheld: it carries credentials)", reply.status)
        }
        Ok((reply, _)) => {
            // Scrubbed before it is cut: a secret cut in half no longer matches at the sink.
            let whole = crate::secret::scrub(&reply.body);
            let mut body: String = whole.chars().take(SHOWN).collect();
            if body.len() < whole.len() {
                body.push('…');
            }
            format!("{} {body}", reply.status)
        }
        Err(e) => format!("no answer: {e}"),
    };
    tracing::debug!(
        "http: {request} [{headers}] -> {answer} in {:.1} ms",
        crate::units::ms(elapsed)
    );
}

/// The body, read chunk by chunk (decompressed) until it ends or passes `cap`: `None` past the
/// cap, without reading further. A declared length over the cap is refused before reading.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Option<String>, reqwest::Error> {
    // `content_length` is `None` for a compressed answer, whose declared length says nothing of
    // what it inflates to.
    let declared = response.content_length().unwrap_or(0);
    if usize::try_from(declared).map_or(true, |n| n > cap) {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    // In place when it is UTF-8 (it always is from Snowflake): no second copy of a large body.
    Ok(Some(String::from_utf8(body).unwrap_or_else(|e| {
        String::from_utf8_lossy(e.as_bytes()).into_owned()
    })))
}

impl Api {
    /// The proxy requests to `host` go through, as the client decides it.
    fn proxy_for(&self, host: &str) -> Option<String> {
        match proxy::decide(&self.proxies, TargetScheme::Https, host) {
            Ok(ProxyDecision::Proxy { proxy, .. }) => Some(proxy.to_string()),
            _ => None,
        }
    }
}

/// Whether the connection ended under the request: closed mid-answer (hyper's incomplete
/// message, an end of stream without TLS `close_notify`) or reset.
fn closed(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        let io = s
            .downcast_ref::<std::io::Error>()
            .or_else(|| s.downcast_ref::<h2::Error>().and_then(h2::Error::get_io));
        if io.is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
            )
        }) {
            return true;
        }
        source = s.source();
    }
    false
}

/// The kind of socket failure underneath a reqwest error (reset mid-answer, refused …), from the
/// `io::Error` in its source chain.
fn socket_failure(e: &reqwest::Error) -> Option<crate::net::connect::ConnectFailureKind> {
    use crate::net::connect::{ConnectFailureKind, classify};
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // Over HTTP/2 the socket error sits inside h2's error, and a peer that kills the
        // connection shows up as a reset stream or GOAWAY.
        let io = s
            .downcast_ref::<std::io::Error>()
            .or_else(|| s.downcast_ref::<h2::Error>().and_then(h2::Error::get_io));
        if let Some(io) = io {
            return Some(classify(io)).filter(|k| *k != ConnectFailureKind::Other);
        }
        if s.downcast_ref::<h2::Error>()
            .is_some_and(|h| h.is_reset() || h.is_go_away())
        {
            return Some(ConnectFailureKind::Reset);
        }
        source = s.source();
    }
    None
}

/// reqwest's error with its sources, which is where the useful part (refused, certificate…) is.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    // rustls appends a link to its manual to some errors: not for a network engineer's report.
    if let Some(link) = text.find(": https://docs.rs/") {
        text.truncate(link);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_is_reported_without_its_query_or_fragment() {
        let err = CallError::redirected(
            302,
            Some("https://login.example/authorize?code=abc123secret&state=x#frag"),
        );
        let CallError::Redirected { location, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(location, "https://login.example/authorize");
    }
}
