//! The rate limiter (seed 3.2): its laws across many seeds and generated workloads, the edge
//! cases of its references at exact virtual instants, the pitfalls they hit, its misuse errors,
//! one limiter shared by Lua and Rust, and a real-time run.
//!
//! Ported from golang.org/x/time/rate `rate_test.go` (TestLimiterBurst1, TestLimiterBurst3,
//! TestSimultaneousRequests, TestLongRunningQPS, TestSimpleReserve, TestMix, TestCancelInvalid,
//! TestCancelLast, TestCancelTooLate, TestCancel0Tokens, TestCancel1Token, TestCancelMulti,
//! TestReserveMax, TestWaitSimple, TestWaitTimeout, TestZeroLimit), with `d = 100ms` and
//! `NewLimiter(10, b)` as `rate = 10, per = 1000ms`. Not ported, deliberately: the tests that
//! move the clock backwards (a gosim clock never does), those of `SetLimit`/`SetBurst` (no such
//! calls), `Inf` limits, and float limits (`rate` is an integer count per period). Regressions:
//! golang/go#52584 (a refused call mutated state), #39984 and #68541 (rate 0), #71154 (overflow
//! with tiny rates), and governor#107 (one extra cell after a long idle).

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{RateLimiter, WaitError};
use gosim::runtime::Subject;
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The x/time/rate tests' instants: `t(k)` is `k * d`, `d = 100ms`.
fn t(k: u64) -> Duration {
    ms(100 * k)
}

/// Sleeps until the run's instant `at`.
async fn until(s: &Sim, at: Duration) {
    let now = s.now();
    assert!(at >= now, "the steps go forward in time");
    s.sleep(at - now).await;
}

/// Runs `body` as the main task of a seeded run and asserts it passed.
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

/// x/time/rate's `NewLimiter(10, burst)`.
fn lim10(s: &Sim, burst: u64) -> RateLimiter {
    RateLimiter::new(s.runtime(), 10, ms(1000), burst, None)
}

// ---------------------------------------------------------------------------------------------
// x/time/rate rate_test.go, at exact instants
// ---------------------------------------------------------------------------------------------

/// `run(t, lim, []allow{...})`: at each instant (in multiples of d), `allow(n)` must say `ok`.
async fn allows(s: &Sim, lim: &RateLimiter, steps: &[(u64, u64, bool)]) {
    for (i, &(k, n, ok)) in steps.iter().enumerate() {
        until(s, t(k)).await;
        assert_eq!(lim.allow(n), ok, "step {i}: allow({n}) at t{k}");
    }
}

#[test]
fn x_time_rate_limiter_burst_1() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 1);
        let steps = [
            (0, 1, true),
            (0, 1, false),
            (0, 1, false),
            (1, 1, true),
            (1, 1, false),
            (1, 1, false),
            (2, 2, false), // burst size is 1, so n=2 always fails
            (2, 1, true),
            (2, 1, false),
        ];
        allows(&s, &lim, &steps).await;
    });
}

#[test]
fn x_time_rate_limiter_burst_3() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 3);
        let steps = [
            (0, 2, true),
            (0, 2, false),
            (0, 1, true),
            (0, 1, false),
            (1, 4, false),
            (2, 1, true),
            (3, 1, true),
            (4, 1, true),
            (4, 1, true),
            (4, 1, false),
            (4, 1, false),
            (9, 3, true),
            (9, 0, true),
        ];
        allows(&s, &lim, &steps).await;
    });
}

/// A reservation step: at t`k`, `reserve(n)` acts at t`act` (`None`: not ok).
async fn reserve(
    s: &Sim,
    lim: &RateLimiter,
    k: u64,
    n: u64,
    act: Option<u64>,
) -> gosim::patterns::Reservation {
    until(s, t(k)).await;
    let r = lim.reserve(n);
    assert_eq!(r.ok(), act.is_some(), "reserve({n}) at t{k}: ok");
    assert_eq!(r.time_to_act(), act.map(t), "reserve({n}) at t{k}: act");
    r
}

#[test]
fn x_time_rate_simple_reserve() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 2);
        reserve(&s, &lim, 0, 2, Some(0)).await;
        reserve(&s, &lim, 0, 2, Some(2)).await;
        reserve(&s, &lim, 3, 2, Some(4)).await;
    });
}

#[test]
fn x_time_rate_mix() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 2);
        reserve(&s, &lim, 0, 3, None).await; // n > burst
        reserve(&s, &lim, 0, 2, Some(0)).await;
        allows(&s, &lim, &[(1, 2, false)]).await; // not enough tokens
        reserve(&s, &lim, 1, 2, Some(2)).await;
        allows(&s, &lim, &[(1, 1, false)]).await; // negative tokens
        allows(&s, &lim, &[(3, 1, true)]).await;
    });
}

#[test]
fn x_time_rate_cancel_invalid() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 2);
        reserve(&s, &lim, 0, 2, Some(0)).await;
        let r = reserve(&s, &lim, 0, 3, None).await;
        r.cancel(); // no effect
        reserve(&s, &lim, 0, 2, Some(2)).await; // no extra tokens
    });
}

#[test]
fn x_time_rate_cancel_last() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 2);
        reserve(&s, &lim, 0, 2, Some(0)).await;
        let r = reserve(&s, &lim, 0, 2, Some(2)).await;
        until(&s, t(1)).await;
        r.cancel(); // 2 tokens back
        reserve(&s, &lim, 1, 2, Some(2)).await;
    });
}

#[test]
fn x_time_rate_cancel_too_late() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 2);
        reserve(&s, &lim, 0, 2, Some(0)).await;
        let r = reserve(&s, &lim, 0, 2, Some(2)).await;
        until(&s, t(3)).await;
        r.cancel(); // too late: no effect
        reserve(&s, &lim, 3, 2, Some(4)).await;
    });
}

#[test]
fn x_time_rate_cancel_0_tokens() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 2);
        reserve(&s, &lim, 0, 2, Some(0)).await;
        let r = reserve(&s, &lim, 0, 1, Some(1)).await;
        reserve(&s, &lim, 0, 1, Some(2)).await;
        r.cancel(); // 0 tokens back: the later reservation counts on them
        reserve(&s, &lim, 0, 1, Some(3)).await;
    });
}

#[test]
fn x_time_rate_cancel_1_token() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 2);
        reserve(&s, &lim, 0, 2, Some(0)).await;
        let r = reserve(&s, &lim, 0, 2, Some(2)).await;
        reserve(&s, &lim, 0, 1, Some(3)).await;
        until(&s, t(2)).await;
        r.cancel(); // 1 token back
        reserve(&s, &lim, 2, 2, Some(4)).await;
    });
}

#[test]
fn x_time_rate_cancel_multi() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 4);
        reserve(&s, &lim, 0, 4, Some(0)).await;
        let ra = reserve(&s, &lim, 0, 3, Some(3)).await;
        reserve(&s, &lim, 0, 1, Some(4)).await;
        let rc = reserve(&s, &lim, 0, 1, Some(5)).await;
        until(&s, t(1)).await;
        rc.cancel(); // 1 token back
        ra.cancel(); // 2 tokens back, as if C was never reserved
        reserve(&s, &lim, 1, 3, Some(5)).await;
    });
}

/// TestReserveMax: a reservation with a maximum wait is a wait with a timeout here.
#[test]
fn x_time_rate_reserve_max() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 2);
        assert_eq!(lim.wait(2, Some(t(1))).await, Ok(()));
        let r = reserve(&s, &lim, 0, 1, Some(1)).await; // close future: within d
        assert!(r.delay() <= t(1));
        assert_eq!(
            lim.wait(1, Some(t(1))).await,
            Err(WaitError::WouldExceedTimeout),
            "time to act too far in the future"
        );
        assert_eq!(s.now(), t(0), "refused at once");
    });
}

#[test]
fn x_time_rate_wait_simple_and_timeout() {
    sim_run(1, |s| async move {
        let lim = lim10(&s, 3);
        assert_eq!(
            lim.wait(4, None).await,
            Err(WaitError::ExceedsBurst { n: 4, burst: 3 })
        );
        assert_eq!(lim.wait(2, None).await, Ok(())); // act now
        assert_eq!(s.now(), t(0));
        // TestWaitTimeout: 3 tokens need 2d, the timeout is d: fails at once.
        assert_eq!(
            lim.wait(3, Some(t(1))).await,
            Err(WaitError::WouldExceedTimeout)
        );
        assert_eq!(s.now(), t(0));
        assert_eq!(lim.wait(3, None).await, Ok(())); // act later
        assert_eq!(s.now(), t(2));
    });
}

#[test]
fn x_time_rate_simultaneous_requests() {
    for seed in 0..50 {
        let ok = Rc::new(RefCell::new(0));
        let ok2 = ok.clone();
        sim_run(seed, move |s| async move {
            let lim = RateLimiter::new(s.runtime(), 1, ms(1000), 5, None);
            let wg = s.wait_group();
            for i in 0..15 {
                wg.add(1).unwrap();
                let (lim, wg, ok) = (lim.clone(), wg.clone(), ok2.clone());
                s.spawn(&format!("req-{i}"), async move {
                    if lim.allow(1) {
                        *ok.borrow_mut() += 1;
                    }
                    wg.add(-1).unwrap();
                });
            }
            wg.wait().await;
        });
        assert_eq!(*ok.borrow(), 5, "seed {seed}");
    }
}

/// TestLongRunningQPS: 100/s with a burst of 100, offered every 2 ms for 5 s: the count is the
/// ideal one (burst + rate * elapsed), exactly, in virtual time.
#[test]
fn x_time_rate_long_running_qps() {
    let ok = Rc::new(RefCell::new(0u64));
    let ok2 = ok.clone();
    sim_run(1, move |s| async move {
        let lim = RateLimiter::new(s.runtime(), 100, ms(1000), 100, None);
        while s.now() < ms(5000) {
            if lim.allow(1) {
                *ok2.borrow_mut() += 1;
            }
            s.sleep(ms(2)).await;
        }
    });
    // Last call at 4998 ms: 100 + floor(4998 * 100 / 1000) = 599.
    assert_eq!(*ok.borrow(), 599);
}

#[test]
fn x_time_rate_zero_limit() {
    sim_run(1, |s| async move {
        let lim = RateLimiter::new(s.runtime(), 0, ms(1000), 1, None);
        assert!(lim.allow(1), "want true when first used");
        assert!(!lim.allow(1), "want false when already used");
    });
}

// ---------------------------------------------------------------------------------------------
// Pitfalls
// ---------------------------------------------------------------------------------------------

/// golang/go#52584: refused calls (`allow` without tokens, `n > burst`, a wait that would
/// exceed its timeout, a reservation that can never be) change nothing: the limiter then behaves
/// exactly as a twin that never saw them.
#[test]
fn refused_calls_change_nothing_go_52584() {
    sim_run(1, |s| async move {
        let a = lim10(&s, 2);
        let b = lim10(&s, 2);
        assert!(a.allow(2) && b.allow(2));
        until(&s, ms(50)).await;
        assert!(!a.allow(1));
        assert!(!a.allow(3));
        assert!(!a.reserve(3).ok());
        assert_eq!(
            a.wait(1, Some(ms(10))).await,
            Err(WaitError::WouldExceedTimeout)
        );
        assert_eq!(a.tokens(), b.tokens());
        until(&s, ms(100)).await;
        assert!(a.allow(1) && b.allow(1), "the token due at t=100 is there");
        let (ra, rb) = (a.reserve(2), b.reserve(2));
        assert_eq!(ra.time_to_act(), rb.time_to_act());
        assert_eq!(ra.time_to_act(), Some(ms(300)));
    });
}

/// golang/go#39984 and #68541: with rate 0 the burst goes through (by allow, wait and reserve
/// alike), then nothing ever does, and a wait without timeout fails at once instead of hanging.
#[test]
fn rate_zero_lets_the_burst_through_then_nothing_go_39984_68541() {
    sim_run(1, |s| async move {
        let lim = RateLimiter::new(s.runtime(), 0, ms(1000), 3, None);
        let early = lim.reserve(3);
        assert!(early.ok());
        early.cancel();
        assert!(
            (lim.tokens() - 3.0).abs() < 1e-9,
            "a reservation cancelled at its instant gives its tokens back"
        );
        assert_eq!(lim.wait(1, None).await, Ok(()));
        assert!(lim.allow(1));
        let r = lim.reserve(1);
        assert!(r.ok() && r.delay() == Duration::ZERO);
        assert!(!lim.allow(1));
        assert_eq!(lim.wait(1, None).await, Err(WaitError::Never));
        assert_eq!(lim.wait(1, Some(ms(10))).await, Err(WaitError::Never));
        let never = lim.reserve(1);
        assert!(!never.ok() && never.delay() == Duration::MAX);
        s.sleep(ms(1_000_000)).await;
        assert!(!lim.allow(1), "time brings nothing at rate 0");
        r.cancel();
        assert!(
            !lim.allow(1),
            "cancelled after its instant: nothing comes back"
        );
        assert!(lim.allow(0), "zero tokens are always allowed");
    });
}

/// golang/go#71154: with a tiny rate the wait for a token is huge, never negative and never an
/// overflow that lets a call through early; beyond the clock it is "never".
#[test]
fn tiny_rates_do_not_overflow_go_71154() {
    sim_run(1, |s| async move {
        // One token per ~31.7 years: the wait fits the clock.
        let per = Duration::from_secs(1_000_000_000);
        let lim = RateLimiter::new(s.runtime(), 1, per, 1, None);
        assert!(lim.allow(1));
        assert!(!lim.allow(1));
        let r = lim.reserve(1);
        assert!(r.ok());
        assert_eq!(r.delay(), per);
        r.cancel();
        assert_eq!(
            lim.wait(1, Some(Duration::from_secs(3600))).await,
            Err(WaitError::WouldExceedTimeout)
        );
        // A period beyond the clock (and 2^64 ns): the next token never comes.
        let lim = RateLimiter::new(s.runtime(), 1, Duration::MAX, 2, None);
        assert!(lim.allow(2));
        assert!(!lim.allow(1));
        assert!(!lim.reserve(1).ok());
        assert_eq!(lim.wait(1, None).await, Err(WaitError::Never));
        // A huge rate: tokens come at once, no overflow in elapsed * rate.
        let lim = RateLimiter::new(s.runtime(), u64::MAX / 2, ms(1), 3, None);
        assert!(lim.allow(3));
        s.sleep(Duration::from_secs(3600)).await;
        assert!(lim.allow(3) && !lim.allow(1));
    });
}

/// governor#107: after a long idle the bucket holds exactly `burst`, never one cell more.
#[test]
fn no_extra_cell_after_idle_governor_107() {
    sim_run(1, |s| async move {
        let lim = RateLimiter::new(s.runtime(), 1, ms(100), 5, None);
        for _ in 0..5 {
            assert!(lim.allow(1));
        }
        assert!(!lim.allow(1));
        s.sleep(ms(10_000)).await;
        for _ in 0..5 {
            assert!(lim.allow(1));
        }
        assert!(!lim.allow(1), "exactly the burst after idle");
        s.sleep(ms(99)).await;
        assert!(!lim.allow(1));
        s.sleep(ms(1)).await;
        assert!(lim.allow(1) && !lim.allow(1));
        // The same with waits: 5 at once, the 6th one period later.
        s.sleep(ms(10_000)).await;
        let t0 = s.now();
        for _ in 0..5 {
            lim.wait(1, None).await.unwrap();
        }
        assert_eq!(s.now(), t0);
        lim.wait(1, None).await.unwrap();
        assert_eq!(s.now(), t0 + ms(100));
    });
}

/// A wait that needs exactly its timeout succeeds (and ends exactly then); one that needs 1 ns
/// more fails at once. `r:delay()` is never negative.
#[test]
fn exact_timeout_boundary_and_delay_never_negative() {
    let src = r#"
local lim = goroutine.rate_limiter{rate = 1, per = 100, burst = 1}
assert(lim:allow())
local ok, err = lim:wait(1, 99.999999)
assert(ok == false and err == "wait would exceed the timeout" and goroutine.now() == 0, err)
assert(lim:wait(1, 100) == true)
assert(goroutine.now() == 100)
local r = lim:reserve()
assert(r:ok() and r:delay() == 100)
goroutine.sleep(200)
assert(r:delay() == 0, "never negative")
r:cancel()                      -- too late: nothing comes back
assert(lim:allow() and not lim:allow())
local big = lim:reserve(2)
assert(not big:ok() and big:delay() == math.huge)
assert(lim:allow(0))
"#;
    common::expect_pass_on_seeds(src);
}

// ---------------------------------------------------------------------------------------------
// Laws
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Kind {
    Allow,
    Wait(Option<u64>),
    /// Reserve, then sleep the delay (using the tokens) or cancel after `c` ms.
    Reserve(Option<u64>),
}

#[derive(Debug, Clone)]
struct JobSpec {
    start: u64,
    n: u64,
    kind: Kind,
}

fn job_spec() -> impl Strategy<Value = JobSpec> {
    let kind = prop_oneof![
        Just(Kind::Allow),
        prop::option::of(0u64..60).prop_map(Kind::Wait),
        prop::option::weighted(0.4, 0u64..60).prop_map(Kind::Reserve),
    ];
    (0u64..80, 0u64..5, kind).prop_map(|(start, n, kind)| JobSpec { start, n, kind })
}

/// The laws on one run: in any window [a, b] the tokens admitted are at most
/// `burst + rate * (b - a) / per`; waiters parked on the limiter are admitted in call order;
/// nobody is left blocked.
fn check_laws(rate: u64, per: u64, burst: u64, jobs: &[JobSpec], seed: u64) {
    let sim = Sim::with_seed(seed);
    let lim = RateLimiter::new(sim.runtime(), rate, ms(per), burst, None);
    let admitted: Rc<RefCell<Vec<(Duration, u64)>>> = Rc::default();
    let s = sim.clone();
    let adm = admitted.clone();
    let jobs2 = jobs.to_vec();
    let report = sim.run(async move {
        let wg = s.wait_group();
        for (i, j) in jobs2.into_iter().enumerate() {
            wg.add(1).unwrap();
            let (s2, lim, wg, adm) = (s.clone(), lim.clone(), wg.clone(), adm.clone());
            s.spawn(&format!("job-{i}"), async move {
                s2.sleep(ms(j.start)).await;
                match j.kind {
                    Kind::Allow => {
                        if lim.allow(j.n) {
                            adm.borrow_mut().push((s2.now(), j.n));
                        }
                    }
                    Kind::Wait(t) => {
                        let before = s2.now();
                        match lim.wait(j.n, t.map(ms)).await {
                            Ok(()) => adm.borrow_mut().push((s2.now(), j.n)),
                            Err(_) => assert_eq!(s2.now(), before, "a refused wait fails at once"),
                        }
                    }
                    Kind::Reserve(cancel) => {
                        let r = lim.reserve(j.n);
                        if r.ok() {
                            let act = r.time_to_act().unwrap();
                            match cancel {
                                Some(c) => {
                                    s2.sleep(ms(c)).await;
                                    r.cancel();
                                    // A cancel on or before the instant gives tokens back; after
                                    // it, the tokens were used.
                                    if act < s2.now() {
                                        adm.borrow_mut().push((act, j.n));
                                    }
                                }
                                None => {
                                    s2.sleep(r.delay()).await;
                                    assert_eq!(s2.now(), act);
                                    adm.borrow_mut().push((act, j.n));
                                }
                            }
                        }
                    }
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
    let mut adm = admitted.borrow().clone();
    adm.sort();
    let per_ns = ms(per).as_nanos();
    for i in 0..adm.len() {
        let mut sum = 0u128;
        for j in i..adm.len() {
            sum += adm[j].1 as u128;
            let window = (adm[j].0 - adm[i].0).as_nanos();
            assert!(
                sum * per_ns <= burst as u128 * per_ns + rate as u128 * window,
                "seed {seed}: {sum} tokens admitted in [{:?}, {:?}] (rate {rate}/{per}ms, burst {burst})\n{adm:?}",
                adm[i].0,
                adm[j].0
            );
        }
    }
    // Waiters parked on the limiter are admitted in the order they blocked.
    let mut queue = std::collections::VecDeque::new();
    for e in &report.events {
        if !matches!(&e.subject(), Subject::Resource(r) if r.kind() == "rate_limiter") {
            continue;
        }
        match e.verb {
            "block-wait" => queue.push_back(e.task),
            "wait" if queue.contains(&e.task) => {
                assert_eq!(queue.pop_front(), Some(e.task), "seed {seed}: out of order");
            }
            _ => {}
        }
    }
    assert!(queue.is_empty());
}

/// The case a sweep found (shrunk by proptest): a reservation cancelled while a later waiter is
/// parked behind it gives back the tokens that waiter does not count on; a caller arriving next
/// must still queue behind the parked waiter (waiters wake in call order).
#[test]
fn a_cancel_does_not_let_a_new_caller_pass_a_parked_waiter() {
    let j = |start, n, kind| JobSpec { start, n, kind };
    check_laws(
        1,
        7,
        4,
        &[
            j(0, 0, Kind::Allow),
            j(37, 2, Kind::Allow),
            j(51, 2, Kind::Wait(None)),
            j(37, 1, Kind::Wait(None)),
            j(38, 2, Kind::Wait(None)),
            j(0, 0, Kind::Allow),
            j(39, 4, Kind::Reserve(Some(12))),
            j(51, 1, Kind::Wait(None)),
        ],
        776414,
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn laws_hold_for_generated_workloads(
        rate in 0u64..5,
        per in 1u64..40,
        burst in 1u64..5,
        jobs in prop::collection::vec(job_spec(), 1..14),
        seed in 0u64..1_000_000,
    ) {
        check_laws(rate, per, burst, &jobs, seed);
    }

    /// Refusals change nothing: a limiter that sees every call behaves as a twin that sees
    /// only the calls the first one accepted (same tokens after each step, same final
    /// reservation instant).
    #[test]
    fn refusals_change_nothing(
        rate in 0u64..4,
        burst in 1u64..4,
        steps in prop::collection::vec((0u64..30, 0u64..5, 0u8..3, prop::option::of(0u64..40)), 1..30),
    ) {
        sim_run(1, move |s| async move {
            let a = RateLimiter::new(s.runtime(), rate, ms(10), burst, None);
            let b = RateLimiter::new(s.runtime(), rate, ms(10), burst, None);
            for (gap, n, op, timeout) in steps {
                s.sleep(ms(gap)).await;
                match op {
                    0 => {
                        if a.allow(n) {
                            assert!(b.allow(n));
                        }
                    }
                    1 => {
                        let r = a.reserve(n);
                        if r.ok() {
                            let rb = b.reserve(n);
                            assert_eq!(r.time_to_act(), rb.time_to_act());
                        }
                    }
                    _ => {
                        if a.wait(n, timeout.map(ms)).await.is_ok() {
                            assert_eq!(b.wait(n, timeout.map(ms)).await, Ok(()));
                        }
                    }
                }
                // Equal, up to the rounding of one admitted wait: the twin's wait starts at the
                // first one's end, where the bucket may be refilled to the cap by less than
                // `rate` units (a nanosecond of refill) before the tokens are taken.
                let slack = rate as f64 / ms(10).as_nanos() as f64 + 1e-12;
                assert!((a.tokens() - b.tokens()).abs() <= slack, "{} vs {}", a.tokens(), b.tokens());
            }
            let (ra, rb) = (a.reserve(burst), b.reserve(burst));
            let (ta, tb) = (ra.time_to_act(), rb.time_to_act());
            assert_eq!(ta.is_some(), tb.is_some());
            if let (Some(ta), Some(tb)) = (ta, tb) {
                assert!(ta.abs_diff(tb) <= Duration::from_nanos(1), "{ta:?} vs {tb:?}");
            }
        });
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let jobs: Vec<JobSpec> = (0..10)
        .map(|i| JobSpec {
            start: (i * 7) % 13,
            n: 1 + i % 3,
            kind: match i % 4 {
                0 => Kind::Allow,
                1 => Kind::Wait(if i % 8 == 1 { Some(15) } else { None }),
                2 => Kind::Reserve(if i % 8 == 2 { Some(3) } else { None }),
                _ => Kind::Wait(None),
            },
        })
        .collect();
    for seed in 0..1000 {
        check_laws(2, 10, 3, &jobs, seed);
    }
}

// ---------------------------------------------------------------------------------------------
// Misuse, sharing, real time
// ---------------------------------------------------------------------------------------------

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const L: &str = "local l = goroutine.rate_limiter{rate = 1}";
    check_all(&[
        m(
            "",
            "goroutine.rate_limiter(5)",
            "goroutine.rate_limiter",
            "(got 5)",
        ),
        m(
            "",
            "goroutine.rate_limiter{rate = -1}",
            "goroutine.rate_limiter",
            "rate must be a non-negative integer (got -1)",
        ),
        m(
            "",
            "goroutine.rate_limiter{burst = 2}",
            "goroutine.rate_limiter",
            "rate must be a non-negative integer (got nil)",
        ),
        m(
            "",
            "goroutine.rate_limiter{rate = 1, per = 0}",
            "goroutine.rate_limiter",
            "per must be a positive number",
        ),
        m(
            "",
            "goroutine.rate_limiter{rate = 1, burst = 'x'}",
            "goroutine.rate_limiter",
            "(got \"x\")",
        ),
        m(L, "l:allow(-1)", "rate_limiter:allow", "(got -1)"),
        m(L, "l:wait(1.5)", "rate_limiter:wait", "(got 1.5)"),
        m(
            L,
            "l:wait(1, 'soon')",
            "rate_limiter:wait",
            "(got \"soon\")",
        ),
        m(L, "l:reserve('x')", "rate_limiter:reserve", "(got \"x\")"),
        m(
            L,
            "l.allow(1)",
            "rate_limiter:allow",
            "expects a rate limiter",
        ),
        m(
            L,
            "l:reserve().cancel()",
            "reservation:cancel",
            "expects a reservation",
        ),
    ]);
}

/// One limiter, created in Rust, drained by a Rust task and waited on by Lua goroutines.
#[test]
fn lua_and_rust_share_one_limiter() {
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let lim = RateLimiter::new(sim.runtime(), 1, ms(10), 2, None);
    world.expose("lim", lim.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
goroutine.sleep(1)                  -- the Rust task took both tokens at t=0
assert(not lim:allow())
assert(lim:wait())                  -- the token of t=10
assert(goroutine.now() == 10)
assert(lim:wait())                  -- after the Rust task's reservation (t=20): t=30
assert(goroutine.now() == 30)
"#,
        )
        .unwrap();
    let s = sim.clone();
    s.clone().spawn("rust", async move {
        assert!(lim.allow(2));
        s.sleep(ms(5)).await;
        // Lua waits since t=1 for t=10; this reservation queues behind it: t=20.
        let r = lim.reserve(1);
        assert_eq!(r.time_to_act(), Some(ms(20)));
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local lim = goroutine.rate_limiter{rate = 1, per = 20, burst = 2}
local t0 = goroutine.now()
assert(lim:wait() and lim:wait())
assert(not lim:allow())
local ok, err = lim:wait(1, 1)
assert(ok == false, err)
assert(lim:wait())
assert(goroutine.now() - t0 >= 19)
local r = lim:reserve()
assert(r:ok() and r:delay() > 0)
r:cancel()
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}

/// A goroutine waiting on the limiter is woken by time alone: never part of a wait-for cycle
/// and never a false deadlock, even while everyone else waits on it.
#[test]
fn a_limiter_wait_is_never_a_false_deadlock() {
    let src = r#"
local lim = goroutine.rate_limiter{rate = 1, per = 1000, burst = 1}
assert(lim:allow())
local ch = goroutine.channel()
goroutine.spawn{name = "waiter", fn = function()
  assert(lim:wait())
  ch:send(goroutine.now())
end}
assert(ch:receive() == 1000)
"#;
    common::expect_pass_on_seeds(src);
}
