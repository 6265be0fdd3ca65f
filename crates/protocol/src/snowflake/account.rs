//! Snowflake account identifiers, the one set of rules for them: identifier → the host, port and
//! URL netcheck talks to, and → the exact account part of JWT claims. Pure and table-tested.
//!
//! Accepted forms (Snowflake's account identifier docs): `orgname-account_name`, the SQL form
//! `orgname.account_name`, a locator with optional region and cloud (`xy12345.us-east-2.aws`),
//! a full host (`….snowflakecomputing.com`, `….privatelink.snowflakecomputing.com`,
//! `….snowflakecomputing.cn`) or a URL `https://host[:port]`. Underscores in an account name
//! become hyphens in the host, as Snowflake serves the dashed variant. The JWT must carry one
//! exact upper-case form; getting it wrong is the most common key-pair failure.

use std::fmt;

use serde::Serialize;

use crate::error::Error;

/// Where a host lives, which decides what its DNS answers should look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKind {
    /// `*.snowflakecomputing.com`, public endpoints.
    Public,
    /// `*.privatelink.snowflakecomputing.com`: must resolve to a private address.
    PrivateLink,
    /// `*.snowflakecomputing.cn`, run by Digital China Cloud.
    China,
    /// Any other host given as a URL (a private deployment, the emulator, a test server).
    Custom,
}

/// A host and port to reach over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub kind: HostKind,
}

impl Endpoint {
    /// An endpoint for a host name as Snowflake hands it out (e.g. the ingest host from
    /// discovery), on the given port.
    #[must_use]
    pub fn for_host(host: &str, port: u16) -> Self {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let kind = kind_of(&host);
        Self { host, port, kind }
    }

    /// The `https://` base URL, with the port only when it is not 443.
    #[must_use]
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

const COM: &str = "snowflakecomputing.com";
const CN: &str = "snowflakecomputing.cn";

fn kind_of(host: &str) -> HostKind {
    if host.ends_with(&format!(".privatelink.{COM}"))
        || host.ends_with(&format!(".privatelink.{CN}"))
    {
        HostKind::PrivateLink
    } else if host.ends_with(&format!(".{COM}")) {
        HostKind::Public
    } else if host.ends_with(&format!(".{CN}")) {
        HostKind::China
    } else {
        HostKind::Custom
    }
}

/// Parses `--account` into the account endpoint.
pub fn parse_account(input: &str) -> Result<Endpoint, Error> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(Error::Usage("--account is empty".into()));
    }
    if trimmed.contains("://") {
        return parse_url(trimmed);
    }
    let lower = trimmed.to_ascii_lowercase();
    let (host_part, port) = split_port(&lower)?;
    if host_part.ends_with(&format!(".{COM}")) || host_part.ends_with(&format!(".{CN}")) {
        validate_host(host_part, input)?;
        return Ok(Endpoint::for_host(host_part, port.unwrap_or(443)));
    }
    if port.is_some() {
        return Err(bad(
            input,
            "a port needs a full host or URL, e.g. https://HOST:PORT",
        ));
    }
    Ok(Endpoint::for_host(
        &host_for_identifier(host_part, input)?,
        443,
    ))
}

fn parse_url(input: &str) -> Result<Endpoint, Error> {
    let url = url::Url::parse(input).map_err(|e| bad(input, &e.to_string()))?;
    if url.scheme() != "https" {
        return Err(bad(
            input,
            "only https:// URLs are supported (Snowflake serves HTTPS only)",
        ));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err(bad(input, "the URL has no host")),
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(bad(input, "give the account URL without a path or query"));
    }
    Ok(Endpoint::for_host(&host, url.port().unwrap_or(443)))
}

fn split_port(s: &str) -> Result<(&str, Option<u16>), Error> {
    match s.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(s, "invalid port"))?;
            Ok((h, Some(port)))
        }
        None => Ok((s, None)),
    }
}

fn validate_host(host: &str, input: &str) -> Result<(), Error> {
    let ok = host.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if ok {
        Ok(())
    } else {
        Err(bad(input, "not a valid host name"))
    }
}

fn host_for_identifier(id: &str, input: &str) -> Result<String, Error> {
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(
            input,
            "an account identifier has only letters, digits, '-', '_' and '.'",
        ));
    }
    let parts: Vec<&str> = id.split('.').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.starts_with('-') || p.ends_with('-'))
    {
        return Err(bad(
            input,
            "empty or misplaced '-'/'.' in the account identifier",
        ));
    }
    let host = match parts.as_slice() {
        // orgname-account_name, or a bare locator (AWS us-west-2).
        [account] => format!("{}.{COM}", account.replace('_', "-")),
        // The SQL form orgname.account_name, unless it is a locator with a region or a cloud.
        [org, account] if is_org_account_form(id) => {
            if org.contains('-') || org.contains('_') {
                return Err(bad(
                    input,
                    "an organization name has only letters and digits",
                ));
            }
            format!("{org}-{}.{COM}", account.replace('_', "-"))
        }
        // locator.region[.cloud] (and the gov forms with an extra segment).
        [locator, rest @ ..] => {
            let domain = if rest.iter().any(|p| p.starts_with("cn-")) {
                CN
            } else {
                COM
            };
            if locator.contains('-') || locator.contains('_') {
                return Err(bad(
                    input,
                    "a locator has only letters and digits (e.g. xy12345.us-east-2.aws)",
                ));
            }
            format!("{locator}.{}.{domain}", rest.join("."))
        }
        [] => unreachable!("split yields at least one part"),
    };
    Ok(host)
}

fn bad(input: &str, why: &str) -> Error {
    Error::Usage(format!(
        "invalid --account `{input}`: {why} (expected e.g. myorg-myaccount, xy12345.us-east-2.aws, \
         or https://myorg-myaccount.snowflakecomputing.com)"
    ))
}

/// Cloud names that may follow a region in a locator (`xy12345.us-east-2.aws`).
const CLOUDS: [&str; 3] = ["aws", "azure", "gcp"];

/// The account part of JWT `iss`/`sub` claims for an account identifier, host or locator.
///
/// Rules (Snowflake docs and official drivers): a locator or full host keeps only the part before
/// the first `.`; the SQL form `org.account_name` turns the `.` into `-`; an identifier with
/// `.global` keeps only the part before the first `-`; underscores are kept; all upper case.
#[must_use]
pub fn jwt_account(identifier: &str) -> String {
    let id = identifier.trim().trim_end_matches('/');
    let id = id
        .strip_prefix("https://")
        .or_else(|| id.strip_prefix("http://"))
        .unwrap_or(id);
    let id = id.split(':').next().unwrap_or(id);
    let lower = id.to_ascii_lowercase();
    let account = if lower.contains(".global") {
        id.split('-').next().unwrap_or(id).to_owned()
    } else if let Some(host) = [COM, CN]
        .iter()
        .find_map(|d| lower.strip_suffix(d)?.strip_suffix('.'))
    {
        host.split('.').next().unwrap_or(host).to_owned()
    } else if is_org_account_form(id) {
        id.replace('.', "-")
    } else {
        id.split('.').next().unwrap_or(id).to_owned()
    };
    account.to_ascii_uppercase()
}

/// `org.account_name` (two labels, the second neither a region nor a cloud) as opposed to a
/// locator such as `xy12345.us-east-1` or `xy12345.us-east-2.aws`. Regions always contain `-`,
/// account names never do.
fn is_org_account_form(id: &str) -> bool {
    let labels: Vec<&str> = id.split('.').collect();
    labels.len() == 2
        && !labels[1].contains('-')
        && !CLOUDS.contains(&labels[1].to_ascii_lowercase().as_str())
}

/// The user part of JWT claims: Snowflake compares it upper case.
#[must_use]
pub fn jwt_user(user: &str) -> String {
    user.trim().to_ascii_uppercase()
}

/// Normalises a host name the way official clients do before using it in a URL or an OAuth
/// scope: `_` becomes `-` (TLS host names cannot carry `_`) and everything is lower case.
#[must_use]
pub fn normalize_host(host: &str) -> String {
    host.trim().replace('_', "-").to_ascii_lowercase()
}

/// The account host for an account identifier in the `org-account` or locator form
/// (`myorg-myaccount` → `myorg-myaccount.snowflakecomputing.com`).
#[must_use]
pub fn account_host(account: &str) -> String {
    parse_account(account).map_or_else(|_| normalize_host(account), |e| e.host)
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case("myorg-myaccount", "myorg-myaccount.snowflakecomputing.com", 443, HostKind::Public; "org account")]
    #[test_case("MyOrg-My_Account", "myorg-my-account.snowflakecomputing.com", 443, HostKind::Public; "underscores become hyphens")]
    #[test_case("myorg.my_account", "myorg-my-account.snowflakecomputing.com", 443, HostKind::Public; "sql form")]
    #[test_case("xy12345", "xy12345.snowflakecomputing.com", 443, HostKind::Public; "bare locator")]
    #[test_case("xy12345.us-east-2.aws", "xy12345.us-east-2.aws.snowflakecomputing.com", 443, HostKind::Public; "locator region cloud")]
    #[test_case("xy12345.us-east-1", "xy12345.us-east-1.snowflakecomputing.com", 443, HostKind::Public; "locator region")]
    #[test_case("xy12345.us-central1.gcp", "xy12345.us-central1.gcp.snowflakecomputing.com", 443, HostKind::Public; "gcp region")]
    #[test_case("xy12345.fhplus.us-gov-west-1.aws", "xy12345.fhplus.us-gov-west-1.aws.snowflakecomputing.com", 443, HostKind::Public; "gov")]
    #[test_case("xy12345.cn-northwest-1.aws", "xy12345.cn-northwest-1.aws.snowflakecomputing.cn", 443, HostKind::China; "china locator")]
    #[test_case("xy12345.cn-northwest-1.aws.snowflakecomputing.cn", "xy12345.cn-northwest-1.aws.snowflakecomputing.cn", 443, HostKind::China; "china host")]
    #[test_case("myorg-myaccount.privatelink.snowflakecomputing.com", "myorg-myaccount.privatelink.snowflakecomputing.com", 443, HostKind::PrivateLink; "privatelink host")]
    #[test_case("xy12345.us-east-1.privatelink.snowflakecomputing.com", "xy12345.us-east-1.privatelink.snowflakecomputing.com", 443, HostKind::PrivateLink; "privatelink locator")]
    #[test_case("https://myorg-myaccount.snowflakecomputing.com", "myorg-myaccount.snowflakecomputing.com", 443, HostKind::Public; "url")]
    #[test_case("https://myorg-myaccount.snowflakecomputing.com:8443/", "myorg-myaccount.snowflakecomputing.com", 8443, HostKind::Public; "url with port")]
    #[test_case("myorg-myaccount.snowflakecomputing.com:8443", "myorg-myaccount.snowflakecomputing.com", 8443, HostKind::Public; "host with port")]
    #[test_case("https://localhost:9443", "localhost", 9443, HostKind::Custom; "custom url")]
    #[test_case("https://127.0.0.1:9443", "127.0.0.1", 9443, HostKind::Custom; "ip url")]
    #[test_case("https://[::1]:9443", "::1", 9443, HostKind::Custom; "ipv6 url")]
    fn parses(input: &str, host: &str, port: u16, kind: HostKind) {
        let e = parse_account(input).unwrap();
        assert_eq!((e.host.as_str(), e.port, e.kind), (host, port, kind));
    }

    #[test_case(""; "empty")]
    #[test_case("my org"; "space")]
    #[test_case("http://myorg-myaccount.snowflakecomputing.com"; "plain http")]
    #[test_case("https://myorg-myaccount.snowflakecomputing.com/console"; "path")]
    #[test_case("-myorg"; "leading hyphen")]
    #[test_case("myorg..acct"; "empty label")]
    #[test_case("myorg-myaccount:443"; "port without host")]
    #[test_case("myorg-myaccount.snowflakecomputing.com:0"; "port zero")]
    #[test_case("my-org.account"; "hyphen in org of sql form")]
    #[test_case("acct$1"; "bad character")]
    fn rejects(input: &str) {
        let err = parse_account(input).unwrap_err().to_string();
        assert!(err.contains("--account"), "{err}");
    }

    #[test]
    fn url_omits_default_port() {
        assert_eq!(
            parse_account("myorg-a").unwrap().url(),
            "https://myorg-a.snowflakecomputing.com"
        );
        assert_eq!(
            parse_account("https://[::1]:9443").unwrap().url(),
            "https://[::1]:9443"
        );
    }

    #[test_case("xy12345" => "XY12345"; "bare locator")]
    #[test_case("xy12345.us-east-2.aws" => "XY12345"; "locator with region and cloud")]
    #[test_case("xy12345.us-east-1" => "XY12345"; "locator with region")]
    #[test_case("xy12345.fhplus.us-gov-west-1.aws" => "XY12345"; "gov locator")]
    #[test_case("org-acct.snowflakecomputing.com" => "ORG-ACCT"; "full host")]
    #[test_case("https://org-acct.snowflakecomputing.com:443" => "ORG-ACCT"; "url")]
    #[test_case("xy12345.cn-northwest-1.aws.snowflakecomputing.cn" => "XY12345"; "china host")]
    #[test_case("org.account_name" => "ORG-ACCOUNT_NAME"; "sql form keeps underscores")]
    #[test_case("myorg-my_account" => "MYORG-MY_ACCOUNT"; "underscores kept")]
    #[test_case("myacct-abc.global" => "MYACCT"; "global")]
    #[test_case("xy12345.azure" => "XY12345"; "locator with cloud only")]
    #[test_case("xy12345.west-europe.azure" => "XY12345"; "azure region without digits")]
    fn jwt_account_normalises(input: &str) -> String {
        jwt_account(input)
    }

    #[test_case("my_account.us-west-2.ingest.snowflakecomputing.com" => "my-account.us-west-2.ingest.snowflakecomputing.com")]
    #[test_case("MyOrg-MyAcct.Snowflakecomputing.com" => "myorg-myacct.snowflakecomputing.com")]
    fn hosts_normalise(input: &str) -> String {
        normalize_host(input)
    }

    #[test_case("myorg-myaccount" => "myorg-myaccount.snowflakecomputing.com")]
    #[test_case("myorg.my_account" => "myorg-my-account.snowflakecomputing.com")]
    #[test_case("xy12345.us-east-2.aws" => "xy12345.us-east-2.aws.snowflakecomputing.com")]
    #[test_case("ORG-ACCT.snowflakecomputing.com" => "org-acct.snowflakecomputing.com")]
    fn account_hosts(input: &str) -> String {
        account_host(input)
    }

    #[test]
    fn users_are_upper_cased() {
        assert_eq!(jwt_user(" netcheck_user "), "NETCHECK_USER");
    }
}
