//! `netcheck serve` as a process, pointed at `netcheck emulate` processes (or at an in-process
//! emulator where a test waits for what serve's run has done so far), the way a fleet runs it:
//! probes of named connections only, the probe bound, RSS over many probes, a graceful SIGTERM,
//! `promtool` on both expositions and the alert rules, and a real Prometheus server scraping it
//! on loopback.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use netcheck::emulator::{Emulator, Fault, default_key, defaults};
use netcheck::snowflake::rest::ApiCall;

use crate::support::dns::{free_port, which};
use crate::support::emulate::{Emulate, TempDir, spawn_emulator};
use crate::support::skip::{Lack, skip};

/// A running `netcheck serve`, stopped with SIGTERM on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    /// Starts `netcheck serve --listen 127.0.0.1:0 ARGS` with `env` (and PATH) only.
    fn start(args: &[&str], env: &[(String, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netcheck"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start netcheck serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        std::thread::spawn(move || lines.for_each(drop));
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        Self { child, addr }
    }

    fn get(&self, path: &str) -> (u16, String) {
        get(self.addr, path, &[])
    }

    /// serve's resident set, from /proc.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits up to `within` for serve to exit; its exit code.
    fn wait(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.terminate();
        if self.wait(Duration::from_secs(20)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An in-process emulator (served by its own runtime's threads) with a state directory like
/// `netcheck emulate` writes, for tests that must see what serve's runs have done so far: its
/// request log is live.
struct LiveEmulator {
    emu: Emulator,
    dir: TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl LiveEmulator {
    fn start(faults: &[&str]) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let faults: Vec<Fault> = faults.iter().map(|f| f.parse().unwrap()).collect();
        let emu = runtime.block_on(spawn_emulator(|c| c.faults = faults));
        let dir = TempDir::new("serve-emulator");
        std::fs::write(dir.path().join("ca.pem"), emu.ca_pem()).unwrap();
        let key = dir.path().join("rsa_key.p8");
        std::fs::write(&key, default_key().to_pkcs8_pem().unwrap().expose()).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let connections = format!(
            "[emulator]\naccount = \"{}\"\nuser = \"{}\"\nhost = \"{}\"\nport = {}\n\
             protocol = \"https\"\nauthenticator = \"SNOWFLAKE_JWT\"\nprivate_key_file = \"{}\"\n\
             role = \"{}\"\ndatabase = \"{}\"\nschema = \"{}\"\ntable = \"{}\"\n",
            emu.account(),
            defaults::USER,
            emu.account_host(),
            emu.addr().port(),
            key.display(),
            defaults::ROLE,
            defaults::DATABASE,
            defaults::SCHEMA,
            defaults::TABLE,
        );
        std::fs::write(dir.path().join("connections.toml"), connections).unwrap();
        Self {
            emu,
            dir,
            _runtime: runtime,
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let port = self.emu.addr().port();
        let resolve: Vec<String> = [
            self.emu.account_host(),
            self.emu.ingest_host(),
            self.emu.stage_host(),
        ]
        .iter()
        .map(|h| format!("{h}:{port}:127.0.0.1"))
        .collect();
        vec![
            (
                "SNOWFLAKE_HOME".into(),
                self.dir.path().display().to_string(),
            ),
            (
                "NETCHECK_CA_FILE".into(),
                self.dir.path().join("ca.pem").display().to_string(),
            ),
            ("NETCHECK_RESOLVE".into(), resolve.join(",")),
        ]
    }

    /// Waits (up to 60 s: the machine is busy) until the emulator has answered a `call`.
    fn wait_for(&self, call: ApiCall) {
        let end = Instant::now() + Duration::from_secs(60);
        while !self.emu.request_log().iter().any(|r| r.endpoint == call) {
            assert!(Instant::now() < end, "the emulator never answered {call}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `GET path` over HTTP/1.0 (the server closes after answering), with `headers`; status and
/// body. Bounded: 60 s, 4 MiB.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        let _ = write!(request, "{k}: {v}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.take(4 << 20).read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    (status, body.to_owned())
}

/// `promtool check metrics` on `exposition`: `None` when promtool is not installed.
fn promtool_check_metrics(exposition: &str) -> Option<(bool, String)> {
    let promtool = which("promtool")?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ))
}

fn assert_promtool_accepts(name: &str, exposition: &str) {
    match promtool_check_metrics(exposition) {
        Some((ok, out)) => assert!(
            ok,
            "promtool check metrics rejects {name}: {out}\n{exposition}"
        ),
        None => skip(
            Lack::Tool,
            format!("promtool check metrics on {name} (promtool not installed)"),
        ),
    }
}

/// The value of the sample `line_start` (a metric name with its labels) in an exposition.
fn sample(exposition: &str, line_start: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Secret material of an emulator's state directory: any 16-byte run of its key's base64
/// body, and any JWT.
fn secret_needles(emu: &Emulate) -> Vec<String> {
    let mut needles = vec!["eyJ".to_owned(), "PRIVATE KEY".to_owned()];
    needles.extend(crate::secrets::key_needles(&emu.key_file()));
    needles
}

fn assert_no_secret(name: &str, text: &str, needles: &[String]) {
    for needle in needles {
        assert!(
            !text.contains(needle.as_str()),
            "{name} contains secret material {needle:?}"
        );
    }
}

#[test]
fn probes_only_named_connections_and_refuses_any_target() {
    let emu = Emulate::start(&[]);
    let serve = Serve::start(&[], &emu.env());
    assert_eq!(serve.get("/healthz"), (200, "ok\n".to_owned()));
    for query in [
        "connection=emulator&target=evil.example",
        "target=evil.example",
        "connection=emulator&url=https://evil.example/",
        "connection=emulator&host=10.0.0.1",
        "module=http_2xx&target=evil.example",
        "connection=emulator&connection=other",
        "",
    ] {
        let (status, body) = serve.get(&format!("/probe?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
    }
    let (status, body) = serve.get("/probe?connection=unconfigured");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown connection"), "{body}");

    let (status, probe) = serve.get("/probe?connection=emulator");
    assert_eq!(status, 200, "{probe}");
    assert_eq!(
        sample(&probe, "netcheck_probe_success"),
        Some(1.0),
        "{probe}"
    );
    assert_eq!(
        sample(
            &probe,
            "netcheck_check_success{check=\"auth.scoped_token\"}"
        ),
        Some(1.0)
    );
    assert_promtool_accepts("/probe", &probe);
    let (status, metrics) = serve.get("/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(
            &metrics,
            "netcheck_serve_probes_refused_total{reason=\"bad_request\"}"
        ),
        Some(7.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "netcheck_serve_probes_refused_total{reason=\"unknown_connection\"}"
        ),
        Some(1.0)
    );
    assert_promtool_accepts("/metrics", &metrics);
    let needles = secret_needles(&emu);
    assert_no_secret("/probe", &probe, &needles);
    assert_no_secret("/metrics", &metrics, &needles);
}

#[test]
fn probes_over_the_bound_get_503_at_once_and_the_others_finish() {
    // Every run waits 4 s for its first API answer, so the first probes hold their slots while
    // the rest arrive.
    let emu = Emulate::start(&["latency=4s@hostname"]);
    let serve = Serve::start(&["--max-probes", "3"], &emu.env());
    let addr = serve.addr;
    let answers: Vec<(u16, Duration)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(move || {
                    let start = Instant::now();
                    let (status, _) = get(addr, "/probe?connection=emulator", &[]);
                    (status, start.elapsed())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let ok: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
    let busy: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(ok.len() + busy.len(), 50, "{answers:?}");
    assert!((3..=12).contains(&ok.len()), "{answers:?}");
    assert!(
        busy.iter().all(|(_, took)| *took < Duration::from_secs(3)),
        "a 503 waited for a slot: {answers:?}"
    );
    assert!(
        ok.iter().all(|(_, took)| *took < Duration::from_secs(40)),
        "{answers:?}"
    );
    let (_, metrics) = serve.get("/metrics");
    assert_eq!(
        sample(
            &metrics,
            "netcheck_serve_probes_refused_total{reason=\"over_capacity\"}"
        ),
        Some(f64::from(u32::try_from(busy.len()).unwrap()))
    );
}

#[test]
fn a_probe_over_the_bound_is_refused_before_the_connection_files_are_read() {
    let emu = LiveEmulator::start(&["no-commit"]);
    let serve = Serve::start(&["--max-probes", "1"], &emu.env());
    let addr = serve.addr;
    // Holds the only slot: its commit never comes.
    let first = std::thread::spawn(move || full_probe(addr));
    emu.wait_for(ApiCall::Open);
    // The files no longer parse: a probe that read them would be answered 500.
    std::fs::write(emu.dir.path().join("connections.toml"), "[emulator\n").unwrap();
    let (status, body) = serve.get("/probe?connection=emulator");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("--max-probes"), "{body}");
    let (status, body) = first.join().unwrap();
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_scheduled_run_takes_a_probe_slot_and_is_skipped_when_none_is_free() {
    // A scheduled run is quick (no channel); a full probe holds its slot until the commit it
    // waits for times out.
    let emu = LiveEmulator::start(&["no-commit"]);
    let serve = Serve::start(
        &[
            "--connection",
            "emulator",
            "--every",
            "1s",
            "--max-probes",
            "1",
        ],
        &emu.env(),
    );
    let addr = serve.addr;
    // A scrape that meets a scheduled run in the only slot is refused; it tries again.
    let probe = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = full_probe(addr);
            if status != 503 || Instant::now() > end {
                return (status, body);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    // The probe holds the slot (only it opens a channel): the schedule's next runs find none.
    emu.wait_for(ApiCall::Open);
    let skipped = "netcheck_schedule_runs_skipped_total{connection=\"emulator\"}";
    let end = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (_, metrics) = serve.get("/metrics");
        if sample(&metrics, skipped).is_some_and(|n| n >= 1.0) {
            break metrics;
        }
        assert!(
            Instant::now() < end,
            "no scheduled run was skipped while the probe held the only slot:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        sample(&metrics, "netcheck_serve_probes_in_flight").is_some_and(|n| n <= 1.0),
        "{metrics}"
    );
    let (status, body) = probe.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_promtool_accepts("/metrics with skipped runs", &serve.get("/metrics").1);
}

#[test]
fn two_hundred_probes_leave_rss_flat() {
    let emu = Emulate::start(&[]);
    let serve = Serve::start(&[], &emu.env());
    let probe = || {
        let (status, body) = serve.get("/probe?connection=emulator");
        assert_eq!(status, 200, "{body}");
        assert_eq!(sample(&body, "netcheck_probe_success"), Some(1.0), "{body}");
    };
    // Warm up: the allocator's arenas, the runtime's threads, lazily built tables.
    for _ in 0..50 {
        probe();
    }
    let before = serve.rss_kib();
    for _ in 0..200 {
        probe();
    }
    let after = serve.rss_kib();
    println!("serve RSS: {before} KiB before, {after} KiB after 200 probes");
    // Each run makes a JWT and a token (kilobytes each, in four escaped forms): kept, they grow
    // the secret registry and its matcher by 0.8 to 1.4 MiB over 200 probes here; forgotten after
    // each run, RSS moves by allocator noise only (about 150 KiB).
    assert!(
        after < before + 500,
        "RSS grew from {before} KiB to {after} KiB over 200 probes"
    );
}

/// `/probe?connection=emulator&full=true` with a 60 s scrape timeout.
fn full_probe(addr: SocketAddr) -> (u16, String) {
    get(
        addr,
        "/probe?connection=emulator&full=true",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "60")],
    )
}

#[test]
fn sigterm_lets_a_probe_in_flight_drop_its_channel_and_answer() {
    // The commit never comes, so the run is in the round trip when the signal arrives.
    let emu = LiveEmulator::start(&["no-commit"]);
    let mut serve = Serve::start(&[], &emu.env());
    let addr = serve.addr;
    let answer = std::thread::spawn(move || full_probe(addr));
    // The channel is open: there is one to drop.
    emu.wait_for(ApiCall::Open);
    serve.terminate();
    let (status, probe) = answer.join().unwrap();
    assert_eq!(status, 200, "{probe}");
    assert_eq!(sample(&probe, "netcheck_probe_success"), Some(0.0));
    assert_eq!(
        sample(
            &probe,
            "netcheck_check_verdict{check=\"stream.drop\",verdict=\"pass\"}"
        ),
        Some(1.0),
        "the test channel was not dropped:\n{probe}"
    );
    assert_eq!(serve.wait(Duration::from_secs(20)), Some(0));
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let Some(promtool) = which("promtool") else {
        skip(
            Lack::Tool,
            "promtool test rules (promtool not installed: apt-get install prometheus)",
        );
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let out = Command::new(promtool)
        .args(["test", "rules", "alerts_test.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory holding the connections of several emulators under new names: one
/// `connections.toml`, one CA bundle, one `--resolve` list.
fn combined(emulators: &[(&str, &Emulate)], dir: &Path) -> Vec<(String, String)> {
    let (mut toml, mut ca, mut resolve) = (String::new(), String::new(), Vec::new());
    for (name, emu) in emulators {
        let conns = std::fs::read_to_string(emu.dir.path().join("connections.toml")).unwrap();
        toml.push_str(
            &conns
                .replace("[connections.emulator]", &format!("[{name}]"))
                .replace("[connections.emulator_oauth]", &format!("[{name}_oauth]")),
        );
        toml.push('\n');
        ca.push_str(&std::fs::read_to_string(emu.dir.path().join("ca.pem")).unwrap());
        let env = emu.env();
        resolve.push(
            env.iter()
                .find(|(k, _)| k == "NETCHECK_RESOLVE")
                .unwrap()
                .1
                .clone(),
        );
    }
    std::fs::write(dir.join("connections.toml"), toml).unwrap();
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    vec![
        ("SNOWFLAKE_HOME".into(), dir.to_str().unwrap().into()),
        (
            "NETCHECK_CA_FILE".into(),
            dir.join("ca.pem").to_str().unwrap().into(),
        ),
        ("NETCHECK_RESOLVE".into(), resolve.join(",")),
    ]
}

/// A Prometheus server on loopback with its data in a temp dir, killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(binary: PathBuf, config: &Path, data: &Path) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Self { child, addr }
    }

    /// The instant vector of `query`, or `None` while Prometheus is not answering.
    fn query(&self, query: &str) -> Option<Vec<Value>> {
        let q: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let conn = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2));
        conn.ok()?;
        let (status, body) = get(self.addr, &format!("/api/v1/query?query={q}"), &[]);
        if status != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"].as_array().cloned()
    }

    /// Waits (up to two minutes: the machine is busy) for `query` to have `n` series.
    fn wait_for(&self, query: &str, n: usize) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(result) = self.query(query) {
                if result.len() >= n {
                    return result;
                }
            }
            assert!(
                Instant::now() < end,
                "Prometheus never had {n} series of {query}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the series whose `label` is `value`.
fn value_of(result: &[Value], label: &str, value: &str) -> Option<f64> {
    result
        .iter()
        .find(|s| s["metric"][label] == value)
        .and_then(|s| s["value"][1].as_str()?.parse().ok())
}

/// The deploy scrape configs and alert rules, pointed at serve on `addr`, scraping the
/// connections `healthy` and `broken` often with wide timeouts; written into `dir`.
fn prometheus_config(addr: SocketAddr, dir: &Path) -> PathBuf {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let scrape = std::fs::read_to_string(deploy.join("scrape.yml"))
        .unwrap()
        .replace("netcheck-serve:9877", &addr.to_string())
        .replace("targets: [production]", "targets: [healthy, broken]")
        // 5 s: each probe gets 4.5 s, wide for a debug build on two busy cores.
        .replace("scrape_interval: 60s", "scrape_interval: 5s")
        .replace("scrape_interval: 30s", "scrape_interval: 5s")
        .replace("scrape_timeout: 30s", "scrape_timeout: 5s");
    let config = format!(
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\n  evaluation_interval: 5s\nrule_files:\n  - {}\n{scrape}",
        deploy.join("alerts.yml").display()
    );
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    config_file
}

#[test]
fn a_real_prometheus_scrapes_probe_and_metrics_healthy_and_under_a_fault() {
    let Some(prometheus) = which("prometheus") else {
        skip(
            Lack::Tool,
            "Prometheus scraping serve (prometheus not installed: apt-get install prometheus)",
        );
        return;
    };
    let healthy = Emulate::start(&[]);
    let broken = Emulate::start(&["expired-cert@ingest"]);
    let dir = TempDir::new("serve-prometheus");
    let env = combined(&[("healthy", &healthy), ("broken", &broken)], dir.path());
    let serve = Serve::start(&["--connection", "healthy,broken", "--every", "2s"], &env);
    let config_file = prometheus_config(serve.addr, dir.path());
    let data = dir.path().join("data");
    let prom = Prometheus::start(prometheus, &config_file, &data);

    // /probe, one run per scrape: the target label is the connection (relabelled).
    let success = prom.wait_for("netcheck_probe_success{job=\"netcheck-probe\"}", 2);
    assert_eq!(
        value_of(&success, "connection", "healthy"),
        Some(1.0),
        "{success:?}"
    );
    assert_eq!(
        value_of(&success, "connection", "broken"),
        Some(0.0),
        "{success:?}"
    );
    let tls = prom.wait_for(
        "netcheck_check_success{job=\"netcheck-probe\",check=\"tls.ingest\"}",
        2,
    );
    assert_eq!(
        value_of(&tls, "connection", "healthy"),
        Some(1.0),
        "{tls:?}"
    );
    assert_eq!(value_of(&tls, "connection", "broken"), Some(0.0), "{tls:?}");
    let diagnosis = prom.wait_for(
        "netcheck_diagnosis_info{job=\"netcheck-probe\",connection=\"broken\"}",
        1,
    );
    assert!(
        diagnosis
            .iter()
            .any(|s| s["metric"]["check"] == "tls.ingest" && s["metric"]["row"] == "tls-expired"),
        "{diagnosis:?}"
    );
    let per_check = prom.wait_for(
        "netcheck_check_duration_seconds{job=\"netcheck-probe\",connection=\"healthy\"}",
        5,
    );
    assert!(
        per_check
            .iter()
            .any(|s| s["metric"]["check"] == "dns.account")
    );

    // /metrics: the scheduled results, serve's own counters and the duration histograms.
    let latest = prom.wait_for("netcheck_probe_success{job=\"netcheck-serve\"}", 2);
    assert_eq!(
        value_of(&latest, "connection", "healthy"),
        Some(1.0),
        "{latest:?}"
    );
    assert_eq!(
        value_of(&latest, "connection", "broken"),
        Some(0.0),
        "{latest:?}"
    );
    prom.wait_for(
        "netcheck_schedule_check_duration_seconds_count{check=\"tls.ingest\"}",
        2,
    );
    prom.wait_for("netcheck_serve_probes_total{trigger=\"scrape\"}", 2);
    // Both connections: the broken one's chain is recorded too, its expiry is what alerts.
    let cert = prom.wait_for(
        "netcheck_tls_cert_not_after_seconds{job=\"netcheck-serve\",host_role=\"ingest\"}",
        2,
    );
    let fine = value_of(&cert, "connection", "healthy").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(fine > now + 14.0 * 86400.0, "{cert:?}");
    let expired = value_of(&cert, "connection", "broken").unwrap();
    assert!(expired < now, "{cert:?}");

    // Both expositions as Prometheus read them pass promtool; neither holds a secret.
    let (_, probe) = serve.get("/probe?connection=broken");
    let (_, metrics) = serve.get("/metrics");
    assert_promtool_accepts("/probe under a fault", &probe);
    assert_promtool_accepts("/metrics", &metrics);
    let mut needles = secret_needles(&healthy);
    needles.extend(secret_needles(&broken));
    assert_no_secret("/probe", &probe, &needles);
    assert_no_secret("/metrics", &metrics, &needles);
}
