//! Which proxy applies to a target, from the variables curl reads and the `--proxy` /
//! `--noproxy` flags, with the variable (or `NO_PROXY` entry) that made the decision.
//!
//! curl's order for an `https://` target: `--proxy`, else `https_proxy`, else `HTTPS_PROXY`,
//! else `all_proxy`, else `ALL_PROXY`. For `http://` targets only lower-case `http_proxy` is
//! read: curl ignores `HTTP_PROXY` because CGI servers put the client's `Proxy:` header there
//! ("httpoxy"). An empty variable counts as unset; `--proxy ""` disables proxies altogether.
//! `NO_PROXY` (from `--noproxy`, else `no_proxy`, else `NO_PROXY`) applies to every proxy,
//! including one given with `--proxy`.

use serde::Serialize;

use super::no_proxy::no_proxy_match;
use super::proxy_url::{BadUrlReason, ProxyUrl, redact};

/// A value and the environment variable or flag it came from (`"HTTPS_PROXY"`, `"--proxy"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromVariable<T> {
    /// The value.
    pub value: T,
    /// The variable or flag, spelled as the user wrote it.
    pub variable: String,
}

/// One proxy variable's value, parsed when read so the raw text (and its password) is not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProxySetting {
    /// A usable proxy URL.
    Url {
        /// The parsed URL.
        url: ProxyUrl,
    },
    /// A value curl would reject; reported only when this variable is the one that applies.
    Malformed {
        /// The error, naming the variable.
        error: ProxyError,
    },
    /// `--proxy ""`: curl's way to switch proxies off whatever the environment says.
    Disabled,
}

/// A proxy value that curl would reject. The message names the variable and never shows a
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProxyError {
    /// The URL does not parse, or names a scheme curl does not know.
    #[error("{variable}={value:?} is not a usable proxy URL: {reason}")]
    BadUrl {
        /// The variable or flag that holds it.
        variable: String,
        /// The value with any password replaced by `***`.
        value: String,
        /// What is wrong with it.
        reason: BadUrlReason,
    },
}

/// A variable that is set but that curl does not use, and why (evidence for `proxy.env`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredVariable {
    /// The variable name.
    pub variable: String,
    /// Why curl does not use it.
    pub reason: IgnoredReason,
}

/// Why curl does not use a variable that is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IgnoredReason {
    /// `HTTP_PROXY` in upper case: curl never reads it (CGI safety, "httpoxy").
    CgiSafety,
    /// Set to the empty string, which curl treats as unset.
    Empty,
    /// The lower-case twin is set and wins.
    ShadowedBy {
        /// The variable that wins.
        variable: String,
    },
    /// A command-line flag replaces it.
    OverriddenBy {
        /// The flag that wins.
        flag: String,
    },
}

/// The proxy configuration as the user has it: each value with where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProxySettings {
    /// `--proxy`, which replaces every proxy variable.
    pub proxy_flag: Option<FromVariable<ProxySetting>>,
    /// `https_proxy`, else `HTTPS_PROXY`.
    pub https_proxy: Option<FromVariable<ProxySetting>>,
    /// `http_proxy` (lower case only).
    pub http_proxy: Option<FromVariable<ProxySetting>>,
    /// `all_proxy`, else `ALL_PROXY`.
    pub all_proxy: Option<FromVariable<ProxySetting>>,
    /// The effective no-proxy list: `--noproxy`, else `no_proxy`, else `NO_PROXY`.
    pub no_proxy: Option<FromVariable<String>>,
    /// Variables that are set but that curl would not use.
    pub ignored: Vec<IgnoredVariable>,
}

/// The scheme of the target URL; it selects which proxy variable applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetScheme {
    /// `http://` targets read `http_proxy`.
    Http,
    /// `https://` targets read `https_proxy` / `HTTPS_PROXY`.
    Https,
}

/// How a connection to one target is routed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "route", rename_all = "snake_case")]
pub enum ProxyDecision {
    /// Connect to the target itself.
    Direct {
        /// Why no proxy is used.
        reason: DirectReason,
    },
    /// Connect through this proxy.
    Proxy {
        /// The proxy.
        proxy: ProxyUrl,
        /// The variable or flag it came from.
        variable: String,
    },
}

/// Why a target is reached directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirectReason {
    /// No proxy variable or flag applies to this scheme.
    NoProxyConfigured,
    /// `--proxy ""` switched proxies off.
    DisabledByFlag {
        /// The flag (`--proxy`).
        variable: String,
    },
    /// The target matched an entry of the no-proxy list.
    NoProxyMatched {
        /// The entry as written.
        entry: String,
        /// `--noproxy`, `no_proxy` or `NO_PROXY`.
        variable: String,
    },
}

impl ProxySettings {
    /// Reads the proxy configuration. `env` is a lookup (so tests never touch the process
    /// environment); `flag_proxy` / `flag_noproxy` are `--proxy` / `--noproxy` and win over
    /// the environment. Malformed values are kept as [`ProxySetting::Malformed`] because curl
    /// only fails on the variable it actually uses.
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        flag_proxy: Option<&str>,
        flag_noproxy: Option<&str>,
    ) -> Self {
        let mut ignored = Vec::new();
        let mut read = |names: &[&str]| first_set(&env, names, &mut ignored);

        let secure = read(&["https_proxy", "HTTPS_PROXY"]).map(parse_variable);
        let plain = read(&["http_proxy"]).map(parse_variable);
        let all = read(&["all_proxy", "ALL_PROXY"]).map(parse_variable);
        let env_no_proxy = read(&["no_proxy", "NO_PROXY"]);
        if env("HTTP_PROXY").is_some_and(|v| !v.is_empty()) {
            ignore(&mut ignored, "HTTP_PROXY", IgnoredReason::CgiSafety);
        }

        let proxy_flag = flag_proxy.map(|value| {
            for overridden in [&secure, &plain, &all].into_iter().flatten() {
                ignore(&mut ignored, &overridden.variable, overridden_by("--proxy"));
            }
            if value.is_empty() {
                FromVariable {
                    value: ProxySetting::Disabled,
                    variable: "--proxy".to_owned(),
                }
            } else {
                parse_variable(FromVariable {
                    value: value.to_owned(),
                    variable: "--proxy".to_owned(),
                })
            }
        });
        let no_proxy = match flag_noproxy {
            Some(list) => {
                if let Some(overridden) = &env_no_proxy {
                    ignore(
                        &mut ignored,
                        &overridden.variable,
                        overridden_by("--noproxy"),
                    );
                }
                Some(FromVariable {
                    value: list.to_owned(),
                    variable: "--noproxy".to_owned(),
                })
            }
            None => env_no_proxy,
        };
        Self {
            proxy_flag,
            https_proxy: secure,
            http_proxy: plain,
            all_proxy: all,
            no_proxy,
            ignored,
        }
    }
}

/// Decides, like curl, whether a connection to `host` over `scheme` goes through a proxy.
/// `Err` only when the proxy that applies is malformed; a malformed variable that does not
/// apply (or a target that `NO_PROXY` sends direct) is not an error, as in curl.
pub fn decide(
    settings: &ProxySettings,
    scheme: TargetScheme,
    host: &str,
) -> Result<ProxyDecision, ProxyError> {
    let for_scheme = match scheme {
        TargetScheme::Https => &settings.https_proxy,
        TargetScheme::Http => &settings.http_proxy,
    };
    let Some(candidate) = settings
        .proxy_flag
        .as_ref()
        .or(for_scheme.as_ref())
        .or(settings.all_proxy.as_ref())
    else {
        return Ok(ProxyDecision::Direct {
            reason: DirectReason::NoProxyConfigured,
        });
    };
    let variable = candidate.variable.clone();
    let proxy = match &candidate.value {
        ProxySetting::Disabled => {
            return Ok(ProxyDecision::Direct {
                reason: DirectReason::DisabledByFlag { variable },
            });
        }
        ProxySetting::Url { url } => Ok(url),
        ProxySetting::Malformed { error } => Err(error),
    };
    // curl consults NO_PROXY before it looks at the proxy value, so a malformed proxy is no
    // error for a host that NO_PROXY sends direct.
    if let Some(list) = &settings.no_proxy {
        if let Some(entry) = no_proxy_match(&list.value, host) {
            let variable = list.variable.clone();
            return Ok(ProxyDecision::Direct {
                reason: DirectReason::NoProxyMatched { entry, variable },
            });
        }
    }
    proxy
        .map(|url| ProxyDecision::Proxy {
            proxy: url.clone(),
            variable,
        })
        .map_err(Clone::clone)
}

/// The first of `names` that is set and non-empty; the others that are set go to `ignored`.
fn first_set(
    env: &impl Fn(&str) -> Option<String>,
    names: &[&str],
    ignored: &mut Vec<IgnoredVariable>,
) -> Option<FromVariable<String>> {
    let mut winner: Option<FromVariable<String>> = None;
    for name in names {
        match env(name) {
            None => {}
            Some(value) if value.is_empty() => ignore(ignored, name, IgnoredReason::Empty),
            Some(value) => match &winner {
                Some(w) => ignore(
                    ignored,
                    name,
                    IgnoredReason::ShadowedBy {
                        variable: w.variable.clone(),
                    },
                ),
                None => {
                    winner = Some(FromVariable {
                        value,
                        variable: (*name).to_owned(),
                    });
                }
            },
        }
    }
    winner
}

fn parse_variable(raw: FromVariable<String>) -> FromVariable<ProxySetting> {
    let value = match ProxyUrl::parse(&raw.value) {
        Ok(url) => ProxySetting::Url { url },
        Err(reason) => ProxySetting::Malformed {
            error: ProxyError::BadUrl {
                variable: raw.variable.clone(),
                value: redact(&raw.value),
                reason,
            },
        },
    };
    FromVariable {
        value,
        variable: raw.variable,
    }
}

fn ignore(ignored: &mut Vec<IgnoredVariable>, variable: &str, reason: IgnoredReason) {
    ignored.push(IgnoredVariable {
        variable: variable.to_owned(),
        reason,
    });
}

fn overridden_by(flag: &str) -> IgnoredReason {
    IgnoredReason::OverriddenBy {
        flag: flag.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    fn settings(
        vars: &[(&str, &str)],
        flag_proxy: Option<&str>,
        flag_noproxy: Option<&str>,
    ) -> ProxySettings {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        ProxySettings::from_env(lookup, flag_proxy, flag_noproxy)
    }

    /// `Some(variable)` when the decision is "through the proxy from `variable`".
    fn via(
        vars: &[(&str, &str)],
        flag_proxy: Option<&str>,
        scheme: TargetScheme,
    ) -> Option<String> {
        match decide(
            &settings(vars, flag_proxy, None),
            scheme,
            "acct.snowflakecomputing.com",
        )
        .unwrap()
        {
            ProxyDecision::Proxy { variable, .. } => Some(variable),
            ProxyDecision::Direct { .. } => None,
        }
    }

    #[test_case(&[("https_proxy", "http://a:1"), ("HTTPS_PROXY", "http://b:1")], "https_proxy" ; "lower case wins")]
    #[test_case(&[("HTTPS_PROXY", "http://b:1"), ("ALL_PROXY", "http://c:1")], "HTTPS_PROXY" ; "upper case before all_proxy")]
    #[test_case(&[("https_proxy", ""), ("HTTPS_PROXY", "http://b:1")], "HTTPS_PROXY" ; "empty counts as unset")]
    #[test_case(&[("all_proxy", "http://c:1"), ("ALL_PROXY", "http://d:1")], "all_proxy" ; "all_proxy lower case wins")]
    #[test_case(&[("ALL_PROXY", "http://d:1")], "ALL_PROXY" ; "ALL_PROXY as the fallback")]
    #[test_case(&[("http_proxy", "http://a:1"), ("ALL_PROXY", "http://d:1")], "ALL_PROXY" ; "http_proxy does not apply to https")]
    fn https_precedence(vars: &[(&str, &str)], variable: &str) {
        assert_eq!(
            via(vars, None, TargetScheme::Https).as_deref(),
            Some(variable)
        );
    }

    #[test_case(&[("http_proxy", "http://a:1")], Some("http_proxy") ; "lower case http_proxy")]
    #[test_case(&[("HTTP_PROXY", "http://a:1")], None ; "upper case HTTP_PROXY ignored")]
    #[test_case(&[("HTTP_PROXY", "http://a:1"), ("all_proxy", "http://c:1")], Some("all_proxy") ; "HTTP_PROXY skipped for all_proxy")]
    #[test_case(&[("https_proxy", "http://a:1")], None ; "https_proxy does not apply to http")]
    fn http_precedence(vars: &[(&str, &str)], variable: Option<&str>) {
        assert_eq!(via(vars, None, TargetScheme::Http).as_deref(), variable);
    }

    #[test]
    fn flag_proxy_overrides_env_and_is_recorded() {
        let vars = [("https_proxy", "http://env:1")];
        assert_eq!(
            via(&vars, Some("http://flag:2"), TargetScheme::Https).as_deref(),
            Some("--proxy")
        );
        let s = settings(&vars, Some("http://flag:2"), None);
        assert!(s.ignored.contains(&IgnoredVariable {
            variable: "https_proxy".into(),
            reason: IgnoredReason::OverriddenBy {
                flag: "--proxy".into()
            },
        }));
    }

    #[test]
    fn empty_flag_proxy_disables_every_proxy() {
        let s = settings(&[("HTTPS_PROXY", "http://env:1")], Some(""), None);
        let decision = decide(&s, TargetScheme::Https, "h").unwrap();
        assert_eq!(
            decision,
            ProxyDecision::Direct {
                reason: DirectReason::DisabledByFlag {
                    variable: "--proxy".into()
                }
            }
        );
    }

    #[test_case(&[("no_proxy", ".snowflakecomputing.com")], None, "no_proxy" ; "lower case no_proxy")]
    #[test_case(&[("NO_PROXY", "snowflakecomputing.com")], None, "NO_PROXY" ; "upper case NO_PROXY")]
    #[test_case(&[("no_proxy", "other"), ("NO_PROXY", "snowflakecomputing.com")], None, "" ; "NO_PROXY shadowed by no_proxy")]
    #[test_case(&[("NO_PROXY", "other")], Some("snowflakecomputing.com"), "--noproxy" ; "noproxy flag replaces env")]
    #[test_case(&[("NO_PROXY", "snowflakecomputing.com")], Some(""), "" ; "empty noproxy flag clears env")]
    fn no_proxy_source(vars: &[(&str, &str)], flag_noproxy: Option<&str>, variable: &str) {
        let mut all = vec![("HTTPS_PROXY", "http://p:1")];
        all.extend_from_slice(vars);
        let s = settings(&all, None, flag_noproxy);
        let decision = decide(&s, TargetScheme::Https, "acct.snowflakecomputing.com").unwrap();
        match decision {
            ProxyDecision::Direct {
                reason: DirectReason::NoProxyMatched { variable: v, .. },
            } => assert_eq!(v, variable),
            ProxyDecision::Proxy { .. } => assert_eq!(variable, "", "expected a NO_PROXY match"),
            other @ ProxyDecision::Direct { .. } => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn no_proxy_applies_to_the_flag_proxy_too() {
        let s = settings(&[("NO_PROXY", "localhost")], Some("http://p:1"), None);
        let decision = decide(&s, TargetScheme::Https, "localhost").unwrap();
        assert!(matches!(
            decision,
            ProxyDecision::Direct {
                reason: DirectReason::NoProxyMatched { .. }
            }
        ));
    }

    #[test]
    fn nothing_configured_is_direct() {
        let decision = decide(&settings(&[], None, None), TargetScheme::Https, "h").unwrap();
        assert_eq!(
            decision,
            ProxyDecision::Direct {
                reason: DirectReason::NoProxyConfigured
            }
        );
    }

    #[test]
    fn decision_carries_the_parsed_proxy() {
        let s = settings(&[("HTTPS_PROXY", "proxy.corp")], None, None);
        let ProxyDecision::Proxy { proxy, .. } = decide(&s, TargetScheme::Https, "h").unwrap()
        else {
            panic!("expected a proxy");
        };
        assert_eq!(proxy.authority(), "proxy.corp:1080");
        assert!(proxy.port_defaulted);
    }

    #[test_case("htp://u:hunter2@proxy:8080", "htp://u:***@proxy:8080" ; "bad scheme")]
    #[test_case("http://u:hunter2@:8080", "http://u:***@:8080" ; "missing host")]
    #[test_case("http://u:hunter2@proxy:70000", "http://u:***@proxy:70000" ; "bad port")]
    fn malformed_proxy_names_the_variable_without_the_password(raw: &str, shown: &str) {
        let s = settings(&[("HTTPS_PROXY", raw)], None, None);
        let err = decide(&s, TargetScheme::Https, "h").unwrap_err();
        let ProxyError::BadUrl {
            variable, value, ..
        } = &err;
        assert_eq!((variable.as_str(), value.as_str()), ("HTTPS_PROXY", shown));
        for rendered in [
            err.to_string(),
            format!("{err:?}"),
            format!("{s:?}"),
            serde_json::to_string(&s).unwrap(),
        ] {
            assert!(!rendered.contains("hunter2"), "{rendered}");
        }
    }

    #[test]
    fn malformed_proxy_that_does_not_apply_is_not_an_error() {
        let s = settings(
            &[("all_proxy", "htp://x"), ("https_proxy", "http://p:1")],
            None,
            None,
        );
        assert!(decide(&s, TargetScheme::Https, "h").is_ok());
        let s = settings(&[("https_proxy", "htp://x"), ("no_proxy", "h")], None, None);
        assert!(
            decide(&s, TargetScheme::Https, "h").is_ok(),
            "NO_PROXY is checked first, as in curl"
        );
    }

    #[test]
    fn socks_proxy_is_decided_and_resolves_as_its_scheme_says() {
        let s = settings(&[("ALL_PROXY", "socks5://p:1080")], None, None);
        let ProxyDecision::Proxy { proxy, .. } = decide(&s, TargetScheme::Https, "h").unwrap()
        else {
            panic!("expected a proxy");
        };
        assert!(!proxy.scheme.resolves_remotely());
    }

    #[test]
    fn evidence_serializes_to_a_stable_shape() {
        let s = settings(
            &[("HTTPS_PROXY", "http://u:pw@p:3128"), ("NO_PROXY", ".corp")],
            None,
            None,
        );
        let proxy = decide(&s, TargetScheme::Https, "acct.snowflakecomputing.com").unwrap();
        let direct = decide(&s, TargetScheme::Https, "db.corp").unwrap();
        assert_eq!(
            serde_json::to_value([proxy, direct]).unwrap(),
            serde_json::json!([
                {"route": "proxy", "proxy": "http://u:***@p:3128", "variable": "HTTPS_PROXY"},
                {"route": "direct", "reason": {"kind": "no_proxy_matched", "entry": ".corp", "variable": "NO_PROXY"}},
            ])
        );
        let bad = settings(&[("HTTPS_PROXY", "htp://p")], None, None);
        assert_eq!(
            serde_json::to_value(decide(&bad, TargetScheme::Https, "h").unwrap_err()).unwrap(),
            serde_json::json!({
                "kind": "bad_url",
                "variable": "HTTPS_PROXY",
                "value": "htp://p",
                "reason": {"kind": "unsupported_scheme", "detail": "htp"},
            })
        );
    }

    #[test]
    fn ignored_variables_are_explained() {
        let s = settings(
            &[
                ("HTTP_PROXY", "http://x:1"),
                ("https_proxy", ""),
                ("no_proxy", "a"),
                ("NO_PROXY", "b"),
            ],
            None,
            None,
        );
        assert_eq!(
            s.ignored,
            vec![
                IgnoredVariable {
                    variable: "https_proxy".into(),
                    reason: IgnoredReason::Empty
                },
                IgnoredVariable {
                    variable: "NO_PROXY".into(),
                    reason: IgnoredReason::ShadowedBy {
                        variable: "no_proxy".into()
                    }
                },
                IgnoredVariable {
                    variable: "HTTP_PROXY".into(),
                    reason: IgnoredReason::CgiSafety
                },
            ]
        );
    }
}
