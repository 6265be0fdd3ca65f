//! netcheck as a library: run every check in-process and read the report, the way a connector's
//! "check connection" would. Here against the embedded emulator, so it runs anywhere:
//!
//! ```sh
//! cargo run --example in_process
//! ```
//!
//! Against a real account, build the `Settings` with `Settings::from_args` (the same flags and
//! `NETCHECK_*` twins as `netcheck run`) instead of `demo::start`.

use netcheck::outcome::Verdict;

/// Starts the emulator, runs the whole suite against it with `app::run`, prints one line per
/// check, and fails when a check failed.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    let demo = netcheck::demo::start(Vec::new(), 10, None).await?;
    let report = netcheck::app::run(demo.settings).await;
    demo.emulator.shutdown().await;
    let report = report?;
    for check in &report.checks {
        println!("{:<20} {:?} {}", check.id, check.verdict, check.finding);
    }
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.id)
        .collect();
    anyhow::ensure!(failed.is_empty(), "failed: {}", failed.join(", "));
    println!("{} checks passed", report.summary.pass);
    Ok(())
}
