//! The embedded Snowflake-compatible HTTPS emulator.
//!
//! It serves the endpoints netcheck talks to — discovery, the scoped-token exchange, the
//! Snowpipe Streaming channel calls, the SQL API — as the real service speaks them
//! (`shared/spec/snowflake-api.md` §1–6, §12), on one loopback listener, with the account host,
//! the ingest host and an OAuth identity provider (its client-credentials token endpoint, whose
//! tokens the account accepts with token type `OAUTH`) behind it (SNI and `Host` decide which),
//! and the stage host `:pipe-info` names (answered as S3 answers an anonymous request, unless
//! [`EmulatorConfig::stage`] names an S3-compatible server, where the official SDK's file mode
//! uploads; the emulator commits the files it registers by their declared row counts). Faults
//! are data ([`Fault`]), so every later check can be shown its real symptom.
//!
//! Faults use the syntax `NAME[=VALUE][@SCOPE]`, where the scope is one endpoint
//! (`@hostname`, `@token`, `@pipe-info`, `@open`, `@append`, `@filebuffer`, `@status`, `@drop`,
//! `@statements`, `@telemetry`) or one host (`@account`, `@ingest`), and a `#N` suffix limits a
//! fault to the first N requests it hits (a failure that clears on retry); `netcheck emulate
//! --list-faults` prints them.
//!
//! Fidelity is checked by clients that did not come from this crate: Snowflake's REST tutorial flow
//! and the official Snowpipe Streaming SDK, over the REST `rows` call and in its file mode
//! (`tests/oracle/`, see its README for what was observed and what the emulator takes on trust).
//!
//! Choices where no source says what the real service answers: 413 `ERR_REQUEST_TOO_LARGE` over
//! the 4 MB cap, 400 `{"error":"invalid_scope"}` for a bad token scope, 400 for stale or replayed
//! continuation tokens, and the `:pipe-info` body (shaped after what the SDK parses).
//!
//! Modules:
//! - `ca`: the CA and server certificates (rcgen) and the rustls configs the TLS faults pick.
//! - `faults`: the [`Fault`] enum, its `NAME[=VALUE][@SCOPE][#N]` syntax, the set in force.
//! - `fault_layer`: applies the HTTP-level faults before a request reaches its handler.
//! - `request`: what is known of a request before any handler runs; the JSON error body.
//! - `server`: the accept loop, TLS with SNI, hyper connections, reset-mid-response.
//! - `state`: accounts, users, objects, channels, committed rows, logs.
//! - `routes`: the request handlers.
//! - `routes::statements`: the SQL API subset netcheck uses.
//! - `command`: `netcheck emulate`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), netcheck_emulator::EmulatorError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let emulator = netcheck_emulator::spawn(listener, Default::default()).await?;
//! println!("{} at {}", emulator.account_host(), emulator.addr());
//! # Ok(()) }
//! ```

mod ca;
mod command;
mod fault_layer;
mod faults;
mod request;
mod routes;
mod server;
mod state;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;
// The protocol crate's modules under the names the emulator's code uses.
use netcheck_protocol::{local_file, secret, snowflake, units};

pub use command::{EmulateArgs, emulate, run_emulate};
pub use faults::{Fault, FaultScope, Vhost};
pub use server::{Emulator, spawn};

use crate::snowflake::jwt::JwtRejection;
use crate::snowflake::keys::{KeyError, PrivateKey};
use crate::snowflake::rest::{ApiCall, default_pipe};

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Certificate generation failed.
    #[error("cannot generate certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The rustls server configuration was refused.
    #[error("cannot build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A configured public key or the generated key pair is unusable.
    #[error("key problem: {0}")]
    Key(#[from] KeyError),
    /// The configuration is inconsistent.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// The state directory holds files `emulate` did not write: writing `connections.toml` and
    /// `rsa_key.p8` there could destroy a user's own (`~/.snowflake` uses those names).
    #[error(
        "--state-dir {}: refusing to write into a directory holding files netcheck emulate did \
         not create ({}); it writes connections.toml and rsa_key.p8, the names a Snowflake \
         configuration directory uses. Give a new or empty directory",
        dir.display(),
        foreign.join(", ")
    )]
    StateDirInUse {
        /// The directory.
        dir: std::path::PathBuf,
        /// Some of the files that are not emulate's (at most a few, for the message).
        foreign: Vec<String>,
    },
    /// An I/O operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done (e.g. `write /tmp/x/ca.pem`).
        op: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Allowed and blocked client addresses. An empty `allowed` list allows everyone; `blocked`
/// wins over `allowed`, as in Snowflake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// `ALLOWED_IP_LIST`.
    pub allowed: Vec<IpNet>,
    /// `BLOCKED_IP_LIST`.
    pub blocked: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Whether a client address may connect under this policy.
    #[must_use]
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        !self.blocked.iter().any(|n| n.contains(&ip))
            && (self.allowed.is_empty() || self.allowed.iter().any(|n| n.contains(&ip)))
    }
}

/// IPv4-mapped IPv6 addresses count as IPv4, so `127.0.0.1/32` matches a dual-stack peer.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A Snowflake user.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// User name (compared upper case).
    pub name: String,
    /// `DEFAULT_ROLE`.
    pub default_role: String,
    /// Roles granted to the user (the default role is implied).
    pub roles: Vec<String>,
    /// `RSA_PUBLIC_KEY` (PEM or bare base64 body).
    pub rsa_public_key: Option<String>,
    /// `RSA_PUBLIC_KEY_2`, for rotation.
    pub rsa_public_key_2: Option<String>,
    /// A user-level network policy; it overrides the account's for this user, as in Snowflake.
    pub network_policy: Option<NetworkPolicy>,
}

/// A table and its pipes.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// Database name.
    pub database: String,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Pipes on the table; `<TABLE>-STREAMING` is always there.
    pub extra_pipes: Vec<String>,
}

/// A privilege grant: the role may stream into the table (INSERT and SELECT on it, OPERATE on its
/// pipes) — what a streaming producer needs.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The role.
    pub role: String,
    /// Database name.
    pub database: String,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
}

/// An OAuth client the emulator's identity provider knows (client-credentials grant).
#[derive(Debug, Clone)]
pub struct OauthClient {
    /// `client_id`.
    pub id: String,
    /// `client_secret`.
    pub secret: String,
    /// The Snowflake user its tokens map to.
    pub user: String,
}

/// Everything the emulator serves. [`Default`] works out of the box: account `myorg-myaccount`,
/// user `NETCHECK_USER` with [`default_key`] registered, role `NETCHECK_ROLE`, table
/// `NETCHECK_DB.PUBLIC.NETCHECK_EVENTS` with its default pipe, and the grant to stream into it.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Account identifier in the `org-account` form.
    pub account: String,
    /// Cloud region, part of the ingest host name.
    pub region: String,
    /// Users.
    pub users: Vec<UserConfig>,
    /// The account-level network policy: applies to every request of users without their own
    /// policy, and to every request whose caller could not be identified.
    pub network_policy: NetworkPolicy,
    /// Tables (and their pipes).
    pub tables: Vec<TableConfig>,
    /// Grants.
    pub grants: Vec<Grant>,
    /// How long appended rows stay in flight before they count as committed.
    pub commit_delay: Duration,
    /// How many committed rows per pipe are kept in memory for [`Emulator::rows`]; later rows
    /// are counted in the channel status only. Tests keep all; a load test keeps none.
    pub keep_rows: usize,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// The clients of the identity provider's token endpoint.
    pub oauth_clients: Vec<OauthClient>,
    /// The `host:port` of an S3-compatible server (moto, in tests and the benchmark; reached over
    /// HTTPS) that `:pipe-info` names as the stage's `storage_endpoint`; the stage host is then
    /// `netcheck-emulator-stage.<host>`. `None`:
    /// the emulator answers for the stage itself, as S3 answers an anonymous request (403
    /// `AccessDenied`), under `netcheck-emulator-stage.s3.<region>.amazonaws.com` on its own port.
    pub stage: Option<String>,
}

/// Default names, shared by [`EmulatorConfig::default`] and `netcheck emulate`.
pub mod defaults {
    /// Account.
    pub const ACCOUNT: &str = "myorg-myaccount";
    /// Region of the ingest host.
    pub const REGION: &str = "us-west-2";
    /// User.
    pub const USER: &str = "NETCHECK_USER";
    /// Role.
    pub const ROLE: &str = "NETCHECK_ROLE";
    /// Database.
    pub const DATABASE: &str = "NETCHECK_DB";
    /// Schema.
    pub const SCHEMA: &str = "PUBLIC";
    /// Table.
    pub const TABLE: &str = "NETCHECK_EVENTS";
    /// The identity provider's host (`.test`: a name that never resolves outside a test).
    pub const IDP_HOST: &str = "idp.netcheck-emulator.test";
    /// The identity provider's token endpoint path (Okta's shape).
    pub const IDP_TOKEN_PATH: &str = "/oauth2/v1/token";
    /// The OAuth client id of the default client.
    pub const OAUTH_CLIENT_ID: &str = "netcheck-emulator-client";
}

/// The default OAuth client's secret: random per process, so no test or state directory can
/// depend on a value, and registered as a secret (it is one).
pub fn default_oauth_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(|| {
        use rand::RngCore as _;
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = bytes.iter().fold(String::from("ncs-"), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
        crate::secret::register(&secret);
        secret
    })
}

/// A key pair shared by every default configuration in this process (RSA generation is the slow
/// part of starting an emulator). Its public key is registered on the default user.
pub fn default_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(2048).expect("RSA key generation with the OS RNG"))
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        let public = default_key()
            .public_key()
            .to_pem()
            .expect("encoding a generated public key");
        Self::with_user_key(&public)
    }
}

impl EmulatorConfig {
    /// The default configuration with `public_key_pem` as the default user's `RSA_PUBLIC_KEY`.
    #[must_use]
    pub fn with_user_key(public_key_pem: &str) -> Self {
        use defaults::{ACCOUNT, DATABASE, REGION, ROLE, SCHEMA, TABLE, USER};
        Self {
            account: ACCOUNT.to_owned(),
            region: REGION.to_owned(),
            users: vec![UserConfig {
                name: USER.to_owned(),
                default_role: ROLE.to_owned(),
                roles: vec![ROLE.to_owned()],
                rsa_public_key: Some(public_key_pem.to_owned()),
                rsa_public_key_2: None,
                network_policy: None,
            }],
            network_policy: NetworkPolicy::default(),
            tables: vec![TableConfig {
                database: DATABASE.to_owned(),
                schema: SCHEMA.to_owned(),
                table: TABLE.to_owned(),
                extra_pipes: Vec::new(),
            }],
            grants: vec![Grant {
                role: ROLE.to_owned(),
                database: DATABASE.to_owned(),
                schema: SCHEMA.to_owned(),
                table: TABLE.to_owned(),
            }],
            commit_delay: Duration::from_millis(100),
            keep_rows: usize::MAX,
            faults: Vec::new(),
            oauth_clients: vec![OauthClient {
                id: defaults::OAUTH_CLIENT_ID.to_owned(),
                secret: default_oauth_secret().to_owned(),
                user: USER.to_owned(),
            }],
            stage: None,
        }
    }

    /// The default pipe of the first table (`NETCHECK_EVENTS-STREAMING` by default).
    #[must_use]
    pub fn default_pipe(&self) -> Option<String> {
        self.tables.first().map(|t| default_pipe(&t.table))
    }
}

/// One request as the emulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// HTTP version as negotiated (`HTTP/1.1`, `HTTP/2.0`).
    pub version: String,
    /// The host the request was for (`Host`/authority, else SNI), without port.
    pub host: String,
    /// The TLS SNI, if the client sent one (clients connecting by IP send none).
    pub sni: Option<String>,
    /// Path.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Which API call it was.
    pub endpoint: ApiCall,
    /// Response status.
    pub status: u16,
    /// Token type: the `X-Snowflake-Authorization-Token-Type` header, else inferred from the
    /// bearer token (`KEYPAIR_JWT` or `OAUTH`).
    pub token_type: Option<String>,
    /// The client address.
    pub client_ip: IpAddr,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// The connection was reset mid-response by a fault.
    pub reset: bool,
}

/// A rejected key-pair JWT with the detailed reason Snowflake would show an administrator.
#[derive(Debug, Clone, Serialize)]
pub struct JwtFailure {
    /// The reason.
    pub reason: JwtRejection,
    /// 394300–394307 (or 390144).
    pub code: u32,
    /// The incident id quoted in the client's message (`JWT token is invalid. [id]`).
    pub incident: String,
    /// Which call carried the token.
    pub endpoint: ApiCall,
    /// The client address.
    pub client_ip: IpAddr,
}

/// Connection counters, to prove connection reuse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionStats {
    /// TCP connections accepted.
    pub tcp_accepted: u64,
    /// Completed TLS handshakes per SNI host (`""` when the client sent no SNI).
    pub tls_handshakes: BTreeMap<String, u64>,
    /// Failed TLS handshakes per SNI host.
    pub tls_failures: BTreeMap<String, u64>,
}

/// Shared handle type used by the internal modules.
pub(crate) type Shared = Arc<state::State>;

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case(&[], &[], "10.0.0.1" => true; "empty policy allows")]
    #[test_case(&["10.0.0.0/8"], &[], "10.1.2.3" => true; "allowed")]
    #[test_case(&["10.0.0.0/8"], &[], "192.168.0.1" => false; "not allowed")]
    #[test_case(&["10.0.0.0/8"], &["10.1.0.0/16"], "10.1.2.3" => false; "blocked wins")]
    #[test_case(&[], &["127.0.0.1/32"], "::ffff:127.0.0.1" => false; "mapped v4")]
    fn network_policy(allowed: &[&str], blocked: &[&str], ip: &str) -> bool {
        let nets = |v: &[&str]| v.iter().map(|s| s.parse().unwrap()).collect();
        NetworkPolicy {
            allowed: nets(allowed),
            blocked: nets(blocked),
        }
        .allows(ip.parse().unwrap())
    }
}
