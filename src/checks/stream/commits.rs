//! Commit progress: one bulk status request for a set of channels, on a schedule that starts at
//! once and backs off (see [`Schedule`]). `stream.commit` waits on its one channel until its last
//! offset is committed; `stream.rate` samples its channels while they send, to time each batch's
//! commit, and hurries the schedule when the last append was answered.

use std::time::{Duration, Instant};

use crate::api::{CallError, Reply};
use crate::catalog::RowId;
use crate::checks::answer;
use crate::checks::stream::request;
use crate::context::Ctx;
use crate::outcome::Outcome;
use crate::secret::Secret;
use crate::snowflake::rest::{
    ApiCall, BulkChannelStatusRequest, BulkChannelStatusResponse, ChannelStatus, PipeRef,
};

/// The slowest the status is polled: the official clients' steady interval.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(250);
/// The first wait after the poll made right away.
const FIRST_WAIT: Duration = Duration::from_millis(10);
/// Each wait is this much longer than the one before, up to [`POLL_EVERY`].
const BACKOFF: f64 = 1.5;

/// When to poll: at once (the append was just answered, and a fast service may have committed
/// already), then after 10 ms, and each wait 1.5 times the last up to 250 ms — polls at about
/// 0, 10, 25, 48, 81, 132, 208, 322, 493, 743 ms, then every 250 ms. A commit is seen at most half again after
/// it happens while it takes under 250 ms (the first commit at the floor), and a slow one costs
/// about as many requests as the official clients' fixed 250 ms: 11 in the first second, 4 a
/// second after that. Waits count from the answer, so a slow answer never bunches polls.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    next_wait: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            next_wait: Duration::ZERO,
        }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    /// The wait before the next poll.
    fn next(&mut self) -> Option<Duration> {
        let wait = self.next_wait;
        self.next_wait = if wait.is_zero() {
            FIRST_WAIT
        } else {
            wait.mul_f64(BACKOFF).min(POLL_EVERY)
        };
        Some(wait)
    }
}

/// Asks the status of a fixed set of channels on one pipe, on a [`Schedule`].
pub(crate) struct Poller<'a> {
    ctx: &'a Ctx,
    token: &'a Secret<String>,
    url: String,
    body: BulkChannelStatusRequest,
    schedule: Schedule,
    polls: u32,
}

impl<'a> Poller<'a> {
    /// A poller for `channels` of `pipe` on the ingest host at `base`.
    pub(crate) fn new(
        ctx: &'a Ctx,
        base: &str,
        token: &'a Secret<String>,
        pipe: &PipeRef,
        channels: Vec<String>,
    ) -> Self {
        Self {
            ctx,
            token,
            url: format!("{base}{}", pipe.bulk_status_path()),
            body: BulkChannelStatusRequest {
                channel_names: channels,
            },
            schedule: Schedule::default(),
            polls: 0,
        }
    }

    /// Polls made so far.
    pub(crate) fn polls(&self) -> u32 {
        self.polls
    }

    /// Starts the schedule over: the next poll is at once (something worth seeing just happened).
    pub(crate) fn hurry(&mut self) {
        self.schedule = Schedule::default();
    }

    /// Waits for the next poll's turn.
    pub(crate) async fn wait(&mut self) {
        let wait = self.schedule.next().unwrap_or(POLL_EVERY);
        tokio::time::sleep(wait).await;
    }

    /// Waits for the next poll's turn and asks.
    pub(crate) async fn poll(&mut self) -> PollAnswer {
        self.wait().await;
        self.ask().await
    }

    /// Asks now.
    pub(crate) async fn ask(&mut self) -> PollAnswer {
        let result = self
            .ctx
            .net
            .api
            .call(ApiCall::Status, || {
                request(self.ctx, reqwest::Method::POST, &self.url, self.token).json(&self.body)
            })
            .await;
        self.polls += 1;
        let statuses = match &result {
            Ok(r) if r.ok() => serde_json::from_str::<BulkChannelStatusResponse>(&r.body)
                .ok()
                .map(|mut answer| {
                    self.body
                        .channel_names
                        .iter()
                        .map(|n| answer.channel_statuses.remove(n))
                        .collect()
                }),
            _ => None,
        };
        PollAnswer {
            at: Instant::now(),
            result,
            statuses,
        }
    }
}

/// One poll's answer.
pub(crate) struct PollAnswer {
    /// When it was answered.
    pub(crate) at: Instant,
    pub(crate) result: Result<Reply, CallError>,
    /// Each channel's status, in the order asked (`None`: missing from the answer); `None` when
    /// the answer was not a status list.
    pub(crate) statuses: Option<Vec<Option<ChannelStatus>>>,
}

impl PollAnswer {
    /// The server answered with a success status (whatever the body).
    pub(crate) fn answered(&self) -> bool {
        matches!(&self.result, Ok(r) if r.ok())
    }

    /// The failure, judged, when the poll got no status list.
    pub(crate) fn failure(&self) -> Outcome {
        answer::judge(ApiCall::Status, &self.result, |_, _| {
            Err((RowId::ApiError, "unexpected status answer".into()))
        })
    }
}

/// The offset a channel reports committed, as a number: netcheck's offset tokens are event
/// sequence numbers.
pub(crate) fn committed_offset(status: &ChannelStatus) -> Option<u64> {
    status.last_committed_offset_token.as_deref()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_starts_at_once_and_backs_off_to_the_steady_interval() {
        let waits: Vec<u128> = Schedule::default()
            .take(10)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(waits, [0, 10, 15, 22, 33, 50, 75, 113, 170, 250]);
        let polls_at: Vec<u128> = waits
            .iter()
            .scan(0, |at, w| {
                *at += w;
                Some(*at)
            })
            .collect();
        assert_eq!(polls_at[..8], [0, 10, 25, 47, 80, 130, 205, 318]);
        assert!(
            Schedule::default()
                .skip(10)
                .take(100)
                .all(|w| w == POLL_EVERY)
        );
        let first_second =
            polls_at.iter().filter(|&&t| t <= 1000).count() + (1000 - polls_at[9] as usize) / 250;
        assert_eq!(
            first_second, 11,
            "about the fixed schedule's 4 a second after"
        );
    }
}
