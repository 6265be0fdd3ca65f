//! A real DNS server for tests: dnsmasq on 127.0.0.1 with the records a test asks for, and a
//! silent UDP "server" that never answers (resolver timeout).

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::skip::{Lack, skip};

/// A dnsmasq process, killed on drop.
pub struct Dnsmasq {
    pub addr: SocketAddr,
    child: Child,
}

/// Starts dnsmasq answering only from its own records (no upstream, no /etc/hosts, nothing
/// forwarded to the machine's resolver). `records` are dnsmasq options such as
/// `--host-record=a.example,127.0.0.1`. Returns `None` (and says why) when dnsmasq is missing.
pub fn dnsmasq(records: &[&str]) -> Option<Dnsmasq> {
    let Some(bin) = which("dnsmasq") else {
        skip(
            Lack::Tool,
            "dnsmasq is not installed (apt-get install dnsmasq; .ci/run installs it)",
        );
        return None;
    };
    let port = free_port();
    let child = Command::new(bin)
        .args([
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--pid-file=",
            &format!("--port={port}"),
        ])
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Dnsmasq { addr, child };
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "dnsmasq did not start listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP socket that receives queries and never answers; kept open while the value lives.
pub fn silent_dns() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// A loopback port that is free right now (UDP and TCP both bind it).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Finds an executable on PATH or in the sbin directories Debian puts daemons in.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}
