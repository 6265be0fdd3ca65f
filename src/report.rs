//! The run report: serialise-only types built once from a run, rendered as a terminal table,
//! JSON (`netcheck/1`) or `JUnit`, and folded into the exit code in one place.

pub mod json;
pub mod junit;
pub mod table;

use serde::Serialize;

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
    pub ending: Ending,
    /// The signal that interrupted the run (`SIGINT`, `SIGTERM`, `SIGHUP`), absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
    pub summary: Summary,
    pub checks: Vec<CheckReport>,
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
            critical_path_ms: ms(run.critical_path()),
            ending: run.ending,
            signal: run.signal,
            summary,
            checks,
            warnings: Vec::new(),
        }
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
