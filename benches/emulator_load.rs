//! Load benchmark for the emulator: many concurrent channels streaming NDJSON over TLS on
//! loopback, bounded in count and time. Prints rows/s, MB/s and peak RSS. Run with
//! `cargo bench --bench emulator_load` (optionally `-- CHANNELS BATCHES_PER_CHANNEL BATCH_KB`).
//!
//! Client and server share this process (and the machine's cores), so the numbers are a floor
//! for the server alone; peak RSS covers both. Committed rows are not retained
//! (`keep_rows = 0`), as a long-running emulator would be configured for load.
//!
//! Measured on the project's 2-core VM (release, load average ~4 from other builds):
//! 200 channels x 10 x 256 KiB -> 3.69 M rows in 1.36 s, 2.72 M rows/s, 387 MB/s, peak RSS 31 MiB
//! (was 6.2 s and 84.5 MB/s while the emulator built a JSON value for every row it received).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netcheck::emulator::{self, EmulatorConfig, defaults};
use netcheck::snowflake::jwt;
use netcheck::snowflake::rest::{self, PipeRef};

/// Hard limit on the whole run, so the benchmark always ends.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// A positional argument, or `default` under `cargo bench`. Under `cargo test --all-targets`
/// (no `--bench` flag) the benchmark only proves it still runs: a smoke-sized load.
fn arg(n: usize, default: usize) -> usize {
    let smoke = [1, 1, 1];
    if !std::env::args().any(|a| a == "--bench") {
        return smoke.get(n - 1).copied().unwrap_or(default);
    }
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process, from `/proc/self/status` (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// One NDJSON body of about `kb` KiB; returns (body, rows).
fn batch(kb: usize) -> (bytes::Bytes, u64) {
    let mut body = String::new();
    let mut rows = 0;
    while body.len() < kb * 1024 {
        let _ = writeln!(
            body,
            "{{\"id\":{rows},\"device\":\"sensor-{}\",\"temperature\":{}.5,\"tags\":[\"a\",\"b\"],\"note\":\"{}\"}}",
            rows % 97,
            rows % 40,
            "x".repeat(64)
        );
        rows += 1;
    }
    (bytes::Bytes::from(body), rows)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let channels = arg(1, 200);
    let batches = arg(2, 10);
    let batch_kb = arg(3, 256);
    let (emu, http, token) = setup().await;
    let port = emu.addr().port();
    let (body, rows_per_batch) = batch(batch_kb);
    let pipe = PipeRef::new(
        defaults::DATABASE,
        defaults::SCHEMA,
        &rest::default_pipe(defaults::TABLE),
    );
    let ingest = format!("https://{}:{port}", emu.ingest_host());
    let sent_bytes = Arc::new(AtomicU64::new(0));
    let sent_rows = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..channels {
        let (http, token, body, ingest) =
            (http.clone(), token.clone(), body.clone(), ingest.clone());
        let channel = pipe.channel(&format!("load-{c}"));
        let counters = (sent_bytes.clone(), sent_rows.clone(), rows_per_batch);
        tasks.spawn(stream_channel(
            http, token, ingest, channel, body, batches, start, counters,
        ));
    }
    let mut failures = 0;
    while let Some(joined) = tasks.join_next().await {
        if !matches!(joined, Ok(Ok(()))) {
            failures += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // One status call per channel confirms the server committed what it accepted.
    let names: Vec<String> = (0..channels).map(|c| format!("load-{c}")).collect();
    let status: rest::BulkChannelStatusResponse = http
        .post(format!("{ingest}{}", pipe.bulk_status_path()))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "channel_names": names }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: u64 = status
        .channel_statuses
        .values()
        .map(|s| s.rows_inserted)
        .sum();
    let bytes = sent_bytes.load(Ordering::Relaxed);
    let rows = sent_rows.load(Ordering::Relaxed);
    println!("channels            {channels} ({failures} failed)");
    println!("batches/channel     {batches} x {batch_kb} KiB ({rows_per_batch} rows each)");
    println!("elapsed             {elapsed:.2} s");
    println!("rows sent           {rows} ({committed} committed)");
    println!("rows/s              {:.0}", per_second(rows, elapsed));
    println!(
        "MB/s (NDJSON)       {:.1}",
        per_second(bytes, elapsed) / 1e6
    );
    match peak_rss_mib() {
        Some(mib) => println!("peak RSS            {mib:.0} MiB (client and server)"),
        None => println!("peak RSS            unavailable (no /proc/self/status)"),
    }
    println!(
        "TCP connections     {}",
        emu.connection_stats().tcp_accepted
    );
}

/// Opens one channel and appends `batches` copies of `body`, counting what was accepted.
#[allow(clippy::too_many_arguments)]
async fn stream_channel(
    http: reqwest::Client,
    token: String,
    ingest: String,
    channel: rest::ChannelRef,
    body: bytes::Bytes,
    batches: usize,
    start: Instant,
    (sent_bytes, sent_rows, rows_per_batch): (Arc<AtomicU64>, Arc<AtomicU64>, u64),
) -> Result<(), reqwest::Error> {
    let opened: rest::OpenChannelResponse = http
        .put(format!("{ingest}{}", channel.channel_path()))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut cont = opened.next_continuation_token;
    for b in 0..batches {
        if start.elapsed() > TIME_LIMIT {
            break;
        }
        let r: rest::AppendRowsResponse = http
            .post(format!(
                "{ingest}{}?continuationToken={cont}&offsetToken={b}",
                channel.rows_path()
            ))
            .bearer_auth(&token)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        cont = r.next_continuation_token;
        sent_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        sent_rows.fetch_add(rows_per_batch, Ordering::Relaxed);
    }
    Ok::<_, reqwest::Error>(())
}

/// Starts the emulator for load (no row retention, immediate commit), a client trusting its CA,
/// and a scoped token.
async fn setup() -> (emulator::Emulator, reqwest::Client, String) {
    let config = EmulatorConfig {
        commit_delay: Duration::ZERO,
        keep_rows: 0,
        ..EmulatorConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = emulator::spawn(listener, config).await.unwrap();
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .resolve(emu.account_host(), emu.addr())
        .resolve(emu.ingest_host(), emu.addr())
        .build()
        .unwrap();
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let jwt = jwt::mint(
        defaults::ACCOUNT,
        defaults::USER,
        emulator::default_key(),
        now,
        None,
    )
    .unwrap();
    let token = http
        .post(format!(
            "https://{}:{}{}",
            emu.account_host(),
            emu.addr().port(),
            rest::OAUTH_TOKEN_PATH
        ))
        .bearer_auth(jwt.expose())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(rest::token_request_form(emu.ingest_host(), None))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (emu, http, token)
}

/// A rate per second; counts here stay far below 2^52, so the cast is exact.
#[allow(clippy::cast_precision_loss)]
fn per_second(count: u64, seconds: f64) -> f64 {
    count as f64 / seconds
}
