//! `NO_PROXY` lists and matching a host against them. Input: the list, a newline, the host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netcheck::net::proxy::{NoProxyEntries, no_proxy_match};

fuzz_target!(|input: &str| {
    let (list, host) = input
        .split_once('\n')
        .unwrap_or((input, "xy12345.snowflakecomputing.com"));
    let _ = no_proxy_match(list, host);
    let _ = NoProxyEntries::parse(list).ineffective();
});
