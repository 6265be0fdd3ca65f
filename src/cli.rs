//! Command-line interface: clap arguments and dispatch to the subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// netcheck: can this machine stream rows into this Snowflake account, and if not, why?
#[derive(Debug, Parser)]
#[command(name = "netcheck", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a troubleshooting catalog row, or list them all.
    Explain { id: Option<String> },
    /// Run the Snowflake-compatible emulator in the foreground (see --list-faults).
    Emulate(crate::emulator::EmulateArgs),
}

/// Entry point used by `main`: parse the process arguments, run, and return the exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Explain { .. } => ExitCode::SUCCESS,
        Command::Emulate(args) => crate::emulator::emulate(args),
    }
}
