//! One channel's sender: streams its share of the events at its share of the rate, keeping
//! appends chained by continuation token (several in flight once the tokens proved predictable),
//! sending again what the server refused out of order, and settling an unanswered append by
//! reopening the channel.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};

use super::{Run, open};
use crate::api::{CallError, Reply};
use crate::catalog::RowId;
use crate::checks::answer;
use crate::checks::stream::commits::committed_offset;
use crate::checks::stream::request;
use crate::load;
use crate::snowflake::api::{self as sf, ChannelRef, Endpoint, codes};

/// A channel stops after this many appends in a row failed.
const GIVE_UP_AFTER: u32 = 3;

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
pub(super) struct ChannelReport {
    /// Events put into a request (each counted once, however often it was sent).
    pub(super) sent: u64,
    /// Acknowledged batches: the events and when their append was sent.
    pub(super) acked: Vec<(Range<u64>, Instant)>,
    /// Events whose append failed for good.
    pub(super) failed: u64,
    pub(super) requests: u64,
    pub(super) resent: u64,
    pub(super) reopens: u64,
    pub(super) retries: u64,
    pub(super) max_in_flight: usize,
    pub(super) latencies: Vec<Duration>,
    pub(super) raw_bytes: u64,
    pub(super) wire_bytes: u64,
    /// When the last acknowledged append was sent: the end of the span the rate is measured on.
    pub(super) last_send: Option<Instant>,
    pub(super) failure: Option<(RowId, String)>,
    /// A problem the channel recovered from (no answer to an append: reopened and resent).
    pub(super) recovered: Option<(RowId, String)>,
}

impl ChannelReport {
    pub(super) fn panicked(e: &tokio::task::JoinError) -> Self {
        Self {
            failure: Some((
                RowId::Timeout,
                format!("internal error: a channel sender panicked: {e}"),
            )),
            ..Self::default()
        }
    }

    pub(super) fn acked_events(&self) -> u64 {
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
pub(super) async fn send_channel(
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
