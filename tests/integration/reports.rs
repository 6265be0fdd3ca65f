//! The machine-readable reports, parsed back with real parsers: the `netcheck/1` JSON document
//! and `JUnit` XML (an XML parser, and the Jenkins `JUnit` schema via xmllint when present).

use std::path::PathBuf;

use crate::support::run::{netcheck, run_at};

const HOST: &str = "myorg-myaccount.snowflakecomputing.com";

/// A run with one pass (DNS), one failure (TCP refused) and a skip (`--skip` of a dependent
/// would remove it, so skip is produced by deselecting DNS in a second run).
fn failing_run(junit: &std::path::Path) -> crate::support::run::Run {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run_at(HOST, port)
        .args(&["--only", "tls.account", "--junit", junit.to_str().unwrap()])
        .run()
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netcheck-{}-{name}", std::process::id()))
}

#[test]
fn json_document_has_the_documented_fields() {
    let junit = temp_path("json.xml");
    let r = failing_run(&junit);
    assert_eq!(r.code, 1);
    let doc = r.json();
    assert_eq!(doc["schema"], "netcheck/1");
    assert_eq!(doc["target"]["account"]["host"], HOST);
    assert!(doc["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(doc["duration_ms"].as_f64().unwrap() >= doc["critical_path_ms"].as_f64().unwrap());
    // proxy.env and dns.account pass, tcp.account fails, proxy.connect and tls.account are skipped.
    assert_eq!(
        doc["summary"],
        serde_json::json!({"pass": 2, "warn": 0, "fail": 1, "skip": 2})
    );
    for c in doc["checks"].as_array().unwrap() {
        for field in [
            "id",
            "title",
            "verdict",
            "duration_ms",
            "evidence",
            "diagnosis",
            "skip_reason",
        ] {
            assert!(c.get(field).is_some(), "check {} lacks `{field}`", c["id"]);
        }
        assert!(c["evidence"].is_object());
    }
    let tcp = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "tcp.account")
        .unwrap();
    assert_eq!(tcp["diagnosis"]["id"], "connection-refused");
    for field in ["symptom", "cause", "resolution"] {
        assert!(!tcp["diagnosis"][field].as_str().unwrap().is_empty());
    }
    let _ = std::fs::remove_file(junit);
}

#[test]
fn junit_loads_in_a_real_parser_with_failure_details() {
    let path = temp_path("junit.xml");
    let r = failing_run(&path);
    assert_eq!(r.code, 1);
    let xml = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("JUnit is well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("5"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    let case = |name: &str| {
        suite
            .children()
            .find(|n| n.attribute("name") == Some(name))
            .unwrap()
    };
    assert!(
        case("dns.account").children().all(|n| !n.is_element()),
        "dns.account passes"
    );
    let tcp = case("tcp.account");
    let failure = tcp
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("tcp.account fails");
    assert_eq!(failure.attribute("type"), Some("connection-refused"));
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .contains("Connection refused")
    );
    let body = failure.text().unwrap_or_default();
    assert!(
        body.contains("cause:") && body.contains("resolution:") && body.contains("evidence:"),
        "{body}"
    );
    let secs: f64 = tcp.attribute("time").unwrap().parse().unwrap();
    assert!(secs < 5.0, "time is in seconds: {secs}");
    validate_with_xmllint(&path);
    let _ = std::fs::remove_file(path);
}

#[test]
fn junit_marks_skipped_checks_skipped() {
    let path = temp_path("skip.xml");
    let r = netcheck(&[
        "run",
        "--account",
        HOST,
        "--only",
        "tls.account",
        "--skip",
        "dns.account",
        "--junit",
        path.to_str().unwrap(),
    ])
    .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let xml = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase") && n.attribute("name") != Some("proxy.env"))
        .collect();
    assert_eq!(cases.len(), 4);
    for case in cases {
        assert!(
            case.children().any(|n| n.has_tag_name("skipped")),
            "{:?} should be skipped",
            case.attribute("name")
        );
        let out = case
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .and_then(|n| n.text())
            .unwrap_or_default();
        assert!(out.contains("skipped because"), "the reason is kept: {out}");
    }
    validate_with_xmllint(&path);
    let _ = std::fs::remove_file(path);
}

/// A key-pair run: the `OAuth` and identity-provider checks cannot apply, so the table does not
/// list them (one line counts them), while JSON keeps them as skips with their reason
/// (`netcheck/1` consumers) and `JUnit` as skipped.
#[test]
fn checks_of_another_authentication_are_not_listed_but_kept_in_json_and_junit() {
    const OAUTH_ONLY: [&str; 5] = [
        "auth.oauth",
        "auth.oauth_account",
        "dns.idp",
        "tcp.idp",
        "tls.idp",
    ];
    let path = temp_path("not-applicable.xml");
    let table = netcheck(&[
        "demo",
        "--budget-scale",
        "5",
        "--junit",
        path.to_str().unwrap(),
    ])
    .run();
    assert_eq!(table.code, 0, "{}\n{}", table.stdout, table.stderr);
    for id in OAUTH_ONLY {
        assert!(!table.stdout.contains(id), "{id} listed:\n{}", table.stdout);
    }
    assert!(
        table
            .stdout
            .contains("5 checks not applicable to key-pair authentication not listed"),
        "{}",
        table.stdout
    );
    let xml = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    for id in OAUTH_ONLY {
        let case = doc
            .descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(id))
            .unwrap_or_else(|| panic!("{id} missing from the JUnit file"));
        assert!(case.children().any(|n| n.has_tag_name("skipped")), "{id}");
    }
    let _ = std::fs::remove_file(path);

    let json = netcheck(&["demo", "--budget-scale", "5", "--format", "json"]).run();
    let report = json.json();
    for id in OAUTH_ONLY {
        let c = crate::support::run::check(&report, id);
        assert_eq!(
            (&c["verdict"], &c["outcome"]),
            (&"skip".into(), &"skip".into()),
            "{c:#}"
        );
        assert!(
            c["skip_reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{c:#}"
        );
    }
}

/// Validates against the Jenkins-style `JUnit` schema junit-report ships (what CI consumers
/// accept), when xmllint and the schema are both present.
fn validate_with_xmllint(path: &std::path::Path) {
    let Some(xmllint) = crate::support::dns::which("xmllint") else {
        eprintln!(
            "skipped schema validation: xmllint not installed (apt-get install libxml2-utils)"
        );
        return;
    };
    let home = std::env::var("CARGO_HOME").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"),
        PathBuf::from,
    );
    let Some(xsd) = std::fs::read_dir(home.join("registry/src"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("junit-report-0.9.1/tests/JUnit.xsd"))
        .find(|p| p.is_file())
    else {
        eprintln!(
            "skipped schema validation: junit-report's JUnit.xsd not found in the cargo registry"
        );
        return;
    };
    let out = std::process::Command::new(xmllint)
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "JUnit XML fails the schema:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
