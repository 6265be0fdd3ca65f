//! `--junit FILE`: one test case per check in one suite; a warning or failure carries the
//! symptom, cause, resolution and evidence; skipped checks are skipped; times in seconds.

use std::io::Write;

use junit_report::{Duration, ReportBuilder, TestCase, TestCaseBuilder, TestSuiteBuilder};

use super::{CheckReport, RunReport};
use crate::outcome::{StatusKind, Verdict};

/// Writes the report as `JUnit` XML. `strict` makes warnings failures, as it does for the exit code.
pub fn write(
    report: &RunReport,
    strict: bool,
    out: &mut dyn Write,
) -> Result<(), junit_report::Error> {
    let cases: Vec<TestCase> = report.checks.iter().map(|c| case(c, strict)).collect();
    let mut suite = TestSuiteBuilder::new(&format!("netcheck {}", report.target.account.host));
    suite.add_testcases(cases);
    if let Ok(ts) = time::OffsetDateTime::parse(
        &report.started_at,
        &time::format_description::well_known::Rfc3339,
    ) {
        suite.set_timestamp(ts);
    }
    ReportBuilder::new()
        .add_testsuite(suite.build())
        .build()
        .write_xml(out)
}

fn case(c: &CheckReport, strict: bool) -> TestCase {
    #[allow(clippy::cast_possible_truncation)]
    let time = Duration::microseconds((c.duration_ms * 1000.0) as i64);
    let mut builder = match (c.verdict, &c.diagnosis) {
        // Not a finding about the network: the check could not finish (JUnit's <error>).
        _ if c.outcome == StatusKind::TimedOut => error(c, time, "timed-out"),
        _ if c.outcome == StatusKind::InternalError => error(c, time, "internal-error"),
        (Verdict::Fail | Verdict::Warn, Some(d)) if c.verdict == Verdict::Fail || strict => {
            let mut b = TestCaseBuilder::failure(
                c.id,
                time,
                d.id.as_str(),
                &format!("{}: {}", d.symptom, c.finding),
            );
            b.set_trace(&details(c));
            b
        }
        (Verdict::Fail, None) => TestCaseBuilder::failure(c.id, time, "fail", &c.finding),
        // The Jenkins schema allows no attributes on <skipped/>: the reason goes to system-out.
        (Verdict::Skip, _) => {
            let mut b = TestCaseBuilder::skipped(c.id);
            b.set_system_out(c.skip_reason.as_deref().unwrap_or(&c.finding));
            b
        }
        _ => {
            let mut b = TestCaseBuilder::success(c.id, time);
            if c.verdict == Verdict::Warn {
                b.set_system_out(&format!("WARNING {}", details(c)));
            }
            b
        }
    };
    builder.set_classname(c.id.split('.').next().unwrap_or(c.id));
    builder.build()
}

fn error(c: &CheckReport, time: Duration, kind: &str) -> TestCaseBuilder {
    let mut b = TestCaseBuilder::error(c.id, time, kind, &c.finding);
    b.set_trace(&details(c));
    b
}

/// The diagnosis and evidence as text for the failure body.
fn details(c: &CheckReport) -> String {
    use std::fmt::Write as _;
    let mut s = format!("{}\n", c.finding);
    if let Some(d) = &c.diagnosis {
        let _ = writeln!(
            s,
            "diagnosis: {}\nsymptom: {}\ncause: {}\nresolution:\n{}",
            d.id, d.symptom, d.cause, d.resolution
        );
    }
    let _ = writeln!(
        s,
        "evidence: {}",
        serde_json::to_string_pretty(&c.evidence).unwrap_or_default()
    );
    s
}
