//! A priority worker pool (seed 3.1): `workers` workers run submitted tasks, the highest
//! priority first, FIFO among equal priorities.
//!
//! - `submit(task, prio)` queues the task (never blocks: the queue is unbounded); refused with
//!   `PoolError::Closed` once the pool is closed.
//! - `wait()` returns when no task is queued and none runs (at most its timeout).
//! - `close()` refuses new work; tasks already queued still run, then the workers end.
//! - A task that fails (a Lua error or `nil, err`, a Rust `Err` or panic) is counted `failed`;
//!   the worker goes on.
//!
//! Laws: at most `workers` tasks run; each submitted task runs exactly once.
//!
//! Why it is shaped so. The queue is a `PriorityChannel` (its heap with sequence numbers gives
//! priority then FIFO; its waits, wake-ups and trace are a channel's), so a worker's loop is the
//! named pool's: `next_job` (a receive; `None` once closed and drained), run the task,
//! `job_done(result)`. `wait` counts tasks submitted and not yet done rather than looking at
//! the queue, so a task handed to a worker that has not run yet still counts. Rust owns all of
//! it; the Lua binding's worker loop (prelude) only calls the user's `fn(task)`.

use std::cell::RefCell;
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::super::Spawn;
use super::super::task::CatchPanic;
use super::super::{PoolError, PriorityChannel};
use super::nanos;
use crate::runtime::{Blocking, ResourceKind, ResourceRef, Runtime, Subject};
use crate::sync::{Begin, Op, Parked, Timeout, block_timed};

/// The workers end a `wait`.
const KIND: ResourceKind = ResourceKind::released_by_anyone("priority_pool");
/// `wait()` for the pool to be idle.
const IDLE: Blocking = Blocking::new("wait", "block-wait");

/// A priority pool's counters.
///
/// # Examples
///
/// ```
/// use gosim::patterns::PriorityPool;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let pool = PriorityPool::<u8>::start(s.runtime(), &s, 1, |n| async move {
///         if n == 0 { Err("zero".to_string()) } else { Ok(()) }
///     });
///     pool.submit(0, 1).await.expect("open");
///     pool.submit(1, 1).await.expect("open");
///     pool.close();
///     pool.wait(None).await.expect("no timeout");
///     let st = pool.stats();
///     assert_eq!((st.workers, st.completed, st.failed), (1, 1, 1));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PriorityPoolStats {
    /// Workers started.
    pub workers: usize,
    /// Tasks running now.
    pub active: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// Tasks that ended normally.
    pub completed: u64,
    /// Tasks that failed.
    pub failed: u64,
}

#[derive(Default)]
struct State {
    /// Submitted and not done yet (queued, handed over or running).
    outstanding: u64,
    active: usize,
    closed: bool,
    completed: u64,
    failed: u64,
    waiters: Vec<Rc<Parked>>,
}

struct Shared<J> {
    rt: Runtime,
    res: ResourceRef,
    workers: usize,
    queue: PriorityChannel<J>,
    state: RefCell<State>,
}

/// A priority worker pool of tasks `J`. Clones are the same pool.
///
/// # Examples
///
/// ```
/// use gosim::patterns::PriorityPool;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let (order, t) = (s.channel::<&str>(3), s.clone());
///     let o = order.clone();
///     let pool = PriorityPool::<&str>::start(s.runtime(), &s, 1, move |job| {
///         let (o, t) = (o.clone(), t.clone());
///         async move {
///             t.sleep(Duration::from_millis(1)).await;
///             o.send(job).await.map_err(|e| e.to_string())
///         }
///     });
///     pool.submit("first", 0).await.expect("open");
///     s.sleep(Duration::from_micros(10)).await; // the worker takes it and is busy
///     pool.submit("low", 1).await.expect("open");
///     pool.submit("high", 9).await.expect("open");
///     pool.close();
///     pool.wait(None).await.expect("no timeout");
///     // Queued while the worker was busy: the larger priority first.
///     assert_eq!(order.recv().await, Some("first"));
///     assert_eq!(order.recv().await, Some("high"));
///     assert_eq!(order.recv().await, Some("low"));
/// });
/// report.assert_pass();
/// ```
pub struct PriorityPool<J> {
    shared: Rc<Shared<J>>,
}

impl<J> Clone for PriorityPool<J> {
    fn clone(&self) -> Self {
        PriorityPool {
            shared: self.shared.clone(),
        }
    }
}

impl<J> std::fmt::Debug for PriorityPool<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PriorityPool({})", self.shared.res)
    }
}

impl<J: Debug + 'static> PriorityPool<J> {
    /// A pool for `workers` (> 0) workers; starts none (a binding starts its own loops; Rust
    /// uses `start`). Not a scheduling point.
    pub fn new(rt: &Runtime, workers: usize, created_at: Option<Rc<str>>) -> PriorityPool<J> {
        assert!(workers > 0, "a pool needs at least one worker");
        let res = rt.new_resource(KIND, created_at.clone());
        if rt.tracing() {
            rt.emit(
                "new",
                Subject::Resource(res.clone()),
                Some(format!("workers={workers}")),
            );
        }
        let queue = PriorityChannel::new(rt, None, created_at);
        PriorityPool {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                workers,
                queue,
                state: RefCell::new(State::default()),
            }),
        }
    }

    /// A pool whose `workers` Rust workers (`priority_pool-worker-<i>`) call `f` on each task;
    /// `Err(msg)` or a panic fails the task, not the worker.
    pub fn start<F, Fut>(rt: &Runtime, spawner: &dyn Spawn, workers: usize, f: F) -> PriorityPool<J>
    where
        F: Fn(J) -> Fut + 'static,
        Fut: Future<Output = Result<(), String>> + 'static,
    {
        let p = PriorityPool::new(rt, workers, None);
        let f = Rc::new(f);
        for i in 1..=workers {
            let (p2, f2) = (p.clone(), f.clone());
            spawner.spawn_boxed(
                Some(&p.worker_name(i)),
                Box::pin(async move {
                    while let Some(task) = p2.next_job().await {
                        let r = match CatchPanic::new(f2(task)).await {
                            Ok(r) => r,
                            Err(panic) => Err(panic),
                        };
                        p2.job_done(r);
                    }
                }),
            );
        }
        p
    }

    /// Its identity (`priority_pool#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Its queue (a priority channel: inspect it, do not send to it directly).
    pub fn queue(&self) -> &PriorityChannel<J> {
        &self.shared.queue
    }

    /// How many workers it has.
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// The goroutine name of worker `i` (from 1).
    pub fn worker_name(&self, i: usize) -> String {
        format!("priority_pool-worker-{i}")
    }

    /// The counters now.
    pub fn stats(&self) -> PriorityPoolStats {
        let st = self.shared.state.borrow();
        PriorityPoolStats {
            workers: self.shared.workers,
            active: st.active,
            queued: self.shared.queue.len(),
            completed: st.completed,
            failed: st.failed,
        }
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    /// Queues `task` with priority `prio` (larger first, FIFO among equals). Never blocks (one
    /// scheduling point, the queue's send); `Err(Closed)` once closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{PoolError, PriorityPool};
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pool = PriorityPool::<u8>::start(s.runtime(), &s, 2, |_| async { Ok(()) });
    ///     pool.submit(1, 0).await.expect("open");
    ///     pool.close(); // queued tasks still run
    ///     assert_eq!(pool.submit(2, 0).await, Err(PoolError::Closed));
    ///     pool.wait(None).await.expect("no timeout");
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn submit(&self, task: J, prio: i64) -> Result<(), PoolError> {
        {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return Err(PoolError::Closed);
            }
            st.outstanding += 1;
        }
        match self.shared.queue.send(task, prio, None).await {
            Ok(()) => Ok(()),
            Err(_) => {
                self.shared.state.borrow_mut().outstanding -= 1;
                self.check_idle();
                Err(PoolError::Closed)
            }
        }
    }

    /// For a worker: the next task (counted running until `job_done`), waiting for one; `None`
    /// once the pool is closed and its queue drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::PriorityPool;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pool = PriorityPool::<u32>::new(s.runtime(), 1, None);
    ///     let (p, sum) = (pool.clone(), s.atomic_int(0));
    ///     let acc = sum.clone();
    ///     // The worker loop's steps, as a language binding writes it.
    ///     s.spawn(&pool.worker_name(1), async move {
    ///         while let Some(n) = p.next_job().await {
    ///             acc.add(i64::from(n)).await;
    ///             p.job_done(Ok(()));
    ///         }
    ///     });
    ///     pool.submit(2, 0).await.expect("open");
    ///     pool.submit(3, 5).await.expect("open");
    ///     pool.close();
    ///     pool.wait(None).await.expect("no timeout");
    ///     assert_eq!(sum.peek(), 5);
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn next_job(&self) -> Option<J> {
        let task = self
            .shared
            .queue
            .recv(None)
            .await
            .expect("no timeout was asked")?;
        self.shared.state.borrow_mut().active += 1;
        Some(task)
    }

    /// For a worker: the task it took has ended (`Err(msg)`: failed, with a `note` event). Not
    /// a scheduling point.
    pub fn job_done(&self, result: Result<(), String>) {
        {
            let mut st = self.shared.state.borrow_mut();
            st.active -= 1;
            st.outstanding -= 1;
            match &result {
                Ok(()) => st.completed += 1,
                Err(_) => st.failed += 1,
            }
        }
        if let Err(message) = result
            && self.shared.rt.tracing()
        {
            let first = message.lines().next().unwrap_or("");
            self.shared.rt.emit(
                "note",
                Subject::Resource(self.shared.res.clone()),
                Some(format!("task failed: {first}")),
            );
        }
        self.check_idle();
    }

    fn check_idle(&self) {
        let waiters = {
            let mut st = self.shared.state.borrow_mut();
            if st.outstanding > 0 {
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

    /// Waits until no task is queued and none runs, at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::PriorityPool;
    /// use gosim::sync::Timeout;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let t = s.clone();
    ///     let pool = PriorityPool::<u64>::start(s.runtime(), &s, 1, move |ms| {
    ///         let t = t.clone();
    ///         async move { t.sleep(Duration::from_millis(ms)).await; Ok(()) }
    ///     });
    ///     pool.submit(30, 0).await.expect("open");
    ///     pool.close();
    ///     assert_eq!(pool.wait(Some(Duration::from_millis(10))).await, Err(Timeout));
    ///     pool.wait(None).await.expect("no timeout");
    ///     assert_eq!(s.now(), Duration::from_millis(30));
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
            if p.shared.state.borrow().outstanding == 0 {
                return Begin::Done(Ok(()));
            }
            if timeout == Some(0) {
                return Begin::Done(Err(Timeout));
            }
            let parked = Parked::new(rt.current());
            p.shared.state.borrow_mut().waiters.push(parked.clone());
            let key = {
                let p2 = p.clone();
                block_timed(&rt, IDLE, &p.shared.res, &parked, timeout, move |_, w| {
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
        {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return;
            }
            st.closed = true;
        }
        self.shared.queue.close();
    }
}
