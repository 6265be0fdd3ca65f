//! The fault lab: each scenario in `tests/scenarios/` gets its own network namespaces
//! ([`netns`]), real servers on them ([`daemons`]: dnsmasq, nginx or the netcheck emulator,
//! squid, tinyproxy, mitmproxy), real packet filters (nftables / iptables / tc on the edge
//! router, nftables on the client), and where nothing packaged fits, small userspace elements
//! ([`userspace`]: a delay relay, a SERVFAIL upstream, a banner service). netcheck then runs in
//! the client namespace with its system resolver pointed at the lab's dnsmasq, and the runner
//! ([`runner`]) compares its JSON report with the scenario's expectations ([`scenario`]).
//! [`docs`] renders `docs/scenarios.md` from the scenarios and their outcomes.
//!
//! Nothing here is part of netcheck; nothing here reaches beyond the namespaces it made.

pub mod daemons;
pub mod docs;
pub mod netns;
mod runner;
pub mod scenario;
pub mod userspace;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use daemons::{Daemon, SetupError, Workdir};
use netns::{ACCOUNT_IP, EDGE_IP, RELAY_IP, Side, Topology};
use scenario::{ACCOUNT_HOST, CertKind, PRIVATELINK_HOST, ProxyKind, Scenario, TlsFront, Trust};
use time::OffsetDateTime;
use userspace::Element;

use crate::support::pki::{self, INTERMEDIATE_URL, LeafSpec, ServerCert, TestPki};
use crate::support::run::Netcheck;

/// The title of the block-page proxy's page (scenarios look for it in the evidence).
pub const BLOCK_PAGE_TITLE: &str = "Access Denied by Corporate Web Policy";

/// The name-service switch file netcheck reads its `hosts:` order from.
const NSSWITCH: &str = "/etc/nsswitch.conf";

/// The names the lab's certificates are issued for.
const CERT_HOSTS: &[&str] = &[ACCOUNT_HOST, PRIVATELINK_HOST];

/// One scenario's running lab. Fields drop in order: servers first, then the namespaces, then
/// the files.
pub struct Lab {
    _elements: Vec<Element>,
    daemons: Vec<Daemon>,
    topo: Topology,
    dir: Workdir,
    client_hosts: PathBuf,
    client_resolv: PathBuf,
    client_nsswitch: PathBuf,
    ca_file: PathBuf,
    /// The emulator's state directory, for `--connection emulator` (`SNOWFLAKE_HOME`).
    snowflake_home: Option<PathBuf>,
    /// The lab root's PEM file, for `--proxy-cacert`.
    root_pem: PathBuf,
}

impl Lab {
    /// Builds everything `scenario` describes, as lab number `n`. `root` is the lab root's PEM
    /// file (what netcheck gets with `--ca-file`).
    pub fn build(
        n: usize,
        scenario: &Scenario,
        pki: &TestPki,
        root: &Path,
    ) -> Result<Self, SetupError> {
        let setup = &scenario.setup;
        // The client's copy is bind-mounted over it: the path must exist (it is never written).
        if !Path::new(NSSWITCH).exists() {
            return Err(SetupError::Unavailable(format!(
                "{NSSWITCH} is missing, so the client's copy cannot be mounted over it"
            )));
        }
        let topo = Topology::create(n)?;
        let dir = Workdir::create(n);
        let mut daemons = Vec::new();
        let mut elements = Vec::new();

        let default_dns = scenario::Dns {
            records: scenario::default_records(),
            ..Default::default()
        };
        let dns = setup.dns.as_ref().unwrap_or(&default_dns);
        if dns.answer == scenario::DnsAnswer::Servfail {
            elements.push(userspace::servfail_dns(
                topo.name(Side::Snowflake),
                daemons::FAILING_DNS.parse().expect("constant"),
            )?);
        }
        daemons.push(daemons::dnsmasq(&topo, &dir, dns)?);

        // The root the Snowflake side's certificates chain to.
        let mut snowflake_ca = root.to_path_buf();
        if let Some(emulator) = &setup.emulator {
            daemons.push(daemons::emulator(&topo, &dir, &emulator.faults)?);
            snowflake_ca = daemons::emulator_state(&dir).join("ca.pem");
        } else if setup.server.listen {
            let (chain, key) = server_cert(setup.server.cert, pki).write_pem_files();
            let chain = copy_into(&dir, "server-chain.pem", chain.path());
            let key = copy_into(&dir, "server-key.pem", key.path());
            daemons.push(daemons::nginx(&topo, &dir, &setup.server, &chain, &key)?);
        }
        if let Some(relay) = &setup.relay {
            let listen = SocketAddr::new(RELAY_IP.parse().expect("constant"), 443);
            let upstream = SocketAddr::new(ACCOUNT_IP.parse().expect("constant"), 443);
            let delay = Duration::from_millis(relay.delay_ms);
            elements.push(userspace::delay_relay(
                topo.name(Side::Snowflake),
                listen,
                upstream,
                delay,
            )?);
        }
        if let Some(banner) = &setup.banner {
            let listen = SocketAddr::new(EDGE_IP.parse().expect("constant"), netns::BANNER_PORT);
            elements.push(userspace::banner_service(
                topo.name(Side::Edge),
                listen,
                format!("{banner}\r\n"),
            )?);
        }
        let mut ca_file = snowflake_ca.clone();
        if let Some(proxy) = &setup.proxy {
            start_proxy(
                &topo,
                &dir,
                proxy,
                pki,
                &snowflake_ca,
                &mut daemons,
                &mut elements,
            )?;
            if scenario.run.trust == Trust::LabAndMitmproxy {
                let mitm = std::fs::read_to_string(daemons::mitmproxy_ca(&dir))
                    .map_err(|e| format!("mitmproxy CA: {e}"))?;
                let snowflake =
                    std::fs::read_to_string(&snowflake_ca).map_err(|e| e.to_string())?;
                ca_file = dir.write("trust.pem", &format!("{snowflake}{mitm}"));
            }
        }
        if setup.client.no_default_route {
            topo.run(Side::Client, &["ip", "route", "del", "default"])?;
            topo.run(Side::Client, &["ip", "-6", "route", "del", "default"])?;
        }
        // Last, so the daemons' readiness probes were not filtered.
        apply_firewall(&topo, &dir, setup)?;

        if scenario.run.foreign_key {
            foreign_key(&dir.path().join("foreign_key.p8"))?;
        }
        let (client_hosts, client_resolv, client_nsswitch) = client_files(&dir, &setup.client);
        let snowflake_home = setup
            .emulator
            .as_ref()
            .map(|_| daemons::emulator_state(&dir));
        Ok(Self {
            _elements: elements,
            daemons,
            topo,
            dir,
            client_hosts,
            client_resolv,
            client_nsswitch,
            ca_file,
            snowflake_home,
            root_pem: root.to_path_buf(),
        })
    }

    /// The netcheck invocation of `run`, inside the client namespace with the lab's resolv.conf,
    /// hosts and nsswitch.conf files, JSON on stdout.
    pub fn netcheck(&self, run: &scenario::RunSpec) -> Netcheck {
        let mut args = vec!["run".to_owned()];
        args.extend(run.args.iter().cloned());
        args.extend([
            "--format".into(),
            "json".into(),
            "--ca-file".into(),
            self.ca_file.display().to_string(),
        ]);
        if run.foreign_key {
            args.extend([
                "--private-key-file".into(),
                self.dir.path().join("foreign_key.p8").display().to_string(),
            ]);
        }
        if run.proxy_cacert {
            args.extend(["--proxy-cacert".into(), self.root_pem.display().to_string()]);
        }
        if let Some(json) = &run.allowlist {
            let file = self.dir.write("allowlist.json", json);
            args.extend(["--allowlist".into(), file.display().to_string()]);
        }
        // A watchdog outside netcheck: a hang fails the scenario instead of the whole test run.
        let watchdog = format!("{}", run.deadline_secs().ceil() + 5.0);
        let mut wrapper: Vec<String> = ["timeout", "-s", "KILL", &watchdog]
            .map(str::to_owned)
            .into();
        wrapper.extend(self.topo.wrapper_with_files(
            Side::Client,
            &[
                (&self.client_hosts, "/etc/hosts"),
                (&self.client_resolv, "/etc/resolv.conf"),
                (&self.client_nsswitch, NSSWITCH),
            ],
        ));
        let netcheck = crate::support::run::netcheck(&args).via(&wrapper);
        let netcheck = match &self.snowflake_home {
            Some(home) => netcheck.env("SNOWFLAKE_HOME", &home.to_string_lossy()),
            None => netcheck,
        };
        run.env.iter().fold(netcheck, |n, (k, v)| n.env(k, v))
    }

    /// The daemons' output and logs, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for d in &self.daemons {
            out.push_str(&d.output());
        }
        for name in [
            "dnsmasq.log",
            "squid/cache.log",
            "squid/access.log",
            "tinyproxy/tinyproxy.log",
            "danted.log",
            "sshd.out",
            "nginx/error.log",
        ] {
            if let Ok(text) = std::fs::read_to_string(self.dir.path().join(name)) {
                let _ = write!(out, "--- {name}\n{}", tail(&text, 30));
            }
        }
        out
    }
}

/// The scenario's proxy (a daemon, or the block-page element) and its TLS front, if any.
/// `snowflake_ca` is what an intercepting proxy verifies the Snowflake side with.
fn start_proxy(
    topo: &netns::Topology,
    dir: &Workdir,
    proxy: &scenario::Proxy,
    pki: &TestPki,
    snowflake_ca: &Path,
    daemons: &mut Vec<Daemon>,
    elements: &mut Vec<Element>,
) -> Result<(), SetupError> {
    if proxy.kind == ProxyKind::BlockPage {
        let listen = SocketAddr::new(EDGE_IP.parse().expect("constant"), proxy.kind.port());
        elements.push(userspace::block_page_proxy(
            topo.name(Side::Edge),
            listen,
            BLOCK_PAGE_TITLE.into(),
        )?);
    } else {
        if proxy.kind == ProxyKind::SshDynamic {
            daemons.push(daemons::sshd(topo, dir)?);
        }
        daemons.push(daemons::proxy(topo, dir, proxy, snowflake_ca)?);
    }
    if let Some(front) = proxy.tls_front {
        let cert = match front {
            TlsFront::Lab => pki.for_hosts(&[EDGE_IP]),
            TlsFront::PrivateCa => pki::unknown_ca().0,
        };
        let (chain, key) = cert.write_pem_files();
        let chain = copy_into(dir, "proxy-chain.pem", chain.path());
        let key = copy_into(dir, "proxy-key.pem", key.path());
        daemons.push(daemons::stunnel(
            topo,
            dir,
            proxy.kind.port(),
            &chain,
            &key,
        )?);
    }
    Ok(())
}

/// Writes the client's hosts, resolv.conf and nsswitch.conf (what [`Lab::netcheck`] mounts over
/// the real ones).
fn client_files(dir: &Workdir, client: &scenario::Client) -> (PathBuf, PathBuf, PathBuf) {
    let mut hosts = String::from("127.0.0.1 localhost\n::1 localhost\n");
    for line in &client.hosts {
        hosts.push_str(line);
        hosts.push('\n');
    }
    let resolv = match &client.resolv_conf {
        Some(lines) => lines.iter().fold(String::new(), |out, l| out + l + "\n"),
        None => format!("nameserver {EDGE_IP}\n"),
    };
    let nsswitch = format!(
        "hosts: {}\n",
        client.nsswitch_hosts.as_deref().unwrap_or("files dns")
    );
    (
        dir.write("client-hosts", &hosts),
        dir.write("client-resolv.conf", &resolv),
        dir.write("client-nsswitch.conf", &nsswitch),
    )
}

/// The last `n` lines of a log.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .fold(String::new(), |mut out, l| {
            let _ = writeln!(out, "{l}");
            out
        })
}

/// Writes a new 2048-bit RSA key (PKCS#8 PEM, owner-only) that no Snowflake user has.
fn foreign_key(path: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::PermissionsExt as _;
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(path)
        .output()
        .map_err(|e| SetupError::Unavailable(format!("openssl is needed to make a key: {e}")))?;
    if !out.status.success() {
        return Err(SetupError::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The certificate the server presents.
fn server_cert(kind: CertKind, pki: &TestPki) -> ServerCert {
    let now = OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let spec = |not_before, not_after| LeafSpec {
        hosts: CERT_HOSTS,
        not_before,
        not_after,
        aia_ca_issuers: None,
    };
    match kind {
        CertKind::Good => pki.for_hosts(CERT_HOSTS),
        CertKind::Expired => pki.leaf(&spec(now - 90 * day, now - day)),
        CertKind::NotYetValid => pki.leaf(&spec(now + 30 * day, now + 120 * day)),
        CertKind::Expiring => pki.leaf(&spec(now - 80 * day, now + 7 * day)),
        CertKind::WrongHost => pki.wrong_host(),
        CertKind::PrivateCa => pki::unknown_ca().0,
        CertKind::MissingIntermediate => pki.intermediate.issue(&LeafSpec {
            aia_ca_issuers: Some(INTERMEDIATE_URL),
            ..spec(now - day, now + 90 * day)
        }),
        CertKind::LeafOnly => pki.intermediate.issue(&spec(now - day, now + 90 * day)),
        CertKind::InspectionCa => pki::inspection_ca().0,
    }
}

/// Copies a temp file into the work directory (nginx's workers and the files' lifetime follow
/// the lab, not the temp handles).
fn copy_into(dir: &Workdir, name: &str, from: &Path) -> PathBuf {
    let to = dir.path().join(name);
    std::fs::copy(from, &to).expect("copy into the work dir");
    to
}

/// Loads the scenario's nftables rules into table `inet lab` on the edge router, then its
/// iptables and tc commands; and the client's own firewall, if it has one.
fn apply_firewall(
    topo: &Topology,
    dir: &Workdir,
    setup: &scenario::Setup,
) -> Result<(), SetupError> {
    let fw = &setup.firewall;
    if !setup.client.firewall.is_empty() {
        load_nft(
            topo,
            Side::Client,
            dir,
            &[("output", &setup.client.firewall)],
        )?;
    }
    if fw.is_empty() {
        return Ok(());
    }
    load_nft(
        topo,
        Side::Edge,
        dir,
        &[
            ("forward", &fw.forward),
            ("input", &fw.input),
            ("output", &fw.output),
        ],
    )?;
    for rule in &fw.iptables {
        let mut argv = vec!["iptables"];
        argv.extend(rule.split_whitespace());
        topo.run(Side::Edge, &argv)?;
    }
    for cmd in &fw.tc {
        let mut argv = vec!["tc"];
        argv.extend(cmd.split_whitespace());
        topo.run(Side::Edge, &argv)?;
    }
    Ok(())
}

/// Loads table `inet lab` with one base chain per hook into a namespace.
fn load_nft(
    topo: &Topology,
    side: Side,
    dir: &Workdir,
    chains: &[(&str, &Vec<String>)],
) -> Result<(), SetupError> {
    let mut ruleset = String::from("table inet lab {\n");
    for (hook, rules) in chains {
        let _ = writeln!(
            ruleset,
            "  chain {hook} {{\n    type filter hook {hook} priority 0; policy accept;"
        );
        for r in *rules {
            let _ = writeln!(ruleset, "    {r}");
        }
        ruleset.push_str("  }\n");
    }
    ruleset.push_str("}\n");
    let file = dir.write(&format!("{}.nft", topo.name(side)), &ruleset);
    topo.run(side, &["nft", "-f", &file.to_string_lossy()])?;
    Ok(())
}
