//! `netcheck emulate` as a user runs it: the built binary, its state directory, its first
//! line, a client configured only from the files it wrote, and a clean stop on SIGTERM.

use crate::support::emulate::TempDir;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netcheck::snowflake::{jwt, keys::PrivateKey, rest};

const BIN: &str = env!("CARGO_BIN_EXE_netcheck");

/// Kills the child if a test fails before stopping it.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_value(env: &str, name: &str) -> String {
    let prefix = format!("export {name}=");
    let line = env
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} missing:\n{env}"));
    line.trim_matches('\'').to_owned()
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn list_faults_prints_one_line_per_fault() {
    let out = Command::new(BIN)
        .args(["emulate", "--list-faults"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "latency=",
        "throttle",
        "throttle-above",
        "server-error",
        "reset",
        "tls12-only",
        "expired-cert",
        "wrong-host-cert",
        "unknown-ca",
        "clock-offset",
        "network-policy",
        "missing-pipe",
        "missing-privilege",
        "channel-status",
        "no-commit",
    ] {
        assert_eq!(
            text.lines()
                .filter(|l| l.split(['=', '[', ' ']).next() == Some(name.trim_end_matches('=')))
                .count(),
            1,
            "{name}:\n{text}"
        );
    }
}

#[test]
fn a_bad_fault_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["emulate", "--fault", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown fault"));
}

#[tokio::test]
async fn emulate_writes_a_usable_state_dir_and_stops_on_sigterm() {
    let dir = TempDir::new("emulate");
    let child = Command::new(BIN)
        .args(["emulate", "--state-dir"])
        .arg(&dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr: SocketAddr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .parse()
        .unwrap();
    let printed: Vec<String> = lines.by_ref().take(6).map(Result::unwrap).collect();
    assert!(
        !printed.iter().any(|l| l.contains("PRIVATE KEY")),
        "the key is written to a file, never printed"
    );
    assert!(
        printed.iter().any(|l| l.contains("[connections.emulator]")),
        "{printed:?}"
    );

    let dir_path = dir.0.canonicalize().unwrap();
    let env = std::fs::read_to_string(dir_path.join("netcheck.env")).unwrap();
    assert_eq!(
        env_value(&env, "SNOWFLAKE_HOME"),
        dir_path.display().to_string()
    );
    let ca_file = PathBuf::from(env_value(&env, "NETCHECK_CA_FILE"));
    assert_eq!(ca_file, dir_path.join("ca.pem"));
    let resolve = env_value(&env, "NETCHECK_RESOLVE");
    let entries: Vec<(String, SocketAddr)> = resolve
        .split(',')
        .map(|e| {
            let (host, rest) = e.split_once(':').unwrap();
            let (port, ip) = rest.split_once(':').unwrap();
            (host.to_owned(), format!("{ip}:{port}").parse().unwrap())
        })
        .collect();
    assert_eq!(entries.len(), 4, "account, ingest, IdP and stage hosts");
    assert!(entries.iter().all(|(_, a)| *a == addr));

    let connections: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir_path.join("connections.toml")).unwrap())
            .unwrap();
    let entry = &connections["connections"]["emulator"];
    for field in [
        "account",
        "user",
        "host",
        "port",
        "authenticator",
        "private_key_file",
        "role",
        "database",
        "schema",
        "table",
    ] {
        assert!(entry.get(field).is_some(), "{field} missing from {entry}");
    }
    assert_eq!(entry["authenticator"].as_str(), Some("SNOWFLAKE_JWT"));
    assert_eq!(entry["port"].as_integer(), Some(i64::from(addr.port())));
    assert_eq!(entry["host"].as_str(), Some(entries[0].0.as_str()));

    discover_from_files(entry, &ca_file, &entries, addr).await;

    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_with_timeout(&mut child.0, Duration::from_secs(10))
        .expect("emulate did not stop on SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// A client built only from the files `emulate` wrote gets through discovery, and is handed an
/// ingest host that `NETCHECK_RESOLVE` covers.
async fn discover_from_files(
    entry: &toml::Value,
    ca_file: &Path,
    entries: &[(String, SocketAddr)],
    addr: SocketAddr,
) {
    let key_file = Path::new(entry["private_key_file"].as_str().unwrap());
    let key = PrivateKey::from_file(key_file, None).unwrap();
    let account = entry["account"].as_str().unwrap();
    let user = entry["user"].as_str().unwrap();
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let token = jwt::mint(account, user, &key, now, None).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_file).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .timeout(Duration::from_secs(10));
    for (host, a) in entries {
        builder = builder.resolve(host, *a);
    }
    let http = builder.build().unwrap();
    let host = entry["host"].as_str().unwrap();
    let r = http
        .get(format!(
            "https://{host}:{}{}",
            addr.port(),
            rest::HOSTNAME_PATH
        ))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let ingest = r.text().await.unwrap();
    assert!(
        entries.iter().any(|(h, _)| *h == ingest),
        "{ingest} not in NETCHECK_RESOLVE"
    );
}
