//! The command line: argument parsing, report printing and exit codes. The only module that
//! prints, reads the wall clock (for throughput figures) or exits the process.

mod alloc_count;
mod bench;
mod merge;
mod test;
mod types;

#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gosim::lua::{LuaLimits, StdlibAccess};
use gosim::runtime::{
    Config, Outcome, Portfolio, Strategy, TraceFormat, ms_to_nanos, render, render_chrome,
};
use gosim::scenario::{self, ExploreOptions, RunOptions};

/// Exit code of a run that hit a limit (0 pass, 1 fail, 2 usage or load error).
const EXIT_LIMIT: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "gosim",
    version,
    about = "Deterministic simulation of Go-style concurrency in Lua scenarios",
    long_about = "Runs Lua scenarios that use the `goroutine` module on a seeded single-threaded \
                  scheduler with a virtual clock: the same seed gives the same trace, on any machine.\n\n\
                  Exit codes: 0 pass, 1 fail (error, assertion, deadlock, leak), 2 bad usage or a \
                  scenario that does not load, 3 a limit was hit."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario once under one seed and print its trace and outcome.
    Run(RunArgs),
    /// Run a scenario under many seeds in parallel and summarise the failures.
    Explore(ExploreArgs),
    /// Run a scenario twice per seed and report the first event where the runs differ.
    CheckDeterminism(CheckArgs),
    /// Record a failing seed's decisions and search for a shorter, calmer schedule that fails the
    /// same way; write it to a file for `replay`.
    Shrink(ShrinkArgs),
    /// Run a scenario following a schedule file (from `shrink`), or under a seed like `run`.
    Replay(ReplayArgs),
    /// Measure the scheduler's speed against raw Lua coroutines and tokio (prints a table).
    Bench(bench::BenchArgs),
    /// Add up the JSON summaries of a sweep's shards (`explore --shard K/N --report json`) into
    /// the summary of the whole sweep.
    Merge(merge::MergeArgs),
    /// Run every `*.lua` scenario under the given files and folders as a test suite: a seed sweep
    /// each, trace snapshots, a summary and optionally JUnit XML (docs/testing-lua.md).
    Test(test::TestArgs),
    /// Print the LuaLS/EmmyLua definitions of the `goroutine`, `sim` and `log` modules, for an
    /// editor (`gosim types > gosim.d.lua`), or a selene standard library (`--format selene`).
    Types(types::TypesArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum TraceArg {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Jsonl,
    /// Chrome trace-event JSON: open it in Perfetto (ui.perfetto.dev) or chrome://tracing.
    Chrome,
    /// No trace, only the outcome.
    None,
}

/// Limits and clock settings shared by every subcommand that runs scenarios.
#[derive(Args, Debug, Clone)]
struct LimitArgs {
    /// Scheduling steps before the run ends with a limit.
    #[arg(long, value_name = "N", default_value_t = 100_000_000, value_parser = at_least_one_u64)]
    max_steps: u64,
    /// Virtual-time horizon in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 86_400_000.0, value_parser = milliseconds)]
    max_time: f64,
    /// How long (virtual ms) the other goroutines may run after main returned before they count as leaked.
    #[arg(long, value_name = "MS", default_value_t = 60_000.0, value_parser = milliseconds)]
    drain_time: f64,
    /// Goroutines alive at once (main included, so at least 1).
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = at_least_one_usize)]
    max_goroutines: usize,
    /// Memory limit in megabytes: the Lua heap, and in the gosim binary the whole run's
    /// allocations (see "Sandbox and limits" in docs/harness.md).
    #[arg(long, value_name = "MB", default_value_t = 2048, value_parser = megabytes)]
    max_memory: usize,
    /// Largest scenario or schedule file read, in megabytes.
    #[arg(long, value_name = "MB", default_value_t = scenario::DEFAULT_MAX_INPUT_MB, value_parser = megabytes)]
    max_input: usize,
    /// Lua instructions a goroutine may run without a scheduling point (0: no limit, and no
    /// per-instruction hook: faster, but a runaway loop then hangs).
    #[arg(long, value_name = "N", default_value_t = 100_000_000)]
    max_instructions: u64,
    /// Spin guard: after N steps without the clock moving while a timer is pending, jump to it (0: off).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    spin_steps: u64,
    /// Virtual milliseconds added by every scheduling step.
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = milliseconds)]
    step_cost: f64,
    /// Draw each step's cost uniformly in [0, --step-cost] from the seed.
    #[arg(long)]
    step_cost_random: bool,
    /// How choices are made: `random` (uniform), `pct[:DEPTH[:STEPS]]` (probabilistic
    /// concurrency testing: random priorities and DEPTH-1 change points over the first STEPS
    /// steps, measured from one run when omitted), `cost:MS` (random, and every step takes a
    /// seeded random [0, MS] ms), `jitter:MS` (random, and every timer fires up to MS ms late),
    /// or `portfolio[:exact][:STEPS]` (each seed runs one of those, derived from the seed; see
    /// docs/harness.md). Default: `portfolio` for explore, `random` for the others.
    #[arg(long, value_name = "STRATEGY", value_parser = parse_strategy)]
    strategy: Option<Strategy>,
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse()
}

/// The largest duration a millisecond flag takes: 10^13 ms (about 317 years) is 10^19 ns, which
/// still fits the clock's u64 nanoseconds with room for one more step.
const MAX_MS: f64 = 1e13;

/// A duration flag: a finite number of milliseconds in `[0, MAX_MS]`.
fn milliseconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of milliseconds (got {s:?})"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!(
            "expected a finite, non-negative number of milliseconds (got {s})"
        ));
    }
    if v > MAX_MS {
        return Err(format!(
            "at most {MAX_MS:e} ms (about 317 years of virtual time; got {s})"
        ));
    }
    Ok(v)
}

fn at_least_one_u64(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 (got 0)".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a whole number (got {s:?})")),
    }
}

fn at_least_one_usize(s: &str) -> Result<usize, String> {
    at_least_one_u64(s).and_then(|n| usize::try_from(n).map_err(|_| format!("too large: {s}")))
}

/// The largest megabyte figure: 1 TB, so that bytes never overflow.
const MAX_MB: usize = 1 << 20;

fn megabytes(s: &str) -> Result<usize, String> {
    let n = at_least_one_usize(s)?;
    if n > MAX_MB {
        return Err(format!("at most {MAX_MB} MB (got {s})"));
    }
    Ok(n)
}

/// `--jobs`: 1 to 1024 worker threads.
fn jobs(s: &str) -> Result<usize, String> {
    let n = at_least_one_usize(s)?;
    if n > 1024 {
        return Err(format!("at most 1024 jobs (got {s})"));
    }
    Ok(n)
}

impl LimitArgs {
    /// `--max-input` in bytes.
    fn max_input_bytes(&self) -> u64 {
        (self.max_input as u64).saturating_mul(1024 * 1024)
    }

    fn options(&self, seed: u64, trace: bool) -> RunOptions {
        RunOptions {
            config: Config {
                seed,
                max_steps: self.max_steps,
                max_time: Duration::from_nanos(ms_to_nanos(self.max_time)),
                drain_time: Duration::from_nanos(ms_to_nanos(self.drain_time)),
                max_goroutines: self.max_goroutines,
                spin_steps: self.spin_steps,
                step_cost: Duration::from_nanos(ms_to_nanos(self.step_cost)),
                step_cost_random: self.step_cost_random,
                trace,
                strategy: self.strategy.unwrap_or(Strategy::Random),
                record: false,
                schedule: None,
            },
            lua: LuaLimits {
                max_memory: self.max_memory.saturating_mul(1024 * 1024),
                max_instructions: self.max_instructions,
                allow_stdlib: StdlibAccess::default(),
            },
            real: false,
        }
    }

    /// The flags that differ from the defaults, for the reproduce line.
    fn non_default_flags(&self) -> String {
        let d = Config::default();
        let dl = LuaLimits::default();
        let mut out = String::new();
        let mut add = |cond: bool, text: String| {
            if cond {
                out.push(' ');
                out.push_str(&text);
            }
        };
        add(
            self.max_steps != d.max_steps,
            format!("--max-steps {}", self.max_steps),
        );
        add(
            Duration::from_nanos(ms_to_nanos(self.max_time)) != d.max_time,
            format!("--max-time {}", self.max_time),
        );
        add(
            Duration::from_nanos(ms_to_nanos(self.drain_time)) != d.drain_time,
            format!("--drain-time {}", self.drain_time),
        );
        add(
            self.max_goroutines != d.max_goroutines,
            format!("--max-goroutines {}", self.max_goroutines),
        );
        add(
            self.max_memory.saturating_mul(1024 * 1024) != dl.max_memory,
            format!("--max-memory {}", self.max_memory),
        );
        add(
            self.max_input != scenario::DEFAULT_MAX_INPUT_MB,
            format!("--max-input {}", self.max_input),
        );
        add(
            self.max_instructions != dl.max_instructions,
            format!("--max-instructions {}", self.max_instructions),
        );
        add(
            self.spin_steps != d.spin_steps,
            format!("--spin-steps {}", self.spin_steps),
        );
        add(
            self.step_cost != 0.0,
            format!("--step-cost {}", self.step_cost),
        );
        add(self.step_cost_random, "--step-cost-random".to_string());
        out
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The scenario (a Lua file).
    scenario: PathBuf,
    /// The seed of every scheduling choice and random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Trace format.
    #[arg(long, value_enum)]
    trace: Option<TraceArg>,
    /// Write the trace to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    trace_out: Option<PathBuf>,
    /// Format of the outcome report (on standard error).
    #[arg(long, value_enum, default_value_t = ReportArg::Text)]
    report: ReportArg,
    /// Production mode: run against the wall clock (`goroutine.sleep(500)` takes half a second,
    /// `sim.is_simulated()` is false, `sim.buggify` never fires, logs are printed as they happen,
    /// `math.random` and `os.time` are Lua's own). No trace unless `--trace` is given.
    #[arg(long)]
    real: bool,
    /// Production mode only: give the script standard libraries the sandbox removes, `io` and/or
    /// all of `os` (comma-separated: `io,os`). The script may then touch files, processes and the
    /// environment, and its runs stop being reproducible. Never on by default.
    #[arg(long, value_name = "LIBS", value_parser = StdlibAccess::parse)]
    allow_stdlib: Option<StdlibAccess>,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ReportArg {
    /// Readable lines.
    Text,
    /// One JSON object (`run`: outcome, kind, cycle, goroutines, reproduce; `explore`: counts,
    /// groups, reproduce lines).
    Json,
}

#[derive(Args, Debug)]
struct ExploreArgs {
    /// The scenario (a Lua file).
    scenario: PathBuf,
    /// A seed range, inclusive: `1..10000`.
    #[arg(long, value_name = "A..B", conflicts_with = "runs")]
    seeds: Option<String>,
    /// Run seeds 1..=N.
    #[arg(long, value_name = "N")]
    runs: Option<u64>,
    /// Worker threads, 1 to 1024 (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = jobs)]
    jobs: Option<usize>,
    /// Run only the K-th of N disjoint slices of the seeds (seeds with seed % N == K - 1), to
    /// spread one sweep over machines; the slices' summaries add up to the whole.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Format of the summary: readable lines, or one JSON object (integer counts, failure groups
    /// with their smallest seeds and reproduce lines, the strategies that found them) that
    /// `gosim merge` adds up across shards.
    #[arg(long, value_enum, default_value_t = ReportArg::Text)]
    report: ReportArg,
    #[command(flatten)]
    limits: LimitArgs,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("shard must look like K/N (got {s:?})"))?;
    let k: u64 = k
        .trim()
        .parse()
        .map_err(|_| format!("bad shard number {k:?}"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("bad shard count {n:?}"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("shard K/N needs 1 <= K <= N (got {k}/{n})"));
    }
    Ok((k, n))
}

#[derive(Args, Debug)]
struct ShrinkArgs {
    /// The scenario (a Lua file).
    scenario: PathBuf,
    /// The failing seed.
    #[arg(long)]
    seed: u64,
    /// Where to write the shrunk schedule (default: SCENARIO.seed-N.schedule next to the scenario).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The most runs to spend searching (at least 2).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = at_least_one_usize)]
    max_runs: usize,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// The scenario (a Lua file).
    scenario: PathBuf,
    /// A schedule written by `gosim shrink`.
    #[arg(long, value_name = "FILE", conflicts_with = "seed")]
    schedule: Option<PathBuf>,
    /// Or a seed, as `gosim run`.
    #[arg(long)]
    seed: Option<u64>,
    /// Trace format.
    #[arg(long, value_enum, default_value_t = TraceArg::Text)]
    trace: TraceArg,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The scenario (a Lua file).
    scenario: PathBuf,
    /// The seeds to check, inclusive: `1..20`.
    #[arg(long, value_name = "A..B", default_value = "1..10")]
    seeds: String,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Entry point: parse, dispatch, map outcomes to exit codes.
pub fn main() -> ExitCode {
    // --max-memory bounds a whole run (Lua heap and Rust side): runs read their thread's count.
    gosim::lua::set_memory_probe(alloc_count::thread_current);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Run(a) => run(a),
        Command::Explore(a) => explore(a),
        Command::CheckDeterminism(a) => check(a),
        Command::Bench(a) => bench::run(a),
        Command::Shrink(a) => shrink(a),
        Command::Replay(a) => replay(a),
        Command::Merge(a) => merge::run(a),
        Command::Test(a) => test::run(a),
        Command::Types(a) => types::run(a),
    }
}

/// Writes a report to standard output; a closed pipe (`| head`) is not an error of the command.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    let msg = msg.to_string();
    // Library messages may already say where they come from.
    let msg = msg.strip_prefix("gosim: ").unwrap_or(&msg);
    eprintln!("gosim: {msg}");
    ExitCode::from(2)
}

fn parse_seed_range(text: &str) -> Result<Vec<u64>, String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("seed range must look like A..B (got {text:?})"))?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("bad start of seed range: {a:?}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("bad end of seed range: {b:?}"))?;
    if a > b {
        return Err(format!("empty seed range {a}..{b}"));
    }
    if b - a >= 100_000_000 {
        return Err("seed range too large (at most 100,000,000 seeds)".to_string());
    }
    Ok((a..=b).collect())
}

fn run(a: RunArgs) -> ExitCode {
    // The trace is printed by default in a simulation, not in production.
    let trace = a.trace.unwrap_or(if a.real {
        TraceArg::None
    } else {
        TraceArg::Text
    });
    let mut options = a.limits.options(a.seed, trace != TraceArg::None);
    options.real = a.real;
    if let Some(allow) = a.allow_stdlib {
        if !a.real {
            return usage_error(
                "--allow-stdlib needs --real: a simulation stays sandboxed and deterministic",
            );
        }
        options.lua.allow_stdlib = allow;
    }
    let source = match scenario::read_scenario_capped(&a.scenario, a.limits.max_input_bytes()) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let name = a.scenario.display().to_string();
    match scenario::resolve_strategy(&name, &source, &options) {
        Ok(s) => options.config.strategy = s,
        Err(e) => return usage_error(e),
    }
    let report = match scenario::run_source(&name, &source, &options) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    if trace != TraceArg::None {
        let text = match trace {
            TraceArg::Chrome => render_chrome(&report.events),
            TraceArg::Jsonl => render(&report.events, TraceFormat::Jsonl),
            _ => render(&report.events, TraceFormat::Text),
        };
        match &a.trace_out {
            Some(path) => {
                if let Err(e) = std::fs::write(path, text) {
                    return usage_error(format!("cannot write trace to {}: {e}", path.display()));
                }
            }
            None => {
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    // A closed pipe (`| head`) is not an error of the run.
                }
            }
        }
    }
    let repro = format!(
        "gosim run {} --seed {}{}{}",
        a.scenario.display(),
        a.seed,
        a.limits.non_default_flags(),
        strategy_flag(options.config.strategy.for_seed(a.seed))
    );
    if a.report == ReportArg::Json {
        let mut json = report.outcome.to_json();
        json["steps"] = report.stats.steps.into();
        json["end_time"] = gosim::runtime::format_duration(report.stats.end_time).into();
        if !report.outcome.is_pass() {
            json["reproduce"] = repro.clone().into();
        }
        eprintln!("{json}");
        return exit_code(&report.outcome);
    }
    report_outcome(
        &report.outcome,
        &repro,
        report.stats.steps,
        report.stats.end_time,
    )
}

/// ` --strategy S` for a strategy other than `random` (resolved, and for a portfolio the seed's
/// member, so that it reproduces exactly).
fn strategy_flag(s: Strategy) -> String {
    match s {
        Strategy::Random => String::new(),
        s => format!(" --strategy {s}"),
    }
}

fn shrink(a: ShrinkArgs) -> ExitCode {
    let source = match scenario::read_scenario_capped(&a.scenario, a.limits.max_input_bytes()) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let name = a.scenario.display().to_string();
    let mut options = a.limits.options(a.seed, false);
    match scenario::resolve_strategy(&name, &source, &options) {
        Ok(s) => options.config.strategy = s,
        Err(e) => return usage_error(e),
    }
    let result = match scenario::shrink(&name, &source, &options, a.max_runs.max(2)) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return usage_error(format!(
                "seed {} passes{}: nothing to shrink",
                a.seed,
                strategy_flag(options.config.strategy.for_seed(a.seed))
            ));
        }
        Err(e) => return usage_error(e),
    };
    let out = a.out.unwrap_or_else(|| {
        let mut p = a.scenario.clone().into_os_string();
        p.push(format!(".seed-{}.schedule", a.seed));
        PathBuf::from(p)
    });
    if let Err(e) = std::fs::write(
        &out,
        scenario::schedule_text(&result.shrunk, &name, &source),
    ) {
        return usage_error(format!("cannot write {}: {e}", out.display()));
    }
    println!("failure: {}", result.original.failure);
    println!("strategy: {}", result.original.strategy);
    println!(
        "original schedule: {} decisions, {} preemptions",
        result.original.decisions.len(),
        result.original.preemptions()
    );
    println!(
        "shrunk schedule:   {} decisions, {} preemptions ({} runs)",
        result.shrunk.decisions.len(),
        result.shrunk.preemptions(),
        result.runs
    );
    println!("wrote {}", out.display());
    println!(
        "replay: gosim replay {} --schedule {}{}",
        name,
        out.display(),
        a.limits.non_default_flags()
    );
    ExitCode::SUCCESS
}

fn replay(a: ReplayArgs) -> ExitCode {
    let source = match scenario::read_scenario_capped(&a.scenario, a.limits.max_input_bytes()) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let name = a.scenario.display().to_string();
    let mut options = a
        .limits
        .options(a.seed.unwrap_or(0), a.trace != TraceArg::None);
    let (report, repro) = match &a.schedule {
        Some(path) => {
            let text = match scenario::read_schedule(path, a.limits.max_input_bytes()) {
                Ok(t) => t,
                Err(e) => return usage_error(e),
            };
            let schedule = match scenario::parse_schedule_for(&text, &source) {
                Ok(s) => s,
                Err(e) => return usage_error(format!("{}: {e}", path.display())),
            };
            let repro = format!(
                "gosim replay {} --schedule {}{}",
                name,
                path.display(),
                a.limits.non_default_flags()
            );
            let report = scenario::replay(&name, &source, &options, &schedule);
            if let Ok(r) = &report
                && let Err(e) = scenario::check_replay_followed(&schedule, &r.stats)
            {
                return usage_error(format!("{}: {e}", path.display()));
            }
            (report, repro)
        }
        None => {
            match scenario::resolve_strategy(&name, &source, &options) {
                Ok(s) => options.config.strategy = s,
                Err(e) => return usage_error(e),
            }
            let repro = format!(
                "gosim replay {} --seed {}{}{}",
                name,
                options.config.seed,
                a.limits.non_default_flags(),
                strategy_flag(options.config.strategy.for_seed(options.config.seed))
            );
            (scenario::run_source(&name, &source, &options), repro)
        }
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    match a.trace {
        TraceArg::None => {}
        TraceArg::Jsonl => print!("{}", render(&report.events, TraceFormat::Jsonl)),
        TraceArg::Chrome => print!("{}", render_chrome(&report.events)),
        TraceArg::Text => print!("{}", render(&report.events, TraceFormat::Text)),
    }
    report_outcome(
        &report.outcome,
        &repro,
        report.stats.steps,
        report.stats.end_time,
    )
}

fn exit_code(outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::Pass => ExitCode::SUCCESS,
        Outcome::Fail(_) => ExitCode::from(1),
        Outcome::Limit(_) => ExitCode::from(EXIT_LIMIT),
    }
}

fn report_outcome(
    outcome: &Outcome,
    repro: &str,
    steps: u64,
    end: std::time::Duration,
) -> ExitCode {
    let when = gosim::runtime::format_duration(end);
    match outcome {
        Outcome::Pass => {
            eprintln!("PASS ({steps} steps, time {when})");
            ExitCode::SUCCESS
        }
        Outcome::Fail(f) => {
            eprintln!("{f}");
            eprintln!("reproduce: {repro}");
            ExitCode::from(1)
        }
        Outcome::Limit(l) => {
            eprintln!("{l}");
            eprintln!("reproduce: {repro}");
            ExitCode::from(EXIT_LIMIT)
        }
    }
}

fn explore(a: ExploreArgs) -> ExitCode {
    let seeds = match (&a.seeds, a.runs) {
        (Some(r), _) => match parse_seed_range(r) {
            Ok(s) => s,
            Err(e) => return usage_error(e),
        },
        (None, Some(0)) => return usage_error("--runs must be at least 1"),
        (None, Some(n)) => (1..=n).collect(),
        (None, None) => (1..=1000).collect(),
    };
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let source = match scenario::read_scenario_capped(&a.scenario, a.limits.max_input_bytes()) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    // The probe that resolves PCT's step count runs the range's first seed, not the shard's: every
    // shard then runs the same strategy as one whole sweep, so their summaries add up to it.
    let probe_seed = seeds[0];
    let seeds: Vec<u64> = match a.shard {
        Some((k, n)) => seeds.into_iter().filter(|s| s % n == k - 1).collect(),
        None => seeds,
    };
    if seeds.is_empty() {
        return usage_error("this shard holds no seed of the range");
    }
    let mut run = a.limits.options(0, false);
    if a.limits.strategy.is_none() {
        // The default sweep is the portfolio: timing bugs too, with no flag.
        run.config.strategy = Strategy::Portfolio(Portfolio::default());
    }
    // PCT spreads its change points over the run's length: measure it once for the whole sweep.
    run.config.seed = probe_seed;
    match scenario::resolve_strategy(&a.scenario.display().to_string(), &source, &run) {
        Ok(s) => run.config.strategy = s,
        Err(e) => return usage_error(e),
    }
    let strategy = run.config.strategy;
    let options = ExploreOptions { seeds, jobs, run };
    let bar = progress_bar(options.seeds.len() as u64);
    // Wall clock for the throughput figure only; no verdict depends on it.
    let start = std::time::Instant::now();
    let name = a.scenario.display().to_string();
    let result = scenario::explore(&name, &source, &options, &mut |done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = match result {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let sweep = merge::Sweep {
        scenario: a.scenario.display().to_string(),
        flags: a.limits.non_default_flags(),
        strategy,
        summary,
    };
    if a.report == ReportArg::Json {
        emit(&format!("{}\n", sweep.to_json()));
        return sweep.exit_code();
    }
    let summary = &sweep.summary;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    emit(&format!(
        "explored {} runs in {:.2}s ({:.0} runs/s, {} jobs): {} passed, {} failed, {} hit a limit\n{}",
        summary.runs,
        secs,
        summary.runs as f64 / secs,
        jobs,
        summary.passed,
        summary.failed(),
        summary.limited(),
        sweep.details()
    ));
    sweep.exit_code()
}

/// What the strategies that found a group say about the bug (empty when it says nothing).
fn kind_hint(found_by: &std::collections::BTreeMap<String, usize>) -> &'static str {
    let family = |name: &String| name.split(':').next().unwrap_or("").to_string();
    let families: std::collections::BTreeSet<String> = found_by.keys().map(family).collect();
    let timing = |f: &String| f == "cost" || f == "jitter";
    if !families.is_empty() && families.iter().all(timing) {
        " -- a timing bug: it needs work to take time or a timer to fire late"
    } else if families.len() == 1 && families.contains("pct") {
        " -- an ordering bug that needs a long uninterrupted run (PCT)"
    } else {
        ""
    }
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || total < 2 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds ({per_sec}, eta {eta})")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn check(a: CheckArgs) -> ExitCode {
    let seeds = match parse_seed_range(&a.seeds) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let source = match scenario::read_scenario_capped(&a.scenario, a.limits.max_input_bytes()) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let n = seeds.len();
    let name = a.scenario.display().to_string();
    // Resolved as `run` and `explore` resolve it (PCT's step count, a portfolio's exactness).
    let mut options = a.limits.options(seeds[0], true);
    match scenario::resolve_strategy(&name, &source, &options) {
        Ok(s) => options.config.strategy = s,
        Err(e) => return usage_error(e),
    }
    match scenario::check_determinism(&name, &source, seeds, &options) {
        Err(e) => usage_error(e),
        Ok(None) => {
            println!("deterministic: {n} seeds, each run twice, identical traces and outcomes");
            ExitCode::SUCCESS
        }
        Ok(Some(d)) => {
            println!(
                "NOT deterministic: seed {} differs at event {}",
                d.seed, d.event
            );
            println!("  first run:  {}", d.first);
            println!("  second run: {}", d.second);
            ExitCode::from(1)
        }
    }
}
