//! Private keys (`--private-key-file`) and public keys (the emulator's users) from PEM text.
//! No passphrase is given, so an encrypted key stops before any key derivation: its KDF
//! parameters are still checked against the caps, but fuzz input never drives scrypt or PBKDF2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netcheck::snowflake::keys::{PrivateKey, PublicKey};

fuzz_target!(|input: &str| {
    if let Ok(key) = PrivateKey::from_pem(input, None) {
        let _ = key.public_key().fingerprint();
    }
    if let Ok(key) = PublicKey::from_pem(input) {
        let _ = key.fingerprint();
    }
});
