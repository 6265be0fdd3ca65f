//! netcheck — can this machine, through this network, stream rows into this Snowflake account?
//!
//! Module map:
//! - [`cli`]: command-line arguments and the subcommands (`run`, `explain`, `demo`, `emulate`).
//! - [`error`]: the library error type and the documented exit codes.
//! - [`emulator`]: the embedded Snowflake-compatible HTTPS emulator.
//! - [`net`]: how netcheck reaches a host (TLS probing and trust today).
//! - [`snowflake`]: the Snowflake API as the real service speaks it, shared by checks and emulator.

pub mod cli;
pub mod emulator;
pub mod error;
pub mod net;
pub mod snowflake;
