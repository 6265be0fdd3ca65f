//! Real HTTP CONNECT proxies for tests — tinyproxy and squid from Debian's packages, each
//! started in the foreground on a free loopback port with its own config in a private
//! directory and killed on drop — plus tiny fakes for what no real proxy does on demand
//! (answering non-HTTP bytes, staying silent, hanging up), and an echo target to tunnel to.
//!
//! Both proxies resolve names with the system resolver, whose server is off this machine:
//! only ask them for IP literals, `localhost`, or (squid) names pinned with
//! [`ProxyOpts::hosts`]. squid is also pointed at `127.0.0.1` for DNS so that a stray lookup
//! stays on loopback.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::dns::{free_port, which};
use super::skip::{Lack, skip};

/// How long a proxy may take to accept connections after it is started.
const STARTUP: Duration = Duration::from_secs(20);

/// What a real proxy lets through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Policy {
    /// Every CONNECT is allowed.
    #[default]
    AllowAll,
    /// Every CONNECT is refused with 403 (tinyproxy: `ConnectPort 1`, so no test port is
    /// allowed; squid: `http_access deny CONNECT`).
    DenyConnect,
    /// CONNECT to these hosts (names or IP literals, matched exactly) is refused with 403,
    /// everything else is allowed (tinyproxy: an anchored `Filter`; squid: `dstdomain -n`).
    /// Neither proxy resolves a refused name, so any name is safe here.
    DenyHosts(Vec<String>),
}

/// How to configure a real proxy.
#[derive(Debug, Clone, Default)]
pub struct ProxyOpts {
    /// What the proxy lets through.
    pub policy: Policy,
    /// Require Basic authentication with this user and password.
    pub basic_auth: Option<(String, String)>,
    /// Names squid resolves through its `hosts_file` (tinyproxy ignores this).
    pub hosts: Vec<(String, IpAddr)>,
}

impl ProxyOpts {
    /// Options requiring Basic auth with `user` / `password`.
    pub fn with_auth(user: &str, password: &str) -> Self {
        Self {
            basic_auth: Some((user.to_owned(), password.to_owned())),
            ..Self::default()
        }
    }

    /// Options refusing every CONNECT.
    pub fn deny() -> Self {
        Self {
            policy: Policy::DenyConnect,
            ..Self::default()
        }
    }

    /// Options refusing CONNECT to `hosts` only.
    pub fn deny_hosts(hosts: &[&str]) -> Self {
        Self {
            policy: Policy::DenyHosts(hosts.iter().map(|h| (*h).to_owned()).collect()),
            ..Self::default()
        }
    }
}

/// Which real proxy to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Tinyproxy,
    Squid,
}

impl ProxyKind {
    /// The program's name, which is also its Debian package's and the start of its `Server` /
    /// `Proxy-agent` header.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tinyproxy => "tinyproxy",
            Self::Squid => "squid",
        }
    }
}

/// A real proxy process in its own process group, killed (with any helpers) on drop.
pub struct Proxy {
    child: Child,
    addr: SocketAddr,
    dir: PrivateDir,
    kind: ProxyKind,
}

impl Proxy {
    /// Starts `kind` configured by `opts`, or returns `None` (saying `skipped: …` on stderr)
    /// when it is not installed. Panics, with its log, when it is installed but does not come
    /// up.
    pub fn start(kind: ProxyKind, opts: &ProxyOpts) -> Option<Self> {
        let Some(binary) = which(kind.name()) else {
            skip(
                Lack::Tool,
                format!(
                    "{0} is not installed (apt-get install {0}; .ci/run installs it)",
                    kind.name()
                ),
            );
            return None;
        };
        let dir = PrivateDir::new(kind.name());
        let port = free_port();
        let command = match kind {
            ProxyKind::Tinyproxy => tinyproxy(binary, opts, &dir, port),
            ProxyKind::Squid => squid(binary, opts, &dir, port),
        };
        Some(Self::spawn(kind, command, port, dir))
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `--proxy` or `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`.
    pub fn url_with_auth(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// Waits (up to 5 s) for `needle` in the proxy's record of its requests (squid's
    /// `access.log`: `TCP_TUNNEL/200`, `TCP_DENIED/403`, …; tinyproxy's log: `CONNECT host:port`,
    /// `Refused CONNECT …`). squid logs a transaction only after it ends, a moment after the
    /// client sees the reply or closes the tunnel; it closes its side of a tunnel itself, so
    /// this blocking wait needs nothing else to run meanwhile.
    pub fn logged(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.requests_log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the proxy logged so far (for failure messages).
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        match self.kind {
            ProxyKind::Tinyproxy => format!("{}{}", read("tinyproxy.log"), read("stderr.log")),
            ProxyKind::Squid => format!(
                "{}{}{}",
                read("access.log"),
                read("cache.log"),
                read("stderr.log")
            ),
        }
    }

    fn requests_log(&self) -> String {
        let file = match self.kind {
            ProxyKind::Tinyproxy => "tinyproxy.log",
            ProxyKind::Squid => "access.log",
        };
        std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default()
    }

    fn spawn(kind: ProxyKind, mut command: Command, port: u16, dir: PrivateDir) -> Self {
        use std::os::unix::process::CommandExt as _;
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let mut proxy = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            kind,
        };
        proxy.wait_until_listening();
        proxy
    }

    fn wait_until_listening(&mut self) {
        let started = Instant::now();
        while started.elapsed() < STARTUP {
            if StdStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before listening:\n{}",
                    self.kind.name(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} not listening on {} after {STARTUP:?}:\n{}",
            self.kind.name(),
            self.addr,
            self.log()
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The negative pid addresses the process group: squid's auth helpers die with it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tinyproxy in the foreground with its config and log in `dir`.
fn tinyproxy(binary: PathBuf, opts: &ProxyOpts, dir: &PrivateDir, port: u16) -> Command {
    let d = dir.path().display();
    let mut conf = format!(
        "User nobody\nGroup nogroup\nPort {port}\nListen 127.0.0.1\nTimeout 30\n\
         PidFile \"{d}/tinyproxy.pid\"\nLogFile \"{d}/tinyproxy.log\"\nLogLevel Info\n\
         MaxClients 50\nAllow 127.0.0.1\n"
    );
    match &opts.policy {
        Policy::AllowAll => {}
        Policy::DenyConnect => conf.push_str("ConnectPort 1\n"),
        Policy::DenyHosts(hosts) => {
            let mut patterns = String::new();
            for host in hosts {
                writeln!(patterns, "^{}$", host.replace('.', "\\.")).unwrap();
            }
            dir.write("filter", &patterns);
            writeln!(
                conf,
                "Filter \"{d}/filter\"\nFilterExtended On\nFilterDefaultDeny No"
            )
            .unwrap();
        }
    }
    if let Some((user, password)) = &opts.basic_auth {
        writeln!(conf, "BasicAuth {user} {password}").unwrap();
    }
    dir.write("tinyproxy.conf", &conf);
    // tinyproxy drops to `nobody`, which must be able to write its log.
    dir.chown("nobody:nogroup");
    let mut command = Command::new(binary);
    command
        .arg("-d")
        .arg("-c")
        .arg(dir.path().join("tinyproxy.conf"));
    command
}

/// squid in the foreground with its config, logs and `hosts_file` in `dir`.
fn squid(binary: PathBuf, opts: &ProxyOpts, dir: &PrivateDir, port: u16) -> Command {
    let d = dir.path().display();
    let mut conf = format!(
        "http_port 127.0.0.1:{port}\nvisible_hostname netcheck-test\n\
         pid_filename {d}/squid.pid\ncache_log {d}/cache.log\n\
         access_log stdio:{d}/access.log\ncache deny all\ncoredump_dir {d}\n\
         hosts_file {d}/hosts\ndns_nameservers 127.0.0.1\nshutdown_lifetime 1 seconds\n\
         cache_effective_user proxy\nacl CONNECT method CONNECT\n"
    );
    if let Some((user, password)) = &opts.basic_auth {
        let hash = apr1_hash(password).unwrap_or_else(|e| panic!("{e}"));
        dir.write("htpasswd", &format!("{user}:{hash}\n"));
        let helper = squid_auth_helper().unwrap_or_else(|e| panic!("{e}"));
        writeln!(
            conf,
            "auth_param basic program {} {d}/htpasswd\nauth_param basic realm netcheck-test\n\
             acl authenticated proxy_auth REQUIRED\nhttp_access deny !authenticated",
            helper.display()
        )
        .unwrap();
    }
    match &opts.policy {
        Policy::AllowAll => {}
        Policy::DenyConnect => conf.push_str("http_access deny CONNECT\n"),
        Policy::DenyHosts(hosts) => writeln!(
            conf,
            "acl netcheck_denied dstdomain -n {}\nhttp_access deny CONNECT netcheck_denied",
            hosts.join(" ")
        )
        .unwrap(),
    }
    conf.push_str("http_access allow localhost\nhttp_access deny all\n");
    let mut hosts = String::from("127.0.0.1 localhost\n");
    for (name, ip) in &opts.hosts {
        writeln!(hosts, "{ip} {name}").unwrap();
    }
    dir.write("hosts", &hosts);
    dir.write("squid.conf", &conf);
    dir.chown("proxy:proxy");
    let mut command = Command::new(binary);
    // A unique service name keeps concurrent squids from sharing IPC names.
    command
        .arg("-N")
        .arg("-n")
        .arg(dir.service_name())
        .arg("-f")
        .arg(dir.path().join("squid.conf"));
    command
}

/// A fresh directory under the system temp dir, removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new(kind: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("netcheck-{kind}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.0.join(name), contents).unwrap();
    }

    /// Hands the directory to the user a proxy drops privileges to (needs root, as the
    /// proxies themselves do to switch users; without root they keep ours and this is moot).
    fn chown(&self, owner: &str) {
        let _ = Command::new("chown")
            .arg("-R")
            .arg(owner)
            .arg(&self.0)
            .status();
    }

    fn service_name(&self) -> String {
        self.0
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('-', "")
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// squid's `basic_ncsa_auth` helper, wherever the distribution put it (also used by the lab).
pub fn squid_auth_helper() -> Result<PathBuf, String> {
    ["/usr/lib/squid", "/usr/lib64/squid", "/usr/libexec/squid"]
        .iter()
        .map(|dir| Path::new(dir).join("basic_ncsa_auth"))
        .find(|p| p.is_file())
        .ok_or_else(|| "squid's basic_ncsa_auth helper is missing".to_owned())
}

/// An htpasswd hash squid's `basic_ncsa_auth` accepts (also used by the lab).
pub fn apr1_hash(password: &str) -> Result<String, String> {
    let out = Command::new("openssl")
        .args(["passwd", "-apr1", password])
        .output()
        .map_err(|e| format!("openssl is needed for a squid password file: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl passwd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// What a [`FakeProxy`] does with each connection.
#[derive(Debug, Clone)]
pub enum FakeBehaviour {
    /// Read the request head, send these bytes, then echo whatever follows (so a test can
    /// check that bytes after a reply head are left in the tunnel).
    Reply(Vec<u8>),
    /// Read and never answer.
    Silent,
    /// Read the request head, then close.
    CloseAfterRequest,
    /// Read the request head, send these bytes, then close.
    ReplyAndClose(Vec<u8>),
    /// Echo everything back, request included (a peer that is no proxy at all).
    Echo,
}

/// A fake proxy on a loopback port; its task stops on drop.
pub struct FakeProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeProxy {
    /// Starts a fake proxy with the given behaviour for every connection.
    pub async fn start(behaviour: FakeBehaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_fake(stream, behaviour.clone()));
            }
        });
        Self { addr, task }
    }

    /// The fake's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_fake(mut stream: TcpStream, behaviour: FakeBehaviour) {
    match behaviour {
        FakeBehaviour::Echo => echo(stream).await,
        FakeBehaviour::Silent => {
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        FakeBehaviour::CloseAfterRequest => {
            read_request_head(&mut stream).await;
        }
        FakeBehaviour::ReplyAndClose(bytes) => {
            read_request_head(&mut stream).await;
            let _ = stream.write_all(&bytes).await;
        }
        FakeBehaviour::Reply(bytes) => {
            read_request_head(&mut stream).await;
            if stream.write_all(&bytes).await.is_ok() {
                echo(stream).await;
            }
        }
    }
}

async fn read_request_head(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte).await, Ok(1)) {
        head.push(byte[0]);
    }
}

async fn echo(mut stream: TcpStream) {
    let (mut reader, mut writer) = stream.split();
    let _ = tokio::io::copy(&mut reader, &mut writer).await;
}

/// A TCP echo server on loopback: the target at the far end of a tunnel. Stops on drop.
pub struct EchoTarget {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoTarget {
    /// Starts the echo server.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(echo(stream));
            }
        });
        Self { addr, task }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EchoTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}
