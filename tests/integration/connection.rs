//! Connection settings from real files in temporary directories: both `connections.toml`
//! layouts, `config.toml` with `default_connection_name`, the environment variables, the seed's
//! JSON, the precedence of every layer, and loading real keys (generated at test time) with every
//! rejection naming the file. The environment is a lookup table: the process env is never read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use netcheck::connection::{
    Connection, ConnectionArgs, PassphrasePrompt, Source, load_key, load_key_with, resolve,
};
use netcheck::secret::Secret;
use netcheck::snowflake::keys::PrivateKey;
use test_case::test_case;

use crate::support::skip::{Lack, skip};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("netcheck-conn-{}-{n}-{name}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o600);
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// An environment lookup over fixed pairs.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

/// The environment of a user whose `SNOWFLAKE_HOME` is `home`, plus `extra`.
fn home_env(home: &TempDir, extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let dir = home.0.to_string_lossy().into_owned();
    let mut pairs = vec![("SNOWFLAKE_HOME", dir.as_str())];
    pairs.extend_from_slice(extra);
    env_of(&pairs)
}

fn named(name: &str) -> ConnectionArgs {
    ConnectionArgs {
        connection: Some(name.to_owned()),
        ..ConnectionArgs::default()
    }
}

fn file(path: &Path, key: &str) -> Source {
    Source::File {
        path: path.to_owned(),
        key: key.to_owned(),
    }
}

fn env(name: &str) -> Source {
    Source::Env {
        name: name.to_owned(),
    }
}

const DEV: &str = r#"
account = "myorg-dev"
user = "dev_user"
role = "INGEST"
private_key_path = "/keys/dev.p8"
password = "never-read"
port = 8443
"#;

#[test]
fn connections_toml_top_level_layout() {
    let home = TempDir::new("top");
    let path = home.write(
        "connections.toml",
        &format!("[dev]{DEV}\n[prod]\naccount = \"p\"\n"),
    );
    let conn = resolve(&named("dev"), None, &home_env(&home, &[])).unwrap();
    assert_eq!(conn.name.as_ref().unwrap().value, "dev");
    let user = conn.user.unwrap();
    assert_eq!(user.value, "dev_user");
    assert_eq!(user.source, file(&path, "dev.user"));
    let key = conn.private_key_file.unwrap();
    assert_eq!(key.value, PathBuf::from("/keys/dev.p8"));
    assert_eq!(key.source, file(&path, "dev.private_key_path"));
    assert_eq!(conn.port.unwrap().value, 8443);
    assert_eq!(
        conn.target.unwrap().value,
        "https://myorg-dev.snowflakecomputing.com:8443"
    );
}

#[test]
fn connections_toml_nested_layout() {
    let home = TempDir::new("nested");
    let path = home.write("connections.toml", &format!("[connections.dev]{DEV}"));
    let conn = resolve(&named("dev"), None, &home_env(&home, &[])).unwrap();
    assert_eq!(
        conn.account.unwrap().source,
        file(&path, "connections.dev.account")
    );
}

#[test]
fn config_toml_with_default_connection_name() {
    let home = TempDir::new("config");
    let path = home.write(
        "config.toml",
        &format!("default_connection_name = \"dev\"\n[connections.dev]{DEV}"),
    );
    let conn = resolve(&ConnectionArgs::default(), None, &home_env(&home, &[])).unwrap();
    let name = conn.name.unwrap();
    assert_eq!(name.value, "dev");
    assert_eq!(name.source, file(&path, "default_connection_name"));
    assert_eq!(
        conn.role.unwrap().source,
        file(&path, "connections.dev.role")
    );
}

#[test]
fn connections_toml_shadows_the_connections_of_config_toml() {
    let home = TempDir::new("shadow");
    let config = home.write(
        "config.toml",
        "default_connection_name = \"dev\"\n[connections.dev]\nuser = \"from_config\"\n",
    );
    let connections = home.write("connections.toml", "[dev]\nuser = \"from_connections\"\n");
    let conn = resolve(&ConnectionArgs::default(), None, &home_env(&home, &[])).unwrap();
    assert_eq!(
        conn.name.unwrap().source,
        file(&config, "default_connection_name")
    );
    assert_eq!(conn.user.unwrap().source, file(&connections, "dev.user"));
}

#[test]
fn default_connection_variable_beats_config_toml() {
    let home = TempDir::new("defvar");
    home.write(
        "config.toml",
        "default_connection_name = \"dev\"\n[connections.dev]\nuser = \"d\"\n[connections.ci]\nuser = \"c\"\n",
    );
    let env = home_env(&home, &[("SNOWFLAKE_DEFAULT_CONNECTION_NAME", "ci")]);
    let conn = resolve(&ConnectionArgs::default(), None, &env).unwrap();
    assert_eq!(
        conn.name.unwrap().source,
        self::env("SNOWFLAKE_DEFAULT_CONNECTION_NAME")
    );
    assert_eq!(conn.user.unwrap().value, "c");
}

#[test]
fn the_connection_named_default_is_used_when_nothing_is_named() {
    let home = TempDir::new("implicit");
    home.write("connections.toml", "[default]\nuser = \"u\"\n");
    let conn = resolve(&ConnectionArgs::default(), None, &home_env(&home, &[])).unwrap();
    let name = conn.name.unwrap();
    assert_eq!(
        (name.value.as_str(), name.source),
        ("default", Source::Default)
    );
    assert_eq!(conn.user.unwrap().value, "u");
}

#[test]
fn no_default_connection_is_not_an_error() {
    let home = TempDir::new("nodefault");
    home.write("connections.toml", "[dev]\nuser = \"u\"\n");
    let conn = resolve(
        &ConnectionArgs::default(),
        Some("acct"),
        &home_env(&home, &[]),
    )
    .unwrap();
    assert!(conn.name.is_none() && conn.user.is_none());
}

#[test]
fn home_dot_snowflake_then_xdg() {
    let home = TempDir::new("home");
    let xdg = home.write(
        ".config/snowflake/connections.toml",
        "[x]\nuser = \"xdg\"\n",
    );
    let dir = home.0.to_string_lossy().into_owned();
    let env = env_of(&[("HOME", &dir)]);
    let conn = resolve(&named("x"), None, &env).unwrap();
    assert_eq!(conn.user.unwrap().source, file(&xdg, "x.user"));
    // Once ~/.snowflake exists it is the only place looked at.
    let dot = home.write(".snowflake/connections.toml", "[x]\nuser = \"dot\"\n");
    let conn = resolve(&named("x"), None, &env).unwrap();
    assert_eq!(conn.user.unwrap().source, file(&dot, "x.user"));
}

/// One key, `user`, set in every layer; removing layers from the top shows each one's rank.
#[test_case(&[], "flag"; "flag wins over everything")]
#[test_case(&["flag"], "SNOWFLAKE_CONNECTIONS_DEV_USER"; "connection variable next")]
#[test_case(&["flag", "conn_env"], "json"; "then the --config file")]
#[test_case(&["flag", "conn_env", "json"], "toml"; "then connections.toml")]
#[test_case(&["flag", "conn_env", "json", "toml"], "SNOWFLAKE_USER"; "generic variable last")]
fn precedence_of_every_layer(without: &[&str], want: &str) {
    let home = TempDir::new("prec");
    let has = |layer: &str| !without.contains(&layer);
    let toml = home.write(
        "connections.toml",
        if has("toml") {
            "[dev]\nuser = \"toml\"\n"
        } else {
            "[dev]\n"
        },
    );
    let json = home.write(
        "seed/config.json",
        if has("json") {
            r#"{"user": "json"}"#
        } else {
            "{}"
        },
    );
    let mut vars = vec![("SNOWFLAKE_USER", "SNOWFLAKE_USER")];
    if has("conn_env") {
        vars.push((
            "SNOWFLAKE_CONNECTIONS_DEV_USER",
            "SNOWFLAKE_CONNECTIONS_DEV_USER",
        ));
    }
    let args = ConnectionArgs {
        connection: Some("dev".into()),
        config: Some(json.clone()),
        user: has("flag").then(|| "flag".to_owned()),
        ..ConnectionArgs::default()
    };
    let user = resolve(&args, None, &home_env(&home, &vars))
        .unwrap()
        .user
        .unwrap();
    assert_eq!(user.value, want);
    let want_source = match want {
        "flag" => Source::Flag {
            name: "--user".into(),
        },
        "json" => file(&json, "user"),
        "toml" => file(&toml, "dev.user"),
        var => env(var),
    };
    assert_eq!(user.source, want_source);
}

#[test]
fn connection_variables_use_the_upper_case_name_and_key_aliases() {
    let home = TempDir::new("connvars");
    home.write(
        "connections.toml",
        "[my_conn]\nprivate_key_file = \"/toml.p8\"\n",
    );
    let env = home_env(
        &home,
        &[
            ("SNOWFLAKE_CONNECTIONS_MY_CONN_PRIVATE_KEY_PATH", "/env.p8"),
            ("SNOWFLAKE_CONNECTIONS_MY_CONN_PRIVATE_KEY_FILE_PWD", "pw"),
        ],
    );
    let conn = resolve(&named("my_conn"), None, &env).unwrap();
    let key = conn.private_key_file.unwrap();
    assert_eq!(key.value, PathBuf::from("/env.p8"));
    assert_eq!(
        key.source,
        self::env("SNOWFLAKE_CONNECTIONS_MY_CONN_PRIVATE_KEY_PATH")
    );
    assert_eq!(
        conn.private_key_passphrase.unwrap().source,
        self::env("SNOWFLAKE_CONNECTIONS_MY_CONN_PRIVATE_KEY_FILE_PWD")
    );
}

#[test]
fn a_missing_connection_names_the_file_and_the_ones_it_has() {
    let home = TempDir::new("missing");
    let path = home.write(
        "connections.toml",
        "[dev]\nuser = \"u\"\n[prod]\nuser = \"p\"\n",
    );
    let err = resolve(&named("stage"), None, &home_env(&home, &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`stage`"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("dev, prod"), "{err}");
}

#[test]
fn a_named_connection_without_any_file_is_an_error() {
    let home = TempDir::new("nofiles");
    let err = resolve(&named("dev"), None, &home_env(&home, &[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("connections.toml") && err.contains("config.toml"),
        "{err}"
    );
}

#[test]
fn a_file_that_does_not_parse_names_file_and_line_but_not_its_text() {
    let home = TempDir::new("broken");
    let path = home.write(
        "connections.toml",
        "[dev]\nuser = \"u\"\nprivate_key_file_pwd = \"s3cret-pass\n",
    );
    let err = resolve(&named("dev"), None, &home_env(&home, &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn a_broken_file_no_connection_was_asked_from_warns_and_the_run_goes_on() {
    let home = TempDir::new("broken-unused");
    let path = home.write("connections.toml", "[dev]\nuser = \"u\n");
    // Unreadable too: a directory where config.toml should be.
    std::fs::create_dir(home.0.join("config.toml")).unwrap();
    let conn = resolve(
        &ConnectionArgs::default(),
        Some("myorg-acct"),
        &home_env(&home, &[]),
    )
    .unwrap();
    assert_eq!(conn.target.unwrap().value, "myorg-acct");
    assert_eq!(conn.warnings.len(), 2, "{:?}", conn.warnings);
    assert!(
        conn.warnings[0].contains(&path.display().to_string())
            && conn.warnings[0].contains("no connection was asked for"),
        "{:?}",
        conn.warnings
    );
    // Asked for by name, by flag or by variable, the same file still stops the run.
    assert!(resolve(&named("dev"), Some("myorg-acct"), &home_env(&home, &[])).is_err());
    let by_variable = home_env(&home, &[("SNOWFLAKE_DEFAULT_CONNECTION_NAME", "dev")]);
    assert!(resolve(&ConnectionArgs::default(), Some("myorg-acct"), &by_variable).is_err());
}

#[test]
fn a_key_of_the_wrong_type_names_the_key_not_the_value() {
    let home = TempDir::new("wrongtype");
    home.write(
        "connections.toml",
        "[dev]\nprivate_key_file_pwd = [\"s3cret\"]\n",
    );
    let err = resolve(&named("dev"), None, &home_env(&home, &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("dev.private_key_file_pwd"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn unknown_authenticator_in_a_file_names_file_and_key() {
    let home = TempDir::new("auth");
    let path = home.write("connections.toml", "[dev]\nauthenticator = \"jwt\"\n");
    let err = resolve(&named("dev"), None, &home_env(&home, &[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dev.authenticator") && err.contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn the_seed_json() {
    let home = TempDir::new("seed");
    let json = home.write(
        ".secrets/config.json",
        r#"{
            "account": "myorg-myacct",
            "account_host": "myorg-myacct.snowflakecomputing.com",
            "username": "STREAMER",
            "role": "INGEST_ROLE",
            "private_key_path": "rsa_key.p8",
            "pipe_name": "BADGES_DB.RAW.BADGE_PIPE",
            "channel_name": "production_channel",
            "sample_events": 10
        }"#,
    );
    let args = ConnectionArgs {
        config: Some(json.clone()),
        ..ConnectionArgs::default()
    };
    let conn = resolve(&args, None, &home_env(&home, &[])).unwrap();
    assert_eq!(conn.user.as_ref().unwrap().source, file(&json, "username"));
    assert_eq!(
        conn.target.as_ref().unwrap().value,
        "myorg-myacct.snowflakecomputing.com"
    );
    assert_eq!(
        conn.private_key_file.as_ref().unwrap().value,
        home.0.join(".secrets/rsa_key.p8")
    );
    assert_eq!(conn.database.as_ref().unwrap().value, "BADGES_DB");
    assert_eq!(conn.schema.as_ref().unwrap().value, "RAW");
    let pipe = conn.pipe.as_ref().unwrap();
    assert_eq!(
        (pipe.value.as_str(), &pipe.source),
        ("BADGE_PIPE", &file(&json, "pipe_name"))
    );
    // The production channel name must not leak into anything netcheck would open.
    let json_text = serde_json::to_string(&conn).unwrap();
    assert!(!json_text.contains("production_channel"), "{json_text}");
}

#[test]
fn a_seed_json_that_does_not_parse_names_the_file() {
    let home = TempDir::new("badseed");
    let json = home.write("config.json", "{\"user\": ");
    let args = ConnectionArgs {
        config: Some(json.clone()),
        ..ConnectionArgs::default()
    };
    let err = resolve(&args, None, &home_env(&home, &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&json.display().to_string()), "{err}");
}

/// One 2048-bit key per test process: generation is the slow part.
fn test_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(2048).unwrap())
}

const PASSPHRASE: &str = "correct horse battery";

/// A connection whose key is `pem` written to a 0600 file, with an optional passphrase.
fn key_connection(dir: &TempDir, pem: &str, passphrase: Option<&str>) -> (Connection, PathBuf) {
    let key = dir.write("rsa_key.p8", pem);
    let mut vars = vec![("SNOWFLAKE_PRIVATE_KEY_FILE", key.to_str().unwrap())];
    if let Some(p) = passphrase {
        vars.push(("PRIVATE_KEY_PASSPHRASE", p));
    }
    let conn = resolve(&ConnectionArgs::default(), None, &home_env(dir, &vars)).unwrap();
    (conn, key)
}

/// The prompt of a run without a terminal: it cannot ask.
const NO_PROMPT: &PassphrasePrompt<'static> = &|_| Ok(None);

#[test_case(&test_key().to_pkcs8_pem().unwrap(), None; "pkcs8")]
#[test_case(&test_key().to_pkcs1_pem().unwrap(), None; "pkcs1")]
#[test_case(
    &test_key().to_encrypted_pkcs8_pem(&Secret::new(PASSPHRASE.to_owned())).unwrap(),
    Some(PASSPHRASE);
    "encrypted pkcs8"
)]
fn keys_load_with_their_fingerprint(pem: &Secret<String>, passphrase: Option<&str>) {
    let dir = TempDir::new("key");
    let (conn, path) = key_connection(&dir, pem.expose(), passphrase);
    let loaded = load_key_with(&conn, NO_PROMPT).unwrap().unwrap();
    assert_eq!(loaded.fingerprint, test_key().public_key().fingerprint());
    assert_eq!(loaded.path, path);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn no_key_configured_is_none() {
    let dir = TempDir::new("nokey");
    let conn = resolve(&ConnectionArgs::default(), None, &home_env(&dir, &[])).unwrap();
    assert!(load_key(&conn).unwrap().is_none());
}

#[test]
fn an_encrypted_key_is_asked_for_when_no_passphrase_is_set() {
    let dir = TempDir::new("prompt");
    let pass = Secret::new(PASSPHRASE.to_owned());
    let pem = test_key().to_encrypted_pkcs8_pem(&pass).unwrap();
    let (conn, path) = key_connection(&dir, pem.expose(), None);
    let asked = std::cell::RefCell::new(Vec::new());
    let prompt = |p: &Path| {
        asked.borrow_mut().push(p.to_owned());
        Ok(Some(pass.clone()))
    };
    let loaded = load_key_with(&conn, &prompt).unwrap().unwrap();
    assert_eq!(loaded.fingerprint, test_key().public_key().fingerprint());
    assert_eq!(*asked.borrow(), vec![path]);
}

/// The error text of loading `pem` (with `passphrase`), checked to name the key file.
fn key_error(pem: &str, passphrase: Option<&str>) -> String {
    let dir = TempDir::new("keyerr");
    let (conn, path) = key_connection(&dir, pem, passphrase);
    let err = load_key_with(&conn, NO_PROMPT).unwrap_err();
    assert!(matches!(err, netcheck::error::Error::Usage(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    text
}

#[test]
fn an_encrypted_key_without_passphrase_or_terminal_says_what_to_set() {
    let pem = test_key()
        .to_encrypted_pkcs8_pem(&Secret::new(PASSPHRASE.to_owned()))
        .unwrap();
    let err = key_error(pem.expose(), None);
    assert!(err.contains("PRIVATE_KEY_PASSPHRASE"), "{err}");
}

#[test]
fn a_wrong_passphrase_is_named_and_not_echoed() {
    let pem = test_key()
        .to_encrypted_pkcs8_pem(&Secret::new(PASSPHRASE.to_owned()))
        .unwrap();
    let err = key_error(pem.expose(), Some("wrong-guess-xyz"));
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("wrong-guess-xyz"), "{err}");
}

#[test]
fn a_1024_bit_key_is_refused() {
    let small = PrivateKey::generate(1024).unwrap();
    let err = key_error(small.to_pkcs8_pem().unwrap().expose(), None);
    assert!(err.contains("1024"), "{err}");
}

#[test]
fn garbage_is_refused() {
    let err = key_error("not a key\n", None);
    assert!(err.contains("PEM"), "{err}");
}

#[test]
fn an_ec_key_from_openssl_is_not_rsa() {
    let dir = TempDir::new("ec");
    let out = dir.0.join("ec.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        skip(Lack::Tool, "openssl genpkey is not available");
        return;
    }
    let err = key_error(&std::fs::read_to_string(&out).unwrap(), None);
    assert!(err.contains("not an RSA key"), "{err}");
}

#[test]
fn an_unreadable_key_file_is_named() {
    let dir = TempDir::new("unreadable");
    let missing = dir.0.join("nope.p8");
    let vars = [("SNOWFLAKE_PRIVATE_KEY_FILE", missing.to_str().unwrap())];
    let conn = resolve(&ConnectionArgs::default(), None, &home_env(&dir, &vars)).unwrap();
    let err = load_key(&conn).unwrap_err().to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("$SNOWFLAKE_PRIVATE_KEY_FILE"), "{err}");
}

#[test_case(0o644, true; "world readable warns")]
#[test_case(0o640, true; "group readable warns")]
#[test_case(0o600, false; "owner only is fine")]
#[test_case(0o400, false; "read only is fine")]
fn loose_permissions_warn(mode: u32, warns: bool) {
    let dir = TempDir::new("perm");
    let (conn, path) = key_connection(&dir, test_key().to_pkcs8_pem().unwrap().expose(), None);
    set_mode(&path, mode);
    let loaded = load_key(&conn).unwrap().unwrap();
    assert_eq!(
        loaded.warnings.len(),
        usize::from(warns),
        "{:?}",
        loaded.warnings
    );
    if warns {
        assert!(
            loaded.warnings[0].contains("chmod 600"),
            "{:?}",
            loaded.warnings
        );
    }
}

#[test]
fn the_passphrase_never_appears_in_debug_or_json() {
    let home = TempDir::new("secret");
    home.write(
        "connections.toml",
        "[dev]\nuser = \"u\"\nprivate_key_file_pwd = \"file-secret-123\"\n",
    );
    let env = home_env(&home, &[("PRIVATE_KEY_PASSPHRASE", "env-secret-456")]);
    let conn = resolve(&named("dev"), None, &env).unwrap();
    let json = serde_json::to_value(&conn).unwrap();
    for text in [
        format!("{conn:?}"),
        json.to_string(),
        format!("{:?}", conn.sources()),
    ] {
        assert!(
            !text.contains("secret-123") && !text.contains("secret-456"),
            "{text}"
        );
    }
    assert_eq!(json["private_key_passphrase"]["set"], true);
    assert_eq!(
        json["private_key_passphrase"]["source"]["key"],
        "dev.private_key_file_pwd"
    );
}
