//! Loading the connection's private key: the passphrase from the connection or a terminal
//! prompt, every failure an [`Error::Usage`] naming the file (exit 2), loose permissions a
//! warning.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::{Connection, Sourced};
use crate::error::Error;
use crate::local_file::{self, FileKind, Problem};
use crate::secret::Secret;
use crate::snowflake::keys::{KeyError, PrivateKey};

/// The key of a connection, ready to sign JWTs.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The RSA private key (its `Debug` hides the material).
    pub key: PrivateKey,
    /// The file it came from.
    pub path: PathBuf,
    /// `SHA256:` + base64 of the public key's DER, as Snowflake shows in `RSA_PUBLIC_KEY_FP`.
    pub fingerprint: String,
    /// Problems worth a warning but not a refusal (file permissions).
    pub warnings: Vec<String>,
}

/// Loads the connection's private key; `None` when no key file is configured. An encrypted key
/// without a configured passphrase is asked for on the terminal (only when stdin is one).
pub fn load_key(conn: &Connection) -> Result<Option<LoadedKey>, Error> {
    load_key_with(conn, &prompt_on_terminal)
}

/// Asks for the passphrase of the key file it is given; `Ok(None)` when it cannot ask.
pub type PassphrasePrompt<'a> = dyn Fn(&Path) -> Result<Option<Secret<String>>, Error> + 'a;

/// [`load_key`] with the passphrase prompt supplied by the caller (tests, non-terminal front
/// ends).
pub fn load_key_with(
    conn: &Connection,
    prompt: &PassphrasePrompt<'_>,
) -> Result<Option<LoadedKey>, Error> {
    let Some(file) = &conn.private_key_file else {
        return Ok(None);
    };
    let path = &file.value;
    let fail = |why: &dyn std::fmt::Display| usage(file, "private key", why);
    let pem = read_credential_file(
        file,
        FileKind::PrivateKey,
        "private key",
        "not a PEM text file",
    )?;
    let configured = conn.private_key_passphrase.as_ref().map(|p| &p.value);
    let key = match PrivateKey::from_pem(&pem, configured) {
        Err(KeyError::PassphraseRequired) => {
            let asked = prompt(path)?.ok_or_else(|| {
                fail(&"encrypted key needs a passphrase: set PRIVATE_KEY_PASSPHRASE")
            })?;
            PrivateKey::from_pem(&pem, Some(&asked))
        }
        other => other,
    }
    .map_err(|e| fail(&e))?;
    Ok(Some(LoadedKey {
        fingerprint: key.public_key().fingerprint(),
        warnings: permission_warning(path, "private key")
            .into_iter()
            .collect(),
        path: path.clone(),
        key,
    }))
}

/// An [`Error::Usage`] naming a credential file (`what`), where it was configured, and why.
pub(super) fn usage(file: &Sourced<PathBuf>, what: &str, why: &dyn std::fmt::Display) -> Error {
    Error::Usage(format!(
        "{what} {} (from {}): {why}",
        file.value.display(),
        file.source
    ))
}

/// Reads a credential file (the key, the OAuth token) through the one bounded reader; every
/// failure names the file: `not_text` when it is binary.
pub(super) fn read_credential_file(
    file: &Sourced<PathBuf>,
    kind: FileKind,
    what: &str,
    not_text: &str,
) -> Result<String, Error> {
    local_file::read_text(&file.value, kind).map_err(|e| match e.problem {
        Problem::NotText => usage(file, what, &not_text),
        Problem::Io(io) => usage(file, what, &format_args!("cannot read: {io}")),
        problem => usage(file, what, &problem),
    })
}

/// Asks for the passphrase on the terminal; never when stdin is not one (CI, pipes), where a
/// prompt would hang or read the wrong input.
fn prompt_on_terminal(path: &Path) -> Result<Option<Secret<String>>, Error> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
        .map(|p| Some(Secret::new(p)))
        .map_err(|e| {
            Error::Usage(format!(
                "cannot read the passphrase for {}: {e}",
                path.display()
            ))
        })
}

/// A warning when group or others may read or write a credential file (ssh's rule): anyone
/// who can read it can sign in as the user. `what` names it ("private key", "OAuth token file").
pub(super) fn permission_warning(path: &Path, what: &str) -> Option<String> {
    let mode = file_mode(path)?;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{what} {} has permissions {mode:04o}, readable beyond its owner; \
             run `chmod 600 {}`",
            path.display(),
            path.display()
        )
    })
}

/// The file's permission bits, where the platform has them.
#[cfg(unix)]
pub(super) fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    Some(std::fs::metadata(path).ok()?.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
pub(super) fn file_mode(_path: &Path) -> Option<u32> {
    None
}
