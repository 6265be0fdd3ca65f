//! The output of `SELECT SYSTEM$ALLOWLIST()` (and its `_PRIVATELINK` variant): the hosts and
//! ports an account's clients must reach. Read from `--allowlist FILE` or over the SQL API.

use serde::{Deserialize, Serialize};

/// One entry of `SYSTEM$ALLOWLIST()`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Entry {
    #[serde(rename = "type")]
    pub kind: String,
    pub host: String,
    pub port: u16,
}

/// Parses the JSON output of `SYSTEM$ALLOWLIST()` (also the `_PRIVATELINK` variant).
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("not the JSON output of SYSTEM$ALLOWLIST(): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let list = parse(
            r#"[{"type":"SNOWFLAKE_DEPLOYMENT","host":"xy12345.snowflakecomputing.com","port":443},
            {"type":"OCSP_RESPONDER","host":"o.ss2.us","port":80}]"#,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[1].kind.as_str(), list[1].port),
            ("OCSP_RESPONDER", 80)
        );
        assert!(parse("{}").is_err());
    }
}
