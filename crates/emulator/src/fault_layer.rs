//! The fault layer: applies the HTTP-level faults in force (latency, refusals, throttling,
//! server errors, resets, hang-ups) before a request reaches its handler, garbles a handled
//! answer's body (`garbled-answer`), and stamps the (possibly skewed) `Date` header.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::Shared;
use super::faults::Fault;
use super::request::{RequestCtx, json_error, token_type};
use crate::snowflake::rest::codes;

/// The fault layer: latency, then the first of invalid, expired or other user's token, 403, 409,
/// network-policy block,
/// throttle, server error and reset, for the request's endpoint and host; plus the (possibly skewed) `Date` header.
pub(crate) async fn layer(State(shared): State<Shared>, req: Request, next: Next) -> Response {
    let Some(ctx) = req.extensions().get::<RequestCtx>().cloned() else {
        return next.run(req).await;
    };
    let faults = shared.faults();
    let endpoint = Some(ctx.endpoint);
    let delay: Duration = faults
        .matching(endpoint, ctx.vhost)
        .filter_map(|e| match e.fault {
            Fault::Latency(d) if e.take() => Some(d),
            _ => None,
        })
        .sum();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut reset = false;
    let mut response = None;
    let oauth = token_type(req.headers()).as_deref() == Some("OAUTH");
    for entry in faults.matching(endpoint, ctx.vhost) {
        match &entry.fault {
            f @ (Fault::InvalidToken | Fault::TokenExpired | Fault::TokenWrongUser)
                if oauth && entry.take() =>
            {
                response = Some(oauth_refusal(f));
            }
            Fault::Forbidden if entry.take() => {
                response = Some(
                    (
                        StatusCode::FORBIDDEN,
                        [(header::CONTENT_TYPE, "text/plain")],
                        "403 Forbidden: request blocked",
                    )
                        .into_response(),
                );
            }
            Fault::Conflict(code) if entry.take() => {
                response = Some(json_error(
                    StatusCode::CONFLICT,
                    code,
                    "The channel is busy; retry.",
                ));
            }
            Fault::NetworkPolicy(nets)
                if (nets.is_empty()
                    || nets
                        .iter()
                        .any(|n| n.contains(&super::canonical_ip(ctx.client_ip))))
                    && entry.take() =>
            {
                response = Some(ip_not_allowed(&ctx));
            }
            Fault::Throttle { retry_after } if entry.take() => {
                let mut r = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    codes::TOO_MANY_REQUESTS,
                    "Too many requests.",
                );
                if let Some(secs) = retry_after {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
                }
                response = Some(r);
            }
            Fault::ServerError(code) if entry.take() => {
                let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let body = format!("\"{}\"", codes::ERR_GENERAL_EXCEPTION_RETRY_REQUEST);
                response = Some(
                    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
                );
            }
            Fault::Reset if entry.take() => reset = true,
            Fault::HangUp if entry.take() => {
                ctx.hang_up.notify_one();
                // The connection task drops the connection, and this request with it.
                return std::future::pending().await;
            }
            _ => continue,
        }
        break;
    }
    let mut response = match response {
        Some(r) => r,
        None => next.run(req).await,
    };
    if response.status().is_success()
        && faults
            .matching(endpoint, ctx.vhost)
            .any(|e| e.fault == Fault::GarbledAnswer && e.take())
    {
        response = garbled(response);
    }
    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(shared.now())) {
        response.headers_mut().insert(header::DATE, date);
    }
    if reset {
        response = reset_midway(response, &ctx).await;
    }
    response
}

/// The answer with its body replaced by text that is not JSON (status and other headers kept).
fn garbled(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    let body = "<html><body>upstream answer rewritten</body></html>";
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Response::from_parts(parts, Body::from(body))
}

/// Snowflake's 401 for an OAuth token: 390318 expired, 390309 another user's, else 390303.
fn oauth_refusal(fault: &Fault) -> Response {
    let (code, message) = match fault {
        Fault::TokenExpired => (
            codes::OAUTH_ACCESS_TOKEN_EXPIRED,
            "OAUTH_ACCESS_TOKEN_EXPIRED",
        ),
        Fault::TokenWrongUser => (
            codes::OAUTH_TOKEN_USER_MISMATCH,
            "The user you were trying to authenticate as differs from the user tied to the token.",
        ),
        _ => (
            codes::INVALID_OAUTH_TOKEN,
            "Invalid OAuth access token. [emulator]",
        ),
    };
    json_error(StatusCode::UNAUTHORIZED, code, message)
}

/// 401 390422, the network-policy answer.
pub(crate) fn ip_not_allowed(ctx: &RequestCtx) -> Response {
    json_error(
        StatusCode::UNAUTHORIZED,
        codes::IP_NOT_ALLOWED,
        &format!(
            "Incoming request with IP/Token {} is not allowed to access Snowflake.",
            super::canonical_ip(ctx.client_ip)
        ),
    )
}

/// Keeps status and headers (with the full `Content-Length`), sends half the body, then asks the
/// connection task to reset the TCP connection.
async fn reset_midway(response: Response, ctx: &RequestCtx) -> Response {
    let (mut parts, body) = response.into_parts();
    let full = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    // Ensure there is something to cut in half, so the client always sees a short body.
    let full = if full.len() < 2 {
        Bytes::from_static(b"{\"partial\":true}")
    } else {
        full
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
    let half = full.slice(..full.len() / 2);
    let trigger = ctx.reset.clone();
    let stream = futures::stream::unfold(Some(half), move |chunk| {
        let trigger = trigger.clone();
        async move {
            if let Some(chunk) = chunk {
                return Some((Ok::<_, std::io::Error>(chunk), None));
            }
            // Give the first chunk time to reach the socket, then reset.
            tokio::time::sleep(Duration::from_millis(50)).await;
            trigger.notify_one();
            futures::future::pending::<()>().await;
            None
        }
    });
    parts.extensions.insert(ResetMarker);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Marks a response whose connection will be reset, for the request log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResetMarker;
