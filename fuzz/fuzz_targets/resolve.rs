//! `--resolve` / `NETCHECK_RESOLVE` values. Each input line is one flag value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netcheck::net::resolver::parse_overrides;

fuzz_target!(|input: &str| {
    let values: Vec<&str> = input.split('\n').collect();
    let _ = parse_overrides(&values);
});
