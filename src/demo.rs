//! `netcheck demo`: start the embedded emulator in-process with a throwaway key and run every
//! check, `--full` included, against it — a newcomer sees the whole suite pass in seconds, with no
//! account and no network. `--fault NAME` shows what a given failure looks like.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::connection::{Authenticator, Connection, Source, Sourced};
use crate::emulator::{self, Emulator, EmulatorConfig, Fault, defaults};
use crate::load::Load;
use crate::net::proxy::ProxySettings;
use crate::net::resolver::{ResolveOverride, Upstream};
use crate::net::tls::TrustStore;
use crate::settings::{Settings, Snowflake};
use crate::snowflake::account::parse_account;
use crate::snowflake::keys::PrivateKey;

/// The emulator a demo runs against, and the settings that point every check at it.
pub struct Demo {
    pub emulator: Emulator,
    pub settings: Settings,
}

/// Starts the emulator on loopback with `faults`, with a throwaway key registered for its
/// default user; `rows` and `rate` as `run --full` takes them.
pub async fn start(faults: Vec<Fault>, rows: usize, rate: Option<Load>) -> anyhow::Result<Demo> {
    let key = emulator::default_key();
    let mut config = EmulatorConfig::with_user_key(&key.public_key().to_pem()?);
    config.faults = faults;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the emulator on 127.0.0.1")?;
    let emulator = emulator::spawn(listener, config)
        .await
        .context("start the emulator")?;
    let mut settings = settings_for(&emulator, key, rows)?;
    settings.rate = rate;
    Ok(Demo { emulator, settings })
}

/// The demo's connection settings, each credited to the demo (what `-v` and the report show).
fn demo_connection(target: &str, account: &str) -> Connection {
    let demo = |value: &str| {
        Some(Sourced {
            value: value.to_owned(),
            source: Source::Demo,
        })
    };
    Connection {
        target: demo(target),
        account: demo(account),
        user: demo(defaults::USER),
        role: demo(defaults::ROLE),
        authenticator: Sourced {
            value: Authenticator::SnowflakeJwt,
            source: Source::Demo,
        },
        database: demo(defaults::DATABASE),
        schema: demo(defaults::SCHEMA),
        table: demo(defaults::TABLE),
        ..Connection::default()
    }
}

/// Settings that point every check at a running emulator as its default user: both hosts pinned
/// to its address and nothing else resolvable (no DNS query is ever sent), its CA trusted,
/// `--full` on.
pub fn settings_for(emu: &Emulator, key: &PrivateKey, rows: usize) -> anyhow::Result<Settings> {
    let port = emu.addr().port();
    let account_url = format!("https://{}:{port}", emu.account_host());
    let pin = |host: &str| ResolveOverride {
        host: host.to_owned(),
        port,
        addrs: vec![emu.addr().ip()],
    };
    Ok(Settings {
        account: parse_account(&account_url)?,
        resolve: vec![pin(emu.account_host()), pin(emu.ingest_host())],
        ca_file: None,
        extra_roots: TrustStore::parse_pem(emu.ca_pem()).context("the emulator's CA")?,
        proxy_cacert: None,
        proxy_roots: vec![],
        // Only the emulator's two hosts resolve; any other name (a `hostname=` fault) fails here
        // with that said, and no query ever leaves the machine.
        dns: Upstream::PinnedOnly,
        // The demo shows the emulator, not this machine's proxy settings.
        proxy: ProxySettings::from_env(|_| None, None, None),
        timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(60),
        cleanup_grace: Duration::from_secs(5),
        budget_scale: 1.0,
        snowflake: Some(Snowflake {
            account: emu.account().to_owned(),
            user: defaults::USER.to_owned(),
            role: Some(defaults::ROLE.to_owned()),
            key: Arc::new(key.clone()),
            key_file: None,
            key_warnings: Vec::new(),
            database: Some(defaults::DATABASE.to_owned()),
            schema: Some(defaults::SCHEMA.to_owned()),
            table: Some(defaults::TABLE.to_owned()),
            pipe: None,
            warehouse: None,
        }),
        connection: demo_connection(&account_url, emu.account()),
        allowlist: None,
        concurrency: 256,
        full: true,
        rows,
        rate: None,
        origins: crate::settings::Origins::demo(),
    })
}
