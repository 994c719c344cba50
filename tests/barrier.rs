//! The cyclic barrier (seed 5.1): its laws across many seeds and generated workloads, ties at
//! one instant, misuse, the global deadlock report, one barrier shared by Lua and Rust, and real
//! mode.
//!
//! Cases ported from the references: tokio's `tests/sync_barrier.rs` (zero_does_not_block — here
//! `n < 1` is misuse, as patterns.md decides, and `n = 1` never blocks; single; tango: of two,
//! exactly one is the leader; lots: 100 parties over 10 rounds, 99 pending until the last) and
//! the JSR-166 TCK's `CyclicBarrierTest` (testGetParties, testGetNumberWaiting, testSingleParty,
//! testTwoParties over several cycles, and its timed awaits — where Java breaks the barrier for
//! everyone, here only the one who gave up leaves its generation, whose count goes back down).

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::Barrier;
use gosim::sim::Sim;
use gosim::sync::Timeout;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one wait did: its generation at arrival, when it arrived, when it returned, its result.
#[derive(Debug, Clone)]
struct Rec {
    generation: u64,
    arrived: Duration,
    returned: Duration,
    timeout: Option<u64>,
    result: Result<bool, Timeout>,
}

/// `workers[i]` = the (sleep before, timeout) of each of worker i's waits. Checks the laws:
/// every completed generation released exactly `n` waiters, exactly one of them the leader, all
/// at the instant the last of them arrived (nobody before n arrived); a timed-out wait returned
/// at its deadline; the current generation has released nobody.
fn check_laws(n: usize, workers: &[Vec<(u64, Option<u64>)>], seed: u64) {
    let sim = Sim::with_seed(seed);
    let barrier = Barrier::new(sim.runtime(), n, None);
    let recs = Rc::new(RefCell::new(Vec::<Rec>::new()));
    let s = sim.clone();
    let (b, r) = (barrier.clone(), recs.clone());
    let workers = workers.to_vec();
    let report = sim.run(async move {
        for (i, waits) in workers.into_iter().enumerate() {
            let (s2, b, r) = (s.clone(), b.clone(), r.clone());
            s.spawn(&format!("w{i}"), async move {
                for (sleep, timeout) in waits {
                    s2.sleep(ms(sleep)).await;
                    // Read in the same step as the arrival (no scheduling point in between).
                    let generation = b.generation();
                    let arrived = s2.now();
                    let result = b.wait(timeout.map(ms)).await;
                    r.borrow_mut().push(Rec {
                        generation,
                        arrived,
                        returned: s2.now(),
                        timeout,
                        result,
                    });
                }
            });
        }
    });
    assert!(report.outcome.is_pass(), "seed {seed}: {}", report.outcome);
    let mut by_gen: BTreeMap<u64, Vec<Rec>> = BTreeMap::new();
    for rec in recs.borrow().iter() {
        match rec.result {
            Err(Timeout) => {
                let t = rec.timeout.expect("only a timed wait times out");
                assert_eq!(rec.returned, rec.arrived + ms(t), "seed {seed}: {rec:?}");
            }
            Ok(_) => by_gen.entry(rec.generation).or_default().push(rec.clone()),
        }
    }
    let current = barrier.generation();
    for g in 0..current {
        let released = by_gen.remove(&g).unwrap_or_default();
        assert_eq!(
            released.len(),
            n,
            "seed {seed}: generation {g}: {released:?}"
        );
        let leaders = released.iter().filter(|r| r.result == Ok(true)).count();
        assert_eq!(leaders, 1, "seed {seed}: generation {g}: {released:?}");
        let last = released.iter().map(|r| r.arrived).max().unwrap();
        let leader = released.iter().find(|r| r.result == Ok(true)).unwrap();
        assert_eq!(leader.arrived, last, "seed {seed}: the leader arrives last");
        for r in &released {
            assert_eq!(
                r.returned, last,
                "seed {seed}: released exactly when the n-th arrived: {r:?}"
            );
        }
    }
    assert!(
        by_gen.is_empty(),
        "seed {seed}: released from an open generation: {by_gen:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Generated workloads with timed waits (every wait is timed, so every run ends).
    #[test]
    fn one_leader_per_generation_and_nobody_released_early(
        n in 1usize..5,
        workers in prop::collection::vec(
            prop::collection::vec((0u64..10, 0u64..25), 1..5), 1..6),
        seed in 0u64..1_000_000,
    ) {
        let workers: Vec<Vec<_>> = workers
            .into_iter()
            .map(|w| w.into_iter().map(|(s, t)| (s, Some(t))).collect())
            .collect();
        check_laws(n, &workers, seed);
    }
}

/// tokio's `tons` and Java's testTwoParties: n workers, several rounds, untimed, over 1,000
/// seeds; plus a timed, mixed workload over the same seeds.
#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let untimed: Vec<Vec<(u64, Option<u64>)>> = (0..4u64)
        .map(|i| (0..5u64).map(|r| ((i * 7 + r * 3) % 5, None)).collect())
        .collect();
    let timed: Vec<Vec<(u64, Option<u64>)>> = (0..5u64)
        .map(|i| {
            (0..4u64)
                .map(|r| ((i * 3 + r) % 6, Some(2 + (i + r) % 7)))
                .collect()
        })
        .collect();
    for seed in 0..1000 {
        check_laws(4, &untimed, seed);
        check_laws(3, &timed, seed);
    }
}

/// tokio's zero_does_not_block / single and Java's testSingleParty: with one party every wait is
/// the leader at once, and each starts a new generation. Java's testGetParties and
/// testGetNumberWaiting: `parties()` and `waiting()`.
#[test]
fn a_single_party_never_blocks_and_waiting_counts_arrivals() {
    let src = r#"
local one = goroutine.barrier(1)
for i = 1, 3 do assert(one:wait() == true) end
assert(one:generation() == 3 and goroutine.now() == 0)
local b = goroutine.barrier(3)
assert(b:parties() == 3 and b:waiting() == 0)
goroutine.spawn(function() b:wait() end)
goroutine.sleep(1)
assert(b:waiting() == 1)
goroutine.spawn(function() b:wait() end)
goroutine.sleep(1)
assert(b:waiting() == 2)
assert(b:wait() == true and b:waiting() == 0 and b:generation() == 1)
"#;
    common::expect_pass_on_seeds(src);
}

/// tokio's tango and lots.
#[test]
fn tango_and_lots() {
    let src = r#"
local b = goroutine.barrier(2)
local r1
goroutine.spawn(function() r1 = b:wait() end)
goroutine.sleep(1)
local r2 = b:wait()
goroutine.sleep(1)
assert(r1 ~= r2, "exactly one of two is the leader")

local big = goroutine.barrier(100)
for round = 1, 10 do
  local leaders, done = 0, 0
  for i = 1, 99 do
    goroutine.spawn(function()
      if big:wait() then leaders = leaders + 1 end
      done = done + 1
    end)
  end
  goroutine.sleep(1)
  assert(big:waiting() == 99 and done == 0, "99 pending")
  if big:wait() then leaders = leaders + 1 end
  goroutine.sleep(1)
  assert(done == 99 and leaders == 1 and big:generation() == round)
end
"#;
    common::expect_pass_on_seeds(src);
}

/// A timeout of 0 is a try: it never stays, and succeeds only as the n-th arrival.
#[test]
fn a_zero_timeout_is_a_try() {
    let src = r#"
local b = goroutine.barrier(2)
local ok, err = b:wait(0)
assert(ok == false and err == "timeout" and b:waiting() == 0)
local other
goroutine.spawn(function() other = b:wait() end)
goroutine.sleep(1)
assert(b:wait(0) == true, "the second arrival completes the generation")
goroutine.sleep(1)
assert(other == false)
"#;
    common::expect_pass_on_seeds(src);
}

/// Java's testAwait_Timeout, as patterns.md decides it: the one who gave up leaves its
/// generation, the count goes back down, and the others are not affected.
#[test]
fn a_timed_out_waiter_leaves_its_generation() {
    let src = r#"
local b = goroutine.barrier(3)
local r = {}
goroutine.spawn{name = "impatient", fn = function() r.a = {b:wait(5)} end}
goroutine.spawn{name = "patient", fn = function() r.b = b:wait() end}
goroutine.sleep(10)
assert(r.a[1] == false and r.a[2] == "timeout")
assert(b:waiting() == 1, "the count went back down")
goroutine.spawn{name = "third", fn = function() r.c = b:wait() end}
goroutine.sleep(1)
assert(b:waiting() == 2 and b:generation() == 0, "two arrivals are not three")
assert(b:wait() == true)
goroutine.sleep(1)
assert(r.b == false and r.c == false and b:generation() == 1)
"#;
    common::expect_pass_on_seeds(src);
}

/// patterns.md "Ties at one instant": the n-th arrival is made by a goroutine at the very instant
/// a waiter's deadline falls. Timers fire before goroutines run, so the waiter has left: the
/// arrival does not complete the generation (under every seed).
#[test]
fn an_arrival_at_the_instant_a_wait_times_out() {
    let src = r#"
local b = goroutine.barrier(2)
local r
goroutine.spawn{name = "waiter", fn = function() r = {b:wait(10)} end}
goroutine.sleep(10)
local ok, err = b:wait(5)
assert(ok == false and err == "timeout", "the waiter had left")
assert(r[1] == false and r[2] == "timeout")
assert(b:generation() == 0)
"#;
    for seed in 0..200 {
        let r = common::run(src, seed);
        assert!(r.outcome.is_pass(), "seed {seed}: {}", r.outcome);
    }
}

/// A barrier that can never fill: the global deadlock check names the waiters and their lines,
/// and claims no wait-for cycle.
#[test]
fn a_barrier_that_can_never_fill_is_diagnosed_with_names_and_lines() {
    let src = r#"
local b = goroutine.barrier(3)
goroutine.spawn{name = "worker", fn = function()
  b:wait()
end}
b:wait()
"#;
    let r = common::run(src, 1);
    let text = r.outcome.to_string();
    assert!(text.contains("deadlock"), "{text}");
    assert!(!text.contains("cycle"), "{text}");
    for needle in [
        "worker",
        "main",
        "t.lua:4",
        "t.lua:6",
        "barrier#1",
        "t.lua:2",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
}

#[test]
fn lua_and_rust_share_one_barrier() {
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let barrier = Barrier::new(sim.runtime(), 2, None);
    world.expose("barrier", barrier.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
assert(barrier:wait() == false, "the Rust task arrives last")
assert(goroutine.now() == 10)
goroutine.sleep(20)
assert(barrier:wait() == true, "now Lua arrives last")
"#,
        )
        .unwrap();
    let s = sim.clone();
    s.clone().spawn("rust", async move {
        s.sleep(ms(10)).await;
        assert_eq!(barrier.wait(None).await, Ok(true));
        assert_eq!(barrier.wait(None).await, Ok(false));
        assert_eq!(s.now(), ms(30));
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const B: &str = "local b = goroutine.barrier(2)";
    check_all(&[
        m("", "goroutine.barrier(0)", "goroutine.barrier", "(got 0)"),
        m("", "goroutine.barrier(-3)", "goroutine.barrier", "(got -3)"),
        m(
            "",
            "goroutine.barrier('x')",
            "goroutine.barrier",
            "(got \"x\")",
        ),
        m(B, "b:wait('soon')", "barrier:wait", "(got \"soon\")"),
        m(B, "b.wait(1)", "barrier:wait", "expects a barrier"),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local b = goroutine.barrier(3)
local t0 = goroutine.now()
local ok, err = b:wait(20)
assert(ok == false and err == "timeout" and goroutine.now() - t0 >= 20)
local leaders = 0
local wg = goroutine.wait_group()
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn(function()
    for round = 1, 2 do
      goroutine.sleep(i)
      if b:wait() then leaders = leaders + 1 end
    end
    wg:done()
  end)
end
wg:wait()
assert(leaders == 2 and b:generation() == 2)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
