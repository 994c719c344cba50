//! Bounded parallelism (seed 7.1): its laws across many seeds and generated workloads, the
//! behaviour of its reference (golang.org/x/sync errgroup's `errgroup_test.go`: TestGoLimit —
//! never more than the limit run at once —, TestZeroGroup/TestWithContext — Wait returns the
//! errors —, `SetLimit` makes Go block until a goroutine ends), queue_size at exact instants,
//! submit and wait_all timeouts, misuse, one group shared by Lua and Rust, and a real run.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{BoundedJob, BoundedParallel};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Default)]
struct Log {
    active: usize,
    peak: usize,
    runs: Vec<u32>,
    last_end: Duration,
    /// Submits returned while the queue held more than queue_size.
    over: bool,
}

/// The laws on one run: active ≤ max_parallel; every submitted function runs exactly once;
/// wait_all returns the failures (and only then), after every function ended; the queue never
/// holds more than queue_size; nothing runs or is queued after wait_all.
fn check_laws(max: usize, queue: usize, works: &[(u64, bool)], submitters: usize, seed: u64) {
    let sim = Sim::with_seed(seed);
    let log = Rc::new(RefCell::new(Log {
        runs: vec![0; works.len() * submitters],
        ..Log::default()
    }));
    let (s, log2) = (sim.clone(), log.clone());
    let works = works.to_vec();
    let report = sim.run(async move {
        let b: BoundedParallel<BoundedJob> = BoundedParallel::new(s.runtime(), max, queue, None);
        let mut hs = Vec::new();
        for p in 0..submitters {
            let (s2, b2, log3, works2) = (s.clone(), b.clone(), log2.clone(), works.clone());
            hs.push(s.go(async move {
                for (k, &(work, fail)) in works2.iter().enumerate() {
                    let id = p * works2.len() + k;
                    let (s3, log4) = (s2.clone(), log3.clone());
                    b2.submit(
                        &s2,
                        async move {
                            {
                                let mut l = log4.borrow_mut();
                                l.active += 1;
                                l.peak = l.peak.max(l.active);
                                l.runs[id] += 1;
                            }
                            s3.sleep(ms(work)).await;
                            let mut l = log4.borrow_mut();
                            l.active -= 1;
                            l.last_end = l.last_end.max(s3.now());
                            if fail {
                                Err(format!("job {id}"))
                            } else {
                                Ok(())
                            }
                        },
                        None,
                    )
                    .await
                    .unwrap();
                    if b2.stats().queued > queue {
                        log3.borrow_mut().over = true;
                    }
                }
            }));
        }
        s.join_all(&hs).await;
        let errors = b.wait_all(None).await.unwrap();
        let st = b.stats();
        assert_eq!(
            (st.active, st.queued),
            (0, 0),
            "nothing left after wait_all"
        );
        assert!(
            log2.borrow().last_end <= s.now(),
            "every function ended before wait_all"
        );
        let expected = works.iter().filter(|w| w.1).count() * submitters;
        assert_eq!(errors.len(), expected, "every failure reported once");
        assert_eq!(st.failed as usize, expected);
        assert!(
            b.wait_all(None).await.unwrap().is_empty(),
            "errors are handed once"
        );
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let l = log.borrow();
    assert!(
        l.peak <= max,
        "seed {seed}: {} ran at once (max {max})",
        l.peak
    );
    assert!(l.runs.iter().all(|&r| r == 1), "seed {seed}: {:?}", l.runs);
    assert!(!l.over, "seed {seed}: the queue held more than queue_size");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn active_never_exceeds_the_limit_and_each_runs_once(
        max in 1usize..5,
        queue in 0usize..5,
        works in prop::collection::vec((0u64..10, prop::bool::weighted(0.2)), 1..15),
        submitters in 1usize..4,
        seed in 0u64..1_000_000,
    ) {
        check_laws(max, queue, &works, submitters, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let works: Vec<(u64, bool)> = (0..10).map(|i| ((i * 3) % 5, i % 4 == 3)).collect();
    for seed in 0..1000 {
        check_laws(3, (seed % 3) as usize, &works, 2, seed);
    }
}

/// errgroup's `SetLimit`: with queue_size = 0 a submit blocks until a running function ends,
/// exactly then; with a queue, submits return at once until it is full; blocked submits go in
/// FIFO; a submit's timeout gives up (its function never runs); wait_all with a timeout.
#[test]
fn submit_blocks_exactly_until_room() {
    common::expect_pass_on_seeds(
        r#"
local b = goroutine.bounded_parallel{max_parallel = 2, queue_size = 0}
local order = {}
for i = 1, 2 do b:submit(function() goroutine.sleep(10 * i) order[#order + 1] = i end) end
assert(b:submit(function() goroutine.sleep(20) order[#order + 1] = 3 end))   -- blocks until t=10
assert(goroutine.now() == 10)
local ok, err = b:submit(function() order[#order + 1] = "never" end, 0)
assert(ok == false and err == "timeout")                 -- a try: both slots busy
goroutine.sleep(1)
ok, err = b:submit(function() order[#order + 1] = "never" end, 5)
assert(ok == false and err == "timeout" and goroutine.now() == 16)
local errs, e2 = b:wait_all(1)
assert(errs == nil and e2 == "timeout")
errs = b:wait_all()
assert(#errs == 0 and goroutine.now() == 30)
assert(table.concat(order, ",") == "1,2,3", table.concat(order, ","))

local q = goroutine.bounded_parallel{max_parallel = 1, queue_size = 2}
local got, t0 = {}, goroutine.now()
q:submit(function() goroutine.sleep(10) got[#got + 1] = "a" end)
q:submit(function() got[#got + 1] = "b" end)
q:submit(function() got[#got + 1] = "c" end)
assert(goroutine.now() == t0 and q:stats().queued == 2)   -- all at once: running + 2 queued
goroutine.spawn(function() q:submit(function() got[#got + 1] = "d" end) end)
goroutine.sleep(1)
goroutine.spawn(function() q:submit(function() got[#got + 1] = "e" end) end)
goroutine.sleep(1)
q:wait_all()
assert(table.concat(got) == "abcde", table.concat(got))
"#,
    );
}

/// errgroup's Wait returns the errors: raising or returning `nil, err` fails a function; the
/// list is in the order they ended and is handed out once; the group is reusable.
#[test]
fn wait_all_returns_the_errors_once() {
    common::expect_pass_on_seeds(
        r#"
local b = goroutine.bounded_parallel{max_parallel = 4, queue_size = 10}
assert(#b:wait_all() == 0)                       -- nothing submitted: at once
b:submit(function() goroutine.sleep(2) error("raised") end)
b:submit(function() goroutine.sleep(1) return nil, "returned" end)
b:submit(function() return nil end)
local errs = b:wait_all()
assert(#errs == 2 and errs[1] == "returned" and errs[2]:find("raised"), errs[1])
assert(#b:wait_all() == 0)
b:submit(function() error({code = 1}) end)
errs = b:wait_all()
assert(#errs == 1 and errs[1]:find("code=1"))
local s = b:stats()
assert(s.completed == 1 and s.failed == 3)
"#,
    );
}

#[test]
fn a_never_ending_function_is_a_deadlock_not_a_false_cycle() {
    let r = common::run(
        r#"
local b = goroutine.bounded_parallel{max_parallel = 1}
local ch = goroutine.channel()
b:submit(function() ch:receive() end)
b:wait_all()
"#,
        1,
    );
    let text = r.outcome.to_string();
    assert!(!r.outcome.is_pass());
    assert!(text.contains("bounded_parallel"), "{text}");
    assert!(!text.contains("cycle"), "{text}");
}

/// A group made in Rust, handed to Lua: Lua submits its functions, a Rust task waits for them
/// on the same group and gets their errors.
#[test]
fn lua_and_rust_share_one_group() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let b: BoundedParallel<LuaValue> = BoundedParallel::new(sim.runtime(), 2, 1, None);
    world.expose("b", b.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
for i = 1, 5 do
  b:submit(function() goroutine.sleep(5) if i == 3 then error("three") end end)
end
"#,
        )
        .unwrap();
    let (b2, s2) = (b.clone(), sim.clone());
    let seen = Rc::new(RefCell::new(None));
    let seen2 = seen.clone();
    sim.spawn("rust", async move {
        s2.sleep(ms(1)).await;
        let errors = b2.wait_all(None).await.unwrap();
        *seen2.borrow_mut() = Some((errors, s2.now()));
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    let (errors, at) = seen.borrow_mut().take().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("three"), "{errors:?}");
    assert_eq!(at, ms(15));
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const S: &str = "local b = goroutine.bounded_parallel{max_parallel = 2}";
    check_all(&[
        m(
            "",
            "goroutine.bounded_parallel(3)",
            "goroutine.bounded_parallel",
            "options must be a table (got 3)",
        ),
        m(
            "",
            "goroutine.bounded_parallel{max_parallel = 0}",
            "goroutine.bounded_parallel",
            "max_parallel must be a positive integer (got 0)",
        ),
        m(
            "",
            "goroutine.bounded_parallel{queue_size = -1}",
            "goroutine.bounded_parallel",
            "queue_size must be a non-negative integer (got -1)",
        ),
        m(
            S,
            "b:submit(42)",
            "bounded_parallel:submit",
            "expects a function (got 42)",
        ),
        m(
            S,
            "b:submit(print, 'x')",
            "bounded_parallel:submit",
            "(got \"x\")",
        ),
        m(
            S,
            "b:wait_all('x')",
            "bounded_parallel:wait_all",
            "(got \"x\")",
        ),
        m(
            S,
            "b.wait_all()",
            "bounded_parallel:wait_all",
            "expects a bounded_parallel",
        ),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local b = goroutine.bounded_parallel{max_parallel = 2, queue_size = 2}
local running, peak = 0, 0
for i = 1, 6 do
  b:submit(function()
    running = running + 1
    if running > peak then peak = running end
    goroutine.sleep(10)
    running = running - 1
  end)
end
assert(#b:wait_all(2000) == 0 and peak == 2)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
