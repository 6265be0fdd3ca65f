//! How netcheck reaches a host: one network layer that every check and the API client share, so
//! what the network checks saw is what the API calls see.
//!
//! - [`resolver`]: `--resolve` overrides, `--dns-server`, or the system's own way (nsswitch.conf's
//!   order, `/etc/hosts`, resolv.conf's servers and options, as glibc applies them).
//! - [`connect`]: TCP connect with a timeout, failures classified by kind.
//! - [`http`]: the HTTP client for API calls, built from the same resolver, roots and proxy.
//! - [`proxy`]: curl's proxy-variable rules and a hand-written HTTP CONNECT.
//! - [`tls`]: trust roots, handshake probes that keep the chain and the exact failure.

pub mod connect;
pub mod http;
pub mod proxy;
pub mod resolver;
pub mod tls;
