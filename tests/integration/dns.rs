//! `dns.account` against a real DNS server (dnsmasq on loopback, via `--dns-server`) and a
//! silent one: each answer and each failure, with the check id, verdict and catalog row.

use crate::support::dns::{dnsmasq, silent_dns};
use crate::support::run::{Netcheck, assert_check, check, netcheck};

/// `netcheck run --only dns.account` asking `server` for `account`, JSON on stdout.
fn dns_command(server: &str, account: &str) -> Netcheck {
    netcheck(&[
        "run",
        "--account",
        account,
        "--dns-server",
        server,
        "--only",
        "dns.account",
        "--format",
        "json",
        "--timeout",
        "2",
    ])
}

fn dns_run(server: &str, account: &str) -> serde_json::Value {
    let r = dns_command(server, account).run();
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    r.json()
}

#[test]
fn resolves_and_records_the_cname_chain() {
    let Some(dns) = dnsmasq(&[
        "--host-record=edge.myorg-myaccount.snowflakecomputing.com,127.0.0.1",
        "--cname=myorg-myaccount.snowflakecomputing.com,edge.myorg-myaccount.snowflakecomputing.com",
        "--local=/snowflakecomputing.com/",
    ]) else {
        return;
    };
    let report = dns_run(&dns.addr.to_string(), "myorg-myaccount");
    assert_check(&report, "dns.account", "pass", None);
    let ev = &check(&report, "dns.account")["evidence"];
    assert_eq!(ev["addrs"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(
        ev["cnames"],
        serde_json::json!(["edge.myorg-myaccount.snowflakecomputing.com"])
    );
    assert_eq!(ev["source"], "dns");
    assert_eq!(ev["resolver"]["mode"], "dns-server");
    assert_eq!(ev["servers"][0]["outcome"], "answer");
}

#[test]
fn nxdomain() {
    let Some(dns) = dnsmasq(&["--local=/snowflakecomputing.com/"]) else {
        return;
    };
    let r = netcheck(&[
        "run",
        "--account",
        "nosuch-account",
        "--dns-server",
        &dns.addr.to_string(),
        "--format",
        "json",
    ])
    .run();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    assert_check(&report, "dns.account", "fail", Some("dns-nxdomain"));
    assert!(
        check(&report, "dns.account")["finding"]
            .as_str()
            .unwrap()
            .contains("NXDOMAIN")
    );
    // The dependent check is skipped, naming the failed one, not failed again.
    assert_check(&report, "tcp.account", "skip", None);
    assert!(
        check(&report, "tcp.account")["skip_reason"]
            .as_str()
            .unwrap()
            .contains("dns.account failed")
    );
}

#[test]
fn name_without_address_records() {
    let Some(dns) = dnsmasq(&[
        "--txt-record=myorg-noaddr.snowflakecomputing.com,hello",
        "--local=/snowflakecomputing.com/",
    ]) else {
        return;
    };
    let report = dns_run(&dns.addr.to_string(), "myorg-noaddr");
    assert_check(&report, "dns.account", "fail", Some("dns-no-answer"));
}

#[test]
fn refused_is_a_resolver_failure() {
    // With no upstream and no local zone for the name, dnsmasq answers REFUSED at once.
    let Some(dns) = dnsmasq(&[]) else { return };
    let report = dns_run(&dns.addr.to_string(), "myorg-myaccount");
    assert_check(&report, "dns.account", "fail", Some("dns-servfail"));
    let error = &check(&report, "dns.account")["evidence"]["error"];
    let message = error["message"].as_str().unwrap();
    // The finding names the server that refused, and the evidence lists what it answered.
    assert!(message.contains("REFUSED"), "{error:#}");
    assert!(message.contains(&dns.addr.to_string()), "{error:#}");
    assert_eq!(error["kind"], "refused");
    assert_eq!(error["servers"][0]["outcome"], "refused");
    assert_eq!(error["servers"][0]["server"], dns.addr.to_string());
}

#[test]
fn silent_server_is_a_dns_timeout_within_the_timeout() {
    let silent = silent_dns();
    let r = netcheck(&[
        "run",
        "--account",
        "myorg-myaccount",
        "--dns-server",
        &silent.local_addr().unwrap().to_string(),
        "--only",
        "dns.account",
        "--format",
        "json",
        "--timeout",
        "1",
    ])
    .run();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_check(&r.json(), "dns.account", "fail", Some("dns-timeout"));
    assert!(
        r.elapsed.as_secs_f64() < 2.5,
        "took {:?} with a 1 s timeout",
        r.elapsed
    );
}

#[test]
fn privatelink_host_with_a_public_address_warns() {
    let Some(dns) = dnsmasq(&[
        "--host-record=myorg-myaccount.privatelink.snowflakecomputing.com,52.0.0.10",
        "--local=/snowflakecomputing.com/",
    ]) else {
        return;
    };
    let report = dns_run(
        &dns.addr.to_string(),
        "myorg-myaccount.privatelink.snowflakecomputing.com",
    );
    assert_check(&report, "dns.account", "warn", Some("dns-public-address"));
}

#[test]
fn a_dns_filter_answering_0_0_0_0_is_a_sinkhole() {
    let Some(dns) = dnsmasq(&["--address=/snowflakecomputing.com/0.0.0.0"]) else {
        return;
    };
    let r = netcheck(&[
        "run",
        "--account",
        "myorg-myaccount",
        "--dns-server",
        &dns.addr.to_string(),
        "--format",
        "json",
        "--timeout",
        "2",
    ])
    .run();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    assert_check(&report, "dns.account", "fail", Some("dns-sinkhole"));
    assert_check(&report, "tcp.account", "skip", None);
}

/// Out of file descriptors when the query's socket is opened: a real `RLIMIT_NOFILE` (soft and
/// hard, so netcheck cannot raise it) set on the child by `prlimit`. How many descriptors the
/// runtime holds by then is not fixed, so the limit is raised one at a time from where netcheck
/// can start at all until the check passes; every run in between must blame this machine, not
/// the DNS server.
#[test]
fn no_descriptor_for_the_query_is_a_local_limit() {
    let Some(dns) = dnsmasq(&[
        "--host-record=myorg-myaccount.snowflakecomputing.com,127.0.0.1",
        "--local=/snowflakecomputing.com/",
    ]) else {
        return;
    };
    let empty_home = std::env::temp_dir().join(format!("netcheck-nofile-{}", std::process::id()));
    std::fs::create_dir_all(&empty_home).unwrap();
    let mut starved = 0;
    for limit in 3..64 {
        let r = dns_command(&dns.addr.to_string(), "myorg-myaccount")
            .env("SNOWFLAKE_HOME", &empty_home.to_string_lossy())
            .via(&["prlimit", &format!("--nofile={limit}:{limit}"), "--"])
            .run();
        if r.stdout.is_empty() {
            // Too few to start the runtime: no report at all.
            assert!(starved == 0, "limit {limit}: {}", r.stderr);
            continue;
        }
        let report = r.json();
        if check(&report, "dns.account")["verdict"] == "pass" {
            break;
        }
        assert_check(&report, "dns.account", "fail", Some("local-open-files"));
        let ev = &check(&report, "dns.account")["evidence"];
        assert_eq!(ev["error"]["kind"], "local-limit", "{ev:#}");
        assert_eq!(
            ev["error"]["servers"][0]["outcome"], "local-limit",
            "{ev:#}"
        );
        starved += 1;
    }
    let _ = std::fs::remove_dir(&empty_home);
    assert!(
        starved > 0,
        "no limit left netcheck short of a socket for the query"
    );
}
