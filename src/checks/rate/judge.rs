//! The rate test's verdict: every figure of the run (events and bytes per second against asked,
//! append latency, commit lag, 429s, retries, CPU) and the accounting `sent = committed +
//! errored` — short of it rows were lost, past it rows were stored twice — judged in order of
//! gravity.

use std::time::Duration;

use serde::Serialize;

use super::sender::ChannelReport;
use super::{HELD, Step};
use crate::catalog::RowId;
use crate::checks::stream::commits::committed_offset;
use crate::load::{self, Layout, Load};
use crate::outcome::Outcome;
use crate::snowflake::rest::ApiCall;

/// Latency percentiles, in milliseconds.
#[derive(Serialize)]
pub(super) struct Percentiles {
    p50: Option<f64>,
    pub(super) p95: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let p = |q| load::percentile(&samples, q).map(crate::units::ms);
        Self {
            p50: p(50.0),
            p95: p(95.0),
            p99: p(99.0),
            max: p(100.0),
        }
    }
}

/// Every figure of one run at one rate.
#[derive(Serialize)]
pub(super) struct RateEvidence {
    load: Load,
    layout: Layout,
    pub(super) asked_events_per_s: f64,
    pub(super) achieved_events_per_s: f64,
    asked_mb_per_s: f64,
    pub(super) achieved_mb_per_s: f64,
    wire_mb_per_s: f64,
    requests: u64,
    pub(super) append_latency_ms: Percentiles,
    /// From sending an append to the first status poll whose committed offset covers it.
    commit_lag_ms: Percentiles,
    pub(super) throttled_429: usize,
    retries: u64,
    pub(super) resent_requests: u64,
    reopens: u64,
    pub(super) sent: u64,
    pub(super) committed: u64,
    pub(super) errored: u64,
    /// Events whose append got no answer or an unreadable one (stored or not?), each settled from
    /// the channel's committed offset: at the reopen that followed, or at the end when the
    /// reopen failed (not covered by it: counted errored).
    in_doubt: u64,
    /// Of the errored: rows the server refused to load.
    pub(super) rows_errored: u64,
    pub(super) lost: u64,
    /// Rows the server accounted for (committed or errored) beyond those sent: a batch stored
    /// twice.
    pub(super) doubled: u64,
    status_polls: u32,
    /// The time the rate is measured on, in seconds.
    pub(super) span_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cpu_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_cpu_percent_of_one_core: Option<f64>,
}

/// The figures of one run at one rate.
#[allow(clippy::cast_precision_loss, reason = "counts shown as rates")]
pub(super) fn measure(step: &Step) -> RateEvidence {
    let Step {
        run,
        id: run_id,
        reports,
        polled,
        cpu,
    } = step;
    let sum = |f: fn(&ChannelReport) -> u64| reports.iter().map(f).sum::<u64>();
    let sent = sum(|r| r.sent);
    let acked = sum(ChannelReport::acked_events);
    // Settled channel by channel: rows one channel lost and rows another stored twice must not
    // cancel out in the totals.
    let (mut committed, mut rows_errored, mut errored, mut lost, mut doubled) = (0, 0, 0, 0, 0);
    for (r, status) in reports.iter().zip(&polled.last) {
        let inserted = status.as_ref().map_or(0, |s| s.rows_inserted);
        let refused = status.as_ref().map_or(0, |s| s.rows_error_count);
        // In doubt when the channel stopped: not stored unless its final committed offset
        // covers it.
        let unsettled = r.unsettled_not_stored(status.as_ref().and_then(committed_offset));
        let failed = r.failed + unsettled + refused;
        committed += inserted;
        rows_errored += refused;
        errored += failed;
        lost += r.sent.saturating_sub(inserted + failed);
        doubled += (inserted + failed).saturating_sub(r.sent);
    }
    // The span the rate is measured on: the asked duration, or longer when sending fell behind
    // (the last batch waiting for its tick is batching, not falling behind).
    let last_send = reports
        .iter()
        .filter_map(|r| r.last_send)
        .max()
        .map(|t| t - run.start);
    let span = last_send
        .unwrap_or_default()
        .saturating_sub(run.layout.tick)
        .max(run.load.duration)
        .as_secs_f64();
    let mb = |bytes: u64| bytes as f64 / 1e6 / span;
    let commit_lags = reports
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.acked.iter().filter_map(move |(batch, sent_at)| {
                let seen = polled.samples.iter().find(|(_, got)| {
                    got.get(i)
                        .copied()
                        .flatten()
                        .is_some_and(|c| c >= batch.range.end - 1)
                })?;
                Some(seen.0.saturating_duration_since(*sent_at))
            })
        })
        .collect();
    let latencies: Vec<Duration> = reports
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    let asked_rate = f64::from(run.load.events_per_sec);
    RateEvidence {
        load: run.load.clone(),
        layout: run.layout,
        asked_events_per_s: asked_rate,
        achieved_events_per_s: acked as f64 / span,
        asked_mb_per_s: asked_rate * run.load.event_size as f64 / 1e6,
        achieved_mb_per_s: mb(sum(ChannelReport::raw_bytes)),
        wire_mb_per_s: mb(sum(ChannelReport::wire_bytes)),
        requests: sum(|r| r.requests),
        append_latency_ms: Percentiles::of(latencies),
        commit_lag_ms: Percentiles::of(commit_lags),
        throttled_429: run
            .ctx
            .net
            .api
            .exchanges()
            .iter()
            .filter(|x| {
                x.call == ApiCall::Append && x.status == Some(429) && x.path.contains(run_id)
            })
            .count(),
        retries: sum(|r| r.retries),
        resent_requests: sum(|r| r.resent),
        reopens: sum(|r| r.reopens),
        sent,
        committed,
        errored,
        in_doubt: sum(|r| r.in_doubt),
        rows_errored,
        lost,
        doubled,
        status_polls: polled.polls,
        span_s: span,
        client_cpu_ms: cpu.map(crate::units::ms),
        client_cpu_percent_of_one_core: cpu.map(|c| 100.0 * c.as_secs_f64() / span),
    }
}

/// The rate test's verdict on one run at a fixed rate.
pub(super) fn judge(step: &Step) -> Outcome {
    let Step {
        run,
        reports,
        polled,
        ..
    } = step;
    let evidence = measure(step);
    let (asked_rate, span) = (evidence.asked_events_per_s, evidence.span_s);
    let (sent, committed, errored, rows_errored) = (
        evidence.sent,
        evidence.committed,
        evidence.errored,
        evidence.rows_errored,
    );
    let (lost, doubled) = (evidence.lost, evidence.doubled);
    let summary = format!(
        "{:.0} of {asked_rate:.0} events/s ({:.2} MB/s) over {} channel(s) for {:.1} s; append p50/p95/p99 {} ms; commit lag p50 {} ms; sent {sent} = committed {committed} + errored {errored}{}",
        evidence.achieved_events_per_s,
        evidence.achieved_mb_per_s,
        run.layout.channels,
        span,
        [
            evidence.append_latency_ms.p50,
            evidence.append_latency_ms.p95,
            evidence.append_latency_ms.p99
        ]
        .map(show)
        .join("/"),
        show(evidence.commit_lag_ms.p50),
        imbalance(lost, doubled),
    );
    if doubled > 0 {
        return duplicated(doubled, &summary, evidence);
    }
    if lost > 0 {
        let why = if polled.complete {
            "were not committed"
        } else {
            "were not committed within the wait"
        };
        return Outcome::fail(
            RowId::CommitTimeout,
            format!("{lost} event(s) {why}: {summary}"),
            evidence,
        );
    }
    if rows_errored > 0 {
        return Outcome::fail(
            RowId::RowsErrored,
            format!("{rows_errored} row(s) errored: {summary}"),
            evidence,
        );
    }
    if let Some((row, why)) = reports.iter().find_map(|r| r.failure.clone()) {
        return Outcome::fail(row, format!("{why}; {summary}"), evidence);
    }
    if let Some(failure) = &polled.failure {
        return Outcome::fail(
            failure.row().unwrap_or(RowId::ApiError),
            format!("{}; {summary}", failure.finding),
            evidence,
        );
    }
    if let Some((row, why)) = reports.iter().find_map(|r| r.recovered.clone()) {
        return Outcome::warn(row, format!("{why}; {summary}"), evidence);
    }
    let budget = append_budget(run);
    if over_budget(&evidence, budget) {
        return Outcome::warn(
            RowId::LatencyBudget,
            format!(
                "appends over the {} ms budget at p95: {summary}",
                budget.as_millis()
            ),
            evidence,
        );
    }
    if evidence.achieved_events_per_s < HELD * asked_rate {
        return Outcome::warn(
            RowId::LatencyBudget,
            format!("the asked rate was not held: {summary}"),
            evidence,
        );
    }
    Outcome::pass(summary, evidence)
}

/// The append's latency budget on this run.
pub(super) fn append_budget(run: &super::Run) -> Duration {
    run.ctx
        .net
        .api
        .budget(ApiCall::Append)
        .unwrap_or(Duration::MAX)
}

/// The append latency's p95 is over `budget`.
pub(super) fn over_budget(evidence: &RateEvidence, budget: Duration) -> bool {
    evidence
        .append_latency_ms
        .p95
        .is_some_and(|p| p > crate::units::ms(budget))
}

/// The failure when `doubled` rows were committed beyond those sent (a batch stored twice).
pub(super) fn duplicated(doubled: u64, summary: &str, evidence: impl Serialize) -> Outcome {
    Outcome::fail(
        RowId::RowsDuplicated,
        format!("{doubled} row(s) were committed beyond those sent: {summary}"),
        evidence,
    )
}

/// What the accounting is short of (` + lost N`) or over by (` - doubled N`), for a summary.
pub(super) fn imbalance(lost: u64, doubled: u64) -> String {
    if lost > 0 {
        format!(" + lost {lost}")
    } else if doubled > 0 {
        format!(" - doubled {doubled}")
    } else {
        String::new()
    }
}

fn show(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".into(), |m| format!("{m:.0}"))
}
