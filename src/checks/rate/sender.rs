//! One channel's sender: streams its share of the events at its share of the rate, keeping
//! appends chained by continuation token (several in flight once the tokens proved predictable),
//! sending again what the server refused out of order, and settling an unanswered append by
//! reopening the channel.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use tokio::time::MissedTickBehavior;

use super::{Run, open};
use crate::api::{CallError, Reply};
use crate::catalog::RowId;
use crate::checks::answer;
use crate::checks::stream::commits::committed_offset;
use crate::checks::stream::request;
use crate::load;
use crate::snowflake::rest::{self as sf, ApiCall, ChannelRef, OpenChannelResponse, codes};

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

    /// The offset of the last event acknowledged: what the commit wait waits for.
    pub(super) fn last_acked(&self) -> Option<u64> {
        self.acked.iter().map(|a| a.0.end - 1).max()
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

/// Streams the events through `channels` (opened with `tokens`), each its share; what each did,
/// in the channels' order.
pub(super) async fn send_all(
    run: &Arc<Run>,
    channels: Vec<ChannelRef>,
    tokens: Vec<String>,
) -> Vec<ChannelReport> {
    // One task per channel, so batches are built on every core; the set aborts them if this
    // check is cut off.
    let mut tasks = tokio::task::JoinSet::new();
    let mut index = std::collections::HashMap::new();
    let n = u64::from(run.layout.channels);
    let total = run.load.total_events();
    let count = channels.len();
    for (i, (channel, first)) in channels.into_iter().zip(tokens).enumerate() {
        let share = total / n + u64::from((i as u64) < total % n);
        index.insert(
            tasks
                .spawn(Sender::new(run.clone(), channel, first, share).run())
                .id(),
            i,
        );
    }
    let mut reports: Vec<ChannelReport> = std::iter::repeat_with(ChannelReport::default)
        .take(count)
        .collect();
    while let Some(joined) = tasks.join_next_with_id().await {
        let (id, report) = joined.unwrap_or_else(|e| (e.id(), ChannelReport::panicked(&e)));
        reports[index[&id]] = report;
    }
    reports
}

/// An append's answer, or that it got none.
struct Answer {
    sent: Sent,
    /// When the append was sent.
    started: Instant,
    took: Duration,
    result: Result<Reply, CallError>,
}

/// Streams one open channel's share of the events at its share of the rate.
struct Sender {
    run: Arc<Run>,
    channel: ChannelRef,
    /// The channel's append URL, without the query.
    url: String,
    /// This channel's share of the rate, in events a second.
    rate: f64,
    /// Events to send: `0..total`, cut short when the channel stops.
    total: u64,
    /// The first event not yet put into a request.
    next: u64,
    /// Batches to send again, in order, before new events.
    requeued: VecDeque<Range<u64>>,
    /// The token for the next append when none is in flight.
    confirmed: String,
    /// The token of the newest append in flight.
    newest: String,
    /// Answers in a row whose next token was the predicted one: two make the chain predictable.
    confirmations: u32,
    /// No new append until those in flight have settled: one must be sent again, in order.
    draining: bool,
    /// Once drained, reopen the channel (a confirmed token was refused, or an append got no answer).
    reopen: bool,
    failures_in_row: u32,
    /// Appends that got no answer: stored or not, the next reopen tells.
    in_doubt: Vec<(Range<u64>, Instant)>,
    report: ChannelReport,
}

impl Sender {
    /// A sender of events `0..total` through `channel`, opened with `first_token`.
    fn new(run: Arc<Run>, channel: ChannelRef, first_token: String, total: u64) -> Self {
        Self {
            url: format!("{}{}", run.base, channel.rows_path()),
            rate: f64::from(run.load.events_per_sec) / f64::from(run.layout.channels),
            run,
            channel,
            total,
            next: 0,
            requeued: VecDeque::new(),
            confirmed: first_token,
            newest: String::new(),
            confirmations: 0,
            draining: false,
            reopen: false,
            failures_in_row: 0,
            in_doubt: Vec::new(),
            report: ChannelReport::default(),
        }
    }

    /// Sends one batch per tick while any is due and the chain allows another in flight, takes
    /// the answers in order, and settles after a refusal or a missing answer; until every event
    /// was answered or the channel stopped.
    async fn run(mut self) -> ChannelReport {
        let mut in_flight = FuturesOrdered::new();
        let mut ticker = tokio::time::interval(self.run.layout.tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let elapsed = self.run.start.elapsed();
            if elapsed > self.run.cutoff() {
                self.stop(&(
                    RowId::LatencyBudget,
                    "the channel could not send its backlog in time".into(),
                ));
            }
            if !self.pending() && in_flight.is_empty() {
                break;
            }
            let can_send = self.can_send(in_flight.len());
            tokio::select! {
                _ = ticker.tick(), if can_send => {
                    if let Some(append) = self.next_append(elapsed, !in_flight.is_empty()) {
                        in_flight.push_back(append);
                        self.report.max_in_flight = self.report.max_in_flight.max(in_flight.len());
                    }
                }
                Some(answer) = in_flight.next(), if !in_flight.is_empty() => self.answered(answer),
            }
            if self.draining && in_flight.is_empty() {
                self.settle().await;
            }
            if self.failures_in_row >= GIVE_UP_AFTER && !self.draining {
                self.stop(&(
                    RowId::ApiError,
                    "the channel gave up after repeated failures".into(),
                ));
            }
        }
        self.report
    }

    /// Events are left to send (new or again).
    fn pending(&self) -> bool {
        self.next < self.total || !self.requeued.is_empty()
    }

    /// Another append may leave now: one is due, none must be sent again first, and the chain
    /// allows one more in flight (one until the tokens proved predictable).
    fn can_send(&self, in_flight: usize) -> bool {
        let depth = if self.confirmations >= 2 {
            load::MAX_IN_FLIGHT
        } else {
            1
        };
        self.pending() && !self.draining && in_flight < depth
    }

    /// Sends nothing new any more; what waited to be sent again fails with `why`.
    fn stop(&mut self, why: &(RowId, String)) {
        self.total = self.next;
        for r in std::mem::take(&mut self.requeued) {
            self.report.fail(&r, why.clone());
        }
    }

    /// The next batch's append, chained after the newest in flight (`speculative`) or after the
    /// confirmed token; `None` when no event is due yet or the batch cannot be sent.
    fn next_append(
        &mut self,
        elapsed: Duration,
        speculative: bool,
    ) -> Option<impl Future<Output = Answer> + use<>> {
        let range = self.next_batch(elapsed)?;
        let token = if speculative {
            load::successor(&self.newest).unwrap_or_else(|| self.confirmed.clone())
        } else {
            self.confirmed.clone()
        };
        let (raw, body) = self.body(&range)?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("continuationToken", &token)
            .append_pair("startOffsetToken", &range.start.to_string())
            .append_pair("endOffsetToken", &(range.end - 1).to_string())
            .finish();
        let sent = Sent {
            range,
            token: token.clone(),
            speculative,
            raw,
            wire: body.len(),
        };
        self.newest = token;
        self.report.requests += 1;
        Some(append(
            self.run.clone(),
            format!("{}?{query}", self.url),
            body,
            sent,
        ))
    }

    /// A batch to send again, else the events due by `elapsed` (at most a batch's worth).
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "event counts and rates"
    )]
    fn next_batch(&mut self, elapsed: Duration) -> Option<Range<u64>> {
        if let Some(r) = self.requeued.pop_front() {
            self.report.resent += 1;
            return Some(r);
        }
        let due = ((elapsed.as_secs_f64() * self.rate) as u64 + 1).min(self.total);
        let end = due.min(self.next + self.run.layout.max_batch_events as u64);
        if end <= self.next {
            return None;
        }
        self.report.sent += end - self.next;
        let start = std::mem::replace(&mut self.next, end);
        Some(start..end)
    }

    /// The batch as NDJSON (its size) and compressed (the request body); `None`, the batch
    /// failed, when it cannot be sent.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "a batch's events fit in memory"
    )]
    fn body(&mut self, range: &Range<u64>) -> Option<(usize, Bytes)> {
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let load = &self.run.load;
        let mut raw =
            Vec::with_capacity((range.end - range.start) as usize * (load.event_size + 1));
        for seq in range.clone() {
            load::write_event(
                &mut raw,
                seq as usize,
                &self.channel.channel,
                &timestamp,
                load.event_size,
            );
        }
        match load.compression.compress(&raw) {
            Ok(b) if b.len() <= sf::MAX_APPEND_BYTES => Some((raw.len(), Bytes::from(b))),
            Ok(b) => {
                let why = format!("a batch compressed to {} bytes, over the 4 MB cap", b.len());
                self.report.fail(range, (RowId::ApiError, why));
                None
            }
            Err(e) => {
                let why = format!("cannot compress a batch: {e}");
                self.report.fail(range, (RowId::ApiError, why));
                None
            }
        }
    }

    /// Takes an append's answer, in the order the appends were sent.
    fn answered(&mut self, answer: Answer) {
        let Answer {
            sent,
            started,
            took,
            result,
        } = answer;
        if let Ok(r) = &result {
            self.report.retries += u64::from(r.retries);
        }
        match &result {
            Ok(r) if r.ok() => match serde_json::from_str::<sf::AppendRowsResponse>(&r.body) {
                Ok(a) if a.status_code == 0 => {
                    self.acked(sent, started, took, a.next_continuation_token);
                }
                other => {
                    let why = other.map_or_else(
                        |e| format!("unexpected append answer ({e})"),
                        |a| {
                            format!(
                                "append answered 200 with status_code {}: {:?}",
                                a.status_code, a.message
                            )
                        },
                    );
                    self.failed(&sent.range, (RowId::ApiError, why));
                }
            },
            Ok(r) if sequencer_error(r) => {
                // Not stored: send it again, in order, once what is in flight has settled.
                self.requeued.push_back(sent.range);
                self.confirmations = 0;
                self.draining = true;
                self.reopen |= !sent.speculative;
            }
            Ok(r) => self.failed(&sent.range, answer::classify(r)),
            Err(e) => {
                self.in_doubt.push((sent.range, started));
                self.report.recovered.get_or_insert((
                    answer::call_failure(e),
                    format!("an append got no answer ({e}); the channel was reopened and resent"),
                ));
                self.confirmations = 0;
                self.draining = true;
                self.reopen = true;
                self.failures_in_row += 1;
            }
        }
    }

    /// The append was stored; its answer's token is the next one, and tells whether the chain
    /// is predictable.
    fn acked(&mut self, sent: Sent, started: Instant, took: Duration, next_token: String) {
        let predicted = load::successor(&sent.token).is_some_and(|p| p == next_token);
        self.confirmations = if predicted { self.confirmations + 1 } else { 0 };
        self.confirmed = next_token;
        let report = &mut self.report;
        report.latencies.push(took);
        report.raw_bytes += sent.raw as u64;
        report.wire_bytes += sent.wire as u64;
        report.last_send = Some(started);
        report.acked.push((sent.range, started));
        self.failures_in_row = 0;
    }

    /// The append failed for good.
    fn failed(&mut self, range: &Range<u64>, why: (RowId, String)) {
        self.report.fail(range, why);
        self.failures_in_row += 1;
    }

    /// Once nothing is in flight: reopens the channel when an append's fate is unknown or a
    /// confirmed token was refused.
    async fn settle(&mut self) {
        self.draining = false;
        if !std::mem::take(&mut self.reopen) {
            return;
        }
        match open(
            &self.run.ctx,
            &self.run.base,
            &self.run.token,
            &self.channel,
        )
        .await
        {
            Ok(opened) => self.reopened(opened),
            Err(outcome) => {
                self.requeued
                    .extend(self.in_doubt.drain(..).map(|(r, _)| r));
                self.stop(&(
                    outcome.row().unwrap_or(RowId::StaleContinuationToken),
                    format!("reopen: {}", outcome.finding),
                ));
            }
        }
    }

    /// A reopen discards what was appended but not committed: send it again, in order. What it
    /// reports committed is stored, answered or not.
    fn reopened(&mut self, opened: OpenChannelResponse) {
        self.report.reopens += 1;
        self.confirmed = opened.next_continuation_token;
        let committed = committed_offset(&opened.channel_status);
        let stored = |r: &Range<u64>| committed.is_some_and(|c| r.end - 1 <= c);
        let (kept, mut again): (Vec<_>, Vec<_>) = self
            .report
            .acked
            .drain(..)
            .chain(self.in_doubt.drain(..))
            .partition(|(r, _)| stored(r));
        self.report.acked = kept;
        again.extend(self.requeued.drain(..).map(|r| (r, self.run.start)));
        again.sort_by_key(|(r, _)| r.start);
        self.requeued = again.into_iter().map(|(r, _)| r).collect();
    }
}

/// Sends one append; its answer, when it was sent and how long the answer took.
async fn append(run: Arc<Run>, target: String, body: Bytes, sent: Sent) -> Answer {
    let started = Instant::now();
    let encoding = run.load.compression.header();
    let result = run
        .ctx
        .net
        .api
        .call(ApiCall::Append, || {
            request(&run.ctx, reqwest::Method::POST, &target, &run.token)
                .header(CONTENT_TYPE, "application/x-ndjson")
                .header(CONTENT_ENCODING, encoding)
                .body(body.clone())
        })
        .await;
    Answer {
        sent,
        started,
        took: started.elapsed(),
        result,
    }
}
