//! `allowlist.hosts` with the JSON output of `SYSTEM$ALLOWLIST()`: hosts resolved by a real
//! dnsmasq, connected to on loopback; a failure names the host type and what failed. And the
//! SQL-API path against the emulator when a warehouse is configured.

mod support;

use support::dns::dnsmasq;
use support::emulate::TempDir;
use support::run::{assert_check, check, netcheck};

#[test]
fn every_listed_host_is_checked_and_failures_name_their_type() {
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    // A host with only an AAAA record is still reachable: the bulk lookup falls back to it.
    let v6_listener = std::net::TcpListener::bind("[::1]:0").unwrap();
    let v6_port = v6_listener.local_addr().unwrap().port();
    let closed_port = support::tls_servers::closed_port().port();
    let Some(dns) = dnsmasq(&[
        "--host-record=myorg-myaccount.snowflakecomputing.com,127.0.0.1",
        "--host-record=sfc-stage.s3.example.test,127.0.0.1",
        "--host-record=ocsp.snowflakecomputing.com,127.0.0.1",
        "--host-record=v6only.example.test,::1",
        "--local=/snowflakecomputing.com/",
        "--local=/example.test/",
    ]) else {
        return;
    };
    let dir = TempDir::new("allowlist");
    let file = dir.path().join("allowlist.json");
    std::fs::write(
        &file,
        format!(
            r#"[{{"type":"SNOWFLAKE_DEPLOYMENT","host":"myorg-myaccount.snowflakecomputing.com","port":{open_port}}},
               {{"type":"STAGE","host":"sfc-stage.s3.example.test","port":{open_port}}},
               {{"type":"CLIENT_FAILOVER","host":"v6only.example.test","port":{v6_port}}},
               {{"type":"OCSP_CACHE","host":"ocsp.snowflakecomputing.com","port":{closed_port}}},
               {{"type":"OUT_OF_BAND_TELEMETRY","host":"nosuch.snowflakecomputing.com","port":{open_port}}},
               {{"type":"APP_SERVICE_PUBLIC_WILDCARD","host":"*.myorg.snowflake.app","port":443}}]"#
        ),
    )
    .unwrap();
    let r = netcheck(&[
        "run",
        "--account",
        "myorg-myaccount",
        "--dns-server",
        &dns.addr.to_string(),
        "--only",
        "allowlist.hosts",
        "--allowlist",
        file.to_str().unwrap(),
        "--format",
        "json",
    ])
    .run();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    assert_check(
        &report,
        "allowlist.hosts",
        "fail",
        Some("allowlist-unreachable"),
    );
    let c = check(&report, "allowlist.hosts");
    let finding = c["finding"].as_str().unwrap();
    assert!(finding.starts_with("2 of 5 unreachable"), "{finding}");
    assert!(
        finding.contains("OCSP_CACHE") && finding.contains("OUT_OF_BAND_TELEMETRY"),
        "{finding}"
    );
    let hosts = c["evidence"]["hosts"].as_array().unwrap();
    let by_type = |t: &str| hosts.iter().find(|h| h["type"] == t).unwrap();
    assert_eq!(by_type("STAGE")["ok"], true);
    assert_eq!(by_type("CLIENT_FAILOVER")["ok"], true, "AAAA-only host");
    assert_eq!(by_type("OCSP_CACHE")["failed_at"], "connect");
    assert_eq!(by_type("OUT_OF_BAND_TELEMETRY")["failed_at"], "dns");
    assert_eq!(
        c["evidence"]["skipped_wildcards"],
        serde_json::json!(["*.myorg.snowflake.app"])
    );
}

#[test]
fn a_malformed_allowlist_file_is_a_usage_error() {
    let dir = TempDir::new("allowlist-bad");
    let file = dir.path().join("bad.json");
    std::fs::write(&file, "{\"not\": \"a list\"}").unwrap();
    let r = netcheck(&[
        "run",
        "--account",
        "myorg-a",
        "--allowlist",
        file.to_str().unwrap(),
    ])
    .run();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("SYSTEM$ALLOWLIST"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_warehouse_the_list_comes_from_the_sql_api() {
    let emu = support::emulate::spawn_emulator(|_| {}).await;
    let dir = TempDir::new("allowlist-sql");
    let mut args = support::emulate::run_args(&emu, dir.path());
    args.extend(["--warehouse", "COMPUTE_WH", "--format", "json"].map(String::from));
    let report = tokio::task::spawn_blocking(move || netcheck(&args).run().json())
        .await
        .unwrap();
    assert_check(&report, "allowlist.hosts", "pass", None);
    assert_eq!(
        check(&report, "allowlist.hosts")["evidence"]["source"],
        "SELECT SYSTEM$ALLOWLIST()"
    );
}
