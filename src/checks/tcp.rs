//! `tcp.account`: connect to the host's port on every resolved address, timing each; refused,
//! timed out, unreachable and reset are told apart. Through a proxy, this is the connection to
//! the proxy, and a failure there is the proxy being unreachable.

use std::net::SocketAddr;

use serde::Serialize;

use crate::catalog::RowId;
use crate::checks::host_check;
use crate::context::{Ctx, HostRole};
use crate::net::connect::{self, ConnectFailure, ConnectFailureKind};
use crate::net::proxy::ProxyDecision;
use crate::net::resolver::DnsFailure;
use crate::outcome::{Outcome, SkipReason};

host_check!(
    ACCOUNT,
    "tcp.account",
    "TCP: account host port open",
    ["proxy.env", "dns.account"],
    HostRole::Account
);
host_check!(
    INGEST,
    "tcp.ingest",
    "TCP: ingest host port open",
    ["proxy.env", "dns.ingest"],
    HostRole::Ingest
);
host_check!(
    IDP,
    "tcp.idp",
    "TCP: OAuth token endpoint port open",
    ["proxy.env", "dns.idp"],
    HostRole::Idp
);
host_check!(
    STAGE,
    "tcp.stage",
    "TCP: stage storage host port open",
    ["proxy.env", "dns.stage"],
    stage
);

#[derive(Serialize)]
struct Attempt {
    addr: SocketAddr,
    ok: bool,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    elapsed: std::time::Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ConnectFailure>,
}

#[derive(Serialize)]
struct Evidence {
    /// `direct`, or the proxy connected to instead of the host.
    via: String,
    port: u16,
    attempts: Vec<Attempt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_dns_error: Option<DnsFailure>,
}

async fn run(ctx: Ctx, role: HostRole) -> Outcome {
    let endpoint = match crate::checks::endpoint_or_skip(&ctx, role) {
        Ok(e) => e,
        Err(skip) => return skip,
    };
    let timeout = ctx.settings.timeout;
    let (via, port, addrs) = match ctx.route(&endpoint) {
        Ok(ProxyDecision::Proxy { proxy, .. }) => {
            match ctx
                .net
                .resolver
                .resolve(&proxy.host, proxy.port, timeout)
                .await
            {
                Ok(res) => (proxy.to_string(), proxy.port, res.addrs),
                Err(e) => {
                    let finding = format!("proxy {proxy}: {}", e.message);
                    let evidence = Evidence {
                        via: proxy.to_string(),
                        port: proxy.port,
                        attempts: vec![],
                        proxy_dns_error: Some(e),
                    };
                    return Outcome::fail(RowId::ProxyUnreachable, finding, evidence);
                }
            }
        }
        Ok(ProxyDecision::Direct { .. }) => match ctx.host_facts(role).addrs.get() {
            Some(addrs) => ("direct".to_owned(), endpoint.port, addrs.clone()),
            None => {
                return Outcome::skip(SkipReason::NotConfigured("no address to connect to".into()));
            }
        },
        Err(e) => return Outcome::skip(SkipReason::NotConfigured(format!("no usable route: {e}"))),
    };
    let through_proxy = via != "direct";
    // All addresses at once: the slowest bounds the check, not the sum.
    let attempts = futures::future::join_all(addrs.iter().map(|ip| {
        let addr = SocketAddr::new(*ip, port);
        async move {
            match connect::connect(addr, timeout).await {
                Ok((_stream, elapsed)) => Attempt {
                    addr,
                    ok: true,
                    elapsed,
                    error: None,
                },
                Err(e) => Attempt {
                    addr,
                    ok: false,
                    elapsed: e.elapsed,
                    error: Some(e),
                },
            }
        }
    }))
    .await;
    let evidence = Evidence {
        via,
        port,
        attempts,
        proxy_dns_error: None,
    };
    if let Some(first) = evidence.attempts.iter().find(|a| a.ok) {
        let _ = ctx.host_facts(role).reachable.set(first.addr);
        let failed = evidence.attempts.iter().filter(|a| !a.ok).count();
        let note = if failed > 0 {
            format!(" ({failed} other address(es) failed)")
        } else {
            String::new()
        };
        let to = if through_proxy {
            format!("proxy {}", evidence.via)
        } else {
            first.addr.to_string()
        };
        let finding = format!(
            "connected to {to} in {:.1} ms{note}",
            crate::units::ms(first.elapsed)
        );
        return Outcome::pass(finding, evidence);
    }
    let first_err = evidence
        .attempts
        .iter()
        .find_map(|a| a.error.as_ref())
        .expect("at least one address");
    if through_proxy {
        let finding = format!("cannot reach the proxy {}: {first_err}", evidence.via);
        return Outcome::fail(RowId::ProxyUnreachable, finding, evidence);
    }
    let (row, finding) = (classify(first_err.kind), first_err.to_string());
    Outcome::fail(row, finding, evidence)
}

/// The catalog row for a failed connect.
pub(crate) fn classify(kind: ConnectFailureKind) -> RowId {
    match kind {
        ConnectFailureKind::Refused => RowId::ConnectionRefused,
        ConnectFailureKind::TimedOut => RowId::Timeout,
        ConnectFailureKind::Reset => RowId::TcpReset,
        ConnectFailureKind::LocalLimit => RowId::LocalOpenFiles,
        ConnectFailureKind::NoLocalPort => RowId::LocalEphemeralPorts,
        ConnectFailureKind::Unreachable | ConnectFailureKind::Other => RowId::TcpUnreachable,
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case(ConnectFailureKind::Refused, RowId::ConnectionRefused; "refused")]
    #[test_case(ConnectFailureKind::TimedOut, RowId::Timeout; "timed out")]
    #[test_case(ConnectFailureKind::Unreachable, RowId::TcpUnreachable; "unreachable")]
    #[test_case(ConnectFailureKind::NoLocalPort, RowId::LocalEphemeralPorts; "no local port")]
    #[test_case(ConnectFailureKind::Reset, RowId::TcpReset; "reset")]
    #[test_case(ConnectFailureKind::LocalLimit, RowId::LocalOpenFiles; "out of descriptors")]
    fn classifies(kind: ConnectFailureKind, row: RowId) {
        assert_eq!(classify(kind), row);
    }
}
