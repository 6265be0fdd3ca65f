//! Request handlers: authentication (key-pair JWT, the identity provider's OAuth token, or the
//! scoped token), then discovery, the token exchange, the channel calls, pipe info, telemetry,
//! the SQL API, and the identity provider's token endpoint (`idp`).
//!
//! Routing is by [`Route::parse`] (shared with netcheck's client side) rather than axum's path
//! syntax, because Snowflake's `pipes/{pipe}:bulk-channel-status` puts an action inside a segment.

// Handlers return `Result<_, Response>` so an auth or lookup failure is the answer itself; the
// size of `Response` does not matter on this path.
#![allow(clippy::result_large_err)]

mod filebuffer;
pub(crate) mod idp;
mod statements;

use std::io::Read as _;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::fault_layer::ip_not_allowed;
use super::faults::{Fault, Vhost};
use super::request::{RequestCtx, json_error};
use super::state::{
    IngestError, ParsedRows, PipeKey, STAGE_BUCKET, State as EmulatorState, lock, parse_ndjson,
    unix_millis,
};
use super::{JwtFailure, Shared};
use crate::snowflake::account::normalize_host;
use crate::snowflake::jws;
use crate::snowflake::jwt::{self, VerifiedJwt};
use crate::snowflake::rest::{
    self as rest, AppendRowsResponse, BulkChannelStatusRequest, BulkChannelStatusResponse,
    ChannelRef, DropChannelResponse, MAX_APPEND_BYTES, OpenChannelRequest, OpenChannelResponse,
    PipeRef, Route, codes,
};

/// Decompressed append bodies larger than this are refused (413), to keep memory bounded.
const MAX_DECOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;
/// Request bodies of calls other than append.
const MAX_OTHER_BODY_BYTES: usize = 1024 * 1024;
/// Lifetime of a scoped token.
const SCOPED_TOKEN_SECS: i64 = 3600;

fn ingest_error((status, error): IngestError) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    // The live service reports a missing pipe as `error_code`; everything else uses `code`.
    if error.code == codes::ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED {
        let body = serde_json::json!({"error_code": error.code, "message": error.message});
        return (status, Json(body)).into_response();
    }
    (status, Json(error)).into_response()
}

fn bad_payload() -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        codes::INVALID_PAYLOAD,
        "Incoming request does not contain a valid payload.",
    )
}

/// 413 in Snowflake's JSON error shape: `what` ran past `limit` bytes. Snowflake documents the
/// 4 MB cap but not the answer; 413 is the HTTP meaning.
fn too_large(what: &str, limit: u64) -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ERR_REQUEST_TOO_LARGE",
        &format!("{what} exceeds the {} KiB limit.", limit / 1024),
    )
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// The scoped token: a JWT signed by the emulator (HS256), valid for one ingest host.
#[derive(Debug, Serialize, Deserialize)]
struct ScopedClaims {
    iss: String,
    sub: String,
    scope: String,
    role: String,
    iat: i64,
    exp: i64,
}

/// What S3 answers an anonymous request for a private bucket's object (its documented REST error
/// response: 403, `x-amz-request-id`, an XML `<Error>` with code `AccessDenied`): the emulator's
/// stage, when no S3-compatible server is configured, refuses everything this way and stores
/// nothing.
fn stage_refusal(shared: &Shared) -> Response {
    let id = format!("{:016X}", rand::random::<u64>());
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
         <Message>Access Denied</Message><RequestId>{id}</RequestId>\
         <HostId>{}</HostId></Error>",
        shared.stage_host
    );
    (
        StatusCode::FORBIDDEN,
        [
            (header::CONTENT_TYPE, "application/xml".to_owned()),
            (header::HeaderName::from_static("x-amz-request-id"), id),
        ],
        body,
    )
        .into_response()
}

/// The stage's file key `:pipe-info` hands out when a stage server is configured (`--stage`):
/// 32 bytes, all zero. SDK 1.9.1 encrypts its stage files with it as given (AES-256-CTR), so
/// anyone holding them can read them, as a placeholder should allow.
const PIPE_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// The key without a stage server: 16 bytes, which the SDK refuses at its first file ("Encryption
/// key too short: expected 32 bytes"). The default `storage_endpoint` names S3's real host name,
/// so an SDK in file mode outside a loopback-only namespace would otherwise upload toward it.
const UNUSABLE_PIPE_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAA==";

/// The `:pipe-info` answer. The shape is what the official SDK (1.9.1) deserializes — field names
/// and types read from its error messages and serde metadata, since no public document describes
/// this call; `storage_endpoint` is the Openflow client's field (uploads go to
/// `{bucket}.{storage_endpoint}`), which netcheck's `stage.info` reads, and the SDK's too (it
/// uploads to `https://{storage_endpoint}`). The SDK needs a stage location with credentials
/// before it will open a channel; the emulator hands out an S3 location with placeholder
/// credentials that are obviously not keys. Appended to slowly, the SDK streams rows over the REST
/// `rows` call and never touches the stage; appended to faster, it uploads files to the stage and
/// registers them with `…/filebuffer` (`routes::filebuffer`, `tests/oracle/README.md`).
fn pipe_info_body(now_ms: i64, stage_endpoint: &str, pipe_key: &str) -> serde_json::Value {
    let location = serde_json::json!({
        "location_type": "S3",
        "location": format!("{STAGE_BUCKET}/streaming/"),
        "bucket_name": STAGE_BUCKET,
        "path_prefix": "streaming/",
        "region": "us-west-2",
        "storage_account": null,
        "endpoint": null,
        // The Openflow client's name for it: uploads go to `{bucket}.{storage_endpoint}`.
        "storage_endpoint": stage_endpoint,
        "use_s3_regional_url": false,
        "is_client_side_encrypted": true,
        "expiry_time_ms": now_ms + 3_600_000,
        "creds": {
            "AWS_KEY_ID": "EMULATOR-NOT-A-REAL-KEY",
            "AWS_SECRET_KEY": "EMULATOR-NOT-A-REAL-SECRET",
            "AWS_TOKEN": "EMULATOR-NOT-A-REAL-TOKEN",
        },
        "parameters": {
            "max_client_lag_seconds": 1,
            "rowset_flush_threshold_kb": 4096,
            "max_buffered_kb_for_rowset_mode": 32768,
            "rowset_threshold_lookback_seconds": 60,
            "rowset_threshold_ewma_weight": 50,
            "target_file_size_compressed_mb": 16,
            "cpu_throttle_high_watermark_percent": 95,
            "cpu_throttle_low_watermark_percent": 80,
            "mem_throttle_high_watermark_percent": 95,
            "mem_throttle_low_watermark_percent": 80,
        },
    });
    serde_json::json!({
        "rowset_stage_location": location,
        "durable_stage_location": location,
        "encryption_info": {"pipe_key": pipe_key, "pipe_key_id": 1, "diversifier": "emulator"},
        "parameter_overrides": {},
    })
}

/// Who is calling, after authentication.
struct Principal {
    role: String,
}

/// One request being handled.
pub(crate) struct Call {
    pub(crate) shared: Shared,
    pub(crate) ctx: RequestCtx,
    pub(crate) headers: HeaderMap,
    pub(crate) query: Option<String>,
    pub(crate) body: Bytes,
}

/// The first value of `name` in a form.
pub(crate) fn form_field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether a host serves a route (the SDK reaching the emulator by IP gets everything).
fn serves(host: Vhost, route: &Route) -> bool {
    let account = matches!(host, Vhost::Account | Vhost::Address);
    let ingest = matches!(host, Vhost::Ingest | Vhost::Address);
    match route {
        Route::Hostname
        | Route::Token
        | Route::SubmitStatement
        | Route::StatementStatus(_)
        | Route::Telemetry => account,
        Route::Open(_) | Route::Append(_) | Route::Filebuffer(_) | Route::Drop(_) => ingest,
        Route::Status(_) | Route::PipeInfo(_) => account || ingest,
    }
}

/// The single handler behind the router: routes by [`Route`], reads the body with the endpoint's
/// limit, and calls the endpoint's function.
pub(crate) async fn dispatch(State(shared): State<Shared>, req: Request) -> Response {
    let Some(ctx) = req.extensions().get::<RequestCtx>().cloned() else {
        return not_found();
    };
    if ctx.vhost == Vhost::Stage {
        return stage_refusal(&shared);
    }
    // The identity provider has no Snowflake route: its one endpoint is dispatched below.
    let route = ctx.route.clone().filter(|r| serves(ctx.vhost, r));
    if route.is_none() && ctx.vhost != Vhost::Idp {
        return not_found();
    }
    let (parts, body) = req.into_parts();
    let limit = if matches!(route, Some(Route::Append(_))) {
        MAX_APPEND_BYTES
    } else {
        MAX_OTHER_BODY_BYTES
    };
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return too_large("Request payload", limit as u64);
    };
    let call = Call {
        shared,
        ctx,
        headers: parts.headers,
        query: parts.uri.query().map(str::to_owned),
        body,
    };
    let Some(route) = route else {
        return idp::token(&call);
    };
    match route {
        Route::Hostname => call.hostname(),
        Route::Token => call.token(),
        Route::PipeInfo(pipe) => call.pipe_info(&pipe),
        Route::Open(channel) => call.open(&channel),
        Route::Append(channel) => call.append(&channel),
        Route::Filebuffer(channel) => filebuffer::register(&call, &channel),
        Route::Status(pipe) => call.status(&pipe),
        Route::Drop(channel) => call.drop_channel(&channel),
        Route::Telemetry => call.telemetry(),
        Route::SubmitStatement => statements::submit(&call),
        Route::StatementStatus(handle) => statements::status(&call, &handle),
    }
}

impl Call {
    pub(crate) fn bearer_token(&self) -> Option<&str> {
        self.headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::trim)
    }

    fn user(&self, name: &str) -> Option<&super::state::User> {
        self.shared.users.get(name)
    }

    /// Verifies a key-pair JWT; a failure is recorded with its detailed reason and answered
    /// with the generic 390144.
    pub(crate) fn keypair(&self, token: Option<&str>) -> Result<VerifiedJwt, Response> {
        let incident = EmulatorState::incident_id();
        let invalid = || {
            json_error(
                StatusCode::UNAUTHORIZED,
                codes::JWT_TOKEN_INVALID,
                &format!("JWT token is invalid. [{incident}]"),
            )
        };
        let token = token.ok_or_else(|| self.check_policy(None).err().unwrap_or_else(invalid))?;
        let verified = jwt::verify(token, &self.shared.account, self.shared.now_unix(), |u| {
            self.user(u).map(|u| u.keys.clone())
        })
        .map_err(|reason| {
            lock(&self.shared.jwt_failures).push(JwtFailure {
                reason,
                code: reason.code(),
                incident: incident.clone(),
                endpoint: self.ctx.endpoint,
                client_ip: self.ctx.client_ip,
            });
            // A blocked address hears about the policy, not about its token.
            self.check_policy(None).err().unwrap_or_else(invalid)
        })?;
        self.check_policy(Some(&verified.user))?;
        Ok(verified)
    }

    /// Verifies the caller of an account-host call: a key-pair JWT, or an access token of the
    /// emulator's identity provider, as Snowflake takes either — told apart by the token-type
    /// header, else by the token's algorithm (RS256 or HS256).
    pub(crate) fn account_caller(&self, token: Option<&str>) -> Result<VerifiedJwt, Response> {
        let oauth = super::request::token_type(&self.headers).as_deref() == Some("OAUTH");
        match token {
            Some(token) if oauth => idp::verify(self, token),
            _ => self.keypair(token),
        }
    }

    /// The network policy in force: the user's, which overrides the account's, or the account's
    /// when the caller is unknown (failed authentication) or has none.
    pub(crate) fn check_policy(&self, user: Option<&str>) -> Result<(), Response> {
        let policy = user
            .and_then(|u| self.user(u))
            .and_then(|u| u.policy.as_ref())
            .unwrap_or(self.shared.account_policy());
        if policy.allows(self.ctx.client_ip) {
            Ok(())
        } else {
            Err(ip_not_allowed(&self.ctx))
        }
    }

    fn scoped(&self, token: &str) -> Result<Principal, Response> {
        let invalid = || {
            json_error(
                StatusCode::UNAUTHORIZED,
                codes::INVALID_OAUTH_TOKEN,
                &format!(
                    "Invalid OAuth access token. [{}]",
                    EmulatorState::incident_id()
                ),
            )
        };
        let refuse = || self.check_policy(None).err().unwrap_or_else(invalid);
        // Expiry is checked below against the emulator's (possibly skewed) clock.
        let claims: ScopedClaims = jws::Parts::split(token)
            .filter(|p| p.verify_hs256(&self.shared.token_secret))
            .and_then(|p| p.claims())
            .ok_or_else(refuse)?;
        if claims.exp <= self.shared.now_unix() || claims.scope != self.ctx.host {
            return Err(refuse());
        }
        let user = claims
            .sub
            .split_once('.')
            .map(|(_, u)| u.to_owned())
            .ok_or_else(refuse)?;
        self.check_policy(Some(&user))?;
        Ok(Principal { role: claims.role })
    }

    /// The caller of a pipe or channel call: the scoped token on the ingest host; on the account
    /// host (status, pipe info) also a key-pair JWT, as the SDK sends.
    fn principal(&self, allow_keypair: bool) -> Result<Principal, Response> {
        let token = self.bearer_token();
        let is_keypair = token
            .and_then(jws::Parts::split)
            .is_some_and(|p| p.alg() == Some("RS256"));
        if is_keypair && allow_keypair {
            let v = self.keypair(token)?;
            let role = self
                .role_of(&v.user, v.role.as_deref())
                .ok_or_else(bad_payload)?;
            return Ok(Principal { role });
        }
        self.scoped(token.unwrap_or_default())
    }

    /// The role a request acts as: the requested one if granted, else the default role.
    pub(crate) fn role_of(&self, user: &str, requested: Option<&str>) -> Option<String> {
        let user = self.user(user)?;
        match requested {
            None => Some(user.default_role.clone()),
            Some(r) => {
                let r = r.to_ascii_uppercase();
                user.roles.contains(&r).then_some(r)
            }
        }
    }

    fn has_fault(&self, fault: &Fault) -> bool {
        self.shared
            .faults()
            .has(self.ctx.endpoint, self.ctx.vhost, fault)
    }

    /// The pipe a channel call (open, append, file registration, drop) acts on: the caller by
    /// its scoped token, authorized on the channel's pipe.
    fn channel_caller(&self, channel: &ChannelRef) -> Result<PipeKey, Response> {
        self.principal(false)
            .and_then(|p| self.authorize(&channel.pipe, &p))
    }

    fn authorize(&self, pipe: &PipeRef, principal: &Principal) -> Result<PipeKey, Response> {
        let faults = (
            self.has_fault(&Fault::MissingPipe),
            self.has_fault(&Fault::MissingPrivilege),
        );
        self.shared
            .authorize_pipe(pipe, &principal.role, faults)
            .map_err(ingest_error)
    }

    fn hostname(&self) -> Response {
        if let Err(r) = self.account_caller(self.bearer_token()) {
            return r;
        }
        if let Some(answer) = self
            .shared
            .faults()
            .hostname(self.ctx.endpoint, self.ctx.vhost)
        {
            return text(answer);
        }
        // A client that came by address is handed that address, so nothing needs resolving.
        let host = if self.ctx.vhost == Vhost::Address {
            self.ctx.host.clone()
        } else {
            self.shared.ingest_host.clone()
        };
        text(host)
    }

    /// The form-encoded body as name/value pairs.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    fn token(&self) -> Response {
        let form = self.form();
        let field = |name: &str| form_field(&form, name);
        if field("grant_type") != Some(rest::JWT_BEARER_GRANT) {
            return bad_payload();
        }
        let verified = match self.account_caller(self.bearer_token().or(field("assertion"))) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let invalid_scope = |why: &str| {
            (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "invalid_scope", "error_description": why})),
            )
                .into_response()
        };
        let mut words = field("scope").unwrap_or_default().split_whitespace();
        let Some(host) = words.next().map(normalize_host) else {
            return invalid_scope("scope must name the ingest host");
        };
        let host_ok = host == self.shared.ingest_host
            || (self.ctx.vhost == Vhost::Address && host == self.ctx.host);
        if !host_ok {
            return invalid_scope("scope does not name this account's ingest host");
        }
        let requested = words
            .find_map(|w| w.strip_prefix("session:role:"))
            .or(verified.role.as_deref());
        let Some(role) = self.role_of(&verified.user, requested) else {
            return invalid_scope("role is not granted to the user");
        };
        let now = self.shared.now_unix();
        let claims = ScopedClaims {
            iss: "netcheck-emulator".to_owned(),
            sub: format!("{}.{}", verified.account, verified.user),
            scope: host,
            role,
            iat: now,
            exp: now + SCOPED_TOKEN_SECS,
        };
        match jws::encode(&jws::Signer::Hs256(&self.shared.token_secret), &claims) {
            Ok(token) => text(token),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }

    fn open(&self, channel: &ChannelRef) -> Response {
        let key = match self.channel_caller(channel) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let request: OpenChannelRequest = if self.body.iter().all(u8::is_ascii_whitespace) {
            OpenChannelRequest::default()
        } else {
            match serde_json::from_slice(&self.body) {
                Ok(r) => r,
                Err(_) => return bad_payload(),
            }
        };
        let status_code = self
            .shared
            .faults()
            .channel_status(self.ctx.endpoint, self.ctx.vhost);
        match self
            .shared
            .open_channel(key, channel, &request, status_code)
        {
            Ok((next_continuation_token, channel_status)) => Json(OpenChannelResponse {
                next_continuation_token,
                channel_status,
            })
            .into_response(),
            Err(e) => ingest_error(e),
        }
    }

    fn append(&self, channel: &ChannelRef) -> Response {
        self.take_batch(channel, |call| {
            // Old docs and the official Java client send `offsetToken`; newer docs and the SDK
            // send `startOffsetToken`/`endOffsetToken`. The batch is committed up to its last row.
            let offset = call
                .query_param("endOffsetToken")
                .or_else(|| call.query_param("offsetToken"));
            let body = call.decoded_body()?;
            let mut parsed = parse_ndjson(&body);
            if call.has_fault(&Fault::RowErrors) {
                parsed.reject_all("NULL result in a non-nullable column");
            }
            Ok((parsed, offset))
        })
    }

    /// A non-empty query parameter.
    fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.into_owned())
    }

    /// What an append and a file registration share: authorization, the continuation token,
    /// the faults that act on a batch, and the batch queued for commit up to its offset token.
    /// `read` turns the request into the batch's rows and offset token.
    fn take_batch(
        &self,
        channel: &ChannelRef,
        read: impl FnOnce(&Self) -> Result<(ParsedRows, Option<String>), Response>,
    ) -> Response {
        let key = match self.channel_caller(channel) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let Some(token) = self.query_param("continuationToken") else {
            return bad_payload();
        };
        let (parsed, offset) = match read(self) {
            Ok(batch) => batch,
            Err(r) => return r,
        };
        if self.has_fault(&Fault::Reopened) {
            // The competing client's open is a real reopen: it bumps the channel's sequencer.
            let _ = self.shared.open_channel(
                key.clone(),
                channel,
                &OpenChannelRequest::default(),
                None,
            );
        }
        let copies = if self.has_fault(&Fault::NoCommit) {
            0
        } else if self.has_fault(&Fault::DoubleCommit) {
            2
        } else {
            1
        };
        let faults = self.shared.faults();
        let cap = faults.rows_per_sec_cap(self.ctx.endpoint, self.ctx.vhost);
        match self
            .shared
            .append(key, channel, &token, offset, parsed, copies, cap)
        {
            Ok(next_continuation_token) => Json(AppendRowsResponse {
                status_code: 0,
                message: None,
                next_continuation_token,
            })
            .into_response(),
            Err(e) => ingest_error(e),
        }
    }

    /// The append body after `Content-Encoding` (gzip or zstd); one that decompresses past
    /// [`MAX_DECOMPRESSED_BYTES`] (a compression bomb) is refused whole rather than cut, since a
    /// cut body would be stored as if it were all the client sent.
    fn decoded_body(&self) -> Result<Bytes, Response> {
        let encoding = self
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        let mut out = Vec::new();
        let result = match encoding.as_deref() {
            None | Some("identity") => return Ok(self.body.clone()),
            Some("gzip") => flate2::read::GzDecoder::new(&self.body[..])
                .take(MAX_DECOMPRESSED_BYTES + 1)
                .read_to_end(&mut out),
            Some("zstd") => {
                // Sized once from the frame's header when it says, rather than grown by copying.
                if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(&self.body) {
                    out.reserve(usize::try_from(size.min(MAX_DECOMPRESSED_BYTES)).unwrap_or(0));
                }
                zstd::stream::read::Decoder::new(&self.body[..])
                    .and_then(|d| d.take(MAX_DECOMPRESSED_BYTES + 1).read_to_end(&mut out))
            }
            Some(_) => {
                return Err(json_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    codes::INVALID_PAYLOAD,
                    "Unsupported Content-Encoding; use gzip or zstd.",
                ));
            }
        };
        result.map_err(|_| bad_payload())?;
        if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
            return Err(too_large("Decompressed payload", MAX_DECOMPRESSED_BYTES));
        }
        Ok(Bytes::from(out))
    }

    fn status(&self, pipe: &PipeRef) -> Response {
        let result = self.principal(true).and_then(|p| self.authorize(pipe, &p));
        let key = match result {
            Ok(k) => k,
            Err(r) => return r,
        };
        let Ok(request) = serde_json::from_slice::<BulkChannelStatusRequest>(&self.body) else {
            return bad_payload();
        };
        let code = self
            .shared
            .faults()
            .channel_status(self.ctx.endpoint, self.ctx.vhost);
        let statuses = self
            .shared
            .channel_statuses(&key, &request.channel_names, code.as_deref());
        Json(BulkChannelStatusResponse {
            channel_statuses: statuses.into_iter().collect(),
        })
        .into_response()
    }

    fn drop_channel(&self, channel: &ChannelRef) -> Response {
        let key = match self.channel_caller(channel) {
            Ok(k) => k,
            Err(r) => return r,
        };
        match self.shared.drop_channel(key, channel) {
            Ok(last_committed_offset_token) => Json(DropChannelResponse {
                last_committed_offset_token,
            })
            .into_response(),
            Err(e) => ingest_error(e),
        }
    }

    fn pipe_info(&self, pipe: &PipeRef) -> Response {
        let result = self.principal(true).and_then(|p| self.authorize(pipe, &p));
        if let Err(r) = result {
            return r;
        }
        let key = if self.shared.serves_stage {
            UNUSABLE_PIPE_KEY
        } else {
            PIPE_KEY
        };
        Json(pipe_info_body(
            unix_millis(self.shared.now()),
            &self.shared.stage_endpoint,
            key,
        ))
        .into_response()
    }

    /// The SDK's background telemetry; it parses Snowflake's usual envelope and needs `data` to
    /// be a string.
    fn telemetry(&self) -> Response {
        match self.keypair(self.bearer_token()) {
            Ok(_) => Json(serde_json::json!({"data": "Log Received", "code": null, "message": null, "success": true})).into_response(),
            Err(r) => r,
        }
    }

    /// The role a statement runs as: the request's `role`, else the JWT's, else the default.
    pub(crate) fn statement_role(
        &self,
        verified: &VerifiedJwt,
        requested: Option<&str>,
    ) -> Option<String> {
        self.role_of(&verified.user, requested.or(verified.role.as_deref()))
    }
}
