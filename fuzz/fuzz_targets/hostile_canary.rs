//! `hostile_canary`: the `hostile` programs with the guards off (`--max-instructions 0`: no
//! instruction hook, no checks of C loops). The fuzzer must find a program that hangs, and the
//! target then panics with "planted bug found". If it ever stops failing, the generator (or the
//! wall-time check) has lost its teeth.
#![no_main]

use gosim_fuzz::hostile::{HostileInput, run_hostile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: HostileInput| {
    run_hostile(&input, false);
});
