//! Name resolution: `--resolve` overrides first (curl's semantics), then `--dns-server` when
//! given, otherwise the system configuration (`/etc/resolv.conf` and `/etc/hosts`) via hickory;
//! an answer says which of these it came from.
//! A failure is classified (NXDOMAIN, SERVFAIL, no answer, timeout) because each has its own cause.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::system_conf::read_system_conf;
use hickory_resolver::{Hosts, TokioResolver};
use serde::Serialize;

use crate::error::Error;

/// One `--resolve HOST:PORT:ADDR[,ADDR…]` entry. `*` as the host matches every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    pub host: String,
    pub port: u16,
    pub addrs: Vec<IpAddr>,
}

impl ResolveOverride {
    fn matches(&self, host: &str, port: u16) -> bool {
        self.port == port && (self.host == "*" || self.host.eq_ignore_ascii_case(host))
    }
}

/// Parses `--resolve` values. Each value may hold several entries separated by commas or
/// whitespace (so `NETCHECK_RESOLVE` can carry a list); as in curl, an entry may itself list
/// several addresses after its port (`host:443:10.0.0.1,10.0.0.2`), and IPv6 addresses are
/// written in brackets.
pub fn parse_overrides<S: AsRef<str>>(values: &[S]) -> Result<Vec<ResolveOverride>, Error> {
    let mut out: Vec<ResolveOverride> = Vec::new();
    for token in values
        .iter()
        .flat_map(|v| v.as_ref().split([',', ' ', '\n', '\t']))
        .filter(|t| !t.is_empty())
    {
        let bad = |why: &str| {
            Error::Usage(format!(
                "invalid --resolve `{token}`: {why} (expected HOST:PORT:ADDR)"
            ))
        };
        if token.starts_with('[') || !token.contains(':') {
            // A further address of the previous entry.
            let prev = out
                .last_mut()
                .ok_or_else(|| bad("an address with no HOST:PORT before it"))?;
            prev.addrs
                .push(parse_addr(token).ok_or_else(|| bad("not an IP address"))?);
            continue;
        }
        let mut parts = token.splitn(3, ':');
        let (host, port, addr) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next(),
        );
        let addr = addr.ok_or_else(|| bad("missing address"))?;
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
        let addr = parse_addr(addr).ok_or_else(|| bad("not an IP address"))?;
        out.push(ResolveOverride {
            host: host.to_ascii_lowercase(),
            port,
            addrs: vec![addr],
        });
    }
    Ok(out)
}

fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    IpAddr::from_str(s).ok()
}

/// Where a name that no `--resolve` entry pins is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The system configuration: `/etc/resolv.conf` and `/etc/hosts`.
    System,
    /// `--dns-server`: that server only, no `/etc/hosts`.
    Server(SocketAddr),
    /// Nowhere: only pinned hosts and loopback addresses resolve, and no query is ever sent.
    /// `netcheck demo` uses it, so no fault it shows can send it beyond loopback.
    PinnedOnly,
}

/// Why a name is not looked up under [`Upstream::PinnedOnly`].
const PINNED_ONLY: &str =
    "not one of the emulator's hosts: the demo resolves only those and sends no DNS query";
/// Why an address literal is refused under [`Upstream::PinnedOnly`].
const LOOPBACK_ONLY: &str = "not a loopback address: the demo connects only to loopback";

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerSource {
    /// A `--resolve` entry: no DNS query was sent.
    Override,
    /// The host is an IP address literal.
    Literal,
    /// A line of `/etc/hosts` (system configuration only).
    HostsFile,
    /// A DNS answer.
    Dns,
}

/// A successful resolution.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub addrs: Vec<IpAddr>,
    /// The CNAME chain, in order, from the answer section.
    pub cnames: Vec<String>,
    pub source: AnswerSource,
    #[serde(serialize_with = "crate::net::serialize_ms")]
    pub elapsed: Duration,
}

/// Why a name did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsFailureKind {
    NxDomain,
    /// SERVFAIL or REFUSED (or another error response code).
    ServFail,
    /// The name exists but has no A or AAAA record.
    NoAnswer,
    Timeout,
    /// This machine ran out of file descriptors for the query's socket: nothing was asked.
    LocalLimit,
    /// The resolver could not be used at all (bad system configuration, socket error).
    Other,
}

/// A failed resolution, with the resolver's own words.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("resolve {host}: {message}")]
pub struct DnsFailure {
    pub host: String,
    pub kind: DnsFailureKind,
    pub message: String,
    #[serde(serialize_with = "crate::net::serialize_ms")]
    pub elapsed: Duration,
}

/// Which servers answer: the description goes into the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct ResolverInfo {
    /// `system`, `dns-server` or `pinned-only`.
    pub mode: &'static str,
    pub nameservers: Vec<String>,
}

/// The resolver every check and the API client use.
pub struct Resolver {
    overrides: Vec<ResolveOverride>,
    inner: Result<TokioResolver, String>,
    /// `/etc/hosts` as hickory reads it, to tell its answers from the DNS's.
    hosts: Option<Hosts>,
    info: ResolverInfo,
    /// Only loopback address literals are answered ([`Upstream::PinnedOnly`]).
    loopback_only: bool,
}

impl Resolver {
    /// Builds the resolver. A system configuration that cannot be read is not an error here: a
    /// run that only uses `--resolve` or IP literals never needs it, and a lookup reports it.
    #[must_use]
    pub fn new(overrides: Vec<ResolveOverride>, upstream: Upstream, timeout: Duration) -> Self {
        let (config, mut opts, mode) = match upstream {
            Upstream::PinnedOnly => {
                let mut opts = ResolverOpts::default();
                opts.use_hosts_file = ResolveHosts::Never;
                (Err(PINNED_ONLY.to_owned()), opts, "pinned-only")
            }
            Upstream::Server(server) => {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for c in &mut ns.connections {
                    c.port = server.port();
                }
                // Only that server: no /etc/hosts either, so the answer is the server's.
                let mut opts = ResolverOpts::default();
                opts.use_hosts_file = ResolveHosts::Never;
                (
                    Ok(ResolverConfig::from_parts(None, vec![], vec![ns])),
                    opts,
                    "dns-server",
                )
            }
            Upstream::System => match read_system_conf() {
                Ok((config, opts)) => (Ok(config), opts, "system"),
                Err(e) => (
                    Err(format!("system resolver configuration: {e}")),
                    ResolverOpts::default(),
                    "system",
                ),
            },
        };
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // A diagnostic wants what the network answers now, not what a cache remembers.
        opts.cache_size = 0;
        let nameservers = config
            .as_ref()
            .map(|c| c.name_servers().iter().map(|n| n.ip.to_string()).collect())
            .unwrap_or_default();
        let hosts = (opts.use_hosts_file != ResolveHosts::Never)
            .then(Hosts::from_system)
            .and_then(Result::ok);
        let inner = config.and_then(|config| {
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .map_err(|e| e.to_string())
        });
        let info = ResolverInfo { mode, nameservers };
        Self {
            overrides,
            inner,
            hosts,
            info,
            loopback_only: upstream == Upstream::PinnedOnly,
        }
    }

    /// Which resolver answers lookups.
    #[must_use]
    pub fn info(&self) -> &ResolverInfo {
        &self.info
    }

    /// The `--resolve` addresses for `host:port`, if any.
    #[must_use]
    pub fn override_for(&self, host: &str, port: u16) -> Option<&[IpAddr]> {
        self.overrides
            .iter()
            .find(|o| o.matches(host, port))
            .map(|o| o.addrs.as_slice())
    }

    /// The `--resolve` addresses for `host` on any port (for clients that ask by name only).
    #[must_use]
    pub fn override_for_host(&self, host: &str) -> Option<&[IpAddr]> {
        self.overrides
            .iter()
            .find(|o| o.host == "*" || o.host.eq_ignore_ascii_case(host))
            .map(|o| o.addrs.as_slice())
    }

    /// Resolves `host` for a connection to `port`, bounded by `timeout`.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Resolution, DnsFailure> {
        self.resolve_with(host, port, timeout, Families::Both).await
    }

    /// Resolves `host` for a reachability probe: A, and AAAA only when there is no A record —
    /// half the queries of [`Resolver::resolve`], for checks that try hundreds of hosts.
    pub async fn resolve_reachable(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Resolution, DnsFailure> {
        self.resolve_with(host, port, timeout, Families::FirstFound)
            .await
    }

    async fn resolve_with(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
        families: Families,
    ) -> Result<Resolution, DnsFailure> {
        let start = Instant::now();
        let done = |addrs: Vec<IpAddr>, cnames, source| Resolution {
            addrs,
            cnames,
            source,
            elapsed: start.elapsed(),
        };
        if let Some(addrs) = self.override_for(host, port) {
            return Ok(done(addrs.to_vec(), vec![], AnswerSource::Override));
        }
        let fail = |kind, message: String| DnsFailure {
            host: host.to_owned(),
            kind,
            message,
            elapsed: start.elapsed(),
        };
        if let Some(ip) = parse_addr(host) {
            if self.loopback_only && !ip.is_loopback() {
                return Err(fail(DnsFailureKind::Other, LOOPBACK_ONLY.to_owned()));
            }
            return Ok(done(vec![ip], vec![], AnswerSource::Literal));
        }
        let resolver = self
            .inner
            .as_ref()
            .map_err(|e| fail(DnsFailureKind::Other, e.clone()))?;
        // A trailing dot keeps the search list out of it: Snowflake hosts are fully qualified.
        let fqdn = if host.ends_with('.') {
            host.to_owned()
        } else {
            format!("{host}.")
        };
        let lookup = async {
            match families {
                Families::Both => resolver
                    .lookup_ip(fqdn.as_str())
                    .await
                    .map(|l| l.as_lookup().clone()),
                Families::FirstFound => match resolver.lookup(fqdn.as_str(), RecordType::A).await {
                    Err(e) if e.is_no_records_found() && !e.is_nx_domain() => {
                        resolver.lookup(fqdn.as_str(), RecordType::AAAA).await
                    }
                    other => other,
                },
            }
        };
        match tokio::time::timeout(timeout, lookup).await {
            Err(_) => Err(fail(
                DnsFailureKind::Timeout,
                format!("no answer within {timeout:?}"),
            )),
            Ok(Err(e)) => {
                let kind = classify(&e);
                Err(fail(kind, describe(kind, &e)))
            }
            Ok(Ok(lookup)) => {
                let mut cnames = Vec::new();
                let mut addrs: Vec<IpAddr> = Vec::new();
                for record in lookup.answers() {
                    if let RData::CNAME(c) = &record.data {
                        cnames.push(c.0.to_string().trim_end_matches('.').to_owned());
                    }
                    addrs.extend(address(&record.data));
                }
                if addrs.is_empty() {
                    return Err(fail(DnsFailureKind::NoAnswer, "no A or AAAA record".into()));
                }
                let source = if self.in_hosts_file(&fqdn, &addrs) {
                    AnswerSource::HostsFile
                } else {
                    AnswerSource::Dns
                };
                Ok(done(addrs, cnames, source))
            }
        }
    }

    /// Whether every address came from `/etc/hosts` (which hickory reads before asking the DNS).
    fn in_hosts_file(&self, fqdn: &str, addrs: &[IpAddr]) -> bool {
        let (Some(hosts), Ok(name)) = (&self.hosts, Name::from_ascii(fqdn)) else {
            return false;
        };
        let listed: Vec<IpAddr> = [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|t| hosts.lookup_static_host(&Query::query(name.clone(), t)))
            .flat_map(|l| l.answers().to_vec())
            .filter_map(|r| address(&r.data))
            .collect();
        !listed.is_empty() && addrs.iter().all(|a| listed.contains(a))
    }
}

/// The address an A or AAAA record holds.
fn address(data: &RData) -> Option<IpAddr> {
    match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// Which address families a lookup asks for.
#[derive(Clone, Copy)]
enum Families {
    /// A and AAAA at once (what the DNS checks report).
    Both,
    /// A, then AAAA only when the name has no A record.
    FirstFound,
}

/// A short, plain description: the resolver's debug-heavy text is only kept where no better
/// words exist.
fn describe(kind: DnsFailureKind, e: &NetError) -> String {
    match (kind, e) {
        (DnsFailureKind::NxDomain, _) => "NXDOMAIN: the name does not exist".into(),
        (DnsFailureKind::NoAnswer, _) => "NOERROR but no A or AAAA record".into(),
        (_, NetError::Dns(DnsError::ResponseCode(code))) => {
            format!("the server answered {}", code.to_str().to_uppercase())
        }
        (DnsFailureKind::Timeout, _) => "no answer from the DNS server".into(),
        _ => e.to_string(),
    }
}

/// Maps hickory's error to the kind of DNS failure.
fn classify(e: &NetError) -> DnsFailureKind {
    match e {
        _ if e.is_nx_domain() => DnsFailureKind::NxDomain,
        NetError::Dns(DnsError::NoRecordsFound(_)) => DnsFailureKind::NoAnswer,
        NetError::Dns(DnsError::ResponseCode(code)) if *code != ResponseCode::NoError => {
            DnsFailureKind::ServFail
        }
        NetError::Timeout => DnsFailureKind::Timeout,
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => DnsFailureKind::Timeout,
        NetError::Io(io) if crate::limits::is_descriptor_exhaustion(io) => {
            DnsFailureKind::LocalLimit
        }
        _ => DnsFailureKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case(&["a.example:443:127.0.0.1"], &[("a.example", 443, &["127.0.0.1"])]; "one")]
    #[test_case(&["a.example:443:127.0.0.1,127.0.0.2"], &[("a.example", 443, &["127.0.0.1", "127.0.0.2"])]; "curl multi address")]
    #[test_case(&["a:443:127.0.0.1,b:8443:[::1]"], &[("a", 443, &["127.0.0.1"]), ("b", 8443, &["::1"])]; "env list")]
    #[test_case(&["A.Example:443:[::1],[::2]"], &[("a.example", 443, &["::1", "::2"])]; "ipv6 brackets")]
    #[test_case(&["*:443:127.0.0.1"], &[("*", 443, &["127.0.0.1"])]; "wildcard")]
    fn parses_overrides(input: &[&str], want: &[(&str, u16, &[&str])]) {
        let got = parse_overrides(input).unwrap();
        let got: Vec<(String, u16, Vec<String>)> = got
            .into_iter()
            .map(|o| {
                (
                    o.host,
                    o.port,
                    o.addrs.iter().map(ToString::to_string).collect(),
                )
            })
            .collect();
        let want: Vec<(String, u16, Vec<String>)> = want
            .iter()
            .map(|(h, p, a)| {
                (
                    (*h).to_owned(),
                    *p,
                    a.iter().map(|s| (*s).to_owned()).collect(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test_case("a:443"; "missing address")]
    #[test_case("a:x:127.0.0.1"; "bad port")]
    #[test_case("a:443:not-an-ip"; "bad address")]
    #[test_case("127.0.0.1"; "address without entry")]
    #[test_case(":443:127.0.0.1"; "empty host")]
    fn rejects_overrides(input: &str) {
        let err = parse_overrides(&[input]).unwrap_err().to_string();
        assert!(err.contains("--resolve"), "{err}");
    }

    #[tokio::test]
    async fn override_wins_and_sends_no_query() {
        // A resolver pointed at a closed loopback port: any query would fail, so success proves
        // the override answered.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let overrides = parse_overrides(&["x.snowflakecomputing.com:443:127.0.0.9"]).unwrap();
        let r = Resolver::new(
            overrides,
            Upstream::Server(closed),
            Duration::from_millis(300),
        );
        let got = r
            .resolve("x.snowflakecomputing.com", 443, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got.addrs, vec!["127.0.0.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(got.source, AnswerSource::Override);
        // Same host, another port: the override does not apply (curl semantics), so DNS is asked.
        let err = r
            .resolve("x.snowflakecomputing.com", 8443, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_ne!(err.kind, DnsFailureKind::NxDomain);
    }

    #[tokio::test]
    async fn pinned_only_answers_pins_and_loopback_and_asks_nobody() {
        let overrides = parse_overrides(&["account.example:443:127.0.0.1"]).unwrap();
        let r = Resolver::new(overrides, Upstream::PinnedOnly, Duration::from_millis(300));
        let t = Duration::from_secs(1);
        assert_eq!(r.info().mode, "pinned-only");
        assert!(r.resolve("account.example", 443, t).await.is_ok());
        assert!(r.resolve("::1", 443, t).await.is_ok());
        for (host, why) in [
            ("evil.example.com", PINNED_ONLY),
            ("account.example.", PINNED_ONLY),
            ("198.51.100.7", LOOPBACK_ONLY),
            ("[2001:db8::1]", LOOPBACK_ONLY),
        ] {
            let err = r.resolve(host, 443, t).await.unwrap_err();
            assert_eq!(
                (err.kind, err.message.as_str()),
                (DnsFailureKind::Other, why)
            );
        }
    }

    #[tokio::test]
    async fn ip_literal_needs_no_dns() {
        let r = Resolver::new(
            vec![],
            Upstream::Server("127.0.0.1:9".parse().unwrap()),
            Duration::from_millis(100),
        );
        let got = r.resolve("::1", 443, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got.source, AnswerSource::Literal);
    }
}
