//! The troubleshooting catalog: every failure netcheck can tell apart, with its symptom, likely
//! cause and resolution. The words live in `checks/*.toml` (embedded at compile time) so a network
//! engineer can read and extend them; the code only names *which* row with a [`RowId`].

use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use strum::{EnumIter, IntoEnumIterator};

/// The catalog files, one per area, embedded into the binary.
const FILES: &[(&str, &str)] = &[
    ("network", include_str!("../checks/network.toml")),
    ("tls", include_str!("../checks/tls.toml")),
    ("proxy", include_str!("../checks/proxy.toml")),
    ("api", include_str!("../checks/api.toml")),
    ("local", include_str!("../checks/local.toml")),
    ("stage", include_str!("../checks/stage.toml")),
];

/// A catalog row id. These strings are an interface (JSON, `JUnit`, `netcheck explain`): a test
/// pins the list, and every variant must have exactly one row and every row a variant.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    Serialize,
    Deserialize,
)]
#[strum(serialize_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum RowId {
    ConnectionRefused,
    Timeout,
    TcpUnreachable,
    TcpReset,
    PathMtuBlackhole,
    DnsNxdomain,
    DnsServfail,
    DnsNoAnswer,
    DnsTimeout,
    DnsResolverUnreachable,
    DnsLocalConfig,
    DnsPrivateAddress,
    DnsPublicAddress,
    DnsSinkhole,
    TlsInspection,
    TlsUntrusted,
    TlsIncompleteChain,
    TlsExpired,
    TlsNotYetValid,
    TlsExpiring,
    TlsHostname,
    TlsVersion,
    TlsLegacyOnly,
    TlsReset,
    TlsHandshake,
    ProxyBadUrl,
    ProxyUnreachable,
    ProxyAuthRequired,
    ProxyDenied,
    ProxyError,
    ProxyNotHttp,
    ProxySchemeMismatch,
    ProxyAuthScheme,
    ProxyTlsUntrusted,
    ProxyTlsHandshake,
    ProxyBlockPage,
    ProxyIdleTimeout,
    NetworkPolicy,
    Forbidden,
    JwtRejected,
    TokenRejected,
    KeyPermissions,
    ClockSkew,
    DiscoveryFailed,
    DiscoveryUnexpectedHost,
    PipeNotFound,
    ChannelConflict,
    Throttled,
    ServerError,
    StaleContinuationToken,
    ChannelStatus,
    CommitTimeout,
    RowsErrored,
    RowsDuplicated,
    LatencyBudget,
    ClientCpu,
    ApiUnreachable,
    ApiError,
    AnswerTooLarge,
    ChannelLeftBehind,
    Redirected,
    AllowlistUnreachable,
    LocalOpenFiles,
    LocalEphemeralPorts,
    TokenFilePermissions,
    OauthInvalidRequest,
    OauthInvalidClient,
    OauthInvalidGrant,
    OauthUnauthorizedClient,
    OauthUnsupportedGrantType,
    OauthInvalidScope,
    OauthIdpAnswer,
    OauthTokenInvalid,
    OauthTokenWrongUser,
    OauthTokenExpired,
    StageLocationUnusable,
    StageBlockPage,
    StageReset,
    StageTimeout,
}

impl RowId {
    /// The id as it appears in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The catalog row for this id. Every id has one (a test enforces it).
    #[must_use]
    pub fn row(self) -> &'static Row {
        rows()
            .iter()
            .find(|r| r.id == self)
            .expect("every RowId has a catalog row")
    }
}

/// One row of the troubleshooting table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: RowId,
    /// The catalog file (area) the row comes from: network, tls, proxy, api, local, stage.
    pub area: &'static str,
    pub symptom: String,
    pub cause: String,
    pub resolution: String,
}

#[derive(Deserialize)]
struct File {
    row: Vec<RawRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    id: String,
    symptom: String,
    cause: String,
    resolution: String,
}

/// All rows, in catalog order. The embedded files are checked by tests, so a parse failure here
/// is a build defect, not a user error.
#[must_use]
pub fn rows() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| parse(FILES).expect("embedded catalog is valid"))
}

fn parse(files: &[(&'static str, &str)]) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (area, text) in files {
        let file: File = toml::from_str(text).map_err(|e| format!("checks/{area}.toml: {e}"))?;
        for raw in file.row {
            let id = RowId::from_str(&raw.id)
                .map_err(|_| format!("checks/{area}.toml: row `{}` has no RowId", raw.id))?;
            rows.push(Row {
                id,
                area,
                symptom: raw.symptom,
                cause: raw.cause,
                resolution: raw.resolution.trim().to_owned(),
            });
        }
    }
    Ok(rows)
}

/// Looks a row up by its id string (`netcheck explain ID`).
#[must_use]
pub fn find(id: &str) -> Option<&'static Row> {
    RowId::from_str(id).ok().map(RowId::row)
}

/// Every id, in declaration order.
pub fn ids() -> impl Iterator<Item = RowId> {
    RowId::iter()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_row_parses_and_ids_are_unique() {
        let rows = parse(FILES).unwrap();
        let mut seen = HashSet::new();
        for r in &rows {
            assert!(seen.insert(r.id), "duplicate catalog row {}", r.id);
            assert!(!r.symptom.is_empty() && !r.cause.is_empty() && !r.resolution.is_empty());
        }
    }

    #[test]
    fn every_row_id_has_a_row() {
        let rows = rows();
        for id in RowId::iter() {
            assert!(
                rows.iter().any(|r| r.id == id),
                "RowId {id} has no row in checks/*.toml"
            );
        }
    }

    #[test]
    fn unknown_row_is_rejected() {
        let bad = [(
            "x",
            "[[row]]\nid = \"no-such-row\"\nsymptom = \"s\"\ncause = \"c\"\nresolution = \"r\"\n",
        )];
        assert!(parse(&bad).unwrap_err().contains("no-such-row"));
    }

    #[test]
    fn seed_rows_exist() {
        for id in [
            "connection-refused",
            "tls-inspection",
            "timeout",
            "network-policy",
        ] {
            assert!(find(id).is_some(), "seed row {id} missing");
        }
    }

    /// The ids are an interface: changing this list is a breaking change to JSON and `JUnit`.
    #[test]
    fn id_list_is_pinned() {
        let ids: Vec<&str> = RowId::iter().map(RowId::as_str).collect();
        assert_eq!(
            ids.join(" "),
            "connection-refused timeout tcp-unreachable tcp-reset path-mtu-blackhole dns-nxdomain dns-servfail \
             dns-no-answer dns-timeout dns-resolver-unreachable dns-local-config dns-private-address dns-public-address dns-sinkhole tls-inspection \
             tls-untrusted tls-incomplete-chain tls-expired tls-not-yet-valid tls-expiring \
             tls-hostname tls-version tls-legacy-only tls-reset tls-handshake proxy-bad-url \
             proxy-unreachable proxy-auth-required proxy-denied proxy-error proxy-not-http \
             proxy-scheme-mismatch proxy-auth-scheme proxy-tls-untrusted proxy-tls-handshake \
             proxy-block-page proxy-idle-timeout network-policy forbidden jwt-rejected token-rejected key-permissions clock-skew \
             discovery-failed discovery-unexpected-host pipe-not-found channel-conflict throttled \
             server-error stale-continuation-token channel-status commit-timeout rows-errored \
             rows-duplicated latency-budget client-cpu api-unreachable api-error answer-too-large channel-left-behind redirected \
             allowlist-unreachable local-open-files local-ephemeral-ports token-file-permissions oauth-invalid-request \
             oauth-invalid-client oauth-invalid-grant oauth-unauthorized-client \
             oauth-unsupported-grant-type oauth-invalid-scope oauth-idp-answer oauth-token-invalid \
             oauth-token-wrong-user oauth-token-expired stage-location-unusable stage-block-page \
             stage-reset stage-timeout"
        );
    }
}
