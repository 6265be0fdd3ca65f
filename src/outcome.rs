//! What a check found: one [`Status`] (pass, warn or fail with the catalog row that explains it,
//! timed out, netcheck's own error, or skipped with the reason), a one-line finding and typed
//! evidence. A failing network is an `Outcome`, never an `Err`; impossible combinations (a
//! failure without a row, a pass with one, a skip that says nothing of why) cannot be built.

use serde::{Serialize, Serializer};

use crate::catalog::RowId;

/// The verdict of one check as reports count it: a timeout and an internal error are failures
/// there, while the [`Status`] keeps them apart. Every renderer spells it [`Verdict::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// How one check ended (nextest keeps its results apart the same way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// It works, with a problem the catalog row explains.
    Warn(RowId),
    /// It does not work, for the reason the catalog row explains.
    Fail(RowId),
    /// The check itself did not finish in time (the step timeout or the run's deadline cut it
    /// off) — unlike a `Fail(Timeout)`, where the check saw the network not answer.
    TimedOut,
    /// netcheck's own bug (a check panicked), kept in the report instead of bringing the run down.
    InternalError,
    /// It did not run.
    Skip(SkipReason),
}

/// The kind of a [`Status`] without its payload, as the JSON report's `outcome` field spells it
/// ([`StatusKind::as_str`]) and the table and HTML label it ([`StatusKind::label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Pass,
    Warn,
    Fail,
    TimedOut,
    InternalError,
    Skip,
}

// The words of verdicts and outcomes live here and nowhere else: the JSON report (serde), the HTML
// report's classes and the Prometheus `verdict` label all read `as_str`, so they cannot drift.
impl Verdict {
    /// The verdict as every report spells it: `pass`, `warn`, `fail`, `skip`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl StatusKind {
    /// The outcome as the JSON report spells it: `pass`, `warn`, `fail`, `timed_out`,
    /// `internal_error`, `skip`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::TimedOut => "timed_out",
            Self::InternalError => "internal_error",
            Self::Skip => "skip",
        }
    }

    /// The outcome as people read it in the table and the HTML page: upper case, `TIMEOUT` and
    /// `ERROR` apart from `FAIL`.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::TimedOut => "TIMEOUT",
            Self::InternalError => "ERROR",
            Self::Skip => "SKIP",
        }
    }
}

impl Serialize for StatusKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Status {
    /// The verdict reports count.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Pass => Verdict::Pass,
            Self::Warn(_) => Verdict::Warn,
            Self::Fail(_) | Self::TimedOut | Self::InternalError => Verdict::Fail,
            Self::Skip(_) => Verdict::Skip,
        }
    }

    /// The status without its payload.
    #[must_use]
    pub fn kind(&self) -> StatusKind {
        match self {
            Self::Pass => StatusKind::Pass,
            Self::Warn(_) => StatusKind::Warn,
            Self::Fail(_) => StatusKind::Fail,
            Self::TimedOut => StatusKind::TimedOut,
            Self::InternalError => StatusKind::InternalError,
            Self::Skip(_) => StatusKind::Skip,
        }
    }

    /// The catalog row that explains it: a warning's or failure's own, the `timeout` row for a
    /// check that ran out of time, none otherwise.
    #[must_use]
    pub fn row(&self) -> Option<RowId> {
        match self {
            Self::Warn(row) | Self::Fail(row) => Some(*row),
            Self::TimedOut => Some(RowId::Timeout),
            Self::Pass | Self::InternalError | Self::Skip(_) => None,
        }
    }

    /// Why it did not run, for a skip.
    #[must_use]
    pub fn skip_reason(&self) -> Option<&SkipReason> {
        match self {
            Self::Skip(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Why a check did not run. Kept apart because "not configured" is fine and "a dependency
/// failed" points at another check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The check does not apply to this configuration (e.g. no proxy, no key).
    NotConfigured(String),
    /// The check belongs to another way of authenticating than the run's (`auth`: `key-pair`
    /// or `OAuth`), so it can never apply to this connection: the table leaves it out.
    NotApplicable { auth: &'static str, why: String },
    /// A check it depends on failed or was itself skipped for that reason.
    Dependency { dep: &'static str, verdict: Verdict },
    /// `--skip` named it, or a dependency of it.
    Deselected { id: &'static str },
    /// The run's `--deadline` passed before it could start.
    Deadline,
    /// The run was interrupted (a signal) before it could start.
    Interrupted,
}

impl SkipReason {
    /// The sentence shown in reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::NotConfigured(why) | Self::NotApplicable { why, .. } => why.clone(),
            Self::Dependency {
                dep,
                verdict: Verdict::Skip,
            } => format!("skipped because {dep} was skipped"),
            Self::Dependency { dep, .. } => format!("skipped because {dep} failed"),
            Self::Deselected { id } => format!("skipped because {id} was deselected with --skip"),
            Self::Deadline => "skipped because the run deadline (--deadline) passed".into(),
            Self::Interrupted => "skipped because the run was interrupted".into(),
        }
    }

    /// Whether checks that depend on a check skipped for this reason must be skipped too: a check
    /// that does not apply (no proxy configured) does not block the ones after it.
    #[must_use]
    pub fn blocks_dependents(&self) -> bool {
        !matches!(self, Self::NotConfigured(_) | Self::NotApplicable { .. })
    }

    /// The authentication the check cannot apply to, for a check of another one.
    #[must_use]
    pub fn not_applicable_to(&self) -> Option<&'static str> {
        match self {
            Self::NotApplicable { auth, .. } => Some(auth),
            _ => None,
        }
    }
}

/// The result of running one check.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// One line for the table; the details are in the evidence.
    pub finding: String,
    pub evidence: serde_json::Value,
}

impl Outcome {
    /// A passing check.
    pub fn pass(finding: impl Into<String>, evidence: impl Serialize) -> Self {
        Self::new(Status::Pass, finding, evidence)
    }

    /// A warning explained by `row`.
    pub fn warn(row: RowId, finding: impl Into<String>, evidence: impl Serialize) -> Self {
        Self::new(Status::Warn(row), finding, evidence)
    }

    /// A failure explained by `row`.
    pub fn fail(row: RowId, finding: impl Into<String>, evidence: impl Serialize) -> Self {
        Self::new(Status::Fail(row), finding, evidence)
    }

    /// A check cut off by its step timeout or the run's deadline.
    pub fn timed_out(finding: impl Into<String>, evidence: impl Serialize) -> Self {
        Self::new(Status::TimedOut, finding, evidence)
    }

    /// netcheck's own bug (a check panicked).
    #[must_use]
    pub fn internal_error(detail: &str) -> Self {
        Self::new(
            Status::InternalError,
            "internal error: the check panicked",
            serde_json::json!({ "panic": detail }),
        )
    }

    /// A check that did not run.
    #[must_use]
    pub fn skip(reason: SkipReason) -> Self {
        Self {
            finding: reason.describe(),
            evidence: serde_json::Value::Object(serde_json::Map::new()),
            status: Status::Skip(reason),
        }
    }

    /// The verdict reports count.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        self.status.verdict()
    }

    /// The catalog row that explains it, if any.
    #[must_use]
    pub fn row(&self) -> Option<RowId> {
        self.status.row()
    }

    /// The same outcome with another finding (a check adding what it knows to a shared
    /// judgement).
    #[must_use]
    pub fn with_finding(self, finding: impl Into<String>) -> Self {
        Self {
            finding: finding.into(),
            ..self
        }
    }

    /// An outcome of a status judged elsewhere (a check's own verdict function).
    pub fn new(status: Status, finding: impl Into<String>, evidence: impl Serialize) -> Self {
        // Evidence types are plain data; a serialisation failure is a bug worth seeing, not hiding.
        let evidence = serde_json::to_value(evidence)
            .unwrap_or_else(|e| serde_json::json!({ "evidence_error": e.to_string() }));
        Self {
            status,
            finding: finding.into(),
            evidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::{StatusKind, Verdict};

    #[test_case(StatusKind::Pass, Verdict::Pass, "pass")]
    #[test_case(StatusKind::Warn, Verdict::Warn, "warn")]
    #[test_case(StatusKind::Fail, Verdict::Fail, "fail")]
    #[test_case(StatusKind::TimedOut, Verdict::Fail, "timed_out")]
    #[test_case(StatusKind::InternalError, Verdict::Fail, "internal_error")]
    #[test_case(StatusKind::Skip, Verdict::Skip, "skip")]
    fn json_spells_outcomes_and_verdicts_as_their_one_mapping(
        kind: StatusKind,
        verdict: Verdict,
        netcheck1: &str,
    ) {
        // The `netcheck/1` words, pinned: the one mapping must not change them.
        assert_eq!(kind.as_str(), netcheck1);
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        assert_eq!(serde_json::to_value(verdict).unwrap(), verdict.as_str());
    }
}
