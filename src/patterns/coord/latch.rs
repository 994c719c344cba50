//! A countdown latch (seed 5.2), as Java's `CountDownLatch`: a count set at creation that only
//! goes down; `wait` returns once it is 0.
//!
//! - `count_down()` lowers the count by one; at 0 it does nothing (the count never increases and
//!   never goes below 0). The step that reaches 0 wakes every waiter, in arrival order.
//! - `wait(timeout)` returns `true` at once when the count is 0, else parks until it reaches 0
//!   (`true`) or the timeout passes (`false`; a timeout of 0 is a poll). A waiter that times out
//!   leaves and changes nothing.
//! - Ties: timers fire before any goroutine runs at their instant, so a count that reaches 0 in a
//!   goroutine at the very instant a wait times out comes too late for that wait (`false`), while
//!   a count already 0 when the deadline fires wins (`true`).
//!
//! Anyone may count down, so a wait is `released_by_anyone`: a latch nobody counts down is never
//! a false cycle; the global deadlock check (or the leak check at the end) names the waiters and
//! their lines.

use std::rc::Rc;

use crate::runtime::{Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TimerKey};
use crate::sync::{Base, Begin, Op, Parked, block_timed, debug_handle};

/// Any goroutine may count down: waits make no wait-for edges.
const KIND: ResourceKind = ResourceKind::released_by_anyone("latch");

/// A wait for the count to reach 0.
const WAIT: Blocking = Blocking::new("wait", "block-wait");

struct State {
    count: u64,
    waiters: Vec<Rc<Parked>>,
}

type Shared = Base<State>;

/// A countdown latch. Clones are the same latch.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ready = s.latch(2);
///     for i in 1..=2u64 {
///         let (l, t) = (ready.clone(), s.clone());
///         s.spawn("service", async move {
///             t.sleep(Duration::from_millis(i * 10)).await;
///             l.count_down();
///         });
///     }
///     assert!(ready.wait(None).await); // opens at zero, and stays open
///     assert_eq!((ready.count(), s.now()), (0, Duration::from_millis(20)));
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Latch {
    shared: Rc<Shared>,
}

debug_handle!(Latch);

/// How a wait starts.
#[derive(Debug)]
pub enum LatchStart {
    /// Decided at once: `true` (the count is 0) or `false` (a timeout of 0 while it is not).
    Done(bool),
    /// The goroutine is parked until the count reaches 0 or the deadline (the timer, if any).
    Parked(Rc<Parked>, Option<TimerKey>),
}

impl Latch {
    /// A latch counting down from `count` (0 is allowed: every wait returns at once).
    pub fn new(rt: &Runtime, count: u64, created_at: Option<Rc<str>>) -> Latch {
        let detail = Some(format!("count={count}"));
        Latch {
            shared: Base::new(
                rt,
                KIND,
                created_at,
                detail,
                State {
                    count,
                    waiters: Vec::new(),
                },
            ),
        }
    }

    /// Its identity (`latch#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// The count now.
    pub fn count(&self) -> u64 {
        self.shared.state.borrow().count
    }

    /// Goroutines waiting now.
    pub fn waiting(&self) -> usize {
        self.shared.state.borrow().waiters.len()
    }

    /// Lowers the count by one (nothing at 0); reaching 0 wakes every waiter. Takes no
    /// scheduling point (the callers' bindings and `count_down_op` do).
    pub fn count_down(&self) {
        let woken = {
            let mut st = self.shared.state.borrow_mut();
            if st.count == 0 {
                None
            } else {
                st.count -= 1;
                let woken = if st.count == 0 {
                    std::mem::take(&mut st.waiters)
                } else {
                    Vec::new()
                };
                Some((st.count, woken))
            }
        };
        let rt = &self.shared.rt;
        let Some((count, woken)) = woken else {
            if rt.tracing() {
                rt.emit(
                    "count_down",
                    Subject::Resource(self.shared.res.clone()),
                    Some("count=0 (already open)".into()),
                );
            }
            return;
        };
        if rt.tracing() {
            rt.emit(
                "count_down",
                Subject::Resource(self.shared.res.clone()),
                Some(format!("count={count}")),
            );
        }
        for p in woken {
            if rt.tracing() {
                rt.emit_as(
                    p.task(),
                    "open",
                    Subject::Resource(self.shared.res.clone()),
                    None,
                    None,
                );
            }
            p.fire(rt, 0);
        }
    }

    /// `count_down` as an operation of a Rust task (with its scheduling point).
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let latch = s.latch(1);
    ///     latch.count_down_op().await; // count_down plus a scheduling point
    ///     assert_eq!(latch.count(), 0);
    ///     latch.count_down_op().await; // at zero it does nothing
    ///     assert_eq!(latch.count(), 0);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn count_down_op(&self) -> Op<()> {
        let l = self.clone();
        Op::now(&self.shared.rt, move || l.count_down())
    }

    /// Returns at once if the count is 0 (or the timeout is 0), else parks the current goroutine
    /// until it reaches 0 or `timeout` passes.
    pub(crate) fn wait_or_park(&self, timeout: Option<Nanos>) -> LatchStart {
        let rt = &self.shared.rt;
        if self.count() == 0 {
            return LatchStart::Done(true);
        }
        if timeout == Some(0) {
            if rt.tracing() {
                rt.emit(
                    "wait",
                    Subject::Resource(self.shared.res.clone()),
                    Some("timeout".into()),
                );
            }
            return LatchStart::Done(false);
        }
        let parked = Parked::new(rt.current());
        self.shared.state.borrow_mut().waiters.push(parked.clone());
        let key = {
            let l = self.clone();
            block_timed(
                rt,
                WAIT,
                &self.shared.res,
                &parked,
                timeout,
                move |rt, p| l.leave(rt, p),
            )
        };
        LatchStart::Parked(parked, key)
    }

    /// A waiter timed out: it leaves (nothing else changes).
    fn leave(&self, rt: &Runtime, parked: &Rc<Parked>) {
        self.shared
            .state
            .borrow_mut()
            .waiters
            .retain(|w| !Rc::ptr_eq(w, parked));
        if rt.tracing() {
            rt.emit_as(
                parked.task(),
                "timeout",
                Subject::Resource(self.shared.res.clone()),
                None,
                None,
            );
        }
    }

    /// Waits until the count is 0: `true`, or `false` if `timeout` passes first
    /// (`Some(Duration::ZERO)` polls).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let latch = s.latch(1);
    ///     assert!(!latch.wait(Some(Duration::from_millis(5))).await); // false: timed out
    ///     assert_eq!(s.now(), Duration::from_millis(5));
    ///     latch.count_down();
    ///     assert!(latch.wait(None).await);
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn wait(&self, timeout: Option<std::time::Duration>) -> Op<bool> {
        let l = self.clone();
        let timeout = super::nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            match l.wait_or_park(timeout) {
                LatchStart::Done(ok) => Begin::Done(ok),
                LatchStart::Parked(parked, key) => {
                    let rt = l.shared.rt.clone();
                    Begin::Parked(Box::new(move || parked.timed_result(&rt, key).is_ok()))
                }
            }
        })
    }
}
