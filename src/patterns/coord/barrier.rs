//! A cyclic barrier (seed 5.1), as tokio's `Barrier` and Java's `CyclicBarrier`: `n` parties
//! meet; the n-th arrival releases the n−1 waiting, and the barrier is ready for the next
//! generation at once.
//!
//! - The last to arrive is the leader: its `wait` returns `true` (tokio's `is_leader`), the others
//!   `false`. Exactly one leader per generation.
//! - A timed wait whose deadline passes first leaves its generation: the count of arrivals in that
//!   generation goes back down, and it gets `Err(Timeout)`. (Java breaks the barrier for every
//!   party instead; `patterns.md` decides that only the one who gave up is affected.) A timeout of
//!   0 is a try: it succeeds only if this arrival completes the generation.
//! - Ties: timers fire before goroutines run at their instant, so a waiter whose deadline falls at
//!   the instant a goroutine makes the n-th arrival has already left: that arrival does not
//!   complete the generation.
//!
//! Whether a barrier can still fill depends on goroutines that have not arrived yet, which the
//! harness cannot know: a wait is `released_by_anyone` (never a false cycle), and a barrier that
//! can never fill is reported by the global deadlock check with the waiters' names and lines.

use std::rc::Rc;

use crate::runtime::{Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TimerKey};
use crate::sync::{Base, Begin, Op, Parked, Timeout, block_timed, debug_handle};

/// Any goroutine may be the next arrival: waits make no wait-for edges.
const KIND: ResourceKind = ResourceKind::released_by_anyone("barrier");

/// A party waiting for the others.
const WAIT: Blocking = Blocking::new("wait", "block-wait");

struct State {
    parties: usize,
    generation: u64,
    /// The parties waiting in the current generation, in arrival order.
    waiting: Vec<Rc<Parked>>,
}

type Shared = Base<State>;

/// A cyclic barrier of `n` parties. Clones are the same barrier.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let barrier = s.barrier(3);
///     let mut handles = Vec::new();
///     for i in 1..=3u64 {
///         let (b, t) = (barrier.clone(), s.clone());
///         handles.push(s.spawn("party", async move {
///             t.sleep(Duration::from_millis(i * 5)).await;
///             b.wait(None).await.expect("no timeout") // true for the last to arrive
///         }));
///     }
///     let mut leaders = 0;
///     for h in handles {
///         leaders += h.await.expect("no panic") as u32;
///     }
///     assert_eq!((leaders, s.now()), (1, Duration::from_millis(15)));
///     assert_eq!(barrier.generation(), 1);
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Barrier {
    shared: Rc<Shared>,
}

debug_handle!(Barrier);

/// How an arrival starts.
#[derive(Debug)]
pub enum BarrierStart {
    /// This arrival completed the generation: it is the leader.
    Leader,
    /// A try (timeout 0) that did not complete the generation: it did not stay.
    Refused,
    /// The goroutine is parked until the generation completes or its deadline (the timer).
    Parked(Rc<Parked>, Option<TimerKey>),
}

impl Barrier {
    /// A barrier for `parties` goroutines (`parties >= 1`; 1 makes every wait a leader at once).
    pub fn new(rt: &Runtime, parties: usize, created_at: Option<Rc<str>>) -> Barrier {
        assert!(parties >= 1, "a barrier has at least one party");
        let detail = Some(format!("n={parties}"));
        Barrier {
            shared: Base::new(
                rt,
                KIND,
                created_at,
                detail,
                State {
                    parties,
                    generation: 0,
                    waiting: Vec::new(),
                },
            ),
        }
    }

    /// Its identity (`barrier#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.shared.state.borrow().parties
    }

    /// The current generation (0 at first; +1 each time the barrier releases its parties).
    pub fn generation(&self) -> u64 {
        self.shared.state.borrow().generation
    }

    /// Parties waiting in the current generation now.
    pub fn waiting(&self) -> usize {
        self.shared.state.borrow().waiting.len()
    }

    /// Arrives: completes the generation (the caller is the leader and every waiter is woken),
    /// or parks the current goroutine until the generation completes or `timeout` passes.
    pub(crate) fn arrive_or_park(&self, timeout: Option<Nanos>) -> BarrierStart {
        let rt = &self.shared.rt;
        let (generation, arrived, parties) = {
            let st = self.shared.state.borrow();
            (st.generation, st.waiting.len() + 1, st.parties)
        };
        if arrived == parties {
            let woken = {
                let mut st = self.shared.state.borrow_mut();
                st.generation += 1;
                std::mem::take(&mut st.waiting)
            };
            if rt.tracing() {
                rt.emit(
                    "release",
                    Subject::Resource(self.shared.res.clone()),
                    Some(format!("gen={generation} {arrived}/{parties} leader")),
                );
            }
            for p in woken {
                p.fire(rt, 0);
            }
            return BarrierStart::Leader;
        }
        if timeout == Some(0) {
            if rt.tracing() {
                rt.emit(
                    "wait",
                    Subject::Resource(self.shared.res.clone()),
                    Some(format!("gen={generation} {arrived}/{parties} timeout")),
                );
            }
            return BarrierStart::Refused;
        }
        if rt.tracing() {
            rt.emit(
                "arrive",
                Subject::Resource(self.shared.res.clone()),
                Some(format!("gen={generation} {arrived}/{parties}")),
            );
        }
        let parked = Parked::new(rt.current());
        self.shared.state.borrow_mut().waiting.push(parked.clone());
        let key = {
            let b = self.clone();
            block_timed(
                rt,
                WAIT,
                &self.shared.res,
                &parked,
                timeout,
                move |rt, p| b.leave(rt, p),
            )
        };
        BarrierStart::Parked(parked, key)
    }

    /// A waiter timed out: it leaves its generation, whose count of arrivals goes back down.
    fn leave(&self, rt: &Runtime, parked: &Rc<Parked>) {
        let (generation, left) = {
            let mut st = self.shared.state.borrow_mut();
            st.waiting.retain(|w| !Rc::ptr_eq(w, parked));
            (st.generation, st.waiting.len())
        };
        if rt.tracing() {
            rt.emit_as(
                parked.task(),
                "timeout",
                Subject::Resource(self.shared.res.clone()),
                Some(format!("gen={generation} {left} waiting")),
                None,
            );
        }
    }

    /// Waits for the other parties: `Ok(true)` for the leader (the last to arrive), `Ok(false)`
    /// for the others, `Err(Timeout)` if `timeout` passed first (the caller left its generation).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::Timeout;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let barrier = s.barrier(2);
    ///     // Nobody else arrives: the waiter gives up and leaves its generation.
    ///     assert_eq!(barrier.wait(Some(Duration::from_millis(10))).await, Err(Timeout));
    ///     assert_eq!((s.now(), barrier.waiting()), (Duration::from_millis(10), 0));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn wait(&self, timeout: Option<std::time::Duration>) -> Op<Result<bool, Timeout>> {
        let b = self.clone();
        let timeout = super::nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            match b.arrive_or_park(timeout) {
                BarrierStart::Leader => Begin::Done(Ok(true)),
                BarrierStart::Refused => Begin::Done(Err(Timeout)),
                BarrierStart::Parked(parked, key) => {
                    let rt = b.shared.rt.clone();
                    Begin::Parked(Box::new(move || {
                        parked.timed_result(&rt, key).map(|()| false)
                    }))
                }
            }
        })
    }
}
