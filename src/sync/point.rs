//! `Point`: the future of one operation for code below the Rust API (new primitives and the
//! patterns). It runs its operation when first polled; the operation completes at once (then the
//! task takes the scheduling point after its effect, as every Lua call does) or parks the task
//! until a primitive wakes it (the wake is the scheduling point).
//!
//! Why not `sim::Op`: that future lives in `src/sim/ops.rs`, above `sync` and `patterns`, so they
//! cannot name it without an import running up the layers. `Point` is the same protocol in
//! `sync`; when the futures of `sim/ops.rs` move down here, the two become one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::runtime::{Runtime, TaskState};

/// How an operation started: done (its result), or parked (how to finish when woken).
pub(crate) enum PointStart<R> {
    /// Completed now.
    Done(R),
    /// The task is parked; the closure produces the result after the wake.
    Parked(Box<dyn FnOnce() -> R>),
}

enum State<R> {
    Start(Box<dyn FnOnce() -> PointStart<R>>),
    Parked(Box<dyn FnOnce() -> R>),
    Yielded(R),
    Finished,
}

/// One gosim operation as a future (an atomic op, a pattern's step). Await it in a gosim task.
pub struct Point<R> {
    rt: Runtime,
    state: State<R>,
    location: Option<&'static std::panic::Location<'static>>,
}

impl<R> std::fmt::Debug for Point<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gosim::sync::Point")
    }
}

impl<R> Unpin for Point<R> {}

impl<R> Point<R> {
    /// An operation that may park: `start` performs it when the future is first polled.
    pub(crate) fn new(
        rt: &Runtime,
        location: Option<&'static std::panic::Location<'static>>,
        start: impl FnOnce() -> PointStart<R> + 'static,
    ) -> Point<R> {
        Point {
            rt: rt.clone(),
            state: State::Start(Box::new(start)),
            location,
        }
    }

    /// An operation that never parks: `effect` runs when first polled, then the scheduling point.
    pub(crate) fn now(rt: &Runtime, effect: impl FnOnce() -> R + 'static) -> Point<R> {
        Point::new(rt, None, move || PointStart::Done(effect()))
    }
}

impl Point<()> {
    /// A bare scheduling point (Lua's `goroutine.yield()`).
    pub(crate) fn yield_now(rt: &Runtime) -> Point<()> {
        Point::now(rt, || ())
    }
}

impl<R> Future for Point<R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<R> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, State::Finished) {
            State::Start(start) => match start() {
                PointStart::Done(r) => {
                    if this.rt.schedule_point() {
                        Poll::Ready(r)
                    } else {
                        this.state = State::Yielded(r);
                        Poll::Pending
                    }
                }
                PointStart::Parked(finish) => {
                    if this.location.is_some()
                        && this.rt.current_state() == Some(TaskState::Blocked)
                    {
                        this.rt.set_location(this.rt.current(), this.location);
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
