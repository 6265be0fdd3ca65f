//! The emulator's fault syntax (`--fault NAME[=VALUE][@SCOPE][#N]`, the fault file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netcheck::emulator::Fault;

fuzz_target!(|input: &str| {
    if let Ok(fault) = input.parse::<Fault>() {
        let _ = fault.to_string();
    }
});
