//! The Snowpipe Streaming REST API (high-performance architecture) and the SQL API: paths,
//! endpoint names, and typed bodies, as the real service speaks them.
//!
//! Where Snowflake's docs and the real server disagree (reference §4, §12), the types follow
//! the server and accept both forms on input: error bodies with `code`, `error_code` or a bare
//! JSON string; `rows_error_count` or `rows_errors`.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

/// `GET` on the account host: discovers the ingest host.
pub const HOSTNAME_PATH: &str = "/v2/streaming/hostname";
/// `POST` on the account host: exchanges the key-pair JWT for a scoped token.
pub const OAUTH_TOKEN_PATH: &str = "/oauth/token";
/// `POST` on the account host: the SQL API.
pub const STATEMENTS_PATH: &str = "/api/v2/statements";
/// `POST` on the account host: the SDK's background telemetry.
pub const TELEMETRY_PATH: &str = "/telemetry/send/sessionless";
/// The grant type of the scoped-token exchange.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The optional header naming the kind of bearer token.
pub const TOKEN_TYPE_HEADER: &str = "x-snowflake-authorization-token-type";
/// Token-type header value for a key-pair JWT.
pub const TOKEN_TYPE_KEYPAIR_JWT: &str = "KEYPAIR_JWT";
/// Token-type header value for the scoped (OAuth) token.
pub const TOKEN_TYPE_OAUTH: &str = "OAUTH";
/// The 4 MB cap on an append request as sent on the wire (after compression).
pub const MAX_APPEND_BYTES: usize = 4 * 1024 * 1024;
/// `channel_status_code` of a healthy channel.
pub const CHANNEL_STATUS_SUCCESS: &str = "SUCCESS";

/// Stable error codes the ingest host answers with.
pub mod codes {
    /// The continuation token is from before the channel was reopened.
    pub const STALE_CONTINUATION_TOKEN_SEQUENCER: &str = "STALE_CONTINUATION_TOKEN_SEQUENCER";
    /// The continuation token's row sequencer does not follow the last append.
    pub const ERR_CHANNEL_HAS_INVALID_ROW_SEQUENCER: &str = "ERR_CHANNEL_HAS_INVALID_ROW_SEQUENCER";
    /// Missing pipe or missing privilege (404).
    pub const ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED: &str =
        "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED";
    /// Unknown channel (404).
    pub const ERR_CHANNEL_DOES_NOT_EXIST_OR_IS_NOT_AUTHORIZED: &str =
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_IS_NOT_AUTHORIZED";
    /// Reopen with `fail_on_uncommitted_rows` while rows are in flight (409).
    pub const ERR_CHANNEL_HAS_UNCOMMITTED_DATA: &str = "ERR_CHANNEL_HAS_UNCOMMITTED_DATA";
    /// A channel that was dropped under the client.
    pub const ERR_CHANNEL_NO_LONGER_EXISTS: &str = "ERR_CHANNEL_NO_LONGER_EXISTS";
    /// Transient server failure, sent as a bare JSON string with 500/503.
    pub const ERR_GENERAL_EXCEPTION_RETRY_REQUEST: &str = "ERR_GENERAL_EXCEPTION_RETRY_REQUEST";
    /// JWT refused (detailed reason only visible to an administrator).
    pub const JWT_TOKEN_INVALID: &str = "390144";
    /// Scoped/OAuth token refused: garbage, empty or badly signed.
    pub const INVALID_OAUTH_TOKEN: &str = "390303";
    /// A valid OAuth token for another user than the one connecting.
    pub const OAUTH_TOKEN_USER_MISMATCH: &str = "390309";
    /// An expired OAuth access token (`OAUTH_ACCESS_TOKEN_EXPIRED`).
    pub const OAUTH_ACCESS_TOKEN_EXPIRED: &str = "390318";
    /// 409 on open: another open of the same channel is in progress.
    pub const ERR_OPEN_CHANNEL_IN_PROGRESS: &str = "ERR_OPEN_CHANNEL_IN_PROGRESS";
    /// Network policy refused the client IP.
    pub const IP_NOT_ALLOWED: &str = "390422";
    /// Throttled.
    pub const TOO_MANY_REQUESTS: &str = "390505";
    /// Request body is not what the endpoint takes.
    pub const INVALID_PAYLOAD: &str = "390142";
}

/// Which API call a request is, by method and path: the unit faults are scoped to and the
/// request log reports.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum ApiCall {
    /// `GET /v2/streaming/hostname`.
    Hostname,
    /// `POST /oauth/token`.
    Token,
    /// `POST` to an identity provider's token endpoint (`oauth_token_request_url`): not a
    /// Snowflake host.
    IdpToken,
    /// `POST .../pipes/{pipe}:pipe-info`.
    PipeInfo,
    /// `PUT .../channels/{channel}`.
    Open,
    /// `POST /v2/streaming/data/.../channels/{channel}/rows`.
    Append,
    /// `POST /v2/streaming/data/.../channels/{channel}/filebuffer`: the official SDK registers
    /// files it uploaded to the pipe's stage (its file mode).
    Filebuffer,
    /// `POST .../pipes/{pipe}:bulk-channel-status`.
    Status,
    /// `DELETE .../channels/{channel}`.
    Drop,
    /// `POST /api/v2/statements` and `GET /api/v2/statements/{handle}`.
    Statements,
    /// `POST /telemetry/send/sessionless`.
    Telemetry,
    /// Anything else.
    Other,
}

impl ApiCall {
    /// Whether a successful answer carries a credential: a token (the scoped token, an identity
    /// provider's access token) or the stage's upload credentials (`:pipe-info`). Such answers are
    /// never logged, even scrubbed: the value is not a registered secret until a check reads it.
    #[must_use]
    pub fn answer_carries_credentials(self) -> bool {
        matches!(self, Self::Token | Self::IdpToken | Self::PipeInfo)
    }

    /// The upper end of the call's typical latency (the network-flow document's latency table);
    /// `None` for calls with no such expectation.
    #[must_use]
    pub fn budget(self) -> Option<std::time::Duration> {
        let ms = match self {
            Self::Hostname | Self::Token => 200,
            Self::Open | Self::Drop => 300,
            Self::Append => 500,
            _ => return None,
        };
        Some(std::time::Duration::from_millis(ms))
    }
}

/// A pipe, named as in a URL (names are case-insensitive on the server).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipeRef {
    /// Database name.
    pub database: String,
    /// Schema name.
    pub schema: String,
    /// Pipe name (default `<TABLE>-STREAMING`).
    pub pipe: String,
}

/// A channel on a pipe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    /// The pipe the channel belongs to.
    pub pipe: PipeRef,
    /// Channel name (case-sensitive).
    pub channel: String,
}

/// Characters encoded in a path segment: everything but unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// The default pipe of a table: `<TABLE>-STREAMING`.
#[must_use]
pub fn default_pipe(table: &str) -> String {
    format!("{}-STREAMING", table.to_ascii_uppercase())
}

impl PipeRef {
    /// A pipe reference.
    #[must_use]
    pub fn new(database: &str, schema: &str, pipe: &str) -> Self {
        Self {
            database: database.to_owned(),
            schema: schema.to_owned(),
            pipe: pipe.to_owned(),
        }
    }

    fn base(&self, data: bool) -> String {
        format!(
            "/v2/streaming/{}databases/{}/schemas/{}/pipes/{}",
            if data { "data/" } else { "" },
            enc(&self.database),
            enc(&self.schema),
            enc(&self.pipe)
        )
    }

    /// `POST` path of the bulk channel status call.
    #[must_use]
    pub fn bulk_status_path(&self) -> String {
        format!("{}:bulk-channel-status", self.base(false))
    }

    /// `POST` path of the pipe-info call the SDK makes.
    #[must_use]
    pub fn pipe_info_path(&self) -> String {
        format!("{}:pipe-info", self.base(false))
    }

    /// A channel on this pipe.
    #[must_use]
    pub fn channel(&self, name: &str) -> ChannelRef {
        ChannelRef {
            pipe: self.clone(),
            channel: name.to_owned(),
        }
    }
}

impl ChannelRef {
    /// `PUT` (open) and `DELETE` (drop) path of the channel.
    #[must_use]
    pub fn channel_path(&self) -> String {
        format!("{}/channels/{}", self.pipe.base(false), enc(&self.channel))
    }

    /// `POST` path of the append call (note the `/data` segment); add the query yourself.
    #[must_use]
    pub fn rows_path(&self) -> String {
        format!(
            "{}/channels/{}/rows",
            self.pipe.base(true),
            enc(&self.channel)
        )
    }
}

/// A request recognised by method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Ingest-host discovery.
    Hostname,
    /// Scoped-token exchange.
    Token,
    /// SQL API submit.
    SubmitStatement,
    /// SQL API status poll.
    StatementStatus(String),
    /// SDK telemetry.
    Telemetry,
    /// Pipe info (SDK).
    PipeInfo(PipeRef),
    /// Open or reopen a channel.
    Open(ChannelRef),
    /// Append rows.
    Append(ChannelRef),
    /// Register files uploaded to the stage (the SDK's file mode).
    Filebuffer(ChannelRef),
    /// Bulk channel status.
    Status(PipeRef),
    /// Drop a channel.
    Drop(ChannelRef),
}

impl Route {
    /// Recognises a request; `None` for anything the API does not have.
    #[must_use]
    pub fn parse(method: &str, path: &str) -> Option<Self> {
        match (method, path) {
            ("GET", HOSTNAME_PATH) => return Some(Self::Hostname),
            ("POST", OAUTH_TOKEN_PATH) => return Some(Self::Token),
            ("POST", STATEMENTS_PATH) => return Some(Self::SubmitStatement),
            ("POST", TELEMETRY_PATH) => return Some(Self::Telemetry),
            _ => {}
        }
        if let Some(handle) = path.strip_prefix("/api/v2/statements/") {
            return (method == "GET" && !handle.contains('/'))
                .then(|| Self::StatementStatus(handle.to_owned()));
        }
        let rest = path.strip_prefix("/v2/streaming/")?;
        let (data, rest) = match rest.strip_prefix("data/") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let dec = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(std::borrow::Cow::into_owned)
        };
        let [databases, db, schemas, schema, pipes, pipe, tail @ ..] = segs.as_slice() else {
            return None;
        };
        if (*databases, *schemas, *pipes) != ("databases", "schemas", "pipes") {
            return None;
        }
        // The `:action` suffix is split off before decoding: a literal `:` in a pipe name
        // arrives as `%3A`.
        let (pipe, action) = match pipe.split_once(':') {
            Some((p, a)) => (p, Some(a)),
            None => (*pipe, None),
        };
        let pipe = PipeRef {
            database: dec(db)?,
            schema: dec(schema)?,
            pipe: dec(pipe)?,
        };
        match (method, data, action, tail) {
            ("POST", false, Some("bulk-channel-status"), []) => Some(Self::Status(pipe)),
            ("POST", false, Some("pipe-info"), []) => Some(Self::PipeInfo(pipe)),
            (_, false, None, ["channels", channel]) => {
                let channel = pipe.channel(&dec(channel)?);
                match method {
                    "PUT" => Some(Self::Open(channel)),
                    "DELETE" => Some(Self::Drop(channel)),
                    _ => None,
                }
            }
            ("POST", true, None, ["channels", channel, "rows"]) => {
                Some(Self::Append(pipe.channel(&dec(channel)?)))
            }
            ("POST", true, None, ["channels", channel, "filebuffer"]) => {
                Some(Self::Filebuffer(pipe.channel(&dec(channel)?)))
            }
            _ => None,
        }
    }

    /// The endpoint this route belongs to.
    #[must_use]
    pub fn endpoint(&self) -> ApiCall {
        match self {
            Self::Hostname => ApiCall::Hostname,
            Self::Token => ApiCall::Token,
            Self::SubmitStatement | Self::StatementStatus(_) => ApiCall::Statements,
            Self::Telemetry => ApiCall::Telemetry,
            Self::PipeInfo(_) => ApiCall::PipeInfo,
            Self::Open(_) => ApiCall::Open,
            Self::Append(_) => ApiCall::Append,
            Self::Filebuffer(_) => ApiCall::Filebuffer,
            Self::Status(_) => ApiCall::Status,
            Self::Drop(_) => ApiCall::Drop,
        }
    }
}

/// The status of one channel, as open and bulk status return it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelStatus {
    /// Database name.
    pub database_name: String,
    /// Schema name.
    pub schema_name: String,
    /// Pipe name.
    pub pipe_name: String,
    /// Channel name.
    pub channel_name: String,
    /// `SUCCESS` when healthy; anything else on a 200 is still a failure.
    pub channel_status_code: String,
    /// The offset token of the last committed batch; `null` for a new channel.
    pub last_committed_offset_token: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_on_ms: i64,
    /// Rows committed into the table.
    pub rows_inserted: u64,
    /// Rows parsed (good and bad).
    pub rows_parsed: u64,
    /// Rows that failed to parse or load (cumulative). The docs' table calls it `rows_errors`.
    #[serde(alias = "rows_errors")]
    pub rows_error_count: u64,
    /// Offset token of the batch holding the last error.
    pub last_error_offset_upper_bound: Option<String>,
    /// Message of the last error.
    pub last_error_message: Option<String>,
    /// Time of the last error, Unix milliseconds. The official SDK's struct names it
    /// `last_error_timestamp_ms`; both are read.
    #[serde(alias = "last_error_timestamp_ms")]
    pub last_error_timestamp: Option<i64>,
    /// Average ingestion latency the server reports.
    pub snowflake_avg_processing_latency_ms: u64,
}

/// Body of the open-channel call (`{}` is valid).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenChannelRequest {
    /// Initial offset token of a new channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_token: Option<String>,
    /// Answer 409 instead of discarding in-flight rows on reopen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_on_uncommitted_rows: Option<bool>,
}

/// Response of the open-channel call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenChannelResponse {
    /// Token for the first append (opaque; stale after a reopen).
    pub next_continuation_token: String,
    /// The channel after opening.
    pub channel_status: ChannelStatus,
}

/// Response of an append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendRowsResponse {
    /// 0 on success; clients treat anything else as a rejection.
    #[serde(default)]
    pub status_code: i64,
    /// Optional message.
    #[serde(default)]
    pub message: Option<String>,
    /// Token for the next append.
    pub next_continuation_token: String,
}

/// Response of the drop-channel call. The docs promise "no meaningful payload", but the official
/// SDK parses exactly this object, so the emulator sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropChannelResponse {
    /// The channel's last committed offset token when it was dropped.
    #[serde(default)]
    pub last_committed_offset_token: Option<String>,
}

/// Body of the bulk channel status call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkChannelStatusRequest {
    /// Channel names (case-sensitive).
    pub channel_names: Vec<String>,
}

/// Response of the bulk channel status call; unknown channels are left out of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkChannelStatusResponse {
    /// Status per channel name.
    pub channel_statuses: BTreeMap<String, ChannelStatus>,
}

/// An error answer, whatever shape it came in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// The stable code (`code`, `error_code`, or the bare string).
    pub code: String,
    /// The message, if the body had one.
    pub message: Option<String>,
}

impl ApiError {
    /// An error with a code and message.
    #[must_use]
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: Some(message.into()),
        }
    }

    /// Reads an error body: `{"code":..}`, `{"error_code":..}` (code may be a number), an OAuth
    /// error (`{"error":..,"error_description":..}`, RFC 6749), or a bare JSON string such as
    /// `"ERR_GENERAL_EXCEPTION_RETRY_REQUEST"`.
    #[must_use]
    pub fn parse(body: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
        if let Some(code) = value.as_str() {
            return Some(Self {
                code: code.to_owned(),
                message: None,
            });
        }
        let code = ["code", "error_code", "error"]
            .iter()
            .find_map(|k| value.get(k))
            .and_then(|c| match c {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })?;
        let message = ["message", "error_description"]
            .iter()
            .find_map(|k| value.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Some(Self { code, message })
    }
}

/// The form body of the scoped-token exchange: the grant type and the normalised ingest host as
/// scope, optionally followed by `session:role:<ROLE>` to act as a role other than the default.
#[must_use]
pub fn token_request_form(ingest_host: &str, role: Option<&str>) -> String {
    let mut scope = crate::snowflake::account::normalize_host(ingest_host);
    if let Some(role) = role {
        scope = format!("{scope} session:role:{}", role.to_ascii_uppercase());
    }
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", JWT_BEARER_GRANT)
        .append_pair("scope", &scope)
        .finish()
}

/// The `exp` claim (Unix seconds; milliseconds are converted) of a scoped token, read without
/// verifying it — clients cannot verify the server's signature and only need to know when to
/// refresh.
#[must_use]
pub fn scoped_token_expiry(token: &str) -> Option<i64> {
    let claims: serde_json::Value = crate::snowflake::jws::Parts::split(token)?.claims()?;
    claims
        .get("exp")?
        .as_i64()
        .map(crate::snowflake::jwt::to_seconds)
}

/// Body of `POST /api/v2/statements` (the fields netcheck sends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRequest {
    /// The SQL text.
    pub statement: String,
    /// Seconds before the server cancels the statement (0 = maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Role to run as (case-sensitive context field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A SQL API answer of any shape: a result set (200, code `090001`), an asynchronous
/// acknowledgement (202, code `333334`) or a failure (422, `sqlState` set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StatementResponse {
    /// Result or status code (`090001`, `333334`, `001003`, ...).
    pub code: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// SQLSTATE (`00000` on success).
    pub sql_state: Option<String>,
    /// Handle to poll or cancel.
    pub statement_handle: Option<String>,
    /// Path of the status endpoint for this statement.
    pub statement_status_url: Option<String>,
    /// Rows as arrays of strings (`null` for SQL NULL), present on 200.
    pub data: Option<Vec<Vec<Option<String>>>>,
}

impl StatementResponse {
    /// The first column of the first row, as most preflight statements return one value.
    #[must_use]
    pub fn first_value(&self) -> Option<&str> {
        self.data.as_ref()?.first()?.first()?.as_deref()
    }
}

/// Reads a body that is either the bare value (what the server sends) or JSON `{"<field>":..}`
/// (what the docs show), as discovery (`hostname`) and the token exchange (`token`) answer.
#[must_use]
pub fn bare_or_json_field(body: &str, field: &str) -> Option<String> {
    let body = body.trim();
    if body.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        return value.get(field)?.as_str().map(str::to_owned);
    }
    (!body.is_empty()).then(|| body.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    fn pipe() -> PipeRef {
        PipeRef::new("DB", "PUBLIC", "EVENTS-STREAMING")
    }

    #[test]
    fn paths_match_the_reference() {
        let ch = pipe().channel("ch 1");
        assert_eq!(
            ch.channel_path(),
            "/v2/streaming/databases/DB/schemas/PUBLIC/pipes/EVENTS-STREAMING/channels/ch%201"
        );
        assert_eq!(
            ch.rows_path(),
            "/v2/streaming/data/databases/DB/schemas/PUBLIC/pipes/EVENTS-STREAMING/channels/ch%201/rows"
        );
        assert_eq!(
            pipe().bulk_status_path(),
            "/v2/streaming/databases/DB/schemas/PUBLIC/pipes/EVENTS-STREAMING:bulk-channel-status"
        );
        assert_eq!(default_pipe("events"), "EVENTS-STREAMING");
    }

    #[test]
    fn built_paths_parse_back() {
        let ch = pipe().channel("a/b:c");
        assert_eq!(
            Route::parse("PUT", &ch.channel_path()),
            Some(Route::Open(ch.clone()))
        );
        assert_eq!(
            Route::parse("DELETE", &ch.channel_path()),
            Some(Route::Drop(ch.clone()))
        );
        assert_eq!(
            Route::parse("POST", &ch.rows_path()),
            Some(Route::Append(ch))
        );
        assert_eq!(
            Route::parse("POST", &pipe().bulk_status_path()),
            Some(Route::Status(pipe()))
        );
        assert_eq!(
            Route::parse("POST", &pipe().pipe_info_path()),
            Some(Route::PipeInfo(pipe()))
        );
    }

    #[test_case("GET", "/v2/streaming/hostname" => Some(ApiCall::Hostname))]
    #[test_case("POST", "/oauth/token" => Some(ApiCall::Token))]
    #[test_case("GET", "/api/v2/statements/abc" => Some(ApiCall::Statements))]
    #[test_case("POST", "/telemetry/send/sessionless" => Some(ApiCall::Telemetry))]
    #[test_case("POST", "/v2/streaming/databases/D/schemas/S/pipes/P/channels/C" => None; "post on channel")]
    #[test_case("PUT", "/v2/streaming/data/databases/D/schemas/S/pipes/P/channels/C" => None; "open with data")]
    #[test_case("POST", "/v2/streaming/data/databases/D/schemas/S/pipes/P/channels/C/filebuffer" => Some(ApiCall::Filebuffer))]
    #[test_case("POST", "/v2/streaming/databases/D/schemas/S/pipes/P/channels/C/filebuffer" => None; "filebuffer without data")]
    #[test_case("GET", "/nope" => None)]
    fn routes(method: &str, path: &str) -> Option<ApiCall> {
        Route::parse(method, path).map(|r| r.endpoint())
    }

    #[test_case(r#"{"code":"STALE_CONTINUATION_TOKEN_SEQUENCER","message":"m"}"# => Some(("STALE_CONTINUATION_TOKEN_SEQUENCER".into(), Some("m".into()))))]
    #[test_case(r#"{"error_code":"ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"}"# => Some(("ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED".into(), None)))]
    #[test_case(r#""ERR_GENERAL_EXCEPTION_RETRY_REQUEST""# => Some(("ERR_GENERAL_EXCEPTION_RETRY_REQUEST".into(), None)))]
    #[test_case(r#"{"code":390144}"# => Some(("390144".into(), None)))]
    #[test_case(r#"{"error":"invalid_scope","error_description":"d"}"# => Some(("invalid_scope".into(), Some("d".into()))); "oauth")]
    #[test_case("not json" => None)]
    fn error_bodies(body: &str) -> Option<(String, Option<String>)> {
        ApiError::parse(body).map(|e| (e.code, e.message))
    }

    #[test]
    fn status_accepts_the_docs_field_name() {
        let s: ChannelStatus =
            serde_json::from_str(r#"{"rows_errors":3,"channel_status_code":"SUCCESS"}"#).unwrap();
        assert_eq!(s.rows_error_count, 3);
    }

    #[test]
    fn token_form_carries_grant_scope_and_role() {
        let form = token_request_form(
            "My_Acct.us-west-2.ingest.snowflakecomputing.com",
            Some("loader"),
        );
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            pairs[0],
            ("grant_type".to_owned(), JWT_BEARER_GRANT.to_owned())
        );
        assert_eq!(
            pairs[1].1,
            "my-acct.us-west-2.ingest.snowflakecomputing.com session:role:LOADER"
        );
    }

    #[test]
    fn scoped_token_expiry_reads_exp() {
        let token = crate::snowflake::jws::encode(
            &crate::snowflake::jws::Signer::Hs256(b"k"),
            &serde_json::json!({"exp": 1_900_000_000_i64}),
        )
        .unwrap();
        assert_eq!(scoped_token_expiry(&token), Some(1_900_000_000));
        let millis = crate::snowflake::jws::encode(
            &crate::snowflake::jws::Signer::Hs256(b"k"),
            &serde_json::json!({"exp": 1_900_000_000_000_i64}),
        )
        .unwrap();
        assert_eq!(scoped_token_expiry(&millis), Some(1_900_000_000));
        assert_eq!(scoped_token_expiry("opaque"), None);
    }

    #[test]
    fn statement_responses_of_every_shape_parse() {
        let ok: StatementResponse = serde_json::from_str(
            r#"{"code":"090001","sqlState":"00000","statementHandle":"h","data":[["1.2.3.4"]]}"#,
        )
        .unwrap();
        assert_eq!(ok.first_value(), Some("1.2.3.4"));
        let pending: StatementResponse = serde_json::from_str(
            r#"{"code":"333334","statementStatusUrl":"/api/v2/statements/h"}"#,
        )
        .unwrap();
        assert_eq!(
            pending.statement_status_url.as_deref(),
            Some("/api/v2/statements/h")
        );
        let failed: StatementResponse = serde_json::from_str(
            r#"{"code":"001003","sqlState":"42000","message":"SQL compilation error"}"#,
        )
        .unwrap();
        assert_eq!(failed.first_value(), None);
    }

    #[test_case("host.example" => Some("host.example".to_owned()))]
    #[test_case(r#"{"hostname":"h.example"}"# => Some("h.example".to_owned()))]
    #[test_case("" => None)]
    fn bare_or_json(body: &str) -> Option<String> {
        bare_or_json_field(body, "hostname")
    }
}
