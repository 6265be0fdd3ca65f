//! RSA key handling for key-pair authentication: loading the private key (PKCS#8, encrypted
//! PKCS#8, PKCS#1), the public-key fingerprint Snowflake compares, and test key generation.
//!
//! Errors are typed so a check can say *which* key problem it is (wrong passphrase, not RSA,
//! too small, unreadable) rather than only "bad key".

use std::path::Path;

use base64::Engine as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::der::{Decode, SecretDocument};
use rsa::pkcs8::{
    DecodePublicKey, EncodePrivateKey, EncodePublicKey, EncryptedPrivateKeyInfo, LineEnding,
    PrivateKeyInfo, pkcs5,
};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

use super::Secret;

/// Snowflake refuses RSA keys smaller than this.
pub const MIN_RSA_BITS: usize = 2048;

/// The most PBKDF2 iterations an encrypted key may ask for. OpenSSL writes 2,048, OWASP
/// recommends 600,000 for PBKDF2-HMAC-SHA256; a million take well under a second, while the
/// field allows four billion (hours of work).
pub const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// The largest scrypt cost `N`: 2^17 is what `RustCrypto` writes (OpenSSL writes 2^14). Memory is
/// 128 · N · r bytes: 128 MiB at the caps.
pub const MAX_SCRYPT_N: u64 = 1 << 17;
/// The largest scrypt block size `r` (everyone writes 8).
pub const MAX_SCRYPT_R: u16 = 8;
/// The largest scrypt parallelism `p` (everyone writes 1; the work grows linearly with it).
pub const MAX_SCRYPT_P: u16 = 4;

/// The object identifier of `rsaEncryption` in a PKCS#8 `AlgorithmIdentifier`.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read: missing, not a regular file, or over its size cap.
    #[error(transparent)]
    Unreadable(#[from] crate::local_file::FileError),
    /// The text is not a PEM private or public key that netcheck understands.
    #[error("not a PEM RSA key: {0}")]
    Malformed(String),
    /// The key is encrypted and no passphrase was given.
    #[error("the private key is encrypted and no passphrase was given")]
    PassphraseRequired,
    /// The passphrase does not decrypt the key.
    #[error("wrong passphrase for the encrypted private key")]
    WrongPassphrase,
    /// The key is valid but not an RSA key (e.g. EC or Ed25519).
    #[error("the key is not an RSA key ({0}); Snowflake key-pair auth needs RSA")]
    NotRsa(String),
    /// The RSA key is smaller than Snowflake accepts.
    #[error("the RSA key has {bits} bits; Snowflake needs at least {MIN_RSA_BITS}")]
    TooSmall {
        /// The modulus size of the key.
        bits: usize,
    },
    /// The encrypted key's key derivation asks for more work or memory than netcheck spends.
    #[error(
        "the encrypted key asks for {parameter} = {value}, over netcheck's cap of {cap}; \
         re-encrypt it with common settings (openssl pkcs8 -topk8 -v2 aes-256-cbc)"
    )]
    KdfOverCap {
        /// `PBKDF2 iterations`, `scrypt N`, `scrypt r` or `scrypt p`.
        parameter: &'static str,
        /// What the key asks for.
        value: u64,
        /// The cap.
        cap: u64,
    },
    /// Key generation or encoding failed (should not happen with a working RNG).
    #[error("key encoding failed: {0}")]
    Encoding(String),
}

/// An RSA private key; `Debug` never prints key material.
#[derive(Clone)]
pub struct PrivateKey {
    key: RsaPrivateKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(RSA {} bits, ***)", self.bits())
    }
}

impl PrivateKey {
    /// Parses a PEM private key: `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE KEY` (needs the
    /// passphrase) or `RSA PRIVATE KEY` (PKCS#1). Keys under 2048 bits are refused.
    pub fn from_pem(pem: &str, passphrase: Option<&Secret<String>>) -> Result<Self, KeyError> {
        // Key material from now on: no output may carry it.
        crate::secret::register(pem);
        let (label, doc) =
            SecretDocument::from_pem(pem.trim()).map_err(|e| KeyError::Malformed(e.to_string()))?;
        let key = match label {
            "PRIVATE KEY" => rsa_from_pkcs8(doc.as_bytes())?,
            "ENCRYPTED PRIVATE KEY" => {
                let info = EncryptedPrivateKeyInfo::from_der(doc.as_bytes())
                    .map_err(|e| KeyError::Malformed(e.to_string()))?;
                // Before the passphrase is even asked for: a derivation netcheck will not run.
                check_kdf(&info.encryption_algorithm)?;
                let passphrase = passphrase.ok_or(KeyError::PassphraseRequired)?;
                let plain = info
                    .decrypt(passphrase.expose().as_bytes())
                    .map_err(|_| KeyError::WrongPassphrase)?;
                rsa_from_pkcs8(plain.as_bytes())?
            }
            "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(doc.as_bytes())
                .map_err(|e| KeyError::Malformed(e.to_string()))?,
            "EC PRIVATE KEY" | "OPENSSH PRIVATE KEY" | "DSA PRIVATE KEY" => {
                return Err(KeyError::NotRsa(label.to_owned()));
            }
            other => return Err(KeyError::Malformed(format!("unexpected PEM label {other}"))),
        };
        let key = Self { key };
        check_size(key.bits())?;
        Ok(key)
    }

    /// Reads and parses a PEM private key file.
    pub fn from_file(path: &Path, passphrase: Option<&Secret<String>>) -> Result<Self, KeyError> {
        let pem = crate::local_file::read_text(path, crate::local_file::FileKind::PrivateKey)?;
        Self::from_pem(&pem, passphrase)
    }

    /// Generates a fresh RSA key (for tests, `demo` and `emulate`).
    pub fn generate(bits: usize) -> Result<Self, KeyError> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
            .map_err(|e| KeyError::Encoding(e.to_string()))?;
        Ok(Self { key })
    }

    /// The modulus size in bits.
    #[must_use]
    pub fn bits(&self) -> usize {
        self.key.size() * 8
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.to_public_key(),
        }
    }

    /// The key as unencrypted PKCS#8 PEM (what Snowflake's docs call `rsa_key.p8`).
    pub fn to_pkcs8_pem(&self) -> Result<Secret<String>, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| Secret::new(pem.to_string()))
            .map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// The key as encrypted PKCS#8 PEM (scrypt + AES-256-CBC).
    pub fn to_encrypted_pkcs8_pem(
        &self,
        passphrase: &Secret<String>,
    ) -> Result<Secret<String>, KeyError> {
        self.key
            .to_pkcs8_encrypted_pem(
                rand::rngs::OsRng,
                passphrase.expose().as_bytes(),
                LineEnding::LF,
            )
            .map(|pem| Secret::new(pem.to_string()))
            .map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// The key as PKCS#1 PEM (`RSA PRIVATE KEY`).
    pub fn to_pkcs1_pem(&self) -> Result<Secret<String>, KeyError> {
        self.key
            .to_pkcs1_pem(LineEnding::LF)
            .map(|pem| Secret::new(pem.to_string()))
            .map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// The RSA key, for signing.
    pub(crate) fn rsa(&self) -> &RsaPrivateKey {
        &self.key
    }
}

/// An RSA public key as registered on a Snowflake user (`RSA_PUBLIC_KEY`).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: RsaPublicKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PublicKey {
    /// Parses a public key: PEM `PUBLIC KEY` (SPKI), PEM `RSA PUBLIC KEY` (PKCS#1), or the bare
    /// base64 SPKI body that `ALTER USER ... SET RSA_PUBLIC_KEY='MIIB...'` takes.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN RSA PUBLIC KEY") {
            RsaPublicKey::from_pkcs1_pem(text).map_err(|e| KeyError::Malformed(e.to_string()))?
        } else if text.starts_with("-----BEGIN") {
            RsaPublicKey::from_public_key_pem(text)
                .map_err(|e| KeyError::Malformed(e.to_string()))?
        } else {
            let compact: String = text.split_whitespace().collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| KeyError::Malformed(e.to_string()))?;
            RsaPublicKey::from_public_key_der(&der)
                .map_err(|e| KeyError::Malformed(e.to_string()))?
        };
        Ok(Self { key })
    }

    /// The key as SPKI PEM (`PUBLIC KEY`), the form `rsa_key.pub` files use.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// The fingerprint Snowflake stores as `RSA_PUBLIC_KEY_FP`:
    /// `SHA256:` + base64(sha256(SubjectPublicKeyInfo DER)).
    #[must_use]
    pub fn fingerprint(&self) -> String {
        // Encoding a valid in-memory key to DER cannot fail; an empty digest input would only
        // produce a fingerprint that matches nothing.
        let der = self
            .key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der))
        )
    }

    /// The RSA key, for verifying.
    pub(crate) fn rsa(&self) -> &RsaPublicKey {
        &self.key
    }
}

fn rsa_from_pkcs8(der: &[u8]) -> Result<RsaPrivateKey, KeyError> {
    let info = PrivateKeyInfo::from_der(der).map_err(|e| KeyError::Malformed(e.to_string()))?;
    let oid = info.algorithm.oid.to_string();
    if oid != RSA_ENCRYPTION_OID {
        return Err(KeyError::NotRsa(format!("algorithm {oid}")));
    }
    RsaPrivateKey::try_from(info).map_err(|e| KeyError::Malformed(e.to_string()))
}

/// Refuses a key derivation over the caps before it runs: its parameters come from the file, and
/// PBKDF2 with four billion iterations or scrypt with a huge `N` or `p` would spin past any
/// deadline or exhaust memory.
fn check_kdf(scheme: &pkcs5::EncryptionScheme<'_>) -> Result<(), KeyError> {
    use pkcs5::pbes2::Kdf;
    // PBES1 is refused by the decryption itself, before any derivation.
    let Some(params) = scheme.pbes2() else {
        return Ok(());
    };
    let over = |parameter, value: u64, cap: u64| {
        if value > cap {
            Err(KeyError::KdfOverCap {
                parameter,
                value,
                cap,
            })
        } else {
            Ok(())
        }
    };
    match &params.kdf {
        Kdf::Pbkdf2(p) => over(
            "PBKDF2 iterations",
            p.iteration_count.into(),
            MAX_PBKDF2_ITERATIONS.into(),
        ),
        Kdf::Scrypt(p) => {
            over("scrypt N", p.cost_parameter, MAX_SCRYPT_N)?;
            over("scrypt r", p.block_size.into(), MAX_SCRYPT_R.into())?;
            over("scrypt p", p.parallelization.into(), MAX_SCRYPT_P.into())
        }
        other => Err(KeyError::Malformed(format!(
            "unsupported key derivation {}",
            other.oid()
        ))),
    }
}

fn check_size(bits: usize) -> Result<(), KeyError> {
    if bits < MIN_RSA_BITS {
        return Err(KeyError::TooSmall { bits });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// One 2048-bit key per test process: generation is the slow part.
    pub(crate) fn test_key() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate(2048).expect("generate"))
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_fingerprint() {
        let key = test_key();
        let pem = key.to_pkcs8_pem().unwrap();
        let back = PrivateKey::from_pem(pem.expose(), None).unwrap();
        assert_eq!(
            back.public_key().fingerprint(),
            key.public_key().fingerprint()
        );
        assert!(key.public_key().fingerprint().starts_with("SHA256:"));
        assert_eq!(key.public_key().fingerprint().len(), "SHA256:".len() + 44);
    }

    #[test]
    fn pkcs1_is_accepted() {
        let key = test_key();
        let pem = key.to_pkcs1_pem().unwrap();
        assert!(pem.expose().starts_with("-----BEGIN RSA PRIVATE KEY"));
        assert_eq!(
            PrivateKey::from_pem(pem.expose(), None).unwrap().bits(),
            2048
        );
    }

    #[test]
    fn encrypted_pkcs8_needs_the_right_passphrase() {
        let key = test_key();
        let pass = Secret::new("correct horse".to_owned());
        let pem = key.to_encrypted_pkcs8_pem(&pass).unwrap();
        assert!(matches!(
            PrivateKey::from_pem(pem.expose(), None),
            Err(KeyError::PassphraseRequired)
        ));
        assert!(matches!(
            PrivateKey::from_pem(pem.expose(), Some(&Secret::new("wrong".to_owned()))),
            Err(KeyError::WrongPassphrase)
        ));
        let back = PrivateKey::from_pem(pem.expose(), Some(&pass)).unwrap();
        assert_eq!(back.public_key(), key.public_key());
    }

    /// An encrypted key with the given key derivation; the ciphertext is zeros: the caps refuse
    /// the key before it is reached.
    fn encrypted_with(kdf: pkcs5::pbes2::Kdf<'_>) -> String {
        use rsa::pkcs8::der::EncodePem as _;
        let iv = [7u8; 16];
        let info = EncryptedPrivateKeyInfo {
            encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(pkcs5::pbes2::Parameters {
                kdf,
                encryption: pkcs5::pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
            }),
            encrypted_data: &[0u8; 32],
        };
        info.to_pem(LineEnding::LF).unwrap()
    }

    #[test]
    fn absurd_key_derivations_are_refused_before_deriving() {
        use pkcs5::pbes2::{Kdf, Pbkdf2Params, ScryptParams};
        let salt = [1u8; 16];
        let scrypt = |n: u64, r: u16, p: u16| {
            Kdf::Scrypt(ScryptParams {
                salt: &salt,
                cost_parameter: n,
                block_size: r,
                parallelization: p,
                key_length: None,
            })
        };
        let pass = Secret::new("pass".to_owned());
        let cases = [
            (
                Kdf::Pbkdf2(Pbkdf2Params {
                    salt: &salt,
                    iteration_count: u32::MAX,
                    key_length: None,
                    prf: pkcs5::pbes2::Pbkdf2Prf::HmacWithSha256,
                }),
                "PBKDF2 iterations",
                u64::from(u32::MAX),
            ),
            (scrypt(1 << 30, 8, 1), "scrypt N", 1 << 30),
            (scrypt(1 << 14, 4096, 1), "scrypt r", 4096),
            (scrypt(1 << 14, 8, 65535), "scrypt p", 65535),
        ];
        for (kdf, name, asked) in cases {
            let pem = encrypted_with(kdf);
            let start = std::time::Instant::now();
            // Refused with or without a passphrase, and at once.
            for given in [None, Some(&pass)] {
                match PrivateKey::from_pem(&pem, given) {
                    Err(KeyError::KdfOverCap {
                        parameter, value, ..
                    }) => assert_eq!((parameter, value), (name, asked)),
                    other => panic!("{name}: {other:?}"),
                }
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(1));
        }
    }

    #[test]
    fn key_derivations_at_the_caps_pass() {
        use pkcs5::pbes2::{Parameters, Pbkdf2Params, ScryptParams};
        let (salt, iv) = ([1u8; 16], [2u8; 16]);
        let pbkdf2 = Pbkdf2Params::hmac_with_sha256(MAX_PBKDF2_ITERATIONS, &salt).unwrap();
        let scrypt = ScryptParams {
            salt: &salt,
            cost_parameter: MAX_SCRYPT_N,
            block_size: MAX_SCRYPT_R,
            parallelization: MAX_SCRYPT_P,
            key_length: None,
        };
        for kdf in [pbkdf2.into(), scrypt.into()] {
            let params = Parameters {
                kdf,
                encryption: pkcs5::pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
            };
            check_kdf(&pkcs5::EncryptionScheme::Pbes2(params)).unwrap();
        }
    }

    #[test]
    fn small_keys_are_refused() {
        let small = PrivateKey::generate(1024).unwrap();
        let pem = small.to_pkcs8_pem().unwrap();
        assert!(matches!(
            PrivateKey::from_pem(pem.expose(), None),
            Err(KeyError::TooSmall { bits: 1024 })
        ));
    }

    #[test]
    fn ec_keys_are_not_rsa() {
        let ec = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(matches!(
            PrivateKey::from_pem(&ec, None),
            Err(KeyError::NotRsa(_))
        ));
    }

    #[test]
    fn garbage_is_malformed_and_missing_files_unreadable() {
        assert!(matches!(
            PrivateKey::from_pem("nope", None),
            Err(KeyError::Malformed(_))
        ));
        let err = PrivateKey::from_file(Path::new("/nonexistent/rsa_key.p8"), None).unwrap_err();
        assert!(matches!(err, KeyError::Unreadable { .. }));
    }

    #[test]
    fn public_key_forms_agree() {
        let public = test_key().public_key();
        let pem = public.to_pem().unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), public);
        assert_eq!(PublicKey::from_pem(&body).unwrap(), public);
    }

    #[test]
    fn debug_hides_the_private_key() {
        let text = format!("{:?}", test_key());
        assert_eq!(text, "PrivateKey(RSA 2048 bits, ***)");
    }
}
