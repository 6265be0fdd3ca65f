//! What a `/probe` request may ask, and why one is refused. The query names a connection the
//! operator configured and nothing else: a target, URL or host in it is refused, so the port is
//! no open proxy for whoever reaches it.

use std::time::Duration;

use axum::http::StatusCode;

/// A probe that may run.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub connection: String,
    /// `full=true`: the channel round trip too.
    pub full: bool,
    /// `only=ID,ID`: these checks and what they depend on.
    pub only: Vec<String>,
}

/// Why a probe is refused; each has its status code and its `reason` label.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error(
        "unknown parameter `{0}`: serve probes only the connections it is configured with (connection, full, only)"
    )]
    UnknownParameter(String),
    #[error("`{0}` given more than once")]
    Repeated(&'static str),
    #[error("missing `connection`")]
    MissingConnection,
    #[error("`{param}` must be {expected}")]
    BadValue {
        param: &'static str,
        expected: &'static str,
    },
    #[error("{0}")]
    BadPlan(String),
    #[error("unknown connection `{0}`: serve probes only the connections it is configured with")]
    UnknownConnection(String),
    #[error("X-Prometheus-Scrape-Timeout-Seconds leaves no time for a run after the offset")]
    NoTime,
    #[error("every probe slot is busy (--max-probes); try again at the next scrape")]
    OverCapacity,
    #[error("shutting down")]
    ShuttingDown,
}

impl Refusal {
    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownConnection(_) => StatusCode::NOT_FOUND,
            Self::OverCapacity | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `reason` label of `netcheck_serve_probes_refused_total`.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownConnection(_) => "unknown_connection",
            Self::OverCapacity => "over_capacity",
            Self::ShuttingDown => "shutting_down",
            _ => "bad_request",
        }
    }
}

impl Request {
    /// Parses the query string. Only `connection`, `full` and `only` are accepted, each once.
    pub fn parse(query: &str) -> Result<Self, Refusal> {
        let (mut connection, mut full, mut only) = (None, None, None);
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (slot, name) = match key.as_ref() {
                "connection" => (&mut connection, "connection"),
                "full" => (&mut full, "full"),
                "only" => (&mut only, "only"),
                other => return Err(Refusal::UnknownParameter(other.to_owned())),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(Refusal::Repeated(name));
            }
        }
        let full = match full.as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(_) => {
                return Err(Refusal::BadValue {
                    param: "full",
                    expected: "true or false",
                });
            }
        };
        Ok(Self {
            connection: connection
                .filter(|c| !c.trim().is_empty())
                .ok_or(Refusal::MissingConnection)?,
            full,
            only: only
                .map(|o| {
                    o.split(',')
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The time a probe's run may take: the scraper's timeout
/// (`X-Prometheus-Scrape-Timeout-Seconds`) less `offset`, so the answer is written before the
/// scraper gives up; at most `max` (`--deadline`), which also applies when the header is absent.
pub fn budget(header: Option<&str>, offset: Duration, max: Duration) -> Result<Duration, Refusal> {
    let Some(header) = header else {
        return Ok(max);
    };
    let secs: f64 = header.trim().parse().map_err(|_| Refusal::BadValue {
        param: "X-Prometheus-Scrape-Timeout-Seconds",
        expected: "a number of seconds",
    })?;
    if !secs.is_finite() || secs <= offset.as_secs_f64() {
        return Err(Refusal::NoTime);
    }
    // A scraper may send any number (1e20): one too large for a Duration is simply over `max`.
    Ok(Duration::try_from_secs_f64(secs)
        .unwrap_or(Duration::MAX)
        .saturating_sub(offset)
        .min(max))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use test_case::test_case;

    use super::{Refusal, Request, budget};

    #[test_case("connection=prod", "prod", false, &[]; "name only")]
    #[test_case("connection=a%20b&full=true&only=dns.account,tcp.account", "a b", true, &["dns.account", "tcp.account"]; "everything")]
    #[test_case("only=&connection=x&full=0", "x", false, &[]; "empty only")]
    fn accepted(query: &str, connection: &str, full: bool, only: &[&str]) {
        assert_eq!(
            Request::parse(query).unwrap(),
            Request {
                connection: connection.into(),
                full,
                only: only.iter().map(|s| (*s).to_owned()).collect()
            }
        );
    }

    #[test_case("connection=prod&target=evil.example", &Refusal::UnknownParameter("target".into()); "target")]
    #[test_case("url=https://evil.example&connection=prod", &Refusal::UnknownParameter("url".into()); "url")]
    #[test_case("connection=prod&host=10.0.0.1", &Refusal::UnknownParameter("host".into()); "host")]
    #[test_case("module=x", &Refusal::UnknownParameter("module".into()); "blackbox module")]
    #[test_case("connection=a&connection=b", &Refusal::Repeated("connection"); "two connections")]
    #[test_case("", &Refusal::MissingConnection; "empty")]
    #[test_case("connection=a&full=yes", &Refusal::BadValue { param: "full", expected: "true or false" }; "bad full")]
    fn refused(query: &str, want: &Refusal) {
        let got = Request::parse(query).unwrap_err();
        assert_eq!(&got, want);
        assert_eq!(got.status(), axum::http::StatusCode::BAD_REQUEST);
    }

    #[test_case(None, 60_000; "no header: the deadline")]
    #[test_case(Some("10"), 9_500; "header less the offset")]
    #[test_case(Some("120.5"), 60_000; "at most the deadline")]
    #[test_case(Some("1e20"), 60_000; "beyond any duration: the deadline, no panic")]
    fn budgets(header: Option<&str>, want_ms: u64) {
        let got = budget(header, Duration::from_millis(500), Duration::from_secs(60)).unwrap();
        assert_eq!(got, Duration::from_millis(want_ms));
    }

    #[test_case("0.4"; "under the offset")]
    #[test_case("NaN"; "nan")]
    #[test_case("soon"; "not a number")]
    fn bad_budgets(header: &str) {
        assert!(
            budget(
                Some(header),
                Duration::from_millis(500),
                Duration::from_secs(60)
            )
            .is_err()
        );
    }
}
