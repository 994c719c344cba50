//! `select`: producers feed channels (some prefilled and closed at the start), main is the only
//! receiver and mostly selects: blocking, with a default, with a timeout, with `channel = false`
//! cases, timer cases and send cases, over open and closed channels.
//!
//! Checks (besides those of `ops_sim`): exactly one case fires (or the default, or the timeout); a
//! default or a timeout is never taken while a case is known to be ready (a closed channel, or a
//! buffered value only main can take); a receive case on a closed channel gets `nil, false`, and
//! only after every value sent before the close was received; a losing send case delivers nothing.
#![no_main]

use gosim_fuzz::{SelectInput, run_checked};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: SelectInput| {
    let src = input.scenario().render();
    run_checked("select.lua", &src, u64::from(input.seed));
});
