//! What a running check can see: the validated settings, the shared network layer, and the
//! facts earlier checks published (addresses, the reachable endpoint) for later ones.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use crate::api::{Api, Reply};
use crate::connection::OAuthGrant;
use crate::error::Error;
use crate::net::connect;
use crate::net::proxy::{self, ProxyDecision, ProxyError, RouteStream, TargetScheme};
use crate::net::resolver::Resolver;
use crate::net::tls::TrustStore;
use crate::secret::Secret;
use crate::settings::{Credentials, Settings};
use crate::snowflake::account::Endpoint;
use crate::snowflake::jwt;
use crate::snowflake::rest::{ChannelRef, TOKEN_TYPE_KEYPAIR_JWT, TOKEN_TYPE_OAUTH};

/// The context handed to every check. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub settings: Arc<Settings>,
    pub net: Arc<Network>,
    pub facts: Arc<Facts>,
}

impl Ctx {
    /// A fresh context for one run: the network layer is built once here and shared.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        let resolver = Arc::new(Resolver::new(
            settings.resolve.clone(),
            settings.dns,
            settings.timeout,
        ));
        let trust = TrustStore::new(settings.extra_roots.clone());
        let proxy_trust = trust.with_roots(settings.proxy_roots.clone());
        let http = crate::net::http::client(
            resolver.clone(),
            &trust,
            &proxy_trust,
            &settings.proxy,
            settings.timeout,
        )
        .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
        let net = Network {
            resolver,
            trust,
            proxy_trust,
            api: Api::new(
                http,
                settings.timeout,
                settings.proxy.clone(),
                settings.budget_scale,
            ),
        };
        Ok(Self {
            settings: Arc::new(settings),
            net: Arc::new(net),
            facts: Arc::new(Facts::default()),
        })
    }

    /// The endpoint for a host role, when it is known (the ingest host only after discovery).
    #[must_use]
    pub fn endpoint(&self, role: HostRole) -> Option<Endpoint> {
        match role {
            HostRole::Account => Some(self.settings.account.clone()),
            HostRole::Ingest => self.facts.ingest_host.get().cloned(),
            HostRole::Idp => match &self.settings.snowflake.as_ref()?.oauth()?.grant {
                OAuthGrant::ClientCredentials { endpoint, .. } => Some(endpoint.clone()),
                OAuthGrant::Token(_) => None,
            },
            HostRole::Stage => self.facts.stage.get().map(|t| t.endpoint.clone()),
        }
    }

    /// A fresh key-pair JWT for the configured user (minted per use: it carries the issue time).
    pub fn jwt(&self) -> Result<Secret<String>, String> {
        let sf = self
            .settings
            .snowflake
            .as_ref()
            .ok_or("no user or private key configured")?;
        let (Some(key), Some(user)) = (sf.key_pair(), sf.user.as_deref()) else {
            return Err("the connection does not use key-pair authentication".into());
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        jwt::mint(&sf.account, user, &key.key, now, sf.role.as_deref()).map_err(|e| e.to_string())
    }

    /// The token the account host is called with, and its `X-Snowflake-Authorization-Token-Type`:
    /// a fresh key-pair JWT (`KEYPAIR_JWT`), or the OAuth access token `auth.oauth` obtained
    /// (`OAUTH`).
    pub fn account_token(&self) -> Result<(Secret<String>, &'static str), String> {
        match self.settings.snowflake.as_ref().map(|sf| &sf.auth) {
            Some(Credentials::OAuth(_)) => self
                .facts
                .oauth_token
                .get()
                .cloned()
                .map(|t| (t, TOKEN_TYPE_OAUTH))
                .ok_or_else(|| "no OAuth access token was obtained (auth.oauth)".to_owned()),
            _ => self.jwt().map(|t| (t, TOKEN_TYPE_KEYPAIR_JWT)),
        }
    }

    /// The check whose call to the account host proved the credentials (and whose answer
    /// discovery reads): `auth.jwt`, or `auth.oauth_account` under OAuth.
    #[must_use]
    pub fn account_auth_check(&self) -> &'static str {
        match self.settings.snowflake.as_ref().map(|sf| &sf.auth) {
            Some(Credentials::OAuth(_)) => "auth.oauth_account",
            _ => "auth.jwt",
        }
    }

    /// How HTTPS to this host is routed (curl's rules). Pure and cheap, so every check asks
    /// rather than depending on another check for it.
    pub fn route(&self, endpoint: &Endpoint) -> Result<ProxyDecision, ProxyError> {
        proxy::decide(&self.settings.proxy, TargetScheme::Https, &endpoint.host)
    }

    /// Opens a stream to the host along its route: to the address `tcp.*` reached, or through
    /// the proxy's tunnel (whatever its kind). Every step is bounded by the step timeout.
    pub async fn open_stream(&self, role: HostRole) -> Result<RouteStream, OpenError> {
        Ok(self.open_tunnel(role).await?.0)
    }

    /// Like [`Ctx::open_stream`], with the proxy's answer when the route goes through one.
    pub async fn open_tunnel(
        &self,
        role: HostRole,
    ) -> Result<(RouteStream, Option<proxy::Tunnel>), OpenError> {
        self.open_route(role, None).await
    }

    /// Like [`Ctx::open_tunnel`], advertising `mss` on the TCP connection this machine opens
    /// (to the host, or to the proxy): a path-MTU black hole on that leg then lets the answers
    /// through.
    pub async fn open_tunnel_with_mss(
        &self,
        role: HostRole,
        mss: u32,
    ) -> Result<(RouteStream, Option<proxy::Tunnel>), OpenError> {
        self.open_route(role, Some(mss)).await
    }

    async fn open_route(
        &self,
        role: HostRole,
        mss: Option<u32>,
    ) -> Result<(RouteStream, Option<proxy::Tunnel>), OpenError> {
        let endpoint = self.endpoint(role).ok_or(OpenError::Unknown)?;
        let addr = *self
            .host_facts(role)
            .reachable
            .get()
            .ok_or(OpenError::Unknown)?;
        let timeout = self.settings.timeout;
        match self.route(&endpoint)? {
            ProxyDecision::Direct { .. } => {
                let (stream, _) = connect::connect_with(addr, timeout, mss).await?;
                Ok((RouteStream::Tcp(stream), None))
            }
            ProxyDecision::Proxy { proxy, .. } => {
                let to = proxy::Destination {
                    host: &endpoint.host,
                    port: endpoint.port,
                    resolved: self
                        .host_facts(role)
                        .addrs
                        .get()
                        .and_then(|a| a.first().copied()),
                };
                let (stream, tunnel) =
                    proxy::open_tunnel(addr, &proxy, to, &self.net.proxy_trust, timeout, mss)
                        .await?;
                Ok((stream, Some(tunnel)))
            }
        }
    }

    /// The facts about a host role.
    #[must_use]
    pub fn host_facts(&self, role: HostRole) -> &HostFacts {
        match role {
            HostRole::Account => &self.facts.account,
            HostRole::Ingest => &self.facts.ingest,
            HostRole::Idp => &self.facts.idp,
            HostRole::Stage => &self.facts.stage_host,
        }
    }
}

/// Why a stream to a host could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the host or its address is not known yet")]
    Unknown,
    #[error(transparent)]
    Route(#[from] ProxyError),
    #[error(transparent)]
    Connect(#[from] connect::ConnectFailure),
    #[error("proxy tunnel: {0}")]
    Tunnel(#[from] proxy::TunnelError),
}

/// The network layer built once per run from the settings.
pub struct Network {
    pub resolver: Arc<Resolver>,
    pub trust: TrustStore,
    /// The roots an `https://` proxy's certificate is verified with: `trust` plus
    /// `--proxy-cacert`.
    pub proxy_trust: TrustStore,
    pub api: Api,
}

/// Which Snowflake host a network check looks at: the same checks run for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRole {
    Account,
    /// The host discovery hands out for streaming; known only after `discovery.hostname`.
    Ingest,
    /// The OAuth identity provider's token endpoint (`oauth_token_request_url`), under the
    /// client-credentials grant.
    Idp,
    /// The cloud-storage host the SDK uploads file fragments to; known only after `stage.info`.
    Stage,
}

/// Facts checks publish for the checks that depend on them. Each is set at most once.
#[derive(Default)]
pub struct Facts {
    pub account: HostFacts,
    pub ingest: HostFacts,
    pub idp: HostFacts,
    pub stage_host: HostFacts,
    /// The OAuth access token from `auth.oauth` (the user's, or the identity provider's answer).
    pub oauth_token: OnceLock<Secret<String>>,
    /// The answer to `GET /v2/streaming/hostname` with the key-pair JWT (`auth.jwt`) or the
    /// OAuth token (`auth.oauth_account`), whatever its status: discovery reads its body, the
    /// clock check its `Date`.
    pub hostname_reply: OnceLock<Reply>,
    /// The ingest host from discovery, on the account URL's port (as the SDK does).
    pub ingest_host: OnceLock<Endpoint>,
    /// The stage's storage host and provider, from `:pipe-info` or an allowlist STAGE entry.
    pub stage: OnceLock<crate::snowflake::stage::StageTarget>,
    /// The scoped token from `auth.scoped_token`.
    pub scoped_token: OnceLock<Secret<String>>,
    /// The test channel of a `--full` run, once opened.
    pub channel: OnceLock<Channel>,
    /// Every test channel that may exist server-side, for `stream.drop`.
    pub test_channels: TestChannels,
}

/// The test channels a run may have created (the round trip's and `stream.rate`'s). A channel is
/// listed before its open request leaves: an open cut off by Ctrl-C or the deadline may still
/// have created it, so `stream.drop` drops it too.
#[derive(Default)]
pub struct TestChannels(std::sync::Mutex<Vec<TestChannel>>);

/// One channel to drop.
#[derive(Debug, Clone)]
pub struct TestChannel {
    pub channel: ChannelRef,
    /// The open was answered with success (else its outcome is unknown).
    pub opened: bool,
}

impl TestChannels {
    /// Lists a channel whose open (or reopen) request is about to be sent.
    pub fn opening(&self, channel: &ChannelRef) {
        let mut list = self.lock();
        if list.iter().all(|c| c.channel != *channel) {
            list.push(TestChannel {
                channel: channel.clone(),
                opened: false,
            });
        }
    }

    /// Records how an open was answered: success marks the channel opened; a refusal of a first
    /// open unlists it (nothing was created), while a refused reopen leaves it to be dropped.
    pub fn answered(&self, channel: &ChannelRef, opened: bool) {
        let mut list = self.lock();
        if opened {
            list.iter_mut()
                .filter(|c| c.channel == *channel)
                .for_each(|c| c.opened = true);
        } else {
            list.retain(|c| c.channel != *channel || c.opened);
        }
    }

    /// Every listed channel, in the order opened.
    pub fn list(&self) -> Vec<TestChannel> {
        self.lock().clone()
    }

    /// Unlists a channel that is gone (dropped, or never created): what stays listed is what a
    /// cut-short cleanup left behind.
    pub fn gone(&self, channel: &ChannelRef) {
        self.lock().retain(|c| c.channel != *channel);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TestChannel>> {
        // A panic while holding the lock cannot leave the list half-written.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `--full` test channel and where the round trip stands.
pub struct Channel {
    pub channel: ChannelRef,
    /// The continuation token for the next append (it changes with every append).
    pub continuation: std::sync::Mutex<String>,
    /// The offset token of the last row appended, once appended.
    pub last_offset: OnceLock<String>,
    /// `rows_error_count` when the channel was opened (it is cumulative).
    pub errors_at_open: u64,
}

/// What the network checks learned about one host.
#[derive(Default)]
pub struct HostFacts {
    /// The addresses `dns.*` resolved.
    pub addrs: OnceLock<Vec<IpAddr>>,
    /// The first address `tcp.*` connected to: the host's, or the proxy's when one applies.
    pub reachable: OnceLock<SocketAddr>,
}
