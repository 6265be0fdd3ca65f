//! The proxy path to a host, decided and measured the way curl does it.
//!
//! Two halves, both free of judgment (the `proxy.env` and `proxy.connect` checks classify):
//! - *Which proxy applies and why*: [`ProxySettings::from_env`] reads the variables curl reads
//!   (and the `--proxy` / `--noproxy` flags), [`decide`] picks the proxy for one target, and
//!   [`no_proxy_match`] applies curl's `NO_PROXY` rules.
//! - *What the proxy says*: [`connect_tunnel`] sends a hand-written HTTP CONNECT, because HTTP
//!   client libraries hide the proxy's status code and that code is the diagnosis.
//!
//! Proxy passwords live in [`Secret`] and never appear in `Debug`, `Display`, `Serialize` or
//! error text.

mod no_proxy;
mod proxy_url;
mod settings;
mod tunnel;

pub use no_proxy::{IneffectiveEntry, IneffectiveReason, NoProxyEntries, no_proxy_match};
pub use proxy_url::{BadUrlReason, ProxyAuth, ProxyScheme, ProxyUrl, Secret};
pub use settings::{
    DirectReason, IgnoredReason, IgnoredVariable, ProxyDecision, ProxyError, ProxySetting,
    ProxySettings, Sourced, TargetScheme, decide,
};
pub use tunnel::{ConnectReply, TunnelError, connect_tunnel};
