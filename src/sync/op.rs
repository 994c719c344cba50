//! An operation of a primitive as a future. Each completes now (and then takes the scheduling
//! point after its effect) or parks the task until a primitive wakes it; the wake is the task's
//! scheduling point, so the future then completes at its next poll.
//!
//! These futures live here, below the patterns and the language bindings, so that a pattern is
//! plain async Rust over the primitives and a Lua call can drive the same future (`lua::bridge`).
//! gosim's futures ignore the waker: only gosim's scheduler completes them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::runtime::{Nanos, OpMode, Runtime, TaskState, TimerKey};

/// How an operation starts: finished (its result), or parked (how to finish when woken).
#[allow(missing_debug_implementations)]
pub enum Begin<R> {
    /// Completed at once with this result.
    Done(R),
    /// Parked: this closure produces the result once the task is woken.
    Parked(Box<dyn FnOnce() -> R>),
}

enum State<R> {
    Start(Box<dyn FnOnce() -> Begin<R>>),
    Parked(Box<dyn FnOnce() -> R>),
    Yielded(R),
    Finished,
}

/// A gosim operation as a future. Await it inside a gosim task.
///
/// # Examples
///
/// ```
/// use gosim::sync::Op;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let counter = s.atomic_int(1);
///     let add: Op<i64> = counter.add(2); // a gosim operation: nothing until awaited
///     assert_eq!(counter.peek(), 1);
///     assert_eq!(add.await, 3);
/// });
/// report.assert_pass();
/// ```
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct Op<R> {
    rt: Runtime,
    state: State<R>,
    location: Option<Loc>,
}

/// Where an operation was called (`#[track_caller]`): copied, not formatted, until a report
/// needs it (the task parks).
pub(crate) type Loc = &'static std::panic::Location<'static>;

/// Records `loc` as where the current task stopped.
pub(crate) fn park_at(rt: &Runtime, loc: Option<Loc>) {
    if loc.is_some() {
        rt.set_location(rt.current(), loc);
    }
}

impl<R> std::fmt::Debug for Op<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gosim::sim::Op")
    }
}

impl<R> Op<R> {
    /// An operation that starts with `start` at its first poll.
    pub fn new(
        rt: &Runtime,
        location: Option<Loc>,
        start: impl FnOnce() -> Begin<R> + 'static,
    ) -> Op<R> {
        Op {
            rt: rt.clone(),
            state: State::Start(Box::new(start)),
            location,
        }
    }
}

impl<R: 'static> Op<R> {
    /// An operation that never parks: `effect` runs when first polled, then the scheduling point.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::Op;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let v = std::rc::Rc::new(std::cell::Cell::new(0));
    ///     let w = v.clone();
    ///     let op = Op::now(s.runtime(), move || { w.set(7); w.get() * 2 });
    ///     assert_eq!(v.get(), 0); // the effect runs at the first poll
    ///     assert_eq!(op.await, 14);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn now(rt: &Runtime, effect: impl FnOnce() -> R + 'static) -> Op<R> {
        Op::new(rt, None, move || Begin::Done(effect()))
    }
}

impl Op<()> {
    /// An operation with no result, from a primitive's `*_or_park`: `true` means done at once,
    /// `false` that the task is parked until a wake completes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::Op;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     // `true`: the primitive finished at once; the await is then one scheduling point.
    ///     Op::unit(s.runtime(), None, || true).await;
    ///     assert_eq!(s.now(), std::time::Duration::ZERO);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn unit(
        rt: &Runtime,
        location: Option<Loc>,
        done_or_park: impl FnOnce() -> bool + 'static,
    ) -> Op<()> {
        Op::new(rt, location, move || {
            if done_or_park() {
                Begin::Done(())
            } else {
                Begin::Parked(Box::new(|| ()))
            }
        })
    }
}

impl<R> Unpin for Op<R> {}

impl<R> Future for Op<R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<R> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, State::Finished) {
            State::Start(start) => match this.rt.op_mode() {
                OpMode::Plain => this.begin(start),
                OpMode::Later | OpMode::Refused => {
                    this.state = State::Start(start);
                    Poll::Pending
                }
                OpMode::Joined => {
                    // Its primitive's queue does not know that a wait can be lost: it cannot
                    // share the task's wait with another operation.
                    this.rt
                        .refuse("this operation", this.location.map(|l| l.to_string()));
                    this.state = State::Start(start);
                    Poll::Pending
                }
            },
            State::Parked(finish) => Poll::Ready(finish()),
            State::Yielded(r) => {
                this.rt.release_result();
                Poll::Ready(r)
            }
            State::Finished => panic!("a gosim operation was polled after it completed"),
        }
    }
}

impl<R> Drop for Op<R> {
    fn drop(&mut self) {
        if matches!(self.state, State::Yielded(_)) {
            self.rt.release_result();
        }
    }
}

impl<R> Op<R> {
    fn begin(&mut self, start: Box<dyn FnOnce() -> Begin<R>>) -> Poll<R> {
        let this = self;
        {
            match start() {
                Begin::Done(r) => {
                    if this.rt.schedule_point_holding() {
                        Poll::Ready(r)
                    } else {
                        this.state = State::Yielded(r);
                        Poll::Pending
                    }
                }
                Begin::Parked(finish) => {
                    if this.rt.current_state() == Some(TaskState::Blocked) {
                        park_at(&this.rt, this.location);
                    }
                    this.state = State::Parked(finish);
                    Poll::Pending
                }
            }
        }
    }
}

/// Sleeps the current task for `d` (`location`: where it was called, for reports).
pub(crate) fn sleep(rt: &Runtime, d: Nanos, location: Option<Loc>) -> Sleep {
    Sleep {
        rt: rt.clone(),
        d,
        until: None,
        timer: None,
        held: false,
        location,
    }
}

/// The future of `Sim::sleep`. No allocation: timers are the other hot path.
///
/// It ends when the run's clock reaches its deadline (fixed at its first poll), whoever woke
/// the task: in a wait shared with other operations of the task, another one completing first
/// cancels its timer, and if polled again it sleeps on to the same deadline.
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
///     let nap: gosim::sync::Sleep = s.sleep(Duration::from_secs(3600));
///     nap.await; // an hour of virtual time, no wall-clock wait
///     assert_eq!(s.now(), Duration::from_secs(3600));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct Sleep {
    rt: Runtime,
    d: Nanos,
    until: Option<Nanos>,
    timer: Option<TimerKey>,
    /// A zero sleep that gave way at its scheduling point: done at the next poll.
    held: bool,
    location: Option<Loc>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.held {
            this.held = false;
            this.until = Some(0);
            this.rt.release_result();
            return Poll::Ready(());
        }
        if let Some(until) = this.until
            && this.rt.now() >= until
        {
            // Woken by its timer (or it passed while another operation of the wait ran).
            this.timer = None;
            return Poll::Ready(());
        }
        let mode = this.rt.op_mode();
        if matches!(mode, OpMode::Later | OpMode::Refused) {
            return Poll::Pending;
        }
        if this.d == 0 {
            this.until = Some(0);
            if super::channel::after_effect(&this.rt, mode) {
                return Poll::Ready(());
            }
            this.held = true;
            return Poll::Pending;
        }
        let (key, until) = this.rt.sleep_member(this.until, this.d);
        this.until = Some(until);
        this.timer = Some(key);
        park_at(&this.rt, this.location);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if self.held {
            self.rt.release_result();
        }
        // Dropped while sleeping (a `select!` took another branch): its timer wakes nobody.
        if let Some(k) = self.timer.take()
            && self.until.is_some_and(|u| self.rt.now() < u)
        {
            self.rt.cancel_timer(k);
        }
    }
}

/// A bare scheduling point.
pub(crate) fn yield_now(rt: &Runtime) -> Op<()> {
    Op::new(rt, None, || Begin::Done(()))
}
