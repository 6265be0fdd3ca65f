//! A signal during a `--full` run (SIGINT exits 130, SIGTERM 143) stops cleanly, reports what
//! finished — and still drops every test channel it may have created: mid round trip, with the
//! open itself still in flight, in the middle of `stream.rate`, and with the DELETE in flight
//! (it is let finish, not aborted). A second signal cuts the cleanup short, and the report names
//! what was left behind with the request that drops it. The deadline keeps the cleanup's time in
//! reserve: a run cut by it ends by `--deadline` + 1 s, channels dropped.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::emulate::{TempDir, run_args};
use netcheck::emulator::{Emulator, Fault, LoggedRequest};
use serde_json::Value;

/// Runs `netcheck run --full` with `extra` arguments against `emu`, sends SIGINT once `ready`
/// holds for the emulator's request log (plus `settle`), and returns the JSON report after
/// checking the process stopped promptly with exit code 130 and said it was interrupted.
async fn interrupt_when(
    emu: &Emulator,
    extra: &[&str],
    ready: impl Fn(&[LoggedRequest]) -> bool,
    settle: Duration,
) -> Value {
    signal_when(emu, extra, ready, settle, &["INT"]).await
}

/// [`interrupt_when`] with these signals, one second apart; the exit code follows the first.
async fn signal_when(
    emu: &Emulator,
    extra: &[&str],
    ready: impl Fn(&[LoggedRequest]) -> bool,
    settle: Duration,
    signals: &[&str],
) -> Value {
    let dir = TempDir::new("interrupt");
    let mut args = run_args(emu, dir.path());
    args.extend(
        [
            "--full",
            "--format",
            "json",
            "--timeout",
            "30",
            "--deadline",
            "120",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let child = Command::new(env!("CARGO_BIN_EXE_netcheck"))
        .args(&args)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready(&emu.request_log()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the run never reached the point to interrupt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(settle).await;
    let interrupted_at = Instant::now();
    for (i, signal) in signals.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(
            Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        interrupted_at.elapsed()
    );
    let (code, name) = match signals[0] {
        "TERM" => (143, "SIGTERM"),
        "HUP" => (129, "SIGHUP"),
        _ => (130, "SIGINT"),
    };
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ending"], "interrupted");
    assert_eq!(report["signal"], name);
    report
}

fn verdict<'a>(report: &'a Value, id: &str) -> &'a Value {
    &crate::support::run::check(report, id)["verdict"]
}

/// Every channel the emulator opened was dropped again; returns how many.
fn every_opened_channel_dropped(emu: &Emulator) -> usize {
    let log = emu.request_log();
    let with = |method: &str| -> Vec<String> {
        let mut paths: Vec<String> = log
            .iter()
            .filter(|r| r.method == method && r.status == 200 && r.path.contains("/channels/"))
            .map(|r| r.path.clone())
            .collect();
        paths.sort();
        paths.dedup();
        paths
    };
    let (opened, dropped) = (with("PUT"), with("DELETE"));
    assert_eq!(opened, dropped, "every opened channel is dropped");
    opened.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_mid_round_trip_still_drops_the_channel() {
    // Rows are never committed, so the run sits in stream.commit until it is interrupted.
    let emu = crate::support::emulate::spawn_emulator(|c| {
        c.faults = vec!["no-commit".parse::<Fault>().unwrap()];
    })
    .await;
    let report = interrupt_when(
        &emu,
        &[],
        |log| log.iter().any(|r| r.path.contains("bulk-channel-status")),
        Duration::ZERO,
    )
    .await;
    assert_eq!(
        verdict(&report, "stream.append"),
        "pass",
        "what finished is kept"
    );
    assert_eq!(verdict(&report, "stream.commit"), "skip");
    assert_eq!(verdict(&report, "stream.drop"), "pass");
    assert_eq!(every_opened_channel_dropped(&emu), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_while_the_open_is_in_flight_still_drops_its_channel() {
    // The open is answered only after 10 s: the run is interrupted with it in flight, so
    // netcheck cannot know whether the channel was created, and must drop it all the same.
    let emu = crate::support::emulate::spawn_emulator(|c| {
        c.faults = vec!["latency=10s@open".parse::<Fault>().unwrap()];
    })
    .await;
    let report = interrupt_when(
        &emu,
        &[],
        |log| {
            log.iter()
                .any(|r| r.path == "/oauth/token" && r.status == 200)
        },
        Duration::from_millis(700),
    )
    .await;
    assert_eq!(verdict(&report, "stream.open"), "skip", "cut off");
    assert_eq!(verdict(&report, "stream.drop"), "pass");
    let deletes: Vec<LoggedRequest> = emu
        .request_log()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "the drop was sent: {deletes:?}");
    // The emulator sleeps before it acts, so the cut-off open created nothing: the drop finds
    // no channel, and the report says so instead of failing.
    assert_eq!(deletes[0].status, 404);
    let drop = crate::support::run::check(&report, "stream.drop");
    assert_eq!(
        drop["evidence"]["not_created"].as_array().map(Vec::len),
        Some(1),
        "{drop:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_the_rate_test_drops_every_channel() {
    let emu = crate::support::emulate::spawn_emulator(|_| {}).await;
    let report = interrupt_when(
        &emu,
        &["--rate", "200", "--duration", "60", "--channels", "3"],
        |log| {
            log.iter()
                .filter(|r| r.method == "POST" && r.path.contains("netcheck_rate_"))
                .count()
                >= 3
        },
        Duration::ZERO,
    )
    .await;
    assert_eq!(verdict(&report, "stream.rate"), "skip", "cut off");
    assert_eq!(verdict(&report, "stream.drop"), "pass");
    assert_eq!(
        every_opened_channel_dropped(&emu),
        4,
        "the round trip's channel and the rate test's three"
    );
}

/// The emulator's log shows the status polls of the round trip's commit.
fn polling(log: &[LoggedRequest]) -> bool {
    log.iter().any(|r| r.path.contains("bulk-channel-status"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sighup_are_handled_like_ctrl_c() {
    for signal in ["TERM", "HUP"] {
        let emu = crate::support::emulate::spawn_emulator(|c| {
            c.faults = vec!["no-commit".parse::<Fault>().unwrap()];
        })
        .await;
        let report = signal_when(&emu, &[], polling, Duration::ZERO, &[signal]).await;
        assert_eq!(verdict(&report, "stream.drop"), "pass", "{signal}");
        assert_eq!(every_opened_channel_dropped(&emu), 1, "{signal}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_the_delete_lets_it_finish() {
    // The commit is seen at once; the DELETE then takes 3 s, and Ctrl-C comes 1.5 s into it.
    let emu = crate::support::emulate::spawn_emulator(|c| {
        c.faults = vec!["latency=3s@drop".parse::<Fault>().unwrap()];
        c.commit_delay = Duration::ZERO;
    })
    .await;
    let report = interrupt_when(
        &emu,
        &[],
        |log| {
            log.iter()
                .any(|r| r.path.contains("bulk-channel-status") && r.status == 200)
        },
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(verdict(&report, "stream.commit"), "pass", "{report:#}");
    // Dropped, slowly: the 3 s DELETE is over the phase's budget.
    crate::support::run::assert_check(&report, "stream.drop", "warn", Some("latency-budget"));
    let drop = crate::support::run::check(&report, "stream.drop");
    assert!(
        drop["finding"].as_str().unwrap().starts_with("dropped "),
        "{drop:#}"
    );
    assert_eq!(every_opened_channel_dropped(&emu), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_cuts_the_cleanup_short_and_names_what_was_left() {
    let emu = crate::support::emulate::spawn_emulator(|c| {
        c.faults = vec![
            "no-commit".parse::<Fault>().unwrap(),
            "latency=20s@drop".parse::<Fault>().unwrap(),
        ];
    })
    .await;
    let report = signal_when(&emu, &[], polling, Duration::ZERO, &["INT", "INT"]).await;
    crate::support::run::assert_check(&report, "stream.drop", "fail", Some("channel-left-behind"));
    let drop = crate::support::run::check(&report, "stream.drop");
    let left = drop["evidence"]["left_behind"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{drop:#}");
    let request = left[0].as_str().unwrap();
    assert!(
        request.starts_with("DELETE https://") && request.contains("/channels/netcheck_"),
        "{request}"
    );
    assert!(
        drop["finding"].as_str().unwrap().contains(request),
        "the finding names the request: {drop:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_keeps_time_for_the_cleanup() {
    // Rows are never committed and the DELETE takes 3 s. With an 8 s deadline and the grace at
    // its default (the 30 s step timeout), half the run is kept for the cleanup: the checks are
    // cut at 4 s, the drop ends near 7 s — by the deadline + 1 s. Without the reserve the drop
    // would start at 8 s and end near 11 s.
    let emu = crate::support::emulate::spawn_emulator(|c| {
        c.faults = vec![
            "no-commit".parse::<Fault>().unwrap(),
            "latency=3s@drop".parse::<Fault>().unwrap(),
        ];
    })
    .await;
    let dir = TempDir::new("deadline");
    let mut args = run_args(&emu, dir.path());
    args.extend(
        [
            "--full",
            "--format",
            "json",
            "--timeout",
            "30",
            "--deadline",
            "8",
        ]
        .map(String::from),
    );
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_netcheck"))
            .args(&args)
            .env_clear()
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(9), "ended {took:?} after start");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ending"], "deadline");
    assert_eq!(verdict(&report, "stream.commit"), "fail");
    // Dropped, slowly: the 3 s DELETE is over the phase's budget.
    crate::support::run::assert_check(&report, "stream.drop", "warn", Some("latency-budget"));
    assert_eq!(every_opened_channel_dropped(&emu), 1);
}
