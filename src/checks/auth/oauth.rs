//! OAuth 2.0, as Snowflake's connectors use it: `auth.oauth` obtains the access token — the
//! user's own (`token`, `token_file_path`), or the identity provider's answer to the client-credentials grant,
//! sent to `oauth_token_request_url` through the run's one HTTP client (same resolver, trust
//! store and proxy rules as every other call; the endpoint's DNS, TCP and TLS are `*.idp`) —
//! and `auth.oauth_account` presents it to the account host the way the real service accepts
//! it (`Authorization: Bearer`, `X-Snowflake-Authorization-Token-Type: OAUTH`), on discovery's
//! `GET /v2/streaming/hostname`.
//!
//! The identity provider's refusals are RFC 6749 §5.2 errors, one catalog row each; an answer that is no OAuth
//! at all (a login page, a proxy's page), a redirect (never followed) and an oversized body are
//! diagnosed too. Snowflake's own OAuth refusals are 390303 (invalid token), 390309 (a token of
//! another user) and 390318 (expired). The evidence says where the token came from, never the
//! token.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;

use super::{no_credentials, probe_account};
use crate::api::Reply;
use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::answer::{self, Judged};
use crate::connection::{OAuthCredentials, OAuthGrant};
use crate::context::Ctx;
use crate::outcome::{Outcome, SkipReason};
use crate::secret::Secret;
use crate::snowflake::oauth::{self as idp, GrantError};
use crate::snowflake::rest::{self as sf, ApiCall, ApiError, codes};

// Its request opens the API client's own connection to the IdP, beside tls.idp (as auth.jwt does
// beside tls.account): its result stands once tls.idp passed.
pub const OAUTH: CheckSpec = CheckSpec::new(
    "auth.oauth",
    "Auth: OAuth access token",
    &["dns.idp"],
    |ctx| Box::pin(obtain(ctx)),
)
.early(&["tls.idp"]);
pub const OAUTH_ACCOUNT: CheckSpec = CheckSpec::new(
    "auth.oauth_account",
    "Auth: account accepts the OAuth token",
    &["auth.oauth", "dns.account"],
    |ctx| Box::pin(account(ctx)),
)
.early(&["tls.account"]);

/// The OAuth credentials of the run, or the skip that says why there are none.
fn oauth_or_skip(ctx: &Ctx) -> Result<&OAuthCredentials, Outcome> {
    let sf = ctx
        .settings
        .snowflake
        .as_ref()
        .ok_or_else(|| no_credentials(ctx))?;
    sf.oauth().ok_or_else(|| {
        super::not_applicable(
            sf,
            "the connection uses key-pair authentication (SNOWFLAKE_JWT)".into(),
        )
    })
}

#[derive(Serialize)]
struct TokenEvidence<'a> {
    /// Where the token came from; never the token.
    origin: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifetime_s: Option<i64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

async fn obtain(ctx: Ctx) -> Outcome {
    let creds = match oauth_or_skip(&ctx) {
        Ok(c) => c,
        Err(skip) => return skip,
    };
    match &creds.grant {
        OAuthGrant::Token(token) => {
            let _ = ctx.facts.oauth_token.set(token.clone());
            let lifetime = lifetime(token.expose());
            let evidence = TokenEvidence {
                origin: &creds.origin,
                lifetime_s: lifetime,
                warnings: &creds.warnings,
            };
            let finding = format!("{}{}", creds.origin, valid_for(lifetime));
            match creds.warnings.first() {
                // A token past its own exp claim is refused by Snowflake (390318): say so here.
                _ if lifetime.is_some_and(|secs| secs <= 0) => {
                    Outcome::fail(RowId::OauthTokenExpired, finding, evidence)
                }
                Some(w) => Outcome::warn(RowId::TokenFilePermissions, w.clone(), evidence),
                None => Outcome::pass(finding, evidence),
            }
        }
        OAuthGrant::ClientCredentials {
            client_id,
            client_secret,
            url,
            scope,
            ..
        } => {
            let form = idp::client_credentials_form(scope.as_deref());
            let http = ctx.net.api.http();
            let result = ctx
                .net
                .api
                .call(ApiCall::IdpToken, || {
                    http.post(url)
                        .basic_auth(client_id, Some(client_secret.expose()))
                        .header(ACCEPT, "application/json")
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(form.clone())
                })
                .await;
            answer::judge_with(ApiCall::IdpToken, &result, classify_idp, |reply, ev| {
                granted(&ctx, creds, scope.as_deref(), reply, ev)
            })
        }
    }
}

/// The token from a 2xx answer of the identity provider, registered as a secret before anything else.
fn granted(
    ctx: &Ctx,
    creds: &OAuthCredentials,
    scope: Option<&str>,
    reply: &Reply,
    ev: &mut answer::CallEvidence,
) -> Judged {
    // A page that is not JSON is quoted (a login or block page says what it is); a JSON answer
    // never is: it may hold tokens under names netcheck does not know.
    let response = idp::parse_token_response(&reply.body).map_err(|e| {
        let finding = match e {
            idp::TokenAnswerError::NotJson => format!(
                "the token endpoint answered {} but {e}: {}",
                reply.status,
                answer::excerpt(&reply.body)
            ),
            _ => format!("the token endpoint answered {} but {e}", reply.status),
        };
        (RowId::OauthIdpAnswer, finding)
    })?;
    let token = Secret::new(response.access_token);
    let lifetime = response.expires_in.or_else(|| lifetime(token.expose()));
    ev.add("origin", &creds.origin);
    if let Some(scope) = scope {
        ev.add("scope", scope);
    }
    if let Some(granted) = &response.scope {
        ev.add("granted_scope", granted);
    }
    if let Some(secs) = lifetime {
        ev.add("lifetime_s", secs);
    }
    let _ = ctx.facts.oauth_token.set(token);
    Ok(format!("{}{}", creds.origin, valid_for(lifetime)))
}

/// The row of an identity provider's refusal: its RFC 6749 error, a server error, or an answer that is no
/// OAuth at all (an HTML page, a proxy's block page).
fn classify_idp(reply: &Reply) -> (RowId, String) {
    let error = ApiError::parse(&reply.body);
    if let Some((code, e)) = error
        .as_ref()
        .and_then(|e| Some((e.code.parse::<GrantError>().ok()?, e)))
    {
        let said = e.message.as_deref().unwrap_or_default();
        let finding = format!("the IdP answered {} {code}: {said}", reply.status);
        return (grant_row(code), finding.trim_end_matches(": ").to_owned());
    }
    if reply.status >= 500 {
        return answer::classify(reply);
    }
    (
        RowId::OauthIdpAnswer,
        format!(
            "the token endpoint answered {} with no OAuth error: {}",
            reply.status,
            answer::excerpt(&reply.body)
        ),
    )
}

/// The catalog row of each RFC 6749 §5.2 error.
fn grant_row(error: GrantError) -> RowId {
    match error {
        GrantError::InvalidRequest => RowId::OauthInvalidRequest,
        GrantError::InvalidClient => RowId::OauthInvalidClient,
        GrantError::InvalidGrant => RowId::OauthInvalidGrant,
        GrantError::UnauthorizedClient => RowId::OauthUnauthorizedClient,
        GrantError::UnsupportedGrantType => RowId::OauthUnsupportedGrantType,
        GrantError::InvalidScope => RowId::OauthInvalidScope,
    }
}

/// `GET /v2/streaming/hostname` with the OAuth token: the account's verdict on it.
async fn account(ctx: Ctx) -> Outcome {
    let creds = match oauth_or_skip(&ctx) {
        Ok(c) => c,
        Err(skip) => return skip,
    };
    let Some(token) = ctx.facts.oauth_token.get() else {
        return Outcome::skip(SkipReason::NotConfigured(
            "auth.oauth obtained no token".into(),
        ));
    };
    let result = probe_account(&ctx, token, sf::TOKEN_TYPE_OAUTH).await;
    let outcome = answer::judge_with(ApiCall::Hostname, &result, classify_account, |_, ev| {
        ev.add("origin", &creds.origin);
        Ok(format!(
            "{} accepted the OAuth token ({})",
            ctx.settings.account.host, creds.origin
        ))
    });
    // This check made the discovery request, so it carries the phase's latency verdict.
    outcome
}

/// Snowflake's OAuth refusals (login-path codes, which the streaming endpoints share) have rows
/// of their own; anything else is classified as for every Snowflake call.
fn classify_account(reply: &Reply) -> (RowId, String) {
    let (row, finding) = answer::classify(reply);
    let code = reply.error().map(|e| e.code).unwrap_or_default();
    let row = match (row, code.as_str()) {
        (RowId::TokenRejected, codes::INVALID_OAUTH_TOKEN) => RowId::OauthTokenInvalid,
        (RowId::TokenRejected, codes::OAUTH_TOKEN_USER_MISMATCH) => RowId::OauthTokenWrongUser,
        (RowId::TokenRejected, codes::OAUTH_ACCESS_TOKEN_EXPIRED) => RowId::OauthTokenExpired,
        (row, _) => row,
    };
    (row, finding)
}

/// Seconds until the token's `exp`, when it is a JWT that has one (read, never verified).
fn lifetime(token: &str) -> Option<i64> {
    sf::scoped_token_expiry(token).map(|exp| exp - time::OffsetDateTime::now_utc().unix_timestamp())
}

fn valid_for(lifetime: Option<i64>) -> String {
    match lifetime {
        Some(secs) if secs <= 0 => format!(", expired {} min ago by its exp claim", -secs / 60),
        Some(secs) => format!(", valid for {} min", secs / 60),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator as _;
    use test_case::test_case;

    use super::*;
    use crate::checks::answer::reply;

    #[test]
    fn every_rfc_6749_error_has_its_own_row() {
        let mut rows: Vec<RowId> = GrantError::iter().map(grant_row).collect();
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), GrantError::iter().count());
    }

    #[test_case(400, r#"{"error":"invalid_scope","error_description":"no such scope"}"#, RowId::OauthInvalidScope; "scope")]
    #[test_case(401, r#"{"error":"invalid_client"}"#, RowId::OauthInvalidClient; "client without description")]
    #[test_case(403, "<html><body>Blocked by policy</body></html>", RowId::OauthIdpAnswer; "page")]
    #[test_case(503, "", RowId::ServerError; "server error")]
    fn idp_refusals(status: u16, body: &str, row: RowId) {
        assert_eq!(classify_idp(&reply(status, body)).0, row);
    }

    #[test_case(r#"{"code":"390303","message":"Invalid OAuth access token."}"#, RowId::OauthTokenInvalid; "invalid")]
    #[test_case(r#"{"code":"390309","message":"The user you were trying to authenticate as differs from the user tied to the token."}"#, RowId::OauthTokenWrongUser; "wrong user")]
    #[test_case(r#"{"code":"390318","message":"OAUTH_ACCESS_TOKEN_EXPIRED"}"#, RowId::OauthTokenExpired; "expired")]
    #[test_case(r#"{"code":"390422","message":"Incoming request with IP/Token 10.0.0.1 is not allowed to access Snowflake."}"#, RowId::NetworkPolicy; "policy")]
    fn account_refusals(body: &str, row: RowId) {
        assert_eq!(classify_account(&reply(401, body)).0, row);
    }
}
