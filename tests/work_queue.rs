//! The work queue with retries and a dead-letter queue (seed 4.3): its laws across many seeds
//! and generated workloads, the behaviour of its references (kubernetes client-go's workqueue:
//! an item is never processed by two workers at once, `ShutDownWithDrain` waits for in-flight
//! work; SQS redrive: after maxReceiveCount failures the message moves to the DLQ with its
//! receive count), cenkalti/backoff#80 (zero retries still calls once), exact instants of the
//! retry delays, misuse, one queue shared by Lua and Rust, and a real run.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{DeadLetter, WorkQueue, WorkQueueOptions, retry_delay};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m, ma};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One generated job: enqueued at `start` ms, fails its first `fails` attempts, each attempt
/// takes `work` ms.
#[derive(Debug, Clone)]
struct JobSpec {
    start: u64,
    fails: u32,
    work: u64,
}

fn job_spec() -> impl Strategy<Value = JobSpec> {
    (0u64..30, 0u32..6, 0u64..8).prop_map(|(start, fails, work)| JobSpec { start, fails, work })
}

#[derive(Default)]
struct Log {
    /// Per job: the instants its attempts started.
    attempts: BTreeMap<usize, Vec<Duration>>,
    /// Per job: the instants its failed attempts ended.
    failures: BTreeMap<usize, Vec<Duration>>,
    in_flight: BTreeSet<usize>,
    succeeded: Vec<usize>,
}

/// The laws on one run: every job ends exactly once (processed, dead-lettered or dropped);
/// attempts <= max_retries + 1; a job is never in two workers at once; a retry starts no sooner
/// than its delay after the failure; the counters add up; the DLQ closes once drained.
fn check_laws(opts: WorkQueueOptions, jobs: &[JobSpec], seed: u64) {
    let sim = Sim::with_seed(seed);
    let q: WorkQueue<usize> = WorkQueue::new(sim.runtime(), opts, None);
    let log = Rc::new(RefCell::new(Log::default()));
    let dead: Rc<RefCell<Vec<DeadLetter<usize>>>> = Rc::default();
    let s = sim.clone();
    let (q2, log2, dead2, jobs2) = (q.clone(), log.clone(), dead.clone(), jobs.to_vec());
    let report = sim.run(async move {
        let (s3, log3, specs) = (s.clone(), log2.clone(), jobs2.clone());
        q2.process(&s, move |i: usize| {
            let (s4, log4, spec) = (s3.clone(), log3.clone(), specs[i].clone());
            async move {
                let n = {
                    let mut l = log4.borrow_mut();
                    assert!(l.in_flight.insert(i), "job {i} in two workers at once");
                    let a = l.attempts.entry(i).or_default();
                    a.push(s4.now());
                    a.len() as u32
                };
                s4.sleep(ms(spec.work)).await;
                let mut l = log4.borrow_mut();
                l.in_flight.remove(&i);
                if n <= spec.fails {
                    l.failures.entry(i).or_default().push(s4.now());
                    Err(format!("job {i} failed"))
                } else {
                    l.succeeded.push(i);
                    Ok(())
                }
            }
        })
        .unwrap();
        let dlq = q2.dead_letter_queue();
        let (d3, s5) = (dead2.clone(), s.clone());
        let reader = s.go(async move {
            while let Some(d) = dlq.recv().await {
                d3.borrow_mut().push(d);
            }
            s5.now()
        });
        let mut order: Vec<(u64, usize)> = jobs2
            .iter()
            .enumerate()
            .map(|(i, j)| (j.start, i))
            .collect();
        order.sort();
        for (start, i) in order {
            let now = s.now();
            if ms(start) > now {
                s.sleep(ms(start) - now).await;
            }
            q2.enqueue(i).unwrap();
        }
        q2.close();
        assert!(q2.enqueue(99).is_err(), "intake stopped");
        q2.wait(None).await.unwrap();
        assert!(q2.is_empty());
        let _closed_at = reader.join().await.unwrap();
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let l = log.borrow();
    let dead = dead.borrow();
    let st = q.stats();
    let mut ended: BTreeMap<usize, u32> = BTreeMap::new();
    for &i in &l.succeeded {
        *ended.entry(i).or_default() += 1;
    }
    for d in dead.iter() {
        *ended.entry(d.item).or_default() += 1;
        assert_eq!(
            d.attempts,
            opts.max_retries + 1,
            "dead after max_retries + 1 attempts"
        );
        assert_eq!(d.error, format!("job {} failed", d.item));
    }
    for (i, spec) in jobs.iter().enumerate() {
        let attempts = l.attempts.get(&i).map_or(0, |a| a.len()) as u32;
        assert!(attempts >= 1, "seed {seed}: job {i} was never attempted");
        assert!(
            attempts <= opts.max_retries + 1,
            "seed {seed}: job {i}: {attempts} attempts"
        );
        let expect_dead = spec.fails > opts.max_retries;
        let ends = ended.get(&i).copied().unwrap_or(0);
        if expect_dead && !opts.dlq_enabled {
            assert_eq!(
                ends, 0,
                "seed {seed}: a dropped job is neither processed nor dead"
            );
        } else {
            assert_eq!(ends, 1, "seed {seed}: job {i} ended {ends} times");
        }
        // Retry k starts no sooner than its delay after failure k.
        let (a, f) = (
            &l.attempts[&i],
            l.failures.get(&i).cloned().unwrap_or_default(),
        );
        for k in 1..a.len() {
            let d = retry_delay(&opts, k as u32);
            assert!(
                a[k] >= f[k - 1] + d,
                "seed {seed}: job {i} retry {k} too early"
            );
        }
    }
    let n = jobs.len() as u64;
    assert_eq!(
        st.processed + st.dead_lettered + st.dropped,
        n,
        "every job ends once"
    );
    assert_eq!(st.processed, l.succeeded.len() as u64);
    assert_eq!(st.dead_lettered, dead.len() as u64);
    let failed_calls: u64 = l.failures.values().map(|v| v.len() as u64).sum();
    assert_eq!(st.failed, failed_calls);
    assert_eq!(st.retried, st.failed - st.dead_lettered - st.dropped);
}

fn opts(
    workers: usize,
    max_retries: u32,
    dlq: bool,
    delay: u64,
    max_delay: u64,
) -> WorkQueueOptions {
    WorkQueueOptions {
        workers,
        max_retries,
        dlq_enabled: dlq,
        retry_delay: ms(delay),
        max_delay: ms(max_delay),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn every_job_ends_exactly_once(
        workers in 1usize..5,
        max_retries in 0u32..4,
        dlq in any::<bool>(),
        delay in 0u64..20,
        max_delay in 0u64..50,
        jobs in prop::collection::vec(job_spec(), 1..14),
        seed in 0u64..1_000_000,
    ) {
        check_laws(opts(workers, max_retries, dlq, delay, max_delay), &jobs, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let jobs: Vec<JobSpec> = (0..10)
        .map(|i| JobSpec {
            start: (i * 3) % 7,
            fails: (i as u32 * 2) % 6,
            work: (i * 5) % 4,
        })
        .collect();
    for seed in 0..1000 {
        check_laws(opts(3, 2, seed % 2 == 0, 5, 12), &jobs, seed);
    }
}

#[test]
fn retry_delays_double_up_to_the_cap_without_overflow() {
    let o = opts(1, 100, true, 100, 10_000);
    let got: Vec<u64> = (1..=9)
        .map(|k| retry_delay(&o, k).as_millis() as u64)
        .collect();
    assert_eq!(
        got,
        vec![100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
    );
    assert_eq!(
        retry_delay(&o, 200),
        ms(10_000),
        "no overflow at huge attempts"
    );
    assert_eq!(retry_delay(&o, u32::MAX), ms(10_000));
    let big = WorkQueueOptions {
        retry_delay: Duration::from_secs(u64::MAX / 4),
        max_delay: Duration::MAX,
        ..o
    };
    assert!(
        retry_delay(&big, 70) >= retry_delay(&big, 2),
        "saturates, never wraps"
    );
}

/// Exact instants: with idle workers, retry k starts exactly `delay_k` after failure k; zero
/// retries still make one attempt (cenkalti/backoff#80); a job in its delay is held by nobody.
#[test]
fn retries_start_exactly_at_their_delay() {
    common::expect_pass_on_seeds(
        r#"
local q = goroutine.work_queue{workers = 2, max_retries = 3, retry_delay = 10, max_delay = 25}
local at = {}
q:process(function(item)
  at[#at + 1] = goroutine.now()
  error("always")
end)
q:enqueue("x")
q:close()
assert(q:wait())
-- attempts at 0, 10, 30 (10 + 20), 55 (30 + 25: capped)
assert(#at == 4 and at[1] == 0 and at[2] == 10 and at[3] == 30 and at[4] == 55,
  table.concat(at, ","))
local d = q:dead_letter_queue():receive()
assert(d.item == "x" and d.attempts == 4 and d.error:find("always"))
local s = q:stats()
assert(s.failed == 4 and s.retried == 3 and s.dead_lettered == 1 and s.processed == 0)

-- cenkalti/backoff#80: zero retries still call once.
local q0 = goroutine.work_queue{max_retries = 0, dlq_enabled = false}
local calls = 0
q0:process(function() calls = calls + 1 return nil, "no" end)
q0:enqueue(1)
q0:close()
q0:wait()
assert(calls == 1 and q0:stats().dropped == 1 and q0:stats().retried == 0)
local v, ok = q0:dead_letter_queue():receive()
assert(v == nil and ok == false)            -- off: the DLQ only closes
"#,
    );
}

/// client-go's `ShutDownWithDrain`: `wait` returns only once in-flight work has ended; close
/// refuses later items, yet retries of jobs already in flight go on; the DLQ closes once drained.
#[test]
fn close_stops_intake_but_drains_retries() {
    common::expect_pass_on_seeds(
        r#"
local q = goroutine.work_queue{workers = 1, max_retries = 1, retry_delay = 50}
local tries = 0
q:process(function(item)
  goroutine.sleep(5)
  tries = tries + 1
  if tries == 1 then return nil, "first try fails" end
  return "ok"
end)
q:enqueue("a")
goroutine.sleep(1)
q:close()
local ok, err = q:enqueue("b")
assert(ok == false and err == "closed")
assert(q:len() == 1)
local ok2, e2 = q:wait(10)
assert(ok2 == false and e2 == "timeout")    -- still waiting for the retry at t=55
assert(q:wait())
assert(goroutine.now() == 60 and tries == 2, goroutine.now())
local _, open = q:dead_letter_queue():receive()
assert(open == false)
"#,
    );
}

/// A raise, a `nil, err` return and a table error all count as failures; a plain `nil` return
/// is a success; items are any non-nil values.
#[test]
fn what_counts_as_a_failure() {
    common::expect_pass_on_seeds(
        r#"
local q = goroutine.work_queue{workers = 2, max_retries = 0}
q:process(function(item)
  if item == "raise" then error("raised") end
  if item == "table" then error({code = 7}) end
  if item == "nil-err" then return nil, "soft" end
  if item == "nil" then return nil end
end)
for _, v in ipairs{"raise", "table", "nil-err", "nil", "ok"} do q:enqueue(v) end
q:close()
q:wait()
local errs = {}
q:dead_letter_queue():range(function(d) errs[d.item] = d.error end)
assert(errs.raise:find("raised") and errs["nil-err"] == "soft", errs.raise)
assert(errs.table:find("code=7"), errs.table)
assert(errs["nil"] == nil and errs.ok == nil)
assert(q:stats().processed == 2 and q:stats().dead_lettered == 3)
"#,
    );
}

/// Workers left waiting (no close) are an ordinary deadlock/leak report naming the queue's
/// channel, never a wait-for cycle.
#[test]
fn workers_without_close_are_reported_not_a_cycle() {
    let r = common::run(
        r#"
local q = goroutine.work_queue{workers = 2}
q:process(function() end)
q:enqueue(1)
q:wait()
"#,
        1,
    );
    let text = r.outcome.to_string();
    assert!(!text.contains("cycle"), "{text}");
}

#[test]
fn lua_and_rust_share_one_queue() {
    use gosim::lua::LuaValue;
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let q: WorkQueue<LuaValue, LuaValue> =
        WorkQueue::with_dead_letters(sim.runtime(), opts(2, 1, true, 5, 5), None, |d| d.item);
    world.expose("q", q.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
for i = 1, 6 do assert(q:enqueue(i)) end
q:close()
assert(q:wait())
local s = q:stats()
assert(s.processed == 5 and s.dead_lettered == 1 and s.failed == 2 and s.retried == 1)
assert(q:dead_letter_queue():receive() == 3)
"#,
        )
        .unwrap();
    q.process(&sim, |v: LuaValue| async move {
        match v.0 {
            mlua::Value::Integer(3) => Err("three".to_string()),
            _ => Ok(()),
        }
    })
    .unwrap();
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const S: &str = "local q = goroutine.work_queue{workers = 2}";
    check_all(&[
        m(
            "",
            "goroutine.work_queue(3)",
            "goroutine.work_queue",
            "options must be a table (got 3)",
        ),
        m(
            "",
            "goroutine.work_queue{workers = 0}",
            "goroutine.work_queue",
            "workers must be an integer >= 1 (got 0)",
        ),
        m(
            "",
            "goroutine.work_queue{workers = -2}",
            "goroutine.work_queue",
            "(got -2)",
        ),
        m(
            "",
            "goroutine.work_queue{max_retries = -1}",
            "goroutine.work_queue",
            "max_retries must be an integer >= 0 (got -1)",
        ),
        m(
            "",
            "goroutine.work_queue{dlq_enabled = 'yes'}",
            "goroutine.work_queue",
            "dlq_enabled must be a boolean",
        ),
        m(
            "",
            "goroutine.work_queue{retry_delay = -5}",
            "goroutine.work_queue",
            "retry_delay must be a non-negative number",
        ),
        m(
            S,
            "q:process(42)",
            "work_queue:process",
            "expects a function (got 42)",
        ),
        ma(
            S,
            "q:process(print) q:process(print)",
            "work_queue:process",
            "already called",
            "q:close()",
        ),
        m(S, "q:enqueue(nil)", "work_queue:enqueue", "must not be nil"),
        m(
            S,
            "q.enqueue(1)",
            "work_queue:enqueue",
            "expects a work_queue",
        ),
        m(S, "q:wait('soon')", "work_queue:wait", "(got \"soon\")"),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local q = goroutine.work_queue{workers = 2, max_retries = 1, retry_delay = 10}
local n = 0
q:process(function(i)
  n = n + 1
  if i == 2 and n < 4 then error("once") end
end)
for i = 1, 3 do q:enqueue(i) end
local t0 = goroutine.now()
q:close()
assert(q:wait(2000))
assert(goroutine.now() - t0 >= 10)
assert(q:stats().processed == 3)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
