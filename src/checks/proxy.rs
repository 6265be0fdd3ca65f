//! `proxy.env` (which proxy, if any, applies to the host and why) and `proxy.connect` (an HTTP
//! CONNECT through it, with the proxy's own status code: 407, 403 and 5xx each mean something
//! else). Pairs with `checks/proxy.toml`.

use serde::Serialize;

use crate::catalog::RowId;
use crate::checks::host_check;
use crate::context::{Ctx, HostRole};
use crate::net::connect;
use crate::net::proxy::{
    self, DirectReason, NoProxyEntries, ProxyDecision, ProxySettings, TunnelError,
};
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
    "Proxy: CONNECT tunnel to the account host",
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
    reply: Option<&'a proxy::ConnectReply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<&'a str>,
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
    if !proxy.scheme.supports_connect() {
        return Outcome::skip(SkipReason::NotConfigured(format!(
            "{} proxies take no HTTP CONNECT: netcheck cannot check through them",
            proxy.scheme
        )));
    }
    let Some(addr) = ctx.host_facts(role).reachable.get().copied() else {
        return Outcome::skip(SkipReason::NotConfigured(
            "the proxy's address is not known".into(),
        ));
    };
    let timeout = ctx.settings.timeout;
    let target = endpoint.to_string();
    let mut evidence = ConnectEvidence {
        proxy: &proxy,
        variable: &variable,
        target,
        reply: None,
        error: None,
        preview: None,
    };
    let stream = match connect::connect(addr, timeout).await {
        Ok((s, _)) => s,
        Err(e) => {
            evidence.error = Some(e.to_string());
            return Outcome::fail(
                RowId::ProxyUnreachable,
                format!("cannot reach the proxy: {e}"),
                evidence,
            );
        }
    };
    match proxy::connect_tunnel(stream, &proxy, &endpoint.host, endpoint.port, timeout).await {
        Ok((_, reply)) => {
            let finding = format!(
                "{} {} from {proxy} in {:.0} ms",
                reply.status,
                reply.reason,
                crate::units::ms(reply.elapsed)
            );
            evidence.reply = Some(&reply);
            Outcome::pass(finding, evidence)
        }
        Err(err) => {
            let row = classify(&err);
            let finding = format!("{proxy}: {err}");
            evidence.error = Some(err.to_string());
            match &err {
                TunnelError::Status(reply) => evidence.reply = Some(reply),
                TunnelError::NotHttp { preview, .. } => evidence.preview = Some(preview),
                _ => {}
            }
            Outcome::fail(row, finding, evidence)
        }
    }
}

/// The catalog row for a failed CONNECT.
pub(crate) fn classify(err: &TunnelError) -> RowId {
    match err {
        // tinyproxy answers wrong credentials with 401 + WWW-Authenticate rather than 407.
        TunnelError::Status(reply) if matches!(reply.status, 401 | 407) => RowId::ProxyAuthRequired,
        TunnelError::Status(reply) if reply.status >= 500 => RowId::ProxyError,
        TunnelError::Status(_) => RowId::ProxyDenied,
        TunnelError::NotHttp { .. }
        | TunnelError::HeadTooLong { .. }
        | TunnelError::UnsupportedScheme(_) => RowId::ProxyNotHttp,
        TunnelError::Timeout(_) => RowId::Timeout,
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

    #[test_case(status(407), RowId::ProxyAuthRequired; "407")]
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
}
