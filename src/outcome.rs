//! What a check found: a verdict, a one-line finding, typed evidence and, for a warning or a
//! failure, the catalog row that explains it. A failing network is an `Outcome`, never an `Err`.

use serde::Serialize;

use crate::catalog::RowId;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// Why a check did not run. Kept apart because "not configured" is fine and "a dependency
/// failed" points at another check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The check does not apply to this configuration (e.g. no proxy, no key).
    NotConfigured(String),
    /// A check it depends on failed or was itself skipped for that reason.
    Dependency { dep: &'static str, verdict: Verdict },
    /// `--skip` named it, or a dependency of it.
    Deselected { id: &'static str },
    /// The run's `--deadline` passed before it could start.
    Deadline,
    /// The run was interrupted (Ctrl-C) before it could start.
    Interrupted,
}

impl SkipReason {
    /// The sentence shown in reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::NotConfigured(why) => why.clone(),
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
        !matches!(self, Self::NotConfigured(_))
    }
}

/// The result of running one check.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    /// One line for the table; the details are in the evidence.
    pub finding: String,
    pub evidence: serde_json::Value,
    pub diagnosis: Option<RowId>,
    pub skip: Option<SkipReason>,
}

impl Outcome {
    /// A passing check.
    pub fn pass(finding: impl Into<String>, evidence: impl Serialize) -> Self {
        Self::new(Verdict::Pass, None, finding, evidence)
    }

    /// A warning explained by `row`.
    pub fn warn(row: RowId, finding: impl Into<String>, evidence: impl Serialize) -> Self {
        Self::new(Verdict::Warn, Some(row), finding, evidence)
    }

    /// A failure explained by `row`.
    pub fn fail(row: RowId, finding: impl Into<String>, evidence: impl Serialize) -> Self {
        Self::new(Verdict::Fail, Some(row), finding, evidence)
    }

    /// netcheck's own bug (a check panicked): a failure no catalog row explains, kept in the
    /// report instead of bringing the run down.
    #[must_use]
    pub fn internal_error(detail: &str) -> Self {
        Self {
            diagnosis: None,
            ..Self::new(
                Verdict::Fail,
                None,
                "internal error: the check panicked",
                serde_json::json!({ "panic": detail }),
            )
        }
    }

    /// A check that did not run.
    #[must_use]
    pub fn skip(reason: SkipReason) -> Self {
        Self {
            verdict: Verdict::Skip,
            finding: reason.describe(),
            evidence: serde_json::Value::Object(serde_json::Map::new()),
            diagnosis: None,
            skip: Some(reason),
        }
    }

    fn new(
        verdict: Verdict,
        diagnosis: Option<RowId>,
        finding: impl Into<String>,
        evidence: impl Serialize,
    ) -> Self {
        // Evidence types are plain data; a serialisation failure is a bug worth seeing, not hiding.
        let evidence = serde_json::to_value(evidence)
            .unwrap_or_else(|e| serde_json::json!({ "evidence_error": e.to_string() }));
        Self {
            verdict,
            finding: finding.into(),
            evidence,
            diagnosis,
            skip: None,
        }
    }
}
