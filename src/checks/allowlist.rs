//! `allowlist.hosts`: DNS and TCP for every host and port `SYSTEM$ALLOWLIST()` lists (port 80
//! for OCSP/CRL hosts), as `SnowCD` did. The list comes from `--allowlist FILE` (the function's
//! JSON output) or, when a warehouse is configured, from the SQL API. Hosts are checked
//! concurrently, at most `--concurrency` at a time, so hundreds finish in a few slowest-host times.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::catalog::RowId;
use crate::check::CheckSpec;
use crate::checks::policy;
use crate::context::Ctx;
use crate::net::connect;
use crate::net::proxy::{self, ProxyDecision, TargetScheme};
use crate::outcome::{Outcome, SkipReason};
use crate::snowflake::allowlist::Entry;
use crate::snowflake::rest::ApiCall;

// After auth.jwt: the list may come from the SQL API, with the key-pair JWT.
pub const HOSTS: CheckSpec = CheckSpec::new(
    "allowlist.hosts",
    "Allowlist: every host Snowflake clients need",
    &["proxy.env"],
    |ctx| Box::pin(run(ctx)),
)
.after(&["auth.jwt"]);

/// What happened to one entry.
#[derive(Serialize)]
struct Probe {
    #[serde(flatten)]
    entry: Entry,
    ok: bool,
    /// `dns`, `connect` or `proxy` when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_at: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    elapsed: Duration,
}

#[derive(Serialize)]
struct Evidence {
    source: String,
    checked: usize,
    unreachable: usize,
    /// Wildcard entries (`*.…`) name no single host to try.
    skipped_wildcards: Vec<String>,
    hosts: Vec<Probe>,
}

async fn run(ctx: Ctx) -> Outcome {
    let (entries, source) = match list(&ctx).await {
        Ok(Some(x)) => x,
        Ok(None) => {
            return Outcome::skip(SkipReason::NotConfigured(
                "no --allowlist file and no warehouse configured".into(),
            ));
        }
        Err(outcome) => return outcome,
    };
    let (wildcards, entries): (Vec<Entry>, Vec<Entry>) =
        entries.into_iter().partition(|e| e.host.starts_with('*'));
    let probes = probe_all(&ctx, entries).await;
    let failed: Vec<&Probe> = probes.iter().filter(|p| !p.ok).collect();
    let summary: Vec<String> = failed
        .iter()
        .take(5)
        .map(|p| {
            format!(
                "{} {}:{} ({} failed)",
                p.entry.kind,
                p.entry.host,
                p.entry.port,
                p.failed_at.unwrap_or("?")
            )
        })
        .collect();
    let evidence = Evidence {
        source,
        checked: probes.len(),
        unreachable: failed.len(),
        skipped_wildcards: wildcards.into_iter().map(|e| e.host).collect(),
        hosts: Vec::new(),
    };
    let (n, total) = (failed.len(), probes.len());
    let evidence = Evidence {
        hosts: probes,
        ..evidence
    };
    if n == 0 {
        return Outcome::pass(format!("all {total} listed hosts reachable"), evidence);
    }
    let more = if n > summary.len() {
        format!(" and {} more", n - summary.len())
    } else {
        String::new()
    };
    Outcome::fail(
        RowId::AllowlistUnreachable,
        format!("{n} of {total} unreachable: {}{more}", summary.join(", ")),
        evidence,
    )
}

/// The allowlist, from the file or the SQL API; `None` when neither is configured.
async fn list(ctx: &Ctx) -> Result<Option<(Vec<Entry>, String)>, Outcome> {
    if let Some(entries) = &ctx.settings.allowlist {
        return Ok(Some((entries.clone(), "--allowlist".into())));
    }
    if ctx
        .settings
        .snowflake
        .as_ref()
        .is_none_or(|s| s.warehouse.is_none())
    {
        return Ok(None);
    }
    let result = policy::statement(ctx, "SELECT SYSTEM$ALLOWLIST()").await;
    let mut parsed = None;
    let outcome = crate::checks::answer::judge(ApiCall::Statements, &result, |reply, _| {
        let text = policy::first_cell(reply).unwrap_or_default();
        parsed = Some(crate::snowflake::allowlist::parse(&text).map_err(|e| (RowId::ApiError, e))?);
        Ok(String::new())
    });
    parsed
        .map(|entries| Some((entries, "SELECT SYSTEM$ALLOWLIST()".into())))
        .ok_or(outcome)
}

/// Probes every entry, at most `--concurrency` at once, each in its own task so the work spreads
/// over the runtime's threads; results in file order. Unordered completion, so one slow host does
/// not hold back the ones behind it. Dropping the future (deadline, Ctrl-C) aborts every probe.
async fn probe_all(ctx: &Ctx, entries: Vec<Entry>) -> Vec<Probe> {
    let mut results: Vec<Option<Probe>> = Vec::new();
    results.resize_with(entries.len(), || None);
    let mut pending = entries.into_iter().enumerate();
    let mut running = tokio::task::JoinSet::new();
    let mut spawn_next = |running: &mut tokio::task::JoinSet<_>| {
        if let Some((i, entry)) = pending.next() {
            let ctx = ctx.clone();
            running.spawn(async move { (i, probe(&ctx, entry).await) });
        }
    };
    for _ in 0..ctx.settings.concurrency {
        spawn_next(&mut running);
    }
    while let Some(joined) = running.join_next().await {
        // A probe only panics on a bug; the runner reports the check's own panic the same way.
        let (i, probe) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        results[i] = Some(probe);
        spawn_next(&mut running);
    }
    results.into_iter().flatten().collect()
}

/// DNS then TCP (through the proxy's tunnel when one applies to HTTPS hosts).
async fn probe(ctx: &Ctx, entry: Entry) -> Probe {
    let start = Instant::now();
    let timeout = ctx.settings.timeout;
    let scheme = if entry.port == 80 {
        TargetScheme::Http
    } else {
        TargetScheme::Https
    };
    let route = proxy::decide(&ctx.settings.proxy, scheme, &entry.host);
    let failure = |at, error: String| (Some(at), Some(error));
    let (failed_at, error) = match route {
        Ok(ProxyDecision::Proxy { proxy, .. }) if scheme == TargetScheme::Https => {
            match through_proxy(ctx, &proxy, &entry, timeout).await {
                Ok(()) => (None, None),
                Err((at, error)) => failure(at, error),
            }
        }
        _ => match ctx
            .net
            .resolver
            .resolve_reachable(&entry.host, entry.port, timeout)
            .await
        {
            Err(e) => failure("dns", e.message),
            Ok(res) => {
                match connect::connect(SocketAddr::new(res.addrs[0], entry.port), timeout).await {
                    Err(e) => failure("connect", e.to_string()),
                    Ok(_) => (None, None),
                }
            }
        },
    };
    Probe {
        ok: failed_at.is_none(),
        entry,
        failed_at,
        error,
        elapsed: start.elapsed(),
    }
}

/// The tunnel to `entry` through `proxy`, of whatever kind; `Err` says at which step it failed.
async fn through_proxy(
    ctx: &Ctx,
    proxy: &proxy::ProxyUrl,
    entry: &Entry,
    timeout: Duration,
) -> Result<(), (&'static str, String)> {
    let dns = &ctx.net.resolver;
    let at_proxy = dns
        .resolve(&proxy.host, proxy.port, timeout)
        .await
        .map_err(|e| ("proxy", e.message))?;
    // Through socks4 and socks5 the client resolves the destination and sends its address.
    let resolved = if proxy.scheme.resolves_remotely() {
        None
    } else {
        let local = dns
            .resolve(&entry.host, entry.port, timeout)
            .await
            .map_err(|e| ("dns", e.message))?;
        local.addrs.first().copied()
    };
    let to = proxy::Destination {
        host: &entry.host,
        port: entry.port,
        resolved,
    };
    let addr = SocketAddr::new(at_proxy.addrs[0], proxy.port);
    proxy::open_tunnel(addr, proxy, to, &ctx.net.proxy_trust, timeout)
        .await
        .map(drop)
        .map_err(|e| ("proxy", e.to_string()))
}
