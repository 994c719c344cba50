//! Exploring a test's schedules, whatever the test is written in: seed sweeps with a summary
//! grouped by failure, shrinking a failing run to a short schedule, and replaying it. The
//! algorithms see a test only as "one run under a configuration" (`FnMut(&Config) -> RunResult`),
//! so the Lua scenarios (`scenario`) and the Rust entry point (`sim::check`) share them; this
//! layer uses only the runtime core.

mod shrink;
mod sweep;

use std::collections::BTreeMap;

pub use shrink::{Shrunk, failure_signature, replay_config, shrink};
pub use sweep::{ExploreSummary, Group, SeedOutcome, StrategyCount, reduce, summarize, sweep};

use crate::runtime::{Decision, Outcome, RunStats, Strategy};

/// What the exploration algorithms need from one run.
///
/// # Examples
///
/// ```
/// use gosim::explore::{RunResult, reduce};
/// use gosim::runtime::Strategy;
/// use gosim::scenario::{RunOptions, run_source};
///
/// let report = run_source("ok.lua", "goroutine.sleep(1)", &RunOptions::with_seed(9))
///     .expect("compiles");
/// let seed = report.seed;
/// let result = RunResult::from(report); // what the exploration algorithms see of a run
/// let outcome = reduce(seed, Strategy::default(), result);
/// assert_eq!((outcome.seed, outcome.verdict), (9, "pass"));
/// ```
#[derive(Debug, Clone)]
pub struct RunResult {
    /// How it ended.
    pub outcome: Outcome,
    /// Every decision of the run, when the configuration asked to record them.
    pub decisions: Vec<Decision>,
    /// Sometimes-assertions seen and whether each was true.
    pub sometimes: BTreeMap<String, bool>,
    /// Steps, goroutines, final time.
    pub stats: RunStats,
}

/// Resolves what a strategy leaves to the test: an automatic PCT step count (`pct:D`, and the
/// PCT members of a portfolio), measured by `probe_steps` (a run's step count: PCT spreads its
/// change points over the run's length, which only a run can tell), and, for a portfolio,
/// whether the test asserts exact instants (`exact`: leave out the members that move the clock).
/// `probe_steps` is called at most once, and only when a step count is missing.
pub fn resolve_strategy<E>(
    strategy: Strategy,
    exact: bool,
    probe_steps: impl FnOnce() -> Result<u64, E>,
) -> Result<Strategy, E> {
    match strategy {
        Strategy::Pct { depth, steps: 0 } => Ok(Strategy::Pct {
            depth,
            steps: probe_steps()?.max(1),
        }),
        Strategy::Portfolio(mut p) => {
            p.exact |= exact;
            if p.pct_steps == 0 {
                p.pct_steps = probe_steps()?.max(1);
            }
            Ok(Strategy::Portfolio(p))
        }
        other => Ok(other),
    }
}
