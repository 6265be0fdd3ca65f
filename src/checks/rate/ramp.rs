//! `--rate max`: the capacity probe. It streams a series of steps, each a short run at one rate
//! through its own channels (committed before the next starts): doubling from the starting rate
//! while steps hold, then bisecting between the highest held and the lowest not held until they
//! are within [`PRECISION`] or `--duration` is spent (a step starts only when it can end within
//! it: [`fits`]). A step is not held when the server throttled (429), rows errored, the client's
//! CPU reached [`SATURATED`] of `--max-cpu`, the append p95 passed its budget, or the path did not
//! carry the asked rate (short of [`HELD`] of it) — and the first of these names what limited the
//! capacity. The result is the highest rate held for a whole step (the steady interval), in
//! events/s and MB/s, with the headroom against each row of the bandwidth table; every event of
//! every step is accounted for (sent = committed + errored). A step whose channels cannot be
//! opened ends the probe with that failure, keeping what the earlier steps found.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::judge::{RateEvidence, append_budget, duplicated, imbalance, measure, over_budget};
use super::{HELD, Step, Target, step};
use crate::catalog::RowId;
use crate::context::Ctx;
use crate::load::{Load, Profile, Ramp};
use crate::outcome::Outcome;

/// Bisecting stops once the lowest rate not held is within this factor of the highest held.
const PRECISION: f64 = 1.1;
/// The client counts as saturated above this share of `--max-cpu`.
const SATURATED: f64 = 0.9;
/// Below this rate the ramp stops looking down.
const FLOOR: u32 = 10;
/// The number of steps `--duration` is planned for.
const STEPS: u32 = 8;

/// What stopped a step from holding its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Limit {
    /// The server answered 429.
    ServerThrottling,
    /// Rows were refused, or appends failed for good.
    RowErrors,
    /// The client used its CPU budget.
    ClientCpu,
    /// Appends took longer than their budget at p95.
    LatencyBudget,
    /// The path did not carry the asked rate (the client had CPU to spare).
    Network,
    /// A step could not open its channels (the probe fails with that failure's row).
    ChannelOpen,
}

impl Limit {
    fn row(self) -> RowId {
        match self {
            Self::ServerThrottling => RowId::Throttled,
            Self::RowErrors => RowId::RowsErrored,
            Self::ClientCpu => RowId::ClientCpu,
            Self::LatencyBudget | Self::Network => RowId::LatencyBudget,
            Self::ChannelOpen => RowId::ApiError,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::ServerThrottling => "server throttling (429)",
            Self::RowErrors => "rows refused or failed",
            Self::ClientCpu => "client CPU",
            Self::LatencyBudget => "the append latency budget",
            Self::Network => "the network",
            Self::ChannelOpen => "a step's channels failing to open",
        }
    }

    /// The step's limit, in order of precedence; `None`: it held its rate.
    fn of(figures: &RateEvidence, budget: Duration, ramp: Ramp) -> Option<Self> {
        let cpu_cores = figures
            .client_cpu_percent_of_one_core
            .map_or(0.0, |p| p / 100.0);
        if figures.throttled_429 > 0 {
            Some(Self::ServerThrottling)
        } else if figures.errored > 0 {
            Some(Self::RowErrors)
        } else if cpu_cores >= SATURATED * ramp.max_cpu {
            Some(Self::ClientCpu)
        } else if over_budget(figures, budget) {
            Some(Self::LatencyBudget)
        } else if figures.achieved_events_per_s < HELD * figures.asked_events_per_s {
            Some(Self::Network)
        } else {
            None
        }
    }
}

/// One step as reported.
#[derive(Serialize)]
struct StepReport {
    asked_events_per_s: f64,
    achieved_events_per_s: f64,
    achieved_mb_per_s: f64,
    append_p95_ms: Option<f64>,
    throttled_429: usize,
    client_cpu_percent_of_one_core: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limited_by: Option<Limit>,
}

/// The capacity against one row of the bandwidth table.
#[derive(Serialize)]
struct ProfileHeadroom {
    profile: Profile,
    needed_events_per_s: u32,
    needed_mb_per_s: f64,
    /// The capacity over the need, in events/s or in bytes/s, whichever is smaller.
    headroom: f64,
}

#[derive(Serialize)]
struct ProbeEvidence {
    event_size: usize,
    max_cpu_cores: f64,
    /// The highest rate held for a whole step.
    max_events_per_s: Option<f64>,
    max_mb_per_s: Option<f64>,
    /// How long each step held its rate.
    #[serde(
        rename = "steady_interval_ms",
        serialize_with = "crate::units::serialize_ms"
    )]
    steady_interval: Duration,
    /// What stopped the ramp; none when `--duration` ran out first.
    #[serde(skip_serializing_if = "Option::is_none")]
    limited_by: Option<Limit>,
    headroom: Vec<ProfileHeadroom>,
    steps: Vec<StepReport>,
    resent_requests: u64,
    sent: u64,
    committed: u64,
    errored: u64,
    /// Of the errored: rows the server refused to load, over every step.
    rows_errored: u64,
    lost: u64,
    /// Rows committed beyond those sent, over every step (a batch stored twice).
    doubled: u64,
}

impl ProbeEvidence {
    /// Adds one step's figures (and the limit that stopped it holding) to the totals.
    fn add(&mut self, figures: &RateEvidence, limit: Option<Limit>) {
        self.resent_requests += figures.resent_requests;
        self.sent += figures.sent;
        self.committed += figures.committed;
        self.errored += figures.errored;
        self.rows_errored += figures.rows_errored;
        self.lost += figures.lost;
        self.doubled += figures.doubled;
        self.steps.push(StepReport {
            asked_events_per_s: figures.asked_events_per_s,
            achieved_events_per_s: figures.achieved_events_per_s,
            achieved_mb_per_s: figures.achieved_mb_per_s,
            append_p95_ms: figures.append_latency_ms.p95,
            throttled_429: figures.throttled_429,
            client_cpu_percent_of_one_core: figures.client_cpu_percent_of_one_core,
            limited_by: limit,
        });
    }
}

/// Ramps the rate (see the module docs) within `load.duration`; the capacity as the outcome.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rates"
)]
pub(super) async fn probe(
    ctx: &Ctx,
    target: &Target,
    load: &Load,
    ramp: Ramp,
    run_id: &str,
) -> Outcome {
    let started = Instant::now();
    let interval = (load.duration / STEPS).max(Duration::from_millis(500));
    let mut evidence = ProbeEvidence {
        event_size: load.event_size,
        max_cpu_cores: ramp.max_cpu,
        max_events_per_s: None,
        max_mb_per_s: None,
        steady_interval: interval,
        limited_by: None,
        headroom: Vec::new(),
        steps: Vec::new(),
        resent_requests: 0,
        sent: 0,
        committed: 0,
        errored: 0,
        rows_errored: 0,
        lost: 0,
        doubled: 0,
    };
    let (mut held, mut not_held) = (None::<u32>, None::<u32>);
    let mut rate = load.events_per_sec;
    let mut slowest_step = Duration::ZERO;
    // A channel's failure other than throttling ends the probe with the failure's own row.
    let mut failure = None;
    // A step sends until its cutoff at most (it falls behind otherwise).
    let cutoff = interval + ctx.settings.timeout.min(interval);
    loop {
        let left = load.duration.saturating_sub(started.elapsed());
        if !evidence.steps.is_empty() && !fits(left, cutoff, slowest_step) {
            break;
        }
        let step_load = Load {
            events_per_sec: rate,
            duration: interval,
            ramp: None,
            ..load.clone()
        };
        let id = format!("{run_id}_s{}_", evidence.steps.len());
        let began = Instant::now();
        // The first step always runs, with its interval at least, however short --duration is.
        let step: Step =
            match step(ctx, target, step_load, id, cutoff.min(left.max(interval))).await {
                Ok(s) => s,
                Err(failed) => {
                    // What the earlier steps found stands; the failure to open is what stopped it.
                    evidence.limited_by = Some(Limit::ChannelOpen);
                    failure = Some((
                        failed.row().unwrap_or(RowId::ApiError),
                        format!(
                            "step {} could not open its channels: {}",
                            evidence.steps.len() + 1,
                            failed.finding
                        ),
                    ));
                    break;
                }
            };
        slowest_step = slowest_step.max(began.elapsed());
        let figures = measure(&step);
        let limit = Limit::of(&figures, append_budget(&step.run), ramp);
        evidence.add(&figures, limit);
        match limit {
            None => {
                held = Some(rate);
                if evidence
                    .max_events_per_s
                    .is_none_or(|m| figures.achieved_events_per_s > m)
                {
                    evidence.max_events_per_s = Some(figures.achieved_events_per_s);
                    evidence.max_mb_per_s = Some(figures.achieved_mb_per_s);
                }
            }
            Some(l) => {
                not_held = Some(rate);
                evidence.limited_by = Some(l);
            }
        }
        if limit != Some(Limit::ServerThrottling) {
            failure = step.reports.iter().find_map(|r| r.failure.clone());
        }
        if figures.lost > 0 || figures.doubled > 0 || figures.rows_errored > 0 || failure.is_some()
        {
            break;
        }
        rate = match (held, not_held) {
            (Some(lo), None) => lo.saturating_mul(2),
            (Some(lo), Some(hi)) if f64::from(hi) > PRECISION * f64::from(lo) => lo + (hi - lo) / 2,
            (None, Some(hi)) if hi / 2 >= FLOOR => hi / 2,
            _ => break,
        };
    }
    verdict(load, evidence, failure)
}

/// Whether another step fits in what is `left` of `--duration`: it may send until its `cutoff`,
/// and may take as long as the `slowest` step so far (its commit wait included).
fn fits(left: Duration, cutoff: Duration, slowest: Duration) -> bool {
    cutoff.max(slowest) <= left
}

/// Judges the probe: lost or doubled rows, errored rows or a failed channel fail; no rate held, or
/// less than the bandwidth table's largest row, warns with what limited it; otherwise the capacity
/// passes.
#[allow(clippy::cast_precision_loss, reason = "rates")]
fn verdict(load: &Load, mut evidence: ProbeEvidence, failure: Option<(RowId, String)>) -> Outcome {
    if let (Some(max), Some(max_mb)) = (evidence.max_events_per_s, evidence.max_mb_per_s) {
        evidence.headroom = Profile::TABLE
            .iter()
            .filter_map(|&p| {
                let needed = p.events_per_sec()?;
                let bytes = f64::from(needed) * p.rate_and_size().1 as f64;
                Some(ProfileHeadroom {
                    profile: p,
                    needed_events_per_s: needed,
                    needed_mb_per_s: bytes / 1e6,
                    headroom: (max / f64::from(needed)).min(max_mb * 1e6 / bytes),
                })
            })
            .collect();
    }
    let capacity = evidence.max_events_per_s.map_or_else(
        || "no rate held".to_owned(),
        |m| {
            format!(
                "held {m:.0} events/s ({:.2} MB/s of {} B events) for {:.1} s",
                evidence.max_mb_per_s.unwrap_or_default(),
                load.event_size,
                evidence.steady_interval.as_secs_f64()
            )
        },
    );
    let limited = evidence.limited_by.map_or_else(
        || "not limited within --duration".to_owned(),
        |l| format!("limited by {}", l.words()),
    );
    let headroom = evidence
        .headroom
        .iter()
        .map(|h| {
            format!(
                "{}: {}/s needed, {:.1}x headroom",
                profile_name(h.profile),
                h.needed_events_per_s,
                h.headroom
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let (sent, committed, errored, lost, doubled) = (
        evidence.sent,
        evidence.committed,
        evidence.errored,
        evidence.lost,
        evidence.doubled,
    );
    let summary = format!(
        "{capacity}, {limited} after {} step(s); {headroom}; sent {sent} = committed {committed} + errored {errored}{}",
        evidence.steps.len(),
        imbalance(lost, doubled),
    );
    if doubled > 0 {
        return duplicated(doubled, &summary, evidence);
    }
    if lost > 0 {
        return Outcome::fail(
            RowId::CommitTimeout,
            format!("{lost} event(s) were not committed: {summary}"),
            evidence,
        );
    }
    if let Some((row, why)) = failure {
        return Outcome::fail(row, format!("{why}; {summary}"), evidence);
    }
    // Errored rows fail whatever else stopped the ramp (a throttled step may also have them).
    if evidence.rows_errored > 0 {
        return Outcome::fail(RowId::RowsErrored, summary, evidence);
    }
    let large = evidence
        .headroom
        .iter()
        .find(|h| h.profile == Profile::Large)
        .map(|h| h.headroom);
    match evidence.limited_by {
        Some(limit) if large.is_none_or(|h| h < 1.0) => {
            Outcome::warn(limit.row(), summary, evidence)
        }
        _ => Outcome::pass(summary, evidence),
    }
}

/// A profile's name as the flag spells it.
fn profile_name(p: Profile) -> String {
    clap::ValueEnum::to_possible_value(&p).map_or_else(String::new, |v| v.get_name().to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use test_case::test_case;

    use super::fits;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test_case(ms(3000), ms(1000), ms(700) => true; "room for both")]
    #[test_case(ms(1500), ms(2000), ms(1000) => false; "the slowest fits but the cutoff runs past")]
    #[test_case(ms(1500), ms(1000), ms(2000) => false; "a step as slow as the slowest runs past")]
    #[test_case(ms(1000), ms(1000), ms(1000) => true; "exactly what is left")]
    fn a_step_starts_only_when_it_ends_within_the_duration(
        left: Duration,
        cutoff: Duration,
        slowest: Duration,
    ) -> bool {
        fits(left, cutoff, slowest)
    }
}
