//! What the emulator knows about one request before any handler runs, and the error body every
//! layer answers with: a leaf, so the fault layer, the handlers and the server share it without
//! importing one another.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

use super::faults::Vhost;
use crate::snowflake::rest::{self as rest, ApiCall, Route, TOKEN_TYPE_HEADER};

/// What the connection layer knows about a request, for the fault layer and the handlers.
#[derive(Clone)]
pub(crate) struct RequestCtx {
    /// Host the request is for (authority or `Host`, else SNI), lower case, no port.
    pub(crate) host: String,
    pub(crate) vhost: Vhost,
    pub(crate) endpoint: ApiCall,
    pub(crate) route: Option<Route>,
    pub(crate) client_ip: IpAddr,
    /// Notified to reset the TCP connection (the `reset` fault).
    pub(crate) reset: Arc<Notify>,
    /// Notified to drop the connection without an answer (the `hang-up` fault).
    pub(crate) hang_up: Arc<Notify>,
}

/// A JSON error body `{"code":..,"message":..}`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(rest::ApiError::new(code, message))).into_response()
}

/// The token type header, or the kind of bearer token by its algorithm.
pub(crate) fn token_type(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(TOKEN_TYPE_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    match crate::snowflake::jws::Parts::split(token)?.alg()? {
        "RS256" => Some("KEYPAIR_JWT".to_owned()),
        "HS256" => Some("OAUTH".to_owned()),
        _ => None,
    }
}
