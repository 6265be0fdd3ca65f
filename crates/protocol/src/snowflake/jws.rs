//! Compact JWS (RFC 7515) with the two algorithms Snowflake's API uses: RS256 for key-pair JWTs
//! (RFC 7518 §3.3, RSASSA-PKCS1-v1_5 with SHA-256) and HS256 for the emulator's scoped tokens.
//!
//! The signatures come from the `rsa` and `hmac` crates; only the three-part framing is written
//! here. (jsonwebtoken cannot be built without every algorithm it knows, which brought three
//! elliptic-curve stacks into a build that needs none.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// A signing algorithm and its key.
pub enum Signer<'a> {
    /// RS256 with an RSA private key.
    Rs256(&'a RsaPrivateKey),
    /// HS256 with a shared secret.
    Hs256(&'a [u8]),
}

impl Signer<'_> {
    fn alg(&self) -> &'static str {
        match self {
            Self::Rs256(_) => "RS256",
            Self::Hs256(_) => "HS256",
        }
    }
}

/// `header.claims.signature`, base64url without padding.
pub fn encode(signer: &Signer<'_>, claims: &impl Serialize) -> Result<String, serde_json::Error> {
    let header = serde_json::json!({ "alg": signer.alg(), "typ": "JWT" });
    let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    let signature = match signer {
        Signer::Rs256(key) => SigningKey::<Sha256>::new((*key).clone())
            .sign(token.as_bytes())
            .to_vec(),
        Signer::Hs256(secret) => hmac(secret, token.as_bytes())
            .finalize()
            .into_bytes()
            .to_vec(),
    };
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

/// A token split into its parts; nothing is verified yet.
pub struct Parts<'a> {
    /// `header.claims`, the bytes the signature covers.
    signing_input: &'a str,
    /// The decoded header.
    pub header: serde_json::Value,
    /// The decoded claims bytes.
    claims: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Parts<'a> {
    /// Splits and decodes a compact token (`None`: not three base64url parts with a JSON header).
    /// Padding is tolerated, as servers do.
    #[must_use]
    pub fn split(token: &'a str) -> Option<Self> {
        let token = token.trim();
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, claims) = signing_input.split_once('.')?;
        if claims.contains('.') {
            return None;
        }
        let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok();
        Some(Self {
            signing_input,
            header: serde_json::from_slice(&b64(header)?).ok()?,
            claims: b64(claims)?,
            signature: b64(signature)?,
        })
    }

    /// The header's `alg`.
    #[must_use]
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(serde_json::Value::as_str)
    }

    /// The claims, whatever the signature (`None`: not the expected JSON).
    #[must_use]
    pub fn claims<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.claims).ok()
    }

    /// Whether an RS256 signature by `key` covers the token.
    #[must_use]
    pub fn verify_rs256(&self, key: &RsaPublicKey) -> bool {
        self.alg() == Some("RS256")
            && Signature::try_from(self.signature.as_slice()).is_ok_and(|signature| {
                VerifyingKey::<Sha256>::new(key.clone())
                    .verify(self.signing_input.as_bytes(), &signature)
                    .is_ok()
            })
    }

    /// Whether an HS256 signature with `secret` covers the token (compared in constant time).
    #[must_use]
    pub fn verify_hs256(&self, secret: &[u8]) -> bool {
        self.alg() == Some("HS256")
            && hmac(secret, self.signing_input.as_bytes())
                .verify_slice(&self.signature)
                .is_ok()
    }
}

fn hmac(secret: &[u8], input: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(input);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Claims {
        sub: String,
        exp: i64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "ACCOUNT.USER".to_owned(),
            exp: 1_700_000_000,
        }
    }

    #[test]
    fn hs256_round_trip_and_tamper() {
        let token = encode(&Signer::Hs256(b"secret"), &claims()).unwrap();
        let parts = Parts::split(&token).unwrap();
        assert_eq!(parts.alg(), Some("HS256"));
        assert!(parts.verify_hs256(b"secret"));
        assert!(!parts.verify_hs256(b"other"));
        assert_eq!(parts.claims::<Claims>(), Some(claims()));
        let (head, _) = token.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"sub":"ACCOUNT.ADMIN","exp":1700000000}"#),
            token.rsplit('.').next().unwrap()
        );
        assert!(!Parts::split(&forged).unwrap().verify_hs256(b"secret"));
    }

    /// RFC 7515 appendix A.1's HS256 example: the same signing input and key give the
    /// published signature, so the framing is the standard one.
    #[test]
    fn hs256_matches_rfc7515_example() {
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let token = format!("{input}.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let parts = Parts::split(&token).unwrap();
        assert!(parts.verify_hs256(&key));
    }

    #[test]
    fn rs256_round_trip_and_wrong_key() {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let other = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let token = encode(&Signer::Rs256(&key), &claims()).unwrap();
        let parts = Parts::split(&token).unwrap();
        assert!(parts.verify_rs256(&key.to_public_key()));
        assert!(!parts.verify_rs256(&other.to_public_key()));
        assert!(
            !parts.verify_hs256(b"secret"),
            "an RS256 token is not an HS256 one"
        );
    }

    #[test]
    fn malformed_tokens_do_not_split() {
        for bad in ["", "abc", "a.b", "a.b.c.d", "!!.e30.sig", "e30.!!.c2ln"] {
            assert!(Parts::split(bad).is_none(), "{bad}");
        }
    }
}
