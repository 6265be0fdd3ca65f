//! Proxy URLs as curl reads them: the scheme curl assumes, the port it defaults to, and
//! credentials that are percent-decoded and then kept out of every rendering.

use std::fmt;

use percent_encoding::percent_decode_str;
use serde::{Serialize, Serializer};

pub use crate::secret::Secret;

/// The kinds of proxy curl understands; netcheck tunnels through each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyScheme {
    /// Plain-text HTTP proxy, tunnelled with CONNECT.
    Http,
    /// HTTP proxy reached over TLS (curl ≥ 7.52).
    Https,
    /// SOCKS4, the client resolves names (`socks4`).
    Socks4,
    /// SOCKS4 with proxy-side name resolution (`socks4a`).
    Socks4a,
    /// SOCKS5, the client resolves names.
    Socks5,
    /// SOCKS5, the proxy resolves names.
    Socks5h,
}

impl ProxyScheme {
    const ALL: [Self; 6] = [
        Self::Http,
        Self::Https,
        Self::Socks4,
        Self::Socks4a,
        Self::Socks5,
        Self::Socks5h,
    ];

    /// The scheme as written in a URL.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Socks4 => "socks4",
            Self::Socks4a => "socks4a",
            Self::Socks5 => "socks5",
            Self::Socks5h => "socks5h",
        }
    }

    /// The port curl uses when the URL names none: 443 for an HTTPS proxy and 1080 for every
    /// other kind (curl's `CURLOPT_PROXYPORT` default). Many other clients assume 80 for
    /// `http://`, which is why [`ProxyUrl::port_defaulted`] is recorded.
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Self::Https => 443,
            _ => 1080,
        }
    }

    /// Whether the proxy resolves the destination's name (HTTP CONNECT, `socks4a`, `socks5h`);
    /// through `socks4` and `socks5` the client resolves it and sends the address.
    #[must_use]
    pub fn resolves_remotely(self) -> bool {
        !matches!(self, Self::Socks4 | Self::Socks5)
    }
}

impl fmt::Display for ProxyScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials from a proxy URL's userinfo, percent-decoded as curl does, sent as Basic auth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyAuth {
    /// The user name (shown in evidence: it identifies, it does not authenticate).
    pub username: String,
    /// The password, possibly empty (`http://user@proxy` sends `user:`).
    pub password: Secret<String>,
}

impl ProxyAuth {
    /// Credentials, registered as secrets in each form they leave netcheck in: the password, its
    /// percent-encoding in a URL (what reqwest is handed) and the `Basic` header value.
    fn new(username: String, password: String) -> Self {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        crate::secret::register(&utf8_percent_encode(&password, NON_ALPHANUMERIC).to_string());
        let auth = Self {
            username,
            password: Secret::new(password),
        };
        crate::secret::register(&auth.basic());
        auth
    }

    /// The `Basic` credentials: base64 of `user:password`.
    #[must_use]
    pub fn basic(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.username,
            self.password.expose()
        ))
    }
}

/// A proxy URL that curl would accept. Renders as `scheme://user:***@host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// The kind of proxy.
    pub scheme: ProxyScheme,
    /// Host name or IP literal, IPv6 without brackets, ready for a resolver or `IpAddr::parse`.
    pub host: String,
    /// The port to connect to (explicit, or curl's default for the scheme).
    pub port: u16,
    /// True when the URL named no port and [`ProxyScheme::default_port`] was used.
    pub port_defaulted: bool,
    /// Basic credentials, when the URL has userinfo.
    pub auth: Option<ProxyAuth>,
}

/// Why a proxy URL is unusable. Messages never contain the URL's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum BadUrlReason {
    /// A scheme curl does not know (`htp://`, `ftp://`, …).
    #[error(
        "unsupported proxy scheme {0:?} (curl knows http, https, socks4, socks4a, socks5, socks5h)"
    )]
    UnsupportedScheme(String),
    /// No host between `://` and the port or path.
    #[error("no host")]
    MissingHost,
    /// A port that is not a number from 1 to 65535.
    #[error("port is not a number from 1 to 65535")]
    BadPort,
    /// Anything else the URL parser rejects (its messages never quote the input).
    #[error("{0}")]
    Malformed(String),
}

impl ProxyUrl {
    /// Parses a proxy URL with curl's leniency: no `scheme://` means `http://`, and a path is
    /// ignored. A password in `raw` never reaches the error.
    pub fn parse(raw: &str) -> Result<Self, BadUrlReason> {
        let (scheme, rest) = match raw.split_once("://") {
            Some((scheme, rest)) => (parse_scheme(scheme)?, rest),
            None => (ProxyScheme::Http, raw),
        };
        let url = url::Url::parse(&format!("{scheme}://{rest}")).map_err(|e| match e {
            url::ParseError::EmptyHost => BadUrlReason::MissingHost,
            url::ParseError::InvalidPort => BadUrlReason::BadPort,
            other => BadUrlReason::Malformed(other.to_string()),
        })?;
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            _ => return Err(BadUrlReason::MissingHost),
        };
        // The url crate drops a port equal to the scheme's well-known one (`http://p:80`),
        // but curl's default is 1080, so read the port from the authority as written.
        let explicit = explicit_port(rest)?;
        let auth = (!url.username().is_empty() || url.password().is_some()).then(|| {
            // As written too: a percent-encoded password is a password.
            crate::secret::register(url.password().unwrap_or(""));
            ProxyAuth::new(decode(url.username()), decode(url.password().unwrap_or("")))
        });
        Ok(Self {
            scheme,
            host,
            port: explicit.unwrap_or_else(|| scheme.default_port()),
            port_defaulted: explicit.is_none(),
            auth,
        })
    }

    /// The URL to hand an HTTP client, credentials included (percent-encoded): the one place
    /// the password leaves its wrapper, to be sent to the proxy as Basic auth.
    #[must_use]
    pub fn connect_url(&self) -> String {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let userinfo = self.auth.as_ref().map_or_else(String::new, |a| {
            format!(
                "{}:{}@",
                utf8_percent_encode(&a.username, NON_ALPHANUMERIC),
                utf8_percent_encode(a.password.expose(), NON_ALPHANUMERIC)
            )
        });
        format!("{}://{userinfo}{}", self.scheme.as_str(), self.authority())
    }

    /// `host:port`, with brackets around an IPv6 host: the form CONNECT and sockets want.
    #[must_use]
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if let Some(auth) = &self.auth {
            f.write_str(&auth.username)?;
            if !auth.password.expose().is_empty() {
                write!(f, ":{}", auth.password)?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.authority())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

impl Serialize for ProxyUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `host:port`, bracketing an IPv6 literal.
pub(super) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Replaces the password in a proxy value that may not even parse, so the value can be shown
/// in an error: `http://u:pw@h` becomes `http://u:***@h`.
pub(super) fn redact(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let Some(at) = raw[start..].rfind('@').map(|i| start + i) else {
        return raw.to_owned();
    };
    match raw[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &raw[..start + colon], &raw[at..]),
        None => raw.to_owned(),
    }
}

fn parse_scheme(scheme: &str) -> Result<ProxyScheme, BadUrlReason> {
    let lower = scheme.to_ascii_lowercase();
    if let Some(known) = ProxyScheme::ALL.into_iter().find(|s| s.as_str() == lower) {
        return Ok(known);
    }
    // Only echo something that looks like a scheme: a mistyped value could hold a password.
    let looks_like_scheme = !lower.is_empty()
        && lower
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    Err(if looks_like_scheme {
        BadUrlReason::UnsupportedScheme(lower)
    } else {
        BadUrlReason::Malformed("invalid scheme".to_owned())
    })
}

/// The port as written in the authority of `rest` (the part after `scheme://`), if any.
fn explicit_port(rest: &str) -> Result<Option<u16>, BadUrlReason> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host_port = rest[..end]
        .rsplit_once('@')
        .map_or(&rest[..end], |(_, hp)| hp);
    let after_host = match host_port.rfind(']') {
        Some(close) => &host_port[close + 1..],
        None => host_port,
    };
    match after_host.rsplit_once(':') {
        None | Some((_, "")) => Ok(None),
        Some((_, digits)) => match digits.parse::<u16>() {
            Ok(0) | Err(_) => Err(BadUrlReason::BadPort),
            Ok(port) => Ok(Some(port)),
        },
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("http://proxy.corp:3128", ProxyScheme::Http, "proxy.corp", 3128, false ; "explicit port")]
    #[test_case("proxy.corp:3128", ProxyScheme::Http, "proxy.corp", 3128, false ; "no scheme means http")]
    #[test_case("http://proxy.corp", ProxyScheme::Http, "proxy.corp", 1080, true ; "curl defaults http to 1080")]
    #[test_case("http://proxy.corp:80", ProxyScheme::Http, "proxy.corp", 80, false ; "explicit well-known port kept")]
    #[test_case("https://proxy.corp", ProxyScheme::Https, "proxy.corp", 443, true ; "https proxy defaults to 443")]
    #[test_case("socks5h://proxy.corp", ProxyScheme::Socks5h, "proxy.corp", 1080, true ; "socks defaults to 1080")]
    #[test_case("HTTP://PROXY.Corp:8080/", ProxyScheme::Http, "proxy.corp", 8080, false ; "case folded and path ignored")]
    #[test_case("http://[::1]:3128", ProxyScheme::Http, "::1", 3128, false ; "ipv6 literal")]
    #[test_case("http://u:p@10.0.0.1:8080", ProxyScheme::Http, "10.0.0.1", 8080, false ; "credentials and ipv4")]
    #[test_case("http://proxy.corp:", ProxyScheme::Http, "proxy.corp", 1080, true ; "empty port is the default")]
    fn parses(raw: &str, scheme: ProxyScheme, host: &str, port: u16, defaulted: bool) {
        let url = ProxyUrl::parse(raw).unwrap();
        assert_eq!(
            (url.scheme, url.host.as_str(), url.port, url.port_defaulted),
            (scheme, host, port, defaulted)
        );
    }

    #[test_case("htp://proxy:8080", &BadUrlReason::UnsupportedScheme("htp".into()) ; "typo in scheme")]
    #[test_case("ftp://proxy:8080", &BadUrlReason::UnsupportedScheme("ftp".into()) ; "ftp scheme")]
    #[test_case("http://", &BadUrlReason::MissingHost ; "nothing after scheme")]
    #[test_case("http://:8080", &BadUrlReason::MissingHost ; "port without host")]
    #[test_case("socks5://", &BadUrlReason::MissingHost ; "non special scheme without host")]
    #[test_case("http://proxy:99999", &BadUrlReason::BadPort ; "port too large")]
    #[test_case("http://proxy:0", &BadUrlReason::BadPort ; "port zero")]
    #[test_case("http://proxy:80a", &BadUrlReason::BadPort ; "port not a number")]
    #[test_case("u:s3cret@x://proxy", &BadUrlReason::Malformed("invalid scheme".into()) ; "garbage scheme not echoed")]
    fn rejects(raw: &str, reason: &BadUrlReason) {
        assert_eq!(&ProxyUrl::parse(raw).unwrap_err(), reason);
    }

    #[test]
    fn credentials_are_decoded_and_never_rendered() {
        let url = ProxyUrl::parse("http://al%40ce:p%3Ass@proxy:3128").unwrap();
        let auth = url.auth.as_ref().unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.expose().as_str()),
            ("al@ce", "p:ss")
        );
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            format!("{auth:?}"),
            serde_json::to_string(&url).unwrap(),
        ] {
            assert!(
                !shown.contains("p:ss") && !shown.contains("p%3Ass"),
                "{shown}"
            );
        }
        assert_eq!(url.to_string(), "http://al@ce:***@proxy:3128");
    }

    #[test_case("http://user@proxy:3128", "http://user@proxy:3128" ; "user without password")]
    #[test_case("http://[::1]:3128", "http://[::1]:3128" ; "ipv6 bracketed again")]
    fn displays(raw: &str, shown: &str) {
        assert_eq!(ProxyUrl::parse(raw).unwrap().to_string(), shown);
    }

    #[test_case("http://u:pw@h:1", "http://u:***@h:1" ; "password redacted")]
    #[test_case("u:p@w@h", "u:***@h" ; "last at sign ends userinfo")]
    #[test_case("http://u@h", "http://u@h" ; "user only kept")]
    #[test_case("http://h:1", "http://h:1" ; "no userinfo")]
    fn redacts(raw: &str, shown: &str) {
        assert_eq!(redact(raw), shown);
    }
}
