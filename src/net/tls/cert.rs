//! The facts about one presented certificate that a report needs, parsed with x509-parser.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;

/// One certificate as the server presented it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Subject distinguished name, e.g. `CN=myorg-myaccount.snowflakecomputing.com`.
    pub subject: String,
    /// Issuer distinguished name, e.g. `C=US, O=Zscaler Inc., CN=Zscaler Intermediate Root CA`.
    pub issuer: String,
    /// DNS names and IP addresses from subjectAltName (the names TLS matches against).
    pub sans: Vec<String>,
    /// Start of validity (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER encoding, lowercase hex without separators.
    pub sha256: String,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// Subject equals issuer: a root (or a self-signed leaf), so nothing above it was left out.
    pub self_issued: bool,
    /// URLs from the authorityInfoAccess caIssuers entries: where the missing issuer can be fetched.
    pub aia_ca_issuers: Vec<String>,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn from_der(
        der: &[u8],
    ) -> Result<Self, x509_parser::nom::Err<x509_parser::error::X509Error>> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)?;
        let sans = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(san_string)
                .collect(),
            _ => Vec::new(),
        };
        let aia_ca_issuers = cert
            .iter_extensions()
            .filter_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityInfoAccess(aia) => Some(aia),
                _ => None,
            })
            .flat_map(|aia| &aia.accessdescs)
            .filter(|desc| desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS)
            .filter_map(|desc| match desc.access_location {
                GeneralName::URI(uri) => Some(uri.to_owned()),
                _ => None,
            })
            .collect();
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            sha256: sha256_hex(der),
            is_ca: cert.is_ca(),
            self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
            aia_ca_issuers,
        })
    }
}

fn san_string(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes)
                .ok()
                .map(|b| IpAddr::from(b).to_string()),
            16 => <[u8; 16]>::try_from(*bytes)
                .ok()
                .map(|b| IpAddr::from(b).to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Lowercase hex SHA-256, the form `openssl x509 -fingerprint -sha256` prints minus the colons.
pub(crate) fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Example");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    #[test]
    fn parses_leaf_names_dates_and_fingerprint() {
        let root = ca("Test Root");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.not_before = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        params.not_after = time::macros::datetime!(2027-01-02 03:04:05 UTC);
        let leaf = params
            .signed_by(&KeyPair::generate().unwrap(), &root)
            .unwrap();

        let info = CertInfo::from_der(leaf.der()).unwrap();
        assert_eq!(info.subject, "CN=localhost");
        // rcgen's default parameters already hold a CN, so it stays first.
        assert_eq!(info.issuer, "CN=Test Root, O=Example");
        assert_eq!(info.sans, ["localhost", "127.0.0.1"]);
        assert_eq!(
            info.not_before,
            time::macros::datetime!(2026-01-02 03:04:05 UTC)
        );
        assert_eq!(
            info.not_after,
            time::macros::datetime!(2027-01-02 03:04:05 UTC)
        );
        assert_eq!(info.sha256, sha256_hex(leaf.der()));
        assert_eq!(info.sha256.len(), 64);
        assert!(!info.is_ca && !info.self_issued);
        // AIA parsing is proven end to end by tests/integration/tls_probe.rs (the
        // missing-intermediate leaf).
        assert!(info.aia_ca_issuers.is_empty());
    }

    #[test]
    fn root_is_ca_and_self_issued() {
        let info = CertInfo::from_der(ca("Test Root").der()).unwrap();
        assert!(info.is_ca && info.self_issued);
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(CertInfo::from_der(b"not a certificate").is_err());
    }
}
