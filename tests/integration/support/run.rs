//! Runs the real `netcheck` binary with a clean environment (no proxy variables or
//! `NETCHECK_*` leaking in from the developer's shell) and parses its JSON report back.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The stdout parsed as the JSON report (panics with the output when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A `netcheck` invocation with an explicit environment.
pub struct Netcheck {
    args: Vec<String>,
    env: HashMap<String, String>,
    via: Vec<String>,
}

/// Starts building an invocation.
pub fn netcheck<S: AsRef<str>>(args: &[S]) -> Netcheck {
    Netcheck {
        args: args.iter().map(|s| s.as_ref().to_owned()).collect(),
        env: HashMap::new(),
        via: Vec::new(),
    }
}

impl Netcheck {
    /// Adds arguments.
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Sets one environment variable (the environment is otherwise empty but for PATH).
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.to_owned(), v.to_owned());
        self
    }

    /// Runs the binary through a wrapper command, e.g. `ip netns exec NS …`: the binary's path
    /// and arguments follow the wrapper's own arguments.
    pub fn via<S: AsRef<str>>(mut self, wrapper: &[S]) -> Self {
        self.via = wrapper.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// Runs to completion.
    pub fn run(self) -> Run {
        let start = Instant::now();
        let binary = env!("CARGO_BIN_EXE_netcheck");
        let mut command = match self.via.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let Output {
            status,
            stdout,
            stderr,
        } = command
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .output()
            .expect("run netcheck");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }
}

/// The report entry of one check.
pub fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in report:\n{report:#}"))
}

/// Asserts a check's verdict and the catalog row it cites (`None`: no diagnosis).
#[track_caller]
pub fn assert_check(report: &Value, id: &str, verdict: &str, row: Option<&str>) {
    let c = check(report, id);
    assert_eq!(c["verdict"], verdict, "{id} verdict; check:\n{c:#}");
    match row {
        Some(row) => assert_eq!(c["diagnosis"]["id"], row, "{id} diagnosis; check:\n{c:#}"),
        None => assert!(
            c["diagnosis"].is_null(),
            "{id} has an unexpected diagnosis:\n{c:#}"
        ),
    }
}

/// `netcheck run --format json` against a loopback server under the Snowflake-like name `host`,
/// pinned with `--resolve` so no DNS query leaves the machine.
pub fn run_at(host: &str, port: u16) -> Netcheck {
    netcheck(&[
        "run",
        "--account",
        &format!("https://{host}:{port}"),
        "--resolve",
        &format!("{host}:{port}:127.0.0.1"),
        "--format",
        "json",
    ])
}
