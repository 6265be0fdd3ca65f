//! The embedded Snowflake-compatible HTTPS emulator (see issue: emulator).
