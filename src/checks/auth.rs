//! Authentication, as Snowflake sees it. Key-pair: `auth.keypair` (the key and its fingerprint,
//! with the SQL that registers it) and `auth.jwt` (the account accepts a JWT minted from it;
//! discovery's `GET /v2/streaming/hostname` is the probe). OAuth (see [`oauth`]): `auth.oauth`
//! (the token, from the user or the identity provider's client-credentials grant) and `auth.oauth_account`
//! (the account accepts it, on the same probe). Either way `auth.scoped_token` makes the one
//! exchange for a token scoped to the ingest host. Pairs with `checks/api.toml`.

pub mod oauth;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;

use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::answer::{self, Judged};
use crate::connection::Authenticator;
use crate::context::{Ctx, HostRole};
use crate::outcome::{Outcome, SkipReason, Status};
use crate::secret::Secret;
use crate::settings::{Credentials, KeyPair, Snowflake};
use crate::snowflake::account::{jwt_account, jwt_user};
use crate::snowflake::rest::{self as sf, ApiCall};

pub const KEYPAIR: CheckSpec = CheckSpec::new(
    "auth.keypair",
    "Auth: private key and fingerprint",
    &[],
    |ctx| Box::pin(keypair(ctx)),
);
// Its request opens the API client's own connection, so it need not wait for the network checks
// to finish: it runs beside them and its result stands once tls.account passed (same route, same
// trust store, so a handshake tls.account refuses is refused here too).
pub const JWT: CheckSpec = CheckSpec::new(
    "auth.jwt",
    "Auth: account accepts the key-pair JWT",
    &["auth.keypair", "dns.account"],
    |ctx| Box::pin(jwt(ctx)),
)
.early(&["tls.account"]);
pub use oauth::{OAUTH, OAUTH_ACCOUNT};
pub const SCOPED_TOKEN: CheckSpec = CheckSpec::new(
    "auth.scoped_token",
    "Auth: token scoped to the ingest host",
    &["discovery.hostname"],
    |ctx| Box::pin(scoped_token(ctx)),
);

/// The skip of every Snowflake check when no credentials are configured.
pub(crate) fn not_configured() -> Outcome {
    Outcome::skip(SkipReason::NotConfigured(
        "no user or private key configured".into(),
    ))
}

/// The skip of an auth check without credentials, saying why when the connection names an
/// authenticator netcheck does not speak.
pub(crate) fn no_credentials(ctx: &Ctx) -> Outcome {
    let why = match &ctx.settings.connection.authenticator.value {
        Authenticator::Unsupported(name) if name == "PROGRAMMATIC_ACCESS_TOKEN" => {
            "PROGRAMMATIC_ACCESS_TOKEN is not used: Snowflake's page on programmatic access \
             tokens does not list Snowpipe Streaming among the APIs that accept one"
                .to_owned()
        }
        Authenticator::Unsupported(name) => format!(
            "authenticator {name} is not one netcheck speaks (SNOWFLAKE_JWT, OAUTH, \
             OAUTH_CLIENT_CREDENTIALS)"
        ),
        _ => return not_configured(),
    };
    Outcome::skip(SkipReason::NotConfigured(why))
}

/// The skip of a check that belongs to another way of authenticating than `sf`'s: it can never
/// apply to this connection, and the table leaves it out.
pub(crate) fn not_applicable(sf: &Snowflake, why: String) -> Outcome {
    let auth = match sf.auth {
        Credentials::KeyPair(_) => "key-pair",
        Credentials::OAuth(_) => "OAuth",
    };
    Outcome::skip(SkipReason::NotApplicable { auth, why })
}

/// The key of a key-pair run, or the skip of a key-pair-only check: none configured, or the
/// connection authenticates with OAuth (whose token names its user; there is no key to show).
fn key_pair_or_skip(ctx: &Ctx) -> Result<(&Snowflake, &KeyPair), Outcome> {
    let sf = ctx
        .settings
        .snowflake
        .as_ref()
        .ok_or_else(|| no_credentials(ctx))?;
    match &sf.auth {
        Credentials::KeyPair(key) => Ok((sf, key)),
        Credentials::OAuth(o) => Err(not_applicable(
            sf,
            format!(
                "key-pair only: this connection authenticates with OAuth ({})",
                o.origin
            ),
        )),
    }
}

#[derive(Serialize)]
struct KeyEvidence<'a> {
    user: String,
    account: String,
    key_file: Option<&'a std::path::Path>,
    bits: usize,
    fingerprint: &'a str,
    /// Registers this key on the user (the public key is not a secret).
    register_sql: String,
    /// Shows the registered fingerprints to compare with `fingerprint`.
    compare_sql: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

#[allow(clippy::unused_async)] // every check has the async signature the registry dispatches
async fn keypair(ctx: Ctx) -> Outcome {
    let (sf, kp) = match key_pair_or_skip(&ctx) {
        Ok(k) => k,
        Err(skip) => return skip,
    };
    let public = kp.key.public_key();
    let fingerprint = public.fingerprint();
    let body: String = public
        .to_pem()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let user = jwt_user(sf.user.as_deref().unwrap_or_default());
    let evidence = KeyEvidence {
        account: jwt_account(&sf.account),
        key_file: kp.key_file.as_deref(),
        bits: kp.key.bits(),
        fingerprint: &fingerprint,
        register_sql: format!("ALTER USER {user} SET RSA_PUBLIC_KEY='{body}';"),
        compare_sql: format!(
            "DESC USER {user};  -- RSA_PUBLIC_KEY_FP or RSA_PUBLIC_KEY_2_FP must be {fingerprint}"
        ),
        warnings: &kp.key_warnings,
        user,
    };
    match kp.key_warnings.first() {
        Some(w) => Outcome::warn(RowId::KeyPermissions, w.clone(), evidence),
        None => Outcome::pass(
            format!("{}-bit RSA key, fingerprint {fingerprint}", kp.key.bits()),
            evidence,
        ),
    }
}

/// `GET /v2/streaming/hostname` with a fresh key-pair JWT, as the SDK sends it.
async fn jwt(ctx: Ctx) -> Outcome {
    let (sf, kp) = match key_pair_or_skip(&ctx) {
        Ok(k) => k,
        Err(skip) => return skip,
    };
    let token = match ctx.jwt() {
        Ok(t) => t,
        Err(e) => return Outcome::fail(RowId::JwtRejected, format!("cannot mint a JWT: {e}"), ()),
    };
    let result = probe_account(&ctx, &token, sf::TOKEN_TYPE_KEYPAIR_JWT).await;
    let fingerprint = kp.key.public_key().fingerprint();
    let outcome = answer::judge(ApiCall::Hostname, &result, |_, ev| {
        ev.add("fingerprint", &fingerprint);
        Ok(format!(
            "{} accepted the JWT of {} (key {fingerprint})",
            ctx.settings.account.host,
            jwt_user(sf.user.as_deref().unwrap_or_default())
        ))
    });
    // This check made the discovery request, so it carries the phase's latency verdict (its time
    // is that request's); discovery.hostname only reads the answer.
    match outcome {
        outcome @ Outcome {
            status: Status::Fail(RowId::JwtRejected),
            ..
        } => {
            let finding = format!(
                "{}; compare DESC USER's RSA_PUBLIC_KEY_FP with {fingerprint}, then check account/user and clock.skew",
                outcome.finding
            );
            outcome.with_finding(finding)
        }
        outcome => outcome,
    }
}

/// `GET /v2/streaming/hostname` on the account host with `token` of `token_type`, as the SDK
/// sends it; the answer, whatever its status, is kept for discovery and the clock check.
pub(crate) async fn probe_account(
    ctx: &Ctx,
    token: &Secret<String>,
    token_type: &str,
) -> Result<crate::api::Reply, crate::api::CallError> {
    let url = format!("{}{}", ctx.settings.account.url(), sf::HOSTNAME_PATH);
    let http = ctx.net.api.http();
    let result = ctx
        .net
        .api
        .call(ApiCall::Hostname, || {
            http.get(&url)
                .bearer_auth(token.expose())
                .header(sf::TOKEN_TYPE_HEADER, token_type)
                .header(ACCEPT, "application/json")
        })
        .await;
    if let Ok(reply) = &result {
        let _ = ctx.facts.hostname_reply.set(reply.clone());
    }
    result
}

/// `POST /oauth/token` on the account host, `scope=<ingest host>`: one exchange, as the REST
/// tutorial and the SDK do it.
async fn scoped_token(ctx: Ctx) -> Outcome {
    if ctx.settings.snowflake.is_none() {
        return not_configured();
    }
    let Some(ingest) = ctx.endpoint(HostRole::Ingest) else {
        return Outcome::skip(SkipReason::NotConfigured(
            "no ingest host was discovered".into(),
        ));
    };
    // The key-pair JWT, or under OAuth the access token: the SDK makes "the standard scoped
    // token exchange" with a token it reads from a file (Snowflake's SPCS page).
    let (token, token_type) = match ctx.account_token() {
        Ok(t) => t,
        Err(e) => {
            let row = if token_type_is_oauth(&ctx) {
                RowId::TokenRejected
            } else {
                RowId::JwtRejected
            };
            return Outcome::fail(row, format!("no token to exchange: {e}"), ());
        }
    };
    let url = format!("{}{}", ctx.settings.account.url(), sf::OAUTH_TOKEN_PATH);
    let form = sf::token_request_form(&ingest.host, None);
    let http = ctx.net.api.http();
    let result = ctx
        .net
        .api
        .call(ApiCall::Token, || {
            let request = http
                .post(&url)
                .bearer_auth(token.expose())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.clone());
            // The REST tutorial sends no token type with the JWT; an OAuth token says what it is.
            if token_type == sf::TOKEN_TYPE_OAUTH {
                request.header(sf::TOKEN_TYPE_HEADER, token_type)
            } else {
                request
            }
        })
        .await;
    answer::judge(ApiCall::Token, &result, |reply, ev| -> Judged {
        let token = sf::bare_or_json_field(&reply.body, "token")
            .filter(|t| !t.is_empty())
            .ok_or((
                RowId::ApiError,
                "the token exchange answered 200 without a token".to_owned(),
            ))?;
        ev.add("scope", &ingest.host);
        let lifetime = sf::scoped_token_expiry(&token)
            .map(|exp| exp - time::OffsetDateTime::now_utc().unix_timestamp());
        if let Some(secs) = lifetime {
            ev.add("lifetime_s", secs);
        }
        let _ = ctx.facts.scoped_token.set(Secret::new(token));
        Ok(match lifetime {
            Some(secs) => format!("token for {} valid for {} min", ingest.host, secs / 60),
            None => format!("token for {} (no readable expiry)", ingest.host),
        })
    })
}

/// Whether the run authenticates with OAuth.
fn token_type_is_oauth(ctx: &Ctx) -> bool {
    ctx.settings
        .snowflake
        .as_ref()
        .is_some_and(|sf| sf.oauth().is_some())
}
