//! netcheck — can this machine, through this network, stream rows into this Snowflake account?
//!
//! Data flows one way: flags + env → [`settings::Settings`] → [`registry`] (a plan) →
//! [`runner`] (outcomes, progress events) → [`report::RunReport`] → table / JSON / `JUnit` and the
//! exit code. Checks never print and never read flags; renderers never run checks.
//!
//! Module map:
//! - [`app`]: the run's top level and the library's front door: settings in, a report out.
//! - [`cli`]: command-line arguments and the subcommands (`run`, `explain`, `demo`, `emulate`,
//!   `serve`).
//! - [`settings`]: flags + environment → validated settings.
//! - [`connection`]: Snowflake connection settings (flags, connections.toml, env, the seed's
//!   JSON) with where each value came from, and loading the private key.
//! - [`check`]: what a check is (id, dependencies, one async function).
//! - [`registry`]: the one list of checks, and `--only`/`--skip` selection.
//! - [`runner`]: dependency-aware concurrent run with a deadline and Ctrl-C.
//! - [`checks`]: the checks themselves, one module per family.
//! - [`context`]: what a running check sees (settings, network layer, facts from earlier checks).
//! - [`outcome`]: verdicts, findings, skip reasons.
//! - [`catalog`]: the troubleshooting table (`checks/*.toml`) and its row ids.
//! - [`report`]: the run report and its renderers; the exit code.
//! - [`load`]: the sustained-rate stream test's settings, profiles and batching (`stream.rate`).
//! - [`api`]: Snowflake REST calls, timed, logged and retried within bounds.
//! - [`net`]: the one network layer (resolver, TCP connect, proxy, TLS).
//! - [`error`]: the library error type and the documented exit codes.
//! - [`limits`]: this machine's open-file limit, raised at start and budgeted.
//! - [`local_file`]: the one reader for local files (regular files only, a size cap per kind).
//! - [`secret`]: the one wrapper for keys, passphrases, tokens and passwords (prints `***`), and
//!   the registry of every secret value held.
//! - [`output`]: the output boundary every report, log line and error passes (secrets masked,
//!   control characters escaped).
//! - [`serve`]: `netcheck serve`, probes of named connections for Prometheus (a layer over
//!   [`app`]; nothing below it imports it).
//! - [`demo`]: `netcheck demo`, the whole suite against the embedded emulator.
//! - [`emulator`]: the embedded Snowflake-compatible HTTPS emulator.
//! - [`snowflake`]: the Snowflake API as the real service speaks it, shared by checks and emulator.

pub mod api;
pub mod app;
pub mod catalog;
pub mod check;
pub mod checks;
pub mod cli;
pub mod connection;
pub mod context;
pub mod demo;
pub mod limits;
pub mod load;
pub mod net;
pub mod outcome;
pub mod output;
pub mod registry;
pub mod report;
pub mod runner;
pub mod serve;
pub mod settings;

// The emulator and the protocol code it shares with the checks are crates of their own (they
// compile side by side); under these names they read as the modules they were.
pub use netcheck_emulator as emulator;
pub use netcheck_protocol::{error, local_file, secret, snowflake, units};
