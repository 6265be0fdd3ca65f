//! `--html FILE`: the report as one self-contained page (inline CSS and SVG; no script, no
//! external asset) to hand to a network engineer: the summary, a waterfall of the run with the
//! critical path, each root cause with its cause, fix and evidence, the certificate chains the
//! servers presented, and where every setting came from (secrets only as "set"). maud escapes
//! every interpolated string, so a server's words can never become markup.

use std::io::{self, Write};

use maud::{DOCTYPE, Markup, html};

use super::timeline::TimeAxis;
use super::{CheckReport, RootCause, RunReport};
use crate::outcome::Verdict;

/// The waterfall's geometry, in SVG user units.
const LABEL_WIDTH: f64 = 170.0;
const AXIS_WIDTH: f64 = 720.0;
const ROW_HEIGHT: f64 = 20.0;

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em; color: #1d232a; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccd; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; vertical-align: top; padding: .2em .6em; border-bottom: 1px solid #e4e6ea; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f5f6f8; padding: .6em; margin: .3em 0; }
.pass { color: #17803d; } .warn { color: #a15c00; } .fail { color: #c0262d; } .skip { color: #6b7280; }
.verdict { font-weight: bold; } .nowrap { white-space: nowrap; }
.cause { border-left: 4px solid #c0262d; padding-left: 1em; margin: 1.5em 0; }
.cause.warned { border-color: #a15c00; } .summary span { margin-right: 1.5em; }
svg text { font: 12px system-ui, sans-serif; } svg .critical { stroke: #1d232a; stroke-width: 2; }
";

/// Writes the page.
pub fn write(report: &RunReport, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(page(report).into_string().as_bytes())
}

fn page(report: &RunReport) -> Markup {
    let s = &report.summary;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "netcheck " (report.target.url) }
                style { (STYLE) }
            }
            body {
                h1 { "netcheck " (report.target.url) }
                p.summary {
                    span.pass { (s.pass) " passed" }
                    span.warn { (s.warn) " warned" }
                    span.fail { (s.fail) " failed" }
                    span.skip { (s.skip) " skipped" }
                    span { "in " (format!("{:.0}", report.duration_ms)) " ms (critical path "
                        (format!("{:.0}", report.critical_path_ms)) " ms)" }
                }
                p { "Started " (report.started_at) " · netcheck " (report.netcheck_version)
                    " · ended: " (format!("{:?}", report.ending).to_lowercase()) }
                h2 { "Waterfall" }
                (waterfall(report))
                h2 { "Root causes" }
                @if report.root_causes.is_empty() {
                    p { "No warning and no failure." }
                }
                @for cause in &report.root_causes {
                    (root_cause(report, cause))
                }
                h2 { "Checks" }
                table {
                    tr { th { "check" } th { "verdict" } th { "time" } th { "finding" } }
                    @for c in report.listed() {
                        tr {
                            td { (c.id) }
                            td.verdict.(c.verdict.as_str()) { (c.outcome.label()) }
                            td.nowrap { @if c.verdict != Verdict::Skip { (format!("{:.0} ms", c.duration_ms)) } }
                            td { (c.finding) }
                        }
                    }
                }
                @if let Some(note) = report.not_applicable_note() {
                    p { (note) }
                }
                h2 { "Certificate chains" }
                (chains(report))
                h2 { "Settings" }
                table {
                    tr { th { "setting" } th { "value" } th { "from" } }
                    @for setting in &report.settings {
                        tr { td { (setting.name) } td { (setting.value) } td { (setting.source) } }
                    }
                }
            }
        }
    }
}

/// Each check that ran as a bar from its start to its end on the run's time axis; the critical
/// path's bars are outlined.
// Row counts are a few dozen: exact as f64.
#[allow(clippy::cast_precision_loss)]
fn waterfall(report: &RunReport) -> Markup {
    let ran: Vec<&CheckReport> = report
        .checks
        .iter()
        .filter(|c| c.verdict != Verdict::Skip)
        .collect();
    let axis = TimeAxis::of(report);
    let x = |ms: f64| LABEL_WIDTH + axis.at(ms) * AXIS_WIDTH;
    let height = (ran.len() as f64 + 2.0) * ROW_HEIGHT;
    let width = LABEL_WIDTH + AXIS_WIDTH + 70.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) role="img" aria-label="waterfall" {
            @for (i, c) in ran.iter().enumerate() {
                @let y = (i as f64) * ROW_HEIGHT;
                @let critical = report.critical_path.contains(&c.id);
                text x="0" y=(y + 14.0) { (c.id) }
                rect x=(x(c.started_ms)) y=(y + 3.0)
                    width=((x(c.started_ms + c.duration_ms) - x(c.started_ms)).max(1.5)) height=(ROW_HEIGHT - 6.0)
                    fill=(bar_colour(c.verdict)) class=[critical.then_some("critical")] {
                    title { (c.id) ": " (format!("{:.1}", c.started_ms)) " → "
                        (format!("{:.1}", c.started_ms + c.duration_ms)) " ms" }
                }
                text x=(x(c.started_ms + c.duration_ms) + 4.0) y=(y + 14.0) {
                    (format!("{:.0} ms", c.duration_ms))
                }
            }
            @let base = (ran.len() as f64) * ROW_HEIGHT + 4.0;
            line x1=(LABEL_WIDTH) y1=(base) x2=(LABEL_WIDTH + AXIS_WIDTH) y2=(base) stroke="#888";
            text x=(LABEL_WIDTH) y=(base + 16.0) { "0 ms" }
            text x=(LABEL_WIDTH + AXIS_WIDTH - 60.0) y=(base + 16.0) { (format!("{:.0} ms", axis.end_ms())) }
            text x=(LABEL_WIDTH + 120.0) y=(base + 16.0) { "outlined: the critical path" }
        }
    }
}

fn root_cause(report: &RunReport, cause: &RootCause) -> Markup {
    let class = match cause.verdict {
        Verdict::Warn => "cause warned",
        _ => "cause",
    };
    html! {
        section class=(class) {
            h3 { span.verdict.(cause.verdict.as_str()) { (cause.label(&report.checks)) }
                " " (cause.row) ": " (cause.symptom) }
            p { b { "Cause: " } (cause.cause) }
            p { b { "Fix:" } }
            pre { (cause.fix) }
            p { b { "Seen by:" } }
            @for c in cause.seen_by(&report.checks) {
                details open {
                    summary { (c.id) ": " (c.finding) }
                    pre { (serde_json::to_string_pretty(&c.evidence).unwrap_or_default()) }
                }
            }
            p { "More: " code { "netcheck explain " (cause.row) } }
        }
    }
}

/// The chain each TLS check recorded (its evidence's `chain`), end entity first.
fn chains(report: &RunReport) -> Markup {
    let with_chain: Vec<(&str, &Vec<serde_json::Value>)> = report
        .checks
        .iter()
        .filter_map(|c| Some((c.id, c.evidence.get("chain")?.as_array()?)))
        .filter(|(_, chain)| !chain.is_empty())
        .collect();
    html! {
        @if with_chain.is_empty() {
            p { "No certificate was recorded." }
        }
        @for (id, chain) in with_chain {
            h3 { (id) }
            table {
                tr { th { "#" } th { "certificate" } }
                @for (i, cert) in chain.iter().enumerate() {
                    tr {
                        td { (i) }
                        td {
                            @if let Some(fields) = cert.as_object() {
                                @for (key, value) in fields {
                                    b { (key) ": " } (plain(value)) br;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A JSON value as text: strings without their quotes, lists joined.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn bar_colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "#5cb87a",
        Verdict::Warn => "#e0a030",
        Verdict::Fail | Verdict::Skip => "#d9534f",
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::RowId;
    use crate::outcome::StatusKind;
    use crate::report::tests::{check_mut, sample};
    use crate::report::{Diagnosis, causes, table};

    #[test]
    fn the_page_and_the_table_share_the_time_axis_and_the_cause_labels() {
        // auth.jwt ran out of time, and past the run's own end.
        let mut report = sample();
        let jwt = check_mut(&mut report, "auth.jwt");
        jwt.outcome = StatusKind::TimedOut;
        jwt.duration_ms = 400.0;
        jwt.diagnosis = Some(Diagnosis::from(RowId::Timeout.row()));
        report.root_causes = causes::group(&report.target.account, &report.checks);
        let mut page = Vec::new();
        super::write(&report, &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        let mut text = Vec::new();
        let layout = table::Layout {
            color: false,
            width: Some(160),
        };
        table::write(&report, layout, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();

        assert!(page.contains(">404 ms</text>"), "{page}");
        assert!(text.contains("time 0 → 404 ms"), "{text}");
        assert!(text.contains("0 → 404 ms\n"), "{text}");
        // tcp.account (2.6 → 33.6 ms) on a 32-column bar of 404.4 ms: 2 columns, not the 4 it
        // had on the run's own 217.5 ms.
        let bar = text
            .lines()
            .find(|l| l.contains("tcp.account"))
            .and_then(|l| l.split('┆').nth(2))
            .unwrap();
        assert_eq!(bar.matches('▒').count(), 2, "{bar}");
        assert!(text.contains("TIMEOUT [timeout]"), "{text}");
        assert!(
            page.contains(r#"<span class="verdict fail">TIMEOUT</span> timeout:"#),
            "{page}"
        );
    }

    #[test]
    fn every_string_is_escaped_and_nothing_is_fetched() {
        let mut out = Vec::new();
        super::write(&sample(), &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("CN=&lt;/svg&gt;&lt;b&gt;Lab Intermediate&lt;/b&gt;"));
        assert_eq!(page.matches("</svg>").count(), 1);
        for external in ["src=", "href=", "<link", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
