//! Where every effective setting came from: a flag, its `NETCHECK_*` twin, a Snowflake
//! connection file or variable, a proxy variable, `netcheck demo`, or the default. `-v` prints
//! the list and the JSON report carries it as `settings`, so "why did it use that?" has an answer
//! without reading the code. Secrets show only as `set`; a proxy's password never shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::Settings;
use crate::connection::Source;
use crate::net::proxy::{FromVariable, ProxySetting};
use crate::net::resolver::Upstream;

/// The source of each flag-backed setting, by clap argument id (`timeout`, `resolve`, …), as
/// clap saw it: typed on the command line, taken from the `NETCHECK_*` twin, or defaulted.
/// Settings not listed come from `fallback` (`default`, or `demo` for the demo's own values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    given: BTreeMap<String, Source>,
    fallback: Source,
}

impl Origins {
    /// Reads every argument's source from a parsed (sub)command: `cmd` is the command that
    /// declared the arguments, `matches` what clap parsed for it.
    #[must_use]
    pub fn from_matches(cmd: &clap::Command, matches: &clap::ArgMatches) -> Self {
        let given = cmd
            .get_arguments()
            .filter_map(|arg| {
                let id = arg.get_id().as_str();
                let source = match matches.value_source(id)? {
                    clap::parser::ValueSource::CommandLine => Source::Flag {
                        name: arg
                            .get_long()
                            .map_or_else(|| id.to_owned(), |l| format!("--{l}")),
                    },
                    clap::parser::ValueSource::EnvVariable => Source::Env {
                        name: arg.get_env()?.to_string_lossy().into_owned(),
                    },
                    _ => Source::Default,
                };
                Some((id.to_owned(), source))
            })
            .collect();
        Self {
            given,
            fallback: Source::Default,
        }
    }

    /// The origins of `netcheck demo`'s settings: its own choices, unless a flag says otherwise.
    #[must_use]
    pub fn demo() -> Self {
        Self {
            given: BTreeMap::new(),
            fallback: Source::Demo,
        }
    }

    /// Adds the sources `other` knows of (the demo's flags over its own choices).
    pub fn extend(&mut self, other: Self) {
        self.given.extend(other.given);
    }

    /// Where the setting of clap argument `id` came from.
    #[must_use]
    pub fn get(&self, id: &str) -> Source {
        self.given
            .get(id)
            .cloned()
            .unwrap_or_else(|| self.fallback.clone())
    }
}

/// One effective setting: its name, the value as shown (secrets as `set`) and its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The setting, as its flag is spelled without dashes (`timeout`, `private_key_file`).
    pub name: String,
    /// The value in words a person reads.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

impl Settings {
    /// Every effective setting with its source: the connection's (account, user, key file, role,
    /// host, port, …), then name resolution, trust, proxy, time bounds and what the run streams.
    #[must_use]
    pub fn provenance(&self) -> Vec<Setting> {
        let mut rows: Vec<Setting> = self
            .connection
            .sources()
            .into_iter()
            .map(|(name, value, source)| row(name, value, source.clone()))
            .collect();
        let o = &self.origins;
        rows.extend(
            self.resolve
                .iter()
                .map(|r| row("resolve", resolve_entry(r), o.get("resolve"))),
        );
        let dns = match self.dns {
            Upstream::System => "the system resolver (/etc/resolv.conf, /etc/hosts)".to_owned(),
            Upstream::Server(addr) => addr.to_string(),
            Upstream::PinnedOnly => "none: only the pinned hosts resolve".to_owned(),
        };
        rows.push(row("dns_server", dns, o.get("dns_server")));
        if let Some(path) = &self.ca_file {
            rows.push(row("ca_file", path.display().to_string(), o.get("ca_file")));
        } else if o.get("ca_file") == Source::Demo {
            rows.push(row("ca_file", "the emulator's CA".into(), Source::Demo));
        }
        if let Some(path) = &self.proxy_cacert {
            let shown = path.display().to_string();
            rows.push(row("proxy_cacert", shown, o.get("proxy_cacert")));
        }
        rows.push(self.proxy_row());
        if let Some(list) = &self.proxy.no_proxy {
            rows.push(row(
                "noproxy",
                list.value.clone(),
                variable_source(&list.variable, "--noproxy", o.get("noproxy")),
            ));
        }
        for (name, d) in [
            ("timeout", self.timeout),
            ("deadline", self.deadline),
            ("cleanup_grace", self.cleanup_grace),
        ] {
            // An unset --cleanup-grace takes the --timeout: credit the value to where it is from.
            let source = match (name, o.get(name)) {
                ("cleanup_grace", Source::Default) => o.get("timeout"),
                (_, s) => s,
            };
            rows.push(row(name, seconds(d), source));
        }
        rows.push(row(
            "budget_scale",
            format!("{}", self.budget_scale),
            o.get("budget_scale"),
        ));
        if let Some(entries) = &self.allowlist {
            let shown = format!("{} hosts", entries.len());
            rows.push(row("allowlist", shown, o.get("allowlist")));
        }
        rows.push(row(
            "concurrency",
            self.concurrency.to_string(),
            o.get("concurrency"),
        ));
        rows.push(row("full", self.full.to_string(), o.get("full")));
        if self.full {
            rows.push(row("rows", self.rows.to_string(), o.get("rows")));
        }
        if let Some(load) = &self.rate {
            // A profile sets the rate and the event size unless their own flags do.
            let or_profile = |id: &str| match (o.get(id), load.profile) {
                (Source::Default, Some(_)) => o.get("profile"),
                (s, _) => s,
            };
            rows.extend([
                row(
                    "rate",
                    format!("{} events/s", load.events_per_sec),
                    or_profile("rate"),
                ),
                row("duration", seconds(load.duration), o.get("duration")),
                row(
                    "event_size",
                    format!("{} B", load.event_size),
                    or_profile("event_size"),
                ),
                row(
                    "channels",
                    format!("at least {}", load.min_channels),
                    o.get("channels"),
                ),
                row(
                    "compression",
                    load.compression.header().to_owned(),
                    o.get("compression"),
                ),
            ]);
        }
        rows
    }

    /// The proxy an `https://` connection uses (curl's order), without its password.
    fn proxy_row(&self) -> Setting {
        let p = &self.proxy;
        let Some(FromVariable { value, variable }) = p
            .proxy_flag
            .as_ref()
            .or(p.https_proxy.as_ref())
            .or(p.all_proxy.as_ref())
        else {
            return row("proxy", "none (direct)".into(), self.origins.get("proxy"));
        };
        let shown = match value {
            ProxySetting::Url { url } => {
                let mut s = format!("{}://", url.scheme);
                if let Some(auth) = &url.auth {
                    let _ = write!(s, "{}@", auth.username);
                }
                s + &url.authority()
            }
            ProxySetting::Malformed { .. } => "not a usable URL (see proxy.env)".into(),
            ProxySetting::Disabled => "disabled (direct)".into(),
        };
        let source = variable_source(variable, "--proxy", self.origins.get("proxy"));
        row("proxy", shown, source)
    }
}

fn row(name: &str, value: String, source: Source) -> Setting {
    Setting {
        name: name.to_owned(),
        value,
        source,
    }
}

/// A proxy value's source: the flag's own origin (typed or its `NETCHECK_*` twin) when the flag
/// set it, else the variable it was read from.
fn variable_source(variable: &str, flag: &str, flag_origin: Source) -> Source {
    if variable == flag {
        flag_origin
    } else {
        Source::Env {
            name: variable.to_owned(),
        }
    }
}

fn resolve_entry(r: &crate::net::resolver::ResolveOverride) -> String {
    let addrs: Vec<String> = r
        .addrs
        .iter()
        .map(|a| match a {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            std::net::IpAddr::V4(v4) => v4.to_string(),
        })
        .collect();
    format!("{}:{}:{}", r.host, r.port, addrs.join(","))
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;
    use crate::settings::SettingsArgs;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        settings: SettingsArgs,
    }

    /// Parses `argv`; `env` is what the proxy variables are read from.
    fn settings(argv: &[&str], env: &[(&str, &str)]) -> Settings {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([("SNOWFLAKE_HOME".into(), "/nonexistent/netcheck".into())])
            .collect();
        let cmd = Cmd::command();
        let matches = cmd.clone().try_get_matches_from(argv).unwrap();
        let mut parsed = Cmd::from_arg_matches(&matches).unwrap().settings;
        parsed.origins = Origins::from_matches(&cmd, &matches);
        Settings::from_args(&parsed, |k| env.get(k).cloned()).unwrap()
    }

    fn flag(name: &str) -> Source {
        Source::Flag { name: name.into() }
    }

    fn find<'a>(rows: &'a [Setting], name: &str) -> &'a Setting {
        rows.iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no {name} in {rows:?}"))
    }

    #[test]
    fn each_setting_names_its_source() {
        let s = settings(
            &[
                "t",
                "--account",
                "myorg-acct",
                "--timeout",
                "3",
                "--resolve",
                "h.example:443:10.0.0.1,[::1]",
            ],
            &[
                ("https_proxy", "http://alice:hunter2@proxy.example:3128"),
                ("NO_PROXY", ".internal"),
            ],
        );
        let rows = s.provenance();
        let timeout = find(&rows, "timeout");
        assert_eq!(timeout.value, "3 s");
        assert_eq!(timeout.source, flag("--timeout"));
        assert_eq!(find(&rows, "deadline").source, Source::Default);
        assert_eq!(
            find(&rows, "cleanup_grace").source,
            timeout.source,
            "the grace defaults to the timeout"
        );
        assert_eq!(find(&rows, "resolve").value, "h.example:443:10.0.0.1,[::1]");
        let proxy = find(&rows, "proxy");
        assert_eq!(proxy.value, "http://alice@proxy.example:3128");
        assert_eq!(
            proxy.source,
            Source::Env {
                name: "https_proxy".into()
            }
        );
        assert_eq!(
            find(&rows, "noproxy").source,
            Source::Env {
                name: "NO_PROXY".into()
            }
        );
        assert_eq!(find(&rows, "target").value, "myorg-acct");
        let all = format!("{rows:?}");
        assert!(!all.contains("hunter2"), "{all}");
    }

    #[test]
    fn an_empty_proxy_flag_shows_as_disabled() {
        let s = settings(
            &["t", "--account", "a", "--proxy", ""],
            &[("HTTPS_PROXY", "http://p:1")],
        );
        let rows = s.provenance();
        let proxy = find(&rows, "proxy");
        assert_eq!(proxy.value, "disabled (direct)");
        assert_eq!(proxy.source, flag("--proxy"));
    }

    #[test]
    fn unknown_and_defaulted_arguments_are_defaults() {
        let cmd = Cmd::command();
        let matches = cmd
            .clone()
            .try_get_matches_from(["t", "--account", "a"])
            .unwrap();
        let origins = Origins::from_matches(&cmd, &matches);
        assert_eq!(origins.get("rows"), Source::Default);
        assert_eq!(origins.get("account"), flag("--account"));
        assert_eq!(origins.get("never-an-argument"), Source::Default);
        assert_eq!(Origins::demo().get("timeout"), Source::Demo);
    }
}
