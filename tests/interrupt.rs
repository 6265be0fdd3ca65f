//! Ctrl-C during a `--full` run stops cleanly, reports what finished, exits 130 — and still
//! drops its test channel.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netcheck::emulator::Fault;
use support::emulate::{TempDir, run_args};

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_mid_round_trip_still_drops_the_channel() {
    // Rows are never committed, so the run sits in stream.commit until it is interrupted.
    let emu = support::emulate::spawn_emulator(|c| {
        c.faults = vec!["no-commit".parse::<Fault>().unwrap()];
    })
    .await;
    let dir = TempDir::new("interrupt");
    let mut args = run_args(&emu, dir.path());
    args.extend(["--full", "--format", "json", "--timeout", "30"].map(String::from));
    let child = Command::new(env!("CARGO_BIN_EXE_netcheck"))
        .args(&args)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !emu
        .request_log()
        .iter()
        .any(|r| r.path.contains("bulk-channel-status"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the run never reached stream.commit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ending"], "interrupted");
    let verdict = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict("stream.append"), "pass", "what finished is kept");
    assert_eq!(verdict("stream.commit"), "skip");
    assert_eq!(verdict("stream.drop"), "pass");
    let deletes = emu
        .request_log()
        .iter()
        .filter(|r| r.method == "DELETE" && r.status == 200)
        .count();
    assert_eq!(deletes, 1, "the test channel was dropped");
}
