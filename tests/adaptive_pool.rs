//! The adaptive worker pool (seed 7.3): its laws across many seeds and generated workloads
//! (min ≤ workers ≤ max; the count changes only at checks, at creation + k·check_interval; no
//! task lost, run twice or interrupted), the Java `ThreadPoolExecutor` trap avoided (with an
//! unbounded queue Java never grows past its core size; here queued tasks count as demand and
//! max is reached), scaling ticks at exact instants, an idle pool keeping no timer (the run ends,
//! a stuck pool is still a deadlock), misuse, one pool shared by Lua and Rust, and a real run.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{AdaptiveJob, AdaptiveOptions, AdaptivePool};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Default)]
struct Log {
    runs: Vec<u32>,
    finished: Vec<u32>,
    /// (instant, workers) observed at every task start and end.
    seen: Vec<(Duration, usize)>,
    busy: usize,
    peak_busy: usize,
}

/// The laws on one run (see the header), with `tasks` = (submit gap, work) in ms.
fn check_laws(opts: AdaptiveOptions, tasks: &[(u64, u64)], seed: u64) {
    let sim = Sim::with_seed(seed);
    let log = Rc::new(RefCell::new(Log {
        runs: vec![0; tasks.len()],
        finished: vec![0; tasks.len()],
        ..Log::default()
    }));
    let (s, log2) = (sim.clone(), log.clone());
    let tasks = tasks.to_vec();
    let report = sim.run(async move {
        let pool: AdaptivePool<AdaptiveJob> = AdaptivePool::new(s.runtime(), opts, None);
        pool.process(s.clone()).unwrap();
        for (i, &(gap, work)) in tasks.iter().enumerate() {
            s.sleep(ms(gap)).await;
            let (s2, log3, p2) = (s.clone(), log2.clone(), pool.clone());
            pool.submit(Box::pin(async move {
                {
                    let mut l = log3.borrow_mut();
                    l.runs[i] += 1;
                    l.busy += 1;
                    l.peak_busy = l.peak_busy.max(l.busy);
                    l.seen.push((s2.now(), p2.stats().workers));
                }
                s2.sleep(ms(work)).await;
                let mut l = log3.borrow_mut();
                l.busy -= 1;
                l.finished[i] += 1;
                l.seen.push((s2.now(), p2.stats().workers));
                if i % 6 == 5 {
                    Err("failed".to_string())
                } else {
                    Ok(())
                }
            }))
            .unwrap();
        }
        pool.wait(None).await.unwrap();
        let st = pool.stats();
        assert_eq!(st.completed + st.failed, tasks.len() as u64, "no task lost");
        assert!(st.workers >= opts.min_workers && st.workers <= opts.max_workers);
        pool.close();
        assert!(pool.submit(Box::pin(async { Ok(()) })).is_err());
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let l = log.borrow();
    assert!(
        l.runs.iter().all(|&r| r == 1),
        "seed {seed}: run once: {:?}",
        l.runs
    );
    assert!(
        l.finished.iter().all(|&r| r == 1),
        "seed {seed}: never interrupted"
    );
    assert!(l.peak_busy <= opts.max_workers);
    for &(_, w) in &l.seen {
        assert!(
            w >= opts.min_workers && w <= opts.max_workers,
            "seed {seed}: {w} workers"
        );
    }
    let every = opts.check_interval.as_nanos() as u64;
    let mut last = opts.min_workers as i64;
    for e in report
        .events
        .iter()
        .filter(|e| e.verb == "scale-up" || e.verb == "scale-down")
    {
        assert_eq!(e.time % every, 0, "seed {seed}: a change between checks");
        let now: i64 = e
            .detail()
            .as_deref()
            .and_then(|d| d.rsplit("workers=").next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!((now - last).abs(), 1, "seed {seed}: one worker per check");
        assert!(now >= opts.min_workers as i64 && now <= opts.max_workers as i64);
        last = now;
    }
}

fn opts(min: usize, max: usize, up: f64, down: f64, every: u64) -> AdaptiveOptions {
    AdaptiveOptions {
        min_workers: min,
        max_workers: max,
        scale_up_threshold: up,
        scale_down_threshold: down,
        check_interval: ms(every),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn workers_stay_in_bounds_and_change_only_at_checks(
        min in 1usize..3,
        extra in 0usize..4,
        up in 0.5f64..1.5,
        down in 0.0f64..0.5,
        every in 1u64..20,
        tasks in prop::collection::vec((0u64..8, 1u64..30), 1..25),
        seed in 0u64..1_000_000,
    ) {
        check_laws(opts(min, min + extra, up, down, every), &tasks, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let tasks: Vec<(u64, u64)> = (0..20)
        .map(|i| ((i % 4) as u64, (5 + i * 7 % 20) as u64))
        .collect();
    for seed in 0..1000 {
        check_laws(opts(1, 4, 0.8, 0.2, 10), &tasks, seed);
    }
}

/// Java's trap avoided and ticks at exact instants: with an unbounded queue of waiting tasks
/// the pool grows one worker per check, at exactly creation + k·interval, up to max; it
/// shrinks one idle worker per check down to min; at a utilisation exactly equal to a threshold
/// nothing changes (strict comparisons); a busy worker is never retired.
#[test]
fn scaling_ticks_at_exact_instants() {
    common::expect_pass_on_seeds(
        r#"
goroutine.sleep(3)                                   -- the pool is created at t=3
local p = goroutine.adaptive_pool{min_workers = 1, max_workers = 3, scale_up_threshold = 1,
  scale_down_threshold = 0.5, check_interval = 10}
local seen = {}
p:process(function(t) goroutine.sleep(t) end)
for i = 1, 6 do p:submit(25) end                     -- 1 busy + 5 queued: utilisation 6
goroutine.sleep(9)                                   -- t=12: before the first check
assert(p:stats().workers == 1)
goroutine.sleep(1)                                   -- t=13: the first check, exactly
goroutine.yield()
assert(p:stats().workers == 2, p:stats().workers)
goroutine.sleep(10)                                  -- t=23: second check
goroutine.yield()
assert(p:stats().workers == 3)
goroutine.sleep(10)                                  -- t=33: at max, no more
assert(p:stats().workers == 3)
assert(p:wait())
local s = p:stats()
assert(s.completed == 6 and s.workers <= 3)
goroutine.sleep(100)
assert(p:stats().workers == 1)                       -- idle: shrunk to min, one per check
p:close()

-- Utilisation exactly at the threshold changes nothing: 2 busy on 2 workers = 1.0, up > 1.0.
local q = goroutine.adaptive_pool{min_workers = 2, max_workers = 4, scale_up_threshold = 1,
  scale_down_threshold = 0, check_interval = 10}
q:process(function(t) goroutine.sleep(t) end)
q:submit(50) q:submit(50)
goroutine.sleep(45)
assert(q:stats().workers == 2)
q:wait()
q:close()
"#,
    );
}

/// The ticker is a timer callback armed only while a check could change something: an idle
/// pool at min keeps no timer (the run ends when main returns, after close), and workers
/// stuck forever are an ordinary deadlock report (never a cycle), not hidden by ticks.
#[test]
fn an_idle_or_stuck_pool_keeps_no_timer() {
    let r = common::run(
        r#"
local p = goroutine.adaptive_pool{min_workers = 1, max_workers = 2, check_interval = 10}
p:process(function(t) end)
p:submit(1)
p:wait()
p:close()
"#,
        1,
    );
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    assert!(
        r.stats.end_time <= std::time::Duration::from_millis(10),
        "no tick after the work: {:?}",
        r.stats
    );
    let r = common::run(
        r#"
local p = goroutine.adaptive_pool{min_workers = 1, max_workers = 2, check_interval = 10}
local ch = goroutine.channel()
p:process(function(t) ch:receive() end)
p:submit(1) p:submit(2) p:submit(3)
p:wait()
"#,
        1,
    );
    let text = r.outcome.to_string();
    assert!(!r.outcome.is_pass(), "{text}");
    assert!(!text.contains("cycle"), "{text}");
}

/// A failing task is counted and the worker goes on; submit after close is refused; process
/// twice is misuse.
#[test]
fn failures_close_and_stats() {
    common::expect_pass_on_seeds(
        r#"
local p = goroutine.adaptive_pool{min_workers = 2, max_workers = 2, check_interval = 100}
p:process(function(t)
  if t == "raise" then error("bad") end
  if t == "soft" then return nil, "soft" end
end)
for _, t in ipairs{"ok", "raise", "soft", "ok"} do assert(p:submit(t)) end
assert(p:wait())
local s = p:stats()
assert(s.completed == 2 and s.failed == 2 and s.busy == 0 and s.queued == 0)
p:close()
local ok, err = p:submit("late")
assert(ok == false and err == "closed")
local ok2, e2 = pcall(p.process, p, print)
assert(not ok2 and e2:find("adaptive_pool:process: process was already called"), e2)
"#,
    );
}

#[test]
fn lua_and_rust_share_one_pool() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let pool: AdaptivePool<LuaValue> =
        AdaptivePool::new(sim.runtime(), opts(1, 3, 0.8, 0.2, 10), None);
    world.expose("pool", pool.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
local n = 0
pool:process(function(t) goroutine.sleep(t) n = n + 1 end)
for i = 1, 8 do pool:submit(15) end
assert(pool:wait())
assert(n == 8)
pool:close()
"#,
        )
        .unwrap();
    let (p2, s2) = (pool.clone(), sim.clone());
    let peak = Rc::new(RefCell::new(0));
    let peak2 = peak.clone();
    sim.spawn("rust", async move {
        for _ in 0..6 {
            s2.sleep(ms(10)).await;
            let w = p2.stats().workers;
            let mut pk = peak2.borrow_mut();
            *pk = (*pk).max(w);
        }
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(
        *peak.borrow(),
        3,
        "Rust sees the Lua-driven pool grow to max"
    );
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const S: &str = "local p = goroutine.adaptive_pool{min_workers = 1}";
    check_all(&[
        m(
            "",
            "goroutine.adaptive_pool(3)",
            "goroutine.adaptive_pool",
            "options must be a table (got 3)",
        ),
        m(
            "",
            "goroutine.adaptive_pool{min_workers = 0}",
            "goroutine.adaptive_pool",
            "min_workers must be a positive integer (got 0)",
        ),
        m(
            "",
            "goroutine.adaptive_pool{min_workers = 5, max_workers = 2}",
            "goroutine.adaptive_pool",
            "max_workers (2) must be at least min_workers (5)",
        ),
        m(
            "",
            "goroutine.adaptive_pool{scale_up_threshold = -1}",
            "goroutine.adaptive_pool",
            "scale_up_threshold must be a non-negative number (got -1)",
        ),
        m(
            "",
            "goroutine.adaptive_pool{scale_up_threshold = 0.1, scale_down_threshold = 0.5}",
            "goroutine.adaptive_pool",
            "must not exceed scale_up_threshold",
        ),
        m(
            "",
            "goroutine.adaptive_pool{check_interval = 0}",
            "goroutine.adaptive_pool",
            "check_interval must be a positive number of milliseconds (got 0)",
        ),
        m(
            S,
            "p:process(42)",
            "adaptive_pool:process",
            "expects a function (got 42)",
        ),
        m(
            S,
            "p:submit(nil)",
            "adaptive_pool:submit",
            "task must not be nil",
        ),
        m(S, "p:wait('x')", "adaptive_pool:wait", "(got \"x\")"),
        m(
            S,
            "p.stats()",
            "adaptive_pool:stats",
            "expects an adaptive_pool",
        ),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local p = goroutine.adaptive_pool{min_workers = 1, max_workers = 3, check_interval = 10}
local n = 0
p:process(function(t) goroutine.sleep(t) n = n + 1 end)
for i = 1, 6 do p:submit(10) end
assert(p:wait(3000))
assert(n == 6)
p:close()
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
