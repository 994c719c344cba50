//! Go's `sync.Once`: the first caller runs the function; callers that arrive while it runs wait
//! until it has finished; later callers return at once. The function itself is run by the caller
//! (it may block), so this type only tracks who runs it and who waits.

use std::rc::Rc;

use super::base::{Base, debug_handle};
use super::op::{Begin, Op};
use super::park::Parked;
use crate::runtime::{Blocking, ResourceKind, ResourceRef, Runtime, TaskId, Wait};
use std::future::Future;

/// A waiter is released only when the goroutine running the function (its holder) finishes.
const KIND: ResourceKind = ResourceKind::released_by_holders("once");

/// A call waiting for the first call, run by another goroutine, to finish.
const WAIT: Blocking = Blocking::new("once", "block-once");

enum State {
    New,
    Running(TaskId),
    Done,
}

type Shared = Base<(State, Vec<Rc<Parked>>)>;

/// A once. Clones are the same once.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let (once, runs) = (s.once(), s.atomic_int(0));
///     for _ in 0..3 {
///         let r = runs.clone();
///         once.call(|| async move { r.add(1).await; }).await;
///     }
///     assert_eq!(runs.peek(), 1);
///     assert!(once.is_done());
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Once {
    shared: Rc<Shared>,
}

debug_handle!(Once);

/// What a caller of `Once::begin` must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnceStart {
    /// Run the function, then call `finish`.
    Run,
    /// It already ran: return.
    Done,
    /// Another goroutine is running it: the caller is parked until it finishes.
    Parked,
}

impl Once {
    /// A once that has not run.
    pub fn new(rt: &Runtime, created_at: Option<Rc<str>>) -> Once {
        Once {
            shared: Base::new(rt, KIND, created_at, None, (State::New, Vec::new())),
        }
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Called on entry by every caller.
    pub fn begin(&self) -> OnceStart {
        let rt = &self.shared.rt;
        let mut st = self.shared.state.borrow_mut();
        match st.0 {
            State::New => {
                let me = rt.current();
                st.0 = State::Running(me);
                self.shared.res.add_holder(me);
                OnceStart::Run
            }
            State::Done => OnceStart::Done,
            State::Running(_) => {
                st.1.push(Parked::new(rt.current()));
                drop(st);
                rt.block(Wait::on(WAIT, &self.shared.res));
                OnceStart::Parked
            }
        }
    }

    /// Called by the runner when the function returned or raised: releases the waiters.
    pub fn finish(&self) {
        let rt = &self.shared.rt;
        let waiters = {
            let mut st = self.shared.state.borrow_mut();
            if let State::Running(t) = st.0 {
                self.shared.res.remove_holder(t);
            }
            st.0 = State::Done;
            std::mem::take(&mut st.1)
        };
        for p in waiters {
            p.fire(rt, 0);
        }
    }

    /// Whether the function has run.
    pub fn is_done(&self) -> bool {
        matches!(self.shared.state.borrow().0, State::Done)
    }
}

impl Once {
    /// Runs `f` on the first call; concurrent callers wait until it has finished (Go's
    /// `sync.Once`). Returns whether this call ran it.
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
    ///     let once = s.once();
    ///     let (o, t) = (once.clone(), s.clone());
    ///     let first = s.spawn("init", async move {
    ///         o.call(|| async move { t.sleep(Duration::from_millis(10)).await }).await
    ///     });
    ///     s.yield_now().await;
    ///     // A second caller waits until the first call has finished, and does not run it.
    ///     let ran = once.call(|| async { unreachable!() }).await;
    ///     assert!(!ran);
    ///     assert_eq!(s.now(), Duration::from_millis(10));
    ///     assert!(first.await.expect("no panic"));
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn call<F: Future<Output = ()>>(&self, f: impl FnOnce() -> F) -> bool {
        let o = self.clone();
        let rt = o.rt_handle();
        let first = Op::new(&rt, Some(std::panic::Location::caller()), move || {
            match o.begin() {
                OnceStart::Run => Begin::Done(true),
                OnceStart::Done => Begin::Done(false),
                OnceStart::Parked => Begin::Parked(Box::new(|| false)),
            }
        })
        .await;
        if first {
            f().await;
            self.finish();
        }
        first
    }
}
