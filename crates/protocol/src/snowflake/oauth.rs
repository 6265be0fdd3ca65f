//! OAuth 2.0 as Snowflake's connectors speak it to an identity provider (identity provider): the
//! client-credentials grant (RFC 6749 §4.4) with the client authenticated by HTTP Basic
//! (§2.3.1, what `snowflake-connector-python` sends), the token answer (§5.1) and its errors
//! (§5.2). Shared by the `auth.oauth` check and the emulator's token endpoint.
//!
//! Snowflake's own answers to a bad OAuth access token (login path, measured by Snowflake and
//! quoted in the Kafka connector) are in [`codes`](super::rest::codes): 390303, 390309, 390318.

use serde::{Deserialize, Serialize};

/// The grant type of the client-credentials flow.
pub const CLIENT_CREDENTIALS_GRANT: &str = "client_credentials";

/// The most of an access token netcheck keeps: real ones are a few KB at most.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The error codes RFC 6749 §5.2 defines for the token endpoint.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum GrantError {
    /// A parameter is missing, repeated or malformed.
    InvalidRequest,
    /// The client id or secret is wrong (or the client is unknown).
    InvalidClient,
    /// The grant (a refresh token, a code) is invalid, expired or revoked.
    InvalidGrant,
    /// This client may not use this grant type.
    UnauthorizedClient,
    /// The identity provider does not support this grant type.
    UnsupportedGrantType,
    /// The scope is unknown, malformed or more than the client may have.
    InvalidScope,
}

impl GrantError {
    /// The status RFC 6749 gives it: 401 for a client that failed to authenticate with a Basic
    /// header, 400 for everything else.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            _ => 400,
        }
    }
}

/// The body of a client-credentials token request.
#[must_use]
pub fn client_credentials_form(scope: Option<&str>) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", CLIENT_CREDENTIALS_GRANT);
    if let Some(scope) = scope.filter(|s| !s.trim().is_empty()) {
        form.append_pair("scope", scope);
    }
    form.finish()
}

/// A successful token answer (RFC 6749 §5.1): only what netcheck uses.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token (a secret: register it before anything can print it).
    pub access_token: String,
    /// `Bearer`, by every identity provider Snowflake supports.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// The scope granted, when it differs from the one asked.
    #[serde(default)]
    pub scope: Option<String>,
}

/// Why a 2xx token answer is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenAnswerError {
    /// Not JSON at all: an HTML login page, a proxy's page.
    #[error("the answer is not JSON")]
    NotJson,
    /// JSON without an `access_token` string; the keys it has (never their values, which may
    /// be tokens under other names).
    #[error("the JSON answer has no access_token (its keys: {0})")]
    NoToken(String),
    /// An `access_token` longer than any real one.
    #[error("the access_token is {0} bytes, longer than any real token")]
    TooLong(usize),
}

/// Reads a 2xx token answer. Every `*token` string in it is registered as a secret first, so
/// nothing said about the answer afterwards, whatever is wrong with it, can quote one.
/// `expires_in` is read as identity providers send it: a number, or a number in a string.
pub fn parse_token_response(body: &str) -> Result<TokenResponse, TokenAnswerError> {
    let value: serde_json::Value =
        serde_json::from_str(body.trim()).map_err(|_| TokenAnswerError::NotJson)?;
    let fields = value.as_object().cloned().unwrap_or_default();
    for (key, v) in &fields {
        if let (true, Some(token)) = (key.ends_with("token"), v.as_str()) {
            crate::secret::register(token);
        }
    }
    let text = |key: &str| fields.get(key).and_then(serde_json::Value::as_str);
    let access_token = text("access_token")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
            TokenAnswerError::NoToken(keys.join(", "))
        })?;
    if access_token.len() > MAX_TOKEN_LEN {
        return Err(TokenAnswerError::TooLong(access_token.len()));
    }
    // Lifetimes are whole seconds; a fractional one is truncated.
    #[allow(clippy::cast_possible_truncation)]
    let expires_in = fields.get("expires_in").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .or_else(|| v.as_str()?.trim().parse().ok())
    });
    Ok(TokenResponse {
        access_token: access_token.to_owned(),
        token_type: text("token_type").map(str::to_owned),
        expires_in,
        scope: text("scope").map(str::to_owned),
    })
}

/// The client id and secret of an HTTP Basic header (`Basic base64(id:secret)`), as the token
/// endpoint reads it. RFC 6749 §2.3.1 form-encodes both before joining them; connectors send
/// them as they are, and ids and secrets rarely hold characters where the two differ.
#[must_use]
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = header.trim().strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test]
    fn form_carries_the_grant_and_the_scope() {
        assert_eq!(
            client_credentials_form(Some("session:role:R")),
            "grant_type=client_credentials&scope=session%3Arole%3AR"
        );
        assert_eq!(
            client_credentials_form(None),
            "grant_type=client_credentials"
        );
    }

    #[test_case(r#"{"access_token":"abcd","token_type":"Bearer","expires_in":600}"# => Ok(Some(600)); "good")]
    #[test_case("<html>login</html>" => Err(TokenAnswerError::NotJson); "page")]
    #[test_case(r#"{"access_token":"abcd","expires_in":"3599"}"# => Ok(Some(3599)); "lifetime as a string")]
    #[test_case(r#"{"access_token":"abcd","expires_in":59.9}"# => Ok(Some(59)); "lifetime as a float")]
    #[test_case(r#"{"token_type":"Bearer"}"# => Err(TokenAnswerError::NoToken("token_type".into())); "no token")]
    #[test_case(r#"{"access_token":""}"# => Err(TokenAnswerError::NoToken("access_token".into())); "empty token")]
    fn token_answers(body: &str) -> Result<Option<i64>, TokenAnswerError> {
        parse_token_response(body).map(|r| r.expires_in)
    }

    #[test]
    fn every_token_in_an_unusable_answer_is_a_secret_first() {
        let body = r#"{"acces_token":"opaque-token-value-1","refresh_token":"opaque-refresh-2"}"#;
        let Err(err) = parse_token_response(body) else {
            panic!("an answer without access_token was accepted")
        };
        assert_eq!(
            err,
            TokenAnswerError::NoToken("acces_token, refresh_token".into())
        );
        let text = format!("{err}: {body}");
        let said = crate::secret::scrub(&text);
        assert!(
            !said.contains("opaque-token-value-1") && !said.contains("opaque-refresh-2"),
            "{said}"
        );
    }

    #[test]
    fn basic_header_round_trips() {
        use base64::Engine as _;
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("id:se:cret")
        );
        assert_eq!(
            parse_basic(&header),
            Some(("id".to_owned(), "se:cret".to_owned()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
    }

    #[test]
    fn grant_errors_spell_as_rfc_6749() {
        assert_eq!(GrantError::InvalidClient.to_string(), "invalid_client");
        assert_eq!(
            "unsupported_grant_type".parse::<GrantError>(),
            Ok(GrantError::UnsupportedGrantType)
        );
        assert_eq!(GrantError::InvalidClient.status(), 401);
        assert_eq!(GrantError::InvalidScope.status(), 400);
    }
}
