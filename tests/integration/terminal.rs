//! What a person reads, pinned by snapshots (insta, in `snapshots/`): the table of `netcheck
//! run` and `netcheck demo` (stdout is not a terminal, so no colour), `netcheck explain` and the
//! help. What differs from run to run — timings, ports, timestamps, channel names, key
//! fingerprints, clock skew, commit polls, token lifetimes — becomes a placeholder; since the
//! table's column widths follow those values, its padding is collapsed too. After a deliberate
//! change: `INSTA_UPDATE=always cargo test --test integration terminal::`, then review the
//! `.snap` diff (or use `cargo insta review`). CI (`CI=true`) never writes snapshots: a mismatch
//! fails.

use insta::assert_snapshot;

use crate::support::pki::{ServerCert, TestPki};
use crate::support::run::{Run, netcheck};
use crate::support::tls_servers::{TlsServer, TlsServerSpec};

const HOST: &str = "myorg-myaccount.snowflakecomputing.com";

/// Snapshot settings whose filters replace what varies between runs and machines.
fn stable() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (pattern, placeholder) in [
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[timestamp]"),
        (r"(127\.0\.0\.1|snowflakecomputing\.com):\d+", "$1:[port]"),
        (r"\d+(\.\d+)? ms\b", "[ms]"),
        (r"SHA256:[A-Za-z0-9+/]{43}=", "SHA256:[fingerprint]"),
        (r"netcheck_\d+_[0-9a-f]+", "netcheck_[channel]"),
        (r"\(\d+ status checks?\)", "([n] status checks)"),
        // The token's lifetime is counted from its issue time, so it can round down to 59 min.
        (r"valid for \d+ min", "valid for [n] min"),
        (
            r"local clock is \d+ s (ahead of|behind)",
            "local clock is [skew]",
        ),
        // Column widths follow the values above: collapse the padding and the rules.
        (r" +([┆│])", " $1"),
        // … and the times are right-aligned.
        (r"([┆│])  +", "$1 "),
        ("─+", "─"),
        ("═+", "═"),
    ] {
        settings.add_filter(pattern, placeholder);
    }
    settings
}

/// `netcheck run` (table output) against a loopback TLS server presenting `cert`.
fn run_table(pki: &TestPki, cert: ServerCert) -> Run {
    let server = TlsServer::start(TlsServerSpec::new(cert));
    let port = server.addr.port();
    let ca = pki.root_pem_file();
    netcheck(&[
        "run",
        "--account",
        &format!("https://{HOST}:{port}"),
        "--resolve",
        &format!("{HOST}:{port}:127.0.0.1"),
        "--timeout",
        "5",
        "--ca-file",
        ca.path().to_str().unwrap(),
    ])
    .run()
}

#[test]
fn run_table_for_a_healthy_target() {
    let pki = TestPki::new();
    let r = run_table(&pki, pki.good());
    assert_eq!(r.code, 0, "{}", r.stderr);
    stable().bind(|| assert_snapshot!(r.stdout));
}

#[test]
fn run_table_with_a_failure_and_its_diagnosis() {
    let pki = TestPki::new();
    let r = run_table(&pki, pki.expired());
    assert_eq!(r.code, 1, "{}", r.stderr);
    stable().bind(|| assert_snapshot!(r.stdout));
}

#[test]
fn demo_table() {
    // Budgets scaled: a loaded machine must not turn the healthy table into latency warnings.
    let r = netcheck(&["demo", "--budget-scale", "5"]).run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    stable().bind(|| assert_snapshot!(r.stdout));
}

#[test]
fn explain_one_row() {
    let r = netcheck(&["explain", "tls-expired"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_snapshot!(r.stdout);
}

#[test]
fn explain_lists_every_row() {
    let r = netcheck(&["explain"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_snapshot!(r.stdout);
}

#[test]
fn help() {
    let r = netcheck(&["--help"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_snapshot!(r.stdout);
}

#[test]
fn run_help() {
    let r = netcheck(&["run", "--help"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_snapshot!(r.stdout);
}

/// The table and the blocks fit the width `COLUMNS` gives (the layouts themselves are pinned by
/// the snapshots in `src/report/snapshots/`, made from a fixed report).
#[test]
fn demo_output_fits_the_terminal_width() {
    for width in [40, 80, 160] {
        let r = netcheck(&["demo", "--fault", "network-policy"])
            .env("COLUMNS", &width.to_string())
            .run();
        assert_eq!(r.code, 1, "{}", r.stderr);
        for line in r.stdout.lines() {
            // Only a word longer than a line may overflow: it is not broken, to be copied.
            assert!(
                line.chars().count() <= width || !line.trim().contains(' '),
                "{width} columns: {line:?}"
            );
        }
        let table_top = r.stdout.lines().find(|l| l.starts_with('┌'));
        match width {
            40 => assert!(table_top.is_none(), "a list at 40 columns"),
            _ => assert_eq!(table_top.unwrap().chars().count(), width, "full width"),
        }
        assert_eq!(r.stdout.contains("critical path  ▒"), width >= 100);
        assert_eq!(r.stdout.matches("FAIL [network-policy]").count(), 1);
    }
}
