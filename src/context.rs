//! What a running check can see: the validated settings, the shared network layer, and the
//! facts earlier checks published (addresses, the reachable endpoint) for later ones.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use crate::net::resolver::Resolver;
use crate::settings::Settings;
use crate::target::Endpoint;

/// The context handed to every check. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub settings: Arc<Settings>,
    pub net: Arc<Network>,
    pub facts: Arc<Facts>,
}

impl Ctx {
    /// A fresh context for one run.
    #[must_use]
    pub fn new(settings: Settings) -> Self {
        let net = Network { resolver: Resolver::new(settings.resolve.clone(), settings.dns_server, settings.timeout) };
        Self { settings: Arc::new(settings), net: Arc::new(net), facts: Arc::new(Facts::default()) }
    }

    /// The endpoint for a host role, when it is known (the ingest host only after discovery).
    #[must_use]
    pub fn endpoint(&self, role: HostRole) -> Option<Endpoint> {
        match role {
            HostRole::Account => Some(self.settings.account.clone()),
        }
    }

    /// The facts about a host role.
    #[must_use]
    pub fn host_facts(&self, role: HostRole) -> &HostFacts {
        match role {
            HostRole::Account => &self.facts.account,
        }
    }
}

/// The network layer built once per run from the settings.
pub struct Network {
    pub resolver: Resolver,
}

/// Which Snowflake host a network check looks at: the same checks run for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRole {
    Account,
}

/// Facts checks publish for the checks that depend on them. Each is set at most once.
#[derive(Default)]
pub struct Facts {
    pub account: HostFacts,
}

/// What the network checks learned about one host.
#[derive(Default)]
pub struct HostFacts {
    /// The addresses `dns.*` resolved.
    pub addrs: OnceLock<Vec<IpAddr>>,
    /// The first address `tcp.*` connected to.
    pub reachable: OnceLock<SocketAddr>,
}
