//! The run's time axis, computed once and drawn by both waterfalls (the table's bars and the HTML
//! page's SVG), so both put every check on the same scale and name the same end.

use super::RunReport;
use crate::outcome::Verdict;

/// From the run's start (0 ms) to the later of its end and the last check's end (a check cut off
/// by the deadline can end after the run's own clock stopped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeAxis {
    end_ms: f64,
}

impl TimeAxis {
    /// The axis of `report`'s checks that ran.
    #[must_use]
    pub fn of(report: &RunReport) -> Self {
        let end_ms = report
            .checks
            .iter()
            .filter(|c| c.verdict != Verdict::Skip)
            .map(|c| c.started_ms + c.duration_ms)
            .fold(report.duration_ms, f64::max)
            // An empty or instant run still has an axis to divide by.
            .max(1.0);
        Self { end_ms }
    }

    /// Where the axis ends, in ms from the run's start.
    #[must_use]
    pub fn end_ms(self) -> f64 {
        self.end_ms
    }

    /// Where `ms` falls on the axis, from 0.0 (the start) to 1.0 (the end).
    #[must_use]
    pub fn at(self, ms: f64) -> f64 {
        (ms / self.end_ms).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::TimeAxis;
    use crate::report::tests::sample;

    #[test]
    fn the_axis_reaches_the_last_check_that_ran_even_past_the_runs_end() {
        let mut report = sample();
        assert!((TimeAxis::of(&report).end_ms() - report.duration_ms).abs() < 1e-9);
        report.checks[1].duration_ms = 400.0;
        let axis = TimeAxis::of(&report);
        assert!((axis.end_ms() - 400.5).abs() < 1e-9, "{axis:?}");
        assert!((axis.at(200.25) - 0.5).abs() < 1e-9);
        assert!((axis.at(1000.0) - 1.0).abs() < 1e-9);
    }
}
