//! `POST …/channels/{channel}/filebuffer`: the official SDK's file mode. Appended to faster than
//! its rowset path carries, the SDK uploads encrypted, zstd-compressed NDJSON files to the pipe's
//! stage (the S3 location `:pipe-info` names) and registers them here; nothing public documents
//! the call, so the shape is what SDK 1.9.1 was seen to send (`tests/oracle/README.md`).
//!
//! The emulator does not read the files — the stage is another server (`emulate --stage`) — so it
//! trusts the client's declared counts: each fragment's rows are committed, as inserted, up to
//! the last fragment's end offset token, after the usual commit delay.

use axum::response::Response;
use serde::Deserialize;

use super::{Call, bad_payload};
use crate::snowflake::rest::ChannelRef;
use crate::state::ParsedRows;

/// One fragment of an uploaded file, as the SDK declares it; only the fields the emulator acts
/// on (the body also names the file, its `ETag`, sizes, byte offset, IV and key id).
#[derive(Debug, Deserialize)]
struct Fragment {
    fragment_row_count: u64,
    fragment_end_offset_token: Option<String>,
}

/// More rows than one registration can declare: a file is at most a few hundred MiB and a row at
/// least `{}` and a newline, so a count past this is not a file but a hostile or broken body (and
/// would overflow the channel's counters).
const MAX_DECLARED_ROWS: u64 = 1 << 32;

/// Registers the fragments (a JSON array) as one batch of the channel, like an append.
pub(super) fn register(call: &Call, channel: &ChannelRef) -> Response {
    call.take_batch(channel, |call| {
        let fragments: Vec<Fragment> = match serde_json::from_slice(&call.body) {
            Ok(f) if !Vec::is_empty(&f) => f,
            _ => return Err(bad_payload()),
        };
        let rows = fragments
            .iter()
            .try_fold(0_u64, |n, f| n.checked_add(f.fragment_row_count))
            .filter(|&n| n <= MAX_DECLARED_ROWS)
            .ok_or_else(bad_payload)?;
        let offset = fragments
            .iter()
            .rev()
            .find_map(|f| f.fragment_end_offset_token.clone());
        Ok((ParsedRows::staged(rows), offset))
    })
}
