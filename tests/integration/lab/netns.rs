//! The lab's network: three namespaces per scenario, wired client ─ edge ─ Snowflake side.
//!
//! ```text
//!  client (netcheck)        edge (router, firewall, DNS, proxies)        snowflake (servers)
//!  lan 198.18.1.2/24 ──── lan 198.18.1.1/24   wan 198.18.2.1/24 ──── wan 198.18.2.2/24
//!      2001:db8:1::2/64       2001:db8:1::1/64     2001:db8:2::1/64        2001:db8:2::2/64
//!                                                                        + 198.18.2.10 account host
//!                                                                        + 198.18.2.20 delay relay
//!                                                                        + 2001:db8:2::10 account (v6)
//!                                                                        + 10.0.0.10 PrivateLink endpoint
//! ```
//!
//! Every address is fixed, so scenarios and the generated docs can name them; namespaces keep
//! concurrent scenarios apart. "Public" addresses come from 198.18.0.0/15 (benchmarking) so a
//! healthy lab draws no private-address warning; only the `PrivateLink` endpoint is in 10/8.
//! The veth pairs are created directly inside the namespaces: the host's own network
//! namespace and interfaces are never touched. Dropping a [`Topology`] ends whatever still
//! runs in its namespaces and deletes them (the veths go with them).

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::fd::AsFd as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every lab namespace starts with this, then the test process id: `nclab-<pid>-<n>-<side>`.
pub const PREFIX: &str = "nclab-";

/// The edge router's LAN address: the client's gateway, DNS server and proxies.
pub const EDGE_IP: &str = "198.18.1.1";
/// The edge router's LAN IPv6 address (dnsmasq answers there too: a second nameserver).
pub const EDGE_IP6: &str = "2001:db8:1::1";
/// Where the banner service listens on the edge router (a non-HTTP service).
pub const BANNER_PORT: u16 = 2222;
/// The account host's address on the Snowflake side.
pub const ACCOUNT_IP: &str = "198.18.2.10";
/// The account host's IPv6 address.
pub const ACCOUNT_IP6: &str = "2001:db8:2::10";
/// Where the delay relay listens (it forwards to [`ACCOUNT_IP`]).
pub const RELAY_IP: &str = "198.18.2.20";
/// A `PrivateLink` endpoint: a private address on the Snowflake side.
pub const PRIVATELINK_IP: &str = "10.0.0.10";

/// One of the three namespaces of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Where netcheck runs, with its own resolv.conf and hosts file.
    Client,
    /// The router between client and Snowflake: firewall, DNS server, proxies.
    Edge,
    /// The servers standing in for Snowflake.
    Snowflake,
}

/// The namespaces of one scenario; removed on drop.
pub struct Topology {
    names: [String; 3],
}

/// Why the lab cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|u| u.split_whitespace().next().unwrap_or("").to_owned())
            })
        });
    if uid.as_deref() != Some("0") {
        return Some(
            "the fault lab needs root (network namespaces, nftables); CI runs as root".into(),
        );
    }
    for tool in ["ip", "nft", "iptables", "unshare", "mount"] {
        if crate::support::dns::which(tool).is_none() {
            return Some(format!(
                "`{tool}` is not installed (iproute2 / nftables / iptables / util-linux; .ci/run installs them)"
            ));
        }
    }
    None
}

impl Topology {
    /// Creates and wires the three namespaces for scenario number `n`.
    pub fn create(n: usize) -> Result<Self, String> {
        let base = format!("{PREFIX}{}-{n}", std::process::id());
        let topo = Self {
            names: [
                format!("{base}-client"),
                format!("{base}-edge"),
                format!("{base}-sf"),
            ],
        };
        for (name, side) in topo
            .names
            .iter()
            .zip([Side::Client, Side::Edge, Side::Snowflake])
        {
            ip(&["netns", "add", name])?;
            // No duplicate address detection: link-local addresses are usable at once.
            topo.run(
                side,
                &[
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.all.accept_dad=0",
                ],
            )?;
        }
        let [c, e, s] = [
            topo.name(Side::Client),
            topo.name(Side::Edge),
            topo.name(Side::Snowflake),
        ];
        // Each veth is born in one lab namespace with its peer in the other.
        ip(&[
            "-n", c, "link", "add", "lan", "type", "veth", "peer", "name", "lan", "netns", e,
        ])?;
        ip(&[
            "-n", e, "link", "add", "wan", "type", "veth", "peer", "name", "wan", "netns", s,
        ])?;
        let plan: &[(&str, &[&str])] = &[
            (c, &["addr", "add", "198.18.1.2/24", "dev", "lan"]),
            (
                c,
                &["addr", "add", "2001:db8:1::2/64", "dev", "lan", "nodad"],
            ),
            (e, &["addr", "add", "198.18.1.1/24", "dev", "lan"]),
            (
                e,
                &["addr", "add", "2001:db8:1::1/64", "dev", "lan", "nodad"],
            ),
            (e, &["addr", "add", "198.18.2.1/24", "dev", "wan"]),
            (
                e,
                &["addr", "add", "2001:db8:2::1/64", "dev", "wan", "nodad"],
            ),
            (s, &["addr", "add", "198.18.2.2/24", "dev", "wan"]),
            (
                s,
                &["addr", "add", "2001:db8:2::2/64", "dev", "wan", "nodad"],
            ),
            (s, &["addr", "add", "198.18.2.10/32", "dev", "wan"]),
            (s, &["addr", "add", "198.18.2.20/32", "dev", "wan"]),
            (
                s,
                &["addr", "add", "2001:db8:2::10/128", "dev", "wan", "nodad"],
            ),
            (s, &["addr", "add", "10.0.0.10/32", "dev", "wan"]),
            (c, &["link", "set", "lo", "up"]),
            (e, &["link", "set", "lo", "up"]),
            (s, &["link", "set", "lo", "up"]),
            (c, &["link", "set", "lan", "up"]),
            (e, &["link", "set", "lan", "up"]),
            (e, &["link", "set", "wan", "up"]),
            (s, &["link", "set", "wan", "up"]),
            (c, &["route", "add", "default", "via", "198.18.1.1"]),
            (
                c,
                &["-6", "route", "add", "default", "via", "2001:db8:1::1"],
            ),
            (s, &["route", "add", "default", "via", "198.18.2.1"]),
            (
                s,
                &["-6", "route", "add", "default", "via", "2001:db8:2::1"],
            ),
            (e, &["route", "add", "10.0.0.0/24", "via", "198.18.2.2"]),
        ];
        for (ns, args) in plan {
            let mut full = vec!["-n", ns];
            full.extend_from_slice(args);
            ip(&full)?;
        }
        topo.run(
            Side::Edge,
            &[
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )?;
        topo.wait_for_carrier()?;
        Ok(topo)
    }

    /// Waits until every veth has carrier. The kernel reports it up to a second after the link
    /// is set up, and IPv6 does not configure an address on a link without carrier: a scenario
    /// started earlier would see its first IPv6 packets vanish.
    fn wait_for_carrier(&self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let mut waiting = Vec::new();
            for name in &self.names {
                let out = Command::new("ip")
                    .args(["-n", name, "-o", "link", "show"])
                    .output()
                    .map_err(|e| e.to_string())?;
                if String::from_utf8_lossy(&out.stdout).contains("NO-CARRIER") {
                    waiting.push(name.as_str());
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(5) {
                return Err(format!("no carrier on the veths of {waiting:?} after 5 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self, side: Side) -> &str {
        match side {
            Side::Client => &self.names[0],
            Side::Edge => &self.names[1],
            Side::Snowflake => &self.names[2],
        }
    }

    /// `ip netns exec NS program`: a command that runs inside the namespace.
    pub fn command(&self, side: Side, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name(side), program]);
        c
    }

    /// The wrapper words that run a program in the namespace with private copies of files under
    /// /etc bind-mounted over the real ones (a mount namespace of its own, so the host's files
    /// are never touched): `binds` pairs a file of the lab with the path it replaces.
    pub fn wrapper_with_files(&self, side: Side, binds: &[(&Path, &str)]) -> Vec<String> {
        let mut script = String::new();
        for (i, (_, target)) in binds.iter().enumerate() {
            let _ = write!(script, "mount --bind \"${}\" {target} && ", i + 1);
        }
        let _ = write!(script, "shift {} && exec \"$@\"", binds.len());
        let mut words: Vec<String> = [
            "ip",
            "netns",
            "exec",
            self.name(side),
            "unshare",
            "-m",
            "sh",
            "-c",
            &script,
            "sh",
        ]
        .map(str::to_owned)
        .into();
        words.extend(binds.iter().map(|(file, _)| file.display().to_string()));
        words
    }

    /// Runs a command inside the namespace to completion; its stderr is the error.
    pub fn run(&self, side: Side, argv: &[&str]) -> Result<(), String> {
        let mut c = self.command(side, argv[0]);
        c.args(&argv[1..]);
        status(c, &argv.join(" "))
    }

    /// Waits until a TCP connect to `addr` from inside the namespace succeeds.
    pub fn wait_for_tcp(
        &self,
        side: Side,
        addr: std::net::SocketAddr,
        limit: Duration,
    ) -> Result<(), String> {
        let ns = self.name(side).to_owned();
        std::thread::spawn(move || {
            enter(&ns).map_err(|e| format!("setns {ns}: {e}"))?;
            let start = Instant::now();
            while start.elapsed() < limit {
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(format!(
                "nothing listening on {addr} in {ns} after {limit:?}"
            ))
        })
        .join()
        .expect("probe thread")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in &self.names {
            remove(name);
        }
    }
}

/// Moves the calling thread into a lab namespace: sockets it creates from now on live there.
pub fn enter(ns: &str) -> io::Result<()> {
    let file = File::open(Path::new("/run/netns").join(ns))?;
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

/// Removes lab namespaces and work directories left behind by a lab run that was killed (its
/// process is gone).
pub fn sweep_stale() {
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if stale_pid(&name) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if stale_pid(&name) {
            remove(&name);
        }
    }
}

/// Whether `name` is `nclab-<pid>-…` for a process that no longer exists.
fn stale_pid(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.split('-').next())
        .is_some_and(|pid| pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists())
}

/// Ends what still runs in a lab namespace (daemons' forked children), then deletes it.
fn remove(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
        {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

fn ip(args: &[&str]) -> Result<(), String> {
    let mut c = Command::new("ip");
    c.args(args);
    status(c, &format!("ip {}", args.join(" ")))
}

/// Runs a command to completion; its stderr is the error.
pub fn status(mut c: Command, what: &str) -> Result<(), String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::stale_pid;

    #[test_case("nclab-1-3-client", false; "pid 1 is alive")]
    #[test_case("nclab-4194304999-3-edge", true; "no such pid")]
    #[test_case("nclab-4194304999-3", true; "work dir of a dead run")]
    #[test_case("netcheck-squid-1-0", false; "not the lab's")]
    #[test_case("nclab-proto-client", false; "no pid")]
    fn finds_what_a_dead_run_left(name: &str, stale: bool) {
        assert_eq!(stale_pid(name), stale);
    }
}
