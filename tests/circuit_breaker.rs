//! The circuit breaker (seed 3.3): its laws across many seeds and generated workloads, the edge
//! cases of its references at exact virtual instants, the pitfall they hit, its misuse errors,
//! one breaker shared by Lua and Rust, and a real-time run.
//!
//! Cases ported from sony/gobreaker's `gobreaker_test.go` (TestDefaultCircuitBreaker: a breaker
//! tripping on consecutive failures, rejecting while open, half-open strictly after the timeout,
//! ErrTooManyRequests beyond MaxRequests, closing after MaxRequests successes; TestGeneration: a
//! result from an older generation is ignored) and resilience4j's
//! `CircuitBreakerStateMachineTest` (permitted calls in half-open, a half-open failure reopens
//! with a fresh wait). gobreaker's default `ReadyToTrip` is "more than 5 consecutive failures",
//! which is `threshold = 6` here. Regression: resilience4j#544 (a half-open permit whose result
//! was ignored leaked, and the breaker refused every call afterwards).

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{
    CallError, CircuitBreaker, CircuitSettings, CircuitState as S, Rejected, Transition,
};
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

type Log = Rc<RefCell<Vec<Transition>>>;

fn breaker(s: &Sim, threshold: u32, timeout: u64, half_open_max: u32) -> (CircuitBreaker, Log) {
    let log: Log = Rc::default();
    let l2 = log.clone();
    let cb = CircuitBreaker::new(
        s.runtime(),
        CircuitSettings {
            threshold,
            timeout: ms(timeout),
            half_open_max,
            on_state_change: Some(Box::new(move |from, to| l2.borrow_mut().push((from, to)))),
        },
        None,
    );
    (cb, log)
}

async fn succeed(cb: &CircuitBreaker) -> Result<u32, CallError<String>> {
    cb.call(|| async { Ok::<u32, String>(1) }).await
}

async fn fail(cb: &CircuitBreaker) -> Result<u32, CallError<String>> {
    cb.call(|| async { Err::<u32, String>("fail".into()) })
        .await
}

/// TestDefaultCircuitBreaker, at exact instants.
#[test]
fn gobreaker_default_breaker() {
    sim_run(1, |s| async move {
        let (cb, log) = breaker(&s, 6, 60_000, 1);
        assert_eq!(cb.state(), S::Closed);
        for _ in 0..5 {
            assert!(fail(&cb).await.is_err());
        }
        assert_eq!(cb.state(), S::Closed);
        assert_eq!(succeed(&cb).await, Ok(1)); // resets the consecutive failures
        for _ in 0..5 {
            fail(&cb).await.unwrap_err();
        }
        assert_eq!(cb.state(), S::Closed);
        fail(&cb).await.unwrap_err();
        assert_eq!(cb.state(), S::Open);
        assert_eq!(cb.generation(), 1);
        // Open: rejected without running.
        let ran = Rc::new(RefCell::new(false));
        let r2 = ran.clone();
        let r = cb
            .call(|| async move {
                *r2.borrow_mut() = true;
                Ok::<u32, String>(1)
            })
            .await;
        assert_eq!(r, Err(CallError::Rejected(Rejected::Open)));
        assert!(!*ran.borrow());
        // Exactly +timeout: still open; 1 ns later: half-open.
        s.sleep(ms(60_000)).await;
        assert_eq!(cb.state(), S::Open);
        fail(&cb).await.unwrap_err();
        assert_eq!(fail(&cb).await, Err(CallError::Rejected(Rejected::Open)));
        s.sleep(Duration::from_nanos(1)).await;
        assert_eq!(cb.state(), S::HalfOpen);
        // Half-open with MaxRequests 1: one trial; a second concurrent one is refused.
        let (permit, ts) = cb.try_acquire();
        let permit = permit.unwrap();
        assert_eq!(ts, vec![(S::Open, S::HalfOpen)]);
        assert_eq!(
            succeed(&cb).await,
            Err(CallError::Rejected(Rejected::TooManyRequests))
        );
        assert_eq!(permit.record(true), vec![(S::HalfOpen, S::Closed)]);
        assert_eq!(cb.state(), S::Closed);
        assert_eq!(
            *log.borrow(),
            vec![
                (S::Closed, S::Open),
                (S::Open, S::HalfOpen),
                (S::HalfOpen, S::Closed)
            ]
        );
    });
}

/// TestGeneration: results of calls admitted in an older generation are ignored.
#[test]
fn gobreaker_generation() {
    sim_run(1, |s| async move {
        let (cb, _) = breaker(&s, 1, 1000, 2);
        let (old, _) = cb.try_acquire();
        let old = old.unwrap();
        fail(&cb).await.unwrap_err(); // opens: generation 1
        assert_eq!(cb.state(), S::Open);
        assert!(
            old.record(true).is_empty(),
            "an older generation's success is ignored"
        );
        assert_eq!(cb.state(), S::Open);
        s.sleep(ms(1001)).await;
        let (a, _) = cb.try_acquire();
        let a = a.unwrap();
        assert_eq!(cb.state(), S::HalfOpen);
        assert_eq!(cb.generation(), 2);
        let (b, _) = cb.try_acquire();
        let b = b.unwrap();
        assert_eq!(b.record(false), vec![(S::HalfOpen, S::Open)]);
        assert!(a.record(false).is_empty(), "ignored: generation 2 is over");
        assert_eq!(cb.generation(), 3);
        // A half-open failure reopens with a fresh timeout (resilience4j).
        s.sleep(ms(1000)).await;
        assert_eq!(cb.state(), S::Open);
        s.sleep(ms(1)).await;
        assert_eq!(cb.state(), S::HalfOpen);
    });
}

/// resilience4j: half-open permits exactly `half_open_max` calls; that many consecutive
/// successes close it, and the counter of the closed state starts from zero.
#[test]
fn resilience4j_half_open_permitted_calls() {
    sim_run(1, |s| async move {
        let (cb, _) = breaker(&s, 2, 10, 3);
        fail(&cb).await.unwrap_err();
        fail(&cb).await.unwrap_err();
        s.sleep(ms(11)).await;
        let permits: Vec<_> = (0..3).map(|_| cb.try_acquire().0.unwrap()).collect();
        assert_eq!(cb.try_acquire().0.unwrap_err(), Rejected::TooManyRequests);
        let mut ts = Vec::new();
        for p in permits {
            ts.extend(p.record(true));
        }
        assert_eq!(ts, vec![(S::HalfOpen, S::Closed)]);
        fail(&cb).await.unwrap_err();
        assert_eq!(cb.state(), S::Closed, "one failure after closing: below 2");
    });
}

/// resilience4j#544: a half-open permit whose outcome is never recorded (an ignored error, a
/// cancelled call) gives its slot back; the breaker does not refuse every call from then on.
#[test]
fn an_unrecorded_half_open_permit_is_given_back_resilience4j_544() {
    sim_run(1, |s| async move {
        let (cb, _) = breaker(&s, 1, 10, 1);
        fail(&cb).await.unwrap_err();
        s.sleep(ms(11)).await;
        let (p, _) = cb.try_acquire();
        drop(p.unwrap()); // ignored
        assert_eq!(cb.state(), S::HalfOpen);
        assert_eq!(succeed(&cb).await, Ok(1), "the slot came back");
        assert_eq!(cb.state(), S::Closed);
    });
    // In Lua: an error raised by fn is a failure, recorded, never a leaked permit.
    let src = r#"
local cb = goroutine.circuit_breaker{threshold = 1, timeout = 10, half_open_max = 1}
assert(not cb:call(function() error("x") end))
goroutine.sleep(11)
local ok, err = cb:call(function() error({code = 1}) end)  -- a table error, raised
assert(not ok and cb:state() == "open", tostring(err))
goroutine.sleep(11)
assert(cb:call(function() return true end))
assert(cb:state() == "closed")
"#;
    common::expect_pass_on_seeds(src);
}

/// `on_state_change` runs synchronously, in order, in the goroutine whose call caused the
/// transition, and may block.
#[test]
fn lua_callbacks_run_in_the_causing_goroutine_and_may_block() {
    let src = r#"
local seen = {}
local cb
cb = goroutine.circuit_breaker{threshold = 1, timeout = 5, half_open_max = 1,
  on_state_change = function(from, to)
    goroutine.sleep(1)                         -- callbacks may block
    seen[#seen + 1] = goroutine.name() .. ":" .. from .. ">" .. to
  end}
goroutine.name("main")
local ok, err = cb:call(function() return nil, "down" end)
assert(not ok and err == "down")
assert(seen[1] == "main:closed>open")
local done = goroutine.channel()
goroutine.spawn{name = "prober", fn = function()
  goroutine.sleep(10)
  assert(cb:call(function() return "up" end))
  done:send(true)
end}
done:receive()
assert(#seen == 3, #seen)
assert(seen[2] == "prober:open>half-open" and seen[3] == "prober:half-open>closed")
assert(cb:call(function() return 1, 2, 3 end))
local a, b, c, d = cb:call(function() return 1, 2, 3 end)
assert(a == true and b == 1 and c == 2 and d == 3)
"#;
    common::expect_pass_on_seeds(src);
}

// ---------------------------------------------------------------------------------------------
// Laws
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct CallSpec {
    start: u64,
    dur: u64,
    ok: bool,
}

fn call_spec() -> impl Strategy<Value = CallSpec> {
    (0u64..120, 0u64..15, prop::bool::weighted(0.5)).prop_map(|(start, dur, ok)| CallSpec {
        start,
        dur,
        ok,
    })
}

#[derive(Default)]
struct Tally {
    calls: u64,
    rejected: u64,
    ran: u64,
    /// Starts per half-open generation.
    half_open_starts: std::collections::BTreeMap<u64, u32>,
}

fn check_laws(threshold: u32, timeout: u64, hom: u32, calls: &[CallSpec], seed: u64) {
    let sim = Sim::with_seed(seed);
    let (cb, log) = breaker(&sim, threshold, timeout, hom);
    let tally: Rc<RefCell<Tally>> = Rc::default();
    let s = sim.clone();
    let (cb2, t2) = (cb.clone(), tally.clone());
    let specs = calls.to_vec();
    let report = sim.run(async move {
        let wg = s.wait_group();
        for (i, c) in specs.into_iter().enumerate() {
            wg.add(1).unwrap();
            let (s2, cb, wg, t) = (s.clone(), cb2.clone(), wg.clone(), t2.clone());
            s.spawn(&format!("call-{i}"), async move {
                s2.sleep(ms(c.start)).await;
                t.borrow_mut().calls += 1;
                let (cb3, t3, s3) = (cb.clone(), t.clone(), s2.clone());
                let r = cb
                    .call(|| async move {
                        let st = cb3.state();
                        assert_ne!(st, S::Open, "an execution while open");
                        {
                            let mut t = t3.borrow_mut();
                            t.ran += 1;
                            if st == S::HalfOpen {
                                *t.half_open_starts.entry(cb3.generation()).or_default() += 1;
                            }
                        }
                        s3.sleep(ms(c.dur)).await;
                        if c.ok { Ok(()) } else { Err("failed") }
                    })
                    .await;
                if let Err(CallError::Rejected(_)) = r {
                    t.borrow_mut().rejected += 1;
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
    // Only legal transitions, chained from closed.
    let mut cur = S::Closed;
    for &(from, to) in log.borrow().iter() {
        assert_eq!(from, cur, "seed {seed}: transitions do not chain");
        assert!(
            matches!(
                (from, to),
                (S::Closed, S::Open)
                    | (S::Open, S::HalfOpen)
                    | (S::HalfOpen, S::Open)
                    | (S::HalfOpen, S::Closed)
            ),
            "seed {seed}: illegal {from} -> {to}"
        );
        cur = to;
    }
    let t = tally.borrow();
    assert_eq!(t.calls, calls.len() as u64);
    assert_eq!(
        t.calls,
        t.rejected + t.ran,
        "seed {seed}: rejected or ran, never both"
    );
    for (&g, &n) in &t.half_open_starts {
        assert!(
            n <= hom,
            "seed {seed}: {n} executions in half-open generation {g}"
        );
    }
    // Every run recorded once: one outcome event (success, failure or ignored) per admit.
    let count = |verb: &str| report.events.iter().filter(|e| e.verb == verb).count();
    assert_eq!(count("admit") as u64, t.ran);
    assert_eq!(
        count("success") + count("failure") + count("ignored"),
        count("admit"),
        "seed {seed}"
    );
    assert_eq!(count("reject") as u64, t.rejected);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn laws_hold_for_generated_workloads(
        threshold in 1u32..4,
        timeout in 0u64..30,
        hom in 1u32..4,
        calls in prop::collection::vec(call_spec(), 1..25),
        seed in 0u64..1_000_000,
    ) {
        check_laws(threshold, timeout, hom, &calls, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let calls: Vec<CallSpec> = (0..16)
        .map(|i| CallSpec {
            start: (i * 7) % 40,
            dur: (i * 3) % 9,
            ok: i % 3 != 0,
        })
        .collect();
    for seed in 0..1000 {
        check_laws(2, 10, 2, &calls, seed);
    }
}

// ---------------------------------------------------------------------------------------------
// Misuse, sharing, real time
// ---------------------------------------------------------------------------------------------

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const C: &str = "local cb = goroutine.circuit_breaker{threshold = 2}";
    check_all(&[
        m(
            "",
            "goroutine.circuit_breaker(5)",
            "goroutine.circuit_breaker",
            "(got 5)",
        ),
        m(
            "",
            "goroutine.circuit_breaker{threshold = 0}",
            "goroutine.circuit_breaker",
            "threshold must be a positive integer (got 0)",
        ),
        m(
            "",
            "goroutine.circuit_breaker{half_open_max = 'x'}",
            "goroutine.circuit_breaker",
            "(got \"x\")",
        ),
        m(
            "",
            "goroutine.circuit_breaker{timeout = -1}",
            "goroutine.circuit_breaker",
            "timeout must be a non-negative number",
        ),
        m(
            "",
            "goroutine.circuit_breaker{on_state_change = 3}",
            "goroutine.circuit_breaker",
            "on_state_change must be a function (got 3)",
        ),
        m(
            C,
            "cb:call(42)",
            "circuit_breaker:call",
            "expects a function (got 42)",
        ),
        m(
            C,
            "cb.state()",
            "circuit_breaker:state",
            "expects a circuit breaker",
        ),
        m(
            C,
            "local p = cb:acquire() p:record(true) p:record(true)",
            "permit:record",
            "already recorded",
        ),
    ]);
}

/// One breaker, created in Rust: Rust calls open it, a Lua goroutine sees it open and closes it.
#[test]
fn lua_and_rust_share_one_breaker() {
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let (cb, log) = breaker(&sim, 2, 10, 1);
    world.expose("cb", cb.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
goroutine.sleep(1)                      -- the Rust task failed twice at t=0
assert(cb:state() == "open")
local ok, err = cb:call(function() return 1 end)
assert(not ok and err == "circuit breaker is open")
goroutine.sleep(10)
assert(cb:call(function() return 1 end))
assert(cb:state() == "closed")
"#,
        )
        .unwrap();
    let s = sim.clone();
    s.spawn("rust", async move {
        fail(&cb).await.unwrap_err();
        fail(&cb).await.unwrap_err();
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    // The Rust callback saw every transition, the Lua-caused ones too.
    assert_eq!(
        *log.borrow(),
        vec![
            (S::Closed, S::Open),
            (S::Open, S::HalfOpen),
            (S::HalfOpen, S::Closed)
        ]
    );
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local cb = goroutine.circuit_breaker{threshold = 1, timeout = 20, half_open_max = 1}
assert(not cb:call(function() error("down") end))
assert(cb:state() == "open")
goroutine.sleep(25)
assert(cb:state() == "half-open")
assert(cb:call(function() return "up" end))
assert(cb:state() == "closed")
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
