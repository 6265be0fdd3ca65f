//! The emulator's state: the account (users, keys, objects, grants), channels and their
//! sequencers, rows in flight and committed, the request log and the counters tests read.
//!
//! Rows are committed lazily: every ingest call (and every read-back) first commits the batches
//! whose commit delay has passed, in append order, so no background task is needed.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use std::fmt::Write as _;

use bytes::Bytes;
use rand::RngCore as _;

use super::ca::{CertVariant, TlsMaterial};
use super::faults::{Fault, FaultSet, RowsCap, Vhost};
use super::{
    ConnectionStats, EmulatorConfig, EmulatorError, JwtFailure, LoggedRequest, NetworkPolicy,
};
use crate::snowflake::account::{account_host, jwt_user, normalize_host};
use crate::snowflake::keys::PublicKey;
use crate::snowflake::rest::{
    ApiError, CHANNEL_STATUS_SUCCESS, ChannelRef, ChannelStatus, OpenChannelRequest, PipeRef,
    codes, default_pipe,
};

/// Locks a mutex, recovering from poisoning: a panicking handler must not take the emulator
/// down with it, and every update here leaves the data consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A user as the server stores it.
pub(crate) struct User {
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) default_role: String,
    pub(crate) roles: Vec<String>,
    pub(crate) policy: Option<NetworkPolicy>,
}

/// Upper-case `(DATABASE, SCHEMA, PIPE)`: unquoted identifiers are case-insensitive.
pub(crate) type PipeKey = (String, String, String);

fn pipe_key(pipe: &PipeRef) -> PipeKey {
    (
        pipe.database.to_ascii_uppercase(),
        pipe.schema.to_ascii_uppercase(),
        pipe.pipe.to_ascii_uppercase(),
    )
}

struct PipeEntry {
    /// Roles allowed to stream through the pipe.
    roles: Vec<String>,
}

struct Channel {
    client_seq: u64,
    row_seq: u64,
    status: ChannelStatus,
}

#[derive(Clone)]
struct Batch {
    channel: (PipeKey, String),
    client_seq: u64,
    ready_at: Instant,
    rows: Vec<Bytes>,
    /// Rows the client declared in files it registered (the SDK's file mode): counted as
    /// inserted, never held.
    staged: u64,
    errors: u64,
    first_error: Option<String>,
    offset_token: Option<String>,
}

#[derive(Default)]
struct Ingest {
    next_seq: u64,
    channels: HashMap<(PipeKey, String), Channel>,
    pending: VecDeque<Batch>,
    /// Committed rows kept for reading back, as their NDJSON lines (parsed when read).
    rows: HashMap<PipeKey, Vec<Bytes>>,
    /// Rows each channel had accepted over the last second, for the `throttle-above` fault:
    /// (when, rows).
    recent: HashMap<(PipeKey, String), VecDeque<(Instant, u64)>>,
}

/// Parsed rows of one append (good rows, bad-row count and the first error), or the rows of a
/// registered file.
#[derive(Default)]
pub(crate) struct ParsedRows {
    /// Each good row's line of the body, sharing its buffer: only checked to be one JSON object
    /// here, and turned into a value only when read back (building values for every row was most
    /// of the emulator's time at high rates).
    pub(crate) rows: Vec<Bytes>,
    /// Rows declared in files the client uploaded to the stage and registered (the SDK's file
    /// mode): the emulator takes the client's count, it does not read the files.
    pub(crate) staged: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
}

impl ParsedRows {
    /// A registered file's rows, by the client's count.
    pub(crate) fn staged(rows: u64) -> Self {
        Self {
            staged: rows,
            ..Self::default()
        }
    }

    /// Every row fails to load with `why` (the `row-errors` fault).
    pub(crate) fn reject_all(&mut self, why: &str) {
        if self.rows.is_empty() {
            return;
        }
        self.errors += self.rows.len() as u64;
        self.first_error
            .get_or_insert_with(|| format!("Error loading row 1: {why}"));
        self.rows.clear();
    }
}

/// An ingest-call failure: HTTP status plus error body.
pub(crate) type IngestError = (u16, ApiError);

/// The bucket of the stage `:pipe-info` names.
pub(crate) const STAGE_BUCKET: &str = "netcheck-emulator-stage";

/// The `storage_endpoint` `:pipe-info` names and the stage host it makes: a configured server's,
/// else S3's regional endpoint on the emulator's own port.
fn stage_names(config: &EmulatorConfig, port: u16) -> (String, String) {
    let endpoint = config
        .stage
        .clone()
        .unwrap_or_else(|| format!("s3.{}.amazonaws.com:{port}", config.region));
    let host = endpoint
        .rsplit_once(':')
        .map_or(endpoint.as_str(), |(h, _)| h);
    let host = normalize_host(&format!("{STAGE_BUCKET}.{host}"));
    (endpoint, host)
}

/// Everything shared between connections.
pub(crate) struct State {
    pub(crate) account: String,
    pub(crate) account_host: String,
    pub(crate) ingest_host: String,
    /// The identity provider's host.
    pub(crate) idp_host: String,
    /// The identity provider's clients: id → (secret, user).
    pub(crate) oauth_clients: HashMap<String, (String, String)>,
    /// The stage's storage host (`netcheck-emulator-stage.<endpoint host>`).
    pub(crate) stage_host: String,
    /// The `storage_endpoint` `:pipe-info` names (`host:port`).
    pub(crate) stage_endpoint: String,
    /// The emulator answers for the stage host itself (no external stage server configured).
    pub(crate) serves_stage: bool,
    pub(crate) port: u16,
    pub(crate) users: HashMap<String, User>,
    pub(crate) token_secret: [u8; 32],
    pub(crate) tls: TlsMaterial,
    account_policy: NetworkPolicy,
    pipes: HashMap<PipeKey, PipeEntry>,
    commit_delay: Duration,
    keep_rows: usize,
    /// Swapped whole by `set_faults`; readers take a cheap `Arc` clone per request.
    faults: RwLock<Arc<FaultSet>>,
    ingest: Mutex<Ingest>,
    pub(crate) log: Mutex<Vec<LoggedRequest>>,
    pub(crate) jwt_failures: Mutex<Vec<JwtFailure>>,
    pub(crate) stats: Mutex<ConnectionStats>,
    pub(crate) statements: Mutex<HashMap<String, (u16, serde_json::Value)>>,
}

/// The configured users by upper-case name, with their registered keys and roles.
fn users(config: &[super::UserConfig]) -> Result<HashMap<String, User>, EmulatorError> {
    let mut users = HashMap::new();
    for u in config {
        let keys = [&u.rsa_public_key, &u.rsa_public_key_2]
            .into_iter()
            .flatten()
            .map(|pem| PublicKey::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()?;
        let default_role = u.default_role.to_ascii_uppercase();
        let mut roles: Vec<String> = u.roles.iter().map(|r| r.to_ascii_uppercase()).collect();
        roles.push(default_role.clone());
        users.insert(
            jwt_user(&u.name),
            User {
                keys,
                default_role,
                roles,
                policy: u.network_policy.clone(),
            },
        );
    }
    Ok(users)
}

/// Each table's default pipe (and its extra ones), with the roles granted on the table.
fn pipes(config: &EmulatorConfig) -> HashMap<PipeKey, PipeEntry> {
    let mut pipes = HashMap::new();
    for t in &config.tables {
        let roles: Vec<String> = config
            .grants
            .iter()
            .filter(|g| {
                [
                    (&g.database, &t.database),
                    (&g.schema, &t.schema),
                    (&g.table, &t.table),
                ]
                .iter()
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
            })
            .map(|g| g.role.to_ascii_uppercase())
            .collect();
        for pipe in std::iter::once(default_pipe(&t.table)).chain(t.extra_pipes.clone()) {
            let key = pipe_key(&PipeRef::new(&t.database, &t.schema, &pipe));
            pipes.insert(
                key,
                PipeEntry {
                    roles: roles.clone(),
                },
            );
        }
    }
    pipes
}

impl State {
    pub(crate) fn new(config: EmulatorConfig, port: u16) -> Result<Self, EmulatorError> {
        let account_host = account_host(&config.account);
        let prefix = account_host
            .split('.')
            .next()
            .unwrap_or(&config.account)
            .to_owned();
        let ingest_host = normalize_host(&format!(
            "{prefix}.{}.ingest.snowflakecomputing.com",
            config.region
        ));
        let serves_stage = config.stage.is_none();
        let (stage_endpoint, stage_host) = stage_names(&config, port);
        let pipes = pipes(&config);
        let users = users(&config.users)?;
        let idp_host = super::defaults::IDP_HOST.to_owned();
        let oauth_clients = config
            .oauth_clients
            .iter()
            .map(|c| (c.id.clone(), (c.secret.clone(), jwt_user(&c.user))))
            .collect();
        let mut names = vec![
            account_host.clone(),
            ingest_host.clone(),
            idp_host.clone(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if serves_stage {
            names.push(stage_host.clone());
        }
        names.dedup();
        let mut token_secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut token_secret);
        Ok(Self {
            account: config.account,
            account_host,
            ingest_host,
            idp_host,
            oauth_clients,
            stage_host,
            stage_endpoint,
            serves_stage,
            port,
            users,
            token_secret,
            tls: TlsMaterial::generate(&names)?,
            account_policy: config.network_policy,
            pipes,
            commit_delay: config.commit_delay,
            keep_rows: config.keep_rows,
            faults: RwLock::new(Arc::new(FaultSet::new(config.faults))),
            ingest: Mutex::new(Ingest::default()),
            log: Mutex::default(),
            jwt_failures: Mutex::default(),
            stats: Mutex::default(),
            statements: Mutex::default(),
        })
    }

    pub(crate) fn faults(&self) -> Arc<FaultSet> {
        self.faults
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_faults(&self, faults: Vec<Fault>) {
        *self
            .faults
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(FaultSet::new(faults));
    }

    /// The server clock, skewed by any `clock-offset` fault.
    pub(crate) fn now(&self) -> SystemTime {
        let offset = self.faults().clock_offset();
        let skew = Duration::from_secs(offset.unsigned_abs());
        if offset >= 0 {
            SystemTime::now() + skew
        } else {
            SystemTime::now() - skew
        }
    }

    /// The server clock in Unix seconds.
    pub(crate) fn now_unix(&self) -> i64 {
        unix_millis(self.now()) / 1000
    }

    /// Which host a name (SNI or `Host`, without port) is.
    pub(crate) fn vhost(&self, host: Option<&str>) -> Vhost {
        let Some(host) = host else {
            return Vhost::Address;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host == self.account_host {
            Vhost::Account
        } else if host == self.ingest_host {
            Vhost::Ingest
        } else if host == self.idp_host {
            Vhost::Idp
        } else if self.serves_stage && host == self.stage_host {
            Vhost::Stage
        } else if host == "localhost" || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            Vhost::Address
        } else {
            Vhost::Unknown
        }
    }

    /// The server config for a TLS handshake naming `sni`, after TLS faults.
    pub(crate) fn tls_config(&self, sni: Option<&str>) -> std::sync::Arc<rustls::ServerConfig> {
        let faults = self.faults();
        let mut variant = CertVariant::Good;
        let mut tls12_only = false;
        for e in faults.matching(None, self.vhost(sni)) {
            match e.fault {
                Fault::Tls12Only if e.take() => tls12_only = true,
                Fault::ExpiredCert if e.take() => variant = CertVariant::Expired,
                Fault::WrongHostCert if e.take() => variant = CertVariant::WrongHost,
                Fault::UnknownCa if e.take() => variant = CertVariant::UnknownCa,
                _ => {}
            }
        }
        self.tls.config(variant, tls12_only)
    }

    pub(crate) fn account_policy(&self) -> &NetworkPolicy {
        &self.account_policy
    }

    /// A fresh incident id (UUID v4 text) for error messages.
    pub(crate) fn incident_id() -> String {
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        });
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    /// Resolves a pipe for a role: missing pipe and missing privilege answer the same 404.
    pub(crate) fn authorize_pipe(
        &self,
        pipe: &PipeRef,
        role: &str,
        faults: (bool, bool),
    ) -> Result<PipeKey, IngestError> {
        let (missing_pipe, missing_privilege) = faults;
        let key = pipe_key(pipe);
        let allowed = !missing_pipe
            && !missing_privilege
            && self
                .pipes
                .get(&key)
                .is_some_and(|p| p.roles.iter().any(|r| r.eq_ignore_ascii_case(role)));
        if allowed {
            Ok(key)
        } else {
            Err((
                404,
                ApiError::new(
                    codes::ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED,
                    format!(
                        "Pipe {}.{}.{} does not exist or not authorized.",
                        key.0, key.1, key.2
                    ),
                ),
            ))
        }
    }

    fn ingest(&self) -> MutexGuard<'_, Ingest> {
        let mut ingest = lock(&self.ingest);
        ingest.commit_due(
            Instant::now(),
            self.keep_rows,
            unix_millis(self.now()),
            self.commit_delay,
        );
        ingest
    }

    /// Opens or reopens a channel.
    pub(crate) fn open_channel(
        &self,
        key: PipeKey,
        channel: &ChannelRef,
        request: &OpenChannelRequest,
        status_code: Option<String>,
    ) -> Result<(String, ChannelStatus), IngestError> {
        let now_ms = unix_millis(self.now());
        let mut ingest = self.ingest();
        let id = (key, channel.channel.clone());
        let in_flight = ingest.pending.iter().any(|b| {
            b.channel == id
                && ingest
                    .channels
                    .get(&id)
                    .is_some_and(|c| c.client_seq == b.client_seq)
        });
        if in_flight && request.fail_on_uncommitted_rows == Some(true) {
            return Err((
                409,
                ApiError::new(
                    codes::ERR_CHANNEL_HAS_UNCOMMITTED_DATA,
                    "Channel has uncommitted data.",
                ),
            ));
        }
        ingest.next_seq += 1;
        let seq = ingest.next_seq;
        let channel = ingest
            .channels
            .entry(id.clone())
            .or_insert_with(|| Channel {
                client_seq: seq,
                row_seq: 0,
                status: ChannelStatus {
                    database_name: id.0.0.clone(),
                    schema_name: id.0.1.clone(),
                    pipe_name: id.0.2.clone(),
                    channel_name: id.1.clone(),
                    channel_status_code: CHANNEL_STATUS_SUCCESS.to_owned(),
                    last_committed_offset_token: request.offset_token.clone(),
                    created_on_ms: now_ms,
                    ..ChannelStatus::default()
                },
            });
        // Reopening bumps the client sequencer: older continuation tokens go stale and rows
        // still in flight from before are discarded at commit time.
        channel.client_seq = seq;
        channel.row_seq = 0;
        let mut status = channel.status.clone();
        if let Some(code) = status_code {
            status.channel_status_code = code;
        }
        Ok((continuation_token(seq, 0), status))
    }

    /// Appends parsed rows, to be committed `copies` times; returns the next continuation token. With `rows_per_sec_cap`, a valid
    /// append that would take the channel's rows over the last second above it is throttled
    /// (429, not stored); an append refused for its channel or token never counts in the window.
    #[allow(clippy::too_many_arguments, reason = "one append's parts")]
    pub(crate) fn append(
        &self,
        key: PipeKey,
        channel: &ChannelRef,
        token: &str,
        offset_token: Option<String>,
        parsed: ParsedRows,
        copies: usize,
        rows_per_sec_cap: Option<RowsCap<'_>>,
    ) -> Result<String, IngestError> {
        let mut ingest = self.ingest();
        let Ingest {
            channels,
            pending,
            recent,
            ..
        } = &mut *ingest;
        let id = (key, channel.channel.clone());
        let Some(ch) = channels.get_mut(&id) else {
            return Err(channel_missing(&channel.channel));
        };
        let (client_seq, row_seq) = parse_continuation(token).unwrap_or((0, 0));
        if client_seq != ch.client_seq {
            return Err((
                400,
                ApiError::new(
                    codes::STALE_CONTINUATION_TOKEN_SEQUENCER,
                    "Channel sequencer in the continuation token is stale. Please reopen the channel",
                ),
            ));
        }
        if row_seq != ch.row_seq {
            return Err((
                400,
                ApiError::new(
                    codes::ERR_CHANNEL_HAS_INVALID_ROW_SEQUENCER,
                    "Row sequencer in the continuation token does not match. Please reopen the channel",
                ),
            ));
        }
        if let Some(cap) = rows_per_sec_cap {
            let now = Instant::now();
            let window = recent.entry(id.clone()).or_default();
            while window
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1))
            {
                window.pop_front();
            }
            let rows = parsed.rows.len() as u64 + parsed.staged + parsed.errors;
            if cap.throttles(window.iter().map(|(_, n)| n).sum::<u64>() + rows) {
                return Err((
                    429,
                    ApiError::new(codes::TOO_MANY_REQUESTS, "Too many requests."),
                ));
            }
            window.push_back((now, rows));
        }
        ch.row_seq += 1;
        let next = continuation_token(ch.client_seq, ch.row_seq);
        let batch = Batch {
            channel: id,
            client_seq,
            ready_at: Instant::now() + self.commit_delay,
            rows: parsed.rows,
            staged: parsed.staged,
            errors: parsed.errors,
            first_error: parsed.first_error,
            offset_token,
        };
        // Each copy is committed in turn: none (`no-commit`), once, or twice (`double-commit`).
        pending.extend(std::iter::repeat_n(batch, copies));
        Ok(next)
    }

    /// Status of the named channels of a pipe; unknown channels are left out.
    pub(crate) fn channel_statuses(
        &self,
        key: &PipeKey,
        names: &[String],
        status_code: Option<&str>,
    ) -> Vec<(String, ChannelStatus)> {
        let ingest = self.ingest();
        names
            .iter()
            .filter_map(|n| {
                let ch = ingest.channels.get(&(key.clone(), n.clone()))?;
                let mut status = ch.status.clone();
                if let Some(code) = status_code {
                    code.clone_into(&mut status.channel_status_code);
                }
                Some((n.clone(), status))
            })
            .collect()
    }

    /// Drops a channel (in-flight rows are discarded); returns its last committed offset token.
    pub(crate) fn drop_channel(
        &self,
        key: PipeKey,
        channel: &ChannelRef,
    ) -> Result<Option<String>, IngestError> {
        let mut ingest = self.ingest();
        let id = (key, channel.channel.clone());
        // Its throttling window goes with it: a channel opened later under the name starts afresh.
        ingest.recent.remove(&id);
        ingest
            .channels
            .remove(&id)
            .map(|c| c.status.last_committed_offset_token)
            .ok_or_else(|| channel_missing(&channel.channel))
    }

    /// Committed rows of a pipe, in commit order.
    pub(crate) fn rows(&self, key: &PipeKey) -> Vec<serde_json::Value> {
        let lines = self.ingest().rows.get(key).cloned().unwrap_or_default();
        lines
            .iter()
            .map(|line| serde_json::from_slice(line).unwrap_or_default())
            .collect()
    }

    pub(crate) fn pipe_key(pipe: &PipeRef) -> PipeKey {
        pipe_key(pipe)
    }
}

impl Ingest {
    fn commit_due(&mut self, now: Instant, keep_rows: usize, now_ms: i64, delay: Duration) {
        while self.pending.front().is_some_and(|b| b.ready_at <= now) {
            let Some(batch) = self.pending.pop_front() else {
                break;
            };
            let Some(ch) = self
                .channels
                .get_mut(&batch.channel)
                .filter(|c| c.client_seq == batch.client_seq)
            else {
                continue;
            };
            let good = batch.rows.len() as u64 + batch.staged;
            let s = &mut ch.status;
            s.snowflake_avg_processing_latency_ms =
                u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            s.rows_inserted += good;
            s.rows_parsed += good + batch.errors;
            if batch.errors > 0 {
                s.rows_error_count += batch.errors;
                s.last_error_message = batch.first_error;
                s.last_error_offset_upper_bound
                    .clone_from(&batch.offset_token);
                s.last_error_timestamp = Some(now_ms);
            }
            if batch.offset_token.is_some() {
                s.last_committed_offset_token = batch.offset_token;
            }
            let kept = self.rows.entry(batch.channel.0).or_default();
            let room = keep_rows.saturating_sub(kept.len());
            kept.extend(batch.rows.into_iter().take(room));
        }
    }
}

fn channel_missing(name: &str) -> IngestError {
    (
        404,
        ApiError::new(
            codes::ERR_CHANNEL_DOES_NOT_EXIST_OR_IS_NOT_AUTHORIZED,
            format!("Channel {name} does not exist or is not authorized."),
        ),
    )
}

/// Continuation tokens look like the official client's test values (`0_1`); clients must treat
/// them as opaque.
fn continuation_token(client_seq: u64, row_seq: u64) -> String {
    format!("{client_seq}_{row_seq}")
}

fn parse_continuation(token: &str) -> Option<(u64, u64)> {
    let (a, b) = token.split_once('_')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Parses an NDJSON body: one JSON object per line (`\n` or `\r\n`); anything else counts as an
/// error row, as Snowflake's `ON_ERROR = CONTINUE` does.
pub(crate) fn parse_ndjson(body: &Bytes) -> ParsedRows {
    let mut parsed = ParsedRows::default();
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(first) = line.iter().find(|b| !b.is_ascii_whitespace()) else {
            continue;
        };
        // Checked without building the value: syntax, and an object at the top.
        let error = match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) if *first == b'{' => {
                parsed.rows.push(body.slice_ref(line));
                continue;
            }
            Ok(_) => "the row is not a JSON object".to_owned(),
            Err(e) => e.to_string(),
        };
        parsed.errors += 1;
        parsed
            .first_error
            .get_or_insert_with(|| format!("Error parsing row {}: {error}", index + 1));
    }
    parsed
}

pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_counts_bad_rows() {
        let p = parse_ndjson(&Bytes::from_static(
            b"{\"a\":1}\r\n[1,2]\nnot json\n\n{\"b\":2}\n",
        ));
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.errors, 2);
        assert!(p.first_error.unwrap().starts_with("Error parsing row 2"));
    }

    #[test]
    fn continuation_tokens_round_trip() {
        assert_eq!(parse_continuation(&continuation_token(7, 3)), Some((7, 3)));
        assert_eq!(parse_continuation("garbage"), None);
    }

    #[test]
    fn incident_ids_look_like_uuids() {
        let id = State::incident_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
    }
}
