//! The units reports and flags speak: durations as milliseconds with microsecond precision, counts
//! that may be 0. A leaf module, so the network layer, the checks' evidence, the report and the
//! emulator render and parse them alike.

use std::time::Duration;

/// A duration in milliseconds, rounded to the microsecond.
#[must_use]
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Serialises a duration as [`ms`] (for serde's `serialize_with`).
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's serialize_with signature
pub fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*d))
}

/// Parses a duration as the flags spell it: `200ms`, `2s`, `5m`, `1h` (a bare number is milliseconds).
#[must_use]
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "" | "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        _ => None,
    }
}

/// clap value parser for a count or a size that may be 0: a negative one is refused as such,
/// not as "invalid digit found in string".
pub fn parse_count<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    if s.trim_start().starts_with('-') {
        return Err(format!("must be 0 or more, got {s}"));
    }
    s.trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))
}
