//! Proxy URLs (`HTTPS_PROXY`, `ALL_PROXY`, `--proxy`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netcheck::net::proxy::ProxyUrl;

fuzz_target!(|input: &str| {
    if let Ok(url) = ProxyUrl::parse(input) {
        let _ = url.connect_url();
        let _ = url.authority();
    }
});
