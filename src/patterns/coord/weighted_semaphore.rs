//! A weighted semaphore (seed 5.4), as golang.org/x/sync's `semaphore.Weighted`: `size` units;
//! `acquire(w)` takes `w` of them, strictly FIFO with no barging.
//!
//! - `acquire(w)` succeeds at once only if `w` units are free *and nobody waits*: a large request
//!   at the head is never starved by a stream of small ones.
//! - `release(w)` grants waiters from the front and stops at the first that does not fit.
//! - `try_acquire(w)` fails while anyone waits.
//! - A waiter whose timeout passes leaves the queue and wakes whoever is now first and fits
//!   (golang/go#37852: a cancelled head must not leave the next waiter stuck); a timeout of 0 is a
//!   try that fails even when units are free but others wait (golang/go#63615: a done context
//!   never acquires).
//! - `acquire(w > size)` can never succeed and releasing more than is held are misuse.
//!
//! Holders are recorded per goroutine, so a semaphore whose holders are all blocked is a
//! wait-for edge like a mutex's (the deadlock report names who holds how much).

use std::collections::VecDeque;
use std::rc::Rc;

use crate::runtime::{
    Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TaskId, TimerKey,
};
use crate::sync::{Base, Begin, Misuse, Op, Parked, Timeout, block_timed_behind, debug_handle};

/// Only holders give units back: a waiter behind holders that are all blocked is a wait-for edge.
const KIND: ResourceKind = ResourceKind::released_by_holders("weighted_semaphore");

/// An acquire waiting for its units.
const ACQUIRE: Blocking = Blocking::new("acquire", "block-acquire");

struct Waiter {
    parked: Rc<Parked>,
    weight: u64,
    /// When it gives up, if it has a timeout.
    deadline: Option<Nanos>,
}

struct State {
    size: u64,
    used: u64,
    waiters: VecDeque<Waiter>,
    /// Units held per goroutine, in the order they first acquired.
    held: Vec<(TaskId, u64)>,
}

type Shared = Base<State>;

/// A semaphore of `size` units taken and given back in any weight. Clones are the same semaphore.
///
/// # Examples
///
/// ```
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let mem = s.weighted_semaphore(10);
///     mem.acquire(6, None).await.expect("free");
///     assert_eq!(mem.try_acquire(5), Ok(false)); // only 4 left
///     assert_eq!(mem.try_acquire(4), Ok(true));
///     mem.release(10).expect("held");
///     assert_eq!(mem.available(), 10);
///     assert!(mem.release(1).is_err()); // above the capacity: misuse
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct WeightedSemaphore {
    shared: Rc<Shared>,
}

debug_handle!(WeightedSemaphore);

/// How an acquire starts.
#[derive(Debug)]
pub enum AcquireStart {
    /// Granted at once.
    Granted,
    /// Refused at once (a try that could not take the units, or a timeout of 0).
    Refused,
    /// The goroutine is parked until granted or timed out; the timer, if any, is the deadline.
    Parked(Rc<Parked>, Option<TimerKey>),
}

impl WeightedSemaphore {
    /// A semaphore with all `size` units free (`size > 0`).
    pub fn new(rt: &Runtime, size: u64, created_at: Option<Rc<str>>) -> WeightedSemaphore {
        assert!(size > 0, "a weighted semaphore has at least one unit");
        let detail = Some(format!("n={size}"));
        WeightedSemaphore {
            shared: Base::new(
                rt,
                KIND,
                created_at,
                detail,
                State {
                    size,
                    used: 0,
                    waiters: VecDeque::new(),
                    held: Vec::new(),
                },
            ),
        }
    }

    /// Its identity (`weighted_semaphore#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Units in all.
    pub fn capacity(&self) -> u64 {
        self.shared.state.borrow().size
    }

    /// Units not held now (queued waiters do not reduce it).
    pub fn available(&self) -> u64 {
        let st = self.shared.state.borrow();
        st.size - st.used
    }

    /// Goroutines queued now.
    pub fn waiting(&self) -> usize {
        self.shared.state.borrow().waiters.len()
    }

    fn check_weight(&self, w: u64) -> Result<(), Misuse> {
        let size = self.capacity();
        if w > size {
            return Err(Misuse(format!(
                "weight {w} exceeds the capacity {size}: it could never be acquired"
            )));
        }
        Ok(())
    }

    /// Takes `w` units if they are free and nobody waits; refuses otherwise (changing nothing).
    pub fn try_acquire(&self, w: u64) -> Result<bool, Misuse> {
        self.check_weight(w)?;
        let me = self.shared.rt.current();
        let ok = self.take_if_free(me, w);
        self.trace(if ok { "acquire" } else { "try_acquire" }, w, !ok);
        Ok(ok)
    }

    /// Grants `w` units to `task` if they are free and nobody waits.
    fn take_if_free(&self, task: TaskId, w: u64) -> bool {
        let mut st = self.shared.state.borrow_mut();
        if st.size - st.used < w || !st.waiters.is_empty() {
            return false;
        }
        grant(&mut st, &self.shared.res, task, w);
        true
    }

    /// Takes `w` units now, or parks the current goroutine until they are granted in request
    /// order, or until `timeout` passes (`Some(0)`: a try).
    pub(crate) fn acquire_or_park(
        &self,
        w: u64,
        timeout: Option<Nanos>,
    ) -> Result<AcquireStart, Misuse> {
        self.check_weight(w)?;
        let rt = &self.shared.rt;
        let me = rt.current();
        if self.take_if_free(me, w) {
            self.trace("acquire", w, false);
            return Ok(AcquireStart::Granted);
        }
        if timeout == Some(0) {
            self.trace("try_acquire", w, true);
            return Ok(AcquireStart::Refused);
        }
        let parked = Parked::new(me);
        let until = timeout.map(|t| rt.now().saturating_add(t));
        // A timed waiter ahead may give up and let this one in (see `block_timed_behind`).
        let ahead = {
            let mut st = self.shared.state.borrow_mut();
            let ahead = st.waiters.iter().filter_map(|w| w.deadline).min();
            st.waiters.push_back(Waiter {
                parked: parked.clone(),
                weight: w,
                deadline: until,
            });
            ahead
        };
        let sem = self.clone();
        let leave = move |rt: &Runtime, p: &Rc<Parked>| sem.leave(rt, p);
        let key = block_timed_behind(
            rt,
            ACQUIRE,
            &self.shared.res,
            &parked,
            timeout,
            ahead,
            leave,
        );
        Ok(AcquireStart::Parked(parked, key))
    }

    /// A waiter timed out: it leaves the queue, and whoever is now first may go.
    fn leave(&self, rt: &Runtime, parked: &Rc<Parked>) {
        self.shared
            .state
            .borrow_mut()
            .waiters
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

    /// Gives `w` units back and grants waiters from the front, stopping at the first that does
    /// not fit. Releasing more than is held is misuse (and changes nothing).
    pub fn release(&self, w: u64) -> Result<(), Misuse> {
        let me = self.shared.rt.current();
        {
            let mut st = self.shared.state.borrow_mut();
            if w > st.used {
                return Err(Misuse(format!(
                    "release of {w} units while only {} are held",
                    st.used
                )));
            }
            st.used -= w;
            give_back(&mut st, &self.shared.res, me, w);
        }
        self.trace("release", w, false);
        self.grant_waiters();
        Ok(())
    }

    fn grant_waiters(&self) {
        let mut granted = Vec::new();
        {
            let mut st = self.shared.state.borrow_mut();
            while let Some(front) = st.waiters.front() {
                if st.size - st.used < front.weight {
                    break;
                }
                let w = st.waiters.pop_front().expect("front exists");
                grant(&mut st, &self.shared.res, w.parked.task(), w.weight);
                granted.push(w);
            }
        }
        for w in granted {
            if self.shared.rt.tracing() {
                let detail = Some(format!("w={}", w.weight));
                let subject = Subject::Resource(self.shared.res.clone());
                self.shared
                    .rt
                    .emit_as(w.parked.task(), "acquire", subject, detail, None);
            }
            w.parked.fire(&self.shared.rt, 0);
        }
    }

    fn trace(&self, verb: &'static str, w: u64, refused: bool) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            let detail = if refused {
                format!("w={w} refused")
            } else {
                format!("w={w}")
            };
            rt.emit(
                verb,
                Subject::Resource(self.shared.res.clone()),
                Some(detail),
            );
        }
    }

    /// Takes `w` units, waiting in request order; `Err(Timeout)` if `timeout` passes first
    /// (`Some(Duration::ZERO)` is a try). Panics if `w` exceeds the capacity (it could never
    /// succeed; the Lua binding reports it as misuse).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let sem = s.weighted_semaphore(3);
    ///     let (s2, t) = (sem.clone(), s.clone());
    ///     s.spawn("holder", async move {
    ///         s2.acquire(2, None).await.expect("free");
    ///         t.sleep(Duration::from_millis(5)).await;
    ///         s2.release(2).expect("held");
    ///     });
    ///     s.yield_now().await;
    ///     sem.acquire(3, None).await.expect("no timeout"); // the whole capacity: waits
    ///     assert_eq!(s.now(), Duration::from_millis(5));
    ///     sem.release(3).expect("held");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn acquire(&self, w: u64, timeout: Option<std::time::Duration>) -> Op<Result<(), Timeout>> {
        let sem = self.clone();
        let timeout = timeout.map(|d| d.as_nanos().min(u64::MAX as u128) as Nanos);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            match sem.acquire_or_park(w, timeout) {
                Err(e) => panic!("weighted_semaphore:acquire: {e}"),
                Ok(AcquireStart::Granted) => Begin::Done(Ok(())),
                Ok(AcquireStart::Refused) => Begin::Done(Err(Timeout)),
                Ok(AcquireStart::Parked(parked, key)) => {
                    let rt = sem.shared.rt.clone();
                    Begin::Parked(Box::new(move || parked.timed_result(&rt, key)))
                }
            }
        })
    }
}

fn grant(st: &mut State, res: &ResourceRef, task: TaskId, w: u64) {
    st.used += w;
    match st.held.iter_mut().find(|(t, _)| *t == task) {
        Some((_, n)) => *n += w,
        None => {
            st.held.push((task, w));
            res.add_holder(task);
        }
    }
}

/// Takes `w` units off the releaser's holding, or (Go allows releasing from another goroutine)
/// off the oldest holders.
fn give_back(st: &mut State, res: &ResourceRef, task: TaskId, mut w: u64) {
    let mut order: Vec<usize> = (0..st.held.len()).collect();
    if let Some(i) = st.held.iter().position(|(t, _)| *t == task) {
        order.retain(|&j| j != i);
        order.insert(0, i);
    }
    for i in order {
        if w == 0 {
            break;
        }
        let take = st.held[i].1.min(w);
        st.held[i].1 -= take;
        w -= take;
    }
    st.held.retain(|&(t, n)| {
        if n == 0 {
            res.remove_holder(t);
        }
        n > 0
    });
}
