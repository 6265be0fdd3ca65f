//! `clock.skew`: local time against the `Date` header of Snowflake's first HTTPS answer.
//! Snowflake rejects key-pair JWTs issued more than 60 s away from its clock.

use reqwest::header::ACCEPT;
use serde::Serialize;
use time::OffsetDateTime;

use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::answer;
use crate::context::Ctx;
use crate::outcome::{Outcome, SkipReason};
use crate::snowflake::rest::{self as sf, ApiCall};

// After auth.jwt (or auth.oauth_account): its answer carries a Date (a 401 too), and reading it
// saves a round trip.
pub const SKEW: CheckSpec = CheckSpec::new(
    "clock.skew",
    "Clock: local time vs Snowflake's",
    &["tls.account"],
    |ctx| Box::pin(run(ctx)),
)
.after(&["auth.jwt", "auth.oauth_account"]);

/// Past this the clock is worth fixing; past [`FAIL_SECS`] Snowflake refuses JWTs.
const WARN_SECS: i64 = 30;
const FAIL_SECS: i64 = 60;

#[derive(Serialize)]
struct Evidence {
    #[serde(with = "time::serde::rfc3339")]
    local: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    server: OffsetDateTime,
    /// Local minus server, seconds (the `Date` header has one-second resolution).
    skew_s: i64,
    source: &'static str,
}

async fn run(ctx: Ctx) -> Outcome {
    let (server, source) = if let Some(date) = ctx.facts.hostname_reply.get().and_then(|r| r.date) {
        let source = match ctx.account_auth_check() {
            "auth.jwt" => "auth.jwt answer",
            _ => "auth.oauth_account answer",
        };
        (date, source)
    } else {
        // No JWT answer (no credentials): an unauthenticated request still gets a Date.
        let url = format!("{}{}", ctx.settings.account.url(), sf::HOSTNAME_PATH);
        let http = ctx.net.api.http();
        match ctx
            .net
            .api
            .call(ApiCall::Hostname, || {
                http.get(&url).header(ACCEPT, "application/json")
            })
            .await
        {
            Ok(reply) => match reply.date {
                Some(d) => (d, "unauthenticated request"),
                None => {
                    return Outcome::skip(SkipReason::NotConfigured(
                        "the server sent no Date header".into(),
                    ));
                }
            },
            Err(e) => {
                return Outcome::fail(
                    answer::call_failure(&e),
                    format!("no answer to read the server's clock from: {e}"),
                    (),
                );
            }
        }
    };
    let local = OffsetDateTime::now_utc();
    let skew_s = (local - server).whole_seconds();
    let evidence = Evidence {
        local,
        server,
        skew_s,
        source,
    };
    let finding = format!(
        "local clock is {} s {} Snowflake's",
        skew_s.abs(),
        if skew_s >= 0 { "ahead of" } else { "behind" }
    );
    match skew_s.abs() {
        s if s > FAIL_SECS => Outcome::fail(
            RowId::ClockSkew,
            format!("{finding}: JWTs will be refused (limit {FAIL_SECS} s)"),
            evidence,
        ),
        s if s > WARN_SECS => Outcome::warn(
            RowId::ClockSkew,
            format!("{finding}: close to the {FAIL_SECS} s limit"),
            evidence,
        ),
        _ => Outcome::pass(finding, evidence),
    }
}
