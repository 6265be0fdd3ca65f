//! `proxy.env`, `proxy.connect` and the checks around them through real proxies (squid,
//! tinyproxy) started on loopback, plus small fakes for answers no real proxy gives on demand.
//! Each scenario asserts the check id, the verdict and the catalog row.

use crate::support::pki::{self, TempFile, TestPki};
use crate::support::proxies::ProxyKind::{self, Squid, Tinyproxy};
use crate::support::proxies::{FakeBehaviour, FakeProxy, Proxy, ProxyOpts};
use crate::support::run::{Run, assert_check, check, netcheck, run_at};
use crate::support::tls_servers::{TlsServer, TlsServerSpec};
use test_case::test_case;

const HOST: &str = "myorg-myaccount.snowflakecomputing.com";

/// A healthy HTTPS target and the root that trusts it.
fn target() -> (TlsServer, TempFile) {
    let pki = TestPki::new();
    (
        TlsServer::start(TlsServerSpec::new(pki.good())),
        pki.root_pem_file(),
    )
}

/// Runs netcheck for `host` on the target's port with `HTTPS_PROXY=proxy`. No --resolve: through
/// a proxy, the proxy resolves the name (squid from its `hosts_file`), and the local DNS check
/// asks a silent loopback resolver so nothing reaches the machine's own.
fn via_proxy(host: &str, target_port: u16, ca: &TempFile, proxy: &str, extra: &[&str]) -> Run {
    via_proxy_variable(host, target_port, ca, ("HTTPS_PROXY", proxy), extra)
}

/// [`via_proxy`] with the proxy in the variable `variable.0`.
fn via_proxy_variable(
    host: &str,
    target_port: u16,
    ca: &TempFile,
    variable: (&str, &str),
    extra: &[&str],
) -> Run {
    let silent = crate::support::dns::silent_dns();
    let timeout: &[&str] = if extra.contains(&"--timeout") {
        &[]
    } else {
        &["--timeout", "2"]
    };
    netcheck(&[
        "run",
        "--account",
        &format!("https://{host}:{target_port}"),
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
    .env(variable.0, variable.1)
    .run()
}

/// A real proxy of `kind` and the account host netcheck is given through it: squid resolves
/// HOST from its `hosts_file`; tinyproxy resolves names with the system resolver, so it is
/// only ever given an address.
fn real_proxy(kind: ProxyKind, opts: ProxyOpts) -> Option<(Proxy, &'static str)> {
    let host = match kind {
        ProxyKind::Squid => HOST,
        ProxyKind::Tinyproxy => "127.0.0.1",
    };
    let opts = ProxyOpts {
        hosts: vec![(HOST.to_owned(), "127.0.0.1".parse().unwrap())],
        ..opts
    };
    Proxy::start(kind, &opts).map(|proxy| (proxy, host))
}

/// Through a proxy the local DNS check is information: for a name, its local failure (the
/// silent resolver) is not one, as the proxy resolves it; an address needs no lookup. tinyproxy
/// names itself in a `Proxy-agent` header, which the evidence keeps.
#[test_case(Squid, "HTTPS_PROXY", "the proxy", None ; "squid resolving the name")]
#[test_case(Tinyproxy, "https_proxy", "127.0.0.1", Some("tinyproxy/") ; "tinyproxy to an address named in lower case")]
fn through_a_real_proxy_every_check_passes(
    kind: ProxyKind,
    variable: &str,
    dns_finding: &str,
    agent: Option<&str>,
) {
    let (server, ca) = target();
    let Some((proxy, host)) = real_proxy(kind, ProxyOpts::default()) else {
        return;
    };
    let port = server.addr.port();
    let r = via_proxy_variable(host, port, &ca, (variable, &proxy.url()), &[]);
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
    let dns = check(&report, "dns.account")["finding"].as_str().unwrap();
    assert!(dns.contains(dns_finding), "{dns}");
    assert_eq!(
        check(&report, "proxy.env")["evidence"]["decision"]["variable"],
        variable
    );
    assert_eq!(
        check(&report, "tcp.account")["evidence"]["via"],
        proxy.url().trim_end_matches('/')
    );
    let reply = &check(&report, "proxy.connect")["evidence"]["tunnel"]["reply"];
    assert_eq!(reply["status"], 200);
    if let Some(agent) = agent {
        let got = reply["proxy_agent"].as_str().unwrap_or_default();
        assert!(got.starts_with(agent), "{reply}");
    }
    assert_eq!(check(&report, "tls.account")["evidence"]["via_proxy"], true);
    assert!(
        proxy.logged(&format!("CONNECT {host}:{port}")),
        "the tunnel really went through {}:\n{}",
        kind.name(),
        proxy.log()
    );
}

#[test_case(Squid ; "squid")]
#[test_case(Tinyproxy ; "tinyproxy")]
fn a_proxy_denying_connect_is_proxy_denied(kind: ProxyKind) {
    let (server, ca) = target();
    let Some((proxy, host)) = real_proxy(kind, ProxyOpts::deny()) else {
        return;
    };
    let r = via_proxy(host, server.addr.port(), &ca, &proxy.url(), &[]);
    assert_eq!(r.code, 1);
    let report = r.json();
    assert_check(&report, "proxy.connect", "fail", Some("proxy-denied"));
    assert_eq!(
        check(&report, "proxy.connect")["evidence"]["reply"]["status"],
        403
    );
    assert_check(&report, "tls.account", "skip", None);
}

#[test_case(Squid ; "squid")]
#[test_case(Tinyproxy ; "tinyproxy")]
fn a_proxy_demanding_auth_is_proxy_auth_required_and_credentials_work(kind: ProxyKind) {
    let (server, ca) = target();
    let password = "s3cret-proxy-pw";
    let Some((proxy, host)) = real_proxy(kind, ProxyOpts::with_auth("alice", password)) else {
        return;
    };
    let port = server.addr.port();
    let without = via_proxy(host, port, &ca, &proxy.url(), &[]);
    assert_check(
        &without.json(),
        "proxy.connect",
        "fail",
        Some("proxy-auth-required"),
    );
    let with = via_proxy(
        host,
        port,
        &ca,
        &proxy.url_with_auth("alice", password),
        &[],
    );
    assert_eq!(with.code, 0, "{}", with.stdout);
    assert_check(&with.json(), "proxy.connect", "pass", None);
    assert!(
        !with.stdout.contains(password) && !with.stderr.contains(password),
        "the proxy password leaked"
    );
}

#[test]
fn a_proxy_that_is_down_is_proxy_unreachable() {
    let (server, ca) = target();
    let closed = crate::support::tls_servers::closed_port();
    let r = via_proxy(
        HOST,
        server.addr.port(),
        &ca,
        &format!("http://{closed}"),
        &[],
    );
    assert_eq!(r.code, 1);
    let report = r.json();
    assert_check(&report, "tcp.account", "fail", Some("proxy-unreachable"));
    assert_check(&report, "proxy.connect", "skip", None);
    assert_check(&report, "tls.account", "skip", None);
}

#[test]
fn a_malformed_proxy_variable_fails_proxy_env_naming_it() {
    let (server, ca) = target();
    let r = via_proxy(
        HOST,
        server.addr.port(),
        &ca,
        "http://user:hunter2@:8080",
        &[],
    );
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
    let r = tokio::task::spawn_blocking(move || via_proxy(HOST, port, &ca, &proxy, &[]))
        .await
        .unwrap();
    assert_check(&r.json(), "proxy.connect", "fail", Some("proxy-not-http"));
}

/// A three-letter proxy password is a password: the proxy quoting the URL back gets it masked,
/// while the words around it that hold the same letters stay as they are.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_proxy_password_echoed_back_is_masked_and_words_holding_it_are_not() {
    let (server, ca) = target();
    let fake = FakeProxy::start(FakeBehaviour::Reply(
        b"HTTP/1.1 407 no entry for http://netcheck:owl@proxy (howl, owls)\r\nContent-Length: 0\r\n\r\n"
            .to_vec(),
    ))
    .await;
    let port = server.addr.port();
    let proxy = format!("http://netcheck:owl@{}", fake.addr());
    let r = tokio::task::spawn_blocking(move || via_proxy(HOST, port, &ca, &proxy, &[]))
        .await
        .unwrap();
    assert_check(
        &r.json(),
        "proxy.connect",
        "fail",
        Some("proxy-auth-required"),
    );
    assert!(
        r.stdout
            .contains("no entry for http://netcheck:***@proxy (howl, owls)"),
        "{}",
        r.stdout
    );
    for output in [&r.stdout, &r.stderr] {
        assert!(!output.contains(":owl@"), "{output}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_proxy_times_out_within_the_step_timeout() {
    let (server, ca) = target();
    let fake = FakeProxy::start(FakeBehaviour::Silent).await;
    let port = server.addr.port();
    let proxy = format!("http://{}", fake.addr());
    let r = tokio::task::spawn_blocking(move || {
        via_proxy(HOST, port, &ca, &proxy, &["--timeout", "1"])
    })
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
    let Some((squid, host)) = real_proxy(Squid, ProxyOpts::default()) else {
        return;
    };
    let ca = TestPki::new().root_pem_file();
    let r = via_proxy(host, server.addr.port(), &ca, &squid.url(), &[]);
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
        HOST,
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
