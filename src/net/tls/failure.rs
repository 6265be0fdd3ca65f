//! Why a TLS handshake failed, told apart as precisely as rustls and the socket allow.
//!
//! Measuring only: each variant is a fact about the handshake. Which verdict and catalog row a
//! failure earns is the `tls.account` check's call.

use std::io;

use rustls::{AlertDescription, CertificateError, PeerIncompatible};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::CertInfo;

/// How a handshake failed. Serialises as an object tagged by `kind` (the same string as
/// [`TlsFailure::kind`]), e.g. `{"kind":"hostname_mismatch","presented":["localhost"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, strum::IntoStaticStr)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TlsFailure {
    /// A certificate in the chain is past its notAfter.
    #[error("certificate expired at {}", rfc3339(*not_after))]
    Expired {
        /// The notAfter of the certificate that failed.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// A certificate in the chain is before its notBefore (or this machine's clock is behind).
    #[error("certificate not valid before {}", rfc3339(*not_before))]
    NotYetValid {
        /// The notBefore of the certificate that failed.
        #[serde(with = "time::serde::rfc3339")]
        not_before: OffsetDateTime,
    },
    /// The end-entity certificate does not name the host we asked for.
    #[error("certificate is not valid for this host; it names {}", presented.join(", "))]
    HostnameMismatch {
        /// The names the certificate does carry.
        presented: Vec<String>,
    },
    /// The chain leads to no trusted root: its top certificate is self-issued, or a CA
    /// certificate whose root is not trusted (a private or unknown CA).
    #[error("certificate chain leads to no trusted root (top issuer: {issuer})")]
    UnknownIssuer {
        /// Issuer of the topmost certificate presented.
        issuer: String,
    },
    /// The top certificate presented is an end-entity certificate, not self-issued, and its issuer
    /// is not a trusted root: the server did not send that issuer (it was configured without its
    /// intermediate). The AIA caIssuers extension, when present, says where it is published.
    #[error(
        "server did not send the certificate of its issuer {issuer}{}",
        published_at(ca_issuers)
    )]
    IncompleteChain {
        /// The issuer the server left out.
        issuer: String,
        /// Where that issuer can be downloaded (AIA caIssuers URLs); often empty.
        ca_issuers: Vec<String>,
    },
    /// No common TLS version (alert `protocol_version`; `handshake_failure` or
    /// `insufficient_security` before any certificate; a `ServerHello` with an unusable version).
    #[error("no common TLS version: {detail}")]
    ProtocolVersion {
        /// What the server did, e.g. `server sent alert ProtocolVersion`.
        detail: String,
    },
    /// The connection was reset or closed after our `ClientHello` without a single byte of answer:
    /// SNI filtering or a middlebox.
    #[error("connection dropped right after the ClientHello: {detail}")]
    ResetAfterHello {
        /// The socket error (reset, or end of stream).
        detail: String,
    },
    /// The handshake did not finish within the timeout.
    #[error("handshake timed out ({})", if *server_answered { "the server answered, then stalled" } else { "no answer to the ClientHello" })]
    Timeout {
        /// Whether any byte came back (false: a silent peer that swallows the `ClientHello`).
        server_answered: bool,
    },
    /// The peer answered the `ClientHello` in plain HTTP: a proxy that speaks plain HTTP (an
    /// `https://` URL for it), or a block page sent inside an open tunnel.
    #[error("the answer is plain HTTP, not TLS: {status_line}{}", title.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())]
    HttpAnswer {
        /// The status line, e.g. `HTTP/1.1 403 Forbidden`.
        status_line: String,
        /// The HTML page's `<title>`, when the page carries one.
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// Anything else, with rustls's or the socket's own words.
    #[error("{detail}")]
    Other {
        /// The error text.
        detail: String,
    },
}

impl TlsFailure {
    /// A stable identifier for the variant (`expired`, `not_yet_valid`, `hostname_mismatch`,
    /// `unknown_issuer`, `incomplete_chain`, `protocol_version`, `reset_after_hello`, `timeout`,
    /// `http_answer`, `other`), equal to the JSON `kind` tag.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.into()
    }
}

/// Where a missing issuer is published, for the message (nothing when the AIA says nothing).
fn published_at(ca_issuers: &[String]) -> String {
    if ca_issuers.is_empty() {
        String::new()
    } else {
        format!(" (published at {})", ca_issuers.join(", "))
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn from_unix(t: rustls::pki_types::UnixTime) -> OffsetDateTime {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// What the probe observed besides the error itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    /// At least one byte came back from the server.
    pub(crate) server_answered: bool,
    /// The certificate message arrived (the handshake got past `ServerHello`).
    pub(crate) certificate_seen: bool,
    /// The parsed chain, end entity first.
    pub(crate) chain: &'a [CertInfo],
}

/// Classifies a failed handshake. `verifier_error` is what the certificate verifier said, when it
/// ran; otherwise the rustls error inside `err` (tokio-rustls wraps it in `InvalidData`) or the
/// socket error itself decides.
pub(crate) fn classify(
    err: &io::Error,
    verifier_error: Option<&rustls::Error>,
    seen: Observed<'_>,
) -> TlsFailure {
    let tls_error = verifier_error.or_else(|| {
        err.get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
    });
    match tls_error {
        Some(tls_error) => from_rustls(tls_error, seen),
        None => from_io(err, seen.server_answered),
    }
}

fn from_rustls(err: &rustls::Error, seen: Observed<'_>) -> TlsFailure {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(cert_error) => from_certificate_error(cert_error, err, seen.chain),
        E::AlertReceived(AlertDescription::ProtocolVersion) => TlsFailure::ProtocolVersion {
            detail: "server sent alert ProtocolVersion".to_owned(),
        },
        // Before the certificate these alerts answer the hello, i.e. version or suite negotiation;
        // after it they are about something else (a client certificate, for instance).
        E::AlertReceived(
            alert @ (AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity),
        ) if !seen.certificate_seen => TlsFailure::ProtocolVersion {
            detail: format!("server sent alert {alert:?} in answer to the ClientHello"),
        },
        E::PeerIncompatible(
            why @ (PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled),
        ) => TlsFailure::ProtocolVersion {
            detail: format!("server is incompatible: {why:?}"),
        },
        other => TlsFailure::Other {
            detail: other.to_string(),
        },
    }
}

fn from_certificate_error(
    cert_error: &CertificateError,
    err: &rustls::Error,
    chain: &[CertInfo],
) -> TlsFailure {
    // rustls's webpki verifier reports the *Context variants; the bare ones come from other
    // verifiers and are completed from the parsed chain.
    match cert_error {
        CertificateError::ExpiredContext { not_after, .. } => TlsFailure::Expired {
            not_after: from_unix(*not_after),
        },
        CertificateError::NotValidYetContext { not_before, .. } => TlsFailure::NotYetValid {
            not_before: from_unix(*not_before),
        },
        CertificateError::Expired => match chain.iter().map(|c| c.not_after).min() {
            Some(not_after) => TlsFailure::Expired { not_after },
            None => other(err),
        },
        CertificateError::NotValidYet => match chain.iter().map(|c| c.not_before).max() {
            Some(not_before) => TlsFailure::NotYetValid { not_before },
            None => other(err),
        },
        // webpki's `presented` holds Debug renderings (`DnsName("a.example")`); the parsed
        // leaf has the plain names, so it wins whenever it could be parsed.
        CertificateError::NotValidForNameContext { presented, .. } => {
            TlsFailure::HostnameMismatch {
                presented: chain
                    .first()
                    .map_or_else(|| presented.clone(), |leaf| leaf.sans.clone()),
            }
        }
        CertificateError::NotValidForName => TlsFailure::HostnameMismatch {
            presented: chain.first().map(|c| c.sans.clone()).unwrap_or_default(),
        },
        CertificateError::UnknownIssuer => unknown_or_incomplete(chain),
        _ => other(err),
    }
}

/// An untrusted chain that stops at an end-entity certificate which is not self-issued lacks
/// that certificate's issuer: the server left out its intermediate, whether or not the AIA says
/// where to fetch it. A chain that stops at a CA certificate is complete as servers send chains
/// (the root is never needed): it is the root that is not trusted, as with a self-issued top.
fn unknown_or_incomplete(chain: &[CertInfo]) -> TlsFailure {
    match chain.last() {
        Some(top) if !top.self_issued && !top.is_ca => TlsFailure::IncompleteChain {
            issuer: top.issuer.clone(),
            ca_issuers: top.aia_ca_issuers.clone(),
        },
        top => TlsFailure::UnknownIssuer {
            issuer: top.map(|c| c.issuer.clone()).unwrap_or_default(),
        },
    }
}

fn from_io(err: &io::Error, server_answered: bool) -> TlsFailure {
    use io::ErrorKind as K;
    match err.kind() {
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe if !server_answered => {
            TlsFailure::ResetAfterHello {
                detail: err.to_string(),
            }
        }
        K::UnexpectedEof if !server_answered => TlsFailure::ResetAfterHello {
            detail: format!("connection closed by the peer ({err})"),
        },
        _ if server_answered => TlsFailure::Other {
            detail: format!("{err} (after the server had answered)"),
        },
        _ => TlsFailure::Other {
            detail: err.to_string(),
        },
    }
}

/// How much of a status line or title is quoted.
const MAX_QUOTE: usize = 160;

/// [`TlsFailure::HttpAnswer`] when the first bytes the peer sent are an HTTP response.
pub(crate) fn http_answer(head: &[u8]) -> Option<TlsFailure> {
    if !head.starts_with(b"HTTP/") {
        return None;
    }
    let line_end = head
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(head.len());
    let lower = head.to_ascii_lowercase();
    let find = |needle: &[u8], from: usize| {
        lower
            .get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let title = find(b"<title", 0)
        .and_then(|open| find(b">", open))
        .and_then(|gt| find(b"</title", gt).map(|close| &head[gt + 1..close]))
        .map(|t| {
            quote(
                String::from_utf8_lossy(t)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .as_bytes(),
            )
        })
        .filter(|t| !t.is_empty());
    Some(TlsFailure::HttpAnswer {
        status_line: quote(&head[..line_end]),
        title,
    })
}

/// Printable ASCII as is, everything else escaped, cut to [`MAX_QUOTE`] characters.
fn quote(bytes: &[u8]) -> String {
    let mut text = bytes.escape_ascii().to_string();
    if text.len() > MAX_QUOTE {
        text.truncate(MAX_QUOTE);
        text.push('…');
    }
    text
}

fn other(err: &rustls::Error) -> TlsFailure {
    TlsFailure::Other {
        detail: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{ServerName, UnixTime};
    use test_case::test_case;
    use time::macros::datetime;

    fn cert(issuer: &str, self_issued: bool, aia: &[&str]) -> CertInfo {
        CertInfo {
            subject: "CN=x".to_owned(),
            issuer: issuer.to_owned(),
            sans: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            not_before: datetime!(2026-01-01 00:00 UTC),
            not_after: datetime!(2027-01-01 00:00 UTC),
            sha256: String::new(),
            is_ca: false,
            self_issued,
            aia_ca_issuers: aia.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn cert_err(e: CertificateError) -> rustls::Error {
        rustls::Error::InvalidCertificate(e)
    }

    fn unix(t: OffsetDateTime) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(t.unix_timestamp()).unwrap(),
        ))
    }

    const AIA: &str = "http://pki.example/int.cer";

    #[test_case(&cert_err(CertificateError::ExpiredContext { time: unix(datetime!(2027-02-01 00:00 UTC)), not_after: unix(datetime!(2027-01-01 00:00 UTC)) }), &[], "expired" ; "expired with context")]
    #[test_case(&cert_err(CertificateError::Expired), &[cert("CN=r", true, &[])], "expired" ; "bare expired")]
    #[test_case(&cert_err(CertificateError::Expired), &[], "other" ; "bare expired without chain")]
    #[test_case(&cert_err(CertificateError::NotValidYetContext { time: unix(datetime!(2025-01-01 00:00 UTC)), not_before: unix(datetime!(2026-01-01 00:00 UTC)) }), &[], "not_yet_valid" ; "not yet valid with context")]
    #[test_case(&cert_err(CertificateError::NotValidYet), &[cert("CN=r", true, &[])], "not_yet_valid" ; "bare not yet valid")]
    #[test_case(&cert_err(CertificateError::NotValidForNameContext { expected: ServerName::try_from("a.example").unwrap(), presented: vec!["b.example".to_owned()] }), &[], "hostname_mismatch" ; "name with context")]
    #[test_case(&cert_err(CertificateError::NotValidForName), &[cert("CN=r", false, &[])], "hostname_mismatch" ; "bare name")]
    #[test_case(&cert_err(CertificateError::UnknownIssuer), &[cert("CN=Rogue Root", true, &[])], "unknown_issuer" ; "self issued top")]
    #[test_case(&cert_err(CertificateError::UnknownIssuer), &[cert("CN=Int", false, &[])], "incomplete_chain" ; "no aia: still the missing issuer")]
    #[test_case(&cert_err(CertificateError::UnknownIssuer), &[cert("CN=Int", false, &[AIA])], "incomplete_chain" ; "aia names the missing issuer")]
    #[test_case(&cert_err(CertificateError::UnknownIssuer), &[cert("CN=Int", false, &[AIA]), cert("CN=Root", true, &[])], "unknown_issuer" ; "top of chain decides")]
    #[test_case(&cert_err(CertificateError::UnknownIssuer), &[cert("CN=Int", false, &[]), CertInfo { is_ca: true, ..cert("CN=Private Root", false, &[AIA]) }], "unknown_issuer" ; "intermediate sent: the root is untrusted")]
    #[test_case(&cert_err(CertificateError::BadSignature), &[], "other" ; "bad signature")]
    #[test_case(&rustls::Error::AlertReceived(AlertDescription::ProtocolVersion), &[], "protocol_version" ; "alert protocol version")]
    #[test_case(&rustls::Error::AlertReceived(AlertDescription::HandshakeFailure), &[], "protocol_version" ; "handshake failure before certificate")]
    #[test_case(&rustls::Error::AlertReceived(AlertDescription::HandshakeFailure), &[cert("CN=r", false, &[])], "other" ; "handshake failure after certificate")]
    #[test_case(&rustls::Error::AlertReceived(AlertDescription::InternalError), &[], "other" ; "other alert")]
    #[test_case(&rustls::Error::PeerIncompatible(PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig), &[], "protocol_version" ; "server chose a version we did not offer")]
    #[test_case(&rustls::Error::PeerIncompatible(PeerIncompatible::NoKxGroupsInCommon), &[], "other" ; "no kx group")]
    fn classifies_rustls_errors(err: &rustls::Error, chain: &[CertInfo], kind: &str) {
        let seen = Observed {
            server_answered: true,
            certificate_seen: !chain.is_empty(),
            chain,
        };
        // Both paths lead to the same answer: the verifier's record and the wrapped io error.
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, err.clone());
        let from_io = classify(&wrapped, None, seen);
        let from_verifier = classify(&io::Error::other("ignored"), Some(err), seen);
        assert_eq!(from_io, from_verifier);
        assert_eq!(from_io.kind(), kind, "{from_io:?}");
    }

    #[test_case(io::ErrorKind::ConnectionReset, false, "reset_after_hello" ; "reset before any answer")]
    #[test_case(io::ErrorKind::UnexpectedEof, false, "reset_after_hello" ; "eof before any answer")]
    #[test_case(io::ErrorKind::BrokenPipe, false, "reset_after_hello" ; "broken pipe")]
    #[test_case(io::ErrorKind::ConnectionReset, true, "other" ; "reset after an answer")]
    #[test_case(io::ErrorKind::PermissionDenied, false, "other" ; "unrelated io error")]
    fn classifies_socket_errors(kind: io::ErrorKind, server_answered: bool, expected: &str) {
        let seen = Observed {
            server_answered,
            certificate_seen: false,
            chain: &[],
        };
        assert_eq!(
            classify(&io::Error::from(kind), None, seen).kind(),
            expected
        );
    }

    #[test]
    fn context_fields_are_kept() {
        let seen = Observed {
            server_answered: true,
            certificate_seen: true,
            chain: &[cert("CN=Int", false, &[AIA])],
        };
        let expired = cert_err(CertificateError::ExpiredContext {
            time: unix(datetime!(2027-02-01 00:00 UTC)),
            not_after: unix(datetime!(2027-01-01 00:00 UTC)),
        });
        assert_eq!(
            classify(&io::Error::other("x"), Some(&expired), seen),
            TlsFailure::Expired {
                not_after: datetime!(2027-01-01 00:00 UTC)
            }
        );
        let name_with_context = cert_err(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("a.example").unwrap(),
            presented: vec![r#"DnsName("localhost")"#.to_owned()],
        });
        assert_eq!(
            classify(&io::Error::other("x"), Some(&name_with_context), seen),
            TlsFailure::HostnameMismatch {
                presented: vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
            }
        );
        let name = cert_err(CertificateError::NotValidForName);
        assert_eq!(
            classify(&io::Error::other("x"), Some(&name), seen),
            TlsFailure::HostnameMismatch {
                presented: vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
            }
        );
        let unknown = cert_err(CertificateError::UnknownIssuer);
        assert_eq!(
            classify(&io::Error::other("x"), Some(&unknown), seen),
            TlsFailure::IncompleteChain {
                issuer: "CN=Int".to_owned(),
                ca_issuers: vec![AIA.to_owned()]
            }
        );
    }

    #[test_case(&TlsFailure::Expired { not_after: datetime!(2027-01-01 00:00 UTC) }, r#"{"kind":"expired","not_after":"2027-01-01T00:00:00Z"}"# ; "expired")]
    #[test_case(&TlsFailure::IncompleteChain { issuer: "CN=Int".to_owned(), ca_issuers: vec![] }, r#"{"kind":"incomplete_chain","issuer":"CN=Int","ca_issuers":[]}"# ; "incomplete chain")]
    #[test_case(&TlsFailure::Timeout { server_answered: false }, r#"{"kind":"timeout","server_answered":false}"# ; "timeout")]
    #[test_case(&TlsFailure::Other { detail: "x".to_owned() }, r#"{"kind":"other","detail":"x"}"# ; "other")]
    fn serialises_with_kind_tag(failure: &TlsFailure, json: &str) {
        assert_eq!(serde_json::to_string(failure).unwrap(), json);
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(value["kind"], failure.kind());
    }

    #[test_case(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\r\n<html><head><TITLE>\n Access  Denied </title>", "HTTP/1.1 403 Forbidden", Some("Access Denied") ; "block page")]
    #[test_case(b"HTTP/1.1 400 Bad Request\r\nServer: squid\r\n\r\n", "HTTP/1.1 400 Bad Request", None ; "no page")]
    #[test_case(b"HTTP/1.0 400 Bad\x01\n\n<title></title>", "HTTP/1.0 400 Bad\\x01", None ; "empty title and control bytes")]
    fn quotes_an_http_answer(head: &[u8], status_line: &str, title: Option<&str>) {
        assert_eq!(
            http_answer(head),
            Some(TlsFailure::HttpAnswer {
                status_line: status_line.to_owned(),
                title: title.map(str::to_owned),
            })
        );
    }

    #[test]
    fn tls_bytes_are_not_an_http_answer() {
        assert_eq!(http_answer(b"\x16\x03\x03\x00\x7a"), None);
    }

    #[test_case(&[], "server did not send the certificate of its issuer CN=Int" ; "without aia")]
    #[test_case(&[AIA], "server did not send the certificate of its issuer CN=Int (published at http://pki.example/int.cer)" ; "with aia")]
    fn incomplete_chain_names_the_issuer(ca_issuers: &[&str], text: &str) {
        let failure = TlsFailure::IncompleteChain {
            issuer: "CN=Int".to_owned(),
            ca_issuers: ca_issuers.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert_eq!(failure.to_string(), text);
    }

    #[test]
    fn display_is_one_readable_line() {
        let failure = TlsFailure::Expired {
            not_after: datetime!(2027-01-01 00:00 UTC),
        };
        assert_eq!(
            failure.to_string(),
            "certificate expired at 2027-01-01T00:00:00Z"
        );
    }
}
