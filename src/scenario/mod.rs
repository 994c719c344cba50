//! Scenarios: a Lua file run as the main goroutine under a seed. This module ties a runtime and
//! a Lua world together, runs them to an outcome, and offers the multi-run modes built on single
//! runs: determinism checks and seed exploration.

mod explore;
mod input;

use std::collections::BTreeMap;
use std::path::Path;

pub use crate::explore::{
    ExploreSummary, Group, SeedOutcome, Shrunk, StrategyCount, failure_signature, summarize,
};
pub use explore::{ExploreOptions, explore, replay, shrink};
pub use input::{
    DEFAULT_MAX_INPUT, DEFAULT_MAX_INPUT_MB, check_replay_followed, lua_text, parse_schedule_for,
    read_scenario_capped, read_schedule, schedule_text, source_hash,
};

use crate::lua::{LoadError, LuaLimits, LuaWorld};
use crate::runtime::{
    Backend, Config, Decision, Event, Failure, FailureKind, Outcome, Portfolio, RealClock,
    RunStats, Runtime, SimulatedClock, Strategy, TraceFormat, TraceHash, render,
};

/// Everything that shapes one run.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, run_source};
///
/// let mut opts = RunOptions::with_seed(3);
/// opts.config.trace = false; // no events kept: faster sweeps
/// let report = run_source("t.lua", "goroutine.sleep(5)", &opts).expect("compiles");
/// report.assert_pass();
/// assert!(report.events.is_empty());
/// assert_eq!(report.seed, 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Seed, scheduler limits, trace on/off.
    pub config: Config,
    /// Lua heap and instruction limits.
    pub lua: LuaLimits,
    /// Run against the wall clock (production mode) instead of virtual time.
    pub real: bool,
}

impl RunOptions {
    /// Default limits with this seed.
    pub fn with_seed(seed: u64) -> RunOptions {
        RunOptions {
            config: Config {
                seed,
                ..Config::default()
            },
            lua: LuaLimits::default(),
            real: false,
        }
    }
}

/// The result of one run.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, run_source};
///
/// let src = r#"
///     local ch = goroutine.channel()
///     ch:receive() -- nobody sends
/// "#;
/// let report = run_source("stuck.lua", src, &RunOptions::with_seed(1)).expect("compiles");
/// assert_eq!(report.outcome.word(), "fail"); // a deadlock
/// assert!(report.trace_text().contains("block-receive"));
/// ```
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The scenario's name (its path, as given to `run_source`): what a reproduce line names.
    pub name: String,
    /// The seed it ran with.
    pub seed: u64,
    /// The strategy it ran under (a portfolio's member for this seed).
    pub strategy: Strategy,
    /// How it ended.
    pub outcome: Outcome,
    /// The trace (empty when tracing was off).
    pub events: Vec<Event>,
    /// Steps, goroutines, final time.
    pub stats: RunStats,
    /// `sim.assert_sometimes` messages and whether each was ever true.
    pub sometimes: BTreeMap<String, bool>,
    /// Every decision of the run, when `config.record` was set.
    pub decisions: Vec<Decision>,
}

impl RunReport {
    /// The trace as text, one line per event.
    pub fn trace_text(&self) -> String {
        render(&self.events, TraceFormat::Text)
    }

    /// Panics with the full report (the outcome, the end of the trace) and the line that
    /// reproduces the run from the command line, unless the run passed.
    ///
    /// ```should_panic
    /// let report = gosim::scenario::run_source(
    ///     "t.lua",
    ///     "assert(1 == 2, 'arithmetic')",
    ///     &gosim::scenario::RunOptions::with_seed(3),
    /// )
    /// .expect("loads");
    /// report.assert_pass(); // reproduce: gosim run t.lua --seed 3 --strategy random
    /// ```
    #[track_caller]
    pub fn assert_pass(&self) {
        if self.outcome.is_pass() {
            return;
        }
        let mut text = format!(
            "gosim: {} did not pass at seed {} (strategy {})\n{}\n",
            self.name, self.seed, self.strategy, self.outcome
        );
        let skip = self.events.len().saturating_sub(30);
        if !self.events.is_empty() {
            text.push_str(&format!(
                "trace (last {} of {} events):\n",
                self.events.len() - skip,
                self.events.len()
            ));
            for e in &self.events[skip..] {
                text.push_str(&format!("  {}\n", e.to_text()));
            }
        }
        text.push_str(&format!(
            "reproduce: gosim run {} --seed {} --strategy {}",
            self.name, self.seed, self.strategy
        ));
        panic!("{text}");
    }

    /// A fingerprint of the text trace.
    pub fn trace_hash(&self) -> TraceHash {
        self.events
            .iter()
            .fold(TraceHash::EMPTY, |h, e| h.add_line(&e.to_text()))
    }
}

/// Runs Lua `source` (named `name` in messages, e.g. its path) under `options`.
///
/// Every run goes through this thread's reused Lua world (`LuaWorld::reset`), built on the
/// first run and rebuilt when the limits change: `run`, `replay`, `shrink`, `test` and every
/// `explore` worker take one path, so a seed found by a sweep replays identically anywhere.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, run_source};
///
/// let src = r#"
///     local done = goroutine.channel()
///     goroutine.spawn(function() goroutine.sleep(10) done:send(true) end)
///     assert(done:receive() == true and goroutine.now() == 10)
/// "#;
/// let report = run_source("wait.lua", src, &RunOptions::with_seed(2)).expect("compiles");
/// report.assert_pass();
/// assert_eq!(report.stats.end_time, std::time::Duration::from_millis(10));
/// ```
pub fn run_source(name: &str, source: &str, options: &RunOptions) -> Result<RunReport, LoadError> {
    let key = WorldKey {
        limits: options.lua.clone(),
        real: options.real,
    };
    let clock = || -> Box<dyn Backend> {
        if options.real {
            Box::new(RealClock::new())
        } else {
            Box::new(SimulatedClock::default())
        }
    };
    // Taken out while it runs: a run that starts another run (a host function) builds its own.
    let cached = REUSED.with(|w| w.borrow_mut().take());
    let Reused { rt, world, .. } = match cached {
        Some(r) if r.key == key => r,
        _ => {
            let rt = Runtime::new(options.config.clone(), clock());
            let world = LuaWorld::new(&rt, options.lua.clone())?;
            warm_up(&rt, &world, options.config.clone(), clock())?;
            Reused { key, rt, world }
        }
    };
    // Always restarted, for the first run of a world too: building it touched the runtime.
    rt.restart(options.config.clone(), clock());
    let source = lua_text(source);
    let loaded = world
        .reset_for_main(name, &source)
        .and_then(|()| world.spawn_main(name, &source));
    if let Err(e) = loaded {
        rt.shutdown();
        keep_for_reuse(options, rt, world);
        return Err(e);
    }
    // A panic is a failure of the run, not of the caller: explore must count it and go on.
    let (outcome, panicked) =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run())) {
            Ok(outcome) => (outcome, false),
            Err(payload) => (panic_outcome(&rt, payload.as_ref()), true),
        };
    let report = RunReport {
        name: name.to_string(),
        seed: options.config.seed,
        strategy: options.config.strategy.for_seed(options.config.seed),
        outcome,
        events: rt.take_events(),
        stats: rt.stats(),
        sometimes: world.sometimes(),
        decisions: rt.take_decisions(),
    };
    rt.shutdown();
    // A world a panic went through may be inconsistent: it is dropped, the next run builds one.
    if !panicked {
        keep_for_reuse(options, rt, world);
    }
    Ok(report)
}

/// One empty run on a new world: what only a world's first run allocates for good (mlua's and
/// Lua's internal tables sized by a first goroutine) is then part of every run's starting heap,
/// and the first real run starts from the same heap as the thousandth.
const WARM_UP: &str = "collectgarbage()";

fn warm_up(
    rt: &Runtime,
    world: &LuaWorld,
    config: Config,
    clock: Box<dyn Backend>,
) -> Result<(), LoadError> {
    rt.restart(config, clock);
    world.reset_for_main("[gosim warm-up]", WARM_UP)?;
    world.spawn_main("[gosim warm-up]", WARM_UP)?;
    rt.run();
    rt.shutdown();
    Ok(())
}

/// What a reused world was built for: a world serves runs with the same Lua limits and mode.
#[derive(Debug, PartialEq, Eq)]
struct WorldKey {
    limits: LuaLimits,
    real: bool,
}

/// This thread's reusable world and the runtime handle its bindings hold.
struct Reused {
    key: WorldKey,
    rt: Runtime,
    world: LuaWorld,
}

thread_local! {
    /// The world the next `run_source` on this thread reuses (one per explore worker).
    static REUSED: std::cell::RefCell<Option<Reused>> = const { std::cell::RefCell::new(None) };
}

fn keep_for_reuse(options: &RunOptions, rt: Runtime, world: LuaWorld) {
    let key = WorldKey {
        limits: options.lua.clone(),
        real: options.real,
    };
    REUSED.with(|w| *w.borrow_mut() = Some(Reused { key, rt, world }));
}

fn panic_outcome(rt: &Runtime, payload: &(dyn std::any::Any + Send)) -> Outcome {
    let what = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let task = rt
        .try_current()
        .map(|id| (id, rt.task_name(id).map(|n| n.to_string())));
    let message = format!(
        "gosim panicked (a bug in gosim: please report it with the reproduce line): {what}"
    );
    Outcome::Fail(Failure::in_task(
        FailureKind::Panic,
        task,
        message,
        None,
        crate::runtime::duration(rt.now()),
    ))
}

/// The start of the comment line that marks a scenario as asserting exact virtual instants
/// (`goroutine.now() == 30` after sleeps that add up to 30, or "this is queued before that timer
/// fires"): the portfolio then leaves out its members that move the clock while code runs
/// (`cost`, `jitter`), which would break those assertions without any bug. A comment, not a
/// call, so that it is read before the run (and adds no event to the trace); anything may
/// follow it on the line (a reason).
pub const EXACT_TIME_MARKER: &str = "-- gosim: exact-time";

/// Whether a line of `source` starts with `EXACT_TIME_MARKER` (leading blanks allowed).
pub fn asserts_exact_time(source: &str) -> bool {
    source
        .lines()
        .any(|l| l.trim_start().starts_with(EXACT_TIME_MARKER))
}

/// The strategy seed `seed` runs under `portfolio`: a pure function of both (the mapping is
/// `Portfolio::member`'s), for Rust sweeps that must agree with `gosim explore`.
pub fn portfolio_member(seed: u64, portfolio: Portfolio) -> Strategy {
    portfolio.member(seed)
}

/// Resolves what a strategy leaves to the scenario: an automatic PCT step count (`pct:D`, and
/// the PCT members of a portfolio), measured with a probe run of the first seed, since PCT
/// spreads its change points over the run's length, which only a run can tell; and, for a
/// portfolio, whether the scenario asserts exact instants (`asserts_exact_time`).
pub fn resolve_strategy(
    name: &str,
    source: &str,
    options: &RunOptions,
) -> Result<Strategy, LoadError> {
    let probe_steps = || -> Result<u64, LoadError> {
        let mut probe = options.clone();
        probe.config.trace = false;
        probe.config.record = false;
        probe.config.schedule = None;
        probe.config.strategy = Strategy::Random;
        let r = run_source(name, source, &probe)?;
        Ok(r.stats.steps.max(1))
    };
    crate::explore::resolve_strategy(
        options.config.strategy,
        asserts_exact_time(source),
        probe_steps,
    )
}

/// Reads a scenario file (at most `DEFAULT_MAX_INPUT` bytes); the error says which file and why.
pub fn read_scenario(path: &Path) -> Result<String, LoadError> {
    read_scenario_capped(path, DEFAULT_MAX_INPUT)
}

/// Runs the scenario file at `path`.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, run_file};
///
/// let path = std::env::temp_dir().join("gosim_doc_run_file.lua");
/// std::fs::write(&path, "local ch = goroutine.channel(1) ch:send(1) assert(ch:receive() == 1)")
///     .unwrap();
/// let report = run_file(&path, &RunOptions::with_seed(1)).expect("readable and compiles");
/// report.assert_pass();
/// std::fs::remove_file(&path).ok();
/// ```
pub fn run_file(path: &Path, options: &RunOptions) -> Result<RunReport, LoadError> {
    let source = read_scenario(path)?;
    run_source(&path.display().to_string(), &source, options)
}

/// Where two runs of the same seed first differ.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, check_determinism};
///
/// let src = "local ch = goroutine.channel(1) ch:send(1) assert(ch:receive() == 1)";
/// let div = check_determinism("det.lua", src, 1..=5, &RunOptions::default()).expect("compiles");
/// assert!(div.is_none()); // the same seed, the same trace: no divergence
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The seed.
    pub seed: u64,
    /// The 1-based index of the first differing event.
    pub event: usize,
    /// That event in the first run (or `<end>`).
    pub first: String,
    /// That event in the second run (or `<end>`).
    pub second: String,
}

/// Runs each seed twice and compares the traces event by event (plus the outcomes).
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, check_determinism};
///
/// let src = r#"
///     local ch = goroutine.channel(3)
///     for i = 1, 3 do goroutine.spawn(function() ch:send(i) end) end
///     for _ = 1, 3 do ch:receive() end
/// "#;
/// let divergence = check_determinism("d.lua", src, 1..=10, &RunOptions::default())
///     .expect("compiles");
/// assert!(divergence.is_none()); // each seed's two runs gave identical traces
/// ```
pub fn check_determinism(
    name: &str,
    source: &str,
    seeds: impl IntoIterator<Item = u64>,
    options: &RunOptions,
) -> Result<Option<Divergence>, LoadError> {
    for seed in seeds {
        let mut opts = options.clone();
        opts.config.seed = seed;
        opts.config.trace = true;
        let a = run_source(name, source, &opts)?;
        let b = run_source(name, source, &opts)?;
        let mut ta: Vec<String> = a.events.iter().map(Event::to_text).collect();
        let mut tb: Vec<String> = b.events.iter().map(Event::to_text).collect();
        ta.push(format!("outcome: {}", a.outcome));
        tb.push(format!("outcome: {}", b.outcome));
        let n = ta.len().max(tb.len());
        for i in 0..n {
            let x = ta.get(i).map(String::as_str).unwrap_or("<end>");
            let y = tb.get(i).map(String::as_str).unwrap_or("<end>");
            if x != y {
                return Ok(Some(Divergence {
                    seed,
                    event: i + 1,
                    first: x.to_string(),
                    second: y.to_string(),
                }));
            }
        }
    }
    Ok(None)
}
