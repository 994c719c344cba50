//! An upgradeable readers-writer lock (seed 5.3), as parking_lot's `RwLock` with upgradable reads.
//!
//! - Plain readers share the lock; a writer has it alone.
//! - The upgradable read (`upgradable_rlock`) is held by at most one goroutine at a time and
//!   coexists with plain readers, not with a writer. `upgrade()` turns it into the write lock once
//!   the plain readers have drained; no writer can slip in meanwhile (nobody else can write while
//!   it is held), so a value read under it is unchanged right after the upgrade.
//!   `upgradable_runlock()` gives it back without upgrading.
//! - `try_upgrade()` from a plain read lock succeeds only if the caller is the only reader (one
//!   hold) and nobody holds the upgradable read: it then becomes the writer atomically; otherwise
//!   it returns `false` and the caller keeps its read lock. From the upgradable read it succeeds
//!   if no plain reader holds the lock (parking_lot's `RwLockUpgradableReadGuard::try_upgrade`).
//!   Without a held read lock it is misuse.
//! - Task-fair, as parking_lot: requests are granted in arrival order; a queued request (a writer,
//!   say) blocks every later one, and a pending `upgrade()` blocks new readers, so neither writers
//!   nor upgraders starve (and a recursive read behind a waiting writer deadlocks, as parking_lot
//!   warns).
//! - Every blocking call takes an optional timeout (0: a try); a call that gives up leaves the
//!   queue and lets whoever is now first go. An upgrade that gives up keeps the upgradable read.
//! - Only the goroutine holding a lock may release it (the holders are exact).
//!
//! Wait-for graph: the lock's holders (readers, the upgradable holder, the writer) are recorded
//! per goroutine; a request queued behind a *timed* one (which may give up and let it through)
//! carries that deadline (`block_timed_behind`), so it makes no wait-for edge: never a false
//! cycle. A
//! pending upgrade waits on a second resource whose holders are the plain readers only, so an
//! upgrade that waits on a reader who waits on the upgrader is a cycle named with both.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::runtime::{
    Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TaskId, TimerKey,
};
use crate::sync::{Begin, Misuse, Op, Parked, Timeout, block_timed, block_timed_behind};

/// Only holders release a waiter (or a timed waiter ahead giving up, see `block_timed_behind`).
const KIND: ResourceKind = ResourceKind::released_by_holders("rwmutex_upgradeable");
/// The plain readers a pending upgrade waits for.
const READERS: ResourceKind = ResourceKind::released_by_holders("rwmutex_upgradeable_readers");

const RLOCK: Blocking = Blocking::new("rlock", "block-rlock");
const LOCK: Blocking = Blocking::new("lock", "block-lock");
const ULOCK: Blocking = Blocking::new("upgradable_rlock", "block-upgradable_rlock");
const UPGRADE: Blocking = Blocking::new("upgrade", "block-upgrade");

/// What a queued request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Read,
    Write,
    Upgradable,
}

impl Want {
    fn verb(self) -> &'static str {
        match self {
            Want::Read => "rlock",
            Want::Write => "lock",
            Want::Upgradable => "upgradable_rlock",
        }
    }
}

struct Waiter {
    parked: Rc<Parked>,
    want: Want,
    /// When it gives up, if it has a timeout.
    deadline: Option<Nanos>,
}

#[derive(Default)]
struct State {
    /// Plain read holds, one entry per hold, in order.
    readers: Vec<TaskId>,
    upgradable: Option<TaskId>,
    writer: Option<TaskId>,
    queue: VecDeque<Waiter>,
    /// The upgradable holder waiting for the plain readers to drain.
    upgrading: Option<Rc<Parked>>,
}

impl State {
    fn can(&self, want: Want) -> bool {
        match want {
            Want::Read => self.writer.is_none() && self.upgrading.is_none(),
            Want::Upgradable => self.writer.is_none() && self.upgradable.is_none(),
            Want::Write => {
                self.writer.is_none() && self.readers.is_empty() && self.upgradable.is_none()
            }
        }
    }
}

struct Shared {
    rt: Runtime,
    res: ResourceRef,
    readers_res: ResourceRef,
    state: RefCell<State>,
}

/// An upgradeable readers-writer lock. Clones are the same lock.
///
/// # Examples
///
/// ```
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let lock = s.rwmutex_upgradeable();
///     lock.upgradable_rlock(None).await.expect("free");
///     assert!(lock.holds_upgradable());
///     lock.upgrade(None).await.expect("no other readers"); // read, then write, atomically
///     assert!(lock.is_write_locked());
///     lock.unlock().expect("held");
///     assert_eq!(lock.readers(), 0);
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct UpgradeableRwLock {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for UpgradeableRwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UpgradeableRwLock({})", self.shared.res)
    }
}

/// How a lock request starts.
#[derive(Debug)]
pub enum LockStart {
    /// Granted at once.
    Granted,
    /// Refused at once (a timeout of 0 that could not be granted).
    Refused,
    /// Parked until granted or the deadline (the timer, if any).
    Parked(Rc<Parked>, Option<TimerKey>),
}

impl UpgradeableRwLock {
    /// An unlocked lock.
    pub fn new(rt: &Runtime, created_at: Option<Rc<str>>) -> UpgradeableRwLock {
        let res = rt.new_resource(KIND, created_at.clone());
        let readers_res = rt.new_resource(READERS, created_at);
        if rt.tracing() {
            rt.emit("new", Subject::Resource(res.clone()), None);
        }
        UpgradeableRwLock {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                readers_res,
                state: RefCell::new(State::default()),
            }),
        }
    }

    /// Its identity (`rwmutex_upgradeable#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Plain read holds now.
    pub fn readers(&self) -> usize {
        self.shared.state.borrow().readers.len()
    }

    /// Whether a writer holds it.
    pub fn is_write_locked(&self) -> bool {
        self.shared.state.borrow().writer.is_some()
    }

    /// Whether the upgradable read is held.
    pub fn is_upgradable_locked(&self) -> bool {
        self.shared.state.borrow().upgradable.is_some()
    }

    /// Requests queued now (a pending upgrade not included).
    pub fn waiting(&self) -> usize {
        self.shared.state.borrow().queue.len()
    }

    /// Whether the current goroutine holds the upgradable read.
    pub fn holds_upgradable(&self) -> bool {
        self.shared.state.borrow().upgradable == Some(self.shared.rt.current())
    }

    /// Whether the current goroutine holds a plain read lock or the upgradable read.
    pub fn holds_read(&self) -> bool {
        let me = self.shared.rt.current();
        let st = self.shared.state.borrow();
        st.upgradable == Some(me) || st.readers.contains(&me)
    }

    fn trace(&self, verb: &'static str, detail: Option<String>) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            rt.emit(verb, Subject::Resource(self.shared.res.clone()), detail);
        }
    }

    /// Records `task` as holding what it wanted.
    fn grant(&self, st: &mut State, task: TaskId, want: Want) {
        match want {
            Want::Read => {
                st.readers.push(task);
                self.shared.readers_res.add_holder(task);
            }
            Want::Upgradable => st.upgradable = Some(task),
            Want::Write => st.writer = Some(task),
        }
        self.shared.res.add_holder(task);
    }

    /// Grants `want` now if nothing blocks it and nobody is queued, or parks the current goroutine
    /// in arrival order until granted or `timeout` passes (`Some(0)`: a try).
    fn request(&self, want: Want, timeout: Option<Nanos>) -> LockStart {
        let rt = &self.shared.rt;
        let me = rt.current();
        {
            let mut st = self.shared.state.borrow_mut();
            if st.queue.is_empty() && st.can(want) {
                self.grant(&mut st, me, want);
                drop(st);
                self.trace(want.verb(), None);
                return LockStart::Granted;
            }
        }
        if timeout == Some(0) {
            self.trace(want.verb(), Some("refused".into()));
            return LockStart::Refused;
        }
        let parked = Parked::new(me);
        let until = timeout.map(|t| rt.now().saturating_add(t));
        let ahead = {
            let mut st = self.shared.state.borrow_mut();
            let ahead = st.queue.iter().filter_map(|w| w.deadline).min();
            st.queue.push_back(Waiter {
                parked: parked.clone(),
                want,
                deadline: until,
            });
            ahead
        };
        let op = match want {
            Want::Read => RLOCK,
            Want::Write => LOCK,
            Want::Upgradable => ULOCK,
        };
        let l = self.clone();
        let leave = move |rt: &Runtime, p: &Rc<Parked>| l.leave(rt, p);
        let key = block_timed_behind(rt, op, &self.shared.res, &parked, timeout, ahead, leave);
        LockStart::Parked(parked, key)
    }

    /// A queued request timed out: it leaves, and whoever is now first may go.
    fn leave(&self, rt: &Runtime, parked: &Rc<Parked>) {
        self.shared
            .state
            .borrow_mut()
            .queue
            .retain(|w| !Rc::ptr_eq(&w.parked, parked));
        if rt.tracing() {
            rt.emit_as(
                parked.task(),
                "timeout",
                Subject::Resource(self.shared.res.clone()),
                None,
                None,
            );
        }
        self.grant_waiters();
    }

    /// Grants queued requests from the front, stopping at the first that cannot go (task-fair).
    fn grant_waiters(&self) {
        let mut granted = Vec::new();
        {
            let mut st = self.shared.state.borrow_mut();
            while let Some(front) = st.queue.front() {
                if !st.can(front.want) {
                    break;
                }
                let w = st.queue.pop_front().expect("front exists");
                self.grant(&mut st, w.parked.task(), w.want);
                granted.push(w);
            }
        }
        let rt = &self.shared.rt;
        for w in granted {
            if rt.tracing() {
                let subject = Subject::Resource(self.shared.res.clone());
                rt.emit_as(w.parked.task(), w.want.verb(), subject, None, None);
            }
            w.parked.fire(rt, 0);
        }
    }

    /// The plain readers may have drained: a pending upgrade completes first, else the queue.
    fn after_release(&self) {
        let upgraded = {
            let mut st = self.shared.state.borrow_mut();
            if st.readers.is_empty() && st.upgrading.is_some() {
                let p = st.upgrading.take().expect("checked");
                st.upgradable = None;
                st.writer = Some(p.task());
                Some(p)
            } else {
                None
            }
        };
        match upgraded {
            Some(p) => {
                let rt = &self.shared.rt;
                if rt.tracing() {
                    let subject = Subject::Resource(self.shared.res.clone());
                    rt.emit_as(p.task(), "upgrade", subject, None, None);
                }
                p.fire(rt, 0);
            }
            None => self.grant_waiters(),
        }
    }

    /// Starts a plain read lock request.
    pub(crate) fn rlock_or_park(&self, timeout: Option<Nanos>) -> LockStart {
        self.request(Want::Read, timeout)
    }

    /// Starts a write lock request.
    pub(crate) fn lock_or_park(&self, timeout: Option<Nanos>) -> LockStart {
        self.request(Want::Write, timeout)
    }

    /// Starts an upgradable read request.
    pub(crate) fn upgradable_rlock_or_park(&self, timeout: Option<Nanos>) -> LockStart {
        self.request(Want::Upgradable, timeout)
    }

    /// Starts an upgrade of the caller's upgradable read: at once if no plain reader holds the
    /// lock, else parked until they drain (new readers wait meanwhile) or `timeout` passes (the
    /// caller then keeps its upgradable read). Misuse if the caller does not hold it.
    pub(crate) fn upgrade_or_park(&self, timeout: Option<Nanos>) -> Result<LockStart, Misuse> {
        let rt = &self.shared.rt;
        let me = rt.current();
        {
            let mut st = self.shared.state.borrow_mut();
            if st.upgradable != Some(me) {
                return Err(Misuse(
                    "upgrade without holding the upgradable read lock".into(),
                ));
            }
            if st.readers.is_empty() {
                st.upgradable = None;
                st.writer = Some(me);
                drop(st);
                self.trace("upgrade", None);
                return Ok(LockStart::Granted);
            }
        }
        if timeout == Some(0) {
            self.trace("upgrade", Some("refused".into()));
            return Ok(LockStart::Refused);
        }
        let parked = Parked::new(me);
        self.shared.state.borrow_mut().upgrading = Some(parked.clone());
        let key = {
            let l = self.clone();
            block_timed(
                rt,
                UPGRADE,
                &self.shared.readers_res,
                &parked,
                timeout,
                move |rt, p| l.leave_upgrade(rt, p),
            )
        };
        Ok(LockStart::Parked(parked, key))
    }

    /// A pending upgrade timed out: it keeps the upgradable read; readers held back may go.
    fn leave_upgrade(&self, rt: &Runtime, parked: &Rc<Parked>) {
        self.shared.state.borrow_mut().upgrading = None;
        if rt.tracing() {
            rt.emit_as(
                parked.task(),
                "timeout",
                Subject::Resource(self.shared.res.clone()),
                Some("upgrade".into()),
                None,
            );
        }
        self.grant_waiters();
    }

    /// Tries to become the writer without waiting, from a held read lock (see the module docs).
    /// `Ok(false)` changes nothing; misuse if the caller holds no read lock.
    pub fn try_upgrade(&self) -> Result<bool, Misuse> {
        let me = self.shared.rt.current();
        let ok = {
            let mut st = self.shared.state.borrow_mut();
            if st.upgradable == Some(me) {
                if st.readers.is_empty() {
                    st.upgradable = None;
                    st.writer = Some(me);
                    true
                } else {
                    false
                }
            } else if st.readers.contains(&me) {
                if st.readers.len() == 1 && st.upgradable.is_none() {
                    st.readers.clear();
                    self.shared.readers_res.remove_holder(me);
                    st.writer = Some(me);
                    true
                } else {
                    false
                }
            } else {
                return Err(Misuse("try_upgrade without a held read lock".into()));
            }
        };
        self.trace(
            "try_upgrade",
            Some(if ok { "ok" } else { "refused" }.into()),
        );
        Ok(ok)
    }

    /// Gives back one of the caller's plain read holds. Misuse if it holds none.
    pub fn runlock(&self) -> Result<(), Misuse> {
        let me = self.shared.rt.current();
        {
            let mut st = self.shared.state.borrow_mut();
            let Some(i) = st.readers.iter().position(|&t| t == me) else {
                return Err(Misuse("runlock without a held read lock".into()));
            };
            st.readers.remove(i);
        }
        self.shared.readers_res.remove_holder(me);
        self.shared.res.remove_holder(me);
        self.trace("runlock", None);
        self.after_release();
        Ok(())
    }

    /// Gives back the write lock. Misuse if the caller is not the writer.
    pub fn unlock(&self) -> Result<(), Misuse> {
        let me = self.shared.rt.current();
        {
            let mut st = self.shared.state.borrow_mut();
            if st.writer != Some(me) {
                return Err(Misuse("unlock without holding the write lock".into()));
            }
            st.writer = None;
        }
        self.shared.res.remove_holder(me);
        self.trace("unlock", None);
        self.grant_waiters();
        Ok(())
    }

    /// Gives back the upgradable read without upgrading. Misuse if the caller does not hold it
    /// (or is upgrading: it is parked, so only a bug could call this).
    pub fn upgradable_runlock(&self) -> Result<(), Misuse> {
        let me = self.shared.rt.current();
        {
            let mut st = self.shared.state.borrow_mut();
            if st.upgradable != Some(me) {
                return Err(Misuse(
                    "upgradable_runlock without holding the upgradable read lock".into(),
                ));
            }
            st.upgradable = None;
        }
        self.shared.res.remove_holder(me);
        self.trace("upgradable_runlock", None);
        self.grant_waiters();
        Ok(())
    }

    #[track_caller]
    fn op(
        &self,
        start: impl FnOnce(&UpgradeableRwLock) -> LockStart + 'static,
    ) -> Op<Result<(), Timeout>> {
        let l = self.clone();
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || match start(&l) {
            LockStart::Granted => Begin::Done(Ok(())),
            LockStart::Refused => Begin::Done(Err(Timeout)),
            LockStart::Parked(parked, key) => {
                let rt = l.shared.rt.clone();
                Begin::Parked(Box::new(move || parked.timed_result(&rt, key)))
            }
        })
    }

    /// Takes a plain read lock (in arrival order; `Err(Timeout)` if `timeout` passes first).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let lock = s.rwmutex_upgradeable();
    ///     lock.rlock(None).await.expect("free");
    ///     lock.rlock(None).await.expect("readers share it");
    ///     assert_eq!(lock.readers(), 2);
    ///     let w = lock.lock(Some(Duration::from_millis(3))).await; // a writer waits for readers
    ///     assert!(w.is_err());
    ///     lock.runlock().expect("read-held");
    ///     lock.runlock().expect("read-held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn rlock(&self, timeout: Option<std::time::Duration>) -> Op<Result<(), Timeout>> {
        let t = super::nanos(timeout);
        self.op(move |l| l.rlock_or_park(t))
    }

    /// Takes the write lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let lock = s.rwmutex_upgradeable();
    ///     let (l, t) = (lock.clone(), s.clone());
    ///     s.spawn("reader", async move {
    ///         l.rlock(None).await.expect("free");
    ///         t.sleep(Duration::from_millis(7)).await;
    ///         l.runlock().expect("read-held");
    ///     });
    ///     s.yield_now().await;
    ///     lock.lock(None).await.expect("no timeout"); // waits for the reader
    ///     assert_eq!(s.now(), Duration::from_millis(7));
    ///     lock.unlock().expect("held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn lock(&self, timeout: Option<std::time::Duration>) -> Op<Result<(), Timeout>> {
        let t = super::nanos(timeout);
        self.op(move |l| l.lock_or_park(t))
    }

    /// Takes the upgradable read lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let lock = s.rwmutex_upgradeable();
    ///     lock.upgradable_rlock(None).await.expect("free");
    ///     lock.rlock(None).await.expect("plain readers still share it");
    ///     assert!(lock.is_upgradable_locked());
    ///     lock.runlock().expect("read-held");
    ///     lock.upgradable_runlock().expect("held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn upgradable_rlock(
        &self,
        timeout: Option<std::time::Duration>,
    ) -> Op<Result<(), Timeout>> {
        let t = super::nanos(timeout);
        self.op(move |l| l.upgradable_rlock_or_park(t))
    }

    /// Upgrades the caller's upgradable read to the write lock, waiting for plain readers to
    /// drain; on `Err(Timeout)` the caller keeps the upgradable read. Panics if the caller does
    /// not hold the upgradable read (the Lua binding reports it as misuse).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let lock = s.rwmutex_upgradeable();
    ///     let (l, t) = (lock.clone(), s.clone());
    ///     s.spawn("reader", async move {
    ///         l.rlock(None).await.expect("free");
    ///         t.sleep(Duration::from_millis(4)).await;
    ///         l.runlock().expect("read-held");
    ///     });
    ///     s.yield_now().await;
    ///     lock.upgradable_rlock(None).await.expect("shared with the reader");
    ///     lock.upgrade(None).await.expect("no timeout"); // waits for the readers to drain
    ///     assert_eq!(s.now(), Duration::from_millis(4));
    ///     lock.unlock().expect("held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn upgrade(&self, timeout: Option<std::time::Duration>) -> Op<Result<(), Timeout>> {
        let t = super::nanos(timeout);
        self.op(move |l| match l.upgrade_or_park(t) {
            Ok(s) => s,
            Err(e) => panic!("rwmutex_upgradeable:upgrade: {e}"),
        })
    }
}
