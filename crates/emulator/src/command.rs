//! `netcheck emulate`: run the emulator in the foreground with a state directory a user (or a
//! test) can point netcheck, the SDK or their own producer at.
//!
//! The state directory gets `ca.pem`, a fresh `rsa_key.p8`, `connections.toml` with a
//! `[connections.emulator]` entry (key-pair) and a `[connections.emulator_oauth]` entry (OAuth
//! client credentials against the emulator's own identity provider; the file is 0600, it holds
//! the client secret), and `netcheck.env` with the export lines that make
//! `. DIR/netcheck.env && netcheck run --connection emulator` (or `emulator_oauth`) work. On a clean stop it also
//! writes `requests.jsonl` (the request log) and `rows.jsonl` (rows committed to the default pipe).
//! It writes only into a new or empty directory, or one an earlier `emulate` wrote (marked with
//! `.netcheck-emulator`): never over a file it did not create.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::faults::{COUNT_HELP, SCOPE_HELP};
use super::{Emulator, EmulatorConfig, EmulatorError, Fault, defaults, spawn};
use crate::snowflake::keys::PrivateKey;

/// Arguments of `netcheck emulate`.
// Field docs are --help text: plain words, no Markdown.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, clap::Args)]
pub struct EmulateArgs {
    /// Address to listen on [default: 127.0.0.1:0, a free port].
    #[arg(long, env = "NETCHECK_EMULATE_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Directory for ca.pem, rsa_key.p8, connections.toml and netcheck.env: new, empty, or one
    /// an earlier emulate wrote; a directory holding other files is refused
    /// [default: a new directory under the system temp dir].
    #[arg(long, env = "NETCHECK_EMULATE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// A fault, NAME=VALUE@SCOPE#N (all but NAME optional); repeatable. See --list-faults.
    #[arg(long = "fault", value_name = "NAME[=VALUE][@SCOPE][#N]")]
    pub faults: Vec<Fault>,
    /// A TOML file with faults = ["latency=200ms@token", ...], added to --fault.
    #[arg(long, value_name = "FILE")]
    pub fault_file: Option<PathBuf>,
    /// How long appended rows stay in flight before they are committed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = crate::units::parse_count::<u64>)]
    pub commit_delay_ms: u64,
    /// How many committed rows to keep per pipe (the first N; rows.jsonl lists the default
    /// pipe's); later rows are still committed and counted, so a long rate test does not grow
    /// memory.
    #[arg(
        long,
        env = "NETCHECK_EMULATE_KEEP_ROWS",
        value_name = "N",
        default_value_t = 10_000,
        value_parser = crate::units::parse_count::<usize>
    )]
    pub keep_rows: usize,
    /// An S3-compatible server (HOST:PORT, reached over HTTPS) that :pipe-info names as the
    /// stage's storage_endpoint, so a client's file uploads land there [default: the emulator
    /// answers for the stage itself and refuses every upload].
    #[arg(long, env = "NETCHECK_EMULATE_STAGE", value_name = "HOST:PORT")]
    pub stage: Option<String>,
    /// List the fault modes, one line each, and exit.
    #[arg(long)]
    pub list_faults: bool,
}

/// `netcheck emulate`: serves until SIGINT or SIGTERM, printing where everything is to stdout.
pub async fn emulate(args: EmulateArgs) -> Result<(), EmulatorError> {
    run_emulate(args, &mut std::io::stdout(), shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn io_err(op: String) -> impl FnOnce(std::io::Error) -> EmulatorError {
    move |source| EmulatorError::Io { op, source }
}

/// The body of `netcheck emulate`: writes the state directory, prints where everything is, and
/// serves until `stop` resolves.
pub async fn run_emulate(
    args: EmulateArgs,
    out: &mut dyn Write,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), EmulatorError> {
    if args.list_faults {
        return list_faults(out).map_err(io_err("write to stdout".to_owned()));
    }
    let mut faults = args.faults.clone();
    if let Some(path) = &args.fault_file {
        faults.extend(read_fault_file(path)?);
    }
    let dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("netcheck-emulator-{}", std::process::id())),
    };
    claim_state_dir(&dir)?;
    let dir = dir
        .canonicalize()
        .map_err(io_err(format!("resolve {}", dir.display())))?;
    let key = tokio::task::spawn_blocking(|| PrivateKey::generate(2048))
        .await
        .map_err(|e| EmulatorError::Config(format!("key generation task failed: {e}")))??;
    let mut config = EmulatorConfig::with_user_key(&key.public_key().to_pem()?);
    config.faults = faults;
    config.commit_delay = std::time::Duration::from_millis(args.commit_delay_ms);
    config.keep_rows = args.keep_rows;
    config.stage.clone_from(&args.stage);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(io_err(format!("listen on {}", args.listen)))?;
    let emulator = spawn(listener, config).await?;
    let files = write_state_dir(&dir, &emulator, &key)?;
    let print = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "listening on {}", emulator.addr())?;
        writeln!(out, "account host: {}", emulator.account_host())?;
        writeln!(out, "ingest host: {}", emulator.ingest_host())?;
        writeln!(out, "CA certificate: {}", files.ca.display())?;
        writeln!(out, "environment: . {}", files.env.display())?;
        writeln!(out, "connections.toml ({}):", files.connections.display())?;
        // The client secret stays in the 0600 file: what is printed has it masked.
        write!(out, "{}", crate::secret::scrub(&files.entry))?;
        out.flush()
    };
    print(out).map_err(io_err("write to stdout".to_owned()))?;
    stop.await;
    write_json_lines(&dir.join("requests.jsonl"), &emulator.request_log())?;
    let pipe = crate::snowflake::rest::default_pipe(defaults::TABLE);
    let rows = emulator.rows(defaults::DATABASE, defaults::SCHEMA, &pipe);
    write_json_lines(&dir.join("rows.jsonl"), &rows)?;
    emulator.shutdown().await;
    Ok(())
}

/// Leaves the request log and the default pipe's committed rows behind (one JSON value per line),
/// so a producer's traffic can be read after the run — and a test can assert it when the emulator
/// ran in another network namespace.
fn write_json_lines<T: serde::Serialize>(path: &Path, items: &[T]) -> Result<(), EmulatorError> {
    let mut text = String::new();
    for item in items {
        let line = serde_json::to_string(item)
            .map_err(|e| EmulatorError::Config(format!("cannot encode {}: {e}", path.display())))?;
        text.push_str(&line);
        text.push('\n');
    }
    write_file(path, &text, false)
}

fn list_faults(out: &mut dyn Write) -> std::io::Result<()> {
    for help in Fault::catalog() {
        writeln!(out, "{:<28} {}", help.syntax, help.meaning)?;
    }
    writeln!(out, "scopes (append to any fault): {SCOPE_HELP}")?;
    writeln!(out, "counts: {COUNT_HELP}")
}

#[derive(serde::Deserialize)]
struct FaultFile {
    faults: Vec<String>,
}

fn read_fault_file(path: &Path) -> Result<Vec<Fault>, EmulatorError> {
    let text = crate::local_file::read_text(path, crate::local_file::FileKind::Config)
        .map_err(|e| EmulatorError::Config(e.to_string()))?;
    let file: FaultFile = toml::from_str(&text)
        .map_err(|e| EmulatorError::Config(format!("{}: {e}", path.display())))?;
    file.faults
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| EmulatorError::Config(format!("{}: {e}", path.display())))
        })
        .collect()
}

struct StateFiles {
    ca: PathBuf,
    env: PathBuf,
    connections: PathBuf,
    entry: String,
}

/// The address clients should use: a wildcard listen address means loopback.
fn client_ip(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

/// `host:port:addr` in curl `--resolve` syntax (IPv6 in brackets).
fn resolve_entry(host: &str, port: u16, ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{host}:{port}:{v4}"),
        IpAddr::V6(v6) => format!("{host}:{port}:[{v6}]"),
    }
}

/// Single-quotes a value for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Marks a state directory as emulate's own, so a later run may write into it again.
const MARKER: &str = ".netcheck-emulator";
/// Every file emulate writes into its state directory.
const STATE_FILES: &[&str] = &[
    MARKER,
    "ca.pem",
    "rsa_key.p8",
    "connections.toml",
    "netcheck.env",
    "requests.jsonl",
    "rows.jsonl",
];

/// Makes sure `dir` is emulate's to write: created now, empty, or holding only the files an
/// earlier `emulate` wrote (it has the marker). Anything else is refused before a byte is
/// written: the file names are those of a user's `~/.snowflake`, and a lost private key cannot
/// be recovered.
fn claim_state_dir(dir: &Path) -> Result<(), EmulatorError> {
    std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io_err(format!("list {}", dir.display())))?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(io_err(format!("list {}", dir.display())))?;
    let ours = names.iter().any(|n| n == MARKER);
    let mut foreign: Vec<String> = names
        .into_iter()
        .filter(|n| !ours || !STATE_FILES.contains(&n.as_str()))
        .collect();
    if !foreign.is_empty() {
        foreign.sort_unstable();
        foreign.truncate(5);
        return Err(EmulatorError::StateDirInUse {
            dir: dir.to_owned(),
            foreign,
        });
    }
    write_file(
        &dir.join(MARKER),
        "This directory is netcheck emulate's state: its files are rewritten on each start.\n",
        false,
    )
}

/// Writes a fresh file: whatever is at `path` (in a directory [`claim_state_dir`] accepted) is
/// removed first rather than written through, so a symlink placed there is replaced, not
/// followed. A private file is created owner-only, never readable by others even briefly.
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), EmulatorError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_err(format!("replace {}", path.display()))(e));
        }
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(io_err(format!("write {}", path.display())))
}

fn write_state_dir(
    dir: &Path,
    emulator: &Emulator,
    key: &PrivateKey,
) -> Result<StateFiles, EmulatorError> {
    let ca = dir.join("ca.pem");
    let key_file = dir.join("rsa_key.p8");
    let connections = dir.join("connections.toml");
    let env = dir.join("netcheck.env");
    write_file(&ca, emulator.ca_pem(), false)?;
    write_file(&key_file, key.to_pkcs8_pem()?.expose(), true)?;
    let port = emulator.addr().port();
    let entry = toml::to_string(&toml::toml! {
        [connections.emulator]
        account = (emulator.account())
        user = (defaults::USER)
        host = (emulator.account_host())
        port = (i64::from(port))
        protocol = "https"
        authenticator = "SNOWFLAKE_JWT"
        private_key_file = (key_file.display().to_string())
        role = (defaults::ROLE)
        database = (defaults::DATABASE)
        schema = (defaults::SCHEMA)
        table = (defaults::TABLE)

        [connections.emulator_oauth]
        account = (emulator.account())
        user = (defaults::USER)
        host = (emulator.account_host())
        port = (i64::from(port))
        protocol = "https"
        authenticator = "OAUTH_CLIENT_CREDENTIALS"
        oauth_client_id = (defaults::OAUTH_CLIENT_ID)
        oauth_client_secret = (super::default_oauth_secret())
        oauth_token_request_url = (emulator.idp_token_url())
        role = (defaults::ROLE)
        database = (defaults::DATABASE)
        schema = (defaults::SCHEMA)
        table = (defaults::TABLE)
    })
    .map_err(|e| EmulatorError::Config(format!("cannot encode connections.toml: {e}")))?;
    // Private: it holds the client secret.
    write_file(&connections, &entry, true)?;
    let ip = client_ip(emulator.addr());
    let resolve = [
        emulator.account_host(),
        emulator.ingest_host(),
        emulator.idp_host(),
        emulator.stage_host(),
    ]
    .map(|h| resolve_entry(h, port, ip))
    .join(",");
    let env_text = format!(
        "export SNOWFLAKE_HOME={}\nexport NETCHECK_CA_FILE={}\nexport NETCHECK_RESOLVE={}\n",
        shell_quote(&dir.display().to_string()),
        shell_quote(&ca.display().to_string()),
        shell_quote(&resolve),
    );
    write_file(&env, &env_text, false)?;
    Ok(StateFiles {
        ca,
        env,
        connections,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case("0.0.0.0:1", "127.0.0.1")]
    #[test_case("[::]:1", "::1")]
    #[test_case("127.0.0.2:1", "127.0.0.2")]
    fn wildcard_means_loopback(listen: &str, expected: &str) {
        assert_eq!(client_ip(listen.parse().unwrap()).to_string(), expected);
    }

    #[test]
    fn resolve_entries_use_curl_syntax() {
        assert_eq!(
            resolve_entry("h", 8443, "127.0.0.1".parse().unwrap()),
            "h:8443:127.0.0.1"
        );
        assert_eq!(
            resolve_entry("h", 8443, "::1".parse().unwrap()),
            "h:8443:[::1]"
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }

    #[test]
    fn fault_files_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("netcheck-faultfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, "faults = [\"latency=200ms@token\", \"reset\"]\n").unwrap();
        let faults = read_fault_file(&good).unwrap();
        assert_eq!(
            faults.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["latency=200ms@token", "reset"]
        );
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "faults = [\"nope\"]\n").unwrap();
        assert!(
            matches!(read_fault_file(&bad), Err(EmulatorError::Config(m)) if m.contains("unknown fault"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory under the temp dir, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            Self(std::env::temp_dir().join(format!(
                "netcheck-claim-{tag}-{}-{nanos}",
                std::process::id()
            )))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_new_or_empty_directory_is_claimed_and_can_be_reused() {
        let dir = Dir::new("new");
        claim_state_dir(&dir.0).unwrap();
        assert!(dir.0.join(MARKER).is_file());
        for name in STATE_FILES {
            write_file(&dir.0.join(name), "x", false).unwrap();
        }
        claim_state_dir(&dir.0).unwrap();
    }

    #[test]
    fn a_directory_with_other_files_is_refused() {
        let dir = Dir::new("user");
        std::fs::create_dir_all(&dir.0).unwrap();
        std::fs::write(dir.0.join("rsa_key.p8"), "mine").unwrap();
        let err = claim_state_dir(&dir.0).unwrap_err();
        assert!(
            matches!(&err, EmulatorError::StateDirInUse { foreign, .. } if foreign == &["rsa_key.p8"]),
            "{err}"
        );
        assert!(!dir.0.join(MARKER).exists());
        // The marker alone does not make a stranger's file emulate's.
        std::fs::write(dir.0.join(MARKER), "").unwrap();
        std::fs::write(dir.0.join("notes.txt"), "mine").unwrap();
        assert!(claim_state_dir(&dir.0).is_err());
    }

    #[test]
    fn a_symlink_in_the_directory_is_replaced_not_followed() {
        let dir = Dir::new("link");
        claim_state_dir(&dir.0).unwrap();
        let outside = Dir::new("outside");
        std::fs::create_dir_all(&outside.0).unwrap();
        let target = outside.0.join("rsa_key.p8");
        std::fs::write(&target, "user's key").unwrap();
        std::os::unix::fs::symlink(&target, dir.0.join("rsa_key.p8")).unwrap();
        write_file(&dir.0.join("rsa_key.p8"), "emulator key", true).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "user's key");
        assert_eq!(
            std::fs::read_to_string(dir.0.join("rsa_key.p8")).unwrap(),
            "emulator key"
        );
    }

    #[test]
    fn list_faults_prints_one_line_each() {
        let mut out = Vec::new();
        list_faults(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), Fault::catalog().len() + 2);
        assert!(text.contains("latency=DURATION"));
    }
}
