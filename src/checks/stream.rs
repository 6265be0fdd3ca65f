//! `--full`: a real channel round trip on the ingest host with the scoped token —
//! `stream.open` (a uniquely named test channel), `stream.append` (N badge-shaped NDJSON rows,
//! following continuation tokens), `stream.commit` (status until the last offset is committed,
//! with no new row errors) and `stream.drop` (always: also after a failure, the deadline or
//! Ctrl-C, and for `stream.rate`'s channels too; the REST API has no close). Each phase is judged
//! against its latency budget.

pub(crate) mod commits;

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;

use crate::api::{CallError, Reply};
use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::answer::{self, Judged};
use crate::checks::auth::not_configured;
use crate::context::{Channel, Ctx, HostRole};
use crate::outcome::{Outcome, SkipReason, Status, Verdict};
use crate::snowflake::rest::{self as sf, ApiCall, OpenChannelResponse};
use commits::{POLL_EVERY, Poller, committed_offset};

// Beside tls.ingest, as auth.jwt is beside tls.account: the API connection's handshakes overlap
// the TLS check's. An open whose connection fails never left, so it leaves nothing to drop.
pub const OPEN: CheckSpec = CheckSpec::new(
    "stream.open",
    "Stream: open a test channel",
    &["auth.scoped_token", "dns.ingest"],
    |ctx| Box::pin(open(ctx)),
)
.early(&["tls.ingest"])
.full();
pub const APPEND: CheckSpec = CheckSpec::new(
    "stream.append",
    "Stream: append test rows",
    &["stream.open"],
    |ctx| Box::pin(append(ctx)),
)
.full();
pub const COMMIT: CheckSpec = CheckSpec::new(
    "stream.commit",
    "Stream: rows committed",
    &["stream.append"],
    |ctx| Box::pin(commit(ctx)),
)
.full();
// Not dependent on stream.open, nor on tls.ingest: an open cut off by Ctrl-C or the deadline, or
// one that got through while the TLS check did not (a lossy path), may still have created its
// channel. Last, so no test channel is dropped while in use.
pub const DROP: CheckSpec = CheckSpec::new(
    "stream.drop",
    "Stream: drop the test channels",
    &["auth.scoped_token", "dns.ingest"],
    |ctx| Box::pin(drop_channel(ctx)),
)
.after(&["tls.ingest", "stream.open", "stream.commit", "stream.rate"])
.always()
.when_cut(left_behind)
.full();

/// Rows per append request: far under the 4 MB cap, and more than one request for large `--rows`
/// so continuation tokens are really followed.
const ROWS_PER_REQUEST: usize = 500;

/// The ingest base URL and scoped token, or why the stream checks cannot run.
pub(crate) fn ingest(ctx: &Ctx) -> Result<(String, &crate::secret::Secret<String>), Outcome> {
    if ctx.settings.snowflake.is_none() {
        return Err(not_configured());
    }
    let skip = |why: &str| Outcome::skip(SkipReason::NotConfigured(why.into()));
    let endpoint = ctx
        .endpoint(HostRole::Ingest)
        .ok_or_else(|| skip("no ingest host"))?;
    let token = ctx
        .facts
        .scoped_token
        .get()
        .ok_or_else(|| skip("no scoped token"))?;
    Ok((endpoint.url(), token))
}

/// The pipe to stream into, or why there is none.
pub(crate) fn pipe(ctx: &Ctx) -> Result<sf::PipeRef, Outcome> {
    ctx.settings
        .snowflake
        .as_ref()
        .and_then(crate::settings::Snowflake::pipe_ref)
        .ok_or_else(|| {
            Outcome::skip(SkipReason::NotConfigured(
                "no database, schema and table (or pipe) configured".into(),
            ))
        })
}

/// The request every stream call starts from: scoped token, JSON accepted.
pub(crate) fn request(
    ctx: &Ctx,
    method: reqwest::Method,
    url: &str,
    token: &crate::secret::Secret<String>,
) -> reqwest::RequestBuilder {
    ctx.net
        .api
        .http()
        .request(method, url)
        .bearer_auth(token.expose())
        .header(sf::TOKEN_TYPE_HEADER, sf::TOKEN_TYPE_OAUTH)
        .header(ACCEPT, "application/json")
}

async fn open(ctx: Ctx) -> Outcome {
    let (base, token) = match ingest(&ctx) {
        Ok(x) => x,
        Err(skip) => return skip,
    };
    let pipe = match pipe(&ctx) {
        Ok(p) => p,
        Err(skip) => return skip,
    };
    let name = format!(
        "netcheck_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let channel = pipe.channel(&name);
    let (outcome, opened) = open_channel(&ctx, &base, token, &channel).await;
    if let Some(opened) = opened {
        let _ = ctx.facts.channel.set(Channel {
            channel,
            continuation: std::sync::Mutex::new(opened.next_continuation_token),
            last_offset: std::sync::OnceLock::new(),
            errors_at_open: opened.channel_status.rows_error_count,
        });
    }
    outcome
}

/// Opens a test channel, listed for `stream.drop` before the request leaves. The open's answer
/// when it succeeded (a 200 with channel status `SUCCESS`), and the outcome either way.
pub(crate) async fn open_channel(
    ctx: &Ctx,
    base: &str,
    token: &crate::secret::Secret<String>,
    channel: &sf::ChannelRef,
) -> (Outcome, Option<OpenChannelResponse>) {
    let url = format!("{base}{}", channel.channel_path());
    ctx.facts.test_channels.opening(channel);
    let result = ctx
        .net
        .api
        .call(ApiCall::Open, || {
            request(ctx, reqwest::Method::PUT, &url, token)
                .header(CONTENT_TYPE, "application/json")
                .body("{}")
        })
        .await;
    // An answer settles it; without one it stays listed (the server may have created it),
    // unless the request never left (the connection or its handshake failed).
    match &result {
        Ok(reply) => ctx.facts.test_channels.answered(channel, reply.ok()),
        Err(e) if e.unsent() => ctx.facts.test_channels.answered(channel, false),
        Err(_) => {}
    }
    let mut opened = None;
    let outcome = answer::judge(ApiCall::Open, &result, |reply, ev| -> Judged {
        let answer: OpenChannelResponse = parse(reply)?;
        let status = &answer.channel_status;
        let pipe = &channel.pipe;
        ev.add("channel", &channel.channel);
        ev.add(
            "pipe",
            format!("{}.{}.{}", pipe.database, pipe.schema, pipe.pipe),
        );
        ev.add("channel_status_code", &status.channel_status_code);
        if status.channel_status_code != sf::CHANNEL_STATUS_SUCCESS {
            return Err((
                RowId::ChannelStatus,
                format!(
                    "open answered 200 with channel_status_code {}",
                    status.channel_status_code
                ),
            ));
        }
        let finding = format!("opened {} on {}", channel.channel, pipe.pipe);
        opened = Some(answer);
        Ok(finding)
    });
    (outcome, opened)
}

async fn append(ctx: Ctx) -> Outcome {
    let (base, token) = match ingest(&ctx) {
        Ok(x) => x,
        Err(skip) => return skip,
    };
    let Some(ch) = ctx.facts.channel.get() else {
        return Outcome::skip(SkipReason::NotConfigured("no open channel".into()));
    };
    let url = format!("{base}{}", ch.channel.rows_path());
    let total = ctx.settings.rows;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut last: Option<Result<Reply, CallError>> = None;
    let mut elapsed = Duration::ZERO;
    let mut requests = 0;
    for (batch, rows) in (0..total)
        .collect::<Vec<_>>()
        .chunks(ROWS_PER_REQUEST)
        .enumerate()
    {
        let body: String = rows
            .iter()
            .map(|&seq| {
                serde_json::to_string(&crate::load::BadgeEvent::new(
                    seq,
                    &ch.channel.channel,
                    now.clone(),
                ))
                .unwrap_or_default()
                    + "\n"
            })
            .collect();
        let (first, end) = (rows[0], rows[rows.len() - 1]);
        let continuation = ch.continuation.lock().expect("continuation").clone();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("continuationToken", &continuation)
            .append_pair("startOffsetToken", &first.to_string())
            .append_pair("endOffsetToken", &end.to_string())
            .finish();
        let target = format!("{url}?{query}");
        let result = ctx
            .net
            .api
            .call(ApiCall::Append, || {
                request(&ctx, reqwest::Method::POST, &target, token)
                    .header(CONTENT_TYPE, "application/x-ndjson")
                    .body(body.clone())
            })
            .await;
        requests = batch + 1;
        let stop = !matches!(&result, Ok(r) if r.ok());
        if let Ok(r) = &result {
            elapsed += r.elapsed;
            if let Ok(next) = serde_json::from_str::<sf::AppendRowsResponse>(&r.body) {
                *ch.continuation.lock().expect("continuation") = next.next_continuation_token;
            }
        }
        last = Some(result);
        if stop {
            break;
        }
    }
    let result = last.unwrap_or(Err(CallError::local("nothing to append (--rows 0)")));
    let first_event = first_event_latency(&ctx);
    let outcome = answer::judge(ApiCall::Append, &result, |reply, ev| -> Judged {
        let appended: sf::AppendRowsResponse = parse(reply)?;
        if appended.status_code != 0 {
            return Err((
                RowId::ApiError,
                format!(
                    "append answered 200 with status_code {}: {:?}",
                    appended.status_code, appended.message
                ),
            ));
        }
        let _ = ch.last_offset.set((total - 1).to_string());
        ev.add("rows", total);
        ev.add("requests", requests);
        ev.add("append_ms_total", crate::units::ms(elapsed));
        ev.add("first_event_ms", crate::units::ms(first_event));
        Ok(format!(
            "{total} rows in {requests} request(s); first event in {:.0} ms",
            crate::units::ms(first_event)
        ))
    });
    let budget = answer::FIRST_EVENT_BUDGET.mul_f64(ctx.settings.budget_scale);
    if outcome.status == Status::Pass && first_event > budget {
        let finding = format!(
            "{}: over the {} ms first-event budget",
            outcome.finding,
            budget.as_millis()
        );
        return Outcome::warn(RowId::LatencyBudget, finding, outcome.evidence);
    }
    outcome
}

/// Discovery + token exchange + open + first append, as measured: the seed's "first event".
fn first_event_latency(ctx: &Ctx) -> Duration {
    let mut firsts = std::collections::HashMap::new();
    for x in ctx.net.api.exchanges() {
        if matches!(
            x.call,
            ApiCall::Hostname | ApiCall::Token | ApiCall::Open | ApiCall::Append
        ) {
            firsts.entry(x.call).or_insert(x.elapsed);
        }
    }
    firsts.values().sum()
}

#[derive(Serialize)]
struct CommitEvidence {
    channel: String,
    awaited_offset: String,
    last_committed_offset_token: Option<String>,
    rows_error_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error_message: Option<String>,
    polls: u32,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    commit_lag: Duration,
}

async fn commit(ctx: Ctx) -> Outcome {
    let (base, token) = match ingest(&ctx) {
        Ok(x) => x,
        Err(skip) => return skip,
    };
    let (Some(ch), Some(awaited)) = (
        ctx.facts.channel.get(),
        ctx.facts.channel.get().and_then(|c| c.last_offset.get()),
    ) else {
        return Outcome::skip(SkipReason::NotConfigured("nothing was appended".into()));
    };
    let mut poller = Poller::new(
        &ctx,
        &base,
        token,
        &ch.channel.pipe,
        vec![ch.channel.channel.clone()],
    );
    let start = Instant::now();
    // Ingestion typically commits within seconds; wait as long as the step timeout allows.
    let wait = ctx.settings.timeout;
    loop {
        let poll = poller.poll().await;
        if !poll.answered() {
            return poll.failure();
        }
        let Some(status) = poll.statuses.and_then(|s| s.into_iter().next().flatten()) else {
            return Outcome::fail(
                RowId::ChannelStatus,
                format!(
                    "the channel {} is missing from the status answer",
                    ch.channel.channel
                ),
                (),
            );
        };
        let polls = poller.polls();
        let evidence = CommitEvidence {
            channel: ch.channel.channel.clone(),
            awaited_offset: awaited.clone(),
            last_committed_offset_token: status.last_committed_offset_token.clone(),
            rows_error_count: status.rows_error_count,
            last_error_message: status.last_error_message.clone(),
            polls,
            commit_lag: start.elapsed(),
        };
        if status.channel_status_code != sf::CHANNEL_STATUS_SUCCESS {
            return Outcome::fail(
                RowId::ChannelStatus,
                format!("channel status {}", status.channel_status_code),
                evidence,
            );
        }
        if status.rows_error_count > ch.errors_at_open {
            let n = status.rows_error_count - ch.errors_at_open;
            return Outcome::fail(
                RowId::RowsErrored,
                format!(
                    "{n} row(s) errored: {}",
                    status.last_error_message.unwrap_or_default()
                ),
                evidence,
            );
        }
        if committed_offset(&status).is_some_and(|c| awaited.parse::<u64>().is_ok_and(|a| c >= a)) {
            return Outcome::pass(
                format!(
                    "offset {awaited} committed after {:.0} ms ({polls} status {})",
                    crate::units::ms(start.elapsed()),
                    if polls == 1 { "check" } else { "checks" }
                ),
                evidence,
            );
        }
        if start.elapsed() + POLL_EVERY > wait {
            let last = status.last_committed_offset_token.map_or_else(
                || "nothing committed yet".to_owned(),
                |t| format!("last committed offset {t}"),
            );
            let finding = format!(
                "offset {awaited} not committed within {} s ({last})",
                wait.as_secs_f64()
            );
            return Outcome::fail(RowId::CommitTimeout, finding, evidence);
        }
    }
}

/// Drops every test channel the run may have created: the round trip's, `stream.rate`'s, and one
/// whose open was cut off. The round trip's drop is judged against the phase's budget; any other
/// failure fails the check too, since it leaves a channel behind.
async fn drop_channel(ctx: Ctx) -> Outcome {
    let (base, token) = match ingest(&ctx) {
        Ok(x) => x,
        Err(skip) => return skip,
    };
    let channels = ctx.facts.test_channels.list();
    if channels.is_empty() {
        return Outcome::skip(SkipReason::NotConfigured("no channel was opened".into()));
    }
    let results = futures::future::join_all(channels.iter().map(|c| {
        let url = format!("{base}{}", c.channel.channel_path());
        let ctx = &ctx;
        async move {
            let result = ctx
                .net
                .api
                .call(ApiCall::Drop, || {
                    request(ctx, reqwest::Method::DELETE, &url, token)
                })
                .await;
            // Gone once dropped, or when an open that never answered created nothing (404):
            // whatever stays listed is left behind if this is cut short.
            if matches!(&result, Ok(r) if r.ok() || (!c.opened && r.status == 404)) {
                ctx.facts.test_channels.gone(&c.channel);
            }
            result
        }
    }))
    .await;
    let mut dropped = Vec::new();
    let mut not_created = Vec::new();
    let mut first = None;
    for (c, result) in channels.iter().zip(&results) {
        let name = &c.channel.channel;
        // An open that never answered may not have created the channel: nothing to drop.
        if !c.opened && matches!(result, Ok(r) if r.status == 404) {
            not_created.push(name.clone());
            continue;
        }
        let outcome = answer::judge(ApiCall::Drop, result, |_, ev| {
            ev.add("channel", name);
            Ok(format!("dropped {name}"))
        });
        if outcome.verdict() == Verdict::Fail {
            let left = by_hand(&ctx);
            let finding = format!(
                "{}; left behind, drop by hand: {}",
                outcome.finding,
                left.join("; ")
            );
            let mut outcome = outcome.with_finding(finding);
            if let Some(ev) = outcome.evidence.as_object_mut() {
                ev.insert("left_behind".into(), left.into());
            }
            return outcome;
        }
        if first.is_none() {
            first = Some(outcome);
        } else {
            dropped.push(name.clone());
        }
    }
    let Some(mut outcome) = first else {
        return Outcome::pass(
            format!(
                "{} was never created (its open was cut off)",
                not_created.join(", ")
            ),
            serde_json::json!({ "not_created": not_created }),
        );
    };
    if let Some(ev) = outcome.evidence.as_object_mut() {
        if !dropped.is_empty() {
            outcome.finding = format!("{} and {} more", outcome.finding, dropped.len());
            ev.insert("also_dropped".into(), dropped.into());
        }
        if !not_created.is_empty() {
            ev.insert("not_created".into(), not_created.into());
        }
    }
    outcome
}

/// `stream.drop` cut short (a second signal, or the deadline): the channels it had not dropped
/// yet, each with the request that drops it by hand.
fn left_behind(ctx: &Ctx) -> Outcome {
    let left = by_hand(ctx);
    if left.is_empty() {
        return Outcome::pass(
            "every test channel was dropped before the cleanup was cut short",
            serde_json::json!({}),
        );
    }
    Outcome::fail(
        RowId::ChannelLeftBehind,
        format!(
            "cleanup cut short with {} test channel(s) left; drop by hand: {}",
            left.len(),
            left.join("; ")
        ),
        serde_json::json!({ "left_behind": left }),
    )
}

/// The request that drops each still-listed channel (the token is never shown).
fn by_hand(ctx: &Ctx) -> Vec<String> {
    let base = ctx
        .endpoint(HostRole::Ingest)
        .map_or_else(|| "https://INGEST_HOST".to_owned(), |e| e.url());
    ctx.facts
        .test_channels
        .list()
        .iter()
        .map(|c| format!("DELETE {base}{}", c.channel.channel_path()))
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, (RowId, String)> {
    serde_json::from_str(&reply.body)
        .map_err(|e| (RowId::ApiError, format!("unexpected answer ({e})")))
}
