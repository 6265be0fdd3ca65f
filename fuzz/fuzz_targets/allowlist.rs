//! The JSON output of `SYSTEM$ALLOWLIST()` (`--allowlist FILE` or the SQL API's answer).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let _ = netcheck::snowflake::allowlist::parse(input);
});
