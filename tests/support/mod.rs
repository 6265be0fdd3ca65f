//! Test support shared by the integration tests: running the real `netcheck` binary, and real
//! servers on loopback (DNS via dnsmasq, TLS servers, proxies). Each test binary uses a subset.
#![allow(dead_code)]

pub mod dns;
pub mod run;
