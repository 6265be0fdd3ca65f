//! What netcheck is handed on this machine, chosen as an attacker (or a bad day) would: FIFOs,
//! devices, directories and huge files in place of the key, the connection files, the CA file,
//! the allowlist and the `--config` JSON; encrypted keys with absurd key-derivation parameters;
//! allowlists with megabyte host names; a low open-file limit; a state directory that is a
//! user's `~/.snowflake`; a demo fault that names a host beyond loopback. Each run is the real
//! binary, bounded in time, and ends with a clear answer.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::emulate::TempDir;
use crate::support::run::{Run, assert_check, check};
use crate::support::skip::{Lack, skip};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netcheck");

/// Runs the binary (after `wrapper`, e.g. `prlimit …`) with a clean environment plus `env`,
/// killing it when it outlives `limit`: a hang is a failed test, not a stuck suite.
fn run_bounded(wrapper: &[&str], args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let start = Instant::now();
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    let mut child = command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netcheck");
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_or_kill(&mut child, limit);
    let elapsed = start.elapsed();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let status = status.unwrap_or_else(|| {
        panic!("netcheck {args:?} still running after {limit:?}; stderr:\n{stderr}")
    });
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        elapsed,
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The exit status, or `None` (the child killed) when it did not end within `limit`.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `netcheck run` with nothing to probe but the proxy variables: what is measured is only how
/// the files are read.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["run", "--account", "myorg-myaccount", "--only", "proxy.env"];
    all.extend_from_slice(args);
    run_bounded(&[], &all, env, Duration::from_secs(20))
}

/// What stands where a file should be.
#[derive(Debug, Clone, Copy)]
enum Hazard {
    /// A FIFO nobody writes to: reading it blocks forever.
    Fifo,
    /// A symlink to `/dev/zero`: endless.
    DevZero,
    Directory,
    /// A sparse 200 MB file: over every cap, and slow to read whole.
    Huge,
}

impl Hazard {
    const ALL: [Self; 4] = [Self::Fifo, Self::DevZero, Self::Directory, Self::Huge];

    fn make(self, path: &Path) {
        match self {
            Self::Fifo => assert!(Command::new("mkfifo").arg(path).status().unwrap().success()),
            Self::DevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
            Self::Directory => std::fs::create_dir(path).unwrap(),
            Self::Huge => std::fs::File::create(path)
                .unwrap()
                .set_len(200 << 20)
                .unwrap(),
        }
    }

    /// What the error says about it.
    fn words(self, cap: &str) -> String {
        match self {
            Self::Fifo => "it is a FIFO (named pipe), not a regular file".into(),
            Self::DevZero => "it is a character device, not a regular file".into(),
            Self::Directory => "it is a directory, not a regular file".into(),
            Self::Huge => format!("it is larger than {cap}"),
        }
    }
}

/// Every local file netcheck reads, each hazard in its place: exit 2 at once, naming the file,
/// its kind and (for a huge one) the cap. Before the bounded reader a FIFO hung past any
/// deadline and `/dev/zero` was read until memory ran out.
#[test]
fn hostile_local_files_are_refused_at_once_naming_file_kind_and_cap() {
    // (how the file is given, its name, its kind in the message, its cap)
    let kinds: [(&str, &str, &str, &str); 5] = [
        ("--private-key-file", "rsa_key.p8", "private key", "64 KiB"),
        ("--ca-file", "ca.pem", "CA file", "4 MiB"),
        ("--allowlist", "allowlist.json", "allowlist", "4 MiB"),
        ("--config", "config.json", "configuration file", "1 MiB"),
        (
            "SNOWFLAKE_HOME",
            "connections.toml",
            "configuration file",
            "1 MiB",
        ),
    ];
    for hazard in Hazard::ALL {
        for (given, name, kind, cap) in kinds {
            let dir = TempDir::new("hostile");
            let path = dir.path().join(name);
            hazard.make(&path);
            let path_text = path.to_str().unwrap();
            let home = dir.path().to_str().unwrap();
            let r = if given == "SNOWFLAKE_HOME" {
                // No connection asked for: the file is skipped, at once, with a warning that
                // says the same; asked for, it stops the run.
                let unasked = run_with(&[], &[("SNOWFLAKE_HOME", home)]);
                assert_eq!(unasked.code, 0, "{hazard:?} unasked: {}", unasked.stderr);
                assert!(
                    unasked.stderr.contains("warning")
                        && unasked.stderr.contains(&hazard.words(cap)),
                    "{hazard:?} unasked: {}",
                    unasked.stderr
                );
                run_with(&["--connection", "dev"], &[("SNOWFLAKE_HOME", home)])
            } else {
                run_with(&[given, path_text], &[("HOME", home)])
            };
            let what = format!("{hazard:?} as {given}");
            assert_eq!(r.code, 2, "{what}: {}", r.stderr);
            assert!(
                r.elapsed < Duration::from_secs(5),
                "{what}: {:?}",
                r.elapsed
            );
            assert!(r.stderr.contains(path_text), "{what}: {}", r.stderr);
            assert!(r.stderr.contains(kind), "{what}: {}", r.stderr);
            assert!(
                r.stderr.contains(&hazard.words(cap)),
                "{what}: {}",
                r.stderr
            );
        }
    }
}

/// An allowlist just under its cap (tens of thousands of entries) is read and parsed in a
/// fraction of the time a run takes: the cap keeps the work before the deadline small.
#[test]
fn an_allowlist_at_its_cap_parses_quickly() {
    let dir = TempDir::new("big-allowlist");
    let file = dir.path().join("allowlist.json");
    let entry = |i: usize| {
        format!(r#"{{"type":"STAGE","host":"stage-{i:06}.s3.example.test","port":443}}"#)
    };
    let mut text = String::from("[");
    let mut i = 0;
    while text.len() < 4 * 1024 * 1024 - 200 {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&entry(i));
        i += 1;
    }
    text.push(']');
    std::fs::write(&file, &text).unwrap();
    let r = run_with(&["--allowlist", file.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    eprintln!(
        "{i} entries, {} bytes: run ended in {:?}",
        text.len(),
        r.elapsed
    );
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
}

/// A host name of megabytes (no DNS name is over 253 bytes) is skipped with a note, shortened in
/// the evidence, and never reaches a report whole: before, a 50 MB name took 36 s to render.
#[test]
fn a_megabyte_host_name_in_an_allowlist_is_skipped_with_a_note() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = TempDir::new("long-host");
    let file = dir.path().join("allowlist.json");
    let huge = format!("{}.example.test", "a".repeat(3_000_000));
    std::fs::write(
        &file,
        format!(
            r#"[{{"type":"STAGE","host":"{huge}","port":443}},
               {{"type":"SNOWFLAKE_DEPLOYMENT","host":"127.0.0.1","port":{port}}}]"#
        ),
    )
    .unwrap();
    let args = |format: &'static str| {
        vec![
            "run".to_owned(),
            "--account".into(),
            "myorg-myaccount".into(),
            // Any query stays on loopback (an address literal needs none).
            "--dns-server".into(),
            "127.0.0.1:9".into(),
            "--only".into(),
            "allowlist.hosts".into(),
            "--allowlist".into(),
            file.to_str().unwrap().to_owned(),
            "--format".into(),
            format.into(),
        ]
    };
    for format in ["table", "json"] {
        let args = args(format);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run_bounded(&[], &args, &[], Duration::from_secs(30));
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        assert!(
            r.elapsed < Duration::from_secs(5),
            "{format}: {:?}",
            r.elapsed
        );
        assert!(
            r.stdout.len() < 20_000,
            "{format}: {} bytes of output",
            r.stdout.len()
        );
        assert!(
            r.stdout
                .contains("skipped 1 entries with a host name or type over 253 bytes"),
            "{format}: {}",
            r.stdout
        );
        if format == "json" {
            let report = r.json();
            assert_check(&report, "allowlist.hosts", "pass", None);
            let evidence = &check(&report, "allowlist.hosts")["evidence"];
            assert_eq!(evidence["checked"], 1);
            assert_eq!(
                evidence["skipped_too_long"][0],
                format!("STAGE {}… (3000013 bytes)", "a".repeat(32))
            );
        }
    }
}

/// An encrypted PKCS#8 key whose key derivation is `kdf`; the ciphertext is never reached.
fn encrypted_key_pem(kdf: rsa::pkcs8::pkcs5::pbes2::Kdf<'_>) -> String {
    use rsa::pkcs8::der::EncodePem as _;
    use rsa::pkcs8::pkcs5::{self, pbes2};
    let iv = [7u8; 16];
    rsa::pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(pbes2::Parameters {
            kdf,
            encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
        }),
        encrypted_data: &[0u8; 1232],
    }
    .to_pem(rsa::pkcs8::LineEnding::LF)
    .unwrap()
}

/// Keys made now with absurd key-derivation parameters: each is refused at once with exit 2,
/// naming the parameter and the cap. Before, PBKDF2 with four billion iterations spun for hours
/// and scrypt with a huge N tried to allocate a terabyte.
#[test]
fn keys_with_absurd_kdf_parameters_are_refused_before_deriving() {
    use rsa::pkcs8::pkcs5::pbes2::{Kdf, Pbkdf2Params, Pbkdf2Prf, ScryptParams};
    let salt = [1u8; 16];
    let scrypt = |n: u64, r: u16, p: u16| {
        Kdf::Scrypt(ScryptParams {
            salt: &salt,
            cost_parameter: n,
            block_size: r,
            parallelization: p,
            key_length: None,
        })
    };
    let cases = [
        (
            // The constructor refuses this; a file can still say it.
            Kdf::Pbkdf2(Pbkdf2Params {
                salt: &salt,
                iteration_count: 4_000_000_000,
                key_length: None,
                prf: Pbkdf2Prf::HmacWithSha256,
            }),
            "PBKDF2 iterations = 4000000000, over netcheck's cap of 1000000",
        ),
        (
            scrypt(1 << 30, 8, 1),
            "scrypt N = 1073741824, over netcheck's cap of 131072",
        ),
        (
            scrypt(1 << 14, 1024, 1),
            "scrypt r = 1024, over netcheck's cap of 8",
        ),
        (
            scrypt(1 << 14, 8, 60000),
            "scrypt p = 60000, over netcheck's cap of 4",
        ),
    ];
    for (kdf, words) in cases {
        let dir = TempDir::new("kdf");
        let key = dir.path().join("rsa_key.p8");
        std::fs::write(&key, encrypted_key_pem(kdf)).unwrap();
        let r = run_with(
            &["--private-key-file", key.to_str().unwrap()],
            &[("PRIVATE_KEY_PASSPHRASE", "correct horse")],
        );
        assert_eq!(r.code, 2, "{words}: {}", r.stderr);
        assert!(
            r.elapsed < Duration::from_secs(5),
            "{words}: {:?}",
            r.elapsed
        );
        assert!(r.stderr.contains(words), "{words}: {}", r.stderr);
        assert!(r.stderr.contains(key.to_str().unwrap()), "{}", r.stderr);
        assert!(!r.stderr.contains("correct horse"));
    }
}

/// A user's Snowflake directory given as `emulate --state-dir` is refused, saying why, and left
/// byte for byte as it was; before, its `connections.toml` and private key were overwritten.
#[test]
fn emulate_leaves_a_users_directory_untouched() {
    let dir = TempDir::new("user-home");
    let files = [
        ("connections.toml", "[prod]\naccount = \"myorg-prod\"\n"),
        (
            "rsa_key.p8",
            "-----BEGIN PRIVATE KEY-----\nthe user's only copy\n-----END PRIVATE KEY-----\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let r = run_bounded(
        &[],
        &["emulate", "--state-dir", dir.path().to_str().unwrap()],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "nothing started: {}", r.stdout);
    assert!(
        r.stderr
            .contains("refusing to write into a directory holding files netcheck emulate")
            && r.stderr.contains("connections.toml, rsa_key.p8"),
        "{}",
        r.stderr
    );
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["connections.toml", "rsa_key.p8"], "nothing added");
    for (name, text) in files {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            text.as_bytes(),
            "{name}"
        );
    }
}

/// Whether this machine can make mount and network namespaces (says why not).
fn can_unshare() -> bool {
    let probe = Command::new("unshare")
        .args(["--mount", "--net", "true"])
        .stderr(Stdio::null())
        .status();
    let can = probe.is_ok_and(|s| s.success());
    if !can {
        skip(
            Lack::Tool,
            "cannot make mount and network namespaces (unshare needs root)",
        );
    }
    can
}

/// Runs `script` (sh) in new mount and network namespaces; `None` (and says why) when this
/// machine cannot make them (not root, no unshare).
fn in_namespaces(script: &str, env: &[(&str, &str)], limit: Duration) -> Option<(bool, String)> {
    if !can_unshare() {
        return None;
    }
    let mut child = Command::new("unshare")
        .args(["--mount", "--net", "sh", "-c", script])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = drain(child.stderr.take().unwrap());
    let _ = drain(child.stdout.take().unwrap());
    let status = wait_or_kill(&mut child, limit);
    Some((status.is_some_and(|s| s.success()), out.join().unwrap()))
}

/// In namespaces of its own, with `/etc/resolv.conf` naming a dnsmasq on loopback that logs
/// every query: a control run of `netcheck run` with the system resolver is logged (so the
/// demo's query would be seen too), then the demo runs with discovery answering a foreign name
/// and a foreign address.
const DEMO_SCRIPT: &str = r#"
set -u
ip link set lo up || exit 90
printf 'nameserver 127.0.0.1\n' > "$DIR/resolv.conf"
mount --bind "$DIR/resolv.conf" /etc/resolv.conf || exit 91
dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --port=53 --user=root --pid-file= \
  --log-queries --log-facility="$DIR/dns.log" &
DNS=$!
i=0
until grep -q 'started' "$DIR/dns.log" 2>/dev/null; do
  i=$((i+1)); [ $i -gt 100 ] && { kill $DNS; exit 92; }; sleep 0.1
done
"$BIN" run --account control.netcheck.test --only dns.account --format json > "$DIR/control.json"
"$BIN" demo --fault hostname=evil.example.com --format json > "$DIR/name.json" 2> "$DIR/name.err"
"$BIN" demo --fault hostname=198.51.100.7 --format json > "$DIR/address.json" 2> "$DIR/address.err"
kill $DNS
wait $DNS
exit 0
"#;

/// `netcheck demo` never leaves loopback, whatever fault it shows: discovery answering a foreign
/// name sends no DNS query (the demo resolves only the emulator's hosts), and a foreign address
/// is not connected to. Before, the name was asked of the machine's resolver.
#[test]
fn the_demo_sends_no_query_and_no_packet_beyond_loopback() {
    if which("dnsmasq").is_none() {
        skip(
            Lack::Tool,
            "dnsmasq is not installed (apt-get install dnsmasq; .ci/run installs it)",
        );
        return;
    }
    let dir = TempDir::new("demo-dns");
    let Some((ok, stderr)) = in_namespaces(
        DEMO_SCRIPT,
        &[("BIN", BIN), ("DIR", dir.path().to_str().unwrap())],
        Duration::from_secs(120),
    ) else {
        return;
    };
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let log = read("dns.log");
    assert!(ok, "{stderr}\n{log}");
    let queries: Vec<&str> = log.lines().filter(|l| l.contains("query[")).collect();
    assert!(
        queries.iter().any(|q| q.contains("control.netcheck.test")),
        "the control lookup must be seen, or this test proves nothing:\n{log}"
    );
    assert!(
        queries.iter().all(|q| q.contains("control.netcheck.test")),
        "the demo sent DNS queries:\n{log}"
    );
    for (file, finding) in [
        (
            "name.json",
            "the demo resolves only those and sends no DNS query",
        ),
        ("address.json", "the demo connects only to loopback"),
    ] {
        let report: Value = serde_json::from_str(&read(file))
            .unwrap_or_else(|e| panic!("{file}: {e}\n{}", read(&file.replace("json", "err"))));
        assert_check(&report, "dns.ingest", "fail", Some("dns-servfail"));
        let said = check(&report, "dns.ingest")["finding"].as_str().unwrap();
        assert!(said.contains(finding), "{file}: {said}");
        assert_eq!(check(&report, "tcp.ingest")["verdict"], "skip", "{file}");
        assert_eq!(check(&report, "stream.open")["verdict"], "skip", "{file}");
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// An allowlist of `n` entries, all `127.0.0.1:port`, written into `dir`.
fn loopback_allowlist(dir: &Path, port: u16, n: usize) -> PathBuf {
    let entries: Vec<String> = (0..n)
        .map(|_| format!(r#"{{"type":"STAGE","host":"127.0.0.1","port":{port}}}"#))
        .collect();
    let file = dir.join("allowlist.json");
    std::fs::write(&file, format!("[{}]", entries.join(","))).unwrap();
    file
}

/// `netcheck run --only allowlist.hosts` with `allowlist`, under `prlimit --nofile=LIMITS`.
fn allowlist_run(limits: &str, allowlist: &Path, timeout: &str) -> Option<Value> {
    if which("prlimit").is_none() {
        skip(Lack::Tool, "prlimit is not installed (util-linux)");
        return None;
    }
    let nofile = format!("--nofile={limits}");
    let r = run_bounded(
        &["prlimit", &nofile],
        &[
            "run",
            "--account",
            "myorg-myaccount",
            "--dns-server",
            "127.0.0.1:9",
            "--only",
            "allowlist.hosts",
            "--allowlist",
            allowlist.to_str().unwrap(),
            "--concurrency",
            "256",
            "--timeout",
            timeout,
            "--format",
            "json",
        ],
        &[],
        Duration::from_secs(60),
    );
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    Some(r.json())
}

/// A low soft limit under a higher hard one is raised at start: the allowlist's evidence shows
/// the hard limit in force.
#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = TempDir::new("nofile-raise");
    let file = loopback_allowlist(dir.path(), listener.local_addr().unwrap().port(), 3);
    let Some(report) = allowlist_run("64:4096", &file, "5") else {
        return;
    };
    assert_check(&report, "allowlist.hosts", "pass", None);
    let descriptors = &check(&report, "allowlist.hosts")["evidence"]["descriptors"];
    assert_eq!(descriptors["open_files_limit"], 4096, "{descriptors}");
}

/// With too few descriptors to probe beside the rest of the run, nothing is tried and this
/// machine is named: `local-open-files`, not hosts "unreachable" with "Too many open files".
#[test]
fn too_few_file_descriptors_is_a_local_problem() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = TempDir::new("nofile-low");
    let file = loopback_allowlist(dir.path(), listener.local_addr().unwrap().port(), 300);
    let Some(report) = allowlist_run("32:32", &file, "5") else {
        return;
    };
    assert_check(&report, "allowlist.hosts", "fail", Some("local-open-files"));
    let c = check(&report, "allowlist.hosts");
    let finding = c["finding"].as_str().unwrap();
    assert!(
        finding.contains("file descriptors free (open-file limit 32)"),
        "{finding}"
    );
    assert_eq!(c["evidence"]["unreachable"], 0, "no host is blamed");
}

/// Connections to a listener whose accept queue is full hang (the SYNs are dropped), so each
/// probe holds its socket until `--timeout`. Under a hard limit of 100, 120 such probes at once
/// would run out of descriptors; bounded by what is free, every host is tried and reported for
/// what it did (timed out), none for this machine's limit.
#[test]
fn probes_at_once_are_bounded_by_the_descriptors_free() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // Fill the accept queue; then a further connect must hang, or the premise does not hold.
    let _queued: Vec<_> = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
        skip(
            Lack::Optional,
            "this kernel accepts connections past a full accept queue",
        );
        return;
    }
    let dir = TempDir::new("nofile-bound");
    let file = loopback_allowlist(dir.path(), addr.port(), 120);
    let Some(report) = allowlist_run("100:100", &file, "0.5") else {
        return;
    };
    assert_check(
        &report,
        "allowlist.hosts",
        "fail",
        Some("allowlist-unreachable"),
    );
    let evidence = &check(&report, "allowlist.hosts")["evidence"];
    let concurrency = evidence["descriptors"]["concurrency"].as_u64().unwrap();
    assert!((1..100).contains(&concurrency), "{evidence}");
    let hosts = evidence["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 120);
    for h in hosts {
        assert_eq!(h["failed_at"], "connect", "{h}");
        let error = h["error"].as_str().unwrap();
        assert!(error.contains("no answer within"), "{error}");
    }
}

/// Mounts `resolv`, `hosts` and `nsswitch` over the system's own files, in mount and network
/// namespaces of the run's own (nothing it could ask is reachable), and runs `dns.account`
/// under a 5 s deadline; `None` (and says why) when this machine cannot make the namespaces.
fn with_system_files(resolv: &Path, hosts: &Path, nsswitch: &Path) -> Option<(Run, Value)> {
    if !can_unshare() {
        return None;
    }
    let script = "mount --bind \"$1\" /etc/resolv.conf && mount --bind \"$2\" /etc/hosts && \
                  mount --bind \"$3\" /etc/nsswitch.conf && shift 3 && exec \"$@\"";
    let files = [resolv, hosts, nsswitch].map(|p| p.to_str().unwrap());
    let mut wrapper = vec!["unshare", "--mount", "--net", "sh", "-c", script, "sh"];
    wrapper.extend(files);
    let r = run_bounded(
        &wrapper,
        &[
            "run",
            "--account",
            "myorg-myaccount",
            "--only",
            "dns.account",
            "--format",
            "json",
            "--timeout",
            "2",
            "--deadline",
            "5",
        ],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    Some((r, report))
}

/// A FIFO with no writer as `/etc/resolv.conf`: netcheck opened it blocking, before the run's
/// deadline started, and hung forever. Now it is refused at once, named in the evidence, and the
/// run ends well within its deadline.
#[test]
fn a_fifo_as_resolv_conf_is_named_and_the_run_keeps_its_deadline() {
    let dir = TempDir::new("fifo-resolv");
    let (resolv, hosts, nsswitch) = (
        dir.path().join("resolv.conf"),
        dir.path().join("hosts"),
        dir.path().join("nsswitch.conf"),
    );
    Hazard::Fifo.make(&resolv);
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    std::fs::write(&nsswitch, "hosts: files dns\n").unwrap();
    let Some((r, report)) = with_system_files(&resolv, &hosts, &nsswitch) else {
        return;
    };
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
    assert_check(&report, "dns.account", "fail", Some("dns-local-config"));
    let ev = &check(&report, "dns.account")["evidence"];
    let problem = ev["resolver"]["problems"][0].as_str().unwrap_or_default();
    assert!(
        problem.starts_with("/etc/resolv.conf: ") && problem.contains(&Hazard::Fifo.words("")),
        "{ev:#}"
    );
    assert!(
        ev["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("FIFO")),
        "{ev:#}"
    );
}

/// An `/etc/hosts` over its cap (64 MiB, sparse) was cut at the cap without a word: lookups then
/// missed lines past it. Now the `files` source is unavailable and the evidence says why.
#[test]
fn a_hosts_file_over_its_cap_is_a_problem_in_the_evidence_not_cut_short() {
    let dir = TempDir::new("huge-hosts");
    let (resolv, hosts, nsswitch) = (
        dir.path().join("resolv.conf"),
        dir.path().join("hosts"),
        dir.path().join("nsswitch.conf"),
    );
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    std::fs::File::create(&hosts)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    std::fs::write(&nsswitch, "hosts: files\n").unwrap();
    let Some((_, report)) = with_system_files(&resolv, &hosts, &nsswitch) else {
        return;
    };
    assert_check(&report, "dns.account", "fail", Some("dns-local-config"));
    let ev = &check(&report, "dns.account")["evidence"];
    assert_eq!(
        ev["resolver"]["problems"][0],
        "/etc/hosts: it is larger than 64 MiB, the cap for a hosts file",
        "{ev:#}"
    );
    assert_eq!(ev["error"]["sources"][0]["status"], "unavail", "{ev:#}");
}
