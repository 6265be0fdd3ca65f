//! The one way a test says it did not run (a part of) itself for want of something: a tool, a
//! venv, root for namespaces. Plain `cargo test` skips with the reason on stderr (`skipped: …`);
//! `.ci/run`, which installs every tool, sets [`REQUIRE_TOOLS`], under which a missing tool fails
//! the test with that same reason — so a CI image that lost a package cannot pass green on skips.

use std::fmt::Display;

/// The variable `.ci/run` sets to `1`: a missing [`Lack::Tool`] is a failure, not a skip.
pub const REQUIRE_TOOLS: &str = "NETCHECK_REQUIRE_TOOLS";

/// What a test lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lack {
    /// Something `.ci/run` provides: a package it installs (nginx, squid, dnsmasq, openssl,
    /// prometheus, chromium, …), one of its Python venvs, or root for namespaces.
    Tool,
    /// Something `.ci/run` does not promise: the `man` pager, or a kernel behaviour a test's
    /// premise needs. Always a skip.
    Optional,
}

/// Says `skipped: {why}` on stderr; or, for a [`Lack::Tool`] while [`REQUIRE_TOOLS`] is `1`,
/// fails the test with the same reason.
#[track_caller]
pub fn skip(lack: Lack, why: impl Display) {
    let required = std::env::var(REQUIRE_TOOLS).is_ok_and(|v| v == "1");
    match judge(lack, &why.to_string(), required) {
        Ok(line) => eprintln!("{line}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// The line a skip prints, or the failure it is when tools are required.
fn judge(lack: Lack, why: &str, required: bool) -> Result<String, String> {
    if required && lack == Lack::Tool {
        Err(format!("{REQUIRE_TOOLS}=1 and this test cannot run: {why}"))
    } else {
        Ok(format!("skipped: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Lack, judge};

    #[test]
    fn a_missing_tool_is_a_skip_unless_tools_are_required() {
        let why = "nginx is not installed";
        assert_eq!(
            judge(Lack::Tool, why, false),
            Ok("skipped: nginx is not installed".into())
        );
        assert_eq!(
            judge(Lack::Tool, why, true),
            Err("NETCHECK_REQUIRE_TOOLS=1 and this test cannot run: nginx is not installed".into())
        );
    }

    #[test]
    fn what_ci_does_not_promise_is_always_a_skip() {
        assert_eq!(
            judge(Lack::Optional, "man is not installed", true),
            Ok("skipped: man is not installed".into())
        );
    }
}
