//! A parked operation: one blocked goroutine, possibly registered in several wait queues at once
//! (a `select`). The first queue to complete it wins; the others see it is no longer live and
//! skip it, and the owner removes its other registrations when it wakes.

use std::rc::Rc;

pub(crate) use crate::runtime::Parked;
use crate::runtime::{Blocking, Nanos, ResourceRef, Runtime, TimerCallback, TimerKey, Wait};

/// The case a parked operation completes with when its deadline passes first.
pub(crate) const TIMED_OUT: usize = usize::MAX;

/// A timed wait whose deadline passed before it was granted.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use gosim::sync::Timeout;
/// use std::time::Duration;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let latch = s.latch(1);
///     let sem = s.weighted_semaphore(1);
///     sem.acquire(1, None).await.expect("free");
///     let r = sem.acquire(1, Some(Duration::from_millis(5))).await;
///     assert_eq!(r, Err(Timeout));
///     assert_eq!(s.now(), Duration::from_millis(5));
///     latch.count_down();
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout;

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("timeout")
    }
}

impl std::error::Error for Timeout {}

impl Parked {
    /// Arms a deadline at `at`: if the operation is still live then, `leave` runs first (the
    /// primitive takes the waiter out of its queue and grants whoever can now go: a weighted
    /// semaphore's next waiter may fit once a larger one left), then the operation completes
    /// with [`TIMED_OUT`]. An operation completed before its deadline should cancel the returned
    /// timer; a stale one does nothing and wakes nobody, so it never hides a deadlock.
    ///
    /// Timers fire before any goroutine runs at their instant, so a grant made earlier at that
    /// instant wins over the deadline (a value already available when a timeout fires wins).
    pub(crate) fn expire_at(
        self: &Rc<Self>,
        rt: &Runtime,
        at: Nanos,
        leave: impl FnOnce(&Runtime, &Rc<Parked>) + 'static,
    ) -> TimerKey {
        rt.add_timer(
            at,
            Box::new(Deadline {
                parked: self.clone(),
                leave: Box::new(leave),
            }),
        )
    }
}

/// Blocks the current goroutine on `res` in `op` (with its deadline, if any, so the wait-for
/// graph knows a timed wait is no false cycle) and arms the deadline: `leave` takes the waiter
/// out of the primitive's queue when it passes first. The timed wait of every pattern.
pub(crate) fn block_timed(
    rt: &Runtime,
    op: Blocking,
    res: &ResourceRef,
    parked: &Rc<Parked>,
    timeout: Option<Nanos>,
    leave: impl FnOnce(&Runtime, &Rc<Parked>) + 'static,
) -> Option<TimerKey> {
    block_timed_behind(rt, op, res, parked, timeout, None, leave)
}

/// `block_timed` for a FIFO queue in which a waiter ahead gives up at `ahead` (the earliest such
/// deadline): its leaving may let this one in without any holder releasing, so a timer may end
/// this wait too, and it makes no wait-for edge (no false cycle).
pub(crate) fn block_timed_behind(
    rt: &Runtime,
    op: Blocking,
    res: &ResourceRef,
    parked: &Rc<Parked>,
    timeout: Option<Nanos>,
    ahead: Option<Nanos>,
    leave: impl FnOnce(&Runtime, &Rc<Parked>) + 'static,
) -> Option<TimerKey> {
    let until = timeout.map(|t| rt.now().saturating_add(t));
    let mut wait = Wait::on(op, res);
    wait.until = match (until, ahead) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    rt.block(wait);
    until.map(|at| parked.expire_at(rt, at, leave))
}

/// What a primitive does when one of its waiters times out (see `Parked::expire_at`).
type Leave = Box<dyn FnOnce(&Runtime, &Rc<Parked>)>;

impl Parked {
    /// How a woken timed wait ended: `Err(Timeout)` if its deadline fired it, else `Ok` (and its
    /// deadline timer, now useless, is cancelled).
    pub fn timed_result(&self, rt: &Runtime, deadline: Option<TimerKey>) -> Result<(), Timeout> {
        if self.fired_case() == Some(TIMED_OUT) {
            return Err(Timeout);
        }
        if let Some(k) = deadline {
            rt.cancel_timer(k);
        }
        Ok(())
    }
}

/// A parked operation's deadline (see `Parked::expire_at`).
struct Deadline {
    parked: Rc<Parked>,
    leave: Leave,
}

impl TimerCallback for Deadline {
    fn fire(self: Box<Self>, rt: &Runtime) {
        if !self.parked.is_live() {
            return;
        }
        (self.leave)(rt, &self.parked);
        if self.parked.is_live() {
            self.parked.fire(rt, TIMED_OUT);
        }
    }

    fn may_wake(&self) -> bool {
        self.parked.is_live()
    }
}
