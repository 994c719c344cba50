//! Exploring schedules: strategies (random, PCT), recorded decisions replayed exactly, shrinking
//! a failing schedule, sharding a sweep.

use gosim::runtime::{Outcome, Schedule, Strategy};
use gosim::scenario::{
    ExploreOptions, RunOptions, explore, failure_signature, replay, resolve_strategy, run_source,
    shrink,
};

const PCT_BUG: &str = include_str!("../scenarios/pct_bug.lua");

const LOST_UPDATE: &str = r#"
local n = 0
local wg = goroutine.wait_group()
for i = 1, 4 do
  wg:add(1)
  goroutine.spawn(function() local x = n; goroutine.yield(); n = x + 1; wg:done() end)
end
wg:wait()
assert(n == 4, "lost update: n=" .. n)
"#;

fn sweep(src: &str, strategy: Strategy, runs: u64) -> gosim::scenario::ExploreSummary {
    let mut run = RunOptions::with_seed(1);
    run.config.strategy = strategy;
    run.config.strategy = resolve_strategy("pct_bug.lua", src, &run).expect("loads");
    let opts = ExploreOptions {
        seeds: (1..=runs).collect(),
        jobs: 2,
        run,
    };
    explore("pct_bug.lua", src, &opts, &mut |_, _| {}).expect("loads")
}

#[test]
fn pct_finds_a_bug_that_needs_a_long_uninterrupted_run_and_random_does_not() {
    let random = sweep(PCT_BUG, Strategy::Random, 300);
    assert_eq!(
        random.failed(),
        0,
        "uniform random scheduling almost never finds it"
    );
    let pct = sweep(PCT_BUG, Strategy::Pct { depth: 3, steps: 0 }, 300);
    assert!(
        pct.failed() >= 2,
        "PCT finds it within 300 runs: {:?}",
        pct.groups
    );
    assert_eq!(pct.groups[0].kind, "assertion");
}

#[test]
fn a_recorded_schedule_replays_the_same_trace() {
    for seed in 1..=10 {
        let mut opts = RunOptions::with_seed(seed);
        opts.config.record = true;
        let first = run_source("t.lua", LOST_UPDATE, &opts).expect("loads");
        assert!(!first.decisions.is_empty());
        let schedule = Schedule {
            seed,
            strategy: Strategy::Random,
            failure: String::new(),
            decisions: first.decisions,
        };
        let again = replay("t.lua", LOST_UPDATE, &RunOptions::default(), &schedule).expect("loads");
        assert_eq!(first.events.len(), again.events.len(), "seed {seed}");
        assert_eq!(
            first.events.iter().map(|e| e.to_text()).collect::<Vec<_>>(),
            again.events.iter().map(|e| e.to_text()).collect::<Vec<_>>(),
            "seed {seed}: the replay follows the recorded decisions"
        );
    }
}

#[test]
fn shrinking_keeps_the_failure_and_removes_preemptions() {
    let opts = RunOptions::with_seed(1);
    let r = shrink("t.lua", LOST_UPDATE, &opts, 300)
        .expect("loads")
        .expect("seed 1 fails");
    assert!(r.shrunk.preemptions() <= r.original.preemptions());
    assert!(
        r.shrunk.preemptions() < r.original.preemptions(),
        "a lost update needs one preemption, not {}",
        r.original.preemptions()
    );
    assert!(r.shrunk.decisions.len() <= r.original.decisions.len());
    // The shrunk schedule, written and read back, fails the same way.
    let text = r.shrunk.to_text("t.lua");
    let parsed = Schedule::parse(&text).expect("parses");
    let again = replay("t.lua", LOST_UPDATE, &RunOptions::default(), &parsed).expect("loads");
    assert_eq!(
        failure_signature(&again.outcome),
        Some(r.original.failure.clone())
    );
    assert!(matches!(again.outcome, Outcome::Fail(_)));
}

#[test]
fn the_pct_bug_shrinks_to_a_single_preemption() {
    // Find a seed that PCT fails on, then shrink it: the bug needs exactly one switch (from the
    // loader, right after its twentieth step, to the reader).
    let mut run = RunOptions::with_seed(1);
    run.config.strategy = Strategy::Pct { depth: 3, steps: 0 };
    run.config.strategy = resolve_strategy("pct_bug.lua", PCT_BUG, &run).expect("loads");
    let seed = (1..=300)
        .find(|&seed| {
            let mut o = run.clone();
            o.config.seed = seed;
            !run_source("pct_bug.lua", PCT_BUG, &o)
                .expect("loads")
                .outcome
                .is_pass()
        })
        .expect("PCT finds the bug within 300 seeds");
    let mut opts = run.clone();
    opts.config.seed = seed;
    let r = shrink("pct_bug.lua", PCT_BUG, &opts, 500)
        .expect("loads")
        .expect("the seed fails");
    assert_eq!(
        r.shrunk.preemptions(),
        1,
        "{}",
        r.shrunk.to_text("pct_bug.lua")
    );
    let again = replay("pct_bug.lua", PCT_BUG, &RunOptions::default(), &r.shrunk).expect("loads");
    assert_eq!(
        failure_signature(&again.outcome),
        Some(r.original.failure.clone())
    );
}

#[test]
fn a_passing_seed_has_nothing_to_shrink() {
    let src = "local ch = goroutine.channel(1)\ngoroutine.spawn(function() ch:send(1) end)\nch:receive()\n";
    assert!(
        shrink("t.lua", src, &RunOptions::with_seed(3), 50)
            .expect("loads")
            .is_none()
    );
}

mod common;
use common::gosim;

#[test]
fn shrink_writes_a_schedule_that_replay_reproduces() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("shrink-cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("pct.schedule");
    let out = out.to_str().expect("utf-8");
    // Find a failing PCT seed first.
    let sweep = gosim(&[
        "explore",
        "scenarios/pct_bug.lua",
        "--runs",
        "300",
        "--strategy",
        "pct",
        "--jobs",
        "2",
    ]);
    let text = String::from_utf8_lossy(&sweep.stdout).to_string();
    let shrink_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("shrink:"))
        .expect("a shrink hint")
        .trim();
    let mut args: Vec<&str> = shrink_line
        .trim_start_matches("shrink:")
        .split_whitespace()
        .skip(1)
        .collect();
    args.extend(["--out", out]);
    let s = gosim(&args);
    assert_eq!(
        s.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&s.stderr)
    );
    assert!(String::from_utf8_lossy(&s.stdout).contains("shrunk schedule:"));
    let r = gosim(&[
        "replay",
        "scenarios/pct_bug.lua",
        "--schedule",
        out,
        "--trace",
        "none",
    ]);
    assert_eq!(r.status.code(), Some(1));
    let report = String::from_utf8_lossy(&r.stderr);
    assert!(
        report.contains("reader saw a finished loader but an empty cache"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "reproduce: gosim replay scenarios/pct_bug.lua --schedule {out}"
        )),
        "{report}"
    );
}

#[test]
fn shards_split_a_sweep_into_disjoint_parts_that_add_up() {
    let count = |args: &[&str]| -> (u64, u64) {
        let o = gosim(args);
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        let first = t.lines().next().expect("a summary").to_string();
        let runs: u64 = first
            .split_whitespace()
            .nth(1)
            .expect("run count")
            .parse()
            .expect("a number");
        let failed: u64 = first
            .split(", ")
            .find(|p| p.ends_with("failed"))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("failed count");
        (runs, failed)
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("shard");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("lost.lua");
    std::fs::write(&path, LOST_UPDATE).expect("write");
    let p = path.to_str().expect("utf-8");
    let whole = count(&["explore", p, "--seeds", "1..90"]);
    let a = count(&["explore", p, "--seeds", "1..90", "--shard", "1/3"]);
    let b = count(&["explore", p, "--seeds", "1..90", "--shard", "2/3"]);
    let c = count(&["explore", p, "--seeds", "1..90", "--shard", "3/3"]);
    assert_eq!(a.0 + b.0 + c.0, whole.0);
    assert_eq!(a.1 + b.1 + c.1, whole.1);
    assert_eq!(
        gosim(&["explore", p, "--shard", "4/3"]).status.code(),
        Some(2)
    );
}

#[test]
fn shards_of_a_default_portfolio_sweep_add_up_to_the_whole() {
    // Each shard measures PCT's step count with the range's first seed, so every shard runs the
    // same members as one whole sweep, and the timing members' failures add up too.
    let failed = |args: &[&str]| -> u64 {
        let o = gosim(args);
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(t.contains("strategy: portfolio:"), "{t}");
        t.lines()
            .next()
            .and_then(|l| l.split(", ").find(|p| p.ends_with("failed")))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("a failed count")
    };
    for s in ["scenarios/sleep_barrier_bug.lua", "scenarios/pct_bug.lua"] {
        let whole = failed(&["explore", s, "--seeds", "5..600"]);
        let parts: u64 = (1..=3)
            .map(|k| {
                failed(&[
                    "explore",
                    s,
                    "--seeds",
                    "5..600",
                    "--shard",
                    &format!("{k}/3"),
                ])
            })
            .sum();
        assert!(whole > 0, "{s}: the portfolio finds its bug");
        assert_eq!(parts, whole, "{s}");
    }
}
