//! `tcp.account` against real loopback sockets: an open port passes, a closed one is refused.
//! (Timeouts and ICMP-unreachable need packet filters: the fault lab covers them in namespaces.)

use crate::support::run::{assert_check, check, netcheck};

const HOST: &str = "myorg-myaccount.snowflakecomputing.com";

fn tcp_run(port: u16) -> (i32, serde_json::Value) {
    let r = netcheck(&[
        "run",
        "--account",
        &format!("{HOST}:{port}"),
        "--resolve",
        &format!("{HOST}:{port}:127.0.0.1"),
        "--only",
        "tcp.account",
        "--format",
        "json",
    ])
    .run();
    (r.code, r.json())
}

#[test]
fn open_port_passes_with_the_address_and_time() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (code, report) = tcp_run(listener.local_addr().unwrap().port());
    assert_eq!(code, 0);
    assert_check(&report, "tcp.account", "pass", None);
    let attempt = &check(&report, "tcp.account")["evidence"]["attempts"][0];
    assert_eq!(attempt["ok"], true);
    assert!(attempt["elapsed"].as_f64().unwrap() >= 0.0);
}

#[test]
fn closed_port_is_connection_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, report) = tcp_run(port);
    assert_eq!(code, 1);
    assert_check(&report, "tcp.account", "fail", Some("connection-refused"));
    assert_eq!(
        check(&report, "tcp.account")["evidence"]["attempts"][0]["error"]["kind"],
        "refused"
    );
}
