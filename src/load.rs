//! The sustained-rate stream test's side of the settings and its pure parts: the `--rate` flags
//! and the seed's bandwidth-table presets, how a rate is laid out over channels and requests
//! (under the 4 MB wire cap and the per-channel request rate), the generated badge events, body
//! compression, continuation-token prediction and percentiles. The check itself is
//! [`crate::checks::rate`].

use std::io::Write as _;
use std::time::Duration;

use crate::error::Error;

/// Requests per second one channel is sent: under Snowflake's 10/s per channel, with headroom
/// for the retries [`crate::api::Api`] makes.
pub const REQUESTS_PER_SEC_PER_CHANNEL: u32 = 8;
/// Uncompressed bytes per append: even incompressible data then stays under the 4 MB wire cap,
/// and 8 requests/s stay under the documented 20 MB/s per channel.
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
/// A channel is planned to fill at most this share of its largest batch per request, so a
/// request that leaves late (a slow answer, a busy core) still carries the whole backlog in one
/// batch and the asked rate is caught up rather than lost.
const CATCH_UP_HEADROOM: f64 = 0.5;
/// Where `--rate max` starts ramping, in events a second: the bandwidth table's largest row.
const RAMP_START: u32 = 10_000;
/// The largest `--event-size`: a few events must fit in one batch.
const MAX_EVENT_SIZE: usize = 256 * 1024;
/// The smallest event: the badge fields themselves take about this much.
const MIN_EVENT_SIZE: usize = 200;
/// What padding adds besides the padding itself, newline included: `,"pad":""` and `\n`.
const PAD_FRAME: usize = r#","pad":""}"#.len();

/// The seed's bandwidth table as presets: events per second and event size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// 10 events/s of 200 B.
    Demo,
    /// 100 events/s of 500 B.
    Small,
    /// 1,000 events/s of 500 B.
    Medium,
    /// 10,000 events/s of 1 KB.
    Large,
    /// The most this path carries, in 1 KB events: the same as `--rate max --event-size 1024`.
    Max,
}

impl Profile {
    /// The rows of the bandwidth table, smallest first (what a capacity is compared with).
    pub const TABLE: [Self; 4] = [Self::Demo, Self::Small, Self::Medium, Self::Large];

    /// Events per second and bytes per event.
    #[must_use]
    pub const fn rate_and_size(self) -> (Rate, usize) {
        match self {
            Self::Demo => (Rate::Events(10), 200),
            Self::Small => (Rate::Events(100), 500),
            Self::Medium => (Rate::Events(1_000), 500),
            Self::Large => (Rate::Events(10_000), 1_024),
            Self::Max => (Rate::Max, 1_024),
        }
    }

    /// The row's events per second (`None` for [`Profile::Max`]).
    #[must_use]
    pub const fn events_per_sec(self) -> Option<u32> {
        match self.rate_and_size().0 {
            Rate::Events(n) => Some(n),
            Rate::Max => None,
        }
    }
}

/// `--rate`: a number of events a second, or `max` to find the most the path carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Hold this many events a second.
    Events(u32),
    /// Ramp up to the most this path carries (the capacity probe).
    Max,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Self::Max);
        }
        match s.parse::<u32>() {
            Ok(n @ 1..=10_000_000) => Ok(Self::Events(n)),
            _ => Err(format!(
                "{s:?} is neither `max` nor a number of events per second from 1 to 10000000"
            )),
        }
    }
}

/// How append bodies are compressed (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd level 1: the cheapest per byte.
    #[default]
    Zstd,
    /// gzip, fast level.
    Gzip,
}

impl Compression {
    /// The `Content-Encoding` value.
    #[must_use]
    pub const fn header(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
        }
    }

    /// Compresses one body.
    pub fn compress(self, raw: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Zstd => zstd::bulk::compress(raw, 1),
            Self::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 4),
                    flate2::Compression::fast(),
                );
                encoder.write_all(raw)?;
                encoder.finish()
            }
        }
    }
}

/// `netcheck run --full` flags of the sustained-rate stream test (`stream.rate`).
#[derive(Debug, Clone, clap::Args)]
pub struct RateArgs {
    /// With --full: stream this many events per second through extra test channels
    /// (check stream.rate); `max` ramps the rate up to the most the path carries and says what
    /// limited it.
    #[arg(long, env = "NETCHECK_RATE", value_name = "EVENTS_PER_SEC|max")]
    pub rate: Option<Rate>,
    /// Seconds the rate is held (with `--rate max`: the whole ramp's time).
    #[arg(
        long,
        env = "NETCHECK_DURATION",
        value_parser = crate::settings::parse_secs,
        default_value_t = 10.0,
        value_name = "SECS"
    )]
    pub duration: f64,
    /// Bytes per generated event (padded badge events) [default: the profile's, else 200].
    #[arg(long, env = "NETCHECK_EVENT_SIZE", value_name = "BYTES", value_parser = crate::units::parse_count::<usize>)]
    pub event_size: Option<usize>,
    /// At least this many channels (more are opened when one cannot carry the rate).
    #[arg(long, env = "NETCHECK_CHANNELS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=2000))]
    pub channels: Option<u16>,
    /// A preset load: demo 10/s x 200 B, small 100/s x 500 B,
    /// medium 1,000/s x 500 B, large 10,000/s x 1 KB; max: the most the path carries of 1 KB
    /// events (--rate and --event-size override it).
    #[arg(long, env = "NETCHECK_PROFILE", value_enum, value_name = "NAME")]
    pub profile: Option<Profile>,
    /// With --rate max: the client CPU, in cores, the probe may use before the client counts as
    /// saturated [default: every core of this machine].
    #[arg(long, env = "NETCHECK_MAX_CPU", value_name = "CORES")]
    pub max_cpu: Option<f64>,
    /// Append body compression.
    #[arg(long, env = "NETCHECK_COMPRESSION", value_enum, default_value_t = Compression::Zstd)]
    pub compression: Compression,
}

impl Default for RateArgs {
    fn default() -> Self {
        Self {
            rate: None,
            duration: 10.0,
            event_size: None,
            channels: None,
            profile: None,
            max_cpu: None,
            compression: Compression::Zstd,
        }
    }
}

impl RateArgs {
    /// [`RateArgs::load`] for a run: the rate test streams after the round trip, so it needs
    /// `--full`, and it must fit in the run's deadline.
    pub fn load_for_run(&self, full: bool, deadline: Duration) -> Result<Option<Load>, Error> {
        match self.load()? {
            Some(_) if !full => Err(Error::Usage(
                "--rate and --profile stream through test channels: add --full".into(),
            )),
            Some(load) if load.duration >= deadline => Err(Error::Usage(format!(
                "--duration {} s does not fit in --deadline {} s (the round trip comes first): raise --deadline",
                load.duration.as_secs_f64(),
                deadline.as_secs_f64()
            ))),
            load => Ok(load),
        }
    }

    /// The validated load, or `None` when neither `--rate` nor `--profile` was given.
    pub fn load(&self) -> Result<Option<Load>, Error> {
        let preset = self.profile.map(Profile::rate_and_size);
        let Some(rate) = self.rate.or(preset.map(|p| p.0)) else {
            if self.event_size.is_some() || self.channels.is_some() || self.max_cpu.is_some() {
                return Err(Error::Usage(
                    "--event-size, --channels and --max-cpu need --rate or --profile".into(),
                ));
            }
            return Ok(None);
        };
        let ramp = match (rate, self.max_cpu) {
            (Rate::Events(_), Some(_)) => {
                return Err(Error::Usage("--max-cpu needs --rate max".into()));
            }
            (Rate::Events(_), None) => None,
            (Rate::Max, Some(c)) if !(c.is_finite() && c > 0.0 && c <= 4096.0) => {
                return Err(Error::Usage(format!(
                    "--max-cpu must be a number of cores above 0, got {c}"
                )));
            }
            (Rate::Max, cores) => Some(Ramp {
                max_cpu: cores.unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map_or(1.0, |n| f64::from(u32::try_from(n.get()).unwrap_or(1)))
                }),
            }),
        };
        let events_per_sec = match rate {
            Rate::Events(n) => n,
            Rate::Max => RAMP_START,
        };
        let event_size = self
            .event_size
            .or(preset.map(|p| p.1))
            .unwrap_or(MIN_EVENT_SIZE);
        if !(MIN_EVENT_SIZE..=MAX_EVENT_SIZE).contains(&event_size) {
            return Err(Error::Usage(format!(
                "--event-size must be between {MIN_EVENT_SIZE} and {MAX_EVENT_SIZE} bytes, got {event_size}"
            )));
        }
        let duration = crate::settings::validate_secs("--duration", self.duration)?;
        Ok(Some(Load {
            profile: self.profile,
            events_per_sec,
            duration,
            event_size,
            min_channels: self.channels.unwrap_or(1),
            compression: self.compression,
            ramp,
        }))
    }
}

/// A validated sustained-rate load.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Load {
    /// The preset it came from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// The asked rate (with a ramp: where it starts).
    pub events_per_sec: u32,
    /// How long the rate is held.
    #[serde(rename = "duration_ms", serialize_with = "crate::units::serialize_ms")]
    pub duration: Duration,
    /// Bytes per event, newline included.
    pub event_size: usize,
    /// `--channels`: at least this many.
    pub min_channels: u16,
    /// Append body compression.
    pub compression: Compression,
    /// `--rate max`: ramp the rate instead of holding it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Ramp>,
}

/// How `--rate max` ramps.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ramp {
    /// Client CPU, in cores, above which the client counts as saturated.
    pub max_cpu: f64,
}

// `max_cpu` is validated finite, so equality is total.
impl Eq for Ramp {}

/// How a load is spread: channels, and the largest batch one request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    /// Channels opened.
    pub channels: u32,
    /// The most events one append carries.
    pub max_batch_events: usize,
    /// The interval between one channel's requests.
    #[serde(rename = "tick_ms", serialize_with = "crate::units::serialize_ms")]
    pub tick: Duration,
}

impl Load {
    /// Events in the whole run.
    #[must_use]
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive rate times at most an hour"
    )]
    pub fn total_events(&self) -> u64 {
        (f64::from(self.events_per_sec) * self.duration.as_secs_f64()).round() as u64
    }

    /// Spreads the load: as many channels as asked, more when one channel's requests cannot
    /// carry it. A channel sends at most [`REQUESTS_PER_SEC_PER_CHANNEL`] requests a second, one
    /// at a time (so one per `append_latency`, the round trip's measured append), each planned at
    /// [`CATCH_UP_HEADROOM`] of [`MAX_BATCH_BYTES`].
    #[must_use]
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "small positive rates"
    )]
    pub fn layout(&self, append_latency: Duration) -> Layout {
        let max_batch_events = (MAX_BATCH_BYTES / self.event_size).max(1);
        let by_latency = 1.0 / append_latency.as_secs_f64().max(1e-3);
        let requests = by_latency.min(f64::from(REQUESTS_PER_SEC_PER_CHANNEL));
        let per_channel = (requests * max_batch_events as f64 * CATCH_UP_HEADROOM).max(1.0) as u64;
        let needed = u64::from(self.events_per_sec).div_ceil(per_channel);
        Layout {
            channels: u32::try_from(needed)
                .unwrap_or(u32::MAX)
                .max(u32::from(self.min_channels)),
            max_batch_events,
            tick: Duration::from_secs(1) / REQUESTS_PER_SEC_PER_CHANNEL,
        }
    }
}

/// Appends one NDJSON line: a badge event shaped like the seed's simulator's, padded with a
/// `pad` field to about `size` bytes (never truncated: the badge fields come first). The padding
/// is pseudo-random text, so compression and its CPU cost are not flattered by one repeated byte.
pub(crate) fn write_event(
    out: &mut Vec<u8>,
    seq: usize,
    channel: &str,
    timestamp: &str,
    size: usize,
) {
    let start = out.len();
    let event = BadgeEvent::new(seq, channel, timestamp.to_owned());
    serde_json::to_writer(&mut *out, &event).expect("a badge event serializes");
    let written = out.len() - start;
    if written + PAD_FRAME <= size {
        out.pop();
        out.extend_from_slice(br#","pad":""#);
        filler(seq as u64, size - written - PAD_FRAME, out);
        out.extend_from_slice(br#""}"#);
    }
    out.push(b'\n');
}

/// Appends `n` pseudo-random characters of a 32-letter alphabet (5 bits each, about what random
/// ids compress to), seeded by `seq` (xorshift64*: cheap, and different for every event).
#[allow(clippy::cast_possible_truncation, reason = "a 5-bit index")]
fn filler(seq: u64, n: usize, out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut state = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = n;
    while left > 0 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let mut bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        for _ in 0..left.min(12) {
            out.push(ALPHABET[(bits & 31) as usize]);
            bits >>= 5;
        }
        left = left.saturating_sub(12);
    }
}

/// The `p`-th percentile (0–100, nearest rank) of sorted samples.
#[must_use]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "ranks of a sample count"
)]
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (Linux; clock
/// ticks of 1/100 s, the kernel's `USER_HZ`).
#[must_use]
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// One RFID badge event, shaped like the seed's event simulator's (plus the run's marker).
#[derive(serde::Serialize)]
pub(crate) struct BadgeEvent<'a> {
    badge_id: String,
    user_id: String,
    zone_id: &'static str,
    reader_id: &'static str,
    event_timestamp: String,
    signal_strength: i32,
    direction: &'static str,
    netcheck_channel: &'a str,
    seq: usize,
}

impl<'a> BadgeEvent<'a> {
    /// The `seq`-th event of a test channel.
    pub(crate) fn new(seq: usize, channel: &'a str, event_timestamp: String) -> Self {
        Self {
            badge_id: format!("BADGE-{:05}", seq % 100_000),
            user_id: format!("USR-{:04}", seq % 10_000),
            zone_id: "ZONE-NETCHECK",
            reader_id: "RDR-NETCHECK",
            event_timestamp,
            signal_strength: -60,
            direction: if seq % 2 == 0 { "IN" } else { "OUT" },
            netcheck_channel: channel,
            seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case(Profile::Demo, 1; "demo")]
    #[test_case(Profile::Large, 2; "large over two channels, with catch-up room")]
    fn profile_layouts(profile: Profile, channels: u32) {
        let load = RateArgs {
            profile: Some(profile),
            ..RateArgs::default()
        }
        .load()
        .unwrap()
        .unwrap();
        assert_eq!(load.layout(Duration::from_millis(20)).channels, channels);
        assert_eq!(
            (Some(load.events_per_sec), load.event_size),
            (profile.events_per_sec(), profile.rate_and_size().1)
        );
        assert_eq!(load.ramp, None);
    }

    #[test]
    fn rate_max_and_profile_max_ramp_and_max_cpu_needs_them() {
        for args in [
            RateArgs {
                rate: Some(Rate::Max),
                max_cpu: Some(0.5),
                ..RateArgs::default()
            },
            RateArgs {
                profile: Some(Profile::Max),
                max_cpu: Some(0.5),
                ..RateArgs::default()
            },
        ] {
            let load = args.load().unwrap().unwrap();
            assert_eq!(load.ramp, Some(Ramp { max_cpu: 0.5 }));
            assert_eq!(load.events_per_sec, RAMP_START);
        }
        assert_eq!("MAX".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("250".parse::<Rate>(), Ok(Rate::Events(250)));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
        for bad in [
            RateArgs {
                rate: Some(Rate::Events(10)),
                max_cpu: Some(1.0),
                ..RateArgs::default()
            },
            RateArgs {
                rate: Some(Rate::Max),
                max_cpu: Some(0.0),
                ..RateArgs::default()
            },
        ] {
            assert!(bad.load().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_rate_one_channel_cannot_carry_is_spread() {
        let load = RateArgs {
            rate: Some(Rate::Events(100_000)),
            event_size: Some(1024),
            ..RateArgs::default()
        }
        .load()
        .unwrap()
        .unwrap();
        let layout = load.layout(Duration::from_millis(20));
        // 100 MB/s over channels of 8 requests/s x 1 MiB (half of a 2 MiB batch: catch-up room).
        assert_eq!(layout.channels, 13);
        assert_eq!(layout.max_batch_events, 2048);
        assert!(
            layout.tick >= Duration::from_millis(100),
            "at most 10 requests/s per channel"
        );
        // Appends of 500 ms: 2 requests/s of 1024 events per channel, one at a time.
        assert_eq!(load.layout(Duration::from_millis(500)).channels, 49);
    }

    #[test]
    fn no_rate_means_no_load_and_stray_flags_are_refused() {
        assert_eq!(RateArgs::default().load().unwrap(), None);
        assert!(
            RateArgs {
                channels: Some(2),
                ..RateArgs::default()
            }
            .load()
            .is_err()
        );
        assert!(
            RateArgs {
                rate: Some(Rate::Events(10)),
                event_size: Some(10),
                ..RateArgs::default()
            }
            .load()
            .is_err()
        );
        assert!(
            RateArgs {
                rate: Some(Rate::Events(10)),
                duration: 0.0,
                ..RateArgs::default()
            }
            .load()
            .is_err()
        );
    }

    #[test]
    fn a_rate_needs_full_and_must_fit_the_deadline() {
        let minute = Duration::from_secs(60);
        let args = RateArgs {
            profile: Some(Profile::Small),
            ..RateArgs::default()
        };
        assert!(
            args.load_for_run(false, minute)
                .unwrap_err()
                .to_string()
                .contains("--full")
        );
        assert!(args.load_for_run(true, minute).unwrap().is_some());
        assert_eq!(
            RateArgs::default().load_for_run(false, minute).unwrap(),
            None
        );
        let long = RateArgs {
            duration: 60.0,
            ..args
        };
        assert!(
            long.load_for_run(true, minute)
                .unwrap_err()
                .to_string()
                .contains("--deadline")
        );
    }

    #[test_case(200; "minimum")]
    #[test_case(500; "small")]
    #[test_case(1024; "one kilobyte")]
    fn events_are_one_json_object_of_the_asked_size(size: usize) {
        let mut out = Vec::new();
        write_event(
            &mut out,
            42,
            "netcheck_rate_1_0",
            "2026-11-25T09:00:00Z",
            size,
        );
        assert_eq!(out.last(), Some(&b'\n'));
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["seq"], 42);
        assert_eq!(value["netcheck_channel"], "netcheck_rate_1_0");
        // The badge fields alone take about 220 bytes here; larger sizes are padded exactly.
        if size > 300 {
            assert_eq!(
                out.len(),
                size,
                "padded to the asked size, newline included"
            );
        } else {
            assert!(!value.as_object().unwrap().contains_key("pad"));
        }
    }

    #[test_case(Compression::Zstd; "zstd")]
    #[test_case(Compression::Gzip; "gzip")]
    fn compressed_bodies_are_smaller(c: Compression) {
        let mut raw = Vec::new();
        for seq in 0..1000 {
            write_event(&mut raw, seq, "ch", "2026-11-25T09:00:00Z", 1024);
        }
        let compressed = c.compress(&raw).unwrap().len();
        // The badge fields compress well, the random padding (5 bits a byte) only so far.
        assert!(
            compressed < raw.len() * 3 / 4,
            "{compressed} of {}",
            raw.len()
        );
        assert!(
            compressed > raw.len() / 4,
            "padding is not one repeated byte: {compressed} of {}",
            raw.len()
        );
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&samples, 100.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(percentile(&[], 50.0), None);
    }
}
