//! OAuth 2.0 end to end, through the real binary against the emulator's identity provider (a
//! token endpoint on a host of its own) and its account host: the client-credentials grant and a
//! token the user keeps in a file, each refusal of the identity provider (RFC 6749 §5.2) and of Snowflake
//! (390303, 390309, 390318) with its check id, verdict and catalog row, and the report saying
//! where the token came from, never the token.

use std::path::Path;

use crate::support::emulate::{Emulate, TempDir, spawn_emulator};
use crate::support::run::{Run, assert_check, check, netcheck};
use netcheck::emulator::{Emulator, Fault, default_oauth_secret, defaults};
use netcheck::snowflake::rest::ApiCall;

/// `netcheck run` flags for the emulator's default user with OAuth client credentials (the
/// secret comes from the environment, as it must: there is no flag for it).
fn client_credentials_args(emu: &Emulator, dir: &Path) -> Vec<String> {
    let mut args = common_args(emu, dir);
    args.extend(
        [
            "--authenticator",
            "oauth_client_credentials",
            "--oauth-client-id",
            defaults::OAUTH_CLIENT_ID,
            "--oauth-token-request-url",
            &emu.idp_token_url(),
        ]
        .map(String::from),
    );
    args
}

/// The account, the three hosts pinned to loopback, the CA, the stream target, JSON output.
fn common_args(emu: &Emulator, dir: &Path) -> Vec<String> {
    let port = emu.addr().port();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, emu.ca_pem()).unwrap();
    let resolve = [
        emu.account_host(),
        emu.ingest_host(),
        emu.idp_host(),
        emu.stage_host(),
    ]
    .map(|h| format!("{h}:{port}:127.0.0.1"))
    .join(",");
    [
        "run",
        "--account",
        &format!("https://{}:{port}", emu.account_host()),
        "--resolve",
        &resolve,
        "--ca-file",
        ca.to_str().unwrap(),
        "--role",
        defaults::ROLE,
        "--database",
        defaults::DATABASE,
        "--schema",
        defaults::SCHEMA,
        "--table",
        defaults::TABLE,
        "--format",
        "json",
        "--budget-scale",
        "5",
    ]
    .map(String::from)
    .to_vec()
}

/// Runs the binary off the runtime that serves the emulator.
async fn run(args: Vec<String>, secret: &str) -> Run {
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || {
        netcheck(&args)
            .env("SNOWFLAKE_OAUTH_CLIENT_SECRET", &secret)
            .run()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_carry_discovery_the_token_exchange_and_the_round_trip() {
    let emu = spawn_emulator(|_| {}).await;
    let dir = TempDir::new("oauth-cc");
    let mut args = client_credentials_args(&emu, dir.path());
    args.push("--full".into());
    let r = run(args, default_oauth_secret()).await;
    let report = r.json();
    assert_eq!(r.code, 0, "{report:#}");
    for id in [
        "dns.idp",
        "tcp.idp",
        "tls.idp",
        "auth.oauth",
        "auth.oauth_account",
        "discovery.hostname",
        "auth.scoped_token",
        "stream.open",
        "stream.append",
        "stream.commit",
        "stream.drop",
    ] {
        assert_check(&report, id, "pass", None);
    }
    let origin = format!("client credentials from {}", emu.idp_token_url());
    assert_eq!(check(&report, "auth.oauth")["evidence"]["origin"], origin);
    assert_eq!(
        check(&report, "auth.oauth_account")["evidence"]["origin"],
        origin
    );
    for id in ["auth.keypair", "auth.jwt"] {
        let c = check(&report, id);
        assert_eq!(c["verdict"], "skip", "{c:#}");
        assert!(
            c["finding"].as_str().unwrap().contains("key-pair only"),
            "{c:#}"
        );
    }
    assert!(!r.stdout.contains(default_oauth_secret()));
    // The token went to the IdP's own host, then to the account as OAUTH, on discovery and the
    // scoped-token exchange.
    let log = emu.request_log();
    let idp = log
        .iter()
        .find(|x| x.endpoint == ApiCall::IdpToken)
        .expect("a request to the token endpoint");
    assert_eq!((idp.host.as_str(), idp.status), (emu.idp_host(), 200));
    for call in [ApiCall::Hostname, ApiCall::Token] {
        let x = log.iter().find(|x| x.endpoint == call).unwrap();
        assert_eq!(x.token_type.as_deref(), Some("OAUTH"), "{x:?}");
        assert_eq!(x.status, 200, "{x:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_is_diagnosed_with_its_row() {
    let emu = spawn_emulator(|_| {}).await;
    let dir = TempDir::new("oauth-faults");
    let args = client_credentials_args(&emu, dir.path());
    for (fault, id, verdict, row) in [
        (
            "oauth-error=invalid_request",
            "auth.oauth",
            "fail",
            "oauth-invalid-request",
        ),
        (
            "oauth-error=invalid_client",
            "auth.oauth",
            "fail",
            "oauth-invalid-client",
        ),
        (
            "oauth-error=invalid_grant",
            "auth.oauth",
            "fail",
            "oauth-invalid-grant",
        ),
        (
            "oauth-error=unauthorized_client",
            "auth.oauth",
            "fail",
            "oauth-unauthorized-client",
        ),
        (
            "oauth-error=unsupported_grant_type",
            "auth.oauth",
            "fail",
            "oauth-unsupported-grant-type",
        ),
        (
            "oauth-error=invalid_scope",
            "auth.oauth",
            "fail",
            "oauth-invalid-scope",
        ),
        ("oauth-page", "auth.oauth", "fail", "oauth-idp-answer"),
        ("oauth-redirect", "auth.oauth", "fail", "redirected"),
        ("oauth-oversized", "auth.oauth", "fail", "answer-too-large"),
        (
            "invalid-token@hostname",
            "auth.oauth_account",
            "fail",
            "oauth-token-invalid",
        ),
        (
            "token-wrong-user@hostname",
            "auth.oauth_account",
            "fail",
            "oauth-token-wrong-user",
        ),
        (
            "token-expired@hostname",
            "auth.oauth_account",
            "fail",
            "oauth-token-expired",
        ),
        ("expired-cert@idp", "tls.idp", "fail", "tls-expired"),
    ] {
        emu.set_faults(vec![fault.parse::<Fault>().unwrap()]);
        let r = run(args.clone(), default_oauth_secret()).await;
        let report = r.json();
        assert_eq!(r.code, 1, "{fault}: {report:#}");
        assert_check(&report, id, verdict, Some(row));
        // What depends on the token waits for it, naming the root cause.
        if id == "auth.oauth" {
            assert_check(&report, "discovery.hostname", "skip", None);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_and_an_ungranted_scope_are_refused_by_the_idp_itself() {
    let emu = spawn_emulator(|_| {}).await;
    let dir = TempDir::new("oauth-natural");
    let args = client_credentials_args(&emu, dir.path());
    let r = run(args.clone(), "not-the-secret-at-all").await;
    let report = r.json();
    assert_check(&report, "auth.oauth", "fail", Some("oauth-invalid-client"));
    assert!(!r.stdout.contains("not-the-secret-at-all"), "{}", r.stdout);

    let mut scoped = args;
    scoped.extend(["--oauth-scope", "session:role:NOT_GRANTED"].map(String::from));
    let report = run(scoped, default_oauth_secret()).await.json();
    assert_check(&report, "auth.oauth", "fail", Some("oauth-invalid-scope"));
}

/// `--authenticator oauth --token-file-path FILE` with `FILE` holding `token` at `mode`.
fn token_file_args(emu: &Emulator, dir: &Path, token: &str, mode: u32) -> Vec<String> {
    let file = dir.join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    let mut args = common_args(emu, dir);
    args.extend(
        [
            "--authenticator",
            "oauth",
            "--token-file-path",
            file.to_str().unwrap(),
        ]
        .map(String::from),
    );
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_file_is_used_as_is_and_named_never_shown() {
    let emu = spawn_emulator(|_| {}).await;
    let dir = TempDir::new("oauth-file");
    let token = emu.idp_token(defaults::USER, 600);
    let mut args = token_file_args(&emu, dir.path(), token.expose(), 0o600);
    args.push("--full".into());
    let r = run(args, "").await;
    let report = r.json();
    assert_eq!(r.code, 0, "{report:#}");
    assert_check(&report, "auth.oauth", "pass", None);
    assert_check(&report, "auth.oauth_account", "pass", None);
    assert_check(&report, "stream.commit", "pass", None);
    let file = dir.path().join("token");
    assert_eq!(
        check(&report, "auth.oauth")["evidence"]["origin"],
        format!(
            "token_file_path {} (0600) from --token-file-path",
            file.display()
        )
    );
    // No IdP under a token of one's own: its checks do not apply.
    let idp = check(&report, "dns.idp");
    assert_eq!(idp["verdict"], "skip");
    assert!(
        idp["finding"]
            .as_str()
            .unwrap()
            .contains("oauth_client_credentials"),
        "{idp:#}"
    );
    assert!(!r.stdout.contains(token.expose().as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_files_others_can_read_expired_or_garbage_are_diagnosed() {
    let emu = spawn_emulator(|_| {}).await;
    let dir = TempDir::new("oauth-file-bad");
    let good = emu.idp_token(defaults::USER, 600);
    let expired = emu.idp_token(defaults::USER, -120);
    for (token, mode, id, verdict, row) in [
        (
            good.expose().as_str(),
            0o644,
            "auth.oauth",
            "warn",
            "token-file-permissions",
        ),
        (
            expired.expose().as_str(),
            0o600,
            "auth.oauth",
            "fail",
            "oauth-token-expired",
        ),
        (
            "not-a-token-at-all",
            0o600,
            "auth.oauth_account",
            "fail",
            "oauth-token-invalid",
        ),
    ] {
        let args = token_file_args(&emu, dir.path(), token, mode);
        let report = run(args, "").await.json();
        assert_check(&report, id, verdict, Some(row));
    }
}

#[test]
fn emulate_writes_an_oauth_connection_that_passes_the_full_run() {
    let emu = Emulate::start(&[]);
    let mut run = netcheck(&[
        "run",
        "--connection",
        "emulator_oauth",
        "--full",
        "--format",
        "json",
        "--budget-scale",
        "5",
    ]);
    for (k, v) in emu.env() {
        run = run.env(&k, &v);
    }
    let r = run.run();
    let report = r.json();
    assert_eq!(r.code, 0, "{report:#}");
    for id in [
        "tls.idp",
        "auth.oauth",
        "auth.oauth_account",
        "stream.commit",
    ] {
        assert_check(&report, id, "pass", None);
    }
    let connections = std::fs::read_to_string(emu.dir.path().join("connections.toml")).unwrap();
    let table: toml::Table = toml::from_str(&connections).unwrap();
    let entry = &table["connections"]["emulator_oauth"];
    assert_eq!(
        entry["authenticator"].as_str(),
        Some("OAUTH_CLIENT_CREDENTIALS")
    );
    let secret = entry["oauth_client_secret"].as_str().unwrap();
    assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(emu.dir.path().join("connections.toml"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "connections.toml holds the client secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_programmatic_access_token_is_recognised_and_said_to_be_unused() {
    let emu = spawn_emulator(|_| {}).await;
    let dir = TempDir::new("oauth-pat");
    let mut args = common_args(&emu, dir.path());
    args.extend(["--authenticator", "programmatic_access_token"].map(String::from));
    let report = run(args, "").await.json();
    for id in ["auth.keypair", "auth.oauth"] {
        let c = check(&report, id);
        assert_eq!(c["verdict"], "skip", "{c:#}");
        assert!(
            c["finding"]
                .as_str()
                .unwrap()
                .contains("does not list Snowpipe Streaming"),
            "{c:#}"
        );
    }
}

/// The token endpoint is reached the way every other host is: through the proxy `HTTPS_PROXY`
/// names (a real squid resolving the emulator's names from its hosts file). Allowed, the grant
/// goes through it; refused by the proxy's destination ACL, `tls.idp` names the proxy's 403
/// while the account host stays fine.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_goes_through_the_proxy_like_every_host() {
    use crate::support::proxies::{Policy, Proxy, ProxyKind, ProxyOpts};
    let emu = spawn_emulator(|_| {}).await;
    let dir = TempDir::new("oauth-proxy");
    let hosts: Vec<(String, std::net::IpAddr)> = [
        emu.account_host(),
        emu.ingest_host(),
        emu.idp_host(),
        emu.stage_host(),
    ]
    .map(|h| (h.to_owned(), "127.0.0.1".parse().unwrap()))
    .to_vec();
    for (policy, tls_idp, row) in [
        (Policy::AllowAll, "pass", None),
        (
            Policy::DenyHosts(vec![emu.idp_host().to_owned()]),
            "fail",
            Some("proxy-denied"),
        ),
    ] {
        let opts = ProxyOpts {
            policy,
            hosts: hosts.clone(),
            ..ProxyOpts::default()
        };
        let Some(proxy) = Proxy::start(ProxyKind::Squid, &opts) else {
            return;
        };
        let mut args = client_credentials_args(&emu, dir.path());
        args.extend(["--proxy".to_owned(), proxy.url()]);
        let report = run(args, default_oauth_secret()).await.json();
        assert_check(&report, "tls.account", "pass", None);
        assert_check(&report, "tls.idp", tls_idp, row);
        if row.is_none() {
            assert_check(&report, "auth.oauth", "pass", None);
            assert!(proxy.logged(emu.idp_host()), "{}", proxy.log());
        } else {
            assert_check(&report, "auth.oauth", "skip", None);
        }
    }
}
