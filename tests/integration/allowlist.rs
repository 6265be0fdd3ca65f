//! `allowlist.hosts` with the JSON output of `SYSTEM$ALLOWLIST()`: hosts resolved by a real
//! dnsmasq, connected to on loopback; a failure names the host type and what failed. And the
//! SQL-API path against the emulator when a warehouse is configured.

use std::time::{Duration, Instant};

use crate::support::dns::dnsmasq;
use crate::support::emulate::TempDir;
use crate::support::run::{assert_check, check, netcheck};

#[test]
fn every_listed_host_is_checked_and_failures_name_their_type() {
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    // A host with only an AAAA record is still reachable: the bulk lookup falls back to it.
    let v6_listener = std::net::TcpListener::bind("[::1]:0").unwrap();
    let v6_port = v6_listener.local_addr().unwrap().port();
    let closed_port = crate::support::tls_servers::closed_port().port();
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
    let emu = crate::support::emulate::spawn_emulator(|_| {}).await;
    let dir = TempDir::new("allowlist-sql");
    let mut args = crate::support::emulate::run_args(&emu, dir.path());
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

/// A DNS server that never answers records when each query arrives, for which name and record
/// type: with `--concurrency 2`, six hosts must reach it two at a time (a slot frees only when a
/// lookup times out), and a reachability probe asks for the A record alone.
#[test]
fn at_most_concurrency_hosts_are_probed_at_once() {
    const HOSTS: usize = 6;
    const TIMEOUT: Duration = Duration::from_millis(600);
    let dns = crate::support::dns::silent_dns();
    let dns_addr = dns.local_addr().unwrap();
    let listener = std::thread::spawn(move || {
        let start = Instant::now();
        // The binary may be slow to start on a loaded machine: wait long for its first query;
        // after that, quiet for two timeouts means netcheck has given up on every host.
        dns.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut queries = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = dns.recv(&mut buf) {
            let (name, qtype) = question(&buf[..n]);
            queries.push((start.elapsed(), name, qtype));
            dns.set_read_timeout(Some(TIMEOUT * 2)).unwrap();
        }
        queries
    });
    let dir = TempDir::new("allowlist-concurrency");
    let file = dir.path().join("allowlist.json");
    let entries: Vec<String> = (0..HOSTS)
        .map(|i| format!(r#"{{"type":"STAGE","host":"h{i}.example.test","port":443}}"#))
        .collect();
    std::fs::write(&file, format!("[{}]", entries.join(","))).unwrap();
    let r = netcheck(&[
        "run",
        "--account",
        "myorg-myaccount",
        "--dns-server",
        &dns_addr.to_string(),
        "--only",
        "allowlist.hosts",
        "--allowlist",
        file.to_str().unwrap(),
        "--concurrency",
        "2",
        "--timeout",
        &TIMEOUT.as_secs_f64().to_string(),
        "--format",
        "json",
    ])
    .run();
    let queries = listener.join().unwrap();
    let report = r.json();
    assert_check(
        &report,
        "allowlist.hosts",
        "fail",
        Some("allowlist-unreachable"),
    );
    assert!(
        queries.iter().all(|(_, _, qtype)| *qtype == 1),
        "A queries only: {queries:?}"
    );
    // When each host was first asked for (the resolver may retransmit within the timeout).
    let mut first: Vec<(Duration, &str)> = Vec::new();
    for (at, name, _) in &queries {
        if first.iter().all(|(_, n)| n != name) {
            first.push((*at, name));
        }
    }
    assert_eq!(first.len(), HOSTS, "every host asked for: {queries:?}");
    // Pairs start together; the next pair only once the previous one has timed out.
    for pair in first.chunks(2) {
        assert!(pair[1].0.abs_diff(pair[0].0) < TIMEOUT / 2, "{first:?}");
    }
    // A pair's timer starts before its query leaves, so a busy machine that delays one pair's
    // queries shortens the gap seen here: a third of the timeout still tells a bound apart from
    // all hosts at once (gap near zero).
    for (a, b) in first.iter().zip(&first[2..]) {
        assert!(b.0.saturating_sub(a.0) >= TIMEOUT / 3, "{first:?}");
    }
}

/// The name and QTYPE of a DNS query's first question.
fn question(query: &[u8]) -> (String, u16) {
    let mut labels = Vec::new();
    let mut i = 12;
    while query[i] != 0 {
        let len = usize::from(query[i]);
        labels.push(String::from_utf8_lossy(&query[i + 1..=i + len]).into_owned());
        i += len + 1;
    }
    (
        labels.join("."),
        u16::from_be_bytes([query[i + 1], query[i + 2]]),
    )
}
