//! Fault modes as data: what they are, their `NAME[=VALUE][@SCOPE][#N]` syntax, and the set in
//! force with its lookups. [`super::fault_layer`] applies the HTTP-level ones before a request
//! reaches its handler; handlers read the ones that change their answer (missing pipe, channel
//! status, never commit) through [`FaultSet`]; TLS faults pick the server's TLS config per
//! connection.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ipnet::IpNet;

use crate::snowflake::oauth::GrantError;
use crate::snowflake::rest::{ApiCall, codes};
use crate::units::parse_duration;

/// Which of the emulator's hosts a request or TLS connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vhost {
    /// The account host (`myorg-myaccount.snowflakecomputing.com`).
    Account,
    /// The ingest host.
    Ingest,
    /// The OAuth identity provider's token endpoint (its own host name).
    Idp,
    /// An IP address or `localhost`: the client reached the emulator by address, so it serves
    /// both Snowflake roles (as the SDK test needs).
    Address,
    /// The stage's storage host, when the emulator answers for it (no external stage server):
    /// every request gets S3's anonymous refusal.
    Stage,
    /// Any other name: answered with 404.
    Unknown,
}

/// Where a fault applies: one endpoint, or everything on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultScope {
    /// One API call (`@token`, `@append`, ...).
    Endpoint(ApiCall),
    /// Every request and TLS handshake for the account host (`@account`).
    AccountHost,
    /// Every request and TLS handshake for the ingest host (`@ingest`).
    IngestHost,
    /// Every request and TLS handshake for the OAuth identity provider (`@idp`).
    IdpHost,
}

impl FaultScope {
    fn matches(self, endpoint: Option<ApiCall>, host: Vhost) -> bool {
        match self {
            Self::Endpoint(e) => endpoint == Some(e),
            Self::AccountHost => matches!(host, Vhost::Account | Vhost::Address),
            Self::IngestHost => matches!(host, Vhost::Ingest | Vhost::Address),
            Self::IdpHost => host == Vhost::Idp,
        }
    }
}

/// A fault mode. Parse one with `"latency=200ms@token".parse::<Fault>()`; the syntax is
/// `NAME[=VALUE][@SCOPE][#N]` (see [`Fault::catalog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Delay every matching response.
    Latency(Duration),
    /// 429 `{"code":"390505",...}`, with `Retry-After: <secs>` when given.
    Throttle {
        /// Seconds for the `Retry-After` header; none means no header.
        retry_after: Option<u64>,
    },
    /// Appends that would take their channel's rows over the last second above this many: 429
    /// `{"code":"390505",...}` (a throughput limit, which a capacity probe must find).
    ThrottleAbove(u64),
    /// 500 or 503 with the bare-string body `"ERR_GENERAL_EXCEPTION_RETRY_REQUEST"`.
    ServerError(u16),
    /// Send the status line, headers and half the body, then reset the TCP connection.
    Reset,
    /// Drop the connection on receiving the request: no answer, no TLS `close_notify`, a FIN (a
    /// middlebox that lets the handshake through but not the API call).
    HangUp,
    /// Serve TLS 1.2 only.
    Tls12Only,
    /// Serve a certificate that expired yesterday.
    ExpiredCert,
    /// Serve a certificate for another host name.
    WrongHostCert,
    /// Serve a certificate from a CA the client was not given.
    UnknownCa,
    /// Skew the server clock by this many seconds (`Date` header, token times, JWT checks).
    ClockOffset(i64),
    /// A network policy that blocks these client networks (all when empty): 401 390422.
    NetworkPolicy(Vec<IpNet>),
    /// Pipes do not exist: 404 `ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED`.
    MissingPipe,
    /// The role lacks the privilege: same 404 (Snowflake does not tell the two apart).
    MissingPrivilege,
    /// Open and status answer 200 with this `channel_status_code` instead of `SUCCESS`.
    ChannelStatus(String),
    /// Appends are accepted (200) but the rows are never committed.
    NoCommit,
    /// Appends are accepted (200) and their rows committed twice, as a server that replayed a
    /// stored request would.
    DoubleCommit,
    /// The request is handled as usual (an append is stored), but a 2xx answer's body is replaced
    /// by text that is not JSON: the client cannot tell what happened.
    GarbledAnswer,
    /// Another client reopens the channel just before each append: the appender's continuation
    /// token goes stale for real (the server's own sequencer check refuses it).
    Reopened,
    /// Requests made with an OAuth (scoped) token: 401 390303 `Invalid OAuth access token`.
    InvalidToken,
    /// Requests made with an OAuth token: 401 390318 `OAUTH_ACCESS_TOKEN_EXPIRED`.
    TokenExpired,
    /// Requests made with an OAuth token: 401 390309, the token is tied to another user.
    TokenWrongUser,
    /// The identity provider's token endpoint refuses with this RFC 6749 error.
    OauthError(GrantError),
    /// The identity provider's token endpoint answers 200 with an HTML login page.
    OauthPage,
    /// The identity provider's token endpoint answers 302 to another host.
    OauthRedirect,
    /// The identity provider's token endpoint answers 200 with a JSON body larger than any client reads.
    OauthOversized,
    /// 403 with a plain-text body: something in front of Snowflake (a WAF, or an API that is not
    /// enabled) refuses the request, with no network-policy message.
    Forbidden,
    /// 409 with this code (default `ERR_OPEN_CHANNEL_IN_PROGRESS`).
    Conflict(String),
    /// Appends are accepted but every row fails to load (`rows_error_count` grows), as when the
    /// table has a NOT NULL column the rows leave out.
    RowErrors,
    /// `GET /v2/streaming/hostname` answers this text instead of the ingest host (empty: nothing).
    Hostname(String),
    /// A fault limited to one endpoint or host.
    Scoped(Box<Fault>, FaultScope),
    /// A fault applied to the first N matching requests (or handshakes) only — a failure that
    /// clears when retried, as `ERR_GENERAL_EXCEPTION_RETRY_REQUEST` does.
    Limited(Box<Fault>, u32),
}

/// One line of `--list-faults`: syntax and meaning.
#[derive(Debug, Clone, Copy)]
pub struct FaultHelp {
    /// `NAME[=VALUE]`.
    pub syntax: &'static str,
    /// What it does.
    pub meaning: &'static str,
}

const CATALOG: &[FaultHelp] = &[
    FaultHelp {
        syntax: "latency=DURATION",
        meaning: "delay responses (e.g. latency=200ms, latency=2s)",
    },
    FaultHelp {
        syntax: "throttle[=SECONDS]",
        meaning: "429 {\"code\":\"390505\"}; with a value, also Retry-After: SECONDS",
    },
    FaultHelp {
        syntax: "throttle-above=ROWS",
        meaning: "429 {\"code\":\"390505\"} for appends that would take their channel's last second above ROWS rows",
    },
    FaultHelp {
        syntax: "server-error[=500|503]",
        meaning: "bare-string body \"ERR_GENERAL_EXCEPTION_RETRY_REQUEST\" (default 503)",
    },
    FaultHelp {
        syntax: "reset",
        meaning: "send headers and half the body, then reset the TCP connection",
    },
    FaultHelp {
        syntax: "hang-up",
        meaning: "drop the connection on the request: no answer, no TLS close_notify",
    },
    FaultHelp {
        syntax: "tls12-only",
        meaning: "TLS 1.2 only (scope: @account or @ingest)",
    },
    FaultHelp {
        syntax: "expired-cert",
        meaning: "serve a certificate that expired yesterday (scope: @account or @ingest)",
    },
    FaultHelp {
        syntax: "wrong-host-cert",
        meaning: "serve a certificate for wrong-host.invalid (scope: @account or @ingest)",
    },
    FaultHelp {
        syntax: "unknown-ca",
        meaning: "serve a certificate from a CA that is not in ca.pem (scope: @account or @ingest)",
    },
    FaultHelp {
        syntax: "clock-offset=[-]DURATION",
        meaning: "skew the server clock: Date header, token times, JWT checks (no scope)",
    },
    FaultHelp {
        syntax: "network-policy[=CIDR]",
        meaning: "401 390422 for clients in CIDR (default: every client)",
    },
    FaultHelp {
        syntax: "missing-pipe",
        meaning: "404 ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED: the pipe does not exist",
    },
    FaultHelp {
        syntax: "missing-privilege",
        meaning: "404 ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED: the role lacks the grant",
    },
    FaultHelp {
        syntax: "channel-status[=CODE]",
        meaning: "200 with channel_status_code CODE (default ERR_CHANNEL_NO_LONGER_EXISTS)",
    },
    FaultHelp {
        syntax: "no-commit",
        meaning: "appends answer 200 but rows are never committed",
    },
    FaultHelp {
        syntax: "double-commit",
        meaning: "appends answer 200 and their rows are committed twice (a replayed request)",
    },
    FaultHelp {
        syntax: "garbled-answer",
        meaning: "handled as usual (an append is stored), but a 2xx answer's body is not JSON",
    },
    FaultHelp {
        syntax: "reopened",
        meaning: "another client reopens the channel before each append: continuation tokens go stale",
    },
    FaultHelp {
        syntax: "invalid-token",
        meaning: "401 390303 Invalid OAuth access token, for requests made with the scoped token",
    },
    FaultHelp {
        syntax: "token-expired",
        meaning: "401 390318 OAUTH_ACCESS_TOKEN_EXPIRED, for requests made with an OAuth token",
    },
    FaultHelp {
        syntax: "token-wrong-user",
        meaning: "401 390309 (token tied to another user), for requests made with an OAuth token",
    },
    FaultHelp {
        syntax: "oauth-error=CODE",
        meaning: "the IdP's token endpoint refuses with an RFC 6749 error (invalid_client, invalid_scope, …)",
    },
    FaultHelp {
        syntax: "oauth-page",
        meaning: "the IdP's token endpoint answers 200 with an HTML login page",
    },
    FaultHelp {
        syntax: "oauth-redirect",
        meaning: "the IdP's token endpoint answers 302 to another host",
    },
    FaultHelp {
        syntax: "oauth-oversized",
        meaning: "the IdP's token endpoint answers a JSON body of 1 MiB",
    },
    FaultHelp {
        syntax: "forbidden",
        meaning: "403 with a plain-text body and no network-policy message (a WAF in front)",
    },
    FaultHelp {
        syntax: "conflict[=CODE]",
        meaning: "409 with CODE (default ERR_OPEN_CHANNEL_IN_PROGRESS)",
    },
    FaultHelp {
        syntax: "row-errors",
        meaning: "appends answer 200 but every row fails to load (rows_error_count grows)",
    },
    FaultHelp {
        syntax: "hostname=TEXT",
        meaning: "hostname discovery answers TEXT (empty: an empty body)",
    },
];

/// Scopes accepted after `@`, for `--list-faults`.
pub const SCOPE_HELP: &str = "@hostname @token @pipe-info @open @append @filebuffer @status @drop \
@statements @telemetry @idp-token (one endpoint), @account @ingest @idp (one host)";

/// The count suffix, for `--list-faults`.
pub const COUNT_HELP: &str = "#N after everything else: only the first N matching requests \
(e.g. server-error=503@append#2)";

/// Why a fault specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    /// The name is not a fault.
    #[error("unknown fault {0:?} (see --list-faults)")]
    UnknownName(String),
    /// The value does not fit the fault.
    #[error("bad value {value:?} for fault {name}: {reason}")]
    BadValue {
        /// Fault name.
        name: String,
        /// The value given.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// The `#N` count is not a positive number, or the fault cannot be counted.
    #[error("bad count #{count} for fault {name}: {reason}")]
    BadCount {
        /// Fault name.
        name: String,
        /// The count given.
        count: String,
        /// What was expected.
        reason: &'static str,
    },
    /// The scope is unknown or does not fit the fault.
    #[error("bad scope @{scope} for fault {name}: {reason}")]
    BadScope {
        /// Fault name.
        name: String,
        /// The scope given.
        scope: String,
        /// What was expected.
        reason: &'static str,
    },
}

impl Fault {
    /// Limits the fault to one endpoint or host.
    #[must_use]
    pub fn on(self, scope: FaultScope) -> Self {
        Self::Scoped(Box::new(self), scope)
    }

    /// Applies the fault to the first `n` matching requests only.
    #[must_use]
    pub fn times(self, n: u32) -> Self {
        Self::Limited(Box::new(self), n)
    }

    /// Every fault with its syntax and meaning (one line each in `--list-faults`).
    #[must_use]
    pub fn catalog() -> &'static [FaultHelp] {
        CATALOG
    }

    /// The fault without its wrappers, its scope, and how many requests it applies to.
    #[must_use]
    pub fn parts(&self) -> (&Fault, Option<FaultScope>, Option<u32>) {
        match self {
            Self::Scoped(inner, scope) => {
                let (fault, _, times) = inner.parts();
                (fault, Some(*scope), times)
            }
            Self::Limited(inner, times) => {
                let (fault, scope, _) = inner.parts();
                (fault, scope, Some(*times))
            }
            other => (other, None, None),
        }
    }

    fn is_tls(&self) -> bool {
        matches!(
            self,
            Self::Tls12Only | Self::ExpiredCert | Self::WrongHostCert | Self::UnknownCa
        )
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Latency(_) => "latency",
            Self::Throttle { .. } => "throttle",
            Self::ThrottleAbove(_) => "throttle-above",
            Self::ServerError(_) => "server-error",
            Self::Reset => "reset",
            Self::HangUp => "hang-up",
            Self::Tls12Only => "tls12-only",
            Self::ExpiredCert => "expired-cert",
            Self::WrongHostCert => "wrong-host-cert",
            Self::UnknownCa => "unknown-ca",
            Self::ClockOffset(_) => "clock-offset",
            Self::NetworkPolicy(_) => "network-policy",
            Self::MissingPipe => "missing-pipe",
            Self::MissingPrivilege => "missing-privilege",
            Self::ChannelStatus(_) => "channel-status",
            Self::NoCommit => "no-commit",
            Self::DoubleCommit => "double-commit",
            Self::GarbledAnswer => "garbled-answer",
            Self::Reopened => "reopened",
            Self::InvalidToken => "invalid-token",
            Self::TokenExpired => "token-expired",
            Self::TokenWrongUser => "token-wrong-user",
            Self::OauthError(_) => "oauth-error",
            Self::OauthPage => "oauth-page",
            Self::OauthRedirect => "oauth-redirect",
            Self::OauthOversized => "oauth-oversized",
            Self::Forbidden => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::RowErrors => "row-errors",
            Self::Hostname(_) => "hostname",
            Self::Scoped(inner, _) | Self::Limited(inner, _) => inner.name(),
        }
    }
}

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        let (spec, count) = match spec.rsplit_once('#') {
            Some((s, n)) => (s, Some(n)),
            None => (spec, None),
        };
        let fault = parse_scoped(spec)?;
        let Some(count) = count else { return Ok(fault) };
        let bad = |reason| FaultParseError::BadCount {
            name: fault.name().to_owned(),
            count: count.to_owned(),
            reason,
        };
        let times: u32 = count
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("a positive number"))?;
        if matches!(fault.parts().0, Self::ClockOffset(_)) {
            return Err(bad("the clock is global"));
        }
        Ok(fault.times(times))
    }
}

/// `NAME[=VALUE][@SCOPE]`.
fn parse_scoped(spec: &str) -> Result<Fault, FaultParseError> {
    let (body, scope) = match spec.rsplit_once('@') {
        Some((b, s)) => (b, Some(s)),
        None => (spec, None),
    };
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    let fault = parse_named(name, value)?;
    let Some(scope) = scope else { return Ok(fault) };
    let bad_scope = |reason| FaultParseError::BadScope {
        name: name.to_owned(),
        scope: scope.to_owned(),
        reason,
    };
    let scope = match scope {
        "account" => FaultScope::AccountHost,
        "ingest" => FaultScope::IngestHost,
        "idp" => FaultScope::IdpHost,
        other => FaultScope::Endpoint(
            other
                .parse::<ApiCall>()
                .ok()
                .filter(|e| *e != ApiCall::Other)
                .ok_or_else(|| bad_scope("an endpoint or host, see --list-faults"))?,
        ),
    };
    if matches!(fault, Fault::ClockOffset(_)) {
        return Err(bad_scope("the clock is global"));
    }
    if fault.is_tls() && matches!(scope, FaultScope::Endpoint(_)) {
        return Err(bad_scope(
            "TLS faults apply per host: @account, @ingest or @idp",
        ));
    }
    Ok(fault.on(scope))
}

/// `NAME[=VALUE]`, without scope or count.
fn parse_named(name: &str, value: Option<&str>) -> Result<Fault, FaultParseError> {
    let bad = |reason| FaultParseError::BadValue {
        name: name.to_owned(),
        value: value.unwrap_or_default().to_owned(),
        reason,
    };
    Ok(match (name, value) {
        ("latency", Some(v)) => {
            Fault::Latency(parse_duration(v).ok_or_else(|| bad("a duration such as 200ms or 2s"))?)
        }
        ("latency", None) => return Err(bad("a duration such as 200ms or 2s")),
        ("throttle", v) => Fault::Throttle {
            retry_after: v
                .map(str::parse)
                .transpose()
                .map_err(|_| bad("whole seconds"))?,
        },
        ("throttle-above", Some(v)) => {
            Fault::ThrottleAbove(v.parse().map_err(|_| bad("a number of rows per second"))?)
        }
        ("throttle-above", None) => return Err(bad("a number of rows per second")),
        ("server-error", None) => Fault::ServerError(503),
        ("server-error", Some(v @ ("500" | "503"))) => Fault::ServerError(v.parse().unwrap_or(503)),
        ("server-error", Some(_)) => return Err(bad("500 or 503")),
        ("clock-offset", Some(v)) => {
            let (sign, magnitude) = match v.strip_prefix('-') {
                Some(m) => (-1, m),
                None => (1, v.strip_prefix('+').unwrap_or(v)),
            };
            let d = parse_duration(magnitude)
                .ok_or_else(|| bad("a signed duration such as -5m or 90s"))?;
            Fault::ClockOffset(
                sign * i64::try_from(d.as_secs()).map_err(|_| bad("a smaller duration"))?,
            )
        }
        ("clock-offset", None) => return Err(bad("a signed duration such as -5m or 90s")),
        ("network-policy", None) => Fault::NetworkPolicy(Vec::new()),
        ("network-policy", Some(v)) => Fault::NetworkPolicy(
            v.split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .or_else(|_| n.trim().parse::<std::net::IpAddr>().map(IpNet::from))
                })
                .collect::<Result<_, _>>()
                .map_err(|_| bad("CIDR list such as 127.0.0.1/32"))?,
        ),
        ("channel-status", v) => {
            Fault::ChannelStatus(v.unwrap_or(codes::ERR_CHANNEL_NO_LONGER_EXISTS).to_owned())
        }
        ("conflict", v) => {
            Fault::Conflict(v.unwrap_or(codes::ERR_OPEN_CHANNEL_IN_PROGRESS).to_owned())
        }
        ("oauth-error", Some(v)) => Fault::OauthError(
            v.parse()
                .map_err(|_| bad("an RFC 6749 error such as invalid_client or invalid_scope"))?,
        ),
        ("oauth-error", None) => {
            return Err(bad(
                "an RFC 6749 error such as invalid_client or invalid_scope",
            ));
        }
        ("hostname", Some(v)) => Fault::Hostname(v.to_owned()),
        ("hostname", None) => return Err(bad("the text to answer (may be empty)")),
        (flag, None) => match flag {
            "reset" => Fault::Reset,
            "hang-up" => Fault::HangUp,
            "tls12-only" => Fault::Tls12Only,
            "expired-cert" => Fault::ExpiredCert,
            "wrong-host-cert" => Fault::WrongHostCert,
            "unknown-ca" => Fault::UnknownCa,
            "missing-pipe" => Fault::MissingPipe,
            "missing-privilege" => Fault::MissingPrivilege,
            "no-commit" => Fault::NoCommit,
            "double-commit" => Fault::DoubleCommit,
            "garbled-answer" => Fault::GarbledAnswer,
            "reopened" => Fault::Reopened,
            "invalid-token" => Fault::InvalidToken,
            "token-expired" => Fault::TokenExpired,
            "token-wrong-user" => Fault::TokenWrongUser,
            "oauth-page" => Fault::OauthPage,
            "oauth-redirect" => Fault::OauthRedirect,
            "oauth-oversized" => Fault::OauthOversized,
            "forbidden" => Fault::Forbidden,
            "row-errors" => Fault::RowErrors,
            other => return Err(FaultParseError::UnknownName(other.to_owned())),
        },
        (flag, Some(_)) if CATALOG.iter().any(|h| h.syntax == flag) => {
            return Err(bad("no value"));
        }
        (other, Some(_)) => return Err(FaultParseError::UnknownName(other.to_owned())),
    })
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (fault, scope, times) = self.parts();
        f.write_str(fault.name())?;
        match fault {
            Self::Latency(d) => write!(f, "={}ms", d.as_millis())?,
            Self::Throttle {
                retry_after: Some(s),
            } => write!(f, "={s}")?,
            Self::ServerError(code) => write!(f, "={code}")?,
            Self::ThrottleAbove(rows) => write!(f, "={rows}")?,
            Self::ClockOffset(s) => write!(f, "={s}s")?,
            Self::NetworkPolicy(nets) if !nets.is_empty() => {
                let list: Vec<String> = nets.iter().map(ToString::to_string).collect();
                write!(f, "={}", list.join(","))?;
            }
            Self::ChannelStatus(code) | Self::Conflict(code) => write!(f, "={code}")?,
            Self::Hostname(text) => write!(f, "={text}")?,
            Self::OauthError(e) => write!(f, "={e}")?,
            _ => {}
        }
        match scope {
            Some(FaultScope::Endpoint(e)) => write!(f, "@{e}")?,
            Some(FaultScope::AccountHost) => f.write_str("@account")?,
            Some(FaultScope::IngestHost) => f.write_str("@ingest")?,
            Some(FaultScope::IdpHost) => f.write_str("@idp")?,
            None => {}
        }
        match times {
            Some(n) => write!(f, "#{n}"),
            None => Ok(()),
        }
    }
}

/// One fault in force: the bare fault, where it applies, and how many more times (if counted).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) fault: Fault,
    scope: Option<FaultScope>,
    remaining: Option<AtomicU32>,
}

impl Entry {
    /// Uses one application of the fault; false once a counted fault is used up. Call it only
    /// when the fault is actually applied, so a count means "the first N affected requests".
    pub(crate) fn take(&self) -> bool {
        self.remaining.as_ref().is_none_or(|n| {
            n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                .is_ok()
        })
    }
}

/// A `throttle-above` limit in force, in rows per second.
pub(crate) struct RowsCap<'a> {
    rows: u64,
    entry: &'a Entry,
}

impl RowsCap<'_> {
    /// Whether an append that takes its channel's last second to `rows` is throttled; a counted
    /// fault (`#N`) uses one application only when it throttles, as its docs promise.
    pub(crate) fn throttles(&self, rows: u64) -> bool {
        rows > self.rows && self.entry.take()
    }
}

/// The faults in force, with lookups by endpoint and host.
#[derive(Debug, Default)]
pub(crate) struct FaultSet(Vec<Entry>);

impl FaultSet {
    pub(crate) fn new(faults: Vec<Fault>) -> Self {
        Self(
            faults
                .into_iter()
                .map(|f| {
                    let (fault, scope, times) = f.parts();
                    Entry {
                        fault: fault.clone(),
                        scope,
                        remaining: times.map(AtomicU32::new),
                    }
                })
                .collect(),
        )
    }

    /// The faults that apply to a request (or, with no endpoint, a TLS handshake) by scope.
    pub(crate) fn matching(
        &self,
        endpoint: Option<ApiCall>,
        host: Vhost,
    ) -> impl Iterator<Item = &Entry> {
        self.0
            .iter()
            .filter(move |e| e.scope.is_none_or(|s| s.matches(endpoint, host)))
    }

    /// Whether a flag-like fault applies (and uses one application of it).
    pub(crate) fn has(&self, endpoint: ApiCall, host: Vhost, wanted: &Fault) -> bool {
        self.matching(Some(endpoint), host)
            .any(|e| e.fault == *wanted && e.take())
    }

    /// The channel status override, if any.
    pub(crate) fn channel_status(&self, endpoint: ApiCall, host: Vhost) -> Option<String> {
        self.text(endpoint, host, |f| match f {
            Fault::ChannelStatus(code) => Some(code),
            _ => None,
        })
    }

    /// The `throttle-above` limit in force, if any. Looking it up uses none of its `#N`: only an
    /// append it throttles does ([`RowsCap::throttles`]).
    pub(crate) fn rows_per_sec_cap(&self, endpoint: ApiCall, host: Vhost) -> Option<RowsCap<'_>> {
        self.matching(Some(endpoint), host)
            .find_map(|e| match e.fault {
                Fault::ThrottleAbove(rows) => Some(RowsCap { rows, entry: e }),
                _ => None,
            })
    }

    /// What hostname discovery answers instead of the ingest host, if anything.
    pub(crate) fn hostname(&self, endpoint: ApiCall, host: Vhost) -> Option<String> {
        self.text(endpoint, host, |f| match f {
            Fault::Hostname(text) => Some(text),
            _ => None,
        })
    }

    /// The text of the first applying fault `pick` recognises (using one application of it).
    fn text(
        &self,
        endpoint: ApiCall,
        host: Vhost,
        pick: impl Fn(&Fault) -> Option<&String>,
    ) -> Option<String> {
        self.matching(Some(endpoint), host)
            .find_map(|e| pick(&e.fault).filter(|_| e.take()).cloned())
    }

    /// The clock offset in seconds.
    pub(crate) fn clock_offset(&self) -> i64 {
        self.0
            .iter()
            .map(|e| match e.fault {
                Fault::ClockOffset(s) => s,
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case("latency=200ms" => Fault::Latency(Duration::from_millis(200)))]
    #[test_case("latency=2s@token" => Fault::Latency(Duration::from_secs(2)).on(FaultScope::Endpoint(ApiCall::Token)))]
    #[test_case("throttle" => Fault::Throttle { retry_after: None })]
    #[test_case("throttle=5@append" => Fault::Throttle { retry_after: Some(5) }.on(FaultScope::Endpoint(ApiCall::Append)))]
    #[test_case("server-error" => Fault::ServerError(503))]
    #[test_case("server-error=500" => Fault::ServerError(500))]
    #[test_case("tls12-only@ingest" => Fault::Tls12Only.on(FaultScope::IngestHost))]
    #[test_case("clock-offset=-5m" => Fault::ClockOffset(-300))]
    #[test_case("clock-offset=+90s" => Fault::ClockOffset(90))]
    #[test_case("network-policy=10.0.0.0/8,127.0.0.1" => Fault::NetworkPolicy(vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()]))]
    #[test_case("channel-status" => Fault::ChannelStatus("ERR_CHANNEL_NO_LONGER_EXISTS".into()))]
    #[test_case("no-commit@append" => Fault::NoCommit.on(FaultScope::Endpoint(ApiCall::Append)))]
    #[test_case("reopened" => Fault::Reopened)]
    #[test_case("garbled-answer@append" => Fault::GarbledAnswer.on(FaultScope::Endpoint(ApiCall::Append)))]
    #[test_case("double-commit@append#1" => Fault::DoubleCommit.on(FaultScope::Endpoint(ApiCall::Append)).times(1))]
    #[test_case("server-error=503@append#2" => Fault::ServerError(503).on(FaultScope::Endpoint(ApiCall::Append)).times(2))]
    #[test_case("reset#1" => Fault::Reset.times(1))]
    #[test_case("invalid-token" => Fault::InvalidToken)]
    #[test_case("forbidden@account" => Fault::Forbidden.on(FaultScope::AccountHost))]
    #[test_case("conflict" => Fault::Conflict("ERR_OPEN_CHANNEL_IN_PROGRESS".into()))]
    #[test_case("conflict=ERR_PIPE_IN_INVALID_STATE@open" => Fault::Conflict("ERR_PIPE_IN_INVALID_STATE".into()).on(FaultScope::Endpoint(ApiCall::Open)))]
    #[test_case("row-errors" => Fault::RowErrors)]
    #[test_case("throttle-above=5000@append" => Fault::ThrottleAbove(5000).on(FaultScope::Endpoint(ApiCall::Append)))]
    #[test_case("hang-up@hostname" => Fault::HangUp.on(FaultScope::Endpoint(ApiCall::Hostname)))]
    #[test_case("hostname=" => Fault::Hostname(String::new()))]
    #[test_case("hostname=ingest.example.net" => Fault::Hostname("ingest.example.net".into()))]
    #[test_case("oauth-error=invalid_client" => Fault::OauthError(GrantError::InvalidClient))]
    #[test_case("oauth-page@idp" => Fault::OauthPage.on(FaultScope::IdpHost))]
    #[test_case("token-expired@hostname" => Fault::TokenExpired.on(FaultScope::Endpoint(ApiCall::Hostname)))]
    #[test_case("expired-cert@idp" => Fault::ExpiredCert.on(FaultScope::IdpHost))]
    fn parses(spec: &str) -> Fault {
        spec.parse().unwrap()
    }

    #[test_case("nope"; "unknown name")]
    #[test_case("latency"; "missing value")]
    #[test_case("latency=fast"; "bad duration")]
    #[test_case("server-error=418"; "bad status")]
    #[test_case("reset=1"; "value on a flag")]
    #[test_case("reset@nowhere"; "unknown scope")]
    #[test_case("expired-cert@token"; "tls fault on an endpoint")]
    #[test_case("clock-offset=5s@token"; "scoped clock")]
    #[test_case("clock-offset=5s#2"; "counted clock")]
    #[test_case("reset#0"; "zero count")]
    #[test_case("reset#x"; "bad count")]
    #[test_case("hostname"; "hostname without text")]
    #[test_case("row-errors=3"; "value on row-errors")]
    #[test_case("oauth-error=bad_luck"; "not an RFC 6749 error")]
    fn refuses(spec: &str) {
        assert!(spec.parse::<Fault>().is_err(), "{spec} parsed");
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "latency=200ms@token",
            "throttle=3",
            "server-error=500@ingest",
            "reset",
            "channel-status=X@open",
            "clock-offset=-60s",
            "server-error=503@append#2",
            "tls12-only@ingest#1",
            "conflict=ERR_PIPE_IN_INVALID_STATE@open",
            "hostname=ingest.example.net@hostname",
            "hostname=",
            "invalid-token#1",
            "throttle-above=3000@append",
            "oauth-error=unauthorized_client@idp#1",
        ] {
            let fault: Fault = spec.parse().unwrap();
            assert_eq!(fault.to_string().parse::<Fault>().unwrap(), fault, "{spec}");
        }
    }

    #[test]
    fn catalog_entries_parse() {
        for help in Fault::catalog() {
            let name = help.syntax.split(['=', '[']).next().unwrap();
            let spec = match name {
                "latency" => "latency=1ms",
                "clock-offset" => "clock-offset=1s",
                "hostname" => "hostname=x",
                "throttle-above" => "throttle-above=100",
                "oauth-error" => "oauth-error=invalid_grant",
                other => other,
            };
            assert!(spec.parse::<Fault>().is_ok(), "{spec}");
        }
    }

    #[test]
    fn counted_faults_run_out() {
        let set = FaultSet::new(vec![Fault::MissingPipe.times(2)]);
        let hits: Vec<bool> = (0..3)
            .map(|_| set.has(ApiCall::Open, Vhost::Ingest, &Fault::MissingPipe))
            .collect();
        assert_eq!(hits, [true, true, false]);
    }

    #[test]
    fn scopes_select_requests() {
        let set = FaultSet::new(vec![
            Fault::Reset.on(FaultScope::Endpoint(ApiCall::Append)),
            Fault::Tls12Only.on(FaultScope::IngestHost),
        ]);
        assert_eq!(
            set.matching(Some(ApiCall::Append), Vhost::Ingest).count(),
            2
        );
        assert_eq!(
            set.matching(Some(ApiCall::Token), Vhost::Account).count(),
            0
        );
        assert_eq!(set.matching(None, Vhost::Address).count(), 1);
    }
}
