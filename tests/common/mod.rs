//! Helpers shared by the integration tests. Each test binary compiles its own copy and uses a
//! part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::process::{Command, Output};

use gosim::scenario::{RunOptions, RunReport, run_source};

/// Runs Lua `src` as `t.lua` under `seed`; a load error fails the test and shows the source.
pub fn run(src: &str, seed: u64) -> RunReport {
    match run_source("t.lua", src, &RunOptions::with_seed(seed)) {
        Ok(r) => r,
        Err(e) => panic!("the scenario did not load: {e}\n--- source ---\n{src}"),
    }
}

/// Runs `src` under seeds 1 to 20; every run must pass (the failing seed's trace is shown).
pub fn expect_pass_on_seeds(src: &str) {
    for seed in 1..=20 {
        let r = run(src, seed);
        assert!(
            r.outcome.is_pass(),
            "seed {seed}: {}\n{}",
            r.outcome,
            r.trace_text()
        );
    }
}

/// The `log.info` lines of a run, in order.
pub fn logs(r: &RunReport) -> Vec<String> {
    r.events
        .iter()
        .filter(|e| e.verb == "log.info")
        .map(|e| e.detail.clone().unwrap_or_default())
        .collect()
}

/// Runs the `gosim` binary from the crate's root (so `scenarios/...` paths resolve).
pub fn gosim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gosim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the gosim binary runs")
}
