//! The stage checks (`stage.info`, `dns.stage`, `tcp.stage`, `tls.stage`, `stage.reach`) through
//! the real binary, against the emulator whose `:pipe-info` names a stage served by a real
//! S3-compatible server (moto, TLS on loopback) — or, for each fault, by a real server that
//! misbehaves the way a network does: nothing listening, a TLS-inspecting middlebox, a squid that
//! denies the storage host, a page that is not the provider's, a reset, silence. Each diagnosis
//! asserts check id, verdict and row, with the ingest host fine (the round trip still commits).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use crate::support::emulate::{TempDir, run_args_at, spawn_emulator};
use crate::support::pki::{ServerCert, TestPki, inspection_ca};
use crate::support::proxies::{Proxy, ProxyKind, ProxyOpts};
use crate::support::run::{assert_check, check, netcheck};
use crate::support::storage::Moto;
use crate::support::tls_servers::{Background, TlsServer, TlsServerSpec, accept_loop, closed_port};

/// The storage endpoint the emulator names in these tests; the stage host is
/// `netcheck-emulator-stage.` + this.
const ENDPOINT_HOST: &str = "moto.netcheck.test";
const STAGE_HOST: &str = "netcheck-emulator-stage.moto.netcheck.test";

/// The step timeout for runs whose stage misbehaves (the silent server waits it out).
const TIMEOUT: &[&str] = &["--timeout", "3"];
/// For runs against moto, which loads its S3 backend on the first request (seconds on a loaded
/// machine).
const MOTO_TIMEOUT: &[&str] = &["--timeout", "20"];

/// Runs `netcheck run --full --format json` against an in-process emulator whose stage is
/// `stage_port` on loopback, trusting the emulator's CA and `extra_ca`; `extra` args (at least
/// `--timeout`) and `env` appended. Returns the exit code and the report.
async fn run_with_stage(
    stage_port: u16,
    extra_ca: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (i32, Value) {
    let emu = spawn_emulator(|c| c.stage = Some(format!("{ENDPOINT_HOST}:{stage_port}"))).await;
    assert_eq!(emu.stage_host(), STAGE_HOST);
    let dir = TempDir::new("stage");
    let ca = format!("{}{extra_ca}", emu.ca_pem());
    let mut args = run_args_at(&emu, dir.path(), emu.addr().port(), &ca);
    args.extend(
        [
            "--full",
            "--format",
            "json",
            "--budget-scale",
            "5",
            "--resolve",
            &format!("{STAGE_HOST}:{stage_port}:127.0.0.1"),
        ]
        .map(str::to_owned),
    );
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut run = netcheck(&args);
    for (k, v) in env {
        run = run.env(k, v);
    }
    let r = tokio::task::spawn_blocking(move || run.run())
        .await
        .unwrap();
    (r.code, r.json())
}

/// The ingest side is fine whatever happens to the stage: rows still commit over REST.
#[track_caller]
fn ingest_fine(report: &Value) {
    for id in ["tls.ingest", "stream.open", "stream.commit"] {
        assert_check(report, id, "pass", None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_run_checks_the_stage_moto_serves_and_only_reads_it() {
    let pki = TestPki::new();
    let Some(moto) = Moto::start(&pki.for_hosts(&[STAGE_HOST])) else {
        return;
    };
    let (code, report) = run_with_stage(moto.port, &pki.root_pem(), MOTO_TIMEOUT, &[]).await;
    assert_eq!(code, 0, "{report:#}");
    for id in [
        "stage.info",
        "dns.stage",
        "tcp.stage",
        "tls.stage",
        "stage.reach",
    ] {
        assert_check(&report, id, "pass", None);
    }
    ingest_fine(&report);
    let info = &check(&report, "stage.info")["evidence"];
    assert_eq!(info["source"], "pipe-info");
    assert_eq!(info["stage"]["provider"], "S3");
    assert_eq!(info["stage"]["host"], STAGE_HOST);
    assert_eq!(info["stage"]["port"], moto.port);
    // moto answers an object that does not exist with S3's XML error. Its request id comes in
    // `x-amzn-requestid` (not S3's `x-amz-request-id`), which is no S3 marker: the XML is what
    // shows the provider answered.
    let reach = &check(&report, "stage.reach")["evidence"];
    assert_eq!(reach["status"], 404, "{reach:#}");
    assert_eq!(reach["storage_answer"]["error_code"], "NoSuchBucket");
    assert!(
        reach["storage_answer"]["marker_header"].is_null(),
        "{reach:#}"
    );
    let requests = moto.requests();
    assert_eq!(requests.len(), 1, "one anonymous request: {requests:?}");
    assert!(
        requests[0].starts_with("GET /streaming/netcheck-probe-"),
        "a read, never a write: {requests:?}"
    );
    // The upload credentials of the :pipe-info answer appear nowhere.
    assert!(!report.to_string().contains("EMULATOR-NOT-A-REAL"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_with_nothing_listening_is_refused_at_tcp() {
    let port = closed_port().port();
    let (code, report) = run_with_stage(port, "", TIMEOUT, &[]).await;
    assert_eq!(code, 1);
    assert_check(&report, "dns.stage", "pass", None);
    assert_check(&report, "tcp.stage", "fail", Some("connection-refused"));
    let finding = check(&report, "tcp.stage")["finding"].as_str().unwrap();
    assert!(finding.starts_with("S3 stage: "), "{finding}");
    assert_eq!(check(&report, "stage.reach")["verdict"], "skip");
    ingest_fine(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_behind_a_tls_inspecting_middlebox_is_named_inspection() {
    let (cert, _ca) = inspection_ca();
    let server = TlsServer::start(TlsServerSpec::new(cert));
    let (code, report) = run_with_stage(server.addr.port(), "", TIMEOUT, &[]).await;
    assert_eq!(code, 1);
    assert_check(&report, "tls.stage", "fail", Some("tls-inspection"));
    let finding = check(&report, "tls.stage")["finding"].as_str().unwrap();
    assert!(
        finding.contains("S3 stage") && finding.contains("Zscaler"),
        "{finding}"
    );
    ingest_fine(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn squid_denying_the_storage_host_is_named_at_tls_stage() {
    let pki = TestPki::new();
    let Some(moto) = Moto::start(&pki.for_hosts(&[STAGE_HOST])) else {
        return;
    };
    let mut opts = ProxyOpts::deny_hosts(&[STAGE_HOST]);
    opts.hosts = vec![(STAGE_HOST.to_owned(), "127.0.0.1".parse().unwrap())];
    let Some(squid) = Proxy::start(ProxyKind::Squid, &opts) else {
        return;
    };
    // Only the stage goes through the proxy, as a proxy that only storage traffic needs.
    let no_proxy = "myorg-myaccount.snowflakecomputing.com,\
                    myorg-myaccount.us-west-2.ingest.snowflakecomputing.com";
    let (code, report) = run_with_stage(
        moto.port,
        &pki.root_pem(),
        MOTO_TIMEOUT,
        &[("HTTPS_PROXY", &squid.url()), ("NO_PROXY", no_proxy)],
    )
    .await;
    assert_eq!(code, 1);
    assert_check(&report, "tcp.stage", "pass", None);
    assert_check(&report, "tls.stage", "fail", Some("proxy-denied"));
    assert!(squid.logged(STAGE_HOST), "{}", squid.log());
    assert!(moto.requests().is_empty(), "squid let nothing through");
    ingest_fine(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_is_not_the_providers_is_a_block_page() {
    // A trusted TLS server for the stage host that answers everything 200 text/plain: a
    // transparent proxy or firewall whose CA this machine trusts.
    let pki = TestPki::new();
    let server = TlsServer::start(TlsServerSpec::new(pki.for_hosts(&[STAGE_HOST])));
    let (code, report) = run_with_stage(server.addr.port(), &pki.root_pem(), TIMEOUT, &[]).await;
    assert_eq!(code, 1);
    assert_check(&report, "tls.stage", "pass", None);
    assert_check(&report, "stage.reach", "fail", Some("stage-block-page"));
    assert_eq!(check(&report, "stage.reach")["evidence"]["status"], 200);
    ingest_fine(&report);
}

/// What a stage server does once it has read the request.
#[derive(Clone, Copy)]
enum Then {
    /// Resets the connection.
    Reset,
    /// Holds it without a word.
    Silence,
    /// Answers a whole 403 HTML page (with `Content-Length`) and keeps the connection open, as
    /// an intercepting proxy on keep-alive does.
    BlockPageKeptOpen,
    /// Sends half a status line and headers, then resets.
    ResetInTheHead,
    /// Answers a page that quotes the stage credentials the emulator's `:pipe-info` handed out.
    EchoCredentials,
}

/// The credentials in the emulator's `:pipe-info` answer (`creds`, `encryption_info.pipe_key`:
/// 32 bytes, as the emulator hands it out when a stage server is configured, as here).
const PIPE_INFO_CREDENTIALS: &[&str] = &[
    "EMULATOR-NOT-A-REAL-KEY",
    "EMULATOR-NOT-A-REAL-SECRET",
    "EMULATOR-NOT-A-REAL-TOKEN",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
];

/// A block page as a proxy answers it.
const BLOCK_PAGE: &str = "<html><head><title>Access Denied</title></head><body>Uploads to cloud storage are blocked by policy.</body></html>";

/// A TLS server for the stage host that reads the request and then does `then`.
fn after_request(cert: ServerCert, then: Then) -> (SocketAddr, Background) {
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(cert.chain, cert.key)
    .unwrap();
    let acceptor = TlsAcceptor::from(std::sync::Arc::new(config));
    Background::spawn(move |listener| {
        accept_loop(listener, move |tcp| {
            let acceptor = acceptor.clone();
            async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                if tls.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                let answer = match then {
                    Then::Reset | Then::Silence => String::new(),
                    Then::BlockPageKeptOpen => format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\
                         Content-Length: {}\r\nConnection: keep-alive\r\n\r\n{BLOCK_PAGE}",
                        BLOCK_PAGE.len()
                    ),
                    Then::ResetInTheHead => "HTTP/1.1 403 Forbidden\r\nContent-Ty".to_owned(),
                    Then::EchoCredentials => {
                        let page = format!("denied for {}", PIPE_INFO_CREDENTIALS.join(" "));
                        format!(
                            "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\
                             \r\n{page}",
                            page.len()
                        )
                    }
                };
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.flush().await;
                if matches!(then, Then::ResetInTheHead) {
                    // Time for the client to read the half head before the RST arrives: data
                    // still unread when it does is discarded, and only the reset is seen.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                if matches!(then, Then::Reset | Then::ResetInTheHead) {
                    // SO_LINGER 0: the close sends a RST.
                    let _ = tls.get_ref().0.set_zero_linger();
                } else {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
        })
    })
}

/// A full run whose stage server does `then` after the request: the run fails at
/// `stage.reach` with `row`, with TLS to the stage and the ingest side fine. The report.
async fn reach_fails(then: Then, row: &str) -> Value {
    let pki = TestPki::new();
    let (addr, _server) = after_request(pki.for_hosts(&[STAGE_HOST]), then);
    let (code, report) = run_with_stage(addr.port(), &pki.root_pem(), TIMEOUT, &[]).await;
    assert_eq!(code, 1);
    assert_check(&report, "tls.stage", "pass", None);
    assert_check(&report, "stage.reach", "fail", Some(row));
    ingest_fine(&report);
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_or_silence_after_the_request_has_its_own_row() {
    reach_fails(Then::Reset, "stage-reset").await;
    reach_fails(Then::ResetInTheHead, "stage-reset").await;
    reach_fails(Then::Silence, "stage-timeout").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_block_page_on_a_connection_kept_open_is_named_at_once() {
    let report = reach_fails(Then::BlockPageKeptOpen, "stage-block-page").await;
    let evidence = &check(&report, "stage.reach")["evidence"];
    assert_eq!(evidence["status"], 403);
    assert!(
        evidence["excerpt"]
            .as_str()
            .is_some_and(|e| e.contains("blocked by policy")),
        "{evidence}"
    );
    // Judged when the answer was whole, not when the 3 s step timeout ran out.
    let elapsed = evidence["elapsed"].as_f64().unwrap();
    assert!(elapsed < 2000.0, "{evidence}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_credentials_echoed_by_a_server_are_masked() {
    let report = reach_fails(Then::EchoCredentials, "stage-block-page").await;
    let excerpt = check(&report, "stage.reach")["evidence"]["excerpt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(excerpt, "denied for *** *** *** ***");
    let text = report.to_string();
    for credential in PIPE_INFO_CREDENTIALS {
        assert!(!text.contains(credential), "{credential} in the report");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_location_without_a_host_is_unusable() {
    let emu = spawn_emulator(|c| c.stage = Some(format!("{ENDPOINT_HOST}:not-a-port"))).await;
    let dir = TempDir::new("stage");
    let mut args = run_args_at(&emu, dir.path(), emu.addr().port(), emu.ca_pem());
    args.extend(["--full", "--format", "json", "--budget-scale", "5"].map(str::to_owned));
    let r = tokio::task::spawn_blocking(move || netcheck(&args).run())
        .await
        .unwrap();
    let report = r.json();
    assert_check(
        &report,
        "stage.info",
        "fail",
        Some("stage-location-unusable"),
    );
    assert_eq!(check(&report, "dns.stage")["verdict"], "skip");
    ingest_fine(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_table_an_allowlist_stage_entry_feeds_the_stage_checks() {
    // A STAGE entry names its provider by its domain (`.s3.` here).
    const STAGE_HOST: &str = "sfc-stage.s3.moto.netcheck.test";
    let pki = TestPki::new();
    let Some(moto) = Moto::start(&pki.for_hosts(&[STAGE_HOST])) else {
        return;
    };
    let emu = spawn_emulator(|_| {}).await;
    let dir = TempDir::new("stage");
    let ca = format!("{}{}", emu.ca_pem(), pki.root_pem());
    let mut args = run_args_at(&emu, dir.path(), emu.addr().port(), &ca);
    // No table: :pipe-info has nothing to ask about.
    let at = args.iter().position(|a| a == "--table").unwrap();
    args.drain(at..at + 2);
    let allowlist = dir.path().join("allowlist.json");
    std::fs::write(
        &allowlist,
        format!(
            r#"[{{"type":"STAGE","host":"{STAGE_HOST}","port":{}}}]"#,
            moto.port
        ),
    )
    .unwrap();
    args.extend(
        [
            "--full".to_owned(),
            "--format".into(),
            "json".into(),
            "--allowlist".into(),
            allowlist.display().to_string(),
            "--resolve".into(),
            format!("{STAGE_HOST}:{}:127.0.0.1", moto.port),
        ]
        .into_iter()
        .chain(MOTO_TIMEOUT.iter().map(|s| (*s).to_owned())),
    );
    let r = tokio::task::spawn_blocking(move || netcheck(&args).run())
        .await
        .unwrap();
    let report = r.json();
    assert_check(&report, "stage.info", "pass", None);
    assert_eq!(
        check(&report, "stage.info")["evidence"]["source"],
        "allowlist"
    );
    assert_check(&report, "stage.reach", "pass", None);
    assert_eq!(moto.requests().len(), 1);
}
