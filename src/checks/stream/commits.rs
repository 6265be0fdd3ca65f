//! Commit progress, polled as the official clients do: one bulk status request for a set of
//! channels every [`POLL_EVERY`]. `stream.commit` waits on its one channel until its last offset is
//! committed; `stream.rate` samples its channels while they send, to time each batch's commit.

use std::time::{Duration, Instant};

use tokio::time::{Interval, MissedTickBehavior};

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

/// How often commit progress is polled (as the official clients do).
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(250);

/// Asks the status of a fixed set of channels on one pipe, at most once per [`POLL_EVERY`].
pub(crate) struct Poller<'a> {
    ctx: &'a Ctx,
    token: &'a Secret<String>,
    url: String,
    body: BulkChannelStatusRequest,
    /// The first tick is at once; a slow answer delays the next poll rather than bunching them.
    ticker: Interval,
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
        let mut ticker = tokio::time::interval(POLL_EVERY);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            ctx,
            token,
            url: format!("{base}{}", pipe.bulk_status_path()),
            body: BulkChannelStatusRequest {
                channel_names: channels,
            },
            ticker,
            polls: 0,
        }
    }

    /// Polls made so far.
    pub(crate) fn polls(&self) -> u32 {
        self.polls
    }

    /// Waits for the next poll's turn and asks.
    pub(crate) async fn poll(&mut self) -> PollAnswer {
        self.ticker.tick().await;
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
