//! `ops_sim`: random operations of every kind across several goroutines.
//!
//! Checks: gosim never panics, every run ends within the limits, the same input runs the same way
//! twice (trace and outcome), and the harness's laws hold: channel conservation (received values
//! were sent on that channel, none twice, each sender's values in order, none lost), `len <= cap`,
//! mutual exclusion of mutexes, rwmutexes and semaphores, exact sleep/timer instants, no stale
//! value after `t:stop()`/`t:reset()`, and select's "exactly one case".
#![no_main]

use gosim_fuzz::{OpsInput, run_checked};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: OpsInput| {
    let src = input.scenario().render();
    run_checked("ops_sim.lua", &src, u64::from(input.seed));
});
