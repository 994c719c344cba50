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

use crate::runtime::{Nanos, Runtime, TaskState};

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
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct Op<R> {
    rt: Runtime,
    state: State<R>,
    location: Option<Loc>,
}

/// Where an operation was called (`#[track_caller]`): copied, not formatted, until a report
/// needs it (the task parks).
pub type Loc = &'static std::panic::Location<'static>;

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
    pub fn now(rt: &Runtime, effect: impl FnOnce() -> R + 'static) -> Op<R> {
        Op::new(rt, None, move || Begin::Done(effect()))
    }
}

impl Op<()> {
    /// An operation with no result, from a primitive's `*_or_park`: `true` means done at once,
    /// `false` that the task is parked until a wake completes it.
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
            State::Start(start) => match start() {
                Begin::Done(r) => {
                    if this.rt.schedule_point() {
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
            },
            State::Parked(finish) => Poll::Ready(finish()),
            State::Yielded(r) => Poll::Ready(r),
            State::Finished => panic!("a gosim operation was polled after it completed"),
        }
    }
}

/// Sleeps the current task for `d` (`location`: where it was called, for reports).
pub fn sleep(rt: &Runtime, d: Nanos, location: Option<Loc>) -> Sleep {
    Sleep {
        rt: rt.clone(),
        d,
        started: false,
        location,
    }
}

/// The future of `Sim::sleep`. No allocation: timers are the other hot path.
#[derive(Debug)]
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct Sleep {
    rt: Runtime,
    d: Nanos,
    started: bool,
    location: Option<Loc>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.started {
            // Woken by the timer (or, for a zero sleep, resumed after the scheduling point).
            return Poll::Ready(());
        }
        self.started = true;
        if self.d == 0 {
            return if self.rt.schedule_point() {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        }
        self.rt.sleep(self.d);
        park_at(&self.rt, self.location);
        Poll::Pending
    }
}

/// A bare scheduling point.
pub fn yield_now(rt: &Runtime) -> Op<()> {
    Op::new(rt, None, || Begin::Done(()))
}
