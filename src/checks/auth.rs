//! Key-pair authentication, as Snowflake sees it: `auth.keypair` (the key and its fingerprint,
//! with the SQL that registers it), `auth.jwt` (the account accepts a JWT minted from it;
//! discovery's `GET /v2/streaming/hostname` is the probe) and `auth.scoped_token` (the one
//! OAuth exchange for a token scoped to the ingest host). Pairs with `checks/api.toml`.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;

use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::answer::{self, Judged};
use crate::context::{Ctx, HostRole};
use crate::outcome::{Outcome, SkipReason, Status};
use crate::secret::Secret;
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
    let Some(sf) = &ctx.settings.snowflake else {
        return not_configured();
    };
    let public = sf.key.public_key();
    let fingerprint = public.fingerprint();
    let body: String = public
        .to_pem()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let user = jwt_user(&sf.user);
    let evidence = KeyEvidence {
        account: jwt_account(&sf.account),
        key_file: sf.key_file.as_deref(),
        bits: sf.key.bits(),
        fingerprint: &fingerprint,
        register_sql: format!("ALTER USER {user} SET RSA_PUBLIC_KEY='{body}';"),
        compare_sql: format!(
            "DESC USER {user};  -- RSA_PUBLIC_KEY_FP or RSA_PUBLIC_KEY_2_FP must be {fingerprint}"
        ),
        warnings: &sf.key_warnings,
        user,
    };
    match sf.key_warnings.first() {
        Some(w) => Outcome::warn(RowId::KeyPermissions, w.clone(), evidence),
        None => Outcome::pass(
            format!("{}-bit RSA key, fingerprint {fingerprint}", sf.key.bits()),
            evidence,
        ),
    }
}

/// `GET /v2/streaming/hostname` with a fresh key-pair JWT, as the SDK sends it.
async fn jwt(ctx: Ctx) -> Outcome {
    let Some(sf) = &ctx.settings.snowflake else {
        return not_configured();
    };
    let token = match ctx.jwt() {
        Ok(t) => t,
        Err(e) => return Outcome::fail(RowId::JwtRejected, format!("cannot mint a JWT: {e}"), ()),
    };
    let url = format!("{}{}", ctx.settings.account.url(), sf::HOSTNAME_PATH);
    let http = ctx.net.api.http();
    let result = ctx
        .net
        .api
        .call(ApiCall::Hostname, || {
            http.get(&url)
                .bearer_auth(token.expose())
                .header(sf::TOKEN_TYPE_HEADER, sf::TOKEN_TYPE_KEYPAIR_JWT)
                .header(ACCEPT, "application/json")
        })
        .await;
    if let Ok(reply) = &result {
        let _ = ctx.facts.hostname_reply.set(reply.clone());
    }
    let fingerprint = sf.key.public_key().fingerprint();
    let outcome = answer::judge(ApiCall::Hostname, &result, |_, ev| {
        ev.add("fingerprint", &fingerprint);
        Ok(format!(
            "{} accepted the JWT of {} (key {fingerprint})",
            ctx.settings.account.host,
            jwt_user(&sf.user)
        ))
    });
    // This check made the discovery request, so it carries the phase's latency verdict (its time
    // is that request's); discovery.hostname only reads the answer.
    match outcome.status {
        Status::Fail(RowId::JwtRejected) => {
            let finding = format!(
                "{}; compare DESC USER's RSA_PUBLIC_KEY_FP with {fingerprint}, then check account/user and clock.skew",
                outcome.finding
            );
            outcome.with_finding(finding)
        }
        _ => outcome,
    }
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
    let jwt = match ctx.jwt() {
        Ok(t) => t,
        Err(e) => return Outcome::fail(RowId::JwtRejected, format!("cannot mint a JWT: {e}"), ()),
    };
    let url = format!("{}{}", ctx.settings.account.url(), sf::OAUTH_TOKEN_PATH);
    let form = sf::token_request_form(&ingest.host, None);
    let http = ctx.net.api.http();
    let result = ctx
        .net
        .api
        .call(ApiCall::Token, || {
            http.post(&url)
                .bearer_auth(jwt.expose())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.clone())
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
