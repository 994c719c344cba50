//! Go's `sync.WaitGroup`: a counter; `wait` parks until it reaches zero. When it does, every
//! waiter is released at once. A negative counter is misuse.

use std::rc::Rc;

use super::Misuse;
use super::base::{Base, debug_handle};
use super::op::Op;
use super::park::Parked;
use crate::runtime::{Blocking, ResourceKind, ResourceRef, Runtime, Wait};

/// Any goroutine may call `done`: who will release a waiter is unknown.
const KIND: ResourceKind = ResourceKind::released_by_anyone("waitgroup");

/// A wait for the counter to reach zero.
const WAIT: Blocking = Blocking::new("wait", "block-wait");

struct State {
    count: i64,
    waiters: Vec<Rc<Parked>>,
}

type Shared = Base<State>;

/// A wait group. Clones are the same group.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use std::time::Duration;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let wg = s.wait_group();
///     for i in 1..=3u64 {
///         wg.add(1).expect("non-negative");
///         let (wg, t) = (wg.clone(), s.clone());
///         s.spawn("worker", async move {
///             t.sleep(Duration::from_millis(i * 10)).await;
///             wg.done();
///         });
///     }
///     wg.wait().await;
///     assert_eq!(s.now(), Duration::from_millis(30)); // the slowest worker
///     assert_eq!(wg.count(), 0);
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    shared: Rc<Shared>,
}

debug_handle!(WaitGroup);

impl WaitGroup {
    /// A wait group at zero.
    pub fn new(rt: &Runtime, created_at: Option<Rc<str>>) -> WaitGroup {
        let state = State {
            count: 0,
            waiters: Vec::new(),
        };
        WaitGroup {
            shared: Base::new(rt, KIND, created_at, None, state),
        }
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Adds `delta` (may be negative); reaching zero releases the waiters.
    pub fn add(&self, delta: i64) -> Result<(), Misuse> {
        let mut st = self.shared.state.borrow_mut();
        let Some(count) = st.count.checked_add(delta).filter(|c| *c >= 0) else {
            return Err(Misuse(format!("negative counter ({} + {delta})", st.count)));
        };
        st.count = count;
        let released = if count == 0 {
            std::mem::take(&mut st.waiters)
        } else {
            Vec::new()
        };
        drop(st);
        let verb = if delta < 0 { "done" } else { "add" };
        self.shared
            .trace_with(verb, || Some(format!("count={count}")));
        for p in released {
            p.fire(&self.shared.rt, 0);
        }
        Ok(())
    }

    /// Takes one off the counter (Go's `Done`); reaching zero releases the waiters. A negative
    /// counter is a bug in the caller, so it panics there, as Go's does (a panic in a task fails
    /// the run with this message and the caller's line).
    ///
    /// ```
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let wg = s.wait_group();
    ///     for i in 0..3 {
    ///         wg.add(1).expect("positive");
    ///         let wg = wg.clone();
    ///         s.spawn(&format!("w{i}"), async move { wg.done() });
    ///     }
    ///     wg.wait().await;
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    #[track_caller]
    pub fn done(&self) {
        if let Err(e) = self.add(-1) {
            panic!("WaitGroup::done: {e}");
        }
    }

    /// Returns true if the counter is zero now; otherwise parks until it is (false).
    pub(crate) fn wait_or_park(&self) -> bool {
        let mut st = self.shared.state.borrow_mut();
        if st.count == 0 {
            return true;
        }
        st.waiters.push(Parked::new(self.shared.rt.current()));
        drop(st);
        self.shared.rt.block(Wait::on(WAIT, &self.shared.res));
        false
    }

    /// The counter now.
    pub fn count(&self) -> i64 {
        self.shared.state.borrow().count
    }
}

impl WaitGroup {
    /// Waits until the counter is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let wg = s.wait_group();
    ///     wg.wait().await; // a zero counter: returns at once
    ///     wg.add(1).expect("non-negative");
    ///     let (w, t) = (wg.clone(), s.clone());
    ///     s.spawn("worker", async move {
    ///         t.sleep(Duration::from_millis(12)).await;
    ///         w.done();
    ///     });
    ///     wg.wait().await;
    ///     assert_eq!(s.now(), Duration::from_millis(12));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn wait(&self) -> Op<()> {
        let wg = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || wg.wait_or_park(),
        )
    }
}
