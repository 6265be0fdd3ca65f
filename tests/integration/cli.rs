//! The command line as a user meets it: usage errors exit 2 with a clear message, `explain`
//! prints catalog rows, every `run` flag has a `NETCHECK_*` twin, `--only`/`--skip` select.

use crate::support::run::{assert_check, check, netcheck};
use crate::support::skip::{Lack, skip};

const HOST: &str = "myorg-myaccount.snowflakecomputing.com";

#[test]
fn explain_lists_every_row_and_prints_one() {
    let all = netcheck(&["explain"]).run();
    assert_eq!(all.code, 0);
    for id in [
        "connection-refused",
        "tls-inspection",
        "timeout",
        "network-policy",
        "dns-nxdomain",
        "proxy-denied",
    ] {
        assert!(
            all.stdout.lines().any(|l| l.starts_with(id)),
            "{id} missing from:\n{}",
            all.stdout
        );
    }
    let one = netcheck(&["explain", "tls-inspection"]).run();
    assert_eq!(one.code, 0);
    assert!(
        one.stdout.contains("Symptom:") && one.stdout.contains("Resolution:"),
        "{}",
        one.stdout
    );
    assert!(
        one.stdout.contains("openssl s_client"),
        "resolution should carry a command:\n{}",
        one.stdout
    );
}

#[test]
fn explain_unknown_row_is_a_usage_error() {
    let r = netcheck(&["explain", "no-such-row"]).run();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no-such-row"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2_with_the_reason() {
    for (args, needle) in [
        (vec!["run"], "no account"),
        (vec!["run", "--account", "bad acct"], "invalid --account"),
        (
            vec!["run", "--account", "myorg-a", "--resolve", "x:1"],
            "invalid --resolve",
        ),
        (
            vec!["run", "--account", "myorg-a", "--only", "dns.acount"],
            "unknown check id",
        ),
        (
            vec!["run", "--account", "myorg-a", "--timeout", "0"],
            "--timeout",
        ),
        (
            vec!["run", "--account", "myorg-a", "--dns-server", "dns.example"],
            "--dns-server",
        ),
    ] {
        let r = netcheck(&args).run();
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(needle),
            "{args:?}: expected `{needle}` in {}",
            r.stderr
        );
        assert!(
            r.stdout.is_empty(),
            "{args:?}: nothing on stdout on a usage error"
        );
    }
}

#[test]
fn environment_twins_configure_a_run() {
    let closed = crate::support::tls_servers::closed_port().port();
    let r = netcheck(&[] as &[&str])
        .args(&["run"])
        .env("NETCHECK_ACCOUNT", &format!("https://{HOST}:{closed}"))
        .env("NETCHECK_RESOLVE", &format!("{HOST}:{closed}:127.0.0.1"))
        .env("NETCHECK_FORMAT", "json")
        .env("NETCHECK_ONLY", "tcp.account")
        .run();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    assert_check(&report, "tcp.account", "fail", Some("connection-refused"));
}

#[test]
fn every_run_flag_has_an_environment_twin() {
    let help = netcheck(&["run", "--help"]).run().stdout;
    let mut flag: Option<String> = None;
    let mut missing = Vec::new();
    let mut seen = 0;
    // A flag's block runs from its `--name` line to the next flag's.
    for line in help.lines().chain(std::iter::once("  --end")) {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        let starts_flag =
            (2..=6).contains(&indent) && (trimmed.starts_with("--") || trimmed.starts_with("-v, "));
        if starts_flag {
            if let Some(done) = flag.take() {
                missing.push(done);
            }
            let name = trimmed
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .unwrap_or_default();
            if !matches!(name, "--help" | "--end") {
                seen += 1;
                flag = Some(name.to_owned());
            }
        }
        if line.contains("[env: NETCHECK_") {
            flag = None;
        }
    }
    assert!(seen > 30, "parsed only {seen} flags from:\n{help}");
    assert!(
        missing.is_empty(),
        "flags without a NETCHECK_* twin: {missing:?}"
    );
}

#[test]
fn skip_skips_dependents_with_the_reason() {
    let r = netcheck(&[
        "run",
        "--account",
        HOST,
        "--resolve",
        &format!("{HOST}:443:127.0.0.1"),
        "--skip",
        "dns.account",
        "--format",
        "json",
    ])
    .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    assert_check(&report, "dns.account", "skip", None);
    assert_check(&report, "tcp.account", "skip", None);
    let reason = check(&report, "tcp.account")["skip_reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("dns.account"), "{reason}");
}

#[test]
fn strict_turns_a_warning_into_exit_1() {
    let relaxed = a_run_that_warns().run();
    assert_eq!(relaxed.code, 0, "{}", relaxed.stderr);
    assert_check(
        &relaxed.json(),
        "dns.account",
        "warn",
        Some("dns-private-address"),
    );
    let strict = a_run_that_warns().args(&["--strict"]).run();
    assert_eq!(strict.code, 1);
}

/// A public Snowflake host answering with a private address warns (`dns-private-address`);
/// `--only` keeps the run to DNS, so nothing ever connects to that address.
fn a_run_that_warns() -> crate::support::run::Netcheck {
    netcheck(&[
        "run",
        "--account",
        HOST,
        "--resolve",
        &format!("{HOST}:443:10.20.30.40"),
        "--only",
        "dns.account",
        "--format",
        "json",
    ])
}

#[test]
fn a_named_connection_runs_and_json_says_where_each_setting_came_from() {
    let emu = crate::support::emulate::Emulate::start(&[]);
    let mut run = netcheck(&[
        "run",
        "--connection",
        "emulator",
        "--full",
        "--format",
        "json",
        "--role",
        "NETCHECK_ROLE",
    ]);
    for (k, v) in emu.env() {
        run = run.env(&k, &v);
    }
    let r = run.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    assert_check(&report, "stream.commit", "pass", None);
    let sources = &report["target"]["sources"];
    assert_eq!(sources["user"]["value"], "NETCHECK_USER");
    assert_eq!(sources["user"]["source"]["kind"], "file");
    assert_eq!(
        sources["user"]["source"]["key"],
        "connections.emulator.user"
    );
    assert_eq!(
        sources["role"]["source"]["kind"], "flag",
        "a flag wins over the file"
    );
}

#[test]
fn verbose_and_json_list_every_setting_with_its_source() {
    let r = netcheck(&[
        "run",
        "--account",
        HOST,
        "--resolve",
        &format!("{HOST}:443:127.0.0.1"),
        "--only",
        "dns.account",
        "--timeout",
        "4",
        "--format",
        "json",
        "-v",
    ])
    .env("NETCHECK_DEADLINE", "30")
    .env("HTTPS_PROXY", "http://alice:hunter2@proxy.example:3128")
    .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in [
        &format!("netcheck: resolve = {HOST}:443:127.0.0.1 (from --resolve)"),
        "netcheck: timeout = 4 s (from --timeout)",
        "netcheck: deadline = 30 s (from $NETCHECK_DEADLINE)",
        "netcheck: budget_scale = 1 (from default)",
        "netcheck: proxy = http://alice@proxy.example:3128 (from $HTTPS_PROXY)",
        &format!("netcheck: target = {HOST} (from --account)"),
    ] {
        assert!(
            r.stderr.lines().any(|l| l == line),
            "{line} not in:\n{}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains("hunter2") && !r.stdout.contains("hunter2"));
    let report = r.json();
    let settings = report["settings"].as_array().unwrap();
    let deadline = settings.iter().find(|s| s["name"] == "deadline").unwrap();
    assert_eq!(deadline["value"], "30 s");
    assert_eq!(deadline["source"]["kind"], "env");
    assert_eq!(deadline["source"]["name"], "NETCHECK_DEADLINE");
}

#[test]
fn boolean_variables_take_one_zero_yes_no_in_any_case() {
    // The run warns: NETCHECK_STRICT decides the code.
    let run = |strict: &str, full: &str| {
        a_run_that_warns()
            .env("NETCHECK_STRICT", strict)
            .env("NETCHECK_FULL", full)
            .run()
    };
    for (strict, full, code, shown) in [
        ("1", "yes", 1, "true"),
        ("YES", "True", 1, "true"),
        ("0", "no", 0, "false"),
        ("No", "FALSE", 0, "false"),
    ] {
        let r = run(strict, full);
        assert_eq!(r.code, code, "NETCHECK_STRICT={strict}: {}", r.stderr);
        let report = r.json();
        let settings = report["settings"].as_array().unwrap();
        let got = settings.iter().find(|s| s["name"] == "full").unwrap();
        assert_eq!(got["value"], shown, "NETCHECK_FULL={full}");
    }
}

#[test]
fn a_negative_number_gets_the_range_not_unexpected_argument() {
    use clap::CommandFactory;
    let cli = netcheck::cli::Cli::command();
    let mut tried = Vec::new();
    for sub in ["run", "demo", "emulate"] {
        let cmd = cli.find_subcommand(sub).unwrap();
        // Every flag whose value is a number.
        let numeric = cmd.get_arguments().filter(|a| {
            a.get_value_names().is_some_and(|names| {
                names.iter().any(|n| {
                    ["SECS", "N", "F", "BYTES", "MS", "ROWS", "EVENTS_PER_SEC"]
                        .contains(&n.as_str())
                })
            })
        });
        for arg in numeric {
            let flag = format!("--{}", arg.get_long().unwrap());
            let mut args = vec![sub, &flag, "-1"];
            if sub == "run" {
                args.extend(["--account", HOST]);
            }
            let r = netcheck(&args).run();
            assert_eq!(r.code, 2, "{sub} {flag} -1: {}", r.stderr);
            assert!(
                !r.stderr.contains("unexpected argument")
                    && r.stderr.contains(&flag)
                    && ["positive", "0 or more", "is not in 1..", "between 1 and"]
                        .iter()
                        .any(|range| r.stderr.contains(range)),
                "{sub} {flag} -1 does not say the range:\n{}",
                r.stderr
            );
            tried.push(format!("{sub} {flag}"));
        }
    }
    assert!(tried.len() >= 14, "{tried:?}");
}

#[test]
fn completions_are_scripts_each_shell_accepts() {
    for (shell, marker) in [
        ("bash", "complete -F _netcheck"),
        ("zsh", "#compdef netcheck"),
        ("fish", "complete -c netcheck"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let r = netcheck(&["completions", shell]).run();
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains(marker), "{shell}:\n{}", r.stdout);
        assert!(
            r.stdout.contains("--deadline"),
            "{shell} misses run's flags"
        );
        // Where the shell is installed, it parses the script without running it.
        let check = match shell {
            "bash" => Some(("bash", ["-n"])),
            "zsh" => Some(("zsh", ["-n"])),
            "fish" => Some(("fish", ["--no-execute"])),
            _ => None,
        };
        let Some((program, flags)) = check.filter(|(p, _)| crate::support::dns::which(p).is_some())
        else {
            // .ci/run installs bash, zsh and fish; nothing here parses PowerShell.
            let lack = if check.is_some() {
                Lack::Tool
            } else {
                Lack::Optional
            };
            skip(
                lack,
                format!("{shell} is not installed; the script's structure was checked"),
            );
            continue;
        };
        let dir = crate::support::emulate::TempDir::new("completion");
        let script = dir.path().join("netcheck.completion");
        std::fs::write(&script, &r.stdout).unwrap();
        let parsed = std::process::Command::new(program)
            .args(flags)
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            parsed.status.success(),
            "{program} refuses the script: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
}

#[test]
fn man_prints_pages_that_man_renders_without_warnings() {
    let r = netcheck(&["man"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for page in [
        ".TH netcheck 1",
        ".TH netcheck-run 1",
        ".TH netcheck-demo 1",
    ] {
        assert!(r.stdout.contains(page), "{page} missing");
    }
    let Some(man) = crate::support::dns::which("man") else {
        skip(
            Lack::Optional,
            "man is not installed; the pages' structure was checked",
        );
        return;
    };
    let dir = crate::support::emulate::TempDir::new("completion");
    let file = dir.path().join("netcheck.1");
    std::fs::write(&file, &r.stdout).unwrap();
    let rendered = std::process::Command::new(man)
        .args(["--warnings", "-l"])
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(
        rendered.status.success() && warnings.is_empty(),
        "{warnings}"
    );
    assert!(
        text.contains("--deadline <SECS>") && text.contains("NETCHECK_DEADLINE"),
        "{text}"
    );
}

#[test]
fn a_report_path_in_a_missing_folder_stops_before_any_network_step() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = netcheck(&[
        "run",
        "--account",
        &format!("https://{HOST}:{port}"),
        "--resolve",
        &format!("{HOST}:{port}:127.0.0.1"),
        "--only",
        "tcp.account",
        "--junit",
        "/nonexistent-netcheck-dir/reports/x.xml",
    ])
    .run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the folder /nonexistent-netcheck-dir/reports does not exist"),
        "{}",
        r.stderr
    );
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "tcp.account connected before the path was checked"
    );
    let folder = netcheck(&["demo", "--junit", "/tmp"]).run();
    assert_eq!(folder.code, 2);
    assert!(folder.stderr.contains("is a folder"), "{}", folder.stderr);
}

#[test]
fn a_report_file_that_fails_late_still_leaves_the_report_on_stdout() {
    // /dev/full opens for writing, so it passes the check before the run; writing fails.
    let r = netcheck(&["demo", "--junit", "/dev/full", "--format", "json"]).run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.json()["summary"]["fail"], 0);
    assert!(
        r.stderr.contains("cannot write --junit /dev/full")
            && r.stderr.contains("the report above is complete"),
        "{}",
        r.stderr
    );
}

#[test]
fn output_speaks_to_the_user_not_of_internals() {
    use clap::CommandFactory;
    // Every help text, long and short, of every subcommand, and the whole catalog.
    let mut cli = netcheck::cli::Cli::command();
    let mut texts = vec![cli.render_long_help().to_string()];
    for sub in cli.get_subcommands_mut() {
        texts.push(sub.render_long_help().to_string());
    }
    let explain = netcheck(&["explain"]).run();
    texts.push(explain.stdout.clone());
    for text in &texts {
        for jargon in ["seed", "None", "Some("] {
            assert!(!text.contains(jargon), "`{jargon}` in:\n{text}");
        }
    }
    // `explain`: the symptom column starts at the same place on every row.
    // Each row: id, padding, area, padding, symptom; compare where the symptom starts.
    let starts: std::collections::BTreeSet<usize> = explain
        .stdout
        .lines()
        .map(|l| {
            let mut words = l.split_whitespace();
            let (id, area) = (words.next().unwrap(), words.next().unwrap());
            let after_area = l[id.len()..].find(area).unwrap() + id.len() + area.len();
            after_area + l[after_area..].find(|c: char| !c.is_whitespace()).unwrap()
        })
        .collect();
    assert_eq!(starts.len(), 1, "symptoms start at columns {starts:?}");
    let policy = netcheck(&["explain", "network-policy"]).run();
    assert!(
        policy.stdout.contains("401") && policy.stdout.contains("390422"),
        "Snowflake answers a network-policy rejection with 401 and code 390422:\n{}",
        policy.stdout
    );
    let demo = netcheck(&["demo"]).run();
    let header = demo.stdout.lines().next().unwrap_or_default();
    assert!(header.contains("embedded emulator"), "{header}");
}

#[test]
fn a_broken_connection_file_the_run_does_not_use_is_a_warning() {
    let home = crate::support::emulate::TempDir::new("broken-home");
    std::fs::write(home.path().join("connections.toml"), "[dev\n").unwrap();
    let args = [
        "run",
        "--account",
        HOST,
        "--resolve",
        &format!("{HOST}:443:127.0.0.1"),
        "--only",
        "dns.account",
    ];
    let home_dir = home.path().to_str().unwrap();
    let r = netcheck(&args).env("SNOWFLAKE_HOME", home_dir).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("netcheck: warning:") && r.stderr.contains("connections.toml"),
        "{}",
        r.stderr
    );
    let asked = netcheck(&args)
        .args(&["--connection", "dev"])
        .env("SNOWFLAKE_HOME", home_dir)
        .run();
    assert_eq!(asked.code, 2, "{}", asked.stderr);
}

#[test]
fn a_resolve_entry_the_run_never_uses_warns() {
    let r = netcheck(&[
        "run",
        "--account",
        HOST,
        "--resolve",
        &format!("{HOST}:443:127.0.0.1"),
        "--resolve",
        // A typo'd port: the run looks the account up on 443 only.
        &format!("{HOST}:4443:127.0.0.1"),
        "--only",
        "dns.account",
        "--format",
        "json",
    ])
    .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want = format!("--resolve {HOST}:4443 was not used");
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    assert!(
        !r.stderr.contains(&format!("{HOST}:443 was")),
        "{}",
        r.stderr
    );
    let report = r.json();
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().contains(&want));
}

#[test]
fn very_verbose_adds_timings_and_scrubbed_http_exchanges() {
    let r = netcheck(&["demo", "-vv"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        "netcheck: timeout = 5 s (from netcheck demo)",
        "netcheck: timing: dns.account started at +",
        "http: GET https://myorg-myaccount.snowflakecomputing.com/v2/streaming/hostname [authorization: ***",
        "http: POST https://myorg-myaccount.snowflakecomputing.com/oauth/token",
        "(body withheld: it carries credentials)",
        "-> 200",
    ] {
        assert!(r.stderr.contains(want), "{want} not in:\n{}", r.stderr);
    }
    // A JWT is base64url JSON: it starts with `eyJ`. Neither it nor a bearer value shows, nor
    // the stage's upload credentials of the `:pipe-info` answer.
    assert!(
        !r.stderr.contains("eyJ")
            && !r.stderr.contains("Bearer ")
            && !r.stderr.contains("EMULATOR-NOT-A-REAL"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains(":pipe-info")
                && l.contains("(body withheld: it carries credentials)")),
        "{}",
        r.stderr
    );
    let plain = netcheck(&["demo", "-v"]).run();
    assert!(!plain.stderr.contains("http: ") && !plain.stderr.contains("timing: "));
}
