//! `--html FILE`, rendered by a real browser: `netcheck demo` with a discovery answer full of
//! markup (`</svg><script>…`) writes the page; headless Chromium (Debian's `chromium`) loads it
//! and dumps the DOM it built, which must show the summary, the waterfall's bars with the
//! critical path, the root cause, the certificate chain and the settings' sources, and the
//! hostile answer as text — no script element, the SVG closed where netcheck closed it. A
//! screenshot is kept under the target directory (its path is printed).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::run::netcheck;
use crate::support::skip::{Lack, skip};

const CHROMIUM: &str = "/usr/bin/chromium";
/// What the emulator answers for the ingest host: markup that would run or break the page.
const HOSTILE: &str = "</svg><script>alert(1)</script><b>x</b>";

/// A scratch directory for this test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netcheck-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium on `page` with `mode` (`--dump-dom`, `--screenshot=…`), bounded by
/// `timeout`, with a fresh profile and no network of its own; returns its stdout.
fn chromium(scratch: &Path, profile: &str, mode: &str, page: &Path) -> String {
    let out = Command::new("timeout")
        .args(["120", CHROMIUM])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,2400",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join(profile).display()
        ))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_html_report_renders_in_chromium_with_every_string_as_text() {
    if !Path::new(CHROMIUM).exists() {
        skip(
            Lack::Tool,
            format!("{CHROMIUM} not found (apt-get install chromium; .ci/run installs it)"),
        );
        return;
    }
    let scratch = Scratch::new("html");
    let page = scratch.0.join("report.html");
    let fault = format!("hostname={HOSTILE}");
    let r = netcheck(&["demo", "--fault", &fault, "--html", page.to_str().unwrap()]).run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);

    let file = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch, nothing to run.
    for external in ["<script", "src=", "href=", "<link", "url("] {
        assert!(!file.contains(external), "the page has {external}");
    }

    let dom = chromium(&scratch.0, "dom", "--dump-dom", &page);
    // The hostile answer is text in the finding (the DOM serialises text with its markup
    // escaped), and no element came of it.
    assert!(
        dom.contains("&lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "a script element: {dom}");
    assert!(!dom.contains("<b>x</b>"), "markup from the server: {dom}");
    // The summary, the root cause with its fix, the checks, the chain and the settings.
    for shown in [
        "1 failed",
        "Root causes",
        "discovery-failed",
        "Fix:",
        "Certificate chains",
        "CN=netcheck emulator CA",
        "Settings",
        "netcheck demo",
    ] {
        assert!(dom.contains(shown), "the page does not show {shown:?}");
    }
    // One waterfall bar per check that ran (nine before discovery failed), the critical path
    // outlined, and the SVG closed once, by netcheck.
    assert_eq!(dom.matches("<rect").count(), 9, "{dom}");
    assert!(dom.contains(r#"class="critical""#), "{dom}");
    assert_eq!(dom.matches("</svg>").count(), 1, "{dom}");

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        &scratch.0,
        "shot",
        &format!("--screenshot={}", screenshot.display()),
        &page,
    );
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    println!("screenshot: {}", screenshot.display());
}
