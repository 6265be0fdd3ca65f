//! The run's top level, and the library's front door: settings in, a [`RunReport`] out.
//!
//! The command line, `demo` and any program that embeds netcheck (a connector's "check
//! connection", a test) go through here, so they run the same plan the same way:
//!
//! ```no_run
//! # async fn example(settings: netcheck::settings::Settings) -> Result<(), netcheck::error::Error> {
//! let report = netcheck::app::run(settings).await?;
//! println!("{} checks failed", report.summary.fail);
//! # Ok(())
//! # }
//! ```

use futures::Stream;
use tokio::sync::mpsc::UnboundedSender;

use crate::context::Ctx;
use crate::error::Error;
use crate::registry::{self, Plan};
use crate::report::RunReport;
use crate::runner::{self, Event, RunResult, Signal};
use crate::settings::Settings;

/// A finished run: the typed results (outcomes as the checks made them) and the report built
/// from them (what renderers and the exit code read).
#[derive(Debug)]
pub struct Finished {
    pub result: RunResult,
    pub report: RunReport,
}

/// Runs every check that applies to `settings` (the channel round trip when `settings.full`),
/// bounded by `settings.deadline`, and returns the report. Nothing is printed; nothing reads
/// flags or the environment. `Err` only when netcheck itself cannot run (e.g. no usable trust
/// roots); a failing network is in the report.
pub async fn run(settings: Settings) -> Result<RunReport, Error> {
    let plan = registry::plan(&[], &[], settings.full)?;
    Ok(run_plan(settings, &plan, None, futures::stream::pending())
        .await?
        .report)
}

/// Runs a chosen plan, sending progress events to `events` when given; the first of `signals`
/// ends the run early (its cleanup still runs, within the grace), a second cuts the cleanup
/// short.
pub async fn run_plan(
    settings: Settings,
    plan: &Plan,
    events: Option<UnboundedSender<Event>>,
    signals: impl Stream<Item = Signal>,
) -> Result<Finished, Error> {
    let ctx = Ctx::new(settings.clone())?;
    let resolver = ctx.net.resolver.clone();
    let result = runner::run(plan, ctx, events, signals).await;
    let mut report = RunReport::new(&settings, &result);
    // Only a run that went to its end can tell that an entry was never needed.
    if result.ending == runner::Ending::Completed {
        report
            .warnings
            .extend(resolver.unused_overrides().into_iter().map(|entry| {
            format!(
                "--resolve {entry} was not used: nothing in this run looked up that host and port"
            )
        }));
    }
    Ok(Finished { result, report })
}
