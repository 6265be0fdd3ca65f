//! netcheck's integration tests, one binary with a module per area (nextest's own layout): the
//! crate and [`support`] are compiled and linked once, and `cargo test --test integration
//! MODULE::` runs one area. Tests that need the built binary run it through
//! `env!("CARGO_BIN_EXE_netcheck")` ([`support::run`]).

mod support;

mod allowlist;
mod catalog_coverage;
mod cli;
mod connection;
mod dns;
mod emulator;
mod emulator_cli;
mod emulator_oracles;
mod examples;
mod hostile;
mod hostile_files;
mod html;
mod interrupt;
mod lab;
mod oauth;
mod perf;
mod proxy;
mod proxy_plumbing;
mod rate;
mod reports;
mod secrets;
mod serve;
mod snowflake;
mod stage;
mod tcp;
mod terminal;
mod tls;
mod tls_probe;
