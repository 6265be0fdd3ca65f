//! The terminal report: one row per check (verdict, time, finding), then the diagnosis of each
//! warning and failure. Colour only when asked for (a terminal without `NO_COLOR`).

use std::io::{self, Write};

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};

use super::RunReport;
use crate::outcome::{StatusKind, Verdict};
use crate::runner::Ending;

/// Writes the table and the diagnoses.
pub fn write(report: &RunReport, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !color {
        table.force_no_tty();
    }
    table.set_header(vec!["check", "verdict", "time", "finding"]);
    for c in &report.checks {
        let verdict = Cell::new(label(c.outcome));
        let verdict = if color {
            verdict.fg(colour(c.verdict)).add_attribute(Attribute::Bold)
        } else {
            verdict
        };
        let time = if c.verdict == Verdict::Skip {
            String::new()
        } else {
            format!("{:.0} ms", c.duration_ms)
        };
        table.add_row(vec![
            Cell::new(c.id),
            verdict,
            Cell::new(time),
            Cell::new(&c.finding),
        ]);
    }
    // A demo's settings are its own: say the target is the emulator, not an account.
    let demo = report
        .settings
        .iter()
        .any(|s| s.source == crate::connection::Source::Demo);
    let against = if demo {
        "demo against the embedded emulator at "
    } else {
        ""
    };
    writeln!(
        out,
        "netcheck {against}{} ({})",
        report.target.url, report.started_at
    )?;
    writeln!(out, "{table}")?;
    for c in report
        .checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Warn | Verdict::Fail))
    {
        let Some(d) = &c.diagnosis else { continue };
        writeln!(out)?;
        writeln!(
            out,
            "{} {} [{}]: {}",
            label(c.outcome),
            c.id,
            d.id,
            d.symptom
        )?;
        writeln!(out, "  found:  {}", c.finding)?;
        writeln!(out, "  cause:  {}", d.cause)?;
        writeln!(out, "  fix:")?;
        for line in d.resolution.lines() {
            writeln!(out, "    {line}")?;
        }
        writeln!(out, "  explain: netcheck explain {}", d.id)?;
    }
    let s = &report.summary;
    writeln!(out)?;
    writeln!(
        out,
        "{} passed, {} warned, {} failed, {} skipped in {:.0} ms (critical path {:.0} ms){}",
        s.pass,
        s.warn,
        s.fail,
        s.skip,
        report.duration_ms,
        report.critical_path_ms,
        match report.ending {
            Ending::DeadlineReached => "; the run deadline was reached",
            Ending::Interrupted => "; interrupted",
            Ending::Completed => "",
        }
    )
}

fn label(kind: StatusKind) -> &'static str {
    match kind {
        StatusKind::Pass => "PASS",
        StatusKind::Warn => "WARN",
        StatusKind::Fail => "FAIL",
        StatusKind::TimedOut => "TIMEOUT",
        StatusKind::InternalError => "ERROR",
        StatusKind::Skip => "SKIP",
    }
}

fn colour(v: Verdict) -> Color {
    match v {
        Verdict::Pass => Color::Green,
        Verdict::Warn => Color::Yellow,
        Verdict::Fail => Color::Red,
        Verdict::Skip => Color::DarkGrey,
    }
}
