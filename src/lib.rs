//! netcheck — can this machine, through this network, stream rows into this Snowflake account?
//!
//! Module map:
//! - [`cli`]: command-line arguments and the subcommands (`run`, `explain`, `demo`, `emulate`).
//! - [`error`]: the library error type and the documented exit codes.
//! - [`catalog`]: the troubleshooting table (`checks/*.toml`) and its row ids.
//! - [`target`]: account identifier → host, port and URL.
//! - [`net`]: the one network layer (resolver, TCP connect, proxy, TLS).
//! - [`emulator`]: the embedded Snowflake-compatible HTTPS emulator.
//! - [`snowflake`]: the Snowflake API as the real service speaks it, shared by checks and emulator.

pub mod catalog;
pub mod cli;
pub mod emulator;
pub mod error;
pub mod net;
pub mod snowflake;
pub mod target;
