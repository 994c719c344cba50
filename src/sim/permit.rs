//! A semaphore whose permits give themselves back (tokio's `Semaphore`/`SemaphorePermit`).
//!
//! Why it is shaped so. The counting, FIFO hand-over and trace are `sync::Semaphore`'s (the Lua
//! binding's); this adds only the permit object, so a permit cannot be forgotten on an early
//! return or a `?`. A permit owns a handle on its semaphore rather than borrowing it, so it can
//! move into a spawned task (tokio needs `acquire_owned` and an `Arc` for that). Dropping a permit
//! is not a scheduling point, as the untyped `release` was not.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use crate::runtime::{ResourceRef, Runtime, TaskId};
use crate::sync::Op;

/// A counting semaphore with FIFO hand-over (nobody overtakes a waiting task). Clones are the
/// same semaphore.
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(9);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let sem = s.semaphore(2);
///     let a = sem.acquire().await;
///     let _b = sem.acquire().await;
///     assert!(sem.try_acquire().is_none());
///     drop(a); // given back
///     assert_eq!(sem.available(), 1);
///     let c = sem.try_acquire().expect("one free");
///     c.forget(); // never given back: the semaphore keeps one permit fewer
///     assert_eq!(sem.available(), 0);
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
#[derive(Clone)]
pub struct Semaphore {
    raw: crate::sync::Semaphore,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Semaphore({})", self.raw.resource())
    }
}

impl Semaphore {
    /// A semaphore of `n` permits (`Sim::semaphore` names the call site).
    pub(crate) fn new(rt: &Runtime, n: usize, created_at: Option<Rc<str>>) -> Semaphore {
        Semaphore {
            raw: crate::sync::Semaphore::new(rt, n, created_at),
        }
    }

    /// Takes a permit, waiting (FIFO) for one; the permit is given back when dropped.
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
    ///     let slots = s.semaphore(1);
    ///     let (sl, t) = (slots.clone(), s.clone());
    ///     s.spawn("holder", async move {
    ///         let _permit = sl.acquire().await;
    ///         t.sleep(Duration::from_millis(9)).await; // given back when dropped
    ///     });
    ///     s.yield_now().await;
    ///     let _permit = slots.acquire().await;
    ///     assert_eq!(s.now(), Duration::from_millis(9));
    ///     assert_eq!(slots.available(), 0);
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> Acquire {
        Acquire {
            sem: self.clone(),
            inner: self.raw.acquire(),
        }
    }

    /// Takes a permit if one is free and nobody is queued (not an operation: no scheduling
    /// point).
    pub fn try_acquire(&self) -> Option<SemaphorePermit> {
        self.raw.try_acquire().then(|| self.permit())
    }

    /// A permit for the current task, which has just acquired it.
    fn permit(&self) -> SemaphorePermit {
        SemaphorePermit {
            sem: Some(self.clone()),
            holder: self.raw.rt_handle().current(),
        }
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.raw.available()
    }

    /// Permits in all.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// Its identity (as shown in traces and reports).
    pub fn resource(&self) -> &ResourceRef {
        self.raw.resource()
    }
}

/// The future of [`Semaphore::acquire`].
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let sem = s.semaphore(1);
///     let permit = sem.acquire().await;
///     assert_eq!(sem.available(), 0);
///     drop(permit);
///     assert_eq!(sem.available(), 1);
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
#[must_use = "a gosim operation does nothing until it is awaited"]
#[derive(Debug)]
pub struct Acquire {
    sem: Semaphore,
    inner: Op<()>,
}

impl Future for Acquire {
    type Output = SemaphorePermit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<SemaphorePermit> {
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.sem.permit()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One permit of a [`Semaphore`], given back (to the oldest waiter, if any) when dropped.
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let sem = s.semaphore(1);
///     let p = sem.acquire().await;
///     let (s2, t) = (sem.clone(), s.clone());
///     let h = s.spawn("waiter", async move {
///         let _p = s2.acquire().await; // handed over when `p` is released
///         t.now()
///     });
///     s.sleep(std::time::Duration::from_millis(4)).await;
///     p.release();
///     assert_eq!(h.await.unwrap(), std::time::Duration::from_millis(4));
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
///
/// A permit may move into another task, but the deadlock detector's wait-for graph keeps
/// counting it as held by the task that acquired it: that task waiting on the same semaphore
/// while the moved permit is out reads as waiting on itself (a cycle). Acquire in the task
/// that holds the permit.
#[derive(Debug)]
#[must_use = "a permit is given back as soon as it is dropped"]
pub struct SemaphorePermit {
    sem: Option<Semaphore>,
    /// The task that acquired it (the holder in the wait-for graph until it is given back).
    holder: TaskId,
}

impl SemaphorePermit {
    /// Keeps the permit taken for good: the semaphore has one permit fewer from now on (tokio's
    /// `forget`).
    pub fn forget(mut self) {
        self.sem = None;
    }

    /// Gives the permit back now (the same as dropping it, said explicitly).
    pub fn release(self) {}
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if let Some(sem) = self.sem.take()
            && sem.raw.rt_handle().try_current().is_some()
        {
            let _ = sem.raw.release_held_by(self.holder);
        }
    }
}
