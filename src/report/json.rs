//! `--format json`: the `netcheck/1` document (documented in the README).

use std::io::{self, Write};

use super::RunReport;

/// Writes the report as pretty-printed JSON followed by a newline.
pub fn write(report: &RunReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}
