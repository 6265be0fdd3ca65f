//! The run report: serialise-only types built once from a run, rendered as a terminal table,
//! JSON (`netcheck/1`), `JUnit` or the Prometheus exposition, and folded into the exit code in one place.

pub mod causes;
pub mod html;
pub mod json;
pub mod junit;
pub mod prometheus;
pub mod table;
pub mod timeline;

use serde::Serialize;

pub use causes::RootCause;

use crate::catalog::{Row, RowId};
use crate::error::exit_code;
use crate::outcome::{StatusKind, Verdict};
use crate::runner::{Ending, RunResult, Signal};
use crate::settings::Settings;
use crate::snowflake::account::Endpoint;
use crate::units::ms;

/// The JSON schema id. Bump it on any incompatible change to the document.
pub const SCHEMA: &str = "netcheck/1";

/// Everything a renderer needs, and nothing a check holds internally.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub schema: &'static str,
    pub netcheck_version: &'static str,
    pub target: TargetReport,
    /// Every effective setting with its value (secrets as `set`) and source.
    pub settings: Vec<crate::settings::Setting>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: f64,
    /// The longest chain of dependent checks, as measured.
    pub critical_path_ms: f64,
    /// The checks on the critical path, first to last.
    pub critical_path: Vec<&'static str>,
    pub ending: Ending,
    /// The signal that interrupted the run (`SIGINT`, `SIGTERM`, `SIGHUP`), absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
    pub summary: Summary,
    pub checks: Vec<CheckReport>,
    /// The warnings and failures grouped by what explains them: one entry per cause, naming
    /// every check that saw it, with the fix filled in from what the run learned.
    pub root_causes: Vec<RootCause>,
    /// What the run noticed about its own configuration (an unused `--resolve` entry), absent
    /// when nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What was checked.
#[derive(Debug, Serialize)]
pub struct TargetReport {
    pub account: Endpoint,
    pub url: String,
    /// Every connection setting with where it came from; secrets only as "set".
    pub sources: serde_json::Value,
}

/// Counts per verdict.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

/// One check in the report.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub id: &'static str,
    pub title: &'static str,
    /// What reports count: `pass`, `warn`, `fail` or `skip`.
    pub verdict: Verdict,
    /// How the check ended, finer than the verdict: a `fail` is `fail`, `timed_out` (the check
    /// itself ran out of time) or `internal_error` (netcheck's own bug).
    pub outcome: StatusKind,
    pub duration_ms: f64,
    /// When it started, from the start of the run.
    pub started_ms: f64,
    pub finding: String,
    pub evidence: serde_json::Value,
    pub diagnosis: Option<Diagnosis>,
    pub skip_reason: Option<String>,
    /// The authentication this check cannot apply to (it belongs to another one): skipped in
    /// JSON and `JUnit` like any skip, left out of what people read.
    #[serde(skip)]
    pub not_applicable_to: Option<&'static str>,
}

/// The catalog row that explains a warning or failure.
#[derive(Debug, Serialize)]
pub struct Diagnosis {
    pub id: RowId,
    pub symptom: String,
    pub cause: String,
    pub resolution: String,
}

impl From<&Row> for Diagnosis {
    fn from(row: &Row) -> Self {
        Self {
            id: row.id,
            symptom: row.symptom.clone(),
            cause: row.cause.clone(),
            resolution: row.resolution.clone(),
        }
    }
}

impl RunReport {
    /// Builds the report of a run.
    #[must_use]
    pub fn new(settings: &Settings, run: &RunResult) -> Self {
        let checks: Vec<CheckReport> = run
            .results
            .iter()
            .map(|r| CheckReport {
                id: r.spec.id,
                title: r.spec.title,
                verdict: r.outcome.verdict(),
                outcome: r.outcome.status.kind(),
                duration_ms: ms(r.duration),
                started_ms: ms(r.started),
                finding: r.outcome.finding.clone(),
                evidence: r.outcome.evidence.clone(),
                diagnosis: r.outcome.row().map(|id| Diagnosis::from(id.row())),
                skip_reason: r
                    .outcome
                    .status
                    .skip_reason()
                    .map(crate::outcome::SkipReason::describe),
                not_applicable_to: r
                    .outcome
                    .status
                    .skip_reason()
                    .and_then(crate::outcome::SkipReason::not_applicable_to),
            })
            .collect();
        let mut summary = Summary::default();
        for c in &checks {
            *match c.verdict {
                Verdict::Pass => &mut summary.pass,
                Verdict::Warn => &mut summary.warn,
                Verdict::Fail => &mut summary.fail,
                Verdict::Skip => &mut summary.skip,
            } += 1;
        }
        let started_at = run
            .started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let (critical_path, critical_checks) = run.critical_chain();
        Self {
            schema: SCHEMA,
            netcheck_version: env!("CARGO_PKG_VERSION"),
            target: TargetReport {
                account: settings.account.clone(),
                url: settings.account.url(),
                sources: serde_json::to_value(&settings.connection).unwrap_or_default(),
            },
            settings: settings.provenance(),
            started_at,
            duration_ms: ms(run.duration),
            critical_path_ms: ms(critical_path),
            critical_path: critical_checks,
            ending: run.ending,
            signal: run.signal,
            summary,
            root_causes: causes::group(&settings.account, &checks),
            checks,
            warnings: Vec::new(),
        }
    }

    /// The checks shown to people (table, HTML): every one but those that cannot apply to the
    /// run's authentication, which would only be noise (the machine formats keep them).
    pub fn listed(&self) -> impl Iterator<Item = &CheckReport> {
        self.checks.iter().filter(|c| c.not_applicable_to.is_none())
    }

    /// The line that stands for the checks [`listed`](Self::listed) leaves out, when it leaves
    /// any out.
    #[must_use]
    pub fn not_applicable_note(&self) -> Option<String> {
        let mut left_out = self.checks.iter().filter_map(|c| c.not_applicable_to);
        let auth = left_out.next()?;
        let n = 1 + left_out.count();
        let checks = if n == 1 { "check" } else { "checks" };
        Some(format!(
            "{n} {checks} not applicable to {auth} authentication not listed (--format json has them)"
        ))
    }

    /// The exit code, the one place it is computed: 0 when nothing failed (warnings allowed
    /// unless `strict`), 1 when a check failed, 130/143/129 when SIGINT/SIGTERM/SIGHUP ended it.
    #[must_use]
    pub fn exit_code(&self, strict: bool) -> u8 {
        if self.ending == Ending::Interrupted {
            match self.signal {
                Some(Signal::Sigterm) => exit_code::TERMINATED,
                Some(Signal::Sighup) => exit_code::HUNG_UP,
                Some(Signal::Sigint) | None => exit_code::INTERRUPTED,
            }
        } else if self.summary.fail > 0 || (strict && self.summary.warn > 0) {
            exit_code::CHECK_FAILED
        } else {
            exit_code::OK
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::{CheckReport, Diagnosis, RunReport, SCHEMA, Summary, TargetReport, causes};
    use crate::catalog::RowId;
    use crate::outcome::{StatusKind, Verdict};
    use crate::runner::Ending;
    use crate::snowflake::account::Endpoint;

    const HOST: &str = "myorg-myaccount.snowflakecomputing.com";

    fn check(
        id: &'static str,
        outcome: StatusKind,
        row: Option<RowId>,
        (started_ms, duration_ms): (f64, f64),
        finding: &str,
        evidence: serde_json::Value,
    ) -> CheckReport {
        let verdict = match outcome {
            StatusKind::Pass => Verdict::Pass,
            StatusKind::Warn => Verdict::Warn,
            StatusKind::Skip => Verdict::Skip,
            _ => Verdict::Fail,
        };
        CheckReport {
            id,
            title: id,
            verdict,
            outcome,
            duration_ms,
            started_ms,
            finding: finding.into(),
            evidence,
            diagnosis: row.map(|r| Diagnosis::from(r.row())),
            skip_reason: (verdict == Verdict::Skip).then(|| finding.into()),
            not_applicable_to: None,
        }
    }

    /// The check `id` of a report, to change for a test.
    pub(crate) fn check_mut<'a>(report: &'a mut RunReport, id: &str) -> &'a mut CheckReport {
        report.checks.iter_mut().find(|c| c.id == id).unwrap()
    }

    /// A fixed report for the renderers' tests: a network policy that refuses this machine
    /// (seen by two checks, one cause), a certificate close to its end, and a finding that
    /// quotes markup a server sent.
    // One fixture, read top to bottom.
    #[allow(clippy::too_many_lines)]
    pub(crate) fn sample() -> RunReport {
        use StatusKind::{Fail, Pass, Skip, Warn};
        let sql = format!(
            "ALTER USER NETCHECK_USER SET RSA_PUBLIC_KEY='MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA{}IDAQAB';",
            "x".repeat(300)
        );
        let blocked =
            "Incoming request with IP/Token 203.0.113.7 is not allowed to access Snowflake.";
        let checks = vec![
            check(
                "proxy.env",
                Pass,
                None,
                (0.0, 0.4),
                "direct: no proxy configured",
                json!({}),
            ),
            check(
                "dns.account",
                Pass,
                None,
                (0.5, 2.0),
                &format!("{HOST} → 198.51.100.10 in 2.0 ms"),
                json!({}),
            ),
            check(
                "tcp.account",
                Pass,
                None,
                (2.6, 31.0),
                "connected to 198.51.100.10:443 in 31.0 ms",
                json!({}),
            ),
            check(
                "tls.account",
                Warn,
                Some(RowId::TlsExpiring),
                (33.7, 64.2),
                "TLSv1.3 TLS13_AES_256_GCM_SHA384; the certificate expires in 9 days (<script>alert(1)</script>)",
                json!({ "server_name": HOST, "chain": [
                    { "subject": "CN=*.snowflakecomputing.com", "issuer": "CN=</svg><b>Lab Intermediate</b>", "not_after": "2026-12-11T00:00:00Z" },
                    { "subject": "CN=</svg><b>Lab Intermediate</b>", "issuer": "CN=Lab Root", "not_after": "2030-01-01T00:00:00Z" }
                ] }),
            ),
            check(
                "auth.keypair",
                Pass,
                None,
                (0.2, 4.1),
                "2048-bit RSA key, fingerprint SHA256:VHeoXisG604qsTMTd8OkE9J3Wpt1tWy6Nl9Q08HdgME=",
                json!({ "user": "NETCHECK_USER", "register_sql": sql }),
            ),
            check(
                "auth.jwt",
                Fail,
                Some(RowId::NetworkPolicy),
                (4.4, 212.9),
                "hostname: 401 network policy: Snowflake does not allow requests from 203.0.113.7",
                json!({ "call": "hostname", "status": 401, "error_code": "390422", "message": blocked }),
            ),
            check(
                "policy.network",
                Fail,
                Some(RowId::NetworkPolicy),
                (98.1, 0.3),
                "Snowflake refused hostname from 203.0.113.7: not allowed by a network policy",
                json!({ "egress_ip": "203.0.113.7" }),
            ),
            check(
                "discovery.hostname",
                Skip,
                None,
                (0.0, 0.0),
                "skipped because auth.jwt failed",
                json!({}),
            ),
        ];
        RunReport {
            schema: SCHEMA,
            netcheck_version: "0.0.0-test",
            target: TargetReport {
                account: Endpoint::for_host(HOST, 443),
                url: format!("https://{HOST}"),
                sources: json!({ "account": { "value": "myorg-myaccount", "source": "--account" } }),
            },
            settings: vec![
                crate::settings::Setting {
                    name: "account".into(),
                    value: "myorg-myaccount".into(),
                    source: crate::connection::Source::Flag {
                        name: "--account".into(),
                    },
                },
                crate::settings::Setting {
                    name: "proxy_password".into(),
                    value: "set".into(),
                    source: crate::connection::Source::Env {
                        name: "HTTPS_PROXY".into(),
                    },
                },
            ],
            started_at: "2026-12-02T09:00:00Z".into(),
            duration_ms: 217.5,
            critical_path_ms: 217.3,
            critical_path: vec!["auth.keypair", "auth.jwt"],
            ending: Ending::Completed,
            signal: None,
            summary: Summary {
                pass: 4,
                warn: 1,
                fail: 2,
                skip: 1,
            },
            root_causes: causes::group(&Endpoint::for_host(HOST, 443), &checks),
            warnings: Vec::new(),
            checks,
        }
    }

    #[test]
    fn every_renderer_spells_a_verdict_as_the_outcome_type_does() {
        let report = sample();
        let render = |write: fn(&RunReport, &mut Vec<u8>) -> std::io::Result<()>| {
            let mut out = Vec::new();
            write(&report, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let json: serde_json::Value =
            serde_json::from_str(&render(|r, o| super::json::write(r, o))).unwrap();
        let html = render(|r, o| super::html::write(r, o));
        let metrics = render(|r, o| super::prometheus::write(r, o));
        for (c, doc) in report.checks.iter().zip(json["checks"].as_array().unwrap()) {
            let verdict = c.verdict.as_str();
            assert_eq!(doc["verdict"], verdict);
            assert_eq!(doc["outcome"], c.outcome.as_str());
            assert!(
                html.contains(&format!(
                    "<td class=\"verdict {verdict}\">{}</td>",
                    c.outcome.label()
                )),
                "{} in {html}",
                c.id
            );
            let sample = format!(
                "netcheck_check_verdict{{check=\"{}\",verdict=\"{verdict}\"}} 1.0",
                c.id
            );
            assert!(
                metrics.lines().any(|l| l == sample),
                "{sample} in {metrics}"
            );
        }
    }

    #[test]
    fn one_cause_seen_by_two_checks_is_one_root_cause_with_its_fix_filled() {
        let report = sample();
        let policy: Vec<_> = report
            .root_causes
            .iter()
            .filter(|c| c.row == RowId::NetworkPolicy)
            .collect();
        assert_eq!(policy.len(), 1);
        assert_eq!(policy[0].checks, ["auth.jwt", "policy.network"]);
        assert_eq!(policy[0].verdict, Verdict::Fail);
        assert!(
            policy[0].fix.contains("('203.0.113.7/32'"),
            "{}",
            policy[0].fix
        );
        assert!(
            policy[0].fix.contains("IN USER NETCHECK_USER"),
            "{}",
            policy[0].fix
        );
        assert!(!policy[0].fix.contains("EGRESS_IP"), "{}", policy[0].fix);
        let expiring = report
            .root_causes
            .iter()
            .find(|c| c.row == RowId::TlsExpiring)
            .unwrap();
        assert!(
            expiring.fix.contains(&format!("-connect {HOST}:443")),
            "{}",
            expiring.fix
        );
    }

    #[test]
    fn a_rejected_key_gets_the_statement_that_registers_it() {
        let report = sample();
        let mut checks: Vec<_> = report
            .checks
            .into_iter()
            .filter(|c| c.id == "auth.keypair")
            .collect();
        checks.push(check(
            "auth.jwt",
            StatusKind::Fail,
            Some(RowId::JwtRejected),
            (4.0, 20.0),
            "hostname: 401 390144: JWT token is invalid. [0e5d-4c1a]",
            json!({ "message": "JWT token is invalid. [0e5d-4c1a]" }),
        ));
        let causes = causes::group(&Endpoint::for_host(HOST, 443), &checks);
        assert!(
            causes[0].fix.contains(
                "Register the key: ALTER USER NETCHECK_USER SET RSA_PUBLIC_KEY='MIIBIjAN"
            ),
            "{}",
            causes[0].fix
        );
        assert!(!causes[0].fix.contains("MIIB..."), "{}", causes[0].fix);
        assert!(
            causes[0]
                .fix
                .contains("SYSTEM$GET_LOGIN_FAILURE_DETAILS('0e5d-4c1a')"),
            "{}",
            causes[0].fix
        );
    }

    #[test]
    fn a_missing_intermediate_is_named_with_its_url() {
        let failure = json!({ "kind": "incomplete_chain", "issuer": "CN=Lab Intermediate", "ca_issuers": ["http://pki.example/int.cer"] });
        let checks = vec![check(
            "tls.account",
            StatusKind::Fail,
            Some(RowId::TlsIncompleteChain),
            (0.0, 5.0),
            "server did not send the certificate of its issuer CN=Lab Intermediate",
            json!({ "handshakes": [{ "failure": failure }, { "failure": failure }] }),
        )];
        let causes = causes::group(&Endpoint::for_host(HOST, 443), &checks);
        assert!(
            causes[0].fix.ends_with(
                "\nThe missing issuer (CN=Lab Intermediate) is published at http://pki.example/int.cer."
            ),
            "{}",
            causes[0].fix
        );
    }
}
