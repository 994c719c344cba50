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

mod merge {
    //! Issue 15 part 4: `explore --report json` and `gosim merge`.

    use std::collections::BTreeMap;

    use super::gosim;
    use gosim::runtime::{Portfolio, Strategy};
    use gosim::scenario::{ExploreSummary, SeedOutcome, summarize};
    use proptest::prelude::*;

    fn outcome(seed: u64, v: u8, kind: u8, loc: u8, strat: u8, some: u8) -> SeedOutcome {
        let verdict = ["pass", "fail", "fail", "limit"][v as usize % 4];
        let strategy = [
            Strategy::Random,
            Strategy::Pct { depth: 2, steps: 9 },
            Strategy::Cost { max: 1_000_000 },
            Strategy::Jitter { max: 5 },
        ][strat as usize % 4];
        let mut sometimes = BTreeMap::new();
        sometimes.insert(format!("s{}", some % 3), some.is_multiple_of(2));
        SeedOutcome {
            seed,
            strategy,
            verdict,
            kind: if verdict == "pass" {
                String::new()
            } else {
                format!("kind{}", kind % 2)
            },
            location: (verdict != "pass" && !loc.is_multiple_of(3))
                .then(|| format!("t.lua:{}", loc % 3)),
            message: format!("message of seed {seed}"),
            sometimes,
        }
    }

    proptest! {
        /// Summaries of disjoint shards merge into the summary of the whole, and the JSON form
        /// reads back to the same summary.
        #[test]
        fn merging_shards_equals_summarizing_the_whole(
            raw in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..80),
            shards in 1u64..6,
        ) {
            let all: Vec<SeedOutcome> = raw
                .iter()
                .enumerate()
                .map(|(i, &(v, k, l, s, m))| outcome(i as u64 * 3 + 1, v, k, l, s, m))
                .collect();
            let whole = summarize(&all);
            let parts: Vec<ExploreSummary> = (0..shards)
                .map(|k| {
                    let part: Vec<SeedOutcome> =
                        all.iter().filter(|o| o.seed % shards == k).cloned().collect();
                    summarize(&part)
                })
                .collect();
            let merged = ExploreSummary::merge(&parts);
            prop_assert_eq!(merged.to_json(), whole.to_json());
            let back = ExploreSummary::from_json(&whole.to_json()).expect("reads back");
            prop_assert_eq!(back.to_json(), whole.to_json());
        }
    }

    #[test]
    fn json_summaries_of_shards_merge_into_the_one_process_sweep() {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("merge");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let s = "scenarios/sleep_barrier_bug.lua";
        let json = |extra: &[&str]| -> serde_json::Value {
            let mut args = vec!["explore", s, "--seeds", "3..400", "--report", "json"];
            args.extend_from_slice(extra);
            let o = gosim(&args);
            assert_eq!(o.status.code(), Some(1), "the bug is found");
            serde_json::from_slice(&o.stdout).expect("one JSON object")
        };
        let whole = json(&[]);
        for key in ["runs", "passed", "failed", "limited"] {
            assert!(whole[key].is_u64(), "{key} is an integer: {whole}");
        }
        assert_eq!(whole["runs"], 398);
        let g = &whole["groups"][0];
        assert!(g["smallest_seed"].is_u64() && g["count"].is_u64(), "{g}");
        assert!(
            g["reproduce"].as_str().is_some_and(|r| r
                .starts_with("gosim run scenarios/sleep_barrier_bug.lua --seed ")
                && r.contains("--strategy cost:")),
            "{g}"
        );
        assert!(g["found_by"].as_object().is_some_and(|m| !m.is_empty()));
        assert!(
            whole["strategy"]
                .as_str()
                .and_then(|t| t.parse::<Strategy>().ok())
                .is_some_and(|t| matches!(t, Strategy::Portfolio(Portfolio { .. })))
        );
        let mut files = Vec::new();
        for k in 1..=4 {
            let part = json(&["--shard", &format!("{k}/4")]);
            let path = dir.join(format!("shard{k}.json"));
            std::fs::write(&path, part.to_string()).expect("write");
            files.push(path.to_str().expect("utf-8").to_string());
        }
        let mut args: Vec<&str> = vec!["merge"];
        args.extend(files.iter().map(String::as_str));
        args.extend(["--report", "json"]);
        let merged = gosim(&args);
        assert_eq!(merged.status.code(), Some(1));
        let merged: serde_json::Value = serde_json::from_slice(&merged.stdout).expect("JSON");
        assert_eq!(merged, whole, "the merge equals the one-process sweep");

        // Text: the same counts and reproduce line as the one-process text summary.
        let text = gosim(&args[..args.len() - 2]);
        let text = String::from_utf8_lossy(&text.stdout).to_string();
        assert!(text.starts_with("merged 4 summaries: 398 runs: "), "{text}");
        let repro = g["reproduce"].as_str().expect("a line");
        assert!(text.contains(&format!("reproduce: {repro}")), "{text}");

        // Not shards of one sweep, or not a summary: usage errors that say which file.
        let other = gosim(&[
            "explore",
            "scenarios/mutex.lua",
            "--runs",
            "4",
            "--report",
            "json",
        ]);
        let other_path = dir.join("other.json");
        std::fs::write(&other_path, &other.stdout).expect("write");
        let bad = gosim(&["merge", &files[0], other_path.to_str().expect("utf-8")]);
        assert_eq!(bad.status.code(), Some(2));
        let e = String::from_utf8_lossy(&bad.stderr);
        assert!(e.contains("scenario") && e.contains("other.json"), "{e}");
        let junk = dir.join("junk.json");
        std::fs::write(&junk, "{\"runs\": 1}").expect("write");
        let bad = gosim(&["merge", junk.to_str().expect("utf-8")]);
        assert_eq!(bad.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("junk.json"));
        assert_eq!(gosim(&["merge"]).status.code(), Some(2), "no file");
    }
}
