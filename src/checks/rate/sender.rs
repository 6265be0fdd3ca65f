//! One channel's sender: streams its share of the events at its share of the rate, one append
//! at a time chained by the continuation token the previous answer returned (never a guessed
//! token: a server handles concurrent requests in any order, so a guess can be refused and cost
//! a resend), batching whatever fell due meanwhile, and settling a refused token or an append in
//! doubt (no answer, or a 200 whose body is not an append answer: stored or not, the client cannot
//! tell) by reopening the channel, whose committed offset says what was stored.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
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

/// A channel stops after this many appends in a row failed, whatever the failure (refused,
/// refused token, no answer, a batch that could not be built): it stops rather than spins.
const GIVE_UP_AFTER: u32 = 3;

/// One append's batch: its events, and its size as NDJSON and on the wire.
pub(super) struct Sent {
    pub(super) range: Range<u64>,
    raw: usize,
    wire: usize,
}

/// What one channel's sender did.
#[derive(Default)]
pub(super) struct ChannelReport {
    /// Events put into a request (each counted once, however often it was sent).
    pub(super) sent: u64,
    /// Stored batches (acknowledged, or found committed by a reopen) and when their append was
    /// sent. The bytes sent are theirs: a batch resent after a reopen is counted once.
    pub(super) acked: Vec<(Sent, Instant)>,
    /// Events whose append failed for good (not stored).
    pub(super) failed: u64,
    /// Events whose append's fate was unknown when it was answered (no answer, or one that could
    /// not be read), each time; settled from the channel's committed offset.
    pub(super) in_doubt: u64,
    /// Batches still in doubt when the channel stopped (its reopen failed): the committed offset
    /// at the end settles them ([`ChannelReport::unsettled_not_stored`]).
    pub(super) unsettled: Vec<Range<u64>>,
    pub(super) requests: u64,
    pub(super) resent: u64,
    pub(super) reopens: u64,
    pub(super) retries: u64,
    pub(super) latencies: Vec<Duration>,
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
        self.acked.iter().map(|(s, _)| s.range.end - 1).max()
    }

    pub(super) fn acked_events(&self) -> u64 {
        self.acked
            .iter()
            .map(|(s, _)| s.range.end - s.range.start)
            .sum()
    }

    /// The stored batches' bytes as NDJSON.
    pub(super) fn raw_bytes(&self) -> u64 {
        self.acked.iter().map(|(s, _)| s.raw as u64).sum()
    }

    /// The stored batches' bytes on the wire (compressed).
    pub(super) fn wire_bytes(&self) -> u64 {
        self.acked.iter().map(|(s, _)| s.wire as u64).sum()
    }

    /// Of the batches in doubt when the channel stopped, the events the channel's final
    /// `committed` offset does not cover: they were not stored.
    pub(super) fn unsettled_not_stored(&self, committed: Option<u64>) -> u64 {
        self.unsettled
            .iter()
            .filter(|r| committed.is_none_or(|c| r.end - 1 > c))
            .map(|r| r.end - r.start)
            .sum()
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
    /// The token for the next append: the one the last answer (or open) returned.
    confirmed: String,
    /// Once the append in flight has settled, reopen the channel (its token was refused, or it
    /// got no answer).
    reopen: bool,
    failures_in_row: u32,
    /// The latest failure, which names the give-up.
    last_failure: Option<(RowId, String)>,
    /// Appends in doubt (no answer, or an unreadable one): stored or not, the next reopen tells.
    in_doubt: Vec<(Sent, Instant)>,
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
            reopen: false,
            failures_in_row: 0,
            last_failure: None,
            in_doubt: Vec::new(),
            report: ChannelReport::default(),
        }
    }

    /// Sends one batch per tick while any is due, takes its answer before the next, and settles
    /// after a refusal or a missing answer; until every event was answered or the channel
    /// stopped.
    async fn run(mut self) -> ChannelReport {
        // Ticks stay on their grid: after a late answer the next one leaves at the next tick
        // with everything due by then (catch-up), and requests never bunch up.
        let mut ticker = tokio::time::interval(self.run.layout.tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            if self.run.start.elapsed() > self.run.cutoff {
                self.stop(&(
                    RowId::LatencyBudget,
                    "the channel could not send its backlog in time".into(),
                ));
            }
            if !self.pending() {
                break;
            }
            ticker.tick().await;
            // What is due when the request leaves, not when the tick was planned.
            if let Some(append) = self.next_append(self.run.start.elapsed()) {
                let answer = append.await;
                self.answered(answer);
                self.settle().await;
            }
            if self.failures_in_row >= GIVE_UP_AFTER {
                let (row, last) = self
                    .last_failure
                    .clone()
                    .unwrap_or((RowId::ApiError, "unknown".into()));
                self.stop(&(
                    row,
                    format!(
                        "the channel gave up after {GIVE_UP_AFTER} failed appends in a row (the last: {last})"
                    ),
                ));
            }
        }
        self.report
    }

    /// Events are left to send (new or again).
    fn pending(&self) -> bool {
        self.next < self.total || !self.requeued.is_empty()
    }

    /// Sends nothing new any more; what waited to be sent again fails with `why`.
    fn stop(&mut self, why: &(RowId, String)) {
        self.total = self.next;
        for r in std::mem::take(&mut self.requeued) {
            self.report.fail(&r, why.clone());
        }
    }

    /// The next batch's append, chained after the confirmed token; `None` when no event is due
    /// yet or the batch cannot be sent.
    fn next_append(&mut self, elapsed: Duration) -> Option<impl Future<Output = Answer> + use<>> {
        let range = self.next_batch(elapsed)?;
        let (raw, body) = self.body(&range)?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("continuationToken", &self.confirmed)
            .append_pair("startOffsetToken", &range.start.to_string())
            .append_pair("endOffsetToken", &(range.end - 1).to_string())
            .finish();
        let sent = Sent {
            range,
            raw,
            wire: body.len(),
        };
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
                self.failed(range, (RowId::ApiError, why));
                None
            }
            Err(e) => {
                let why = format!("cannot compress a batch: {e}");
                self.failed(range, (RowId::ApiError, why));
                None
            }
        }
    }

    /// Takes an append's answer.
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
                Ok(a) => {
                    let why = format!(
                        "append answered 200 with status_code {}: {:?}",
                        a.status_code, a.message
                    );
                    self.failed(&sent.range, (RowId::ApiError, why));
                }
                // A 200 says the server took the request; what it stored, only the reopen's
                // committed offset can tell.
                Err(e) => self.doubt(
                    sent,
                    started,
                    (
                        RowId::ApiError,
                        format!("an append's 200 answer was not an append answer ({e})"),
                    ),
                ),
            },
            Ok(r) if sequencer_error(r) => {
                // The answered token was refused (another client reopened the channel): not
                // stored, so send it again after a reopen — unless every attempt is refused.
                self.requeued.push_back(sent.range);
                self.reopen = true;
                self.failures_in_row += 1;
                self.last_failure = Some((
                    RowId::StaleContinuationToken,
                    format!(
                        "the server refused the append's continuation token ({})",
                        r.error().map(|e| e.code).unwrap_or_default()
                    ),
                ));
            }
            Ok(r) => self.failed(&sent.range, answer::classify(r)),
            Err(e) => self.doubt(
                sent,
                started,
                (
                    answer::call_failure(e),
                    format!("an append got no answer ({e})"),
                ),
            ),
        }
    }

    /// The append's fate is unknown (`why`): the reopen after it tells from the committed offset
    /// what was stored, and the rest is sent again.
    fn doubt(&mut self, sent: Sent, started: Instant, why: (RowId, String)) {
        self.report.in_doubt += sent.range.end - sent.range.start;
        self.in_doubt.push((sent, started));
        let (row, why) = why;
        self.report.recovered.get_or_insert((
            row,
            format!(
                "{why}; in doubt, settled from the committed offset of the channel, reopened, \
                 and what was not stored sent again"
            ),
        ));
        self.reopen = true;
        self.failures_in_row += 1;
        self.last_failure = Some((row, why));
    }

    /// The append was stored; its answer's token is the next one.
    fn acked(&mut self, sent: Sent, started: Instant, took: Duration, next_token: String) {
        self.confirmed = next_token;
        let report = &mut self.report;
        report.latencies.push(took);
        report.last_send = Some(started);
        report.acked.push((sent, started));
        self.failures_in_row = 0;
    }

    /// The append failed for good (or its batch could not be built).
    fn failed(&mut self, range: &Range<u64>, why: (RowId, String)) {
        self.report.fail(range, why.clone());
        self.failures_in_row += 1;
        self.last_failure = Some(why);
    }

    /// Once nothing is in flight: reopens the channel when an append's fate is unknown or its
    /// token was refused.
    async fn settle(&mut self) {
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
                // Stored or not, the committed offset at the end tells.
                self.report
                    .unsettled
                    .extend(self.in_doubt.drain(..).map(|(s, _)| s.range));
                let why = (
                    outcome.row().unwrap_or(RowId::StaleContinuationToken),
                    format!("reopen: {}", outcome.finding),
                );
                // The channel failed, even when nothing was left to send but what is in doubt.
                self.report.failure.get_or_insert(why.clone());
                self.stop(&why);
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
        let (kept, again): (Vec<_>, Vec<_>) = self
            .report
            .acked
            .drain(..)
            .chain(self.in_doubt.drain(..))
            .partition(|(s, _)| stored(&s.range));
        self.report.acked = kept;
        let mut again: Vec<Range<u64>> = again.into_iter().map(|(s, _)| s.range).collect();
        again.extend(self.requeued.drain(..));
        again.sort_by_key(|r| r.start);
        self.requeued = again.into();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{GIVE_UP_AFTER, Run, Sender};
    use crate::load::{Compression, Layout, Load};
    use crate::secret::Secret;
    use crate::snowflake::rest::PipeRef;

    /// A batch that cannot be built counts toward the give-up like a refused append: a channel
    /// whose every batch compresses past the 4 MB cap stops after `GIVE_UP_AFTER` of them instead
    /// of building every one. No limit a user can set makes such a batch (`--event-size` and the
    /// batch size keep it under 2 MB raw), so the layout here is made by hand.
    #[tokio::test]
    async fn batches_that_cannot_be_built_count_toward_the_give_up() {
        let key = crate::emulator::default_key();
        let config =
            crate::emulator::EmulatorConfig::with_user_key(&key.public_key().to_pem().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let emu = crate::emulator::spawn(listener, config).await.unwrap();
        let settings = crate::demo::settings_for(&emu, key, 1).unwrap();
        // 32 events of 256 KiB of pseudo-random letters: 8 MiB raw, about 5 MiB compressed.
        let batch = 32;
        let run = Arc::new(Run {
            ctx: crate::context::Ctx::new(settings).unwrap(),
            base: String::new(),
            token: Secret::new(String::new()),
            load: Load {
                profile: None,
                events_per_sec: 100_000,
                duration: Duration::from_secs(1),
                event_size: 256 * 1024,
                min_channels: 1,
                compression: Compression::Zstd,
                ramp: None,
            },
            layout: Layout {
                channels: 1,
                max_batch_events: batch,
                tick: Duration::from_millis(1),
            },
            // Begun a second ago: every event is due, so each batch is full.
            start: Instant::now().checked_sub(Duration::from_secs(1)).unwrap(),
            cutoff: Duration::from_secs(60),
        });
        let channel = PipeRef::new("DB", "SCHEMA", "PIPE").channel("unbuildable");
        let total = 10 * batch as u64;
        let report = Sender::new(run, channel, String::new(), total).run().await;
        let tried = u64::from(GIVE_UP_AFTER) * batch as u64;
        assert_eq!(
            (report.sent, report.failed, report.requests),
            (tried, tried, 0)
        );
        assert!(
            report
                .failure
                .is_some_and(|(_, why)| why.contains("over the 4 MB cap"))
        );
    }
}
