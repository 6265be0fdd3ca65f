//! Command-line interface: clap arguments (every `run` flag has a `NETCHECK_*` twin) and
//! dispatch to the subcommands (`serve` lives in [`crate::serve`], a layer over the app). Errors become exit code 2 here, at the edge.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
// Boolean twins: NETCHECK_STRICT=1 or =yes means what a shell user means (any case), not a usage error.
use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::error::{Error, exit_code};
use crate::output::{Sink, Style};
use crate::report;
use crate::runner::{Event, Signal};
use crate::settings::{Origins, Settings, SettingsArgs};
use crate::{app, catalog, registry};

/// netcheck: can this machine stream rows into this Snowflake account, and if not, why?
#[derive(Debug, Parser)]
#[command(name = "netcheck", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Parsed once per process, so the size of `Run` does not matter.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the checks against an account.
    #[command(allow_negative_numbers = true)]
    Run(RunArgs),
    /// Print a troubleshooting catalog row, or list them all.
    Explain {
        /// A catalog id, e.g. tls-inspection.
        id: Option<String>,
    },
    /// Start the embedded emulator and run every check (--full included) against it.
    #[command(allow_negative_numbers = true)]
    Demo(DemoArgs),
    /// Run the Snowflake-compatible emulator in the foreground (see --list-faults).
    #[command(allow_negative_numbers = true)]
    Emulate(crate::emulator::EmulateArgs),
    /// Serve probes of named connections to Prometheus (/probe, /metrics, /healthz).
    Serve(crate::serve::ServeArgs),
    /// Print a shell completion script to stdout (see the README for where to put it).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man pages (roff) to stdout (read them with: netcheck man | man -l -)
    ///
    /// netcheck(1), then one page per subcommand with its options and environment variables.
    Man,
}

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    // The Prometheus text exposition, for a textfile collector or a Pushgateway.
    Prometheus,
}

/// `netcheck run` flags: what to check (the settings' flags), which checks, how to report.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Run only these checks (and what they depend on). Comma-separated or repeated.
    #[arg(long, env = "NETCHECK_ONLY", value_delimiter = ',', value_name = "ID")]
    pub only: Vec<String>,
    /// Skip these checks (their dependents are skipped too). Comma-separated or repeated.
    #[arg(long, env = "NETCHECK_SKIP", value_delimiter = ',', value_name = "ID")]
    pub skip: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `netcheck demo` flags.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// An emulator fault, as listed by netcheck emulate --list-faults; repeatable.
    #[arg(long = "fault", value_name = "NAME[=VALUE][@SCOPE][#N]")]
    pub faults: Vec<crate::emulator::Fault>,
    /// Rows to stream through the test channel.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub rows: u16,
    #[command(flatten)]
    pub budgets: crate::settings::BudgetArgs,
    #[command(flatten)]
    pub rate: crate::load::RateArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How a run reports: shared by `run` and `demo`.
// Field docs are --help text: plain words, no Markdown.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format on stdout.
    #[arg(long, env = "NETCHECK_FORMAT", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, env = "NETCHECK_JUNIT", value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page to FILE (waterfall, root causes,
    /// certificate chains, where each setting came from).
    #[arg(long, env = "NETCHECK_HTML", value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Treat warnings as failures (exit code and JUnit).
    #[arg(long, env = "NETCHECK_STRICT", value_parser = BoolishValueParser::new())]
    pub strict: bool,
    /// More detail on stderr: -v every setting and where it came from, -vv also each check's
    /// timing and the HTTP exchanges. Never prints secrets.
    #[arg(short, long, env = "NETCHECK_VERBOSE", action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl OutputArgs {
    /// Fails at once, before any network step, when a report file could not be written: a
    /// missing folder, a folder in its place, a file that cannot be opened for writing. An
    /// existing file is replaced at the end, as asked for.
    fn check_paths(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.junit {
            writable("--junit", path)?;
        }
        Ok(())
    }
}

fn writable(flag: &str, path: &std::path::Path) -> anyhow::Result<()> {
    let shown = path.display();
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !folder.is_dir() {
        return Err(Error::Usage(format!(
            "{flag} {shown}: the folder {} does not exist",
            folder.display()
        ))
        .into());
    }
    if path.is_dir() {
        return Err(Error::Usage(format!("{flag} {shown}: is a folder, not a file")).into());
    }
    if path.exists() {
        // Opened without truncating: the file keeps its content until the report replaces it.
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("{flag} {shown}: cannot be written"))?;
    }
    Ok(())
}

/// Entry point used by `main`: parse the process arguments, run, and return the exit code.
#[must_use]
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Before any socket: a low soft limit would make hosts look unreachable.
    let _ = crate::limits::raise_open_files();
    let code = match cli.command {
        Command::Run(mut args) => {
            args.settings.probe.origins = origins(&matches, "run");
            with_runtime(run(args))
        }
        Command::Demo(args) => with_runtime(demo(args, origins(&matches, "demo"))),
        Command::Explain { id } => explain(id.as_deref(), &mut std::io::stdout().lock()),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "netcheck", &mut std::io::stdout().lock());
            Ok(exit_code::OK)
        }
        Command::Man => man(&mut std::io::stdout().lock())
            .map(|()| exit_code::OK)
            .context("cannot write the man page"),
        Command::Emulate(args) => with_runtime(async {
            crate::emulator::emulate(args).await?;
            Ok(exit_code::OK)
        }),
        Command::Serve(args) => with_runtime(async {
            init_logging(args.verbose);
            crate::serve::main(args, signals()?).await?;
            Ok(exit_code::OK)
        }),
    };
    match code {
        Ok(code) => ExitCode::from(code),
        // A closed stdout (`netcheck … | head`) is the reader's choice, not an error to report.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // An error can quote what a file or a server said: it leaves through the sink too.
            let _ = writeln!(Sink::new(std::io::stderr()), "netcheck: error: {e:#}");
            ExitCode::from(exit_code::USAGE)
        }
    }
}

/// Where each flag of subcommand `name` came from, as clap parsed it.
fn origins(matches: &clap::ArgMatches, name: &str) -> Origins {
    let cli = Cli::command();
    match (cli.find_subcommand(name), matches.subcommand_matches(name)) {
        (Some(cmd), Some(sub)) => Origins::from_matches(cmd, sub),
        _ => Origins::default(),
    }
}

fn with_runtime<F: std::future::Future<Output = anyhow::Result<u8>>>(f: F) -> anyhow::Result<u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

/// `netcheck run`.
async fn run(args: RunArgs) -> anyhow::Result<u8> {
    init_logging(args.output.verbose);
    args.output.check_paths()?;
    let settings = Settings::from_args(&args.settings, |k| std::env::var(k).ok())?;
    let mut err = Sink::new(std::io::stderr());
    for warning in &settings.connection.warnings {
        writeln!(err, "netcheck: warning: {warning}")?;
    }
    let plan = registry::plan(&args.only, &args.skip, args.settings.probe.full)?;
    execute(settings, &plan, &args.output).await
}

/// `netcheck demo`: the whole suite, `--full` included, against the embedded emulator.
async fn demo(args: DemoArgs, origins: Origins) -> anyhow::Result<u8> {
    init_logging(args.output.verbose);
    args.output.check_paths()?;
    let budget_scale = args.budgets.scale()?;
    let mut demo =
        crate::demo::start(args.faults, usize::from(args.rows), args.rate.load()?).await?;
    demo.settings.budget_scale = budget_scale;
    demo.settings.origins.extend(origins);
    let plan = registry::plan(&[], &[], true)?;
    let code = execute(demo.settings, &plan, &args.output).await;
    demo.emulator.shutdown().await;
    code
}

/// Runs a plan with live progress on a terminal, then writes the reports; returns the exit code.
async fn execute(
    settings: Settings,
    plan: &registry::Plan,
    output: &OutputArgs,
) -> anyhow::Result<u8> {
    if output.verbose > 0 {
        let mut err = Sink::new(std::io::stderr());
        for s in settings.provenance() {
            writeln!(
                err,
                "netcheck: {} = {} (from {})",
                s.name, s.value, s.source
            )?;
        }
    }
    let stderr_tty = std::io::stderr().is_terminal();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = stderr_tty.then(|| tokio::spawn(show_progress(rx, plan.checks.len())));
    let finished = app::run_plan(settings, plan, progress.as_ref().map(|_| tx), signals()?).await;
    if let Some(p) = progress {
        let _ = p.await;
    }
    let report = finished?.report;
    let mut err = Sink::new(std::io::stderr());
    if output.verbose > 1 {
        for c in &report.checks {
            writeln!(
                err,
                "netcheck: timing: {} started at +{:.1} ms, took {:.1} ms",
                c.id, c.started_ms, c.duration_ms
            )?;
        }
    }
    for warning in &report.warnings {
        writeln!(err, "netcheck: warning: {warning}")?;
    }
    if let Some(path) = &output.html {
        // Created (or replaced) as --junit's file is: the path names the report to write.
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write --html {}", path.display()))?;
        let mut file = Sink::new(std::io::BufWriter::new(file));
        report::html::write(&report, &mut file)
            .and_then(|()| file.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Buffered: stdout is line-buffered, and a JSON report is thousands of lines.
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let color = output.format == Format::Table
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let style = match output.format {
        Format::Json => Style::Json,
        Format::Table if color => Style::Colour,
        Format::Table | Format::Prometheus => Style::Plain,
    };
    let mut out = Sink::styled(stdout, style);
    match output.format {
        Format::Json => report::json::write(&report, &mut out)?,
        Format::Table => {
            let width = terminal_width(&std::io::stdout());
            report::table::write(&report, report::table::Layout { color, width }, &mut out)?;
        }
        Format::Prometheus => report::prometheus::write(&report, &mut out)?,
    }
    out.flush()?;
    // After stdout: a file that fails to write late (a full disk) still leaves the report shown.
    if let Some(path) = &output.junit {
        if let Err(e) = write_junit(&report, output.strict, path) {
            let mut err = Sink::new(std::io::stderr());
            writeln!(
                err,
                "netcheck: error: {e:#}; the report above is complete, the run's own exit code \
                 would have been {}",
                report.exit_code(output.strict)
            )?;
            return Ok(exit_code::USAGE);
        }
    }
    Ok(report.exit_code(output.strict))
}

fn write_junit(
    report: &report::RunReport,
    strict: bool,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot write --junit {}", path.display()))?;
    let mut file = Sink::new(std::io::BufWriter::new(file));
    report::junit::write(report, strict, &mut file)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(file.flush()?))
        .with_context(|| format!("cannot write --junit {}", path.display()))
}

/// Every SIGINT, SIGTERM and SIGHUP the process receives from now on, in order: the run handles
/// them (the first interrupts it, a second cuts its cleanup short) instead of dying with a test
/// channel left open.
fn signals() -> anyhow::Result<impl futures::Stream<Item = Signal>> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| signal(kind).context("cannot listen for signals");
    let listeners = (
        listen(SignalKind::interrupt())?,
        listen(SignalKind::terminate())?,
        listen(SignalKind::hangup())?,
    );
    Ok(futures::stream::unfold(
        listeners,
        |(mut int, mut term, mut hup)| async move {
            let got = tokio::select! {
                Some(()) = int.recv() => Signal::Sigint,
                Some(()) = term.recv() => Signal::Sigterm,
                Some(()) = hup.recv() => Signal::Sighup,
                else => return None,
            };
            Some((got, (int, term, hup)))
        },
    ))
}

/// The width of the terminal `fd` writes to, in columns: `COLUMNS` when set (a test, or a user
/// who wants another width), else the terminal's own; `None` for a pipe or a file.
fn terminal_width(fd: &impl std::os::fd::AsFd) -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .or_else(|| {
            let size = rustix::termios::tcgetwinsize(fd).ok()?;
            Some(usize::from(size.ws_col))
        })
        .filter(|w| *w > 0)
}

/// A one-line live progress display on stderr (only on a terminal), cut to the terminal's width.
async fn show_progress(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>, total: usize) {
    let mut running: Vec<&str> = Vec::new();
    let mut finished = 0;
    let mut err = std::io::stderr();
    let width = terminal_width(&err).unwrap_or(80);
    while let Some(event) = rx.recv().await {
        match event {
            Event::Started { id } => running.push(id),
            Event::Finished { id, .. } => {
                running.retain(|r| *r != id);
                finished += 1;
            }
        }
        let line = report::table::progress_line(finished, total, &running, width);
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }
    let _ = write!(err, "\r\x1b[2K");
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    // `NETCHECK_LOG` as `target=level,…`; a value that does not parse leaves the default.
    let filter = std::env::var("NETCHECK_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_target("netcheck", level));
    // Every event through the sink: a log line at debug level can quote a server's answer.
    // No ANSI styling, which the sink would show escaped.
    // The filter decides; the builder's own cap (INFO by default) would drop `-vv`'s debug lines.
    let _ = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(false)
        .with_writer(|| Sink::new(std::io::stderr()))
        .finish()
        .with(filter)
        .try_init();
}

/// `netcheck man`: the top page lists the subcommands only, so each subcommand follows as a
/// page of its own (`netcheck-run(1)`, …) with every flag and its `NETCHECK_*` twin.
fn man(out: &mut dyn Write) -> std::io::Result<()> {
    let cli = Cli::command();
    clap_mangen::Man::new(cli.clone()).render(out)?;
    for sub in cli.get_subcommands() {
        let page = sub
            .clone()
            .display_name(format!("netcheck-{}", sub.get_name()))
            .bin_name(format!("netcheck {}", sub.get_name()));
        clap_mangen::Man::new(page).render(out)?;
    }
    Ok(())
}

/// `netcheck explain [ID]`.
fn explain(id: Option<&str>, out: &mut dyn Write) -> anyhow::Result<u8> {
    match id {
        None => {
            // Columns as wide as their longest entry, so no row is pushed out of line.
            let id_width = catalog::rows()
                .iter()
                .map(|r| r.id.as_str().len())
                .max()
                .unwrap_or(0);
            let area_width = catalog::rows()
                .iter()
                .map(|r| r.area.len())
                .max()
                .unwrap_or(0);
            for row in catalog::rows() {
                writeln!(
                    out,
                    "{:<id_width$} {:<area_width$} {}",
                    row.id.as_str(),
                    row.area,
                    row.symptom
                )?;
            }
        }
        Some(id) => {
            let row = catalog::find(id).ok_or_else(|| {
                Error::Usage(format!(
                    "no catalog row `{id}`; `netcheck explain` lists them all"
                ))
            })?;
            writeln!(
                out,
                "{} ({})\n\nSymptom:    {}\nCause:      {}\nResolution:",
                row.id, row.area, row.symptom, row.cause
            )?;
            for line in row.resolution.lines() {
                writeln!(out, "  {line}")?;
            }
        }
    }
    Ok(exit_code::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every boolean flag with an environment twin, in every subcommand.
    fn boolean_twins(cmd: &clap::Command) -> Vec<clap::Arg> {
        cmd.get_arguments()
            .filter(|a| a.get_env().is_some() && matches!(a.get_action(), clap::ArgAction::SetTrue))
            .cloned()
            .chain(cmd.get_subcommands().flat_map(boolean_twins))
            .collect()
    }

    #[test]
    fn boolean_twins_take_what_shells_write() {
        let twins = boolean_twins(&Cli::command());
        assert!(
            twins.len() >= 2,
            "NETCHECK_STRICT and NETCHECK_FULL at least"
        );
        for arg in twins {
            // The same value parser on a flag that takes a value, as the twin's value is taken.
            let probe = arg.clone().action(clap::ArgAction::Set).env(None::<&str>);
            let flag = format!("--{}", arg.get_long().unwrap_or_default());
            let parse = |v: &str| {
                clap::Command::new("t")
                    .arg(probe.clone())
                    .try_get_matches_from(["t", &flag, v])
                    .is_ok()
            };
            for value in ["1", "0", "true", "false", "yes", "no", "YES", "False"] {
                assert!(parse(value), "{:?}={value} refused", arg.get_env());
            }
            assert!(!parse("maybe"), "{:?} takes anything", arg.get_env());
        }
    }
}
