//! `netcheck serve`: the checks, all the time, on the monitoring stack a fleet already has.
//! Prometheus scrapes `GET /probe?connection=NAME` (`blackbox_exporter`'s model: one run per
//! scrape, within the scrape's timeout), or serve probes on its own schedule (`--every`,
//! `smokeping_prober`'s model) and keeps the latest results and duration histograms in
//! `GET /metrics`. `GET /healthz` says it is up.
//!
//! A layer over [`crate::app`]: each probe is one [`app::run_plan`] of a named connection from
//! the Snowflake connection files, in its own [`secret::Scope`] so a process that runs forever
//! does not keep every token it made. Only those named connections can be probed — nothing in a
//! request names a host — and at most `--max-probes` runs, scraped or scheduled, are in progress
//! at once: one more scrape is answered 503 at once, one more scheduled run is skipped.
//! The first SIGTERM (or SIGINT) stops new probes; runs in flight see the signal, drop their test
//! channels and answer before serve exits. A client gets a few seconds to send a request head
//! (`serve/http.rs`), and one that has not sent a whole request is not waited for.

mod http;
mod metrics;
mod probe;
mod schedule;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{Stream, StreamExt as _};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::connection::ConnectionArgs;
use crate::error::Error;
use crate::output::{Sink, Style, clean};
use crate::report::prometheus::{self, RunMetrics, Runs};
use crate::runner::Signal;
use crate::settings::{ProbeArgs, Settings, SettingsArgs};
use crate::{app, registry, secret};
use metrics::{ServeMetrics, Trigger};
use probe::Refusal;

/// The header Prometheus sends with its scrape timeout.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// `netcheck serve` flags.
// Field docs are --help text: plain words, no Markdown.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default: put it behind your network policy to widen it).
    #[arg(
        long,
        env = "NETCHECK_LISTEN",
        default_value = "127.0.0.1:9877",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// A connection that may be probed (comma-separated or repeated) [default: every connection
    /// the files define]; with --every, the connections probed on schedule.
    #[arg(
        long = "connection",
        env = "NETCHECK_CONNECTION",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub connections: Vec<String>,
    /// Probe the --connection list on this schedule (e.g. 30s, 5m), each start jittered by up
    /// to a tenth, a run never overlapping the last; results go to /metrics.
    #[arg(long, env = "NETCHECK_EVERY", value_name = "DURATION", value_parser = parse_every)]
    pub every: Option<Duration>,
    /// Runs that may be in progress at once, scraped and scheduled together; one more scrape is
    /// answered 503 at once, one more scheduled run is skipped (and counted).
    #[arg(long, env = "NETCHECK_MAX_PROBES", default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_probes: u16,
    /// Seconds taken off the scraper's timeout, so the answer is written before it gives up.
    #[arg(
        long,
        env = "NETCHECK_TIMEOUT_OFFSET",
        default_value_t = 0.5,
        value_name = "SECS"
    )]
    pub timeout_offset: f64,
    /// More detail on stderr (-v, -vv). Never prints secrets.
    #[arg(short, long, env = "NETCHECK_VERBOSE", action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

fn parse_every(text: &str) -> Result<Duration, String> {
    crate::units::parse_duration(text)
        .filter(|d| *d >= Duration::from_secs(1))
        .ok_or_else(|| "expected a duration of at least 1s, such as 30s or 5m".to_owned())
}

/// Binds `--listen`, says where on stdout (`listening on ADDR`), and serves until the first of
/// `signals`.
pub async fn main(
    args: ServeArgs,
    signals: impl Stream<Item = Signal> + Send + 'static,
) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let config = Config::new(args.clone(), &env)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    {
        let mut out = Sink::new(std::io::stdout().lock());
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    serve(listener, config, signals).await;
    Ok(())
}

/// Validated serve settings.
#[derive(Debug)]
pub struct Config {
    args: ServeArgs,
    timeout_offset: Duration,
    http: http::Limits,
}

impl Config {
    /// Validates the flags: every `--connection` must be defined in the connection files, and
    /// `--every` needs at least one.
    pub fn new(args: ServeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let defined = crate::connection::defined_names(env)?;
        if let Some(missing) = args.connections.iter().find(|c| !defined.contains(c)) {
            return Err(Error::Usage(format!(
                "--connection {missing}: not defined in the connection files (they define: {})",
                if defined.is_empty() {
                    "none".to_owned()
                } else {
                    defined.join(", ")
                }
            )));
        }
        if args.every.is_some() && args.connections.is_empty() {
            return Err(Error::Usage(
                "--every needs the connections to probe: --connection NAME (repeatable)".into(),
            ));
        }
        let offset = args.timeout_offset;
        if !(offset.is_finite() && (0.0..=60.0).contains(&offset)) {
            return Err(Error::Usage(format!(
                "--timeout-offset must be between 0 and 60 seconds, got {offset}"
            )));
        }
        Ok(Self {
            timeout_offset: Duration::from_secs_f64(offset),
            args,
            http: http::Limits::default(),
        })
    }
}

/// The state every request and schedule shares.
struct Server {
    probe: ProbeArgs,
    /// `--connection`, when given: the only names that may be probed.
    allowed: Option<BTreeSet<String>>,
    permits: Arc<Semaphore>,
    timeout_offset: Duration,
    metrics: ServeMetrics,
    /// Every signal received so far; the first ends serving.
    shutdown: watch::Receiver<Vec<Signal>>,
}

/// Serves on `listener` until the first of `signals`; then waits for the runs in flight (each
/// sees the signals too, so their cleanup runs) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    signals: impl Stream<Item = Signal> + Send + 'static,
) {
    let (tx, shutdown) = watch::channel(Vec::new());
    let forward = tokio::spawn(async move {
        let mut signals = std::pin::pin!(signals);
        while let Some(signal) = signals.next().await {
            tx.send_modify(|s| s.push(signal));
        }
        // Keep the sender until serving ends: a closed channel must not read as a signal.
        tx.closed().await;
    });
    let args = config.args;
    let server = Arc::new(Server {
        allowed: (!args.connections.is_empty()).then(|| args.connections.iter().cloned().collect()),
        permits: Arc::new(Semaphore::new(usize::from(args.max_probes))),
        timeout_offset: config.timeout_offset,
        metrics: ServeMetrics::new(),
        probe: args.probe,
        shutdown: shutdown.clone(),
    });
    let schedules: Vec<_> = args
        .every
        .map(|period| {
            args.connections
                .iter()
                .map(|c| tokio::spawn(schedule::every(server.clone(), c.clone(), period)))
                .collect()
        })
        .unwrap_or_default();
    let app = axum::Router::new()
        .route("/probe", get(probe))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(server.clone());
    http::serve(listener, app, shutdown.clone(), config.http).await;
    for schedule in schedules {
        let _ = schedule.await;
    }
    drop(server);
    drop(shutdown);
    forward.abort();
}

impl Server {
    fn shutting_down(&self) -> bool {
        !self.shutdown.borrow().is_empty()
    }

    /// Whether `name` may be probed: in `--connection`, else defined in the connection files now.
    fn allows(&self, name: &str) -> Result<bool, Error> {
        Ok(match &self.allowed {
            Some(allowed) => allowed.contains(name),
            None => crate::connection::defined_names(&|k| std::env::var(k).ok())?
                .iter()
                .any(|n| n == name),
        })
    }

    /// Runs the suite once for `connection` and records it in the metrics.
    async fn run_and_record(
        &self,
        connection: &str,
        full: bool,
        only: &[String],
        budget: Duration,
        trigger: Trigger,
    ) -> Result<RunMetrics, Error> {
        let _in_flight = self.metrics.in_flight();
        // The run's secrets are forgotten when this scope ends: its error is scrubbed while
        // they are still known, before it is logged or answered.
        let scope = secret::Scope::enter();
        let started = Instant::now();
        let run = self
            .run_once(connection, full, only, budget)
            .await
            .map_err(|e| Error::Usage(secret::scrub(&e.to_string()).into_owned()));
        if let Err(e) = &run {
            tracing::warn!("{connection}: cannot run: {e}");
        }
        drop(scope);
        self.metrics
            .finished(connection, trigger, started.elapsed(), run.as_ref().ok());
        run
    }

    /// One run: the connection's settings (read afresh, so an edited file takes effect), the
    /// plan, the run, its numbers (inside the caller's secret scope).
    async fn run_once(
        &self,
        connection: &str,
        full: bool,
        only: &[String],
        budget: Duration,
    ) -> Result<RunMetrics, Error> {
        let mut probe = self.probe.clone();
        probe.full |= full;
        probe.deadline = probe.deadline.min(budget.as_secs_f64());
        let args = SettingsArgs {
            account: None,
            connection: ConnectionArgs {
                connection: Some(connection.to_owned()),
                ..ConnectionArgs::default()
            },
            probe,
        };
        // Reads files and may decrypt a key (scrypt): off the async workers.
        let settings = tokio::task::spawn_blocking(move || {
            Settings::unattended(&args, |k| std::env::var(k).ok())
        })
        .await
        .map_err(|e| Error::Usage(format!("reading the settings failed: {e}")))??;
        let plan = registry::plan(only, &[], settings.full)?;
        let finished =
            app::run_plan(settings, &plan, None, run_signals(self.shutdown.clone())).await?;
        Ok(RunMetrics::new(&finished.report))
    }
}

/// The signals serve received, as one run's signal stream: those before the run started
/// first, then each as it comes.
fn run_signals(shutdown: watch::Receiver<Vec<Signal>>) -> impl Stream<Item = Signal> {
    futures::stream::unfold((shutdown, 0), |(mut rx, seen)| async move {
        let signal = rx.wait_for(|s| s.len() > seen).await.ok()?[seen];
        Some((signal, (rx, seen + 1)))
    })
}

/// A text answer, through the output boundary like everything serve writes.
fn text(status: StatusCode, content_type: &'static str, body: &str) -> Response {
    (
        status,
        [(CONTENT_TYPE, content_type)],
        clean(body, Style::Plain).into_owned(),
    )
        .into_response()
}

fn refuse(server: &Server, refusal: &Refusal) -> Response {
    server.metrics.refused(refusal.reason());
    text(
        refusal.status(),
        "text/plain; charset=utf-8",
        &format!("{refusal}\n"),
    )
}

/// `GET /probe?connection=NAME[&full=true][&only=IDS]`.
async fn probe(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if server.shutting_down() {
        return refuse(&server, &Refusal::ShuttingDown);
    }
    let request = match probe::Request::parse(query.as_deref().unwrap_or_default()) {
        Ok(r) => r,
        Err(refusal) => return refuse(&server, &refusal),
    };
    if let Err(e) = registry::plan(&request.only, &[], true) {
        return refuse(&server, &Refusal::BadPlan(e.to_string()));
    }
    let header = headers
        .get(SCRAPE_TIMEOUT_HEADER)
        .map(|v| v.to_str().unwrap_or("?"));
    let max = Duration::from_secs_f64(server.probe.deadline.clamp(0.001, 3600.0));
    let budget = match probe::budget(header, server.timeout_offset, max) {
        Ok(b) => b,
        Err(refusal) => return refuse(&server, &refusal),
    };
    // Before anything is read from disk: a probe over the bound costs nothing and is answered
    // at once, whatever state the connection files are in.
    let Ok(_permit) = server.permits.clone().try_acquire_owned() else {
        return refuse(&server, &Refusal::OverCapacity);
    };
    // The connection files are read off the async workers: a slow disk holds this probe only.
    let allowed = {
        let (server, name) = (server.clone(), request.connection.clone());
        tokio::task::spawn_blocking(move || server.allows(&name)).await
    };
    let allowed = allowed.unwrap_or_else(|e| {
        Err(Error::Usage(format!(
            "reading the connection files failed: {e}"
        )))
    });
    match allowed {
        Ok(true) => {}
        Ok(false) => return refuse(&server, &Refusal::UnknownConnection(request.connection)),
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                &e.to_string(),
            );
        }
    }
    let run = server
        .run_and_record(
            &request.connection,
            request.full,
            &request.only,
            budget,
            Trigger::Scrape,
        )
        .await;
    match run {
        Ok(m) => text(
            StatusCode::OK,
            prometheus::CONTENT_TYPE,
            &prometheus::exposition(Runs(vec![(None, m)])),
        ),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            &format!("cannot run: {e}\n"),
        ),
    }
}

/// `GET /metrics`: serve's own metrics and the latest scheduled results.
async fn metrics(State(server): State<Arc<Server>>) -> Response {
    text(
        StatusCode::OK,
        prometheus::CONTENT_TYPE,
        &server.metrics.exposition(),
    )
}

/// `GET /healthz`: 200 while serving, 503 once shutting down.
async fn healthz(State(server): State<Arc<Server>>) -> Response {
    if server.shutting_down() {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n",
        )
    } else {
        text(StatusCode::OK, "text/plain", "ok\n")
    }
}
