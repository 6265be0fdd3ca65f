//! The files Snowflake users keep connections in: the Snowflake CLI / Python connector's
//! `connections.toml` and `config.toml`, and the seed project's `.secrets/config.json`.
//!
//! Parse errors report the file, line and column but never the offending text: the line could be
//! the one holding the passphrase.

use std::path::{Path, PathBuf};

use super::{Key, Layer, Source, Sourced, flag_source};
use crate::error::Error;
use crate::local_file::FileError;

/// The connection used when none is named, as in the Python connector.
const DEFAULT_CONNECTION: &str = "default";

/// The names of the connections `table` defines under any of `layouts`, sorted.
fn defined<'a>(table: &'a toml::Table, layouts: &[&[&str]]) -> Vec<&'a str> {
    let mut known: Vec<&str> = layouts
        .iter()
        .filter_map(|prefix| nested(table, prefix))
        .flat_map(|t| {
            t.iter()
                .filter(|(_, v)| v.is_table())
                .map(|(k, _)| k.as_str())
        })
        .filter(|k| *k != "connections")
        .collect();
    known.sort_unstable();
    known.dedup();
    known
}

/// A connection found in a file: its name (and what chose it) and its settings.
pub(super) struct Named {
    pub(super) name: Sourced<String>,
    pub(super) layer: Layer,
}

/// The directory holding `connections.toml` and `config.toml`.
pub(super) struct SnowflakeHome {
    dir: Option<PathBuf>,
}

impl SnowflakeHome {
    /// `$SNOWFLAKE_HOME`, else `~/.snowflake`, else (when that does not exist) the XDG config
    /// directory `~/.config/snowflake`, where the Python connector looks next on Linux.
    pub(super) fn locate(env: &dyn Fn(&str) -> Option<String>) -> Self {
        if let Some(dir) = env("SNOWFLAKE_HOME").filter(|d| !d.trim().is_empty()) {
            return Self {
                dir: Some(expand_home(&dir, env)),
            };
        }
        let Some(home) = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from) else {
            return Self { dir: None };
        };
        let dot = home.join(".snowflake");
        if dot.is_dir() {
            return Self { dir: Some(dot) };
        }
        let xdg = env("XDG_CONFIG_HOME")
            .filter(|x| !x.is_empty())
            .map_or_else(|| home.join(".config"), PathBuf::from)
            .join("snowflake");
        Self {
            dir: Some(if xdg.is_dir() { xdg } else { dot }),
        }
    }

    /// The names of the connections the files define (`connections.toml` when it exists, else
    /// `config.toml` `[connections.NAME]`, as [`Self::connection`] reads them).
    pub(super) fn names(
        &self,
        read: &dyn Fn(&Path) -> Result<String, FileError>,
    ) -> Result<Vec<String>, Error> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let connections = read_toml(&dir.join("connections.toml"), read)?;
        let config = read_toml(&dir.join("config.toml"), read)?;
        Ok(match (&connections, &config) {
            (Some(table), _) => defined(table, &[&[], &["connections"]]),
            (None, Some(table)) => defined(table, &[&["connections"]]),
            (None, None) => Vec::new(),
        }
        .into_iter()
        .map(str::to_owned)
        .collect())
    }

    /// Finds the connection to read: `--connection`, else `SNOWFLAKE_DEFAULT_CONNECTION_NAME`,
    /// else `default_connection_name` in `config.toml`, else `default` if a file defines it.
    /// Connections come from `connections.toml` when it exists, else from `config.toml`
    /// `[connections.NAME]`. A name that was asked for and is missing is an error. When no
    /// name was asked for (no `--connection`, no `SNOWFLAKE_DEFAULT_CONNECTION_NAME`), a file
    /// that cannot be read or parsed is skipped with a line in `warnings`: a broken file the
    /// run does not need must not stop `run --account X`.
    pub(super) fn connection(
        &self,
        flag: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&Path) -> Result<String, FileError>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Named>, Error> {
        let Some(dir) = &self.dir else {
            return match flag {
                Some(name) => Err(Error::Usage(format!(
                    "--connection {name}: HOME and SNOWFLAKE_HOME are unset, so there is no \
                     connections.toml to read"
                ))),
                None => Ok(None),
            };
        };
        let connections_path = dir.join("connections.toml");
        let config_path = dir.join("config.toml");
        let default_var = "SNOWFLAKE_DEFAULT_CONNECTION_NAME";
        let asked = flag.is_some_and(|n| !n.trim().is_empty())
            || env(default_var).is_some_and(|n| !n.trim().is_empty());
        let mut open = |path: &Path| match read_toml(path, read) {
            Err(e) if !asked => {
                warnings.push(format!(
                    "{e}; skipped, as no connection was asked for (--connection or \
                     {default_var})"
                ));
                Ok(None)
            }
            other => other,
        };
        let connections = open(&connections_path)?;
        let config = open(&config_path)?;
        let (name, explicit) = if let Some(name) = flag.filter(|n| !n.trim().is_empty()) {
            let source = flag_source("--connection", "NETCHECK_CONNECTION", name, env);
            (sourced(name.trim(), source), true)
        } else if let Some(name) = env(default_var).filter(|n| !n.trim().is_empty()) {
            let source = Source::Env {
                name: default_var.to_owned(),
            };
            (sourced(name.trim(), source), true)
        } else if let Some(name) = config
            .as_ref()
            .and_then(|c| c.get("default_connection_name"))
            .and_then(toml::Value::as_str)
        {
            let source = Source::File {
                path: config_path.clone(),
                key: "default_connection_name".to_owned(),
            };
            (sourced(name.trim(), source), true)
        } else {
            (sourced(DEFAULT_CONNECTION, Source::Default), false)
        };
        let (path, table, layouts): (&Path, _, &[&[&str]]) = match (&connections, &config) {
            (Some(table), _) => (&connections_path, table, &[&[], &["connections"]]),
            (None, Some(table)) => (&config_path, table, &[&["connections"]]),
            (None, None) if explicit => {
                return Err(Error::Usage(format!(
                    "connection `{}` ({}): neither {} nor {} exists",
                    name.value,
                    name.source,
                    connections_path.display(),
                    config_path.display()
                )));
            }
            (None, None) => return Ok(None),
        };
        for prefix in layouts {
            if let Some(found) = nested(table, prefix).and_then(|t| t.get(&name.value)) {
                let mut key_path: Vec<&str> = prefix.to_vec();
                key_path.push(&name.value);
                let layer = connection_layer(found, path, &key_path.join("."))?;
                return Ok(Some(Named { name, layer }));
            }
        }
        if !explicit {
            return Ok(None);
        }
        let known = defined(table, layouts);
        Err(Error::Usage(format!(
            "connection `{}` ({}) is not defined in {} (it has: {})",
            name.value,
            name.source,
            path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )))
    }
}

fn sourced(value: &str, source: Source) -> Sourced<String> {
    Sourced {
        value: value.to_owned(),
        source,
    }
}

/// The table at `prefix` (e.g. `["connections"]`), or the root for an empty prefix.
fn nested<'a>(root: &'a toml::Table, prefix: &[&str]) -> Option<&'a toml::Table> {
    prefix.iter().try_fold(root, |table, key| {
        table.get(*key).and_then(toml::Value::as_table)
    })
}

/// Reads a TOML file; `None` when it does not exist.
fn read_toml(
    path: &Path,
    read: &dyn Fn(&Path) -> Result<String, FileError>,
) -> Result<Option<toml::Table>, Error> {
    let text = match read(path) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    text.parse::<toml::Table>().map(Some).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = line_column(&text, span.start);
                format!(" at line {line} column {column}")
            })
            .unwrap_or_default();
        Error::Usage(format!(
            "{} does not parse{at}: {}",
            path.display(),
            e.message()
        ))
    })
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// A value of a key netcheck reads, as text: files hold ports as numbers, the rest as strings.
/// The error never quotes the value (it could be a passphrase).
fn scalar(value: ScalarRef<'_>, path: &Path, key: &str) -> Result<String, Error> {
    match value {
        ScalarRef::Str(s) => Ok(s.to_owned()),
        ScalarRef::Int(i) => Ok(i.to_string()),
        ScalarRef::Other => Err(Error::Usage(format!(
            "{key} in {} must be a string or a number",
            path.display()
        ))),
    }
}

/// The shapes a TOML or JSON value can take, as far as [`scalar`] cares.
#[derive(Clone, Copy)]
enum ScalarRef<'a> {
    Str(&'a str),
    Int(i64),
    Other,
}

impl<'a> From<&'a toml::Value> for ScalarRef<'a> {
    fn from(v: &'a toml::Value) -> Self {
        match v {
            toml::Value::String(s) => Self::Str(s),
            toml::Value::Integer(i) => Self::Int(*i),
            _ => Self::Other,
        }
    }
}

impl<'a> From<&'a serde_json::Value> for ScalarRef<'a> {
    fn from(v: &'a serde_json::Value) -> Self {
        match v {
            serde_json::Value::String(s) => Self::Str(s),
            serde_json::Value::Number(n) => n.as_i64().map_or(Self::Other, Self::Int),
            _ => Self::Other,
        }
    }
}

/// The settings of one connection table; keys netcheck does not use (password, …) are ignored.
fn connection_layer(value: &toml::Value, path: &Path, prefix: &str) -> Result<Layer, Error> {
    let table = value
        .as_table()
        .ok_or_else(|| Error::Usage(format!("{prefix} in {} is not a table", path.display())))?;
    let mut layer = Layer::default();
    for key in Key::ALL {
        for name in key.names() {
            if let Some(v) = table.get(*name) {
                let full = format!("{prefix}.{name}");
                let text = scalar(v.into(), path, &full)?;
                layer.set(key, &text, file_source(path, &full));
            }
        }
    }
    Ok(layer)
}

fn file_source(path: &Path, key: &str) -> Source {
    Source::File {
        path: path.to_owned(),
        key: key.to_owned(),
    }
}

/// Names the seed's JSON uses besides the connector's.
fn seed_names(key: Key) -> &'static [&'static str] {
    match key {
        Key::User => &["username"],
        Key::Host => &["account_host"],
        Key::Pipe => &["pipe_name"],
        _ => &[],
    }
}

/// The seed project's `.secrets/config.json`: `account`, `account_host`, `user`/`username`,
/// `role`, `private_key_path` (relative to the JSON file's directory, as the seed's scripts read
/// it), `database`, `schema`, `pipe_name` (plain or `DB.SCHEMA.PIPE`). `channel_name` is ignored on
/// purpose: opening a channel under a production name would take it over from the real client.
pub(super) fn seed_json(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> Result<String, FileError>,
) -> Result<Layer, Error> {
    let text = read(path)?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("--config {} does not parse: {e}", path.display())))?;
    let object = json
        .as_object()
        .ok_or_else(|| Error::Usage(format!("--config {} is not a JSON object", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut layer = Layer::default();
    for key in Key::ALL {
        for name in key.names().iter().chain(seed_names(key)) {
            let Some(v) = object.get(*name) else { continue };
            let mut text = scalar(v.into(), path, name)?;
            if key == Key::PrivateKeyFile {
                let expanded = expand_home(&text, env);
                text = base.join(expanded).to_string_lossy().into_owned();
            }
            layer.set(key, &text, file_source(path, name));
        }
    }
    split_qualified_pipe(&mut layer)?;
    Ok(layer)
}

/// `pipe_name = "DB.SCHEMA.PIPE"` fills in the database and schema, which must agree with the
/// file's own `database`/`schema` when those are set too.
fn split_qualified_pipe(layer: &mut Layer) -> Result<(), Error> {
    let Some(pipe) = layer.0.get(&Key::Pipe).cloned() else {
        return Ok(());
    };
    let parts: Vec<&str> = pipe.value.split('.').collect();
    let [database, schema, name] = parts.as_slice() else {
        if parts.len() == 1 {
            return Ok(());
        }
        return Err(Error::Usage(format!(
            "{}: expected PIPE or DATABASE.SCHEMA.PIPE, got `{}`",
            pipe.source, pipe.value
        )));
    };
    for (key, part) in [(Key::Database, database), (Key::Schema, schema)] {
        if let Some(existing) = layer.0.get(&key)
            && !existing.value.eq_ignore_ascii_case(part)
        {
            return Err(Error::Usage(format!(
                "{} says {} `{part}` but {} says `{}`",
                pipe.source,
                key.names()[0],
                existing.source,
                existing.value
            )));
        }
        layer.set(key, part, pipe.source.clone());
    }
    layer.0.insert(
        Key::Pipe,
        Sourced {
            value: (*name).to_owned(),
            source: pipe.source,
        },
    );
    Ok(())
}

/// Expands a leading `~` with `HOME`, as shells (and the Snowflake CLI) do for key paths.
pub(super) fn expand_home(value: &str, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match (value.strip_prefix('~'), env("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(value),
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case("a = 1\nb = \"x", 2, 5; "second line")]
    #[test_case("", 1, 1; "start")]
    fn line_columns(text: &str, line: usize, column: usize) {
        let offset = text.find('"').unwrap_or(0);
        assert_eq!(line_column(text, offset), (line, column));
    }

    #[test_case("~/k.p8", "/home/u/k.p8"; "tilde slash")]
    #[test_case("~", "/home/u"; "tilde alone")]
    #[test_case("~bob/k.p8", "~bob/k.p8"; "other user untouched")]
    #[test_case("/abs/k.p8", "/abs/k.p8"; "absolute")]
    fn home_expansion(input: &str, want: &str) {
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(expand_home(input, &env), PathBuf::from(want));
    }

    fn pipe_layer(pairs: &[(Key, &str)]) -> Layer {
        let mut layer = Layer::default();
        for (key, value) in pairs {
            layer.set(*key, value, file_source(Path::new("/c.json"), "k"));
        }
        layer
    }

    #[test]
    fn qualified_pipe_fills_database_and_schema() {
        let mut layer = pipe_layer(&[(Key::Pipe, "DB.SCH.P")]);
        split_qualified_pipe(&mut layer).unwrap();
        assert_eq!(layer.0[&Key::Pipe].value, "P");
        assert_eq!(layer.0[&Key::Database].value, "DB");
        assert_eq!(layer.0[&Key::Schema].value, "SCH");
    }

    #[test]
    fn qualified_pipe_must_agree_with_the_database() {
        let mut layer = pipe_layer(&[(Key::Pipe, "DB.SCH.P"), (Key::Database, "OTHER")]);
        let err = split_qualified_pipe(&mut layer).unwrap_err();
        assert!(err.to_string().contains("OTHER"), "{err}");
    }

    #[test_case("A.B"; "two parts")]
    #[test_case("A.B.C.D"; "four parts")]
    fn malformed_qualified_pipes(pipe: &str) {
        let mut layer = pipe_layer(&[(Key::Pipe, pipe)]);
        assert!(split_qualified_pipe(&mut layer).is_err());
    }
}
