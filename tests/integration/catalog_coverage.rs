//! Every troubleshooting row is the diagnosis of at least one test: a lab scenario
//! (`row = "…"` in `tests/scenarios/`) or a test that asserts it with `assert_check` or a case
//! table. A new row without a test that produces it fails here.

use std::path::Path;

fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_row_is_produced_by_some_test() {
    let mut tests = String::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        &mut tests,
    );
    let untested: Vec<&str> = netcheck::catalog::ids()
        .map(netcheck::catalog::RowId::as_str)
        .filter(|id| !tests.contains(&format!("\"{id}\"")))
        .collect();
    assert!(untested.is_empty(), "rows no test produces: {untested:?}");
}
