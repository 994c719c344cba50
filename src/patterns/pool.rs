//! Named worker pools (the original module's `pool_*`, Lua's `goroutine.pool_create`...): a fixed
//! number of workers take jobs from a queue channel of `workers * 2` jobs; `submit` never blocks.
//!
//! Why it is shaped so. `Pool<J>` is the state machine, generic over the job type, because a job
//! is user code and only the language that wrote it can run it: the Rust worker loop
//! (`Pool::start`) polls a boxed future, a Lua binding will call a Lua function. A worker loop is
//! `next_job` (a receive on the queue; `None` once the pool is closed and drained), run the job,
//! `job_done(result)`, and at the end `worker_exit` (the wait group's `done`). The queue is an
//! ordinary channel named `pool <name>` and the workers' end an ordinary wait group, so the trace
//! shows the same events as the Lua pool's. `close` is Lua's `pool_close` (queued jobs are
//! dropped, not run: `cancelled`); `wait` is `pool_wait` (no more submits, every queued job runs,
//! then the workers exit). Pools are not registered by name here: a name registry (and Lua's
//! "creating a pool under a taken name cancels the old one") belongs to the binding.
//!
//! Rust jobs fail by panicking: the panic is caught around the job's polls, the job counts as
//! failed, a `note` event says so, and the worker goes on.

use std::cell::RefCell;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::Spawn;
use super::task::CatchPanic;
use crate::runtime::{Runtime, Subject};
use crate::sync::{Channel, Op, TrySendError, WaitGroup};

/// Why a job was not accepted.
///
/// # Examples
///
/// ```
/// use gosim::patterns::PoolError;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let pool = s.pool("jobs", 1); // a queue of 2 jobs
///     pool.submit_fn(async {}).expect("room");
///     pool.submit_fn(async {}).expect("room");
///     assert_eq!(pool.submit_fn(async {}).unwrap_err(), PoolError::QueueFull);
///     pool.wait().await;
///     assert_eq!(pool.submit_fn(async {}).unwrap_err(), PoolError::Closed);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The pool is closed (after `wait` or `close`).
    Closed,
    /// The queue (`workers * 2` jobs) is full; try again later.
    QueueFull,
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolError::Closed => "pool is closed",
            PoolError::QueueFull => "pool queue is full",
        })
    }
}

impl std::error::Error for PoolError {}

/// An accepted job: its pool's name and its number (from 1), shown as `jobs-3`.
///
/// # Examples
///
/// ```
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let pool = s.pool("jobs", 1);
///     let first = pool.submit_fn(async {}).expect("room");
///     let second = pool.submit_fn(async {}).expect("room");
///     assert_eq!(second.number(), first.number() + 1);
///     pool.wait().await;
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobId {
    pool: Rc<str>,
    number: u64,
}

impl JobId {
    /// Its number in its pool, from 1.
    pub fn number(&self) -> u64 {
        self.number
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.pool, self.number)
    }
}

/// A pool's counters.
///
/// # Examples
///
/// ```
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let pool = s.pool("jobs", 2);
///     pool.submit_fn(async {}).expect("room");
///     pool.submit_fn(async { panic!("job failed") }).expect("room");
///     pool.wait().await;
///     let stats = pool.stats();
///     assert_eq!((stats.workers, stats.completed, stats.failed), (2, 1, 1));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Workers started.
    pub workers: usize,
    /// Jobs running now.
    pub active: usize,
    /// Jobs that ended normally.
    pub completed: u64,
    /// Jobs that failed.
    pub failed: u64,
    /// Jobs waiting in the queue.
    pub queued: usize,
}

#[derive(Default)]
struct State {
    active: usize,
    completed: u64,
    failed: u64,
    dropped: u64,
    next_id: u64,
    closed: bool,
    cancelled: bool,
}

struct Shared<J> {
    rt: Runtime,
    name: Rc<str>,
    workers: usize,
    queue: Channel<J>,
    wg: WaitGroup,
    state: RefCell<State>,
}

/// A worker pool's state machine, generic over the job type. Clones are the same pool.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let pool = s.pool("jobs", 2); // workers jobs-worker-1 and jobs-worker-2
///     for _ in 0..4 {
///         let t = s.clone();
///         pool.submit_fn(async move { t.sleep(Duration::from_millis(10)).await })
///             .expect("room in the queue");
///     }
///     pool.wait().await;
///     assert_eq!(s.now(), Duration::from_millis(20)); // two rounds of two
///     assert_eq!(pool.stats().completed, 4);
/// });
/// report.assert_pass();
/// ```
pub struct Pool<J> {
    shared: Rc<Shared<J>>,
}

impl<J> Clone for Pool<J> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<J> std::fmt::Debug for Pool<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({})", self.shared.name)
    }
}

impl<J: Debug + 'static> Pool<J> {
    /// A pool named `name` for `workers` workers (`> 0`): its queue channel (capacity
    /// `workers * 2`, named `pool <name>`) and a wait group counting `workers`. Starts no worker:
    /// the caller spawns `workers` loops, named `worker_name(1..=workers)`. Not a scheduling point.
    pub fn new(rt: &Runtime, name: &str, workers: usize, created_at: Option<Rc<str>>) -> Pool<J> {
        assert!(workers > 0, "a pool needs at least one worker");
        let queue: Channel<J> = Channel::new(rt, workers * 2, created_at.clone());
        let wg = WaitGroup::new(rt, created_at);
        queue.resource().set_name(&format!("pool {name}"));
        wg.add(workers as i64)
            .expect("a positive count is never a misuse");
        Pool {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                name: Rc::from(name),
                workers,
                queue,
                wg,
                state: RefCell::new(State::default()),
            }),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The goroutine name of worker `i` (from 1): `<name>-worker-<i>`.
    pub fn worker_name(&self, i: usize) -> String {
        format!("{}-worker-{i}", self.shared.name)
    }

    /// Queues `job`; never blocks and is not a scheduling point. A full queue is traced
    /// (`try_send ... full`), as Lua's refused `try_send` is.
    pub fn submit(&self, job: J) -> Result<JobId, PoolError> {
        let number = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return Err(PoolError::Closed);
            }
            st.next_id += 1;
            st.next_id
        };
        match self.shared.queue.try_send(job) {
            Ok(()) => Ok(JobId {
                pool: self.shared.name.clone(),
                number,
            }),
            Err(e) => {
                self.shared.state.borrow_mut().next_id -= 1;
                if matches!(e, TrySendError::Closed(_)) {
                    return Err(PoolError::Closed);
                }
                if self.shared.rt.tracing() {
                    self.shared.rt.emit(
                        "try_send",
                        Subject::Resource(self.shared.queue.resource().clone()),
                        Some("full".to_string()),
                    );
                }
                Err(PoolError::QueueFull)
            }
        }
    }

    /// For a worker: the next job to run (counted active until `job_done`), waiting for one;
    /// `None` once the pool is closed and its queue drained. Jobs queued before `close` are
    /// dropped here, unrun.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::Pool;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     // A pool of plain values, its worker loop written by hand (as a language binding does).
    ///     let pool: Pool<u32> = Pool::new(s.runtime(), "sq", 1, None);
    ///     let (p, out) = (pool.clone(), s.atomic_int(0));
    ///     let o = out.clone();
    ///     s.spawn(&pool.worker_name(1), async move {
    ///         while let Some(n) = p.next_job().await {
    ///             o.add(i64::from(n * n)).await;
    ///             p.job_done(Ok(()));
    ///         }
    ///         p.worker_exit().await;
    ///     });
    ///     pool.submit(3).expect("room");
    ///     pool.submit(4).expect("room");
    ///     pool.wait().await;
    ///     assert_eq!(out.peek(), 25);
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn next_job(&self) -> Option<J> {
        loop {
            let job = self.shared.queue.recv().await?;
            let mut st = self.shared.state.borrow_mut();
            if st.cancelled {
                st.dropped += 1;
                continue;
            }
            st.active += 1;
            return Some(job);
        }
    }

    /// For a worker: the job it took has ended, normally or with `Err(message)` (counted failed,
    /// and a `note` event carries the message's first line). Not a scheduling point.
    pub fn job_done(&self, result: Result<(), String>) {
        let mut st = self.shared.state.borrow_mut();
        st.active -= 1;
        match result {
            Ok(()) => st.completed += 1,
            Err(message) => {
                st.failed += 1;
                drop(st);
                if self.shared.rt.tracing() {
                    let first = message.lines().next().unwrap_or("");
                    self.shared.rt.emit(
                        "note",
                        Subject::None,
                        Some(format!("{}: {first}", self.shared.name)),
                    );
                }
            }
        }
    }

    /// For a worker, once `next_job` said `None`: its last act (the wait group's `done`, a
    /// scheduling point).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::Pool;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pool: Pool<&str> = Pool::new(s.runtime(), "p", 1, None);
    ///     let p = pool.clone();
    ///     s.spawn("p-worker-1", async move {
    ///         while let Some(_job) = p.next_job().await {
    ///             p.job_done(Ok(()));
    ///         }
    ///         p.worker_exit().await; // the worker's last act: `wait` counts it gone
    ///     });
    ///     pool.submit("a").expect("room");
    ///     pool.wait().await;
    ///     assert_eq!(pool.stats().completed, 1);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn worker_exit(&self) -> Op<()> {
        let wg = self.shared.wg.clone();
        Op::now(&self.shared.rt, move || {
            wg.add(-1).expect("one done per worker");
        })
    }

    /// Closes the queue to submits if it is open (two scheduling points, as Lua's `close_pool`:
    /// the `is_closed` check and the close).
    async fn close_queue(&self) {
        self.shared.state.borrow_mut().closed = true;
        let q = self.shared.queue.clone();
        let open = Op::now(&self.shared.rt, move || !q.is_closed()).await;
        if open {
            let q = self.shared.queue.clone();
            Op::now(&self.shared.rt, move || {
                q.close();
            })
            .await;
        }
    }

    /// Stops accepting jobs and waits until every queued job has run and the workers have
    /// exited (Lua's `pool_wait`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pool = s.pool("jobs", 1);
    ///     let t = s.clone();
    ///     pool.submit_fn(async move { t.sleep(Duration::from_millis(15)).await }).expect("room");
    ///     pool.wait().await; // no more submits; every queued job runs
    ///     assert_eq!(s.now(), Duration::from_millis(15));
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn wait(&self) {
        self.close_queue().await;
        self.shared.wg.wait().await;
    }

    /// Closes the pool and drops the jobs still queued (running ones finish); returns without
    /// waiting (Lua's `pool_close`, with its final scheduling point).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::PoolError;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pool = s.pool("jobs", 1);
    ///     let hits = s.atomic_int(0);
    ///     for _ in 0..2 {
    ///         let h = hits.clone();
    ///         pool.submit_fn(async move { h.add(1).await; }).expect("room");
    ///     }
    ///     pool.close().await; // queued jobs not yet taken are dropped
    ///     assert_eq!(pool.submit_fn(async {}).unwrap_err(), PoolError::Closed);
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn close(&self) {
        self.cancel().await;
        crate::sync::yield_now(&self.shared.rt).await;
    }

    /// `close` without its final scheduling point: for a binding whose call does more before
    /// that point (Lua's `pool_close` unregisters the name; `pool_create` replaces a pool).
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pool = s.pool("jobs", 1);
    ///     pool.submit_fn(async {}).expect("room");
    ///     pool.submit_fn(async {}).expect("room");
    ///     pool.cancel().await; // `close` without its final scheduling point
    ///     assert!(pool.submit_fn(async {}).is_err());
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn cancel(&self) {
        self.shared.state.borrow_mut().cancelled = true;
        self.close_queue().await;
    }

    /// Its counters. Not an operation (the Lua binding's `pool_stats` adds the scheduling point
    /// its `len` took).
    pub fn stats(&self) -> PoolStats {
        let st = self.shared.state.borrow();
        PoolStats {
            workers: self.shared.workers,
            active: st.active,
            completed: st.completed,
            failed: st.failed,
            queued: self.shared.queue.len(),
        }
    }

    /// Jobs dropped unrun because the pool was closed with `close`.
    pub fn dropped(&self) -> u64 {
        self.shared.state.borrow().dropped
    }
}

/// A Rust job: a boxed future (shown as `job` in the trace).
///
/// # Examples
///
/// ```
/// use gosim::patterns::{Job, Pool};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let pool = Pool::start(s.runtime(), &s, "jobs", 1, None);
///     let done = s.atomic_int(0);
///     let d = done.clone();
///     pool.submit(Job::new(async move { d.store(1).await; })).expect("room");
///     pool.wait().await;
///     assert_eq!(done.peek(), 1);
/// });
/// report.assert_pass();
/// ```
pub struct Job(Pin<Box<dyn Future<Output = ()>>>);

impl std::fmt::Debug for Job {
    /// `job`, as the trace shows a queued job.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("job")
    }
}

impl Job {
    /// A job running `f`.
    pub fn new(f: impl Future<Output = ()> + 'static) -> Job {
        Job(Box::pin(f))
    }
}

impl Pool<Job> {
    /// A pool of Rust jobs with its `workers` worker tasks started (not a scheduling point).
    pub fn start(
        rt: &Runtime,
        spawner: &dyn Spawn,
        name: &str,
        workers: usize,
        created_at: Option<Rc<str>>,
    ) -> Pool<Job> {
        let pool = Pool::new(rt, name, workers, created_at);
        for i in 1..=workers {
            let p = pool.clone();
            spawner.spawn_boxed(Some(&pool.worker_name(i)), Box::pin(rust_worker(p)));
        }
        pool
    }

    /// Queues a job running `f` (see `submit`).
    pub fn submit_fn(&self, f: impl Future<Output = ()> + 'static) -> Result<JobId, PoolError> {
        self.submit(Job::new(f))
    }
}

/// The Rust worker loop: take a job, run it (a panic fails the job, not the worker), count it.
async fn rust_worker(pool: Pool<Job>) {
    while let Some(Job(f)) = pool.next_job().await {
        let r = CatchPanic::new(f).await;
        pool.job_done(r.map(|_| ()));
    }
    pool.worker_exit().await;
}
