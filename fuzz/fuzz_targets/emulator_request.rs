//! What the emulator reads from a request: the route (method and path), the JSON bodies, and the
//! key-pair JWT. Input: the method, a space, the path, a newline, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netcheck::snowflake::jwt::verify;
use netcheck::snowflake::rest::{
    BulkChannelStatusRequest, OpenChannelRequest, Route, StatementRequest,
};

fuzz_target!(|input: &str| {
    let (line, body) = input.split_once('\n').unwrap_or((input, ""));
    let (method, path) = line.split_once(' ').unwrap_or(("GET", line));
    if let Some(route) = Route::parse(method, path) {
        let _ = route.endpoint();
    }
    let _ = serde_json::from_str::<OpenChannelRequest>(body);
    let _ = serde_json::from_str::<BulkChannelStatusRequest>(body);
    let _ = serde_json::from_str::<StatementRequest>(body);
    // No user has a key: the token is parsed and its claims checked up to the key lookup.
    let _ = verify(body, "xy12345", 1_767_225_600, |_| None);
});
