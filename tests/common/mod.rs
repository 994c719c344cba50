//! Helpers shared by the integration tests. Each test binary compiles its own copy and uses a
//! part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod forwarder;
pub mod misuse;

use std::process::{Command, Output};

use gosim::scenario::{RunOptions, RunReport, run_source};

/// The chunk name of scenarios run from a string: messages start with `t.lua:LINE:`.
pub const NAME: &str = "t.lua";

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
        .map(|e| e.detail().unwrap_or_default())
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

/// Runs `src`, turning a load error or a panic of the harness into an `Err` that says which.
pub fn try_run(src: &str, opts: &RunOptions) -> Result<RunReport, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_source(NAME, src, opts))) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("the scenario did not load: {e}")),
        Err(panic) => Err(format!("gosim panicked: {}", panic_message(&panic))),
    }
}

pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic)".to_string()
    }
}

/// A Rust test body with a bug some interleavings show: two tasks read a counter, yield, and
/// write it back plus one, so a switch between the read and the write loses an update. What the
/// `gosim::check` tests sweep for.
pub async fn lost_update(sim: gosim::Sim) {
    let counter = std::rc::Rc::new(std::cell::Cell::new(0));
    let wg = sim.wait_group();
    wg.add(2).expect("a valid count");
    for i in 0..2 {
        let (c, wg, s) = (counter.clone(), wg.clone(), sim.clone());
        sim.spawn(&format!("inc-{i}"), async move {
            let v = c.get();
            s.yield_now().await;
            c.set(v + 1);
            wg.done();
        });
    }
    wg.wait().await;
    assert_eq!(counter.get(), 2, "lost update");
}
