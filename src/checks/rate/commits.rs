//! Commit progress while the rate test runs: every channel's committed offset, sampled until
//! what the senders had acknowledged is committed (or the step timeout after they finished), so
//! each batch's commit lag can be read off the samples. When the senders finish, the poll
//! schedule starts over, so the last commit is seen as soon as it happens.

use std::time::Instant;

use tokio::sync::watch;

use super::Run;
use crate::checks::stream::commits::{Poller, committed_offset};
use crate::outcome::Outcome;
use crate::snowflake::rest::{ChannelStatus, PipeRef};

/// Commit progress as polled: when each channel's committed offset was seen, and the final status.
pub(super) struct Polled {
    /// (when, last committed offset per channel).
    pub(super) samples: Vec<(Instant, Vec<Option<u64>>)>,
    pub(super) last: Vec<Option<ChannelStatus>>,
    pub(super) polls: u32,
    /// Every channel committed what it was acknowledged.
    pub(super) complete: bool,
    /// The last poll's failure, when it failed.
    pub(super) failure: Option<Outcome>,
}

/// Polls the channels' status until the senders are done (`targets`: the last acknowledged offset
/// per channel) and those offsets are committed, or the step timeout after that.
pub(super) async fn poll_commits(
    run: &Run,
    pipe: &PipeRef,
    names: Vec<String>,
    mut targets: watch::Receiver<Option<Vec<Option<u64>>>>,
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
        if targets.borrow().is_none() {
            // The senders' last answer is worth seeing committed at once.
            tokio::select! {
                () = channels.wait() => {}
                _ = targets.changed() => channels.hurry(),
            }
        } else {
            channels.wait().await;
        }
        // Only a poll asked once the senders were done can end the wait: one asked before may
        // predate a batch the server stored while its answer was lost (in doubt), which only the
        // final committed offset settles.
        let asked_when_done = targets.borrow().is_some();
        let poll = channels.ask().await;
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
        let Some(wanted) = targets.borrow().clone().filter(|_| asked_when_done) else {
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
