//! Account identifiers (`--account`, `account`/`host` in connection files): the endpoint parse and
//! the JWT name forms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netcheck::snowflake::account::{
    account_host, jwt_account, jwt_user, normalize_host, parse_account,
};

fuzz_target!(|input: &str| {
    if let Ok(endpoint) = parse_account(input) {
        let _ = endpoint.url();
    }
    let _ = jwt_account(input);
    let _ = jwt_user(input);
    let _ = normalize_host(input);
    let _ = account_host(input);
});
