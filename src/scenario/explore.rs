//! Seed sweeps, shrinking and replay of a Lua scenario: thin adapters that give the generic
//! algorithms of `crate::explore` "one run of this scenario" (`run_source`).

use super::{RunOptions, RunReport, run_source};
use crate::explore::{ExploreSummary, RunResult, Shrunk};
use crate::lua::LoadError;
use crate::runtime::{Config, Schedule};

/// What to explore.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{ExploreOptions, RunOptions, explore};
///
/// let opts = ExploreOptions { seeds: (1..=20).collect(), jobs: 1, run: RunOptions::default() };
/// let src = r#"
///     local n = 0
///     local wg = goroutine.wait_group()
///     for i = 1, 2 do
///         wg:add(1)
///         goroutine.spawn(function() n = n + 1; wg:done() end)
///     end
///     wg:wait()
///     assert(n == 2)
/// "#;
/// let summary = explore("sweep.lua", src, &opts, &mut |_done, _total| {}).expect("compiles");
/// assert_eq!((summary.runs, summary.passed), (20, 20));
/// assert!(summary.groups.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct ExploreOptions {
    /// The seeds to run.
    pub seeds: Vec<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// Limits and settings of every run (the seed is replaced). A `Strategy::Portfolio` runs
    /// each seed under its own member.
    pub run: RunOptions,
}

impl From<RunReport> for RunResult {
    fn from(r: RunReport) -> RunResult {
        RunResult {
            outcome: r.outcome,
            decisions: r.decisions,
            sometimes: r.sometimes,
            stats: r.stats,
        }
    }
}

/// One run of `source` under `config`, with the other settings of `options`.
fn run_with(
    name: &str,
    source: &str,
    options: &RunOptions,
    config: &Config,
) -> Result<RunResult, LoadError> {
    let opts = RunOptions {
        config: config.clone(),
        ..options.clone()
    };
    run_source(name, source, &opts).map(RunResult::from)
}

/// Runs `source` under every seed of `options`, calling `progress(done, total)` as runs finish.
pub fn explore(
    name: &str,
    source: &str,
    options: &ExploreOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ExploreSummary, LoadError> {
    // Fail fast on a scenario that does not load, before spawning workers.
    let mut probe = options.run.clone();
    probe.config.trace = false;
    probe.config.max_steps = 1;
    run_source(name, source, &probe)?;

    let factory = || |config: &Config| run_with(name, source, &options.run, config);
    crate::explore::sweep(
        &options.seeds,
        options.jobs,
        &options.run.config,
        factory,
        progress,
    )
}

/// Shrinks the failing run of `options` (its seed and strategy). `Ok(None)` if it passes.
pub fn shrink(
    name: &str,
    source: &str,
    options: &RunOptions,
    max_runs: usize,
) -> Result<Option<Shrunk>, LoadError> {
    crate::explore::shrink(&options.config, max_runs, &mut |config: &Config| {
        run_with(name, source, options, config)
    })
}

/// Replays a schedule: the run follows its decisions, then takes the quietest choices.
pub fn replay(
    name: &str,
    source: &str,
    options: &RunOptions,
    schedule: &Schedule,
) -> Result<RunReport, LoadError> {
    let opts = RunOptions {
        config: crate::explore::replay_config(&options.config, schedule),
        ..options.clone()
    };
    run_source(name, source, &opts)
}
