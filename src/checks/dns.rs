//! `dns.account`: resolve the host (A and AAAA), record the addresses, the CNAME chain and the
//! time, and judge the answer against the kind of host (public vs `PrivateLink`). Through a
//! proxy that resolves the name (HTTP, `socks4a`, `socks5h`) a local failure is not one.

use std::net::IpAddr;

use serde::Serialize;

use crate::catalog::RowId;
use crate::checks::host_check;
use crate::context::{Ctx, HostRole};
use crate::net::proxy::ProxyDecision;
use crate::net::resolver::{AnswerSource, DnsFailure, DnsFailureKind, Resolution, ResolverInfo};
use crate::outcome::Outcome;
use crate::snowflake::account::HostKind;

host_check!(
    ACCOUNT,
    "dns.account",
    "DNS: account host resolves",
    [],
    HostRole::Account
);
host_check!(
    INGEST,
    "dns.ingest",
    "DNS: ingest host resolves",
    ["discovery.hostname"],
    HostRole::Ingest
);
host_check!(
    IDP,
    "dns.idp",
    "DNS: OAuth token endpoint resolves",
    [],
    HostRole::Idp
);
host_check!(
    STAGE,
    "dns.stage",
    "DNS: stage storage host resolves",
    ["stage.info"],
    stage
);

#[derive(Serialize)]
struct Evidence<'a> {
    host: &'a str,
    resolver: &'a ResolverInfo,
    #[serde(flatten)]
    answer: Answer<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer<'a> {
    Resolved(&'a Resolution),
    Failed { error: &'a DnsFailure },
}

async fn run(ctx: Ctx, role: HostRole) -> Outcome {
    let endpoint = match crate::checks::endpoint_or_skip(&ctx, role) {
        Ok(e) => e,
        Err(skip) => return skip,
    };
    let resolver = &ctx.net.resolver;
    let host = endpoint.host.as_str();
    match resolver
        .resolve(host, endpoint.port, ctx.settings.timeout)
        .await
    {
        Ok(res) => {
            let _ = ctx.host_facts(role).addrs.set(res.addrs.clone());
            let evidence = Evidence {
                host,
                resolver: resolver.info(),
                answer: Answer::Resolved(&res),
            };
            let list = res
                .addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            // A pinned line in /etc/hosts is fixed on this machine, not in the DNS; a name that
            // answered through a search domain is another name than the one asked.
            let from = match (res.source, &res.name) {
                (AnswerSource::HostsFile, _) => " (from /etc/hosts)".to_owned(),
                (_, Some(name)) => format!(" (as {name}, through resolv.conf's search list)"),
                _ => String::new(),
            };
            if let Some(addr) = res.addrs.iter().find(|a| a.is_unspecified()) {
                return Outcome::fail(
                    RowId::DnsSinkhole,
                    format!("{host} → {addr}{from}: blocked by a DNS filter"),
                    evidence,
                );
            }
            match misplaced_address(endpoint.kind, &res.addrs) {
                Some((row, addr)) => Outcome::warn(
                    row,
                    format!("{host} → {addr}{from}: {}", row.row().symptom),
                    evidence,
                ),
                None => Outcome::pass(
                    format!(
                        "{host} → {list}{from} in {:.1} ms",
                        crate::units::ms(res.elapsed)
                    ),
                    evidence,
                ),
            }
        }
        Err(err) => {
            let evidence = Evidence {
                host,
                resolver: resolver.info(),
                answer: Answer::Failed { error: &err },
            };
            // Through a proxy that resolves the name (not socks4/socks5), a local failure is
            // information.
            if let Ok(ProxyDecision::Proxy { proxy, .. }) = ctx.route(&endpoint) {
                if proxy.scheme.resolves_remotely() {
                    return Outcome::pass(
                        format!(
                            "{host}: {} locally; the proxy {proxy} resolves it",
                            err.message
                        ),
                        evidence,
                    );
                }
            }
            Outcome::fail(
                classify(err.kind),
                format!("{host}: {}", err.message),
                evidence,
            )
        }
    }
}

/// The catalog row for a DNS failure.
fn classify(kind: DnsFailureKind) -> RowId {
    match kind {
        DnsFailureKind::NxDomain => RowId::DnsNxdomain,
        DnsFailureKind::NoAnswer => RowId::DnsNoAnswer,
        DnsFailureKind::Timeout => RowId::DnsTimeout,
        DnsFailureKind::Unreachable => RowId::DnsResolverUnreachable,
        DnsFailureKind::LocalLimit => RowId::LocalOpenFiles,
        DnsFailureKind::LocalConfig => RowId::DnsLocalConfig,
        DnsFailureKind::ServFail | DnsFailureKind::Refused | DnsFailureKind::Other => {
            RowId::DnsServfail
        }
    }
}

/// A public host answering with a private address, or a `PrivateLink` host with a public one.
fn misplaced_address(kind: HostKind, addrs: &[IpAddr]) -> Option<(RowId, IpAddr)> {
    match kind {
        HostKind::Public | HostKind::China => addrs
            .iter()
            .find(|a| is_private(**a))
            .map(|a| (RowId::DnsPrivateAddress, *a)),
        HostKind::PrivateLink => addrs
            .iter()
            .find(|a| is_public(**a))
            .map(|a| (RowId::DnsPublicAddress, *a)),
        HostKind::Custom => None,
    }
}

/// RFC 1918, shared address space (RFC 6598), unique-local IPv6 and link-local: addresses that
/// only mean something inside one network.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// A globally routable address: neither private nor loopback, unspecified, documentation or
/// benchmarking space (labs use those for their "public" hosts).
fn is_public(ip: IpAddr) -> bool {
    !is_private(ip) && !ip.is_loopback() && !ip.is_unspecified() && !ip.is_multicast()
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case(HostKind::Public, "10.1.2.3", Some(RowId::DnsPrivateAddress); "public host private v4")]
    #[test_case(HostKind::Public, "100.64.0.1", Some(RowId::DnsPrivateAddress); "public host cgnat")]
    #[test_case(HostKind::Public, "fd00::1", Some(RowId::DnsPrivateAddress); "public host ula")]
    #[test_case(HostKind::Public, "52.1.2.3", None; "public host public")]
    #[test_case(HostKind::Public, "127.0.0.1", None; "loopback is not private")]
    #[test_case(HostKind::PrivateLink, "52.1.2.3", Some(RowId::DnsPublicAddress); "privatelink public")]
    #[test_case(HostKind::PrivateLink, "10.0.0.5", None; "privatelink private")]
    #[test_case(HostKind::PrivateLink, "127.0.0.1", None; "privatelink loopback")]
    #[test_case(HostKind::Custom, "10.0.0.5", None; "custom host is not judged")]
    fn judges_addresses(kind: HostKind, addr: &str, want: Option<RowId>) {
        let got = misplaced_address(kind, &[addr.parse().unwrap()]).map(|(r, _)| r);
        assert_eq!(got, want);
    }

    #[test_case(DnsFailureKind::NxDomain, RowId::DnsNxdomain; "nxdomain")]
    #[test_case(DnsFailureKind::ServFail, RowId::DnsServfail; "servfail")]
    #[test_case(DnsFailureKind::NoAnswer, RowId::DnsNoAnswer; "no answer")]
    #[test_case(DnsFailureKind::Timeout, RowId::DnsTimeout; "timeout")]
    #[test_case(DnsFailureKind::Refused, RowId::DnsServfail; "refused")]
    #[test_case(DnsFailureKind::Unreachable, RowId::DnsResolverUnreachable; "unreachable")]
    #[test_case(DnsFailureKind::LocalLimit, RowId::LocalOpenFiles; "out of descriptors")]
    #[test_case(DnsFailureKind::LocalConfig, RowId::DnsLocalConfig; "unusable configuration")]
    fn classifies(kind: DnsFailureKind, row: RowId) {
        assert_eq!(classify(kind), row);
    }
}
