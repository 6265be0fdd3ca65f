//! The stage a streaming SDK uploads file fragments to: the `rowset_stage_location` of the
//! `:pipe-info` answer, the storage host it names, and what an anonymous request to that host
//! looks like when the storage provider itself answers it.
//!
//! Sources (`shared/spec/egress-and-auth.md` §2): the Openflow processors' `RowsetStageLocation`
//! and its S3, Azure and GCS transfer clients (Snowflake's own code) give the field names and how
//! each provider's host is built: S3 `{bucket}.s3.{region}.amazonaws.com` (`.com.cn` in AWS
//! China), or `{bucket}.{storage_endpoint}`; Azure `{storage_account}.{storage_endpoint}`; GCS
//! `storage.googleapis.com`, or the `url_override`. The request body `{"generate_new_token":true}`
//! is the Openflow client's too.

use serde::{Deserialize, Serialize};

use crate::snowflake::account::{Endpoint, HostKind};

/// The body of the `:pipe-info` request.
pub const PIPE_INFO_BODY: &str = r#"{"generate_new_token":true}"#;

/// The cloud storage behind a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display)]
pub enum Provider {
    /// Amazon S3 (or an S3-compatible endpoint).
    #[serde(rename = "S3")]
    #[strum(serialize = "S3")]
    S3,
    /// Azure Blob Storage.
    #[serde(rename = "AZURE")]
    #[strum(serialize = "Azure Blob")]
    Azure,
    /// Google Cloud Storage.
    #[serde(rename = "GCS")]
    #[strum(serialize = "GCS")]
    Gcs,
}

impl Provider {
    /// The provider a `location_type` names (`S3`, `AZURE`, `GCS`, case-insensitive).
    #[must_use]
    pub fn from_location_type(kind: &str) -> Option<Self> {
        match kind.to_ascii_uppercase().as_str() {
            "S3" | "S3CHINA" => Some(Self::S3),
            "AZURE" => Some(Self::Azure),
            "GCS" => Some(Self::Gcs),
            _ => None,
        }
    }

    /// The provider a storage host name belongs to (for `SYSTEM$ALLOWLIST` STAGE entries).
    #[must_use]
    pub fn from_host(host: &str) -> Option<Self> {
        let host = host.to_ascii_lowercase();
        if host.contains(".blob.core.") {
            Some(Self::Azure)
        } else if host == "storage.googleapis.com" || host.ends_with(".storage.googleapis.com") {
            Some(Self::Gcs)
        } else if host.contains(".s3.") || host.contains(".s3-") || host.starts_with("s3.") {
            Some(Self::S3)
        } else {
            None
        }
    }
}

/// `rowset_stage_location` as the `:pipe-info` answer carries it (only the fields netcheck
/// reads; the credentials are never read, kept or shown).
#[derive(Debug, Clone, Deserialize)]
pub struct StageLocation {
    pub location_type: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub bucket_name: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub storage_account: Option<String>,
    #[serde(default)]
    pub storage_endpoint: Option<String>,
    #[serde(default)]
    pub url_override: Option<String>,
}

/// The `:pipe-info` answer (only the stage location).
#[derive(Debug, Clone, Deserialize)]
pub struct PipeInfo {
    pub rowset_stage_location: StageLocation,
}

/// The names of keys whose string values are credentials wherever they appear in a `:pipe-info`
/// answer (lower case, matched as parts of the name): `AWS_SECRET_KEY`, `AWS_TOKEN`,
/// `AZURE_SAS_TOKEN`, `GCS_SERVICE_ACCOUNT_KEY_BASE64`, `encryption_info.pipe_key`, a presigned
/// URL.
const CREDENTIAL_KEYS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "sas",
    "signature",
    "presigned",
    "cred",
];

impl PipeInfo {
    /// Parses a `:pipe-info` answer. Its upload credentials are never read, but every
    /// credential-like string in it — all of a `creds` object, and any value under a key named
    /// like a key, token or secret — is registered as a secret first, so nothing said later (a
    /// server that echoes one in an error) can print it. Names and hosts are not: the stage's
    /// bucket and endpoint are what `stage.info` reports.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(body)?;
        register_credentials(&value, false);
        serde_json::from_value(value)
    }
}

/// Registers the strings of `value` that are credentials: all of them when `all` (inside a
/// credentials object), else those under a key named like one.
fn register_credentials(value: &serde_json::Value, all: bool) {
    match value {
        serde_json::Value::String(s) if all => crate::secret::register(s),
        serde_json::Value::Array(items) => {
            for item in items {
                register_credentials(item, all);
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, v) in fields {
                let key = key.to_ascii_lowercase();
                let named = CREDENTIAL_KEYS.iter().any(|k| key.contains(k));
                register_credentials(v, all || named);
            }
        }
        _ => {}
    }
}

/// The storage host uploads go to, and the object path a probe may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageTarget {
    pub provider: Provider,
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// The path under the host where the stage's objects live (`/container/prefix/` for Azure,
    /// `/bucket/prefix/` for GCS, `/prefix/` for S3's virtual-hosted style), ending in `/`.
    pub path: String,
}

/// Why a stage location names no host to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("location_type {0:?} is none of S3, AZURE, GCS")]
    UnknownType(String),
    #[error("a {provider} stage location without {field}")]
    Missing {
        provider: Provider,
        field: &'static str,
    },
    #[error("{what} {value:?} is not a host name")]
    BadHost { what: &'static str, value: String },
}

impl StageLocation {
    /// The storage host and path, as the SDK builds its upload URLs.
    pub fn target(&self) -> Result<StageTarget, LocationError> {
        let provider = Provider::from_location_type(&self.location_type)
            .ok_or_else(|| LocationError::UnknownType(self.location_type.clone()))?;
        let need = |v: &Option<String>, field| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or(LocationError::Missing { provider, field })
        };
        let (bucket, prefix) = self.bucket_and_prefix();
        let (authority, path) = match provider {
            Provider::S3 => {
                let bucket = bucket.ok_or(LocationError::Missing {
                    provider,
                    field: "bucket_name",
                })?;
                let host = if let Some(endpoint) = nonempty(self.storage_endpoint.as_deref()) {
                    format!("{bucket}.{endpoint}")
                } else {
                    let region = need(&self.region, "region")?;
                    // AWS China's partition has its own domain (as Snowflake's own clients
                    // build it).
                    let domain = if region.to_ascii_lowercase().starts_with("cn-") {
                        "amazonaws.com.cn"
                    } else {
                        "amazonaws.com"
                    };
                    format!("{bucket}.s3.{region}.{domain}")
                };
                (host, format!("/{prefix}"))
            }
            Provider::Azure => {
                let account = need(&self.storage_account, "storage_account")?;
                let endpoint =
                    nonempty(self.storage_endpoint.as_deref()).unwrap_or("blob.core.windows.net");
                let container = bucket.ok_or(LocationError::Missing {
                    provider,
                    field: "location",
                })?;
                (
                    format!("{account}.{endpoint}"),
                    format!("/{container}/{prefix}"),
                )
            }
            Provider::Gcs => {
                let bucket = bucket.ok_or(LocationError::Missing {
                    provider,
                    field: "bucket_name",
                })?;
                match nonempty(self.url_override.as_deref()) {
                    Some(url) => {
                        let host = url
                            .trim_start_matches("https://")
                            .split('/')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        (host, format!("/{prefix}"))
                    }
                    None => (
                        "storage.googleapis.com".to_owned(),
                        format!("/{bucket}/{prefix}"),
                    ),
                }
            }
        };
        let endpoint = endpoint_of(&authority, "storage host")?;
        Ok(StageTarget {
            provider,
            endpoint,
            path,
        })
    }

    /// The bucket (or container) and the prefix under it, ending in `/` unless empty: from
    /// `bucket_name`/`path_prefix` when given, else split from `location` (`bucket/prefix/`).
    fn bucket_and_prefix(&self) -> (Option<String>, String) {
        let location = self.location.as_deref().unwrap_or_default();
        let (loc_bucket, loc_prefix) = location.split_once('/').unwrap_or((location, ""));
        let bucket = nonempty(self.bucket_name.as_deref())
            .or(nonempty(Some(loc_bucket)))
            .map(str::to_owned);
        let prefix = self
            .path_prefix
            .as_deref()
            .unwrap_or(loc_prefix)
            .trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        (bucket, prefix)
    }
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// A `host[:port]` as an endpoint (port 443 unless given): storage endpoints name no port in
/// production, but an S3-compatible one (a test's) may.
fn endpoint_of(authority: &str, what: &'static str) -> Result<Endpoint, LocationError> {
    let bad = || LocationError::BadHost {
        what,
        value: authority.to_owned(),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (authority, 443),
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(bad());
    }
    Ok(Endpoint {
        host: host.to_ascii_lowercase(),
        port,
        // Storage hosts are judged by no Snowflake naming rule: a VPC endpoint for S3 or a
        // private endpoint for Azure legitimately answers with a private address.
        kind: HostKind::Custom,
    })
}

/// A `SYSTEM$ALLOWLIST` STAGE entry as a target (the path is the root: the entry names a host).
#[must_use]
pub fn allowlist_target(host: &str, port: u16) -> Option<StageTarget> {
    let provider = Provider::from_host(host)?;
    let mut endpoint = endpoint_of(host, "STAGE host").ok()?;
    endpoint.port = port;
    Some(StageTarget {
        provider,
        endpoint,
        path: "/".into(),
    })
}

/// What identifies an answer as the storage provider's own: S3 and GCS's XML API and Azure Blob
/// all answer a refused or unknown object with `<Error><Code>…</Code>…</Error>`, and mark every
/// answer with a request id header of their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageAnswer {
    /// The `<Code>` of the XML error body, when there is one (`AccessDenied`, `NoSuchKey`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The provider's request-id header that was present, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker_header: Option<&'static str>,
}

/// The request-id headers each provider sets on every answer (lower case). Not
/// `x-amzn-RequestId`: that is API Gateway's (and other AWS services'), which anyone can put in
/// front of a block page; S3 sends `x-amz-request-id` and `x-amz-id-2`.
const MARKER_HEADERS: &[(&str, Provider)] = &[
    ("x-amz-request-id", Provider::S3),
    ("x-amz-id-2", Provider::S3),
    ("x-ms-request-id", Provider::Azure),
    ("x-guploader-uploadid", Provider::Gcs),
];

/// Judges an answer to an anonymous request: `Some` when it has the provider's shape (its
/// request-id header, or its XML error body), `None` when something else answered (a proxy's
/// or firewall's page). `headers` are (name, value) pairs; names in any case.
#[must_use]
pub fn storage_answer(
    provider: Provider,
    headers: &[(String, String)],
    body: &str,
) -> Option<StorageAnswer> {
    let marker_header = MARKER_HEADERS
        .iter()
        .find(|(name, p)| {
            *p == provider && headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(name))
        })
        .map(|(name, _)| *name);
    let error_code = xml_error_code(body);
    (marker_header.is_some() || error_code.is_some()).then_some(StorageAnswer {
        error_code,
        marker_header,
    })
}

/// The `<Code>` of an `<Error>` XML body.
fn xml_error_code(body: &str) -> Option<String> {
    let error = &body[body.find("<Error>")?..];
    let start = error.find("<Code>")? + "<Code>".len();
    let len = error[start..].find("</Code>")?;
    let code = &error[start..start + len];
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    fn location(json: serde_json::Value) -> StageLocation {
        serde_json::from_value(json).unwrap()
    }

    #[test_case(serde_json::json!({"location_type": "S3", "location": "bkt/a/b/", "region": "us-west-2"}),
        Provider::S3, "bkt.s3.us-west-2.amazonaws.com", 443, "/a/b/"; "s3 regional")]
    #[test_case(serde_json::json!({"location_type": "S3CHINA", "location": "bkt/a/", "region": "cn-northwest-1"}),
        Provider::S3, "bkt.s3.cn-northwest-1.amazonaws.com.cn", 443, "/a/"; "s3 china")]
    #[test_case(serde_json::json!({"location_type": "S3", "bucket_name": "bkt", "path_prefix": "p", "storage_endpoint": "stage.test:9443"}),
        Provider::S3, "bkt.stage.test", 9443, "/p/"; "s3 storage endpoint with port")]
    #[test_case(serde_json::json!({"location_type": "AZURE", "location": "cont/pre/", "storage_account": "acct", "storage_endpoint": "blob.core.windows.net"}),
        Provider::Azure, "acct.blob.core.windows.net", 443, "/cont/pre/"; "azure")]
    #[test_case(serde_json::json!({"location_type": "GCS", "location": "bkt/pre"}),
        Provider::Gcs, "storage.googleapis.com", 443, "/bkt/pre/"; "gcs")]
    #[test_case(serde_json::json!({"location_type": "GCS", "location": "bkt/", "url_override": "https://bkt.storage.googleapis.com"}),
        Provider::Gcs, "bkt.storage.googleapis.com", 443, "/"; "gcs override")]
    fn builds_the_upload_host(
        json: serde_json::Value,
        provider: Provider,
        host: &str,
        port: u16,
        path: &str,
    ) {
        let t = location(json).target().unwrap();
        assert_eq!(
            (
                t.provider,
                t.endpoint.host.as_str(),
                t.endpoint.port,
                t.path.as_str()
            ),
            (provider, host, port, path)
        );
    }

    #[test_case(serde_json::json!({"location_type": "LOCAL_FS", "location": "x"}); "unknown type")]
    #[test_case(serde_json::json!({"location_type": "S3", "location": "bkt/"}); "s3 without region")]
    #[test_case(serde_json::json!({"location_type": "AZURE", "location": "c/"}); "azure without account")]
    #[test_case(serde_json::json!({"location_type": "S3", "location": "b/", "storage_endpoint": "x/y"}); "bad host")]
    fn refuses_unusable_locations(json: serde_json::Value) {
        assert!(location(json).target().is_err());
    }

    #[test_case("sfc-stage.s3.us-west-2.amazonaws.com", Some(Provider::S3); "s3")]
    #[test_case("x.blob.core.windows.net", Some(Provider::Azure); "azure")]
    #[test_case("storage.googleapis.com", Some(Provider::Gcs); "gcs")]
    #[test_case("ocsp.snowflakecomputing.com", None; "not storage")]
    fn knows_providers_by_host(host: &str, want: Option<Provider>) {
        assert_eq!(Provider::from_host(host), want);
    }

    #[test]
    fn parsing_pipe_info_registers_its_credentials_and_nothing_public() {
        let body = serde_json::json!({
            "rowset_stage_location": {
                "location_type": "S3",
                "location": "pipe-info-bucket/prefix/",
                "region": "us-west-2",
                "storage_endpoint": "pipe-info-storage.test",
                "creds": {
                    "AWS_KEY_ID": "ASIAPIPEINFOKEYID",
                    "AWS_SECRET_KEY": "pipe-info-secret-access-key",
                    "AWS_TOKEN": "pipe-info-session-token",
                },
                "presignedUrl": "https://x.test/?X-Goog-Signature=pipe-info-signature",
            },
            "encryption_info": {"pipe_key": "cGlwZS1pbmZvLWtleQ==", "pipe_key_id": 7},
            "azure": [{"AZURE_SAS_TOKEN": "sv=2024&sig=pipe-info-sas"}],
        });
        let info = PipeInfo::parse(&body.to_string()).unwrap();
        assert_eq!(info.rowset_stage_location.location_type, "S3");
        let echoed = "denied: ASIAPIPEINFOKEYID pipe-info-secret-access-key \
            pipe-info-session-token https://x.test/?X-Goog-Signature=pipe-info-signature \
            cGlwZS1pbmZvLWtleQ== sv=2024&sig=pipe-info-sas";
        let scrubbed = crate::secret::scrub(echoed);
        assert!(!scrubbed.contains("pipe-info"), "{scrubbed}");
        assert!(!scrubbed.contains("ASIA"), "{scrubbed}");
        assert!(!scrubbed.contains("cGlw"), "{scrubbed}");
        let public = "pipe-info-bucket prefix us-west-2 pipe-info-storage.test S3";
        assert_eq!(crate::secret::scrub(public), public);
    }

    fn headers(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), "x".to_owned()))
            .collect()
    }

    const S3_DENIED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";

    #[test_case(Provider::S3, &["X-Amz-Request-Id"], S3_DENIED => "AccessDenied"; "s3 denied")]
    #[test_case(Provider::S3, &[], S3_DENIED => "AccessDenied"; "xml alone")]
    #[test_case(Provider::Azure, &["x-ms-request-id"], "" => "no code"; "azure header alone")]
    #[test_case(Provider::S3, &["x-ms-request-id"], "<html>Access denied by policy</html>" => "not the provider"; "block page")]
    #[test_case(Provider::S3, &["x-amzn-RequestId"], "<html>Forbidden</html>" => "not the provider"; "api gateway's request id")]
    #[test_case(Provider::S3, &["x-amz-id-2"], "" => "no code"; "s3 id-2 alone")]
    fn recognises_the_providers_answer(provider: Provider, names: &[&str], body: &str) -> String {
        storage_answer(provider, &headers(names), body).map_or("not the provider".into(), |a| {
            a.error_code.unwrap_or_else(|| "no code".into())
        })
    }
}
