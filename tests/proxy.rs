//! `proxy.env`, `proxy.connect` and the checks around them through real proxies (squid,
//! tinyproxy) started on loopback, plus small fakes for answers no real proxy gives on demand.
//! Each scenario asserts the check id, the verdict and the catalog row.

mod support;

use support::pki::{self, TestPki};
use support::proxies::{FakeBehaviour, FakeProxy, ProxyOpts, Squid, Tinyproxy};
use support::run::{Run, assert_check, check, netcheck, run_at};
use support::tls_servers::{TlsServer, TlsServerSpec};

const HOST: &str = "myorg-myaccount.snowflakecomputing.com";

/// A healthy HTTPS target and the root that trusts it.
fn target() -> (TlsServer, support::pki::TempFile) {
    let pki = TestPki::new();
    (
        TlsServer::start(TlsServerSpec::new(pki.good())),
        pki.root_pem_file(),
    )
}

/// Runs netcheck for HOST on the target's port with `HTTPS_PROXY=proxy`. No --resolve: through
/// a proxy, the proxy resolves the name (squid from its `hosts_file`), and the local DNS check asks
/// a silent loopback resolver so nothing reaches the machine's own.
fn via_proxy(target_port: u16, ca: &support::pki::TempFile, proxy: &str, extra: &[&str]) -> Run {
    let silent = support::dns::silent_dns();
    let timeout: &[&str] = if extra.contains(&"--timeout") {
        &[]
    } else {
        &["--timeout", "2"]
    };
    netcheck(&[
        "run",
        "--account",
        &format!("https://{HOST}:{target_port}"),
        "--format",
        "json",
    ])
    .args(timeout)
    .args(&[
        "--dns-server",
        &silent.local_addr().unwrap().to_string(),
        "--ca-file",
        ca.path().to_str().unwrap(),
    ])
    .args(extra)
    .env("HTTPS_PROXY", proxy)
    .run()
}

fn squid_for_host(opts: ProxyOpts) -> Option<Squid> {
    Squid::start(&ProxyOpts {
        hosts: vec![(HOST.to_owned(), "127.0.0.1".parse().unwrap())],
        ..opts
    })
}

#[test]
fn through_squid_everything_passes_and_local_dns_failure_is_information() {
    let (server, ca) = target();
    let Some(squid) = squid_for_host(ProxyOpts::default()) else {
        return;
    };
    let r = via_proxy(server.addr.port(), &ca, &squid.url(), &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    for id in [
        "proxy.env",
        "dns.account",
        "tcp.account",
        "proxy.connect",
        "tls.account",
    ] {
        assert_check(&report, id, "pass", None);
    }
    assert!(
        check(&report, "dns.account")["finding"]
            .as_str()
            .unwrap()
            .contains("the proxy")
    );
    assert_eq!(
        check(&report, "proxy.env")["evidence"]["decision"]["variable"],
        "HTTPS_PROXY"
    );
    assert_eq!(
        check(&report, "tcp.account")["evidence"]["via"],
        squid.url().trim_end_matches('/')
    );
    assert_eq!(
        check(&report, "proxy.connect")["evidence"]["tunnel"]["reply"]["status"],
        200
    );
    assert_eq!(check(&report, "tls.account")["evidence"]["via_proxy"], true);
    assert!(
        squid.access_log().contains(HOST),
        "the tunnel really went through squid"
    );
}

#[test]
fn squid_denying_connect_is_proxy_denied() {
    let (server, ca) = target();
    let Some(squid) = squid_for_host(ProxyOpts::deny()) else {
        return;
    };
    let r = via_proxy(server.addr.port(), &ca, &squid.url(), &[]);
    assert_eq!(r.code, 1);
    let report = r.json();
    assert_check(&report, "proxy.connect", "fail", Some("proxy-denied"));
    assert_eq!(
        check(&report, "proxy.connect")["evidence"]["reply"]["status"],
        403
    );
    assert_check(&report, "tls.account", "skip", None);
}

#[test]
fn squid_demanding_auth_is_proxy_auth_required_and_credentials_work() {
    let (server, ca) = target();
    let Some(squid) = squid_for_host(ProxyOpts::with_auth("alice", "s3cret-proxy-pw")) else {
        return;
    };
    let without = via_proxy(server.addr.port(), &ca, &squid.url(), &[]);
    assert_check(
        &without.json(),
        "proxy.connect",
        "fail",
        Some("proxy-auth-required"),
    );
    let with = via_proxy(
        server.addr.port(),
        &ca,
        &squid.url_with_auth("alice", "s3cret-proxy-pw"),
        &[],
    );
    assert_eq!(with.code, 0, "{}", with.stdout);
    assert_check(&with.json(), "proxy.connect", "pass", None);
    assert!(
        !with.stdout.contains("s3cret-proxy-pw") && !with.stderr.contains("s3cret-proxy-pw"),
        "the proxy password leaked"
    );
}

#[test]
fn through_tinyproxy_to_an_address() {
    // tinyproxy resolves names with the system resolver, so it is only ever given an address.
    let (server, ca) = target();
    let Some(tiny) = Tinyproxy::start(&ProxyOpts::default()) else {
        return;
    };
    let port = server.addr.port();
    let r = netcheck(&[
        "run",
        "--account",
        &format!("https://127.0.0.1:{port}"),
        "--format",
        "json",
        "--ca-file",
        ca.path().to_str().unwrap(),
    ])
    .env("https_proxy", &tiny.url())
    .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    let report = r.json();
    assert_check(&report, "proxy.connect", "pass", None);
    assert!(
        check(&report, "proxy.connect")["evidence"]["tunnel"]["reply"]["proxy_agent"]
            .as_str()
            .unwrap_or_default()
            .contains("tinyproxy")
    );
    assert_check(&report, "tls.account", "pass", None);
}

#[test]
fn a_proxy_that_is_down_is_proxy_unreachable() {
    let (server, ca) = target();
    let closed = support::tls_servers::closed_port();
    let r = via_proxy(server.addr.port(), &ca, &format!("http://{closed}"), &[]);
    assert_eq!(r.code, 1);
    let report = r.json();
    assert_check(&report, "tcp.account", "fail", Some("proxy-unreachable"));
    assert_check(&report, "proxy.connect", "skip", None);
    assert_check(&report, "tls.account", "skip", None);
}

#[test]
fn a_malformed_proxy_variable_fails_proxy_env_naming_it() {
    let (server, ca) = target();
    let r = via_proxy(server.addr.port(), &ca, "http://user:hunter2@:8080", &[]);
    assert_eq!(r.code, 1);
    let report = r.json();
    assert_check(&report, "proxy.env", "fail", Some("proxy-bad-url"));
    let finding = check(&report, "proxy.env")["finding"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(finding.contains("HTTPS_PROXY"), "{finding}");
    assert!(
        !r.stdout.contains("hunter2"),
        "the password in a malformed URL leaked"
    );
    assert_check(&report, "tcp.account", "skip", None);
}

#[test]
fn no_proxy_sends_the_host_direct() {
    let (server, ca) = target();
    let port = server.addr.port();
    let r = run_at(HOST, port)
        .args(&["--ca-file", ca.path().to_str().unwrap()])
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "localhost,.snowflakecomputing.com")
        .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    let report = r.json();
    assert!(
        check(&report, "proxy.env")["finding"]
            .as_str()
            .unwrap()
            .contains(".snowflakecomputing.com")
    );
    assert_check(&report, "proxy.connect", "skip", None);
    assert_check(&report, "tls.account", "pass", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_does_not_speak_http_is_proxy_not_http() {
    let (server, ca) = target();
    let fake = FakeProxy::start(FakeBehaviour::Reply(
        b"\x15\x03\x01\x00\x02\x02\x46".to_vec(),
    ))
    .await;
    let port = server.addr.port();
    let proxy = format!("http://{}", fake.addr());
    let r = tokio::task::spawn_blocking(move || via_proxy(port, &ca, &proxy, &[]))
        .await
        .unwrap();
    assert_check(&r.json(), "proxy.connect", "fail", Some("proxy-not-http"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_proxy_times_out_within_the_step_timeout() {
    let (server, ca) = target();
    let fake = FakeProxy::start(FakeBehaviour::Silent).await;
    let port = server.addr.port();
    let proxy = format!("http://{}", fake.addr());
    let r = tokio::task::spawn_blocking(move || via_proxy(port, &ca, &proxy, &["--timeout", "1"]))
        .await
        .unwrap();
    assert_check(&r.json(), "proxy.connect", "fail", Some("timeout"));
    assert!(r.elapsed.as_secs_f64() < 4.0, "took {:?}", r.elapsed);
}

#[test]
fn tls_interception_through_a_proxy_is_tls_inspection() {
    // The proxy tunnels to a server whose certificate comes from a CA nobody trusts: with a
    // proxy in the path, that is what an inspecting proxy looks like.
    let (cert, _) = pki::unknown_ca();
    let server = TlsServer::start(TlsServerSpec::new(cert));
    let Some(squid) = squid_for_host(ProxyOpts::default()) else {
        return;
    };
    let ca = TestPki::new().root_pem_file();
    let r = via_proxy(server.addr.port(), &ca, &squid.url(), &[]);
    assert_check(&r.json(), "tls.account", "fail", Some("tls-inspection"));
}

#[test]
fn an_https_proxy_whose_certificate_names_another_host_is_a_proxy_tls_failure() {
    // A TLS server stands in for the proxy: the failure is the first leg, before any CONNECT.
    let (server, ca) = target();
    let pki = TestPki::new();
    let proxy = TlsServer::start(TlsServerSpec::new(pki.wrong_host()));
    let proxy_ca = pki.root_pem_file();
    let r = via_proxy(
        server.addr.port(),
        &ca,
        &format!("https://{}", proxy.addr),
        &["--proxy-cacert", proxy_ca.path().to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let report = r.json();
    assert_check(
        &report,
        "proxy.connect",
        "fail",
        Some("proxy-tls-handshake"),
    );
    assert_eq!(
        check(&report, "proxy.connect")["evidence"]["proxy_tls"]["kind"],
        "hostname_mismatch"
    );
    assert_check(&report, "tls.account", "skip", None);
}
