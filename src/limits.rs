//! This machine's own limits. netcheck opens a socket for every host it probes — hundreds at once
//! with `--allowlist` — and a low open-file limit (`ulimit -n`: often 1024, sometimes 256) would
//! otherwise make hosts look unreachable. So the soft limit is raised to the hard one at start,
//! concurrent probes are bounded by the descriptors actually free, and running out of them is
//! named as a local problem (`local-open-files`), never as a remote host failing.

use serde::Serialize;

/// Where the soft limit goes when the hard one is "unlimited": Linux's default `nr_open`, above
/// which raising fails anyway.
const UNLIMITED_TARGET: u64 = 1 << 20;

/// The open-file limit, as raised at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OpenFiles {
    /// The soft limit now (what `EMFILE` is measured against); `None` when unlimited.
    pub soft: Option<u64>,
    /// The hard limit (the most the soft one can be raised to); `None` when unlimited.
    pub hard: Option<u64>,
}

/// Raises the soft open-file limit to the hard one, so a low default (`ulimit -n` 1024 or 256)
/// does not cut a run short; returns the limit it ends with. A refusal leaves the limit as it is.
#[must_use]
pub fn raise_open_files() -> OpenFiles {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let now = getrlimit(Resource::Nofile);
        let target = now.maximum.unwrap_or(UNLIMITED_TARGET);
        if now.current.is_some_and(|soft| soft < target) {
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(target),
                    maximum: now.maximum,
                },
            );
        }
    }
    open_files()
}

/// The open-file limit in force.
#[must_use]
pub fn open_files() -> OpenFiles {
    #[cfg(unix)]
    {
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        OpenFiles {
            soft: now.current,
            hard: now.maximum,
        }
    }
    #[cfg(not(unix))]
    OpenFiles {
        soft: None,
        hard: None,
    }
}

/// How many more descriptors this process may open now (the soft limit minus those open);
/// `None` when that cannot be known (no `/proc`, or no limit).
#[must_use]
pub fn descriptors_free() -> Option<u64> {
    let soft = open_files().soft?;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(soft.saturating_sub(open))
}

/// Whether an I/O error is this machine running out of descriptors: `EMFILE` (this process's
/// limit) or `ENFILE` (the system's).
#[must_use]
pub fn is_descriptor_exhaustion(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        Errno::from_io_error(e).is_some_and(|n| n == Errno::MFILE || n == Errno::NFILE)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_told_from_other_errors() {
        assert!(is_descriptor_exhaustion(
            &std::io::Error::from_raw_os_error(24)
        ));
        assert!(is_descriptor_exhaustion(
            &std::io::Error::from_raw_os_error(23)
        ));
        assert!(!is_descriptor_exhaustion(
            &std::io::Error::from_raw_os_error(111)
        ));
    }

    #[test]
    fn free_descriptors_are_counted() {
        let free = descriptors_free().expect("Linux has /proc/self/fd");
        assert!(free > 0 && Some(free) < open_files().soft);
    }
}
