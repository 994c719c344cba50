//! `canary`: a target with a planted bug that the fuzzer must find within seconds.
//!
//! Tellers move money between accounts with `transfer(from, to)`, which locks `from` and then
//! `to`: a lock-order inversion. Two transfers in opposite directions in two goroutines, under a
//! seed that switches goroutines between the two `lock` calls, deadlock; the target then panics
//! with "planted bug found" and gosim's deadlock report. If this target ever stops failing, the
//! fuzzing setup (or gosim's deadlock detection) is broken.
#![no_main]

use gosim::runtime::Outcome;
use gosim_fuzz::{CanaryInput, PLANTED_BUG, run_twice, scenario_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: CanaryInput| {
    let src = input.render();
    let seed = u64::from(input.seed);
    let report = run_twice("canary.lua", &src, seed);
    match &report.outcome {
        Outcome::Pass => {}
        // `deadlock`, or `deadlock (cycle)` where gosim reports wait-for cycles.
        Outcome::Fail(f) if f.kind.word().starts_with("deadlock") => panic!(
            "{PLANTED_BUG}: lock-order inversion (seed {seed})\n{}\n{}",
            report.outcome,
            scenario_text("canary.lua", &src, seed)
        ),
        other => panic!(
            "canary scenario ended unexpectedly: {other}\n{}",
            scenario_text("canary.lua", &src, seed)
        ),
    }
});
