//! Name resolution: `--resolve` overrides first (curl's semantics), then `--dns-server` when
//! given, otherwise the system's own way: nsswitch.conf's `hosts:` sources in order (`files` is
//! `/etc/hosts`, whose answer stands alone as getaddrinfo returns it; `dns` asks resolv.conf's
//! servers as glibc does, search list and options included — see [`stub`]). An answer says
//! which source gave it, and which servers were asked and what each said.
//! A failure is classified (NXDOMAIN, no answer, SERVFAIL, REFUSED, unreachable, timeout)
//! because each has its own cause.

mod stub;
mod system;

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use serde::Serialize;

use stub::{Failed, Found};
pub use stub::{ServerAttempt, ServerOutcome};
pub use system::Status;
use system::{DnsConf, SystemConf};

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
    /// A line of `/etc/hosts` (nsswitch's `files`).
    HostsFile,
    /// A DNS answer.
    Dns,
}

/// What one nsswitch source said, in the order they were consulted.
#[derive(Debug, Clone, Serialize)]
pub struct SourceResult {
    /// The module, as written on the `hosts:` line (`files`, `dns`, `resolve`, …).
    pub source: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A successful resolution.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub addrs: Vec<IpAddr>,
    /// The CNAME chain, in order, from the answer section.
    pub cnames: Vec<String>,
    pub source: AnswerSource,
    /// The name that answered, when it is not the host itself (a search domain was appended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The nsswitch sources consulted, in order (empty for `--resolve` and literals).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceResult>,
    /// Every DNS server asked, in order, with its answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerAttempt>,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    pub elapsed: Duration,
}

/// Why a name did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsFailureKind {
    NxDomain,
    /// SERVFAIL (or another error response code but REFUSED).
    ServFail,
    /// The server refuses to answer this client.
    Refused,
    /// The name exists but has no A or AAAA record.
    NoAnswer,
    Timeout,
    /// No server could be reached: ICMP unreachable (nothing listens on port 53) or no route.
    Unreachable,
    /// This machine ran out of file descriptors for the query's socket: nothing was asked.
    LocalLimit,
    /// This machine's name-service configuration could not be used (an unreadable resolv.conf,
    /// or no usable source on nsswitch.conf's hosts line): nothing was asked.
    LocalConfig,
    /// A name this resolver will not look up (the demo's pinned-only mode), or another failure.
    Other,
}

/// A failed resolution, with what each source and server said.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("resolve {host}: {message}")]
pub struct DnsFailure {
    pub host: String,
    pub kind: DnsFailureKind,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerAttempt>,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    pub elapsed: Duration,
}

/// Which configuration answers: the description goes into the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct ResolverInfo {
    /// `system`, `dns-server` or `pinned-only`.
    pub mode: &'static str,
    pub nameservers: Vec<String>,
    /// nsswitch.conf's `hosts:` sources (system mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts_order: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// resolv.conf's options as netcheck applies them (system mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<DnsOptions>,
    /// Configuration files that could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// resolv.conf's `options` that shape a lookup.
#[derive(Debug, Clone, Serialize)]
pub struct DnsOptions {
    pub ndots: usize,
    /// The wait for the first server (glibc's `retrans`).
    #[serde(serialize_with = "crate::units::serialize_ms")]
    pub timeout: Duration,
    pub attempts: usize,
    pub rotate: bool,
}

/// Where lookups go.
enum Mode {
    /// Only `--resolve` entries and loopback literals ([`Upstream::PinnedOnly`]).
    PinnedOnly,
    /// `--dns-server`: that server only, no hosts file.
    DnsServer(DnsConf),
    /// The sources of nsswitch.conf's `hosts:` line, in order.
    System(SystemConf),
}

/// The resolver every check and the API client use.
pub struct Resolver {
    overrides: Vec<ResolveOverride>,
    /// Which of `overrides` answered a lookup: an entry the run never used is worth a warning
    /// (a typo in the host or the port silently changes nothing).
    used: Vec<AtomicBool>,
    mode: Mode,
    info: ResolverInfo,
    /// Only loopback address literals are answered ([`Upstream::PinnedOnly`]).
    loopback_only: bool,
}

impl Resolver {
    /// Builds the resolver. A system configuration that cannot be read is not an error here: a
    /// run that only uses `--resolve` or IP literals never needs it, and a lookup reports it.
    /// With `--dns-server`, `timeout` is the wait for that server.
    #[must_use]
    pub fn new(overrides: Vec<ResolveOverride>, upstream: Upstream, timeout: Duration) -> Self {
        let mode = match upstream {
            Upstream::PinnedOnly => Mode::PinnedOnly,
            Upstream::Server(server) => Mode::DnsServer(DnsConf::single(server, timeout)),
            Upstream::System => Mode::System(SystemConf::read()),
        };
        Self::with_mode(overrides, mode)
    }

    fn with_mode(overrides: Vec<ResolveOverride>, mode: Mode) -> Self {
        let info = match &mode {
            Mode::PinnedOnly => ResolverInfo {
                mode: "pinned-only",
                nameservers: vec![],
                hosts_order: None,
                search: vec![],
                options: None,
                problems: vec![],
            },
            Mode::DnsServer(conf) => ResolverInfo {
                mode: "dns-server",
                nameservers: conf.servers.iter().map(ToString::to_string).collect(),
                hosts_order: None,
                search: vec![],
                options: None,
                problems: vec![],
            },
            Mode::System(sys) => ResolverInfo {
                mode: "system",
                nameservers: sys
                    .dns
                    .iter()
                    .flat_map(|d| d.servers.iter().map(|s| s.ip().to_string()))
                    .collect(),
                hosts_order: Some(sys.hosts_line.clone()),
                search: sys.dns.iter().flat_map(|d| d.search.clone()).collect(),
                options: sys.dns.as_ref().map(|d| DnsOptions {
                    ndots: d.ndots,
                    timeout: d.timeout,
                    attempts: d.attempts,
                    rotate: d.rotate,
                }),
                problems: sys
                    .dns_error
                    .iter()
                    .cloned()
                    .chain(sys.hosts.as_ref().err().cloned())
                    .chain(sys.nsswitch_error.iter().cloned())
                    .collect(),
            },
        };
        Self {
            used: overrides.iter().map(|_| AtomicBool::default()).collect(),
            overrides,
            loopback_only: matches!(mode, Mode::PinnedOnly),
            mode,
            info,
        }
    }

    /// A name this resolver will not look up (the demo's pinned-only mode): nothing was asked.
    fn refused(host: &str, why: &str, start: Instant) -> DnsFailure {
        DnsFailure {
            host: host.to_owned(),
            kind: DnsFailureKind::Other,
            message: why.to_owned(),
            sources: vec![],
            servers: vec![],
            elapsed: start.elapsed(),
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
        self.use_override(|o| o.matches(host, port))
    }

    /// The `--resolve` addresses for `host` on any port (for clients that ask by name only).
    #[must_use]
    pub fn override_for_host(&self, host: &str) -> Option<&[IpAddr]> {
        self.use_override(|o| o.host == "*" || o.host.eq_ignore_ascii_case(host))
    }

    /// The first entry that `applies`, marked as used.
    fn use_override(&self, applies: impl Fn(&ResolveOverride) -> bool) -> Option<&[IpAddr]> {
        let i = self.overrides.iter().position(applies)?;
        self.used[i].store(true, Ordering::Relaxed);
        Some(self.overrides[i].addrs.as_slice())
    }

    /// The `--resolve` entries no lookup used so far, as `HOST:PORT`.
    #[must_use]
    pub fn unused_overrides(&self) -> Vec<String> {
        self.overrides
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !used.load(Ordering::Relaxed))
            .map(|(o, _)| format!("{}:{}", o.host, o.port))
            .collect()
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
        let fixed = |addrs: Vec<IpAddr>, source| Resolution {
            addrs,
            cnames: vec![],
            source,
            name: None,
            sources: vec![],
            servers: vec![],
            elapsed: start.elapsed(),
        };
        if let Some(addrs) = self.override_for(host, port) {
            return Ok(fixed(addrs.to_vec(), AnswerSource::Override));
        }
        if let Some(ip) = parse_addr(host) {
            if self.loopback_only && !ip.is_loopback() {
                return Err(Self::refused(host, LOOPBACK_ONLY, start));
            }
            return Ok(fixed(vec![ip], AnswerSource::Literal));
        }
        let deadline = start + timeout;
        let mut lookup = Lookup::default();
        let answer = match &self.mode {
            Mode::PinnedOnly => return Err(Self::refused(host, PINNED_ONLY, start)),
            Mode::DnsServer(conf) => lookup.dns(conf, host, families, deadline).await,
            Mode::System(sys) => lookup.system(sys, host, families, deadline).await,
        };
        let Lookup {
            sources, servers, ..
        } = lookup;
        match answer {
            Ok((found, source)) => Ok(Resolution {
                addrs: found.addrs,
                cnames: found.cnames,
                source,
                name: (!found.name.eq_ignore_ascii_case(host.trim_end_matches('.')))
                    .then_some(found.name),
                sources,
                servers,
                elapsed: start.elapsed(),
            }),
            Err((kind, message)) => Err(DnsFailure {
                host: host.to_owned(),
                kind,
                message,
                sources,
                servers,
                elapsed: start.elapsed(),
            }),
        }
    }
}

/// The record of one lookup: the sources consulted and the servers asked.
#[derive(Default)]
struct Lookup {
    sources: Vec<SourceResult>,
    servers: Vec<ServerAttempt>,
    /// How DNS failed, when it was consulted and failed.
    dns_failure: Option<(DnsFailureKind, String)>,
}

type Answer = Result<(Found, AnswerSource), (DnsFailureKind, String)>;

impl Lookup {
    /// Consults nsswitch's sources in order, as glibc does: each says success, not found,
    /// unavailable or try again, and the `[STATUS=return]` criteria decide whether to go on.
    async fn system(
        &mut self,
        sys: &SystemConf,
        host: &str,
        families: Families,
        deadline: Instant,
    ) -> Answer {
        for source in &sys.sources {
            let (status, detail, found) = match source.name.as_str() {
                "files" => match &sys.hosts {
                    Err(e) => (Status::Unavail, Some(e.clone()), None),
                    Ok(hosts) => match hosts_file_lookup(hosts, host) {
                        Some(found) => (
                            Status::Success,
                            None,
                            Some((found, AnswerSource::HostsFile)),
                        ),
                        None => (Status::NotFound, None, None),
                    },
                },
                "dns" => match &sys.dns {
                    None => {
                        let why = sys.dns_error.clone().unwrap_or_default();
                        self.dns_failure = Some((DnsFailureKind::LocalConfig, why.clone()));
                        (Status::Unavail, Some(why), None)
                    }
                    Some(conf) => match self.dns(conf, host, families, deadline).await {
                        Ok(found) => (Status::Success, None, Some(found)),
                        Err((kind, message)) => {
                            let status = match kind {
                                DnsFailureKind::NxDomain | DnsFailureKind::NoAnswer => {
                                    Status::NotFound
                                }
                                // glibc's nss_dns: nobody listening, or no socket to ask
                                // with, is UNAVAIL.
                                DnsFailureKind::Unreachable
                                | DnsFailureKind::LocalLimit
                                | DnsFailureKind::Other => Status::Unavail,
                                _ => Status::TryAgain,
                            };
                            self.dns_failure = Some((kind, message.clone()));
                            (status, Some(message), None)
                        }
                    },
                },
                // Other NSS modules (myhostname, resolve, mdns, …) are not loaded: glibc treats
                // a module it cannot use as UNAVAIL, and so does netcheck. With systemd-resolved,
                // `dns` reaches it through its stub listener in resolv.conf.
                other => (
                    Status::Unavail,
                    Some(format!(
                        "netcheck does not consult the NSS module `{other}`"
                    )),
                    None,
                ),
            };
            self.sources.push(SourceResult {
                source: source.name.clone(),
                status,
                detail,
            });
            if let Some(found) = found {
                return Ok(found);
            }
            if source.stops_on(status) {
                break;
            }
        }
        Err(self.dns_failure.clone().unwrap_or_else(|| {
            // Not found is a claim some source has to make; sources that could not be used
            // (an unreadable hosts file, NSS modules netcheck does not load) make none.
            if self.sources.iter().any(|s| s.status == Status::NotFound) {
                (
                    DnsFailureKind::NxDomain,
                    format!(
                        "not found by nsswitch.conf's hosts sources ({}); DNS was not asked",
                        sys.hosts_line
                    ),
                )
            } else {
                let why: Vec<String> = self
                    .sources
                    .iter()
                    .map(|s| format!("{}: {}", s.source, s.detail.as_deref().unwrap_or("unavailable")))
                    .collect();
                (
                    DnsFailureKind::LocalConfig,
                    format!(
                        "no hosts source of nsswitch.conf ({}) could be used ({}); DNS was not asked",
                        sys.hosts_line,
                        why.join("; ")
                    ),
                )
            }
        }))
    }

    /// Asks the DNS servers of `conf`.
    async fn dns(
        &mut self,
        conf: &DnsConf,
        host: &str,
        families: Families,
        deadline: Instant,
    ) -> Answer {
        let log = &mut self.servers;
        let result = match families {
            Families::Both => {
                stub::lookup(
                    conf,
                    host,
                    &[RecordType::A, RecordType::AAAA],
                    deadline,
                    log,
                )
                .await
            }
            Families::FirstFound => {
                match stub::lookup(conf, host, &[RecordType::A], deadline, log).await {
                    Err(Failed::NoData) => {
                        stub::lookup(conf, host, &[RecordType::AAAA], deadline, log).await
                    }
                    other => other,
                }
            }
        };
        result
            .map(|found| (found, AnswerSource::Dns))
            .map_err(|failed| describe(failed, &self.servers))
    }
}

/// The addresses `/etc/hosts` lists for `host`, both families, as glibc's `files` returns them.
fn hosts_file_lookup(hosts: &system::HostsFile, host: &str) -> Option<Found> {
    let addrs = hosts.lookup(host);
    (!addrs.is_empty()).then(|| Found {
        name: host.trim_end_matches('.').to_owned(),
        addrs,
        cnames: vec![],
    })
}

/// The address an A or AAAA record holds.
fn address(data: &RData) -> Option<IpAddr> {
    match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// The kind and a plain sentence naming the servers and what they did.
fn describe(failed: Failed, servers: &[ServerAttempt]) -> (DnsFailureKind, String) {
    let named = |outcomes: &[ServerOutcome]| {
        let mut seen: Vec<String> = Vec::new();
        for a in servers.iter().filter(|a| outcomes.contains(&a.outcome)) {
            let label = server_label(a.server);
            let text = match &a.detail {
                Some(d) => format!("{label} ({d})"),
                None => label,
            };
            if !seen.contains(&text) {
                seen.push(text);
            }
        }
        seen.join(", ")
    };
    match failed {
        Failed::NxDomain => (
            DnsFailureKind::NxDomain,
            "NXDOMAIN: the name does not exist".into(),
        ),
        Failed::NoData => (
            DnsFailureKind::NoAnswer,
            "NOERROR but no A or AAAA record".into(),
        ),
        Failed::ServFail => (
            DnsFailureKind::ServFail,
            format!(
                "the DNS server failed to answer: {}",
                named(&[ServerOutcome::ServFail])
            ),
        ),
        Failed::Refused => (
            DnsFailureKind::Refused,
            format!(
                "the DNS server refused the query: {}",
                named(&[ServerOutcome::Refused])
            ),
        ),
        Failed::Timeout => (
            DnsFailureKind::Timeout,
            format!(
                "no answer from the DNS server: {}",
                named(&[
                    ServerOutcome::Timeout,
                    ServerOutcome::Error,
                    ServerOutcome::Unreachable
                ])
            ),
        ),
        Failed::Unreachable => (
            DnsFailureKind::Unreachable,
            format!(
                "the DNS server is unreachable: {}",
                named(&[ServerOutcome::Unreachable, ServerOutcome::Error])
            ),
        ),
        Failed::LocalLimit => (
            DnsFailureKind::LocalLimit,
            format!(
                "no query sent: this machine could not open a socket to {}",
                named(&[ServerOutcome::LocalLimit])
            ),
        ),
    }
}

/// A server as people write it: the address alone on port 53.
fn server_label(server: SocketAddr) -> String {
    if server.port() == 53 {
        server.ip().to_string()
    } else {
        server.to_string()
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

    /// A system resolver from nsswitch and hosts texts, asking `servers` (loopback sockets of
    /// the test) with the given per-server wait and rounds.
    fn system(
        hosts_line: &str,
        hosts: &str,
        servers: &[SocketAddr],
        wait: Duration,
        attempts: usize,
    ) -> Resolver {
        let mut sys = SystemConf::from_texts(
            Some(hosts_line),
            Ok("nameserver 127.0.0.1"),
            Ok(hosts),
            None,
        );
        let dns = sys.dns.as_mut().unwrap();
        dns.servers = servers.to_vec();
        dns.timeout = wait;
        dns.attempts = attempts;
        Resolver::with_mode(vec![], Mode::System(sys))
    }

    /// A loopback UDP port with nothing behind it: queries draw ICMP port unreachable.
    fn closed_port() -> SocketAddr {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    const PINNED: &str = "127.0.0.9 x.snowflakecomputing.com\n";

    #[tokio::test]
    async fn hosts_file_answer_stands_alone_without_waiting_for_dns() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = system(
            "hosts: files dns",
            PINNED,
            &[silent.local_addr().unwrap()],
            Duration::from_secs(3),
            2,
        );
        let got = r
            .resolve("x.snowflakecomputing.com", 443, Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(got.source, AnswerSource::HostsFile);
        assert_eq!(got.addrs, ["127.0.0.9".parse::<IpAddr>().unwrap()]);
        assert!(got.servers.is_empty(), "DNS was asked: {:?}", got.servers);
        assert!(
            got.elapsed < Duration::from_millis(500),
            "{:?}",
            got.elapsed
        );
    }

    #[tokio::test]
    async fn nsswitch_order_decides_and_unreachable_dns_is_unavail() {
        let closed = closed_port();
        let r = system(
            "hosts: dns files",
            PINNED,
            &[closed],
            Duration::from_secs(3),
            1,
        );
        let got = r
            .resolve("x.snowflakecomputing.com", 443, Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(got.source, AnswerSource::HostsFile);
        let said: Vec<(&str, Status)> = got
            .sources
            .iter()
            .map(|s| (s.source.as_str(), s.status))
            .collect();
        assert_eq!(said, [("dns", Status::Unavail), ("files", Status::Success)]);
        assert_eq!(got.servers[0].server, closed);
        assert_eq!(got.servers[0].outcome, ServerOutcome::Unreachable);
    }

    #[tokio::test]
    async fn not_found_return_stops_before_dns() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = system(
            "hosts: files [NOTFOUND=return] dns",
            "",
            &[silent.local_addr().unwrap()],
            Duration::from_secs(3),
            1,
        );
        let err = r
            .resolve("x.snowflakecomputing.com", 443, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert_eq!(err.kind, DnsFailureKind::NxDomain);
        assert!(err.servers.is_empty());
    }

    /// A system resolver from the given file texts, and its failure to resolve a name.
    async fn failing_system(
        hosts_line: &str,
        resolv: Result<&str, String>,
        hosts: Result<&str, String>,
    ) -> (Resolver, DnsFailure) {
        let sys = SystemConf::from_texts(Some(hosts_line), resolv, hosts, None);
        let r = Resolver::with_mode(vec![], Mode::System(sys));
        let err = r
            .resolve("x.snowflakecomputing.com", 443, Duration::from_secs(1))
            .await
            .unwrap_err();
        (r, err)
    }

    #[tokio::test]
    async fn sources_that_cannot_be_used_are_not_a_name_that_does_not_exist() {
        let (_, err) = failing_system(
            "hosts: files myhostname",
            Ok("nameserver 127.0.0.1"),
            Err("permission denied".into()),
        )
        .await;
        assert_eq!(err.kind, DnsFailureKind::LocalConfig, "{}", err.message);
        assert!(err.message.contains("permission denied"), "{}", err.message);
        assert!(err.message.contains("myhostname"), "{}", err.message);
    }

    #[tokio::test]
    async fn unreadable_resolv_conf_is_reported_not_guessed() {
        let (r, err) =
            failing_system("hosts: files dns", Err("permission denied".into()), Ok("")).await;
        assert_eq!(err.kind, DnsFailureKind::LocalConfig);
        assert!(err.message.contains("permission denied"), "{}", err.message);
        assert!(r.info().problems[0].contains("/etc/resolv.conf"));
    }

    #[tokio::test]
    async fn closed_resolver_port_is_unreachable_at_once_naming_it() {
        let closed = closed_port();
        let r = Resolver::new(vec![], Upstream::Server(closed), Duration::from_secs(3));
        let err = r
            .resolve("x.snowflakecomputing.com", 443, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert_eq!(err.kind, DnsFailureKind::Unreachable);
        assert!(err.message.contains(&closed.to_string()), "{}", err.message);
        assert!(err.elapsed < Duration::from_secs(1), "{:?}", err.elapsed);
    }

    #[tokio::test]
    async fn silent_servers_are_asked_in_order_for_each_attempt() {
        let silent: Vec<std::net::UdpSocket> = (0..2)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = silent.iter().map(|s| s.local_addr().unwrap()).collect();
        let r = system("hosts: dns", "", &addrs, Duration::from_millis(200), 2);
        let err = r
            .resolve("x.snowflakecomputing.com", 443, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind, DnsFailureKind::Timeout);
        let asked: Vec<SocketAddr> = err.servers.iter().map(|a| a.server).collect();
        assert_eq!(asked, [addrs[0], addrs[1], addrs[0], addrs[1]]);
        assert!(
            err.servers
                .iter()
                .all(|a| a.outcome == ServerOutcome::Timeout
                    && a.elapsed >= Duration::from_millis(190)),
            "{:?}",
            err.servers
        );
    }

    #[tokio::test]
    async fn the_step_timeout_bounds_every_server() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = system(
            "hosts: dns",
            "",
            &[silent.local_addr().unwrap()],
            Duration::from_secs(5),
            5,
        );
        let err = r
            .resolve("x.snowflakecomputing.com", 443, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(err.kind, DnsFailureKind::Timeout);
        assert!(err.elapsed < Duration::from_secs(1), "{:?}", err.elapsed);
    }
}
