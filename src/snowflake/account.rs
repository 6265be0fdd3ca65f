//! Account identifiers as they appear in JWT claims and host names.
//!
//! Snowflake accepts several spellings of one account (`org-acct`, `org.acct`, a locator with
//! region and cloud, a full host name). The JWT must carry one exact upper-case form; getting it
//! wrong is the most common key-pair failure, so the rules live here, table-tested.

/// The domain suffixes of Snowflake hosts (commercial and China).
const DOMAINS: [&str; 2] = [".snowflakecomputing.com", ".snowflakecomputing.cn"];

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
    } else if let Some(host) = DOMAINS.iter().find_map(|d| lower.strip_suffix(d)) {
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
    // One set of rules for identifiers, hosts and URLs: the target parser's.
    crate::target::parse_account(account).map_or_else(|_| normalize_host(account), |e| e.host)
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

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
