//! `tcp.account` against real loopback sockets: an open port passes, a closed one is refused.
//! (Timeouts and ICMP-unreachable need packet filters: the fault lab covers them in namespaces.)

use crate::support::run::{assert_check, check, netcheck};
use crate::support::skip::{Lack, skip};

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

/// In a network namespace of its own whose ephemeral port range is two ports, a helper holds
/// connections to a listener until the kernel has no source port left for it; netcheck's connect
/// to the same address then fails before any packet leaves: a local limit, not the network.
#[test]
fn no_source_port_left_is_a_local_limit_not_unreachable() {
    const SCRIPT: &str = r#"
set -e
ip link set lo up
sysctl -q -w net.ipv4.ip_local_port_range="40000 40001"
ready=$(mktemp)
python3 -c '
import errno, socket, sys, time
listener = socket.socket()
listener.bind(("127.0.0.1", 4443))
listener.listen(64)
held = []
while True:
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", 4443))
    except OSError as e:
        assert e.errno == errno.EADDRNOTAVAIL, e
        break
    held.append(c)
open(sys.argv[1], "w").write(str(len(held)))
time.sleep(60)
' "$ready" &
holder=$!
for _ in $(seq 100); do [ -s "$ready" ] && break; sleep 0.05; done
set +e
"$@"
code=$?
kill "$holder"
exit "$code"
"#;
    let probe = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        skip(
            Lack::Tool,
            "cannot make a network namespace (unshare -n needs root)",
        );
        return;
    }
    let r = netcheck(&[
        "run",
        "--account",
        &format!("{HOST}:4443"),
        "--resolve",
        &format!("{HOST}:4443:127.0.0.1"),
        "--only",
        "tcp.account",
        "--format",
        "json",
    ])
    .via(&["unshare", "-n", "bash", "-c", SCRIPT, "ports"])
    .run();
    let report = r.json();
    assert_check(
        &report,
        "tcp.account",
        "fail",
        Some("local-ephemeral-ports"),
    );
    let attempt = &check(&report, "tcp.account")["evidence"]["attempts"][0];
    assert_eq!(attempt["error"]["kind"], "no-local-port", "{attempt:#}");
}
