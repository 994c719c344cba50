//! The countdown latch (seed 5.2): its laws across many seeds and generated workloads, ties at
//! one instant, misuse, one latch shared by Lua and Rust, and real mode.
//!
//! Cases ported from the reference, the JSR-166 TCK's `CountDownLatchTest` (OpenJDK
//! `test/jdk/java/util/concurrent/tck`): testConstructor (a negative count is misuse),
//! testGetCount, testCountDown (at 0 it does nothing), testAwait (waiters wake when the count
//! reaches 0, not before), testTimedAwait, testAwaitTimeout (a timed wait returns false and the
//! count is unchanged) and testToString's count observations (`count()`).

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::Latch;
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One run: a latch of `count`; counters count down at the given instants (more of them than the
/// count, possibly); waiters wait from their start with an optional timeout. Checks the laws:
/// the count never increases; a waiter returns `true` exactly when (at or after) the count
/// reached 0, never before; `false` only if its timeout passed before 0 was reached.
fn check_laws(count: u64, counters: &[u64], waiters: &[(u64, Option<u64>)], seed: u64) {
    let sim = Sim::with_seed(seed);
    let latch = Latch::new(sim.runtime(), count, None);
    // The count after every count_down, and the instant it reached 0.
    let counts = Rc::new(RefCell::new(vec![count]));
    let zero_at = Rc::new(Cell::new(if count == 0 { Some(ms(0)) } else { None }));
    let results = Rc::new(RefCell::new(Vec::new()));
    let s = sim.clone();
    let (l, c2, z2, r2) = (
        latch.clone(),
        counts.clone(),
        zero_at.clone(),
        results.clone(),
    );
    let counters = counters.to_vec();
    let waiters = waiters.to_vec();
    let report = sim.run(async move {
        for (i, at) in counters.into_iter().enumerate() {
            let (s2, l, c, z) = (s.clone(), l.clone(), c2.clone(), z2.clone());
            s.spawn(&format!("counter-{i}"), async move {
                s2.sleep(ms(at)).await;
                l.count_down_op().await;
                c.borrow_mut().push(l.count());
                if l.count() == 0 && z.get().is_none() {
                    z.set(Some(s2.now()));
                }
            });
        }
        for (i, (start, timeout)) in waiters.into_iter().enumerate() {
            let (s2, l, r) = (s.clone(), l.clone(), r2.clone());
            s.spawn(&format!("waiter-{i}"), async move {
                s2.sleep(ms(start)).await;
                let t0 = s2.now();
                let ok = l.wait(timeout.map(ms)).await;
                r.borrow_mut().push((t0, timeout, ok, s2.now(), l.count()));
            });
        }
    });
    assert!(report.outcome.is_pass(), "seed {seed}: {}", report.outcome);
    let counts = counts.borrow();
    assert!(
        counts.windows(2).all(|w| w[1] <= w[0]),
        "seed {seed}: the count increased: {counts:?}"
    );
    for &(t0, timeout, ok, t1, count_then) in results.borrow().iter() {
        if ok {
            assert_eq!(count_then, 0, "seed {seed}: released while the count > 0");
            let z = zero_at.get().expect("released, so the count reached 0");
            assert_eq!(
                t1,
                z.max(t0),
                "seed {seed}: woken exactly when it reached 0"
            );
        } else {
            let t = timeout.expect("only a timed wait returns false");
            assert_eq!(t1, t0 + ms(t), "seed {seed}: gave up at its deadline");
            if let Some(z) = zero_at.get() {
                assert!(z >= t1, "seed {seed}: the count was 0 before the deadline");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn the_count_never_increases_and_waiters_wake_exactly_at_zero(
        count in 0u64..6,
        counters in prop::collection::vec(0u64..30, 0..8),
        waiters in prop::collection::vec((0u64..30, prop::option::weighted(0.5, 0u64..30)), 0..6),
        seed in 0u64..1_000_000,
    ) {
        // Waits without a timeout need the count to reach 0, or the run would (rightly) deadlock.
        let waiters: Vec<_> = waiters
            .into_iter()
            .map(|(s, t)| if counters.len() as u64 >= count { (s, t) } else { (s, Some(t.unwrap_or(5))) })
            .collect();
        check_laws(count, &counters, &waiters, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let counters = [3, 7, 7, 12, 20, 25];
    let waiters = [
        (0, None),
        (5, Some(5)),
        (6, Some(6)),
        (10, None),
        (12, Some(8)),
        (30, None),
    ];
    for seed in 0..1000 {
        check_laws(4, &counters, &waiters, seed);
    }
}

/// The edge of patterns.md's "Ties at one instant": the count reaches 0 in a goroutine at the very
/// instant a wait times out. Timers fire before goroutines run at their instant, so the deadline
/// comes first under every seed: the wait returns false, and the latch still opens.
#[test]
fn a_count_reaching_zero_as_a_wait_times_out() {
    let src = r#"
local l = goroutine.latch(1)
goroutine.spawn{name = "opener", fn = function()
  goroutine.sleep(10)
  l:count_down()
end}
local ok = l:wait(10)
assert(ok == false, "the deadline fired first")
assert(goroutine.now() == 10)
goroutine.sleep(1)
assert(l:count() == 0 and l:wait(0) == true)
"#;
    common::expect_pass_on_seeds(src);
    for seed in 0..200 {
        let r = common::run(src, seed);
        assert!(r.outcome.is_pass(), "seed {seed}: {}", r.outcome);
    }
}

/// A timer callback that counts a latch down (no goroutine: it runs among the timers).
struct CountDownAt(Latch);

impl gosim::runtime::TimerCallback for CountDownAt {
    fn fire(self: Box<Self>, _rt: &gosim::runtime::Runtime) {
        self.0.count_down();
    }
    fn may_wake(&self) -> bool {
        true
    }
}

/// The other side of the tie: a count already 0 when the deadline fires wins (the waiter was
/// woken earlier in that instant and its stale deadline does nothing). Here a timer callback
/// created before the wait opens the latch at the deadline's instant, before the deadline fires.
#[test]
fn a_count_already_zero_when_the_deadline_fires_wins() {
    for seed in 0..100 {
        let sim = Sim::with_seed(seed);
        let latch = Latch::new(sim.runtime(), 1, None);
        let got = Rc::new(Cell::new(None));
        let (s, g) = (sim.clone(), got.clone());
        let report = sim.run(async move {
            // Created first, so it fires first at t=10.
            let at = s.runtime().now() + 10_000_000;
            s.runtime()
                .add_timer(at, Box::new(CountDownAt(latch.clone())));
            g.set(Some(latch.wait(Some(ms(10))).await));
            assert_eq!(s.now(), ms(10));
        });
        assert!(report.outcome.is_pass(), "{}", report.outcome);
        assert_eq!(got.get(), Some(true), "seed {seed}");
    }
}

#[test]
fn count_down_at_zero_does_nothing_and_wait_returns_at_once() {
    let src = r#"
local l = goroutine.latch(0)
assert(l:count() == 0 and l:wait() == true)
l:count_down()
assert(l:count() == 0)
local l2 = goroutine.latch(2)
assert(l2:wait(0) == false, "a timeout of 0 polls")
l2:count_down() l2:count_down() l2:count_down()
assert(l2:count() == 0 and l2:wait(0) == true)
"#;
    common::expect_pass_on_seeds(src);
}

/// A latch nobody counts down: the global deadlock check names the waiters, their lines and the
/// latch's creation line; a timed wait on it is no deadlock at all.
#[test]
fn a_latch_nobody_counts_down_is_diagnosed_with_names_and_lines() {
    let src = r#"
local l = goroutine.latch(2)
goroutine.spawn{name = "counter", fn = function() l:count_down() end}
goroutine.spawn{name = "waiter", fn = function()
  l:wait()
end}
l:wait()
"#;
    let r = common::run(src, 1);
    let text = r.outcome.to_string();
    assert!(text.contains("deadlock"), "{text}");
    assert!(
        !text.contains("cycle"),
        "no wait-for cycle is claimed: {text}"
    );
    for needle in ["waiter", "main", "t.lua:5", "t.lua:7", "latch#1", "t.lua:2"] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
    common::expect_pass_on_seeds("local l = goroutine.latch(1)\nassert(l:wait(20) == false)\n");
}

#[test]
fn lua_and_rust_share_one_latch() {
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let latch = Latch::new(sim.runtime(), 3, None);
    world.expose("latch", latch.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
latch:count_down()
assert(latch:wait() == true)
assert(goroutine.now() == 20 and latch:count() == 0)
"#,
        )
        .unwrap();
    let s = sim.clone();
    s.clone().spawn("rust", async move {
        s.sleep(ms(10)).await;
        latch.count_down_op().await;
        s.sleep(ms(10)).await;
        assert_eq!(latch.count(), 1);
        latch.count_down_op().await;
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const L: &str = "local l = goroutine.latch(1)";
    check_all(&[
        m("", "goroutine.latch(-1)", "goroutine.latch", "(got -1)"),
        m("", "goroutine.latch('x')", "goroutine.latch", "(got \"x\")"),
        m("", "goroutine.latch()", "goroutine.latch", "(got nil)"),
        m(L, "l:wait('soon')", "latch:wait", "(got \"soon\")"),
        m(L, "l.wait(1)", "latch:wait", "expects a latch"),
        m(L, "l.count_down()", "latch:count_down", "expects a latch"),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local l = goroutine.latch(2)
local t0 = goroutine.now()
assert(l:wait(20) == false)
assert(goroutine.now() - t0 >= 20)
for i = 1, 2 do goroutine.spawn(function() goroutine.sleep(5) l:count_down() end) end
assert(l:wait() == true and l:count() == 0)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
