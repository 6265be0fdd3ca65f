//! The one list of checks. Selection (`--only`/`--skip`) and the runner read this list and
//! nothing else; a check is plain data plus one async function.

use std::collections::BTreeSet;

use crate::check::CheckSpec;
use crate::checks;
use crate::error::Error;

/// Every check, in report order (a dependency always comes before its dependents).
pub const CHECKS: &[CheckSpec] = &[
    checks::proxy::ENV,
    checks::dns::ACCOUNT,
    checks::tcp::ACCOUNT,
    checks::proxy::CONNECT,
    checks::tls::ACCOUNT,
    checks::dns::IDP,
    checks::tcp::IDP,
    checks::tls::IDP,
    checks::auth::KEYPAIR,
    checks::auth::JWT,
    checks::auth::OAUTH,
    checks::auth::OAUTH_ACCOUNT,
    checks::clock::SKEW,
    checks::policy::NETWORK,
    checks::allowlist::HOSTS,
    checks::discovery::HOSTNAME,
    checks::auth::SCOPED_TOKEN,
    checks::dns::INGEST,
    checks::tcp::INGEST,
    checks::tls::INGEST,
    checks::stream::OPEN,
    checks::stage::INFO,
    checks::dns::STAGE,
    checks::tcp::STAGE,
    checks::tls::STAGE,
    checks::stage::REACH,
    checks::stream::APPEND,
    checks::stream::COMMIT,
    checks::rate::RATE,
    checks::stream::DROP,
];

/// Looks a check up by id.
#[must_use]
pub fn find(id: &str) -> Option<&'static CheckSpec> {
    CHECKS.iter().find(|c| c.id == id)
}

/// What to run: the selected checks in registry order, plus the ones deselected with `--skip`
/// (reported as skipped, so nothing disappears silently).
#[derive(Debug)]
pub struct Plan {
    pub checks: Vec<&'static CheckSpec>,
    pub deselected: BTreeSet<&'static str>,
}

/// Builds the plan. `--only` keeps the named checks and what they depend on (a TLS handshake
/// needs an address); `--skip` deselects checks, and their dependents are skipped with that reason.
pub fn plan(only: &[String], skip: &[String], full: bool) -> Result<Plan, Error> {
    for id in only.iter().chain(skip) {
        if find(id).is_none() {
            let known: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
            return Err(Error::Usage(format!(
                "unknown check id `{id}` (known: {})",
                known.join(", ")
            )));
        }
    }
    if let Some(c) = skip.iter().filter_map(|id| find(id)).find(|c| c.always) {
        return Err(Error::Usage(format!(
            "{} cleans up after the round trip and cannot be skipped (without --full there is \
             nothing to clean up)",
            c.id
        )));
    }
    if let Some(c) = only
        .iter()
        .filter_map(|id| find(id))
        .find(|c| c.full && !full)
    {
        return Err(Error::Usage(format!(
            "{} is part of the channel round trip: add --full",
            c.id
        )));
    }
    let mut keep: BTreeSet<&'static str> = if only.is_empty() {
        CHECKS
            .iter()
            .filter(|c| full || !c.full)
            .map(|c| c.id)
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut stack: Vec<&'static str> = only
        .iter()
        .filter_map(|id| find(id))
        .map(|c| c.id)
        .collect();
    while let Some(id) = stack.pop() {
        if keep.insert(id) {
            if let Some(c) = find(id) {
                stack.extend(c.deps.iter().chain(c.early));
            }
        }
        if stack.is_empty() {
            // Cleanup comes with what it cleans up after: `--only stream.append` still drops
            // the channel its stream.open creates.
            stack.extend(
                CHECKS
                    .iter()
                    .filter(|c| c.always && !keep.contains(c.id))
                    // Only the round trip's checks open something to clean up.
                    .filter(|c| {
                        c.after
                            .iter()
                            .any(|a| keep.contains(a) && find(a).is_some_and(|x| x.full))
                    })
                    .map(|c| c.id),
            );
        }
    }
    let deselected = skip
        .iter()
        .filter_map(|id| find(id))
        .map(|c| c.id)
        .collect();
    Ok(Plan {
        checks: CHECKS.iter().filter(|c| keep.contains(c.id)).collect(),
        deselected,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_and_dependencies_come_first() {
        let mut seen = HashSet::new();
        for c in CHECKS {
            for d in c.deps.iter().chain(c.early).chain(c.after) {
                assert!(
                    seen.contains(d),
                    "{} depends on {d}, which must come before it",
                    c.id
                );
            }
            assert!(seen.insert(c.id), "duplicate check id {}", c.id);
        }
    }

    #[test]
    fn only_pulls_in_dependencies() {
        let p = plan(&["tcp.account".into()], &[], false).unwrap();
        let ids: Vec<&str> = p.checks.iter().map(|c| c.id).collect();
        assert_eq!(ids, ["proxy.env", "dns.account", "tcp.account"]);
    }

    #[test]
    fn cleanup_comes_with_what_it_cleans_up_after() {
        let p = plan(&["stream.append".into()], &[], true).unwrap();
        let ids: Vec<&str> = p.checks.iter().map(|c| c.id).collect();
        assert!(
            ids.contains(&"stream.open") && ids.contains(&"stream.drop"),
            "{ids:?}"
        );
        let p = plan(&["tls.ingest".into()], &[], true).unwrap();
        assert!(p.checks.iter().all(|c| c.id != "stream.drop"));
    }

    #[test]
    fn cleanup_cannot_be_skipped() {
        let err = plan(&[], &["stream.drop".into()], true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("stream.drop"), "{err}");
    }

    #[test]
    fn unknown_id_is_a_usage_error() {
        let err = plan(&[], &["dns.acount".into()], false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dns.acount") && err.contains("dns.account"),
            "{err}"
        );
    }
}
