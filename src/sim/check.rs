//! The test entry point for Rust: `gosim::check` and its builder `Check` sweep a test body over
//! seeds, shrink the first failing seed to a schedule file, and panic with a report whose last
//! lines reproduce it from `cargo test` (`GOSIM_SEED=N cargo test NAME`). `#[gosim::test]`
//! expands to it.
//!
//! A sweep runs sequentially in the calling thread (`cargo test` already runs tests in
//! parallel), each seed a fresh simulated run whose main task is the body's future. The seeds
//! are a fixed sequence (`seed..seed + runs`), the strategy of each a pure function of its seed,
//! so a failing seed fails the same way when run alone, in another process, on another machine.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use super::panics::{CapturedPanic, capture_panics};
use super::{Sim, SimReport};
use crate::explore::{RunResult, Shrunk, replay_config, resolve_strategy};
use crate::patterns::spawn_future;
use crate::runtime::{
    Config, Failure, FailureKind, Outcome, Portfolio, Runtime, Schedule, Strategy, TraceFormat,
    render,
};

/// The environment variables a sweep reads (see docs/rust-api.md, "Testing with gosim::check").
pub const ENV_VARS: [&str; 4] = [
    "GOSIM_SEED",
    "GOSIM_RUNS",
    "GOSIM_STRATEGY",
    "GOSIM_SCHEDULE",
];

/// How many trace events of the failing run a report shows (its end: what led to the failure).
const REPORT_EVENTS: usize = 30;

/// Sweeps `body` over the default seeds (`Check::new()`), panicking with a report and a
/// reproduce line on the first failure.
///
/// ```
/// gosim::check(|sim| async move {
///     let ch = sim.channel::<i64>(1);
///     ch.send(1).await.expect("open");
///     assert_eq!(ch.recv().await, Some(1));
/// });
/// ```
#[track_caller]
pub fn check<F, Fut>(body: F)
where
    F: Fn(Sim) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    Check::new().run(body)
}

/// A seed sweep of a Rust test body: how many seeds, which, under which strategy and limits.
/// `run` performs it; `GOSIM_*` environment variables override the settings (see `env`).
///
/// ```
/// use gosim::{Check, Sim};
///
/// Check::new()
///     .runs(50)
///     .strategy("pct:3")
///     .max_steps(10_000)
///     .name("doc_example")
///     .run(|sim: Sim| async move {
///         let wg = sim.wait_group();
///         wg.add(2).expect("a valid count");
///         for i in 0..2 {
///             let (wg, s) = (wg.clone(), sim.clone());
///             sim.spawn(&format!("worker-{i}"), async move {
///                 s.sleep(std::time::Duration::from_millis(5)).await;
///                 wg.add(-1).expect("a valid count");
///             });
///         }
///         wg.wait().await;
///     });
/// ```
///
/// `#[gosim::test]` expands to a `Check`; a bad argument of it is a compile error:
///
/// ```compile_fail
/// #[gosim::test(runz = 3)]
/// async fn typo(sim: gosim::Sim) {}
/// ```
#[derive(Debug, Clone)]
pub struct Check {
    runs: u64,
    seed: u64,
    strategy: Result<Strategy, String>,
    max_steps: Option<u64>,
    max_time: Option<Duration>,
    step_cost: Duration,
    name: Option<String>,
    shrink_runs: usize,
    schedule_dir: Option<PathBuf>,
    env: Option<BTreeMap<String, String>>,
}

impl Default for Check {
    fn default() -> Check {
        Check::new()
    }
}

/// A sweep that passed.
///
/// # Examples
///
/// ```
/// use gosim::Check;
///
/// let passed = Check::new()
///     .runs(5)
///     .seed(100)
///     .try_run(|sim| async move {
///         sim.sleep(std::time::Duration::from_millis(1)).await;
///     })
///     .expect("every seed passes");
/// assert_eq!((passed.runs, passed.first_seed), (5, 100));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPassed {
    /// Runs done.
    pub runs: u64,
    /// The seeds, `first..first + runs` (a replayed schedule: its seed).
    pub first_seed: u64,
}

/// A sweep that failed: the failing seed, its outcome, the shrunk schedule and the report text
/// (what `Check::run` panics with).
///
/// # Examples
///
/// ```
/// use gosim::Check;
///
/// let failure = Check::new()
///     .runs(20)
///     .try_run(|sim| async move {
///         let n = sim.atomic_int(0);
///         let m = n.clone();
///         let h = sim.spawn("writer", async move { m.store(1).await });
///         // A race: fails under the seeds where the writer has not run yet.
///         assert_eq!(n.load().await, 1, "read before the write");
///         h.await.expect("no panic");
///     })
///     .expect_err("some seed reads first");
/// assert!(!failure.outcome.is_pass());
/// assert!(failure.report.contains(&failure.seed.to_string()));
/// ```
#[derive(Debug, Clone)]
pub struct CheckFailure {
    /// The failing seed.
    pub seed: u64,
    /// The strategy it ran under (a portfolio's member for this seed).
    pub strategy: Strategy,
    /// How it failed.
    pub outcome: Outcome,
    /// The panics of tasks during the failing run (message and location), in order.
    pub panics: Vec<CapturedPanic>,
    /// The shrink, when the failure could be shrunk.
    pub shrunk: Option<Shrunk>,
    /// Where the shrunk schedule was written (`GOSIM_SCHEDULE` replays it).
    pub schedule_file: Option<PathBuf>,
    /// The full report, ending with the reproduce lines.
    pub report: String,
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.report)
    }
}

/// One simulated run of a body: its result for the exploration algorithms, its trace and the
/// panics its tasks raised.
struct OneRun {
    result: RunResult,
    events: Vec<crate::runtime::Event>,
    panics: Vec<CapturedPanic>,
}

/// Runs `body` once under `config`: a fresh simulated runtime whose main task (`main`, g1) is the
/// body's future. Task panics are captured (not printed); a panic of gosim itself becomes a
/// failure of the run rather than of the caller.
fn run_body<F, Fut>(config: &Config, body: &F) -> OneRun
where
    F: Fn(Sim) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let rt = Runtime::simulated(config.clone());
    let sim = Sim::on(&rt);
    let (outcome, panics) = capture_panics(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spawn_future(&rt, Some("main"), false, Box::pin(body(sim)));
            rt.run()
        }))
    });
    let mut outcome = outcome.unwrap_or_else(|payload| {
        let what = super::panics::payload_text(payload.as_ref());
        Outcome::Fail(Failure::in_task(
            FailureKind::Panic,
            None,
            format!("panicked outside a task: {what}"),
            None,
            std::time::Duration::from_nanos(rt.now()),
        ))
    });
    // A task's panic reaches the runtime without a location (the task body only sees the
    // payload), so the failure names where the task last stopped; the hook saw where the panic
    // was raised, which is what the report and the grouping of failures should name.
    if let Outcome::Fail(f) = &mut outcome
        && f.kind == FailureKind::Panic
        && let Some(p) = panics
            .iter()
            .rev()
            .find(|p| f.message == format!("panicked: {}", p.message))
        && p.location.is_some()
    {
        f.location = p.location.clone();
    }
    let result = RunResult {
        outcome,
        decisions: rt.take_decisions(),
        sometimes: BTreeMap::new(),
        stats: rt.stats(),
    };
    let events = rt.take_events();
    rt.shutdown();
    OneRun {
        result,
        events,
        panics,
    }
}

/// What the environment asked for, parsed.
#[derive(Debug, Default)]
struct EnvSettings {
    seed: Option<u64>,
    runs: Option<u64>,
    strategy: Option<(String, Strategy)>,
    schedule: Option<PathBuf>,
}

/// Reads `GOSIM_*` from `env`; a bad value panics naming the variable and what was wrong.
fn read_env(env: &BTreeMap<String, String>) -> EnvSettings {
    let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let number = |k: &str, v: &str| -> u64 {
        v.parse()
            .unwrap_or_else(|_| panic!("gosim::check: {k} must be a whole number, not {v:?}"))
    };
    let mut out = EnvSettings::default();
    if let Some(v) = get("GOSIM_SEED") {
        out.seed = Some(number("GOSIM_SEED", v));
    }
    if let Some(v) = get("GOSIM_RUNS") {
        let n = number("GOSIM_RUNS", v);
        if n == 0 {
            panic!("gosim::check: GOSIM_RUNS must be at least 1, not 0");
        }
        out.runs = Some(n);
    }
    if let Some(v) = get("GOSIM_STRATEGY") {
        let s = v
            .parse::<Strategy>()
            .unwrap_or_else(|e| panic!("gosim::check: GOSIM_STRATEGY: {e}"));
        out.strategy = Some((v.to_string(), s));
    }
    if let Some(v) = get("GOSIM_SCHEDULE") {
        out.schedule = Some(PathBuf::from(v));
    }
    out
}

/// The test name `cargo test` filters on: the module path without the crate's name, then the
/// function's name (`tests::it_works` for `my_crate::tests::it_works`; `it_works` at a test
/// file's root).
#[doc(hidden)]
pub fn test_name(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_, rest)) => format!("{rest}::{function}"),
        None => function.to_string(),
    }
}

impl Check {
    /// 100 runs of seeds `0..100` under the exact-time portfolio (uniform random and PCT
    /// members, none moving the clock while code runs, so assertions on `sim.now()` hold), the
    /// default limits, no step cost, at most 500 runs spent shrinking.
    pub fn new() -> Check {
        Check {
            runs: 100,
            seed: 0,
            strategy: Ok(Strategy::Portfolio(Portfolio {
                pct_steps: 0,
                exact: true,
            })),
            max_steps: None,
            max_time: None,
            step_cost: Duration::ZERO,
            name: None,
            shrink_runs: 500,
            schedule_dir: None,
            env: None,
        }
    }

    /// How many seeds to run (at least 1). `GOSIM_RUNS` overrides it.
    pub fn runs(mut self, runs: u64) -> Check {
        self.runs = runs.max(1);
        self
    }

    /// The first seed (the sweep runs `seed..seed + runs`). `GOSIM_SEED` runs one seed instead.
    pub fn seed(mut self, seed: u64) -> Check {
        self.seed = seed;
        self
    }

    /// The scheduling strategy, in the CLI's `--strategy` text (`random`, `pct:3`, `cost:1`,
    /// `jitter:10`, `portfolio`, `portfolio:exact`, ...). A bad text panics when the sweep runs,
    /// naming it. `GOSIM_STRATEGY` overrides it.
    pub fn strategy(mut self, strategy: &str) -> Check {
        self.strategy = strategy
            .parse::<Strategy>()
            .map_err(|e| format!("gosim::check: strategy {strategy:?}: {e}"));
        self
    }

    /// The scheduling strategy as a value.
    pub fn with_strategy(mut self, strategy: Strategy) -> Check {
        self.strategy = Ok(strategy);
        self
    }

    /// Scheduling steps before a run ends with a limit.
    pub fn max_steps(mut self, steps: u64) -> Check {
        self.max_steps = Some(steps);
        self
    }

    /// The virtual-time horizon of a run.
    pub fn max_time(mut self, time: Duration) -> Check {
        self.max_time = Some(time);
        self
    }

    /// Virtual time every scheduling step takes (work is not free: timers race running code).
    pub fn step_cost(mut self, cost: Duration) -> Check {
        self.step_cost = cost;
        self
    }

    /// The test's name as `cargo test` filters it, for the reproduce line (`#[gosim::test]` sets
    /// it; otherwise the test thread's name is used, which is the same under `cargo test`).
    pub fn name(mut self, name: &str) -> Check {
        self.name = Some(name.to_string());
        self
    }

    /// The most runs spent shrinking a failure (0: do not shrink).
    pub fn shrink_runs(mut self, runs: usize) -> Check {
        self.shrink_runs = runs;
        self
    }

    /// Where the shrunk schedule file goes (`#[gosim::test]` passes the test's
    /// `CARGO_TARGET_TMPDIR`; the default is the system's temporary directory).
    pub fn schedule_dir(mut self, dir: impl Into<PathBuf>) -> Check {
        self.schedule_dir = Some(dir.into());
        self
    }

    /// Reads the `GOSIM_*` settings from `vars` instead of the process environment (tests set
    /// them this way: changing the process environment races with other test threads).
    pub fn env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Check {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Runs the sweep; on the first failing seed, shrinks it, writes the schedule file and
    /// panics with the report, which ends with `reproduce: GOSIM_SEED=N cargo test NAME`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::Check;
    /// use std::time::Duration;
    ///
    /// // Every seed of the sweep runs the body; a failure panics with the report and reproduce lines.
    /// Check::new().runs(10).run(|sim| async move {
    ///     let ch = sim.channel::<u32>(1);
    ///     let tx = ch.clone();
    ///     sim.spawn("producer", async move { tx.send(7).await.expect("open") });
    ///     assert_eq!(ch.recv().await, Some(7));
    ///     sim.sleep(Duration::from_millis(1)).await;
    /// });
    /// ```
    #[track_caller]
    pub fn run<F, Fut>(self, body: F)
    where
        F: Fn(Sim) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        if let Err(failure) = self.try_run(body) {
            panic!("{}", failure.report);
        }
    }

    /// Runs the sweep and returns its verdict instead of panicking on a failure. Bad settings
    /// (a `GOSIM_*` value, a strategy text) still panic, naming what was wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::Check;
    ///
    /// let verdict = Check::new().runs(3).try_run(|sim| async move {
    ///     sim.channel::<u8>(0).recv().await; // a deadlock under every seed
    /// });
    /// let failure = verdict.expect_err("the sweep fails");
    /// assert_eq!(failure.seed, 0); // the first seed of the sweep already fails
    /// assert!(failure.report.contains("deadlock"));
    /// ```
    pub fn try_run<F, Fut>(self, body: F) -> Result<CheckPassed, Box<CheckFailure>>
    where
        F: Fn(Sim) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let env = match &self.env {
            Some(vars) => vars.clone(),
            None => ENV_VARS
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
                .collect(),
        };
        let settings = read_env(&env);
        let name = self.name.clone().unwrap_or_else(|| {
            std::thread::current()
                .name()
                .filter(|n| *n != "main")
                .unwrap_or("TEST_NAME")
                .to_string()
        });
        let strategy = match (&settings.strategy, &self.strategy) {
            (Some((_, s)), _) => *s,
            (None, Ok(s)) => *s,
            (None, Err(e)) => panic!("{e}"),
        };
        let mut config = Config {
            seed: self.seed,
            trace: false,
            step_cost: self.step_cost,
            strategy,
            ..Config::default()
        };
        if let Some(n) = self.max_steps {
            config.max_steps = n;
        }
        if let Some(t) = self.max_time {
            config.max_time = t;
        }
        let ctx = Reproduce {
            name: name.clone(),
            strategy_env: settings.strategy.as_ref().map(|(t, _)| t.clone()),
        };

        if let Some(path) = &settings.schedule {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
                panic!(
                    "gosim::check: GOSIM_SCHEDULE: cannot read {}: {e}",
                    path.display()
                )
            });
            let schedule = Schedule::parse(&text).unwrap_or_else(|e| {
                panic!(
                    "gosim::check: GOSIM_SCHEDULE: {} is not a schedule: {e}",
                    path.display()
                )
            });
            let mut cfg = replay_config(&config, &schedule);
            cfg.trace = true;
            let run = run_body(&cfg, &body);
            if run.result.outcome.is_pass() {
                return Ok(CheckPassed {
                    runs: 1,
                    first_seed: schedule.seed,
                });
            }
            let mut report = format!(
                "gosim::check: `{name}` failed replaying the schedule {} (seed {}, strategy {})\n",
                path.display(),
                schedule.seed,
                schedule.strategy
            );
            report.push_str(&failure_text(&run));
            report.push_str(&ctx.seed_line(schedule.seed));
            report.push_str(&format!(
                "reproduce: GOSIM_SCHEDULE={} cargo test {name}\n",
                path.display()
            ));
            return Err(Box::new(CheckFailure {
                seed: schedule.seed,
                strategy: schedule.strategy,
                outcome: run.result.outcome,
                panics: run.panics,
                shrunk: None,
                schedule_file: Some(path.clone()),
                report,
            }));
        }

        // PCT spreads its change points over a run's length: measured once, always on the
        // sweep's first seed (not GOSIM_SEED's), so a seed run alone runs the same strategy.
        config.strategy = resolve_strategy(strategy, false, || {
            let mut probe = config.clone();
            probe.strategy = Strategy::Random;
            Ok::<u64, ()>(run_body(&probe, &body).result.stats.steps.max(1))
        })
        .unwrap_or(strategy);

        let seeds: Vec<u64> = match settings.seed {
            Some(s) => vec![s],
            None => {
                let runs = settings.runs.unwrap_or(self.runs);
                (0..runs).map(|i| self.seed.wrapping_add(i)).collect()
            }
        };
        for (i, &seed) in seeds.iter().enumerate() {
            let mut cfg = config.clone();
            cfg.seed = seed;
            let run = run_body(&cfg, &body);
            if run.result.outcome.is_pass() {
                continue;
            }
            return Err(Box::new(self.failure(
                &ctx,
                &cfg,
                &body,
                (i + 1, seeds.len(), settings.seed.is_some()),
            )));
        }
        Ok(CheckPassed {
            runs: seeds.len() as u64,
            first_seed: seeds[0],
        })
    }

    /// The failure of `config`'s seed: rerun with the trace, shrunk, its schedule written, and
    /// the report.
    fn failure<F, Fut>(
        &self,
        ctx: &Reproduce,
        config: &Config,
        body: &F,
        (run_no, of, alone): (usize, usize, bool),
    ) -> CheckFailure
    where
        F: Fn(Sim) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let seed = config.seed;
        let strategy = config.strategy.for_seed(seed);
        let mut traced = config.clone();
        traced.trace = true;
        let run = run_body(&traced, body);
        let name = &ctx.name;
        let mut report =
            format!("gosim::check: `{name}` failed at seed {seed} (strategy {strategy})\n");
        if !alone {
            report.push_str(&format!(
                "  the first failure in {run_no} of {of} runs (seeds {}..{})\n",
                self.seed,
                self.seed.wrapping_add(of as u64)
            ));
        }
        report.push_str(&failure_text(&run));
        let shrunk = if self.shrink_runs > 0 {
            crate::explore::shrink(config, self.shrink_runs, &mut |c: &Config| {
                Ok::<RunResult, ()>(run_body(c, body).result)
            })
            .ok()
            .flatten()
        } else {
            None
        };
        let mut schedule_file = None;
        if let Some(s) = &shrunk {
            let preemptions =
                |s: &Schedule| s.decisions.iter().filter(|d| d.is_preemption()).count();
            report.push_str(&format!(
                "shrunk in {} runs: {} decisions ({} preemptions), from {} ({} preemptions)\n",
                s.runs,
                s.shrunk.decisions.len(),
                preemptions(&s.shrunk),
                s.original.decisions.len(),
                preemptions(&s.original)
            ));
            let dir = self.schedule_dir.clone().unwrap_or_else(std::env::temp_dir);
            let path = dir.join(format!("gosim-{}-seed{seed}.schedule", file_stem(name)));
            let text = schedule_file_text(&s.shrunk, name);
            match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
                Ok(()) => {
                    report.push_str(&format!("schedule: {}\n", path.display()));
                    schedule_file = Some(path);
                }
                Err(e) => report.push_str(&format!(
                    "schedule: could not write {}: {e}\n",
                    path.display()
                )),
            }
        }
        report.push_str(&ctx.seed_line(seed));
        if let Some(path) = &schedule_file {
            report.push_str(&format!(
                "reproduce: GOSIM_SCHEDULE={} cargo test {name}\n",
                path.display()
            ));
        }
        CheckFailure {
            seed,
            strategy,
            outcome: run.result.outcome,
            panics: run.panics,
            shrunk,
            schedule_file,
            report,
        }
    }

    /// The name the builder was given (hidden: for `#[gosim::test]`'s expansion).
    #[doc(hidden)]
    pub fn name_in(self, module_path: &str, function: &str) -> Check {
        let name = test_name(module_path, function);
        self.name(&name)
    }
}

/// What a reproduce line names besides the seed.
struct Reproduce {
    name: String,
    /// `GOSIM_STRATEGY`'s text, when the sweep ran under it (the rerun must too).
    strategy_env: Option<String>,
}

impl Reproduce {
    fn seed_line(&self, seed: u64) -> String {
        let strategy = self
            .strategy_env
            .as_ref()
            .map(|s| format!(" GOSIM_STRATEGY={s}"))
            .unwrap_or_default();
        format!(
            "reproduce: GOSIM_SEED={seed}{strategy} cargo test {}\n",
            self.name
        )
    }
}

/// The outcome, the panics' locations and the end of the trace.
fn failure_text(run: &OneRun) -> String {
    let mut out = format!("{}\n", run.result.outcome);
    if let Outcome::Fail(f) = &run.result.outcome
        && f.kind == FailureKind::Panic
        && let Some(p) = run.panics.last()
    {
        // The message is already in the failure's: only where it was raised is new.
        out.push_str(&format!(
            "  panicked at {}\n",
            p.location.as_deref().unwrap_or("?")
        ));
    }
    if !run.events.is_empty() {
        let skip = run.events.len().saturating_sub(REPORT_EVENTS);
        out.push_str(&format!(
            "trace (last {} of {} events):\n",
            run.events.len() - skip,
            run.events.len()
        ));
        for line in render(&run.events[skip..], TraceFormat::Text).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// A file-name-safe form of a test name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The schedule file's text (the format of `gosim shrink`), with a replay comment for
/// `cargo test` instead of the CLI's.
fn schedule_file_text(schedule: &Schedule, name: &str) -> String {
    schedule
        .to_text(name)
        .lines()
        .map(|l| {
            if l.starts_with("# replay:") {
                format!("# replay: GOSIM_SCHEDULE=FILE cargo test {name}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `assert_pass` for a Rust run's report.
impl<T> SimReport<T> {
    /// Panics with the full report and a reproduce line unless the run passed.
    #[track_caller]
    pub fn assert_pass(&self) {
        if self.outcome.is_pass() {
            return;
        }
        let mut text = format!(
            "gosim: the run of seed {} did not pass\n{}\n",
            self.seed, self.outcome
        );
        if !self.events.is_empty() {
            let skip = self.events.len().saturating_sub(REPORT_EVENTS);
            text.push_str(&format!(
                "trace (last {} of {} events):\n",
                self.events.len() - skip,
                self.events.len()
            ));
            for line in render(&self.events[skip..], TraceFormat::Text).lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        text.push_str(&format!(
            "reproduce: run it again with Sim::with_seed({}) (under gosim::check: GOSIM_SEED={} cargo test NAME)",
            self.seed, self.seed
        ));
        panic!("{text}");
    }
}
