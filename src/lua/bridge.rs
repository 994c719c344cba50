//! The bridge from a Lua call to a Rust future: one way for every blocking binding to run the
//! same future a Rust task awaits (a semaphore's `acquire`, a pattern's `wait`...).
//!
//! The binding polls the future once, at the call. Ready: the future has already taken its
//! scheduling point (gosim's futures do, after their effect), so its values go straight back to
//! Lua, with no coroutine switch. Pending: the future has parked the goroutine (blocked it on a
//! primitive, or put it back in the runnable set at the scheduling point); it is kept in the
//! goroutine's pending `Resume`, and the binding answers `PARK`, which the Lua shim turns into a
//! yield to the scheduler. When the scheduler runs the goroutine again, its body polls the
//! future before resuming the coroutine: ready, the coroutine resumes with the values; pending
//! again (a mutex overtaken by another locker), the goroutine stays parked and Lua never knows.
//!
//! gosim's futures ignore the waker (only the scheduler completes them), so polling uses a no-op
//! waker; a future that returns `Pending` without parking the goroutine is not a gosim operation
//! and fails the goroutine with a message saying so.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use mlua::Lua;

use super::Host;
use super::bind::Out;
use crate::runtime::TaskState;

/// A parked future and how to turn its output into Lua values.
pub(crate) trait PendingOp {
    /// Polls it again: its values once it completes.
    fn poll(&mut self, lua: &Lua) -> Option<Out>;
}

struct Bridged<F, C> {
    fut: F,
    convert: Option<C>,
}

impl<F, C> PendingOp for Bridged<F, C>
where
    F: Future + Unpin,
    C: FnOnce(&Lua, F::Output) -> Out,
{
    fn poll(&mut self, lua: &Lua) -> Option<Out> {
        match poll_once(&mut self.fut) {
            Poll::Ready(v) => {
                let convert = self
                    .convert
                    .take()
                    .expect("a bridged future completes once");
                Some(convert(lua, v))
            }
            Poll::Pending => None,
        }
    }
}

fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(fut).poll(&mut cx)
}

/// Why a goroutine fails when a bridged future returns `Pending` without parking it.
pub(crate) const NOT_A_GOSIM_FUTURE: &str = "gosim: a binding awaited a future that is not a gosim operation (it neither completed nor parked the goroutine)";

impl Host {
    /// Polls `fut` at the call: its converted values if it completes now, else `PARK` with the
    /// future kept for the goroutine's resume.
    pub(crate) fn drive<F, C>(&self, lua: &Lua, mut fut: F, convert: C) -> Out
    where
        F: Future + Unpin + 'static,
        C: FnOnce(&Lua, F::Output) -> Out + 'static,
    {
        // A completed operation is a scheduling point: the instruction budget starts again.
        self.instructions.set(0);
        match poll_once(&mut fut) {
            Poll::Ready(v) => convert(lua, v),
            Poll::Pending if !self.has_parked() => {
                let msg = super::bind::string(lua, NOT_A_GOSIM_FUTURE);
                (self.misuse.clone(), msg, mlua::Value::Nil)
            }
            Poll::Pending => {
                let pending = Box::new(Bridged {
                    fut,
                    convert: Some(convert),
                });
                let (p, _) = self.park_with(super::Resume::Future(pending));
                (p, mlua::Value::Nil, mlua::Value::Nil)
            }
        }
    }

    /// Whether the goroutine being run has really parked (blocked, or back in the runnable set).
    pub(crate) fn has_parked(&self) -> bool {
        self.rt.current_state() != Some(TaskState::Running)
    }
}
