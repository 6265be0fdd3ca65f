//! `tls.account`: one handshake offering TLS 1.3 and 1.2 and one offering only 1.2, over the
//! host's route (direct or through the proxy tunnel), so the report says which versions the path
//! supports; the chain is recorded even when verification fails, and a failure is told apart
//! precisely, including TLS inspection by a proxy. Pairs with `checks/tls.toml`.

use serde::Serialize;
use time::OffsetDateTime;

use crate::catalog::RowId;
use crate::checks::{host_check, proxy, tcp};
use crate::context::{Ctx, HostRole, OpenError};
use crate::net::connect::CLAMPED_MSS;
use crate::net::tls::{self, CertInfo, Negotiated, TlsFailure, TlsVersions};
use crate::outcome::{Outcome, Status};

host_check!(
    ACCOUNT,
    "tls.account",
    "TLS: handshake and certificate chain",
    ["tcp.account", "proxy.connect"],
    HostRole::Account
);
host_check!(
    INGEST,
    "tls.ingest",
    "TLS: ingest host handshake and chain",
    ["tcp.ingest"],
    HostRole::Ingest
);
host_check!(
    IDP,
    "tls.idp",
    "TLS: OAuth token endpoint handshake and chain",
    ["tcp.idp"],
    HostRole::Idp
);
host_check!(
    STAGE,
    "tls.stage",
    "TLS: stage storage host handshake and chain",
    ["tcp.stage"],
    stage
);

/// Certificates closer than this to their notAfter earn a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// One handshake attempt as evidence.
#[derive(Serialize)]
struct Attempt {
    offered: &'static str,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    elapsed: std::time::Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    negotiated: Option<Negotiated>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<TlsFailure>,
    /// The stream could not be opened at all (connect or tunnel).
    #[serde(skip_serializing_if = "Option::is_none")]
    open_error: Option<String>,
    #[serde(skip)]
    open_row: Option<RowId>,
    #[serde(skip)]
    chain_der: Vec<rustls_pki_types::CertificateDer<'static>>,
    #[serde(skip)]
    chain: Vec<CertInfo>,
}

impl Attempt {
    /// The attempt a completed probe makes.
    fn probed(offered: &'static str, p: tls::TlsProbe) -> Self {
        Self {
            offered,
            elapsed: p.elapsed,
            negotiated: p.negotiated,
            failure: p.result.err(),
            open_error: None,
            open_row: None,
            chain_der: p.chain_der,
            chain: p.chain,
        }
    }
}

#[derive(Serialize)]
struct ClampedAttempt<'a> {
    mss: u32,
    #[serde(flatten)]
    attempt: &'a Attempt,
}

#[derive(Serialize)]
struct Evidence<'a> {
    server_name: &'a str,
    via_proxy: bool,
    handshakes: [&'a Attempt; 2],
    /// The retry of a stalled handshake with small segments (path-MTU black hole test).
    #[serde(skip_serializing_if = "Option::is_none")]
    clamped_mss: Option<ClampedAttempt<'a>>,
    /// The chain the server presented, end entity first (from the first handshake that saw one).
    chain: &'a [CertInfo],
    #[serde(skip_serializing_if = "Option::is_none")]
    inspection_product: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    trusted_by_os_store: bool,
}

async fn run(ctx: Ctx, role: HostRole) -> Outcome {
    let endpoint = match crate::checks::endpoint_or_skip(&ctx, role) {
        Ok(e) => e,
        Err(skip) => return skip,
    };
    let via_proxy = matches!(
        ctx.route(&endpoint),
        Ok(crate::net::proxy::ProxyDecision::Proxy { .. })
    );
    let attempt = |versions, offered| {
        let ctx = ctx.clone();
        let host = endpoint.host.clone();
        async move {
            match ctx.open_stream(role).await {
                Ok(stream) => {
                    let p = tls::probe(
                        stream,
                        &host,
                        &ctx.net.trust,
                        versions,
                        ctx.settings.timeout,
                    )
                    .await;
                    Attempt::probed(offered, p)
                }
                Err(e) => Attempt {
                    offered,
                    elapsed: std::time::Duration::ZERO,
                    negotiated: None,
                    failure: None,
                    open_row: Some(open_row(&e)),
                    open_error: Some(e.to_string()),
                    chain_der: vec![],
                    chain: vec![],
                },
            }
        }
    };
    let (modern, legacy) = tokio::join!(
        attempt(TlsVersions::Both, "TLSv1.3+TLSv1.2"),
        attempt(TlsVersions::Tls12Only, "TLSv1.2")
    );
    // A handshake that stalls: once more with small segments, which a path that drops large
    // packets lets through. Through a proxy the segments that are kept small are the proxy's
    // to this machine, so a black hole beyond the proxy still stalls (and is not named).
    let clamped = if matches!(modern.failure, Some(TlsFailure::Timeout { .. })) {
        clamped_attempt(&ctx, role, &endpoint.host).await
    } else {
        None
    };
    let seen = if modern.chain.is_empty() {
        &legacy
    } else {
        &modern
    };
    let issuer = seen
        .chain
        .last()
        .map(|c| c.issuer.as_str())
        .unwrap_or_default();
    let product = seen
        .chain
        .iter()
        .find_map(|c| tls::inspection_product(&c.issuer));
    let os_trusts = matches!(
        modern.failure,
        Some(TlsFailure::UnknownIssuer { .. } | TlsFailure::IncompleteChain { .. })
    ) && tls::trusted_by_os_store(&seen.chain_der, &endpoint.host);
    let judgement = match mtu_blackhole(&modern, clamped.as_ref(), via_proxy) {
        Some(found) => found,
        _ => judge(
            &modern,
            &legacy,
            Inspection {
                via_proxy,
                product,
                os_trusts,
                issuer,
            },
            OffsetDateTime::now_utc(),
        ),
    };
    let evidence = Evidence {
        server_name: &endpoint.host,
        via_proxy,
        handshakes: [&modern, &legacy],
        clamped_mss: clamped.as_ref().map(|attempt| ClampedAttempt {
            mss: CLAMPED_MSS,
            attempt,
        }),
        chain: &seen.chain,
        inspection_product: product,
        trusted_by_os_store: os_trusts,
    };
    let (status, finding) = judgement;
    Outcome::new(status, finding, evidence)
}

/// One handshake over the host's route, the connection this machine opens (to the host, or to
/// the proxy) advertising [`CLAMPED_MSS`]; `None` when the route cannot be opened (nothing to
/// learn then).
async fn clamped_attempt(ctx: &Ctx, role: HostRole, host: &str) -> Option<Attempt> {
    let (stream, _) = ctx.open_tunnel_with_mss(role, CLAMPED_MSS).await.ok()?;
    let p = tls::probe(
        stream,
        host,
        &ctx.net.trust,
        TlsVersions::Both,
        ctx.settings.timeout,
    )
    .await;
    Some(Attempt::probed("TLSv1.3+TLSv1.2", p))
}

/// A path-MTU black hole: the handshake stalled, and the one with small segments got through.
/// Through a proxy, the small segments were the proxy's, so the hole is on the leg to it.
fn mtu_blackhole(
    stalled: &Attempt,
    clamped: Option<&Attempt>,
    via_proxy: bool,
) -> Option<(Status, String)> {
    let small = clamped?;
    let (leg, sender) = if via_proxy {
        (" on the connection to the proxy", "the proxy")
    } else {
        ("", "the server")
    };
    (small.negotiated.is_some() || !small.chain.is_empty()).then(|| {
        (
            Status::Fail(RowId::PathMtuBlackhole),
            format!(
                "the handshake stalls after the ClientHello ({}), but completes with TCP MSS \
                 {CLAMPED_MSS}{leg}: large packets from {sender} are dropped on the path \
                 (path-MTU black hole)",
                stalled
                    .failure
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        )
    })
}

/// What tells TLS inspection apart from a merely untrusted certificate.
#[derive(Clone, Copy)]
struct Inspection<'a> {
    via_proxy: bool,
    product: Option<&'static str>,
    os_trusts: bool,
    issuer: &'a str,
}

/// The verdict, catalog row and finding for a pair of handshakes.
fn judge(
    modern: &Attempt,
    legacy: &Attempt,
    insp: Inspection<'_>,
    now: OffsetDateTime,
) -> (Status, String) {
    if let (Some(row), Some(err)) = (modern.open_row, &modern.open_error) {
        return (
            Status::Fail(row),
            format!("could not open a connection for the handshake: {err}"),
        );
    }
    let version_refused =
        |a: &Attempt| matches!(a.failure, Some(TlsFailure::ProtocolVersion { .. }));
    match (&modern.negotiated, &modern.failure) {
        (Some(n), _) => {
            if let Some(leaf) = modern.chain.first() {
                let left = leaf.not_after - now;
                if left < time::Duration::days(EXPIRY_WARNING_DAYS) {
                    let days = left.whole_days();
                    return (
                        Status::Warn(RowId::TlsExpiring),
                        format!(
                            "{} expires in {days} day(s) ({})",
                            leaf.subject, leaf.not_after
                        ),
                    );
                }
            }
            let suite = &n.cipher_suite;
            if n.version == "TLSv1.2" {
                return (
                    Status::Warn(RowId::TlsLegacyOnly),
                    format!("TLS 1.3 offered but TLSv1.2 negotiated ({suite})"),
                );
            }
            let also = if legacy.negotiated.is_some() {
                "TLS 1.2 also accepted"
            } else if version_refused(legacy) {
                "TLS 1.3 only: TLS 1.2 refused"
            } else {
                "TLS 1.2 not confirmed"
            };
            (
                Status::Pass,
                format!("{} {suite}; {also}; chain verified", n.version),
            )
        }
        (None, Some(TlsFailure::ProtocolVersion { detail })) => {
            match (&legacy.negotiated, &legacy.failure) {
                (Some(n), _) => (
                    Status::Warn(RowId::TlsLegacyOnly),
                    format!(
                        "only a TLS 1.2-only ClientHello succeeds ({})",
                        n.cipher_suite
                    ),
                ),
                (None, Some(TlsFailure::ProtocolVersion { .. }) | None) => (
                    Status::Fail(RowId::TlsVersion),
                    format!("no TLS 1.2 or 1.3 handshake: {detail}"),
                ),
                (None, Some(other)) => classify(other, &insp),
            }
        }
        (None, Some(failure)) => classify(failure, &insp),
        (None, None) => (
            Status::Fail(RowId::TlsHandshake),
            "the handshake neither completed nor failed".into(),
        ),
    }
}

/// The catalog row and finding for a failed handshake.
fn classify(failure: &TlsFailure, insp: &Inspection<'_>) -> (Status, String) {
    let row = match failure {
        TlsFailure::Expired { .. } => RowId::TlsExpired,
        TlsFailure::NotYetValid { .. } => RowId::TlsNotYetValid,
        TlsFailure::HostnameMismatch { .. } => RowId::TlsHostname,
        TlsFailure::ProtocolVersion { .. } => RowId::TlsVersion,
        TlsFailure::ResetAfterHello { .. } => RowId::TlsReset,
        TlsFailure::Timeout { .. } => RowId::Timeout,
        TlsFailure::Other { .. } => RowId::TlsHandshake,
        TlsFailure::HttpAnswer { .. } => {
            let who = if insp.via_proxy {
                "the tunnel opened, then the proxy"
            } else {
                "a middlebox in the path"
            };
            return (
                Status::Fail(RowId::ProxyBlockPage),
                format!("{who} answered the ClientHello with an HTTP page: {failure}"),
            );
        }
        // An untrusted issuer — whether the server sent it or not — is inspection when a proxy
        // is in the path, the issuer names an inspection product, or only the OS store trusts
        // it; otherwise the server's own chain is at fault.
        TlsFailure::UnknownIssuer { .. } | TlsFailure::IncompleteChain { .. } => {
            if insp.via_proxy || insp.product.is_some() || insp.os_trusts {
                let why = match (insp.product, insp.via_proxy, insp.os_trusts) {
                    (Some(p), _, _) => format!("the issuer looks like {p}"),
                    (None, true, _) => "a proxy is in the path".to_owned(),
                    _ => {
                        "only this machine's OS trust store (a corporate CA) accepts it".to_owned()
                    }
                };
                return (
                    Status::Fail(RowId::TlsInspection),
                    format!(
                        "certificate issued by {}: TLS inspection ({why})",
                        insp.issuer
                    ),
                );
            }
            if matches!(failure, TlsFailure::IncompleteChain { .. }) {
                RowId::TlsIncompleteChain
            } else {
                RowId::TlsUntrusted
            }
        }
    };
    (Status::Fail(row), failure.to_string())
}

/// The catalog row when no stream could be opened for the handshake.
pub(crate) fn open_row(e: &OpenError) -> RowId {
    match e {
        OpenError::Connect(c) => tcp::classify(c.kind),
        OpenError::Tunnel(t) => proxy::classify(t),
        OpenError::Route(_) => RowId::ProxyBadUrl,
        OpenError::Unknown => RowId::TlsHandshake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(negotiated: Option<&str>, failure: Option<TlsFailure>) -> Attempt {
        Attempt {
            offered: "x",
            elapsed: std::time::Duration::ZERO,
            negotiated: negotiated.map(|v| Negotiated {
                version: v.to_owned(),
                cipher_suite: "SUITE".into(),
                alpn: None,
                key_exchange: None,
            }),
            failure,
            open_error: None,
            open_row: None,
            chain_der: vec![],
            chain: vec![],
        }
    }

    fn plain() -> Inspection<'static> {
        Inspection {
            via_proxy: false,
            product: None,
            os_trusts: false,
            issuer: "CN=Some CA",
        }
    }

    fn version_refused() -> TlsFailure {
        TlsFailure::ProtocolVersion {
            detail: "alert".into(),
        }
    }

    fn unknown() -> TlsFailure {
        TlsFailure::UnknownIssuer {
            issuer: "CN=Some CA".into(),
        }
    }

    fn row(j: &(Status, String)) -> Status {
        j.0.clone()
    }

    #[test]
    fn judges_version_support() {
        let now = OffsetDateTime::now_utc();
        let both = judge(
            &attempt(Some("TLSv1.3"), None),
            &attempt(Some("TLSv1.2"), None),
            plain(),
            now,
        );
        assert_eq!(row(&both), Status::Pass);
        let only13 = judge(
            &attempt(Some("TLSv1.3"), None),
            &attempt(None, Some(version_refused())),
            plain(),
            now,
        );
        assert_eq!(only13.0, Status::Pass);
        assert!(only13.1.contains("TLS 1.3 only"));
        let only12 = judge(
            &attempt(Some("TLSv1.2"), None),
            &attempt(Some("TLSv1.2"), None),
            plain(),
            now,
        );
        assert_eq!(row(&only12), Status::Warn(RowId::TlsLegacyOnly));
        let none = judge(
            &attempt(None, Some(version_refused())),
            &attempt(None, Some(version_refused())),
            plain(),
            now,
        );
        assert_eq!(row(&none), Status::Fail(RowId::TlsVersion));
    }

    fn incomplete() -> TlsFailure {
        TlsFailure::IncompleteChain {
            issuer: "CN=Lab Intermediate".into(),
            ca_issuers: vec![],
        }
    }

    #[test]
    fn tells_inspection_from_untrusted() {
        let now = OffsetDateTime::now_utc();
        for (failure, plain_row) in [
            (unknown(), RowId::TlsUntrusted),
            (incomplete(), RowId::TlsIncompleteChain),
        ] {
            let alone = judge(
                &attempt(None, Some(failure.clone())),
                &attempt(None, Some(failure.clone())),
                plain(),
                now,
            );
            assert_eq!(row(&alone), Status::Fail(plain_row));
            tells_inspection(&failure, now);
        }
    }

    /// With a proxy in the path, an inspection-like issuer or only the OS store trusting it, the
    /// same failure is TLS inspection.
    fn tells_inspection(failure: &TlsFailure, now: OffsetDateTime) {
        for insp in [
            Inspection {
                via_proxy: true,
                ..plain()
            },
            Inspection {
                product: Some("Zscaler"),
                ..plain()
            },
            Inspection {
                os_trusts: true,
                ..plain()
            },
        ] {
            let j = judge(
                &attempt(None, Some(failure.clone())),
                &attempt(None, Some(failure.clone())),
                insp,
                now,
            );
            assert_eq!(row(&j), Status::Fail(RowId::TlsInspection));
        }
    }
}
