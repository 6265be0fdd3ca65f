//! The identity provider: an OAuth 2.0 token endpoint on a host of its own, for the
//! client-credentials grant (RFC 6749 §4.4) with the client authenticated by HTTP Basic (or, as
//! §2.3.1 allows, in the form), refusing with §5.2 errors. Its access tokens are JWTs the account
//! host accepts as Snowflake accepts an External OAuth token (`OAUTH`): on discovery, the
//! scoped-token exchange and the SQL API; they map to the client's user, and a
//! `session:role:ROLE` scope to that role.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Call, form_field, text};
use crate::faults::{Fault, Vhost};
use crate::request::json_error;
use crate::snowflake::account::jwt_account;
use crate::snowflake::jws;
use crate::snowflake::jwt::VerifiedJwt;
use crate::snowflake::oauth::{self as oauth, CLIENT_CREDENTIALS_GRANT, GrantError, TokenResponse};
use crate::snowflake::rest::{ApiCall, codes};

/// The `iss` of the identity provider's tokens (the scoped tokens have another).
const ISSUER: &str = "netcheck-emulator-idp";
/// Lifetime of an access token.
const TOKEN_SECS: i64 = 3600;
/// Where `oauth-redirect` points: another host, which no client may follow to.
const REDIRECT_TO: &str = "https://login.elsewhere.example/oauth2/v1/token";

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    /// The Snowflake user (upper case).
    sub: String,
    /// The account it is for.
    aud: String,
    /// The role a `session:role:` scope asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scp: Option<String>,
    iat: i64,
    exp: i64,
}

/// An RFC 6749 §5.2 error answer (401 with a Basic challenge for `invalid_client`).
fn refuse(error: GrantError, description: &str) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({"error": error.to_string(), "error_description": description});
    let mut response = (status, Json(body)).into_response();
    if error == GrantError::InvalidClient {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"netcheck-emulator\""),
        );
    }
    response
}

/// The answer a fault on the token endpoint makes, if one applies.
fn fault_answer(call: &Call) -> Option<Response> {
    let faults = call.shared.faults();
    faults
        .matching(Some(ApiCall::IdpToken), Vhost::Idp)
        .find_map(|e| {
            let answer = match &e.fault {
                Fault::OauthError(error) => refuse(*error, "refused by an emulator fault"),
                Fault::OauthPage => (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<!DOCTYPE html><html><head><title>Sign in</title></head>\
                     <body><form>Sign in to continue</form></body></html>",
                )
                    .into_response(),
                Fault::OauthRedirect => {
                    (StatusCode::FOUND, [(header::LOCATION, REDIRECT_TO)], "").into_response()
                }
                Fault::OauthOversized => {
                    let padding = "x".repeat(1024 * 1024);
                    Json(serde_json::json!({"padding": padding})).into_response()
                }
                _ => return None,
            };
            e.take().then_some(answer)
        })
}

/// `POST <token path>` on the identity provider's host.
pub(super) fn token(call: &Call) -> Response {
    if call.ctx.endpoint != ApiCall::IdpToken {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(answer) = fault_answer(call) {
        return answer;
    }
    let form = call.form();
    let field = |name: &str| form_field(&form, name);
    let basic = call
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(oauth::parse_basic);
    let (id, secret) = match (&basic, field("client_id"), field("client_secret")) {
        (Some((id, secret)), _, _) => (id.as_str(), secret.as_str()),
        (None, Some(id), Some(secret)) => (id, secret),
        _ => {
            return refuse(
                GrantError::InvalidClient,
                "client authentication is required",
            );
        }
    };
    let user = match call.shared.oauth_clients.get(id) {
        Some((known, user)) if known == secret => user.clone(),
        _ => return refuse(GrantError::InvalidClient, "unknown client or wrong secret"),
    };
    match field("grant_type") {
        None => return refuse(GrantError::InvalidRequest, "grant_type is required"),
        Some(CLIENT_CREDENTIALS_GRANT) => {}
        Some(_) => {
            return refuse(
                GrantError::UnsupportedGrantType,
                "only client_credentials is offered",
            );
        }
    }
    let scope = field("scope").unwrap_or_default();
    let mut role = None;
    for word in scope.split_whitespace() {
        let granted = word
            .strip_prefix("session:role:")
            .map(str::to_ascii_uppercase)
            .filter(|r| call.role_of(&user, Some(r)).is_some());
        match granted {
            Some(r) => role = Some(r),
            None => return refuse(GrantError::InvalidScope, "scope not granted to this client"),
        }
    }
    match mint(&call.shared, user, role, TOKEN_SECS) {
        Some(access_token) => Json(TokenResponse {
            access_token,
            token_type: Some("Bearer".to_owned()),
            expires_in: Some(TOKEN_SECS),
            scope: (!scope.is_empty()).then(|| scope.to_owned()),
        })
        .into_response(),
        None => text(String::new()),
    }
}

/// An access token of the identity provider for `user` (upper case), valid for `lifetime`
/// seconds from the emulator's clock (negative: already expired).
pub(crate) fn mint(
    shared: &crate::state::State,
    user: String,
    role: Option<String>,
    lifetime: i64,
) -> Option<String> {
    let now = shared.now_unix();
    let claims = AccessClaims {
        iss: ISSUER.to_owned(),
        sub: user,
        aud: shared.account.clone(),
        scp: role,
        iat: now.min(now + lifetime),
        exp: now + lifetime,
    };
    jws::encode(&jws::Signer::Hs256(&shared.token_secret), &claims).ok()
}

/// Verifies an access token of the identity provider presented to the account host, with
/// Snowflake's login-path answers: 390318 when it expired, 390303 when it is not one.
pub(super) fn verify(call: &Call, token: &str) -> Result<VerifiedJwt, Response> {
    let invalid = || {
        json_error(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_OAUTH_TOKEN,
            "Invalid OAuth access token.",
        )
    };
    let refuse = |r: Response| call.check_policy(None).err().unwrap_or(r);
    // Expiry against the emulator's (possibly skewed) clock and the audience, below.
    let claims: AccessClaims = jws::Parts::split(token)
        .filter(|p| p.verify_hs256(&call.shared.token_secret))
        .and_then(|p| p.claims())
        .ok_or_else(|| refuse(invalid()))?;
    if claims.iss != ISSUER
        || claims.aud != call.shared.account
        || !call.shared.users.contains_key(&claims.sub)
    {
        return Err(refuse(invalid()));
    }
    if claims.exp <= call.shared.now_unix() {
        return Err(refuse(json_error(
            StatusCode::UNAUTHORIZED,
            codes::OAUTH_ACCESS_TOKEN_EXPIRED,
            "OAUTH_ACCESS_TOKEN_EXPIRED",
        )));
    }
    call.check_policy(Some(&claims.sub))?;
    Ok(VerifiedJwt {
        account: jwt_account(&call.shared.account),
        user: claims.sub,
        fingerprint: String::new(),
        role: claims.scp,
        expires_at: claims.exp,
    })
}
