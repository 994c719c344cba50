//! Retry with exponential backoff (seed 3.5): its laws across many seeds and generated
//! policies, the edge cases of its references at exact virtual instants, the pitfall they hit,
//! its misuse errors, one policy shared by Lua and Rust, and a real-time run.
//!
//! Ported from cenkalti/backoff: `exponential_test.go` (TestBackOff: the sequence of intervals
//! 500ms, 1s, 2s, 4s, then capped at max_interval; TestBackOffOverflow: an initial interval near
//! the maximum and a fractional multiplier never overflow), `retry_test.go` (TestRetry: success
//! after failures; TestRetryPermanent: a permanent error stops at once and is returned
//! unwrapped) and `tries_test.go` (TestMaxTriesHappy), plus AWS "Exponential Backoff And Jitter"
//! (full jitter: each delay in `[0, d_k]`). Differences: cenkalti's RandomizationFactor jitter
//! (`d ± factor·d`) is replaced by full jitter; there is no MaxElapsedTime. Regression:
//! cenkalti/backoff#80 (zero retries must still call once: `max_attempts = 1` calls once and
//! never sleeps).

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{Failure, Retry, RetrySettings, permanent, retry};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn sim_run<F, Fut>(seed: u64, body: F)
where
    F: FnOnce(Sim) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let sim = Sim::with_seed(seed);
    let fut = body(sim.clone());
    let report = sim.run(fut);
    assert!(
        report.outcome.is_pass(),
        "{}\n{}",
        report.outcome,
        report.trace_text()
    );
}

fn settings(
    max_attempts: u32,
    initial: u64,
    max: u64,
    multiplier: f64,
    jitter: bool,
) -> RetrySettings {
    RetrySettings {
        max_attempts,
        initial_delay: ms(initial),
        max_delay: ms(max),
        multiplier,
        jitter,
    }
}

/// TestBackOff (without its randomization): 500ms doubling, capped at 5s.
#[test]
fn cenkalti_backoff_sequence() {
    sim_run(1, |s| async move {
        let p = Retry::new(s.runtime(), settings(20, 500, 5000, 2.0, false), None);
        let want = [500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000, 5000];
        for (k, &w) in want.iter().enumerate() {
            assert_eq!(
                p.next_delay(k as u32 + 1),
                Some(ms(w)),
                "after call {}",
                k + 1
            );
        }
        // A fractional multiplier (cenkalti's default 1.5), rounded to the nanosecond.
        let p = Retry::new(s.runtime(), settings(20, 500, 5000, 1.5, false), None);
        let want_us = [
            500_000, 750_000, 1_125_000, 1_687_500, 2_531_250, 3_796_875, 5_000_000,
        ];
        for (k, &w) in want_us.iter().enumerate() {
            let w = Duration::from_micros(w);
            assert_eq!(p.delay_cap(k as u32 + 1), w, "d_{}", k + 1);
        }
    });
}

/// TestBackOffOverflow: huge initial delays and many attempts never overflow; the cap holds.
#[test]
fn cenkalti_backoff_overflow() {
    sim_run(1, |s| async move {
        let huge = Duration::from_nanos(u64::MAX / 2 + 1);
        for m in [2.0, 2.1, 10.0, 1e300] {
            let p = Retry::new(
                s.runtime(),
                RetrySettings {
                    max_attempts: u32::MAX,
                    initial_delay: huge,
                    max_delay: Duration::MAX,
                    multiplier: m,
                    jitter: false,
                },
                None,
            );
            assert_eq!(p.delay_cap(1), huge);
            assert_eq!(p.delay_cap(2), Duration::from_nanos(u64::MAX), "m={m}");
            assert_eq!(p.delay_cap(u32::MAX), Duration::from_nanos(u64::MAX));
        }
        let p = Retry::new(s.runtime(), settings(u32::MAX, 1, 10_000, 2.0, false), None);
        assert_eq!(p.delay_cap(1_000_000), ms(10_000));
        // A max below the initial delay caps the first delay too.
        let p = Retry::new(s.runtime(), settings(5, 500, 100, 2.0, false), None);
        assert_eq!(p.delay_cap(1), ms(100));
    });
}

/// TestRetry + TestMaxTriesHappy, at exact instants: fails twice, then succeeds.
#[test]
fn cenkalti_retry_succeeds_after_failures() {
    sim_run(1, |s| async move {
        let p = Retry::new(s.runtime(), settings(5, 100, 10_000, 2.0, false), None);
        let at = Rc::new(RefCell::new(Vec::new()));
        let (at2, s2) = (at.clone(), s.clone());
        let r: Result<&str, &str> = retry(&p, move || {
            let (at, s) = (at2.clone(), s2.clone());
            async move {
                at.borrow_mut().push(s.now());
                if at.borrow().len() < 3 {
                    Err(Failure::Transient("not yet"))
                } else {
                    Ok("done")
                }
            }
        })
        .await;
        assert_eq!(r, Ok("done"));
        assert_eq!(*at.borrow(), vec![ms(0), ms(100), ms(300)]);
    });
}

/// TestRetryPermanent: stops at once, the error unwrapped; and every attempt failing returns
/// the last error after max_attempts calls.
#[test]
fn cenkalti_permanent_and_exhausted() {
    sim_run(1, |s| async move {
        let p = Retry::new(s.runtime(), settings(5, 100, 10_000, 2.0, false), None);
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let r: Result<(), String> = retry(&p, move || {
            let c = c.clone();
            async move {
                c.set(c.get() + 1);
                Err(permanent("fatal".to_string()))
            }
        })
        .await;
        assert_eq!(r, Err("fatal".to_string()));
        assert_eq!((calls.get(), s.now()), (1, ms(0)));
        let c = calls.clone();
        let r: Result<(), u32> = retry(&p, move || {
            let c = c.clone();
            async move {
                c.set(c.get() + 1);
                Err(Failure::Transient(c.get()))
            }
        })
        .await;
        assert_eq!(r, Err(6), "the last error");
        assert_eq!(s.now(), ms(100 + 200 + 400 + 800));
    });
}

/// cenkalti/backoff#80: zero retries still calls once (max_attempts = 1: one call, no sleep).
#[test]
fn zero_retries_still_call_once_cenkalti_80() {
    sim_run(1, |s| async move {
        let p = Retry::new(s.runtime(), settings(1, 100, 10_000, 2.0, true), None);
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let r: Result<(), &str> = retry(&p, move || {
            let c = c.clone();
            async move {
                c.set(c.get() + 1);
                Err(Failure::Transient("x"))
            }
        })
        .await;
        assert_eq!(r, Err("x"));
        assert_eq!((calls.get(), s.now()), (1, ms(0)));
        assert_eq!(p.next_delay(1), None);
    });
    let src = r#"
local n = 0
local r, err = goroutine.retry({max_attempts = 1}, function() n = n + 1 return nil, "no" end)
assert(r == nil and err == "no" and n == 1 and goroutine.now() == 0)
"#;
    common::expect_pass_on_seeds(src);
}

/// Lua shapes: `nil, err` and raised errors are failures; a permanent error raised or
/// returned is unwrapped (a table stays the same table); all results come back on success.
#[test]
fn lua_failures_permanent_errors_and_results() {
    let src = r#"
local e = {code = 42}
local r, err = goroutine.retry({}, function() error(goroutine.permanent(e)) end)
assert(r == nil and err == e)
local n = 0
local a, b = goroutine.retry({initial_delay = 1}, function()
  n = n + 1
  if n == 1 then error("boom") end
  if n == 2 then return nil, "soft" end
  return 1, 2
end)
assert(a == 1 and b == 2 and n == 3 and goroutine.now() == 3)
assert(tostring(goroutine.permanent("x")) == "permanent: x")
-- false is a result, not a failure
assert(goroutine.retry({}, function() return false end) == false)
"#;
    common::expect_pass_on_seeds(src);
}

// ---------------------------------------------------------------------------------------------
// Laws
// ---------------------------------------------------------------------------------------------

/// One run: `fails` transient failures (then success), or a permanent failure at call
/// `permanent_at`. Laws: calls ≤ max_attempts; nothing runs after success or a permanent
/// error; on failure sleeps = calls − 1; each delay ≤ d_k (exactly d_k without jitter).
fn check_laws(st: RetrySettings, fails: u32, permanent_at: Option<u32>, seed: u64) {
    let calls: Rc<RefCell<Vec<Duration>>> = Rc::default();
    let outcome: Rc<RefCell<Option<Result<u32, u32>>>> = Rc::default();
    let (c2, o2, st2) = (calls.clone(), outcome.clone(), st.clone());
    let sim = Sim::with_seed(seed);
    let s = sim.clone();
    let report = sim.run(async move {
        let p = Retry::new(s.runtime(), st2, None);
        let r = retry(&p, move || {
            let (c, s) = (c2.clone(), s.clone());
            async move {
                c.borrow_mut().push(s.now());
                let k = c.borrow().len() as u32;
                if permanent_at == Some(k) {
                    Err(permanent(k))
                } else if k <= fails {
                    Err(Failure::Transient(k))
                } else {
                    Ok(k)
                }
            }
        })
        .await;
        *o2.borrow_mut() = Some(r);
    });
    assert!(report.outcome.is_pass(), "seed {seed}: {}", report.outcome);
    let calls = calls.borrow();
    let n = calls.len() as u32;
    assert!(n >= 1 && n <= st.max_attempts, "seed {seed}: {n} calls");
    let expect = permanent_at
        .unwrap_or(u32::MAX)
        .min(fails + 1)
        .min(st.max_attempts);
    assert_eq!(
        n, expect,
        "seed {seed}: nothing runs after success or a permanent error"
    );
    let sleeps = report.events.iter().filter(|e| e.verb == "retry").count() as u32;
    assert_eq!(sleeps, n - 1, "seed {seed}: one sleep between calls");
    let p = Retry::new(Sim::with_seed(0).runtime(), st.clone(), None);
    for k in 1..n as usize {
        let d = calls[k] - calls[k - 1];
        let cap = p.delay_cap(k as u32);
        if st.jitter {
            assert!(d <= cap, "seed {seed}: delay {k} = {d:?} > {cap:?}");
        } else {
            assert_eq!(d, cap, "seed {seed}: delay {k}");
        }
    }
    match (*outcome.borrow()).unwrap() {
        Ok(k) => assert_eq!(k, n),
        Err(k) => assert_eq!(k, n, "the last error"),
    }
}

fn settings_strategy() -> impl Strategy<Value = RetrySettings> {
    (
        1u32..8,
        0u64..200,
        0u64..2000,
        prop_oneof![Just(1.0), Just(1.5), Just(2.0), Just(3.0)],
        any::<bool>(),
    )
        .prop_map(|(a, i, mx, m, j)| settings(a, i, mx, m, j))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn laws_hold_for_generated_policies(
        st in settings_strategy(),
        fails in 0u32..10,
        permanent_at in prop::option::weighted(0.3, 1u32..10),
        seed in 0u64..1_000_000,
    ) {
        check_laws(st, fails, permanent_at, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    for seed in 0..1000 {
        let st = settings(5, 100, 10_000, 2.0, true);
        check_laws(st, (seed % 7) as u32, (seed % 5 == 0).then_some(3), seed);
    }
}

/// The jittered delays come from the seed: the same seed gives the same delays, and across
/// seeds they spread over [0, d_k].
#[test]
fn jitter_is_from_the_seed_and_spreads() {
    let delays = |seed: u64| {
        let out = Rc::new(RefCell::new(Vec::new()));
        let o = out.clone();
        sim_run(seed, move |s| async move {
            let p = Retry::new(s.runtime(), settings(4, 100, 10_000, 2.0, true), None);
            for k in 1..4 {
                o.borrow_mut().push(p.next_delay(k).unwrap());
            }
        });
        out.take()
    };
    assert_eq!(delays(3), delays(3));
    let firsts: Vec<Duration> = (0..200).map(|s| delays(s)[0]).collect();
    assert!(firsts.iter().all(|d| *d <= ms(100)));
    assert!(firsts.iter().any(|d| *d < ms(10)) && firsts.iter().any(|d| *d > ms(90)));
}

// ---------------------------------------------------------------------------------------------
// Misuse, sharing, real time
// ---------------------------------------------------------------------------------------------

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const F: &str = "local f = function() return 1 end";
    check_all(&[
        m(
            F,
            "goroutine.retry(5, f)",
            "goroutine.retry",
            "options must be a table (got 5)",
        ),
        m(
            F,
            "goroutine.retry({}, 5)",
            "goroutine.retry",
            "expects a function (got 5)",
        ),
        m(
            F,
            "goroutine.retry({max_attempts = 0}, f)",
            "goroutine.retry_policy",
            "max_attempts must be a positive integer (got 0)",
        ),
        m(
            F,
            "goroutine.retry({multiplier = 0.5}, f)",
            "goroutine.retry_policy",
            "multiplier must be a number >= 1 (got 0.5)",
        ),
        m(
            F,
            "goroutine.retry({initial_delay = -1}, f)",
            "goroutine.retry_policy",
            "initial_delay must be a non-negative number",
        ),
        m(
            F,
            "goroutine.retry({jitter = 'yes'}, f)",
            "goroutine.retry_policy",
            "jitter must be a boolean",
        ),
        m(
            "local p = goroutine.retry_policy{}",
            "p:next_delay(0)",
            "retry_policy:next_delay",
            "attempt must be at least 1 (got 0)",
        ),
    ]);
}

/// One policy, created in Rust, used by a Rust task and by a Lua goroutine (`goroutine.retry`
/// takes a policy in place of the options).
#[test]
fn lua_and_rust_share_one_policy() {
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let p = Retry::new(sim.runtime(), settings(3, 10, 1000, 2.0, false), None);
    world.expose("policy", p.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
local n = 0
local r, err = goroutine.retry(policy, function() n = n + 1 return nil, "no" end)
assert(r == nil and err == "no" and n == 3 and goroutine.now() == 30)
assert(policy:max_attempts() == 3 and policy:delay_cap(2) == 20)
"#,
        )
        .unwrap();
    let s = sim.clone();
    s.clone().spawn("rust", async move {
        let r: Result<(), ()> = retry(&p, || async { Err(Failure::Transient(())) }).await;
        assert!(r.is_err());
        assert_eq!(s.now(), ms(30));
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local n = 0
local t0 = goroutine.now()
local r = goroutine.retry({initial_delay = 5, jitter = true}, function()
  n = n + 1
  if n < 3 then error("x") end
  return "ok"
end)
assert(r == "ok" and n == 3)
assert(goroutine.now() - t0 <= 1000)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
