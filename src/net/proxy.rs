//! The proxy path to a host, decided and measured the way curl does it.
//!
//! Two halves, both free of judgment (the `proxy.env` and `proxy.connect` checks classify):
//! - *Which proxy applies and why*: [`ProxySettings::from_env`] reads the variables curl reads
//!   (and the `--proxy` / `--noproxy` flags), [`decide`] picks the proxy for one target, and
//!   [`no_proxy_match`] applies curl's `NO_PROXY` rules.
//! - *What the proxy says*: [`open_tunnel`] opens the tunnel leg by leg — TCP, TLS with an
//!   `https://` proxy, then a hand-written HTTP CONNECT ([`connect_tunnel`]: HTTP client
//!   libraries hide the proxy's status code, and that code is the diagnosis) or the SOCKS
//!   handshake ([`socks_handshake`], whose reply codes are kept).
//!
//! Proxy passwords live in [`Secret`] and never appear in `Debug`, `Display`, `Serialize` or
//! error text.

mod no_proxy;
mod proxy_url;
mod route;
mod socks;
mod tunnel;
mod variables;

pub use no_proxy::{IneffectiveEntry, IneffectiveReason, NoProxyEntries, no_proxy_match};
pub use proxy_url::{BadUrlReason, ProxyAuth, ProxyScheme, ProxyUrl, Secret};
pub use route::{Destination, RouteStream, Tunnel, TunnelReply, open_tunnel};
pub use socks::{SocksFailure, SocksFailureKind, SocksReply, socks_handshake};
pub use tunnel::{ConnectReply, TunnelError, connect_tunnel};
pub use variables::{
    DirectReason, FromVariable, IgnoredReason, IgnoredVariable, ProxyDecision, ProxyError,
    ProxySetting, ProxySettings, TargetScheme, decide,
};
