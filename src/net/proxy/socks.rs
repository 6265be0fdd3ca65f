//! The SOCKS handshake (`socks4`, `socks4a`, `socks5`, `socks5h`) through tokio-socks, whose
//! errors are the proxy's own reply codes: not allowed by its rules, host unreachable, refused,
//! no acceptable authentication method. Those are evidence, so each is kept apart.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpStream;
use tokio_socks::tcp::{Socks4Stream, Socks5Stream};

use super::proxy_url::{ProxyScheme, ProxyUrl};

/// What the SOCKS proxy granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocksReply {
    /// 4 or 5.
    pub version: u8,
    /// The destination as sent: a name for `socks4a`/`socks5h` (the proxy resolves it), an
    /// address for `socks4`/`socks5` (resolved here).
    pub destination: String,
    /// Whether user name (and for SOCKS5, password) authentication was offered.
    pub authenticated: bool,
    /// From the first byte sent to the grant.
    #[serde(rename = "elapsed_ms", serialize_with = "crate::units::serialize_ms")]
    pub elapsed: Duration,
}

/// What the SOCKS proxy's refusal (or failure to answer) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display)]
#[serde(rename_all = "snake_case")]
pub enum SocksFailureKind {
    /// Reply 2 (SOCKS5): the proxy's rules refuse this destination. SOCKS4 has no such reply:
    /// its 91 means "rejected or failed" and is a [`SocksFailureKind::ServerFailure`].
    #[strum(serialize = "the proxy's rules do not allow this connection")]
    NotAllowed,
    /// Replies 3, 4, 6: the proxy cannot reach the destination (no route, TTL expired).
    #[strum(serialize = "the proxy cannot reach the destination (host or network unreachable)")]
    Unreachable,
    /// Reply 5: the destination refused the proxy's connection.
    #[strum(serialize = "the destination refused the proxy's connection")]
    Refused,
    /// Reply 1: a general failure of the proxy.
    #[strum(serialize = "general SOCKS server failure")]
    ServerFailure,
    /// The proxy accepts none of the authentication methods offered (method 0xFF): it wants
    /// credentials the URL does not carry.
    #[strum(serialize = "no acceptable authentication method (the proxy wants credentials)")]
    NoAcceptableAuth,
    /// The user name and password were refused, or SOCKS4's identd check failed.
    #[strum(serialize = "the proxy refused the credentials")]
    AuthFailed,
    /// Replies 7 and 8, or an address type SOCKS4 cannot carry (IPv6).
    #[strum(serialize = "the proxy does not support this request")]
    Unsupported,
    /// The answer is not SOCKS (another protocol on that port).
    #[strum(serialize = "the answer is not SOCKS")]
    NotSocks,
    /// The proxy closed the connection, or the socket failed.
    #[strum(serialize = "the connection to the proxy failed")]
    Io,
    /// No complete answer within the timeout.
    #[strum(serialize = "no answer within the timeout")]
    Timeout,
}

/// A failed SOCKS handshake. Never carries the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("SOCKS{version} proxy: {kind} ({message})")]
pub struct SocksFailure {
    /// 4 or 5.
    pub version: u8,
    /// What it means.
    pub kind: SocksFailureKind,
    /// tokio-socks's words for the reply (`Connection not allowed by ruleset`, …).
    pub message: String,
    /// The destination as sent.
    pub destination: String,
}

/// Runs the SOCKS handshake for `host:port` over `stream`, an already-connected TCP stream to
/// `proxy`, within `timeout`. `resolved` is the destination's address for the kinds where the
/// client resolves (`socks4`, `socks5`); the others send `host` for the proxy to resolve.
pub async fn socks_handshake(
    stream: TcpStream,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    resolved: Option<std::net::IpAddr>,
    timeout: Duration,
) -> Result<(TcpStream, SocksReply), SocksFailure> {
    let version = if matches!(proxy.scheme, ProxyScheme::Socks4 | ProxyScheme::Socks4a) {
        4
    } else {
        5
    };
    let destination = match (proxy.scheme.resolves_remotely(), resolved) {
        (false, Some(ip)) => ip.to_string(),
        _ => host.to_owned(),
    };
    let fail = |kind, message: String| SocksFailure {
        version,
        kind,
        message,
        destination: destination.clone(),
    };
    let target = (destination.as_str(), port);
    let auth = proxy.auth.as_ref();
    let started = Instant::now();
    let handshake = async {
        match (version, auth) {
            (4, None) => Socks4Stream::connect_with_socket(stream, target)
                .await
                .map(Socks4Stream::into_inner),
            (4, Some(a)) => {
                Socks4Stream::connect_with_userid_and_socket(stream, target, &a.username)
                    .await
                    .map(Socks4Stream::into_inner)
            }
            (_, None) => Socks5Stream::connect_with_socket(stream, target)
                .await
                .map(Socks5Stream::into_inner),
            (_, Some(a)) => Socks5Stream::connect_with_password_and_socket(
                stream,
                target,
                &a.username,
                a.password.expose(),
            )
            .await
            .map(Socks5Stream::into_inner),
        }
    };
    match tokio::time::timeout(timeout, handshake).await {
        Err(_) => Err(fail(
            SocksFailureKind::Timeout,
            format!("no answer within {timeout:?}"),
        )),
        Ok(Err(e)) => Err(fail(kind(&e), e.to_string())),
        Ok(Ok(stream)) => Ok((
            stream,
            SocksReply {
                version,
                destination: destination.clone(),
                authenticated: auth.is_some(),
                elapsed: started.elapsed(),
            },
        )),
    }
}

/// The meaning of tokio-socks's error, which mirrors the reply codes one to one.
fn kind(e: &tokio_socks::Error) -> SocksFailureKind {
    use SocksFailureKind as K;
    use tokio_socks::Error as E;
    match e {
        E::ConnectionNotAllowedByRuleset => K::NotAllowed,
        E::NetworkUnreachable | E::HostUnreachable | E::TtlExpired => K::Unreachable,
        E::ConnectionRefused => K::Refused,
        // SOCKS4 has one code (91) for "rejected or failed", which tokio-socks names general.
        E::GeneralSocksServerFailure | E::UnknownError => K::ServerFailure,
        E::NoAcceptableAuthMethods | E::AuthorizationRequired => K::NoAcceptableAuth,
        E::PasswordAuthFailure(_) | E::IdentdAuthFailure | E::InvalidUserIdAuthFailure => {
            K::AuthFailed
        }
        E::CommandNotSupported
        | E::AddressTypeNotSupported
        | E::InvalidTargetAddress(_)
        | E::InvalidAuthValues(_) => K::Unsupported,
        E::InvalidResponseVersion
        | E::InvalidReservedByte
        | E::UnknownAddressType
        | E::UnknownAuthMethod => K::NotSocks,
        E::Io(_) | E::ParseError(_) | E::ProxyServerUnreachable => K::Io,
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case(tokio_socks::Error::ConnectionNotAllowedByRuleset, SocksFailureKind::NotAllowed ; "ruleset")]
    #[test_case(tokio_socks::Error::HostUnreachable, SocksFailureKind::Unreachable ; "host unreachable")]
    #[test_case(tokio_socks::Error::NetworkUnreachable, SocksFailureKind::Unreachable ; "network unreachable")]
    #[test_case(tokio_socks::Error::ConnectionRefused, SocksFailureKind::Refused ; "refused")]
    #[test_case(tokio_socks::Error::NoAcceptableAuthMethods, SocksFailureKind::NoAcceptableAuth ; "no auth method")]
    #[test_case(tokio_socks::Error::PasswordAuthFailure(1), SocksFailureKind::AuthFailed ; "password refused")]
    #[test_case(tokio_socks::Error::GeneralSocksServerFailure, SocksFailureKind::ServerFailure ; "socks4 rejected")]
    #[test_case(tokio_socks::Error::InvalidResponseVersion, SocksFailureKind::NotSocks ; "not socks")]
    #[allow(clippy::needless_pass_by_value)] // test_case hands over values
    fn reply_codes_keep_their_meaning(e: tokio_socks::Error, want: SocksFailureKind) {
        assert_eq!(kind(&e), want);
    }
}
