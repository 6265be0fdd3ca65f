//! Certificates and TLS configurations: a CA made at start, server certificates for every name
//! the emulator answers to, and the broken variants the TLS faults serve.

use std::collections::HashMap;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::EmulatorError;

/// Which certificate a connection gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CertVariant {
    /// Valid, from the CA in `ca.pem`, for all served names.
    Good,
    /// Expired yesterday.
    Expired,
    /// Valid, but only for `wrong-host.invalid`.
    WrongHost,
    /// Valid names and dates, from a CA nobody was given.
    UnknownCa,
}

/// The CA PEM and a rustls config per (certificate, TLS 1.2 only).
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    configs: HashMap<(CertVariant, bool), Arc<ServerConfig>>,
}

/// The name the wrong-host certificate is issued for.
pub(crate) const WRONG_HOST: &str = "wrong-host.invalid";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

fn new_ca(name: &str) -> Result<Ca, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "netcheck emulator");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    })
}

fn leaf(
    ca: &Ca,
    names: &[String],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), rcgen::Error> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca.issuer)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((vec![cert.der().clone(), ca.der.clone()], key))
}

impl TlsMaterial {
    /// Makes the CA, the four certificates and the eight server configs. `names` are the DNS
    /// names and IP addresses the good certificate covers.
    pub(crate) fn generate(names: &[String]) -> Result<Self, EmulatorError> {
        let ca = new_ca("netcheck emulator CA")?;
        let stranger = new_ca("unknown CA")?;
        let now = OffsetDateTime::now_utc();
        let (valid_from, valid_to) = (now - Duration::days(1), now + Duration::days(90));
        let chains = [
            (CertVariant::Good, leaf(&ca, names, valid_from, valid_to)?),
            (
                CertVariant::Expired,
                leaf(
                    &ca,
                    names,
                    now - Duration::days(30),
                    now - Duration::days(1),
                )?,
            ),
            (
                CertVariant::WrongHost,
                leaf(&ca, &[WRONG_HOST.to_owned()], valid_from, valid_to)?,
            ),
            (
                CertVariant::UnknownCa,
                leaf(&stranger, names, valid_from, valid_to)?,
            ),
        ];
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut configs = HashMap::new();
        for (variant, (chain, key)) in chains {
            for tls12_only in [false, true] {
                let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
                    &[&rustls::version::TLS12]
                } else {
                    &[&rustls::version::TLS13, &rustls::version::TLS12]
                };
                let mut config = ServerConfig::builder_with_provider(provider.clone())
                    .with_protocol_versions(versions)?
                    .with_no_client_auth()
                    .with_single_cert(chain.clone(), key.clone_key())?;
                config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                configs.insert((variant, tls12_only), Arc::new(config));
            }
        }
        Ok(Self {
            ca_pem: ca.pem,
            configs,
        })
    }

    /// The config for a certificate variant and protocol choice.
    pub(crate) fn config(&self, variant: CertVariant, tls12_only: bool) -> Arc<ServerConfig> {
        self.configs[&(variant, tls12_only)].clone()
    }
}
