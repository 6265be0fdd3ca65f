//! The Prometheus text exposition (format 0.0.4) of a run: `run --format prometheus` (for
//! `node_exporter`'s textfile collector or a Pushgateway), `serve`'s `/probe` answer, and the latest
//! scheduled results in `serve`'s `/metrics`.
//!
//! The names are a documented interface (README, "Metrics"): they do not change without a
//! release note. Labels take only bounded values — check ids, verdicts, catalog row ids, a host
//! role and the operator's own connection names — never a host, a user, a key fingerprint, a
//! token or a finding's text.

use std::fmt;
use std::io;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::RunReport;
use crate::catalog::RowId;
use crate::outcome::Verdict;
use crate::runner::Ending;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The checks whose leaf certificate expiry is exported, and the `host_role` each is labelled
/// with.
const CERT_ROLES: [(&str, &str); 4] = [
    ("tls.account", "account"),
    ("tls.ingest", "ingest"),
    ("tls.idp", "idp"),
    ("tls.stage", "stage"),
];

/// What the exposition says of one run: a few numbers per check, taken from its report. Holds
/// nothing but check ids, verdicts, row ids and numbers, so nothing in it can be a secret.
#[derive(Debug, Clone)]
pub struct RunMetrics {
    /// No check failed and the run was not interrupted.
    pub success: bool,
    /// The run's start, Unix seconds.
    pub started: f64,
    pub duration: f64,
    pub critical_path: f64,
    pub checks: Vec<CheckMetrics>,
    /// Leaf certificate `notAfter` per host role, Unix seconds.
    pub cert_not_after: Vec<(&'static str, f64)>,
    pub first_event: Option<f64>,
    pub commit_lag: Option<f64>,
}

/// One check's numbers.
#[derive(Debug, Clone)]
pub struct CheckMetrics {
    pub id: &'static str,
    pub verdict: Verdict,
    /// Seconds.
    pub duration: f64,
    pub row: Option<RowId>,
}

impl RunMetrics {
    /// The numbers of `report`.
    #[must_use]
    pub fn new(report: &RunReport) -> Self {
        let evidence = |id: &str, key: &str| {
            report
                .checks
                .iter()
                .find(|c| c.id == id && c.verdict != Verdict::Skip)
                .and_then(|c| c.evidence.get(key))
        };
        let unix = |text: &str| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| (t - time::OffsetDateTime::UNIX_EPOCH).as_seconds_f64())
        };
        let cert_not_after = CERT_ROLES
            .iter()
            .filter_map(|(id, role)| {
                let leaf = evidence(id, "chain")?.get(0)?;
                Some((*role, unix(leaf.get("not_after")?.as_str()?)?))
            })
            .collect();
        let secs = |v: &serde_json::Value| v.as_f64().map(|ms| ms / 1000.0);
        Self {
            success: report.summary.fail == 0 && report.ending != Ending::Interrupted,
            started: unix(&report.started_at).unwrap_or_default(),
            duration: report.duration_ms / 1000.0,
            critical_path: report.critical_path_ms / 1000.0,
            checks: report
                .checks
                .iter()
                .map(|c| CheckMetrics {
                    id: c.id,
                    verdict: c.verdict,
                    duration: c.duration_ms / 1000.0,
                    row: c.diagnosis.as_ref().map(|d| d.id),
                })
                .collect(),
            cert_not_after,
            first_event: evidence("stream.append", "first_event_ms").and_then(secs),
            commit_lag: evidence("stream.commit", "commit_lag").and_then(secs),
        }
    }
}

/// Runs to expose together, each labelled with its connection when it has one (`serve`'s
/// `/metrics`), without one for a single run.
#[derive(Debug, Default)]
pub struct Runs(pub Vec<(Option<String>, RunMetrics)>);

/// One sample: its labels (beside the connection's) and value.
type Sample = (Vec<(&'static str, &'static str)>, f64);

/// A metric family: name, help and the samples of one run.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: fn(&RunMetrics) -> Vec<Sample>,
}

fn one(value: f64) -> Vec<Sample> {
    vec![(Vec::new(), value)]
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

const VERDICTS: [Verdict; 4] = [Verdict::Pass, Verdict::Warn, Verdict::Fail, Verdict::Skip];

/// Every family, in exposition order.
const FAMILIES: &[Family] = &[
    Family {
        name: "netcheck_probe_success",
        help: "1 when no check failed and the run was not interrupted, else 0.",
        samples: |m| one(flag(m.success)),
    },
    Family {
        name: "netcheck_run_start_timestamp_seconds",
        help: "When the run started, Unix seconds.",
        samples: |m| one(m.started),
    },
    Family {
        name: "netcheck_run_duration_seconds",
        help: "How long the run took.",
        samples: |m| one(m.duration),
    },
    Family {
        name: "netcheck_critical_path_seconds",
        help: "The longest chain of dependent checks, as measured.",
        samples: |m| one(m.critical_path),
    },
    Family {
        name: "netcheck_check_success",
        help: "Per check that ran: 1 for pass or warn, 0 for fail (skipped checks have no sample).",
        samples: |m| {
            m.checks
                .iter()
                .filter(|c| c.verdict != Verdict::Skip)
                .map(|c| (vec![("check", c.id)], flag(c.verdict != Verdict::Fail)))
                .collect()
        },
    },
    Family {
        name: "netcheck_check_duration_seconds",
        help: "Per check that ran: how long it took.",
        samples: |m| {
            m.checks
                .iter()
                .filter(|c| c.verdict != Verdict::Skip)
                .map(|c| (vec![("check", c.id)], c.duration))
                .collect()
        },
    },
    Family {
        name: "netcheck_check_verdict",
        help: "Per check and verdict (pass, warn, fail, skip): 1 for the check's verdict, else 0.",
        samples: |m| {
            m.checks
                .iter()
                .flat_map(|c| {
                    VERDICTS.iter().map(|v| {
                        (
                            vec![("check", c.id), ("verdict", v.as_str())],
                            flag(c.verdict == *v),
                        )
                    })
                })
                .collect()
        },
    },
    Family {
        name: "netcheck_diagnosis_info",
        help: "1 per warning or failure, labelled with the catalog row that explains it (netcheck explain ROW).",
        samples: |m| {
            m.checks
                .iter()
                .filter_map(|c| Some((vec![("check", c.id), ("row", c.row?.as_str())], 1.0)))
                .collect()
        },
    },
    Family {
        name: "netcheck_tls_cert_not_after_seconds",
        help: "The notAfter of the leaf certificate the host served, Unix seconds (host_role: account or ingest).",
        samples: |m| {
            m.cert_not_after
                .iter()
                .map(|(role, t)| (vec![("host_role", *role)], *t))
                .collect()
        },
    },
    Family {
        name: "netcheck_stream_first_event_seconds",
        help: "Discovery, token exchange, channel open and first append, as measured (--full).",
        samples: |m| m.first_event.map(one).unwrap_or_default(),
    },
    Family {
        name: "netcheck_stream_commit_lag_seconds",
        help: "From the last append to its commit being confirmed (--full).",
        samples: |m| m.commit_lag.map(one).unwrap_or_default(),
    },
];

impl Collector for Runs {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for family in FAMILIES {
            let samples: Vec<(Option<&str>, Sample)> = self
                .0
                .iter()
                .flat_map(|(conn, m)| {
                    (family.samples)(m)
                        .into_iter()
                        .map(move |s| (conn.as_deref(), s))
                })
                .collect();
            if samples.is_empty() {
                continue;
            }
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, MetricType::Gauge)?;
            for (conn, (labels, value)) in samples {
                let labels: Vec<(&str, &str)> = conn
                    .map(|c| ("connection", c))
                    .into_iter()
                    .chain(labels)
                    .collect();
                ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The exposition of `runs` (and nothing else).
#[must_use]
pub fn exposition(runs: Runs) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(runs));
    encode(&registry)
}

/// The text exposition of `registry`.
#[must_use]
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String fails only on a bug in an encoder.
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)
        .expect("the exposition encodes into a String");
    text
}

/// Writes the exposition of one run (`run --format prometheus`).
pub fn write(report: &RunReport, out: &mut dyn io::Write) -> io::Result<()> {
    out.write_all(exposition(Runs(vec![(None, RunMetrics::new(report))])).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &'static str, verdict: Verdict, row: Option<RowId>) -> CheckMetrics {
        CheckMetrics {
            id,
            verdict,
            duration: 0.25,
            row,
        }
    }

    fn metrics() -> RunMetrics {
        RunMetrics {
            success: false,
            started: 1_700_000_000.0,
            duration: 1.5,
            critical_path: 1.25,
            checks: vec![
                check("dns.account", Verdict::Pass, None),
                check("tls.account", Verdict::Fail, Some(RowId::TlsExpired)),
                check("stream.open", Verdict::Skip, None),
            ],
            cert_not_after: vec![("account", 1_800_000_000.0)],
            first_event: None,
            commit_lag: Some(0.5),
        }
    }

    #[test]
    fn one_run_has_every_family_it_has_numbers_for() {
        let text = exposition(Runs(vec![(None, metrics())]));
        for line in [
            "# TYPE netcheck_probe_success gauge",
            "netcheck_probe_success 0.0",
            "netcheck_check_success{check=\"dns.account\"} 1.0",
            "netcheck_check_success{check=\"tls.account\"} 0.0",
            "netcheck_check_verdict{check=\"stream.open\",verdict=\"skip\"} 1.0",
            "netcheck_check_verdict{check=\"stream.open\",verdict=\"pass\"} 0.0",
            "netcheck_diagnosis_info{check=\"tls.account\",row=\"tls-expired\"} 1.0",
            "netcheck_tls_cert_not_after_seconds{host_role=\"account\"} 1800000000.0",
            "netcheck_stream_commit_lag_seconds 0.5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("check_success{check=\"stream.open\""));
        assert!(!text.contains("netcheck_stream_first_event_seconds"));
    }

    #[test]
    fn runs_of_several_connections_share_one_family() {
        let text = exposition(Runs(vec![
            (Some("a".into()), metrics()),
            (Some("b".into()), metrics()),
        ]));
        assert_eq!(
            text.matches("# TYPE netcheck_probe_success gauge").count(),
            1
        );
        assert!(text.contains("netcheck_probe_success{connection=\"b\"} 0.0"));
        assert!(
            text.contains("netcheck_check_success{connection=\"a\",check=\"dns.account\"} 1.0")
        );
    }
}
