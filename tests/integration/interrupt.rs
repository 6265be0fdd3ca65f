//! Ctrl-C during a `--full` run stops cleanly, reports what finished, exits 130 — and still
//! drops every test channel it may have created: mid round trip, with the open itself still in
//! flight, and in the middle of `stream.rate`.

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
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        interrupted_at.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ending"], "interrupted");
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
