//! `netcheck emulate` as a separate process, the way a user runs it: a state directory with the
//! CA, a key, `connections.toml` and `netcheck.env`, stopped with SIGTERM on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fresh directory under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("netcheck-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `netcheck emulate`.
pub struct Emulate {
    pub dir: TempDir,
    child: Child,
}

impl Emulate {
    /// Starts `netcheck emulate --state-dir <tmp> [--fault F]…` and waits for its first line.
    pub fn start(faults: &[&str]) -> Self {
        let dir = TempDir::new("emulate");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netcheck"));
        cmd.args(["emulate", "--state-dir"]).arg(dir.path());
        for f in faults {
            cmd.args(["--fault", f]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start netcheck emulate");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        // Keep reading: a closed pipe would kill the emulator at its next line of output.
        std::thread::spawn(move || lines.for_each(drop));
        let listening = first.strip_prefix("listening on ");
        assert!(
            listening.is_some_and(|a| a.parse::<SocketAddr>().is_ok()),
            "unexpected first line: {first}"
        );
        Self { dir, child }
    }

    /// The `export K='V'` lines of `netcheck.env`, as pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.dir.path().join("netcheck.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect()
    }

    /// The private key file the state directory holds.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("rsa_key.p8")
    }
}

impl Drop for Emulate {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The private key's file name in the directory `run_args` writes to.
pub const KEY_FILE: &str = "rsa_key.p8";

/// `netcheck run` flags that point at an in-process emulator as its default user, with the CA and
/// the key written into `dir`: for tests that need the emulator's live request log.
pub fn run_args(emu: &netcheck::emulator::Emulator, dir: &Path) -> Vec<String> {
    run_args_at(emu, dir, emu.addr().port(), emu.ca_pem())
}

/// [`run_args`] for a server in front of the emulator (same host names), listening on loopback
/// `port` with a certificate under `ca_pem`.
pub fn run_args_at(
    emu: &netcheck::emulator::Emulator,
    dir: &Path,
    port: u16,
    ca_pem: &str,
) -> Vec<String> {
    use netcheck::emulator::{default_key, defaults};
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let key = dir.join(KEY_FILE);
    std::fs::write(&key, default_key().to_pkcs8_pem().unwrap().expose()).unwrap();
    // Owner-only, as a deployed key should be (looser modes make auth.keypair warn).
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    [
        "run".to_owned(),
        "--account".into(),
        format!("https://{}:{port}", emu.account_host()),
        "--resolve".into(),
        format!(
            "{}:{port}:127.0.0.1,{}:{port}:127.0.0.1,{}:{port}:127.0.0.1",
            emu.account_host(),
            emu.ingest_host(),
            emu.stage_host()
        ),
        "--ca-file".into(),
        ca.display().to_string(),
        "--user".into(),
        defaults::USER.into(),
        "--role".into(),
        defaults::ROLE.into(),
        "--private-key-file".into(),
        key.display().to_string(),
        "--database".into(),
        defaults::DATABASE.into(),
        "--schema".into(),
        defaults::SCHEMA.into(),
        "--table".into(),
        defaults::TABLE.into(),
    ]
    .to_vec()
}

/// An in-process emulator with the default user's key registered, configured by `configure`.
pub async fn spawn_emulator(
    configure: impl FnOnce(&mut netcheck::emulator::EmulatorConfig),
) -> netcheck::emulator::Emulator {
    use netcheck::emulator::{self, EmulatorConfig};
    let key = emulator::default_key().public_key().to_pem().unwrap();
    let mut config = EmulatorConfig::with_user_key(&key);
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    emulator::spawn(listener, config).await.unwrap()
}

/// Runs every check, `--full` included, in-process with `settings` (nothing can interrupt it).
pub async fn run_all(settings: netcheck::settings::Settings) -> netcheck::runner::RunResult {
    let plan = netcheck::registry::plan(&[], &[], true).unwrap();
    let ctx = netcheck::context::Ctx::new(settings).unwrap();
    netcheck::runner::run(&plan, ctx, None, futures::stream::pending()).await
}
