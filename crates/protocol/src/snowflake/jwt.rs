//! Key-pair JWTs: the claims a client sends, minting them, and the rules Snowflake applies when
//! it verifies one (with the detailed 3943xx reason it records for an administrator).
//!
//! The server answers every failure with the same `390144 JWT token is invalid`, so the detailed
//! reason is the valuable part: the emulator records it, and netcheck's checks predict it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;
use super::account::{jwt_account, jwt_user};
use super::keys::{KeyError, PrivateKey, PublicKey};

/// The longest lifetime (`exp - iat`) Snowflake accepts.
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// How far `iat` may be ahead of the server clock before the token counts as skewed.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The lifetime official clients use (`iat + 59 min`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(59 * 60);
/// Timestamps above this are milliseconds (10^11 s is the year 5138); the SDK sends ms.
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// The claims of a key-pair JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `ACCOUNT.USER.SHA256:fingerprint`.
    pub iss: String,
    /// `ACCOUNT.USER`.
    pub sub: String,
    /// Issue time, Unix seconds (or milliseconds, see [`Claims::in_milliseconds`]).
    pub iat: i64,
    /// Expiry time, same unit as `iat`.
    pub exp: i64,
    /// Optional role, `session:role:ROLE` (official Snowflake clients put the role here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
}

impl Claims {
    /// Claims for `account` (any identifier form) and `user`, issued at `issued_at` (Unix
    /// seconds) for `lifetime`, naming the key by its fingerprint.
    #[must_use]
    pub fn new(
        account: &str,
        user: &str,
        fingerprint: &str,
        issued_at: i64,
        lifetime: Duration,
    ) -> Self {
        let subject = format!("{}.{}", jwt_account(account), jwt_user(user));
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        Self {
            iss: format!("{subject}.{fingerprint}"),
            sub: subject,
            iat: issued_at,
            exp: issued_at.saturating_add(lifetime),
            scp: None,
        }
    }

    /// Adds the `scp` role claim.
    #[must_use]
    pub fn with_role(mut self, role: &str) -> Self {
        self.scp = Some(format!("session:role:{}", role.to_ascii_uppercase()));
        self
    }

    /// Converts `iat`/`exp` to milliseconds, as the official Snowpipe Streaming SDK sends them.
    #[must_use]
    pub fn in_milliseconds(mut self) -> Self {
        self.iat = self.iat.saturating_mul(1000);
        self.exp = self.exp.saturating_mul(1000);
        self
    }

    /// Signs the claims with RS256.
    pub fn sign(&self, key: &PrivateKey) -> Result<Secret<String>, KeyError> {
        super::jws::encode(&super::jws::Signer::Rs256(key.rsa()), self)
            .map(Secret::new)
            .map_err(|e| KeyError::Encoding(e.to_string()))
    }
}

/// Mints a key-pair JWT as official clients do: RS256, upper-case account and user, the key's
/// fingerprint in `iss`, valid for [`DEFAULT_LIFETIME`] from `now` (Unix seconds).
pub fn mint(
    account: &str,
    user: &str,
    key: &PrivateKey,
    now: i64,
    role: Option<&str>,
) -> Result<Secret<String>, KeyError> {
    let claims = Claims::new(
        account,
        user,
        &key.public_key().fingerprint(),
        now,
        DEFAULT_LIFETIME,
    );
    let claims = match role {
        Some(role) => claims.with_role(role),
        None => claims,
    };
    claims.sign(key)
}

/// Why Snowflake refused a key-pair JWT: the detailed code an administrator sees with
/// `SYSTEM$GET_LOGIN_FAILURE_DETAILS`. The client itself only ever sees 390144.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum JwtRejection {
    /// 390144: malformed token or claims that fit no more specific reason.
    Invalid,
    /// 394300: the user in `iss` does not exist.
    UnknownUser,
    /// 394301: `iat` or `exp` missing.
    MissingIssueOrExpiration,
    /// 394302: `iat` is more than 60 s ahead of the server clock (clock skew).
    IssueTimeInFuture,
    /// 394303: expired, or `exp - iat` longer than one hour.
    InvalidExpiration,
    /// 394304: the fingerprint in `iss` matches neither registered public key.
    FingerprintMismatch,
    /// 394305: not RS256.
    InvalidAlgorithm,
    /// 394306: the signature does not verify with the registered key.
    InvalidSignature,
    /// 394307: the account in the token is not the account the request was sent to.
    AccountMismatch,
}

impl JwtRejection {
    /// The numeric Snowflake code.
    #[must_use]
    pub fn code(self) -> u32 {
        match self {
            Self::Invalid => 390_144,
            Self::UnknownUser => 394_300,
            Self::MissingIssueOrExpiration => 394_301,
            Self::IssueTimeInFuture => 394_302,
            Self::InvalidExpiration => 394_303,
            Self::FingerprintMismatch => 394_304,
            Self::InvalidAlgorithm => 394_305,
            Self::InvalidSignature => 394_306,
            Self::AccountMismatch => 394_307,
        }
    }

    /// The Snowflake name of the code.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Invalid => "JWT_TOKEN_INVALID",
            Self::UnknownUser => "JWT_TOKEN_INVALID_USER_IN_ISSUER",
            Self::MissingIssueOrExpiration => "JWT_TOKEN_MISSING_ISSUE_OR_EXPIRATION_TIME",
            Self::IssueTimeInFuture => "JWT_TOKEN_INVALID_ISSUE_TIME",
            Self::InvalidExpiration => "JWT_TOKEN_INVALID_EXPIRATION_TIME",
            Self::FingerprintMismatch => "JWT_TOKEN_INVALID_PUBLIC_KEY_FINGERPRINT_MISMATCH",
            Self::InvalidAlgorithm => "JWT_TOKEN_INVALID_ALGORITHM",
            Self::InvalidSignature => "JWT_TOKEN_INVALID_SIGNATURE",
            Self::AccountMismatch => "JWT_TOKEN_ACCOUNT_MISMATCH",
        }
    }
}

/// What a JWT that passed verification says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    /// The JWT account (upper case).
    pub account: String,
    /// The user (upper case), as registered.
    pub user: String,
    /// The fingerprint of the key that signed it.
    pub fingerprint: String,
    /// The role from the `scp` claim, if any.
    pub role: Option<String>,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// Verifies a key-pair JWT the way Snowflake does. `account` is the account the request was sent
/// to (any identifier form), `now` the server clock in Unix seconds, and `user_keys` returns the
/// registered public keys (`RSA_PUBLIC_KEY`, `RSA_PUBLIC_KEY_2`) of an upper-case user name.
pub fn verify(
    token: &str,
    account: &str,
    now: i64,
    user_keys: impl Fn(&str) -> Option<Vec<PublicKey>>,
) -> Result<VerifiedJwt, JwtRejection> {
    let parts = super::jws::Parts::split(token).ok_or(JwtRejection::Invalid)?;
    if parts.alg() != Some("RS256") {
        return Err(JwtRejection::InvalidAlgorithm);
    }
    let claims: serde_json::Value = parts.claims().ok_or(JwtRejection::Invalid)?;
    let (Some(iat), Some(exp)) = (timestamp(&claims, "iat"), timestamp(&claims, "exp")) else {
        return Err(JwtRejection::MissingIssueOrExpiration);
    };
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    let (Some(iss), Some(sub)) = (text("iss"), text("sub")) else {
        return Err(JwtRejection::Invalid);
    };
    let (subject, fingerprint) = iss
        .find(".SHA256:")
        .map(|i| (&iss[..i], &iss[i + 1..]))
        .ok_or(JwtRejection::Invalid)?;
    let (token_account, user) = subject.split_once('.').ok_or(JwtRejection::Invalid)?;
    if token_account != jwt_account(account) {
        return Err(JwtRejection::AccountMismatch);
    }
    let keys = user_keys(user).ok_or(JwtRejection::UnknownUser)?;
    if sub != subject {
        return Err(JwtRejection::Invalid);
    }
    let key = keys
        .iter()
        .find(|k| k.fingerprint() == fingerprint)
        .ok_or(JwtRejection::FingerprintMismatch)?;
    if !parts.verify_rs256(key.rsa()) {
        return Err(JwtRejection::InvalidSignature);
    }
    check_times(iat, exp, now)?;
    Ok(VerifiedJwt {
        account: token_account.to_owned(),
        user: user.to_owned(),
        fingerprint: fingerprint.to_owned(),
        role: text("scp")
            .and_then(|s| s.strip_prefix("session:role:"))
            .map(str::to_owned),
        expires_at: exp,
    })
}

/// The time rules, on Unix seconds: at most one hour of lifetime, not expired, not issued more
/// than 60 s in the server's future.
fn check_times(iat: i64, exp: i64, now: i64) -> Result<(), JwtRejection> {
    let max_lifetime = i64::try_from(MAX_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    let max_skew = i64::try_from(MAX_CLOCK_SKEW.as_secs()).unwrap_or(i64::MAX);
    if exp <= iat || exp - iat > max_lifetime || exp <= now {
        return Err(JwtRejection::InvalidExpiration);
    }
    if iat > now + max_skew {
        return Err(JwtRejection::IssueTimeInFuture);
    }
    Ok(())
}

/// A numeric claim in Unix seconds, accepting seconds or milliseconds.
fn timestamp(claims: &serde_json::Value, name: &str) -> Option<i64> {
    let value = claims.get(name)?;
    // Fractional seconds (some clients send floats) are truncated, as the server does.
    #[allow(clippy::cast_possible_truncation)]
    let raw = value
        .as_i64()
        .or_else(|| value.as_f64().map(|f| f as i64))?;
    Some(to_seconds(raw))
}

/// A JWT time claim in Unix seconds, whether it was sent in seconds or milliseconds.
#[must_use]
pub fn to_seconds(raw: i64) -> i64 {
    if raw > MILLIS_THRESHOLD {
        raw / 1000
    } else {
        raw
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;
    use crate::snowflake::keys::tests::test_key;

    const NOW: i64 = 1_800_000_000;
    const ACCOUNT: &str = "myorg-myaccount";

    fn keys_for(user: &str) -> Option<Vec<PublicKey>> {
        (user == "ALICE").then(|| vec![test_key().public_key()])
    }

    fn claims() -> Claims {
        Claims::new(
            ACCOUNT,
            "alice",
            &test_key().public_key().fingerprint(),
            NOW,
            DEFAULT_LIFETIME,
        )
    }

    fn check(claims: &Claims) -> Result<VerifiedJwt, JwtRejection> {
        verify(
            claims.sign(test_key()).unwrap().expose(),
            ACCOUNT,
            NOW,
            keys_for,
        )
    }

    #[test]
    fn a_good_token_verifies_and_carries_the_role() {
        let ok = check(&claims().with_role("loader")).unwrap();
        assert_eq!(ok.user, "ALICE");
        assert_eq!(ok.account, "MYORG-MYACCOUNT");
        assert_eq!(ok.role.as_deref(), Some("LOADER"));
    }

    #[test]
    fn milliseconds_are_accepted() {
        assert!(check(&claims().in_milliseconds()).is_ok());
    }

    #[test]
    fn claims_have_the_documented_shape() {
        let c = claims();
        assert_eq!(c.sub, "MYORG-MYACCOUNT.ALICE");
        assert!(c.iss.starts_with("MYORG-MYACCOUNT.ALICE.SHA256:"));
        assert_eq!(c.exp - c.iat, 59 * 60);
    }

    #[test_case(|c: &mut Claims| c.iss = c.iss.replace("ALICE", "BOB"), JwtRejection::UnknownUser; "unknown user")]
    #[test_case(|c: &mut Claims| c.iss = c.iss.replace("ALICE", "alice"), JwtRejection::UnknownUser; "lower case user")]
    #[test_case(|c: &mut Claims| c.iss = c.iss.replace("MYORG-MYACCOUNT", "myorg-myaccount"), JwtRejection::AccountMismatch; "lower case account")]
    #[test_case(|c: &mut Claims| c.iss = c.iss.replace("MYORG-MYACCOUNT", "OTHER"), JwtRejection::AccountMismatch; "other account")]
    #[test_case(|c: &mut Claims| c.iss = format!("{}.SHA256:AAAA", c.sub), JwtRejection::FingerprintMismatch; "fingerprint")]
    #[test_case(|c: &mut Claims| c.exp = c.iat + 3601, JwtRejection::InvalidExpiration; "lifetime over an hour")]
    #[test_case(|c: &mut Claims| { c.iat = NOW - 3000; c.exp = NOW - 1; }, JwtRejection::InvalidExpiration; "expired")]
    #[test_case(|c: &mut Claims| { c.iat = NOW + 61; c.exp = NOW + 600; }, JwtRejection::IssueTimeInFuture; "issued in the future")]
    #[test_case(|c: &mut Claims| c.sub = "MYORG-MYACCOUNT.EVE".into(), JwtRejection::Invalid; "sub differs from iss")]
    fn rejections(tamper: fn(&mut Claims), expected: JwtRejection) {
        let mut c = claims();
        tamper(&mut c);
        assert_eq!(check(&c).unwrap_err(), expected);
    }

    #[test]
    fn skew_within_a_minute_is_tolerated() {
        let mut c = claims();
        c.iat = NOW + 59;
        c.exp = NOW + 600;
        assert!(check(&c).is_ok());
    }

    #[test]
    fn missing_times_are_394301() {
        use base64::Engine as _;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"iss":"MYORG-MYACCOUNT.ALICE.SHA256:x","sub":"MYORG-MYACCOUNT.ALICE"}"#);
        let err = verify(&format!("{header}.{body}.sig"), ACCOUNT, NOW, keys_for).unwrap_err();
        assert_eq!(err, JwtRejection::MissingIssueOrExpiration);
    }

    #[test]
    fn other_algorithms_are_394305() {
        let token =
            crate::snowflake::jws::encode(&crate::snowflake::jws::Signer::Hs256(b"k"), &claims())
                .unwrap();
        assert_eq!(
            verify(&token, ACCOUNT, NOW, keys_for).unwrap_err(),
            JwtRejection::InvalidAlgorithm
        );
    }

    #[test]
    fn a_foreign_signature_is_394306() {
        let other = PrivateKey::generate(2048).unwrap();
        let token = claims().sign(&other).unwrap();
        assert_eq!(
            verify(token.expose(), ACCOUNT, NOW, keys_for).unwrap_err(),
            JwtRejection::InvalidSignature
        );
    }

    #[test]
    fn garbage_is_390144() {
        assert_eq!(
            verify("abc", ACCOUNT, NOW, keys_for).unwrap_err(),
            JwtRejection::Invalid
        );
        assert_eq!(JwtRejection::Invalid.code(), 390_144);
        assert_eq!(JwtRejection::AccountMismatch.code(), 394_307);
    }
}
