//! The connection's OAuth credentials, as Snowflake's connectors spell them: `authenticator =
//! "oauth"` with `token` or `token_file_path` (a token the user already has), or `authenticator
//! = "oauth_client_credentials"` with `oauth_client_id`, `oauth_client_secret`,
//! `oauth_token_request_url` and an optional `oauth_scope` (netcheck asks the identity provider itself).
//!
//! The token file is read like the key file: bounded, regular files only, loose permissions a
//! warning. Every secret is registered the moment it is read, and what the report shows is where
//! the token came from ([`OAuthCredentials::origin`]), never the token.

use std::path::Path;

use super::key::{file_mode, permission_warning, read_credential_file, usage};
use super::{Authenticator, Connection, Source, Sourced};
use crate::error::Error;
use crate::local_file::FileKind;
use crate::secret::Secret;
use crate::snowflake::account::Endpoint;

/// How netcheck gets the OAuth access token.
#[derive(Debug, Clone)]
pub enum OAuthGrant {
    /// The user's own token (`token`, or the content of `token_file_path`).
    Token(Secret<String>),
    /// The client-credentials grant at the identity provider's token endpoint.
    ClientCredentials {
        /// `oauth_client_id`.
        client_id: String,
        /// `oauth_client_secret`.
        client_secret: Secret<String>,
        /// `oauth_token_request_url`, as given.
        url: String,
        /// Its host and port: a destination of its own (host role `idp`).
        endpoint: Endpoint,
        /// `oauth_scope`, else `session:role:<ROLE>` when a role is set.
        scope: Option<String>,
    },
}

/// The OAuth side of a connection, ready for the checks.
#[derive(Debug, Clone)]
pub struct OAuthCredentials {
    /// How the token is obtained.
    pub grant: OAuthGrant,
    /// Where the token comes from, for the report: `token_file_path ~/t (0600)`, `token from
    /// $SNOWFLAKE_TOKEN`, `client credentials from https://idp…/token`. Never the token.
    pub origin: String,
    /// Findings that are not errors (a token file others can read).
    pub warnings: Vec<String>,
}

/// Loads the OAuth credentials of a connection whose authenticator is `OAUTH` or
/// `OAUTH_CLIENT_CREDENTIALS` (`None` for any other). A missing setting, an unreadable token
/// file or a token URL that is not `https://` is an [`Error::Usage`] naming the key.
pub fn load_oauth(conn: &Connection) -> Result<Option<OAuthCredentials>, Error> {
    match conn.authenticator.value {
        Authenticator::OAuth => user_token(conn).map(Some),
        Authenticator::OAuthClientCredentials => client_credentials(conn).map(Some),
        _ => Ok(None),
    }
}

fn user_token(conn: &Connection) -> Result<OAuthCredentials, Error> {
    // The token itself wins over a file, as the connectors read them.
    if let Some(token) = &conn.token {
        return Ok(OAuthCredentials {
            grant: OAuthGrant::Token(token.value.clone()),
            origin: format!("token from {}", token.source),
            warnings: Vec::new(),
        });
    }
    let Some(file) = &conn.token_file_path else {
        return Err(Error::Usage(format!(
            "authenticator OAUTH ({}) needs a token: set token_file_path (or --token-file-path) \
             or the connection's token",
            conn.authenticator.source
        )));
    };
    let path = &file.value;
    let what = "OAuth token file";
    let text = read_credential_file(file, FileKind::TokenFile, what, "not a text file")?;
    let token = text.trim();
    if token.is_empty() {
        return Err(usage(file, what, &"the file is empty"));
    }
    Ok(OAuthCredentials {
        grant: OAuthGrant::Token(Secret::new(token.to_owned())),
        origin: file_origin(path, &file.source),
        warnings: permission_warning(path, what).into_iter().collect(),
    })
}

/// `token_file_path /home/u/t (0600)`; the source is named when it is not a file key.
fn file_origin(path: &Path, source: &Source) -> String {
    let mode = file_mode(path)
        .map(|m| format!(" ({m:04o})"))
        .unwrap_or_default();
    match source {
        Source::File { .. } | Source::Default => {
            format!("token_file_path {}{mode}", path.display())
        }
        other => format!("token_file_path {}{mode} from {other}", path.display()),
    }
}

fn client_credentials(conn: &Connection) -> Result<OAuthCredentials, Error> {
    let missing = |key: &str| {
        Error::Usage(format!(
            "authenticator OAUTH_CLIENT_CREDENTIALS ({}) needs {key}",
            conn.authenticator.source
        ))
    };
    let client_id = conn
        .oauth_client_id
        .as_ref()
        .ok_or_else(|| missing("oauth_client_id"))?;
    let client_secret = conn
        .oauth_client_secret
        .as_ref()
        .ok_or_else(|| missing("oauth_client_secret"))?;
    let url = conn
        .oauth_token_request_url
        .as_ref()
        .ok_or_else(|| missing("oauth_token_request_url"))?;
    let endpoint = token_endpoint(url)?;
    // The HTTP Basic header carries the secret in base64: a server or proxy echoing the request
    // back must find it scrubbed too.
    {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            client_id.value,
            client_secret.value.expose()
        ));
        crate::secret::register(&basic);
    }
    let scope = conn
        .oauth_scope
        .as_ref()
        .map(|s| s.value.clone())
        .or_else(|| {
            conn.role
                .as_ref()
                .map(|r| format!("session:role:{}", r.value.to_ascii_uppercase()))
        });
    Ok(OAuthCredentials {
        origin: format!("client credentials from {}", url.value),
        grant: OAuthGrant::ClientCredentials {
            client_id: client_id.value.clone(),
            client_secret: client_secret.value.clone(),
            url: url.value.clone(),
            endpoint,
            scope,
        },
        warnings: Vec::new(),
    })
}

/// The token endpoint's host and port. Only `https://`: the request carries the client secret.
fn token_endpoint(url: &Sourced<String>) -> Result<Endpoint, Error> {
    let bad = |why: &str| {
        // Quoted without a user, password or query, which this very error may be about.
        let shown = url::Url::parse(&url.value).map_or_else(
            |_| url.value.clone(),
            |u| {
                format!(
                    "{}://{}{}",
                    u.scheme(),
                    u.host_str().unwrap_or_default(),
                    u.path()
                )
            },
        );
        Error::Usage(format!(
            "oauth_token_request_url `{shown}` ({}): {why}",
            url.source
        ))
    };
    let parsed = url::Url::parse(&url.value).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "https" {
        return Err(bad(
            "must be an https:// URL (the request carries the client secret)",
        ));
    }
    // Credentials belong in oauth_client_id/oauth_client_secret, where they are kept secret; a
    // URL is shown in the report.
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
        return Err(bad(
            "must not carry a user, a password or a query (use oauth_client_id and oauth_client_secret)",
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| bad("has no host"))?
        .trim_matches(['[', ']']);
    Ok(Endpoint::for_host(host, parsed.port().unwrap_or(443)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sourced<T>(value: T) -> Sourced<T> {
        Sourced {
            value,
            source: Source::Env {
                name: "SNOWFLAKE_X".into(),
            },
        }
    }

    fn client_conn(url: &str) -> Connection {
        Connection {
            authenticator: sourced(Authenticator::OAuthClientCredentials),
            oauth_client_id: Some(sourced("cid".to_owned())),
            oauth_client_secret: Some(sourced(Secret::new("client-secret-0".to_owned()))),
            oauth_token_request_url: Some(sourced(url.to_owned())),
            role: Some(sourced("analyst".to_owned())),
            ..Connection::default()
        }
    }

    #[test]
    fn client_credentials_name_the_idp_and_default_the_scope_to_the_role() {
        let creds = load_oauth(&client_conn("https://idp.example:8443/oauth2/token"))
            .unwrap()
            .unwrap();
        assert_eq!(
            creds.origin,
            "client credentials from https://idp.example:8443/oauth2/token"
        );
        let OAuthGrant::ClientCredentials {
            endpoint, scope, ..
        } = creds.grant
        else {
            panic!("client credentials expected");
        };
        assert_eq!(
            (endpoint.host.as_str(), endpoint.port),
            ("idp.example", 8443)
        );
        assert_eq!(scope.as_deref(), Some("session:role:ANALYST"));
    }

    #[test]
    fn a_plain_http_token_url_is_refused() {
        let err = load_oauth(&client_conn("http://idp.example/token"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn a_token_url_with_credentials_is_refused_without_quoting_them() {
        for url in [
            "https://id:hunter2-pw@idp.example/token",
            "https://idp.example/token?client_secret=hunter2-pw",
        ] {
            let err = load_oauth(&client_conn(url)).unwrap_err().to_string();
            assert!(err.contains("must not carry"), "{err}");
            assert!(!err.contains("hunter2-pw"), "{err}");
        }
    }

    #[test]
    fn the_basic_header_is_a_secret_once_the_credentials_are_read() {
        use base64::Engine as _;
        let conn = client_conn("https://idp.example/token");
        load_oauth(&conn).unwrap();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            conn.oauth_client_id.as_ref().unwrap().value,
            conn.oauth_client_secret.as_ref().unwrap().value.expose()
        ));
        let said = format!("you sent Authorization: Basic {basic}");
        let echoed = crate::secret::scrub(&said);
        assert!(!echoed.contains(&basic), "{echoed}");
    }

    #[test]
    fn a_missing_client_secret_is_named() {
        let conn = Connection {
            oauth_client_secret: None,
            ..client_conn("https://idp.example/token")
        };
        let err = load_oauth(&conn).unwrap_err().to_string();
        assert!(err.contains("oauth_client_secret"), "{err}");
    }

    #[test]
    fn oauth_without_a_token_is_a_usage_error() {
        let conn = Connection {
            authenticator: sourced(Authenticator::OAuth),
            ..Connection::default()
        };
        let err = load_oauth(&conn).unwrap_err().to_string();
        assert!(err.contains("token_file_path"), "{err}");
    }

    #[test]
    fn key_pair_has_no_oauth() {
        assert!(load_oauth(&Connection::default()).unwrap().is_none());
    }
}
