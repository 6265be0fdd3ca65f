//! The system's name-service configuration, read as glibc reads it: the `hosts:` line of
//! `/etc/nsswitch.conf` (which sources, in which order, with which `[STATUS=ACTION]`s),
//! `/etc/resolv.conf` (nameservers, search list, `ndots`, `timeout`, `attempts`, `rotate`, with
//! glibc's limits) and `/etc/hosts`. Parsing is pure; only [`SystemConf::read`] touches files,
//! through [`crate::local_file`]: regular files only, opened without blocking, and a file over
//! its cap is a problem in the evidence, never silently cut short.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::local_file::{FileError, FileKind};

/// glibc's defaults and limits (`resolv/resolv.h`, `res_init.c`).
const MAX_NAMESERVERS: usize = 3;
const MAX_NDOTS: u32 = 15;
const MAX_TIMEOUT_SECS: u32 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// One source on the `hosts:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Source {
    /// The module name: `files`, `dns`, `myhostname`, `resolve`, …
    pub(super) name: String,
    /// For each [`Status`], whether the lookup stops there.
    returns: [bool; 4],
}

/// What a source said, as NSS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Success,
    NotFound,
    /// The source could not be used (no configuration, nobody listening, module not loaded).
    Unavail,
    /// A temporary failure (timeout, SERVFAIL, REFUSED).
    TryAgain,
}

impl Status {
    fn index(self) -> usize {
        self as usize
    }

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "SUCCESS" => Some(Self::Success),
            "NOTFOUND" => Some(Self::NotFound),
            "UNAVAIL" => Some(Self::Unavail),
            "TRYAGAIN" => Some(Self::TryAgain),
            _ => None,
        }
    }
}

impl Source {
    fn new(name: &str) -> Self {
        // NSS's default: stop on success, go on otherwise.
        Self {
            name: name.to_ascii_lowercase(),
            returns: [true, false, false, false],
        }
    }

    /// Whether the lookup stops after this source said `status`.
    pub(super) fn stops_on(&self, status: Status) -> bool {
        self.returns[status.index()]
    }

    /// Applies one `[…]` criterion list: `STATUS=ACTION` or `!STATUS=ACTION` items. `merge` is
    /// glibc's group-database action; for hosts it means go on, as `continue` does.
    fn apply(&mut self, criteria: &str) {
        for item in criteria.split_whitespace() {
            let Some((status, action)) = item.split_once('=') else {
                continue;
            };
            let stop = match action.to_ascii_lowercase().as_str() {
                "return" => true,
                "continue" | "merge" => false,
                _ => continue,
            };
            let (negated, status) = match status.strip_prefix('!') {
                Some(s) => (true, s),
                None => (false, status),
            };
            let Some(status) = Status::parse(status) else {
                continue;
            };
            for (i, r) in self.returns.iter_mut().enumerate() {
                if (i == status.index()) != negated {
                    *r = stop;
                }
            }
        }
    }
}

/// glibc's order when nsswitch.conf is missing or has no `hosts:` line.
const GLIBC_DEFAULT_HOSTS: &str = "dns [!UNAVAIL=return] files";

/// Parses the `hosts:` line of an nsswitch.conf (`None`: glibc's default applies).
pub(super) fn parse_nsswitch(text: &str) -> Option<Vec<Source>> {
    let line = text.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        l.strip_prefix("hosts:")
    })?;
    Some(parse_sources(line))
}

/// The sources of a `hosts:` line, without the `hosts:`.
pub(super) fn parse_sources(line: &str) -> Vec<Source> {
    let mut sources: Vec<Source> = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let (criteria, tail) = after.split_once(']').unwrap_or((after, ""));
            if let Some(last) = sources.last_mut() {
                last.apply(criteria);
            }
            rest = tail.trim_start();
        } else {
            let end = rest.find([' ', '\t', '[']).unwrap_or(rest.len());
            sources.push(Source::new(&rest[..end]));
            rest = rest[end..].trim_start();
        }
    }
    sources
}

/// The DNS part of the configuration: where to ask and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DnsConf {
    pub(super) servers: Vec<SocketAddr>,
    /// Search domains, without the trailing dot.
    pub(super) search: Vec<String>,
    pub(super) ndots: usize,
    /// Base wait per server (glibc's `retrans`).
    pub(super) timeout: Duration,
    /// Rounds over the server list.
    pub(super) attempts: usize,
    /// Start each query at a random server (glibc ≥ 2.26), instead of always the first.
    pub(super) rotate: bool,
}

impl DnsConf {
    /// One server, asked once, waiting the whole step timeout: `--dns-server`.
    pub(super) fn single(server: SocketAddr, timeout: Duration) -> Self {
        Self {
            servers: vec![server],
            search: vec![],
            ndots: 1,
            timeout,
            attempts: 1,
            rotate: false,
        }
    }
}

/// Parses resolv.conf with glibc's defaults and limits: at most three nameservers (the local
/// machine when none is listed), `ndots` ≤ 15, `timeout` 1–30 s, `attempts` 1–5. The search list
/// is the last `search` or `domain` line, else the domain part of the host name (`hostname`),
/// as glibc derives it.
pub(super) fn parse_resolv_conf(text: &str, hostname: Option<&str>) -> DnsConf {
    let (mut conf, _errors) = resolv_conf::Config::parse_with_errors(text.as_bytes());
    conf.glibc_normalize();
    let servers = conf
        .get_nameservers_or_local()
        .into_iter()
        .take(MAX_NAMESERVERS)
        .map(|ip| SocketAddr::new(IpAddr::from(&ip), 53))
        .collect::<Vec<_>>();
    let servers = if conf.nameservers.is_empty() {
        // glibc asks only the IPv4 loopback (resolv-conf also lists ::1).
        vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)]
    } else {
        servers
    };
    let mut search: Vec<String> = conf
        .get_last_search_or_domain()
        .filter(|d| *d != "--")
        .map(|d| d.trim_end_matches('.').to_owned())
        .filter(|d| !d.is_empty())
        .collect();
    if search.is_empty() {
        if let Some((_, domain)) = hostname.and_then(|h| h.split_once('.')) {
            search.push(domain.trim_end_matches('.').to_owned());
        }
    }
    DnsConf {
        servers,
        search,
        ndots: conf.ndots.min(MAX_NDOTS) as usize,
        timeout: Duration::from_secs(conf.timeout.clamp(1, MAX_TIMEOUT_SECS).into()),
        attempts: conf.attempts.clamp(1, MAX_ATTEMPTS) as usize,
        rotate: conf.rotate,
    }
}

/// Everything the system resolver reads, read once per run.
pub(super) struct SystemConf {
    pub(super) sources: Vec<Source>,
    /// The `hosts:` line as written (or glibc's default), for the evidence.
    pub(super) hosts_line: String,
    /// `None`: resolv.conf could not be read; the reason is in [`SystemConf::dns_error`].
    pub(super) dns: Option<DnsConf>,
    pub(super) dns_error: Option<String>,
    /// `Err`: /etc/hosts could not be read (the `files` source is then unavailable).
    pub(super) hosts: Result<HostsFile, String>,
    /// Why an nsswitch.conf that exists could not be read (glibc's default order applies).
    pub(super) nsswitch_error: Option<String>,
}

/// `/etc/hosts` as glibc's `files` module reads it: an address, then the names it answers for;
/// `#` starts a comment; names match without regard to case or a trailing dot; every line
/// naming the host adds its address, in file order.
#[derive(Debug, Default)]
pub(super) struct HostsFile {
    entries: Vec<(String, IpAddr)>,
}

impl HostsFile {
    /// Parses the file; a line whose first field is not an address is skipped, as glibc does.
    pub(super) fn parse(text: &str) -> Self {
        let entries = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .filter_map(|line| {
                let mut fields = line.split_ascii_whitespace();
                let addr: IpAddr = fields.next()?.parse().ok()?;
                Some(fields.map(move |name| (normalize(name), addr)))
            })
            .flatten()
            .collect();
        Self { entries }
    }

    /// The addresses listed for `host`, both families, without repeats.
    pub(super) fn lookup(&self, host: &str) -> Vec<IpAddr> {
        let host = normalize(host);
        let mut addrs: Vec<IpAddr> = Vec::new();
        for (_, addr) in self.entries.iter().filter(|(name, _)| *name == host) {
            if !addrs.contains(addr) {
                addrs.push(*addr);
            }
        }
        addrs
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl SystemConf {
    /// Reads `/etc/nsswitch.conf`, `/etc/resolv.conf` and `/etc/hosts`. Tests give the lab's own
    /// copies by bind-mounting them over these paths in a mount namespace of their own.
    pub(super) fn read() -> Self {
        let nsswitch = read_text(NSSWITCH, FileKind::SystemConf);
        // Without resolv.conf glibc asks the local machine: its defaults are an empty file's.
        let resolv = match read_text(RESOLV_CONF, FileKind::SystemConf) {
            Err(e) if e.is_not_found() => Ok(String::new()),
            other => other,
        };
        let hosts = read_text(HOSTS, FileKind::HostsFile);
        // Where glibc's gethostname() reads on Linux; only its domain part is used.
        let hostname = read_text("/proc/sys/kernel/hostname", FileKind::SystemConf).ok();
        let mut conf = Self::from_texts(
            nsswitch.as_deref().ok(),
            resolv.as_deref().map_err(|e| e.problem.to_string()),
            hosts.as_deref().map_err(|e| e.problem.to_string()),
            hostname.as_deref().map(str::trim),
        );
        conf.nsswitch_error = nsswitch
            .err()
            .filter(|e| !e.is_not_found())
            .map(|e| format!("{NSSWITCH}: {}", e.problem));
        conf
    }

    /// Builds the configuration from the files' contents (`Err`: why a file could not be read).
    pub(super) fn from_texts(
        nsswitch: Option<&str>,
        resolv: Result<&str, String>,
        hosts: Result<&str, String>,
        hostname: Option<&str>,
    ) -> Self {
        let (sources, hosts_line) = match nsswitch.and_then(parse_nsswitch) {
            Some(sources) if !sources.is_empty() => {
                let line = sources
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                (sources, line)
            }
            _ => (
                parse_sources(GLIBC_DEFAULT_HOSTS),
                format!("{GLIBC_DEFAULT_HOSTS} (glibc's default: no hosts line in nsswitch.conf)"),
            ),
        };
        let (dns, dns_error) = match resolv {
            Ok(text) => (Some(parse_resolv_conf(text, hostname)), None),
            Err(e) => (None, Some(format!("{RESOLV_CONF}: {e}"))),
        };
        let hosts = hosts
            .map(HostsFile::parse)
            .map_err(|e| format!("{HOSTS}: {e}"));
        Self {
            sources,
            hosts_line,
            dns,
            dns_error,
            hosts,
            nsswitch_error: None,
        }
    }
}

const NSSWITCH: &str = "/etc/nsswitch.conf";
const RESOLV_CONF: &str = "/etc/resolv.conf";
const HOSTS: &str = "/etc/hosts";

/// Reads a whole file as text, bounded and refused as [`crate::local_file`] does; a stray
/// non-UTF-8 byte in a comment must not make the whole file unreadable, so invalid sequences are
/// replaced.
fn read_text(path: impl AsRef<Path>, kind: FileKind) -> Result<String, FileError> {
    crate::local_file::read(path.as_ref(), kind)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The names glibc's `res_search` tries for `host`, in order: as given first when it has at
/// least `ndots` dots, then with each search domain, then as given if not tried yet. A trailing
/// dot means exactly that name.
pub(super) fn candidates(host: &str, conf: &DnsConf) -> Vec<String> {
    if let Some(fqdn) = host.strip_suffix('.') {
        return vec![fqdn.to_owned()];
    }
    let dots = host.matches('.').count();
    let as_is_first = dots >= conf.ndots;
    let mut out = Vec::with_capacity(conf.search.len() + 1);
    if as_is_first {
        out.push(host.to_owned());
    }
    out.extend(conf.search.iter().map(|d| format!("{host}.{d}")));
    if !as_is_first {
        out.push(host.to_owned());
    }
    out
}

/// How long glibc waits for server number `index` of `count` (`send_dg`): the base for the
/// first, then `base << index / count`, never under a second when the base is whole seconds.
pub(super) fn server_wait(base: Duration, index: usize, count: usize) -> Duration {
    if index == 0 {
        return base;
    }
    let shifted = base.saturating_mul(1 << index.min(16));
    let wait = shifted / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    wait.max(base.min(Duration::from_secs(1)))
}

/// The order servers are asked in one round: from `offset` on, wrapping around.
pub(super) fn server_order(count: usize, offset: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |i| (i + offset) % count.max(1))
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    fn stops(line: &str) -> Vec<(String, [bool; 4])> {
        parse_sources(line)
            .into_iter()
            .map(|s| (s.name, s.returns))
            .collect()
    }

    const DEFAULT: [bool; 4] = [true, false, false, false];

    #[test]
    fn plain_order() {
        assert_eq!(
            stops("files dns"),
            vec![("files".into(), DEFAULT), ("dns".into(), DEFAULT)]
        );
    }

    #[test]
    fn actions_apply_to_the_source_before_them() {
        // Ubuntu's line with systemd-resolved.
        let got = stops("files mdns4_minimal [NOTFOUND=return] resolve [!UNAVAIL=return] dns");
        assert_eq!(got[1], ("mdns4_minimal".into(), [true, true, false, false]));
        assert_eq!(got[2], ("resolve".into(), [true, true, false, true]));
        assert_eq!(got[3], ("dns".into(), DEFAULT));
    }

    #[test]
    fn missing_hosts_line_is_glibc_default() {
        let conf = SystemConf::from_texts(
            Some("passwd: files\n"),
            Ok("nameserver 127.0.0.1"),
            Ok(""),
            None,
        );
        let names: Vec<&str> = conf.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["dns", "files"]);
        assert!(conf.sources[0].stops_on(Status::NotFound));
        assert!(!conf.sources[0].stops_on(Status::Unavail));
        assert!(conf.hosts_line.contains("glibc's default"));
    }

    #[test]
    fn comment_after_hosts_line() {
        let got = parse_nsswitch("# hosts: dns\nhosts:   files dns # local first\n").unwrap();
        let names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["files", "dns"]);
    }

    #[test]
    fn resolv_conf_options_with_glibc_limits() {
        let conf = parse_resolv_conf(
            "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n\
             search corp.example. lab.example\noptions ndots:20 timeout:60 attempts:9 rotate\n",
            None,
        );
        assert_eq!(conf.servers.len(), 3);
        assert_eq!(conf.search, ["corp.example", "lab.example"]);
        assert_eq!(conf.ndots, 15);
        assert_eq!(conf.timeout, Duration::from_secs(30));
        assert_eq!(conf.attempts, 5);
        assert!(conf.rotate);
    }

    #[test]
    fn resolv_conf_defaults() {
        let conf = parse_resolv_conf("", Some("build7.corp.example"));
        assert_eq!(conf.servers, ["127.0.0.1:53".parse().unwrap()]);
        assert_eq!(conf.search, ["corp.example"]);
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts, conf.rotate),
            (1, Duration::from_secs(5), 2, false)
        );
    }

    #[test_case("a.snowflakecomputing.com", 1, &["a.snowflakecomputing.com", "a.snowflakecomputing.com.corp.example"]; "enough dots: as is first")]
    #[test_case("a.snowflakecomputing.com", 5, &["a.snowflakecomputing.com.corp.example", "a.snowflakecomputing.com"]; "ndots 5: search first")]
    #[test_case("a.snowflakecomputing.com.", 5, &["a.snowflakecomputing.com"]; "trailing dot: only that name")]
    fn search_list(host: &str, ndots: usize, want: &[&str]) {
        let mut conf = DnsConf::single("127.0.0.1:53".parse().unwrap(), Duration::from_secs(1));
        conf.search = vec!["corp.example".into()];
        conf.ndots = ndots;
        assert_eq!(candidates(host, &conf), want);
    }

    #[test_case(5, 0, 1, 5; "one server")]
    #[test_case(5, 1, 2, 5; "second of two")]
    #[test_case(5, 1, 3, 3; "second of three")]
    #[test_case(5, 2, 3, 6; "third of three")]
    #[test_case(1, 1, 3, 1; "never under a second")]
    fn waits_as_glibc(base: u64, index: usize, count: usize, want: u64) {
        assert_eq!(
            server_wait(Duration::from_secs(base), index, count).as_secs(),
            want
        );
    }

    #[test]
    fn rotation_wraps() {
        assert_eq!(server_order(3, 1).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(server_order(3, 0).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn hosts_file_reads_as_glibc_files_does() {
        let hosts = HostsFile::parse(
            "127.0.0.1 localhost\n\
             # 10.0.0.9 Acct.Example.com\n\
             10.0.0.1\tAcct.Example.COM acct # alias\n\
             not-an-address acct.example.com\n\
             fe80::1%eth0 acct.example.com\n\
             2001:db8::1 acct.example.com.\n\
             10.0.0.1 acct.example.com\n",
        );
        assert_eq!(
            hosts.lookup("acct.example.com."),
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(
            hosts.lookup("ACCT"),
            ["10.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert!(hosts.lookup("example.com").is_empty());
    }
}
