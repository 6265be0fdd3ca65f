//! Shared integration-test helpers: real servers and proxies on loopback, stopped on drop.
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod proxies;
