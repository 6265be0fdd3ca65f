//! Test harness shared by the integration tests: a PKI made at test time and loopback servers.
//! Each test binary uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod pki;
pub mod tls_servers;
