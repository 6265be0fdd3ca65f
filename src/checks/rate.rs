//! `stream.rate` (`--full` with `--rate` or `--profile`): holds a sustained event rate through
//! its own test channels after the round trip passed, and reports what the path really carries —
//! events/s and MB/s achieved against asked, append latency percentiles, commit lag, 429s and
//! retries — with every event accounted for (sent = committed + errored, or the check fails).
//!
//! Each channel sends at most [`load::REQUESTS_PER_SEC_PER_CHANNEL`] NDJSON requests a second,
//! batching whatever events are due (compressed, under the 4 MB wire cap); a rate one channel
//! cannot carry is spread over more ([`Load::layout`]). Appends on a channel must chain — each
//! carries the continuation token the previous answer returned — so a channel keeps several in
//! flight only once the server's tokens have proved predictable ([`load::successor`], checked on
//! every answer). A mispredicted or reordered append is refused by the server with a sequencer
//! error and not stored, so it is simply sent again in order. A sequencer error on a confirmed
//! token, or an append that got no answer (stored or not?), is settled by reopening the channel:
//! the reopen discards what was not committed and reports what was, and the rest is sent again —
//! nothing lost, nothing doubled. `stream.drop` drops the channels after this check, however it
//! ended (a failure, the deadline, Ctrl-C).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde::Serialize;
use tokio::sync::watch;

use crate::api::{CallError, Reply};
use crate::catalog::RowId;
use crate::checks::answer;
use crate::checks::stream::commits::{Poller, committed_offset};
use crate::checks::stream::{ingest, request};
use crate::context::Ctx;
use crate::load::{self, Layout, Load};
use crate::outcome::{Outcome, SkipReason};
use crate::registry::CheckSpec;
use crate::secret::Secret;
use crate::snowflake::api::{
    self as sf, ChannelRef, ChannelStatus, Endpoint, OpenChannelResponse, PipeRef, codes,
};

/// The sustained-rate stream test.
pub const RATE: CheckSpec = CheckSpec::new(
    "stream.rate",
    "Stream: sustained rate",
    &["stream.commit"],
    |ctx| Box::pin(rate(ctx)),
)
.full();

/// Below this share of the asked rate, the rate was not held.
const HELD: f64 = 0.9;
/// A channel stops after this many appends in a row failed.
const GIVE_UP_AFTER: u32 = 3;

#[allow(clippy::too_many_lines)] // the whole streaming run, phase by phase
async fn rate(ctx: Ctx) -> Outcome {
    let Some(load) = ctx.settings.rate.clone() else {
        return Outcome::skip(SkipReason::NotConfigured(
            "no --rate or --profile asked".into(),
        ));
    };
    let (base, token) = match ingest(&ctx) {
        Ok((base, token)) => (base, token.clone()),
        Err(skip) => return skip,
    };
    let pipe = match crate::checks::stream::pipe(&ctx) {
        Ok(p) => p,
        Err(skip) => return skip,
    };
    // The round trip's appends tell how long one takes on this path.
    let append_latency = ctx
        .net
        .api
        .exchanges()
        .iter()
        .filter(|x| x.call == Endpoint::Append)
        .map(|x| x.elapsed)
        .max()
        .unwrap_or_default();
    let layout = load.layout(append_latency);
    let run_id = format!(
        "netcheck_rate_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let channels: Vec<ChannelRef> = (0..layout.channels)
        .map(|i| pipe.channel(&format!("{run_id}_{i}")))
        .collect();
    // Their drop is stream.drop's, which runs after this check however it ends.
    let opens =
        futures::future::join_all(channels.iter().map(|c| open(&ctx, &base, &token, c))).await;
    let mut tokens = Vec::with_capacity(opens.len());
    for opened in opens {
        match opened {
            Ok(r) => tokens.push(r.next_continuation_token),
            Err(failed) => return failed,
        }
    }

    let cpu_before = load::process_cpu_time();
    let run = Arc::new(Run {
        ctx: ctx.clone(),
        base: base.clone(),
        token,
        layout,
        start: Instant::now(),
        load,
    });
    let (targets_tx, targets_rx) = watch::channel(None);
    let names = channels.iter().map(|c| c.channel.clone()).collect();
    let commits = poll_commits(&run, &pipe, names, targets_rx);
    let senders = async {
        // One task per channel, so batches are built on every core; the set aborts them if this
        // check is cut off.
        let mut tasks = tokio::task::JoinSet::new();
        let mut index = std::collections::HashMap::new();
        let n = u64::from(layout.channels);
        let total = run.load.total_events();
        for (i, (channel, first)) in channels.iter().cloned().zip(tokens).enumerate() {
            let share = total / n + u64::from((i as u64) < total % n);
            index.insert(
                tasks
                    .spawn(send_channel(run.clone(), channel, first, share))
                    .id(),
                i,
            );
        }
        let mut reports: Vec<ChannelReport> = std::iter::repeat_with(ChannelReport::default)
            .take(channels.len())
            .collect();
        while let Some(joined) = tasks.join_next_with_id().await {
            let (id, report) = joined.unwrap_or_else(|e| (e.id(), ChannelReport::panicked(&e)));
            reports[index[&id]] = report;
        }
        let _ = targets_tx.send(Some(
            reports
                .iter()
                .map(|r| r.acked.iter().map(|a| a.0.end - 1).max())
                .collect(),
        ));
        reports
    };
    let (reports, polled) = tokio::join!(senders, commits);
    let cpu = cpu_before
        .zip(load::process_cpu_time())
        .map(|(a, b)| b.saturating_sub(a));
    judge(&run, &run_id, &reports, &polled, cpu)
}

/// What every channel's sender shares.
struct Run {
    ctx: Ctx,
    base: String,
    token: Secret<String>,
    load: Load,
    layout: Layout,
    /// When the channels were open and sending began.
    start: Instant,
}

impl Run {
    /// After this, a channel that fell behind stops sending its backlog.
    fn cutoff(&self) -> Duration {
        self.load.duration + self.ctx.settings.timeout
    }
}

/// Opens (or reopens) a channel; the failure is the check's outcome.
async fn open(
    ctx: &Ctx,
    base: &str,
    token: &Secret<String>,
    channel: &ChannelRef,
) -> Result<OpenChannelResponse, Outcome> {
    let (outcome, opened) = crate::checks::stream::open_channel(ctx, base, token, channel).await;
    opened.ok_or(outcome)
}

/// One append on its way.
struct Sent {
    range: Range<u64>,
    token: String,
    /// Sent with a predicted token, before the previous append was answered.
    speculative: bool,
    raw: usize,
    wire: usize,
}

/// What one channel's sender did.
#[derive(Default)]
struct ChannelReport {
    /// Events put into a request (each counted once, however often it was sent).
    sent: u64,
    /// Acknowledged batches: the events and when their append was sent.
    acked: Vec<(Range<u64>, Instant)>,
    /// Events whose append failed for good.
    failed: u64,
    requests: u64,
    resent: u64,
    reopens: u64,
    retries: u64,
    max_in_flight: usize,
    latencies: Vec<Duration>,
    raw_bytes: u64,
    wire_bytes: u64,
    /// When the last acknowledged append was sent: the end of the span the rate is measured on.
    last_send: Option<Instant>,
    failure: Option<(RowId, String)>,
    /// A problem the channel recovered from (no answer to an append: reopened and resent).
    recovered: Option<(RowId, String)>,
}

impl ChannelReport {
    fn panicked(e: &tokio::task::JoinError) -> Self {
        Self {
            failure: Some((
                RowId::Timeout,
                format!("internal error: a channel sender panicked: {e}"),
            )),
            ..Self::default()
        }
    }

    fn acked_events(&self) -> u64 {
        self.acked.iter().map(|(r, _)| r.end - r.start).sum()
    }

    fn fail(&mut self, range: &Range<u64>, why: (RowId, String)) {
        self.failed += range.end - range.start;
        self.failure.get_or_insert(why);
    }
}

/// The server refused the append's continuation token (it was not stored).
fn sequencer_error(reply: &Reply) -> bool {
    reply.error().is_some_and(|e| {
        matches!(
            e.code.as_str(),
            codes::STALE_CONTINUATION_TOKEN_SEQUENCER
                | codes::ERR_CHANNEL_HAS_INVALID_ROW_SEQUENCER
        )
    })
}

/// Streams `total` events through one open channel at its share of the rate.
#[allow(
    clippy::too_many_lines,
    reason = "one state machine; its states read best together"
)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "event counts and rates"
)]
async fn send_channel(
    run: Arc<Run>,
    channel: ChannelRef,
    first_token: String,
    mut total: u64,
) -> ChannelReport {
    let url = format!("{}{}", run.base, channel.rows_path());
    let rate = f64::from(run.load.events_per_sec) / f64::from(run.layout.channels);
    let mut report = ChannelReport::default();
    let mut in_flight = FuturesOrdered::new();
    let mut requeued: VecDeque<Range<u64>> = VecDeque::new();
    let mut next = 0_u64;
    // The token for the next append when none is in flight, and the newest one in flight.
    let mut confirmed = first_token;
    let mut newest = String::new();
    // Answers in a row whose next token was the predicted one: two make the chain predictable.
    let mut confirmations = 0_u32;
    let (mut draining, mut reopen, mut failures_in_row) = (false, false, 0_u32);
    // Appends that got no answer: stored or not, the next reopen tells.
    let mut in_doubt: Vec<(Range<u64>, Instant)> = Vec::new();
    let mut ticker = tokio::time::interval(run.layout.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let elapsed = run.start.elapsed();
        if elapsed > run.cutoff() && (next < total || !requeued.is_empty()) {
            for r in std::mem::take(&mut requeued) {
                report.fail(
                    &r,
                    (
                        RowId::LatencyBudget,
                        "the channel could not send its backlog in time".into(),
                    ),
                );
            }
            total = next;
        }
        let pending = next < total || !requeued.is_empty();
        if !pending && in_flight.is_empty() {
            break;
        }
        let depth = if confirmations >= 2 {
            load::MAX_IN_FLIGHT
        } else {
            1
        };
        let can_send = pending && !draining && in_flight.len() < depth;
        tokio::select! {
            _ = ticker.tick(), if can_send => {
                let range = if let Some(r) = requeued.pop_front() {
                    report.resent += 1;
                    r
                } else {
                    let due = ((elapsed.as_secs_f64() * rate) as u64 + 1).min(total);
                    let end = due.min(next + run.layout.max_batch_events as u64);
                    if end <= next {
                        continue;
                    }
                    report.sent += end - next;
                    let start = std::mem::replace(&mut next, end);
                    start..end
                };
                let speculative = !in_flight.is_empty();
                let token = if speculative { load::successor(&newest).unwrap_or_else(|| confirmed.clone()) } else { confirmed.clone() };
                let timestamp = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                let mut raw = Vec::with_capacity((range.end - range.start) as usize * (run.load.event_size + 1));
                for seq in range.clone() {
                    load::write_event(&mut raw, seq as usize, &channel.channel, &timestamp, run.load.event_size);
                }
                let body = match run.load.compression.compress(&raw) {
                    Ok(b) if b.len() <= sf::MAX_APPEND_BYTES => bytes::Bytes::from(b),
                    Ok(b) => {
                        report.fail(&range, (RowId::ApiError, format!("a batch compressed to {} bytes, over the 4 MB cap", b.len())));
                        continue;
                    }
                    Err(e) => {
                        report.fail(&range, (RowId::ApiError, format!("cannot compress a batch: {e}")));
                        continue;
                    }
                };
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("continuationToken", &token)
                    .append_pair("startOffsetToken", &range.start.to_string())
                    .append_pair("endOffsetToken", &(range.end - 1).to_string())
                    .finish();
                let sent = Sent { range, token: token.clone(), speculative, raw: raw.len(), wire: body.len() };
                let (run, target) = (run.clone(), format!("{url}?{query}"));
                in_flight.push_back(async move {
                    let started = Instant::now();
                    let encoding = run.load.compression.header();
                    let result = run
                        .ctx
                        .net
                        .api
                        .call(Endpoint::Append, || {
                            request(&run.ctx, reqwest::Method::POST, &target, &run.token)
                                .header(CONTENT_TYPE, "application/x-ndjson")
                                .header(CONTENT_ENCODING, encoding)
                                .body(body.clone())
                        })
                        .await;
                    (sent, started, started.elapsed(), result)
                });
                newest = token;
                report.requests += 1;
                report.max_in_flight = report.max_in_flight.max(in_flight.len());
            }
            Some((sent, started, took, result)) = in_flight.next(), if !in_flight.is_empty() => {
                let result: Result<Reply, CallError> = result;
                if let Ok(r) = &result {
                    report.retries += u64::from(r.retries);
                }
                match &result {
                    Ok(r) if r.ok() => match serde_json::from_str::<sf::AppendRowsResponse>(&r.body) {
                        Ok(a) if a.status_code == 0 => {
                            let predicted = load::successor(&sent.token).is_some_and(|p| p == a.next_continuation_token);
                            confirmations = if predicted { confirmations + 1 } else { 0 };
                            confirmed = a.next_continuation_token;
                            report.latencies.push(took);
                            report.raw_bytes += sent.raw as u64;
                            report.wire_bytes += sent.wire as u64;
                            report.last_send = Some(started);
                            report.acked.push((sent.range, started));
                            failures_in_row = 0;
                        }
                        other => {
                            let why = other.map_or_else(|e| format!("unexpected append answer ({e})"), |a| format!("append answered 200 with status_code {}: {:?}", a.status_code, a.message));
                            report.fail(&sent.range, (RowId::ApiError, why));
                            failures_in_row += 1;
                        }
                    },
                    Ok(r) if sequencer_error(r) => {
                        // Not stored: send it again, in order, once what is in flight has settled.
                        requeued.push_back(sent.range);
                        confirmations = 0;
                        draining = true;
                        reopen |= !sent.speculative;
                    }
                    Ok(r) => {
                        report.fail(&sent.range, answer::classify(r));
                        failures_in_row += 1;
                    }
                    Err(e) => {
                        in_doubt.push((sent.range, started));
                        report.recovered.get_or_insert((answer::call_failure(e), format!("an append got no answer ({e}); the channel was reopened and resent")));
                        confirmations = 0;
                        draining = true;
                        reopen = true;
                        failures_in_row += 1;
                    }
                }
            }
        }
        if draining && in_flight.is_empty() {
            draining = false;
            if std::mem::take(&mut reopen) {
                match open(&run.ctx, &run.base, &run.token, &channel).await {
                    Ok(opened) => {
                        report.reopens += 1;
                        confirmed = opened.next_continuation_token;
                        // A reopen discards what was appended but not committed: send it again.
                        // What it reports committed is stored, answered or not.
                        let committed = committed_offset(&opened.channel_status);
                        let stored = |r: &Range<u64>| committed.is_some_and(|c| r.end - 1 <= c);
                        let (kept, mut again): (Vec<_>, Vec<_>) = report
                            .acked
                            .drain(..)
                            .chain(in_doubt.drain(..))
                            .partition(|(r, _)| stored(r));
                        report.acked = kept;
                        again.extend(requeued.drain(..).map(|r| (r, run.start)));
                        again.sort_by_key(|(r, _)| r.start);
                        requeued = again.into_iter().map(|(r, _)| r).collect();
                    }
                    Err(outcome) => {
                        total = next;
                        for r in std::mem::take(&mut requeued)
                            .into_iter()
                            .chain(in_doubt.drain(..).map(|(r, _)| r))
                        {
                            report.fail(
                                &r,
                                (
                                    outcome.row().unwrap_or(RowId::StaleContinuationToken),
                                    format!("reopen: {}", outcome.finding),
                                ),
                            );
                        }
                    }
                }
            }
        }
        if failures_in_row >= GIVE_UP_AFTER && !draining {
            total = next;
            for r in std::mem::take(&mut requeued) {
                report.fail(
                    &r,
                    (
                        RowId::ApiError,
                        "the channel gave up after repeated failures".into(),
                    ),
                );
            }
        }
    }
    report
}

/// Commit progress as polled: when each channel's committed offset was seen, and the final status.
struct Polled {
    /// (when, last committed offset per channel).
    samples: Vec<(Instant, Vec<Option<u64>>)>,
    last: Vec<Option<ChannelStatus>>,
    polls: u32,
    /// Every channel committed what it was acknowledged.
    complete: bool,
    /// The last poll's failure, when it failed.
    failure: Option<Outcome>,
}

/// Polls the channels' status until the senders are done (`targets`: the last acknowledged offset
/// per channel) and those offsets are committed, or the step timeout after that.
async fn poll_commits(
    run: &Run,
    pipe: &PipeRef,
    names: Vec<String>,
    targets: watch::Receiver<Option<Vec<Option<u64>>>>,
) -> Polled {
    let mut polled = Polled {
        samples: Vec::new(),
        last: vec![None; names.len()],
        polls: 0,
        complete: false,
        failure: None,
    };
    let mut channels = Poller::new(&run.ctx, &run.base, &run.token, pipe, names);
    let mut done_at: Option<Instant> = None;
    loop {
        let poll = channels.poll().await;
        polled.polls = channels.polls();
        if let Some(statuses) = poll.statuses {
            // A failed poll that a later one made up for is no finding.
            polled.failure = None;
            let offsets = statuses
                .iter()
                .map(|s| s.as_ref().and_then(committed_offset))
                .collect();
            polled.last = statuses;
            polled.samples.push((poll.at, offsets));
        } else {
            polled.failure = Some(poll.failure());
        }
        // Read after the answer: a poll that already covers what the senders settled ends the wait.
        let Some(wanted) = targets.borrow().clone() else {
            continue;
        };
        let committed = polled.samples.last().is_some_and(|(_, got)| {
            wanted
                .iter()
                .zip(got)
                .all(|(w, g)| w.is_none_or(|w| g.is_some_and(|g| g >= w)))
        });
        if committed {
            polled.complete = true;
            return polled;
        }
        if done_at.get_or_insert_with(Instant::now).elapsed() > run.ctx.settings.timeout {
            return polled;
        }
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Serialize)]
struct Percentiles {
    p50: Option<f64>,
    p95: Option<f64>,
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

#[derive(Serialize)]
struct RateEvidence<'a> {
    load: &'a Load,
    layout: &'a Layout,
    asked_events_per_s: f64,
    achieved_events_per_s: f64,
    asked_mb_per_s: f64,
    achieved_mb_per_s: f64,
    wire_mb_per_s: f64,
    requests: u64,
    max_in_flight: usize,
    append_latency_ms: Percentiles,
    /// From sending an append to the first status poll whose committed offset covers it.
    commit_lag_ms: Percentiles,
    throttled_429: usize,
    retries: u64,
    resent_requests: u64,
    reopens: u64,
    sent: u64,
    committed: u64,
    errored: u64,
    lost: u64,
    status_polls: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cpu_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cpu_percent_of_one_core: Option<f64>,
}

#[allow(clippy::cast_precision_loss, reason = "counts shown as rates")]
#[allow(clippy::too_many_lines)] // one verdict table over every figure of the run
fn judge(
    run: &Run,
    run_id: &str,
    reports: &[ChannelReport],
    polled: &Polled,
    cpu: Option<Duration>,
) -> Outcome {
    let sum = |f: fn(&ChannelReport) -> u64| reports.iter().map(f).sum::<u64>();
    let sent = sum(|r| r.sent);
    let acked = sum(ChannelReport::acked_events);
    let committed: u64 = polled.last.iter().flatten().map(|s| s.rows_inserted).sum();
    let rows_errored: u64 = polled
        .last
        .iter()
        .flatten()
        .map(|s| s.rows_error_count)
        .sum();
    let errored = sum(|r| r.failed) + rows_errored;
    let lost = sent.saturating_sub(committed + errored);
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
            r.acked.iter().filter_map(move |(range, sent_at)| {
                let seen = polled.samples.iter().find(|(_, got)| {
                    got.get(i)
                        .copied()
                        .flatten()
                        .is_some_and(|c| c >= range.end - 1)
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
    let evidence = RateEvidence {
        load: &run.load,
        layout: &run.layout,
        asked_events_per_s: asked_rate,
        achieved_events_per_s: acked as f64 / span,
        asked_mb_per_s: asked_rate * run.load.event_size as f64 / 1e6,
        achieved_mb_per_s: mb(sum(|r| r.raw_bytes)),
        wire_mb_per_s: mb(sum(|r| r.wire_bytes)),
        requests: sum(|r| r.requests),
        max_in_flight: reports
            .iter()
            .map(|r| r.max_in_flight)
            .max()
            .unwrap_or_default(),
        append_latency_ms: Percentiles::of(latencies),
        commit_lag_ms: Percentiles::of(commit_lags),
        throttled_429: run
            .ctx
            .net
            .api
            .exchanges()
            .iter()
            .filter(|x| {
                x.call == Endpoint::Append && x.status == Some(429) && x.path.contains(run_id)
            })
            .count(),
        retries: sum(|r| r.retries),
        resent_requests: sum(|r| r.resent),
        reopens: sum(|r| r.reopens),
        sent,
        committed,
        errored,
        lost,
        status_polls: polled.polls,
        client_cpu_ms: cpu.map(crate::units::ms),
        client_cpu_percent_of_one_core: cpu.map(|c| 100.0 * c.as_secs_f64() / span),
    };
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
        if lost > 0 {
            format!(" + lost {lost}")
        } else {
            String::new()
        },
    );
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
    let budget = answer::budget(Endpoint::Append).unwrap_or(Duration::MAX);
    if evidence
        .append_latency_ms
        .p95
        .is_some_and(|p| p > crate::units::ms(budget))
    {
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

fn show(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".into(), |m| format!("{m:.0}"))
}
