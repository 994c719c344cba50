//! Go's `sync.Cond`, with Go's ticket scheme: a waiter takes a ticket *before* it unlocks its
//! locker, so a signal sent between the unlock and the park is not lost. `signal` wakes the oldest
//! ticket, `broadcast` all of them. The locker itself is unlocked and relocked by the caller (in
//! Lua), since it may be a mutex, an rwmutex or a read locker.

use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;

use super::Mutex;
use super::base::{Base, debug_handle};
use super::op::Op;
use super::park::Parked;
use crate::runtime::{Blocking, ResourceKind, ResourceRef, Runtime, Wait};

/// Any goroutine may signal a cond: who will release a waiter is unknown.
const KIND: ResourceKind = ResourceKind::released_by_anyone("cond");

/// A wait for a signal or a broadcast.
const WAIT: Blocking = Blocking::new("cond", "block-cond");

struct State {
    next_ticket: u64,
    notified: u64,
    waiters: VecDeque<(u64, Rc<Parked>)>,
    /// Tickets taken by a `wait` that then failed (its locker was not locked): a signal skips them.
    abandoned: BTreeSet<u64>,
}

type Shared = Base<State>;

/// A condition variable. Clones are the same cond.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
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
///         g = g.wait(&cond).await; // unlocks, waits for a signal, locks again
///     }
///     assert!(*g);
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Cond {
    shared: Rc<Shared>,
}

debug_handle!(Cond);

impl Cond {
    /// A cond with no waiters.
    pub fn new(rt: &Runtime, created_at: Option<Rc<str>>) -> Cond {
        let state = State {
            next_ticket: 0,
            notified: 0,
            waiters: VecDeque::new(),
            abandoned: BTreeSet::new(),
        };
        Cond {
            shared: Base::new(rt, KIND, created_at, None, state),
        }
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Takes a ticket (step 1 of `wait`, before unlocking the locker).
    pub fn ticket(&self) -> u64 {
        let mut st = self.shared.state.borrow_mut();
        let t = st.next_ticket;
        st.next_ticket += 1;
        t
    }

    /// Waits for `ticket` to be notified: true if it already was, false if parked (step 2).
    pub(crate) fn wait_or_park(&self, ticket: u64) -> bool {
        let rt = &self.shared.rt;
        let mut st = self.shared.state.borrow_mut();
        if ticket < st.notified {
            return true;
        }
        st.waiters.push_back((ticket, Parked::new(rt.current())));
        drop(st);
        rt.block(Wait::on(WAIT, &self.shared.res));
        false
    }

    /// Gives back a ticket whose `wait` failed before parking: a signal must not be spent on it.
    pub fn abandon(&self, ticket: u64) {
        let already_notified = {
            let mut st = self.shared.state.borrow_mut();
            if ticket >= st.notified {
                st.abandoned.insert(ticket);
                false
            } else {
                true
            }
        };
        if already_notified {
            // The signal meant for it goes to the next waiter instead.
            self.signal();
        }
    }

    /// Wakes the oldest waiting ticket, if any.
    pub fn signal(&self) {
        let rt = &self.shared.rt;
        let woken = {
            let mut st = self.shared.state.borrow_mut();
            let mut woken = None;
            while st.notified < st.next_ticket {
                let t = st.notified;
                st.notified += 1;
                if st.abandoned.remove(&t) {
                    continue;
                }
                let pos = st.waiters.iter().position(|(tk, _)| *tk == t);
                woken = pos.and_then(|i| st.waiters.remove(i)).map(|(_, p)| p);
                break;
            }
            woken
        };
        self.shared.trace("signal", None);
        if let Some(p) = woken {
            p.fire(rt, 0);
        }
    }

    /// Wakes every waiting ticket.
    pub fn broadcast(&self) {
        let rt = &self.shared.rt;
        let woken = {
            let mut st = self.shared.state.borrow_mut();
            st.notified = st.next_ticket;
            st.abandoned.clear();
            std::mem::take(&mut st.waiters)
        };
        self.shared.trace("broadcast", None);
        for (_, p) in woken {
            p.fire(rt, 0);
        }
    }
}

impl Cond {
    /// Unlocks `m`, waits for a signal, and locks `m` again (Go's `Cond.Wait`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::{Cond, Mutex};
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let (m, cond) = (Mutex::new(s.runtime(), None), Cond::new(s.runtime(), None));
    ///     let flag = s.atomic_int(0);
    ///     let (m2, c2, f2) = (m.clone(), cond.clone(), flag.clone());
    ///     s.spawn("setter", async move {
    ///         m2.lock().await;
    ///         f2.store(1).await;
    ///         c2.broadcast();
    ///         m2.unlock().expect("held");
    ///     });
    ///     m.lock().await;
    ///     while flag.peek() == 0 {
    ///         cond.wait(&m).await; // releases m while waiting, holds it again after
    ///     }
    ///     assert!(m.is_locked());
    ///     m.unlock().expect("held");
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn wait(&self, m: &Mutex) {
        let ticket = self.ticket();
        m.unlock()
            .expect("cond.wait: the mutex must be locked by the caller");
        let c = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || c.wait_or_park(ticket),
        )
        .await;
        m.lock().await;
    }
}
