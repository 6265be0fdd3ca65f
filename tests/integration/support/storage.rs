//! A real S3-compatible stage for the emulator's `:pipe-info` to name: moto's server mode (from
//! `moto[server]`, in its own venv because it needs another `cryptography` than mitmproxy) with
//! TLS from a certificate made at test time, on loopback. Its request log (werkzeug's, on stderr)
//! is kept, so a test can show nothing but reads reached it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pki::{ServerCert, TempFile};
use super::skip::{Lack, skip};

/// Where moto's server lives: `NETCHECK_MOTO_SERVER`, else `target/moto-venv/bin/moto_server`
/// (what `.ci/run` installs); `None` (with `skipped: …` printed) when it is not installed.
pub fn moto_server() -> Option<PathBuf> {
    let path = std::env::var_os("NETCHECK_MOTO_SERVER").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server"),
        PathBuf::from,
    );
    if !path.is_file() {
        skip(
            Lack::Tool,
            "moto_server not found (bash .ci/run installs it in target/moto-venv; \
             or set NETCHECK_MOTO_SERVER)",
        );
        return None;
    }
    Some(path)
}

/// A running `moto_server --ssl-cert … --ssl-key …` on 127.0.0.1, killed on drop.
pub struct Moto {
    pub port: u16,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    _files: (TempFile, TempFile),
}

impl Moto {
    /// Starts moto with `cert`; `None` (with `skipped: …` printed) when moto is not installed.
    pub fn start(cert: &ServerCert) -> Option<Self> {
        let bin = moto_server()?;
        let files = cert.write_pem_files();
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", "0", "--ssl-cert"])
            .arg(files.0.path())
            .arg("--ssl-key")
            .arg(files.1.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(port) = line
                    .split("https://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.trim().parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "moto_server did not say where it listens within {:?}: {:?}",
                    started.elapsed(),
                    log.lock().unwrap()
                )
            });
        Some(Self {
            port,
            child,
            log,
            _files: files,
        })
    }

    /// The request lines moto logged (`"GET /path HTTP/1.1" 404 -`), in order.
    pub fn requests(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| strip_colours(l).split('"').nth(1).map(str::to_owned))
            .collect()
    }
}

/// A log line without its ANSI colour sequences (werkzeug colours request lines).
fn strip_colours(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(char::is_ascii_alphabetic);
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
