//! What netcheck and its emulator both speak, in a crate of its own so both compile side by side:
//! - [`snowflake`]: the Snowflake API as the real service speaks it (account identifiers, keys and
//!   JWTs, REST calls, OAuth, stage locations).
//! - [`secret`]: the one wrapper for keys, passphrases, tokens and passwords (prints `***`), and
//!   the registry of every secret value held.
//! - [`local_file`]: the one reader for local files (regular files only, a size cap per kind).
//! - [`error`]: the library error type (netcheck itself could not run) and the exit codes.
//! - [`units`]: durations and counts as reports and flags spell them.
//!
//! `netcheck` re-exports each module under its own name; nothing here knows of the checks.

pub mod error;
pub mod local_file;
pub mod secret;
pub mod snowflake;
pub mod units;
