//! Flags + environment → one validated, immutable [`Settings`] that checks read. Checks never
//! read flags or the environment themselves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::connection::{Authenticator, Connection, LoadedKey, OAuthCredentials};
use crate::error::Error;
use crate::local_file::{self, FileKind};
use crate::net::proxy::ProxySettings;
use crate::net::resolver::{self, ResolveOverride, Upstream};
use crate::net::tls::TrustStore;
use crate::snowflake::account::{Endpoint, parse_account};
use crate::snowflake::keys::PrivateKey;
use crate::snowflake::rest::PipeRef;

mod provenance;

pub use provenance::{Origins, Setting};

/// The `netcheck run` flags that make the settings (every one has a `NETCHECK_*` twin); the
/// command line flattens them beside its own.
// Field docs are --help text: plain words, no Markdown.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Account identifier, host or URL: myorg-myaccount, xy12345.us-east-2.aws, or the
    /// account URL with an optional port.
    #[arg(long, env = "NETCHECK_ACCOUNT")]
    pub account: Option<String>,
    #[command(flatten)]
    pub connection: crate::connection::ConnectionArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

/// The settings flags besides who to check (the account and the connection): how to reach it,
/// the bounds, what to run. `netcheck serve` takes these once and applies them to every probe of
/// its named connections.
// Field docs are --help text: plain words, no Markdown.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// HOST:PORT:ADDR[,ADDR…] — use these addresses for HOST:PORT instead of DNS (curl's
    /// --resolve). Repeatable; the environment twin takes a comma-separated list.
    #[arg(long, env = "NETCHECK_RESOLVE", value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// PEM file of extra trust roots, trusted like public ones (private deployments, the emulator).
    #[arg(long, env = "NETCHECK_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Ask this DNS server (an IP address, optionally with a port) instead of the system's resolver.
    #[arg(long, env = "NETCHECK_DNS_SERVER", value_name = "ADDR[:PORT]")]
    pub dns_server: Option<String>,
    /// Proxy URL for HTTPS, overriding HTTPS_PROXY and ALL_PROXY (curl's --proxy; "" disables proxies).
    #[arg(long, env = "NETCHECK_PROXY", value_name = "URL")]
    pub proxy: Option<String>,
    /// PEM file of extra roots for an https:// proxy's own certificate (curl's --proxy-cacert),
    /// trusted for the proxy only, beside the public roots and --ca-file.
    #[arg(long, env = "NETCHECK_PROXY_CACERT", value_name = "PEM")]
    pub proxy_cacert: Option<PathBuf>,
    /// Hosts to reach directly, overriding NO_PROXY (curl's --noproxy syntax).
    #[arg(long, env = "NETCHECK_NOPROXY", value_name = "LIST")]
    pub noproxy: Option<String>,
    /// Seconds each network step may take.
    #[arg(
        long,
        env = "NETCHECK_TIMEOUT",
        value_parser = parse_secs,
        default_value_t = 10.0,
        value_name = "SECS"
    )]
    pub timeout: f64,
    /// Seconds the whole run may take.
    #[arg(
        long,
        env = "NETCHECK_DEADLINE",
        value_parser = parse_secs,
        default_value_t = 60.0,
        value_name = "SECS"
    )]
    pub deadline: f64,
    #[command(flatten)]
    pub budgets: BudgetArgs,
    /// Seconds the test channels' cleanup may take after a signal or the deadline [default: the
    /// --timeout]. A second signal cuts it short; the run still ends by --deadline.
    #[arg(long, env = "NETCHECK_CLEANUP_GRACE", value_name = "SECS", value_parser = parse_secs)]
    pub cleanup_grace: Option<f64>,
    /// JSON output of SELECT SYSTEM$ALLOWLIST(): check DNS and TCP for every host in it
    /// (without it, the list is read over the SQL API when a warehouse is configured).
    #[arg(long, env = "NETCHECK_ALLOWLIST", value_name = "FILE")]
    pub allowlist: Option<PathBuf>,
    /// How many allowlist hosts to check at once.
    #[arg(long, env = "NETCHECK_CONCURRENCY", default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Also stream through a test channel: open, append rows, confirm the commit, drop it.
    #[arg(long, env = "NETCHECK_FULL", value_parser = clap::builder::BoolishValueParser::new())]
    pub full: bool,
    /// Rows to append with --full.
    #[arg(long, env = "NETCHECK_ROWS", default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub rows: u16,
    #[command(flatten)]
    pub rate: crate::load::RateArgs,
    /// Where each of these came from (flag, `NETCHECK_*` twin, default): clap knows, so the
    /// command line fills it from its matches; empty, every setting counts as a default.
    #[arg(skip)]
    pub origins: Origins,
}

/// `--budget-scale`, shared by `run` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct BudgetArgs {
    /// Multiply every latency budget by F (1 to 100): for a link known to be slow, or a
    /// loaded test machine; slower calls still warn, past F times the latency table.
    #[arg(
        long,
        env = "NETCHECK_BUDGET_SCALE",
        value_name = "F",
        default_value_t = 1.0,
        value_parser = parse_budget_scale
    )]
    pub budget_scale: f64,
}

impl BudgetArgs {
    /// The scale, a finite number from 1 to 100.
    pub fn scale(&self) -> Result<f64, Error> {
        scale_in_range(self.budget_scale)
            .map_err(|why| Error::Usage(format!("--budget-scale {why}")))
    }
}

fn scale_in_range(f: f64) -> Result<f64, String> {
    if f.is_finite() && (1.0..=100.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("must be a number between 1 and 100, got {f}"))
    }
}

fn parse_budget_scale(s: &str) -> Result<f64, String> {
    let f = s
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("`{s}` is not a number"))?;
    scale_in_range(f)
}

/// The Snowflake side of a run: who connects, with which credentials, to stream into what.
/// Absent when no credentials are configured: the Snowflake checks are then skipped, the network
/// ones run.
#[derive(Debug, Clone)]
pub struct Snowflake {
    /// The account identifier as given (for the JWT's account part).
    pub account: String,
    /// Always set for key-pair authentication; OAuth tokens name their user themselves.
    pub user: Option<String>,
    pub role: Option<String>,
    /// How the run authenticates.
    pub auth: Credentials,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    /// Defaults to `<TABLE>-STREAMING`.
    pub pipe: Option<String>,
    pub warehouse: Option<String>,
}

/// How a run authenticates to Snowflake.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Key-pair JWT (`SNOWFLAKE_JWT`).
    KeyPair(KeyPair),
    /// An OAuth access token (`OAUTH`, `OAUTH_CLIENT_CREDENTIALS`).
    OAuth(OAuthCredentials),
}

/// The key of key-pair authentication.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub key: Arc<PrivateKey>,
    /// Where the key came from (evidence; the file is never printed).
    pub key_file: Option<PathBuf>,
    /// Findings about the key file that are not errors (loose permissions).
    pub key_warnings: Vec<String>,
}

impl Snowflake {
    /// The Snowflake side of a run: with key-pair authentication when the connection names a
    /// user and a key, with OAuth when its authenticator is one; `None` otherwise (the Snowflake
    /// checks are then skipped).
    #[must_use]
    pub fn from_connection(
        conn: &Connection,
        key: Option<LoadedKey>,
        oauth: Option<OAuthCredentials>,
    ) -> Option<Self> {
        let value =
            |v: &Option<crate::connection::Sourced<String>>| v.as_ref().map(|s| s.value.clone());
        let auth = match (oauth, key) {
            (Some(oauth), _) => Credentials::OAuth(oauth),
            (None, Some(key)) if conn.authenticator.value == Authenticator::SnowflakeJwt => {
                value(&conn.user)?;
                Credentials::KeyPair(KeyPair {
                    key: Arc::new(key.key),
                    key_file: Some(key.path),
                    key_warnings: key.warnings,
                })
            }
            _ => return None,
        };
        Some(Self {
            account: value(&conn.account)
                .or_else(|| value(&conn.host))
                .or_else(|| value(&conn.target))?,
            user: value(&conn.user),
            role: value(&conn.role),
            auth,
            database: value(&conn.database),
            schema: value(&conn.schema),
            table: value(&conn.table),
            pipe: value(&conn.pipe),
            warehouse: value(&conn.warehouse),
        })
    }

    /// The key, under key-pair authentication.
    #[must_use]
    pub fn key_pair(&self) -> Option<&KeyPair> {
        match &self.auth {
            Credentials::KeyPair(k) => Some(k),
            Credentials::OAuth(_) => None,
        }
    }

    /// The OAuth credentials, under OAuth.
    #[must_use]
    pub fn oauth(&self) -> Option<&OAuthCredentials> {
        match &self.auth {
            Credentials::OAuth(o) => Some(o),
            Credentials::KeyPair(_) => None,
        }
    }

    /// The pipe to stream into: the given one, else the table's default pipe.
    #[must_use]
    pub fn pipe_ref(&self) -> Option<PipeRef> {
        let pipe = self.pipe.clone().or_else(|| {
            self.table
                .as_deref()
                .map(crate::snowflake::rest::default_pipe)
        })?;
        Some(PipeRef::new(
            self.database.as_deref()?,
            self.schema.as_deref()?,
            &pipe,
        ))
    }
}

/// The validated configuration of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub account: Endpoint,
    pub resolve: Vec<ResolveOverride>,
    pub ca_file: Option<PathBuf>,
    /// The roots read from `--ca-file`, trusted like public ones.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Where names that `--resolve` does not pin are looked up.
    pub dns: Upstream,
    /// Proxy variables and `--proxy`/`--noproxy`, as curl reads them.
    pub proxy: ProxySettings,
    /// `--proxy-cacert`, the file `proxy_roots` were read from.
    pub proxy_cacert: Option<PathBuf>,
    /// The roots read from `--proxy-cacert`, trusted for an `https://` proxy's certificate only.
    pub proxy_roots: Vec<CertificateDer<'static>>,
    /// Bound on each network step (a DNS query, a connect, a handshake, an HTTP exchange).
    pub timeout: Duration,
    /// Bound on the whole run.
    pub deadline: Duration,
    /// Bound on the cleanup after a signal or the deadline (kept in reserve before the deadline).
    pub cleanup_grace: Duration,
    /// `--budget-scale`: latency budgets are multiplied by it.
    pub budget_scale: f64,
    pub snowflake: Option<Snowflake>,
    /// Where every connection setting came from (shown with `-v` and in JSON `target.sources`).
    pub connection: Connection,
    /// Entries of `--allowlist FILE` (the JSON output of `SYSTEM$ALLOWLIST()`).
    pub allowlist: Option<Vec<crate::snowflake::allowlist::Entry>>,
    /// How many hosts `allowlist.hosts` checks at once.
    pub concurrency: usize,
    /// `--full`: the channel round trip (open, append, commit, drop).
    pub full: bool,
    /// Rows to append in the round trip.
    pub rows: usize,
    /// `--rate`/`--profile`: the sustained-rate stream test (`stream.rate`), when asked.
    pub rate: Option<crate::load::Load>,
    /// Where the flag-backed settings came from (see [`Settings::provenance`]).
    pub origins: Origins,
}

impl Settings {
    /// Validates the `run` arguments (flags already merged with their `NETCHECK_*` twins by
    /// clap); `env` looks up the proxy variables, so tests never touch the process environment.
    pub fn from_args(
        args: &SettingsArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        Self::with_key_loader(args, env, crate::connection::load_key)
    }

    /// [`Settings::from_args`] for a caller that runs unattended (`serve`): an encrypted key's
    /// passphrase must come from the connection or the environment, never from a prompt.
    pub fn unattended(
        args: &SettingsArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        Self::with_key_loader(args, env, |conn| {
            crate::connection::load_key_with(conn, &|_| Ok(None))
        })
    }

    fn with_key_loader(
        args: &SettingsArgs,
        env: impl Fn(&str) -> Option<String>,
        load_key: impl Fn(&Connection) -> Result<Option<LoadedKey>, Error>,
    ) -> Result<Self, Error> {
        let connection =
            crate::connection::resolve(&args.connection, args.account.as_deref(), &env)?;
        let account = connection
            .target
            .as_ref()
            .map(|t| t.value.as_str())
            .ok_or_else(|| {
                Error::Usage(
                    "no account given: use --account ACCOUNT, --connection NAME or --config FILE"
                        .into(),
                )
            })
            .and_then(parse_account)?;
        // May prompt for a passphrase on a terminal: before any progress output starts.
        let probe = &args.probe;
        let key = load_key(&connection)?;
        let oauth = crate::connection::load_oauth(&connection)?;
        let snowflake = Snowflake::from_connection(&connection, key, oauth);
        let timeout = validate_secs("--timeout", probe.timeout)?;
        let deadline = validate_secs("--deadline", probe.deadline)?;
        Ok(Self {
            account,
            resolve: resolver::parse_overrides(&probe.resolve)?,
            extra_roots: match &probe.ca_file {
                Some(path) => TrustStore::load_pem_file(path)
                    .map_err(|e| Error::Usage(format!("--ca-file: {e}")))?,
                None => Vec::new(),
            },
            ca_file: probe.ca_file.clone(),
            proxy: ProxySettings::from_env(env, probe.proxy.as_deref(), probe.noproxy.as_deref()),
            proxy_roots: match &probe.proxy_cacert {
                Some(path) => TrustStore::load_pem_file(path)
                    .map_err(|e| Error::Usage(format!("--proxy-cacert: {e}")))?,
                None => Vec::new(),
            },
            proxy_cacert: probe.proxy_cacert.clone(),
            dns: match probe.dns_server.as_deref() {
                Some(server) => Upstream::Server(validate_dns_server(server)?),
                None => Upstream::System,
            },
            timeout,
            deadline,
            budget_scale: probe.budgets.scale()?,
            cleanup_grace: match probe.cleanup_grace {
                Some(secs) => validate_secs("--cleanup-grace", secs)?,
                None => timeout,
            },
            snowflake,
            connection,
            allowlist: probe.allowlist.as_deref().map(read_allowlist).transpose()?,
            concurrency: usize::from(probe.concurrency),
            full: probe.full,
            rows: usize::from(probe.rows),
            rate: probe.rate.load_for_run(probe.full, deadline)?,
            origins: probe.origins.clone(),
        })
    }
}

fn read_allowlist(
    path: &std::path::Path,
) -> Result<Vec<crate::snowflake::allowlist::Entry>, Error> {
    let text = local_file::read_text(path, FileKind::Allowlist)?;
    crate::snowflake::allowlist::parse(&text)
        .map_err(|e| Error::Usage(format!("--allowlist {}: {e}", path.display())))
}

/// A flag's seconds as a duration: positive, finite, at most an hour.
pub(crate) fn validate_secs(flag: &str, secs: f64) -> Result<Duration, Error> {
    secs_in_range(secs)
        .map(Duration::from_secs_f64)
        .map_err(|why| Error::Usage(format!("{flag} {why}")))
}

fn secs_in_range(secs: f64) -> Result<f64, String> {
    if secs.is_finite() && secs > 0.0 && secs <= 3600.0 {
        Ok(secs)
    } else {
        Err(format!(
            "must be a positive number of seconds, at most 3600, got {secs}"
        ))
    }
}

/// clap value parser for a `SECS` flag, so `--deadline -1` or `--timeout 0` is refused with the
/// range before anything runs.
pub(crate) fn parse_secs(s: &str) -> Result<f64, String> {
    let secs = s
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    secs_in_range(secs)
}

/// `ADDR[:PORT]`, IPv6 in brackets when a port is given; port 53 by default.
fn validate_dns_server(s: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            Error::Usage(format!(
                "invalid --dns-server `{s}`: expected an IP address with an optional :PORT"
            ))
        })
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case("127.0.0.1", "127.0.0.1:53"; "default port")]
    #[test_case("127.0.0.1:5353", "127.0.0.1:5353"; "with port")]
    #[test_case("::1", "[::1]:53"; "ipv6")]
    #[test_case("[::1]:5353", "[::1]:5353"; "ipv6 with port")]
    fn dns_server(input: &str, want: &str) {
        assert_eq!(validate_dns_server(input).unwrap().to_string(), want);
    }

    #[test]
    fn bad_dns_server() {
        assert!(validate_dns_server("dns.example").is_err());
    }

    #[test_case(0.0; "zero")]
    #[test_case(-1.0; "negative")]
    #[test_case(f64::NAN; "nan")]
    #[test_case(99999.0; "too large")]
    fn bad_seconds(s: f64) {
        assert!(validate_secs("--timeout", s).is_err());
    }
}
