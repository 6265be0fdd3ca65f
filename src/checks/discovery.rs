//! `discovery.hostname`: the ingest host from the answer `auth.jwt` (or `auth.oauth_account`)
//! got (no second request),
//! normalised as official clients do (`_` → `-`, lower case), on the account URL's port.

use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::answer::{self, Judged};
use crate::checks::auth::not_configured;
use crate::context::Ctx;
use crate::outcome::{Outcome, SkipReason};
use crate::snowflake::account::normalize_host;
use crate::snowflake::account::{Endpoint, HostKind};
use crate::snowflake::rest::{self as sf, ApiCall};

pub const HOSTNAME: CheckSpec = CheckSpec::new(
    "discovery.hostname",
    "Discovery: streaming ingest host",
    &["auth.jwt", "auth.oauth_account"],
    |ctx| Box::pin(run(ctx)),
);

#[allow(clippy::unused_async)] // every check has the async signature the registry dispatches
async fn run(ctx: Ctx) -> Outcome {
    if ctx.settings.snowflake.is_none() {
        return not_configured();
    }
    let Some(mut reply) = ctx.facts.hostname_reply.get().cloned() else {
        return Outcome::skip(SkipReason::NotConfigured(
            "no discovery answer to read".into(),
        ));
    };
    // auth.jwt made the request and judged its latency (its time is the request's): this check
    // reads the answer in no time, so a warning here would name a time the row does not show.
    reply.budget = None;
    let mut unexpected = false;
    let outcome = answer::judge(ApiCall::Hostname, &Ok(reply), |reply, ev| -> Judged {
        let raw = sf::bare_or_json_field(&reply.body, "hostname").unwrap_or_default();
        let host = normalize_host(&raw);
        if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
            return Err((
                RowId::DiscoveryFailed,
                format!(
                    "discovery answered {:?}, not a host name",
                    truncate(&reply.body)
                ),
            ));
        }
        let endpoint = Endpoint::for_host(&host, ctx.settings.account.port);
        ev.add("raw", &raw);
        ev.add("ingest_host", &endpoint);
        unexpected =
            endpoint.kind == HostKind::Custom && ctx.settings.account.kind != HostKind::Custom;
        let _ = ctx.facts.ingest_host.set(endpoint);
        Ok(format!("ingest host {host}"))
    });
    if unexpected && outcome.status == crate::outcome::Status::Pass {
        let finding = format!(
            "{}: not under snowflakecomputing.com or .cn",
            outcome.finding
        );
        return Outcome::warn(RowId::DiscoveryUnexpectedHost, finding, outcome.evidence);
    }
    outcome
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(80).map_or(s.len(), |(i, _)| i);
    &s[..end]
}
