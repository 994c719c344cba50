//! Locks that guard data (tokio's `Mutex<T>`/`RwLock<T>` shapes) on gosim's lock primitives.
//!
//! Why it is shaped so. The locking itself is `sync::Mutex`/`sync::RwMutex`, the primitives the
//! Lua bindings use, so Go's semantics (barging, readers first after a writer), the trace and the
//! lock-order cycle reports (holders, lines) are the same as before guards existed. The data sits
//! in a `RefCell` next to the lock: the lock guarantees exclusivity, so the guard's borrow never
//! conflicts, and no `unsafe` is needed. A guard unlocks when dropped, which is not a scheduling
//! point (as the untyped `unlock` was not); a guard dropped after its run ended (a deadlocked task
//! freed with the run) unlocks nothing, since no task is running to do it.

use std::cell::{Ref, RefCell, RefMut};
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use crate::runtime::{ResourceRef, Runtime};
use crate::sync::{Cond, LockFuture, Op, RwMutex};

/// Whether a guard dropped now can give its lock back: only from inside the run (a task runs).
fn in_run(rt: &Runtime) -> bool {
    rt.try_current().is_some()
}

/// A mutual-exclusion lock around a `T` (tokio's `Mutex`; Go's `sync.Mutex` underneath: a woken
/// waiter may be overtaken, which the seed decides). Clones are the same lock and the same data.
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(5);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let counter = s.mutex(0u32);
///     let mut handles = Vec::new();
///     for i in 0..4 {
///         let (c, t) = (counter.clone(), s.clone());
///         handles.push(s.spawn(&format!("w{i}"), async move {
///             let mut n = c.lock().await;
///             let seen = *n;
///             t.yield_now().await; // another task may run, but not in here
///             *n = seen + 1;
///         }));
///     }
///     for h in handles {
///         h.await.unwrap();
///     }
///     let n = *counter.lock().await;
///     n
/// });
/// assert_eq!(report.value, Some(4));
/// ```
pub struct Mutex<T> {
    raw: crate::sync::Mutex,
    data: Rc<RefCell<T>>,
}

impl<T> Clone for Mutex<T> {
    fn clone(&self) -> Self {
        Mutex {
            raw: self.raw.clone(),
            data: self.data.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mutex({})", self.raw.resource())
    }
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value` (`Sim::mutex` names the call site).
    pub(crate) fn new(rt: &Runtime, value: T, created_at: Option<Rc<str>>) -> Mutex<T> {
        Mutex {
            raw: crate::sync::Mutex::new(rt, created_at),
            data: Rc::new(RefCell::new(value)),
        }
    }

    /// Locks, waiting while another task holds the lock; the guard unlocks when dropped. The
    /// lock is a scheduling point, as Go's is.
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
    ///     let total = s.mutex(0u32);
    ///     let (m, t) = (total.clone(), s.clone());
    ///     s.spawn("slow", async move {
    ///         let mut g = m.lock().await;
    ///         t.sleep(Duration::from_millis(10)).await; // holds the lock meanwhile
    ///         *g += 1;
    ///     });
    ///     s.yield_now().await;
    ///     let g = total.lock().await; // waits for the guard's drop
    ///     assert_eq!((*g, s.now()), (1, Duration::from_millis(10)));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn lock(&self) -> MutexLock<'_, T> {
        MutexLock {
            lock: self,
            inner: self.raw.lock(),
        }
    }

    /// Locks if the lock is free now (not an operation: no scheduling point).
    ///
    /// ```
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// sim.run(async move {
    ///     let m = s.mutex("data");
    ///     let g = m.try_lock().expect("free");
    ///     assert!(m.try_lock().is_none());
    ///     drop(g);
    ///     assert!(m.try_lock().is_some());
    /// });
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| self.guard())
    }

    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            lock: self,
            data: Some(self.data.borrow_mut()),
        }
    }

    /// Whether a task holds it now.
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Its identity (as shown in traces and reports).
    pub fn resource(&self) -> &ResourceRef {
        self.raw.resource()
    }
}

/// The future of [`Mutex::lock`]: the guard once the lock is taken.
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let m = s.mutex(1);
///     let lock = m.lock(); // nothing happens until awaited
///     let g = lock.await;
///     assert_eq!(*g, 1);
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct MutexLock<'a, T> {
    lock: &'a Mutex<T>,
    inner: LockFuture,
}

impl<T> std::fmt::Debug for MutexLock<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MutexLock({})", self.lock.raw.resource())
    }
}

impl<'a, T> Future for MutexLock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<MutexGuard<'a, T>> {
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.lock.guard()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Access to a [`Mutex`]'s data while it is locked; unlocks when dropped (not a scheduling
/// point).
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let m = s.mutex(vec![1]);
///     {
///         let mut g = m.lock().await;
///         g.push(2);
///         assert!(m.is_locked());
///     } // unlocked here
///     assert!(!m.is_locked());
///     assert_eq!(*m.lock().await, [1, 2]);
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
pub struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
    data: Option<RefMut<'a, T>>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.as_ref().expect("a live guard has its data")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_mut().expect("a live guard has its data")
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MutexGuard").field(&**self).finish()
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.data = None;
        if in_run(&self.lock.raw.rt_handle()) {
            let _ = self.lock.raw.unlock();
        }
    }
}

impl<'a, T> MutexGuard<'a, T> {
    /// Go's `Cond.Wait` on this guard's mutex: unlocks, waits for `cond` to be signalled, locks
    /// again and returns the new guard.
    ///
    /// ```
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(2);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let (ready, cond) = (s.mutex(false), s.cond());
    ///     let (r, c) = (ready.clone(), cond.clone());
    ///     s.spawn("setter", async move {
    ///         *r.lock().await = true;
    ///         c.signal();
    ///     });
    ///     let mut g = ready.lock().await;
    ///     while !*g {
    ///         g = g.wait(&cond).await;
    ///     }
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    pub async fn wait(mut self, cond: &Cond) -> MutexGuard<'a, T> {
        let lock = self.lock;
        // The data is given up first; Cond::wait unlocks and relocks the primitive itself.
        self.data = None;
        std::mem::forget(self);
        cond.wait(&lock.raw).await;
        lock.guard()
    }
}

/// A reader/writer lock around a `T` (tokio's `RwLock`; Go's `sync.RWMutex` underneath: a
/// waiting writer blocks new readers; when a writer unlocks, the readers waiting then go first).
/// Clones are the same lock and the same data.
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(4);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let config = s.rwlock(vec![1, 2]);
///     {
///         let (a, b) = (config.read().await, config.read().await); // readers share
///         assert_eq!(a.len() + b.len(), 4);
///     }
///     config.write().await.push(3);
///     let n = config.read().await.len();
///     n
/// });
/// assert_eq!(report.value, Some(3));
/// ```
pub struct RwLock<T> {
    raw: RwMutex,
    data: Rc<RefCell<T>>,
}

impl<T> Clone for RwLock<T> {
    fn clone(&self) -> Self {
        RwLock {
            raw: self.raw.clone(),
            data: self.data.clone(),
        }
    }
}

impl<T> std::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RwLock({})", self.raw.resource())
    }
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value` (`Sim::rwlock` names the call site).
    pub(crate) fn new(rt: &Runtime, value: T, created_at: Option<Rc<str>>) -> RwLock<T> {
        RwLock {
            raw: RwMutex::new(rt, created_at),
            data: Rc::new(RefCell::new(value)),
        }
    }

    /// Read-locks, waiting while a writer holds or waits for the lock; the guard read-unlocks
    /// when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let config = s.rwlock(vec!["a"]);
    ///     let r1 = config.read().await;
    ///     let r2 = config.read().await; // readers share the lock
    ///     assert_eq!(r1.len() + r2.len(), 2);
    ///     assert!(config.try_write().is_none());
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn read(&self) -> RwLockRead<'_, T> {
        RwLockRead {
            lock: self,
            inner: self.raw.rlock(),
        }
    }

    /// Write-locks, waiting for the readers and the writer to leave; the guard unlocks when
    /// dropped.
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
    ///     let config = s.rwlock(1u8);
    ///     let (c, t) = (config.clone(), s.clone());
    ///     s.spawn("reader", async move {
    ///         let _r = c.read().await;
    ///         t.sleep(Duration::from_millis(4)).await;
    ///     });
    ///     s.yield_now().await;
    ///     *config.write().await = 2; // waits for the reader to finish
    ///     assert_eq!(s.now(), Duration::from_millis(4));
    ///     assert_eq!(*config.read().await, 2);
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn write(&self) -> RwLockWrite<'_, T> {
        RwLockWrite {
            lock: self,
            inner: self.raw.lock(),
        }
    }

    /// Read-locks if possible now (no writer holds or waits for it); not a scheduling point.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.raw.try_rlock().then(|| self.read_guard())
    }

    /// Write-locks if possible now; not a scheduling point.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.raw.try_lock().then(|| self.write_guard())
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            lock: self,
            data: Some(self.data.borrow()),
        }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            lock: self,
            data: Some(self.data.borrow_mut()),
        }
    }

    /// Its identity (as shown in traces and reports).
    pub fn resource(&self) -> &ResourceRef {
        self.raw.resource()
    }
}

/// The future of [`RwLock::read`].
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let l = s.rwlock(5);
///     let r = l.read().await;
///     assert_eq!(*r, 5);
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct RwLockRead<'a, T> {
    lock: &'a RwLock<T>,
    inner: Op<()>,
}

/// The future of [`RwLock::write`].
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let l = s.rwlock(5);
///     *l.write().await = 6;
///     assert_eq!(*l.read().await, 6);
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct RwLockWrite<'a, T> {
    lock: &'a RwLock<T>,
    inner: Op<()>,
}

impl<T> std::fmt::Debug for RwLockRead<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RwLockRead({})", self.lock.raw.resource())
    }
}

impl<T> std::fmt::Debug for RwLockWrite<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RwLockWrite({})", self.lock.raw.resource())
    }
}

impl<'a, T> Future for RwLockRead<'a, T> {
    type Output = RwLockReadGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.lock.read_guard()),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<'a, T> Future for RwLockWrite<'a, T> {
    type Output = RwLockWriteGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.lock.write_guard()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Shared access to an [`RwLock`]'s data; read-unlocks when dropped.
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let l = s.rwlock(String::from("cfg"));
///     let r = l.read().await;
///     assert!(l.try_write().is_none()); // a reader holds it
///     drop(r);
///     assert!(l.try_write().is_some());
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    data: Option<Ref<'a, T>>,
}

/// Exclusive access to an [`RwLock`]'s data; unlocks when dropped.
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let l = s.rwlock(0);
///     let mut w = l.write().await;
///     *w += 1;
///     assert!(l.try_read().is_none()); // the writer holds it
///     drop(w);
///     assert_eq!(*l.try_read().unwrap(), 1);
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    data: Option<RefMut<'a, T>>,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.as_ref().expect("a live guard has its data")
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.as_ref().expect("a live guard has its data")
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_mut().expect("a live guard has its data")
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RwLockReadGuard").field(&**self).finish()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RwLockWriteGuard").field(&**self).finish()
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.data = None;
        if in_run(&self.lock.raw.rt_handle()) {
            let _ = self.lock.raw.runlock();
        }
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.data = None;
        if in_run(&self.lock.raw.rt_handle()) {
            let _ = self.lock.raw.unlock();
        }
    }
}
