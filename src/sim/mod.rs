//! The Rust API: scenarios written as async Rust on the same scheduler, primitives and trace as
//! Lua scenarios.
//!
//! A task is a future polled by the scheduler; every primitive's operation is a future that
//! completes at once (then takes the scheduling point, like a Lua call) or parks the task until a
//! primitive wakes it. No executor, waker or thread is involved: the futures only ever complete
//! under gosim's scheduler, which is what keeps a run a pure function of its seed. Awaiting a
//! future that is not gosim's (tokio I/O, say) in a simulated task fails the run with a clear
//! message instead of hanging.
//!
//! ```
//! use std::time::Duration;
//! use gosim::sim::Sim;
//!
//! let sim = Sim::with_seed(7);
//! let s = sim.clone();
//! let report = sim.run(async move {
//!     let ch = s.channel::<i64>(0);
//!     let tx = ch.clone();
//!     let t = s.clone();
//!     s.spawn("producer", async move {
//!         for i in 1..=3 {
//!             t.sleep(Duration::from_millis(10)).await;
//!             tx.send(i).await.expect("open");
//!         }
//!         tx.close();
//!     });
//!     let mut got = Vec::new();
//!     while let Some(v) = ch.recv().await {
//!         got.push(v);
//!     }
//!     assert_eq!(got, [1, 2, 3]);
//!     assert_eq!(s.now(), Duration::from_millis(30));
//! });
//! assert!(report.outcome.is_pass(), "{}", report.outcome);
//! ```

mod check;
mod host;
mod join;
mod lock;
mod panics;
mod permit;
mod shortcuts;

pub use join::{JoinError, JoinHandle};
pub use lock::{
    Mutex, MutexGuard, MutexLock, RwLock, RwLockRead, RwLockReadGuard, RwLockWrite,
    RwLockWriteGuard,
};
pub use permit::{Acquire, Semaphore, SemaphorePermit};

use std::cell::RefCell;
use std::fmt::Debug;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

pub use crate::sync::{
    ContextError, Op, RecvFuture, SendError, SendFuture, Sleep, TryRecvError, TrySendError,
};
pub use check::{Check, CheckFailure, CheckPassed, ENV_VARS, check, test_name};
pub use panics::{CapturedPanic, capture_panics, capturing};

use crate::patterns::{
    Job, LocalTask, Pool, Spawn, StageFn, TaskError, fan_in, fan_out, go, join_all, pipeline,
    spawn_future, timeout,
};
use crate::runtime::{
    Config, Event, Outcome, RealClock, RunStats, Runtime, TaskId, TraceFormat, render,
};
use crate::sync::{
    AtomicInt, Case, Channel, Cond, Context, Once, Timed, Timer, WaitGroup, after_channel,
    after_func, select_deadline,
};

/// A run under construction: a runtime to spawn Rust tasks on and to create primitives with.
/// Clones are the same run (share one between tasks by cloning it into them).
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use std::time::Duration;
///
/// let sim = Sim::with_seed(7);
/// let s = sim.clone(); // a cheap handle to the same run
/// let report = sim.run(async move {
///     let ch = s.channel::<u32>(0);
///     let (tx, t) = (ch.clone(), s.clone());
///     s.spawn("producer", async move {
///         for i in 1..=3 {
///             t.sleep(Duration::from_millis(10)).await;
///             tx.send(i).await.expect("open");
///         }
///         tx.close();
///     });
///     let mut sum = 0;
///     while let Some(v) = ch.recv().await {
///         sum += v;
///     }
///     assert_eq!(s.now(), Duration::from_millis(30));
///     sum
/// });
/// report.assert_pass();
/// assert_eq!(report.value, Some(6));
/// ```
#[derive(Clone, Debug)]
pub struct Sim {
    rt: Runtime,
}

/// How a run of Rust tasks ended, with main's value (`T = ()` for a main that returns nothing,
/// so `SimReport` alone names the common case).
///
/// ```
/// use gosim::sim::{Sim, SimReport};
///
/// let sim = Sim::with_seed(1);
/// let report: SimReport<u32> = sim.run(async { 6 * 7 });
/// assert!(report.outcome.is_pass());
/// assert_eq!(report.value, Some(42));
/// ```
#[derive(Debug, Clone)]
pub struct SimReport<T = ()> {
    /// The run's seed (what a reproduce line names).
    pub seed: u64,
    /// Pass, fail or limit.
    pub outcome: Outcome,
    /// The trace (empty when tracing is off).
    pub events: Vec<Event>,
    /// Steps, goroutines, final time.
    pub stats: RunStats,
    /// What main returned; `None` if main did not finish (the run failed or hit a limit first).
    pub value: Option<T>,
}

impl<T> SimReport<T> {
    /// The trace as text, one line per event (what snapshot tests store).
    pub fn trace_text(&self) -> String {
        render(&self.events, TraceFormat::Text)
    }
}

pub(crate) use crate::sync::here;
use crate::sync::to_nanos;

impl Sim {
    /// A simulated run (virtual clock) with this configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    ///
    /// let sim = Sim::new(Config { seed: 11, trace: false, ..Config::default() });
    /// assert_eq!(sim.seed(), 11);
    /// let report = sim.run(async { "done" });
    /// assert_eq!(report.value, Some("done"));
    /// assert!(report.events.is_empty()); // the trace was off
    /// ```
    pub fn new(config: Config) -> Sim {
        Sim {
            rt: Runtime::simulated(config),
        }
    }

    /// A simulated run with default limits and this seed.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = gosim::Sim::with_seed(42);
    /// let b = gosim::Sim::with_seed(42);
    /// let (sa, sb) = (a.clone(), b.clone());
    /// let ra = a.run(async move { sa.random_below(1000) });
    /// let rb = b.run(async move { sb.random_below(1000) });
    /// assert_eq!(ra.value, rb.value); // the same seed, the same run
    /// assert_eq!(ra.trace_text(), rb.trace_text());
    /// ```
    pub fn with_seed(seed: u64) -> Sim {
        Sim::new(Config {
            seed,
            ..Config::default()
        })
    }

    /// A run against the wall clock (production mode).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use std::time::Duration;
    ///
    /// let sim = Sim::real(Config::default()); // production mode: the wall clock
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     s.sleep(Duration::from_millis(2)).await; // really waits
    ///     s.now() >= Duration::from_millis(2)
    /// });
    /// assert_eq!(report.value, Some(true));
    /// ```
    pub fn real(config: Config) -> Sim {
        Sim {
            rt: Runtime::new(config, Box::new(RealClock::new())),
        }
    }

    /// A handle on an existing runtime (to mix Rust tasks into a Lua run).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::runtime::{Config, Runtime};
    /// use gosim::sim::Sim;
    ///
    /// let rt = Runtime::simulated(Config::default());
    /// let sim = Sim::on(&rt); // Rust tasks on a runtime shared with, say, a LuaWorld
    /// let h = sim.spawn("rust", async { 1 + 1 });
    /// assert!(rt.run().is_pass());
    /// assert!(h.is_finished());
    /// rt.shutdown();
    /// ```
    pub fn on(rt: &Runtime) -> Sim {
        Sim { rt: rt.clone() }
    }

    /// The runtime underneath.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// Runs `main` as the main task (`g1`) to the run's outcome, then frees the run; the report
    /// carries main's value.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     s.sleep(Duration::from_millis(7)).await;
    ///     s.now()
    /// });
    /// report.assert_pass();
    /// assert_eq!(report.value, Some(Duration::from_millis(7))); // main's value
    /// assert_eq!(report.stats.end_time, Duration::from_millis(7));
    /// ```
    pub fn run<T: 'static>(self, main: impl Future<Output = T> + 'static) -> SimReport<T> {
        let slot = self.spawn_main(main);
        let outcome = self.rt.run();
        self.finish(outcome, &slot)
    }

    /// Spawns `main` as `g1`, keeping its value in the returned slot.
    pub(crate) fn spawn_main<T: 'static>(
        &self,
        main: impl Future<Output = T> + 'static,
    ) -> Rc<RefCell<Option<T>>> {
        let slot = Rc::new(RefCell::new(None));
        let mine = slot.clone();
        self.spawn_task(Some("main"), false, async move {
            let v = main.await;
            *mine.borrow_mut() = Some(v);
        });
        slot
    }

    /// Collects the run's report, then frees the run (both ways of running end here).
    fn finish<T>(&self, outcome: Outcome, slot: &RefCell<Option<T>>) -> SimReport<T> {
        let events = self.rt.take_events();
        let stats = self.rt.stats();
        let seed = self.rt.seed();
        self.rt.shutdown();
        SimReport {
            seed,
            outcome,
            events,
            stats,
            value: slot.borrow_mut().take(),
        }
    }

    /// Spawns a named task and returns its [`JoinHandle`] (await it for the task's value). It
    /// runs when the scheduler picks it (after the spawning task's next scheduling point at the
    /// earliest). Dropping the handle detaches the task; a panic in a detached task fails the
    /// run, a panic in a task whose handle is held is the awaiter's [`JoinError`].
    ///
    /// ```
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let handles: Vec<_> = (0..3u64)
    ///         .map(|i| s.spawn(&format!("w{i}"), async move { i * 10 }))
    ///         .collect();
    ///     let mut sum = 0;
    ///     for h in handles {
    ///         sum += h.await.expect("no panic");
    ///     }
    ///     sum
    /// });
    /// assert_eq!(report.value, Some(30));
    /// ```
    #[track_caller]
    pub fn spawn<T: 'static>(
        &self,
        name: &str,
        task: impl Future<Output = T> + 'static,
    ) -> JoinHandle<T> {
        self.spawn_joinable(Some(name), false, task)
    }

    /// Spawns a daemon task: never a leak, never keeps the run alive. Its handle works as
    /// `spawn`'s.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let t = s.clone();
    ///     // A heartbeat that never ends: as a daemon it is not a leak when main returns.
    ///     s.spawn_daemon("heartbeat", async move {
    ///         loop {
    ///             t.sleep(Duration::from_millis(10)).await;
    ///         }
    ///     });
    ///     s.sleep(Duration::from_millis(25)).await;
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn spawn_daemon<T: 'static>(
        &self,
        name: &str,
        task: impl Future<Output = T> + 'static,
    ) -> JoinHandle<T> {
        self.spawn_joinable(Some(name), true, task)
    }

    #[track_caller]
    fn spawn_joinable<T: 'static>(
        &self,
        name: Option<&str>,
        daemon: bool,
        task: impl Future<Output = T> + 'static,
    ) -> JoinHandle<T> {
        let (handle, body) = JoinHandle::wrap(&self.rt, std::panic::Location::caller(), task);
        handle.set_id(self.spawn_task(name, daemon, body));
        handle
    }

    fn spawn_task(
        &self,
        name: Option<&str>,
        daemon: bool,
        task: impl Future<Output = ()> + 'static,
    ) -> TaskId {
        // Past the goroutine limit the run ends with a limit outcome; the id is then unused.
        spawn_future(&self.rt, name, daemon, Box::pin(task)).unwrap_or(TaskId(0))
    }

    /// The run's time since it started.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.rt.now())
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.rt.seed()
    }

    /// A uniform integer in `0..n` from the run's seed (`n > 0`).
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(5);
    /// let s = sim.clone();
    /// let report = sim.run(async move { (0..10).map(|_| s.random_below(6)).collect::<Vec<_>>() });
    /// let rolls = report.value.expect("main returned");
    /// assert!(rolls.iter().all(|r| *r < 6)); // drawn from the run's seed: reproducible
    /// ```
    pub fn random_below(&self, n: u64) -> u64 {
        self.rt.random_below(n)
    }

    /// Fault injection: true with probability `p` in a simulation, never in production.
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(5);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     assert!(!s.buggify(0.0));
    ///     assert!(s.buggify(1.0)); // in a simulation, true with probability p
    /// });
    /// report.assert_pass();
    /// ```
    pub fn buggify(&self, p: f64) -> bool {
        self.rt.is_simulated() && self.rt.random_unit() < p
    }

    /// A channel with room for `cap` values (0: rendezvous).
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let ch = sim.channel::<(u32, &str)>(4); // any Debug value; the caller's line is recorded
    /// assert_eq!(ch.cap(), 4);
    /// assert!(ch.resource().created_at().is_some_and(|at| at.contains(".rs:")));
    /// ```
    #[track_caller]
    pub fn channel<T: Debug + 'static>(&self, cap: usize) -> Channel<T> {
        Channel::new(&self.rt, cap, here())
    }

    /// A mutex guarding `value` (`sim.mutex(())` for a bare lock): `lock().await` gives a guard
    /// that unlocks when dropped. See [`Mutex`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let m = s.mutex(vec![1]);
    ///     m.lock().await.push(2);
    ///     assert_eq!(*m.lock().await, vec![1, 2]);
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn mutex<T>(&self, value: T) -> Mutex<T> {
        Mutex::new(&self.rt, value, here())
    }

    /// A reader/writer lock guarding `value`: `read().await`/`write().await` give guards that
    /// unlock when dropped. See [`RwLock`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let cfg = s.rwlock(String::from("v1"));
    ///     *cfg.write().await = String::from("v2");
    ///     assert_eq!(*cfg.read().await, "v2");
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn rwlock<T>(&self, value: T) -> RwLock<T> {
        RwLock::new(&self.rt, value, here())
    }

    /// A semaphore of `n` permits (`n > 0`); a permit is given back when dropped. See
    /// [`Semaphore`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let sem = s.semaphore(2);
    ///     let _a = sem.acquire().await;
    ///     assert_eq!((sem.available(), sem.capacity()), (1, 2));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn semaphore(&self, n: usize) -> Semaphore {
        Semaphore::new(&self.rt, n, here())
    }

    /// A wait group.
    #[track_caller]
    pub fn wait_group(&self) -> WaitGroup {
        WaitGroup::new(&self.rt, here())
    }

    /// A once.
    #[track_caller]
    pub fn once(&self) -> Once {
        Once::new(&self.rt, here())
    }

    /// A condition variable (used with a mutex).
    #[track_caller]
    pub fn cond(&self) -> Cond {
        Cond::new(&self.rt, here())
    }

    /// A cancellable root context.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    ///
    /// let sim = Sim::with_seed(1);
    /// let ctx = sim.context(); // Go's context.Background()
    /// let child = ctx.with_cancel();
    /// assert_eq!(child.err(), None);
    /// ctx.cancel();
    /// assert_eq!(child.err(), Some(ContextError::Canceled));
    /// ```
    #[track_caller]
    pub fn context(&self) -> Context {
        Context::background(&self.rt, here())
    }

    /// Sleeps the current task for `d` of the run's time.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     s.sleep(Duration::from_millis(250)).await; // virtual time: returns at once in wall time
    ///     assert_eq!(s.now(), Duration::from_millis(250));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn sleep(&self, d: Duration) -> Sleep {
        crate::sync::sleep(&self.rt, to_nanos(d), Some(std::panic::Location::caller()))
    }

    /// A scheduling point: another task may run.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let flag = s.atomic_int(0);
    ///     let f = flag.clone();
    ///     s.spawn("setter", async move { f.store(1).await });
    ///     while flag.peek() == 0 {
    ///         s.yield_now().await; // lets the setter run; the clock does not move
    ///     }
    ///     assert_eq!(s.now(), std::time::Duration::ZERO);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn yield_now(&self) -> Op<()> {
        crate::sync::yield_now(&self.rt)
    }

    /// A channel that receives the run's time once, `d` from now (Go's `time.After`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let at = s.after(Duration::from_millis(25)).recv().await; // Go's time.After
    ///     assert_eq!(at, Some(Duration::from_millis(25)));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn after(&self, d: Duration) -> Channel<Duration> {
        crate::sync::after(&self.rt, to_nanos(d), None, here()).1
    }

    /// A ticker: its channel (buffer 1) receives the run's time every `period`; ticks nobody
    /// takes are dropped. Stop it with `Timer::stop`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let (ticker, ticks) = s.ticker(Duration::from_millis(10));
    ///     s.sleep(Duration::from_millis(35)).await; // three ticks; the buffer keeps one
    ///     assert_eq!(ticks.recv().await, Some(Duration::from_millis(10)));
    ///     assert_eq!(ticks.recv().await, Some(Duration::from_millis(40)));
    ///     ticker.stop();
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn ticker(&self, period: Duration) -> (crate::sync::Timer, Channel<Duration>) {
        let p = to_nanos(period).max(1);
        crate::sync::after(&self.rt, p, Some(p), here())
    }

    /// Waits for one of `cases` (a `select`); with `default`, returns `Default` if none is ready.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use gosim::sync::{Case, SelectResult};
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let (fast, slow) = (s.channel::<&str>(0), s.channel::<&str>(0));
    ///     let (f, t) = (fast.clone(), s.clone());
    ///     s.spawn("fast", async move {
    ///         t.sleep(Duration::from_millis(5)).await;
    ///         f.send("fast").await.expect("open");
    ///     });
    ///     let r = s.select(vec![Case::Recv(slow), Case::Recv(fast)], false).await;
    ///     assert!(matches!(r, SelectResult::Recv(1, Some("fast"))));
    ///     assert_eq!(s.now(), Duration::from_millis(5));
    /// });
    /// report.assert_pass();
    /// ```
    pub fn select<T: Debug + 'static>(
        &self,
        cases: Vec<crate::sync::Case<T>>,
        default: bool,
    ) -> Op<crate::sync::SelectResult<T>> {
        crate::sync::select(&self.rt, cases, default)
    }
}

/// The features that were Lua-only: an atomic integer, `after_func`, async/await and timeout,
/// a select with a deadline, worker pools, pipelines, fan-in/fan-out. Each is a thin call into
/// `sync` or `patterns`, which own the state machines (a Lua binding calls the same ones).
impl Sim {
    /// A weighted semaphore of `size` units (wish-list 5.4; strict FIFO, no barging).
    #[track_caller]
    pub fn weighted_semaphore(&self, size: u64) -> crate::patterns::WeightedSemaphore {
        crate::patterns::WeightedSemaphore::new(&self.rt, size, here())
    }

    /// A countdown latch of `count` (wish-list 5.2).
    #[track_caller]
    pub fn latch(&self, count: u64) -> crate::patterns::Latch {
        crate::patterns::Latch::new(&self.rt, count, here())
    }

    /// A cyclic barrier of `parties` (wish-list 5.1).
    #[track_caller]
    pub fn barrier(&self, parties: usize) -> crate::patterns::Barrier {
        crate::patterns::Barrier::new(&self.rt, parties, here())
    }

    /// A reader/writer lock with upgradable reads (wish-list 5.3).
    #[track_caller]
    pub fn rwmutex_upgradeable(&self) -> crate::patterns::UpgradeableRwLock {
        crate::patterns::UpgradeableRwLock::new(&self.rt, here())
    }

    /// A priority channel, bounded by `cap` if given (wish-list 1.2).
    #[track_caller]
    pub fn priority_channel<T: Debug + 'static>(
        &self,
        cap: Option<usize>,
    ) -> crate::patterns::PriorityChannel<T> {
        crate::patterns::PriorityChannel::new(&self.rt, cap, here())
    }

    /// A request/reply endpoint (wish-list 4.2).
    #[track_caller]
    pub fn request_reply<Req: 'static, Resp: 'static>(
        &self,
    ) -> crate::patterns::RequestReply<Req, Resp> {
        crate::patterns::RequestReply::new(&self.rt, here())
    }

    /// A token-bucket rate limiter: `burst` tokens, refilled at `rate` per `per` (wish-list 3.2).
    #[track_caller]
    pub fn rate_limiter(
        &self,
        rate: u64,
        per: Duration,
        burst: u64,
    ) -> crate::patterns::RateLimiter {
        crate::patterns::RateLimiter::new(&self.rt, rate, per, burst, here())
    }

    /// An atomic integer holding `init`; its operations are futures (each a scheduling point,
    /// traced `atomic.add` ...).
    #[track_caller]
    pub fn atomic_int(&self, init: i64) -> AtomicInt {
        AtomicInt::new(&self.rt, init, here())
    }

    /// Go's `time.AfterFunc`: when `d` has passed, `f()` runs as a new task named `after_func`
    /// (`f` is called again if the timer is reset after firing). Stop it with `Timer::stop`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let fired = s.atomic_int(0);
    ///     let f = fired.clone();
    ///     let _t = s.after_func(Duration::from_millis(10), move || {
    ///         let f = f.clone();
    ///         async move { f.store(1).await } // runs as a new task named after_func
    ///     });
    ///     let f2 = fired.clone();
    ///     let cancelled = s.after_func(Duration::from_millis(20), move || {
    ///         let f2 = f2.clone();
    ///         async move { f2.store(2).await }
    ///     });
    ///     s.sleep(Duration::from_millis(15)).await;
    ///     assert!(cancelled.stop()); // stopped in time: it never runs
    ///     s.sleep(Duration::from_millis(15)).await;
    ///     assert_eq!(fired.peek(), 1);
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn after_func<F, Fut>(&self, d: Duration, mut f: F) -> Timer
    where
        F: FnMut() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let spawn = move |rt: &Runtime| {
            Sim::on(rt).spawn_task(Some("after_func"), false, f());
        };
        after_func(&self.rt, to_nanos(d), spawn, here())
    }

    /// Starts `task` as a new unnamed task whose result is kept for `JoinHandle::join` (Lua's
    /// `goroutine.async`); a panic in it becomes `Err(TaskError::Failed(message))` for the
    /// awaiter instead of failing the run. Not a scheduling point.
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let h = s.go(async { 6 * 7 });
    ///     assert_eq!(h.join().await, Ok(42)); // Lua's async/await shape: join again and again
    ///     assert_eq!(h.join().await, Ok(42));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn go<T: 'static>(
        &self,
        task: impl Future<Output = T> + 'static,
    ) -> crate::patterns::JoinHandle<T> {
        go(&self.rt, self, task, here())
    }

    /// Awaits every handle, in order (Lua's `await_all`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let handles: Vec<_> = (1..=3u64)
    ///         .map(|i| {
    ///             let t = s.clone();
    ///             s.go(async move {
    ///                 t.sleep(Duration::from_millis(10 * (4 - i))).await;
    ///                 i * i
    ///             })
    ///         })
    ///         .collect();
    ///     let results = s.join_all(&handles).await; // in the handles' order
    ///     assert_eq!(results, vec![Ok(1), Ok(4), Ok(9)]);
    ///     assert_eq!(s.now(), Duration::from_millis(30));
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn join_all<T: Clone>(
        &self,
        handles: &[crate::patterns::JoinHandle<T>],
    ) -> Vec<Result<T, TaskError>> {
        join_all(handles).await
    }

    /// Runs `task` as a new task and waits at most `limit` for its value (Lua's
    /// `goroutine.timeout`); on `Err(TaskError::TimedOut)` the task keeps running, as in Go.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use gosim::patterns::TaskError;
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let t = s.clone();
    ///     let quick = s.timeout(Duration::from_millis(10), async move {
    ///         t.sleep(Duration::from_millis(2)).await;
    ///         "done"
    ///     });
    ///     assert_eq!(quick.await, Ok("done"));
    ///     let t = s.clone();
    ///     let slow = s.timeout(Duration::from_millis(10), async move {
    ///         t.sleep(Duration::from_millis(50)).await;
    ///     });
    ///     assert_eq!(slow.await, Err(TaskError::TimedOut));
    ///     assert_eq!(s.now(), Duration::from_millis(12));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn timeout<T: 'static, F: Future<Output = T> + 'static>(
        &self,
        limit: Duration,
        task: F,
    ) -> impl Future<Output = Result<T, TaskError>> + use<T, F> {
        let (sim, at) = (self.clone(), here());
        async move { timeout(&sim.rt, &sim, limit, task, at).await }
    }

    /// A select over `cases` that gives up after `d` (Lua's `select_timeout`): the cases plus an
    /// `after(d)` channel, in that order, in one select.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use gosim::sync::{Case, SelectResult, Timed};
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let ch = s.channel::<u8>(1);
    ///     let r = s.select_timeout(Duration::from_millis(20), vec![Case::Recv(ch.clone())]).await;
    ///     assert!(matches!(r, Timed::TimedOut));
    ///     assert_eq!(s.now(), Duration::from_millis(20));
    ///     ch.try_send(1).expect("room");
    ///     let r = s.select_timeout(Duration::from_millis(20), vec![Case::Recv(ch)]).await;
    ///     assert!(matches!(r, Timed::Case(SelectResult::Recv(0, Some(1)))));
    ///     assert_eq!(s.now(), Duration::from_millis(20)); // ready: no wait
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn select_timeout<T: Debug + 'static>(
        &self,
        d: Duration,
        cases: Vec<Case<T>>,
    ) -> Op<Timed<T>> {
        let after = after_channel(&self.rt, to_nanos(d), Duration::from_nanos, here());
        select_deadline(&self.rt, cases, after)
    }

    /// A worker pool named `name` with `workers` worker tasks (`<name>-worker-<i>`) running
    /// async jobs: `submit_fn(async { ... })`, `wait().await`, `close().await`, `stats()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pool = s.pool("jobs", 3);
    ///     let done = s.atomic_int(0);
    ///     for _ in 0..5 {
    ///         let d = done.clone();
    ///         pool.submit_fn(async move { d.add(1).await; }).expect("room");
    ///     }
    ///     pool.wait().await;
    ///     assert_eq!((done.peek(), pool.stats().workers), (5, 3));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn pool(&self, name: &str, workers: usize) -> Pool<Job> {
        Pool::start(&self.rt, self, name, workers, here())
    }

    /// Connects `stages` after `input` (workers `pipeline-<i>-<w>`); returns the last output.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::StageFn;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let input = s.channel::<u32>(0);
    ///     let out = s.pipeline(input.clone(), vec![StageFn::new(1, |v| async move { v * v })]);
    ///     for v in 1..=3 {
    ///         input.send(v).await.expect("open");
    ///     }
    ///     input.close();
    ///     let mut got = Vec::new();
    ///     while let Some(v) = out.recv().await {
    ///         got.push(v);
    ///     }
    ///     assert_eq!(got, vec![1, 4, 9]); // one worker keeps the order
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn pipeline<T: Debug + 'static>(
        &self,
        input: Channel<T>,
        stages: Vec<StageFn<T>>,
    ) -> Channel<T> {
        pipeline(&self.rt, self, input, stages, here())
    }

    /// Broadcasts `input` to `n` new channels (every value to every output).
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let input = s.channel::<u8>(0);
    ///     let outs = s.fan_out(input.clone(), 2);
    ///     let readers: Vec<_> = outs.into_iter().map(|o| {
    ///         s.spawn("reader", async move { o.recv().await })
    ///     }).collect();
    ///     input.send(9).await.expect("open");
    ///     input.close();
    ///     for r in readers {
    ///         assert_eq!(r.await.expect("no panic"), Some(9)); // every output gets every value
    ///     }
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn fan_out<T: Debug + Clone + 'static>(
        &self,
        input: Channel<T>,
        n: usize,
    ) -> Vec<Channel<T>> {
        fan_out(&self.rt, self, input, n, here())
    }

    /// Merges `inputs` into one new channel that closes after all of them have.
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let (a, b) = (s.channel::<u8>(1), s.channel::<u8>(1));
    ///     let all = s.fan_in(vec![a.clone(), b.clone()]);
    ///     a.send(1).await.expect("open");
    ///     b.send(2).await.expect("open");
    ///     a.close();
    ///     b.close();
    ///     let mut got = vec![all.recv().await, all.recv().await];
    ///     got.sort();
    ///     assert_eq!(got, vec![Some(1), Some(2)]);
    ///     assert_eq!(all.recv().await, None); // closed after every input
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn fan_in<T: Debug + 'static>(&self, inputs: Vec<Channel<T>>) -> Channel<T> {
        fan_in(&self.rt, self, inputs, here())
    }
}

impl Spawn for Sim {
    fn spawn_boxed(&self, name: Option<&str>, task: LocalTask) -> Option<TaskId> {
        spawn_future(&self.rt, name, false, task)
    }
}
