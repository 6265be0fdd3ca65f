//! Secrets never leave: for every output format and verbosity, no byte sequence of the private
//! key, its passphrase, a JWT or a token appears on stdout, stderr or in the `JUnit` file
//! (`serve`'s expositions are scanned in `serve.rs`).

use crate::support::emulate::{Emulate, TempDir};
use crate::support::run::netcheck;

const PASSPHRASE: &str = "correct horse battery staple 42";

/// Runs `args` with `env` in every format and verbosity; returns everything it wrote.
fn every_output(args: &[String], env: &[(String, String)], dir: &TempDir) -> Vec<(String, String)> {
    let mut outputs = Vec::new();
    for (i, extra) in [
        vec!["--format", "table"],
        vec!["--format", "json"],
        vec!["--format", "json", "-v"],
        vec!["--format", "table", "-vv"],
        vec!["--format", "prometheus"],
    ]
    .into_iter()
    .enumerate()
    {
        let junit = dir.path().join(format!("junit-{i}.xml"));
        let html = dir.path().join(format!("report-{i}.html"));
        let mut run = netcheck(args).args(&extra).args(&[
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ]);
        for (k, v) in env {
            run = run.env(k, v);
        }
        // The most verbose logging there is, from every crate, not just netcheck's.
        let run = if i == 3 {
            run.env("NETCHECK_LOG", "trace")
        } else {
            run
        };
        let r = run.run();
        assert!(
            r.code == 0,
            "run {i} failed ({}):\n{}\n{}",
            r.code,
            r.stdout,
            r.stderr
        );
        outputs.push((format!("stdout {extra:?}"), r.stdout));
        outputs.push((format!("stderr {extra:?}"), r.stderr));
        outputs.push((
            format!("junit {extra:?}"),
            std::fs::read_to_string(&junit).unwrap(),
        ));
        outputs.push((
            format!("html {extra:?}"),
            std::fs::read_to_string(&html).unwrap(),
        ));
    }
    outputs
}

/// Every 16-byte run of a PEM key file's base64 body: none may show in any output.
pub fn key_needles(file: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|line| {
            line.as_bytes()
                .chunks(16)
                .filter(|c| c.len() == 16)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn no_key_passphrase_jwt_or_token_in_any_output() {
    let emu = Emulate::start(&[]);
    let dir = TempDir::new("secrets");
    // The state directory's key, re-encrypted with a passphrase that comes from the environment.
    let key = netcheck::snowflake::keys::PrivateKey::from_file(&emu.key_file(), None).unwrap();
    let pem = key
        .to_encrypted_pkcs8_pem(&netcheck::secret::Secret::new(PASSPHRASE.to_owned()))
        .unwrap();
    let encrypted = dir.path().join("encrypted.p8");
    std::fs::write(&encrypted, pem.expose()).unwrap();
    std::fs::set_permissions(
        &encrypted,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut env = emu.env();
    env.push(("PRIVATE_KEY_PASSPHRASE".into(), PASSPHRASE.into()));
    let args: Vec<String> = [
        "run",
        "--connection",
        "emulator",
        "--full",
        "--private-key-file",
        encrypted.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();

    // What must never show: the passphrase, any 16-byte run of either key file's base64 body,
    // and any JWT (the key-pair JWT and the scoped token are both JWTs: base64url JSON headers
    // start with "eyJ").
    let mut needles = vec![
        PASSPHRASE.to_owned(),
        "eyJ".to_owned(),
        "PRIVATE KEY".to_owned(),
    ];
    for file in [emu.key_file(), encrypted.clone()] {
        needles.extend(key_needles(&file));
    }
    let outputs = every_output(&args, &env, &dir);
    assert!(
        outputs.iter().any(|(_, o)| o.contains("stream.drop")),
        "the runs reached the round trip"
    );
    for (name, output) in &outputs {
        for needle in &needles {
            assert!(
                !output.contains(needle.as_str()),
                "{name} contains secret material {needle:?}"
            );
        }
    }
}

#[test]
fn no_client_secret_or_oauth_token_in_any_output() {
    let emu = Emulate::start(&[]);
    let dir = TempDir::new("secrets-oauth");
    let connections = std::fs::read_to_string(emu.dir.path().join("connections.toml")).unwrap();
    let table: toml::Table = toml::from_str(&connections).unwrap();
    let secret = table["connections"]["emulator_oauth"]["oauth_client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let args: Vec<String> = ["run", "--connection", "emulator_oauth", "--full"]
        .map(String::from)
        .to_vec();
    // The client secret, and any JWT: the IdP's access token and the scoped token are both JWTs.
    let needles = [secret, "eyJ".to_owned()];
    let outputs = every_output(&args, &emu.env(), &dir);
    assert!(
        outputs
            .iter()
            .any(|(_, o)| o.contains("auth.oauth_account")),
        "the runs reached the account with the token"
    );
    for (name, output) in &outputs {
        for needle in &needles {
            assert!(
                !output.contains(needle.as_str()),
                "{name} contains secret material {needle:?}"
            );
        }
    }
}
