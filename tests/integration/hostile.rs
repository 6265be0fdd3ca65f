//! netcheck against a hostile HTTPS server (`support/hostile.rs`) in front of the emulator:
//! oversized, endless and drip-fed answers, redirects of every kind, echoed credentials, control
//! characters, a huge certificate chain and garbage after the handshake. Every run, whatever the
//! server does, ends by its `--deadline` + 1 s, peaks under 64 MB of RSS, does not panic, leaks no
//! secret (key material, JWT, token) into stdout, stderr (logs at trace level) or the `JUnit`
//! file, writes well-formed `JUnit`, and names the right check, verdict and catalog row.

use std::time::Duration;

use crate::support::emulate::{KEY_FILE, TempDir, run_args_at, spawn_emulator};
use crate::support::hostile::{Answer, Hostile, Tls};
use crate::support::run::{Run, assert_check, check, netcheck};
use crate::support::skip::{Lack, skip};
use netcheck::snowflake::rest::ApiCall;
use serde_json::Value;

/// The step timeout and the run deadline of every run here (seconds).
const TIMEOUT: &str = "2";
const DEADLINE: f64 = 8.0;
/// The peak resident memory every run stays under, whatever the server sends.
const MAX_RSS_KB: u64 = 64 * 1024;
/// A name a redirect points to, pinned to the hostile server: a request for it would show that a
/// redirect was followed (without sending a DNS query anywhere).
const PORTAL: &str = "portal.netcheck.test";

/// What one run left behind.
struct Outputs {
    report: Value,
    table: String,
}

/// Runs netcheck against `hostile` twice (JSON with trace logs, and the table), each with a
/// `JUnit` file, and asserts what must hold whatever the server does. Returns the JSON report and
/// the table.
async fn run_hostile(
    emu: &netcheck::emulator::Emulator,
    hostile: &Hostile,
    extra: &[&str],
) -> Outputs {
    run_hostile_at(emu, hostile, extra, None).await
}

/// [`run_hostile`], the table laid out for a terminal `columns` wide when given.
async fn run_hostile_at(
    emu: &netcheck::emulator::Emulator,
    hostile: &Hostile,
    extra: &[&str],
    columns: Option<usize>,
) -> Outputs {
    let dir = TempDir::new("hostile");
    let mut args = run_args_at(emu, dir.path(), hostile.addr.port(), &hostile.ca_pem);
    let port = hostile.addr.port().to_string();
    args.extend(
        [
            "--resolve",
            &format!("{PORTAL}:{port}:127.0.0.1"),
            "--timeout",
            TIMEOUT,
            "--deadline",
            &DEADLINE.to_string(),
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let key = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
    let mut outputs = Vec::new();
    for format in ["json", "table"] {
        let junit = dir.path().join(format!("junit-{format}.xml"));
        let rss = dir.path().join(format!("rss-{format}"));
        let mut run = netcheck(&args).args(&[
            "--format",
            format,
            "--junit",
            junit.to_str().unwrap(),
            "-vv",
        ]);
        if format == "json" {
            run = run.env("NETCHECK_LOG", "trace");
        }
        if let Some(columns) = columns {
            run = run.env("COLUMNS", &columns.to_string());
        }
        let timed = std::path::Path::new("/usr/bin/time").exists();
        if timed {
            run = run.via(&["/usr/bin/time", "-f", "%M", "-o", rss.to_str().unwrap()]);
        }
        let r: Run = tokio::task::spawn_blocking(move || run.run())
            .await
            .unwrap();
        let junit = std::fs::read_to_string(&junit).unwrap_or_default();
        assert_common(&r, &junit, &key, format);
        if timed {
            // GNU time writes "Command exited with non-zero status 1" first on a failed run.
            let text = std::fs::read_to_string(&rss).unwrap();
            let kb: u64 = text.lines().last().unwrap_or_default().parse().unwrap();
            println!("{format} run: peak RSS {kb} KiB, {:?}", r.elapsed);
            assert!(kb < MAX_RSS_KB, "{format} run peaked at {kb} KiB of RSS");
        } else {
            skip(
                Lack::Tool,
                "peak RSS not measured (/usr/bin/time, apt package time, is missing)",
            );
        }
        outputs.push(r.stdout);
    }
    let table = outputs.pop().unwrap();
    let report: Value = serde_json::from_str(&outputs.pop().unwrap()).unwrap();
    Outputs { report, table }
}

/// Bounded, no panic, no secret, valid `JUnit`, no raw control character on stdout.
#[track_caller]
fn assert_common(r: &Run, junit: &str, key_pem: &str, format: &str) {
    let context = format!("{format} run:\n{}\n{}", r.stdout, r.stderr);
    assert!(
        r.elapsed <= Duration::from_secs_f64(DEADLINE + 1.0),
        "{format} run took {:?}, past --deadline {DEADLINE} s + 1 s\n{context}",
        r.elapsed
    );
    assert!(
        matches!(r.code, 0 | 1),
        "{format} run exited {}\n{context}",
        r.code
    );
    assert!(!r.stderr.contains("panicked"), "a panic\n{context}");
    assert!(
        !r.stdout.contains("internal error"),
        "a check panicked\n{context}"
    );
    roxmltree::Document::parse(junit)
        .unwrap_or_else(|e| panic!("the {format} run's JUnit is not XML ({e}):\n{junit}"));
    let key_runs: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| {
            l.as_bytes()
                .chunks(16)
                .filter(|c| c.len() == 16)
                .map(|c| std::str::from_utf8(c).unwrap())
        })
        .collect();
    for (name, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("junit", &junit.to_owned()),
    ] {
        if let Some(jwt) = jwt_in(text) {
            panic!("{format} {name} carries a JWT: {jwt}\n{context}");
        }
        assert!(
            !text.contains("eyJ"),
            "{format} {name} carries a JWT part\n{context}"
        );
        for run in &key_runs {
            assert!(
                !text.contains(run),
                "{format} {name} carries key material {run}"
            );
        }
    }
    for (name, text) in [("stdout", &r.stdout), ("junit", &junit.to_owned())] {
        if let Some(c) = text
            .chars()
            .find(|c| (c.is_control() && !matches!(c, '\n' | '\t')) || *c == '\u{202e}')
        {
            panic!("{format} {name} carries the raw control character {c:?}\n{context}");
        }
    }
}

/// A JWT in `text`: three base64url parts joined by dots, the first a JSON header (`eyJ`).
fn jwt_in(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            word.starts_with("eyJ") && parts.len() == 3 && parts.iter().all(|p| p.len() >= 8)
        })
}

/// The error a call ended with, from a check's evidence.
fn transport_error(report: &Value, id: &str) -> Value {
    check(report, id)["evidence"]["transport_error"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_endless_answers_are_cut_at_the_cap_of_their_call() {
    let emu = spawn_emulator(|_| {}).await;
    let big = 200 * 1024 * 1024;
    for (endpoint, answer, full, id, cap) in [
        (
            ApiCall::Hostname,
            Answer::Oversized {
                len: big,
                declared: true,
            },
            false,
            "auth.jwt",
            65_536,
        ),
        (
            ApiCall::Hostname,
            Answer::Oversized {
                len: big,
                declared: false,
            },
            false,
            "auth.jwt",
            65_536,
        ),
        (
            ApiCall::Token,
            Answer::Endless,
            false,
            "auth.scoped_token",
            65_536,
        ),
        (
            ApiCall::Statements,
            Answer::Oversized {
                len: big,
                declared: false,
            },
            false,
            "policy.network",
            8_388_608,
        ),
        (
            ApiCall::Status,
            Answer::Endless,
            true,
            "stream.commit",
            8_388_608,
        ),
    ] {
        let hostile = Hostile::start(&emu, Tls::Normal, vec![(endpoint, answer.clone())]);
        let out = run_hostile(&emu, &hostile, if full { &["--full"] } else { &[] }).await;
        assert_check(&out.report, id, "fail", Some("answer-too-large"));
        let error = transport_error(&out.report, id);
        assert_eq!(error["kind"], "too_large", "{answer:?}: {error:#}");
        assert_eq!(error["cap"], cap, "{answer:?}: {error:#}");
        if full {
            // The cut-off answer did not stop the cleanup.
            assert_check(&out.report, "stream.drop", "pass", None);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drip_fed_answer_ends_by_the_step_timeout() {
    let emu = spawn_emulator(|_| {}).await;
    let hostile = Hostile::start(&emu, Tls::Normal, vec![(ApiCall::Hostname, Answer::Drip)]);
    let out = run_hostile(&emu, &hostile, &[]).await;
    assert_check(&out.report, "auth.jwt", "fail", Some("timeout"));
    assert_check(&out.report, "discovery.hostname", "skip", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_redirect_is_followed_and_each_is_a_finding() {
    let emu = spawn_emulator(|_| {}).await;
    let account = emu.account_host().to_owned();
    for (endpoint, status, to_portal, full, id) in [
        (ApiCall::Hostname, 301, true, false, "auth.jwt"),
        (ApiCall::Hostname, 302, false, false, "auth.jwt"),
        (ApiCall::Hostname, 307, true, false, "auth.jwt"),
        (ApiCall::Token, 308, true, false, "auth.scoped_token"),
        (ApiCall::Statements, 302, true, false, "policy.network"),
        (ApiCall::Drop, 307, true, true, "stream.drop"),
    ] {
        let hostile = Hostile::start(&emu, Tls::Normal, Vec::new());
        // To another host (pinned to this server, so a followed redirect would show in its log),
        // or to the same host over plain http.
        let port = hostile.addr.port();
        let location = if to_portal {
            format!("https://{PORTAL}:{port}/login?next=snowflake")
        } else {
            format!("http://{account}:{port}/v2/streaming/hostname")
        };
        hostile.answer(
            endpoint,
            Answer::Redirect {
                status,
                location: location.clone(),
            },
        );
        let before = emu.request_log().len();
        let out = run_hostile(&emu, &hostile, if full { &["--full"] } else { &[] }).await;
        assert_check(&out.report, id, "fail", Some("redirected"));
        let error = transport_error(&out.report, id);
        assert_eq!(error["status"], status, "{error:#}");
        // Reported without its query: a login redirect's query can carry a code or state.
        let shown = location.split('?').next().unwrap();
        assert_eq!(error["location"], shown, "{error:#}");
        assert!(
            hostile
                .received()
                .iter()
                .all(|r| !r.host.starts_with(PORTAL)),
            "a redirect was followed: {:?}",
            hostile.received()
        );
        let log = &emu.request_log()[before..];
        match endpoint {
            // No ingest host is taken from a redirected discovery.
            ApiCall::Hostname => {
                assert_check(&out.report, "discovery.hostname", "skip", None);
                assert!(
                    check(&out.report, "discovery.hostname")["evidence"]["ingest_host"].is_null()
                );
            }
            // A redirected DELETE is not "dropped": the channel is still there.
            ApiCall::Drop => assert!(
                log.iter().all(|r| r.endpoint != ApiCall::Drop),
                "the DELETE reached the emulator"
            ),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn echoed_credentials_are_masked_in_every_output() {
    let emu = spawn_emulator(|_| {}).await;
    for (endpoint, answer, full, id, row) in [
        (
            ApiCall::Hostname,
            Answer::Echo {
                status: 401,
                code: "390144",
            },
            false,
            "auth.jwt",
            "jwt-rejected",
        ),
        (
            ApiCall::Token,
            Answer::Echo {
                status: 400,
                code: "invalid_request",
            },
            false,
            "auth.scoped_token",
            "api-error",
        ),
        (
            ApiCall::Append,
            Answer::Echo {
                status: 400,
                code: "ERR_ECHO",
            },
            true,
            "stream.append",
            "api-error",
        ),
    ] {
        let hostile = Hostile::start(&emu, Tls::Normal, vec![(endpoint, answer)]);
        let out = run_hostile(&emu, &hostile, if full { &["--full"] } else { &[] }).await;
        assert_check(&out.report, id, "fail", Some(row));
        // The echo reached the report, and the credential in it was masked.
        let finding = check(&out.report, id)["finding"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(finding.contains("Authorization: Bearer ***"), "{finding}");
        assert!(out.table.contains("Bearer ***"), "{}", out.table);
    }
}

/// The echoed JWT is far wider than the finding's column at 60 columns: the table breaks it over
/// lines. It is masked before that, so no piece of it is left to show.
#[tokio::test(flavor = "multi_thread")]
async fn an_echoed_jwt_is_masked_before_a_narrow_table_wraps_it() {
    let emu = spawn_emulator(|_| {}).await;
    let echo = Answer::Echo {
        status: 401,
        code: "390144",
    };
    let hostile = Hostile::start(&emu, Tls::Normal, vec![(ApiCall::Hostname, echo)]);
    let out = run_hostile_at(&emu, &hostile, &[], Some(60)).await;
    assert_check(&out.report, "auth.jwt", "fail", Some("jwt-rejected"));
    let sent = hostile
        .received()
        .into_iter()
        .find_map(|r| r.authorization.strip_prefix("Bearer ").map(str::to_owned))
        .expect("the JWT reached the hostile server");
    assert!(sent.len() > 200, "a JWT wider than the column: {sent}");
    assert!(out.table.contains("Bearer ***"), "{}", out.table);
    for piece in sent.as_bytes().chunks(12).filter(|c| c.len() == 12) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(
            !out.table.contains(piece),
            "{piece} of the JWT in\n{}",
            out.table
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn control_characters_from_a_server_are_shown_escaped() {
    let emu = spawn_emulator(|_| {}).await;
    let message = "\u{1b}]0;owned\u{7}\u{1b}[2J\rall checks PASS\u{9b}31m\u{202e}";
    let hostile = Hostile::start(
        &emu,
        Tls::Normal,
        vec![(
            ApiCall::Hostname,
            Answer::Text {
                status: 403,
                message: message.into(),
            },
        )],
    );
    let out = run_hostile(&emu, &hostile, &[]).await;
    assert_check(&out.report, "auth.jwt", "fail", Some("forbidden"));
    assert!(
        out.table
            .contains("\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}all checks PASS\\u{9b}31m\\u{202e}"),
        "{}",
        out.table
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_tls_fails_the_handshake_or_the_call_not_the_run() {
    let emu = spawn_emulator(|_| {}).await;
    let huge = Hostile::start(&emu, Tls::HugeChain, Vec::new());
    let out = run_hostile(&emu, &huge, &[]).await;
    assert_check(&out.report, "tls.account", "fail", Some("tls-handshake"));
    let garbage = Hostile::start(&emu, Tls::GarbageAfterHandshake, Vec::new());
    let out = run_hostile(&emu, &garbage, &[]).await;
    assert_check(&out.report, "tls.account", "pass", None);
    assert_check(&out.report, "auth.jwt", "fail", Some("api-unreachable"));
}
