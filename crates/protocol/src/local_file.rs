//! The one reader for the local files netcheck is pointed at: the private key, the OAuth token
//! file, `connections.toml`
//! and `config.toml`, the `--config` JSON, `--ca-file`, `--allowlist` and the emulator's
//! `--fault-file`; and for the system's own name-service files (`/etc/resolv.conf`,
//! `/etc/nsswitch.conf`, `/etc/hosts`), which a bad day can turn into the same hazards.
//!
//! A path can name anything: a FIFO (which would block forever), `/dev/zero` (endless), a
//! directory, a socket, or a regular file far larger than any real one. So a file is opened
//! without blocking, judged by what the open descriptor is (a symlink counts as what it points
//! to), read only when it is a regular file, and cut at a cap for its kind. Anything else is a
//! [`FileError`] naming the file, its kind and the cap — a usage error (exit 2), decided in
//! milliseconds, never a hang or an exhausted memory. A regular file on a network mount whose
//! server does not answer blocks in the kernel whatever the flags, and these reads come before
//! the run's deadline starts: so each read is also bounded in time ([`READ_TIME_LIMIT`]).

use std::fmt;
use std::fs::{File, FileType};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A private key: a 16384-bit RSA key, the largest tools make, is about 13 KB as encrypted
/// PKCS#8 PEM, so 64 KiB holds any real key with room to spare.
pub const PRIVATE_KEY_CAP: u64 = 64 * 1024;
/// An OAuth access token file: tokens are JWTs or opaque strings of a few KB at most (Azure AD's
/// with many group claims reach about 8 KB), so 64 KiB holds any real one.
pub const TOKEN_FILE_CAP: u64 = 64 * 1024;
/// A configuration file (`connections.toml`, `config.toml`, the `--config` JSON, a fault file):
/// a connection takes a few hundred bytes, so 1 MiB holds thousands of them.
pub const CONFIG_CAP: u64 = 1024 * 1024;
/// A CA file: the whole Mozilla bundle (about 150 roots) is about 220 KB, so 4 MiB holds a
/// corporate bundle of thousands of certificates.
pub const CA_FILE_CAP: u64 = 4 * 1024 * 1024;
/// An allowlist: `SYSTEM$ALLOWLIST()` returns a few dozen entries of about 100 bytes (a few KB),
/// so 4 MiB (some 40,000 entries) is a thousand times a real one, and still parses in a fraction
/// of a second — reading and parsing happen before the run's deadline starts.
pub const ALLOWLIST_CAP: u64 = 4 * 1024 * 1024;
/// `/etc/resolv.conf`, `/etc/nsswitch.conf`: a few hundred bytes; 1 MiB is far beyond any real
/// one.
pub const SYSTEM_CONF_CAP: u64 = 1024 * 1024;
/// `/etc/hosts`: hosts files used as ad blockers run to a few MB, so 64 MiB holds any real one.
pub const HOSTS_FILE_CAP: u64 = 64 * 1024 * 1024;

/// How long opening and reading one file may take. A local disk answers in milliseconds, even a
/// hosts file at its cap; a file on a hung network mount never does, and would hold the run
/// forever before its deadline starts.
pub const READ_TIME_LIMIT: Duration = Duration::from_secs(5);

/// What a file is for; each kind has its own cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A PEM private key.
    PrivateKey,
    /// An OAuth access token (`token_file_path`).
    TokenFile,
    /// `connections.toml`, `config.toml`, the `--config` JSON or the emulator's fault file.
    Config,
    /// `--ca-file`: PEM certificates.
    CaFile,
    /// `--allowlist`: the JSON output of `SYSTEM$ALLOWLIST()`.
    Allowlist,
    /// `/etc/resolv.conf`, `/etc/nsswitch.conf`.
    SystemConf,
    /// `/etc/hosts`.
    HostsFile,
}

impl FileKind {
    /// The largest file of this kind netcheck reads, in bytes.
    #[must_use]
    pub const fn cap(self) -> u64 {
        match self {
            Self::PrivateKey => PRIVATE_KEY_CAP,
            Self::TokenFile => TOKEN_FILE_CAP,
            Self::Config => CONFIG_CAP,
            Self::CaFile => CA_FILE_CAP,
            Self::Allowlist => ALLOWLIST_CAP,
            Self::SystemConf => SYSTEM_CONF_CAP,
            Self::HostsFile => HOSTS_FILE_CAP,
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PrivateKey => "private key",
            Self::TokenFile => "OAuth token file",
            Self::Config => "configuration file",
            Self::CaFile => "CA file",
            Self::Allowlist => "allowlist",
            Self::SystemConf => "system configuration file",
            Self::HostsFile => "hosts file",
        })
    }
}

/// Why a local file was not read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the {kind} {}: {problem}", path.display())]
pub struct FileError {
    /// The file as given.
    pub path: PathBuf,
    /// What it was for.
    pub kind: FileKind,
    /// What was wrong.
    pub problem: Problem,
}

impl FileError {
    /// Whether the file does not exist (optional files are then skipped, not an error).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(&self.problem, Problem::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// What was wrong with a local file.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Opening or reading failed (missing, permission denied, …).
    #[error("{0}")]
    Io(std::io::Error),
    /// A FIFO, a device, a directory or a socket: reading it could block or never end.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than the cap for its kind.
    #[error("it is larger than {}, the cap for a {kind}", human(*cap))]
    TooLarge {
        /// The kind's cap, in bytes.
        cap: u64,
        /// The kind, for the message.
        kind: FileKind,
    },
    /// Not UTF-8 text.
    #[error("it is not UTF-8 text")]
    NotText,
    /// Opening and reading did not finish in time: a network mount that does not answer.
    #[error("it was not read within {} (a network mount that does not answer?)", secs(*.0))]
    TimedOut(Duration),
}

/// Reads a whole file of `kind` as bytes, bounded by the kind's cap.
pub fn read(path: &Path, kind: FileKind) -> Result<Vec<u8>, FileError> {
    read_bounded(path, kind).map_err(|problem| FileError {
        path: path.to_owned(),
        kind,
        problem,
    })
}

/// Reads a whole file of `kind` as UTF-8 text, bounded by the kind's cap.
pub fn read_text(path: &Path, kind: FileKind) -> Result<String, FileError> {
    let bytes = read(path, kind)?;
    String::from_utf8(bytes).map_err(|_| FileError {
        path: path.to_owned(),
        kind,
        problem: Problem::NotText,
    })
}

fn read_bounded(path: &Path, kind: FileKind) -> Result<Vec<u8>, Problem> {
    let path = path.to_owned();
    within(READ_TIME_LIMIT, move || read_now(&path, kind))
}

/// Runs `op` on a thread of its own and waits for it at most `limit`. A system call stuck in the
/// kernel cannot be cancelled, so such a thread is left behind; the caller still gets its
/// answer in time.
fn within<T: Send + 'static>(
    limit: Duration,
    op: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    use std::sync::mpsc::RecvTimeoutError;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("netcheck-read".into())
        .spawn(move || {
            let _ = tx.send(op());
        })
        .map_err(Problem::Io)?;
    rx.recv_timeout(limit).unwrap_or_else(|e| match e {
        RecvTimeoutError::Timeout => Err(Problem::TimedOut(limit)),
        RecvTimeoutError::Disconnected => Err(Problem::Io(std::io::Error::other(
            "the reading thread ended without an answer",
        ))),
    })
}

fn read_now(path: &Path, kind: FileKind) -> Result<Vec<u8>, Problem> {
    let cap = kind.cap();
    let too_large = Problem::TooLarge { cap, kind };
    let file = open_nonblocking(path).map_err(|e| {
        // Opening a socket fails (ENXIO) rather than opening it: name what it is instead.
        match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => Problem::NotRegular(describe(meta.file_type())),
            _ => Problem::Io(e),
        }
    })?;
    // Judged on the open descriptor, not on the path: a symlink counts as what it points to,
    // and the file cannot be swapped between the check and the read.
    let meta = file.metadata().map_err(Problem::Io)?;
    if !meta.is_file() {
        return Err(Problem::NotRegular(describe(meta.file_type())));
    }
    if meta.len() > cap {
        return Err(too_large);
    }
    // The size can change under us (or be 0 for a /proc file): the read itself is capped too.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(Problem::Io)?;
    if bytes.len() as u64 > cap {
        return Err(too_large);
    }
    Ok(bytes)
}

/// Opens for reading without blocking: a FIFO with no writer would otherwise block the open
/// itself. Regular files ignore the flag.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// What a file that is not a regular file is, in words.
fn describe(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// `5 s`, `0.2 s`: a time limit in words.
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// `64 KiB`, `4 MiB`: the caps are whole multiples.
fn human(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use test_case::test_case;

    use super::*;

    /// A fresh directory under the temp dir, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "netcheck-local-file-{tag}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = Dir::new("ok");
        let path = dir.0.join("k.pem");
        std::fs::write(&path, "text").unwrap();
        assert_eq!(read_text(&path, FileKind::PrivateKey).unwrap(), "text");
        let link = dir.0.join("link.pem");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(read_text(&link, FileKind::PrivateKey).unwrap(), "text");
    }

    #[test]
    fn a_file_over_the_cap_is_refused_without_reading_it() {
        let dir = Dir::new("big");
        let path = dir.0.join("big.pem");
        // Sparse: a 1 GiB file costs no disk and would take seconds to read.
        File::create(&path).unwrap().set_len(1 << 30).unwrap();
        let start = Instant::now();
        let err = read(&path, FileKind::PrivateKey).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(matches!(err.problem, Problem::TooLarge { cap, .. } if cap == PRIVATE_KEY_CAP));
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read the private key {}: it is larger than 64 KiB, the cap for a private key",
                path.display()
            )
        );
        // Exactly at the cap is fine.
        std::fs::write(&path, vec![b'a'; 64 * 1024]).unwrap();
        assert_eq!(read(&path, FileKind::PrivateKey).unwrap().len(), 64 * 1024);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = Dir::new("fifo");
        let path = dir.0.join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let link = dir.0.join("link-to-fifo");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        for p in [&path, &link] {
            let err = read(p, FileKind::Allowlist).unwrap_err();
            assert!(
                matches!(err.problem, Problem::NotRegular("a FIFO (named pipe)")),
                "{err}"
            );
        }
    }

    #[test_case("/dev/zero", "a character device"; "endless device")]
    #[test_case("/tmp", "a directory"; "directory")]
    fn other_kinds_are_refused(path: &str, what: &str) {
        let err = read(Path::new(path), FileKind::Config).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read the configuration file {path}: it is {what}, not a regular file")
        );
    }

    #[test]
    fn a_socket_is_named() {
        let dir = Dir::new("sock");
        let path = dir.0.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = read(&path, FileKind::CaFile).unwrap_err();
        assert!(
            matches!(err.problem, Problem::NotRegular("a socket")),
            "{err}"
        );
    }

    #[test]
    fn missing_files_are_told_apart() {
        let missing = Path::new("/nonexistent/netcheck/connections.toml");
        assert!(
            read_text(missing, FileKind::Config)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn binary_is_not_text() {
        let dir = Dir::new("bin");
        let path = dir.0.join("key");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let err = read_text(&path, FileKind::PrivateKey).unwrap_err();
        assert!(matches!(err.problem, Problem::NotText));
    }

    /// A read that blocks in the kernel — here the blocking open of a FIFO with no writer, as
    /// a file on a hung network mount blocks — is given up after the limit, naming it.
    #[test]
    fn a_read_stuck_in_the_kernel_is_given_up_in_time() {
        let dir = Dir::new("stuck");
        let fifo = dir.0.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let start = Instant::now();
        let stuck = fifo.clone();
        let err = within(Duration::from_millis(200), move || {
            File::open(&stuck).map(drop).map_err(Problem::Io)
        })
        .unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            err.to_string(),
            "it was not read within 0.2 s (a network mount that does not answer?)"
        );
        // A writer releases the thread left behind.
        let _writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    }

    #[test_case(64 * 1024, "64 KiB")]
    #[test_case(4 * 1024 * 1024, "4 MiB")]
    #[test_case(1000, "1000 bytes")]
    fn caps_read_as_words(bytes: u64, words: &str) {
        assert_eq!(human(bytes), words);
    }
}
