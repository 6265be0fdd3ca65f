//! The third-party servers of the lab — dnsmasq, nginx, squid, tinyproxy, mitmproxy, Dante,
//! stunnel — each
//! started in the foreground inside a lab namespace with a config written to the scenario's
//! work directory, in its own process group, and killed (helpers included) on drop.
//!
//! They listen on the lab's fixed addresses, not loopback, which is why this does not reuse
//! `support::proxies` (bound to 127.0.0.1 in the test's own namespace). Whatever resolves names
//! through the C library (tinyproxy, mitmproxy) gets a private `/etc/hosts` with the true
//! Snowflake-side addresses and a resolv.conf pointing at nothing, so no query ever leaves the
//! lab.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::netns::{
    ACCOUNT_IP, ACCOUNT_IP6, EDGE_IP, EDGE_IP6, PRIVATELINK_IP, Side, Topology, status,
};
use super::scenario::{
    ACCOUNT_HOST, Dns, DnsAnswer, INGEST_HOST, PRIVATELINK_HOST, Proxy, ProxyKind, STAGE_HOST,
    Server, TLS_FRONT_PORT, TlsPolicy,
};
use crate::support::dns::which;
use crate::support::proxies::{apr1_hash, squid_auth_helper};

/// How long a daemon may take to start listening.
const STARTUP: Duration = Duration::from_secs(20);

/// Where the failing DNS upstream listens (on the Snowflake side).
pub const FAILING_DNS: &str = "198.18.2.2:53";

/// Why a part of the lab could not be set up.
#[derive(Debug)]
pub enum SetupError {
    /// A tool is missing: the scenario is skipped, saying so.
    Unavailable(String),
    /// The lab itself is broken: the scenario fails.
    Failed(String),
}

impl From<String> for SetupError {
    fn from(s: String) -> Self {
        Self::Failed(s)
    }
}

/// A scenario's private directory under the system temp dir (configs, certificates, logs),
/// readable by the users the daemons drop to; removed on drop.
pub struct Workdir(PathBuf);

impl Workdir {
    /// Creates `/tmp/nclab-<pid>-<n>`.
    pub fn create(n: usize) -> Self {
        let path = std::env::temp_dir().join(format!("nclab-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir is writable");
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("temp dir is writable");
        path
    }

    /// A subdirectory handed to the user a daemon drops privileges to.
    pub fn subdir_for(&self, name: &str, owner: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(&path).expect("temp dir is writable");
        let _ = Command::new("chown")
            .arg("-R")
            .arg(owner)
            .arg(&path)
            .status();
        path
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon running in a lab namespace.
pub struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `command` (already wrapped for its namespace) in a new process group, its output
    /// going to `<name>.out` in the work directory.
    fn spawn(name: &'static str, mut command: Command, dir: &Workdir) -> Result<Self, SetupError> {
        use std::os::unix::process::CommandExt as _;
        let log = dir.path().join(format!("{name}.out"));
        let out = std::fs::File::create(&log).map_err(|e| format!("{name}: {e}"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Self { name, child, log })
    }

    /// Waits until the daemon accepts TCP on `addr`; a daemon that exits first is an error
    /// carrying its output, reported at once rather than after [`STARTUP`].
    fn wait(mut self, topo: &Topology, side: Side, addr: SocketAddr) -> Result<Self, SetupError> {
        let start = std::time::Instant::now();
        loop {
            let probe = topo.wait_for_tcp(side, addr, Duration::from_millis(250));
            if probe.is_ok() {
                return Ok(self);
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || start.elapsed() > STARTUP {
                let status = exited
                    .map(|s| format!(" (exited: {s})"))
                    .unwrap_or_default();
                let e = probe.err().unwrap_or_default();
                return Err(SetupError::Failed(format!(
                    "{}{status}: {e}\n{}",
                    self.name,
                    self.output()
                )));
            }
        }
    }

    /// Waits until the daemon has printed `needle`: `netcheck emulate` accepts connections as
    /// soon as it has bound its port, but writes its state directory (which netcheck reads
    /// through `--connection emulator`) before it prints its first line.
    fn wait_for_output(mut self, needle: &str) -> Result<Self, SetupError> {
        let start = std::time::Instant::now();
        while !self.output().contains(needle) {
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || start.elapsed() > STARTUP {
                return Err(SetupError::Failed(format!(
                    "{} did not print {needle:?}:\n{}",
                    self.name,
                    self.output()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(self)
    }

    /// What the daemon printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pgid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(name: &str, package: &str) -> Result<PathBuf, SetupError> {
    which(name).ok_or_else(|| {
        SetupError::Unavailable(format!(
            "{name} is not installed (apt-get install {package}; .ci/run installs it)"
        ))
    })
}

/// dnsmasq on the edge router (198.18.1.1:53 and `[2001:db8:1::1]:53`, UDP and TCP): the
/// client's resolver.
pub fn dnsmasq(topo: &Topology, dir: &Workdir, dns: &Dns) -> Result<Daemon, SetupError> {
    let bin = binary("dnsmasq", "dnsmasq")?;
    let mut c = topo.command(Side::Edge, &bin.to_string_lossy());
    c.args([
        "-k",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
    ])
    .args([
        format!("--listen-address={EDGE_IP}"),
        format!("--listen-address={EDGE_IP6}"),
        "--port=53".into(),
        "--user=root".into(),
        "--pid-file=".into(),
    ])
    .arg(format!(
        "--log-facility={}",
        dir.path().join("dnsmasq.log").display()
    ))
    .arg("--log-queries");
    match dns.answer {
        DnsAnswer::Zone => {
            c.args(["--local=/snowflakecomputing.com/", "--local=/corp.example/"]);
        }
        DnsAnswer::Refused => {}
        DnsAnswer::Servfail => {
            c.arg(format!(
                "--server=/snowflakecomputing.com/{}",
                FAILING_DNS.replace(":53", "")
            ));
        }
    }
    for r in &dns.records {
        let addrs: Vec<String> =
            r.a.iter()
                .map(ToString::to_string)
                .chain(r.aaaa.iter().map(ToString::to_string))
                .collect();
        if !addrs.is_empty() {
            c.arg(format!("--host-record={},{}", r.name, addrs.join(",")));
        }
        if let Some(target) = &r.cname {
            c.arg(format!("--cname={},{target}", r.name));
        }
        if let Some(txt) = &r.txt {
            c.arg(format!("--txt-record={},{txt}", r.name));
        }
    }
    Daemon::spawn("dnsmasq", c, dir)?.wait(
        topo,
        Side::Edge,
        SocketAddr::new(EDGE_IP.parse().expect("constant"), 53),
    )
}

/// nginx on the Snowflake side, on port 443 of the account, `PrivateLink` and IPv6 addresses (the
/// relay's address stays free), presenting `chain`/`key` (PEM
/// files) with the server's protocol policy.
pub fn nginx(
    topo: &Topology,
    dir: &Workdir,
    server: &Server,
    chain: &Path,
    key: &Path,
) -> Result<Daemon, SetupError> {
    let bin = binary("nginx", "nginx")?;
    let d = dir.subdir_for("nginx", "nobody:nogroup");
    let protocols = match server.tls {
        TlsPolicy::Tls12And13 => "ssl_protocols TLSv1.2 TLSv1.3;",
        TlsPolicy::Tls12Only => "ssl_protocols TLSv1.2;",
        TlsPolicy::Tls13Only => "ssl_protocols TLSv1.3;",
        // OpenSSL 3 refuses TLS 1.0/1.1 above security level 0.
        TlsPolicy::OldOnly => "ssl_protocols TLSv1 TLSv1.1; ssl_ciphers DEFAULT:@SECLEVEL=0;",
        TlsPolicy::LegacyCiphers => "ssl_protocols TLSv1.2; ssl_ciphers AES128-SHA:AES256-SHA;",
    };
    let (d, chain, key) = (d.display(), chain.display(), key.display());
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\nuser nobody nogroup;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 128; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{\n    listen {ACCOUNT_IP}:443 ssl;\n    listen {PRIVATELINK_IP}:443 ssl;\n    listen [{ACCOUNT_IP6}]:443 ssl;\n    ssl_certificate {chain};\n\
             ssl_certificate_key {key};\n    {protocols}\n    location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n"
    );
    let conf = dir.write("nginx.conf", &conf);
    let mut c = topo.command(Side::Snowflake, &bin.to_string_lossy());
    c.arg("-c").arg(conf).arg("-p").arg(dir.path());
    Daemon::spawn("nginx", c, dir)?.wait(
        topo,
        Side::Snowflake,
        SocketAddr::new(ACCOUNT_IP.parse().expect("constant"), 443),
    )
}

/// The hosts file proxies resolve the Snowflake side with: the true addresses, whatever the
/// client's resolver says.
pub fn proxy_hosts() -> String {
    format!(
        "127.0.0.1 localhost\n{ACCOUNT_IP} {ACCOUNT_HOST}\n{ACCOUNT_IP} {INGEST_HOST}\n\
         {ACCOUNT_IP} {STAGE_HOST}\n{PRIVATELINK_IP} {PRIVATELINK_HOST}\n"
    )
}

/// The Snowflake emulator (`netcheck emulate`, the binary under test) on 198.18.2.10:443 of the
/// Snowflake side with `faults`; its state directory (CA, key, `connections.toml`) is
/// [`emulator_state`].
pub fn emulator(topo: &Topology, dir: &Workdir, faults: &[String]) -> Result<Daemon, SetupError> {
    let listen = SocketAddr::new(ACCOUNT_IP.parse().expect("constant"), 443);
    let mut c = topo.command(Side::Snowflake, env!("CARGO_BIN_EXE_netcheck"));
    c.args(["emulate", "--listen", &listen.to_string(), "--state-dir"])
        .arg(emulator_state(dir));
    for f in faults {
        c.args(["--fault", f]);
    }
    Daemon::spawn("emulator", c, dir)?
        .wait(topo, Side::Snowflake, listen)?
        .wait_for_output("listening on ")
}

/// The emulator's state directory (`SNOWFLAKE_HOME` for `--connection emulator`).
pub fn emulator_state(dir: &Workdir) -> PathBuf {
    dir.path().join("emulator")
}

/// A proxy on the edge router, listening on 198.18.1.1 at the kind's port. `upstream_ca` is the
/// root an intercepting proxy verifies the real server with.
pub fn proxy(
    topo: &Topology,
    dir: &Workdir,
    p: &Proxy,
    upstream_ca: &Path,
) -> Result<Daemon, SetupError> {
    let addr = SocketAddr::new(EDGE_IP.parse().expect("constant"), p.kind.port());
    let daemon = match p.kind {
        ProxyKind::Squid => squid(topo, dir, p)?,
        ProxyKind::Tinyproxy => tinyproxy(topo, dir, p)?,
        ProxyKind::Mitmproxy => mitmproxy(topo, dir, upstream_ca)?,
        ProxyKind::Dante => dante(topo, dir, p)?,
        ProxyKind::SshDynamic => ssh_dynamic(topo, dir)?,
        ProxyKind::BlockPage => {
            return Err(SetupError::Failed(
                "the block-page proxy is a userspace element, not a daemon".into(),
            ));
        }
    };
    daemon.wait(topo, Side::Edge, addr)
}

/// stunnel on the edge router: TLS on 198.18.1.1:[`TLS_FRONT_PORT`] with `chain`/`key` (PEM
/// files), relaying the plaintext to the proxy on `port`: an `https://` proxy.
pub fn stunnel(
    topo: &Topology,
    dir: &Workdir,
    port: u16,
    chain: &Path,
    key: &Path,
) -> Result<Daemon, SetupError> {
    let bin = binary("stunnel4", "stunnel4")?;
    let conf = format!(
        "foreground = yes\npid =\nsyslog = no\ndebug = notice\n[proxy]\n\
         accept = {EDGE_IP}:{TLS_FRONT_PORT}\nconnect = {EDGE_IP}:{port}\ncert = {}\nkey = {}\n",
        chain.display(),
        key.display()
    );
    let conf = dir.write("stunnel.conf", &conf);
    let mut c = topo.command(Side::Edge, &bin.to_string_lossy());
    c.arg(conf);
    Daemon::spawn("stunnel", c, dir)?.wait(
        topo,
        Side::Edge,
        SocketAddr::new(EDGE_IP.parse().expect("constant"), TLS_FRONT_PORT),
    )
}

/// Dante on the edge router: SOCKS4, 4a, 5 and 5h from the LAN, connecting out from the WAN
/// address; its log lists every connection it relays. Each `deny` entry (an address with its
/// mask, or a host name) gets a `socks block` rule ahead of the pass rule: Dante refuses it with
/// SOCKS's "not allowed by ruleset" reply (5: code 2, 4: code 91).
fn dante(topo: &Topology, dir: &Workdir, p: &Proxy) -> Result<Daemon, SetupError> {
    let bin = binary("danted", "dante-server")?;
    let log = dir.path().join("danted.log");
    let mut conf = format!(
        "logoutput: {}\ninternal: {EDGE_IP} port = {}\nexternal: 198.18.2.1\n\
         clientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n\
         client pass {{\n  from: 198.18.1.0/24 to: 0.0.0.0/0\n  log: connect error\n}}\n",
        log.display(),
        ProxyKind::Dante.port()
    );
    for to in &p.deny {
        writeln!(
            conf,
            "socks block {{\n  from: 198.18.1.0/24 to: {to}\n  log: connect error\n}}"
        )
        .expect("string");
    }
    conf.push_str(
        "socks pass {\n  from: 198.18.1.0/24 to: 0.0.0.0/0\n  command: connect\n  log: connect error\n}\n",
    );
    let conf = dir.write("danted.conf", &conf);
    // socks4a and socks5h send the name: Dante resolves it through libc.
    let (hosts, resolv) = private_etc(dir);
    let mut c = wrapped(topo, &hosts, &resolv, &bin);
    c.arg("-f").arg(conf).arg("-N").arg("1");
    Daemon::spawn("danted", c, dir)
}

/// Where the lab's sshd listens, on the edge router's loopback.
const SSHD: &str = "127.0.0.1:2222";

/// The SOCKS side of OpenSSH's dynamic forwarding: `ssh -D` on the edge router, logged in to
/// [`sshd`] with a key made here. Its `socks4a` and `socks5h` requests carry the name, which sshd
/// resolves.
fn ssh_dynamic(topo: &Topology, dir: &Workdir) -> Result<Daemon, SetupError> {
    let bin = binary("ssh", "openssh-client")?;
    let d = dir.path().join("ssh");
    let listen = SocketAddr::new(
        EDGE_IP.parse().expect("constant"),
        ProxyKind::SshDynamic.port(),
    );
    let mut c = topo.command(Side::Edge, &bin.to_string_lossy());
    c.args(["-N", "-D", &listen.to_string(), "-i"])
        .arg(d.join("client_key"))
        .args([
            "-p",
            "2222",
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
        ]);
    Daemon::spawn("ssh", c, dir)
}

/// An sshd of the lab's own on the edge router's loopback ([`SSHD`]), taking only the key
/// [`ssh_dynamic`] logs in with; it opens the forwarded connections from the WAN side and
/// resolves names through the proxies' hosts file.
pub fn sshd(topo: &Topology, dir: &Workdir) -> Result<Daemon, SetupError> {
    let bin = binary("sshd", "openssh-server")?;
    let keygen = binary("ssh-keygen", "openssh-client")?;
    let d = dir.path().join("ssh");
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    // sshd refuses to start without its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
    for key in ["host_key", "client_key"] {
        let mut c = Command::new(&keygen);
        c.args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join(key));
        status(c, "ssh-keygen")?;
    }
    std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))
        .map_err(|e| e.to_string())?;
    let ds = d.display();
    let conf = dir.write(
        "sshd_config",
        &format!(
            "ListenAddress {SSHD}\nHostKey {ds}/host_key\nPidFile none\n\
             AuthorizedKeysFile {ds}/authorized_keys\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nAllowTcpForwarding yes\nLogLevel VERBOSE\n"
        ),
    );
    let (hosts, resolv) = private_etc(dir);
    let mut c = wrapped(topo, &hosts, &resolv, &bin);
    c.args(["-D", "-e", "-f"]).arg(conf);
    Daemon::spawn("sshd", c, dir)?.wait(topo, Side::Edge, SSHD.parse().expect("constant"))
}

fn squid(topo: &Topology, dir: &Workdir, p: &Proxy) -> Result<Daemon, SetupError> {
    let bin = binary("squid", "squid")?;
    let d = dir.subdir_for("squid", "proxy:proxy");
    std::fs::write(d.join("hosts"), proxy_hosts()).map_err(|e| e.to_string())?;
    let port = ProxyKind::Squid.port();
    let ds = d.display();
    let mut conf = format!(
        "http_port {EDGE_IP}:{port}\nvisible_hostname nclab-squid\npid_filename {ds}/squid.pid\n\
         cache_log {ds}/cache.log\naccess_log stdio:{ds}/access.log\ncache deny all\ncoredump_dir {ds}\n\
         hosts_file {ds}/hosts\ndns_nameservers 127.0.0.1\nshutdown_lifetime 1 seconds\n\
         cache_effective_user proxy\nacl CONNECT method CONNECT\nacl SSL_ports port 443\n\
         acl lab_clients src 198.18.1.0/24\n"
    );
    if let Some(auth) = &p.auth {
        std::fs::write(
            d.join("htpasswd"),
            format!(
                "{}:{}\n",
                auth.user,
                apr1_hash(&auth.password).map_err(SetupError::Unavailable)?
            ),
        )
        .map_err(|e| e.to_string())?;
        let helper = squid_auth_helper().map_err(SetupError::Unavailable)?;
        let helper = helper.display();
        writeln!(
            conf,
            "auth_param basic program {helper} {ds}/htpasswd\nauth_param basic realm corp-proxy\n\
             acl authenticated proxy_auth REQUIRED\nhttp_access deny !authenticated"
        )
        .expect("string");
    }
    if !p.auth_schemes.is_empty() {
        squid_domain_auth(&mut conf, &p.auth_schemes)?;
    }
    if let Some(secs) = p.idle_timeout_secs {
        writeln!(conf, "read_timeout {secs} seconds").expect("string");
    }
    conf.push_str("http_access deny CONNECT !SSL_ports\n");
    if !p.deny.is_empty() {
        writeln!(
            conf,
            "acl denied_hosts dstdomain -n {}\nhttp_access deny CONNECT denied_hosts",
            p.deny.join(" ")
        )
        .expect("string");
    }
    if !p.allow.is_empty() {
        writeln!(
            conf,
            "acl allowed_hosts dstdomain -n {}\nhttp_access deny CONNECT !allowed_hosts",
            p.allow.join(" ")
        )
        .expect("string");
    }
    conf.push_str("http_access allow lab_clients\nhttp_access deny all\n");
    std::fs::write(d.join("squid.conf"), conf).map_err(|e| e.to_string())?;
    let _ = Command::new("chown")
        .arg("-R")
        .arg("proxy:proxy")
        .arg(&d)
        .status();
    let mut c = topo.command(Side::Edge, &bin.to_string_lossy());
    // A unique service name keeps concurrent squids from sharing IPC names.
    let service = d
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().replace('-', ""))
        .unwrap_or_default();
    c.arg("-N")
        .arg("-n")
        .arg(service)
        .arg("-f")
        .arg(d.join("squid.conf"));
    Daemon::spawn("squid", c, dir)
}

/// squid demanding Negotiate and/or NTLM, as a proxy joined to a Windows domain does. The helpers
/// start only when a client answers the challenge (`startup=0`), which no Basic client does.
fn squid_domain_auth(conf: &mut String, schemes: &[String]) -> Result<(), SetupError> {
    for scheme in schemes {
        let helper = match scheme.as_str() {
            "negotiate" => "negotiate_kerberos_auth",
            "ntlm" => "ntlm_fake_auth",
            other => return Err(SetupError::Failed(format!("unknown auth scheme {other}"))),
        };
        let path = ["/usr/lib/squid", "/usr/lib64/squid", "/usr/libexec/squid"]
            .iter()
            .map(|dir| format!("{dir}/{helper}"))
            .find(|p| Path::new(p).is_file())
            .ok_or_else(|| SetupError::Unavailable(format!("squid's {helper} is missing")))?;
        writeln!(
            conf,
            "auth_param {scheme} program {path}\nauth_param {scheme} children 1 startup=0 idle=1"
        )
        .expect("string");
    }
    conf.push_str("acl authenticated proxy_auth REQUIRED\nhttp_access deny !authenticated\n");
    Ok(())
}

fn tinyproxy(topo: &Topology, dir: &Workdir, p: &Proxy) -> Result<Daemon, SetupError> {
    let bin = binary("tinyproxy", "tinyproxy")?;
    let d = dir.subdir_for("tinyproxy", "nobody:nogroup");
    let ds = d.display();
    let port = ProxyKind::Tinyproxy.port();
    let idle = p.idle_timeout_secs.unwrap_or(30);
    let mut conf = format!(
        "User nobody\nGroup nogroup\nPort {port}\nListen {EDGE_IP}\nTimeout {idle}\nPidFile \"{ds}/tinyproxy.pid\"\n\
         LogFile \"{ds}/tinyproxy.log\"\nLogLevel Info\nMaxClients 50\nAllow 198.18.1.0/24\n"
    );
    let (patterns, default_deny) = match (p.allow.is_empty(), p.deny.is_empty()) {
        (true, true) => (vec![], false),
        (false, _) => (p.allow.clone(), true),
        (true, false) => (p.deny.clone(), false),
    };
    if !patterns.is_empty() {
        let filter = patterns.iter().fold(String::new(), |mut f, h| {
            let _ = writeln!(f, "{}$", h.replace('.', "\\."));
            f
        });
        std::fs::write(d.join("filter"), filter).map_err(|e| e.to_string())?;
        let deny = if default_deny { "Yes" } else { "No" };
        writeln!(
            conf,
            "Filter \"{ds}/filter\"\nFilterExtended On\nFilterDefaultDeny {deny}"
        )
        .expect("string");
    }
    if let Some(auth) = &p.auth {
        writeln!(conf, "BasicAuth {} {}", auth.user, auth.password).expect("string");
    }
    std::fs::write(d.join("tinyproxy.conf"), conf).map_err(|e| e.to_string())?;
    let (hosts, resolv) = private_etc(dir);
    let mut c = wrapped(topo, &hosts, &resolv, &bin);
    c.arg("-d").arg("-c").arg(d.join("tinyproxy.conf"));
    Daemon::spawn("tinyproxy", c, dir)
}

fn mitmproxy(topo: &Topology, dir: &Workdir, upstream_ca: &Path) -> Result<Daemon, SetupError> {
    let bin = mitmdump()?;
    let confdir = dir.subdir_for("mitmproxy", "root:root");
    let (hosts, resolv) = private_etc(dir);
    let mut c = wrapped(topo, &hosts, &resolv, &bin);
    c.args([
        "--mode",
        "regular",
        "--listen-host",
        EDGE_IP,
        "--listen-port",
    ])
    .arg(ProxyKind::Mitmproxy.port().to_string())
    .arg("--set")
    .arg(format!("confdir={}", confdir.display()))
    .arg("--set")
    .arg(format!(
        "ssl_verify_upstream_trusted_ca={}",
        upstream_ca.display()
    ))
    .arg("--quiet");
    Daemon::spawn("mitmproxy", c, dir)
}

/// mitmproxy's CA certificate (PEM), written by mitmproxy when it first starts.
pub fn mitmproxy_ca(dir: &Workdir) -> PathBuf {
    dir.path().join("mitmproxy").join("mitmproxy-ca-cert.pem")
}

/// `mitmdump` next to `NETCHECK_PYTHON` (the venv `.ci/run` makes), or on PATH.
fn mitmdump() -> Result<PathBuf, SetupError> {
    std::env::var_os("NETCHECK_PYTHON")
        .map(PathBuf::from)
        .and_then(|py| py.parent().map(|d| d.join("mitmdump")))
        .filter(|p| p.is_file())
        .or_else(|| which("mitmdump"))
        .ok_or_else(|| SetupError::Unavailable("mitmdump is not installed (pip install mitmproxy in NETCHECK_PYTHON's venv; .ci/run does)".into()))
}

/// The private `/etc/hosts` and `/etc/resolv.conf` for daemons that resolve through libc.
fn private_etc(dir: &Workdir) -> (PathBuf, PathBuf) {
    (
        dir.write("proxy-hosts", &proxy_hosts()),
        dir.write("proxy-resolv.conf", "nameserver 127.0.0.1\n"),
    )
}

fn wrapped(topo: &Topology, hosts: &Path, resolv: &Path, bin: &Path) -> Command {
    let words = topo.wrapper_with_files(
        Side::Edge,
        &[(hosts, "/etc/hosts"), (resolv, "/etc/resolv.conf")],
    );
    let mut c = Command::new(&words[0]);
    c.args(&words[1..]).arg(bin);
    c
}
