//! The fault lab runner: every scenario in `tests/scenarios/*.toml` is built in its own network
//! namespaces with real servers, proxies and packet filters (see [`super`]), netcheck
//! runs inside it, and its verdicts, catalog rows, skip reasons, exit code and run time are
//! held to the scenario's expectations. Then `docs/scenarios.md` is rendered from the
//! scenarios and their real outcomes and compared with the committed page.
//!
//! Needs root (CI is root); without it the lab says why and passes. Environment:
//! - `NETCHECK_BLESS=1` rewrites `docs/scenarios.md` instead of failing when it is stale.
//! - `NETCHECK_LAB_ONLY=a,b` runs only scenarios whose id contains one of these (no docs check).
//! - `NETCHECK_LAB_JOBS=N` scenarios at once (default 6: most of a run is waiting).
//! - `NETCHECK_LAB_DUMP=DIR` writes each scenario's JSON report to `DIR/<id>.json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::daemons::SetupError;
use super::docs::Outcome;
use super::scenario::{self, CheckExpect, Scenario};
use crate::support::pki::TestPki;
use crate::support::skip::{Lack, skip};
use serde_json::Value;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenarios() -> Vec<Scenario> {
    scenario::load_all(&manifest_dir().join("tests/scenarios"))
}

/// Runs without root: the scenario files parse, ids and rows are real, and the committed page
/// names every scenario.
#[test]
fn scenario_files_are_consistent() {
    let all = scenarios();
    assert!(!all.is_empty());
    let check_ids: BTreeSet<&str> = netcheck::registry::CHECKS.iter().map(|c| c.id).collect();
    for s in &all {
        for c in &s.expect.checks {
            assert!(
                check_ids.contains(c.id.as_str()),
                "{}: unknown check {}",
                s.id,
                c.id
            );
            assert!(
                ["pass", "warn", "fail", "skip"].contains(&c.verdict.as_str()),
                "{}: verdict {}",
                s.id,
                c.verdict
            );
            match (&c.row, c.verdict.as_str()) {
                (Some(row), "warn" | "fail") => assert!(
                    netcheck::catalog::find(row).is_some(),
                    "{}: unknown row {row}",
                    s.id
                ),
                (None, "warn" | "fail") => {
                    panic!("{}: {} {} must name its catalog row", s.id, c.id, c.verdict)
                }
                (Some(_), _) => {
                    panic!("{}: only a warning or failure cites a row ({})", s.id, c.id)
                }
                (None, _) => {}
            }
            assert_eq!(
                c.verdict == "skip",
                c.reason.is_some(),
                "{}: a skip (and only a skip) states its reason ({})",
                s.id,
                c.id
            );
        }
        assert!(
            super::docs::GROUPS.contains(&s.group.as_str()),
            "{}: group {} is not one of {:?}",
            s.id,
            s.group,
            super::docs::GROUPS
        );
        assert!(
            s.setup.emulator.is_none() || s.setup.server == super::scenario::Server::default(),
            "{}: [setup.server] configures nginx, which the emulator replaces",
            s.id
        );
        assert!(
            s.run.args.iter().any(|a| a == "--deadline"),
            "{}: state --deadline, so the run is held to a tight bound",
            s.id
        );
        assert!(
            matches!(s.expect.exit, 0 | 1),
            "{}: exit {}",
            s.id,
            s.expect.exit
        );
    }
    let page =
        std::fs::read_to_string(manifest_dir().join("docs/scenarios.md")).unwrap_or_default();
    for s in &all {
        assert!(
            page.contains(&format!("id=\"{}\"", s.id)),
            "docs/scenarios.md lacks {}: regenerate it (NETCHECK_BLESS=1 cargo test --test integration lab::runner)",
            s.id
        );
    }
}

#[test]
fn every_scenario_is_diagnosed_right() {
    if let Some(why) = super::netns::unavailable() {
        skip(Lack::Tool, why);
        return;
    }
    super::netns::sweep_stale();
    let only: Vec<String> = std::env::var("NETCHECK_LAB_ONLY")
        .map(|v| {
            v.split(',')
                .map(str::to_owned)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let all = scenarios();
    let selected: Vec<&Scenario> = all
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| s.id.contains(o.as_str())))
        .collect();
    let pki = TestPki::new();
    let root = pki.root_pem_file();
    let jobs = std::env::var("NETCHECK_LAB_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(6_usize);

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(selected.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(selected.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(s) = selected.get(i) else { break };
                    let outcome = run_one(i, s, &pki, root.path());
                    results.lock().unwrap()[i] = Some(outcome);
                }
            });
        }
    });
    let results: Vec<Outcome> = results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|o| o.expect("every scenario ran"))
        .collect();

    let mut failures = Vec::new();
    for (s, outcome) in selected.iter().zip(&results) {
        match outcome {
            Outcome::Skipped(why) => skip(Lack::Tool, format!("scenario {}: {why}", s.id)),
            Outcome::Broken(e) => failures.push(format!(
                "scenario {}: the lab could not be set up: {e}",
                s.id
            )),
            Outcome::Ran { problems, .. } if !problems.is_empty() => {
                failures.push(format!(
                    "scenario {} ({}):\n  {}",
                    s.id,
                    s.title,
                    problems.join("\n  ")
                ));
            }
            Outcome::Ran { elapsed, .. } => eprintln!("scenario {}: ok in {elapsed:.1} s", s.id),
        }
    }
    let complete = only.is_empty()
        && results
            .iter()
            .all(|o| matches!(o, Outcome::Ran { problems, .. } if problems.is_empty()));
    if complete {
        if let Err(stale) = check_docs(&selected, &results) {
            failures.push(stale);
        }
    } else {
        eprintln!("docs/scenarios.md not checked: not every scenario ran and passed");
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Builds the lab for one scenario, runs netcheck in it and lists every way the outcome differs
/// from the expectation.
fn run_one(n: usize, s: &Scenario, pki: &TestPki, root: &Path) -> Outcome {
    let lab = match super::Lab::build(n, s, pki, root) {
        Ok(lab) => lab,
        Err(SetupError::Unavailable(why)) => return Outcome::Skipped(why),
        Err(SetupError::Failed(e)) => return Outcome::Broken(e),
    };
    let run = lab.netcheck(&s.run).run();
    let mut problems = Vec::new();
    let limit = s.run.deadline_secs() + 1.0;
    if run.elapsed.as_secs_f64() > limit {
        problems.push(format!(
            "took {:.1} s, more than its deadline + 1 s ({limit} s)",
            run.elapsed.as_secs_f64()
        ));
    }
    if run.code != s.expect.exit {
        problems.push(format!(
            "exit code {} (expected {})",
            run.code, s.expect.exit
        ));
    }
    for secret in secrets(s) {
        if run.stdout.contains(&secret) || run.stderr.contains(&secret) {
            problems.push("a proxy password appears in netcheck's output".into());
        }
    }
    let report: Value = match serde_json::from_str(&run.stdout) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!(
                "stdout is not a JSON report ({e}); stderr:\n{}",
                run.stderr
            ));
            return Outcome::Ran {
                report: Value::Null,
                code: run.code,
                elapsed: run.elapsed.as_secs_f64(),
                problems,
            };
        }
    };
    if let Some(dir) = std::env::var_os("NETCHECK_LAB_DUMP") {
        let _ = std::fs::write(Path::new(&dir).join(format!("{}.json", s.id)), &run.stdout);
    }
    problems.extend(compare(&report, &s.expect.checks));
    problems.extend(s.expect.evidence.iter().filter_map(|e| e.mismatch(&report)));
    if !problems.is_empty() {
        let checks: Vec<String> = report["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{} {} {} | {} | {}",
                    c["id"], c["verdict"], c["diagnosis"]["id"], c["finding"], c["skip_reason"]
                )
            })
            .collect();
        problems.push(format!(
            "report:\n    {}\n  lab logs:\n{}",
            checks.join("\n    "),
            lab.logs()
        ));
    }
    Outcome::Ran {
        report,
        code: run.code,
        elapsed: run.elapsed.as_secs_f64(),
        problems,
    }
}

/// Checks a key-pair scenario skips without listing them: they belong to OAuth.
const KEY_PAIR_SKIPS: [&str; 5] = [
    "dns.idp",
    "tcp.idp",
    "tls.idp",
    "auth.oauth",
    "auth.oauth_account",
];

/// The differences between a report and the expected checks: listed checks must match, every
/// other check must pass, and no warning or failure may lack its catalog row or cite the generic
/// one.
fn compare(report: &Value, expected: &[CheckExpect]) -> Vec<String> {
    let mut problems = Vec::new();
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    for c in &checks {
        let id = c["id"].as_str().unwrap_or_default();
        let verdict = c["verdict"].as_str().unwrap_or_default();
        let row = c["diagnosis"]["id"].as_str();
        if matches!(verdict, "warn" | "fail") && row.is_none() {
            problems.push(format!("{id}: {verdict} without a catalog row"));
        }
        // Every lab fault has a precise cause; the generic row would mean netcheck missed it.
        if row == Some("tls-handshake") {
            problems.push(format!(
                "{id}: the generic `tls-handshake` row ({})",
                c["finding"]
            ));
        }
        let Some(want) = expected.iter().find(|e| e.id == id) else {
            // The scenarios connect with key-pair: the OAuth checks and the IdP's host checks do
            // not apply to them, and say so.
            if verdict == "skip" && KEY_PAIR_SKIPS.contains(&id) {
                continue;
            }
            if verdict != "pass" {
                problems.push(format!("{id}: {verdict} ({}), expected pass", c["finding"]));
            }
            continue;
        };
        if verdict != want.verdict {
            problems.push(format!(
                "{id}: {verdict}, expected {} ({})",
                want.verdict, c["finding"]
            ));
        }
        if row != want.row.as_deref() {
            problems.push(format!("{id}: row {row:?}, expected {:?}", want.row));
        }
        if let Some(reason) = &want.reason {
            let got = c["skip_reason"].as_str().unwrap_or_default();
            if !got.contains(reason.as_str()) {
                problems.push(format!("{id}: skip reason {got:?} lacks {reason:?}"));
            }
        }
    }
    for e in expected {
        if !checks.iter().any(|c| c["id"] == e.id.as_str()) {
            problems.push(format!("{}: not in the report", e.id));
        }
    }
    problems
}

/// Proxy passwords of a scenario, which must never show up in netcheck's output.
fn secrets(s: &Scenario) -> Vec<String> {
    let from_setup = s
        .setup
        .proxy
        .iter()
        .filter_map(|p| p.auth.as_ref())
        .map(|a| a.password.clone());
    let from_env = s
        .run
        .env
        .values()
        .filter_map(|v| url::Url::parse(v).ok())
        .filter_map(|u| u.password().map(str::to_owned));
    from_setup
        .chain(from_env)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Renders the page from this run; rewrites it under `NETCHECK_BLESS=1`, else fails when the
/// committed one differs.
fn check_docs(selected: &[&Scenario], results: &[Outcome]) -> Result<(), String> {
    let page = super::docs::render(selected, results);
    let path = manifest_dir().join("docs/scenarios.md");
    if std::env::var_os("NETCHECK_BLESS").is_some() {
        std::fs::write(&path, page).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    match std::fs::read_to_string(&path) {
        Ok(committed) if committed == page => Ok(()),
        _ => Err("docs/scenarios.md is stale: regenerate it with `NETCHECK_BLESS=1 cargo test --test integration lab::runner`".into()),
    }
}
