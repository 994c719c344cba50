//! Go's `sync.Mutex` in normal mode: waiters queue FIFO, an unlock wakes the first one, but a
//! goroutine that calls `lock` before the woken one runs may take the lock first ("barging"); the
//! woken one then waits again at the head of the queue. Which happens is decided by the seed.
//! Not reentrant, not owned: any goroutine may unlock (reports name who locked it).

use std::collections::VecDeque;
use std::rc::Rc;

use super::Misuse;
use super::base::{Base, debug_handle};
use super::op::{Loc, park_at};
use super::park::Parked;
use crate::runtime::{Blocking, OpMode, ResourceKind, ResourceRef, Runtime, TaskId, Wait};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// A waiter is released when the lock is unlocked; its holder is the goroutine expected to
/// do it (Go lets any goroutine unlock, but the wait-for graph follows the holder).
const KIND: ResourceKind = ResourceKind::released_by_holders("mutex");

/// A lock waiting for the mutex to be unlocked.
const LOCK: Blocking = Blocking::new("lock", "block-lock");

struct State {
    locked: bool,
    holder: Option<TaskId>,
    waiters: VecDeque<Rc<Parked>>,
}

type Shared = Base<State>;

/// A mutual-exclusion lock. Clones are the same lock.
///
/// # Examples
///
/// ```
/// use gosim::sync::Mutex;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let m = Mutex::new(s.runtime(), None); // Go's sync.Mutex: lock and unlock by hand
///     m.lock().await;
///     assert!(!m.try_lock());
///     m.unlock().expect("held");
///     assert!(m.unlock().is_err()); // unlocking an unlocked mutex is misuse
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Mutex {
    shared: Rc<Shared>,
}

debug_handle!(Mutex);

impl Mutex {
    /// An unlocked mutex.
    pub fn new(rt: &Runtime, created_at: Option<Rc<str>>) -> Mutex {
        let state = State {
            locked: false,
            holder: None,
            waiters: VecDeque::new(),
        };
        Mutex {
            shared: Base::new(rt, KIND, created_at, None, state),
        }
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    fn take(&self, st: &mut State) {
        let rt = &self.shared.rt;
        let me = rt.current();
        st.locked = true;
        st.holder = Some(me);
        self.shared.res.add_holder(me);
        self.shared.trace("lock", None);
    }

    /// Locks if free.
    pub fn try_lock(&self) -> bool {
        let mut st = self.shared.state.borrow_mut();
        if st.locked {
            return false;
        }
        self.take(&mut st);
        true
    }

    /// Locks if free; otherwise queues the current task (at the head when `retry`: a woken
    /// waiter that found the lock taken by a barging goroutine) and returns `Err(parked)`. The
    /// wait may be shared with other operations of the task (a Rust future); the Lua binding
    /// parks through it too.
    fn lock_or_park_member(&self, retry: bool) -> Result<(), Rc<Parked>> {
        let mut st = self.shared.state.borrow_mut();
        if !st.locked {
            self.take(&mut st);
            return Ok(());
        }
        let parked = Parked::new(self.shared.rt.current());
        if retry {
            st.waiters.push_front(parked.clone());
        } else {
            st.waiters.push_back(parked.clone());
        }
        drop(st);
        let wait = Wait::on(LOCK, &self.shared.res);
        self.shared.rt.block_member(wait, &parked);
        Err(parked)
    }

    /// Unlocks; unlocking an unlocked mutex is misuse.
    pub fn unlock(&self) -> Result<(), Misuse> {
        let mut st = self.shared.state.borrow_mut();
        if !st.locked {
            return Err(Misuse("unlock of unlocked mutex".to_string()));
        }
        let rt = &self.shared.rt;
        st.locked = false;
        let holder = st.holder.take().expect("a locked mutex has a holder");
        self.shared.res.remove_holder(holder);
        // A waiter lost to another operation of its task's wait is skipped.
        let mut next = st.waiters.pop_front();
        while next.as_ref().is_some_and(|p| !p.is_live()) {
            next = st.waiters.pop_front();
        }
        drop(st);
        self.shared.trace("unlock", None);
        if let Some(p) = next {
            p.fire(rt, 0);
        }
        Ok(())
    }

    /// Whether it is locked now.
    pub fn is_locked(&self) -> bool {
        self.shared.state.borrow().locked
    }
}

impl Mutex {
    /// Locks, waiting while another task holds it (a woken waiter may be overtaken, as in Go).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::Mutex;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let m = Mutex::new(s.runtime(), None);
    ///     let (m2, t) = (m.clone(), s.clone());
    ///     s.spawn("holder", async move {
    ///         m2.lock().await;
    ///         t.sleep(Duration::from_millis(8)).await;
    ///         m2.unlock().expect("held");
    ///     });
    ///     s.yield_now().await; // let the holder take it
    ///     m.lock().await; // waits for the holder's unlock
    ///     assert_eq!(s.now(), Duration::from_millis(8));
    ///     m.unlock().expect("held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn lock(&self) -> LockFuture {
        LockFuture {
            m: self.clone(),
            state: LockState::Start,
            location: std::panic::Location::caller(),
        }
    }
}

#[derive(Debug)]
enum LockState {
    /// Not tried yet.
    Start,
    /// Parked; woken by an unlock, it tries again (at the head of the queue if overtaken).
    Waiting(Rc<Parked>),
    /// Locked, but switched away at the scheduling point that followed.
    Acquired,
}

/// The future of `Mutex::lock`.
///
/// # Examples
///
/// ```
/// use gosim::sync::{LockFuture, Mutex};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let m = Mutex::new(s.runtime(), None);
///     let locking: LockFuture = m.lock();
///     assert!(!m.is_locked()); // nothing until awaited
///     locking.await;
///     assert!(m.is_locked());
///     m.unlock().expect("held");
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct LockFuture {
    m: Mutex,
    state: LockState,
    location: Loc,
}

impl Future for LockFuture {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        let retry = match std::mem::replace(&mut self.state, LockState::Start) {
            LockState::Acquired => {
                self.m.shared.rt.release_result();
                return Poll::Ready(());
            }
            // Woken by an unlock: retry first in line (Go's mutex). Lost to another operation
            // of the task's wait: start over at the back.
            LockState::Waiting(parked) => {
                if parked.take_claim() {
                    self.m.shared.rt.release_result();
                }
                let woken = parked.fired_case().is_some();
                parked.lose();
                woken
            }
            LockState::Start => false,
        };
        let rt = self.m.rt_handle();
        let mode = rt.op_mode();
        if matches!(mode, OpMode::Later | OpMode::Refused) {
            return Poll::Pending;
        }
        match self.m.lock_or_park_member(retry) {
            Ok(()) => {
                if super::channel::after_effect(&rt, mode) {
                    return Poll::Ready(());
                }
                self.state = LockState::Acquired;
                Poll::Pending
            }
            Err(parked) => {
                park_at(&rt, Some(self.location));
                self.state = LockState::Waiting(parked);
                Poll::Pending
            }
        }
    }
}

impl Drop for LockFuture {
    fn drop(&mut self) {
        match &self.state {
            // Dropped while waiting (a `select!` took another branch): it never takes the lock.
            LockState::Waiting(parked) => {
                if parked.take_claim() {
                    self.m.shared.rt.release_result();
                }
                parked.lose();
            }
            // Acquired, then dropped before returning: the lock stays held, as an awaited
            // lock would be (the task unlocks it or the run reports it).
            LockState::Acquired => self.m.shared.rt.release_result(),
            LockState::Start => {}
        }
    }
}
