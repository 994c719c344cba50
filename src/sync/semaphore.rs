//! A counting semaphore with FIFO hand-over: a release gives the permit straight to the oldest
//! waiter, so nobody can overtake a waiting goroutine (the bulkhead pattern relies on this).

use std::collections::VecDeque;
use std::rc::Rc;

use super::Misuse;
use super::base::{Base, debug_handle};
use super::op::Op;
use super::park::Parked;
use crate::runtime::{Blocking, ResourceKind, ResourceRef, Runtime, TaskId, Wait};

/// A waiter gets a permit only when a holder releases one (releasing without holding is misuse).
const KIND: ResourceKind = ResourceKind::released_by_holders("semaphore");

/// An acquire waiting for a permit.
const ACQUIRE: Blocking = Blocking::new("acquire", "block-acquire");

struct State {
    capacity: usize,
    available: usize,
    waiters: VecDeque<Rc<Parked>>,
}

type Shared = Base<State>;

/// A semaphore of `capacity` permits. Clones are the same semaphore.
///
/// # Examples
///
/// ```
/// use gosim::sync::Semaphore;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let sem = Semaphore::new(s.runtime(), 2, None); // acquire/release by hand
///     sem.acquire().await;
///     assert!(sem.try_acquire());
///     assert_eq!((sem.available(), sem.capacity()), (0, 2));
///     sem.release().expect("held");
///     sem.release().expect("held");
///     assert!(sem.release().is_err()); // above the capacity
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Semaphore {
    shared: Rc<Shared>,
}

debug_handle!(Semaphore);

impl Semaphore {
    /// A semaphore with all `capacity` permits available (`capacity > 0`).
    pub fn new(rt: &Runtime, capacity: usize, created_at: Option<Rc<str>>) -> Semaphore {
        assert!(capacity > 0, "a semaphore has at least one permit");
        let state = State {
            capacity,
            available: capacity,
            waiters: VecDeque::new(),
        };
        Semaphore {
            shared: Base::new(rt, KIND, created_at, Some(format!("n={capacity}")), state),
        }
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Takes a permit if one is free and nobody is queued.
    pub fn try_acquire(&self) -> bool {
        let mut st = self.shared.state.borrow_mut();
        if st.available == 0 || !st.waiters.is_empty() {
            return false;
        }
        st.available -= 1;
        self.shared.res.add_holder(self.shared.rt.current());
        drop(st);
        self.shared.trace("acquire", None);
        true
    }

    /// Takes a permit now (true) or parks until one is handed over (false).
    pub(crate) fn acquire_or_park(&self) -> bool {
        if self.try_acquire() {
            return true;
        }
        let parked = Parked::new(self.shared.rt.current());
        self.shared.state.borrow_mut().waiters.push_back(parked);
        self.shared.rt.block(Wait::on(ACQUIRE, &self.shared.res));
        false
    }

    /// Gives a permit back (to the oldest waiter if any). Releasing more than was acquired is misuse.
    pub fn release(&self) -> Result<(), Misuse> {
        self.release_held_by(self.shared.rt.current())
    }

    /// `release` of a permit acquired by `holder` (a permit object may be released by another
    /// task than the one that acquired it; the wait-for graph follows the acquirer).
    pub(crate) fn release_held_by(&self, holder: TaskId) -> Result<(), Misuse> {
        let mut st = self.shared.state.borrow_mut();
        let in_use = st.capacity - st.available;
        if in_use == 0 {
            return Err(Misuse("release without acquire".to_string()));
        }
        self.shared.res.remove_holder(holder);
        let next = st.waiters.pop_front();
        match &next {
            Some(p) => self.shared.res.add_holder(p.task()),
            None => st.available += 1,
        }
        drop(st);
        self.shared.trace("release", None);
        if let Some(p) = next {
            p.fire(&self.shared.rt, 0);
        }
        Ok(())
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.shared.state.borrow().available
    }

    /// Permits in all.
    pub fn capacity(&self) -> usize {
        self.shared.state.borrow().capacity
    }
}

impl Semaphore {
    /// Takes a permit, waiting (FIFO) for one.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::Semaphore;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let sem = Semaphore::new(s.runtime(), 1, None);
    ///     let (s2, t) = (sem.clone(), s.clone());
    ///     s.spawn("holder", async move {
    ///         s2.acquire().await;
    ///         t.sleep(Duration::from_millis(7)).await;
    ///         s2.release().expect("held");
    ///     });
    ///     s.yield_now().await;
    ///     sem.acquire().await; // waits for the release
    ///     assert_eq!(s.now(), Duration::from_millis(7));
    ///     sem.release().expect("held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> Op<()> {
        let s = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || s.acquire_or_park(),
        )
    }
}
