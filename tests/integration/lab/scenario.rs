//! Scenarios as data: one `tests/scenarios/*.toml` per fault — what the lab sets up, how
//! netcheck is run, and what it must conclude. Unknown keys are errors, so a typo cannot turn a
//! fault into a healthy lab. Every section of `[setup]` is optional and defaults to healthy.
//!
//! `[setup.emulator]` (its `--fault` strings) puts `netcheck emulate` on 198.18.2.10:443 of the
//! Snowflake side instead of nginx; DNS gives the ingest host the same address, `--ca-file` gets
//! the emulator's CA and `SNOWFLAKE_HOME` its state directory, so `--connection emulator` finds
//! the user, key and pipe. Client, firewall, relay and proxy sections combine with it unchanged
//! (behind squid, Snowflake sees the edge router's address, 198.18.2.1, as the egress IP).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Deserialize;

use super::netns::ACCOUNT_IP;

/// The account every scenario checks unless it says otherwise.
pub const ACCOUNT_HOST: &str = "myorg-myaccount.snowflakecomputing.com";
/// The ingest host the emulator's discovery answers for the account.
pub const INGEST_HOST: &str = "myorg-myaccount.us-west-2.ingest.snowflakecomputing.com";
/// The stage host the emulator's `:pipe-info` names (it answers for it on the same address).
pub const STAGE_HOST: &str = "netcheck-emulator-stage.s3.us-west-2.amazonaws.com";
/// The same account's `PrivateLink` host.
pub const PRIVATELINK_HOST: &str = "myorg-myaccount.privatelink.snowflakecomputing.com";

/// One scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The file stem: the scenario's id in reports and the docs.
    #[serde(skip)]
    pub id: String,
    /// One line: the fault, as a network engineer would name it.
    pub title: String,
    /// The docs section: DNS, TCP, TLS, Proxy or Path.
    pub group: String,
    /// What a user on such a network sees, and why netcheck's answer is the right one.
    pub about: String,
    #[serde(default)]
    pub setup: Setup,
    pub run: RunSpec,
    pub expect: Expect,
}

/// What the lab builds. Absent sections are healthy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The resolver the client uses (dnsmasq on the edge router). Absent: the account host's
    /// A record only.
    pub dns: Option<Dns>,
    #[serde(default)]
    pub client: Client,
    #[serde(default)]
    pub firewall: Firewall,
    #[serde(default)]
    pub server: Server,
    /// A userspace relay on the Snowflake side that delays every segment.
    pub relay: Option<Relay>,
    /// A forward proxy on the edge router.
    pub proxy: Option<Proxy>,
    /// The Snowflake emulator (`netcheck emulate`) instead of nginx: the whole API, with faults.
    pub emulator: Option<Emulator>,
    /// A non-HTTP service on the edge router (198.18.1.1:2222) that greets with a banner, as
    /// SSH or SMTP do: what a wrong proxy port reaches.
    pub banner: Option<String>,
}

/// The client's resolver.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    #[serde(default)]
    pub answer: DnsAnswer,
    #[serde(default)]
    pub records: Vec<Record>,
}

/// How the resolver treats names it holds no record for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsAnswer {
    /// Authoritative for snowflakecomputing.com and corp.example: unknown names are NXDOMAIN.
    #[default]
    Zone,
    /// No zone and no upstream: REFUSED.
    Refused,
    /// Forwards snowflakecomputing.com to an upstream that answers SERVFAIL.
    Servfail,
}

/// One name in the resolver.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub name: String,
    #[serde(default)]
    pub a: Vec<Ipv4Addr>,
    #[serde(default)]
    pub aaaa: Vec<Ipv6Addr>,
    pub cname: Option<String>,
    pub txt: Option<String>,
}

/// The machine netcheck runs on.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// Extra `/etc/hosts` lines.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The client's whole `/etc/resolv.conf`, one line each. Absent: `nameserver 198.18.1.1`.
    pub resolv_conf: Option<Vec<String>>,
    /// The `hosts:` sources of the client's `/etc/nsswitch.conf`. Absent: `files dns`, as
    /// Debian ships it.
    pub nsswitch_hosts: Option<String>,
    /// Remove the default routes: only the LAN is reachable.
    #[serde(default)]
    pub no_default_route: bool,
    /// nftables rules for the client's own output chain (a host firewall).
    #[serde(default)]
    pub firewall: Vec<String>,
}

/// Packet filtering on the edge router: nftables rules for its chains (table `inet lab`),
/// iptables rules (for matches nft lacks, such as `-m string`) and tc commands.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    /// Traffic passing through the router (client ⇄ Snowflake side).
    #[serde(default)]
    pub forward: Vec<String>,
    /// Traffic to the router itself (its DNS server, its proxies).
    #[serde(default)]
    pub input: Vec<String>,
    /// Traffic the router sends (its proxies reaching the Snowflake side).
    #[serde(default)]
    pub output: Vec<String>,
    /// Whole `iptables` argument lists.
    #[serde(default)]
    pub iptables: Vec<String>,
    /// Whole `tc` argument lists.
    #[serde(default)]
    pub tc: Vec<String>,
}

impl Firewall {
    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
            && self.input.is_empty()
            && self.output.is_empty()
            && self.iptables.is_empty()
            && self.tc.is_empty()
    }
}

/// The HTTPS server (nginx) standing in for the account host on port 443.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    #[serde(default)]
    pub tls: TlsPolicy,
    #[serde(default)]
    pub cert: CertKind,
    /// Whether anything listens on 443 at all.
    #[serde(default = "yes")]
    pub listen: bool,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            tls: TlsPolicy::default(),
            cert: CertKind::default(),
            listen: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// The protocol versions nginx accepts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsPolicy {
    #[default]
    Tls12And13,
    Tls12Only,
    Tls13Only,
    /// TLS 1.0 and 1.1 only (OpenSSL at security level 0).
    OldOnly,
    /// TLS 1.2 with only RSA-key-exchange CBC suites, which rustls does not offer.
    LegacyCiphers,
}

/// The certificate nginx presents.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertKind {
    /// Under the lab's intermediate, for the account and `PrivateLink` hosts, full chain.
    #[default]
    Good,
    Expired,
    NotYetValid,
    /// Valid, but only for seven more days.
    Expiring,
    /// Trusted, but for `wrong.example.com`.
    WrongHost,
    /// From a root nobody trusts.
    PrivateCa,
    /// The leaf alone, without its intermediate; its AIA says where the intermediate lives.
    MissingIntermediate,
    /// The leaf alone, without its intermediate, and no AIA extension.
    LeafOnly,
    /// Re-signed by a root named like an inspection product (`Zscaler Root CA`).
    InspectionCa,
}

/// The emulator on the Snowflake side, serving the account and ingest hosts on 198.18.2.10:443.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emulator {
    /// `--fault` values (`netcheck emulate --list-faults`).
    #[serde(default)]
    pub faults: Vec<String>,
}

/// The delay relay: listens on 198.18.2.20:443, forwards to the account host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    /// Added to every segment in each direction.
    pub delay_ms: u64,
}

/// A forward proxy on the edge router.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    pub kind: ProxyKind,
    /// CONNECT only to these destinations (squid `dstdomain`); empty: anywhere.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Refuse CONNECT to these destinations.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Require Basic authentication.
    pub auth: Option<Auth>,
    /// squid: demand these schemes instead (`negotiate`, `ntlm`), as a domain-joined proxy
    /// does; it offers them in its 407 and accepts no Basic credentials.
    #[serde(default)]
    pub auth_schemes: Vec<String>,
    /// Close a tunnel that carried nothing for this many seconds (tinyproxy `Timeout`).
    pub idle_timeout_secs: Option<u64>,
    /// Put stunnel in front (TLS on 198.18.1.1:3129, for 198.18.1.1): an `https://` proxy.
    pub tls_front: Option<TlsFront>,
}

/// Whose certificate the TLS front presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsFront {
    /// From the lab's root (netcheck gets it with `--proxy-cacert`, or `--ca-file` without the
    /// emulator).
    Lab,
    /// From a private root netcheck is never given.
    PrivateCa,
}

/// Which proxy software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyKind {
    /// squid on 198.18.1.1:3128.
    Squid,
    /// tinyproxy on 198.18.1.1:8888.
    Tinyproxy,
    /// mitmproxy (TLS-intercepting) on 198.18.1.1:8080.
    Mitmproxy,
    /// Dante (SOCKS4/5; it ignores the name `socks4a` sends) on 198.18.1.1:1080.
    Dante,
    /// OpenSSH's dynamic forwarding (`ssh -D`: SOCKS4, 4a and 5) on 198.18.1.1:1081, through
    /// an sshd of the lab's own on the edge router: the packaged server that speaks `socks4a`.
    SshDynamic,
    /// A small proxy of the lab's own on 198.18.1.1:3130 that answers CONNECT with 200, then
    /// answers the `ClientHello` with an HTML block page and closes, as filtering appliances do.
    BlockPage,
}

impl ProxyKind {
    /// Where the proxy listens.
    pub fn port(self) -> u16 {
        match self {
            Self::Squid => 3128,
            Self::Tinyproxy => 8888,
            Self::Mitmproxy => 8080,
            Self::Dante => 1080,
            Self::SshDynamic => 1081,
            Self::BlockPage => 3130,
        }
    }
}

/// Where stunnel listens when a proxy has a TLS front.
pub const TLS_FRONT_PORT: u16 = 3129;

/// Proxy credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub user: String,
    pub password: String,
}

/// How netcheck is run (the lab adds `--format json`, and `--ca-file` for the trust chosen).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub trust: Trust,
    /// The JSON output of `SELECT SYSTEM$ALLOWLIST()`: written to a file and given with
    /// `--allowlist`.
    pub allowlist: Option<String>,
    /// Give netcheck a freshly generated key (`--private-key-file`) that Snowflake does not know.
    #[serde(default)]
    pub foreign_key: bool,
    /// Give netcheck the lab's root as `--proxy-cacert` (for a proxy with a TLS front).
    #[serde(default)]
    pub proxy_cacert: bool,
}

impl RunSpec {
    /// The `--deadline` the run is held to (netcheck's default when absent).
    pub fn deadline_secs(&self) -> f64 {
        self.args
            .iter()
            .position(|a| a == "--deadline")
            .and_then(|i| self.args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(60.0)
    }
}

/// Which roots netcheck is given with `--ca-file`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// The root of the Snowflake side (the lab's, or the emulator's), as a private deployment
    /// would configure it.
    #[default]
    Lab,
    /// The Snowflake side's root and mitmproxy's CA (inspection that the client was told to
    /// trust).
    LabAndMitmproxy,
}

/// What netcheck must conclude.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub exit: i32,
    /// Every check that warns, fails or is skipped. Any check not listed must pass.
    #[serde(default)]
    pub checks: Vec<CheckExpect>,
    /// Facts in the evidence that prove the setup took effect (the delay was felt, the tunnel
    /// was used, both addresses connected).
    #[serde(default)]
    pub evidence: Vec<EvidenceExpect>,
}

/// One fact about a check's report entry, addressed by a JSON pointer into it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceExpect {
    pub check: String,
    /// e.g. `/evidence/attempts/1/ok`.
    pub pointer: String,
    /// The value there, exactly.
    pub equals: Option<toml::Value>,
    /// A string there contains this.
    pub contains: Option<String>,
    /// A number there is at least this.
    pub at_least: Option<f64>,
    /// A number there is at most this (e.g. a duration that proves nothing was waited for).
    pub at_most: Option<f64>,
}

impl EvidenceExpect {
    /// What is wrong with the report, if anything.
    pub fn mismatch(&self, report: &serde_json::Value) -> Option<String> {
        let entry = report["checks"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == self.check.as_str());
        let Some(got) = entry.and_then(|c| c.pointer(&self.pointer)) else {
            return Some(format!("{} has nothing at {}", self.check, self.pointer));
        };
        let want = |what: String| {
            Some(format!(
                "{}{}: {got}, expected {what}",
                self.check, self.pointer
            ))
        };
        if let Some(v) = &self.equals {
            let v = serde_json::to_value(v).expect("TOML values are JSON values");
            if *got != v {
                return want(v.to_string());
            }
        }
        if let Some(needle) = &self.contains {
            if !got.as_str().is_some_and(|s| s.contains(needle.as_str())) {
                return want(format!("a string containing {needle:?}"));
            }
        }
        if let Some(min) = self.at_least {
            if !got.as_f64().is_some_and(|n| n >= min) {
                return want(format!("at least {min}"));
            }
        }
        if let Some(max) = self.at_most {
            if !got.as_f64().is_some_and(|n| n <= max) {
                return want(format!("at most {max}"));
            }
        }
        None
    }
}

/// One check's expected outcome.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckExpect {
    pub id: String,
    /// `warn`, `fail` or `skip` (`pass` is allowed for emphasis).
    pub verdict: String,
    /// The catalog row a warning or failure cites.
    pub row: Option<String>,
    /// Text the skip reason contains.
    pub reason: Option<String>,
}

/// Loads every `*.toml` in `dir`, sorted by file name.
pub fn load_all(dir: &Path) -> Vec<Scenario> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

fn load(path: &Path) -> Scenario {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut s: Scenario =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    s.id = path
        .file_stem()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    s
}

/// The resolver's records when a scenario sets none: A records for the account, ingest and
/// stage hosts.
pub fn default_records() -> Vec<Record> {
    [ACCOUNT_HOST, INGEST_HOST, STAGE_HOST]
        .map(|name| Record {
            name: name.into(),
            a: vec![ACCOUNT_IP.parse().expect("constant")],
            aaaa: vec![],
            cname: None,
            txt: None,
        })
        .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use test_case::test_case;

    use super::EvidenceExpect;

    fn report() -> serde_json::Value {
        json!({ "checks": [{ "id": "tls.account", "duration_ms": 420.5, "evidence": { "via_proxy": true, "issuer": "CN=mitmproxy" } }] })
    }

    #[test_case("equals = true", "/evidence/via_proxy", true; "equal")]
    #[test_case("equals = false", "/evidence/via_proxy", false; "not equal")]
    #[test_case("contains = \"mitm\"", "/evidence/issuer", true; "contains")]
    #[test_case("contains = \"Zscaler\"", "/evidence/issuer", false; "does not contain")]
    #[test_case("at_least = 400.0", "/duration_ms", true; "at least")]
    #[test_case("at_least = 500.0", "/duration_ms", false; "below")]
    #[test_case("at_most = 500.0", "/duration_ms", true; "at most")]
    #[test_case("at_most = 400.0", "/duration_ms", false; "above")]
    #[test_case("equals = 1", "/evidence/missing", false; "nothing there")]
    fn judges_evidence(rule: &str, pointer: &str, holds: bool) {
        let text = format!("check = \"tls.account\"\npointer = \"{pointer}\"\n{rule}\n");
        let expect: EvidenceExpect = toml::from_str(&text).unwrap();
        assert_eq!(
            expect.mismatch(&report()).is_none(),
            holds,
            "{:?}",
            expect.mismatch(&report())
        );
    }
}
