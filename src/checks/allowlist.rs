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
use crate::net::connect::{self, ConnectFailure, ConnectFailureKind};
use crate::net::proxy::{self, ProxyDecision, TargetScheme};
use crate::net::resolver::{DnsFailure, DnsFailureKind};
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
.after(&["auth.jwt", "auth.oauth_account"]);

/// What happened to one entry.
#[derive(Serialize)]
struct Probe {
    #[serde(flatten)]
    entry: Entry,
    ok: bool,
    /// `dns`, `connect` or `proxy` when it failed; `local` when this machine could not try it
    /// (out of file descriptors).
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
    /// Entries whose host name or type is longer than a DNS name can be, shortened: no such host
    /// exists, and a name of megabytes would flood every report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped_too_long: Vec<String>,
    descriptors: Descriptors,
    hosts: Vec<Probe>,
}

/// The longest DNS name (RFC 1035, without the trailing dot); also the bound on an entry's type,
/// which is a short word like `SNOWFLAKE_DEPLOYMENT`.
pub const MAX_HOST_LEN: usize = 253;

/// Whether an entry names something no host can be.
fn too_long(entry: &Entry) -> bool {
    entry.host.len() > MAX_HOST_LEN || entry.kind.len() > MAX_HOST_LEN
}

/// The start of an over-long entry and its length, for the evidence.
fn shorten(entry: &Entry) -> String {
    let cut = |s: &str| {
        let end = (0..=32.min(s.len()))
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        if end < s.len() {
            format!("{}… ({} bytes)", &s[..end], s.len())
        } else {
            s.to_owned()
        }
    };
    format!("{} {}", cut(&entry.kind), cut(&entry.host))
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
    let (long, entries): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(too_long);
    let (wildcards, entries): (Vec<Entry>, Vec<Entry>) =
        entries.into_iter().partition(|e| e.host.starts_with('*'));
    let note = if long.is_empty() {
        String::new()
    } else {
        format!(
            "; skipped {} entries with a host name or type over {MAX_HOST_LEN} bytes",
            long.len()
        )
    };
    let descriptors = Descriptors::now(ctx.settings.concurrency);
    let mut evidence = Evidence {
        source,
        checked: 0,
        unreachable: 0,
        skipped_wildcards: wildcards.into_iter().map(|e| e.host).collect(),
        skipped_too_long: long.iter().map(shorten).collect(),
        descriptors,
        hosts: Vec::new(),
    };
    if descriptors.concurrency == 0 {
        return Outcome::fail(
            RowId::LocalOpenFiles,
            format!(
                "only {} file descriptors free ({}): too few to probe {} hosts beside the rest \
                 of the run, so none was tried{note}",
                descriptors.free.unwrap_or(0),
                descriptors.limit_text(),
                entries.len()
            ),
            evidence,
        );
    }
    let probes = probe_all(&ctx, entries, descriptors.concurrency).await;
    let local = probes
        .iter()
        .filter(|p| p.failed_at == Some(FAILED_LOCALLY))
        .count();
    let failed: Vec<&Probe> = probes
        .iter()
        .filter(|p| !p.ok && p.failed_at != Some(FAILED_LOCALLY))
        .collect();
    let summary = summarize(&failed);
    let (n, total) = (failed.len(), probes.len());
    evidence.checked = total;
    evidence.unreachable = n;
    evidence.hosts = probes;
    // Hosts that were never tried say nothing about the network: the run itself is the problem.
    if local > 0 {
        let unreachable = if n == 0 {
            String::new()
        } else {
            format!("; of those tried, {n} unreachable: {summary}")
        };
        return Outcome::fail(
            RowId::LocalOpenFiles,
            format!(
                "{local} of {total} hosts not tried: this machine ran out of file descriptors \
                 ({}){unreachable}{note}",
                descriptors.limit_text()
            ),
            evidence,
        );
    }
    if n == 0 {
        return Outcome::pass(
            format!("all {total} listed hosts reachable{note}"),
            evidence,
        );
    }
    Outcome::fail(
        RowId::AllowlistUnreachable,
        format!("{n} of {total} unreachable: {summary}{note}"),
        evidence,
    )
}

/// The first few failed probes (type, host, port, what failed), and how many more.
fn summarize(failed: &[&Probe]) -> String {
    const SHOWN: usize = 5;
    let shown = failed
        .iter()
        .take(SHOWN)
        .map(|p| {
            format!(
                "{} {}:{} ({} failed)",
                p.entry.kind,
                p.entry.host,
                p.entry.port,
                p.failed_at.unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    match failed.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{shown} and {more} more"),
        _ => shown,
    }
}

/// `failed_at` of a probe this machine could not make (out of file descriptors).
const FAILED_LOCALLY: &str = "local";

/// Descriptors kept for the rest of the run while hosts are probed: the other checks' sockets,
/// the API client's connections, the resolver's.
const RESERVED_DESCRIPTORS: u64 = 32;
/// A probe holds at most two descriptors at once (a DNS socket, then the TCP connection).
const DESCRIPTORS_PER_PROBE: u64 = 2;

/// How many probes run at once, and why: `--concurrency`, bounded by the file descriptors free.
#[derive(Debug, Clone, Copy, Serialize)]
struct Descriptors {
    /// The soft open-file limit (raised to the hard one at start); `None`: unlimited or unknown.
    open_files_limit: Option<u64>,
    /// Descriptors free when probing began; `None` when this platform cannot say.
    free: Option<u64>,
    /// Probes at once: `--concurrency`, or fewer when descriptors are short; 0 when there are
    /// too few to probe at all.
    concurrency: usize,
}

impl Descriptors {
    fn now(wanted: usize) -> Self {
        let free = crate::limits::descriptors_free();
        let concurrency = free.map_or(wanted, |free| {
            let budget = free.saturating_sub(RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_PROBE;
            wanted.min(usize::try_from(budget).unwrap_or(usize::MAX))
        });
        Self {
            open_files_limit: crate::limits::open_files().soft,
            free,
            concurrency,
        }
    }

    fn limit_text(&self) -> String {
        self.open_files_limit.map_or_else(
            || "no open-file limit known".to_owned(),
            |l| format!("open-file limit {l}"),
        )
    }
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

/// Probes every entry, at most `concurrency` at once, each in its own task so the work spreads
/// over the runtime's threads; results in file order. Unordered completion, so one slow host does
/// not hold back the ones behind it. Dropping the future (deadline, Ctrl-C) aborts every probe.
async fn probe_all(ctx: &Ctx, entries: Vec<Entry>, concurrency: usize) -> Vec<Probe> {
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
    for _ in 0..concurrency {
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
    let dns_failure = |at, e: DnsFailure| {
        let local = e.kind == DnsFailureKind::LocalLimit;
        failure(if local { FAILED_LOCALLY } else { at }, e.message)
    };
    let connect_failure = |at, e: ConnectFailure| {
        let local = e.kind == ConnectFailureKind::LocalLimit;
        failure(if local { FAILED_LOCALLY } else { at }, e.to_string())
    };
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
            Err(e) => dns_failure("dns", e),
            Ok(res) => {
                match connect::connect(SocketAddr::new(res.addrs[0], entry.port), timeout).await {
                    Err(e) => connect_failure("connect", e),
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
    proxy::open_tunnel(addr, proxy, to, &ctx.net.proxy_trust, timeout, None)
        .await
        .map(drop)
        .map_err(|e| ("proxy", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_long_entries_are_skipped_and_shortened() {
        let entry = |kind: &str, host: &str| Entry {
            kind: kind.to_owned(),
            host: host.to_owned(),
            port: 443,
        };
        let longest = "a".repeat(MAX_HOST_LEN);
        assert!(!too_long(&entry("STAGE", &longest)));
        let huge = "é".repeat(1_000_000);
        let long = entry("STAGE", &huge);
        assert!(too_long(&long));
        assert!(too_long(&entry(&huge, "h.example")));
        assert_eq!(
            shorten(&long),
            format!("STAGE {}… (2000000 bytes)", "é".repeat(16))
        );
    }
}
