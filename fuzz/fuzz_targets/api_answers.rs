//! Every answer the checks read from the Snowflake API: discovery and token bodies (bare or
//! JSON), the scoped token's claims, error bodies, the Snowpipe Streaming responses, SQL API
//! answers, and the IP quoted in a network-policy message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netcheck::checks::answer::quoted_ip;
use netcheck::snowflake::rest::{
    ApiError, AppendRowsResponse, BulkChannelStatusResponse, ChannelStatus, DropChannelResponse,
    OpenChannelResponse, StatementResponse, bare_or_json_field, scoped_token_expiry,
};

fuzz_target!(|input: &str| {
    let _ = bare_or_json_field(input, "hostname");
    let _ = bare_or_json_field(input, "token");
    let _ = scoped_token_expiry(input);
    let _ = ApiError::parse(input);
    let _ = quoted_ip(input);
    let _ = serde_json::from_str::<OpenChannelResponse>(input);
    let _ = serde_json::from_str::<AppendRowsResponse>(input);
    let _ = serde_json::from_str::<DropChannelResponse>(input);
    let _ = serde_json::from_str::<BulkChannelStatusResponse>(input);
    let _ = serde_json::from_str::<ChannelStatus>(input);
    if let Ok(answer) = serde_json::from_str::<StatementResponse>(input) {
        let _ = answer.first_value();
    }
});
