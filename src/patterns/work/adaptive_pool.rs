//! An adaptive worker pool (seed 7.3; ref: Java's `ThreadPoolExecutor`, with its "max never
//! reached with an unbounded queue" trap avoided): between `min_workers` and `max_workers`
//! workers run submitted tasks; the count changes only at checks every `check_interval`.
//!
//! - At each check, utilisation = (busy + queued) / workers, counting queued tasks as demand
//!   (Java grows past its core size only when its queue refuses a task, so with an unbounded
//!   queue it never does: here demand is what is waiting, whatever the queue's size). Strictly
//!   above `scale_up_threshold`: one worker is added (up to max). Strictly below
//!   `scale_down_threshold`: one idle worker is retired (down to min; a busy one never is).
//! - Checks are at creation + k·`check_interval` ("checks start at creation"). The ticker is a
//!   runtime timer callback, not a goroutine: it is armed only while a check could change
//!   something (a check that changes nothing is not re-armed; the next submit, task end or
//!   retirement arms the next check at its phase). So an idle or stuck pool has no timer: it
//!   never keeps a run alive nor hides a deadlock; and the timer counts as a way out of a
//!   deadlock only while it could add a worker for a queued task.
//! - `process(fn)` starts `min_workers` workers; `submit(task)` queues (never blocks; refused
//!   once closed); `wait()` returns when nothing is queued or running; `close()` refuses new
//!   work, queued tasks still run, then the workers end. A failing task is counted `failed`.
//!
//! Laws: min ≤ workers ≤ max; the count changes only at checks (besides `process` and the end
//! after `close`); no task is lost, run twice or interrupted (a worker is retired only while
//! idle).
//!
//! Why it is shaped so. Rust owns the queue, the idle workers (each a `Parked`), the counters and
//! the ticker; a worker loop is `next_job` (a task, or `None`: retired or closed and drained),
//! run the user's function, `job_done`. New workers are started by a spawner the language layer
//! gives at `process` (Rust tasks, or Lua goroutines running the prelude's loop).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use super::super::task::CatchPanic;
use super::super::{PoolError, Spawn};
use super::nanos;
use crate::runtime::{
    Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TimerCallback, Wait,
};
use crate::sync::{Begin, Misuse, Op, Parked, Timeout, block_timed};

/// Anyone (a submit, a task's end, a check, a close) ends a wait on the pool.
const KIND: ResourceKind = ResourceKind::released_by_anyone("adaptive_pool");
/// An idle worker.
const IDLE: Blocking = Blocking::new("next task", "block-task");
/// `wait()`.
const DRAIN: Blocking = Blocking::new("wait", "block-wait");
/// The case an idle worker is fired with when retired.
const RETIRE: usize = 1;

/// An adaptive pool's settings.
///
/// # Examples
///
/// ```
/// use gosim::patterns::AdaptiveOptions;
/// use std::time::Duration;
///
/// let opts = AdaptiveOptions { min_workers: 1, max_workers: 4,
///                              check_interval: Duration::from_millis(10),
///                              ..AdaptiveOptions::default() };
/// assert_eq!(opts.scale_up_threshold, 0.8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveOptions {
    /// Workers at least (> 0).
    pub min_workers: usize,
    /// Workers at most (≥ min).
    pub max_workers: usize,
    /// Add a worker when utilisation is strictly above this.
    pub scale_up_threshold: f64,
    /// Retire an idle worker when utilisation is strictly below this.
    pub scale_down_threshold: f64,
    /// Time between checks (> 0).
    pub check_interval: Duration,
}

impl Default for AdaptiveOptions {
    fn default() -> Self {
        AdaptiveOptions {
            min_workers: 2,
            max_workers: 20,
            scale_up_threshold: 0.8,
            scale_down_threshold: 0.2,
            check_interval: Duration::from_millis(5000),
        }
    }
}

/// An adaptive pool's counters.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{AdaptiveJob, AdaptiveOptions, AdaptivePool};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let opts = AdaptiveOptions { min_workers: 2, ..AdaptiveOptions::default() };
///     let pool = AdaptivePool::<AdaptiveJob>::new(s.runtime(), opts, None);
///     pool.process(s.clone()).expect("once");
///     pool.submit(Box::pin(async { Ok(()) })).expect("open");
///     pool.submit(Box::pin(async { Err("bad".to_string()) })).expect("open");
///     pool.close();
///     pool.wait(None).await.expect("no timeout");
///     let st = pool.stats();
///     assert_eq!((st.completed, st.failed), (1, 1));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdaptiveStats {
    /// Workers now.
    pub workers: usize,
    /// Tasks running now.
    pub busy: usize,
    /// Tasks waiting.
    pub queued: usize,
    /// Tasks that ended normally.
    pub completed: u64,
    /// Tasks that failed.
    pub failed: u64,
}

type Spawner<J> = Rc<dyn Fn(&AdaptivePool<J>, usize)>;

struct State<J> {
    queue: VecDeque<J>,
    workers: usize,
    busy: usize,
    /// Workers to retire at their next `next_job` (the retired idle worker's wake).
    idle: VecDeque<Rc<Parked>>,
    closed: bool,
    tick_armed: bool,
    spawner: Option<Spawner<J>>,
    next_worker: usize,
    waiters: Vec<Rc<Parked>>,
    completed: u64,
    failed: u64,
}

struct Shared<J> {
    rt: Runtime,
    res: ResourceRef,
    opts: AdaptiveOptions,
    created: Nanos,
    state: RefCell<State<J>>,
}

/// An adaptive worker pool of tasks `J`. Clones are the same pool.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{AdaptiveJob, AdaptiveOptions, AdaptivePool};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let opts = AdaptiveOptions { min_workers: 1, max_workers: 4,
///                                  check_interval: Duration::from_millis(10),
///                                  ..AdaptiveOptions::default() };
///     let pool = AdaptivePool::<AdaptiveJob>::new(s.runtime(), opts, None);
///     pool.process(s.clone()).expect("once");
///     for _ in 0..8 {
///         let t = s.clone();
///         pool.submit(Box::pin(async move {
///             t.sleep(Duration::from_millis(20)).await;
///             Ok(())
///         })).expect("open");
///     }
///     pool.close();
///     pool.wait(None).await.expect("no timeout");
///     assert_eq!(pool.stats().completed, 8);
///     assert!(s.now() >= Duration::from_millis(40)); // at most 4 workers: two rounds or more
/// });
/// report.assert_pass();
/// ```
pub struct AdaptivePool<J> {
    shared: Rc<Shared<J>>,
}

impl<J> Clone for AdaptivePool<J> {
    fn clone(&self) -> Self {
        AdaptivePool {
            shared: self.shared.clone(),
        }
    }
}

impl<J> std::fmt::Debug for AdaptivePool<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdaptivePool({})", self.shared.res)
    }
}

/// The pool's check timer.
struct Tick<J: 'static> {
    pool: AdaptivePool<J>,
}

impl<J: 'static> TimerCallback for Tick<J> {
    fn fire(self: Box<Self>, _rt: &Runtime) {
        self.pool.tick();
    }

    fn may_wake(&self) -> bool {
        // Only adding a worker for a queued task can unblock anyone.
        let st = self.pool.shared.state.borrow();
        !st.queue.is_empty() && st.workers < self.pool.shared.opts.max_workers && !st.closed
    }
}

impl<J: 'static> AdaptivePool<J> {
    /// A pool with no worker yet (`process` starts them). Panics on settings the bindings
    /// refuse (min 0, max < min, zero interval).
    pub fn new(rt: &Runtime, opts: AdaptiveOptions, created_at: Option<Rc<str>>) -> Self {
        assert!(opts.min_workers > 0, "min_workers must be positive");
        assert!(
            opts.max_workers >= opts.min_workers,
            "max_workers < min_workers"
        );
        assert!(
            !opts.check_interval.is_zero(),
            "check_interval must be positive"
        );
        let res = rt.new_resource(KIND, created_at);
        if rt.tracing() {
            rt.emit(
                "new",
                Subject::Resource(res.clone()),
                Some(format!(
                    "workers={}..{} up>{} down<{} every {}",
                    opts.min_workers,
                    opts.max_workers,
                    opts.scale_up_threshold,
                    opts.scale_down_threshold,
                    crate::runtime::format_ms(nanos(Some(opts.check_interval)).unwrap_or(0))
                )),
            );
        }
        AdaptivePool {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                opts,
                created: rt.now(),
                state: RefCell::new(State {
                    queue: VecDeque::new(),
                    workers: 0,
                    busy: 0,
                    idle: VecDeque::new(),
                    closed: false,
                    tick_armed: false,
                    spawner: None,
                    next_worker: 0,
                    waiters: Vec::new(),
                    completed: 0,
                    failed: 0,
                }),
            }),
        }
    }

    /// Its identity (`adaptive_pool#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Its settings.
    pub fn options(&self) -> AdaptiveOptions {
        self.shared.opts
    }

    /// The counters now.
    pub fn stats(&self) -> AdaptiveStats {
        let st = self.shared.state.borrow();
        AdaptiveStats {
            workers: st.workers,
            busy: st.busy,
            queued: st.queue.len(),
            completed: st.completed,
            failed: st.failed,
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

    /// Starts the workers with `spawner(pool, i)` (called for each new worker, named by `i`
    /// from 1): `min_workers` now, more at checks. A second call is misuse.
    pub fn process_with(
        &self,
        spawner: impl Fn(&AdaptivePool<J>, usize) + 'static,
    ) -> Result<(), Misuse> {
        let n = {
            let mut st = self.shared.state.borrow_mut();
            if st.spawner.is_some() {
                return Err(Misuse("process was already called".into()));
            }
            st.spawner = Some(Rc::new(spawner));
            st.workers = self.shared.opts.min_workers;
            self.shared.opts.min_workers
        };
        for _ in 0..n {
            self.spawn_one();
        }
        self.arm();
        Ok(())
    }

    fn spawn_one(&self) {
        let (spawner, i) = {
            let mut st = self.shared.state.borrow_mut();
            st.next_worker += 1;
            (st.spawner.clone(), st.next_worker)
        };
        if let Some(s) = spawner {
            s(self, i);
        }
    }

    /// The goroutine name of worker `i`.
    pub fn worker_name(&self, i: usize) -> String {
        format!("adaptive_pool-worker-{i}")
    }

    /// Arms the next check at its phase (creation + k·interval), if none is armed.
    fn arm(&self) {
        let rt = &self.shared.rt;
        {
            let mut st = self.shared.state.borrow_mut();
            if st.tick_armed || st.closed || st.spawner.is_none() {
                return;
            }
            st.tick_armed = true;
        }
        let every = nanos(Some(self.shared.opts.check_interval))
            .unwrap_or(1)
            .max(1);
        let since = rt.now().saturating_sub(self.shared.created);
        let at = self
            .shared
            .created
            .saturating_add((since / every + 1).saturating_mul(every));
        rt.add_timer(at, Box::new(Tick { pool: self.clone() }));
    }

    /// A check: scale by one worker at most; re-armed only if it changed something.
    fn tick(&self) {
        let opts = self.shared.opts;
        let (action, util) = {
            let mut st = self.shared.state.borrow_mut();
            st.tick_armed = false;
            if st.closed || st.workers == 0 {
                return;
            }
            let util = (st.busy + st.queue.len()) as f64 / st.workers as f64;
            if util > opts.scale_up_threshold && st.workers < opts.max_workers {
                st.workers += 1;
                (Some(true), util)
            } else if util < opts.scale_down_threshold && st.workers > opts.min_workers {
                match st.idle.pop_front() {
                    Some(p) => {
                        st.workers -= 1;
                        p.fire(&self.shared.rt, RETIRE);
                        (Some(false), util)
                    }
                    None => (None, util),
                }
            } else {
                (None, util)
            }
        };
        match action {
            Some(true) => {
                self.trace(
                    "scale-up",
                    format!("utilisation={util:.2} workers={}", self.stats().workers),
                );
                self.spawn_one();
                self.arm();
            }
            Some(false) => {
                self.trace(
                    "scale-down",
                    format!("utilisation={util:.2} workers={}", self.stats().workers),
                );
                self.arm();
            }
            None => {}
        }
    }

    /// Queues `task` (never blocks, not a scheduling point); refused once closed.
    pub fn submit(&self, task: J) -> Result<(), PoolError> {
        {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return Err(PoolError::Closed);
            }
            st.queue.push_back(task);
            if let Some(p) = st.idle.pop_front() {
                p.fire(&self.shared.rt, 0);
            }
        }
        self.arm();
        Ok(())
    }

    /// For a worker: the next task (counted busy until `job_done`), waiting while idle; `None`
    /// when the worker is retired, or the pool is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{AdaptiveOptions, AdaptivePool};
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let opts = AdaptiveOptions { min_workers: 1, max_workers: 1, ..AdaptiveOptions::default() };
    ///     let pool = AdaptivePool::<u32>::new(s.runtime(), opts, None);
    ///     let total = s.atomic_int(0);
    ///     let t = total.clone();
    ///     // Another language's worker loop: `process_with` starts worker i.
    ///     pool.process_with(move |p, i| {
    ///         let (p, t) = (p.clone(), t.clone());
    ///         s.spawn(&p.worker_name(i), async move {
    ///             while let Some(n) = p.next_job().await {
    ///                 t.add(i64::from(n)).await;
    ///                 p.job_done(Ok(()));
    ///             }
    ///         });
    ///     }).expect("once");
    ///     pool.submit(5).expect("open");
    ///     pool.close();
    ///     pool.wait(None).await.expect("no timeout");
    ///     assert_eq!(total.peek(), 5);
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn next_job(&self) -> Option<J> {
        loop {
            let p = self.clone();
            let step = Op::new(&self.shared.rt, None, move || {
                let rt = p.shared.rt.clone();
                let mut st = p.shared.state.borrow_mut();
                if let Some(t) = st.queue.pop_front() {
                    st.busy += 1;
                    return Begin::Done(Some(Some(t)));
                }
                if st.closed {
                    st.workers = st.workers.saturating_sub(1);
                    drop(st);
                    p.check_idle();
                    return Begin::Done(Some(None));
                }
                let parked = Parked::new(rt.current());
                st.idle.push_back(parked.clone());
                drop(st);
                rt.block(Wait::on(IDLE, &p.shared.res));
                let p2 = p.clone();
                Begin::Parked(Box::new(move || {
                    if parked.fired_case() == Some(RETIRE) {
                        return Some(None);
                    }
                    let mut st = p2.shared.state.borrow_mut();
                    match st.queue.pop_front() {
                        Some(t) => {
                            st.busy += 1;
                            Some(Some(t))
                        }
                        None => None,
                    }
                }))
            });
            if let Some(r) = step.await {
                return r;
            }
        }
    }

    /// For a worker: its task ended (`Err(msg)`: failed). Not a scheduling point.
    pub fn job_done(&self, result: Result<(), String>) {
        {
            let mut st = self.shared.state.borrow_mut();
            st.busy -= 1;
            match result {
                Ok(()) => st.completed += 1,
                Err(_) => st.failed += 1,
            }
        }
        self.check_idle();
        self.arm();
    }

    fn check_idle(&self) {
        let waiters = {
            let mut st = self.shared.state.borrow_mut();
            if st.busy > 0 || !st.queue.is_empty() {
                return;
            }
            std::mem::take(&mut st.waiters)
        };
        for p in waiters {
            if p.is_live() {
                p.fire(&self.shared.rt, 0);
            }
        }
    }

    /// Waits until nothing is queued or running, at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{AdaptiveJob, AdaptiveOptions, AdaptivePool};
    /// use gosim::sync::Timeout;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pool = AdaptivePool::<AdaptiveJob>::new(s.runtime(), AdaptiveOptions::default(), None);
    ///     pool.process(s.clone()).expect("once");
    ///     let t = s.clone();
    ///     pool.submit(Box::pin(async move { t.sleep(Duration::from_millis(50)).await; Ok(()) }))
    ///         .expect("open");
    ///     pool.close();
    ///     assert_eq!(pool.wait(Some(Duration::from_millis(10))).await, Err(Timeout));
    ///     pool.wait(None).await.expect("no timeout");
    ///     assert_eq!(s.now(), Duration::from_millis(50));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn wait(&self, timeout: Option<Duration>) -> Op<Result<(), Timeout>> {
        let p = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            let rt = p.shared.rt.clone();
            {
                let st = p.shared.state.borrow();
                if st.busy == 0 && st.queue.is_empty() {
                    return Begin::Done(Ok(()));
                }
            }
            if timeout == Some(0) {
                return Begin::Done(Err(Timeout));
            }
            let parked = Parked::new(rt.current());
            p.shared.state.borrow_mut().waiters.push(parked.clone());
            let key = {
                let p2 = p.clone();
                block_timed(&rt, DRAIN, &p.shared.res, &parked, timeout, move |_, w| {
                    p2.shared
                        .state
                        .borrow_mut()
                        .waiters
                        .retain(|x| !Rc::ptr_eq(x, w));
                })
            };
            Begin::Parked(Box::new(move || parked.timed_result(&rt, key)))
        })
    }

    /// Refuses new work; queued tasks still run, then the workers end. Idempotent; not a
    /// scheduling point.
    pub fn close(&self) {
        let idle = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return;
            }
            st.closed = true;
            std::mem::take(&mut st.idle)
        };
        self.trace("close", String::new());
        // Idle workers wake and find the queue closed and empty: they end.
        for p in idle {
            if p.is_live() {
                p.fire(&self.shared.rt, 0);
            }
        }
    }
}

/// A Rust task of an adaptive pool.
pub type AdaptiveJob = std::pin::Pin<Box<dyn Future<Output = Result<(), String>>>>;

impl AdaptivePool<AdaptiveJob> {
    /// Starts Rust workers (tasks `adaptive_pool-worker-<i>`) running the submitted futures; a
    /// panic fails the task, not the worker.
    pub fn process<S: Spawn + Clone + 'static>(&self, spawner: S) -> Result<(), Misuse> {
        self.process_with(move |pool, i| {
            let p = pool.clone();
            spawner.spawn_boxed(
                Some(&pool.worker_name(i)),
                Box::pin(async move {
                    while let Some(job) = p.next_job().await {
                        let r = match CatchPanic::new(job).await {
                            Ok(r) => r,
                            Err(panic) => Err(panic),
                        };
                        p.job_done(r);
                    }
                }),
            );
        })
    }
}
