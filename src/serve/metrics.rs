//! What `/metrics` shows: serve's own counters (probes run, in flight, refused, their
//! durations, scheduled runs skipped), histograms of the scheduled runs' check durations, and the latest scheduled
//! result per connection as the same families `/probe` answers, labelled with the connection.
//! Connection labels are only ever names the operator configured.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::outcome::Verdict;
use crate::report::prometheus::{RunMetrics, Runs};

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A `/probe` request.
    Scrape,
    /// The `--every` schedule.
    Schedule,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Self::Scrape => "scrape",
            Self::Schedule => "schedule",
        }
    }
}

/// How a run ended, for `netcheck_serve_probes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    /// `netcheck_probe_success` 1.
    Success,
    /// A check failed or the run was interrupted.
    Failure,
    /// netcheck could not run (a connection's settings are invalid).
    Error,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    connection: String,
    trigger: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    connection: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    connection: String,
    check: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 5 ms to about 80 s, doubling: a DNS answer to a slow `--full` round trip.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// A family of duration histograms, registered as `name`.
fn histograms<L>(registry: &mut Registry, name: &str, help: &str) -> Histograms<L>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + fmt::Debug + Send + Sync + 'static,
{
    let family: Histograms<L> = Family::new_with_constructor(duration_histogram);
    registry.register(name, help, family.clone());
    family
}

/// The latest scheduled result per connection.
#[derive(Debug, Default)]
struct Latest(Mutex<BTreeMap<String, RunMetrics>>);

impl Collector for Latest {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let runs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Runs(
            runs.iter()
                .map(|(name, m)| (Some(name.clone()), m.clone()))
                .collect(),
        )
        .encode(encoder)
    }
}

/// serve's metrics, registered once.
pub struct ServeMetrics {
    registry: Registry,
    probes: Family<ProbeLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    in_flight: Gauge,
    probe_duration: Histograms<TriggerLabels>,
    run_duration: Histograms<ConnectionLabels>,
    check_duration: Histograms<CheckLabels>,
    skipped: Family<ConnectionLabels, Counter>,
    latest: Arc<Latest>,
}

impl ServeMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "netcheck_serve_probes",
            "Runs finished, by connection, trigger (scrape, schedule) and result (success, failure, error)",
            probes.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "netcheck_serve_probes_refused",
            "Probes refused, by reason (bad_request, unknown_connection, over_capacity, shutting_down)",
            refused.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "netcheck_serve_probes_in_flight",
            "Runs in progress",
            in_flight.clone(),
        );
        let probe_duration = histograms(
            &mut registry,
            "netcheck_serve_probe_duration_seconds",
            "How long runs took, settings and report included, by trigger",
        );
        let run_duration = histograms(
            &mut registry,
            "netcheck_schedule_run_duration_seconds",
            "Scheduled runs (--every): how long each took, per connection",
        );
        let check_duration = histograms(
            &mut registry,
            "netcheck_schedule_check_duration_seconds",
            "Scheduled runs (--every): how long each check that ran took, per connection and check",
        );
        let skipped = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "netcheck_schedule_runs_skipped",
            "Scheduled runs (--every) skipped because every --max-probes slot was busy, per connection",
            skipped.clone(),
        );
        let latest = Arc::new(Latest::default());
        registry.register_collector(Box::new(latest.clone()));
        Self {
            registry,
            probes,
            refused,
            in_flight,
            probe_duration,
            run_duration,
            check_duration,
            skipped,
            latest,
        }
    }

    /// The exposition of everything.
    pub fn exposition(&self) -> String {
        crate::report::prometheus::encode(&self.registry)
    }

    /// Counts a refused probe.
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a scheduled run skipped for want of a free slot.
    pub fn skipped(&self, connection: &str) {
        self.skipped
            .get_or_create(&ConnectionLabels {
                connection: connection.to_owned(),
            })
            .inc();
    }

    /// Counts a run in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Records a finished run; a scheduled one's result becomes the connection's latest.
    pub fn finished(
        &self,
        connection: &str,
        trigger: Trigger,
        took: Duration,
        run: Option<&RunMetrics>,
    ) {
        let result = match run {
            Some(m) if m.success => RunResult::Success,
            Some(_) => RunResult::Failure,
            None => RunResult::Error,
        };
        self.probes
            .get_or_create(&ProbeLabels {
                connection: connection.to_owned(),
                trigger: trigger.label(),
                result: match result {
                    RunResult::Success => "success",
                    RunResult::Failure => "failure",
                    RunResult::Error => "error",
                },
            })
            .inc();
        self.probe_duration
            .get_or_create(&TriggerLabels {
                trigger: trigger.label(),
            })
            .observe(took.as_secs_f64());
        let (Trigger::Schedule, Some(run)) = (trigger, run) else {
            return;
        };
        let connection = connection.to_owned();
        self.run_duration
            .get_or_create(&ConnectionLabels {
                connection: connection.clone(),
            })
            .observe(run.duration);
        for check in run.checks.iter().filter(|c| c.verdict != Verdict::Skip) {
            self.check_duration
                .get_or_create(&CheckLabels {
                    connection: connection.clone(),
                    check: check.id,
                })
                .observe(check.duration);
        }
        self.latest
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(connection, run.clone());
    }
}

/// Holds one count of `netcheck_serve_probes_in_flight`.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
