//! Connection files and their layering: `connections.toml`, `config.toml` and the seed's
//! `--config` JSON, held in memory (no file is read), resolved with `SNOWFLAKE_*` variables.
//! Input: three parts separated by a line `%%`: connections.toml, config.toml, the JSON; an
//! empty part is a missing file.
#![no_main]

use std::io;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use netcheck::connection::{ConnectionArgs, resolve_with};
use netcheck::local_file::{FileError, FileKind, Problem};

fuzz_target!(|input: &str| {
    let mut parts = input.splitn(3, "\n%%\n");
    let files = [
        ("/fuzz/home/connections.toml", parts.next()),
        ("/fuzz/home/config.toml", parts.next()),
        ("/fuzz/config.json", parts.next()),
    ];
    let read = |path: &Path| -> Result<String, FileError> {
        files
            .iter()
            .find(|(name, _)| Path::new(name) == path)
            .and_then(|(_, text)| text.filter(|t| !t.is_empty()))
            .map(str::to_owned)
            .ok_or_else(|| FileError {
                path: path.to_owned(),
                kind: FileKind::Config,
                problem: Problem::Io(io::ErrorKind::NotFound.into()),
            })
    };
    let env = |name: &str| match name {
        "SNOWFLAKE_HOME" => Some("/fuzz/home".to_owned()),
        "HOME" => Some("/home/fuzz".to_owned()),
        "SNOWFLAKE_ROLE" => Some("ENV_ROLE".to_owned()),
        _ => None,
    };
    for config in [None, Some(PathBuf::from("/fuzz/config.json"))] {
        let args = ConnectionArgs {
            config,
            ..ConnectionArgs::default()
        };
        if let Ok(conn) = resolve_with(&args, None, &env, &read) {
            let _ = conn.sources();
        }
    }
});
