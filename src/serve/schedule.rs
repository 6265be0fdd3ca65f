//! `--every`: each configured connection probed on its own schedule, jittered so a fleet's
//! probes do not line up, and never overlapping itself (the next run waits for the last).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

use super::Server;
use super::metrics::Trigger;

/// How far a run's start may move from the period, either way (a tenth of it).
const JITTER: f64 = 0.1;

/// Probes `connection` every `period` until serve shuts down; a run in flight then finishes
/// (its cleanup included: it sees the signal itself) before this returns.
pub async fn every(server: Arc<Server>, connection: String, period: Duration) {
    let mut shutdown = server.shutdown.clone();
    // Spread the first runs of several connections (and several replicas) over one period.
    let mut next = Instant::now() + period.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = shutdown.wait_for(|signals| !signals.is_empty()) => return,
        }
        let started = Instant::now();
        // A run may take at most one period, so a schedule never falls behind by more.
        // A failed run is in the metrics (result="error") and the log.
        let _ = server
            .run_and_record(&connection, false, &[], period, Trigger::Schedule)
            .await;
        let factor = rand::thread_rng().gen_range(1.0 - JITTER..1.0 + JITTER);
        next = started + period.mul_f64(factor);
    }
}
