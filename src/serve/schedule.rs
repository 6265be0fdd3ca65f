//! `--every`: each configured connection probed on its own schedule, jittered so a fleet's
//! probes do not line up, and never overlapping itself (the next run waits for the last). Each
//! run takes one of the `--max-probes` slots; one that finds none free is skipped and counted.

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
        // A scheduled run counts against --max-probes like a scrape. With every slot busy it
        // is skipped rather than queued: a queue would run it late, then the next one early.
        if let Ok(_permit) = server.permits.clone().try_acquire_owned() {
            // A run may take at most one period, so a schedule never falls behind by more.
            // A failed run is in the metrics (result="error") and the log.
            let _ = server
                .run_and_record(&connection, false, &[], period, Trigger::Schedule)
                .await;
        } else {
            tracing::warn!(
                "{connection}: scheduled run skipped: every probe slot is busy (--max-probes)"
            );
            server.metrics.skipped(&connection);
        }
        let factor = rand::thread_rng().gen_range(1.0 - JITTER..1.0 + JITTER);
        next = started + period.mul_f64(factor);
    }
}
