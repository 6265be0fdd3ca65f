//! Oracles: clients that did not come from netcheck's code drive the emulator, so a
//! misunderstanding shared by netcheck and its emulator cannot hide.
//!
//! - `tests/oracle/rest_tutorial.py`: Snowflake's REST tutorial flow with `requests` + `PyJWT`.
//! - `tests/oracle/sdk_client.py`: the official `snowpipe-streaming` SDK (a Rust core), run by
//!   `tests/oracle/sdk_namespace.sh` in a network namespace holding only loopback, against
//!   `netcheck emulate` started in the same namespace — and moto as the stage, for its file mode.
//!
//! The interpreter comes from `NETCHECK_PYTHON` (CI points it at a venv with snowpipe-streaming,
//! requests, pyjwt and cryptography), moto from `NETCHECK_MOTO_SERVER`. When one is missing, a
//! module is missing, or namespaces are not available, a test prints why it skips and returns.
//!
//! The SDK's two paths: appended to now and then, it streams rows over the REST `rows` call;
//! appended to without pause, it uploads encrypted files to the stage `:pipe-info` names and
//! registers them with `…/filebuffer`, whose rows the emulator commits by the SDK's declared
//! counts (`tests/oracle/README.md` has what was observed of that path).

use crate::support::emulate::TempDir;
use crate::support::pki::{TempFile, TestPki};
use crate::support::skip::{Lack, skip};
use crate::support::storage;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use netcheck::emulator::{self, EmulatorConfig, defaults};
use netcheck::snowflake::rest::{ApiCall, default_pipe};
use serde_json::{Value, json};

const ORACLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle");
const BIN: &str = env!("CARGO_BIN_EXE_netcheck");

/// The interpreter from `NETCHECK_PYTHON`, if it can import `modules`; otherwise says why not.
async fn python_with(modules: &str) -> Option<PathBuf> {
    let Some(python) = std::env::var_os("NETCHECK_PYTHON").map(PathBuf::from) else {
        skip(
            Lack::Tool,
            format!("NETCHECK_PYTHON is not set (point it at a venv with {modules})"),
        );
        return None;
    };
    let probe = tokio::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .await;
    match probe {
        Ok(out) if out.status.success() => Some(python),
        Ok(out) => {
            skip(
                Lack::Tool,
                format!(
                    "{} cannot import {modules}: {}",
                    python.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            None
        }
        Err(e) => {
            skip(Lack::Tool, format!("cannot run {}: {e}", python.display()));
            None
        }
    }
}

/// Runs a command with a time limit, returning (success, stdout, stderr).
async fn run(mut cmd: tokio::process::Command, limit: Duration) -> (bool, String, String) {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .expect("oracle exceeded its time limit")
        .expect("spawn oracle");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn rest_tutorial_oracle_commits_every_row() {
    let Some(python) = python_with("requests, jwt, cryptography").await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = emulator::spawn(listener, EmulatorConfig::default())
        .await
        .unwrap();
    let dir = TempDir::new("tutorial");
    let key_file = dir.0.join("rsa_key.p8");
    std::fs::write(
        &key_file,
        emulator::default_key().to_pkcs8_pem().unwrap().expose(),
    )
    .unwrap();
    let ca_file = dir.0.join("ca.pem");
    std::fs::write(&ca_file, emu.ca_pem()).unwrap();
    let port = emu.addr().port().to_string();
    let pipe = default_pipe(defaults::TABLE);
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(Path::new(ORACLE_DIR).join("rest_tutorial.py"))
        .args(["--account", defaults::ACCOUNT, "--user", defaults::USER])
        .args(["--account-host", emu.account_host(), "--port", &port])
        .arg("--private-key-file")
        .arg(&key_file)
        .arg("--ca-file")
        .arg(&ca_file)
        .args([
            "--database",
            defaults::DATABASE,
            "--schema",
            defaults::SCHEMA,
            "--pipe",
            &pipe,
        ])
        .args([
            "--resolve",
            &format!("{}:{port}:127.0.0.1", emu.account_host()),
        ])
        .args([
            "--resolve",
            &format!("{}:{port}:127.0.0.1", emu.ingest_host()),
        ])
        .args(["--rows", "1000", "--batch", "100"]);
    let (ok, stdout, stderr) = run(cmd, Duration::from_secs(60)).await;
    assert!(ok, "tutorial oracle failed:\n{stdout}\n{stderr}");
    let steps: Vec<String> = json_lines(&stdout)
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        steps,
        ["hostname", "token", "open", "append", "commit", "drop"]
    );
    let expected: Vec<Value> = (0..1000)
        .map(|i| json!({"id": i, "source": "tutorial"}))
        .collect();
    assert_eq!(
        emu.rows(defaults::DATABASE, defaults::SCHEMA, &pipe),
        expected,
        "every row, once, in order"
    );
    let log = emu.request_log();
    assert_eq!(log[0].endpoint, ApiCall::Hostname);
    assert_eq!(log[0].sni.as_deref(), Some(emu.account_host()));
    assert_eq!(log[1].endpoint, ApiCall::Token);
    assert_eq!(log[2].endpoint, ApiCall::Open);
    assert_eq!(log[2].sni.as_deref(), Some(emu.ingest_host()));
    assert_eq!(
        log.iter().filter(|r| r.endpoint == ApiCall::Append).count(),
        10
    );
    assert!(log.iter().all(|r| r.status == 200), "{log:#?}");
}

/// A network namespace holding only loopback, in a PID namespace of its own: whatever the script
/// starts (the emulator, moto) ends with it.
const UNSHARE: [&str; 4] = ["-n", "-p", "-f", "--mount-proc"];

/// The interpreter with the SDK, if there is one and `unshare -n` can make a loopback-only network
/// namespace here; otherwise says why not.
async fn sdk_python() -> Option<PathBuf> {
    let python = python_with("snowflake.ingest.streaming").await?;
    let probe = tokio::process::Command::new("unshare")
        .args(UNSHARE)
        .args(["ip", "link", "set", "lo", "up"])
        .output()
        .await;
    if !probe.is_ok_and(|o| o.status.success()) {
        skip(
            Lack::Tool,
            "cannot make a loopback-only network namespace (unshare -n -p needs root and iproute2)",
        );
        return None;
    }
    Some(python)
}

/// A stage for the SDK's file mode: moto's S3 server, started inside the namespace by
/// `sdk_namespace.sh`, with a certificate for 127.0.0.1 from a test CA.
struct Stage {
    moto: PathBuf,
    chain: TempFile,
    key: TempFile,
    ca: TempFile,
}

impl Stage {
    fn new() -> Option<Self> {
        let moto = storage::moto_server()?;
        let pki = TestPki::new();
        let (chain, key) = pki.for_hosts(&["127.0.0.1"]).write_pem_files();
        Some(Self {
            moto,
            chain,
            key,
            ca: pki.root_pem_file(),
        })
    }
}

/// `tests/oracle/sdk_client.py ARGS` inside `unshare -n` through `tests/oracle/sdk_namespace.sh`
/// (loopback up, `netcheck emulate` — and moto for `stage` — in the namespace, the SDK against
/// them, then SIGTERM so the emulator writes its request log and rows into `DIR/state`). Returns
/// the output directory, `sdk.out`'s stages, and a report of every output for failure messages.
async fn sdk_oracle(
    python: &Path,
    stage: Option<&Stage>,
    args: &[&str],
) -> (TempDir, Vec<Value>, String) {
    let dir = TempDir::new("sdk");
    let mut cmd = tokio::process::Command::new("unshare");
    cmd.args(UNSHARE)
        .arg("sh")
        .arg(Path::new(ORACLE_DIR).join("sdk_namespace.sh"))
        .arg(Path::new(ORACLE_DIR).join("sdk_client.py"))
        .args([
            "--account",
            "myorg-myaccount",
            "--user",
            "NETCHECK_USER",
            "--role",
            "NETCHECK_ROLE",
            "--database",
            "NETCHECK_DB",
            "--schema",
            "PUBLIC",
            "--pipe",
            "NETCHECK_EVENTS-STREAMING",
        ])
        .args(args)
        .env("BIN", BIN)
        .env("DIR", &dir.0)
        .env("PY", python);
    if let Some(stage) = stage {
        cmd.env("MOTO", &stage.moto)
            .env("STAGE_CERT", stage.chain.path())
            .env("STAGE_KEY", stage.key.path())
            .env("STAGE_CA", stage.ca.path());
    }
    let (ok, stdout, stderr) = run(cmd, Duration::from_secs(180)).await;
    let read = |name: &str| std::fs::read_to_string(dir.0.join(name)).unwrap_or_default();
    let report = format!(
        "script ok={ok}\n{stdout}\n{stderr}\nsdk.rc={}\nsdk.out:\n{}\nsdk.err:\n{}\nemulate.err:\n{}",
        read("sdk.rc"),
        read("sdk.out"),
        read("sdk.err"),
        read("emulate.err")
    );
    assert!(ok, "{report}");
    assert_eq!(read("sdk.rc").trim(), "0", "{report}");
    let stages = json_lines(&read("sdk.out"));
    let names: Vec<(&str, bool)> = stages
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["ok"].as_bool().unwrap()))
        .collect();
    let expected: Vec<(&str, bool)> = ["client", "open", "append", "commit", "status", "drop"]
        .iter()
        .map(|s| (*s, true))
        .collect();
    assert_eq!(names, expected, "{report}");
    (dir, stages, report)
}

#[tokio::test]
async fn official_sdk_oracle_streams_through_the_emulator() {
    let Some(python) = sdk_python().await else {
        return;
    };
    let (dir, _, _) = sdk_oracle(&python, None, &["--rows", "10", "--timeout", "20"]).await;
    let read = |name: &str| std::fs::read_to_string(dir.0.join(name)).unwrap_or_default();
    let log = json_lines(&read("state/requests.jsonl"));
    // Telemetry runs in the background (a JWT-authenticated call), so it is checked apart from
    // the foreground sequence.
    let telemetry: Vec<&Value> = log
        .iter()
        .filter(|r| r["endpoint"] == "telemetry")
        .collect();
    assert!(!telemetry.is_empty(), "the SDK reports telemetry at start");
    assert!(telemetry.iter().all(|r| r["token_type"] == "KEYPAIR_JWT"));
    let log: Vec<&Value> = log
        .iter()
        .filter(|r| r["endpoint"] != "telemetry")
        .collect();
    let endpoints: Vec<&str> = log
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints[..4],
        ["hostname", "token", "pipe-info", "open"],
        "{endpoints:?}"
    );
    for r in &log {
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(
            r["host"], "127.0.0.1",
            "the SDK came by address and was kept there"
        );
    }
    assert_eq!(log[0]["token_type"], "KEYPAIR_JWT");
    assert_eq!(log[3]["token_type"], "OAUTH");
    let append = log
        .iter()
        .find(|r| r["endpoint"] == "append")
        .expect("an append");
    assert!(
        append["query"]
            .as_str()
            .unwrap()
            .contains("startOffsetToken=0&endOffsetToken=9"),
        "{append}"
    );
    // The SDK also polls channel status in the background, so drop need not be the last call.
    let position = |name: &str| endpoints.iter().position(|e| *e == name);
    assert!(position("drop") > position("append"), "{endpoints:?}");
    let rows = json_lines(&read("state/rows.jsonl"));
    let expected: Vec<Value> = (0..10).map(|i| json!({"id": i, "source": "sdk"})).collect();
    assert_eq!(rows, expected);
}

/// Appended to without pause, the SDK leaves the `rows` call for its file mode: it uploads
/// encrypted files to the stage `:pipe-info` names (moto, in the namespace) and registers each
/// with `…/filebuffer`. The emulator commits the rows each registration declares, so
/// `wait_for_commit` sees the last offset token and the channel counts every appended row.
#[tokio::test]
async fn official_sdk_file_mode_commits_through_the_stage() {
    let Some(python) = sdk_python().await else {
        return;
    };
    let Some(stage) = Stage::new() else {
        return;
    };
    let (dir, stages, report) = sdk_oracle(
        &python,
        Some(&stage),
        &["--unpaced", "2", "--timeout", "60"],
    )
    .await;
    let read = |name: &str| std::fs::read_to_string(dir.0.join(name)).unwrap_or_default();
    let appended: u64 = stages[2]["detail"].as_str().unwrap().parse().unwrap();
    let status: Value = serde_json::from_str(stages[4]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        status["sdk-oracle"],
        json!({"committed": (appended - 1).to_string(), "rows_inserted": appended}),
        "{report}"
    );
    let log = json_lines(&read("state/requests.jsonl"));
    let registrations: Vec<&Value> = log
        .iter()
        .filter(|r| r["endpoint"] == "filebuffer")
        .collect();
    assert!(!registrations.is_empty(), "no file registered\n{report}");
    assert!(registrations.iter().all(|r| r["status"] == 200));
    // Each file the SDK put on the stage was registered once (a PUT retried on a busy machine
    // names the same file again).
    let moto = read("moto.err");
    let files: std::collections::BTreeSet<&str> = moto
        .lines()
        .filter_map(|l| l.split("\"PUT /netcheck-emulator-stage/streaming/").nth(1))
        .filter_map(|rest| rest.split(['?', ' ']).next())
        .collect();
    assert_eq!(files.len(), registrations.len(), "{report}\n{moto}");
}
