//! `net::tls::probe` against real rustls servers on loopback, one per certificate or protocol
//! problem, with certificates made at test time. Asserts the measured facts: negotiated
//! parameters, the recorded chain, and the exact `TlsFailure`.

use std::time::{Duration, Instant};

use crate::support::pki::{self, INTERMEDIATE_URL, ServerCert, TempFile, TestPki};
use crate::support::skip::{Lack, skip};
use crate::support::tls_servers::{
    OpensslServer, RawBehaviour, RawServer, TlsServer, TlsServerSpec, closed_port,
};
use netcheck::net::tls::{
    self, CertInfo, TlsFailure, TlsProbe, TlsSetupError, TlsVersions, TrustStore,
    inspection_product, trusted_by_os_store,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;

const HOST: &str = "myorg-myaccount.snowflakecomputing.com";
const TIMEOUT: Duration = Duration::from_secs(5);

/// Probes `addr` for `HOST` over a fresh TCP connection.
async fn probe_at(
    addr: std::net::SocketAddr,
    trust: &TrustStore,
    versions: TlsVersions,
) -> TlsProbe {
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
        .await
        .expect("connect within the timeout")
        .expect("loopback connect");
    tls::probe(tcp, HOST, trust, versions, TIMEOUT).await
}

/// Starts a server presenting `cert` and probes it, trusting the test root.
async fn probe_cert(pki: &TestPki, cert: ServerCert) -> TlsProbe {
    let server = TlsServer::start(TlsServerSpec::new(cert));
    probe_at(server.addr, &trusting(pki), TlsVersions::Both).await
}

fn trusting(pki: &TestPki) -> TrustStore {
    TrustStore::new(vec![pki.root.der()])
}

fn info(der: &CertificateDer<'_>) -> CertInfo {
    CertInfo::from_der(der).expect("test certificates parse")
}

#[test_case::test_case(TlsVersions::Both, TlsVersions::Both, "TLSv1.3" ; "both offered, both accepted")]
#[test_case::test_case(TlsVersions::Tls12Only, TlsVersions::Both, "TLSv1.2" ; "server limited to 1.2")]
#[test_case::test_case(TlsVersions::Tls13Only, TlsVersions::Both, "TLSv1.3" ; "server limited to 1.3")]
#[test_case::test_case(TlsVersions::Both, TlsVersions::Tls12Only, "TLSv1.2" ; "client limited to 1.2")]
#[test_case::test_case(TlsVersions::Both, TlsVersions::Tls13Only, "TLSv1.3" ; "client limited to 1.3")]
#[tokio::test]
async fn negotiates_the_expected_version(server: TlsVersions, client: TlsVersions, version: &str) {
    let pki = TestPki::new();
    let cert = pki.good();
    let server = TlsServer::start(TlsServerSpec::new(cert.clone()).versions(server));
    let probe = probe_at(server.addr, &trusting(&pki), client).await;

    assert_eq!(probe.result, Ok(()));
    let negotiated = probe.negotiated.expect("handshake completed");
    assert_eq!(negotiated.version, version);
    let suite_prefix = if version == "TLSv1.3" {
        "TLS13_"
    } else {
        "TLS_ECDHE_"
    };
    assert!(
        negotiated.cipher_suite.starts_with(suite_prefix),
        "{negotiated:?}"
    );
    assert_eq!(negotiated.alpn.as_deref(), Some("h2"));
    assert!(negotiated.key_exchange.is_some());
    assert_eq!(
        probe.chain,
        vec![info(&cert.chain[0]), info(&cert.chain[1])]
    );
    assert_eq!(probe.chain_der, cert.chain);
    assert!(probe.elapsed < TIMEOUT);
}

#[test_case::test_case(TlsVersions::Tls12Only, TlsVersions::Tls13Only ; "client 1.3 only, server 1.2 only")]
#[test_case::test_case(TlsVersions::Tls13Only, TlsVersions::Tls12Only ; "client 1.2 only, server 1.3 only")]
#[tokio::test]
async fn no_common_version_is_protocol_version(server: TlsVersions, client: TlsVersions) {
    let pki = TestPki::new();
    let server = TlsServer::start(TlsServerSpec::new(pki.good()).versions(server));
    let probe = probe_at(server.addr, &trusting(&pki), client).await;

    let failure = probe.result.unwrap_err();
    assert_eq!(failure.kind(), "protocol_version", "{failure:?}");
    assert!(
        probe.chain.is_empty(),
        "no certificate before version agreement"
    );
    assert_eq!(server.handshakes(), 0);
}

#[test_case::test_case("-tls1" ; "tls 1.0 only")]
#[test_case::test_case("-tls1_1" ; "tls 1.1 only")]
#[tokio::test]
async fn server_below_tls12_is_protocol_version(version_flag: &str) {
    let pki = TestPki::new();
    // OpenSSL 3 refuses TLS < 1.2 at its default security level; level 0 lets it offer them.
    let Some(server) = OpensslServer::start(
        &pki.good(),
        &[version_flag, "-cipher", "DEFAULT:@SECLEVEL=0"],
    ) else {
        skip(Lack::Tool, "the openssl binary is not installed");
        return;
    };
    for client in [TlsVersions::Both, TlsVersions::Tls12Only] {
        let probe = probe_at(server.addr, &trusting(&pki), client).await;
        let failure = probe.result.unwrap_err();
        assert_eq!(
            failure.kind(),
            "protocol_version",
            "{client:?}: {failure:?}"
        );
    }
}

#[tokio::test]
async fn expired_certificate_is_reported_with_its_chain() {
    let pki = TestPki::new();
    let cert = pki.expired();
    let probe = probe_cert(&pki, cert.clone()).await;

    let leaf = info(cert.leaf());
    assert_eq!(
        probe.result,
        Err(TlsFailure::Expired {
            not_after: leaf.not_after
        })
    );
    assert!(probe.negotiated.is_none());
    // The chain is kept although verification failed.
    assert_eq!(probe.chain.len(), 2);
    assert_eq!(
        probe.chain[0].subject,
        format!("CN={}", pki::DEFAULT_HOSTS[0])
    );
    assert_eq!(
        probe.chain[0].issuer,
        "O=Netcheck Test, CN=Netcheck Test Intermediate CA"
    );
    assert_eq!(probe.chain[0].sha256, leaf.sha256);
    assert_eq!(probe.chain[0].sans, pki::DEFAULT_HOSTS);
    assert_eq!(
        probe.chain[1].issuer,
        "O=Netcheck Test, CN=Netcheck Test Root CA"
    );
    assert!(probe.chain[1].is_ca && !probe.chain[1].self_issued);
}

#[tokio::test]
async fn not_yet_valid_certificate() {
    let pki = TestPki::new();
    let cert = pki.not_yet_valid();
    let probe = probe_cert(&pki, cert.clone()).await;

    let not_before = info(cert.leaf()).not_before;
    assert_eq!(probe.result, Err(TlsFailure::NotYetValid { not_before }));
    assert_eq!(probe.chain[0].sha256, info(cert.leaf()).sha256);
}

#[tokio::test]
async fn certificate_expiring_soon_still_validates_and_shows_its_date() {
    let pki = TestPki::new();
    let cert = pki.expiring_in(5);
    let probe = probe_cert(&pki, cert.clone()).await;

    assert_eq!(probe.result, Ok(()));
    let left = probe.chain[0].not_after - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::days(4) && left <= time::Duration::days(5),
        "{left}"
    );
}

#[tokio::test]
async fn wrong_host_lists_the_names_presented() {
    let pki = TestPki::new();
    let probe = probe_cert(&pki, pki.wrong_host()).await;

    assert_eq!(
        probe.result,
        Err(TlsFailure::HostnameMismatch {
            presented: vec!["wrong.example.com".to_owned()]
        })
    );
    assert_eq!(probe.chain[0].subject, "CN=wrong.example.com");
}

#[tokio::test]
async fn unknown_ca_is_unknown_issuer() {
    let pki = TestPki::new();
    let (cert, _ca) = pki::unknown_ca();
    let probe = probe_cert(&pki, cert).await;

    let issuer = "O=Unknown Test Org, CN=Unknown Test Root CA";
    assert_eq!(
        probe.result,
        Err(TlsFailure::UnknownIssuer {
            issuer: issuer.to_owned()
        })
    );
    assert_eq!(probe.chain[0].issuer, issuer);
    assert!(probe.chain[1].self_issued);
    assert_eq!(inspection_product(issuer), None);
}

#[tokio::test]
async fn missing_intermediate_is_incomplete_chain() {
    let pki = TestPki::new();
    let probe = probe_cert(&pki, pki.missing_intermediate()).await;

    assert_eq!(
        probe.result,
        Err(TlsFailure::IncompleteChain {
            issuer: "O=Netcheck Test, CN=Netcheck Test Intermediate CA".to_owned(),
            ca_issuers: vec![INTERMEDIATE_URL.to_owned()],
        })
    );
    assert_eq!(probe.chain.len(), 1);
    assert_eq!(probe.chain[0].aia_ca_issuers, [INTERMEDIATE_URL]);
}

#[tokio::test]
async fn inspection_issuer_is_untrusted_and_names_the_product() {
    let pki = TestPki::new();
    let (cert, _ca) = pki::inspection_ca();
    let probe = probe_cert(&pki, cert).await;

    assert_eq!(probe.result.unwrap_err().kind(), "unknown_issuer");
    let top = probe.chain.last().expect("chain recorded");
    assert_eq!(
        top.subject,
        "O=Zscaler Inc., OU=Zscaler Inc., CN=Zscaler Root CA"
    );
    assert_eq!(inspection_product(&top.issuer), Some("Zscaler"));
    assert_eq!(inspection_product(&probe.chain[0].issuer), Some("Zscaler"));
}

#[tokio::test]
async fn test_root_is_trusted_only_when_given() {
    let pki = TestPki::new();
    let server = TlsServer::start(TlsServerSpec::new(pki.good()));
    let webpki_only = probe_at(server.addr, &TrustStore::new(Vec::new()), TlsVersions::Both).await;
    assert_eq!(webpki_only.result.unwrap_err().kind(), "unknown_issuer");

    let file = pki.root_pem_file();
    let roots = TrustStore::load_pem_file(file.path()).expect("root PEM loads");
    assert_eq!(roots, vec![pki.root.der()]);
    let with_ca_file = probe_at(server.addr, &TrustStore::new(roots), TlsVersions::Both).await;
    assert_eq!(with_ca_file.result, Ok(()));
}

#[test]
fn ca_file_errors_name_the_file() {
    let missing = std::env::temp_dir().join("netcheck-test-no-such-ca.pem");
    let err = TrustStore::load_pem_file(&missing).unwrap_err();
    assert!(matches!(err, TlsSetupError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains("netcheck-test-no-such-ca.pem"),
        "{err}"
    );

    let key_only = TempFile::with_contents(
        "key.pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let err = TrustStore::load_pem_file(key_only.path()).unwrap_err();
    assert!(
        matches!(err, TlsSetupError::NoCertificates { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&key_only.path().display().to_string()),
        "{err}"
    );

    let bad = TempFile::with_contents(
        "bad.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let err = TrustStore::load_pem_file(bad.path()).unwrap_err();
    assert!(matches!(err, TlsSetupError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate #1"), "{err}");
}

#[tokio::test]
async fn silent_server_times_out_within_the_bound() {
    let server = RawServer::start(RawBehaviour::Silent);
    let timeout = Duration::from_millis(500);
    let tcp = TcpStream::connect(server.addr)
        .await
        .expect("loopback connect");
    let started = Instant::now();
    let probe = tls::probe(
        tcp,
        HOST,
        &TrustStore::new(Vec::new()),
        TlsVersions::Both,
        timeout,
    )
    .await;

    assert_eq!(
        probe.result,
        Err(TlsFailure::Timeout {
            server_answered: false
        })
    );
    assert!(probe.elapsed >= timeout);
    assert!(
        started.elapsed() < timeout + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test_case::test_case(RawBehaviour::ResetAfterHello, "reset" ; "reset")]
#[test_case::test_case(RawBehaviour::CloseAfterHello, "closed" ; "clean close")]
#[tokio::test]
async fn dropped_after_client_hello(behaviour: RawBehaviour, detail: &str) {
    let server = RawServer::start(behaviour);
    let probe = probe_at(server.addr, &TrustStore::new(Vec::new()), TlsVersions::Both).await;

    let failure = probe.result.unwrap_err();
    assert_eq!(failure.kind(), "reset_after_hello", "{failure:?}");
    assert!(
        failure.to_string().to_lowercase().contains(detail),
        "{failure}"
    );
    // Answered by the drop itself, not by running into the timeout.
    assert!(probe.elapsed < TIMEOUT);
}

#[tokio::test]
async fn closed_port_refuses() {
    let err = TcpStream::connect(closed_port()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn client_config_serves_reqwest_against_the_https_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = TestPki::new();
    let server = TlsServer::start(TlsServerSpec::new(pki.good()));
    let trust = trusting(&pki);
    for (alpn, version) in [
        (
            &[b"h2".as_slice(), b"http/1.1"][..],
            reqwest::Version::HTTP_2,
        ),
        (&[b"http/1.1".as_slice()][..], reqwest::Version::HTTP_11),
    ] {
        let config = trust.client_config(TlsVersions::Both, alpn);
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(rustls::ClientConfig::clone(&config))
            .resolve(HOST, server.addr)
            .no_proxy()
            .timeout(TIMEOUT)
            .build()
            .expect("reqwest accepts the rustls config");
        for _ in 0..2 {
            let response = client
                .get(format!("https://{HOST}:{}/anything", server.addr.port()))
                .send()
                .await
                .expect("request succeeds");
            assert_eq!(response.status(), 200);
            assert_eq!(response.version(), version);
            assert!(response.headers().contains_key("date"));
            assert_eq!(response.text().await.unwrap(), "ok\n");
        }
    }
    // One handshake per client: the second request of each reused its connection.
    assert_eq!(server.handshakes(), 2);
}

/// Set by `os_store_recognises_a_ca_installed_on_the_machine` for its child processes.
const CHILD_CHAIN: &str = "NETCHECK_TEST_OS_STORE_CHAIN";
const CHILD_EXPECT: &str = "NETCHECK_TEST_OS_STORE_EXPECT";

#[tokio::test]
async fn os_store_recognises_a_ca_installed_on_the_machine() {
    let pki = TestPki::new();
    let (cert, inspection_root) = pki::inspection_ca();
    let probe = probe_cert(&pki, cert).await;
    assert_eq!(probe.result.unwrap_err().kind(), "unknown_issuer");
    // This machine's store does not hold a CA minted a moment ago.
    assert!(!trusted_by_os_store(&probe.chain_der, HOST));

    let chain_pem: String = probe
        .chain_der
        .iter()
        .map(|der| pki::to_pem("CERTIFICATE", der))
        .collect();
    let chain_file = TempFile::with_contents("chain.pem", chain_pem.as_bytes());
    let installed = TempFile::with_contents("os-store.pem", inspection_root.pem().as_bytes());
    let unrelated = TempFile::with_contents("other-store.pem", pki.root_pem().as_bytes());
    // The OS store is read once per process and comes from SSL_CERT_FILE when set, so each
    // store gets a child process of this test binary (set_var is unsafe, and global).
    for (store, expect) in [(&installed, "true"), (&unrelated, "false")] {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "tls_probe::os_store_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SSL_CERT_FILE", store.path())
            .env_remove("SSL_CERT_DIR")
            .env(CHILD_CHAIN, chain_file.path())
            .env(CHILD_EXPECT, expect)
            .output()
            .expect("run the child test");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}

/// Not a test on its own: the child half of the OS-store test above, which sets its environment.
#[test]
fn os_store_child() {
    let (Ok(chain_path), Ok(expect)) = (std::env::var(CHILD_CHAIN), std::env::var(CHILD_EXPECT))
    else {
        eprintln!(
            "os_store_child: runs only as a child of os_store_recognises_a_ca_installed_on_the_machine"
        );
        return;
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&chain_path)
        .and_then(Iterator::collect)
        .expect("chain file");
    assert_eq!(trusted_by_os_store(&chain, HOST).to_string(), expect);
}

#[tokio::test]
async fn ip_address_target_is_checked_against_ip_sans() {
    let pki = TestPki::new();
    let server = TlsServer::start(TlsServerSpec::new(pki.for_hosts(&["127.0.0.1"])));
    let trust = trusting(&pki);
    let tcp = TcpStream::connect(server.addr)
        .await
        .expect("loopback connect");
    let by_ip = tls::probe(tcp, "127.0.0.1", &trust, TlsVersions::Both, TIMEOUT).await;
    assert_eq!(by_ip.result, Ok(()));

    let by_name = probe_at(server.addr, &trust, TlsVersions::Both).await;
    assert_eq!(
        by_name.result,
        Err(TlsFailure::HostnameMismatch {
            presented: vec!["127.0.0.1".to_owned()]
        })
    );
}
