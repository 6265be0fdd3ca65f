//! `policy.network`: is this machine's egress IP allowed by the account's (or user's) network
//! policy? A 390422 on any endpoint so far answers it; otherwise `SELECT CURRENT_IP_ADDRESS()`
//! over the SQL API shows the egress IP Snowflake sees, even when the policy allows it.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;

use crate::api::Reply;
use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::answer;
use crate::checks::auth::not_configured;
use crate::context::Ctx;
use crate::outcome::{Outcome, SkipReason, Verdict};
use crate::snowflake::account::jwt_user;
use crate::snowflake::rest::{self as sf, ApiCall, codes};

pub const NETWORK: CheckSpec = CheckSpec::new(
    "policy.network",
    "Network policy: egress IP allowed",
    &["tls.account"],
    |ctx| Box::pin(run(ctx)),
)
.after(&["auth.jwt", "auth.oauth_account"]);

/// How often to poll a statement that answered 202, at most.
const MAX_POLLS: u32 = 10;

#[derive(Serialize)]
struct Blocked<'a> {
    egress_ip: &'a str,
    endpoint: ApiCall,
    allow_sql: [String; 2],
}

async fn run(ctx: Ctx) -> Outcome {
    let Some(sf) = &ctx.settings.snowflake else {
        return not_configured();
    };
    let user = sf
        .user
        .as_deref()
        .map_or_else(|| "<user>".to_owned(), jwt_user);
    let blocked = |ip: &str, endpoint| {
        let evidence = Blocked {
            egress_ip: ip,
            endpoint,
            allow_sql: [
                format!(
                    "ALTER NETWORK POLICY <policy> SET ALLOWED_IP_LIST = (<current entries>, '{ip}/32');"
                ),
                format!(
                    "CREATE NETWORK POLICY allow_streaming ALLOWED_IP_LIST = ('{ip}/32'); ALTER USER {user} SET NETWORK_POLICY = allow_streaming;"
                ),
            ],
        };
        Outcome::fail(
            RowId::NetworkPolicy,
            format!("Snowflake refused {endpoint} from {ip}: not allowed by a network policy"),
            evidence,
        )
    };
    if let Some(x) = ctx
        .net
        .api
        .exchanges()
        .into_iter()
        .find(|x| x.error_code.as_deref() == Some(codes::IP_NOT_ALLOWED))
    {
        let ip = x
            .message
            .as_deref()
            .and_then(answer::quoted_ip)
            .unwrap_or_else(|| "?".into());
        return blocked(&ip, x.call);
    }
    // A token the account refused for another reason fails the SQL API the same way: say so once.
    match ctx.facts.hostname_reply.get() {
        Some(reply) if reply.ok() => {}
        _ => {
            return Outcome::skip(SkipReason::Dependency {
                dep: ctx.account_auth_check(),
                verdict: Verdict::Fail,
            });
        }
    }
    let result = statement(&ctx, "SELECT CURRENT_IP_ADDRESS()").await;
    if let Ok(reply) = &result {
        if let Some(ip) = answer::policy_block(reply) {
            return blocked(&ip, ApiCall::Statements);
        }
    }
    answer::judge(ApiCall::Statements, &result, |reply, ev| {
        // No verdict on an answer that could not be read: a pass must name the address.
        let ip = first_cell(reply).filter(|ip| !ip.trim().is_empty()).ok_or((
            RowId::ApiError,
            format!(
                "the SQL API answered {} without a readable result, so the egress IP is unknown",
                reply.status
            ),
        ))?;
        ev.add("egress_ip", &ip);
        Ok(format!("allowed; Snowflake sees this machine as {ip}"))
    })
}

/// Runs one statement over the SQL API with the key-pair JWT or the OAuth token (the SQL API
/// takes both), following a 202 to its result.
pub(crate) async fn statement(ctx: &Ctx, sql: &str) -> Result<Reply, crate::api::CallError> {
    let sf = ctx
        .settings
        .snowflake
        .as_ref()
        .ok_or_else(|| crate::api::CallError::local("no user or private key configured"))?;
    let (token, token_type) = ctx.account_token().map_err(crate::api::CallError::local)?;
    let base = ctx.settings.account.url();
    let mut body = serde_json::json!({ "statement": sql, "timeout": 30 });
    for (key, value) in [("role", &sf.role), ("warehouse", &sf.warehouse)] {
        if let Some(v) = value {
            body[key] = serde_json::Value::String(v.clone());
        }
    }
    let http = ctx.net.api.http();
    let authed = |rb: reqwest::RequestBuilder| {
        rb.bearer_auth(token.expose())
            .header(sf::TOKEN_TYPE_HEADER, token_type)
            .header(ACCEPT, "application/json")
    };
    let url = format!("{base}{}", sf::STATEMENTS_PATH);
    let mut reply = ctx
        .net
        .api
        .call(ApiCall::Statements, || {
            authed(http.post(&url))
                .header(CONTENT_TYPE, "application/json")
                .json(&body)
        })
        .await?;
    for _ in 0..MAX_POLLS {
        if reply.status != 202 {
            break;
        }
        let status_url = serde_json::from_str::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| {
                v.get("statementStatusUrl")
                    .and_then(|u| u.as_str())
                    .map(str::to_owned)
            });
        let Some(path) = status_url else { break };
        let url = same_origin(&base, &path)
            .ok_or_else(|| crate::api::CallError::redirected(reply.status, Some(&path)))?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        reply = ctx
            .net
            .api
            .call(ApiCall::Statements, || authed(http.get(&url)))
            .await?;
    }
    Ok(reply)
}

/// `path` resolved against `base`, when it stays on `base`'s scheme, host and port: the status
/// URL comes from the answer, and the JWT must not follow it anywhere else.
fn same_origin(base: &str, path: &str) -> Option<String> {
    let base = url::Url::parse(base).ok()?;
    let url = base.join(path).ok()?;
    (url.origin() == base.origin()).then(|| url.to_string())
}

/// The first column of the first row of a statement's result.
pub(crate) fn first_cell(reply: &Reply) -> Option<String> {
    serde_json::from_str::<sf::StatementResponse>(&reply.body)
        .ok()?
        .first_value()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    #[test_case("/api/v2/statements/h" => Some("https://a.example:8443/api/v2/statements/h".to_owned()); "a path")]
    #[test_case("https://a.example:8443/api/v2/statements/h" => Some("https://a.example:8443/api/v2/statements/h".to_owned()); "same origin")]
    #[test_case("//evil.example/x" => None; "scheme relative")]
    #[test_case("@evil.example/x" => Some("https://a.example:8443/@evil.example/x".to_owned()); "userinfo trick stays a path")]
    #[test_case("http://a.example:8443/x" => None; "plain http")]
    #[test_case("https://evil.example/x" => None; "another host")]
    fn status_urls_stay_on_the_account_host(path: &str) -> Option<String> {
        super::same_origin("https://a.example:8443", path)
    }
}
