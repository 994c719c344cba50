//! A work queue with retries and a dead-letter queue (seed 4.3), as kubernetes client-go's
//! workqueue (an item is never processed by two workers at once; rate-limited re-adds) with an
//! SQS-style redrive (after `max_retries` re-attempts a job goes to the dead-letter queue).
//!
//! - Each `enqueue` is one job (no collapsing of equal items, unlike client-go's set).
//! - A failed attempt is retried after `retry_delay · 2^(attempt-1)`, capped at `max_delay`
//!   (per job, computed without overflow); while it waits, no worker holds it.
//! - After `max_retries + 1` failed attempts the job is dead-lettered as
//!   `DeadLetter { item, error, attempts }` on an unbounded channel, or counted `dropped` when the
//!   dead-letter queue is off.
//! - `close()` stops intake (`enqueue` is then refused); `wait()` returns once every job enqueued
//!   so far has ended; once closed and drained, the workers' queue closes (the worker loops end)
//!   and so does the dead-letter channel.
//!
//! Laws: every enqueued job ends exactly once, processed, dead-lettered or dropped;
//! attempts ≤ max_retries + 1; a job is in at most one worker at a time.
//!
//! Why it is shaped so. Rust owns the jobs (a map by id), the retry timers and the counters; the
//! workers take job ids from an ordinary channel (`work_queue`), so waiting workers, wake-ups and
//! the trace are a channel's. A worker loop is `next_job` (a receive), run the user's function,
//! `job_done` or `job_failed`: `process` is the Rust loop over async functions, the Lua binding
//! has its own loop calling a Lua function between the same steps. Every wait here can be ended
//! by any goroutine (an enqueue, a retry timer, a close), so none is a wait-for edge.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::super::Spawn;
use crate::runtime::{Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TimerCallback};
use crate::sync::{Begin, Channel, Describe, Misuse, Op, Parked, Timeout, block_timed};

/// Anyone may end a wait for the queue to drain.
const KIND: ResourceKind = ResourceKind::released_by_anyone("work_queue");

/// `wait()` for the queue to drain.
const DRAIN: Blocking = Blocking::new("wait", "block-wait");

/// A work queue's settings.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{WorkQueueOptions, retry_delay};
/// use std::time::Duration;
///
/// let opts = WorkQueueOptions { workers: 4, max_retries: 1, ..WorkQueueOptions::default() };
/// assert!(opts.dlq_enabled);
/// assert_eq!(retry_delay(&opts, 1), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkQueueOptions {
    /// Worker loops started by `process` (> 0; default 1).
    pub workers: usize,
    /// Re-attempts after the first failure (default 3).
    pub max_retries: u32,
    /// Whether jobs that fail for good go to the dead-letter queue (default true); else dropped.
    pub dlq_enabled: bool,
    /// Delay before the first retry, doubling per attempt (default 100 ms).
    pub retry_delay: Duration,
    /// Cap of the retry delay (default 10 s).
    pub max_delay: Duration,
}

impl Default for WorkQueueOptions {
    fn default() -> Self {
        WorkQueueOptions {
            workers: 1,
            max_retries: 3,
            dlq_enabled: true,
            retry_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// A job that failed for good.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{WorkQueue, WorkQueueOptions};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let opts = WorkQueueOptions { max_retries: 1, retry_delay: Duration::from_millis(1),
///                                   ..WorkQueueOptions::default() };
///     let q = WorkQueue::<u32>::new(s.runtime(), opts, None);
///     q.process(&s, |_n| async { Err("always fails".to_string()) }).expect("once");
///     q.enqueue(7).expect("open");
///     q.close();
///     q.wait(None).await.expect("no timeout");
///     let dead = q.dead_letter_queue().recv().await.expect("one dead letter");
///     assert_eq!((dead.item, dead.attempts, dead.error.as_str()), (7, 2, "always fails"));
/// });
/// report.assert_pass();
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DeadLetter<T> {
    /// The enqueued item.
    pub item: T,
    /// The last failure's message.
    pub error: String,
    /// Attempts made (max_retries + 1).
    pub attempts: u32,
}

impl<T: std::fmt::Debug + 'static> std::fmt::Debug for DeadLetter<T> {
    /// `dead letter ITEM after N attempt(s)`, as the trace shows it (the item as the trace
    /// shows values).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dead letter {} after {} attempt(s)",
            self.item.describe(),
            self.attempts
        )
    }
}

/// A work queue's counters.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{WorkQueue, WorkQueueOptions};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let opts = WorkQueueOptions { retry_delay: Duration::from_millis(1), ..WorkQueueOptions::default() };
///     let q = WorkQueue::<u32>::new(s.runtime(), opts, None);
///     let tries = s.atomic_int(0);
///     let t = tries.clone();
///     q.process(&s, move |_n| {
///         let t = t.clone();
///         async move { if t.add(1).await == 1 { Err("flaky".into()) } else { Ok(()) } }
///     }).expect("once");
///     q.enqueue(1).expect("open");
///     q.close();
///     q.wait(None).await.expect("no timeout");
///     let st = q.stats();
///     assert_eq!((st.processed, st.retried, st.dead_lettered), (1, 1, 0));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkQueueStats {
    /// Jobs that succeeded.
    pub processed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Re-attempts scheduled.
    pub retried: u64,
    /// Jobs sent to the dead-letter queue.
    pub dead_lettered: u64,
    /// Jobs that failed for good with the dead-letter queue off.
    pub dropped: u64,
}

/// The queue was closed: the item was not enqueued.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{QueueClosed, WorkQueue, WorkQueueOptions};
///
/// let sim = gosim::Sim::with_seed(1);
/// let q = WorkQueue::<u8>::new(sim.runtime(), WorkQueueOptions::default(), None);
/// q.close();
/// assert_eq!(q.enqueue(1), Err(QueueClosed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueClosed;

impl std::fmt::Display for QueueClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed")
    }
}

impl std::error::Error for QueueClosed {}

struct Job<T> {
    item: T,
    attempts: u32,
}

struct State<T> {
    next_id: u64,
    jobs: BTreeMap<u64, Job<T>>,
    in_flight: BTreeSet<u64>,
    closed: bool,
    processing: bool,
    finished: bool,
    stats: WorkQueueStats,
    drain_waiters: Vec<Rc<Parked>>,
}

type ToDead<T, D> = Box<dyn Fn(DeadLetter<T>) -> D>;

struct Shared<T, D> {
    rt: Runtime,
    res: ResourceRef,
    opts: WorkQueueOptions,
    ready: Channel<u64>,
    dlq: Channel<D>,
    to_dead: ToDead<T, D>,
    state: RefCell<State<T>>,
}

/// A work queue of items `T` whose dead letters are `D` (by default `DeadLetter<T>`). Clones are
/// the same queue.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{WorkQueue, WorkQueueOptions};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let opts = WorkQueueOptions { workers: 2, ..WorkQueueOptions::default() };
///     let q = WorkQueue::<u64>::new(s.runtime(), opts, None);
///     let (sum, t) = (s.atomic_int(0), s.clone());
///     let acc = sum.clone();
///     q.process(&s, move |n| {
///         let (acc, t) = (acc.clone(), t.clone());
///         async move {
///             t.sleep(Duration::from_millis(10)).await;
///             acc.add(n as i64).await;
///             Ok(())
///         }
///     }).expect("started once");
///     for n in 1..=4 {
///         q.enqueue(n).expect("open");
///     }
///     q.close();
///     q.wait(None).await.expect("no timeout"); // every job done
///     assert_eq!((sum.peek(), s.now()), (10, Duration::from_millis(20)));
/// });
/// report.assert_pass();
/// ```
pub struct WorkQueue<T, D = DeadLetter<T>> {
    shared: Rc<Shared<T, D>>,
}

impl<T, D> Clone for WorkQueue<T, D> {
    fn clone(&self) -> Self {
        WorkQueue {
            shared: self.shared.clone(),
        }
    }
}

impl<T, D> std::fmt::Debug for WorkQueue<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkQueue({})", self.shared.res)
    }
}

impl<T: Clone + Debug + 'static> WorkQueue<T> {
    /// A queue whose dead letters are `DeadLetter<T>` records.
    pub fn new(rt: &Runtime, opts: WorkQueueOptions, created_at: Option<Rc<str>>) -> WorkQueue<T> {
        WorkQueue::with_dead_letters(rt, opts, created_at, |d| d)
    }
}

/// `retry_delay · 2^(attempt-1)` capped at `max_delay`, without overflow.
pub fn retry_delay(opts: &WorkQueueOptions, attempt: u32) -> Duration {
    let base = opts.retry_delay.as_nanos();
    let shift = attempt.saturating_sub(1).min(64);
    let d = base.checked_shl(shift).unwrap_or(u128::MAX);
    let d = if shift > 0 && d >> shift != base {
        u128::MAX
    } else {
        d
    };
    Duration::from_nanos(d.min(opts.max_delay.as_nanos()).min(u64::MAX as u128) as u64)
}

impl<T: Clone + Debug + 'static, D: Debug + 'static> WorkQueue<T, D> {
    /// A queue whose dead letters are made by `to_dead` (a Lua binding makes Lua tables).
    pub fn with_dead_letters(
        rt: &Runtime,
        opts: WorkQueueOptions,
        created_at: Option<Rc<str>>,
        to_dead: impl Fn(DeadLetter<T>) -> D + 'static,
    ) -> WorkQueue<T, D> {
        assert!(opts.workers > 0, "a work queue needs at least one worker");
        let res = rt.new_resource(KIND, created_at.clone());
        if rt.tracing() {
            let detail = format!(
                "workers={} max_retries={} dlq={}",
                opts.workers, opts.max_retries, opts.dlq_enabled
            );
            rt.emit("new", Subject::Resource(res.clone()), Some(detail));
        }
        let ready: Channel<u64> = Channel::new(rt, usize::MAX, created_at.clone());
        ready.resource().set_name("work_queue jobs");
        let dlq: Channel<D> = Channel::new(rt, usize::MAX, created_at);
        dlq.resource().set_name("dead letters");
        WorkQueue {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                opts,
                ready,
                dlq,
                to_dead: Box::new(to_dead),
                state: RefCell::new(State {
                    next_id: 0,
                    jobs: BTreeMap::new(),
                    in_flight: BTreeSet::new(),
                    closed: false,
                    processing: false,
                    finished: false,
                    stats: WorkQueueStats::default(),
                    drain_waiters: Vec::new(),
                }),
            }),
        }
    }

    /// Its identity (`work_queue#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Its settings.
    pub fn options(&self) -> WorkQueueOptions {
        self.shared.opts
    }

    /// The dead-letter queue: an unbounded channel that closes once the queue is closed and
    /// drained. Always the same channel.
    pub fn dead_letter_queue(&self) -> Channel<D> {
        self.shared.dlq.clone()
    }

    /// The counters now.
    pub fn stats(&self) -> WorkQueueStats {
        self.shared.state.borrow().stats
    }

    /// Jobs not ended yet (queued, waiting for a retry or being processed).
    pub fn len(&self) -> usize {
        self.shared.state.borrow().jobs.len()
    }

    /// Whether every job enqueued so far has ended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    fn trace(&self, verb: &'static str, detail: Option<String>) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            rt.emit(verb, Subject::Resource(self.shared.res.clone()), detail);
        }
    }

    /// Adds one job; refused once closed. Never blocks, not a scheduling point.
    pub fn enqueue(&self, item: T) -> Result<u64, QueueClosed> {
        let id = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                drop(st);
                self.trace("enqueue", Some("closed".into()));
                return Err(QueueClosed);
            }
            st.next_id += 1;
            let id = st.next_id;
            st.jobs.insert(id, Job { item, attempts: 0 });
            id
        };
        self.trace("enqueue", Some(format!("job={id}")));
        self.shared
            .ready
            .try_send(id)
            .unwrap_or_else(|_| unreachable!("the job channel is unbounded and open"));
        Ok(id)
    }

    /// Marks the worker loops as started; a second `process` is misuse.
    pub fn process_begin(&self) -> Result<usize, Misuse> {
        let mut st = self.shared.state.borrow_mut();
        if st.processing {
            return Err(Misuse("process was already called".into()));
        }
        st.processing = true;
        Ok(self.shared.opts.workers)
    }

    /// The goroutine name of worker `i` (from 1).
    pub fn worker_name(&self, i: usize) -> String {
        format!("work_queue-worker-{i}")
    }

    /// For a worker: the next job (its id and a copy of its item), waiting for one; `None` once
    /// the queue is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{WorkQueue, WorkQueueOptions};
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let q = WorkQueue::<&str>::new(s.runtime(), WorkQueueOptions::default(), None);
    ///     let n = q.process_begin().expect("first time"); // the worker loops to start
    ///     assert_eq!(n, 1);
    ///     let w = q.clone();
    ///     s.spawn(&q.worker_name(1), async move {
    ///         while let Some((id, _item)) = w.next_job().await {
    ///             w.job_done(id);
    ///         }
    ///     });
    ///     q.enqueue("a").expect("open");
    ///     q.close();
    ///     q.wait(None).await.expect("no timeout");
    ///     assert_eq!(q.stats().processed, 1);
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn next_job(&self) -> Option<(u64, T)> {
        loop {
            let id = self.shared.ready.recv().await?;
            let mut st = self.shared.state.borrow_mut();
            let st = &mut *st;
            let Some(job) = st.jobs.get_mut(&id) else {
                continue;
            };
            assert!(
                st.in_flight.insert(id),
                "a job is never processed by two workers at once"
            );
            job.attempts += 1;
            return Some((id, job.item.clone()));
        }
    }

    /// For a worker: job `id` succeeded. Not a scheduling point.
    pub fn job_done(&self, id: u64) {
        {
            let mut st = self.shared.state.borrow_mut();
            if !st.in_flight.remove(&id) {
                return;
            }
            st.jobs.remove(&id);
            st.stats.processed += 1;
        }
        self.trace("done", Some(format!("job={id}")));
        self.check_drained();
    }

    /// For a worker: job `id` failed with `error`: retried later, or dead-lettered (dropped with
    /// the dead-letter queue off). Not a scheduling point.
    pub fn job_failed(&self, id: u64, error: String) {
        let opts = self.shared.opts;
        let dead = {
            let mut st = self.shared.state.borrow_mut();
            if !st.in_flight.remove(&id) {
                return;
            }
            st.stats.failed += 1;
            let attempts = st.jobs[&id].attempts;
            if attempts <= opts.max_retries {
                st.stats.retried += 1;
                None
            } else {
                let job = st.jobs.remove(&id).expect("a job in flight exists");
                if opts.dlq_enabled {
                    st.stats.dead_lettered += 1;
                } else {
                    st.stats.dropped += 1;
                }
                Some(job)
            }
        };
        match dead {
            None => {
                let attempts = self.shared.state.borrow().jobs[&id].attempts;
                let delay = retry_delay(&opts, attempts);
                let nanos = delay.as_nanos().min(u64::MAX as u128) as Nanos;
                self.trace(
                    "retry",
                    Some(format!(
                        "job={id} attempt={attempts} in {}",
                        crate::runtime::format_ms(nanos)
                    )),
                );
                let at = self.shared.rt.now().saturating_add(nanos);
                let q = self.clone();
                self.shared
                    .rt
                    .add_timer(at, Box::new(Retry { queue: q, id }));
            }
            Some(job) => {
                let attempts = job.attempts;
                if opts.dlq_enabled {
                    self.trace("dead-letter", Some(format!("job={id} attempts={attempts}")));
                    let letter = (self.shared.to_dead)(DeadLetter {
                        item: job.item,
                        error,
                        attempts,
                    });
                    let _ = self.shared.dlq.try_send(letter);
                } else {
                    self.trace("drop", Some(format!("job={id} attempts={attempts}")));
                }
                self.check_drained();
            }
        }
    }

    /// A retry's delay passed: the job is ready again.
    fn requeue(&self, id: u64) {
        let _ = self.shared.ready.try_send(id);
    }

    /// Once every job has ended: wakes `wait`ers; and once closed too, ends the worker loops and
    /// closes the dead-letter queue.
    fn check_drained(&self) {
        let (waiters, finish) = {
            let mut st = self.shared.state.borrow_mut();
            if !st.jobs.is_empty() {
                return;
            }
            let finish = st.closed && !st.finished;
            if finish {
                st.finished = true;
            }
            (std::mem::take(&mut st.drain_waiters), finish)
        };
        for p in waiters {
            if p.is_live() {
                p.fire(&self.shared.rt, 0);
            }
        }
        if finish {
            self.shared.ready.close();
            self.shared.dlq.close();
        }
    }

    /// Stops intake; once drained, the worker loops end and the dead-letter queue closes.
    /// Idempotent; not a scheduling point.
    pub fn close(&self) {
        {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return;
            }
            st.closed = true;
        }
        self.trace("close", None);
        self.check_drained();
    }

    /// Waits until every job enqueued so far has ended, at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{WorkQueue, WorkQueueOptions};
    /// use gosim::sync::Timeout;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let q = WorkQueue::<u8>::new(s.runtime(), WorkQueueOptions::default(), None);
    ///     q.enqueue(1).expect("open"); // no worker yet
    ///     assert_eq!(q.wait(Some(Duration::from_millis(5))).await, Err(Timeout));
    ///     q.process(&s, |_| async { Ok(()) }).expect("once");
    ///     q.close();
    ///     q.wait(None).await.expect("drained");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn wait(&self, timeout: Option<Duration>) -> Op<Result<(), Timeout>> {
        let q = self.clone();
        let timeout = timeout.map(|d| d.as_nanos().min(u64::MAX as u128) as Nanos);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            let rt = q.shared.rt.clone();
            if q.is_empty() {
                return Begin::Done(Ok(()));
            }
            if timeout == Some(0) {
                return Begin::Done(Err(Timeout));
            }
            let parked = Parked::new(rt.current());
            q.shared
                .state
                .borrow_mut()
                .drain_waiters
                .push(parked.clone());
            let key = {
                let q2 = q.clone();
                block_timed(&rt, DRAIN, &q.shared.res, &parked, timeout, move |_, p| {
                    q2.shared
                        .state
                        .borrow_mut()
                        .drain_waiters
                        .retain(|w| !Rc::ptr_eq(w, p));
                })
            };
            Begin::Parked(Box::new(move || parked.timed_result(&rt, key)))
        })
    }

    /// Starts the `workers` worker loops, each calling `f(item)` on one job at a time; `Err(msg)`
    /// is a failed attempt. Calling it twice is misuse (`Err`).
    pub fn process<F, Fut>(&self, spawner: &dyn Spawn, f: F) -> Result<(), Misuse>
    where
        F: Fn(T) -> Fut + 'static,
        Fut: Future<Output = Result<(), String>> + 'static,
    {
        let n = self.process_begin()?;
        let f = Rc::new(f);
        for i in 1..=n {
            let (q, f) = (self.clone(), f.clone());
            spawner.spawn_boxed(
                Some(&self.worker_name(i)),
                Box::pin(async move {
                    while let Some((id, item)) = q.next_job().await {
                        match f(item).await {
                            Ok(()) => q.job_done(id),
                            Err(e) => q.job_failed(id, e),
                        }
                    }
                }),
            );
        }
        Ok(())
    }
}

/// A job's retry delay.
struct Retry<T, D> {
    queue: WorkQueue<T, D>,
    id: u64,
}

impl<T: Clone + Debug + 'static, D: Debug + 'static> TimerCallback for Retry<T, D> {
    fn fire(self: Box<Self>, _rt: &Runtime) {
        self.queue.requeue(self.id);
    }

    fn may_wake(&self) -> bool {
        true
    }
}
