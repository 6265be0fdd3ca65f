//! Runs a [`Plan`]: every check whose dependencies are done starts at once (tokio tasks), a
//! check whose dependency failed is skipped with the reason, the whole run is bounded by the
//! deadline, and a signal (SIGINT, SIGTERM, SIGHUP) ends it cleanly with what finished so far.
//!
//! Cleanup (`always` checks: dropping the test channels) is never aborted mid-request: when the
//! run is interrupted or reaches its deadline, a cleanup check in flight is let finish and one not
//! yet started starts, bounded by the cleanup grace and by the deadline, whichever comes first; a
//! second signal cuts it short, and the check then reports what it left behind. The deadline
//! keeps the grace in reserve, so a run ends by its deadline, cleanup included.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt as _};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::{AbortHandle, JoinSet};

use crate::check::CheckSpec;
use crate::context::Ctx;
use crate::outcome::{Outcome, SkipReason, Status, Verdict};
use crate::registry::Plan;

/// Progress events for a live display. Checks never print; the runner tells.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        id: &'static str,
    },
    Finished {
        id: &'static str,
        verdict: Verdict,
        duration: Duration,
    },
}

/// One check's result with its timing relative to the start of the run.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub spec: &'static CheckSpec,
    pub outcome: Outcome,
    /// When it started, from the start of the run (zero for a check that never ran).
    pub started: Duration,
    pub duration: Duration,
}

/// A signal that ends a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    /// Ctrl-C.
    Sigint,
    /// What `timeout`, CI runners and Kubernetes send.
    Sigterm,
    /// The terminal went away.
    Sighup,
}

/// How the run ended (the JSON report's `ending`: `completed`, `deadline` or `interrupted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ending {
    Completed,
    #[serde(rename = "deadline")]
    DeadlineReached,
    Interrupted,
}

/// Everything the runner learned, in registry order.
#[derive(Debug)]
pub struct RunResult {
    pub started_at: time::OffsetDateTime,
    pub duration: Duration,
    pub ending: Ending,
    /// The signal that interrupted it, if one did.
    pub signal: Option<Signal>,
    pub results: Vec<CheckResult>,
}

impl RunResult {
    /// The longest chain of dependent checks, measured: the floor no scheduling can beat.
    /// Ordering-only edges (`after`: drop the channel once the commit is confirmed) are part of it;
    /// an `early` dependency runs beside its dependent, whose result stands once both are done.
    #[must_use]
    pub fn critical_path(&self) -> Duration {
        fn latest<'a>(
            ids: impl Iterator<Item = &'a &'static str>,
            finish: &HashMap<&str, Duration>,
        ) -> Duration {
            ids.filter_map(|d| finish.get(d))
                .max()
                .copied()
                .unwrap_or_default()
        }
        let mut finish: HashMap<&str, Duration> = HashMap::new();
        for r in &self.results {
            let before = latest(r.spec.deps.iter().chain(r.spec.after), &finish);
            let beside = latest(r.spec.early.iter(), &finish);
            finish.insert(r.spec.id, (before + r.duration).max(beside));
        }
        finish.into_values().max().unwrap_or_default()
    }
}

/// Runs the plan. `signals` yields each signal the process receives: the first interrupts the
/// run, a second cuts its cleanup short; pass `futures::stream::pending()` where nothing can
/// interrupt.
// One event loop and the three ways it ends; split up, its state would be scattered.
#[allow(clippy::too_many_lines)]
pub async fn run(
    plan: &Plan,
    ctx: Ctx,
    events: Option<UnboundedSender<Event>>,
    signals: impl Stream<Item = Signal>,
) -> RunResult {
    let started_at = time::OffsetDateTime::now_utc();
    let start = Instant::now();
    let end = start + ctx.settings.deadline;
    // The cleanup's grace is kept in reserve (at most half the run), so that dropping the test
    // channels fits before the deadline.
    let reserve = if plan.checks.iter().any(|c| c.always) {
        ctx.settings.cleanup_grace.min(ctx.settings.deadline / 2)
    } else {
        Duration::ZERO
    };
    let deadline =
        tokio::time::Instant::from_std(start + ctx.settings.deadline.saturating_sub(reserve));
    let emit = |e: Event| {
        if let Some(tx) = &events {
            let _ = tx.send(e);
        }
    };
    let planned: HashSet<&str> = plan.checks.iter().map(|c| c.id).collect();
    let mut done: HashMap<&'static str, CheckResult> = HashMap::new();
    // Deselected checks are settled up front; their dependents are then skipped naming them.
    let (deselected, mut pending): (Vec<&'static CheckSpec>, Vec<_>) = plan
        .checks
        .iter()
        .partition(|c| plan.deselected.contains(c.id));
    for spec in deselected {
        done.insert(
            spec.id,
            not_run(spec, SkipReason::Deselected { id: spec.id }),
        );
    }
    let mut running: JoinSet<Outcome> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, (&'static CheckSpec, Duration, AbortHandle)> =
        HashMap::new();
    // Finished checks whose `early` dependencies are still running.
    let mut held: Vec<CheckResult> = Vec::new();
    let mut ending = Ending::Completed;
    let mut signal = None;
    let mut signals = std::pin::pin!(signals);

    loop {
        settle(&mut held, &mut done, &emit);
        // Start or skip everything whose dependencies are settled.
        let mut still_pending = Vec::new();
        for spec in pending.drain(..) {
            match readiness(spec, &done, &planned) {
                Readiness::Waiting => still_pending.push(spec),
                Readiness::Blocked(reason) => {
                    emit(Event::Finished {
                        id: spec.id,
                        verdict: Verdict::Skip,
                        duration: Duration::ZERO,
                    });
                    done.insert(spec.id, not_run(spec, reason));
                }
                Readiness::Ready => {
                    emit(Event::Started { id: spec.id });
                    let handle = running.spawn((spec.run)(ctx.clone()));
                    in_flight.insert(handle.id(), (spec, start.elapsed(), handle));
                }
            }
        }
        pending = still_pending;
        if running.is_empty() {
            // A skip just recorded may settle a held check, whose dependents can then start.
            if held
                .iter()
                .any(|r| r.spec.early.iter().all(|e| done.contains_key(e)))
            {
                continue;
            }
            break;
        }
        tokio::select! {
            biased;
            Some(got) = signals.next() => {
                (ending, signal) = (Ending::Interrupted, Some(got));
                break;
            }
            () = tokio::time::sleep_until(deadline) => { ending = Ending::DeadlineReached; break; }
            Some(joined) = running.join_next_with_id() => {
                let (id, outcome) = match joined {
                    Ok((id, outcome)) => (id, outcome),
                    Err(e) => (e.id(), Outcome::internal_error(&e.to_string())),
                };
                let (spec, began, _) = in_flight.remove(&id).expect("every task is tracked");
                held.push(finished(spec, outcome, began, start.elapsed()));
            }
        }
    }

    // Whatever is still running is cut off, except cleanup: it is let finish, and cleanup whose
    // dependencies passed starts now, within the grace and the deadline.
    if ending != Ending::Completed {
        for (spec, _, task) in in_flight.values() {
            if !spec.always {
                task.abort();
            }
        }
        let (cleanup, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|s| s.always);
        pending = rest;
        for spec in cleanup {
            // Ordering (`after`) no longer matters: what it waited for was cut off.
            let unordered = CheckSpec {
                after: &[],
                ..*spec
            };
            match readiness(&unordered, &done, &planned) {
                Readiness::Ready => {
                    emit(Event::Started { id: spec.id });
                    let handle = running.spawn((spec.run)(ctx.clone()));
                    in_flight.insert(handle.id(), (spec, start.elapsed(), handle));
                }
                Readiness::Blocked(reason) => {
                    done.insert(spec.id, not_run(spec, reason));
                }
                Readiness::Waiting => pending.push(spec),
            }
        }
        let grace_end = tokio::time::Instant::now() + ctx.settings.cleanup_grace;
        let until = grace_end.min(tokio::time::Instant::from_std(end));
        loop {
            tokio::select! {
                biased;
                Some(_) = signals.next() => break,
                () = tokio::time::sleep_until(until) => break,
                joined = running.join_next_with_id() => match joined {
                    None => break,
                    Some(Ok((id, outcome))) => {
                        let (spec, began, _) = in_flight.remove(&id).expect("every task is tracked");
                        done.insert(spec.id, finished(spec, outcome, began, start.elapsed()));
                    }
                    // An aborted check: reported below as cut off.
                    Some(Err(e)) if e.is_cancelled() => {}
                    Some(Err(e)) => {
                        let (spec, began, _) = in_flight.remove(&e.id()).expect("every task is tracked");
                        let outcome = Outcome::internal_error(&e.to_string());
                        done.insert(spec.id, finished(spec, outcome, began, start.elapsed()));
                    }
                },
            }
        }
    }
    running.abort_all();
    let now = start.elapsed();
    // Their `early` dependencies were cut off: what they found themselves stands, unless one
    // had already failed.
    for result in held {
        done.insert(result.spec.id, set_aside_if_blocked(result, &done));
    }
    for (spec, began, _) in in_flight.into_values() {
        let outcome = match spec.cut {
            Some(report) if spec.always => report(&ctx),
            _ => cut_off(ending, ctx.settings.deadline),
        };
        done.insert(spec.id, finished(spec, outcome, began, now));
    }
    let never_started = if ending == Ending::Interrupted {
        SkipReason::Interrupted
    } else {
        SkipReason::Deadline
    };
    for spec in pending {
        done.insert(spec.id, not_run(spec, never_started.clone()));
    }
    let results = plan
        .checks
        .iter()
        .filter_map(|c| done.remove(c.id))
        .collect();
    RunResult {
        started_at,
        duration: start.elapsed(),
        ending,
        signal,
        results,
    }
}

/// Moves finished checks into `done` once their `early` dependencies are done — skipped, with
/// the root cause, when one of those failed. Repeats until nothing changes, since each settled
/// check can settle others. A check is not stopped when its `early` dependency fails: it may have
/// side effects (an open channel) that only its own end can tell.
fn settle<E: Fn(Event)>(
    held: &mut Vec<CheckResult>,
    done: &mut HashMap<&'static str, CheckResult>,
    emit: &E,
) {
    while let Some(i) = held
        .iter()
        .position(|r| r.spec.early.iter().all(|e| done.contains_key(e)))
    {
        let result = set_aside_if_blocked(held.swap_remove(i), done);
        emit(Event::Finished {
            id: result.spec.id,
            verdict: result.outcome.verdict(),
            duration: result.duration,
        });
        done.insert(result.spec.id, result);
    }
}

/// The result, or a skip naming the root cause when one of its `early` dependencies failed.
fn set_aside_if_blocked(
    mut result: CheckResult,
    done: &HashMap<&'static str, CheckResult>,
) -> CheckResult {
    if let Some(reason) = result
        .spec
        .early
        .iter()
        .find_map(|e| done.get(e).and_then(blocking))
    {
        result.outcome = Outcome::skip(reason);
    }
    result
}

/// Why a result keeps its dependents from running, naming the root cause (the check that
/// failed), not the chain of skips; `None` when it passed, warned or was skipped harmlessly.
fn blocking(r: &CheckResult) -> Option<SkipReason> {
    match &r.outcome.status {
        Status::Skip(reason @ SkipReason::Dependency { .. }) => Some(reason.clone()),
        Status::Skip(reason) if !reason.blocks_dependents() => None,
        Status::Pass | Status::Warn(_) => None,
        _ => Some(SkipReason::Dependency {
            dep: r.spec.id,
            verdict: r.outcome.verdict(),
        }),
    }
}

/// The outcome of a check that was still running when the run ended early.
fn cut_off(ending: Ending, deadline: Duration) -> Outcome {
    match ending {
        Ending::Interrupted => Outcome::skip(SkipReason::Interrupted),
        _ => Outcome::timed_out(
            format!("still running when the run deadline ({deadline:?}) passed"),
            serde_json::json!({ "deadline_s": deadline.as_secs_f64() }),
        ),
    }
}

enum Readiness {
    Ready,
    Waiting,
    Blocked(SkipReason),
}

/// Whether a check can start. `planned` keeps `after` from waiting on a check that will never
/// run (left out by `--only`).
fn readiness(
    spec: &CheckSpec,
    done: &HashMap<&'static str, CheckResult>,
    planned: &HashSet<&str>,
) -> Readiness {
    let mut waiting = spec
        .after
        .iter()
        .any(|a| planned.contains(a) && !done.contains_key(a));
    for dep in spec.deps.iter().chain(spec.early) {
        match done.get(dep).map(blocking) {
            // A dependency outside the plan cannot happen (the plan closes over dependencies).
            // An `early` one that is not done yet is not waited for.
            None => waiting |= spec.deps.contains(dep),
            Some(Some(reason)) => return Readiness::Blocked(reason),
            Some(None) => {}
        }
    }
    if waiting {
        Readiness::Waiting
    } else {
        Readiness::Ready
    }
}

/// A check that ran from `began` until `now` (both from the start of the run).
fn finished(
    spec: &'static CheckSpec,
    outcome: Outcome,
    began: Duration,
    now: Duration,
) -> CheckResult {
    CheckResult {
        spec,
        outcome,
        started: began,
        duration: now.saturating_sub(began),
    }
}

fn not_run(spec: &'static CheckSpec, reason: SkipReason) -> CheckResult {
    CheckResult {
        spec,
        outcome: Outcome::skip(reason),
        started: Duration::ZERO,
        duration: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::catalog::RowId;
    use crate::check::CheckSpec;
    use crate::settings::Settings;

    fn sleeper(ms: u64, verdict: Verdict) -> futures::future::BoxFuture<'static, Outcome> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            match verdict {
                Verdict::Fail => Outcome::fail(RowId::Timeout, "failed", ()),
                _ => Outcome::pass("ok", ()),
            }
        })
    }

    const fn spec(
        id: &'static str,
        deps: &'static [&'static str],
        run: crate::check::CheckFn,
    ) -> CheckSpec {
        CheckSpec::new(id, id, deps, run)
    }

    static A: CheckSpec = spec("t.a", &[], |_| sleeper(200, Verdict::Pass));
    static B: CheckSpec = spec("t.b", &[], |_| sleeper(200, Verdict::Pass));
    static C: CheckSpec = spec("t.c", &["t.a", "t.b"], |_| sleeper(100, Verdict::Pass));
    static FAILS: CheckSpec = spec("t.fails", &[], |_| sleeper(10, Verdict::Fail));
    static AFTER_FAIL: CheckSpec = spec("t.after", &["t.fails"], |_| sleeper(10, Verdict::Pass));
    static ORDERED_AFTER_FAIL: CheckSpec =
        spec("t.ordered", &[], |_| sleeper(10, Verdict::Pass)).after(&["t.fails"]);
    static HANGS: CheckSpec = spec("t.hangs", &[], |_| sleeper(60_000, Verdict::Pass));
    static AFTER_HANG: CheckSpec =
        spec("t.after_hang", &["t.hangs"], |_| sleeper(10, Verdict::Pass));
    static CLEANUP: CheckSpec = spec("t.cleanup", &["t.a"], |_| sleeper(10, Verdict::Pass))
        .after(&["t.hangs"])
        .always();

    // t.guess starts beside its early dependency and is slower or quicker than it.
    static SLOW_FAIL: CheckSpec = spec("t.slow_fail", &[], |_| sleeper(150, Verdict::Fail));
    static GUESS_LONG: CheckSpec =
        spec("t.guess", &[], |_| sleeper(300, Verdict::Pass)).early(&["t.slow_fail"]);
    static GUESS_SHORT: CheckSpec =
        spec("t.guess", &[], |_| sleeper(10, Verdict::Pass)).early(&["t.slow_fail"]);
    static GUESS_ON_A: CheckSpec =
        spec("t.guess", &[], |_| sleeper(100, Verdict::Pass)).early(&["t.a"]);
    static AFTER_GUESS: CheckSpec = spec("t.after_guess", &["t.guess"], |_| {
        sleeper(10, Verdict::Pass)
    });

    fn ctx(deadline: Duration) -> Ctx {
        Ctx::new(Settings {
            account: crate::snowflake::account::parse_account("myorg-test").unwrap(),
            resolve: vec![],
            ca_file: None,
            extra_roots: vec![],
            proxy_cacert: None,
            proxy_roots: vec![],
            proxy: crate::net::proxy::ProxySettings::from_env(|_| None, None, None),
            dns: crate::net::resolver::Upstream::Server("127.0.0.1:9".parse().unwrap()),
            timeout: Duration::from_secs(1),
            deadline,
            cleanup_grace: Duration::from_secs(1),
            budget_scale: 1.0,
            snowflake: None,
            connection: crate::connection::Connection::default(),
            allowlist: None,
            concurrency: 256,
            full: false,
            rows: 1,
            rate: None,
            origins: crate::settings::Origins::default(),
        })
        .unwrap()
    }

    fn plan(checks: &[&'static CheckSpec]) -> Plan {
        Plan {
            checks: checks.to_vec(),
            deselected: std::collections::BTreeSet::new(),
        }
    }

    /// Runs `checks` with nothing to interrupt them and a deadline they never reach.
    async fn run_to_end(checks: &[&'static CheckSpec]) -> RunResult {
        run(
            &plan(checks),
            ctx(Duration::from_secs(10)),
            None,
            futures::stream::pending(),
        )
        .await
    }

    fn outcome<'a>(r: &'a RunResult, id: &str) -> &'a Outcome {
        &r.results.iter().find(|c| c.spec.id == id).unwrap().outcome
    }

    #[tokio::test]
    async fn independent_checks_run_concurrently_and_the_critical_path_is_measured() {
        let r = run_to_end(&[&A, &B, &C]).await;
        assert_eq!(r.ending, Ending::Completed);
        // A and B overlap: each started before the other finished (not a wall-clock bound,
        // which a loaded machine can stretch).
        let at = |id: &str| r.results.iter().find(|c| c.spec.id == id).unwrap();
        let (a, b) = (at("t.a"), at("t.b"));
        assert!(
            b.started < a.started + a.duration && a.started < b.started + b.duration,
            "A {:?}+{:?}, B {:?}+{:?}",
            a.started,
            a.duration,
            b.started,
            b.duration
        );
        let cp = r.critical_path();
        assert!(
            cp >= Duration::from_millis(300) && cp <= r.duration,
            "critical path {cp:?} of {:?}",
            r.duration
        );
        let c = at("t.c");
        assert!(
            c.started >= Duration::from_millis(200),
            "C waited for A and B"
        );
    }

    #[tokio::test]
    async fn a_failed_dependency_skips_its_dependents() {
        let r = run_to_end(&[&FAILS, &AFTER_FAIL]).await;
        assert_eq!(outcome(&r, "t.fails").verdict(), Verdict::Fail);
        let after = outcome(&r, "t.after");
        assert_eq!(
            after.status,
            Status::Skip(SkipReason::Dependency {
                dep: "t.fails",
                verdict: Verdict::Fail
            })
        );
    }

    #[tokio::test]
    async fn after_orders_without_blocking() {
        let r = run_to_end(&[&FAILS, &ORDERED_AFTER_FAIL]).await;
        assert_eq!(outcome(&r, "t.ordered").verdict(), Verdict::Pass);
        let ordered = r.results.iter().find(|c| c.spec.id == "t.ordered").unwrap();
        assert!(
            ordered.started >= Duration::from_millis(10),
            "it waited for t.fails"
        );
    }

    #[tokio::test]
    async fn cleanup_still_runs_when_interrupted() {
        let stop = futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Signal::Sigint
        });
        let r = run(
            &plan(&[&A, &HANGS, &CLEANUP]),
            ctx(Duration::from_secs(10)),
            None,
            stop,
        )
        .await;
        assert_eq!(r.ending, Ending::Interrupted);
        assert_eq!(
            outcome(&r, "t.cleanup").verdict(),
            Verdict::Pass,
            "cleanup ran after the interrupt"
        );
    }

    #[tokio::test]
    async fn the_deadline_ends_a_hanging_run() {
        let deadline = Duration::from_millis(300);
        let r = run(
            &plan(&[&A, &HANGS, &AFTER_HANG]),
            ctx(deadline),
            None,
            futures::stream::pending(),
        )
        .await;
        assert_eq!(r.ending, Ending::DeadlineReached);
        assert!(
            r.duration < deadline + Duration::from_millis(200),
            "took {:?}",
            r.duration
        );
        assert_eq!(outcome(&r, "t.a").verdict(), Verdict::Pass);
        let hung = outcome(&r, "t.hangs");
        assert_eq!(hung.status, Status::TimedOut);
        assert_eq!(hung.row(), Some(RowId::Timeout));
        assert_eq!(
            outcome(&r, "t.after_hang").status,
            Status::Skip(SkipReason::Deadline)
        );
    }

    #[tokio::test]
    async fn an_interrupt_stops_cleanly_and_keeps_what_finished() {
        let stop = futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Signal::Sigint
        });
        let r = run(
            &plan(&[&A, &HANGS, &AFTER_HANG]),
            ctx(Duration::from_secs(10)),
            None,
            stop,
        )
        .await;
        assert_eq!(r.ending, Ending::Interrupted);
        assert!(r.duration < Duration::from_millis(500));
        assert_eq!(outcome(&r, "t.a").verdict(), Verdict::Pass);
        assert_eq!(
            outcome(&r, "t.hangs").status,
            Status::Skip(SkipReason::Interrupted)
        );
        assert_eq!(
            outcome(&r, "t.after_hang").status,
            Status::Skip(SkipReason::Interrupted)
        );
    }

    #[tokio::test]
    async fn events_report_every_start_and_finish() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _ = run(
            &plan(&[&FAILS, &AFTER_FAIL]),
            ctx(Duration::from_secs(10)),
            Some(tx),
            futures::stream::pending(),
        )
        .await;
        let mut seen = Vec::new();
        while let Ok(e) = rx.try_recv() {
            seen.push(match e {
                Event::Started { id } => format!("start {id}"),
                Event::Finished { id, verdict, .. } => format!("end {id} {verdict:?}"),
            });
        }
        assert_eq!(
            seen,
            ["start t.fails", "end t.fails Fail", "end t.after Skip"]
        );
    }

    fn result<'a>(r: &'a RunResult, id: &str) -> &'a CheckResult {
        r.results.iter().find(|c| c.spec.id == id).unwrap()
    }

    #[tokio::test]
    async fn an_early_dependency_runs_beside_and_its_pass_lets_the_result_stand() {
        let r = run_to_end(&[&A, &GUESS_ON_A, &AFTER_GUESS]).await;
        let (a, guess, after) = (
            result(&r, "t.a"),
            result(&r, "t.guess"),
            result(&r, "t.after_guess"),
        );
        assert_eq!(guess.outcome.status, Status::Pass);
        assert!(
            guess.started < a.started + a.duration,
            "it started beside t.a"
        );
        // Its dependents wait until its result stands, i.e. until t.a passed too.
        assert!(
            after.started >= a.started + a.duration,
            "{after:?} started before t.a finished"
        );
        // Both ran at once: the critical path is t.a then t.after_guess, not the sum.
        let cp = r.critical_path();
        assert!(
            cp >= a.duration + after.duration && cp < a.duration + guess.duration + after.duration,
            "critical path {cp:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_early_dependency_sets_aside_a_result_that_comes_later() {
        let r = run_to_end(&[&SLOW_FAIL, &GUESS_LONG, &AFTER_GUESS]).await;
        let guess = result(&r, "t.guess");
        assert_eq!(
            guess.outcome.status,
            Status::Skip(SkipReason::Dependency {
                dep: "t.slow_fail",
                verdict: Verdict::Fail
            })
        );
        // It was let finish (its end may have side effects to record), not cut off.
        assert!(guess.duration >= Duration::from_millis(300), "{guess:?}");
        assert_eq!(outcome(&r, "t.after_guess").verdict(), Verdict::Skip);
    }

    #[tokio::test]
    async fn a_failing_early_dependency_sets_aside_a_finished_result() {
        let r = run_to_end(&[&SLOW_FAIL, &GUESS_SHORT]).await;
        let guess = result(&r, "t.guess");
        assert_eq!(
            guess.outcome.status,
            Status::Skip(SkipReason::Dependency {
                dep: "t.slow_fail",
                verdict: Verdict::Fail
            })
        );
    }
}
