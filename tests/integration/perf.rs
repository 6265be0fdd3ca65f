//! Handshake economy: a full in-process run against the embedded emulator pays one TCP+TLS
//! handshake per host for all of its API calls, beyond the network checks' own (`tcp.*` connects
//! once, `tls.*` handshakes twice: TLS 1.3 and TLS 1.2-only), counted by the emulator itself —
//! with and without added latency, and with the sustained-rate check's extra channels.

use std::time::Duration;

use netcheck::emulator::{self, Fault};
use netcheck::outcome::Verdict;

/// Handshakes `tls.*` makes per host (TLS 1.3 and TLS 1.2-only).
const TLS_CHECK_HANDSHAKES: u64 = 2;
/// Connects `tcp.*` makes per host (it closes before TLS).
const TCP_CHECK_CONNECTS: u64 = 1;

/// Runs the whole suite (`--full`) in-process; returns the emulator's connection counters.
async fn full_run(
    faults: Vec<Fault>,
    rate: Option<netcheck::load::RateArgs>,
) -> netcheck::emulator::ConnectionStats {
    let emu = crate::support::emulate::spawn_emulator(|c| c.faults = faults).await;
    let mut settings = netcheck::demo::settings_for(&emu, emulator::default_key(), 1234).unwrap();
    if let Some(rate) = rate {
        settings.rate = rate.load().unwrap();
    }
    let result = crate::support::emulate::run_all(settings).await;
    for r in &result.results {
        assert!(
            matches!(r.outcome.verdict(), Verdict::Pass | Verdict::Skip),
            "{}: {:?} {:#}",
            r.spec.id,
            r.outcome.finding,
            r.outcome.evidence
        );
    }
    let stats = emu.connection_stats();
    emu.shutdown().await;
    stats
}

#[track_caller]
fn assert_one_api_handshake_per_host(stats: &netcheck::emulator::ConnectionStats) {
    let account = "myorg-myaccount.snowflakecomputing.com";
    let ingest = "myorg-myaccount.us-west-2.ingest.snowflakecomputing.com";
    let stage = "netcheck-emulator-stage.s3.us-west-2.amazonaws.com";
    for host in [account, ingest, stage] {
        assert_eq!(
            stats.tls_handshakes.get(host).copied(),
            Some(TLS_CHECK_HANDSHAKES + 1),
            "{host}: {stats:#?}"
        );
    }
    assert!(stats.tls_failures.is_empty(), "{stats:#?}");
    assert_eq!(
        stats.tcp_accepted,
        3 * (TCP_CHECK_CONNECTS + TLS_CHECK_HANDSHAKES + 1),
        "{stats:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_pays_one_api_handshake_per_host() {
    assert_one_api_handshake_per_host(&full_run(Vec::new(), None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_latency_does_not_open_extra_connections() {
    // Slow answers are when a pool without multiplexing would open a second connection.
    let stats = full_run(vec![Fault::Latency(Duration::from_millis(50))], None).await;
    assert_one_api_handshake_per_host(&stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_test_multiplexes_its_channels_on_the_same_connection() {
    let rate = netcheck::load::RateArgs {
        rate: Some(netcheck::load::Rate::Events(200)),
        duration: 1.0,
        channels: Some(3),
        ..Default::default()
    };
    assert_one_api_handshake_per_host(&full_run(Vec::new(), Some(rate)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_critical_path_follows_ordering_edges_through_the_channel_drop() {
    let emu = crate::support::emulate::spawn_emulator(|_| {}).await;
    let settings = netcheck::demo::settings_for(&emu, emulator::default_key(), 10).unwrap();
    let result = crate::support::emulate::run_all(settings).await;
    let took = |id: &str| {
        result
            .results
            .iter()
            .find(|r| r.spec.id == id)
            .unwrap()
            .duration
    };
    // stream.drop depends on stream.open only, but runs after stream.commit (dropping earlier
    // would discard uncommitted rows): that wait is part of the chain.
    let chain: Duration = [
        "auth.scoped_token",
        "stream.open",
        "stream.append",
        "stream.commit",
        "stream.drop",
    ]
    .into_iter()
    .map(took)
    .sum();
    let cp = result.critical_path();
    assert!(
        cp >= chain,
        "critical path {cp:?} shorter than the open→append→commit→drop chain {chain:?}"
    );
    assert!(
        cp <= result.duration,
        "critical path {cp:?} longer than the run {:?}",
        result.duration
    );
}
