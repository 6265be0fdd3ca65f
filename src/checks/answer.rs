//! How an API answer becomes a verdict: the catalog row for each kind of refusal (shared by every
//! Snowflake check, so a 390422 is `network-policy` wherever it appears), the latency budget of
//! each phase (the seed's latency table), and the evidence every API check carries.

use std::time::Duration;

use serde::Serialize;

use crate::api::{CallError, Reply};
use crate::catalog::RowId;
use crate::outcome::Outcome;
use crate::snowflake::rest::{ApiCall, codes};

/// The first event must be in Snowflake's hands within this (discovery + token + open + append).
pub const FIRST_EVENT_BUDGET: Duration = Duration::from_secs(1);

/// Evidence of one API call: never headers or bodies of requests (they carry secrets); the
/// answer's status, code and message, which carry none.
#[derive(Debug, Clone, Serialize)]
pub struct CallEvidence {
    pub call: ApiCall,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    pub elapsed: Duration,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_ms")]
    pub budget: Option<Duration>,
    pub retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_error: Option<CallError>,
    /// What the check adds (fingerprints, lifetimes, offsets …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

// serde's `serialize_with` hands over `&Option<T>`.
#[allow(clippy::ref_option)]
fn opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => crate::units::serialize_ms(d, s),
        None => s.serialize_none(),
    }
}

impl CallEvidence {
    fn new(call: ApiCall, result: &Result<Reply, CallError>) -> Self {
        let (status, elapsed, retries, transport_error) = match result {
            Ok(r) => (Some(r.status), r.elapsed, r.retries, None),
            Err(e @ CallError::Redirected { status, .. }) => {
                (Some(*status), Duration::ZERO, 0, Some(e.clone()))
            }
            Err(e) => (None, Duration::ZERO, 0, Some(e.clone())),
        };
        // A refusal's code and message; a body that is no Snowflake error is quoted instead.
        let (error_code, message) = match result {
            Ok(r) if !r.ok() => match r.error() {
                Some(e) => (Some(e.code), e.message),
                None => (None, Some(excerpt(&r.body)).filter(|m| !m.is_empty())),
            },
            _ => (None, None),
        };
        Self {
            call,
            status,
            elapsed,
            budget: result.as_ref().ok().and_then(|r| r.budget),
            retries,
            error_code,
            message,
            transport_error,
            extra: serde_json::Map::new(),
        }
    }

    /// Adds a field to the evidence.
    pub fn add(&mut self, key: &str, value: impl Serialize) {
        self.extra.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or_default(),
        );
    }
}

/// What a check made of a successful answer: a finding, or a failure with its row.
pub type Judged = Result<String, (RowId, String)>;

/// Turns one call's result into an outcome: no answer and refusals are classified here; a 2xx
/// answer is judged by `on_ok`; a pass that took longer than the phase's budget is a warning.
pub fn judge(
    call: ApiCall,
    result: &Result<Reply, CallError>,
    on_ok: impl FnOnce(&Reply, &mut CallEvidence) -> Judged,
) -> Outcome {
    judge_with(call, result, classify, on_ok)
}

/// [`judge`] with the call's own classification of refusals (an identity provider speaks
/// RFC 6749, not Snowflake's codes).
pub fn judge_with(
    call: ApiCall,
    result: &Result<Reply, CallError>,
    classify: impl FnOnce(&Reply) -> (RowId, String),
    on_ok: impl FnOnce(&Reply, &mut CallEvidence) -> Judged,
) -> Outcome {
    let mut evidence = CallEvidence::new(call, result);
    let reply = match result {
        Err(e) => return Outcome::fail(call_failure(e), format!("{call}: {e}"), evidence),
        Ok(r) if !r.ok() => {
            let (row, finding) = classify(r);
            return Outcome::fail(row, format!("{call}: {finding}"), evidence);
        }
        Ok(r) => r,
    };
    match on_ok(reply, &mut evidence) {
        Err((row, finding)) => Outcome::fail(row, finding, evidence),
        Ok(finding) => match reply.budget {
            Some(b) if reply.elapsed > b => {
                let over = format!(
                    "{finding}; {call} took {:.0} ms, over its {} ms budget",
                    crate::units::ms(reply.elapsed),
                    b.as_millis()
                );
                Outcome::warn(RowId::LatencyBudget, over, evidence)
            }
            _ => Outcome::pass(finding, evidence),
        },
    }
}

/// The row for a call that got no HTTP answer.
#[must_use]
pub fn call_failure(e: &CallError) -> RowId {
    match e {
        CallError::Timeout(_) => RowId::Timeout,
        CallError::TunnelClosed { .. } => RowId::ProxyIdleTimeout,
        CallError::Transport {
            socket: Some(kind), ..
        } => crate::checks::tcp::classify(*kind),
        CallError::Transport { socket: None, .. } => RowId::ApiUnreachable,
        CallError::TooLarge { .. } => RowId::AnswerTooLarge,
        CallError::Redirected { .. } => RowId::Redirected,
    }
}

/// The catalog row and a finding for a non-2xx answer.
#[must_use]
pub fn classify(reply: &Reply) -> (RowId, String) {
    let error = reply.error();
    let code = error.as_ref().map(|e| e.code.as_str()).unwrap_or_default();
    let message = match &error {
        Some(e) => e.message.clone().unwrap_or_else(|| code.to_owned()),
        None => excerpt(&reply.body),
    };
    let said = |what: &str| match (what, message.as_str()) {
        ("", "") => format!("{} with an empty body", reply.status),
        ("", _) => format!("{} (not a Snowflake error): {message}", reply.status),
        _ => format!("{} {what}: {message}", reply.status),
    };
    if let Some(ip) = policy_block(reply) {
        return (
            RowId::NetworkPolicy,
            format!(
                "{} network policy: Snowflake does not allow requests from {ip}",
                reply.status
            ),
        );
    }
    let row = match (reply.status, code) {
        (401, codes::JWT_TOKEN_INVALID) => RowId::JwtRejected,
        (401, _) => RowId::TokenRejected,
        (403, _) => RowId::Forbidden,
        (404, c) if c.contains("DOES_NOT_EXIST") || c.contains("NOT_AUTHORIZED") => {
            RowId::PipeNotFound
        }
        (409, _) => RowId::ChannelConflict,
        (429, _) => RowId::Throttled,
        (_, codes::STALE_CONTINUATION_TOKEN_SEQUENCER) => RowId::StaleContinuationToken,
        (s, _) if s >= 500 => RowId::ServerError,
        _ => RowId::ApiError,
    };
    let retried = if reply.retries > 0 {
        format!(" (after {} retries)", reply.retries)
    } else {
        String::new()
    };
    (row, format!("{}{retried}", said(code)))
}

/// The start of a body that is not a Snowflake error (a proxy's or WAF's page), on one line.
/// Anything shaped like a JWT is left out: a server that echoes the request would echo the token.
#[must_use]
pub fn excerpt(body: &str) -> String {
    const MAX: usize = 160;
    let words: Vec<&str> = body
        .split_whitespace()
        .map(|w| if w.contains("eyJ") { "[redacted]" } else { w })
        .collect();
    let line = words.join(" ");
    match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// The client IP Snowflake quotes when a network policy blocks a request (390422, or the
/// message text, under a 401 or 403).
#[must_use]
pub fn policy_block(reply: &Reply) -> Option<String> {
    if !matches!(reply.status, 401 | 403) {
        return None;
    }
    let error = reply.error();
    let message = error
        .as_ref()
        .and_then(|e| e.message.as_deref())
        .unwrap_or(&reply.body);
    let blocked = error
        .as_ref()
        .is_some_and(|e| e.code == codes::IP_NOT_ALLOWED)
        || message.contains("is not allowed to access Snowflake");
    blocked
        .then(|| quoted_ip(message).unwrap_or_else(|| "an address Snowflake did not quote".into()))
}

/// `Incoming request with IP/Token 1.2.3.4 is not allowed …` → `1.2.3.4`.
#[must_use]
pub fn quoted_ip(message: &str) -> Option<String> {
    let rest = message.split("IP/Token ").nth(1)?;
    rest.split_whitespace().next().map(str::to_owned)
}

/// An answer with `status` and `body`, for the classification tests.
#[cfg(test)]
pub(crate) fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        body: body.into(),
        date: None,
        elapsed: Duration::ZERO,
        retries: 0,
        budget: None,
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case(401, r#"{"code":"390144","message":"JWT token is invalid. [x]"}"#, RowId::JwtRejected; "jwt")]
    #[test_case(401, r#"{"code":"390422","message":"Incoming request with IP/Token 10.1.2.3 is not allowed to access Snowflake."}"#, RowId::NetworkPolicy; "policy 401")]
    #[test_case(403, r#"{"message":"Incoming request with IP/Token 10.1.2.3 is not allowed to access Snowflake. Contact your local security administrator"}"#, RowId::NetworkPolicy; "policy 403 text")]
    #[test_case(403, "Forbidden", RowId::Forbidden; "plain 403")]
    #[test_case(401, r#"{"code":"390303","message":"Invalid OAuth access token."}"#, RowId::TokenRejected; "oauth")]
    #[test_case(404, r#"{"error_code":"ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED","message":"x"}"#, RowId::PipeNotFound; "pipe")]
    #[test_case(409, r#"{"code":"ERR_CHANNEL_HAS_UNCOMMITTED_DATA"}"#, RowId::ChannelConflict; "conflict")]
    #[test_case(429, r#"{"code":"390505","message":"Too many requests."}"#, RowId::Throttled; "throttled")]
    #[test_case(400, r#"{"code":"STALE_CONTINUATION_TOKEN_SEQUENCER","message":"x"}"#, RowId::StaleContinuationToken; "stale")]
    #[test_case(503, r#""ERR_GENERAL_EXCEPTION_RETRY_REQUEST""#, RowId::ServerError; "bare string 503")]
    #[test_case(418, "", RowId::ApiError; "other")]
    fn classifies(status: u16, body: &str, row: RowId) {
        assert_eq!(classify(&reply(status, body)).0, row);
    }

    #[test_case(403, "<html><body>\n  Request   blocked\n</body></html>", "403 (not a Snowflake error): <html><body> Request blocked </body></html>"; "a page on one line")]
    #[test_case(418, "", "418 with an empty body"; "empty")]
    #[test_case(400, r#"{"error":"invalid_scope","error_description":"bad scope"}"#, "400 invalid_scope: bad scope"; "oauth error")]
    #[test_case(400, "echo: Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln", "400 (not a Snowflake error): echo: Authorization: Bearer [redacted]"; "a token echoed back")]
    fn findings_quote_what_the_server_said(status: u16, body: &str, want: &str) {
        assert_eq!(classify(&reply(status, body)).1, want);
    }

    #[test]
    fn long_pages_are_cut() {
        let page = "x ".repeat(500);
        let cut = excerpt(&page);
        assert!(cut.chars().count() <= 161 && cut.ends_with('…'), "{cut}");
    }

    #[test]
    fn quotes_the_egress_ip() {
        let r = reply(
            401,
            r#"{"code":"390422","message":"Incoming request with IP/Token 203.0.113.7 is not allowed to access Snowflake."}"#,
        );
        assert_eq!(policy_block(&r).as_deref(), Some("203.0.113.7"));
        assert_eq!(policy_block(&reply(200, "")), None);
    }
}
