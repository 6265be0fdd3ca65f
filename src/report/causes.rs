//! Root causes: the warnings and failures of a run grouped by what explains them. Checks that
//! share a catalog row and the facts that fill its fix (one network-policy block seen by both
//! `auth.jwt` and `policy.network`; one latency block for five slow phases) are one cause, named
//! once with every check that saw it. The fix is the catalog's resolution with what the run
//! learned put in place of its placeholders (`EGRESS_IP`, `HOST`, `my_user`, the key's `ALTER
//! USER` statement, the missing issuer's URL), read from the checks' evidence.

use std::fmt::Write as _;

use serde::Serialize;

use super::{CheckReport, Diagnosis};
use crate::catalog::RowId;
use crate::checks::answer::quoted_ip;
use crate::outcome::{StatusKind, Verdict};
use crate::snowflake::account::Endpoint;

/// One cause, seen by one or more checks.
#[derive(Debug, Serialize)]
pub struct RootCause {
    /// The catalog row that explains it.
    pub row: RowId,
    /// `fail` when any of its checks failed, else `warn`.
    pub verdict: Verdict,
    /// The checks that saw it, in registry order.
    pub checks: Vec<&'static str>,
    pub symptom: String,
    pub cause: String,
    /// The row's resolution with what netcheck knows filled in.
    pub fix: String,
}

impl RootCause {
    /// The checks of `checks` that saw it, in its order.
    pub fn seen_by<'a>(&self, checks: &'a [CheckReport]) -> impl Iterator<Item = &'a CheckReport> {
        self.checks
            .iter()
            .filter_map(|id| checks.iter().find(|c| c.id == *id))
    }

    /// The label it is headed with, in the table and the HTML page alike: that of its most severe
    /// check, so a check that ran out of time shows `TIMEOUT`, not `FAIL`.
    #[must_use]
    pub fn label(&self, checks: &[CheckReport]) -> &'static str {
        self.seen_by(checks)
            .find(|c| c.verdict == self.verdict)
            .map_or_else(
                || match self.verdict {
                    Verdict::Warn => StatusKind::Warn.label(),
                    _ => StatusKind::Fail.label(),
                },
                |c| c.outcome.label(),
            )
    }
}

/// What the run learned that a fix can name.
#[derive(Debug, Default)]
struct Known<'a> {
    account_host: &'a str,
    /// The port the run used (the catalog's commands say 443, Snowflake's own).
    port: u16,
    ingest_host: Option<&'a str>,
    user: Option<&'a str>,
    /// `ALTER USER … SET RSA_PUBLIC_KEY='…';` for the key in use (the public key is no secret).
    register_sql: Option<&'a str>,
    egress_ip: Option<String>,
}

impl<'a> Known<'a> {
    fn gather(account: &'a Endpoint, checks: &'a [CheckReport]) -> Self {
        let field = |id: &str, key: &str| {
            checks
                .iter()
                .find(|c| c.id == id)
                .and_then(|c| c.evidence.get(key))
                .and_then(serde_json::Value::as_str)
        };
        // Snowflake quotes the egress IP in a 390422's message; policy.network records it.
        let egress_ip = checks.iter().find_map(|c| {
            let ev = &c.evidence;
            ev.get("egress_ip")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .or_else(|| ev.get("message")?.as_str().and_then(quoted_ip))
        });
        Self {
            account_host: &account.host,
            port: account.port,
            ingest_host: checks
                .iter()
                .find(|c| c.id == "discovery.hostname")
                .and_then(|c| c.evidence.pointer("/ingest_host/host"))
                .and_then(serde_json::Value::as_str),
            user: field("auth.keypair", "user"),
            register_sql: field("auth.keypair", "register_sql"),
            egress_ip,
        }
    }

    /// The host a check talked to: the ingest host for the ingest and channel checks.
    fn host_of(&self, check: &str) -> Option<&'a str> {
        if check.ends_with(".ingest") || check.starts_with("stream.") {
            self.ingest_host
        } else {
            Some(self.account_host)
        }
    }
}

/// Groups the diagnosed warnings and failures of `checks` into root causes, in the order their
/// first check appears.
#[must_use]
pub fn group(account: &Endpoint, checks: &[CheckReport]) -> Vec<RootCause> {
    let known = Known::gather(account, checks);
    let mut causes: Vec<RootCause> = Vec::new();
    for c in checks {
        let Some(d) = &c.diagnosis else { continue };
        let fix = fill(d, c, &known);
        match causes.iter_mut().find(|r| r.row == d.id && r.fix == fix) {
            Some(cause) => {
                cause.checks.push(c.id);
                cause.verdict = cause.verdict.max(c.verdict);
            }
            None => causes.push(RootCause {
                row: d.id,
                verdict: c.verdict,
                checks: vec![c.id],
                symptom: d.symptom.clone(),
                cause: d.cause.clone(),
                fix,
            }),
        }
    }
    causes
}

/// The catalog's resolution with the run's facts in place of its placeholders.
fn fill(d: &Diagnosis, check: &CheckReport, known: &Known) -> String {
    let mut fix = d.resolution.clone();
    if let Some(sql) = known.register_sql {
        fix = fix.replace(
            "ALTER USER my_user SET RSA_PUBLIC_KEY='MIIB...'; (netcheck prints the statement).",
            sql,
        );
    }
    // Snowflake's refusal quotes a request id ("… [391c474a-…]") that the login history knows.
    let request_id = check
        .evidence
        .get("message")
        .and_then(serde_json::Value::as_str)
        .and_then(|m| Some(m.rsplit_once('[')?.1.split_once(']')?.0));
    if let Some(id) = request_id {
        fix = fix.replace("'<uuid from the message>'", &format!("'{id}'"));
    }
    let host = known.host_of(check.id);
    if let Some(host) = host {
        fix = fix.replace("HOST:443", &format!("{host}:{}", known.port));
    }
    let words = [
        ("EGRESS_IP", known.egress_ip.as_deref()),
        ("HOST", host),
        ("my_user", known.user),
    ];
    for (word, value) in words {
        if let Some(value) = value {
            fix = replace_word(&fix, word, value);
        }
    }
    for (issuer, urls) in missing_issuers(&check.evidence) {
        let _ = write!(
            fix,
            "\nThe missing issuer ({issuer}) is published at {}.",
            urls.join(", ")
        );
    }
    fix
}

/// The issuers a server left out, with the URLs its leaf's AIA names for them (`tls.*`
/// evidence: `handshakes[].failure` of kind `incomplete_chain`), without repeats.
fn missing_issuers(evidence: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let handshakes = evidence.get("handshakes").and_then(|h| h.as_array());
    for failure in handshakes
        .into_iter()
        .flatten()
        .filter_map(|h| h.get("failure"))
    {
        if failure.get("kind").and_then(|k| k.as_str()) != Some("incomplete_chain") {
            continue;
        }
        let issuer = failure
            .get("issuer")
            .and_then(|i| i.as_str())
            .unwrap_or_default();
        let urls: Vec<String> = failure
            .get("ca_issuers")
            .and_then(|u| u.as_array())
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect();
        if !urls.is_empty() && !found.iter().any(|(i, _)| i == issuer) {
            found.push((issuer.to_owned(), urls));
        }
    }
    found
}

/// `text` with every whole-word `word` (not inside a longer identifier) replaced by `value`.
fn replace_word(text: &str, word: &str, value: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out.push_str(word);
        } else {
            out.push_str(value);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::replace_word;

    #[test_case("curl https://HOST/x", "curl https://h.example/x"; "in a url")]
    #[test_case("nc -vz HOST 443", "nc -vz h.example 443"; "a word")]
    #[test_case("SET HOSTNAME HOST_X", "SET HOSTNAME HOST_X"; "inside longer words")]
    fn replaces_whole_words(text: &str, want: &str) {
        assert_eq!(replace_word(text, "HOST", "h.example"), want);
    }
}
