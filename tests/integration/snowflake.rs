//! The Snowflake checks against the embedded emulator, healthy and under each relevant fault,
//! through the real binary (`netcheck demo --fault …`): each asserts the check id, the verdict
//! and the catalog row. An in-process run proves the committed rows are exactly those sent.

use std::collections::BTreeSet;

use crate::support::run::{assert_check, check, netcheck};
use netcheck::emulator::{self, EmulatorConfig, defaults};
use netcheck::outcome::Verdict;
use netcheck::snowflake::rest::default_pipe;

/// `netcheck demo --fault FAULT --format json`.
fn demo(faults: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["demo", "--format", "json"];
    for f in faults {
        args.extend(["--fault", f]);
    }
    let r = netcheck(&args).run();
    (r.code, r.json())
}

/// Every check not named in `expect` passed or was skipped.
#[track_caller]
fn others_pass_or_skip(report: &serde_json::Value, expect: &[&str]) {
    for c in report["checks"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        if !expect.contains(&id) {
            assert!(
                matches!(c["verdict"].as_str(), Some("pass" | "skip")),
                "{id} should pass or skip:\n{c:#}"
            );
        }
    }
}

#[test]
fn healthy_emulator_passes_every_check_including_the_round_trip() {
    // Budgets scaled: a loaded machine must not turn this healthy run into latency warnings.
    let r = netcheck(&["demo", "--format", "json", "--budget-scale", "5"]).run();
    let (code, report) = (r.code, r.json());
    assert_eq!(code, 0, "{report:#}");
    for id in [
        "auth.keypair",
        "auth.jwt",
        "clock.skew",
        "policy.network",
        "discovery.hostname",
        "auth.scoped_token",
        "dns.ingest",
        "tcp.ingest",
        "tls.ingest",
        "stage.info",
        "dns.stage",
        "tcp.stage",
        "tls.stage",
        "stage.reach",
        "stream.open",
        "stream.append",
        "stream.commit",
        "stream.drop",
    ] {
        assert_check(&report, id, "pass", None);
    }
    assert_eq!(
        check(&report, "discovery.hostname")["evidence"]["ingest_host"]["host"],
        "myorg-myaccount.us-west-2.ingest.snowflakecomputing.com"
    );
    assert_eq!(
        check(&report, "policy.network")["evidence"]["egress_ip"],
        "127.0.0.1"
    );
    assert!(
        check(&report, "auth.scoped_token")["evidence"]["lifetime_s"]
            .as_i64()
            .unwrap()
            > 0
    );
}

#[test]
fn faults_are_diagnosed_with_their_rows() {
    for (fault, id, verdict, row) in [
        ("clock-offset=90s", "clock.skew", "fail", "clock-skew"),
        ("clock-offset=40s", "clock.skew", "warn", "clock-skew"),
        ("missing-pipe", "stream.open", "fail", "pipe-not-found"),
        ("missing-privilege", "stream.open", "fail", "pipe-not-found"),
        ("channel-status", "stream.open", "fail", "channel-status"),
        ("throttle@open", "stream.open", "fail", "throttled"),
        (
            "server-error=500@append",
            "stream.append",
            "fail",
            "server-error",
        ),
        ("reset@status", "stream.commit", "fail", "tcp-reset"),
        ("latency=6s@status", "stream.commit", "fail", "timeout"),
        (
            "reopened",
            "stream.append",
            "fail",
            "stale-continuation-token",
        ),
        (
            "latency=400ms@open",
            "stream.open",
            "warn",
            "latency-budget",
        ),
        // The check that made the slow request warns (its time is the request's); discovery,
        // which only reads the answer, passes.
        (
            "latency=400ms@hostname",
            "auth.jwt",
            "warn",
            "latency-budget",
        ),
        (
            "latency=300ms@token",
            "auth.scoped_token",
            "warn",
            "latency-budget",
        ),
        ("tls12-only@ingest", "tls.ingest", "warn", "tls-legacy-only"),
        ("unknown-ca@ingest", "tls.ingest", "fail", "tls-untrusted"),
        ("expired-cert@account", "tls.account", "fail", "tls-expired"),
        (
            "network-policy@ingest",
            "stream.open",
            "fail",
            "network-policy",
        ),
        (
            "invalid-token@open",
            "stream.open",
            "fail",
            "token-rejected",
        ),
        ("forbidden@hostname", "auth.jwt", "fail", "forbidden"),
        ("conflict@open", "stream.open", "fail", "channel-conflict"),
        ("row-errors", "stream.commit", "fail", "rows-errored"),
        (
            "hostname=",
            "discovery.hostname",
            "fail",
            "discovery-failed",
        ),
    ] {
        let (code, report) = demo(&[fault]);
        assert_check(&report, id, verdict, Some(row));
        assert_eq!(code, i32::from(verdict == "fail"), "{fault}");
        // The SDK's :pipe-info names the pipe on the ingest host too: a fault that refuses the
        // pipe or the caller there refuses stage.info the same way, with the same row.
        if check(&report, "stage.info")["verdict"] == "fail" {
            assert_check(&report, "stage.info", "fail", Some(row));
            others_pass_or_skip(&report, &[id, "stage.info"]);
        } else {
            others_pass_or_skip(&report, &[id]);
        }
        // The test channel is dropped whenever it was opened, also after a later failure.
        if check(&report, "stream.open")["verdict"] == "pass" {
            assert_check(&report, "stream.drop", "pass", None);
        }
    }
}

#[test]
fn a_network_policy_names_the_egress_ip_and_the_fix() {
    let (code, report) = demo(&["network-policy"]);
    assert_eq!(code, 1);
    assert_check(&report, "auth.jwt", "fail", Some("network-policy"));
    assert_check(&report, "policy.network", "fail", Some("network-policy"));
    let ev = &check(&report, "policy.network")["evidence"];
    assert_eq!(ev["egress_ip"], "127.0.0.1");
    assert!(
        ev["allow_sql"][1]
            .as_str()
            .unwrap()
            .contains("'127.0.0.1/32'")
    );
    // Everything after the refused JWT is skipped with the reason, not failed again.
    assert_check(&report, "discovery.hostname", "skip", None);
    assert_eq!(
        check(&report, "stream.open")["skip_reason"],
        "skipped because auth.jwt failed",
        "the root cause is named"
    );
}

#[test]
fn rows_never_committed_time_out_with_a_clear_finding() {
    let (code, report) = demo(&["no-commit"]);
    assert_eq!(code, 1);
    assert_check(&report, "stream.commit", "fail", Some("commit-timeout"));
    let finding = check(&report, "stream.commit")["finding"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(finding.contains("not committed"), "{finding}");
    // Words, not a Rust value: no "None", no "Some(…)", no "30s".
    assert!(
        finding.contains("nothing committed yet") && !finding.contains("None"),
        "{finding}"
    );
    assert_check(&report, "stream.drop", "pass", None);
}

#[test]
fn without_credentials_snowflake_checks_are_skipped_and_network_checks_run() {
    let pki = crate::support::pki::TestPki::new();
    let server = crate::support::tls_servers::TlsServer::start(
        crate::support::tls_servers::TlsServerSpec::new(pki.good()),
    );
    let host = "myorg-myaccount.snowflakecomputing.com";
    let port = server.addr.port();
    let ca = pki.root_pem_file();
    let r = netcheck(&[
        "run",
        "--account",
        &format!("https://{host}:{port}"),
        "--resolve",
        &format!("{host}:{port}:127.0.0.1"),
        "--format",
        "json",
        "--ca-file",
        ca.path().to_str().unwrap(),
    ])
    .run();
    assert_eq!(r.code, 0, "a skip is not a failure: {}", r.stdout);
    let report = r.json();
    assert_check(&report, "tls.account", "pass", None);
    for id in [
        "auth.keypair",
        "auth.jwt",
        "policy.network",
        "discovery.hostname",
        "auth.scoped_token",
        "dns.ingest",
        "tcp.ingest",
        "tls.ingest",
    ] {
        assert_check(&report, id, "skip", None);
        assert_eq!(
            check(&report, id)["skip_reason"],
            "no user or private key configured",
            "{id}"
        );
    }
}

#[tokio::test]
async fn committed_rows_are_exactly_the_rows_sent() {
    let key = emulator::default_key();
    let emu = crate::support::emulate::spawn_emulator(|_| {}).await;
    // More rows than one request carries, so continuation tokens are followed.
    let rows = 1234;
    let settings = netcheck::demo::settings_for(&emu, key, rows).unwrap();
    let result = crate::support::emulate::run_all(settings).await;
    for r in &result.results {
        assert!(
            matches!(r.outcome.verdict(), Verdict::Pass | Verdict::Skip),
            "{}: {:?}",
            r.spec.id,
            r.outcome.finding
        );
    }
    let channel = result
        .results
        .iter()
        .find(|r| r.spec.id == "stream.open")
        .unwrap()
        .outcome
        .evidence["channel"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = emu.rows(
        defaults::DATABASE,
        defaults::SCHEMA,
        &default_pipe(defaults::TABLE),
    );
    let ours: Vec<&serde_json::Value> = stored
        .iter()
        .filter(|r| r["netcheck_channel"] == channel.as_str())
        .collect();
    let seqs: Vec<u64> = ours.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs.len(), rows, "nothing lost, nothing doubled");
    assert_eq!(seqs.iter().copied().collect::<BTreeSet<_>>().len(), rows);
    assert_eq!(seqs, (0..rows as u64).collect::<Vec<_>>(), "in order");
    let appends = emu
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/rows"))
        .count();
    assert_eq!(appends, 3, "1234 rows in batches of 500");
}

/// Runs the binary (JSON) against an in-process emulator configured by `configure`.
async fn run_against(configure: impl FnOnce(&mut EmulatorConfig)) -> serde_json::Value {
    run_against_with(configure, |_, _| Vec::new()).await
}

/// As [`run_against`], with more arguments (`extra` sees the emulator and the directory holding
/// its CA and the key).
async fn run_against_with(
    configure: impl FnOnce(&mut EmulatorConfig),
    extra: impl FnOnce(&emulator::Emulator, &std::path::Path) -> Vec<String>,
) -> serde_json::Value {
    let emu = crate::support::emulate::spawn_emulator(configure).await;
    let dir = crate::support::emulate::TempDir::new("sf");
    let mut args = crate::support::emulate::run_args(&emu, dir.path());
    args.extend(extra(&emu, dir.path()));
    // Budgets scaled: these tests are not about latency, and auth.jwt (which many of them
    // assert passes) judges the run's first request, the one a loaded machine slows most.
    args.extend(["--format", "json", "--budget-scale", "5"].map(String::from));
    tokio::task::spawn_blocking(move || netcheck(&args).run().json())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_others_can_read_is_key_permissions() {
    let report = run_against_with(
        |_| {},
        |_, dir| {
            let key = dir.join(crate::support::emulate::KEY_FILE);
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
            Vec::new()
        },
    )
    .await;
    assert_check(&report, "auth.keypair", "warn", Some("key-permissions"));
    let finding = check(&report, "auth.keypair")["finding"].as_str().unwrap();
    assert!(finding.contains("chmod 600"), "{finding}");
    assert_check(&report, "auth.jwt", "pass", None);
}

/// Discovery answers a host outside Snowflake's domains (as a rewriting proxy would): discovery
/// warns, the token exchange for that scope is refused, and the host's certificate does not match.
#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_discovery_answer_is_an_unexpected_host() {
    const ELSEWHERE: &str = "ingest.example.net";
    let report = run_against_with(
        |c| c.faults = vec![format!("hostname={ELSEWHERE}").parse().unwrap()],
        // The rewritten name is answered too, so no query leaves for the system resolver.
        |emu, _| {
            vec![
                "--resolve".into(),
                format!("{ELSEWHERE}:{}:127.0.0.1", emu.addr().port()),
            ]
        },
    )
    .await;
    assert_check(
        &report,
        "discovery.hostname",
        "warn",
        Some("discovery-unexpected-host"),
    );
    assert_check(&report, "auth.scoped_token", "fail", Some("api-error"));
    let finding = check(&report, "auth.scoped_token")["finding"]
        .as_str()
        .unwrap();
    assert!(finding.contains("invalid_scope"), "{finding}");
    assert_check(&report, "dns.ingest", "pass", None);
    assert_check(&report, "tls.ingest", "fail", Some("tls-hostname"));
}

fn other_key_pem() -> String {
    netcheck::snowflake::keys::PrivateKey::generate(2048)
        .unwrap()
        .public_key()
        .to_pem()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_key_is_jwt_rejected_with_both_fingerprints_to_compare() {
    let other = other_key_pem();
    let report = run_against(|c| c.users[0].rsa_public_key = Some(other)).await;
    assert_check(&report, "auth.jwt", "fail", Some("jwt-rejected"));
    let finding = check(&report, "auth.jwt")["finding"]
        .as_str()
        .unwrap()
        .to_owned();
    let ours = emulator::default_key().public_key().fingerprint();
    assert!(
        finding.contains(&ours) && finding.contains("RSA_PUBLIC_KEY_FP"),
        "{finding}"
    );
    assert!(
        check(&report, "auth.keypair")["evidence"]["register_sql"]
            .as_str()
            .unwrap()
            .starts_with("ALTER USER NETCHECK_USER SET RSA_PUBLIC_KEY='MII")
    );
    assert_check(&report, "discovery.hostname", "skip", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_registered_as_rsa_public_key_2_is_accepted() {
    let other = other_key_pem();
    let ours = emulator::default_key().public_key().to_pem().unwrap();
    let report = run_against(|c| {
        c.users[0].rsa_public_key = Some(other);
        c.users[0].rsa_public_key_2 = Some(ours);
    })
    .await;
    assert_check(&report, "auth.jwt", "pass", None);
    assert_check(&report, "auth.scoped_token", "pass", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_level_network_policy_is_network_policy() {
    let report = run_against(|c| {
        c.users[0].network_policy = Some(netcheck::emulator::NetworkPolicy {
            allowed: vec!["192.0.2.0/24".parse().unwrap()],
            blocked: vec![],
        });
    })
    .await;
    assert_check(&report, "policy.network", "fail", Some("network-policy"));
    assert_eq!(
        check(&report, "policy.network")["evidence"]["egress_ip"],
        "127.0.0.1"
    );
}

/// The round trip against an emulator committing after `commit_delay`: `stream.commit`'s
/// evidence, and the status requests the emulator answered.
async fn commit_polls(commit_delay: std::time::Duration) -> (serde_json::Value, usize) {
    let emu = crate::support::emulate::spawn_emulator(|c| c.commit_delay = commit_delay).await;
    let settings = netcheck::demo::settings_for(&emu, emulator::default_key(), 1).unwrap();
    let result = crate::support::emulate::run_all(settings).await;
    let commit = result
        .results
        .iter()
        .find(|r| r.spec.id == "stream.commit")
        .unwrap();
    assert_eq!(
        commit.outcome.verdict(),
        Verdict::Pass,
        "{}",
        commit.outcome.finding
    );
    let status_calls = emu
        .request_log()
        .iter()
        .filter(|r| r.endpoint == netcheck::snowflake::rest::ApiCall::Status)
        .count();
    (commit.outcome.evidence.clone(), status_calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_is_polled_right_after_the_append_then_backing_off() {
    // Committed as soon as appended: the first poll, made at once, sees it.
    let (evidence, calls) = commit_polls(std::time::Duration::ZERO).await;
    assert_eq!(
        (evidence["polls"].as_u64(), calls),
        (Some(1), 1),
        "{evidence:#}"
    );
    // Committed after 600 ms: polls at 0, 10, 25, 48, 81, 132, 208, 322, 493 and 743 ms at the
    // most (a busy machine only makes them later, so fewer), never the 60 a 10 ms poll would be.
    let (evidence, calls) = commit_polls(std::time::Duration::from_millis(600)).await;
    let polls = evidence["polls"].as_u64().unwrap();
    assert_eq!(polls, calls as u64, "every status request is counted");
    assert!((3..=10).contains(&polls), "{evidence:#}");
}

#[test]
fn one_network_policy_refusal_is_one_root_cause_with_the_egress_ip_in_its_fix() {
    let (code, report) = demo(&["network-policy"]);
    assert_eq!(code, 1);
    assert_check(&report, "auth.jwt", "fail", Some("network-policy"));
    assert_check(&report, "policy.network", "fail", Some("network-policy"));
    let causes = report["root_causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{causes:#?}");
    assert_eq!(causes[0]["row"], "network-policy");
    assert_eq!(causes[0]["verdict"], "fail");
    assert_eq!(
        causes[0]["checks"],
        serde_json::json!(["auth.jwt", "policy.network"])
    );
    let fix = causes[0]["fix"].as_str().unwrap();
    assert!(fix.contains("ALLOWED_IP_LIST = ('127.0.0.1/32'"), "{fix}");
    assert!(fix.contains("IN USER NETCHECK_USER"), "{fix}");
}

#[test]
fn slow_phases_are_one_latency_root_cause() {
    let (code, report) = demo(&["latency=400ms@open", "latency=400ms@drop"]);
    assert_eq!(code, 0);
    let causes = report["root_causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{causes:#?}");
    assert_eq!(causes[0]["row"], "latency-budget");
    assert_eq!(
        causes[0]["checks"],
        serde_json::json!(["stream.open", "stream.drop"])
    );
    // The critical path is listed, first to last, and ends with the run's last check.
    let path = report["critical_path"].as_array().unwrap();
    assert_eq!(path.last().unwrap(), "stream.drop", "{path:?}");
}
