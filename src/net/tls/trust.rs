//! Which roots netcheck trusts and the rustls client configurations built from them.
//!
//! Everything here uses the ring provider passed explicitly (`builder_with_provider`), so the
//! library never depends on a process-wide default provider being installed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;

/// Why a trust configuration could not be built: netcheck itself cannot run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file could not be read: missing, not a regular file, or over its size cap.
    #[error(transparent)]
    Read(#[from] crate::local_file::FileError),
    /// The CA file is not valid PEM, or one certificate in it is not a usable trust anchor.
    #[error("invalid CA file {path}: {detail}")]
    Invalid {
        /// The file named by `--ca-file`.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The CA file holds no `CERTIFICATE` block: almost always the wrong file (a key, a CSR).
    #[error("CA file {path} contains no PEM certificate")]
    NoCertificates {
        /// The file named by `--ca-file`.
        path: PathBuf,
    },
}

/// Which TLS versions a client offers; `tls.account` probes `Both` and then `Tls12Only` to learn
/// which versions the path supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsVersions {
    /// Offer TLS 1.3 and TLS 1.2 (what the Snowflake SDKs offer).
    Both,
    /// Offer only TLS 1.2.
    Tls12Only,
    /// Offer only TLS 1.3.
    Tls13Only,
}

impl TlsVersions {
    /// The rustls protocol versions, for client and server configurations alike.
    #[must_use]
    pub fn protocol_versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        use rustls::version::{TLS12, TLS13};
        static TLS12_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&TLS12];
        static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&TLS13];
        match self {
            Self::Both => rustls::ALL_VERSIONS,
            Self::Tls12Only => &TLS12_ONLY,
            Self::Tls13Only => &TLS13_ONLY,
        }
    }
}

/// Trust anchors: the public webpki roots plus the roots given with `--ca-file`, which are trusted
/// exactly like public ones (that is how the emulator and private deployments are checked).
#[derive(Clone)]
pub struct TrustStore {
    roots: Arc<RootCertStore>,
    extra_count: usize,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Listing ~150 public roots helps nobody; the counts are what a reader wants.
        f.debug_struct("TrustStore")
            .field("roots", &self.roots.len())
            .field("extra_roots", &self.extra_count)
            .finish()
    }
}

impl TrustStore {
    /// webpki-roots plus `extra_roots`. Roots that are not usable trust anchors are ignored here;
    /// [`TrustStore::load_pem_file`] rejects them with an error first.
    #[must_use]
    pub fn new(extra_roots: Vec<CertificateDer<'static>>) -> Self {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let (extra_count, _ignored) = roots.add_parsable_certificates(extra_roots);
        Self {
            roots: Arc::new(roots),
            extra_count,
        }
    }

    /// Reads every certificate of a PEM file (`--ca-file`). A file with no certificate, or with a
    /// certificate that cannot be a trust anchor, is an error naming the file.
    pub fn load_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
        let bytes = crate::local_file::read(path, crate::local_file::FileKind::CaFile)?;
        Self::parse_pem_from(&bytes, path)
    }

    /// Roots from PEM text already in memory (the embedded emulator's CA).
    pub fn parse_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
        Self::parse_pem_from(pem.as_bytes(), Path::new("(in memory)"))
    }

    fn parse_pem_from(
        bytes: &[u8],
        path: &Path,
    ) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
        let invalid = |detail: String| TlsSetupError::Invalid {
            path: path.to_owned(),
            detail,
        };
        let certs = CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("bad PEM: {e}")))?;
        if certs.is_empty() {
            return Err(TlsSetupError::NoCertificates {
                path: path.to_owned(),
            });
        }
        let mut scratch = RootCertStore::empty();
        for (index, cert) in certs.iter().enumerate() {
            scratch
                .add(cert.clone())
                .map_err(|e| invalid(format!("certificate #{}: {e}", index + 1)))?;
        }
        Ok(certs)
    }

    /// How many roots came from `--ca-file` (for evidence: "validated against webpki + N").
    #[must_use]
    pub fn extra_root_count(&self) -> usize {
        self.extra_count
    }

    /// A client configuration for `versions` that offers `alpn` and validates against these
    /// roots with rustls's standard verifier. Usable by tokio-rustls (`TlsConnector::from`) and
    /// by reqwest (`tls_backend_preconfigured(ClientConfig::clone(&config))`).
    #[must_use]
    pub fn client_config(&self, versions: TlsVersions, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        build_config(versions, alpn, self.webpki_verifier())
    }

    /// These roots plus `more` (an `https://` proxy's own roots from `--proxy-cacert`).
    #[must_use]
    pub fn with_roots(&self, more: Vec<CertificateDer<'static>>) -> Self {
        let mut roots = RootCertStore::clone(&self.roots);
        let (added, _ignored) = roots.add_parsable_certificates(more);
        Self {
            roots: Arc::new(roots),
            extra_count: self.extra_count + added,
        }
    }

    /// Like [`TrustStore::client_config`], for a client whose connections may start with a TLS
    /// handshake with an `https://` proxy: a certificate presented for one of `proxy_hosts` is
    /// verified against `proxy` (these roots plus `--proxy-cacert`), every other one against
    /// these roots alone, so the proxy's CA never vouches for a Snowflake host.
    #[must_use]
    pub fn client_config_with_proxy(
        &self,
        versions: TlsVersions,
        alpn: &[&[u8]],
        proxy: &TrustStore,
        proxy_hosts: Vec<String>,
    ) -> Arc<ClientConfig> {
        let proxy_hosts = proxy_hosts
            .into_iter()
            .filter_map(|h| ServerName::try_from(h).ok())
            .collect();
        build_config(
            versions,
            alpn,
            Arc::new(SplitVerifier {
                target: self.webpki_verifier(),
                proxy: proxy.webpki_verifier(),
                proxy_hosts,
            }),
        )
    }

    /// A configuration whose verifier records what the server presented, for one probe.
    pub(crate) fn recording_config(
        &self,
        versions: TlsVersions,
        alpn: &[&[u8]],
    ) -> (Arc<ClientConfig>, Arc<RecordingVerifier>) {
        let recorder = Arc::new(RecordingVerifier {
            inner: self.webpki_verifier(),
            seen: Mutex::default(),
        });
        (build_config(versions, alpn, recorder.clone()), recorder)
    }

    fn webpki_verifier(&self) -> Arc<WebPkiServerVerifier> {
        WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .expect("the root store always holds the webpki roots, so it is never empty")
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn build_config(
    versions: TlsVersions,
    alpn: &[&[u8]],
    verifier: Arc<dyn ServerCertVerifier>,
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions.protocol_versions())
        .expect("the ring provider supports TLS 1.2 and TLS 1.3")
        .dangerous()
        // Not a weakened verifier: `verifier` is rustls's own WebPkiServerVerifier, or
        // `RecordingVerifier` / `SplitVerifier`, which return such a verifier's verdict unchanged.
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// What the server presented and what the real verifier said about it.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// The certificates in the order the server sent them (end entity first).
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// The verifier's error, when it rejected the chain.
    pub(crate) error: Option<rustls::Error>,
}

/// Wraps rustls's `WebPkiServerVerifier`: records the presented chain and the verdict, then
/// returns that verdict unchanged. Verification is never relaxed; the chain is kept so the report
/// can show it even when the handshake fails.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Seen>,
}

impl RecordingVerifier {
    /// Takes what was recorded (empty when the handshake never reached the certificate).
    pub(crate) fn take(&self) -> Seen {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        seen.error = verdict.as_ref().err().cloned();
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Verifies a proxy's certificate against the proxy's roots and every other one against the
/// target's; both are rustls's own verifier, nothing is relaxed.
#[derive(Debug)]
struct SplitVerifier {
    target: Arc<WebPkiServerVerifier>,
    proxy: Arc<WebPkiServerVerifier>,
    proxy_hosts: Vec<ServerName<'static>>,
}

impl ServerCertVerifier for SplitVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verifier = if self.proxy_hosts.iter().any(|h| h == server_name) {
            &self.proxy
        } else {
            &self.target
        };
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.target.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.target.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.target.supported_verify_schemes()
    }
}

/// Whether the operating system's trust store (rustls-native-certs: `SSL_CERT_FILE` /
/// `SSL_CERT_DIR` when set, else the platform store) accepts `chain` (end entity first) for
/// `server_name` now. When netcheck's roots rejected a chain that the OS accepts, a corporate CA
/// was installed on the machine: the signature of TLS inspection. The store is loaded once per
/// process; an unreadable or empty store accepts nothing.
#[must_use]
pub fn trusted_by_os_store(chain_der: &[CertificateDer<'_>], server_name: &str) -> bool {
    static OS_VERIFIER: OnceLock<Option<Arc<WebPkiServerVerifier>>> = OnceLock::new();
    let verifier = OS_VERIFIER.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .ok()
    });
    let (Some(verifier), Some((end_entity, intermediates)), Ok(name)) = (
        verifier,
        chain_der.split_first(),
        ServerName::try_from(server_name),
    ) else {
        return false;
    };
    verifier
        .verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_config_offers_the_requested_alpn() {
        let trust = TrustStore::new(Vec::new());
        let config = trust.client_config(TlsVersions::Tls12Only, &[b"h2", b"http/1.1"]);
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        // The versions are proven against real servers in tests/integration/tls_probe.rs.
    }

    #[test]
    fn extra_roots_are_added_to_the_public_ones() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = params.self_signed(&key).unwrap();
        let trust = TrustStore::new(vec![root.der().clone()]);
        assert_eq!(trust.extra_root_count(), 1);
        assert_eq!(trust.roots.len(), webpki_roots::TLS_SERVER_ROOTS.len() + 1);
        assert!(format!("{trust:?}").contains("extra_roots: 1"));
    }

    #[test]
    fn a_proxy_root_vouches_for_the_proxy_only() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = params.self_signed(&key).unwrap();
        let issuer = rcgen::Issuer::new(params, key);
        let leaf = |name: &str| {
            rcgen::CertificateParams::new(vec![name.to_owned()])
                .unwrap()
                .signed_by(&rcgen::KeyPair::generate().unwrap(), &issuer)
                .unwrap()
                .der()
                .clone()
        };
        let trust = TrustStore::new(Vec::new());
        let proxy_trust = trust.with_roots(vec![root.der().clone()]);
        // What client_config_with_proxy installs.
        let verifier = SplitVerifier {
            target: trust.webpki_verifier(),
            proxy: proxy_trust.webpki_verifier(),
            proxy_hosts: vec![ServerName::try_from("proxy.corp.example").unwrap()],
        };
        let verify = |name: &str| {
            verifier
                .verify_server_cert(
                    &leaf(name),
                    &[],
                    &ServerName::try_from(name.to_owned()).unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .is_ok()
        };
        assert!(verify("proxy.corp.example"));
        assert!(!verify("acct.snowflakecomputing.com"));
    }

    #[test]
    fn os_store_rejects_an_empty_chain_and_a_bad_name() {
        assert!(!trusted_by_os_store(&[], "localhost"));
        assert!(!trusted_by_os_store(
            &[CertificateDer::from(vec![0u8])],
            "not a name"
        ));
    }
}
