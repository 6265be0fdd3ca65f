//! The HTTP client every Snowflake API call goes through, built from the same pieces as the
//! network checks — the same resolver (`--resolve`, `--dns-server`), the same trust roots, the
//! same proxy decision — so what `tls.account` saw is what the API calls see. One client per run:
//! connections are pooled and reused (HTTP/2 when the server offers it).
//!
//! The proxy legs are reqwest's (its `socks` feature for SOCKS, its TLS to an `https://` proxy)
//! driven by netcheck's decision: the same proxy, the same kind (a `socks5h` proxy resolves the
//! name, a `socks5` one is sent the address this resolver found), and the proxy's certificate
//! checked against the same roots plus `--proxy-cacert` as `proxy.connect` checks it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::net::proxy::{
    self, ProxyDecision, ProxyScheme, ProxySetting, ProxySettings, TargetScheme,
};
use crate::net::resolver::Resolver;
use crate::net::tls::{PROBE_ALPN, TlsVersions, TrustStore};

/// Builds the run's HTTP client. `proxy_trust` verifies an `https://` proxy's certificate.
pub fn client(
    resolver: Arc<Resolver>,
    trust: &TrustStore,
    proxy_trust: &TrustStore,
    proxies: &ProxySettings,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    let tls = rustls::ClientConfig::clone(&trust.client_config_with_proxy(
        TlsVersions::Both,
        PROBE_ALPN,
        proxy_trust,
        tls_proxy_hosts(proxies),
    ));
    let settings = proxies.clone();
    // netcheck's own proxy decision (curl's rules), never reqwest's reading of the environment.
    let proxy = reqwest::Proxy::custom(move |url| {
        let host = url.host_str()?;
        match proxy::decide(
            &settings,
            TargetScheme::Https,
            host.trim_start_matches('[').trim_end_matches(']'),
        ) {
            Ok(ProxyDecision::Proxy { proxy, .. }) => Some(proxy.connect_url()),
            _ => None,
        }
    });
    reqwest::Client::builder()
        .no_proxy()
        .proxy(proxy)
        .tls_backend_preconfigured(tls)
        .dns_resolver(Arc::new(ClientResolver(resolver, timeout)))
        .connect_timeout(timeout)
        .timeout(timeout)
        // A redirect is a finding (a captive portal, a proxy, a wrong host), never followed:
        // following it would send the JWT or token to whoever answered.
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("netcheck/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The hosts of every `https://` proxy the settings name: their certificates are the proxy's.
fn tls_proxy_hosts(proxies: &ProxySettings) -> Vec<String> {
    [
        &proxies.proxy_flag,
        &proxies.https_proxy,
        &proxies.all_proxy,
    ]
    .into_iter()
    .flatten()
    .filter_map(|s| match &s.value {
        ProxySetting::Url { url } if url.scheme == ProxyScheme::Https => Some(url.host.clone()),
        _ => None,
    })
    .collect()
}

/// Adapts netcheck's resolver to reqwest. reqwest asks by name only, so a `--resolve` entry for
/// the name applies whatever its port (the API calls use the account URL's port anyway).
struct ClientResolver(Arc<Resolver>, Duration);

impl reqwest::dns::Resolve for ClientResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let timeout = self.1;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = match resolver.override_for_host(&host) {
                Some(addrs) => addrs.to_vec(),
                None => {
                    resolver
                        .resolve(&host, 0, timeout)
                        .await
                        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                        .addrs
                }
            };
            let addrs: Vec<SocketAddr> =
                addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
