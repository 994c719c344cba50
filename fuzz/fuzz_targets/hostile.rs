//! `hostile`: generated scenarios that attack gosim (catastrophic patterns, C loops over huge
//! ranges, `__gc` finalizers, coroutine misuse, blocking inside C callbacks, deep tables, runaway
//! loops, spawn and memory bombs, sandbox probes). Every run must end within a wall-time bound
//! with an outcome, the same way twice, without a gosim panic and without a probe escaping.
#![no_main]

use gosim_fuzz::hostile::{HostileInput, run_hostile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: HostileInput| {
    run_hostile(&input, true);
});
