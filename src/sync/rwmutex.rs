//! Go's `sync.RWMutex`: many readers or one writer. A waiting writer blocks new readers, and when a
//! writer unlocks, the readers waiting at that moment go first. Grants are handed over directly
//! to the woken goroutines, so the order is exactly Go's and does not depend on who runs first.

use std::collections::VecDeque;
use std::rc::Rc;

use super::Misuse;
use super::base::{Base, debug_handle};
use super::op::Op;
use super::park::Parked;
use crate::runtime::{Blocking, ResourceKind, ResourceRef, Runtime, TaskId, Wait};

/// A waiter is released only when a holder (the writer or the last reader) unlocks.
const KIND: ResourceKind = ResourceKind::released_by_holders("rwmutex");

/// A write lock waiting for the writer and the readers to leave.
const LOCK: Blocking = Blocking::new("lock", "block-lock");
/// A read lock waiting for the writer to leave (or a waiting writer to go first).
const RLOCK: Blocking = Blocking::new("rlock", "block-rlock");

struct State {
    writer: Option<TaskId>,
    readers: usize,
    read_waiters: VecDeque<Rc<Parked>>,
    write_waiters: VecDeque<Rc<Parked>>,
}

type Shared = Base<State>;

/// A reader/writer lock. Clones are the same lock.
///
/// # Examples
///
/// ```
/// use gosim::sync::RwMutex;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let rw = RwMutex::new(s.runtime(), None); // Go's sync.RWMutex
///     rw.rlock().await;
///     assert!(rw.try_rlock()); // readers share it
///     assert!(!rw.try_lock()); // a writer must wait
///     rw.runlock().expect("read-held");
///     rw.runlock().expect("read-held");
///     rw.lock().await;
///     rw.unlock().expect("held");
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct RwMutex {
    shared: Rc<Shared>,
}

debug_handle!(RwMutex);

impl RwMutex {
    /// An unlocked rwmutex.
    pub fn new(rt: &Runtime, created_at: Option<Rc<str>>) -> RwMutex {
        let state = State {
            writer: None,
            readers: 0,
            read_waiters: VecDeque::new(),
            write_waiters: VecDeque::new(),
        };
        RwMutex {
            shared: Base::new(rt, KIND, created_at, None, state),
        }
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Write-locks if possible now.
    pub fn try_lock(&self) -> bool {
        let mut st = self.shared.state.borrow_mut();
        if st.writer.is_some() || st.readers > 0 || !st.write_waiters.is_empty() {
            return false;
        }
        let me = self.shared.rt.current();
        st.writer = Some(me);
        self.shared.res.add_holder(me);
        drop(st);
        self.shared.trace("lock", None);
        true
    }

    /// Read-locks if possible now (no writer holds it or waits for it).
    pub fn try_rlock(&self) -> bool {
        let mut st = self.shared.state.borrow_mut();
        if st.writer.is_some() || !st.write_waiters.is_empty() {
            return false;
        }
        st.readers += 1;
        self.shared.res.add_holder(self.shared.rt.current());
        drop(st);
        self.shared.trace("rlock", None);
        true
    }

    /// Write-locks now (true) or parks until the lock is handed over (false; nothing to retry).
    pub(crate) fn lock_or_park(&self) -> bool {
        if self.try_lock() {
            return true;
        }
        let parked = Parked::new(self.shared.rt.current());
        self.shared
            .state
            .borrow_mut()
            .write_waiters
            .push_back(parked);
        self.shared.rt.block(Wait::on(LOCK, &self.shared.res));
        false
    }

    /// Read-locks now (true) or parks until the read lock is handed over (false).
    pub(crate) fn rlock_or_park(&self) -> bool {
        if self.try_rlock() {
            return true;
        }
        let parked = Parked::new(self.shared.rt.current());
        self.shared
            .state
            .borrow_mut()
            .read_waiters
            .push_back(parked);
        self.shared.rt.block(Wait::on(RLOCK, &self.shared.res));
        false
    }

    /// Releases the write lock and hands the lock to the waiting readers, or else to the next
    /// writer.
    pub fn unlock(&self) -> Result<(), Misuse> {
        let mut st = self.shared.state.borrow_mut();
        let Some(w) = st.writer.take() else {
            return Err(Misuse("unlock of unlocked rwmutex".to_string()));
        };
        self.shared.res.remove_holder(w);
        let mut granted = Vec::new();
        if !st.read_waiters.is_empty() {
            while let Some(p) = st.read_waiters.pop_front() {
                st.readers += 1;
                self.shared.res.add_holder(p.task());
                granted.push(p);
            }
        } else if let Some(p) = st.write_waiters.pop_front() {
            st.writer = Some(p.task());
            self.shared.res.add_holder(p.task());
            granted.push(p);
        }
        drop(st);
        self.shared.trace("unlock", None);
        for p in granted {
            p.fire(&self.shared.rt, 0);
        }
        Ok(())
    }

    /// Releases one read lock; the last reader out hands the lock to a waiting writer.
    pub fn runlock(&self) -> Result<(), Misuse> {
        let mut st = self.shared.state.borrow_mut();
        if st.readers == 0 {
            return Err(Misuse("runlock of unlocked rwmutex".to_string()));
        }
        st.readers -= 1;
        self.shared.res.remove_holder(self.shared.rt.current());
        let mut granted = None;
        if st.readers == 0
            && let Some(p) = st.write_waiters.pop_front()
        {
            st.writer = Some(p.task());
            self.shared.res.add_holder(p.task());
            granted = Some(p);
        }
        drop(st);
        self.shared.trace("runlock", None);
        if let Some(p) = granted {
            p.fire(&self.shared.rt, 0);
        }
        Ok(())
    }
}

impl RwMutex {
    /// Write-locks, waiting for readers and writers to leave.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::RwMutex;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let rw = RwMutex::new(s.runtime(), None);
    ///     let (r, t) = (rw.clone(), s.clone());
    ///     s.spawn("reader", async move {
    ///         r.rlock().await;
    ///         t.sleep(Duration::from_millis(6)).await;
    ///         r.runlock().expect("read-held");
    ///     });
    ///     s.yield_now().await;
    ///     rw.lock().await; // waits for the reader
    ///     assert_eq!(s.now(), Duration::from_millis(6));
    ///     rw.unlock().expect("held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn lock(&self) -> Op<()> {
        let m = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || m.lock_or_park(),
        )
    }

    /// Read-locks, waiting while a writer holds or waits for the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::RwMutex;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let rw = RwMutex::new(s.runtime(), None);
    ///     let (w, t) = (rw.clone(), s.clone());
    ///     s.spawn("writer", async move {
    ///         w.lock().await;
    ///         t.sleep(Duration::from_millis(3)).await;
    ///         w.unlock().expect("held");
    ///     });
    ///     s.yield_now().await;
    ///     rw.rlock().await; // waits for the writer
    ///     assert_eq!(s.now(), Duration::from_millis(3));
    ///     rw.runlock().expect("read-held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn rlock(&self) -> Op<()> {
        let m = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || m.rlock_or_park(),
        )
    }
}
