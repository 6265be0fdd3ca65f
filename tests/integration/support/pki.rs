//! A throwaway PKI made at test time with rcgen: a trusted root, an intermediate under it, and
//! leaves for every certificate problem netcheck must tell apart. Nothing is written to the
//! repository; [`TempFile`] holds a PEM on disk only for the life of a test (for `--ca-file`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// The names the default leaf carries: loopback plus the Snowflake-shaped hosts the checks use
/// (reached through `--resolve`, never through DNS).
pub const DEFAULT_HOSTS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "myorg-myaccount.snowflakecomputing.com",
    "myorg-myaccount.us-west-2.ingest.snowflakecomputing.com",
];

/// Where the missing-intermediate leaf says its issuer can be fetched (never fetched).
pub const INTERMEDIATE_URL: &str = "http://pki.netcheck.test/intermediate.cer";

/// A certificate authority: its certificate and the key that signs with it.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed root with the given distinguished name, e.g.
    /// `&[(DnType::OrganizationName, "Zscaler Inc."), (DnType::CommonName, "Zscaler Root CA")]`.
    pub fn root(name: &[(DnType, &str)]) -> Self {
        Self {
            issuer: CertifiedIssuer::self_signed(ca_params(name), key())
                .expect("rcgen signs a root"),
        }
    }

    /// A CA certificate signed by this one.
    pub fn intermediate(&self, name: &[(DnType, &str)]) -> Self {
        Self {
            issuer: CertifiedIssuer::signed_by(ca_params(name), key(), &self.issuer)
                .expect("rcgen signs an intermediate"),
        }
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The CA certificate, PEM (what `--ca-file` or `SSL_CERT_FILE` would hold).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Signs a leaf described by `spec`. The chain holds only the leaf; add issuers with
    /// [`ServerCert::with_issuers`].
    pub fn issue(&self, spec: &LeafSpec) -> ServerCert {
        let key = key();
        let leaf = leaf_params(spec)
            .signed_by(&key, &self.issuer)
            .expect("rcgen signs a leaf");
        ServerCert::new(&leaf, &key)
    }
}

/// A leaf described by `spec`, signed by its own key (no CA at all), presented alone: what a
/// hand-made server certificate looks like.
pub fn self_signed_leaf(spec: &LeafSpec) -> ServerCert {
    let key = key();
    let leaf = leaf_params(spec)
        .self_signed(&key)
        .expect("rcgen signs a leaf");
    ServerCert::new(&leaf, &key)
}

/// The parameters of a server certificate for `spec`.
fn leaf_params(spec: &LeafSpec) -> CertificateParams {
    let hosts: Vec<String> = spec.hosts.iter().map(ToString::to_string).collect();
    let mut params = CertificateParams::new(hosts).expect("valid host names");
    if let Some(first) = spec.hosts.first() {
        params.distinguished_name.push(DnType::CommonName, *first);
    }
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    if let Some(url) = spec.aia_ca_issuers {
        params.custom_extensions.push(aia_ca_issuers(url));
    }
    params
}

/// What goes into a leaf certificate.
#[derive(Debug, Clone)]
pub struct LeafSpec<'a> {
    /// DNS names and IP addresses (subjectAltName); the first is also the CN.
    pub hosts: &'a [&'a str],
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// An AIA caIssuers URL, when the leaf should say where its issuer lives.
    pub aia_ca_issuers: Option<&'a str>,
}

impl Default for LeafSpec<'_> {
    /// [`DEFAULT_HOSTS`], valid from yesterday for 90 days, no AIA.
    fn default() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            hosts: DEFAULT_HOSTS,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(90),
            aia_ca_issuers: None,
        }
    }
}

/// A chain as a server sends it (leaf first) and the leaf's private key.
pub struct ServerCert {
    /// The certificates the server presents, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ServerCert {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl ServerCert {
    /// The leaf alone, with its key.
    fn new(leaf: &rcgen::Certificate, key: &KeyPair) -> Self {
        Self {
            chain: vec![leaf.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// Appends issuer certificates to the presented chain.
    pub fn with_issuers(mut self, issuers: &[&Ca]) -> Self {
        self.chain.extend(issuers.iter().map(|ca| ca.der()));
        self
    }

    /// The leaf, DER.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The chain and the key as PEM files, for third-party servers (`openssl s_server`, nginx).
    pub fn write_pem_files(&self) -> (TempFile, TempFile) {
        let chain: String = self
            .chain
            .iter()
            .map(|der| to_pem("CERTIFICATE", der))
            .collect();
        let key = to_pem("PRIVATE KEY", self.key.secret_der());
        (
            TempFile::with_contents("chain.pem", chain.as_bytes()),
            TempFile::with_contents("key.pem", key.as_bytes()),
        )
    }
}

/// One PEM block (`label` is e.g. `CERTIFICATE`), 64 base64 characters a line.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The trusted test PKI: a root (give it to netcheck with `--ca-file`) and an intermediate under
/// it that signs the leaves, plus the scenarios the TLS checks must recognise.
pub struct TestPki {
    /// The root that tests trust.
    pub root: Ca,
    /// The intermediate that signs the leaves.
    pub intermediate: Ca,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// A fresh root and intermediate.
    pub fn new() -> Self {
        let root = Ca::root(&[
            (DnType::OrganizationName, "Netcheck Test"),
            (DnType::CommonName, "Netcheck Test Root CA"),
        ]);
        let intermediate = root.intermediate(&[
            (DnType::OrganizationName, "Netcheck Test"),
            (DnType::CommonName, "Netcheck Test Intermediate CA"),
        ]);
        Self { root, intermediate }
    }

    /// The trusted root, PEM.
    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// The trusted root written to a temporary file, for `--ca-file`.
    pub fn root_pem_file(&self) -> TempFile {
        TempFile::with_contents("root.pem", self.root_pem().as_bytes())
    }

    /// A leaf from `spec` under the intermediate, presented with the intermediate.
    pub fn leaf(&self, spec: &LeafSpec) -> ServerCert {
        self.intermediate
            .issue(spec)
            .with_issuers(&[&self.intermediate])
    }

    /// Valid now for [`DEFAULT_HOSTS`], full chain.
    pub fn good(&self) -> ServerCert {
        self.leaf(&LeafSpec::default())
    }

    /// Valid now for `hosts`, full chain.
    pub fn for_hosts(&self, hosts: &[&str]) -> ServerCert {
        self.leaf(&LeafSpec {
            hosts,
            ..LeafSpec::default()
        })
    }

    /// Expired yesterday.
    pub fn expired(&self) -> ServerCert {
        let now = OffsetDateTime::now_utc();
        self.leaf(&LeafSpec {
            not_before: now - Duration::days(90),
            not_after: now - Duration::days(1),
            ..LeafSpec::default()
        })
    }

    /// Valid only from 30 days from now.
    pub fn not_yet_valid(&self) -> ServerCert {
        let now = OffsetDateTime::now_utc();
        self.leaf(&LeafSpec {
            not_before: now + Duration::days(30),
            not_after: now + Duration::days(120),
            ..LeafSpec::default()
        })
    }

    /// Valid now, expiring `days` days from now.
    pub fn expiring_in(&self, days: i64) -> ServerCert {
        self.leaf(&LeafSpec {
            not_after: OffsetDateTime::now_utc() + Duration::days(days),
            ..LeafSpec::default()
        })
    }

    /// Valid and trusted, but only for `wrong.example.com`.
    pub fn wrong_host(&self) -> ServerCert {
        self.for_hosts(&["wrong.example.com"])
    }

    /// The server "forgot" its intermediate: only the leaf is presented, and the leaf's AIA
    /// caIssuers points at [`INTERMEDIATE_URL`].
    pub fn missing_intermediate(&self) -> ServerCert {
        self.intermediate.issue(&LeafSpec {
            aia_ca_issuers: Some(INTERMEDIATE_URL),
            ..LeafSpec::default()
        })
    }
}

/// A leaf for [`DEFAULT_HOSTS`] from a CA nobody trusts, presented with that CA (a self-signed
/// top): the plain untrusted case. Returns the CA too, e.g. to trust it through `SSL_CERT_FILE`.
pub fn unknown_ca() -> (ServerCert, Ca) {
    issued_by_root(&[
        (DnType::OrganizationName, "Unknown Test Org"),
        (DnType::CommonName, "Unknown Test Root CA"),
    ])
}

/// A leaf for [`DEFAULT_HOSTS`] re-signed the way an inspection proxy does, by a root named like
/// the product (`O=Zscaler Inc., CN=Zscaler Root CA`), presented with that root.
pub fn inspection_ca() -> (ServerCert, Ca) {
    issued_by_root(&[
        (DnType::OrganizationName, "Zscaler Inc."),
        (DnType::OrganizationalUnitName, "Zscaler Inc."),
        (DnType::CommonName, "Zscaler Root CA"),
    ])
}

fn issued_by_root(name: &[(DnType, &str)]) -> (ServerCert, Ca) {
    let ca = Ca::root(name);
    let cert = ca.issue(&LeafSpec::default()).with_issuers(&[&ca]);
    (cert, ca)
}

fn key() -> KeyPair {
    KeyPair::generate().expect("ring generates a P-256 key")
}

fn ca_params(name: &[(DnType, &str)]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (ty, value) in name {
        params.distinguished_name.push(ty.clone(), *value);
    }
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// authorityInfoAccess (1.3.6.1.5.5.7.1.1) with one caIssuers URI. rcgen has no builder for it,
/// so the DER is spelled out: `SEQUENCE { SEQUENCE { OID id-ad-caIssuers, [6] IA5String } }`.
fn aia_ca_issuers(url: &str) -> CustomExtension {
    const ID_AD_CA_ISSUERS: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let location = der(0x86, url.as_bytes());
    let description = der(0x30, &[ID_AD_CA_ISSUERS, &location].concat());
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], der(0x30, &description))
}

/// One DER TLV with a definite length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(u8::try_from(len).expect("checked"));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).expect("a usize has at most 8 bytes"));
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A file under the system temp directory, removed on drop.
pub struct TempFile {
    /// Where the file is.
    pub path: PathBuf,
}

impl TempFile {
    /// Writes `contents` to a fresh file whose name ends in `name`.
    pub fn with_contents(name: &str, contents: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "netcheck-test-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::write(&path, contents).expect("temp dir is writable");
        Self { path }
    }

    /// The path, for a flag.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
