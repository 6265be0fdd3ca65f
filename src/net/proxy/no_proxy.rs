//! `NO_PROXY` matching exactly as current curl does it (lib/noproxy.c, curl ≥ 8.9), including
//! the places where curl silently ignores what a user wrote, so that netcheck can point them out.
//! Older curl (7.86–8.8, e.g. Debian 12's 7.88) also accepted blanks as separators, deprecated
//! since 2023; since 8.9 curl stops reading at a blank-separated entry, and reqwest (the Rust
//! SDK's HTTP client) treats `a b` as one name that matches nothing, so both new curl and the
//! SDK ignore such entries.
//!
//! curl's rules: the whole list `*` matches everything; entries are separated by commas with
//! optional blanks around them; a host entry matches the name itself or any name ending in
//! `.entry` (a leading dot and a trailing dot are ignored), case-insensitively; an IP literal
//! host only matches IP entries, optionally with a `/bits` CIDR suffix. curl has no port
//! syntax and no `*.` globs: such entries never match.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// Returns the `NO_PROXY` entry (as written) that sends `host` direct, or `None` when the proxy
/// applies. `host` may be a name (a trailing dot is ignored) or an IP literal, IPv6 with or
/// without brackets.
#[must_use]
pub fn no_proxy_match(list: &str, host: &str) -> Option<String> {
    let parsed = NoProxyEntries::parse(list);
    if parsed.matches_all {
        return Some(list.to_owned());
    }
    let host = Host::classify(host)?;
    parsed.entries.into_iter().find(|entry| host.matches(entry))
}

/// A `NO_PROXY` list split the way curl reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoProxyEntries {
    /// The entries curl reads, as written.
    pub entries: Vec<String>,
    /// What curl ≥ 8.9 never reads: at a blank-separated entry (`"a b,c"`) it stops at `b`.
    pub unread: Option<String>,
    /// The list is exactly `*`, the only form in which curl treats `*` as "every host".
    pub matches_all: bool,
}

/// An entry curl reads but can never match, or text it never reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IneffectiveEntry {
    /// The entry as written.
    pub entry: String,
    /// Why it has no effect in curl.
    pub reason: IneffectiveReason,
}

/// Why a `NO_PROXY` entry has no effect in curl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IneffectiveReason {
    /// `host:port`: curl has no port syntax, so the entry matches no host at all.
    HasPort,
    /// `*` inside a list or a `*.` glob: curl honours `*` only as the whole list.
    Wildcard,
    /// `[::1]`: curl compares IPv6 entries without brackets.
    Bracketed,
    /// An IP entry whose `/bits` is not a number up to the address length.
    BadCidr,
    /// Text from a blank-separated entry on, which curl ≥ 8.9 does not read.
    Unread,
}

impl NoProxyEntries {
    /// Splits `list` like curl: skip blanks, take up to a blank or comma, skip blanks; a comma
    /// (or several) continues the list, anything else ends it.
    #[must_use]
    pub fn parse(list: &str) -> Self {
        const BLANKS: [char; 2] = [' ', '\t'];
        let mut entries = Vec::new();
        let mut rest = list;
        loop {
            rest = rest.trim_start_matches(BLANKS);
            let end = rest.find([' ', '\t', ',']).unwrap_or(rest.len());
            if end > 0 {
                entries.push(rest[..end].to_owned());
            }
            rest = rest[end..].trim_start_matches(BLANKS);
            if rest.is_empty() || !rest.starts_with(',') {
                let unread = (!rest.is_empty()).then(|| rest.to_owned());
                return Self {
                    entries,
                    unread,
                    matches_all: list == "*",
                };
            }
            rest = rest.trim_start_matches(',');
        }
    }

    /// The entries (and unread text) that can never send a host direct in curl.
    #[must_use]
    pub fn ineffective(&self) -> Vec<IneffectiveEntry> {
        if self.matches_all {
            return Vec::new();
        }
        let read = self.entries.iter().filter_map(|entry| {
            ineffective_reason(entry).map(|reason| IneffectiveEntry {
                entry: entry.clone(),
                reason,
            })
        });
        let unread = self.unread.iter().map(|unread| IneffectiveEntry {
            entry: unread.clone(),
            reason: IneffectiveReason::Unread,
        });
        read.chain(unread).collect()
    }
}

fn ineffective_reason(entry: &str) -> Option<IneffectiveReason> {
    if entry.contains('*') {
        return Some(IneffectiveReason::Wildcard);
    }
    if entry.starts_with('[') {
        return Some(IneffectiveReason::Bracketed);
    }
    if let Some((addr, bits)) = entry.split_once('/') {
        let max = if addr.contains(':') { 128 } else { 32 };
        return match bits.parse::<u8>() {
            Ok(bits) if bits <= max => None,
            _ => Some(IneffectiveReason::BadCidr),
        };
    }
    // An IPv6 literal has colons but no port; anything else with a colon is `host:port`.
    (entry.contains(':') && entry.parse::<Ipv6Addr>().is_err())
        .then_some(IneffectiveReason::HasPort)
}

/// The target host, typed the way curl types it before matching.
enum Host<'a> {
    Name(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl<'a> Host<'a> {
    fn classify(host: &'a str) -> Option<Self> {
        if host.is_empty() {
            return None;
        }
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Some(match unbracketed.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => Self::V4(v4),
            Ok(IpAddr::V6(v6)) => Self::V6(v6),
            Err(_) => Self::Name(host.strip_suffix('.').unwrap_or(host)),
        })
    }

    fn matches(&self, entry: &str) -> bool {
        match self {
            Self::Name(name) => name_matches(name, entry),
            Self::V4(addr) => {
                ip_entry(entry).is_some_and(|(net, bits)| match net.parse::<Ipv4Addr>() {
                    // curl treats `/0` like no suffix: an exact match.
                    Ok(net) if bits == 0 || bits == 32 => net == *addr,
                    Ok(net) if bits < 32 => (u32::from(net) ^ u32::from(*addr)) >> (32 - bits) == 0,
                    _ => false,
                })
            }
            Self::V6(addr) => {
                ip_entry(entry).is_some_and(|(net, bits)| match net.parse::<Ipv6Addr>() {
                    Ok(net) if bits == 0 || bits == 128 => net == *addr,
                    Ok(net) if bits < 128 => {
                        (u128::from(net) ^ u128::from(*addr)) >> (128 - bits) == 0
                    }
                    _ => false,
                })
            }
        }
    }
}

/// `example.com` matches `example.com` and `www.example.com`, never `nonexample.com`.
fn name_matches(name: &str, entry: &str) -> bool {
    let entry = entry.strip_suffix('.').unwrap_or(entry);
    let entry = entry.strip_prefix('.').unwrap_or(entry).as_bytes();
    let name = name.as_bytes();
    match name.len().checked_sub(entry.len()) {
        Some(0) => name.eq_ignore_ascii_case(entry),
        Some(extra) => name[extra - 1] == b'.' && name[extra..].eq_ignore_ascii_case(entry),
        None => false,
    }
}

/// Splits `addr[/bits]`; a suffix that is not a number up to 128 makes the entry unusable.
fn ip_entry(entry: &str) -> Option<(&str, u32)> {
    match entry.split_once('/') {
        None => Some((entry, 0)),
        Some((addr, bits)) => bits
            .parse::<u32>()
            .ok()
            .filter(|b| *b <= 128)
            .map(|b| (addr, b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("*", "anything.example", Some("*") ; "star alone matches all")]
    #[test_case("example.com", "example.com", Some("example.com") ; "exact name")]
    #[test_case("example.com", "www.example.com", Some("example.com") ; "suffix on label boundary")]
    #[test_case("example.com", "nonexample.com", None ; "suffix not on label boundary")]
    #[test_case(".example.com", "example.com", Some(".example.com") ; "leading dot optional for the domain itself")]
    #[test_case(".example.com", "a.b.example.com", Some(".example.com") ; "leading dot matches subdomains")]
    #[test_case("example.com.", "www.example.com", Some("example.com.") ; "trailing dot in entry ignored")]
    #[test_case("example.com", "www.example.com.", Some("example.com") ; "trailing dot in host ignored")]
    #[test_case("EXAMPLE.com", "Www.Example.COM", Some("EXAMPLE.com") ; "case insensitive")]
    #[test_case("foo, bar ,,example.com", "x.example.com", Some("example.com") ; "commas and blanks")]
    #[test_case("foo\t,\texample.com", "example.com", Some("example.com") ; "tabs are blanks")]
    #[test_case("foo example.com", "example.com", None ; "curl stops at a blank separated entry")]
    #[test_case("localhost,*", "example.com", None ; "star inside a list is a plain name")]
    #[test_case("*.example.com", "www.example.com", None ; "no glob support")]
    #[test_case("example.com:443", "example.com", None ; "no port support")]
    #[test_case("", "example.com", None ; "empty list")]
    #[test_case("example.com", "", None ; "empty host")]
    #[test_case("127.0.0.1", "127.0.0.1", Some("127.0.0.1") ; "ipv4 exact")]
    #[test_case("127.0.0.0/8", "127.1.2.3", Some("127.0.0.0/8") ; "ipv4 cidr")]
    #[test_case("10.0.0.0/8", "11.0.0.1", None ; "ipv4 outside cidr")]
    #[test_case("10.1.2.3/0", "10.9.9.9", None ; "slash zero is exact like curl")]
    #[test_case("10.0.0.0/33", "10.0.0.0", None ; "ipv4 bits too large")]
    #[test_case("10.0.0.0/x", "10.0.0.0", None ; "cidr bits not a number")]
    #[test_case("localhost", "127.0.0.1", None ; "ip host needs an ip entry")]
    #[test_case("0.1", "10.0.0.1", None ; "ip host is not suffix matched")]
    #[test_case("::1", "::1", Some("::1") ; "ipv6 exact")]
    #[test_case("::1", "[::1]", Some("::1") ; "bracketed ipv6 host")]
    #[test_case("fd00::/8", "fd12:3456::1", Some("fd00::/8") ; "ipv6 cidr")]
    #[test_case("fd00::/9", "fd80::1", None ; "ipv6 cidr not byte aligned")]
    #[test_case("[::1]", "::1", None ; "bracketed entry never matches")]
    fn matches_like_curl(list: &str, host: &str, entry: Option<&str>) {
        assert_eq!(no_proxy_match(list, host).as_deref(), entry);
    }

    #[test_case("a, b,,c", &["a", "b", "c"], None ; "comma separated")]
    #[test_case(" a b,c", &["a"], Some("b,c") ; "blank ends the list")]
    #[test_case(",,", &[], None ; "only commas")]
    fn splits_like_curl(list: &str, entries: &[&str], unread: Option<&str>) {
        let parsed = NoProxyEntries::parse(list);
        assert_eq!(parsed.entries, entries);
        assert_eq!(parsed.unread.as_deref(), unread);
    }

    #[test_case("*", &[] ; "star alone is effective")]
    #[test_case("example.com,10.0.0.0/8,::1", &[] ; "all effective")]
    #[test_case("example.com:443", &[("example.com:443", IneffectiveReason::HasPort)] ; "port")]
    #[test_case("10.0.0.1:80", &[("10.0.0.1:80", IneffectiveReason::HasPort)] ; "ip with port")]
    #[test_case("a,*", &[("*", IneffectiveReason::Wildcard)] ; "star in a list")]
    #[test_case("*.corp", &[("*.corp", IneffectiveReason::Wildcard)] ; "glob")]
    #[test_case("10.0.0.0/40", &[("10.0.0.0/40", IneffectiveReason::BadCidr)] ; "bad cidr")]
    #[test_case("a b", &[("b", IneffectiveReason::Unread)] ; "unread tail")]
    #[test_case(" *", &[("*", IneffectiveReason::Wildcard)] ; "star with a blank is not the whole list")]
    #[test_case("[::1]", &[("[::1]", IneffectiveReason::Bracketed)] ; "bracketed ipv6")]
    fn flags_ineffective_entries(list: &str, expected: &[(&str, IneffectiveReason)]) {
        let found: Vec<_> = NoProxyEntries::parse(list)
            .ineffective()
            .into_iter()
            .map(|i| (i.entry, i.reason))
            .collect();
        let expected: Vec<_> = expected
            .iter()
            .map(|(e, r)| ((*e).to_owned(), *r))
            .collect();
        assert_eq!(found, expected);
    }
}
