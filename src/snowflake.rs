//! The Snowflake API as the real service speaks it.
