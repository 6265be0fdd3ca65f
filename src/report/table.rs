//! The terminal report: one row per check (verdict, time, finding), then one block per root
//! cause (every check that saw it, the cause and the fix), then the summary. Colour only when
//! asked for (a terminal without `NO_COLOR`). Given the terminal's width, everything fits it:
//! the table fills it, and is a waterfall (each check's start → end on the run's time axis, the
//! critical path marked) when there is room; below [`TABLE_MIN`] columns it is a list; the
//! blocks wrap between words. Without a width (a pipe, a file) nothing is wrapped.

use std::io::{self, Write};

use comfy_table::{
    Attribute, Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table, Width,
    presets,
};

use super::timeline::TimeAxis;
use super::{CheckReport, RootCause, RunReport};
use crate::outcome::Verdict;
use crate::runner::Ending;

/// Narrower than this, the checks are a list: a bordered table's four columns do not fit.
pub const TABLE_MIN: usize = 60;
/// From this width on, the time column is a waterfall.
pub const WATERFALL_MIN: usize = 100;

/// A bar segment of a check on the critical path, of any other check, and the empty axis.
const CRITICAL: char = '█';
const OTHER: char = '▒';
const AXIS: char = '·';

/// How to lay the report out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    /// Colour the verdicts (SGR sequences).
    pub color: bool,
    /// The terminal's width in columns; `None` when the output is no terminal.
    pub width: Option<usize>,
}

/// Writes the table, the root causes and the summary.
pub fn write(report: &RunReport, layout: Layout, out: &mut dyn Write) -> io::Result<()> {
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
    let head = format!(
        "netcheck {against}{} ({})",
        report.target.url, report.started_at
    );
    para(out, &head, "", "  ", layout.width)?;
    match layout.width {
        Some(w) if w < TABLE_MIN => write_list(report, layout, w, out)?,
        _ => writeln!(out, "{}", table(report, layout))?,
    }
    if layout.width.is_some_and(|w| w >= WATERFALL_MIN) {
        writeln!(
            out,
            "{CRITICAL} critical path  {OTHER} other checks  {AXIS} 0 → {:.0} ms",
            TimeAxis::of(report).end_ms()
        )?;
    }
    if let Some(note) = report.not_applicable_note() {
        para(out, &note, "", "  ", layout.width)?;
    }
    for cause in &report.root_causes {
        writeln!(out)?;
        write_cause(report, cause, layout, out)?;
    }
    let s = &report.summary;
    writeln!(out)?;
    let summary = format!(
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
    );
    para(out, &summary, "", "", layout.width)
}

fn table(report: &RunReport, layout: Layout) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    if !layout.color {
        table.force_no_tty();
    }
    let bar = layout
        .width
        .filter(|w| *w >= WATERFALL_MIN)
        .map(|w| (w / 5).clamp(16, 48));
    match layout.width {
        Some(w) => {
            table
                .set_content_arrangement(ContentArrangement::DynamicFullWidth)
                .set_width(u16::try_from(w).unwrap_or(u16::MAX));
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Dynamic);
        }
    }
    let axis = TimeAxis::of(report);
    let time_header = match bar {
        Some(_) => format!("time 0 → {:.0} ms", axis.end_ms()),
        None => "time".into(),
    };
    table.set_header(vec!["check", "verdict", &time_header, "finding"]);
    for c in report.listed() {
        let time = match bar {
            _ if c.verdict == Verdict::Skip => String::new(),
            Some(width) => format!("{} {:>8}", waterfall(report, axis, c, width), millis(c)),
            None => millis(c),
        };
        table.add_row(vec![
            Cell::new(c.id),
            verdict_cell(c, layout.color),
            Cell::new(time).set_alignment(CellAlignment::Right),
            // Masked before comfy-table wraps it: a secret broken over two lines of a cell would
            // no longer match at the output boundary.
            Cell::new(crate::secret::scrub(&c.finding)),
        ]);
    }
    // The id, verdict and time columns keep their content on one line (the bar its width, the
    // rest of the terminal going to the finding); the finding wraps.
    let fixed = |w: usize| Width::Fixed(u16::try_from(w + 2).unwrap_or(u16::MAX));
    let id_width = report.listed().map(|c| c.id.len()).max().unwrap_or(0);
    let constraints = [
        (0, ColumnConstraint::LowerBoundary(fixed(id_width))),
        (1, ColumnConstraint::LowerBoundary(fixed("TIMEOUT".len()))),
    ];
    let bar_column = bar.map(|b| (2, ColumnConstraint::Absolute(fixed(b + " 99999 ms".len()))));
    for (i, constraint) in constraints.into_iter().chain(bar_column) {
        if let Some(column) = table.column_mut(i) {
            column.set_constraint(constraint);
        }
    }
    table
}

/// Below [`TABLE_MIN`] columns: a line per check (verdict, id, time), its finding wrapped under it.
fn write_list(
    report: &RunReport,
    layout: Layout,
    width: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    for c in report.listed() {
        let time = if c.verdict == Verdict::Skip {
            String::new()
        } else {
            format!(" {}", millis(c))
        };
        writeln!(out, "{} {}{time}", paint(c, layout.color), c.id)?;
        para(out, &c.finding, "  ", "  ", Some(width))?;
    }
    Ok(())
}

/// One root cause: the verdict, row and symptom; the checks that saw it with their findings;
/// the cause; the fix; where to read more.
fn write_cause(
    report: &RunReport,
    cause: &RootCause,
    layout: Layout,
    out: &mut dyn Write,
) -> io::Result<()> {
    let width = layout.width;
    let head = format!(
        "{} [{}] {}",
        cause.label(&report.checks),
        cause.row,
        cause.symptom
    );
    para(out, &head, "", "  ", width)?;
    writeln!(out, "  seen by:")?;
    for c in cause.seen_by(&report.checks) {
        para(out, &c.finding, &format!("  - {}: ", c.id), "      ", width)?;
    }
    para(out, &cause.cause, "  cause:  ", "          ", width)?;
    writeln!(out, "  fix:")?;
    for line in cause.fix.lines() {
        para(out, line, "    ", "      ", width)?;
    }
    let explain = format!("netcheck explain {}", cause.row);
    para(out, &explain, "  explain: ", "    ", width)
}

/// Writes `text` after `first`, wrapped at spaces to `width` (continuations after `rest`), its
/// secrets masked first; a word longer than a line (a key, a URL) stays whole, to be copied.
fn para(
    out: &mut dyn Write,
    text: &str,
    first: &str,
    rest: &str,
    width: Option<usize>,
) -> io::Result<()> {
    // Masked before it is wrapped, for the same reason as a table cell.
    let text = crate::secret::scrub(text);
    let Some(width) = width else {
        return writeln!(out, "{first}{text}");
    };
    let options = textwrap::Options::new(width)
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(false)
        // Host names and flags have hyphens: a line breaks between words only.
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    for line in textwrap::wrap(&text, options) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The live progress line (`[3/20] tls.account, auth.jwt`), cut to fit `width` so that the
/// terminal never wraps it (a wrapped line cannot be erased in place).
#[must_use]
pub fn progress_line(finished: usize, total: usize, running: &[&str], width: usize) -> String {
    let line = format!("[{finished}/{total}] {}", running.join(", "));
    // One column spare: a line that fills the last column wraps on some terminals.
    let room = width.saturating_sub(1);
    if line.chars().count() <= room {
        return line;
    }
    let mut cut: String = line.chars().take(room.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The check's bar on the run's time axis, `width` columns wide.
fn waterfall(report: &RunReport, axis: TimeAxis, c: &CheckReport, width: usize) -> String {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let at = |ms: f64| (axis.at(ms) * width as f64) as usize;
    let start = at(c.started_ms).min(width - 1);
    let end = at(c.started_ms + c.duration_ms).clamp(start + 1, width);
    let mark = if report.critical_path.contains(&c.id) {
        CRITICAL
    } else {
        OTHER
    };
    (0..width)
        .map(|i| {
            if (start..end).contains(&i) {
                mark
            } else {
                AXIS
            }
        })
        .collect()
}

fn millis(c: &CheckReport) -> String {
    format!("{:.0} ms", c.duration_ms)
}

fn verdict_cell(c: &CheckReport, color: bool) -> Cell {
    let cell = Cell::new(c.outcome.label());
    if color {
        cell.fg(colour(c.verdict)).add_attribute(Attribute::Bold)
    } else {
        cell
    }
}

/// The verdict label, coloured when asked (for the list layout, outside comfy-table).
fn paint(c: &CheckReport, color: bool) -> String {
    let text = format!("{:<7}", c.outcome.label());
    if !color {
        return text;
    }
    let sgr = match c.verdict {
        Verdict::Pass => 32,
        Verdict::Warn => 33,
        Verdict::Fail => 31,
        Verdict::Skip => 90,
    };
    format!("\u{1b}[1;{sgr}m{text}\u{1b}[0m")
}

fn colour(v: Verdict) -> Color {
    match v {
        Verdict::Pass => Color::Green,
        Verdict::Warn => Color::Yellow,
        Verdict::Fail => Color::Red,
        Verdict::Skip => Color::DarkGrey,
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::{Layout, progress_line, write};
    use crate::report::tests::{check_mut, sample};

    /// The sample report as the terminal shows it at `width` columns.
    fn render(width: Option<usize>) -> String {
        let mut out = Vec::new();
        write(
            &sample(),
            Layout {
                color: false,
                width,
            },
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test_case(40; "narrow: a list")]
    #[test_case(80; "a table")]
    #[test_case(160; "a waterfall")]
    fn fits_the_terminal(width: usize) {
        let text = render(Some(width));
        for line in text.lines() {
            // Only a word longer than a line (the key's ALTER USER statement) may overflow.
            assert!(
                line.chars().count() <= width || !line.trim().contains(' '),
                "{width} columns: {line:?}"
            );
        }
        insta::assert_snapshot!(format!("width_{width}"), text);
    }

    #[test_case(None; "a pipe")]
    #[test_case(Some(40); "a list")]
    #[test_case(Some(160); "a waterfall")]
    fn checks_of_another_authentication_are_one_line_not_rows(width: Option<usize>) {
        let mut report = sample();
        let oauth = ["proxy.env", "discovery.hostname"];
        for c in report.checks.iter_mut().filter(|c| oauth.contains(&c.id)) {
            c.not_applicable_to = Some("key-pair");
        }
        let mut out = Vec::new();
        let layout = Layout {
            color: false,
            width,
        };
        write(&report, layout, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("discovery.hostname"), "{text}");
        assert!(!text.contains("proxy.env"), "{text}");
        assert!(text.contains("dns.account"), "{text}");
        assert!(
            text.replace("\n  ", " ").contains(
                "2 checks not applicable to key-pair authentication not listed (--format json has them)"
            ),
            "{text}"
        );
        // Nothing is left out: no note.
        assert!(!render(width).contains("not applicable"));
    }

    /// A long secret a server echoed, in a finding and a root cause's evidence, at every layout:
    /// wrapping must not break it into pieces the output boundary no longer recognises.
    #[test_case(40; "a list")]
    #[test_case(60; "a narrow table")]
    #[test_case(160; "a waterfall")]
    fn a_secret_is_masked_before_it_is_wrapped(width: usize) {
        let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        // With a space, as a passphrase may have: the list breaks lines at spaces.
        let secret: String = (0..150)
            .map(|i| match i {
                75 => ' ',
                _ => char::from(alphabet[(i * 7 + i / 9) % alphabet.len()]),
            })
            .collect();
        let _ = crate::secret::Secret::new(secret.clone());
        let mut report = sample();
        let jwt = check_mut(&mut report, "auth.jwt");
        jwt.finding = format!("hostname: 401: you sent Authorization: Bearer {secret} and more");
        let mut out = Vec::new();
        {
            // As the CLI writes it: through the output boundary.
            let mut sink = crate::output::Sink::new(&mut out);
            let layout = Layout {
                color: false,
                width: Some(width),
            };
            write(&report, layout, &mut sink).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("***"), "{text}");
        let pieces: Vec<&str> = (0..secret.len() - 8).map(|i| &secret[i..i + 8]).collect();
        for piece in pieces {
            assert!(!text.contains(piece), "{piece} of the secret in\n{text}");
        }
    }

    #[test]
    fn the_table_fills_a_wide_terminal() {
        let text = render(Some(160));
        assert!(
            text.lines().nth(1).unwrap().chars().count() == 160,
            "{text}"
        );
    }

    #[test_case(40; "40 columns")]
    #[test_case(80; "80 columns")]
    fn the_progress_line_never_wraps(width: usize) {
        let running = [
            "tls.account",
            "auth.jwt",
            "policy.network",
            "discovery.hostname",
        ];
        for line in [
            progress_line(3, 20, &running, width),
            progress_line(3, 20, &running[..1], width),
        ] {
            assert!(line.chars().count() < width, "{line}");
            assert!(line.starts_with("[3/20] tls.account"), "{line}");
        }
    }
}
