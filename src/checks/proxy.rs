//! `proxy.env` (which proxy, if any, applies to the host and why) and `proxy.connect` (the
//! tunnel through it: HTTP CONNECT, over TLS for an `https://` proxy, or the SOCKS handshake,
//! with the proxy's own answer as evidence: 407, 403 and 5xx, or SOCKS's reply codes, each mean
//! something else). Pairs with `checks/proxy.toml`.

use serde::Serialize;

use crate::catalog::RowId;
use crate::checks::host_check;
use crate::context::{Ctx, HostRole, OpenError};
use crate::net::connect::CLAMPED_MSS;
use crate::net::proxy::{
    self, DirectReason, NoProxyEntries, ProxyDecision, ProxySettings, SocksFailureKind,
    TunnelError, TunnelReply,
};
use crate::net::tls::TlsFailure;
use crate::outcome::{Outcome, SkipReason};

host_check!(
    ENV,
    "proxy.env",
    "Proxy: which proxy applies",
    [],
    HostRole::Account
);
pub const CONNECT: crate::check::CheckSpec = crate::check::CheckSpec::new(
    "proxy.connect",
    "Proxy: tunnel to the account host",
    &["proxy.env", "tcp.account"],
    |ctx| Box::pin(run_connect(ctx, HostRole::Account)),
);

#[derive(Serialize)]
struct EnvEvidence<'a> {
    host: &'a str,
    settings: &'a ProxySettings,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ineffective_no_proxy: Vec<proxy::IneffectiveEntry>,
    #[serde(flatten)]
    decision: Decision<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Decision<'a> {
    Decided { decision: &'a ProxyDecision },
    Failed { error: &'a proxy::ProxyError },
}

#[allow(clippy::unused_async)] // every check has the async signature the registry dispatches
async fn run(ctx: Ctx, role: HostRole) -> Outcome {
    let endpoint = match crate::checks::endpoint_or_skip(&ctx, role) {
        Ok(e) => e,
        Err(skip) => return skip,
    };
    let settings = &ctx.settings.proxy;
    let ineffective = settings
        .no_proxy
        .as_ref()
        .map(|n| NoProxyEntries::parse(&n.value).ineffective())
        .unwrap_or_default();
    let evidence = |decision| EnvEvidence {
        host: &endpoint.host,
        settings,
        ineffective_no_proxy: ineffective.clone(),
        decision,
    };
    match ctx.route(&endpoint) {
        Ok(decision) => {
            let finding = match &decision {
                ProxyDecision::Proxy { proxy, variable } => format!(
                    "HTTPS to {} goes through {proxy} ({variable})",
                    endpoint.host
                ),
                ProxyDecision::Direct {
                    reason: DirectReason::NoProxyConfigured,
                } => {
                    // Set but not for HTTPS: say so, or "no proxy configured" reads as a lie.
                    let unused: Vec<&str> = settings
                        .http_proxy
                        .iter()
                        .map(|p| p.variable.as_str())
                        .chain(settings.ignored.iter().map(|i| i.variable.as_str()))
                        .collect();
                    if unused.is_empty() {
                        "direct: no proxy configured".into()
                    } else {
                        format!(
                            "direct: no proxy for HTTPS ({} set but not used for https://)",
                            unused.join(", ")
                        )
                    }
                }
                ProxyDecision::Direct {
                    reason: DirectReason::DisabledByFlag { .. },
                } => "direct: proxies disabled with --proxy \"\"".into(),
                ProxyDecision::Direct {
                    reason: DirectReason::NoProxyMatched { entry, variable },
                } => {
                    format!(
                        "direct: {variable} entry `{entry}` matches {}",
                        endpoint.host
                    )
                }
            };
            Outcome::pass(
                finding,
                evidence(Decision::Decided {
                    decision: &decision,
                }),
            )
        }
        Err(error) => Outcome::fail(
            RowId::ProxyBadUrl,
            error.to_string(),
            evidence(Decision::Failed { error: &error }),
        ),
    }
}

#[derive(Serialize)]
struct ConnectEvidence<'a> {
    proxy: &'a proxy::ProxyUrl,
    variable: &'a str,
    target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel: Option<&'a proxy::Tunnel>,
    /// The refusal, when the proxy answered CONNECT with an error status.
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a proxy::ConnectReply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    socks: Option<&'a proxy::SocksFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_tls: Option<&'a TlsFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<&'a str>,
    /// The retry of a stalled TLS handshake with the proxy, with small segments (path-MTU black
    /// hole test).
    #[serde(skip_serializing_if = "Option::is_none")]
    clamped_mss: Option<ClampedTunnel<'a>>,
}

#[derive(Serialize)]
struct ClampedTunnel<'a> {
    mss: u32,
    tunnel: &'a proxy::Tunnel,
}

async fn run_connect(ctx: Ctx, role: HostRole) -> Outcome {
    let endpoint = match crate::checks::endpoint_or_skip(&ctx, role) {
        Ok(e) => e,
        Err(skip) => return skip,
    };
    let Ok(ProxyDecision::Proxy { proxy, variable }) = ctx.route(&endpoint) else {
        return Outcome::skip(SkipReason::NotConfigured(format!(
            "no proxy applies to {}",
            endpoint.host
        )));
    };
    let mut evidence = ConnectEvidence {
        proxy: &proxy,
        variable: &variable,
        target: endpoint.to_string(),
        tunnel: None,
        reply: None,
        socks: None,
        proxy_tls: None,
        error: None,
        preview: None,
        clamped_mss: None,
    };
    let err = match ctx.open_tunnel(role).await {
        Ok((_, Some(tunnel))) => {
            let finding = match &tunnel.reply {
                TunnelReply::HttpConnect(reply) => format!(
                    "{} {} from {proxy} in {:.0} ms",
                    reply.status,
                    reply.reason,
                    crate::units::ms(reply.elapsed)
                ),
                TunnelReply::Socks(reply) => format!(
                    "SOCKS{} tunnel to {}:{} granted by {proxy} in {:.0} ms",
                    reply.version,
                    reply.destination,
                    endpoint.port,
                    crate::units::ms(reply.elapsed)
                ),
            };
            evidence.tunnel = Some(&tunnel);
            return Outcome::pass(finding, evidence);
        }
        Ok((_, None)) | Err(OpenError::Unknown | OpenError::Route(_)) => {
            return Outcome::skip(SkipReason::NotConfigured(
                "the proxy's address is not known".into(),
            ));
        }
        Err(OpenError::Connect(e)) => TunnelError::Connect(e),
        Err(OpenError::Tunnel(e)) => e,
    };
    // A TLS handshake with an https:// proxy that stalls: once more with small segments, which
    // a path that drops large packets between here and the proxy lets through.
    let clamped = if matches!(err, TunnelError::ProxyTls(TlsFailure::Timeout { .. })) {
        ctx.open_tunnel_with_mss(role, CLAMPED_MSS)
            .await
            .ok()
            .and_then(|(_, tunnel)| tunnel)
    } else {
        None
    };
    let (row, finding) = match &clamped {
        Some(_) => (
            RowId::PathMtuBlackhole,
            format!(
                "{proxy}: the TLS handshake with the proxy stalls ({err}), but completes with TCP \
                 MSS {CLAMPED_MSS}: large packets from the proxy are dropped on the way here \
                 (path-MTU black hole)"
            ),
        ),
        None => (classify(&err), finding(&proxy, &err)),
    };
    evidence.clamped_mss = clamped.as_ref().map(|tunnel| ClampedTunnel {
        mss: CLAMPED_MSS,
        tunnel,
    });
    evidence.error = Some(err.to_string());
    match &err {
        TunnelError::Status(reply) => evidence.reply = Some(reply),
        TunnelError::NotHttp { preview, .. } => evidence.preview = Some(preview),
        TunnelError::Socks(failure) => evidence.socks = Some(failure),
        TunnelError::ProxyTls(failure) => evidence.proxy_tls = Some(failure),
        _ => {}
    }
    Outcome::fail(row, finding, evidence)
}

/// The finding for a failed tunnel: the error, and for a demand for authentication the schemes
/// the proxy offers and whether the URL's Basic credentials can meet it.
fn finding(proxy: &proxy::ProxyUrl, err: &TunnelError) -> String {
    let TunnelError::Status(reply) = err else {
        return format!("{proxy}: {err}");
    };
    let offered = challenges(reply);
    if !matches!(reply.status, 401 | 407) || offered.is_empty() {
        return format!("{proxy}: {err}");
    }
    let schemes: Vec<&str> = offered
        .iter()
        .map(|c| c.split_whitespace().next().unwrap_or_default())
        .collect();
    let basic = schemes.iter().any(|s| s.eq_ignore_ascii_case("basic"));
    let sent = if proxy.auth.is_some() {
        "the URL's credentials were sent as Basic"
    } else {
        "the URL carries no credentials"
    };
    let verdict = if basic {
        "Basic is among them"
    } else {
        "Basic is not among them, so no user:password in the URL can satisfy it"
    };
    format!(
        "{proxy}: {err}; it offers {} ({sent}); {verdict}",
        schemes.join(", ")
    )
}

/// The authentication challenges of a refusal: `Proxy-Authenticate`, or `WWW-Authenticate` from
/// tinyproxy, which answers wrong credentials with 401.
fn challenges(reply: &proxy::ConnectReply) -> &[String] {
    if reply.proxy_authenticate.is_empty() {
        &reply.www_authenticate
    } else {
        &reply.proxy_authenticate
    }
}

/// The catalog row for a failed tunnel.
pub(crate) fn classify(err: &TunnelError) -> RowId {
    match err {
        TunnelError::Status(reply) if matches!(reply.status, 401 | 407) => {
            let offered = challenges(reply);
            let basic = offered.iter().any(|c| {
                c.split_whitespace()
                    .next()
                    .is_some_and(|s| s.eq_ignore_ascii_case("basic"))
            });
            if offered.is_empty() || basic {
                RowId::ProxyAuthRequired
            } else {
                RowId::ProxyAuthScheme
            }
        }
        TunnelError::Status(reply) if reply.status >= 500 => RowId::ProxyError,
        TunnelError::Status(_) => RowId::ProxyDenied,
        TunnelError::NotHttp { .. } | TunnelError::HeadTooLong { .. } => RowId::ProxyNotHttp,
        TunnelError::Timeout(_) | TunnelError::ProxyTls(TlsFailure::Timeout { .. }) => {
            RowId::Timeout
        }
        TunnelError::Connect(_) => RowId::ProxyUnreachable,
        TunnelError::SpeaksHttp { .. } | TunnelError::SpeaksTls { .. } => {
            RowId::ProxySchemeMismatch
        }
        TunnelError::ProxyTls(
            TlsFailure::UnknownIssuer { .. } | TlsFailure::IncompleteChain { .. },
        ) => RowId::ProxyTlsUntrusted,
        TunnelError::ProxyTls(_) => RowId::ProxyTlsHandshake,
        TunnelError::Socks(failure) => match failure.kind {
            SocksFailureKind::NotAllowed => RowId::ProxyDenied,
            SocksFailureKind::NoAcceptableAuth | SocksFailureKind::AuthFailed => {
                RowId::ProxyAuthRequired
            }
            SocksFailureKind::NotSocks => RowId::ProxyNotHttp,
            SocksFailureKind::Timeout => RowId::Timeout,
            SocksFailureKind::Unreachable
            | SocksFailureKind::Refused
            | SocksFailureKind::ServerFailure
            | SocksFailureKind::Unsupported
            | SocksFailureKind::Io => RowId::ProxyError,
        },
        TunnelError::Closed | TunnelError::Io(_) | TunnelError::BadTarget(_) => RowId::ProxyError,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use test_case::test_case;

    use super::*;
    use crate::net::proxy::ConnectReply;

    fn status(code: u16) -> TunnelError {
        TunnelError::Status(ConnectReply {
            status: code,
            reason: String::new(),
            proxy_agent: None,
            server: None,
            proxy_authenticate: vec![],
            www_authenticate: vec![],
            elapsed: Duration::ZERO,
        })
    }

    fn challenged(code: u16, offered: &[&str]) -> TunnelError {
        let TunnelError::Status(mut reply) = status(code) else {
            unreachable!()
        };
        reply.proxy_authenticate = offered.iter().map(|s| (*s).to_owned()).collect();
        TunnelError::Status(reply)
    }

    #[test_case(status(407), RowId::ProxyAuthRequired; "407")]
    #[test_case(challenged(407, &["Negotiate", "Basic realm=\"corp\""]), RowId::ProxyAuthRequired; "407 offering basic")]
    #[test_case(challenged(407, &["Negotiate", "NTLM"]), RowId::ProxyAuthScheme; "407 without basic")]
    #[test_case(TunnelError::SpeaksHttp { status_line: "HTTP/1.1 400 Bad Request".into() }, RowId::ProxySchemeMismatch; "https on a plain proxy")]
    #[test_case(TunnelError::ProxyTls(TlsFailure::UnknownIssuer { issuer: "CN=x".into() }), RowId::ProxyTlsUntrusted; "proxy certificate untrusted")]
    #[test_case(TunnelError::ProxyTls(TlsFailure::HostnameMismatch { presented: vec![] }), RowId::ProxyTlsHandshake; "proxy certificate for another name")]
    #[test_case(status(401), RowId::ProxyAuthRequired; "401 from tinyproxy on wrong credentials")]
    #[test_case(status(403), RowId::ProxyDenied; "403")]
    #[test_case(status(400), RowId::ProxyDenied; "other 4xx")]
    #[test_case(status(502), RowId::ProxyError; "502")]
    #[test_case(TunnelError::NotHttp { preview: String::new(), looks_like_tls: true }, RowId::ProxyNotHttp; "not http")]
    #[test_case(TunnelError::Timeout(Duration::from_secs(1)), RowId::Timeout; "timeout")]
    #[test_case(TunnelError::Closed, RowId::ProxyError; "closed")]
    #[allow(clippy::needless_pass_by_value)] // test_case hands over values
    fn classifies(err: TunnelError, row: RowId) {
        assert_eq!(classify(&err), row);
    }

    #[test]
    fn a_demand_for_authentication_names_the_schemes() {
        let proxy = proxy::ProxyUrl::parse("http://u:pw@p:3128").unwrap();
        let found = finding(&proxy, &challenged(407, &["Negotiate", "NTLM"]));
        assert!(
            found.contains("offers Negotiate, NTLM")
                && found.contains("sent as Basic")
                && found.contains("Basic is not among them"),
            "{found}"
        );
    }
}
