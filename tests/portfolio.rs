//! Issue 12: the strategy portfolio, the default of `gosim explore`. Each seed derives one member
//! (random, PCT, a random step cost, late timers) from the seed alone; a default sweep finds the
//! sleep-barrier bug that exact virtual time hides, still finds what plain random and PCT find,
//! raises no alarm on correct scenarios, and its reproduce lines replay exactly.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::gosim;
use gosim::runtime::{NANOS_PER_MS, Outcome, Portfolio, Strategy, TraceHash};
use gosim::scenario::{
    RunOptions, asserts_exact_time, failure_signature, portfolio_member, resolve_strategy,
    run_source,
};
use proptest::prelude::*;

const SLEEP_BARRIER_BUG: &str = include_str!("../scenarios/sleep_barrier_bug.lua");

/// The sleep-barrier scenario with its bug fixed: the stopper registers each task before
/// spawning it, so its wait cannot miss one, however long setup takes or late timers are.
const SLEEP_BARRIER_FIXED: &str = r#"
local wg = goroutine.wait_group()
local registry = goroutine.mutex()
local started = {}
local closed = false
local function start_task(name)
  wg:add(1)                                  -- the fix: register before the task exists
  goroutine.spawn{name = name, fn = function()
    registry:lock()
    started[#started + 1] = name
    registry:unlock()
    goroutine.yield()
    assert(not closed, name .. " uses the store after the stopper closed it")
    goroutine.yield()
    wg:done()
  end}
end
for i = 1, 3 do start_task("task-" .. i) end
goroutine.sleep(1)
wg:wait()
closed = true
assert(#started == 3)
"#;

/// Scenarios that must fail (canaries) or hide a bug on purpose: not part of the no-false-alarm
/// sweep.
fn is_bug_scenario(stem: &str) -> bool {
    stem.starts_with("canary") || stem == "pct_bug" || stem == "sleep_barrier_bug"
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("stem")
        .to_string_lossy()
        .to_string()
}

/// The portfolio `gosim explore` would run for `src` (PCT steps probed with seed 1).
fn resolved_portfolio(name: &str, src: &str) -> Portfolio {
    let mut o = RunOptions::with_seed(1);
    o.config.trace = false;
    o.config.strategy = Strategy::Portfolio(Portfolio::default());
    match resolve_strategy(name, src, &o).expect("loads") {
        Strategy::Portfolio(p) => p,
        other => panic!("a portfolio resolves to a portfolio, got {other}"),
    }
}

/// The first `per_member` seeds (from 1 up) that run each member of `p`.
fn seeds_covering(p: Portfolio, per_member: usize) -> Vec<(u64, Strategy)> {
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    let members = p.members();
    let mut out = Vec::new();
    let mut seed = 0;
    while taken.len() < members.len() || taken.values().any(|&n| n < per_member) {
        seed += 1;
        let m = p.member(seed);
        let n = taken.entry(m.to_string()).or_insert(0);
        if *n < per_member {
            *n += 1;
            out.push((seed, m));
        }
    }
    out
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The `reproduce:` command of the first failure group of an explore summary, as arguments.
fn first_line_starting(text: &str, prefix: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("a {prefix:?} line in:\n{text}"));
    line.trim()
        .trim_start_matches(prefix)
        .split_whitespace()
        .skip(1) // "gosim"
        .map(str::to_string)
        .collect()
}

fn hash_lines(text: &str) -> TraceHash {
    text.lines()
        .fold(TraceHash::EMPTY, |h, line| h.add_line(line))
}

// ---- the derivation -------------------------------------------------------------------------

#[test]
fn every_member_is_reachable_and_the_mapping_is_a_function_of_the_seed() {
    for exact in [false, true] {
        let p = Portfolio {
            pct_steps: 40,
            exact,
        };
        let members = p.members();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for seed in 0..8_000u64 {
            let m = p.member(seed);
            assert_eq!(m, p.member(seed), "the same seed, the same member");
            assert_eq!(m, portfolio_member(seed, p), "the library function agrees");
            assert_eq!(
                m,
                Strategy::Portfolio(p).for_seed(seed),
                "a run resolves the same member"
            );
            assert!(members.contains(&m), "{m} is listed among the members");
            assert!(
                !(exact && m.perturbs_time()),
                "the exact portfolio never moves the clock ({m})"
            );
            *seen.entry(m.to_string()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), members.len(), "every member runs: {seen:?}");
        if !exact {
            // Shares follow the slots (random 2/8, each other member 1/8), within 20%.
            for (name, n) in &seen {
                let slots = if name == "random" { 2.0 } else { 1.0 };
                let want = 8_000.0 * slots / Portfolio::SLOTS as f64;
                assert!(
                    (*n as f64 - want).abs() < want * 0.2,
                    "{name}: {n} runs, expected about {want}"
                );
            }
            assert!(
                members.iter().any(|m| m.family() == "cost")
                    && members.iter().any(|m| m.family() == "jitter")
                    && members.contains(&Strategy::Pct {
                        depth: 2,
                        steps: 40
                    })
            );
        }
    }
}

#[test]
fn every_shard_of_a_sweep_still_runs_every_member() {
    let p = Portfolio {
        pct_steps: 10,
        exact: false,
    };
    for n in 2..=16u64 {
        for k in 0..n {
            let mut seen: Vec<Strategy> = Vec::new();
            for seed in (1..=2_000u64).filter(|s| s % n == k) {
                let m = p.member(seed);
                if !seen.contains(&m) {
                    seen.push(m);
                }
            }
            assert_eq!(seen.len(), p.members().len(), "shard {}/{n}", k + 1);
        }
    }
}

proptest! {
    /// Every member, and every strategy a user can type, prints as a flag value that parses back.
    #[test]
    fn strategies_round_trip_through_their_flag_text(
        seed in any::<u64>(),
        steps in 0u64..1_000_000,
        exact in any::<bool>(),
        ns in 1u64..10_000_000_000_000,
        depth in 1u32..10,
    ) {
        let p = Portfolio { pct_steps: steps, exact };
        let all = [
            p.member(seed),
            Strategy::Portfolio(p),
            Strategy::Cost { max: ns },
            Strategy::Jitter { max: ns },
            Strategy::Pct { depth, steps },
            Strategy::Random,
        ];
        for s in all {
            prop_assert_eq!(s.to_string().parse::<Strategy>(), Ok(s));
        }
    }
}

#[test]
fn timing_strategies_parse_and_reject_bad_values() {
    assert_eq!(
        "cost:0.1".parse::<Strategy>(),
        Ok(Strategy::Cost {
            max: NANOS_PER_MS / 10
        })
    );
    assert_eq!(
        "jitter:10".parse::<Strategy>(),
        Ok(Strategy::Jitter {
            max: 10 * NANOS_PER_MS
        })
    );
    assert_eq!(
        "portfolio:exact:12".parse::<Strategy>(),
        Ok(Strategy::Portfolio(Portfolio {
            pct_steps: 12,
            exact: true
        }))
    );
    for bad in [
        "cost",
        "cost:",
        "cost:0",
        "cost:-1",
        "cost:x",
        "cost:1:2",
        "jitter:nan",
        "jitter:inf",
        "portfolio:x",
        "portfolio:1:2",
        "portfolio:exact:x",
        "fast",
    ] {
        let err = bad.parse::<Strategy>().expect_err(bad);
        assert!(
            err.contains(bad) || err.contains("strategy"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn bad_strategy_flags_are_usage_errors_naming_the_flag() {
    for bad in ["cost:0", "jitter:abc", "portfolio:maybe"] {
        let o = gosim(&[
            "explore",
            "scenarios/mutex.lua",
            "--runs",
            "2",
            "--strategy",
            bad,
        ]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let e = stderr(&o);
        assert!(e.contains("--strategy") && e.contains(bad), "{bad}: {e}");
    }
}

// ---- what the timing members do, and what they keep -----------------------------------------

fn run_with(src: &str, seed: u64, strategy: Strategy) -> gosim::scenario::RunReport {
    let mut o = RunOptions::with_seed(seed);
    o.config.strategy = strategy;
    run_source("t.lua", src, &o).expect("loads")
}

/// Five timers due at 10 ms, created in order, plus one due at 9 ms and one at 11 ms.
const SAME_INSTANT_TIMERS: &str = r#"
goroutine.after_func(9, function() end)
for i = 1, 5 do goroutine.after_func(10, function() end) end
goroutine.after_func(11, function() end)
local t0 = goroutine.now()
goroutine.sleep(10)
log.info("slept " .. (goroutine.now() - t0))
goroutine.sleep(100)
"#;

/// The `fire` events of a run's trace: (instant in ms, timer number), in trace order.
fn fires(r: &gosim::scenario::RunReport) -> Vec<(f64, u32)> {
    r.trace_text()
        .lines()
        .filter_map(|l| {
            let (at, rest) = l.split_once("ms ")?;
            let n = rest.strip_prefix("sched fire after_func#")?;
            Some((at.parse().ok()?, n.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn jitter_makes_timers_late_but_keeps_same_instant_timers_in_creation_order() {
    let max_ms = 10.0;
    let deadline = |n: u32| match n {
        1 => 9.0,
        7 => 11.0,
        _ => 10.0,
    };
    let mut reordered = 0;
    let mut late = 0;
    for seed in 1..=300 {
        let r = run_with(
            SAME_INSTANT_TIMERS,
            seed,
            Strategy::Jitter {
                max: 10 * NANOS_PER_MS,
            },
        );
        assert!(r.outcome.is_pass(), "seed {seed}: {}", r.outcome);
        let f = fires(&r);
        assert_eq!(f.len(), 7, "seed {seed}: every timer fired once");
        for &(at, n) in &f {
            assert!(
                (deadline(n)..=deadline(n) + max_ms).contains(&at),
                "seed {seed}: timer {n} due at {} fired at {at}",
                deadline(n)
            );
        }
        let same: Vec<u32> = f
            .iter()
            .map(|&(_, n)| n)
            .filter(|n| (2..=6).contains(n))
            .collect();
        assert_eq!(
            same,
            [2, 3, 4, 5, 6],
            "seed {seed}: same-instant timers in creation order"
        );
        let order: Vec<u32> = f.iter().map(|&(_, n)| n).collect();
        if order != [1, 2, 3, 4, 5, 6, 7] {
            reordered += 1;
        }
        let slept: f64 = common::logs(&r)[0]
            .trim_start_matches("slept ")
            .parse()
            .expect("ms");
        assert!(
            (10.0..=10.0 + max_ms).contains(&slept),
            "seed {seed}: slept {slept}"
        );
        if slept > 10.0 {
            late += 1;
        }
    }
    assert!(late > 250, "timers fire late in most runs ({late} of 300)");
    assert!(
        reordered > 30,
        "timers with different deadlines sometimes fire out of deadline order ({reordered} of 300)"
    );
    // Without jitter: exact instants, deadline order.
    for strategy in [
        Strategy::Random,
        Strategy::Pct {
            depth: 2,
            steps: 20,
        },
    ] {
        let r = run_with(SAME_INSTANT_TIMERS, 3, strategy);
        assert_eq!(
            fires(&r),
            [
                (9.0, 1),
                (10.0, 2),
                (10.0, 3),
                (10.0, 4),
                (10.0, 5),
                (10.0, 6),
                (11.0, 7)
            ],
            "{strategy}"
        );
        assert_eq!(common::logs(&r), ["slept 10"], "{strategy}");
    }
}

#[test]
fn cost_makes_steps_take_time_within_the_bound() {
    let src = r#"
      local t0 = goroutine.now()
      for i = 1, 20 do goroutine.yield() end
      log.info("took " .. (goroutine.now() - t0))
    "#;
    let mut moved = 0;
    for seed in 1..=50 {
        let r = run_with(src, seed, Strategy::Cost { max: NANOS_PER_MS });
        let took: f64 = common::logs(&r)[0]
            .trim_start_matches("took ")
            .parse()
            .expect("ms");
        // 20 yields, plus the steps around them: at most 1 ms each.
        assert!(took <= 25.0, "seed {seed}: {took} ms");
        if took > 0.0 {
            moved += 1;
        }
    }
    assert!(moved >= 45, "steps take time ({moved} of 50 runs moved)");
}

// ---- the issue's bar: finds the sleep-barrier bug, keeps finding the rest, no false alarm ----

#[test]
fn default_explore_finds_the_sleep_barrier_bug_and_its_reproduce_line_replays_exactly() {
    let o = gosim(&[
        "explore",
        "scenarios/sleep_barrier_bug.lua",
        "--runs",
        "1000",
        "--jobs",
        "2",
    ]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("strategy: portfolio:"), "{text}");
    assert!(
        text.contains("uses the store after the stopper closed it"),
        "{text}"
    );
    assert!(text.contains("found by: cost:"), "{text}");
    assert!(text.contains("a timing bug"), "{text}");
    // The same scenario under plain random: the sleep is a barrier, nothing is found.
    let plain = gosim(&[
        "explore",
        "scenarios/sleep_barrier_bug.lua",
        "--runs",
        "300",
        "--strategy",
        "random",
    ]);
    assert_eq!(plain.status.code(), Some(0), "{}", stdout(&plain));

    // The reproduce line fails the same way, and its trace is the sweep's run of that seed.
    let mut args = first_line_starting(&text, "reproduce:");
    assert!(args.iter().any(|a| a == "--strategy"), "{args:?}");
    let seed: u64 = args[args.iter().position(|a| a == "--seed").expect("--seed") + 1]
        .parse()
        .expect("a seed");
    args.extend(["--trace".to_string(), "text".to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let again = gosim(&argv);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("uses the store after the stopper closed it"));
    let twice = gosim(&argv);
    assert_eq!(
        stdout(&again),
        stdout(&twice),
        "a reproduce line is deterministic"
    );

    let p = resolved_portfolio("scenarios/sleep_barrier_bug.lua", SLEEP_BARRIER_BUG);
    let mut lib = RunOptions::with_seed(seed);
    lib.config.strategy = Strategy::Portfolio(p);
    let r = run_source("scenarios/sleep_barrier_bug.lua", SLEEP_BARRIER_BUG, &lib).expect("loads");
    assert!(matches!(r.outcome, Outcome::Fail(_)), "{}", r.outcome);
    assert_eq!(
        hash_lines(&stdout(&again)),
        r.trace_hash(),
        "the reproduce line replays the portfolio's run of seed {seed} event for event"
    );
}

#[test]
fn a_portfolio_failure_shrinks_and_its_schedule_replays() {
    let o = gosim(&[
        "explore",
        "scenarios/sleep_barrier_bug.lua",
        "--runs",
        "200",
    ]);
    let text = stdout(&o);
    let mut args = first_line_starting(&text, "shrink:");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portfolio-shrink");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("barrier.schedule");
    let out = out.to_str().expect("utf-8").to_string();
    args.extend(["--out".to_string(), out.clone()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = gosim(&argv);
    assert_eq!(s.status.code(), Some(0), "{}", stderr(&s));
    assert!(stdout(&s).contains("strategy: cost:"), "{}", stdout(&s));
    let schedule = std::fs::read_to_string(&out).expect("written");
    assert!(
        schedule.lines().any(|l| l.starts_with("strategy cost:")),
        "the schedule names the member: {schedule}"
    );
    let replay = |_: ()| {
        gosim(&[
            "replay",
            "scenarios/sleep_barrier_bug.lua",
            "--schedule",
            &out,
        ])
    };
    let (a, b) = (replay(()), replay(()));
    assert_eq!(a.status.code(), Some(1), "{}", stderr(&a));
    assert!(stderr(&a).contains("uses the store after the stopper closed it"));
    assert_eq!(
        stdout(&a),
        stdout(&b),
        "the shrunk schedule replays exactly"
    );
}

#[test]
fn default_explore_still_finds_the_pct_bug_and_the_canaries() {
    for (scenario, what, by) in [
        ("pct_bug", "reader saw a finished loader", Some("pct:")),
        ("canary", "deadlock (cycle)", None),
        ("canary_cycle", "deadlock (cycle)", None),
        ("canary_leak", "fail (leak)", None),
    ] {
        let path = format!("scenarios/{scenario}.lua");
        let o = gosim(&["explore", &path, "--runs", "1000", "--jobs", "2"]);
        let text = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{scenario}: {text}");
        assert!(text.contains(what), "{scenario}: {text}");
        if let Some(by) = by {
            assert!(
                text.contains(&format!("found by: {by}")),
                "{scenario}: {text}"
            );
        }
    }
}

#[test]
fn no_false_alarm_every_correct_scenario_passes_every_member_of_its_portfolio() {
    let mut runs = 0;
    let mut timing_runs = 0;
    let mut exact = 0;
    for path in scenario_files() {
        let stem = stem(&path);
        if is_bug_scenario(&stem) {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("readable");
        let name = format!("scenarios/{stem}.lua");
        let p = resolved_portfolio(&name, &src);
        assert_eq!(p.exact, asserts_exact_time(&src));
        exact += usize::from(p.exact);
        for (seed, member) in seeds_covering(p, 8) {
            let mut o = RunOptions::with_seed(seed);
            o.config.trace = false;
            o.config.strategy = Strategy::Portfolio(p);
            let r = run_source(&name, &src, &o).expect("loads");
            assert!(
                r.outcome.is_pass(),
                "{name} seed {seed} ({member}): {}\nreproduce: gosim run {name} --seed {seed} --strategy {member}",
                r.outcome
            );
            runs += 1;
            timing_runs += usize::from(member.perturbs_time());
        }
    }
    assert!(runs >= 1_000, "{runs} runs");
    assert!(timing_runs >= 100, "{timing_runs} runs moved the clock");
    assert!(exact > 0, "some scenarios assert exact instants");
}

#[test]
fn the_fixed_sleep_barrier_passes_every_member() {
    let p = resolved_portfolio("t.lua", SLEEP_BARRIER_FIXED);
    assert!(!p.exact);
    for (seed, member) in seeds_covering(p, 60) {
        let r = run_with(SLEEP_BARRIER_FIXED, seed, member);
        assert!(r.outcome.is_pass(), "seed {seed} ({member}): {}", r.outcome);
    }
    // And the bug, under the same members: only the timing ones find it.
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    for (seed, member) in seeds_covering(p, 60) {
        let r = run_with(SLEEP_BARRIER_BUG, seed, member);
        if let Some(sig) = failure_signature(&r.outcome) {
            assert!(sig.contains("assertion"), "{sig}");
            *found.entry(member.family()).or_insert(0) += 1;
        }
    }
    assert!(found.get("cost").is_some_and(|&n| n > 10), "{found:?}");
    assert!(
        found.keys().all(|f| *f == "cost" || *f == "jitter"),
        "exact-time members never find it: {found:?}"
    );
}

#[test]
fn every_member_is_deterministic_on_every_scenario() {
    // Two runs of the same seed and member give the same trace and outcome, for every scenario
    // (bug scenarios included: a failing run must replay too).
    let p = Portfolio {
        pct_steps: 30,
        exact: false,
    };
    let seeds: Vec<(u64, Strategy)> = seeds_covering(p, 1);
    for path in scenario_files() {
        let src = std::fs::read_to_string(&path).expect("readable");
        let name = format!("scenarios/{}.lua", stem(&path));
        for &(seed, member) in &seeds {
            let mut o = RunOptions::with_seed(seed);
            o.config.strategy = member;
            let d = gosim::scenario::check_determinism(&name, &src, [seed], &o).expect("loads");
            assert!(d.is_none(), "{name} seed {seed} ({member}): {d:?}");
        }
    }
    let o = gosim(&[
        "check-determinism",
        "scenarios/sleep_barrier_bug.lua",
        "--seeds",
        "1..30",
        "--strategy",
        "portfolio",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// A bug that needs a timer to fire late: the checker assumes the writer's 10 ms timer fires
/// before its own 12 ms one. Exact time never breaks that; a late timer does.
const TIMER_ORDER_BUG: &str = r#"
local written = false
local wg = goroutine.wait_group()
wg:add(2)
goroutine.spawn{name = "writer", fn = function()
  goroutine.sleep(10)
  written = true
  wg:done()
end}
goroutine.spawn{name = "checker", fn = function()
  goroutine.sleep(12)
  assert(written, "the checker ran before the writer's earlier timer")
  wg:done()
end}
wg:wait()
"#;

#[test]
fn the_portfolio_finds_a_timer_order_bug_through_its_jitter_members() {
    let mut run = RunOptions::with_seed(1);
    run.config.strategy = Strategy::Portfolio(Portfolio::default());
    run.config.strategy = resolve_strategy("t.lua", TIMER_ORDER_BUG, &run).expect("loads");
    let opts = gosim::scenario::ExploreOptions {
        seeds: (1..=400).collect(),
        jobs: 2,
        run,
    };
    let s =
        gosim::scenario::explore("t.lua", TIMER_ORDER_BUG, &opts, &mut |_, _| {}).expect("loads");
    assert_eq!(s.groups.len(), 1, "{:?}", s.groups);
    let g = &s.groups[0];
    assert!(g.found_by.contains_key("jitter:10"), "{:?}", g.found_by);
    assert!(
        g.found_by
            .keys()
            .all(|k| k.starts_with("jitter:") || k.starts_with("cost:")),
        "only timing members find it: {:?}",
        g.found_by
    );
    assert_eq!(s.by_strategy["random"].failed, 0);
    assert_eq!(
        s.by_strategy.values().map(|c| c.runs).sum::<usize>(),
        400,
        "every run is counted under its member"
    );
}
