//! Test support shared by the integration tests: running the real `netcheck` binary, a PKI made
//! at test time, real servers on loopback (dnsmasq, TLS servers, proxies), and the one skip
//! helper (`skip.rs`) through which every test that lacks a tool says so.

pub mod dns;
pub mod emulate;
pub mod hostile;
pub mod pki;
pub mod proxies;
pub mod run;
pub mod skip;
pub mod storage;
pub mod tls_servers;
