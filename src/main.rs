//! The `netcheck` binary: parse, run, exit with the code the library returns.

fn main() -> std::process::ExitCode {
    netcheck::cli::main()
}
