//! The weighted semaphore (seed 5.4): its laws across many seeds and generated workloads, the
//! pitfalls of its reference, golang.org/x/sync's `semaphore.Weighted`, its misuse errors, and one
//! object shared by Lua goroutines and Rust tasks.
//!
//! Edge cases ported from x/sync's `semaphore_test.go` (TestWeighted, TestWeightedPanic,
//! TestWeightedTryAcquire, TestWeightedDoesntBlockIfTooBig, TestLargeAcquireDoesntStarve,
//! TestAllocCancelDoesntStarve) and from golang/go#37852 (a cancelled waiter at the head must
//! wake the next) and golang/go#63615 (an expired wait never acquires: here a deadline that has
//! passed, while a timeout of 0 is a deliberate try, as `patterns.md` decides).

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::WeightedSemaphore;
use gosim::runtime::Subject;
use gosim::sim::Sim;
use gosim::sync::Timeout;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One generated job: starts at `start` ms, wants `w` units, holds them `hold` ms, gives up after
/// `timeout` ms if given.
#[derive(Debug, Clone)]
struct JobSpec {
    start: u64,
    w: u64,
    hold: u64,
    timeout: Option<u64>,
}

fn job_spec(size: u64) -> impl Strategy<Value = JobSpec> {
    (
        0u64..20,
        1..=size,
        0u64..15,
        prop::option::weighted(0.3, 0u64..25),
    )
        .prop_map(|(start, w, hold, timeout)| JobSpec {
            start,
            w,
            hold,
            timeout,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Laws: 0 <= used <= size at every instant; grants in request order (nobody requesting later
    /// is granted while an earlier request still waits); a timed-out waiter takes nothing, and
    /// everything comes back at the end; nobody is left waiting (the run passes).
    #[test]
    fn grants_are_fifo_and_bounded(
        size in 1u64..8,
        jobs in prop::collection::vec(job_spec(7), 1..12),
        seed in 0u64..1_000_000,
    ) {
        let jobs: Vec<JobSpec> = jobs.into_iter().map(|mut j| { j.w = j.w.min(size); j }).collect();
        check_laws(size, &jobs, seed);
    }
}

/// The laws, checked on one run, from the run's own trace.
fn check_laws(size: u64, jobs: &[JobSpec], seed: u64) {
    let sim = Sim::with_seed(seed);
    let sem = WeightedSemaphore::new(sim.runtime(), size, None);
    let held = Rc::new(Cell::new(0u64));
    let max_held = Rc::new(Cell::new(0u64));
    let s = sim.clone();
    let sem2 = sem.clone();
    let (held2, max2) = (held.clone(), max_held.clone());
    let jobs2 = jobs.to_vec();
    let report = sim.run(async move {
        let wg = s.wait_group();
        for (i, j) in jobs2.into_iter().enumerate() {
            wg.add(1).unwrap();
            let (s2, sem, wg) = (s.clone(), sem2.clone(), wg.clone());
            let (held, max_held) = (held2.clone(), max2.clone());
            s.spawn(&format!("job-{i}"), async move {
                s2.sleep(ms(j.start)).await;
                if sem.acquire(j.w, j.timeout.map(ms)).await.is_ok() {
                    held.set(held.get() + j.w);
                    max_held.set(max_held.get().max(held.get()));
                    s2.sleep(ms(j.hold)).await;
                    held.set(held.get() - j.w);
                    sem.release(j.w).unwrap();
                }
                wg.add(-1).unwrap();
            });
        }
        wg.wait().await;
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    assert!(max_held.get() <= size, "more units held than the size");
    assert_eq!(sem.available(), size, "every unit came back");
    assert_eq!(held.get(), 0);

    // From the trace: per goroutine, when it requested (its first event on the semaphore: an
    // immediate `acquire`, a `block-acquire` or a refused try) and how it ended (`acquire` or
    // `timeout`), as indices into the event list.
    use std::collections::BTreeMap;
    let mut requested: BTreeMap<u64, usize> = BTreeMap::new();
    let mut resolved: BTreeMap<u64, (usize, &str)> = BTreeMap::new();
    for (idx, e) in report.events.iter().enumerate() {
        let on_sem =
            matches!(&e.subject(), Subject::Resource(r) if r.kind() == "weighted_semaphore");
        if !on_sem {
            continue;
        }
        let g = e.task.0;
        match e.verb {
            "block-acquire" => {
                requested.entry(g).or_insert(idx);
            }
            "acquire" => {
                requested.entry(g).or_insert(idx);
                resolved.insert(g, (idx, "granted"));
            }
            "timeout" => {
                resolved.insert(g, (idx, "timeout"));
            }
            _ => {}
        }
    }
    for (&a, &ra) in &requested {
        for (&b, &rb) in &requested {
            if ra >= rb {
                continue;
            }
            // a requested before b: if b was granted, a was resolved (granted or gave up) first.
            if let Some(&(gb, "granted")) = resolved.get(&b) {
                let (ea, _) = resolved[&a];
                assert!(
                    ea <= gb,
                    "seed {seed}: g{b} was granted (event {gb}) while g{a}, which asked first, still waited\n{}",
                    report.trace_text()
                );
            }
        }
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    // A fixed mixed workload swept over seeds 0..1000 (the proptest above varies the workload).
    let jobs: Vec<JobSpec> = (0..9)
        .map(|i| JobSpec {
            start: (i * 3) % 7,
            w: 1 + (i * 5) % 4,
            hold: 2 + (i % 3) * 4,
            timeout: if i % 4 == 1 { Some(6) } else { None },
        })
        .collect();
    for seed in 0..1000 {
        check_laws(4, &jobs, seed);
    }
}

/// TestLargeAcquireDoesntStarve: a large request at the head is not overtaken by a stream of
/// small ones, though each of them would fit.
#[test]
fn a_large_acquire_does_not_starve() {
    let sim = Sim::with_seed(1);
    let sem = WeightedSemaphore::new(sim.runtime(), 4, None);
    let s = sim.clone();
    let big_at = Rc::new(Cell::new(None));
    let big2 = big_at.clone();
    let report = sim.run(async move {
        let hog = sem.clone();
        hog.acquire(1, None).await.unwrap();
        let (sem_b, sb) = (sem.clone(), s.clone());
        s.spawn("big", async move {
            sem_b.acquire(4, None).await.unwrap();
            big2.set(Some(sb.now()));
            sem_b.release(4).unwrap();
        });
        s.sleep(ms(1)).await;
        // Small requests that would fit (3 units free) queue behind "big".
        for i in 0..3 {
            let (sem_s, ss) = (sem.clone(), s.clone());
            s.spawn(&format!("small-{i}"), async move {
                sem_s.acquire(1, None).await.unwrap();
                ss.sleep(ms(1)).await;
                sem_s.release(1).unwrap();
            });
        }
        s.sleep(ms(10)).await;
        hog.release(1).unwrap();
        s.sleep(ms(10)).await;
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    assert_eq!(
        big_at.get(),
        Some(ms(11)),
        "big goes first once the hog releases"
    );
}

/// golang/go#37852 / TestAllocCancelDoesntStarve: the head waiter gives up; the waiter behind
/// it, which fits, is granted in that same instant.
#[test]
fn a_timed_out_head_wakes_the_next_waiter() {
    let sim = Sim::with_seed(3);
    let sem = WeightedSemaphore::new(sim.runtime(), 10, None);
    let s = sim.clone();
    let got = Rc::new(Cell::new(None));
    let got2 = got.clone();
    let report = sim.run(async move {
        sem.acquire(1, None).await.unwrap();
        let (sem_a, sa) = (sem.clone(), s.clone());
        s.spawn("head", async move {
            let r = sem_a.acquire(10, Some(ms(5))).await;
            assert_eq!(r, Err(Timeout));
            assert_eq!(sa.now(), ms(5));
        });
        s.sleep(ms(1)).await;
        let (sem_b, sb) = (sem.clone(), s.clone());
        s.spawn("next", async move {
            sem_b.acquire(1, None).await.unwrap();
            got2.set(Some(sb.now()));
            sem_b.release(1).unwrap();
        });
        s.sleep(ms(10)).await;
        sem.release(1).unwrap();
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    assert_eq!(got.get(), Some(ms(5)));
}

/// A grant made at the very instant a deadline falls wins: timers fire before goroutines run,
/// and a waiter granted by a release earlier in that instant is no longer live when its
/// deadline fires.
#[test]
fn a_grant_and_a_deadline_at_the_same_instant() {
    for seed in 0..50 {
        let sim = Sim::with_seed(seed);
        let sem = WeightedSemaphore::new(sim.runtime(), 1, None);
        let s = sim.clone();
        let outcome = Rc::new(RefCell::new(None));
        let out2 = outcome.clone();
        let report = sim.run(async move {
            sem.acquire(1, None).await.unwrap();
            let sem_w = sem.clone();
            s.spawn("waiter", async move {
                *out2.borrow_mut() = Some(sem_w.acquire(1, Some(ms(10))).await);
            });
            // The holder's sleep timer was created before the waiter's deadline: at t=10 it fires
            // first, the holder releases... but only once it runs, after every timer of t=10.
            s.sleep(ms(10)).await;
            sem.release(1).unwrap();
            s.sleep(ms(1)).await;
        });
        assert!(report.outcome.is_pass(), "{}", report.outcome);
        // The deadline fired before the holder could run at t=10: the wait timed out, and took
        // nothing.
        assert_eq!(*outcome.borrow(), Some(Err(Timeout)), "seed {seed}");
    }
}

/// TestWeightedTryAcquire, and golang/go#63615's spirit: a try (timeout 0) never waits, and a
/// try refuses while anyone waits even though units are free.
#[test]
fn try_acquire_refuses_while_anyone_waits() {
    let sim = Sim::with_seed(2);
    let sem = WeightedSemaphore::new(sim.runtime(), 2, None);
    let s = sim.clone();
    let report = sim.run(async move {
        assert!(sem.try_acquire(1).unwrap());
        let sem_w = sem.clone();
        s.spawn("waiter", async move {
            sem_w.acquire(2, None).await.unwrap();
            sem_w.release(2).unwrap();
        });
        s.sleep(ms(1)).await;
        assert_eq!(sem.available(), 1);
        assert!(
            !sem.try_acquire(1).unwrap(),
            "one unit is free, but someone waits"
        );
        assert_eq!(
            sem.acquire(1, Some(Duration::ZERO)).await,
            Err(Timeout),
            "a zero timeout is a try"
        );
        assert_eq!(sem.available(), 1, "refusals change nothing");
        sem.release(1).unwrap();
        s.sleep(ms(1)).await;
        assert_eq!(sem.available(), 2);
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}

/// TestWeightedPanic: releasing more than is held is misuse, and changes nothing.
#[test]
fn releasing_more_than_held_is_misuse() {
    let sim = Sim::with_seed(1);
    let sem = WeightedSemaphore::new(sim.runtime(), 3, None);
    let report = sim.run(async move {
        sem.acquire(2, None).await.unwrap();
        assert!(sem.release(3).is_err());
        assert_eq!(sem.available(), 1);
        sem.release(2).unwrap();
        assert!(sem.release(1).is_err());
        assert!(sem.try_acquire(4).is_err(), "more than the capacity");
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}

/// Holders that all wait on each other are a wait-for cycle, named with the lines of both.
#[test]
fn holders_blocked_on_each_other_are_a_named_cycle() {
    let src = r#"
local a = goroutine.weighted_semaphore(2)
local b = goroutine.weighted_semaphore(2)
goroutine.spawn{name = "left", fn = function()
  a:acquire(2)
  goroutine.sleep(1)
  b:acquire(1)
end}
goroutine.spawn{name = "right", fn = function()
  b:acquire(2)
  goroutine.sleep(1)
  a:acquire(1)
end}
goroutine.sleep(100)
"#;
    let r = common::run(src, 1);
    let text = r.outcome.to_string();
    assert!(text.contains("deadlock (cycle)"), "{text}");
    assert!(text.contains("weighted_semaphore#1") && text.contains("weighted_semaphore#2"));
    assert!(
        text.contains("t.lua:2") && text.contains("t.lua:3"),
        "{text}"
    );
    assert!(text.contains("left") && text.contains("right"), "{text}");
}

/// A timed wait is not a wait-for edge (its timer will end it): no false cycle.
#[test]
fn timed_waits_make_no_cycle() {
    let src = r#"
local a = goroutine.weighted_semaphore(1)
local b = goroutine.weighted_semaphore(1)
goroutine.spawn{name = "left", fn = function()
  a:acquire(1)
  goroutine.sleep(1)
  local ok = b:acquire(1, 50)
  assert(ok == false)
  a:release(1)
end}
goroutine.spawn{name = "right", fn = function()
  b:acquire(1)
  goroutine.sleep(1)
  local ok = a:acquire(1, 100)
  assert(ok == true)
  a:release(1)
  b:release(1)
end}
goroutine.sleep(200)
"#;
    common::expect_pass_on_seeds(src);
}

/// One semaphore, created in Rust, used by a Rust task and by Lua goroutines of the same run.
#[test]
fn lua_and_rust_share_one_semaphore() {
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let sem = WeightedSemaphore::new(sim.runtime(), 3, None);
    world.expose("sem", sem.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
goroutine.sleep(1)                      -- the Rust task holds all 3 units until t=10
assert(sem:available() == 0)
assert(sem:acquire(2))
assert(goroutine.now() == 10)
sem:release(2)
"#,
        )
        .unwrap();
    let s = sim.clone();
    s.clone().spawn("rust", async move {
        sem.acquire(3, None).await.unwrap();
        s.sleep(ms(10)).await;
        sem.release(3).unwrap();
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const S: &str = "local s = goroutine.weighted_semaphore(3)";
    check_all(&[
        m(
            "",
            "goroutine.weighted_semaphore(0)",
            "goroutine.weighted_semaphore",
            "(got 0)",
        ),
        m(
            "",
            "goroutine.weighted_semaphore('x')",
            "goroutine.weighted_semaphore",
            "(got \"x\")",
        ),
        m(
            S,
            "s:acquire(4)",
            "weighted_semaphore:acquire",
            "exceeds the capacity 3",
        ),
        m(S, "s:acquire(-1)", "weighted_semaphore:acquire", "(got -1)"),
        m(
            S,
            "s:acquire('x')",
            "weighted_semaphore:acquire",
            "(got \"x\")",
        ),
        m(
            S,
            "s:acquire(1, 'soon')",
            "weighted_semaphore:acquire",
            "(got \"soon\")",
        ),
        m(
            S,
            "s:release(1)",
            "weighted_semaphore:release",
            "only 0 are held",
        ),
        m(
            S,
            "s:try_acquire(9)",
            "weighted_semaphore:try_acquire",
            "exceeds the capacity 3",
        ),
        m(
            S,
            "s.acquire(1)",
            "weighted_semaphore:acquire",
            "expects a weighted semaphore",
        ),
    ]);
}

/// The same semaphore against the wall clock: grants, a timed acquire that gives up (at least
/// its timeout later), and the next waiter let in.
#[test]
fn it_works_in_real_time() {
    let src = r#"
local sem = goroutine.weighted_semaphore(4)
assert(sem:acquire(3))
local t0 = goroutine.now()
local ok, err = sem:acquire(4, 20)
assert(ok == false and err == "timeout")
assert(goroutine.now() - t0 >= 20)
local done = goroutine.channel(1)
goroutine.spawn(function() assert(sem:acquire(2)) done:send(true) end)
goroutine.sleep(5)
assert(sem:available() == 1)
sem:release(3)
assert(done:receive())
assert(sem:available() == 2)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}

/// A waiter queued behind a timed waiter may be let in when that one gives up, with no holder
/// releasing anything: its wait makes no wait-for edge, so a holder waiting on it is no false
/// cycle (the run goes on and passes).
#[test]
fn a_wait_behind_a_timed_waiter_is_no_false_cycle() {
    let src = r#"
local sem = goroutine.weighted_semaphore(10)
local m = goroutine.mutex()
goroutine.spawn{name = "holder", fn = function()
  sem:acquire(5)
  goroutine.sleep(5)
  m:lock()                              -- waits for "small", which holds m
  sem:release(5)
  m:unlock()
end}
goroutine.sleep(1)
goroutine.spawn{name = "big", fn = function()
  assert(sem:acquire(10, 20) == false)  -- gives up at t=21
end}
goroutine.sleep(1)
goroutine.spawn{name = "small", fn = function()
  m:lock()
  assert(sem:acquire(2))                -- fits, but queues behind "big" until it gives up
  sem:release(2)
  m:unlock()
end}
goroutine.sleep(50)
"#;
    common::expect_pass_on_seeds(src);
}

/// The `Sim` shortcuts record the Rust line that created each pattern, so a Rust deadlock report
/// names it, as it names a Lua creation line.
#[test]
fn sim_shortcuts_name_their_creation_lines_in_reports() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let (a, b) = (sim.weighted_semaphore(1), sim.weighted_semaphore(1));
    let line = line!() - 1;
    let (a2, b2) = (a.clone(), b.clone());
    let s2 = s.clone();
    s.spawn("left", async move {
        a2.acquire(1, None).await.unwrap();
        s2.sleep(ms(1)).await;
        b2.acquire(1, None).await.unwrap();
    });
    let s3 = s.clone();
    s.spawn("right", async move {
        b.acquire(1, None).await.unwrap();
        s3.sleep(ms(1)).await;
        a.acquire(1, None).await.unwrap();
    });
    let report = sim.run(async move { s.sleep(ms(10)).await });
    let text = report.outcome.to_string();
    assert!(text.contains("deadlock (cycle)"), "{text}");
    assert!(
        text.contains(&format!("created at tests/weighted_semaphore.rs:{line}")),
        "{text}"
    );
}

/// Every pattern shortcut on `Sim` makes the pattern it names, with its size.
#[test]
fn sim_shortcuts_make_their_patterns() {
    let sim = Sim::with_seed(1);
    assert_eq!(sim.weighted_semaphore(7).capacity(), 7);
    assert_eq!(sim.latch(3).count(), 3);
    assert_eq!(sim.barrier(4).parties(), 4);
    assert!(!sim.rwmutex_upgradeable().is_write_locked());
    assert_eq!(sim.priority_channel::<i64>(Some(5)).cap(), Some(5));
    assert_eq!(sim.request_reply::<i64, i64>().pending(), 0);
    assert_eq!(sim.rate_limiter(10, Duration::from_secs(1), 3).burst(), 3);
    let report = sim.run(async {});
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}
