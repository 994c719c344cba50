//! The priority worker pool (seed 3.1): its laws across many seeds and generated workloads
//! (at most `workers` tasks run; each submitted task runs exactly once; a task starts only when
//! no queued task has a higher priority, FIFO among equals), wait/close semantics (Java's
//! `ThreadPoolExecutor` with a `PriorityBlockingQueue`: `shutdown` refuses new work and runs
//! what is queued; `awaitTermination`-like `wait` with a timeout), failures, misuse, one pool
//! shared by Lua and Rust, and a real run.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{PoolError, PriorityPool};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A task's submit instant and start instant.
type Times = (Duration, Option<Duration>);

#[derive(Default)]
struct Log {
    active: usize,
    peak: usize,
    runs: Vec<u32>,
    /// (task, prio, submit order) in start order.
    started: Vec<usize>,
}

/// The laws on one run: at most `workers` run; each task runs once; when a task starts at T, a
/// task queued before T that starts after T never outranks it (higher priority, or equal and
/// submitted first); wait returns only when all are done.
fn check_laws(workers: usize, tasks: &[(u64, i64, u64)], seed: u64) {
    let sim = Sim::with_seed(seed);
    let log = Rc::new(RefCell::new(Log {
        runs: vec![0; tasks.len()],
        ..Log::default()
    }));
    let (s, log2) = (sim.clone(), log.clone());
    let tasks = tasks.to_vec();
    let queued_at: Rc<RefCell<Vec<Times>>> =
        Rc::new(RefCell::new(vec![(Duration::ZERO, None); tasks.len()]));
    let q2 = queued_at.clone();
    let tasks2 = tasks.clone();
    let report = sim.run(async move {
        let (s2, log3, q3, t3) = (s.clone(), log2.clone(), q2.clone(), tasks2.clone());
        let pool: PriorityPool<usize> =
            PriorityPool::start(s.runtime(), &s, workers, move |i: usize| {
                let (s4, log4, q4, work) = (s2.clone(), log3.clone(), q3.clone(), t3[i].2);
                async move {
                    {
                        let mut l = log4.borrow_mut();
                        l.active += 1;
                        l.peak = l.peak.max(l.active);
                        l.runs[i] += 1;
                        l.started.push(i);
                        q4.borrow_mut()[i].1 = Some(s4.now());
                    }
                    s4.sleep(ms(work)).await;
                    log4.borrow_mut().active -= 1;
                    if i % 5 == 4 {
                        Err(format!("task {i}"))
                    } else {
                        Ok(())
                    }
                }
            });
        for (i, &(gap, prio, _)) in tasks2.iter().enumerate() {
            s.sleep(ms(gap)).await;
            q2.borrow_mut()[i].0 = s.now();
            pool.submit(i, prio).await.unwrap();
        }
        pool.wait(None).await.unwrap();
        let st = pool.stats();
        assert_eq!((st.active, st.queued), (0, 0));
        assert_eq!(st.completed + st.failed, tasks2.len() as u64);
        assert!(
            log2.borrow().runs.iter().all(|&r| r == 1),
            "all ran before wait returned"
        );
        pool.close();
        assert_eq!(pool.submit(99, 0).await, Err(PoolError::Closed));
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let l = log.borrow();
    assert!(l.peak <= workers, "seed {seed}: {} ran at once", l.peak);
    assert!(l.runs.iter().all(|&r| r == 1), "seed {seed}: {:?}", l.runs);
    // Priority order: if task b started after task a, and b was already submitted strictly
    // before a started, then a outranks b (higher priority, or equal and submitted first).
    let q = queued_at.borrow();
    for (ai, &a) in l.started.iter().enumerate() {
        for &b in &l.started[ai + 1..] {
            let (a_start, b_start) = (q[a].1.unwrap(), q[b].1.unwrap());
            // Tasks taken at one instant were taken together (in either start order).
            if q[b].0 < a_start && a_start < b_start {
                let (pa, pb) = (tasks[a].1, tasks[b].1);
                assert!(
                    pa > pb || (pa == pb && a < b),
                    "seed {seed}: task {a} (prio {pa}) started before queued task {b} (prio {pb})"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn at_most_workers_run_each_once_in_priority_order(
        workers in 1usize..4,
        tasks in prop::collection::vec((0u64..6, -2i64..3, 1u64..10), 1..20),
        seed in 0u64..1_000_000,
    ) {
        check_laws(workers, &tasks, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let tasks: Vec<(u64, i64, u64)> = (0..14)
        .map(|i| ((i % 3) as u64, (i * 7 % 4) as i64, (1 + i % 5) as u64))
        .collect();
    for seed in 0..1000 {
        check_laws(2, &tasks, seed);
    }
}

/// Highest priority first, FIFO among equals, default priority 0, negative priorities last;
/// wait with a timeout; close refuses new work but runs what is queued; failures are counted
/// and do not stop the workers.
#[test]
fn priority_order_wait_and_close() {
    common::expect_pass_on_seeds(
        r#"
local order = {}
local pool = goroutine.priority_worker_pool{workers = 1, fn = function(t)
  order[#order + 1] = t
  goroutine.sleep(10)
  if t == "b" then error("b failed") end
  if t == "c" then return nil, "c failed" end
end}
pool:submit("first", 0)               -- taken at once by the idle worker
goroutine.sleep(1)
pool:submit("low", -1)
pool:submit("a")                      -- default 0
pool:submit("hi1", 7)
pool:submit("b", 0)
pool:submit("hi2", 7)
pool:submit("c", 3)
local ok, err = pool:wait(5)
assert(ok == false and err == "timeout" and goroutine.now() == 6)
pool:close()                          -- refuses new work, queued tasks still run
ok, err = pool:submit("late", 100)
assert(ok == false and err == "closed")
assert(pool:wait())
assert(goroutine.now() == 70)
assert(table.concat(order, ",") == "first,hi1,hi2,c,a,b,low", table.concat(order, ","))
local s = pool:stats()
assert(s.completed == 5 and s.failed == 2 and s.workers == 1)
assert(pool:wait(0))                  -- idle: even a try succeeds
"#,
    );
}

#[test]
fn an_unclosed_pool_leaks_its_workers_not_a_cycle() {
    let r = common::run(
        r#"
local pool = goroutine.priority_worker_pool{workers = 2, fn = function() end}
pool:submit(1, 1)
pool:wait()
"#,
        1,
    );
    let text = r.outcome.to_string();
    assert!(
        text.contains("leak") && text.contains("priority_pool-worker"),
        "{text}"
    );
    assert!(!text.contains("cycle"), "{text}");
}

#[test]
fn lua_and_rust_share_one_pool() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let seen: Rc<RefCell<Vec<i64>>> = Rc::default();
    let (seen2, s2) = (seen.clone(), sim.clone());
    let pool: PriorityPool<LuaValue> =
        PriorityPool::start(sim.runtime(), &sim, 1, move |v: LuaValue| {
            let (seen3, s3) = (seen2.clone(), s2.clone());
            async move {
                if let mlua::Value::Integer(i) = v.0 {
                    seen3.borrow_mut().push(i);
                }
                s3.sleep(ms(5)).await;
                Ok(())
            }
        });
    world.expose("pool", pool.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
pool:submit(1, 0)
goroutine.sleep(1)
pool:submit(2, 1)
pool:submit(3, 9)
assert(pool:wait())
pool:close()
"#,
        )
        .unwrap();
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(*seen.borrow(), vec![1, 3, 2]);
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    check_all(&[
        m(
            "",
            "goroutine.priority_worker_pool(3)",
            "goroutine.priority_worker_pool",
            "options must be a table (got 3)",
        ),
        m(
            "",
            "goroutine.priority_worker_pool{workers = 2}",
            "goroutine.priority_worker_pool",
            "fn must be a function (got nil)",
        ),
        m(
            "",
            "goroutine.priority_worker_pool{workers = 0, fn = print}",
            "goroutine.priority_worker_pool",
            "workers must be a positive integer (got 0)",
        ),
    ]);
    // Methods: the workers exist, so these are checked caught, by message.
    let r = common::run(
        r#"
local p = goroutine.priority_worker_pool{workers = 1, fn = function() end}
local function msg(f) local ok, e = pcall(f) assert(not ok) log.info(e) end
msg(function() p:submit(nil, 1) end)
msg(function() p:submit(1, "high") end)
msg(function() p:wait("x") end)
msg(function() p.close() end)
assert(p:submit(1, 2))
assert(p:wait())
p:close()
"#,
        1,
    );
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    let logs = common::logs(&r);
    let want = [
        "t.lua:4: priority_worker_pool:submit: task must not be nil",
        "t.lua:5: priority_worker_pool:submit: priority must be an integer (got \"high\")",
        "t.lua:6: priority_worker_pool:wait: duration must be a number of milliseconds (got \"x\")",
        "t.lua:7: priority_worker_pool:close: expects a priority_worker_pool",
    ];
    assert_eq!(logs.len(), 4, "{logs:?}");
    for (got, want) in logs.iter().zip(want) {
        assert!(got.starts_with(want), "{got:?} vs {want:?}");
    }
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local order = {}
local pool = goroutine.priority_worker_pool{workers = 1, fn = function(t)
  order[#order + 1] = t
  goroutine.sleep(5)
end}
pool:submit("x", 0)
goroutine.sleep(1)
pool:submit("lo", 1)
pool:submit("hi", 2)
assert(pool:wait(2000))
pool:close()
assert(table.concat(order, ",") == "x,hi,lo", table.concat(order, ","))
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
