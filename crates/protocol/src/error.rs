//! The library's error type (netcheck itself could not run) and the exit-code contract.

/// Why netcheck itself could not run. A failing network is never an `Error`: it is an outcome.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, environment variable or file setting is invalid.
    #[error("{0}")]
    Usage(String),
    /// A file that netcheck needs could not be read: missing, not a regular file, or over its
    /// kind's size cap.
    #[error(transparent)]
    LocalFile(#[from] crate::local_file::FileError),
}

/// The exit codes, a documented contract that CI relies on.
pub mod exit_code {
    /// Nothing failed (warnings allowed unless `--strict`).
    pub const OK: u8 = 0;
    /// At least one check failed.
    pub const CHECK_FAILED: u8 = 1;
    /// Usage or configuration error: netcheck could not run.
    pub const USAGE: u8 = 2;
    /// Interrupted by SIGINT (Ctrl-C) before the run finished; what finished is still reported
    /// and the test channels are dropped (128 + the signal's number, as shells report it).
    pub const INTERRUPTED: u8 = 130;
    /// Ended by SIGTERM (`timeout`, CI runners, Kubernetes), reported and cleaned up alike.
    pub const TERMINATED: u8 = 143;
    /// Ended by SIGHUP (the terminal went away), reported and cleaned up alike.
    pub const HUNG_UP: u8 = 129;
}
