//! Test support shared by the integration tests: running the real `netcheck` binary, a PKI made
//! at test time, and real servers on loopback (dnsmasq, TLS servers, proxies).

pub mod dns;
pub mod emulate;
pub mod hostile;
pub mod pki;
pub mod proxies;
pub mod run;
pub mod storage;
pub mod tls_servers;
