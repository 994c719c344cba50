//! Bounded parallelism (seed 7.1; ref: golang.org/x/sync errgroup with `SetLimit`): submitted
//! functions run in goroutines of the group, at most `max_parallel` at a time.
//!
//! - `submit(fn)` starts `fn` at once in a new goroutine of the group when fewer than
//!   `max_parallel` run; otherwise it queues it, and blocks (FIFO, with an optional timeout)
//!   while `queue_size` submissions already wait to start. `queue_size = 0` is errgroup's
//!   `SetLimit`: `submit` blocks until a running function ends.
//! - A goroutine of the group, when its function ends, takes the oldest queued one, or ends.
//!   So no goroutine of the group is ever idle, and none outlives `wait_all()`.
//! - `wait_all()` returns once nothing is queued and nothing runs, with the list of errors of
//!   the functions that failed since the previous `wait_all` (in the order they ended; empty
//!   when none). The group can be used again afterwards.
//!
//! Laws: active ≤ max_parallel; every submitted function runs once.
//!
//! Why it is shaped so. Rust owns the queue, the count of running goroutines, the blocked
//! submitters and the errors. `submit_begin` says whether the caller must start a goroutine
//! for its function (`Admit::Start`, the slot already counted) or it was queued; a goroutine's
//! loop is: run, `job_done(result)` which hands it the next queued function or lets it end.
//! The Rust `submit` spawns a Rust loop; the Lua binding's `submit` (prelude) spawns a Lua one.
//! Blocked submitters and `wait_all` wait for the group's goroutines, which may wait on
//! anything: `released_by_anyone`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use super::super::Spawn;
use super::super::task::CatchPanic;
use super::nanos;
use crate::runtime::{Blocking, ResourceKind, ResourceRef, Runtime, Subject};
use crate::sync::{Begin, Op, Parked, TIMED_OUT, Timeout, block_timed};

/// The group's goroutines end every wait on it.
const KIND: ResourceKind = ResourceKind::released_by_anyone("bounded_parallel");
/// A `submit` waiting for room in the queue.
const SUBMIT: Blocking = Blocking::new("submit", "block-submit");
/// `wait_all`.
const WAIT_ALL: Blocking = Blocking::new("wait_all", "block-wait");

/// What `submit_begin` decided.
///
/// # Examples
///
/// ```
/// use gosim::patterns::Admit;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let bp = s.bounded_parallel::<&str>(1, 1);
///     let first = bp.submit_begin("a", None).await.expect("no timeout");
///     assert!(matches!(first, Admit::Start("a"))); // the caller starts it
///     let second = bp.submit_begin("b", None).await.expect("no timeout");
///     assert!(matches!(second, Admit::Queued)); // handed out by `job_done`
///     assert_eq!(bp.job_done(Ok(())), Some("b"));
///     assert_eq!(bp.job_done(Ok(())), None);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub enum Admit<J> {
    /// Start a goroutine of the group running this job now (its slot is counted).
    Start(J),
    /// Queued: a goroutine of the group will run it.
    Queued,
}

/// A group's counters.
///
/// # Examples
///
/// ```
/// use gosim::patterns::BoundedJob;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let bp = s.bounded_parallel::<BoundedJob>(2, 4);
///     bp.submit(&s, async { Ok(()) }, None).await.expect("admitted");
///     bp.submit(&s, async { Err("bad".to_string()) }, None).await.expect("admitted");
///     bp.wait_all(None).await.expect("no timeout");
///     let st = bp.stats();
///     assert_eq!((st.completed, st.failed, st.active), (1, 1, 0));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundedStats {
    /// Functions running now.
    pub active: usize,
    /// Functions waiting to start.
    pub queued: usize,
    /// Functions that ended normally.
    pub completed: u64,
    /// Functions that failed.
    pub failed: u64,
}

struct Submitter<J> {
    parked: Rc<Parked>,
    job: Option<J>,
}

struct State<J> {
    queue: VecDeque<J>,
    active: usize,
    submitters: VecDeque<Submitter<J>>,
    waiters: Vec<Rc<Parked>>,
    errors: Vec<String>,
    stats: BoundedStats,
}

struct Shared<J> {
    rt: Runtime,
    res: ResourceRef,
    max_parallel: usize,
    queue_size: usize,
    state: RefCell<State<J>>,
}

/// A bounded-parallelism group running jobs `J`. Clones are the same group.
///
/// # Examples
///
/// ```
/// use gosim::patterns::BoundedJob;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let bp = s.bounded_parallel::<BoundedJob>(2, 10); // at most 2 at a time
///     for _ in 0..6 {
///         let t = s.clone();
///         bp.submit(&s, async move {
///             t.sleep(Duration::from_millis(10)).await;
///             Ok(())
///         }, None).await.expect("room");
///     }
///     let errors = bp.wait_all(None).await.expect("no timeout");
///     assert!(errors.is_empty());
///     assert_eq!(s.now(), Duration::from_millis(30)); // three rounds of two
/// });
/// report.assert_pass();
/// ```
pub struct BoundedParallel<J> {
    shared: Rc<Shared<J>>,
}

impl<J> Clone for BoundedParallel<J> {
    fn clone(&self) -> Self {
        BoundedParallel {
            shared: self.shared.clone(),
        }
    }
}

impl<J> std::fmt::Debug for BoundedParallel<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BoundedParallel({})", self.shared.res)
    }
}

/// A Rust job of a group: a boxed future failing with `Err(message)` (or by panicking).
pub type BoundedJob = Pin<Box<dyn Future<Output = Result<(), String>>>>;

impl<J: 'static> BoundedParallel<J> {
    /// A group of at most `max_parallel` (> 0) running functions and `queue_size` waiting ones.
    pub fn new(
        rt: &Runtime,
        max_parallel: usize,
        queue_size: usize,
        created_at: Option<Rc<str>>,
    ) -> BoundedParallel<J> {
        assert!(max_parallel > 0, "max_parallel must be positive");
        let res = rt.new_resource(KIND, created_at);
        if rt.tracing() {
            rt.emit(
                "new",
                Subject::Resource(res.clone()),
                Some(format!(
                    "max_parallel={max_parallel} queue_size={queue_size}"
                )),
            );
        }
        BoundedParallel {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                max_parallel,
                queue_size,
                state: RefCell::new(State {
                    queue: VecDeque::new(),
                    active: 0,
                    submitters: VecDeque::new(),
                    waiters: Vec::new(),
                    errors: Vec::new(),
                    stats: BoundedStats::default(),
                }),
            }),
        }
    }

    /// Its identity (`bounded_parallel#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// The counters now.
    pub fn stats(&self) -> BoundedStats {
        let st = self.shared.state.borrow();
        BoundedStats {
            active: st.active,
            queued: st.queue.len(),
            ..st.stats
        }
    }

    fn trace(&self, verb: &'static str, detail: String) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            rt.emit(
                verb,
                Subject::Resource(self.shared.res.clone()),
                Some(detail),
            );
        }
    }

    /// Submits `job`: `Start(job)` when a slot is free (the caller starts the goroutine),
    /// `Queued` when queued; blocks while `queue_size` jobs wait (FIFO), at most `timeout`
    /// (`Err(Timeout)`: not submitted).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::Admit;
    /// use gosim::sync::Timeout;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let bp = s.bounded_parallel::<u8>(1, 0); // no queue
    ///     assert!(matches!(bp.submit_begin(1, None).await, Ok(Admit::Start(1))));
    ///     let r = bp.submit_begin(2, Some(Duration::from_millis(4))).await; // waits for room
    ///     assert!(matches!(r, Err(Timeout)));
    ///     assert_eq!(s.now(), Duration::from_millis(4));
    ///     assert_eq!(bp.job_done(Ok(())), None);
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn submit_begin(&self, job: J, timeout: Option<Duration>) -> Op<Result<Admit<J>, Timeout>> {
        let b = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            let rt = b.shared.rt.clone();
            let mut st = b.shared.state.borrow_mut();
            if st.active < b.shared.max_parallel && st.queue.is_empty() {
                st.active += 1;
                let n = st.active;
                drop(st);
                b.trace("start", format!("active={n}"));
                return Begin::Done(Ok(Admit::Start(job)));
            }
            if st.queue.len() < b.shared.queue_size && st.submitters.is_empty() {
                st.queue.push_back(job);
                let n = st.queue.len();
                drop(st);
                b.trace("queue", format!("queued={n}"));
                return Begin::Done(Ok(Admit::Queued));
            }
            if timeout == Some(0) {
                return Begin::Done(Err(Timeout));
            }
            let parked = Parked::new(rt.current());
            st.submitters.push_back(Submitter {
                parked: parked.clone(),
                job: Some(job),
            });
            drop(st);
            let key = {
                let b2 = b.clone();
                block_timed(&rt, SUBMIT, &b.shared.res, &parked, timeout, move |_, p| {
                    b2.shared
                        .state
                        .borrow_mut()
                        .submitters
                        .retain(|s| !Rc::ptr_eq(&s.parked, p));
                })
            };
            Begin::Parked(Box::new(move || {
                if parked.fired_case() == Some(TIMED_OUT) {
                    return Err(Timeout);
                }
                if let Some(k) = key {
                    rt.cancel_timer(k);
                }
                Ok(Admit::Queued)
            }))
        })
    }

    /// For a goroutine of the group: its job ended (`Err(msg)`: failed). Returns the next
    /// queued job for it to run, or `None`: it ends (its slot is freed). Not a scheduling point.
    pub fn job_done(&self, result: Result<(), String>) -> Option<J> {
        let rt = self.shared.rt.clone();
        let mut st = self.shared.state.borrow_mut();
        match result {
            Ok(()) => st.stats.completed += 1,
            Err(e) => {
                st.stats.failed += 1;
                st.errors.push(e);
            }
        }
        let mut next = st.queue.pop_front();
        // Room in the queue: the oldest blocked submitters' jobs go in (FIFO).
        while st.queue.len() < self.shared.queue_size {
            let Some(mut s) = st.submitters.pop_front() else {
                break;
            };
            if s.parked.is_live() {
                st.queue
                    .push_back(s.job.take().expect("a blocked submit holds its job"));
                s.parked.fire(&rt, 0);
            }
        }
        // queue_size = 0 (errgroup's SetLimit): a blocked submitter's job goes straight here.
        while next.is_none() {
            let Some(mut s) = st.submitters.pop_front() else {
                break;
            };
            if s.parked.is_live() {
                next = s.job.take();
                s.parked.fire(&rt, 0);
            }
        }
        if next.is_none() {
            st.active -= 1;
            if st.active == 0 && st.queue.is_empty() {
                let waiters = std::mem::take(&mut st.waiters);
                drop(st);
                for p in waiters {
                    if p.is_live() {
                        p.fire(&rt, 0);
                    }
                }
            }
        }
        next
    }

    /// Waits until nothing is queued or running, at most `timeout`; returns the errors of the
    /// functions that failed since the previous `wait_all` (and forgets them).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::BoundedJob;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let bp = s.bounded_parallel::<BoundedJob>(2, 2);
    ///     bp.submit(&s, async { Err("first".to_string()) }, None).await.expect("room");
    ///     bp.submit(&s, async { panic!("second") }, None).await.expect("room");
    ///     let mut errors = bp.wait_all(None).await.expect("no timeout");
    ///     errors.sort();
    ///     assert_eq!(errors.len(), 2); // the errors since the last wait_all
    ///     assert_eq!(errors[0], "first");
    ///     assert!(bp.wait_all(None).await.expect("no timeout").is_empty());
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn wait_all(&self, timeout: Option<Duration>) -> Op<Result<Vec<String>, Timeout>> {
        let b = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            let rt = b.shared.rt.clone();
            let mut st = b.shared.state.borrow_mut();
            if st.active == 0 && st.queue.is_empty() {
                return Begin::Done(Ok(std::mem::take(&mut st.errors)));
            }
            if timeout == Some(0) {
                return Begin::Done(Err(Timeout));
            }
            let parked = Parked::new(rt.current());
            st.waiters.push(parked.clone());
            drop(st);
            let key = {
                let b2 = b.clone();
                block_timed(
                    &rt,
                    WAIT_ALL,
                    &b.shared.res,
                    &parked,
                    timeout,
                    move |_, p| {
                        b2.shared
                            .state
                            .borrow_mut()
                            .waiters
                            .retain(|w| !Rc::ptr_eq(w, p));
                    },
                )
            };
            Begin::Parked(Box::new(move || {
                parked.timed_result(&rt, key)?;
                Ok(std::mem::take(&mut b.shared.state.borrow_mut().errors))
            }))
        })
    }
}

impl BoundedParallel<BoundedJob> {
    /// Submits a Rust function (see `submit_begin`); a started one runs in a new task named
    /// `bounded_parallel-worker`. A panic fails the function, not the group.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::BoundedJob;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let bp = s.bounded_parallel::<BoundedJob>(1, 0);
    ///     let t = s.clone();
    ///     bp.submit(&s, async move { t.sleep(Duration::from_millis(6)).await; Ok(()) }, None)
    ///         .await
    ///         .expect("started");
    ///     bp.submit(&s, async { Ok(()) }, None).await.expect("started after the first");
    ///     assert_eq!(s.now(), Duration::from_millis(6)); // no queue: waited for a slot
    ///     bp.wait_all(None).await.expect("no timeout");
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn submit<F>(
        &self,
        spawner: &dyn Spawn,
        f: F,
        timeout: Option<Duration>,
    ) -> Result<(), Timeout>
    where
        F: Future<Output = Result<(), String>> + 'static,
    {
        match self.submit_begin(Box::pin(f), timeout).await? {
            Admit::Queued => Ok(()),
            Admit::Start(job) => {
                let b = self.clone();
                spawner.spawn_boxed(
                    Some("bounded_parallel-worker"),
                    Box::pin(async move {
                        let mut job = Some(job);
                        while let Some(j) = job {
                            let r = match CatchPanic::new(j).await {
                                Ok(r) => r,
                                Err(panic) => Err(panic),
                            };
                            job = b.job_done(r);
                        }
                    }),
                );
                Ok(())
            }
        }
    }
}
