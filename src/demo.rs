//! `netcheck demo`: start the embedded emulator in-process with a throwaway key and run every
//! check, `--full` included, against it — a newcomer sees the whole suite pass in seconds, with no
//! account and no network. `--fault NAME` shows what a given failure looks like.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::{OutputArgs, execute, init_logging};
use crate::emulator::{self, Emulator, EmulatorConfig, Fault, defaults};
use crate::net::proxy::ProxySettings;
use crate::net::resolver::{ResolveOverride, Upstream};
use crate::net::tls::TrustStore;
use crate::registry;
use crate::settings::{Settings, Snowflake};
use crate::snowflake::keys::PrivateKey;
use crate::target;

/// `netcheck demo` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// An emulator fault, as listed by netcheck emulate --list-faults; repeatable.
    #[arg(long = "fault", value_name = "NAME[=VALUE][@SCOPE][#N]")]
    pub faults: Vec<Fault>,
    /// Rows to stream through the test channel.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub rows: u16,
    #[command(flatten)]
    pub rate: crate::load::RateArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs the demo and returns the exit code of the run.
pub async fn demo(args: DemoArgs) -> anyhow::Result<u8> {
    init_logging(args.output.verbose);
    let key = emulator::default_key();
    let mut config = EmulatorConfig::with_user_key(&key.public_key().to_pem()?);
    config.faults = args.faults.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the emulator on 127.0.0.1")?;
    let emu = emulator::spawn(listener, config)
        .await
        .context("start the emulator")?;
    let mut settings = settings_for(&emu, key, usize::from(args.rows))?;
    settings.rate = args.rate.load()?;
    let plan = registry::plan(&[], &[], true)?;
    let code = execute(settings, &plan, &args.output).await?;
    emu.shutdown().await;
    Ok(code)
}

/// Settings that point every check at a running emulator as its default user: both hosts pinned
/// to its address and nothing else resolvable (no DNS query is ever sent), its CA trusted,
/// `--full` on.
pub fn settings_for(emu: &Emulator, key: &PrivateKey, rows: usize) -> anyhow::Result<Settings> {
    let port = emu.addr().port();
    let pin = |host: &str| ResolveOverride {
        host: host.to_owned(),
        port,
        addrs: vec![emu.addr().ip()],
    };
    Ok(Settings {
        account: target::parse_account(&format!("https://{}:{port}", emu.account_host()))?,
        resolve: vec![pin(emu.account_host()), pin(emu.ingest_host())],
        ca_file: None,
        extra_roots: TrustStore::parse_pem(emu.ca_pem()).context("the emulator's CA")?,
        // Only the emulator's two hosts resolve; any other name (a `hostname=` fault) fails here
        // with that said, and no query ever leaves the machine.
        dns: Upstream::PinnedOnly,
        // The demo shows the emulator, not this machine's proxy settings.
        proxy: ProxySettings::from_env(|_| None, None, None),
        timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(60),
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
        connection: crate::connection::Connection::default(),
        allowlist: None,
        concurrency: 256,
        full: true,
        rows,
        rate: None,
    })
}
