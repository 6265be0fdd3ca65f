//! The Snowflake API as the real service speaks it, kept in one place so that netcheck's checks
//! and the embedded emulator cannot drift apart.
//!
//! - [`account`]: account identifier → JWT account, user and host normalisation.
//! - [`allowlist`]: the `SYSTEM$ALLOWLIST()` JSON.
//! - [`keys`]: RSA private/public keys, the `SHA256:` fingerprint, test key generation.
//! - [`jws`]: the compact token framing with RS256 and HS256 signatures.
//! - [`jwt`]: key-pair JWT claims, minting, and the verification rules the server applies.
//! - [`oauth`]: the OAuth 2.0 client-credentials grant, its answer and its RFC 6749 errors.
//! - [`rest`]: REST paths, the API's calls and typed request/response/error bodies.
//! - [`stage`]: the `:pipe-info` stage location, its storage host, the provider's own answers.
//!
//! Everything here is pure (no I/O except reading a key file) and unit-tested; the emulator's
//! integration tests additionally run clients that did not come from this code.

pub mod account;
pub mod allowlist;
pub mod jws;
pub mod jwt;
pub mod keys;
pub mod oauth;
pub mod rest;
pub mod stage;

pub use crate::secret::Secret;
