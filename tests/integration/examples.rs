//! The examples under `examples/` are run here, so the library use they document keeps working
//! (`cargo test --all-targets` also builds them as binaries).

#[path = "../../examples/in_process.rs"]
mod in_process;

#[test]
fn the_in_process_example_runs_the_suite_against_the_emulator() {
    in_process::main().expect("every check passes against the healthy emulator");
}
