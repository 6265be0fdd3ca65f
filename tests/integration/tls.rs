//! `tls.account` through the real binary against real rustls (and openssl) servers on loopback
//! with certificates made at test time: each scenario asserts the check id, the verdict and the
//! catalog row. Also: a healthy loopback target passes every check with exit 0.

use crate::support::pki::{self, ServerCert, TempFile, TestPki};
use crate::support::run::{Run, assert_check, check, netcheck, run_at};
use crate::support::skip::{Lack, skip};
use crate::support::tls_servers::{
    OpensslServer, RawBehaviour, RawServer, TlsServer, TlsServerSpec,
};
use netcheck::net::tls::TlsVersions;

const HOST: &str = "myorg-myaccount.snowflakecomputing.com";

/// Runs netcheck against `addr` under the Snowflake-like name, trusting `ca` (if any).
fn run_against(addr: std::net::SocketAddr, ca: Option<&TempFile>, extra: &[&str]) -> Run {
    let port = addr.port();
    let mut run = run_at(HOST, port).args(extra);
    if !extra.contains(&"--timeout") {
        run = run.args(&["--timeout", "2"]);
    }
    if let Some(ca) = ca {
        run = run.args(&["--ca-file", ca.path().to_str().unwrap()]);
    }
    run.run()
}

fn serve(cert: ServerCert, versions: TlsVersions) -> TlsServer {
    TlsServer::start(TlsServerSpec::new(cert).versions(versions))
}

#[test]
fn healthy_target_passes_every_check_with_exit_0() {
    let pki = TestPki::new();
    let server = serve(pki.good(), TlsVersions::Both);
    let r = run_against(server.addr, Some(&pki.root_pem_file()), &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    for id in ["proxy.env", "dns.account", "tcp.account", "tls.account"] {
        assert_check(&report, id, "pass", None);
    }
    assert_check(&report, "proxy.connect", "skip", None);
    assert!(
        check(&report, "proxy.connect")["skip_reason"]
            .as_str()
            .unwrap()
            .contains("no proxy")
    );
    let tls = &check(&report, "tls.account")["evidence"];
    assert_eq!(tls["handshakes"][0]["negotiated"]["version"], "TLSv1.3");
    assert_eq!(tls["handshakes"][1]["negotiated"]["version"], "TLSv1.2");
    let chain = tls["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "leaf and intermediate are recorded");
    assert!(chain[0]["sha256"].as_str().unwrap().len() == 64);
    assert!(
        chain[1]["subject"]
            .as_str()
            .unwrap()
            .contains("Intermediate")
    );
}

#[test]
fn the_table_report_shows_every_check() {
    let pki = TestPki::new();
    let server = serve(pki.good(), TlsVersions::Both);
    let port = server.addr.port();
    let ca = pki.root_pem_file();
    let r = netcheck(&[
        "run",
        "--account",
        &format!("https://{HOST}:{port}"),
        "--resolve",
        &format!("{HOST}:{port}:127.0.0.1"),
        "--ca-file",
    ])
    .args(&[ca.path().to_str().unwrap()])
    .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for id in [
        "proxy.env",
        "dns.account",
        "tcp.account",
        "proxy.connect",
        "tls.account",
    ] {
        assert!(
            r.stdout.contains(id),
            "{id} missing from the table:\n{}",
            r.stdout
        );
    }
    assert!(
        !r.stdout.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn tls12_only_server_warns_legacy_only() {
    let pki = TestPki::new();
    let server = serve(pki.good(), TlsVersions::Tls12Only);
    let r = run_against(server.addr, Some(&pki.root_pem_file()), &[]);
    assert_eq!(r.code, 0, "a warning is not a failure");
    assert_check(&r.json(), "tls.account", "warn", Some("tls-legacy-only"));
}

#[test]
fn tls13_only_server_passes_with_a_note() {
    let pki = TestPki::new();
    let server = serve(pki.good(), TlsVersions::Tls13Only);
    let r = run_against(server.addr, Some(&pki.root_pem_file()), &[]);
    let report = r.json();
    assert_check(&report, "tls.account", "pass", None);
    assert!(
        check(&report, "tls.account")["finding"]
            .as_str()
            .unwrap()
            .contains("TLS 1.3 only")
    );
}

#[test]
fn old_protocols_only_fail_tls_version() {
    let pki = TestPki::new();
    let Some(server) =
        OpensslServer::start(&pki.good(), &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"])
    else {
        skip(Lack::Tool, "openssl is not installed");
        return;
    };
    let r = run_against(server.addr, Some(&pki.root_pem_file()), &[]);
    assert_eq!(r.code, 1);
    assert_check(&r.json(), "tls.account", "fail", Some("tls-version"));
}

/// A TLS 1.2 server that demands a client certificate (a mutual-TLS proxy) refuses the handshake
/// after its own certificate: no more specific row fits, so the generic one is cited with the
/// TLS library's words.
#[test]
fn a_demanded_client_certificate_is_a_handshake_failure() {
    let pki = TestPki::new();
    let Some(server) = OpensslServer::start(&pki.good(), &["-tls1_2", "-Verify", "1"]) else {
        skip(Lack::Tool, "openssl is not installed");
        return;
    };
    let r = run_against(server.addr, Some(&pki.root_pem_file()), &[]);
    assert_eq!(r.code, 1);
    let report = r.json();
    assert_check(&report, "tls.account", "fail", Some("tls-handshake"));
    let finding = check(&report, "tls.account")["finding"].as_str().unwrap();
    assert!(finding.contains("alert"), "{finding}");
}

#[test]
fn certificate_problems_map_to_their_rows() {
    let pki = TestPki::new();
    for (cert, verdict, row) in [
        (pki.expired(), "fail", "tls-expired"),
        (pki.not_yet_valid(), "fail", "tls-not-yet-valid"),
        (pki.wrong_host(), "fail", "tls-hostname"),
        (pki.missing_intermediate(), "fail", "tls-incomplete-chain"),
        (pki.expiring_in(7), "warn", "tls-expiring"),
    ] {
        let server = serve(cert, TlsVersions::Both);
        let r = run_against(server.addr, Some(&pki.root_pem_file()), &[]);
        let report = r.json();
        assert_check(&report, "tls.account", verdict, Some(row));
        assert_eq!(r.code, i32::from(verdict == "fail"), "{row}");
        // The chain is evidence even when verification failed.
        assert!(
            !check(&report, "tls.account")["evidence"]["chain"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{row}"
        );
    }
}

#[test]
fn leaf_alone_without_aia_is_an_incomplete_chain_naming_the_intermediate() {
    let pki = TestPki::new();
    // Issued by the intermediate, sent without it, and no AIA says where the issuer lives.
    let server = serve(
        pki.intermediate.issue(&pki::LeafSpec::default()),
        TlsVersions::Both,
    );
    let r = run_against(server.addr, Some(&pki.root_pem_file()), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    assert_check(&report, "tls.account", "fail", Some("tls-incomplete-chain"));
    let tls = check(&report, "tls.account");
    let finding = tls["finding"].as_str().unwrap();
    assert!(
        finding.contains("Netcheck Test Intermediate CA"),
        "{finding}"
    );
    let failure = &tls["evidence"]["handshakes"][0]["failure"];
    assert_eq!(failure["kind"], "incomplete_chain", "{failure:#}");
    assert_eq!(failure["ca_issuers"], serde_json::json!([]));
}

#[test]
fn self_signed_leaf_is_untrusted_not_incomplete() {
    let server = serve(
        pki::self_signed_leaf(&pki::LeafSpec::default()),
        TlsVersions::Both,
    );
    let pki = TestPki::new();
    let r = run_against(server.addr, Some(&pki.root_pem_file()), &[]);
    let report = r.json();
    assert_check(&report, "tls.account", "fail", Some("tls-untrusted"));
}

#[test]
fn unknown_ca_is_untrusted_without_a_proxy() {
    let (cert, _ca) = pki::unknown_ca();
    let server = serve(cert, TlsVersions::Both);
    let r = run_against(server.addr, None, &[]);
    let report = r.json();
    assert_check(&report, "tls.account", "fail", Some("tls-untrusted"));
    assert!(
        check(&report, "tls.account")["finding"]
            .as_str()
            .unwrap()
            .contains("Unknown Test Root CA")
    );
}

#[test]
fn issuer_named_like_an_inspection_product_is_tls_inspection() {
    let (cert, _ca) = pki::inspection_ca();
    let server = serve(cert, TlsVersions::Both);
    let report = run_against(server.addr, None, &[]).json();
    assert_check(&report, "tls.account", "fail", Some("tls-inspection"));
    let tls = check(&report, "tls.account");
    assert_eq!(tls["evidence"]["inspection_product"], "Zscaler");
    assert!(tls["finding"].as_str().unwrap().contains("Zscaler"));
}

#[test]
fn a_corporate_ca_only_the_os_trusts_is_tls_inspection() {
    // The OS store (SSL_CERT_FILE, as rustls-native-certs reads it) holds the CA; netcheck's
    // own roots do not: the signature of an inspection CA pushed to the machine.
    let (cert, ca) = pki::unknown_ca();
    let os_store = TempFile::with_contents("os-store.pem", ca.pem().as_bytes());
    let server = serve(cert, TlsVersions::Both);
    let port = server.addr.port();
    let r = run_at(HOST, port)
        .env("SSL_CERT_FILE", os_store.path().to_str().unwrap())
        .run();
    let report = r.json();
    assert_check(&report, "tls.account", "fail", Some("tls-inspection"));
    assert_eq!(
        check(&report, "tls.account")["evidence"]["trusted_by_os_store"],
        true
    );
}

#[test]
fn reset_after_client_hello_is_tls_reset() {
    let server = RawServer::start(RawBehaviour::ResetAfterHello);
    let r = run_against(server.addr, None, &[]);
    assert_check(&r.json(), "tls.account", "fail", Some("tls-reset"));
}

#[test]
fn silent_server_times_out_within_the_step_timeout() {
    let server = RawServer::start(RawBehaviour::Silent);
    let r = run_against(server.addr, None, &["--timeout", "1"]);
    assert_check(&r.json(), "tls.account", "fail", Some("timeout"));
    // Both handshakes run at once, each bounded by the 1 s step timeout.
    assert!(r.elapsed.as_secs_f64() < 3.0, "took {:?}", r.elapsed);
}

#[test]
fn the_run_deadline_bounds_everything() {
    let server = RawServer::start(RawBehaviour::Silent);
    let port = server.addr.port();
    let r = run_at(HOST, port)
        .args(&["--timeout", "5", "--deadline", "1"])
        .run();
    let report = r.json();
    assert_eq!(report["ending"], "deadline");
    assert_check(&report, "tls.account", "fail", Some("timeout"));
    assert!(
        r.elapsed.as_secs_f64() < 2.5,
        "a 1 s deadline took {:?}",
        r.elapsed
    );
}
