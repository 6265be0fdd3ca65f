//! Connection settings the way Snowflake users already keep them: flags, the Snowflake CLI /
//! Python connector files (`connections.toml`, `config.toml`), their environment variables, and
//! the seed project's `.secrets/config.json`, layered with the documented precedence.
//!
//! Every resolved value remembers where it came from ([`Source`]), so `-v` and the JSON report can
//! say which file or variable set it; secret values are never shown, only whether one is set.
//!
//! - [`resolve`]: flags + environment + files → [`Connection`] (no I/O on the key).
//! - [`load_key`]: [`Connection`] → the parsed private key, its fingerprint and warnings.
//! - [`load_oauth`]: [`Connection`] → the OAuth token or client credentials, and where from.
//!
//! Precedence, highest first (Snowflake CLI and Python connector docs):
//! 1. flags (and their `NETCHECK_*` twins),
//! 2. `SNOWFLAKE_CONNECTIONS_<NAME>_<KEY>`,
//! 3. `--config FILE` (the seed's JSON shape), then the named connection in `connections.toml`
//!    (else `config.toml` `[connections.NAME]`),
//! 4. `SNOWFLAKE_<KEY>`, and for the passphrase last `PRIVATE_KEY_PASSPHRASE` (the name `SnowSQL` reads).

mod files;
mod key;
mod oauth;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::error::Error;
use crate::local_file::{self, FileError, FileKind};
use crate::secret::Secret;
use crate::snowflake::account::account_host;

pub use key::{LoadedKey, PassphrasePrompt, load_key, load_key_with};
pub use oauth::{OAuthCredentials, OAuthGrant, load_oauth};

/// The connection flags of `netcheck run` (flattened into `RunArgs`). Account, host and port stay
/// with `--account`. There is deliberately no passphrase flag: it would land in shell history.
// The field docs are `--help` text, printed as is, so markdown backticks would show.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// Named connection from the Snowflake CLI / connector files ($SNOWFLAKE_HOME or
    /// ~/.snowflake: connections.toml, else config.toml [connections.NAME]).
    #[arg(long, env = "NETCHECK_CONNECTION", value_name = "NAME")]
    pub connection: Option<String>,
    /// JSON settings file shaped like a .secrets/config.json of Snowflake streaming samples
    /// (account or account_host, user or username, role, private_key_path, pipe_name, …).
    #[arg(long, env = "NETCHECK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Snowflake user for key-pair authentication.
    #[arg(long, env = "NETCHECK_USER")]
    pub user: Option<String>,
    /// Role to request (the JWT's scope and the channel calls).
    #[arg(long, env = "NETCHECK_ROLE")]
    pub role: Option<String>,
    /// RSA private key (PEM: PKCS#8, encrypted PKCS#8 or PKCS#1). The passphrase comes from
    /// PRIVATE_KEY_PASSPHRASE, the connection's private_key_file_pwd, or a prompt on a terminal.
    #[arg(long, env = "NETCHECK_PRIVATE_KEY_FILE", value_name = "PATH")]
    pub private_key_file: Option<PathBuf>,
    /// Database of the stream target.
    #[arg(long, env = "NETCHECK_DATABASE")]
    pub database: Option<String>,
    /// Schema of the stream target.
    #[arg(long, env = "NETCHECK_SCHEMA")]
    pub schema: Option<String>,
    /// Table of the stream target (its default pipe is TABLE-STREAMING).
    #[arg(long, env = "NETCHECK_TABLE")]
    pub table: Option<String>,
    /// Pipe of the stream target [default: TABLE-STREAMING].
    #[arg(long, env = "NETCHECK_PIPE")]
    pub pipe: Option<String>,
    /// Warehouse (enables the allowlist check through the SQL API).
    #[arg(long, env = "NETCHECK_WAREHOUSE")]
    pub warehouse: Option<String>,
    /// How to authenticate: SNOWFLAKE_JWT (key-pair, the default), OAUTH (a token you have:
    /// token_file_path, or the connection's token) or OAUTH_CLIENT_CREDENTIALS (netcheck asks
    /// the identity provider for one).
    #[arg(long, env = "NETCHECK_AUTHENTICATOR", value_name = "NAME")]
    pub authenticator: Option<String>,
    /// File holding the OAuth access token (authenticator OAUTH). There is deliberately no token
    /// flag: it would land in shell history; the connection's token key or SNOWFLAKE_TOKEN work.
    #[arg(long, env = "NETCHECK_TOKEN_FILE_PATH", value_name = "PATH")]
    pub token_file_path: Option<PathBuf>,
    /// OAuth client id (authenticator OAUTH_CLIENT_CREDENTIALS). The secret comes from the
    /// connection's oauth_client_secret or SNOWFLAKE_OAUTH_CLIENT_SECRET, never a flag.
    #[arg(long, env = "NETCHECK_OAUTH_CLIENT_ID", value_name = "ID")]
    pub oauth_client_id: Option<String>,
    /// The identity provider's token endpoint (authenticator OAUTH_CLIENT_CREDENTIALS).
    #[arg(long, env = "NETCHECK_OAUTH_TOKEN_REQUEST_URL", value_name = "URL")]
    pub oauth_token_request_url: Option<String>,
    /// Scope to ask the identity provider for [default: session:role:ROLE when a role is set].
    #[arg(long, env = "NETCHECK_OAUTH_SCOPE", value_name = "SCOPE")]
    pub oauth_scope: Option<String>,
}

/// Where a setting came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A command-line flag, e.g. `--user`.
    Flag {
        /// The flag as typed.
        name: String,
    },
    /// An environment variable, e.g. `SNOWFLAKE_CONNECTIONS_DEV_USER`.
    Env {
        /// The variable's name.
        name: String,
    },
    /// A key in a settings file.
    File {
        /// The file.
        path: PathBuf,
        /// The key's dotted path in the file, e.g. `dev.user` or `connections.dev.user`.
        key: String,
    },
    /// netcheck's default (e.g. the pipe `<TABLE>-STREAMING`).
    #[default]
    Default,
    /// `netcheck demo`'s own choice, pointing the run at the embedded emulator.
    Demo,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag { name } => f.write_str(name),
            Self::Env { name } => write!(f, "${name}"),
            Self::File { path, key } => write!(f, "{key} in {}", path.display()),
            Self::Default => f.write_str("default"),
            Self::Demo => f.write_str("netcheck demo"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Sourced<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Sourced<U> {
        Sourced {
            value: f(self.value),
            source: self.source,
        }
    }
}

/// How the connection authenticates. netcheck's Snowflake checks speak key-pair JWT and OAuth;
/// the other names Snowflake clients accept are recognised so the checks can say why they skip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Authenticator {
    /// `SNOWFLAKE_JWT`: key-pair authentication (the default here).
    #[default]
    SnowflakeJwt,
    /// `OAUTH`: an access token the user already has (`token` or `token_file_path`).
    OAuth,
    /// `OAUTH_CLIENT_CREDENTIALS`: netcheck asks the identity provider's token endpoint for a token with the
    /// client id and secret (RFC 6749 §4.4).
    OAuthClientCredentials,
    /// A known Snowflake authenticator netcheck cannot use (password, browser SSO, OAuth, …),
    /// upper-cased as given.
    Unsupported(String),
}

/// Authenticators Snowflake's connectors accept besides the three netcheck speaks (`SNOWFLAKE_JWT`,
/// `OAUTH`, `OAUTH_CLIENT_CREDENTIALS`); anything else (apart from an Okta URL) is a typo worth an
/// error rather than a silent skip.
const OTHER_AUTHENTICATORS: [&str; 8] = [
    "SNOWFLAKE",
    "EXTERNALBROWSER",
    "USERNAME_PASSWORD_MFA",
    "PROGRAMMATIC_ACCESS_TOKEN",
    "OAUTH_AUTHORIZATION_CODE",
    "WORKLOAD_IDENTITY",
    "PAT_WITH_EXTERNAL_SESSION",
    "NATIVE_OKTA",
];

impl Authenticator {
    /// The name as Snowflake spells it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::SnowflakeJwt => "SNOWFLAKE_JWT",
            Self::OAuth => "OAUTH",
            Self::OAuthClientCredentials => "OAUTH_CLIENT_CREDENTIALS",
            Self::Unsupported(name) => name,
        }
    }

    /// Whether it is one of the OAuth authenticators netcheck speaks.
    #[must_use]
    pub fn is_oauth(&self) -> bool {
        matches!(self, Self::OAuth | Self::OAuthClientCredentials)
    }

    fn parse(value: &str) -> Option<Self> {
        let upper = value.trim().to_ascii_uppercase();
        if upper == "SNOWFLAKE_JWT" {
            Some(Self::SnowflakeJwt)
        } else if upper == "OAUTH" {
            Some(Self::OAuth)
        } else if upper == "OAUTH_CLIENT_CREDENTIALS" {
            Some(Self::OAuthClientCredentials)
        } else if OTHER_AUTHENTICATORS.contains(&upper.as_str())
            || (upper.starts_with("HTTPS://") && upper.contains(".OKTA"))
        {
            Some(Self::Unsupported(upper))
        } else {
            None
        }
    }
}

impl Serialize for Authenticator {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The resolved connection: values and where each came from. Nothing here has touched the key
/// file yet ([`load_key`] does). `Debug` and `Serialize` never show the passphrase. `Default` is
/// the empty connection (key-pair auth, nothing set), a base for in-process runs such as `demo`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Connection {
    /// The named connection that was read, if any (and what chose it).
    pub name: Option<Sourced<String>>,
    /// What netcheck connects to, ready for `snowflake::account::parse_account`: the host (as a URL when a
    /// port is set) or the account, whichever was set with the higher precedence.
    pub target: Option<Sourced<String>>,
    /// Account identifier (the JWT's account; derive it from `host` when unset).
    pub account: Option<Sourced<String>>,
    /// User for key-pair authentication.
    pub user: Option<Sourced<String>>,
    /// Account host, when set apart from the account.
    pub host: Option<Sourced<String>>,
    /// Account port, when not 443.
    pub port: Option<Sourced<u16>>,
    /// Role.
    pub role: Option<Sourced<String>>,
    /// How to authenticate.
    pub authenticator: Sourced<Authenticator>,
    /// The private key file (`~` expanded; relative to the JSON file for `--config`).
    pub private_key_file: Option<Sourced<PathBuf>>,
    /// The key's passphrase; serialized only as whether it is set and where from.
    #[serde(serialize_with = "serialize_secret_presence")]
    pub private_key_passphrase: Option<Sourced<Secret<String>>>,
    /// Database of the stream target.
    pub database: Option<Sourced<String>>,
    /// Schema of the stream target.
    pub schema: Option<Sourced<String>>,
    /// Warehouse for the SQL API.
    pub warehouse: Option<Sourced<String>>,
    /// Table of the stream target.
    pub table: Option<Sourced<String>>,
    /// Pipe of the stream target (`<TABLE>-STREAMING` by default when a table is set).
    pub pipe: Option<Sourced<String>>,
    /// The OAuth access token itself (`token`); serialized only as whether it is set.
    #[serde(serialize_with = "serialize_secret_presence")]
    pub token: Option<Sourced<Secret<String>>>,
    /// The file holding the OAuth access token (`~` expanded).
    pub token_file_path: Option<Sourced<PathBuf>>,
    /// The OAuth client id (not a secret: identity providers show it in their consoles and logs).
    pub oauth_client_id: Option<Sourced<String>>,
    /// The OAuth client secret; serialized only as whether it is set.
    #[serde(serialize_with = "serialize_secret_presence")]
    pub oauth_client_secret: Option<Sourced<Secret<String>>>,
    /// The identity provider's token endpoint.
    pub oauth_token_request_url: Option<Sourced<String>>,
    /// The scope asked of the identity provider.
    pub oauth_scope: Option<Sourced<String>>,
    /// Problems that did not stop the run: a broken connection file no setting came from.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// `{"set": true, "source": …}`: a report can say where a secret came from without a value to
/// redact in the first place.
#[allow(clippy::ref_option)] // the signature `serialize_with` requires
fn serialize_secret_presence<S: Serializer>(
    secret: &Option<Sourced<Secret<String>>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Presence<'a> {
        set: bool,
        source: Option<&'a Source>,
    }
    Presence {
        set: secret.is_some(),
        source: secret.as_ref().map(|s| &s.source),
    }
    .serialize(serializer)
}

impl Connection {
    /// One row per setting that is set: name, a printable value (`set` for secrets) and its
    /// source, for `-v` output.
    #[must_use]
    pub fn sources<'a>(&'a self) -> Vec<(&'static str, String, &'a Source)> {
        fn row<'a, T: ToString>(
            name: &'static str,
            s: Option<&'a Sourced<T>>,
        ) -> Option<(&'static str, String, &'a Source)> {
            s.map(|s| (name, s.value.to_string(), &s.source))
        }
        let secret = |name: &'static str, s: Option<&'a Sourced<Secret<String>>>| {
            s.map(|s| (name, "set".to_owned(), &s.source))
        };
        let path = |name: &'static str, s: Option<&'a Sourced<PathBuf>>| {
            s.map(|s| (name, s.value.display().to_string(), &s.source))
        };
        let authenticator = Some((
            "authenticator",
            self.authenticator.value.as_str().to_owned(),
            &self.authenticator.source,
        ));
        [
            row("connection", self.name.as_ref()),
            row("target", self.target.as_ref()),
            row("account", self.account.as_ref()),
            row("user", self.user.as_ref()),
            row("host", self.host.as_ref()),
            row("port", self.port.as_ref()),
            row("role", self.role.as_ref()),
            authenticator,
            path("private_key_file", self.private_key_file.as_ref()),
            secret(
                "private_key_passphrase",
                self.private_key_passphrase.as_ref(),
            ),
            secret("token", self.token.as_ref()),
            path("token_file_path", self.token_file_path.as_ref()),
            row("oauth_client_id", self.oauth_client_id.as_ref()),
            secret("oauth_client_secret", self.oauth_client_secret.as_ref()),
            row(
                "oauth_token_request_url",
                self.oauth_token_request_url.as_ref(),
            ),
            row("oauth_scope", self.oauth_scope.as_ref()),
            row("database", self.database.as_ref()),
            row("schema", self.schema.as_ref()),
            row("warehouse", self.warehouse.as_ref()),
            row("table", self.table.as_ref()),
            row("pipe", self.pipe.as_ref()),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A setting netcheck reads, with the key names Snowflake's files and variables use for it
/// (canonical first, then aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Account,
    User,
    Host,
    Port,
    Role,
    Authenticator,
    PrivateKeyFile,
    PrivateKeyPassphrase,
    Database,
    Schema,
    Warehouse,
    Table,
    Pipe,
    Token,
    TokenFilePath,
    OAuthClientId,
    OAuthClientSecret,
    OAuthTokenRequestUrl,
    OAuthScope,
}

impl Key {
    const ALL: [Key; 19] = [
        Key::Account,
        Key::User,
        Key::Host,
        Key::Port,
        Key::Role,
        Key::Authenticator,
        Key::PrivateKeyFile,
        Key::PrivateKeyPassphrase,
        Key::Database,
        Key::Schema,
        Key::Warehouse,
        Key::Table,
        Key::Pipe,
        Key::Token,
        Key::TokenFilePath,
        Key::OAuthClientId,
        Key::OAuthClientSecret,
        Key::OAuthTokenRequestUrl,
        Key::OAuthScope,
    ];

    /// Names in `connections.toml` / `config.toml` and, upper-cased, in `SNOWFLAKE_*` variables.
    fn names(self) -> &'static [&'static str] {
        match self {
            Key::Account => &["account"],
            Key::User => &["user"],
            Key::Host => &["host"],
            Key::Port => &["port"],
            Key::Role => &["role"],
            Key::Authenticator => &["authenticator"],
            Key::PrivateKeyFile => &["private_key_file", "private_key_path"],
            Key::PrivateKeyPassphrase => &["private_key_file_pwd", "private_key_passphrase"],
            Key::Database => &["database"],
            Key::Schema => &["schema"],
            Key::Warehouse => &["warehouse"],
            Key::Table => &["table"],
            Key::Pipe => &["pipe"],
            Key::Token => &["token"],
            Key::TokenFilePath => &["token_file_path"],
            Key::OAuthClientId => &["oauth_client_id"],
            Key::OAuthClientSecret => &["oauth_client_secret"],
            Key::OAuthTokenRequestUrl => &["oauth_token_request_url"],
            Key::OAuthScope => &["oauth_scope"],
        }
    }

    /// Secrets keep their spaces (they may be part of them) and never show in `-v` or JSON.
    fn is_secret(self) -> bool {
        matches!(
            self,
            Key::PrivateKeyPassphrase | Key::Token | Key::OAuthClientSecret
        )
    }
}

/// One source of settings. No `Debug`: it holds the passphrase, token and client secret
/// unwrapped while layers merge.
#[derive(Default)]
struct Layer(BTreeMap<Key, Sourced<String>>);

impl Layer {
    /// Records `value` unless this layer already has the key (an earlier alias wins) or the value
    /// is blank (an empty variable means "not set"). Values are trimmed, except secrets, whose
    /// spaces may be part of them.
    fn set(&mut self, key: Key, value: &str, source: Source) {
        if value.trim().is_empty() {
            return;
        }
        let value = if key.is_secret() { value } else { value.trim() };
        self.0.entry(key).or_insert_with(|| Sourced {
            value: value.to_owned(),
            source,
        });
    }

    /// A layer of the one variable `var`, holding `key`.
    fn from_var(key: Key, var: &str, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut layer = Self::default();
        if let Some(value) = env(var) {
            layer.set(
                key,
                &value,
                Source::Env {
                    name: var.to_owned(),
                },
            );
        }
        layer
    }

    /// Reads `<prefix><NAME>` variables for every key and alias.
    fn from_env(prefix: &str, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut layer = Self::default();
        for key in Key::ALL {
            for name in key.names() {
                let var = format!("{prefix}{}", name.to_ascii_uppercase());
                if let Some(value) = env(&var) {
                    layer.set(key, &value, Source::Env { name: var });
                }
            }
        }
        layer
    }
}

/// The source label of a value clap took from a flag or its `NETCHECK_*` twin: clap merges the
/// two, so a value equal to the variable is credited to the variable.
fn flag_source(flag: &str, var: &str, value: &str, env: &dyn Fn(&str) -> Option<String>) -> Source {
    if env(var).as_deref() == Some(value) {
        Source::Env {
            name: var.to_owned(),
        }
    } else {
        Source::Flag {
            name: flag.to_owned(),
        }
    }
}

fn flags_layer(
    args: &ConnectionArgs,
    account_flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Layer {
    let path = |p: Option<&PathBuf>| p.map(|p| p.to_string_lossy().into_owned());
    let key_file = path(args.private_key_file.as_ref());
    let token_file = path(args.token_file_path.as_ref());
    let flags = [
        (Key::Account, "--account", account_flag),
        (Key::User, "--user", args.user.as_deref()),
        (Key::Role, "--role", args.role.as_deref()),
        (
            Key::PrivateKeyFile,
            "--private-key-file",
            key_file.as_deref(),
        ),
        (Key::Database, "--database", args.database.as_deref()),
        (Key::Schema, "--schema", args.schema.as_deref()),
        (Key::Table, "--table", args.table.as_deref()),
        (Key::Pipe, "--pipe", args.pipe.as_deref()),
        (Key::Warehouse, "--warehouse", args.warehouse.as_deref()),
        (
            Key::Authenticator,
            "--authenticator",
            args.authenticator.as_deref(),
        ),
        (
            Key::TokenFilePath,
            "--token-file-path",
            token_file.as_deref(),
        ),
        (
            Key::OAuthClientId,
            "--oauth-client-id",
            args.oauth_client_id.as_deref(),
        ),
        (
            Key::OAuthTokenRequestUrl,
            "--oauth-token-request-url",
            args.oauth_token_request_url.as_deref(),
        ),
        (
            Key::OAuthScope,
            "--oauth-scope",
            args.oauth_scope.as_deref(),
        ),
    ];
    let mut layer = Layer::default();
    for (key, flag, value) in flags {
        if let Some(value) = value {
            let var = format!(
                "NETCHECK_{}",
                flag.trim_start_matches('-')
                    .replace('-', "_")
                    .to_ascii_uppercase()
            );
            layer.set(key, value, flag_source(flag, &var, value, env));
        }
    }
    layer
}

/// The names of the connections defined in the Snowflake connection files (`$SNOWFLAKE_HOME`
/// or `~/.snowflake`: `connections.toml`, else `config.toml` `[connections.NAME]`), sorted: the
/// only ones `netcheck serve` probes.
pub fn defined_names(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, Error> {
    files::SnowflakeHome::locate(env).names(&|path| local_file::read_text(path, FileKind::Config))
}

/// Resolves the connection from flags (`args`, plus `--account` as `account_flag`), the
/// environment (`env`, a lookup so tests never touch the process environment) and the files.
///
/// A named connection that does not exist, a file that does not parse, a bad port or an unknown
/// authenticator is an [`Error::Usage`] naming the file or variable and the key.
pub fn resolve(
    args: &ConnectionArgs,
    account_flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Connection, Error> {
    resolve_with(args, account_flag, env, &|path| {
        local_file::read_text(path, FileKind::Config)
    })
}

/// [`resolve`] reading the connection files (`connections.toml`, `config.toml`, the `--config`
/// JSON) through `read` instead of the disk, so their parsing and layering can be driven with
/// text held in memory (the fuzz targets do). A missing file is a not-found [`FileError`].
pub fn resolve_with(
    args: &ConnectionArgs,
    account_flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> Result<String, FileError>,
) -> Result<Connection, Error> {
    let home = files::SnowflakeHome::locate(env);
    let mut warnings = Vec::new();
    let named = home.connection(args.connection.as_deref(), env, read, &mut warnings)?;
    let mut layers = vec![flags_layer(args, account_flag, env)];
    if let Some(named) = &named {
        let prefix = format!("SNOWFLAKE_CONNECTIONS_{}_", named.name.value.to_uppercase());
        layers.push(Layer::from_env(&prefix, env));
    }
    if let Some(path) = &args.config {
        layers.push(files::seed_json(path, env, read)?);
    }
    let name = named.map(|n| {
        layers.push(n.layer);
        n.name
    });
    layers.push(Layer::from_env("SNOWFLAKE_", env));
    // SnowSQL's name, the one Snowflake's key-pair docs tell users to export.
    layers.push(Layer::from_var(
        Key::PrivateKeyPassphrase,
        "PRIVATE_KEY_PASSPHRASE",
        env,
    ));
    let mut connection = Merged { layers, env }.connection(name)?;
    connection.warnings = warnings;
    Ok(connection)
}

/// The layers in precedence order; the first layer holding a key wins.
struct Merged<'a> {
    layers: Vec<Layer>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Merged<'_> {
    /// The winning value for `key` and the rank of its layer (0 is the highest precedence).
    fn get(&self, key: Key) -> Option<(usize, Sourced<String>)> {
        self.layers
            .iter()
            .enumerate()
            .find_map(|(rank, layer)| layer.0.get(&key).map(|v| (rank, v.clone())))
    }

    fn string(&self, key: Key) -> Option<Sourced<String>> {
        self.get(key).map(|(_, v)| v)
    }

    fn connection(self, name: Option<Sourced<String>>) -> Result<Connection, Error> {
        let port = self
            .string(Key::Port)
            .map(|p| {
                let parsed = p.value.parse::<u16>().ok().filter(|n| *n != 0);
                parsed.map(|n| p.clone().map(|_| n)).ok_or_else(|| {
                    Error::Usage(format!(
                        "invalid port `{}` ({}): expected 1-65535",
                        p.value, p.source
                    ))
                })
            })
            .transpose()?;
        let authenticator = match self.string(Key::Authenticator) {
            None => Sourced::default(),
            Some(a) => {
                let parsed = Authenticator::parse(&a.value).ok_or_else(|| {
                    Error::Usage(format!(
                        "unknown authenticator `{}` ({}): netcheck uses SNOWFLAKE_JWT (key-pair), OAUTH or \
                         OAUTH_CLIENT_CREDENTIALS",
                        a.value, a.source
                    ))
                })?;
                a.map(|_| parsed)
            }
        };
        let table = self.string(Key::Table);
        let pipe = self.string(Key::Pipe).or_else(|| {
            table.as_ref().map(|t| Sourced {
                value: format!("{}-STREAMING", t.value),
                source: Source::Default,
            })
        });
        Ok(Connection {
            target: self.target(port.as_ref()),
            account: self.string(Key::Account),
            user: self.string(Key::User),
            host: self.string(Key::Host),
            port,
            role: self.string(Key::Role),
            authenticator,
            private_key_file: self
                .string(Key::PrivateKeyFile)
                .map(|p| p.map(|v| files::expand_home(&v, self.env))),
            private_key_passphrase: self
                .string(Key::PrivateKeyPassphrase)
                .map(|p| p.map(Secret::new)),
            database: self.string(Key::Database),
            schema: self.string(Key::Schema),
            warehouse: self.string(Key::Warehouse),
            table,
            pipe,
            token: self.string(Key::Token).map(|t| t.map(Secret::new)),
            token_file_path: self
                .string(Key::TokenFilePath)
                .map(|p| p.map(|v| files::expand_home(&v, self.env))),
            oauth_client_id: self.string(Key::OAuthClientId),
            oauth_client_secret: self
                .string(Key::OAuthClientSecret)
                .map(|s| s.map(Secret::new)),
            oauth_token_request_url: self.string(Key::OAuthTokenRequestUrl),
            oauth_scope: self.string(Key::OAuthScope),
            name,
            warnings: Vec::new(),
        })
    }

    /// The host or the account, whichever came from the higher-precedence layer, so that
    /// `--account` beats a `host` in the connection file, while a file's `host` beats its own
    /// `account` (as the connectors use it).
    fn target(&self, port: Option<&Sourced<u16>>) -> Option<Sourced<String>> {
        let host = self.get(Key::Host);
        let account = self.get(Key::Account);
        let (from_host, chosen) = match (host, account) {
            (Some((h, host)), Some((a, _))) if h <= a => (true, host),
            (Some((_, host)), None) => (true, host),
            (_, Some((_, account))) => (false, account),
            (None, None) => return None,
        };
        let Some(port) = port else {
            return Some(chosen);
        };
        if chosen.value.contains("://") {
            return Some(chosen);
        }
        Some(chosen.map(|v| {
            let host = if from_host { v } else { account_host(&v) };
            format!("https://{host}:{}", port.value)
        }))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use test_case::test_case;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// No files: `SNOWFLAKE_HOME` points at a directory that does not exist.
    fn no_files(extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let mut pairs = vec![("SNOWFLAKE_HOME", "/nonexistent/netcheck-test-home")];
        pairs.extend_from_slice(extra);
        env_of(&pairs)
    }

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        conn: ConnectionArgs,
    }

    #[test]
    fn flags_parse_and_win_over_generic_env() {
        let cmd = Cmd::try_parse_from([
            "t",
            "--user",
            "alice",
            "--private-key-file",
            "/k/rsa.p8",
            "--table",
            "T",
        ])
        .unwrap();
        let env = no_files(&[("SNOWFLAKE_USER", "bob"), ("SNOWFLAKE_ROLE", "R")]);
        let conn = resolve(&cmd.conn, Some("myorg-acct"), &env).unwrap();
        let user = conn.user.unwrap();
        assert_eq!(user.value, "alice");
        assert_eq!(
            user.source,
            Source::Flag {
                name: "--user".into()
            }
        );
        let role = conn.role.unwrap();
        assert_eq!(
            role.source,
            Source::Env {
                name: "SNOWFLAKE_ROLE".into()
            }
        );
        assert_eq!(
            conn.private_key_file.unwrap().value,
            PathBuf::from("/k/rsa.p8")
        );
        assert_eq!(conn.target.unwrap().value, "myorg-acct");
    }

    #[test]
    fn a_value_equal_to_its_netcheck_variable_is_credited_to_the_variable() {
        let args = ConnectionArgs {
            user: Some("alice".into()),
            ..ConnectionArgs::default()
        };
        let env = no_files(&[("NETCHECK_USER", "alice"), ("NETCHECK_ACCOUNT", "acct")]);
        let conn = resolve(&args, Some("acct"), &env).unwrap();
        assert_eq!(
            conn.user.unwrap().source,
            Source::Env {
                name: "NETCHECK_USER".into()
            }
        );
        assert_eq!(
            conn.account.unwrap().source,
            Source::Env {
                name: "NETCHECK_ACCOUNT".into()
            }
        );
    }

    #[test_case("snowflake_jwt", Some("SNOWFLAKE_JWT"), true; "jwt any case")]
    #[test_case("externalbrowser", Some("EXTERNALBROWSER"), false; "browser")]
    #[test_case("oauth", Some("OAUTH"), false; "oauth")]
    #[test_case("OAuth_Client_Credentials", Some("OAUTH_CLIENT_CREDENTIALS"), false; "client credentials")]
    #[test_case("https://acme.okta.com", Some("HTTPS://ACME.OKTA.COM"), false; "okta")]
    #[test_case("snowflake_jtw", None, false; "typo")]
    fn authenticators(input: &str, want: Option<&str>, key_pair: bool) {
        let got = Authenticator::parse(input);
        assert_eq!(got.as_ref().map(Authenticator::as_str), want);
        assert_eq!(got == Some(Authenticator::SnowflakeJwt), key_pair);
    }

    #[test]
    fn unknown_authenticator_names_its_source() {
        let env = no_files(&[("SNOWFLAKE_AUTHENTICATOR", "keypair")]);
        let err = resolve(&ConnectionArgs::default(), None, &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("keypair") && err.contains("$SNOWFLAKE_AUTHENTICATOR"),
            "{err}"
        );
    }

    #[test_case("0"; "zero")]
    #[test_case("70000"; "too large")]
    #[test_case("https"; "not a number")]
    fn bad_ports_name_the_variable(port: &str) {
        let env = no_files(&[("SNOWFLAKE_PORT", port)]);
        let err = resolve(&ConnectionArgs::default(), None, &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("$SNOWFLAKE_PORT"), "{err}");
    }

    #[test]
    fn authenticator_defaults_to_key_pair() {
        let conn = resolve(&ConnectionArgs::default(), None, &no_files(&[])).unwrap();
        assert_eq!(conn.authenticator.value, Authenticator::SnowflakeJwt);
        assert_eq!(conn.authenticator.source, Source::Default);
        assert!(conn.target.is_none() && conn.name.is_none());
    }

    // Passphrases are registered secrets, masked in every output of this test process (even a
    // short one, as a whole word): values no other test prints.
    #[test_case(&[("SNOWFLAKE_PRIVATE_KEY_FILE_PWD", "pass-a"), ("PRIVATE_KEY_PASSPHRASE", "pass-b")], "SNOWFLAKE_PRIVATE_KEY_FILE_PWD"; "connector name first")]
    #[test_case(&[("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "pass-a"), ("PRIVATE_KEY_PASSPHRASE", "pass-b")], "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"; "alias")]
    #[test_case(&[("PRIVATE_KEY_PASSPHRASE", "pass-b")], "PRIVATE_KEY_PASSPHRASE"; "snowsql name last")]
    fn passphrase_variables(vars: &[(&str, &str)], want: &str) {
        let conn = resolve(&ConnectionArgs::default(), None, &no_files(vars)).unwrap();
        let pass = conn.private_key_passphrase.unwrap();
        assert_eq!(pass.source, Source::Env { name: want.into() });
    }

    #[test]
    fn private_key_path_is_an_alias_and_home_is_expanded() {
        let env = no_files(&[
            ("SNOWFLAKE_PRIVATE_KEY_PATH", "~/keys/rsa.p8"),
            ("HOME", "/home/u"),
        ]);
        let conn = resolve(&ConnectionArgs::default(), None, &env).unwrap();
        assert_eq!(
            conn.private_key_file.unwrap().value,
            PathBuf::from("/home/u/keys/rsa.p8")
        );
    }

    #[test]
    fn table_gives_the_default_pipe() {
        let args = ConnectionArgs {
            table: Some("BADGES".into()),
            ..ConnectionArgs::default()
        };
        let conn = resolve(&args, None, &no_files(&[])).unwrap();
        let pipe = conn.pipe.unwrap();
        assert_eq!(pipe.value, "BADGES-STREAMING");
        assert_eq!(pipe.source, Source::Default);
    }

    #[test]
    fn values_are_trimmed_but_passphrases_kept_whole() {
        let env = no_files(&[
            ("SNOWFLAKE_USER", " alice\n"),
            ("PRIVATE_KEY_PASSPHRASE", " pw "),
        ]);
        let conn = resolve(&ConnectionArgs::default(), None, &env).unwrap();
        assert_eq!(conn.user.unwrap().value, "alice");
        assert_eq!(conn.private_key_passphrase.unwrap().value.expose(), " pw ");
    }

    #[test]
    fn blank_variables_are_unset() {
        let env = no_files(&[("SNOWFLAKE_USER", "  "), ("SNOWFLAKE_ROLE", "")]);
        let conn = resolve(&ConnectionArgs::default(), None, &env).unwrap();
        assert!(conn.user.is_none() && conn.role.is_none());
    }

    #[test_case(&[("SNOWFLAKE_HOST", "h.snowflakecomputing.com")], "h.snowflakecomputing.com"; "host alone")]
    #[test_case(&[("SNOWFLAKE_ACCOUNT", "org-acct"), ("SNOWFLAKE_HOST", "h.example")], "h.example"; "host beats account of the same layer")]
    #[test_case(&[("SNOWFLAKE_ACCOUNT", "org-acct"), ("SNOWFLAKE_PORT", "8443")], "https://org-acct.snowflakecomputing.com:8443"; "account with port")]
    #[test_case(&[("SNOWFLAKE_HOST", "127.0.0.1"), ("SNOWFLAKE_PORT", "8443")], "https://127.0.0.1:8443"; "host with port")]
    #[test_case(&[("SNOWFLAKE_HOST", "https://h.example:9"), ("SNOWFLAKE_PORT", "8443")], "https://h.example:9"; "url keeps its port")]
    fn targets(vars: &[(&str, &str)], want: &str) {
        let conn = resolve(&ConnectionArgs::default(), None, &no_files(vars)).unwrap();
        assert_eq!(conn.target.unwrap().value, want);
    }

    #[test]
    fn account_flag_beats_a_lower_host() {
        let env = no_files(&[("SNOWFLAKE_HOST", "other.example")]);
        let conn = resolve(&ConnectionArgs::default(), Some("myorg-acct"), &env).unwrap();
        let target = conn.target.unwrap();
        assert_eq!(target.value, "myorg-acct");
        assert_eq!(
            target.source,
            Source::Flag {
                name: "--account".into()
            }
        );
    }

    #[test]
    fn passphrase_never_shows_in_debug_serialize_or_sources() {
        let env = no_files(&[("PRIVATE_KEY_PASSPHRASE", "hunter2-secret")]);
        let conn = resolve(&ConnectionArgs::default(), None, &env).unwrap();
        let debug = format!("{conn:?}");
        let json = serde_json::to_value(&conn).unwrap();
        let rows = format!("{:?}", conn.sources());
        for text in [&debug, &json.to_string(), &rows] {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert_eq!(json["private_key_passphrase"]["set"], true);
        assert_eq!(
            json["private_key_passphrase"]["source"]["name"],
            "PRIVATE_KEY_PASSPHRASE"
        );
    }

    #[test]
    fn oauth_keys_come_from_files_flags_and_variables_and_secrets_stay_hidden() {
        let env = no_files(&[
            ("SNOWFLAKE_AUTHENTICATOR", "oauth_client_credentials"),
            ("SNOWFLAKE_OAUTH_CLIENT_SECRET", "client-secret-hunter2"),
            ("SNOWFLAKE_TOKEN", "token-hunter2"),
            ("HOME", "/home/u"),
        ]);
        let args = ConnectionArgs {
            oauth_client_id: Some("cid".into()),
            oauth_token_request_url: Some("https://idp.example/token".into()),
            token_file_path: Some("~/t".into()),
            ..ConnectionArgs::default()
        };
        let conn = resolve(&args, None, &env).unwrap();
        assert_eq!(
            conn.authenticator.value,
            Authenticator::OAuthClientCredentials
        );
        assert_eq!(conn.oauth_client_id.as_ref().unwrap().value, "cid");
        assert_eq!(
            conn.token_file_path.as_ref().unwrap().value,
            PathBuf::from("/home/u/t")
        );
        assert_eq!(
            conn.oauth_client_secret.as_ref().unwrap().source,
            Source::Env {
                name: "SNOWFLAKE_OAUTH_CLIENT_SECRET".into()
            }
        );
        let json = serde_json::to_value(&conn).unwrap();
        let shown = [
            format!("{conn:?}"),
            json.to_string(),
            format!("{:?}", conn.sources()),
        ];
        for text in &shown {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert_eq!(json["oauth_client_secret"]["set"], true);
        assert_eq!(json["token"]["set"], true);
    }

    #[test]
    fn sources_serialize_with_a_kind() {
        let file = Source::File {
            path: "/h/connections.toml".into(),
            key: "dev.user".into(),
        };
        assert_eq!(
            serde_json::to_value(&file).unwrap(),
            serde_json::json!({"kind": "file", "path": "/h/connections.toml", "key": "dev.user"})
        );
        assert_eq!(file.to_string(), "dev.user in /h/connections.toml");
        assert_eq!(
            serde_json::to_value(Source::Default).unwrap(),
            serde_json::json!({"kind": "default"})
        );
    }
}
