//! The deterministic core: a single-threaded scheduler of goroutines over a backend clock.
//!
//! It owns the goroutine table, the runnable set, the timer queue, the seeded RNG, the trace, the
//! limits and the outcome. It knows nothing of Lua, of channels or of patterns: primitives in
//! `crate::sync` call `block`, `wake`, `schedule_point` and the timer functions, and task bodies
//! (Lua coroutines) are opaque `TaskBody` values.
//!
//! Invariants:
//! - exactly one task is `Running` while a body runs, and none between steps;
//! - a task is in `runnable` if and only if its state is `Runnable`;
//! - `Blocked -> Runnable` happens only through `wake` (or a timer's `Wake`);
//! - every decision (next task, select case, random draw) comes from the `Decider`; time only
//!   from the backend;
//! - the core is never borrowed while a body, a timer callback or an observer runs.

mod backend;
mod chrome;
mod deadlock;
mod decide;
mod external;
mod observe;
mod outcome;
mod real;
mod resource;
mod rng;
mod task;
mod timer;
mod trace;

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::rc::Rc;
use std::time::Duration;

pub(crate) use backend::duration;
pub use backend::{
    Backend, NANOS_PER_MS, Nanos, SimulatedClock, format_duration, format_ms, ms_to_nanos,
    nanos_to_ms_f64,
};
pub use chrome::render_chrome;
pub use decide::{Decision, DecisionKind, Portfolio, Schedule, Strategy};
pub use external::Wakeups;
pub use observe::{BlockedInfo, DeadlockReporter, TaskObserver};
pub use outcome::{Failure, FailureKind, LimitHit, LimitKind, Outcome, StuckTask};
pub use real::RealClock;
pub use resource::{Resource, ResourceKind, ResourceRef};
pub use rng::SimRng;
pub use task::{Blocking, Parked, TaskBody, TaskId, TaskState, TaskStep, Wait, WaitOp};
pub use timer::{TimerCallback, TimerKey};
pub use trace::{
    Detail, Event, PeerShown, SHORT_MAX, ShortStr, Subject, TraceFormat, TraceHash, render,
};

use task::{Task, label};
use timer::{TimerAction, Timers};

/// A `Duration` as the clock's nanoseconds, saturating (times go in and out of the API as
/// `Duration`s; the core counts nanoseconds).
pub(crate) fn duration_nanos(d: Duration) -> Nanos {
    d.as_nanos().min(u128::from(Nanos::MAX)) as Nanos
}

/// The knobs of one run. Every limit has a default that a normal scenario never reaches.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use std::time::Duration;
///
/// let config = Config { seed: 5, max_time: Duration::from_secs(1), ..Config::default() };
/// let sim = Sim::new(config);
/// let s = sim.clone();
/// let report = sim.run(async move { s.sleep(Duration::from_secs(2)).await });
/// assert_eq!(report.outcome.word(), "limit"); // past the one-second horizon
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// The seed: every scheduling choice and random draw derives from it.
    pub seed: u64,
    /// Scheduling steps before the run ends with a limit.
    pub max_steps: u64,
    /// The virtual-time horizon.
    pub max_time: Duration,
    /// How long, after main returned, the others may take to finish.
    pub drain_time: Duration,
    /// Goroutines alive at once.
    pub max_goroutines: usize,
    /// Spin guard: after this many steps without the clock moving while a timer is pending, the
    /// clock jumps to that timer (0 disables it).
    pub spin_steps: u64,
    /// Virtual time added by every scheduling step.
    pub step_cost: Duration,
    /// Draw each step's cost uniformly in `[0, step_cost]` instead.
    pub step_cost_random: bool,
    /// Keep the trace events (off for fast sweeps).
    pub trace: bool,
    /// How scheduling choices are made.
    pub strategy: Strategy,
    /// Record every decision (for shrinking and replay).
    pub record: bool,
    /// Follow this list of decisions (a replay); past its end, the quietest choices.
    pub schedule: Option<Vec<Decision>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            seed: 0,
            max_steps: 100_000_000,
            max_time: Duration::from_secs(86_400),
            drain_time: Duration::from_secs(60),
            max_goroutines: 1_000_000,
            spin_steps: 10_000,
            step_cost: Duration::ZERO,
            step_cost_random: false,
            trace: true,
            strategy: Strategy::Random,
            record: false,
            schedule: None,
        }
    }
}

/// What one scheduler step did (see `Runtime::step`).
#[derive(Debug, Clone)]
pub enum Step {
    /// Made progress (ran a task, moved the clock, fired timers).
    Ran,
    /// Production mode: nothing can run before `until` (or a wake-up from outside).
    Idle {
        /// The next timer's deadline, if a timer can wake someone.
        until: Option<Nanos>,
    },
    /// The run has its outcome.
    Over(Outcome),
}

/// Figures about a finished run.
///
/// ```
/// use std::time::Duration;
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move { s.sleep(Duration::from_millis(7)).await });
/// assert_eq!(report.stats.end_time, Duration::from_millis(7));
/// assert_eq!(report.stats.spawned, 1);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    /// Scheduling steps taken.
    pub steps: u64,
    /// Goroutines spawned, main included.
    pub spawned: u64,
    /// The run's time at the end.
    pub end_time: std::time::Duration,
}

struct Core {
    config: Config,
    clock: Box<dyn Backend>,
    decider: decide::Decider,
    /// Indexed by `id - 1`; `None` once the task is done and dropped.
    tasks: Vec<Option<Box<Task>>>,
    runnable: Vec<TaskId>,
    /// A task chosen at a scheduling point, to run next.
    next_pick: Option<TaskId>,
    current: Option<TaskId>,
    timers: Timers,
    events: trace::Recorder,
    steps: u64,
    /// `steps` when the clock last moved (spin guard).
    steps_at_advance: u64,
    /// Set by `schedule_point` when the spin guard or a due timer needs the main loop.
    need_timers: bool,
    n_live: usize,
    n_live_non_daemon: usize,
    main_done_at: Option<Nanos>,
    outcome: Option<Outcome>,
    next_resource_id: u64,
    /// Tasks woken from outside the scheduler (production mode's foreign futures).
    wakeups: std::sync::Arc<Wakeups>,
    /// How many tasks wait on a foreign future now.
    n_external: usize,
    /// Profilers and other watchers of spawns and exits (weak: dropped watchers fall away).
    observers: Vec<std::rc::Weak<dyn TaskObserver>>,
    /// Told of a deadlock before it fails the run (a deadlock detector's `on_deadlock`).
    reporters: Vec<std::rc::Weak<dyn DeadlockReporter>>,
    /// A deadlock found while reporters still run: the failure, and the goroutines reporting it.
    /// The run fails with it once they have all exited, or are stuck too.
    pending: Option<(Failure, Vec<TaskId>)>,
    /// A goroutine that just blocked on a lock-like resource: the wait-for graph is checked from
    /// it once its body has parked (so every goroutine involved can report its line).
    check_from: Option<TaskId>,
    /// Partial deadlocks noticed so far (goroutines stuck behind holders that exited).
    partial: Vec<String>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("seed", &self.config.seed)
            .field("now", &self.clock.now())
            .field("live", &self.n_live)
            .field("runnable", &self.runnable)
            .finish_non_exhaustive()
    }
}

/// A handle to one run's scheduler. Cheap to clone; all clones are the same run.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Config, Runtime, TraceFormat, render};
/// use gosim::sim::Sim;
/// use std::time::Duration;
///
/// // The scheduler core: Lua goroutines and Rust tasks share one (see `Sim::on`).
/// let rt = Runtime::simulated(Config { seed: 2, ..Config::default() });
/// let s = Sim::on(&rt);
/// let t = s.clone();
/// s.spawn("sleeper", async move { t.sleep(Duration::from_millis(3)).await });
/// assert!(rt.run().is_pass());
/// assert_eq!(rt.now(), 3_000_000); // nanoseconds
/// assert!(render(&rt.take_events(), TraceFormat::Text).contains("sleeper"));
/// rt.shutdown();
/// ```
#[derive(Clone, Debug)]
pub struct Runtime {
    core: Rc<Shared>,
}

/// The core, and a flag outside its borrow that a Rust operation reads as it starts.
#[derive(Debug)]
struct Shared {
    /// The running task may start an operation plainly: it is running, has not parked in this
    /// poll and holds no unreturned result (see `Runtime::op_mode`). Kept outside the core so
    /// that the check costs one load on the hot path.
    plain: Cell<bool>,
    core: RefCell<Core>,
}

/// How a Rust operation of the running task may start (see `Runtime::op_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpMode {
    /// The only operation of this poll so far: start as usual.
    Plain,
    /// Another operation of this poll parked (and may share its wait): start; completing at once
    /// wins the wait (`Runtime::won_now`), parking joins it (`Runtime::block_member`).
    Joined,
    /// Another operation of this task holds a completed result, or gave way: do not start now
    /// (the task is runnable, and this operation starts at its next poll).
    Later,
    /// Another operation of this poll parked in a wait that cannot be shared: the run has failed
    /// with a message naming the rule.
    Refused,
}

/// A wait made of several operations of one Rust task (`block_member`).
const SEVERAL: Blocking = Blocking::new("select", "block-select");

impl Runtime {
    /// A runtime with this configuration and time source.
    pub fn new(mut config: Config, clock: Box<dyn Backend>) -> Runtime {
        // A portfolio runs the member of its seed; a `cost:MS` strategy is a random step cost.
        config.strategy = config.strategy.for_seed(config.seed);
        if let Some(max) = config.strategy.step_cost() {
            config.step_cost = Duration::from_nanos(max);
            config.step_cost_random = true;
        }
        let core = Core {
            decider: decide::Decider::new(
                config.seed,
                config.strategy,
                config.record,
                config.schedule.clone(),
            ),
            config,
            clock,
            tasks: Vec::new(),
            runnable: Vec::new(),
            next_pick: None,
            current: None,
            timers: Timers::default(),
            events: trace::Recorder::default(),
            steps: 0,
            steps_at_advance: 0,
            need_timers: false,
            n_live: 0,
            n_live_non_daemon: 0,
            main_done_at: None,
            outcome: None,
            next_resource_id: 1,
            check_from: None,
            partial: Vec::new(),
            observers: Vec::new(),
            reporters: Vec::new(),
            pending: None,
            wakeups: std::sync::Arc::new(Wakeups::default()),
            n_external: 0,
        };
        Runtime {
            core: Rc::new(Shared {
                plain: Cell::new(false),
                core: RefCell::new(core),
            }),
        }
    }

    /// Starts a new run on this handle, as `Runtime::new(config, clock)` would: every goroutine,
    /// timer, event and decision of the previous run is dropped, and every clone of the handle
    /// now sees the new run. For hosts that keep state bound to one handle between runs (a Lua
    /// world reused by `explore`): rebinding a handle is cheaper than rebuilding what holds it.
    pub(crate) fn restart(&self, config: Config, clock: Box<dyn Backend>) {
        self.shutdown();
        let fresh = Runtime::new(config, clock);
        let shared = Rc::try_unwrap(fresh.core)
            .unwrap_or_else(|_| unreachable!("a new runtime has one handle"));
        self.core.plain.set(shared.plain.get());
        let old = std::mem::replace(&mut *self.core(), shared.core.into_inner());
        // Dropped outside the borrow: what the old run kept may lead back to this handle.
        drop(old);
    }

    /// A simulated runtime (virtual clock) with this configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::runtime::{Config, Runtime};
    ///
    /// let rt = Runtime::simulated(Config { seed: 9, ..Config::default() });
    /// assert!(rt.is_simulated());
    /// assert_eq!((rt.seed(), rt.now()), (9, 0)); // virtual time starts at 0
    /// rt.shutdown();
    /// ```
    pub fn simulated(config: Config) -> Runtime {
        Runtime::new(config, Box::new(SimulatedClock::default()))
    }

    fn core(&self) -> RefMut<'_, Core> {
        self.core.core.borrow_mut()
    }

    fn core_ref(&self) -> Ref<'_, Core> {
        self.core.core.borrow()
    }

    /// The run's configuration.
    pub fn config(&self) -> Config {
        self.core_ref().config.clone()
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.core_ref().config.seed
    }

    /// Whether time is virtual.
    pub fn is_simulated(&self) -> bool {
        self.core_ref().clock.is_simulated()
    }

    /// The run's time.
    pub fn now(&self) -> Nanos {
        self.core_ref().clock.now()
    }

    /// The goroutine being run. Panics outside a goroutine: primitives are only called from one.
    pub(crate) fn current(&self) -> TaskId {
        self.core_ref()
            .current
            .expect("gosim: no goroutine is running (a primitive was used outside the scheduler)")
    }

    /// The goroutine being run, if any.
    pub fn try_current(&self) -> Option<TaskId> {
        self.core_ref().current
    }

    /// A task's name.
    pub fn task_name(&self, id: TaskId) -> Option<Rc<str>> {
        let core = self.core_ref();
        core.task(id).and_then(|t| t.name.clone())
    }

    /// Renames a task (names appear in traces and reports).
    pub(crate) fn set_task_name(&self, id: TaskId, name: &str) {
        let mut core = self.core();
        if let Some(t) = core.task_mut(id) {
            let name: Rc<str> = Rc::from(name);
            t.name = Some(name.clone());
            if core.config.trace {
                core.events.name(id, Some(name));
            }
        }
    }

    /// Records where a task stopped (its source line), for reports.
    pub(crate) fn set_location(
        &self,
        id: TaskId,
        location: Option<&'static std::panic::Location<'static>>,
    ) {
        let mut core = self.core();
        if let Some(t) = core.task_mut(id)
            && (location.is_some() || t.multi.is_some())
        {
            t.multi().location = location;
        }
    }

    /// Whether trace events are kept.
    pub fn tracing(&self) -> bool {
        self.core_ref().config.trace
    }

    /// Records an event caused by the current goroutine (or by the scheduler outside one).
    pub(crate) fn emit(&self, verb: &'static str, subject: Subject, detail: Option<String>) {
        self.record(verb, subject, Detail::from(detail));
    }

    /// Records an event caused by the current goroutine (or by the scheduler outside one), with
    /// a compact detail: nothing is formatted until the trace is rendered.
    pub(crate) fn record(&self, verb: &'static str, subject: Subject, detail: Detail) {
        let mut core = self.core();
        if !core.config.trace {
            return;
        }
        let task = core.current.unwrap_or(TaskId(0));
        core.push_event(task, verb, subject, detail, None);
    }

    /// Records one side of a hand-off between two goroutines (a channel transfer): the event of
    /// `task` (the current goroutine when `None`), whose value went to or came from `peer`,
    /// shown in the text as `shown` says (see `Event::peer`).
    pub(crate) fn record_handoff(
        &self,
        task: Option<TaskId>,
        verb: &'static str,
        subject: Subject,
        detail: Detail,
        peer: Option<(TaskId, PeerShown)>,
    ) {
        let mut core = self.core();
        if !core.config.trace {
            return;
        }
        let task = task.unwrap_or(core.current.unwrap_or(TaskId(0)));
        core.push_event(task, verb, subject, detail, peer);
    }

    /// Records an event on behalf of another goroutine (the parked side of a hand-off made
    /// by the current one: the value reached `task`, or left it, at this instant), with the
    /// goroutine on the other side when the trace's views should link the two (`Event::peer`).
    pub(crate) fn emit_as(
        &self,
        task: TaskId,
        verb: &'static str,
        subject: Subject,
        detail: Option<String>,
        peer: Option<TaskId>,
    ) {
        let mut core = self.core();
        if core.config.trace {
            let peer = peer.map(|p| (p, PeerShown::Hidden));
            core.push_event(task, verb, subject, Detail::from(detail), peer);
        }
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.core_ref().events.events()
    }

    /// Takes the recorded decisions out of the runtime (empty unless `Config::record`).
    pub fn take_decisions(&self) -> Vec<Decision> {
        self.core().decider.take_record()
    }

    /// Takes the recorded events out of the runtime.
    pub fn take_events(&self) -> Vec<Event> {
        self.core().events.take()
    }

    /// A new resource identity (channels, locks... call this when created). `kind` is the
    /// primitive's declaration: its name, and whether its holders are its only releasers.
    pub(crate) fn new_resource(
        &self,
        kind: ResourceKind,
        created_at: Option<Rc<str>>,
    ) -> ResourceRef {
        let mut core = self.core();
        let id = core.next_resource_id;
        core.next_resource_id += 1;
        Rc::new(Resource::new(id, kind, created_at))
    }

    /// A uniform integer in `0..n` from the data stream (user randomness, jitter, buggify).
    pub fn random_below(&self, n: u64) -> u64 {
        self.core().decider.data(Some(n))
    }

    /// A uniform `u64` from the data stream.
    pub(crate) fn random_u64(&self) -> u64 {
        self.core().decider.data(None)
    }

    /// A uniform float in `[0, 1)` from the data stream.
    pub(crate) fn random_unit(&self) -> f64 {
        let bits = self.core().decider.data(None);
        (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Replaces the data stream (`math.randomseed`): reproducible, and independent of scheduling.
    pub(crate) fn reseed_data(&self, seed: u64) {
        let mut core = self.core();
        let base = core.config.seed;
        core.decider.reseed_data(base ^ seed.rotate_left(17));
    }

    /// A uniform choice in `0..n` from the scheduling stream (`select` among ready cases).
    pub(crate) fn choose(&self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.core().decider.below(DecisionKind::Case, n as u64) as usize
    }

    /// Adds a goroutine. It becomes runnable; it runs when the scheduler picks it. Fails (and ends
    /// the run with a limit) when too many goroutines are alive.
    pub(crate) fn spawn(
        &self,
        name: Option<&str>,
        daemon: bool,
        body: Box<dyn TaskBody>,
    ) -> Option<TaskId> {
        let mut core = self.core();
        if core.n_live >= core.config.max_goroutines {
            let message = format!(
                "more than {} goroutines alive at once",
                core.config.max_goroutines
            );
            core.set_limit(LimitKind::Goroutines, message, None);
            return None;
        }
        let id = TaskId(core.tasks.len() as u64 + 1);
        let name: Option<Rc<str>> = name.map(Rc::from);
        let now = core.clock.now();
        core.tasks.push(Some(Box::new(Task {
            name: name.clone(),
            daemon,
            state: TaskState::Runnable,
            body: Some(body),
            wait: None,
            spawned_at: now,
            blocked_since: now,
            failed: false,
            observer: false,
            multi: None,
            several: false,
            joinable: false,
        })));
        core.decider.spawned(id);
        core.runnable.push(id);
        core.n_live += 1;
        if !daemon {
            core.n_live_non_daemon += 1;
        }
        if core.config.trace {
            if name.is_some() {
                core.events.name(id, name.clone());
            }
            if id != TaskId::MAIN {
                let parent = core.current.unwrap_or(TaskId(0));
                let detail = if daemon {
                    Detail::Static(&"daemon")
                } else {
                    Detail::None
                };
                core.push_event(parent, "spawn", Subject::Task(id, name), detail, None);
            }
        }
        let notice = core.spawned_notice(id, now);
        drop(core);
        if let Some(n) = notice {
            n.deliver();
        }
        Some(id)
    }

    /// Blocks the current goroutine: it will not run until something calls `wake` on it.
    pub(crate) fn block(&self, wait: Wait) {
        self.core.plain.set(false);
        let mut core = self.core();
        let id = core.current.expect("block outside a goroutine");
        if let Err(wait) = core.block_task(id, wait, None) {
            // A second operation parked in one poll without going through `op_mode` (an
            // operation of a binding's own): fail with the rule rather than an assertion.
            drop(core);
            self.refuse(wait.op.name(), None);
        }
    }

    /// How an operation of a Rust future of the running task may start: one load when it is the
    /// task's only operation so far. Several futures of one task may wait at once (a
    /// `tokio::select!` or `join!` over gosim operations): the first to complete wins the wait
    /// and the others are lost (see `Parked`).
    #[inline]
    pub(crate) fn op_mode(&self) -> OpMode {
        if self.core.plain.get() {
            return OpMode::Plain;
        }
        self.op_mode_slow()
    }

    #[cold]
    fn op_mode_slow(&self) -> OpMode {
        let mut core = self.core();
        let Some(id) = core.current else {
            return OpMode::Plain;
        };
        let task = core.task_mut(id).expect("current task exists");
        match task.state {
            TaskState::Running if task.unclaimed() == 0 => OpMode::Plain,
            TaskState::Running => {
                // A result waits to be returned by another future: give way, start later.
                core.park_runnable(id);
                OpMode::Later
            }
            TaskState::Blocked if task.joinable && task.unclaimed() == 0 => OpMode::Joined,
            TaskState::Blocked => {
                drop(core);
                self.refuse("an operation", None);
                OpMode::Refused
            }
            _ => OpMode::Later,
        }
    }

    /// Fails the run: a task waited on a second operation while its wait could not be shared.
    pub(crate) fn refuse(&self, what: &str, location: Option<String>) {
        let (id, name) = {
            let core = self.core_ref();
            let id = core.current.unwrap_or(TaskId(0));
            let name = core
                .task(id)
                .and_then(|t| t.name.as_deref().map(str::to_string));
            (id, name)
        };
        let message = format!(
            "gosim: {what} was started while another operation of the same task ({}) was \
             waiting, and that wait cannot be shared: only channel send and receive, sleep, \
             mutex lock, gosim::select! and ctx.done() may wait together in one task (in a \
             tokio::select! or join!); await the others one at a time, or spawn a task",
            label(id, name.as_deref())
        );
        let time = Duration::from_nanos(self.now());
        let failure = Failure::in_task(
            FailureKind::Error,
            Some((id, name)),
            message,
            location,
            time,
        );
        self.fail(failure);
    }

    /// Parks the current task in the operation `parked` of a Rust future: as `block`, or, when
    /// another operation of this poll parked already, joining its wait (the first to complete
    /// wins, see `Parked`).
    pub(crate) fn block_member(&self, wait: Wait, parked: &Rc<Parked>) {
        self.core.plain.set(false);
        let mut core = self.core();
        let id = core.current.expect("block outside a goroutine");
        let task = core.task_mut(id).expect("current task exists");
        if task.state == TaskState::Blocked && task.joinable {
            core.join_member(id, wait, parked);
            return;
        }
        if let Err(wait) = core.block_task(id, wait, Some(parked)) {
            drop(core);
            self.refuse(wait.op.name(), None);
        }
    }

    /// Sleeps the current task until `until` (first time: `now + d`) as an operation of a Rust
    /// future (`Sleep`): as `sleep`, or joining the wait of another operation of this poll.
    /// Returns the timer and the deadline.
    pub(crate) fn sleep_member(&self, until: Option<Nanos>, d: Nanos) -> (TimerKey, Nanos) {
        self.core.plain.set(false);
        let mut core = self.core();
        let id = core.current.expect("sleep outside a goroutine");
        let now = core.clock.now();
        let until = until.unwrap_or_else(|| now.saturating_add(d));
        let task = core.task_mut(id).expect("current task exists");
        if !(task.state == TaskState::Blocked && task.joinable) {
            let key = core.sleep_task_at(id, now, until.saturating_sub(now), true);
            return (key, until);
        }
        task.join();
        let fire_at = core.decider.fire_at(until);
        let key = core.timers.add(fire_at, TimerAction::Wake(id));
        if core.config.trace {
            let d = until.saturating_sub(now);
            core.push_event(id, "sleep", Subject::None, Detail::Ms(d), None);
        }
        let task = core.task_mut(id).expect("current task exists");
        task.multi().sleeps.push(key);
        if let Some(w) = &mut task.wait {
            w.until = Some(w.until.map_or(until, |u| u.min(until)));
        }
        (key, until)
    }

    /// An operation of a Rust future completed at once while other operations of this poll
    /// were parked (`OpMode::Joined`): it wins and they are lost. The task gives way (it is
    /// runnable again, as after a scheduling point): the operation holds its result
    /// (`hold_result`) and returns it at the next poll, where the lost ones, which returned
    /// `Pending` earlier in this poll, start over.
    pub(crate) fn won_now(&self) {
        self.core.plain.set(false);
        let mut core = self.core();
        let id = core.current.expect("won_now outside a goroutine");
        core.end_wait(id);
        let task = core.task_mut(id).expect("current task exists");
        task.wait = None;
        // Its own effect may have woken it already (a send whose value refilled the buffer
        // this receive emptied).
        if task.state == TaskState::Blocked {
            task.state = TaskState::Runnable;
            core.runnable.push(id);
        }
    }

    /// The running task when it may have live registrations of its own in wait queues (a Rust
    /// task whose other operations of this poll are parked): a queue must not pair it with
    /// itself. `None` on the hot path (one load).
    #[inline]
    pub(crate) fn waiting_task(&self) -> Option<TaskId> {
        if self.core.plain.get() {
            return None;
        }
        self.waiting_task_slow()
    }

    fn waiting_task_slow(&self) -> Option<TaskId> {
        let core = self.core_ref();
        let id = core.current?;
        core.task(id)
            .filter(|t| t.state == TaskState::Blocked && t.joinable)
            .map(|_| id)
    }

    /// A future of the running task holds a completed result it returns at its next poll.
    pub(crate) fn hold_result(&self) {
        self.core.plain.set(false);
        let mut core = self.core();
        if let Some(id) = core.current
            && let Some(t) = core.task_mut(id)
        {
            t.multi().unclaimed += 1;
        }
    }

    /// A future returned (or dropped) the result it held (`hold_result`).
    pub(crate) fn release_result(&self) {
        let mut core = self.core();
        let Some(id) = core.current else { return };
        let Some(t) = core.task_mut(id) else { return };
        let m = t.multi();
        m.unclaimed = m.unclaimed.saturating_sub(1);
        let plain = m.unclaimed == 0 && t.state == TaskState::Running;
        drop(core);
        self.core.plain.set(plain);
    }

    /// Makes a blocked goroutine runnable.
    pub(crate) fn wake(&self, id: TaskId) {
        let mut core = self.core();
        core.wake(id);
    }

    /// Sleeps the current goroutine until `now + dur`; returns the timer.
    pub(crate) fn sleep(&self, dur: Nanos) -> TimerKey {
        self.core.plain.set(false);
        let mut core = self.core();
        let id = core.current.expect("sleep outside a goroutine");
        core.sleep_task(id, dur, false)
    }

    /// Adds a timer that runs `callback` at `at`. Part of the protocol between the scheduler and
    /// the primitives (hidden from the docs): public only so that tests can order a callback
    /// against a primitive's own deadline at one instant.
    #[doc(hidden)]
    pub fn add_timer(&self, at: Nanos, callback: Box<dyn TimerCallback>) -> TimerKey {
        let mut core = self.core();
        let fire_at = core.decider.fire_at(at);
        core.timers.add(fire_at, TimerAction::Call(callback))
    }

    /// Cancels a pending timer; false if it already fired or was cancelled.
    pub(crate) fn cancel_timer(&self, key: TimerKey) -> bool {
        self.core().timers.cancel(key)
    }

    /// A scheduling point of the current goroutine, taken after its operation's effect. Returns
    /// `true` if it keeps running, `false` if it must give control back to the scheduler (it has
    /// been made runnable again, and another goroutine, or itself, will be picked).
    #[inline]
    pub(crate) fn schedule_point(&self) -> bool {
        let keep = self.point(false);
        if !keep {
            self.core.plain.set(false);
        }
        keep
    }

    /// `schedule_point` after a Rust operation's effect: when it gives way, the operation holds
    /// its result for the next poll (`hold_result`, in the same borrow).
    #[inline]
    pub(crate) fn schedule_point_holding(&self) -> bool {
        let keep = self.point(true);
        if !keep {
            self.core.plain.set(false);
        }
        keep
    }

    fn point(&self, hold: bool) -> bool {
        let mut core = self.core();
        let id = core.current.expect("schedule_point outside a goroutine");
        if core.outcome.is_some() || !core.count_step() {
            // The run is over (a limit, a failure elsewhere): give control back so the loop stops.
            core.park_runnable_holding(id, hold);
            return false;
        }
        if core.need_timers || core.timers_need_loop() {
            core.need_timers = true;
            core.park_runnable_holding(id, hold);
            return false;
        }
        let n = core.runnable.len();
        if n == 0 {
            return true;
        }
        // The candidates are the runnable goroutines and, last, the running one.
        core.runnable.push(id);
        let k = {
            let Core {
                decider, runnable, ..
            } = &mut *core;
            decider.choose_task(DecisionKind::Point, runnable)
        };
        core.runnable.pop();
        if k == n {
            return true;
        }
        let chosen = core.runnable.swap_remove(k);
        core.next_pick = Some(chosen);
        core.park_runnable_holding(id, hold);
        false
    }

    /// Ends the run as failed (the first outcome set wins).
    pub(crate) fn fail(&self, failure: Failure) {
        let mut core = self.core();
        if core.outcome.is_none() {
            core.outcome = Some(Outcome::Fail(failure));
        }
    }

    /// Ends the run on a limit (the first outcome set wins).
    pub(crate) fn hit_limit(&self, kind: LimitKind, message: String, location: Option<String>) {
        self.core().set_limit(kind, message, location);
    }

    /// Whether the run has an outcome already (it will stop at the next step).
    pub fn is_over(&self) -> bool {
        self.core_ref().outcome.is_some()
    }

    /// Figures about the run so far.
    pub fn stats(&self) -> RunStats {
        let core = self.core_ref();
        RunStats {
            steps: core.steps,
            spawned: core.tasks.len() as u64,
            end_time: duration(core.clock.now()),
        }
    }

    /// Goroutines alive (not finished), main included.
    pub fn live_goroutines(&self) -> usize {
        self.core_ref().n_live
    }

    /// Drops every goroutine body and pending timer. Bodies and timer callbacks may hold handles
    /// that lead back to this runtime (a Lua state whose bindings hold it), so a finished run
    /// calls this to break those cycles and free its memory.
    pub fn shutdown(&self) {
        let (tasks, timers) = {
            let mut core = self.core();
            core.runnable.clear();
            core.next_pick = None;
            (
                std::mem::take(&mut core.tasks),
                std::mem::take(&mut core.timers),
            )
        };
        drop(timers);
        drop(tasks);
    }

    /// Runs the scheduler until the run has an outcome, and returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::runtime::{Config, Runtime};
    /// use gosim::sim::Sim;
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::simulated(Config::default());
    /// let s = Sim::on(&rt);
    /// let t = s.clone();
    /// s.spawn("main", async move { t.sleep(Duration::from_millis(4)).await });
    /// let outcome = rt.run(); // to the end: pass, fail or limit
    /// assert!(outcome.is_pass());
    /// assert_eq!(rt.stats().end_time, Duration::from_millis(4));
    /// rt.shutdown();
    /// ```
    pub fn run(&self) -> Outcome {
        loop {
            match self.step() {
                Step::Ran => {}
                Step::Over(outcome) => return outcome,
                Step::Idle { until } => {
                    // Production mode only: wait for the next timer or a wake-up from outside.
                    let wakeups = self.wakeups();
                    let timeout = until
                        .map(|t| std::time::Duration::from_nanos(t.saturating_sub(self.now())));
                    wakeups.wait(timeout);
                }
            }
        }
    }

    /// The queue that foreign wakers push to (production mode).
    pub(crate) fn wakeups(&self) -> std::sync::Arc<Wakeups> {
        self.core_ref().wakeups.clone()
    }

    /// A waker for a task waiting on a foreign future: waking it makes the task runnable.
    pub(crate) fn external_waker(&self, id: TaskId) -> std::task::Waker {
        external::waker(id, &self.core_ref().wakeups)
    }

    /// Parks the current task on a foreign future (production mode); its waker wakes it.
    pub(crate) fn block_external(&self) {
        self.block(Wait {
            op: WaitOp::External,
            resource: None,
            more: Vec::new(),
            until: None,
        });
        self.core().n_external += 1;
    }

    /// One step of the scheduler: run one task until its next switch, or move the clock, or
    /// find that the run is over. In production mode, `Idle` means nothing can run before the
    /// given instant (or before a wake-up from outside, for `None`): the caller waits.
    pub(crate) fn step(&self) -> Step {
        if let Some(outcome) = self.core_ref().outcome.clone() {
            return Step::Over(outcome);
        }
        self.take_wakeups();
        {
            // In real time, timers fall due while goroutines run: fire them between steps.
            let mut core = self.core();
            if !core.clock.is_simulated() && core.timers_need_loop() {
                core.need_timers = true;
            }
        }
        if self.core_ref().need_timers {
            self.core().need_timers = false;
            if self.advance_clock(true) {
                return Step::Ran;
            }
        }
        let picked = self.core().pick();
        if let Some(id) = picked {
            self.run_task(id);
            return Step::Ran;
        }
        if !self.is_simulated() {
            let core = self.core_ref();
            let next = core
                .timers
                .next_deadline()
                .filter(|_| core.timers.any_may_wake());
            if next.is_some() || core.n_external > 0 {
                return Step::Idle { until: next };
            }
        } else if self.advance_clock(false) {
            return Step::Ran;
        }
        self.finish_stuck();
        Step::Ran
    }

    /// Wakes the tasks whose foreign futures are ready.
    fn take_wakeups(&self) {
        let ids = {
            let core = self.core_ref();
            if core.n_external == 0 {
                return;
            }
            core.wakeups.take()
        };
        let mut core = self.core();
        for id in ids {
            let waiting = core.task(id).is_some_and(|t| {
                t.state == TaskState::Blocked
                    && t.wait.as_ref().is_some_and(|w| w.op == WaitOp::External)
            });
            if waiting {
                core.n_external -= 1;
                core.wake(id);
            }
        }
    }

    fn run_task(&self, id: TaskId) {
        let mut body = {
            let mut core = self.core();
            core.current = Some(id);
            if !core.count_step() {
                // The step limit ended the run; leave the task runnable.
                core.current = None;
                core.runnable.push(id);
                return;
            }
            let task = core.task_mut(id).expect("picked task exists");
            debug_assert_eq!(task.state, TaskState::Runnable);
            task.state = TaskState::Running;
            task.wait = None;
            task.joinable = false;
            self.core.plain.set(task.unclaimed() == 0);
            task.body.take().expect("a runnable task has a body")
        };
        let step = body.run(self);
        self.core.plain.set(false);
        let mut core = self.core();
        if !matches!(step, TaskStep::Parked) {
            // A body may end while one of its operations gave way (runnable) or waits (a
            // future of a `select!` dropped unpolled): take it out of the scheduler's sets.
            match core.task(id).map(|t| t.state) {
                Some(TaskState::Runnable) => {
                    core.runnable.retain(|&t| t != id);
                    if core.next_pick == Some(id) {
                        core.next_pick = None;
                    }
                }
                Some(TaskState::Blocked) => core.end_wait(id),
                _ => {}
            }
        }
        core.current = None;
        match step {
            TaskStep::Parked => {
                let task = core.task_mut(id).expect("task exists");
                assert_ne!(
                    task.state,
                    TaskState::Running,
                    "a parked body must block or be rescheduled"
                );
                task.body = Some(body);
                if core.check_from.take() == Some(id)
                    && let Some(failure) = core.check_wait_for_graph(id)
                {
                    drop(core);
                    self.fail_deadlock(failure);
                }
            }
            TaskStep::Finished => {
                drop(core);
                drop(body);
                self.finish_task(id);
            }
            TaskStep::Failed {
                kind,
                message,
                location,
            } => {
                let location = location.or_else(|| core.task(id).and_then(|t| t.location_text()));
                drop(core);
                self.fail_task(id, kind, message, location);
                drop(body);
            }
        }
    }

    /// Ends a task that failed, and the run with it.
    fn fail_task(&self, id: TaskId, kind: FailureKind, message: String, location: Option<String>) {
        let mut core = self.core();
        let name = core
            .task(id)
            .and_then(|t| t.name.as_deref().map(str::to_string));
        if core.config.trace {
            let first = message.lines().next().unwrap_or("").to_string();
            core.push_event(id, "error", Subject::None, Detail::text(first), None);
        }
        let time = core.clock.now();
        if core.outcome.is_none() {
            let failure =
                Failure::in_task(kind, Some((id, name)), message, location, duration(time));
            core.outcome = Some(Outcome::Fail(failure));
        }
        if let Some(t) = core.task_mut(id) {
            t.failed = true;
        }
        drop(core);
        self.finish_task(id);
    }

    /// Ends a task, then tells the observers (outside the core's borrow).
    fn finish_task(&self, id: TaskId) {
        let notice = self.core().finish_task(id);
        if let Some(n) = notice {
            n.deliver();
        }
    }

    /// The state of the goroutine being run (a body checks that it parked before yielding).
    pub(crate) fn current_state(&self) -> Option<TaskState> {
        let core = self.core_ref();
        core.current.and_then(|id| core.task(id)).map(|t| t.state)
    }

    /// Moves the clock to the next timer and fires every timer due then. Returns false when no
    /// timer can make progress (nothing pending, or nothing that could wake anyone).
    fn advance_clock(&self, forced: bool) -> bool {
        let deadline = {
            let mut core = self.core();
            let Some(next) = core.timers.next_deadline() else {
                return false;
            };
            let now = core.clock.now();
            if next > now {
                if !forced && !core.timers.any_may_wake() {
                    return false;
                }
                let horizon = duration_nanos(core.config.max_time);
                if next > horizon {
                    let message = format!(
                        "the next timer is at {}, past the horizon of {}",
                        format_ms(next),
                        format_ms(horizon)
                    );
                    core.set_limit(LimitKind::Time, message, None);
                    return true;
                }
                if let Some(done) = core.main_done_at
                    && next > done.saturating_add(duration_nanos(core.config.drain_time))
                {
                    let stuck = core.stuck_tasks(false);
                    let why = format!(
                        "still running {} after main returned",
                        format_ms(duration_nanos(core.config.drain_time))
                    );
                    core.set_leak(stuck, why);
                    return true;
                }
                core.clock.advance_to(next);
                core.steps_at_advance = core.steps;
            }
            core.clock.now()
        };
        self.fire_due(deadline);
        true
    }

    fn fire_due(&self, now: Nanos) {
        loop {
            let action = self.core().timers.pop_due(now);
            match action {
                None => break,
                Some(TimerAction::Wake(id) | TimerAction::WakeObserver(id)) => self.core().wake(id),
                Some(TimerAction::Call(cb)) => cb.fire(self),
            }
        }
    }

    /// Fails the run with a deadlock, after its reporters (if any are registered) have run: they
    /// are told first, outside the core's borrow, and the goroutines they start run before the
    /// run fails. The first deadlock found stands.
    fn fail_deadlock(&self, failure: Failure) {
        let reporters: Vec<Rc<dyn DeadlockReporter>> = {
            let mut core = self.core();
            if core.outcome.is_some() || core.pending.is_some() {
                return;
            }
            core.reporters.retain(|r| r.strong_count() > 0);
            core.reporters
                .iter()
                .filter_map(std::rc::Weak::upgrade)
                .collect()
        };
        let mut reporting = Vec::new();
        for r in reporters {
            reporting.extend(r.deadlock(self, &failure));
        }
        let mut core = self.core();
        if core.outcome.is_some() {
            return;
        }
        if reporting.is_empty() {
            core.outcome = Some(Outcome::Fail(failure));
        } else {
            core.pending = Some((failure, reporting));
        }
    }

    /// No goroutine can run and no timer can help: a deadlock, a leak, or the end.
    fn finish_stuck(&self) {
        let mut core = self.core();
        if core.outcome.is_some() {
            return;
        }
        if let Some((failure, _)) = core.pending.take() {
            // The reporters of a deadlock are done or stuck as well: the run fails with it.
            core.outcome = Some(Outcome::Fail(failure));
            return;
        }
        if core.main_done_at.is_none() {
            let stuck = core.stuck_tasks(true);
            let n = stuck.iter().filter(|s| s.state == "blocked").count();
            let time = core.clock.now();
            let location = stuck
                .iter()
                .find(|s| s.id == TaskId::MAIN)
                .and_then(|s| s.location.clone());
            let message = format!("all goroutines are asleep: {n} blocked, no timer can wake them");
            let notes = core.partial.clone();
            let failure = Failure::stuck(
                FailureKind::Deadlock,
                message,
                location,
                stuck,
                notes,
                duration(time),
            );
            drop(core);
            self.fail_deadlock(failure);
        } else if core.n_live_non_daemon > 0 {
            let stuck = core.stuck_tasks(false);
            core.set_leak(stuck, "blocked forever after main returned".to_string());
        } else {
            core.outcome = Some(Outcome::Pass);
        }
    }
}

impl Core {
    fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get((id.0 as usize).checked_sub(1)?)?.as_deref()
    }

    fn task_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        self.tasks
            .get_mut((id.0 as usize).checked_sub(1)?)?
            .as_deref_mut()
    }

    fn push_event(
        &mut self,
        task: TaskId,
        verb: &'static str,
        subject: Subject,
        detail: Detail,
        peer: Option<(TaskId, PeerShown)>,
    ) {
        let time = self.clock.now();
        self.events.push(time, task, verb, subject, detail, peer);
    }

    /// Blocks the running task `id` in `wait` (the operation `member` of a Rust future, whose
    /// wait others may join); gives the wait back if `id` is not running (a second operation of
    /// one poll: see `Runtime::block_member`).
    #[inline(always)]
    fn block_task(
        &mut self,
        id: TaskId,
        wait: Wait,
        member: Option<&Rc<Parked>>,
    ) -> Result<(), Wait> {
        if self.config.trace {
            self.trace_block(id, &wait);
        }
        let now = self.clock.now();
        let Some(task) = self.task_mut(id).filter(|t| t.state == TaskState::Running) else {
            return Err(wait);
        };
        let exact = wait.exact_holders().is_some();
        task.state = TaskState::Blocked;
        task.wait = Some(wait);
        task.blocked_since = now;
        task.joinable = member.is_some();
        if let Some(p) = member {
            task.multi().first = Some(p.clone());
        }
        if exact {
            self.check_from = Some(id);
        }
        Ok(())
    }

    /// A second operation of the running task `id` joins its wait (`Runtime::block_member`):
    /// out of line, so that the single operation's path stays small.
    #[cold]
    fn join_member(&mut self, id: TaskId, wait: Wait, parked: &Rc<Parked>) {
        let task = self.task_mut(id).expect("current task exists");
        task.join();
        task.multi().group.push(parked.clone());
        self.join_wait(id, wait);
    }

    /// The trace event of a task blocking in `wait` (out of line: the untraced path is hot).
    #[cold]
    fn trace_block(&mut self, id: TaskId, wait: &Wait) {
        let detail = if !wait.more.is_empty() {
            let names: Vec<String> = wait.resources().map(|r| r.to_string()).collect();
            Detail::text(names.join(" "))
        } else {
            Detail::None
        };
        let subject = match (&wait.resource, wait.more.is_empty()) {
            (Some(r), true) => Subject::Resource(r.clone()),
            _ => Subject::None,
        };
        self.push_event(id, wait.op.verb(), subject, detail, None);
    }

    /// Adds `wait` to the wait of task `id` (a second operation of one poll).
    fn join_wait(&mut self, id: TaskId, wait: Wait) {
        if self.config.trace {
            let subject = match &wait.resource {
                Some(r) => Subject::Resource(r.clone()),
                None => Subject::None,
            };
            self.push_event(id, wait.op.verb(), subject, Detail::None, None);
        }
        let task = self.task_mut(id).expect("current task exists");
        let old = task.wait.take();
        let mut resources: Vec<ResourceRef> = Vec::new();
        let mut until = wait.until;
        if let Some(o) = &old {
            resources.extend(o.resources().cloned());
            until = match (until, o.until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        resources.extend(wait.resources().cloned());
        let mut merged = Wait::on_all(SEVERAL, resources);
        merged.until = until;
        task.wait = Some(merged);
    }

    /// Sleeps the running task `id` for `dur` (`member`: a Rust future's sleep, whose wait others
    /// may join); returns the timer.
    fn sleep_task(&mut self, id: TaskId, dur: Nanos, member: bool) -> TimerKey {
        let now = self.clock.now();
        self.sleep_task_at(id, now, dur, member)
    }

    /// `sleep_task` when the caller has read the clock already (`now`).
    #[inline]
    fn sleep_task_at(&mut self, id: TaskId, now: Nanos, dur: Nanos, member: bool) -> TimerKey {
        let until = now.saturating_add(dur);
        let fire_at = self.decider.fire_at(until);
        if self.config.trace {
            self.push_event(id, "sleep", Subject::None, Detail::Ms(dur), None);
        }
        let task = self
            .tasks
            .get_mut((id.0 as usize).wrapping_sub(1))
            .and_then(|t| t.as_deref_mut())
            .expect("current task exists");
        assert_eq!(task.state, TaskState::Running);
        let action = if task.observer {
            TimerAction::WakeObserver(id)
        } else {
            TimerAction::Wake(id)
        };
        let key = self.timers.add(fire_at, action);
        if member {
            task.multi().sleep_timer = key.parts();
        }
        task.state = TaskState::Blocked;
        task.blocked_since = now;
        task.wait = Some(Wait {
            op: WaitOp::Sleep,
            resource: None,
            more: Vec::new(),
            until: Some(until),
        });
        task.joinable = member;
        key
    }

    #[inline]
    fn wake(&mut self, id: TaskId) {
        let trace = self.config.trace;
        let task = self.task_mut(id).expect("wake of a live task");
        assert_eq!(
            task.state,
            TaskState::Blocked,
            "only a blocked goroutine can be woken ({id})"
        );
        task.state = TaskState::Runnable;
        let several = task.several;
        self.runnable.push(id);
        if several {
            self.end_wait(id);
        }
        if trace {
            let by = self.current.unwrap_or(TaskId(0));
            self.push_event(by, "wake", Subject::Task(id, None), Detail::None, None);
        }
    }

    /// Ends a task's wait of several operations: the ones still live are lost, and its sleep
    /// timers are cancelled (the one that fired, if any, is gone already).
    fn end_wait(&mut self, id: TaskId) {
        let Some(task) = self.task_mut(id) else {
            return;
        };
        task.joinable = false;
        if !task.several {
            // A wait of one operation that another one completing at once ended (`won_now`).
            let is_sleep = task.wait.as_ref().is_some_and(|w| w.op == WaitOp::Sleep);
            // Only a Rust task's wait can be ended so (a Lua goroutine has no record).
            let Some(m) = task.multi.as_deref_mut() else {
                return;
            };
            if let Some(p) = m.first.take() {
                p.lose();
            }
            if is_sleep {
                let key = TimerKey::from_parts(m.sleep_timer);
                self.timers.cancel(key);
            }
            return;
        }
        task.several = false;
        let Some(m) = task.multi.as_deref_mut() else {
            return;
        };
        let mut won = false;
        for p in &m.group {
            if p.fired_case().is_some() {
                // The winner's result waits in its future: nothing else starts first.
                p.set_claim();
                won = true;
            } else {
                p.lose();
            }
        }
        m.group.clear();
        let sleeps = std::mem::take(&mut m.sleeps);
        if won {
            m.unclaimed += 1;
        }
        for k in &sleeps {
            self.timers.cancel(*k);
        }
        // Keep the vector's room for the next wait.
        if let Some(m) = self.task_mut(id).and_then(|t| t.multi.as_deref_mut()) {
            m.sleeps = sleeps;
            m.sleeps.clear();
        }
    }

    /// `park_runnable`, counting a result the task's future holds (`Runtime::hold_result`).
    #[inline]
    fn park_runnable_holding(&mut self, id: TaskId, hold: bool) {
        self.park_runnable(id);
        if hold && let Some(t) = self.task_mut(id) {
            t.multi().unclaimed += 1;
        }
    }

    fn park_runnable(&mut self, id: TaskId) {
        let task = self.task_mut(id).expect("current task exists");
        assert_eq!(task.state, TaskState::Running);
        task.state = TaskState::Runnable;
        self.runnable.push(id);
    }

    fn pick(&mut self) -> Option<TaskId> {
        if let Some(id) = self.next_pick.take() {
            return Some(id);
        }
        match self.runnable.len() {
            0 => None,
            1 => self.runnable.pop(),
            _ => {
                let k = self.decider.choose_task(DecisionKind::Pick, &self.runnable);
                Some(self.runnable.swap_remove(k))
            }
        }
    }

    /// Counts a scheduling step, charging its cost. False when the step limit is reached.
    fn count_step(&mut self) -> bool {
        self.steps += 1;
        self.decider.step(self.steps, self.current);
        if self.steps > self.config.max_steps {
            let message = format!("{} scheduling steps", self.config.max_steps);
            self.set_limit(LimitKind::Steps, message, None);
            return false;
        }
        let step_cost = duration_nanos(self.config.step_cost);
        if step_cost > 0 {
            let cost = if self.config.step_cost_random {
                self.decider
                    .below(DecisionKind::Cost, step_cost.saturating_add(1))
            } else {
                step_cost
            };
            let now = self.clock.now();
            self.clock.advance_to(now.saturating_add(cost));
        }
        true
    }

    /// Whether pending timers need the main loop now: one is due (the clock moved through step
    /// costs), or the spin guard fires.
    fn timers_need_loop(&self) -> bool {
        let Some(next) = self.timers.next_deadline() else {
            return false;
        };
        if next <= self.clock.now() {
            return true;
        }
        // The spin guard jumps virtual time; real time passes by itself.
        self.clock.is_simulated()
            && self.config.spin_steps > 0
            && self.steps - self.steps_at_advance >= self.config.spin_steps
    }

    /// Ends a task; returns the notice for the observers, to deliver once the core is released.
    #[must_use = "deliver the notice once the core is no longer borrowed"]
    fn finish_task(&mut self, id: TaskId) -> Option<observe::Notice> {
        let now = self.clock.now();
        let trace = self.config.trace;
        let slot = &mut self.tasks[(id.0 - 1) as usize];
        let task = slot.take().expect("finishing a live task");
        let lifetime = now.saturating_sub(task.spawned_at);
        let notice = self.finished_notice(id, now, task.failed, lifetime);
        self.n_live -= 1;
        if !task.daemon {
            self.n_live_non_daemon -= 1;
        }
        if trace {
            self.events
                .push(now, id, "exit", Subject::None, Detail::None, None);
            if task.name.is_some() {
                // Events after its exit (none today) would show it unnamed, as a gone task.
                self.events.name(id, None);
            }
        }
        if id == TaskId::MAIN {
            self.main_done_at = Some(now);
        }
        if let Some((_, reporting)) = &mut self.pending {
            reporting.retain(|&t| t != id);
            if reporting.is_empty() {
                let (failure, _) = self.pending.take().expect("checked above");
                if self.outcome.is_none() {
                    self.outcome = Some(Outcome::Fail(failure));
                }
            }
        }
        if self.main_done_at.is_some() && self.n_live_non_daemon == 0 && self.outcome.is_none() {
            self.outcome = Some(Outcome::Pass);
        }
        notice
    }

    fn set_limit(&mut self, kind: LimitKind, message: String, location: Option<String>) {
        if self.outcome.is_some() {
            return;
        }
        let task = self.current.map(|id| {
            (
                id,
                self.task(id)
                    .and_then(|t| t.name.as_deref().map(str::to_string)),
            )
        });
        let location = location.or_else(|| {
            self.current
                .and_then(|id| self.task(id))
                .and_then(|t| t.location_text())
        });
        let time = duration(self.clock.now());
        self.outcome = Some(Outcome::Limit(LimitHit {
            kind,
            task,
            message,
            location,
            time,
        }));
    }

    fn set_leak(&mut self, stuck: Vec<StuckTask>, why: String) {
        if self.outcome.is_some() {
            return;
        }
        let n = stuck.len();
        let time = duration(self.clock.now());
        let location = stuck.first().and_then(|s| s.location.clone());
        let message = format!("{n} goroutine(s) leaked: {why}");
        let notes = self.partial.clone();
        self.outcome = Some(Outcome::Fail(Failure::stuck(
            FailureKind::Leak,
            message,
            location,
            stuck,
            notes,
            time,
        )));
    }

    /// Checks the wait-for graph from a goroutine that just blocked on a lock-like resource: a
    /// closed cycle fails the run at once; a chain that ends at exited holders is noted as a
    /// partial deadlock (the run goes on; the goroutines will be reported at the end).
    fn check_wait_for_graph(&mut self, from: TaskId) -> Option<Failure> {
        let diagnosis = deadlock::diagnose(from, |t| self.node_info(t));
        match diagnosis {
            None => None,
            Some(deadlock::Diagnosis::Cycle { path, cycle }) => {
                if self.outcome.is_some() {
                    return None;
                }
                let lines: Vec<String> = cycle.iter().map(|&t| self.wait_line(t)).collect();
                let involved: Vec<TaskId> = path.iter().chain(cycle.iter()).copied().collect();
                let stuck = involved
                    .iter()
                    .filter_map(|&t| self.stuck_task(t))
                    .collect();
                let names: Vec<String> = cycle.iter().map(|&t| self.label_of(t)).collect();
                let mut message = format!("wait-for cycle among {}", names.join(", "));
                if !path.is_empty() {
                    let waiting: Vec<String> = path.iter().map(|&t| self.label_of(t)).collect();
                    message.push_str(&format!("; also stuck behind it: {}", waiting.join(", ")));
                }
                let location = self.stuck_task(from).and_then(|s| s.location);
                let notes = self.partial.clone();
                let time = self.clock.now();
                Some(Failure {
                    cycle: lines,
                    ..Failure::stuck(
                        FailureKind::Cycle,
                        message,
                        location,
                        stuck,
                        notes,
                        duration(time),
                    )
                })
            }
            Some(deadlock::Diagnosis::Orphaned { chain }) => {
                let lines: Vec<String> = chain.iter().map(|&t| self.wait_line(t)).collect();
                let note = format!(
                    "partial deadlock at {}: {}",
                    format_ms(self.clock.now()),
                    lines.join(" -> ")
                );
                if self.config.trace {
                    self.push_event(
                        from,
                        "partial-deadlock",
                        Subject::None,
                        Detail::text(lines.join(" -> ")),
                        None,
                    );
                }
                self.partial.push(note);
                None
            }
        }
    }

    fn node_info(&self, t: TaskId) -> deadlock::NodeInfo {
        let Some(task) = self.task(t) else {
            return deadlock::NodeInfo::Exited;
        };
        let exact = match (&task.state, &task.wait) {
            (TaskState::Blocked, Some(w)) => w.exact_holders(),
            _ => None,
        };
        match exact {
            Some(r) => deadlock::NodeInfo::Waits(r.holders()),
            None => deadlock::NodeInfo::Free,
        }
    }

    fn label_of(&self, t: TaskId) -> String {
        let name = self.task(t).and_then(|x| x.name.as_deref());
        match self.task(t) {
            Some(_) => label(t, name),
            None => format!("{t} (exited)"),
        }
    }

    /// `g2(worker) waits mutex#1 (created at x.lua:3) held by g3(other)` (or `... has exited`).
    fn wait_line(&self, t: TaskId) -> String {
        match self.task(t) {
            None => format!("{t} has exited"),
            Some(task) => {
                let what = task.wait.as_ref().and_then(|w| w.resource.as_ref());
                match what {
                    Some(r) => format!("{} waits {}", self.label_of(t), self.describe_resource(r)),
                    None => self.label_of(t),
                }
            }
        }
    }

    /// The live goroutines for a report; daemons only when `with_daemons`.
    fn stuck_tasks(&self, with_daemons: bool) -> Vec<StuckTask> {
        (1..=self.tasks.len() as u64)
            .map(TaskId)
            .filter(|&id| self.task(id).is_some_and(|t| with_daemons || !t.daemon))
            .filter_map(|id| self.stuck_task(id))
            .collect()
    }

    /// One live goroutine as a report sees it.
    fn stuck_task(&self, id: TaskId) -> Option<StuckTask> {
        let t = self.task(id)?;
        let (state, op) = match (&t.state, &t.wait) {
            (TaskState::Blocked, Some(w)) if w.op == WaitOp::Sleep => ("sleeping", None),
            (TaskState::Blocked, Some(w)) => ("blocked", Some(w.op.name())),
            (TaskState::Blocked, None) => ("blocked", None),
            _ => ("running", None),
        };
        let waits_on = t
            .wait
            .iter()
            .flat_map(|w| w.resources())
            .map(|r| self.describe_resource(r))
            .collect();
        let location = t.body.as_ref().and_then(|b| b.location());
        Some(StuckTask {
            id,
            name: t.name.as_deref().map(str::to_string),
            state,
            op,
            location: location.or_else(|| t.location_text()),
            waits_on,
            daemon: t.daemon,
        })
    }

    /// `mutex#2"accounts" (created at x.lua:4) held by g3(worker)`.
    fn describe_resource(&self, r: &Resource) -> String {
        let mut s = r.to_string();
        if let Some(at) = r.created_at() {
            s.push_str(&format!(" (created at {at})"));
        }
        let holders = r.holders();
        if !holders.is_empty() {
            let names: Vec<String> = holders.iter().map(|&h| self.label_of(h)).collect();
            s.push_str(&format!(" held by {}", names.join(", ")));
        }
        s
    }
}
