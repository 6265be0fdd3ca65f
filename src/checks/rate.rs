//! `stream.rate` (`--full` with `--rate` or `--profile`): holds a sustained event rate through
//! its own test channels after the round trip passed, and reports what the path really carries —
//! events/s and MB/s achieved against asked, append latency percentiles, commit lag, 429s and
//! retries — with every event accounted for (sent = committed + errored, or the check fails).
//! With `--rate max` it ramps instead, and reports the most the path held ([`ramp`]).
//!
//! Each channel sends at most [`load::REQUESTS_PER_SEC_PER_CHANNEL`] NDJSON requests a second,
//! batching whatever events are due (compressed, under the 4 MB wire cap); a rate one channel
//! cannot carry is spread over more ([`Load::layout`]). Appends on a channel must chain — each
//! carries the continuation token the previous answer returned — so a channel keeps one in
//! flight: a server handles concurrent requests in any order, so a second one sent with a guessed
//! token could be refused and cost a resend. A refused token (another client reopened the
//! channel), or an append that got no answer (stored or not?), is settled by reopening the channel:
//! the reopen discards what was not committed and reports what was, and the rest is sent again —
//! nothing lost, nothing doubled. `stream.drop` drops the channels after this check, however it
//! ended (a failure, the deadline, Ctrl-C).

mod commits;
mod judge;
mod ramp;
mod sender;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::check::CheckSpec;
use crate::checks::stream::ingest;
use crate::context::Ctx;
use crate::load::{self, Layout, Load};
use crate::outcome::{Outcome, SkipReason};
use crate::secret::Secret;
use crate::snowflake::rest::{ApiCall, ChannelRef, OpenChannelResponse, PipeRef};
use commits::{Polled, poll_commits};
use judge::judge;
use sender::{ChannelReport, send_all};

/// A run held its asked rate when it achieved at least this share of it: below it, a fixed-rate
/// run warns `latency-budget` and a `--rate max` step counts as not held (limited by the
/// network). One share for both, so the capacity the probe reports is a rate a fixed-rate run at
/// it would also call held.
const HELD: f64 = 0.9;

/// The sustained-rate stream test.
pub const RATE: CheckSpec = CheckSpec::new(
    "stream.rate",
    "Stream: sustained rate",
    &["stream.commit"],
    |ctx| Box::pin(rate(ctx)),
)
.full();

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
        .filter(|x| x.call == ApiCall::Append)
        .map(|x| x.elapsed)
        .max()
        .unwrap_or_default();
    let target = Target {
        base,
        token,
        pipe,
        append_latency,
    };
    let run_id = format!(
        "netcheck_rate_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    if let Some(ramp) = load.ramp {
        return ramp::probe(&ctx, &target, &load, ramp, &run_id).await;
    }
    let cutoff = load.duration + ctx.settings.timeout;
    match step(&ctx, &target, load, format!("{run_id}_"), cutoff).await {
        Ok(step) => judge(&step),
        Err(failed) => failed,
    }
}

/// Where the rate test streams, as the round trip found it.
struct Target {
    base: String,
    token: Secret<String>,
    pipe: PipeRef,
    /// The round trip's slowest append: how many channels a rate needs.
    append_latency: Duration,
}

/// One run at one rate through its own channels (named `id` + their index), as measured.
struct Step {
    run: Arc<Run>,
    id: String,
    reports: Vec<ChannelReport>,
    polled: Polled,
    /// Process CPU time while it streamed.
    cpu: Option<Duration>,
}

/// Opens channels for `load`, streams it through them until every event was answered (or
/// `cutoff` after the start), and waits for the commits; the failure to open is the outcome.
async fn step(
    ctx: &Ctx,
    target: &Target,
    load: Load,
    id: String,
    cutoff: Duration,
) -> Result<Step, Outcome> {
    let layout = load.layout(target.append_latency);
    let channels: Vec<ChannelRef> = (0..layout.channels)
        .map(|i| target.pipe.channel(&format!("{id}{i}")))
        .collect();
    // Their drop is stream.drop's, which runs after this check however it ends.
    let opens = futures::future::join_all(
        channels
            .iter()
            .map(|c| open(ctx, &target.base, &target.token, c)),
    )
    .await;
    let tokens = opens
        .into_iter()
        .map(|o| o.map(|r| r.next_continuation_token))
        .collect::<Result<Vec<_>, _>>()?;

    let cpu_before = load::process_cpu_time();
    let run = Arc::new(Run {
        ctx: ctx.clone(),
        base: target.base.clone(),
        token: target.token.clone(),
        layout,
        start: Instant::now(),
        cutoff,
        load,
    });
    let (targets_tx, targets_rx) = watch::channel(None);
    let names = channels.iter().map(|c| c.channel.clone()).collect();
    let commits = poll_commits(&run, &target.pipe, names, targets_rx);
    let senders = async {
        let reports = send_all(&run, channels, tokens).await;
        let _ = targets_tx.send(Some(
            reports.iter().map(ChannelReport::last_acked).collect(),
        ));
        reports
    };
    let (reports, polled) = tokio::join!(senders, commits);
    let cpu = cpu_before
        .zip(load::process_cpu_time())
        .map(|(a, b)| b.saturating_sub(a));
    Ok(Step {
        run,
        id,
        reports,
        polled,
        cpu,
    })
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
    /// After this, a channel that fell behind stops sending its backlog.
    cutoff: Duration,
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
