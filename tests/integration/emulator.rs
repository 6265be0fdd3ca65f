//! The emulator driven with a plain HTTP client (reqwest over rustls, trusting only the
//! emulator's CA, names pinned to the loopback listener with `.resolve`): every endpoint, every
//! error path, and every fault, asserted against the reference shapes.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netcheck::emulator::{
    self, Emulator, EmulatorConfig, Fault, FaultScope, NetworkPolicy, UserConfig, defaults,
};
use netcheck::snowflake::jws;
use netcheck::snowflake::jwt::{self, Claims, JwtRejection};
use netcheck::snowflake::keys::PrivateKey;
use netcheck::snowflake::rest::{
    self, ApiCall, ApiError, BulkChannelStatusResponse, ChannelRef, OpenChannelResponse, PipeRef,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A key-pair JWT for the default user, minted now as an official client would.
fn fresh_jwt() -> String {
    jwt::mint(
        defaults::ACCOUNT,
        defaults::USER,
        emulator::default_key(),
        now(),
        None,
    )
    .unwrap()
    .expose()
    .clone()
}

struct Harness {
    emu: Emulator,
    http: reqwest::Client,
}

fn client_for(
    emu: &Emulator,
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap();
    let builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .resolve(emu.account_host(), emu.addr())
        .resolve(emu.ingest_host(), emu.addr());
    configure(builder).build().unwrap()
}

impl Harness {
    async fn start(config: EmulatorConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let emu = emulator::spawn(listener, config).await.unwrap();
        let http = client_for(&emu, |b| b);
        Self { emu, http }
    }

    async fn default() -> Self {
        Self::start(quick_config()).await
    }

    fn port(&self) -> u16 {
        self.emu.addr().port()
    }

    fn account_url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.emu.account_host(), self.port())
    }

    fn ingest_url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.emu.ingest_host(), self.port())
    }

    async fn hostname(&self, jwt: &str) -> reqwest::Response {
        self.http
            .get(self.account_url(rest::HOSTNAME_PATH))
            .bearer_auth(jwt)
            .header(rest::TOKEN_TYPE_HEADER, "KEYPAIR_JWT")
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
    }

    async fn token_response(&self, jwt: &str, scope: &str) -> reqwest::Response {
        self.http
            .post(self.account_url(rest::OAUTH_TOKEN_PATH))
            .bearer_auth(jwt)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(rest::token_request_form(scope, None))
            .send()
            .await
            .unwrap()
    }

    async fn scoped_token(&self) -> String {
        let r = self
            .token_response(&fresh_jwt(), self.emu.ingest_host())
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }

    async fn open(&self, token: &str, channel: &ChannelRef, body: Value) -> reqwest::Response {
        self.http
            .put(self.ingest_url(&channel.channel_path()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn open_ok(&self, token: &str, channel: &ChannelRef) -> OpenChannelResponse {
        let r = self.open(token, channel, json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// A scoped token, the default pipe's channel `name` opened with it, and its continuation
    /// token.
    async fn opened(&self, name: &str) -> (String, ChannelRef, String) {
        let token = self.scoped_token().await;
        let channel = pipe().channel(name);
        let cont = self.open_ok(&token, &channel).await.next_continuation_token;
        (token, channel, cont)
    }

    async fn append_raw(
        &self,
        token: &str,
        channel: &ChannelRef,
        query: &str,
        body: Vec<u8>,
        encoding: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}?{query}", self.ingest_url(&channel.rows_path())))
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(body);
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        req.send().await.unwrap()
    }

    async fn append(
        &self,
        token: &str,
        channel: &ChannelRef,
        cont: &str,
        offset: &str,
        rows: &[Value],
    ) -> String {
        let r = self
            .append_raw(
                token,
                channel,
                &format!("continuationToken={cont}&offsetToken={offset}"),
                ndjson(rows),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status_code"], 0);
        body["next_continuation_token"].as_str().unwrap().to_owned()
    }

    async fn status(
        &self,
        token: &str,
        pipe: &PipeRef,
        names: &[&str],
    ) -> BulkChannelStatusResponse {
        let r = self
            .http
            .post(self.ingest_url(&pipe.bulk_status_path()))
            .bearer_auth(token)
            .json(&json!({ "channel_names": names }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// Polls status until the channel's committed offset is `offset` (bounded).
    async fn wait_committed(
        &self,
        token: &str,
        channel: &ChannelRef,
        offset: &str,
    ) -> rest::ChannelStatus {
        for _ in 0..100 {
            let s = self.status(token, &channel.pipe, &[&channel.channel]).await;
            let status = s.channel_statuses[&channel.channel].clone();
            if status.last_committed_offset_token.as_deref() == Some(offset) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("offset {offset} never committed");
    }
}

fn quick_config() -> EmulatorConfig {
    EmulatorConfig {
        commit_delay: Duration::ZERO,
        ..EmulatorConfig::default()
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

fn ndjson(rows: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut out, r).unwrap();
        out.push(b'\n');
    }
    out
}

fn pipe() -> PipeRef {
    PipeRef::new(
        defaults::DATABASE,
        defaults::SCHEMA,
        &rest::default_pipe(defaults::TABLE),
    )
}

fn rows(range: std::ops::Range<u32>) -> Vec<Value> {
    range
        .map(|i| json!({"id": i, "msg": format!("row {i}")}))
        .collect()
}

async fn error_of(r: reqwest::Response) -> (StatusCode, ApiError) {
    let status = r.status();
    let body = r.text().await.unwrap();
    (
        status,
        ApiError::parse(&body).unwrap_or_else(|| panic!("not an error body: {body}")),
    )
}

#[tokio::test]
async fn discovery_returns_the_ingest_host_as_bare_text() {
    let h = Harness::default().await;
    let r = h.hostname(&fresh_jwt()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), h.emu.ingest_host());
    let log = h.emu.request_log();
    assert_eq!(log[0].endpoint, ApiCall::Hostname);
    assert_eq!(log[0].host, h.emu.account_host());
    assert_eq!(log[0].sni.as_deref(), Some(h.emu.account_host()));
    assert_eq!(log[0].token_type.as_deref(), Some("KEYPAIR_JWT"));
    assert!(log[0].version.starts_with("HTTP/"), "{}", log[0].version);
}

#[tokio::test]
async fn a_client_that_came_by_address_is_handed_the_address() {
    let h = Harness::default().await;
    let r = h
        .http
        .get(format!(
            "https://127.0.0.1:{}{}",
            h.port(),
            rest::HOSTNAME_PATH
        ))
        .bearer_auth(fresh_jwt())
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "127.0.0.1");
    assert_eq!(h.emu.request_log()[0].sni, None, "no SNI for an IP address");
}

#[tokio::test]
async fn token_exchange_returns_a_scoped_jwt_with_exp() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    let claims: Value = claims_of(&token);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp > now() + 3000 && exp <= now() + 3601, "exp {exp}");
    assert_eq!(claims["scope"], h.emu.ingest_host());
    // The JWT may also travel as the RFC 7523 `assertion` field.
    let r = h
        .http
        .post(h.account_url(rest::OAUTH_TOKEN_PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", rest::JWT_BEARER_GRANT),
            ("scope", h.emu.ingest_host()),
            ("assertion", &fresh_jwt()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_exchange_refuses_bad_scope_grant_and_role() {
    let h = Harness::default().await;
    let r = h
        .token_response(&fresh_jwt(), "elsewhere.example.com")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let r = h
        .token_response(
            &fresh_jwt(),
            &format!("{} session:role:ACCOUNTADMIN", h.emu.ingest_host()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = h
        .http
        .post(h.account_url(rest::OAUTH_TOKEN_PATH))
        .bearer_auth(fresh_jwt())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "password"),
            ("scope", h.emu.ingest_host()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::BAD_REQUEST,
            ApiError::new(
                "390142",
                "Incoming request does not contain a valid payload."
            )
        )
    );
}

#[tokio::test]
async fn scoped_token_only_works_on_its_ingest_host() {
    let h = Harness::default().await;
    let channel = pipe().channel("c1");
    let r = h.open(&fresh_jwt(), &channel, json!({})).await;
    let (status, err) = error_of(r).await;
    assert_eq!(
        (status, err.code.as_str()),
        (StatusCode::UNAUTHORIZED, "390303")
    );
    // Ingest calls on the account host do not exist there.
    let r = h
        .http
        .put(h.account_url(&channel.channel_path()))
        .bearer_auth(h.scoped_token().await)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rows_read_back_equal_rows_sent() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    let channel = pipe().channel("round-trip");
    let opened = h.open_ok(&token, &channel).await;
    assert_eq!(opened.channel_status.channel_status_code, "SUCCESS");
    assert_eq!(opened.channel_status.last_committed_offset_token, None);
    assert_eq!(opened.channel_status.pipe_name, "NETCHECK_EVENTS-STREAMING");
    let mut cont = opened.next_continuation_token;
    let mut sent = Vec::new();
    for batch in 0..5u32 {
        let batch_rows = rows(batch * 100..batch * 100 + 100);
        cont = h
            .append(&token, &channel, &cont, &batch.to_string(), &batch_rows)
            .await;
        sent.extend(batch_rows);
    }
    // The start/end offset form of the newer docs and the SDK.
    let last = rows(500..503);
    let r = h
        .append_raw(
            &token,
            &channel,
            &format!("startOffsetToken=&endOffsetToken=last&continuationToken={cont}"),
            ndjson(&last),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    sent.extend(last);
    let status = h.wait_committed(&token, &channel, "last").await;
    assert_eq!(status.rows_inserted, 503);
    assert_eq!(status.rows_error_count, 0);
    assert_eq!(
        h.emu
            .rows(defaults::DATABASE, defaults::SCHEMA, &channel.pipe.pipe),
        sent
    );
    let r = h
        .http
        .delete(h.ingest_url(&channel.channel_path()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        h.status(&token, &channel.pipe, &["round-trip"])
            .await
            .channel_statuses
            .is_empty()
    );
    let r = h
        .http
        .delete(h.ingest_url(&channel.channel_path()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(r).await;
    assert_eq!(
        (status, err.code.as_str()),
        (
            StatusCode::NOT_FOUND,
            "ERR_CHANNEL_DOES_NOT_EXIST_OR_IS_NOT_AUTHORIZED"
        )
    );
}

#[tokio::test]
async fn reopening_makes_the_old_continuation_token_stale_and_keeps_committed_offset() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    let channel = pipe().channel("reopen");
    let first = h.open_ok(&token, &channel).await.next_continuation_token;
    let next = h.append(&token, &channel, &first, "1", &rows(0..3)).await;
    h.wait_committed(&token, &channel, "1").await;
    let reopened = h.open_ok(&token, &channel).await;
    assert_eq!(
        reopened
            .channel_status
            .last_committed_offset_token
            .as_deref(),
        Some("1")
    );
    let r = h
        .append_raw(
            &token,
            &channel,
            &format!("continuationToken={next}&offsetToken=2"),
            ndjson(&rows(3..4)),
            None,
        )
        .await;
    let (status, err) = error_of(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err.code, "STALE_CONTINUATION_TOKEN_SEQUENCER");
    // Replaying a token after it was used is refused too: nothing is doubled.
    let fresh = reopened.next_continuation_token;
    h.append(&token, &channel, &fresh, "2", &rows(3..4)).await;
    let r = h
        .append_raw(
            &token,
            &channel,
            &format!("continuationToken={fresh}&offsetToken=2"),
            ndjson(&rows(3..4)),
            None,
        )
        .await;
    assert_eq!(
        error_of(r).await.1.code,
        "ERR_CHANNEL_HAS_INVALID_ROW_SEQUENCER"
    );
    h.wait_committed(&token, &channel, "2").await;
    assert_eq!(
        h.emu
            .rows(defaults::DATABASE, defaults::SCHEMA, &channel.pipe.pipe),
        rows(0..4)
    );
}

#[tokio::test]
async fn commit_delay_holds_back_the_committed_offset() {
    // 2 s: the first status request must come before the commit even on a busy machine.
    let h = Harness::start(EmulatorConfig {
        commit_delay: Duration::from_secs(2),
        ..EmulatorConfig::default()
    })
    .await;
    let (token, channel, cont) = h.opened("slow").await;
    h.append(&token, &channel, &cont, "o1", &rows(0..2)).await;
    let early = h
        .status(&token, &channel.pipe, &["slow"])
        .await
        .channel_statuses["slow"]
        .clone();
    assert_eq!(early.last_committed_offset_token, None);
    assert_eq!(early.rows_inserted, 0);
    assert!(
        h.emu
            .rows(defaults::DATABASE, defaults::SCHEMA, &channel.pipe.pipe)
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = h
        .status(&token, &channel.pipe, &["slow"])
        .await
        .channel_statuses["slow"]
        .clone();
    assert_eq!(late.last_committed_offset_token.as_deref(), Some("o1"));
    assert_eq!(late.rows_inserted, 2);
    assert_eq!(late.snowflake_avg_processing_latency_ms, 2000);
}

/// The SDK refuses a pipe key under 32 bytes at its first file. The emulator hands out a usable
/// one only when its stage is a server the user named: the default `storage_endpoint` is S3's real
/// host name, where an SDK outside a loopback-only namespace would otherwise upload.
#[tokio::test]
async fn the_pipe_key_is_usable_only_with_a_stage_server() {
    use base64::Engine as _;
    for (stage, len) in [(None, 16), (Some("127.0.0.1:9".to_owned()), 32)] {
        let h = Harness::start(EmulatorConfig {
            stage,
            ..quick_config()
        })
        .await;
        let token = h.scoped_token().await;
        let r = h
            .http
            .post(h.ingest_url(&pipe().pipe_info_path()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let info: Value = r.json().await.unwrap();
        let key = base64::engine::general_purpose::STANDARD
            .decode(info["encryption_info"]["pipe_key"].as_str().unwrap())
            .unwrap();
        assert_eq!(key.len(), len);
    }
}

/// The official SDK's file mode registers files it uploaded to the stage (the body SDK 1.9.1 sent,
/// `tests/oracle/README.md`): the emulator commits the rows the fragments declare, up to the last
/// fragment's end offset token, and answers the next continuation token as an append does.
#[tokio::test]
async fn a_registered_file_commits_the_rows_its_fragments_declare() {
    let h = Harness::default().await;
    let (token, channel, cont) = h.opened("files").await;
    let path = channel.rows_path().replace("/rows", "/filebuffer");
    let fragment = |start: u32, rows: u32| {
        json!({"file_path": "netcheck-emulator-stage/streaming/0.ndjson",
               "content_type": "application/x-ndjson", "file_etag": "89119573ee0caaab4c687f89eeed4e01",
               "file_length_bytes": 132_902, "fragment_length_bytes": 132_902,
               "fragment_length_uncompressed_bytes": 67_596_890,
               "fragment_start_offset_token": start.to_string(),
               "fragment_end_offset_token": (start + rows - 1).to_string(),
               "fragment_row_count": rows, "fragment_start_byte_offset": 0,
               "diversifier": "emulator", "master_key_id": "1", "iv_base64": "MPzpTd005dEvwfpuZk+PVw==",
               "encryption_version": "AES-CTR-128.1", "min_append_timestamp_ms": 1_796_216_362_563_i64})
    };
    let register = |cont: &str, body: Value| {
        h.http
            .post(format!("{}?continuationToken={cont}", h.ingest_url(&path)))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = register(&cont, json!([fragment(0, 3), fragment(3, 4)]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let next = body["next_continuation_token"].as_str().unwrap();
    assert_ne!(next, cont);
    let status = h.wait_committed(&token, &channel, "6").await;
    assert_eq!(status.rows_inserted, 7);
    // The rows live in the stage: none is held for reading back.
    assert!(
        h.emu
            .rows(defaults::DATABASE, defaults::SCHEMA, &channel.pipe.pipe)
            .is_empty()
    );
    let (code, error) = error_of(register(next, json!([])).await.unwrap()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{error:?}");
    // Counts no file can hold (or that overflow when added) are refused, not added up.
    let mut huge = fragment(7, 1);
    huge["fragment_row_count"] = json!(u64::MAX);
    let (code, error) = error_of(register(next, json!([huge.clone(), huge])).await.unwrap()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{error:?}");
}

#[tokio::test]
async fn reopen_with_fail_on_uncommitted_rows_answers_409() {
    let h = Harness::start(EmulatorConfig {
        commit_delay: Duration::from_secs(30),
        ..EmulatorConfig::default()
    })
    .await;
    let (token, channel, cont) = h.opened("inflight").await;
    h.append(&token, &channel, &cont, "o1", &rows(0..2)).await;
    let r = h
        .open(&token, &channel, json!({"fail_on_uncommitted_rows": true}))
        .await;
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::CONFLICT,
            ApiError::new(
                "ERR_CHANNEL_HAS_UNCOMMITTED_DATA",
                "Channel has uncommitted data."
            )
        )
    );
    // Without the flag the in-flight rows are discarded.
    h.open_ok(&token, &channel).await;
}

#[tokio::test]
async fn gzip_and_zstd_bodies_are_decoded() {
    use std::io::Write as _;
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    let channel = pipe().channel("compressed");
    let mut cont = h.open_ok(&token, &channel).await.next_continuation_token;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&ndjson(&rows(0..50))).unwrap();
    let zs = zstd::encode_all(&ndjson(&rows(50..100))[..], 3).unwrap();
    for (i, (body, enc)) in [(gz.finish().unwrap(), "gzip"), (zs, "zstd")]
        .into_iter()
        .enumerate()
    {
        let r = h
            .append_raw(
                &token,
                &channel,
                &format!("continuationToken={cont}&offsetToken={i}"),
                body,
                Some(enc),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{enc}");
        cont = r.json::<Value>().await.unwrap()["next_continuation_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    h.wait_committed(&token, &channel, "1").await;
    assert_eq!(
        h.emu
            .rows(defaults::DATABASE, defaults::SCHEMA, &channel.pipe.pipe),
        rows(0..100)
    );
}

#[tokio::test]
async fn bodies_over_four_megabytes_on_the_wire_are_refused() {
    let h = Harness::default().await;
    let (token, channel, cont) = h.opened("big").await;
    let line = format!("{}\n", json!({"pad": "x".repeat(1000)}));
    let exact: String = line.repeat(rest::MAX_APPEND_BYTES / line.len());
    let r = h
        .append_raw(
            &token,
            &channel,
            &format!("continuationToken={cont}&offsetToken=a"),
            exact.into_bytes(),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "just under the cap is fine");
    let next = r.json::<Value>().await.unwrap()["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let over = "x".repeat(rest::MAX_APPEND_BYTES + 1);
    let r = h
        .append_raw(
            &token,
            &channel,
            &format!("continuationToken={next}&offsetToken=b"),
            over.into_bytes(),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_with_413_and_nothing_is_stored() {
    use std::io::Write as _;
    let h = Harness::default().await;
    let (token, channel, cont) = h.opened("bomb").await;
    // 80 MiB of one row repeated (past the emulator's 64 MiB decompressed cap) in well under a
    // MiB of gzip: cut at the cap, it would be stored as a shorter batch the client never sent.
    let row = format!("{}\n", json!({"pad": "x".repeat(1000)}));
    let chunk = row.repeat((1 << 20) / row.len());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..80 {
        gz.write_all(chunk.as_bytes()).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < rest::MAX_APPEND_BYTES, "{} bytes", bomb.len());
    let r = h
        .append_raw(
            &token,
            &channel,
            &format!("continuationToken={cont}&offsetToken=bomb"),
            bomb,
            Some("gzip"),
        )
        .await;
    let (status, error) = error_of(r).await;
    assert_eq!(
        (status, error.code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "ERR_REQUEST_TOO_LARGE")
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = h.status(&token, &pipe(), &["bomb"]).await.channel_statuses["bomb"].clone();
    assert_eq!(
        (status.last_committed_offset_token, status.rows_inserted),
        (None, 0)
    );
}

#[tokio::test]
async fn rows_that_are_not_json_objects_are_counted_as_errors() {
    let h = Harness::default().await;
    let (token, channel, cont) = h.opened("bad-rows").await;
    let body = b"{\"ok\":1}\nnot json\n[1,2]\r\n{\"ok\":2}\r\n".to_vec();
    let r = h
        .append_raw(
            &token,
            &channel,
            &format!("continuationToken={cont}&offsetToken=e1"),
            body,
            None,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "bad rows are not an HTTP error (ON_ERROR = CONTINUE)"
    );
    let status = h.wait_committed(&token, &channel, "e1").await;
    assert_eq!(
        (
            status.rows_inserted,
            status.rows_error_count,
            status.rows_parsed
        ),
        (2, 2, 4)
    );
    assert!(status.last_error_message.unwrap().contains("row 2"));
    assert_eq!(status.last_error_offset_upper_bound.as_deref(), Some("e1"));
    assert_eq!(
        h.emu
            .rows(defaults::DATABASE, defaults::SCHEMA, &channel.pipe.pipe),
        vec![json!({"ok":1}), json!({"ok":2})]
    );
}

/// Each JWT rule: the client sees 401 390144 with an incident id; the emulator records the
/// detailed reason under that id.
#[tokio::test]
async fn jwt_rules_record_each_detailed_reason() {
    let h = Harness::default().await;
    let key = emulator::default_key();
    let fp = key.public_key().fingerprint();
    let sign = |c: &Claims| c.sign(key).unwrap().expose().clone();
    for (i, (token, reason)) in jwt_cases().iter().enumerate() {
        let r = h.hostname(token).await;
        let (status, err) = error_of(r).await;
        assert_eq!(
            (status, err.code.as_str()),
            (StatusCode::UNAUTHORIZED, "390144"),
            "{reason:?}"
        );
        let message = err.message.unwrap();
        assert!(message.starts_with("JWT token is invalid. ["), "{message}");
        let failure = &h.emu.jwt_failures()[i];
        assert_eq!(failure.reason, *reason);
        assert_eq!(failure.code, reason.code());
        assert!(message.contains(&failure.incident));
    }
    let codes: Vec<u32> = h.emu.jwt_failures().iter().map(|f| f.code).collect();
    for code in 394_300..=394_307 {
        assert!(codes.contains(&code), "{code} not exercised");
    }
    // The SDK's form: milliseconds and a role claim.
    let base = Claims::new(
        defaults::ACCOUNT,
        defaults::USER,
        &fp,
        now(),
        jwt::DEFAULT_LIFETIME,
    );
    let sdk = sign(&base.with_role(defaults::ROLE).in_milliseconds());
    assert_eq!(h.hostname(&sdk).await.status(), StatusCode::OK);
}

/// One token per JWT rule, with the reason the server must record.
fn jwt_cases() -> Vec<(String, JwtRejection)> {
    let key = emulator::default_key();
    let fp = key.public_key().fingerprint();
    let base = || {
        Claims::new(
            defaults::ACCOUNT,
            defaults::USER,
            &fp,
            now(),
            jwt::DEFAULT_LIFETIME,
        )
    };
    let other_key = PrivateKey::generate(2048).unwrap();
    let sign = |c: &Claims| c.sign(key).unwrap().expose().clone();
    let cases: Vec<(String, JwtRejection)> = vec![
        (
            sign(&Claims::new(
                defaults::ACCOUNT,
                "NOBODY",
                &fp,
                now(),
                jwt::DEFAULT_LIFETIME,
            )),
            JwtRejection::UnknownUser,
        ),
        (
            sign(&Claims {
                iat: now() - 10,
                exp: now() + 3600,
                ..base()
            }),
            JwtRejection::InvalidExpiration,
        ),
        (
            sign(&Claims {
                iat: now() - 4000,
                exp: now() - 400,
                ..base()
            }),
            JwtRejection::InvalidExpiration,
        ),
        (
            sign(&Claims {
                iat: now() + 120,
                exp: now() + 600,
                ..base()
            }),
            JwtRejection::IssueTimeInFuture,
        ),
        (
            sign(&Claims::new(
                defaults::ACCOUNT,
                defaults::USER,
                &other_key.public_key().fingerprint(),
                now(),
                jwt::DEFAULT_LIFETIME,
            )),
            JwtRejection::FingerprintMismatch,
        ),
        (
            base().sign(&other_key).unwrap().expose().clone(),
            JwtRejection::InvalidSignature,
        ),
        (
            sign(&Claims::new(
                "otherorg-other",
                defaults::USER,
                &fp,
                now(),
                jwt::DEFAULT_LIFETIME,
            )),
            JwtRejection::AccountMismatch,
        ),
        (
            jws::encode(&jws::Signer::Hs256(b"k"), &base()).unwrap(),
            JwtRejection::InvalidAlgorithm,
        ),
        (
            unsigned_token(&json!({"iss": base().iss, "sub": base().sub})),
            JwtRejection::MissingIssueOrExpiration,
        ),
    ];
    cases
}

/// The claims of a token, read without checking its signature.
fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn unsigned_token(claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(claims)
    )
}

#[tokio::test]
async fn rotation_accepts_either_registered_key() {
    let old = emulator::default_key();
    let new = PrivateKey::generate(2048).unwrap();
    let mut config = quick_config();
    config.users[0].rsa_public_key_2 = Some(new.public_key().to_pem().unwrap());
    let h = Harness::start(config).await;
    for key in [old, &new] {
        let token = jwt::mint(defaults::ACCOUNT, defaults::USER, key, now(), None).unwrap();
        assert_eq!(h.hostname(token.expose()).await.status(), StatusCode::OK);
    }
    // After RSA_PUBLIC_KEY is unset, the old key is refused with a fingerprint mismatch.
    let mut config = quick_config();
    config.users[0].rsa_public_key = None;
    config.users[0].rsa_public_key_2 = Some(new.public_key().to_pem().unwrap());
    let h = Harness::start(config).await;
    assert_eq!(
        h.hostname(&fresh_jwt()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.emu.jwt_failures()[0].reason,
        JwtRejection::FingerprintMismatch
    );
}

/// Sends one request of every endpoint with valid credentials and returns the responses.
async fn every_endpoint(
    h: &Harness,
    token: &str,
    jwt: &str,
) -> Vec<(&'static str, reqwest::Response)> {
    let channel = pipe().channel("any");
    let mut out = Vec::new();
    let http = &h.http;
    out.push(("hostname", h.hostname(jwt).await));
    out.push(("token", h.token_response(jwt, h.emu.ingest_host()).await));
    out.push(("open", h.open(token, &channel, json!({})).await));
    out.push((
        "append",
        h.append_raw(
            token,
            &channel,
            "continuationToken=1_0",
            ndjson(&rows(0..1)),
            None,
        )
        .await,
    ));
    out.push((
        "status",
        http.post(h.ingest_url(&channel.pipe.bulk_status_path()))
            .bearer_auth(token)
            .json(&json!({"channel_names":["any"]}))
            .send()
            .await
            .unwrap(),
    ));
    out.push((
        "drop",
        http.delete(h.ingest_url(&channel.channel_path()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    ));
    out.push((
        "statements",
        http.post(h.account_url(rest::STATEMENTS_PATH))
            .bearer_auth(jwt)
            .json(&json!({"statement":"select 1"}))
            .send()
            .await
            .unwrap(),
    ));
    out
}

#[tokio::test]
async fn network_policy_answers_390422_on_every_endpoint() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    let jwt = fresh_jwt();
    let blocked = || vec![Fault::NetworkPolicy(vec!["127.0.0.0/8".parse().unwrap()])];
    h.emu.set_faults(blocked());
    for (name, r) in every_endpoint(&h, &token, &jwt).await {
        let (status, err) = error_of(r).await;
        assert_eq!(
            (status, err.code.as_str()),
            (StatusCode::UNAUTHORIZED, "390422"),
            "{name}"
        );
        assert_eq!(
            err.message.unwrap(),
            "Incoming request with IP/Token 127.0.0.1 is not allowed to access Snowflake."
        );
    }
    // The same from configuration: an account policy, and a user policy.
    let mut config = quick_config();
    config.network_policy = NetworkPolicy {
        allowed: vec!["10.0.0.0/8".parse().unwrap()],
        blocked: vec![],
    };
    let h = Harness::start(config).await;
    let (status, err) = error_of(h.hostname(&fresh_jwt()).await).await;
    assert_eq!(
        (status, err.code.as_str()),
        (StatusCode::UNAUTHORIZED, "390422")
    );
    // A blocked address hears about the policy even when its token is bad.
    assert_eq!(error_of(h.hostname("junk").await).await.1.code, "390422");
    // A user-level policy overrides the account's.
    let mut config = quick_config();
    config.network_policy = NetworkPolicy {
        allowed: vec!["10.0.0.0/8".parse().unwrap()],
        blocked: vec![],
    };
    config.users[0].network_policy = Some(NetworkPolicy {
        allowed: vec!["127.0.0.0/8".parse().unwrap()],
        blocked: vec![],
    });
    let h = Harness::start(config).await;
    assert_eq!(h.hostname(&fresh_jwt()).await.status(), StatusCode::OK);
    let mut config = quick_config();
    config.users[0].network_policy = Some(NetworkPolicy {
        allowed: vec![],
        blocked: vec!["127.0.0.1/32".parse().unwrap()],
    });
    let h = Harness::start(config).await;
    assert_eq!(
        error_of(h.hostname(&fresh_jwt()).await).await.1.code,
        "390422"
    );
}

#[tokio::test]
async fn missing_pipe_or_privilege_answers_404() {
    let mut config = quick_config();
    config.users.push(UserConfig {
        name: "READER".into(),
        default_role: "READER_ROLE".into(),
        roles: vec![],
        ..config.users[0].clone()
    });
    let h = Harness::start(config).await;
    let token = h.scoped_token().await;
    let missing = PipeRef::new(defaults::DATABASE, defaults::SCHEMA, "NOPE").channel("c");
    let (status, err) = error_of(h.open(&token, &missing, json!({})).await).await;
    assert_eq!(
        (status, err.code.as_str()),
        (
            StatusCode::NOT_FOUND,
            "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
        )
    );
    // Names are case-insensitive: the lower-case spelling of the real pipe works.
    let lower = PipeRef::new("netcheck_db", "public", "netcheck_events-streaming").channel("c");
    assert_eq!(
        h.open(&token, &lower, json!({})).await.status(),
        StatusCode::OK
    );
    // A role without the grant sees the same 404.
    let reader_jwt = jwt::mint(
        defaults::ACCOUNT,
        "READER",
        emulator::default_key(),
        now(),
        None,
    )
    .unwrap();
    let r = h
        .token_response(reader_jwt.expose(), h.emu.ingest_host())
        .await;
    let reader_token = r.text().await.unwrap();
    let (status, _) = error_of(h.open(&reader_token, &pipe().channel("c"), json!({})).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for fault in [Fault::MissingPipe, Fault::MissingPrivilege] {
        h.emu
            .set_faults(vec![fault.on(FaultScope::Endpoint(ApiCall::Open))]);
        let (status, err) = error_of(h.open(&token, &pipe().channel("c"), json!({})).await).await;
        assert_eq!(
            (status, err.code.as_str()),
            (
                StatusCode::NOT_FOUND,
                "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
            )
        );
    }
}

#[tokio::test]
async fn throttle_answers_429_with_and_without_retry_after() {
    let h = Harness::default().await;
    h.emu.set_faults(vec!["throttle@hostname".parse().unwrap()]);
    let r = h.hostname(&fresh_jwt()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(error_of(r).await.1.code, "390505");
    h.emu.set_faults(vec!["throttle=7".parse().unwrap()]);
    let r = h.hostname(&fresh_jwt()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "7");
}

#[tokio::test]
async fn server_errors_carry_the_bare_string_body() {
    let h = Harness::default().await;
    for (spec, status) in [("server-error=500", 500), ("server-error", 503)] {
        h.emu.set_faults(vec![spec.parse().unwrap()]);
        let r = h.hostname(&fresh_jwt()).await;
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(
            r.text().await.unwrap(),
            "\"ERR_GENERAL_EXCEPTION_RETRY_REQUEST\""
        );
    }
}

#[tokio::test]
async fn counted_faults_clear_when_retried() {
    let h = Harness::default().await;
    h.emu
        .set_faults(vec!["server-error=503@hostname#2".parse().unwrap()]);
    let statuses = [
        h.hostname(&fresh_jwt()).await.status(),
        h.hostname(&fresh_jwt()).await.status(),
        h.hostname(&fresh_jwt()).await.status(),
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
}

/// Appends `n` rows chained after `cont`: the status, and the next token when stored.
async fn append_rows(
    h: &Harness,
    token: &str,
    channel: &ChannelRef,
    cont: &str,
    n: u32,
) -> (StatusCode, Option<String>) {
    let r = h
        .append_raw(
            token,
            channel,
            &format!("continuationToken={cont}&offsetToken={n}"),
            ndjson(&rows(0..n)),
            None,
        )
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or_default();
    (
        status,
        body["next_continuation_token"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn throttle_above_counts_only_appends_with_a_valid_token() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    h.emu
        .set_faults(vec!["throttle-above=10@append".parse().unwrap()]);
    let channel = pipe().channel("window");
    let cont = h.open_ok(&token, &channel).await.next_continuation_token;
    let (refused, _) = append_rows(&h, &token, &channel, "999_0", 8).await;
    assert_eq!(refused, StatusCode::BAD_REQUEST, "a stale token is refused");
    // The refused 8 rows were never stored, so they take no room in the channel's second.
    let (stored, _) = append_rows(&h, &token, &channel, &cont, 8).await;
    assert_eq!(stored, StatusCode::OK);
}

#[tokio::test]
async fn a_counted_throttle_above_counts_the_appends_it_throttles() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    // #1: the first append it throttles, not the first it sees.
    h.emu
        .set_faults(vec!["throttle-above=10@append#1".parse().unwrap()]);
    let channel = pipe().channel("counted");
    let cont = h.open_ok(&token, &channel).await.next_continuation_token;
    let (first, next) = append_rows(&h, &token, &channel, &cont, 6).await;
    let next = next.unwrap();
    let (second, _) = append_rows(&h, &token, &channel, &next, 6).await;
    let (third, _) = append_rows(&h, &token, &channel, &next, 6).await;
    assert_eq!(
        [first, second, third],
        [
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::OK
        ]
    );
}

#[tokio::test]
async fn a_dropped_channel_takes_its_throttle_window_with_it() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    h.emu
        .set_faults(vec!["throttle-above=10@append".parse().unwrap()]);
    let channel = pipe().channel("reborn");
    let cont = h.open_ok(&token, &channel).await.next_continuation_token;
    assert_eq!(
        append_rows(&h, &token, &channel, &cont, 8).await.0,
        StatusCode::OK
    );
    let dropped = h
        .http
        .delete(h.ingest_url(&channel.channel_path()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(dropped.status(), StatusCode::OK);
    // Opened again under the same name within the second: a new channel, an empty window.
    let cont = h.open_ok(&token, &channel).await.next_continuation_token;
    assert_eq!(
        append_rows(&h, &token, &channel, &cont, 8).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn reset_cuts_the_response_midway() {
    let h = Harness::default().await;
    h.emu.set_faults(vec!["reset@hostname".parse().unwrap()]);
    let r = h.hostname(&fresh_jwt()).await;
    assert_eq!(r.status(), StatusCode::OK, "status line and headers arrive");
    let err = r.bytes().await.expect_err("the body must not complete");
    assert!(
        err.is_body() || err.is_decode() || err.is_request(),
        "{err:?}"
    );
    assert!(h.emu.request_log()[0].reset);
    // The token call is unaffected.
    h.scoped_token().await;
}

#[tokio::test]
async fn latency_is_scoped_to_its_endpoint() {
    let h = Harness::default().await;
    h.scoped_token().await; // warm the connection
    h.emu
        .set_faults(vec!["latency=300ms@token".parse().unwrap()]);
    let t = std::time::Instant::now();
    h.hostname(&fresh_jwt()).await;
    assert!(t.elapsed() < Duration::from_millis(250));
    let t = std::time::Instant::now();
    h.scoped_token().await;
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn clock_offset_skews_date_and_token_times() {
    let h = Harness::default().await;
    h.emu.set_faults(vec!["clock-offset=-10m".parse().unwrap()]);
    // A client whose clock is right looks 10 minutes ahead to this server: 394302.
    let r = h.hostname(&fresh_jwt()).await;
    let date = httpdate::parse_http_date(r.headers()["date"].to_str().unwrap()).unwrap();
    let behind = SystemTime::now().duration_since(date).unwrap();
    assert!(
        behind > Duration::from_secs(590) && behind < Duration::from_secs(610),
        "{behind:?}"
    );
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.emu.jwt_failures()[0].reason,
        JwtRejection::IssueTimeInFuture
    );
    h.emu.set_faults(vec!["clock-offset=+2h".parse().unwrap()]);
    h.hostname(&fresh_jwt()).await;
    assert_eq!(
        h.emu.jwt_failures()[1].reason,
        JwtRejection::InvalidExpiration
    );
    // A JWT made with the server's clock works, and the scoped token carries skewed times.
    let skewed = jwt::mint(
        defaults::ACCOUNT,
        defaults::USER,
        emulator::default_key(),
        now() + 7200,
        None,
    )
    .unwrap();
    let token = h
        .token_response(skewed.expose(), h.emu.ingest_host())
        .await
        .text()
        .await
        .unwrap();
    let claims: Value = claims_of(&token);
    assert!(claims["iat"].as_i64().unwrap() >= now() + 7190);
}

#[tokio::test]
async fn channel_status_fault_answers_200_with_a_failure_code() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    h.emu.set_faults(vec!["channel-status".parse().unwrap()]);
    let opened = h.open_ok(&token, &pipe().channel("c")).await;
    assert_eq!(
        opened.channel_status.channel_status_code,
        "ERR_CHANNEL_NO_LONGER_EXISTS"
    );
    let status = h.status(&token, &pipe(), &["c"]).await;
    assert_eq!(
        status.channel_statuses["c"].channel_status_code,
        "ERR_CHANNEL_NO_LONGER_EXISTS"
    );
}

#[tokio::test]
async fn rows_past_keep_rows_are_committed_and_counted_but_not_kept() {
    let h = Harness::start(EmulatorConfig {
        keep_rows: 25,
        ..quick_config()
    })
    .await;
    let token = h.scoped_token().await;
    let channel = pipe().channel("bounded");
    let mut cont = h.open_ok(&token, &channel).await.next_continuation_token;
    for batch in 0..4u32 {
        cont = h
            .append(
                &token,
                &channel,
                &cont,
                &batch.to_string(),
                &rows(batch * 10..batch * 10 + 10),
            )
            .await;
    }
    let status = h.wait_committed(&token, &channel, "3").await;
    assert_eq!(status.rows_inserted, 40);
    assert_eq!(
        h.emu
            .rows(defaults::DATABASE, defaults::SCHEMA, &channel.pipe.pipe),
        rows(0..25),
        "the first 25 rows are kept"
    );
}

#[tokio::test]
async fn no_commit_accepts_rows_and_never_commits_them() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    h.emu.set_faults(vec!["no-commit".parse().unwrap()]);
    let channel = pipe().channel("void");
    let cont = h.open_ok(&token, &channel).await.next_continuation_token;
    h.append(&token, &channel, &cont, "1", &rows(0..10)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = h.status(&token, &pipe(), &["void"]).await.channel_statuses["void"].clone();
    assert_eq!(
        (status.last_committed_offset_token, status.rows_inserted),
        (None, 0)
    );
    assert!(
        h.emu
            .rows(defaults::DATABASE, defaults::SCHEMA, &channel.pipe.pipe)
            .is_empty()
    );
}

#[tokio::test]
async fn bulk_status_works_on_the_account_host_with_the_keypair_jwt() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    h.open_ok(&token, &pipe().channel("a")).await;
    let r = h
        .http
        .post(h.account_url(&pipe().bulk_status_path()))
        .bearer_auth(fresh_jwt())
        .json(&json!({"channel_names": ["a", "missing"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: BulkChannelStatusResponse = r.json().await.unwrap();
    assert_eq!(body.channel_statuses.keys().collect::<Vec<_>>(), ["a"]);
}

async fn statement(h: &Harness, sql: &str, query: &str) -> reqwest::Response {
    h.http
        .post(format!("{}{query}", h.account_url(rest::STATEMENTS_PATH)))
        .bearer_auth(fresh_jwt())
        .header(rest::TOKEN_TYPE_HEADER, "KEYPAIR_JWT")
        .json(&json!({"statement": sql, "timeout": 60}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn statements_api_shapes() {
    let h = Harness::default().await;
    let cases = [
        ("SELECT 1", json!([["1"]])),
        ("select current_ip_address()", json!([["127.0.0.1"]])),
        (
            "SELECT CURRENT_USER(), CURRENT_ROLE();",
            json!([[defaults::USER, defaults::ROLE]]),
        ),
    ];
    for (sql, data) in cases {
        let r = statement(&h, sql, "").await;
        assert_eq!(r.status(), StatusCode::OK, "{sql}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["data"], data, "{sql}");
        assert_eq!(body["code"], "090001");
        assert_eq!(body["sqlState"], "00000");
        assert_eq!(body["resultSetMetaData"]["format"], "jsonv2");
        assert_eq!(body["resultSetMetaData"]["numRows"], 1);
    }
    let body: Value = statement(&h, "SELECT SYSTEM$ALLOWLIST()", "")
        .await
        .json()
        .await
        .unwrap();
    let list: Value = serde_json::from_str(body["data"][0][0].as_str().unwrap()).unwrap();
    assert_eq!(list[0]["type"], "SNOWFLAKE_DEPLOYMENT");
    assert_eq!(list[0]["host"], h.emu.account_host());
    // 202, then poll.
    let r = statement(&h, "SELECT 1", "?async=true").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "333334");
    let url = h.account_url(body["statementStatusUrl"].as_str().unwrap());
    let polled = h
        .http
        .get(url)
        .bearer_auth(fresh_jwt())
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), StatusCode::OK);
    assert_eq!(
        polled.json::<Value>().await.unwrap()["data"],
        json!([["1"]])
    );
    // Anything else is a SQL compilation error.
    let r = statement(&h, "DROP DATABASE PROD", "").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sqlState"], "42000");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("SQL compilation error")
    );
}

async fn handshake_error(
    emu: &Emulator,
    host: &str,
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Option<String> {
    let client = client_for(emu, configure);
    let url = format!(
        "https://{host}:{}{}",
        emu.addr().port(),
        rest::HOSTNAME_PATH
    );
    client.get(url).send().await.err().map(|e| format!("{e:?}"))
}

#[tokio::test]
async fn tls_faults_change_the_servers_certificate_and_versions() {
    let h = Harness::default().await;
    let account = h.emu.account_host().to_owned();
    let ingest = h.emu.ingest_host().to_owned();
    assert_eq!(handshake_error(&h.emu, &account, |b| b).await, None);
    for (spec, needle) in [
        ("expired-cert", "Expired"),
        ("wrong-host-cert", "NotValidForName"),
        ("unknown-ca", "UnknownIssuer"),
    ] {
        h.emu.set_faults(vec![spec.parse().unwrap()]);
        let err = handshake_error(&h.emu, &account, |b| b)
            .await
            .unwrap_or_else(|| panic!("{spec} handshake succeeded"));
        assert!(err.contains(needle), "{spec}: {err}");
    }
    // tls12-only on the ingest host: a TLS 1.3-only client fails there, not on the account host.
    h.emu.set_faults(vec!["tls12-only@ingest".parse().unwrap()]);
    let tls13 = |b: reqwest::ClientBuilder| b.tls_version_min(reqwest::tls::Version::TLS_1_3);
    assert!(handshake_error(&h.emu, &ingest, tls13).await.is_some());
    assert_eq!(handshake_error(&h.emu, &account, tls13).await, None);
    assert_eq!(
        handshake_error(&h.emu, &ingest, |b| b
            .tls_version_max(reqwest::tls::Version::TLS_1_2))
        .await,
        None
    );
    let stats = h.emu.connection_stats();
    assert!(stats.tls_failures[&account] >= 3);
    assert!(stats.tls_failures[&ingest] >= 1);
}

#[tokio::test]
async fn connections_are_reused_and_counted_per_sni_host() {
    let h = Harness::default().await;
    let token = h.scoped_token().await;
    h.hostname(&fresh_jwt()).await;
    h.open_ok(&token, &pipe().channel("x")).await;
    h.status(&token, &pipe(), &["x"]).await;
    let stats = h.emu.connection_stats();
    assert_eq!(stats.tcp_accepted, 2, "{stats:?}");
    assert_eq!(stats.tls_handshakes[h.emu.account_host()], 1);
    assert_eq!(stats.tls_handshakes[h.emu.ingest_host()], 1);
}

#[tokio::test]
async fn unknown_hosts_and_paths_answer_404() {
    let h = Harness::default().await;
    let http = client_for(&h.emu, |b| {
        b.resolve("other.snowflakecomputing.com", h.emu.addr())
    });
    let err = http
        .get(format!(
            "https://other.snowflakecomputing.com:{}/v2/streaming/hostname",
            h.port()
        ))
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("NotValidForName"),
        "the certificate does not cover other hosts"
    );
    let r = h.http.get(h.account_url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let h = Harness::default().await;
    let addr: SocketAddr = h.emu.addr();
    drop(h);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn explicit_shutdown_waits_and_closes_the_listener() {
    let h = Harness::default().await;
    let addr = h.emu.addr();
    tokio::time::timeout(Duration::from_secs(5), h.emu.shutdown())
        .await
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn no_token_or_key_appears_in_logs_or_records() {
    let h = Harness::default().await;
    let jwt = fresh_jwt();
    let token = h.scoped_token().await;
    h.hostname(&jwt).await;
    h.hostname("not-a-jwt").await;
    let channel = pipe().channel("secret");
    let cont = h.open_ok(&token, &channel).await.next_continuation_token;
    h.append(&token, &channel, &cont, "1", &rows(0..2)).await;
    let records = format!(
        "{}{}{:?}{:?}{:?}",
        serde_json::to_string(&h.emu.request_log()).unwrap(),
        serde_json::to_string(&h.emu.jwt_failures()).unwrap(),
        h.emu.request_log(),
        emulator::default_key(),
        netcheck::snowflake::Secret::new(jwt.clone()),
    );
    for secret in [&jwt, &token, "not-a-jwt"] {
        assert!(!records.contains(secret), "a token leaked into the records");
    }
    let pem = emulator::default_key().to_pkcs8_pem().unwrap();
    let key_body = pem.expose().lines().nth(1).unwrap();
    assert!(!records.contains(key_body));
}
