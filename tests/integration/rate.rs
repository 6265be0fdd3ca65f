//! `stream.rate` against the embedded emulator, in-process: the rate is held and every event is
//! accounted for (and read back from the emulator, in order per channel); under added latency a
//! channel batches what fell due, one append at a time, and never resends; a high asked rate
//! costs no resend either; a throttled channel fails `throttled` with sent = committed + errored;
//! its channels are dropped. `--rate max` stops its ramp at a throttling server, at the append
//! latency budget, at its CPU budget and at row errors, and drops every channel without losing a
//! row.
//! Across processes, `netcheck run --full --profile …` against `netcheck emulate` reports it in
//! JSON, and a rate without `--full` is a usage error.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::emulate::Emulate;
use crate::support::run::{check, netcheck};
use netcheck::emulator::{self, Emulator, Fault, LoggedRequest, defaults};
use netcheck::load::{Profile, RateArgs};
use netcheck::outcome::{Outcome, Verdict};
use netcheck::snowflake::rest::{ApiCall, default_pipe};

async fn emulator(faults: Vec<Fault>) -> Emulator {
    crate::support::emulate::spawn_emulator(|c| c.faults = faults).await
}

/// A `--full` run with `rate`; returns the `stream.rate` outcome after checking the round trip
/// before it passed.
async fn run_rate(emu: &Emulator, rate: RateArgs) -> Outcome {
    run_timed(emu, rate).await.0
}

/// [`run_rate`], with how long `stream.rate` took.
async fn run_timed(emu: &Emulator, rate: RateArgs) -> (Outcome, Duration) {
    let mut settings = netcheck::demo::settings_for(emu, emulator::default_key(), 10).unwrap();
    settings.rate = rate.load().unwrap();
    let result = crate::support::emulate::run_all(settings).await;
    let of = |id: &str| {
        result
            .results
            .iter()
            .find(|r| r.spec.id == id)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(
        of("stream.commit").verdict(),
        Verdict::Pass,
        "{:?}",
        of("stream.commit").finding
    );
    let took = result
        .results
        .iter()
        .find(|r| r.spec.id == "stream.rate")
        .unwrap()
        .duration;
    (of("stream.rate"), took)
}

/// The rate test's committed rows, by channel: their `seq` in commit order.
fn rate_rows(emu: &Emulator) -> BTreeMap<String, Vec<u64>> {
    let mut by_channel: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for row in emu.rows(
        defaults::DATABASE,
        defaults::SCHEMA,
        &default_pipe(defaults::TABLE),
    ) {
        let channel = row["netcheck_channel"].as_str().unwrap();
        if channel.starts_with("netcheck_rate_") {
            by_channel
                .entry(channel.to_owned())
                .or_default()
                .push(row["seq"].as_u64().unwrap());
        }
    }
    by_channel
}

#[track_caller]
fn count(outcome: &Outcome, field: &str) -> u64 {
    outcome.evidence[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {:#}", outcome.evidence))
}

/// Every channel of the rate test was dropped at the end.
#[track_caller]
fn channels_dropped(emu: &Emulator, channels: usize) {
    let drops = emu
        .request_log()
        .iter()
        .filter(|r| {
            r.endpoint == ApiCall::Drop && r.path.contains("netcheck_rate_") && r.status == 200
        })
        .count();
    assert_eq!(drops, channels);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_profile_holds_its_rate_and_every_event_is_committed_in_order() {
    let emu = emulator(Vec::new()).await;
    let outcome = run_rate(
        &emu,
        RateArgs {
            profile: Some(Profile::Demo),
            duration: 2.0,
            channels: Some(2),
            ..RateArgs::default()
        },
    )
    .await;
    assert_eq!(
        outcome.verdict(),
        Verdict::Pass,
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    let sent = count(&outcome, "sent");
    assert_eq!(sent, 20, "10 events/s for 2 s");
    assert_eq!(
        (
            count(&outcome, "committed"),
            count(&outcome, "errored"),
            count(&outcome, "lost")
        ),
        (sent, 0, 0)
    );
    let rows = rate_rows(&emu);
    assert_eq!(rows.len(), 2, "two channels: {rows:?}");
    for seqs in rows.values() {
        assert_eq!(
            *seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "in order, nothing lost or doubled"
        );
    }
    assert_eq!(rows.values().map(Vec::len).sum::<usize>() as u64, sent);
    // At most 10 requests/s per channel: over 2 s, at most 20 appends on each.
    for channel in rows.keys() {
        let appends = emu
            .request_log()
            .iter()
            .filter(|r| r.endpoint == ApiCall::Append && r.path.contains(channel.as_str()))
            .count();
        assert!(
            (1..=20).contains(&appends),
            "{appends} appends on {channel}"
        );
    }
    channels_dropped(&emu, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_latency_a_channel_batches_one_append_at_a_time_and_never_resends() {
    // 300 ms per append and a request every 125 ms: each append carries what fell due meanwhile.
    let emu = emulator(vec!["latency=300ms@append".parse().unwrap()]).await;
    let outcome = run_rate(
        &emu,
        RateArgs {
            rate: Some(netcheck::load::Rate::Events(400)),
            duration: 3.0,
            channels: Some(1),
            ..RateArgs::default()
        },
    )
    .await;
    assert_eq!(
        outcome.verdict(),
        Verdict::Pass,
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    let sent = count(&outcome, "sent");
    assert_eq!(count(&outcome, "committed"), sent);
    assert_eq!(
        (
            count(&outcome, "resent_requests"),
            count(&outcome, "reopens")
        ),
        (0, 0),
        "{:#}",
        outcome.evidence
    );
    // No append was refused: every one the emulator saw on the channel was stored.
    let refused = emu
        .request_log()
        .iter()
        .filter(|r| {
            r.endpoint == ApiCall::Append && r.path.contains("netcheck_rate_") && r.status != 200
        })
        .count();
    assert_eq!(refused, 0);
    let rows = rate_rows(&emu);
    let seqs = rows.values().next().unwrap();
    assert_eq!(
        *seqs,
        (0..sent).collect::<Vec<_>>(),
        "the chain held: in order, nothing lost or doubled"
    );
    channels_dropped(&emu, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_asked_rate_costs_no_resend() {
    let emu = emulator(Vec::new()).await;
    let outcome = run_rate(
        &emu,
        RateArgs {
            rate: Some(netcheck::load::Rate::Events(50_000)),
            duration: 2.0,
            ..RateArgs::default()
        },
    )
    .await;
    // Whether a debug build on busy cores holds 50k/s is not the point: no append is refused.
    assert_eq!(
        (
            count(&outcome, "resent_requests"),
            count(&outcome, "reopens"),
            count(&outcome, "lost")
        ),
        (0, 0, 0),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    let refused = emu
        .request_log()
        .iter()
        .filter(|r| {
            r.endpoint == ApiCall::Append && r.path.contains("netcheck_rate_") && r.status != 200
        })
        .count();
    assert_eq!(refused, 0);
    every_row_once_in_order(&emu, count(&outcome, "committed"));
}

/// Every committed row of the rate test is in the table once, in order per channel.
#[track_caller]
fn every_row_once_in_order(emu: &Emulator, committed: u64) {
    let rows = rate_rows(emu);
    for (channel, seqs) in &rows {
        assert_eq!(
            *seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "{channel}: in order, nothing lost or doubled"
        );
    }
    assert_eq!(rows.values().map(Vec::len).sum::<usize>() as u64, committed);
}

/// The outcome's verdict and catalog row are these (the finding and evidence shown if not).
#[track_caller]
fn assert_diagnosis(outcome: &Outcome, verdict: Verdict, row: Option<&str>) {
    assert_eq!(
        (
            outcome.verdict(),
            outcome.row().map(netcheck::catalog::RowId::as_str)
        ),
        (verdict, row),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
}

/// `--rate max` with `--duration` and `--max-cpu` (generous unless a test is about it: the
/// emulator shares this process's CPU).
fn max_rate(duration: f64, max_cpu: f64) -> RateArgs {
    RateArgs {
        rate: Some(netcheck::load::Rate::Max),
        duration,
        max_cpu: Some(max_cpu),
        ..RateArgs::default()
    }
}

/// The probe's verdict, catalog row and limit.
#[track_caller]
fn probe_result(outcome: &Outcome) -> (Verdict, Option<&'static str>, Option<&str>) {
    (
        outcome.verdict(),
        outcome.row().map(netcheck::catalog::RowId::as_str),
        outcome.evidence["limited_by"].as_str(),
    )
}

/// Every channel the probe opened was dropped, and sent = committed + errored with no resend.
#[track_caller]
fn probe_cleaned_up(emu: &Emulator, outcome: &Outcome) {
    let opened: std::collections::BTreeSet<String> = emu
        .request_log()
        .iter()
        .filter(|r| r.endpoint == ApiCall::Open && r.path.contains("netcheck_rate_"))
        .map(|r| r.path.clone())
        .collect();
    assert!(!opened.is_empty());
    channels_dropped(emu, opened.len());
    assert_eq!(
        count(outcome, "sent"),
        count(outcome, "committed") + count(outcome, "errored"),
        "{:#}",
        outcome.evidence
    );
    assert_eq!(count(outcome, "lost"), 0);
    assert_eq!(count(outcome, "resent_requests"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_max_ramps_until_the_server_throttles() {
    // A channel takes 6,000 rows a second (a second holds 9 of a channel's 8-a-second appends
    // at most: 5,333/s hold); the ramp starts at 10,000, halves, then bisects.
    let emu = emulator(vec!["throttle-above=6000@append".parse().unwrap()]).await;
    let outcome = run_rate(&emu, max_rate(12.0, 1000.0)).await;
    assert_eq!(
        probe_result(&outcome),
        (Verdict::Warn, Some("throttled"), Some("server_throttling")),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    let max = outcome.evidence["max_events_per_s"].as_f64().unwrap();
    assert!((2000.0..=6000.0).contains(&max), "{:#}", outcome.evidence);
    let steps = outcome.evidence["steps"].as_array().unwrap();
    assert!(steps.len() >= 3, "looked down, then bisected: {steps:#?}");
    let headroom = &outcome.evidence["headroom"];
    assert_eq!(headroom.as_array().unwrap().len(), 4, "{headroom:#}");
    assert_eq!(headroom[3]["profile"], "large");
    assert!(headroom[3]["headroom"].as_f64().unwrap() < 1.0);
    assert!(
        outcome.finding.contains("limited by server throttling"),
        "{}",
        outcome.finding
    );
    probe_cleaned_up(&emu, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_max_stops_at_the_append_latency_budget_within_its_duration() {
    // Every append takes 700 ms, over its 500 ms budget at any rate.
    let emu = emulator(vec!["latency=700ms@append".parse().unwrap()]).await;
    let (outcome, took) = run_timed(&emu, max_rate(4.0, 1000.0)).await;
    assert_eq!(
        probe_result(&outcome),
        (
            Verdict::Warn,
            Some("latency-budget"),
            Some("latency_budget")
        ),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    assert!(outcome.evidence["max_events_per_s"].is_null());
    // The last step may start just inside --duration; a step's sending is cut off after twice its
    // interval, and its commits are waited for.
    assert!(took < Duration::from_secs(12), "{took:?}");
    probe_cleaned_up(&emu, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_max_stops_when_the_client_uses_its_cpu_budget() {
    // A thousandth of a core: the first step already uses more.
    let emu = emulator(Vec::new()).await;
    let outcome = run_rate(&emu, max_rate(3.0, 0.001)).await;
    assert_eq!(
        probe_result(&outcome),
        (Verdict::Warn, Some("client-cpu"), Some("client_cpu")),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    probe_cleaned_up(&emu, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_max_fails_when_rows_error() {
    let emu = emulator(Vec::new()).await;
    // Every row fails to load once the probe has opened its first channel (the round trip is done).
    let watcher = once_the_rate_test_opens(&emu, &["row-errors@append"]);
    let (outcome, ()) = tokio::join!(run_rate(&emu, max_rate(4.0, 1000.0)), watcher);
    assert_eq!(
        probe_result(&outcome),
        (Verdict::Fail, Some("rows-errored"), Some("row_errors")),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    assert!(count(&outcome, "errored") > 0, "{:#}", outcome.evidence);
    probe_cleaned_up(&emu, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_max_drops_every_channel_and_loses_no_row() {
    let emu = emulator(Vec::new()).await;
    let outcome = run_rate(&emu, max_rate(4.0, 1000.0)).await;
    // Whatever limited it on busy cores, the figures are consistent and nothing is left behind.
    assert!(
        matches!(outcome.verdict(), Verdict::Pass | Verdict::Warn),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    let max = outcome.evidence["max_events_per_s"].as_f64();
    assert!(max.is_some_and(|m| m >= 950.0), "{:#}", outcome.evidence);
    // Events of 200 B are the badge fields alone, about 220 B.
    let mb = outcome.evidence["max_mb_per_s"].as_f64().unwrap();
    assert!(mb > 0.0 && mb <= max.unwrap() * 300.0 / 1e6, "{mb} MB/s");
    probe_cleaned_up(&emu, &outcome);
    every_row_once_in_order(&emu, count(&outcome, "committed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_appends_fail_throttled_and_every_event_is_still_accounted_for() {
    let emu = emulator(Vec::new()).await;
    // Throttle appends once the rate test has opened its channel (the round trip is done then).
    let watcher = once_the_rate_test_opens(&emu, &["throttle@append"]);
    let (outcome, ()) = tokio::join!(
        run_rate(
            &emu,
            RateArgs {
                rate: Some(netcheck::load::Rate::Events(50)),
                duration: 2.0,
                ..RateArgs::default()
            }
        ),
        watcher
    );
    assert_eq!(
        (
            outcome.verdict(),
            outcome.row().map(netcheck::catalog::RowId::as_str)
        ),
        (Verdict::Fail, Some("throttled")),
        "{}",
        outcome.finding
    );
    assert!(
        count(&outcome, "throttled_429") > 0 && count(&outcome, "retries") > 0,
        "{:#}",
        outcome.evidence
    );
    let (sent, committed, errored) = (
        count(&outcome, "sent"),
        count(&outcome, "committed"),
        count(&outcome, "errored"),
    );
    assert!(errored > 0);
    assert_eq!(sent, committed + errored, "{:#}", outcome.evidence);
    channels_dropped(&emu, 1);
}

#[test]
fn across_processes_the_profile_is_reported_in_json() {
    let emu = Emulate::start(&[]);
    let mut run = netcheck(&[
        "run",
        "--connection",
        "emulator",
        "--full",
        "--profile",
        "small",
        "--duration",
        "1",
        "--format",
        "json",
    ]);
    for (k, v) in emu.env() {
        run = run.env(&k, &v);
    }
    let r = run.run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    let rate = check(&report, "stream.rate");
    assert_eq!(rate["verdict"], "pass", "{rate:#}");
    let ev = &rate["evidence"];
    assert_eq!(
        (
            ev["load"]["profile"].as_str(),
            ev["asked_events_per_s"].as_f64()
        ),
        (Some("small"), Some(100.0))
    );
    assert_eq!(ev["sent"], 100);
    assert_eq!(ev["committed"], ev["sent"]);
    for key in ["p50", "p95", "p99"] {
        assert!(
            ev["append_latency_ms"][key].as_f64().is_some(),
            "{key}: {ev:#}"
        );
    }
}

#[test]
fn a_rate_without_full_is_a_usage_error() {
    let r = netcheck(&["run", "--account", "myorg-myaccount", "--rate", "100"]).run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--full"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_without_answer_is_settled_by_a_reopen_and_nothing_is_lost_or_doubled() {
    let emu = emulator(Vec::new()).await;
    // Reset the connection mid-answer for a moment: the append was stored, the client cannot know.
    let watcher = async {
        once_the_rate_test_opens(&emu, &[]).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        emu.set_faults(vec!["reset@append".parse().unwrap()]);
        while !emu.request_log().iter().any(|r| r.reset) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        emu.set_faults(Vec::new());
    };
    let (outcome, ()) = tokio::join!(
        run_rate(
            &emu,
            RateArgs {
                rate: Some(netcheck::load::Rate::Events(200)),
                duration: 2.0,
                channels: Some(1),
                ..RateArgs::default()
            }
        ),
        watcher
    );
    // Warned with the row of the transport failure (which row a reset maps to is the API layer's).
    assert_eq!(outcome.verdict(), Verdict::Warn, "{}", outcome.finding);
    assert!(
        outcome.row().is_some() && outcome.finding.contains("got no answer"),
        "{}",
        outcome.finding
    );
    assert!(count(&outcome, "reopens") >= 1, "{:#}", outcome.evidence);
    let sent = count(&outcome, "sent");
    assert_eq!(
        (
            count(&outcome, "committed"),
            count(&outcome, "errored"),
            count(&outcome, "lost")
        ),
        (sent, 0, 0),
        "{:#}",
        outcome.evidence
    );
    let rows = rate_rows(&emu);
    let seqs = rows.values().next().unwrap();
    assert_eq!(
        *seqs,
        (0..sent).collect::<Vec<_>>(),
        "in order, nothing lost or doubled"
    );
    channels_dropped(&emu, 1);
}

/// Waits until the emulator has logged a request that is `seen`, then puts `faults` in force.
async fn once_logged(emu: &Emulator, seen: impl Fn(&LoggedRequest) -> bool, faults: &[&str]) {
    while !emu.request_log().iter().any(&seen) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    emu.set_faults(faults.iter().map(|f| f.parse().unwrap()).collect());
}

/// Waits until the rate test has opened a channel (the round trip is done), then puts `faults`
/// in force.
async fn once_the_rate_test_opens(emu: &Emulator, faults: &[&str]) {
    let opened =
        |r: &LoggedRequest| r.endpoint == ApiCall::Open && r.path.contains("netcheck_rate_");
    once_logged(emu, opened, faults).await;
}

/// A fixed rate of `events_per_sec` for `secs` on one channel.
fn one_channel(events_per_sec: u32, secs: f64) -> RateArgs {
    RateArgs {
        rate: Some(netcheck::load::Rate::Events(events_per_sec)),
        duration: secs,
        channels: Some(1),
        ..RateArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_committed_twice_fails_rows_duplicated() {
    let emu = emulator(Vec::new()).await;
    let (outcome, ()) = tokio::join!(
        run_rate(&emu, one_channel(50, 2.0)),
        once_the_rate_test_opens(&emu, &["double-commit@append#1"])
    );
    assert_diagnosis(&outcome, Verdict::Fail, Some("rows-duplicated"));
    let doubled = count(&outcome, "doubled");
    assert!(doubled > 0, "{:#}", outcome.evidence);
    assert_eq!(
        (count(&outcome, "committed"), count(&outcome, "lost")),
        (count(&outcome, "sent") + doubled, 0),
        "{:#}",
        outcome.evidence
    );
    channels_dropped(&emu, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_200_is_in_doubt_and_the_reopen_settles_it() {
    let emu = emulator(Vec::new()).await;
    // One append is stored but answered with a body that is not JSON.
    let (outcome, ()) = tokio::join!(
        run_rate(&emu, one_channel(200, 2.0)),
        once_the_rate_test_opens(&emu, &["garbled-answer@append#1"])
    );
    assert_diagnosis(&outcome, Verdict::Warn, Some("api-error"));
    assert!(outcome.finding.contains("in doubt"), "{}", outcome.finding);
    assert!(
        count(&outcome, "in_doubt") > 0 && count(&outcome, "reopens") >= 1,
        "{:#}",
        outcome.evidence
    );
    let sent = count(&outcome, "sent");
    assert_eq!(
        (
            count(&outcome, "committed"),
            count(&outcome, "errored"),
            count(&outcome, "lost"),
            count(&outcome, "doubled")
        ),
        (sent, 0, 0, 0),
        "{:#}",
        outcome.evidence
    );
    every_row_once_in_order(&emu, sent);
    channels_dropped(&emu, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_doubt_whose_reopen_fails_is_settled_by_the_final_committed_offset() {
    // Rows commit at once, so the batch in doubt is committed by the last status poll.
    let emu = crate::support::emulate::spawn_emulator(|c| c.commit_delay = Duration::ZERO).await;
    let (outcome, ()) = tokio::join!(
        run_rate(&emu, one_channel(200, 2.0)),
        once_the_rate_test_opens(&emu, &["garbled-answer@append#1", "missing-pipe@open"])
    );
    assert_diagnosis(&outcome, Verdict::Fail, Some("pipe-not-found"));
    assert!(count(&outcome, "in_doubt") > 0, "{:#}", outcome.evidence);
    // The stored batch is committed, not also errored.
    assert_eq!(
        (
            count(&outcome, "committed") + count(&outcome, "errored"),
            count(&outcome, "doubled")
        ),
        (count(&outcome, "sent"), 0),
        "{:#}",
        outcome.evidence
    );
    every_row_once_in_order(&emu, count(&outcome, "committed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_whose_every_append_is_refused_its_token_gives_up_instead_of_spinning() {
    let emu = emulator(Vec::new()).await;
    // Another client reopens the channel before every append: each token is stale.
    let (outcome, ()) = tokio::join!(
        run_rate(&emu, one_channel(50, 2.0)),
        once_the_rate_test_opens(&emu, &["reopened@append"])
    );
    assert_diagnosis(&outcome, Verdict::Fail, Some("stale-continuation-token"));
    assert!(outcome.finding.contains("gave up"), "{}", outcome.finding);
    let refused = emu
        .request_log()
        .iter()
        .filter(|r| {
            r.endpoint == ApiCall::Append && r.path.contains("netcheck_rate_") && r.status == 400
        })
        .count();
    assert_eq!(refused, 3, "three refusals in a row, then it stopped");
    assert_eq!(
        count(&outcome, "sent"),
        count(&outcome, "committed") + count(&outcome, "errored"),
        "{:#}",
        outcome.evidence
    );
    channels_dropped(&emu, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_sent_count_a_batch_resent_after_a_reopen_once() {
    // Rows commit 800 ms after their append, so a reopen discards what was acknowledged over the
    // last 800 ms, and it is sent again.
    let emu = crate::support::emulate::spawn_emulator(|c| {
        c.commit_delay = Duration::from_millis(800);
    })
    .await;
    let watcher = async {
        once_the_rate_test_opens(&emu, &[]).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        emu.set_faults(vec!["reopened@append#1".parse().unwrap()]);
    };
    let (outcome, ()) = tokio::join!(
        run_rate(
            &emu,
            RateArgs {
                event_size: Some(1024),
                ..one_channel(400, 3.0)
            }
        ),
        watcher
    );
    assert!(
        count(&outcome, "resent_requests") > 0
            && count(&outcome, "committed") == count(&outcome, "sent"),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    // Every event is a 1,024-byte line (newline included), so the bytes per event stored are that
    // (both rates are over the same span); a resent batch counted twice would raise it.
    let per_event = outcome.evidence["achieved_mb_per_s"].as_f64().unwrap() * 1e6
        / outcome.evidence["achieved_events_per_s"].as_f64().unwrap();
    assert!(
        (per_event - 1024.0).abs() < 1.0,
        "{per_event} B/event: {:#}",
        outcome.evidence
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_max_keeps_its_steps_when_a_later_step_cannot_open_its_channels() {
    let emu = emulator(Vec::new()).await;
    // Opens fail once the first step is streaming (its channels are open by then).
    let streaming = |r: &LoggedRequest| r.endpoint == ApiCall::Append && r.path.contains("_s0_");
    let watcher = once_logged(&emu, streaming, &["missing-pipe@open"]);
    let (outcome, ()) = tokio::join!(run_rate(&emu, max_rate(4.0, 1000.0)), watcher);
    assert_eq!(
        probe_result(&outcome),
        (Verdict::Fail, Some("pipe-not-found"), Some("channel_open")),
        "{}: {:#}",
        outcome.finding,
        outcome.evidence
    );
    assert!(
        outcome
            .finding
            .contains("step 2 could not open its channels"),
        "{}",
        outcome.finding
    );
    assert_eq!(outcome.evidence["steps"].as_array().unwrap().len(), 1);
    let sent = count(&outcome, "sent");
    assert!(sent > 0, "{:#}", outcome.evidence);
    assert_eq!(
        count(&outcome, "committed") + count(&outcome, "errored"),
        sent
    );
}
