//! What the observability patterns (profiler, deadlock detector) read from the scheduler: spawn
//! and exit notifications, and a snapshot of the goroutines blocked for a while. Read-only views:
//! observing a run never changes its schedule.

use std::rc::{Rc, Weak};

use super::backend::Nanos;
use super::deadlock;
use super::outcome::Failure;
use super::resource::ResourceKind;
use super::task::{TaskId, TaskState, WaitOp};
use super::{Core, Runtime};

/// Told about every goroutine spawned and finished after it was registered.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Nanos, TaskId, TaskObserver};
/// use std::{cell::Cell, rc::Rc};
///
/// struct Count(Cell<u32>);
/// impl TaskObserver for Count {
///     fn spawned(&self, _id: TaskId, _at: Nanos) { self.0.set(self.0.get() + 1) }
///     fn finished(&self, _id: TaskId, _at: Nanos, _failed: bool, _lifetime: Nanos) {}
/// }
/// let sim = gosim::Sim::with_seed(1);
/// let count = Rc::new(Count(Cell::new(0)));
/// let weak: std::rc::Weak<dyn TaskObserver> = Rc::downgrade(&count) as _;
/// sim.runtime().observe(weak);
/// let s = sim.clone();
/// let report = sim.run(async move { s.spawn("a", async {}).await.expect("no panic") });
/// report.assert_pass();
/// assert!(count.0.get() >= 1);
/// ```
pub trait TaskObserver {
    /// A goroutine was spawned at `at`.
    fn spawned(&self, id: TaskId, at: Nanos);
    /// A goroutine ended at `at` after living `lifetime`; `failed` if it raised an error (caught
    /// by its own layer, like an `async` that failed, or not).
    fn finished(&self, id: TaskId, at: Nanos, failed: bool, lifetime: Nanos);
}

/// Told of a deadlock (a wait-for cycle, or every goroutine asleep) before it fails the run: a
/// deadlock detector's `on_deadlock`. It may start goroutines that report it (a handler may block
/// or log); it returns them, and the run fails once they have all exited or are stuck as well.
/// The core knows nothing of what a reporter does.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{DeadlockReporter, Failure, Runtime, TaskId};
/// use std::{cell::Cell, rc::Rc};
///
/// struct Seen(Cell<bool>);
/// impl DeadlockReporter for Seen {
///     fn deadlock(&self, _rt: &Runtime, _failure: &Failure) -> Vec<TaskId> {
///         self.0.set(true);
///         Vec::new() // no reporting goroutines: the run fails at once
///     }
/// }
/// let sim = gosim::Sim::with_seed(1);
/// let seen = Rc::new(Seen(Cell::new(false)));
/// let weak: std::rc::Weak<dyn DeadlockReporter> = Rc::downgrade(&seen) as _;
/// sim.runtime().report_deadlocks_to(weak);
/// let s = sim.clone();
/// let report = sim.run(async move { s.channel::<u8>(0).recv().await });
/// assert!(!report.outcome.is_pass());
/// assert!(seen.0.get());
/// ```
pub trait DeadlockReporter {
    /// The run is about to fail with `failure`.
    fn deadlock(&self, rt: &Runtime, failure: &Failure) -> Vec<TaskId>;
}

/// One goroutine blocked for at least the asked duration.
///
/// # Examples
///
/// ```
/// use gosim::patterns::DeadlockDetector;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let m = s.mutex(());
///     let _held = m.lock().await;
///     let m2 = m.clone();
///     s.spawn_daemon("locker", async move { drop(m2.lock().await) });
///     s.sleep(Duration::from_millis(5)).await;
///     let info = DeadlockDetector::new(s.runtime(), Duration::ZERO).check().expect("blocked");
///     let b = &info.goroutines()[0];
///     assert_eq!((b.name.as_deref(), b.op, b.since), (Some("locker"), "lock", Duration::ZERO));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedInfo {
    /// Its id.
    pub id: TaskId,
    /// Its name.
    pub name: Option<String>,
    /// The operation it is blocked in (`receive`, `lock`, ...).
    pub op: &'static str,
    /// What it waits on, one line each (`channel#2 (created at x.lua:3)`, with holders).
    pub waits_on: Vec<String>,
    /// The kinds of those resources (`channel`, `mutex`, ...), as their primitives declared them.
    pub kinds: Vec<ResourceKind>,
    /// The ids of those resources.
    pub resource_ids: Vec<u64>,
    /// Since when it is blocked.
    pub since: std::time::Duration,
    /// The source line where it stopped.
    pub location: Option<String>,
}

impl Runtime {
    /// Registers an observer of spawns and exits. It stays registered while it is alive.
    pub fn observe(&self, observer: Weak<dyn TaskObserver>) {
        self.core().observers.push(observer);
    }

    /// Registers a reporter of deadlocks, told before a deadlock fails the run (while it is alive).
    pub fn report_deadlocks_to(&self, reporter: Weak<dyn DeadlockReporter>) {
        self.core().reporters.push(reporter);
    }

    /// Marks a daemon goroutine as an observer: it only watches (a deadlock detector's loop), so
    /// its sleeps do not keep a deadlock from being reported.
    pub fn mark_observer(&self, id: TaskId) {
        if let Some(t) = self.core().task_mut(id) {
            assert!(t.daemon, "an observer goroutine is a daemon");
            t.observer = true;
        }
    }

    /// Marks a goroutine as failed (its layer caught an error it raised): observers count it.
    pub fn mark_failed(&self, id: TaskId) {
        if let Some(t) = self.core().task_mut(id) {
            t.failed = true;
        }
    }

    /// Goroutines blocked (on a resource, not sleeping) for at least `min`, in id order.
    pub fn blocked_for(&self, min: Nanos) -> Vec<BlockedInfo> {
        let core = self.core_ref();
        let now = core.clock.now();
        let mut out = Vec::new();
        for (i, slot) in core.tasks.iter().enumerate() {
            let Some(t) = slot else { continue };
            let Some(w) = &t.wait else { continue };
            if t.state != TaskState::Blocked || w.op == WaitOp::Sleep || now - t.blocked_since < min
            {
                continue;
            }
            let id = TaskId(i as u64 + 1);
            out.push(BlockedInfo {
                id,
                name: t.name.as_deref().map(str::to_string),
                op: w.op.name(),
                waits_on: w.resources().map(|r| core.describe_resource(r)).collect(),
                kinds: w.resources().map(|r| r.resource_kind()).collect(),
                resource_ids: w.resources().map(|r| r.id()).collect(),
                since: super::duration(t.blocked_since),
                location: t.body.as_ref().and_then(|b| b.location()),
            });
        }
        out
    }

    /// The wait-for cycle that `id` is stuck on, one line per goroutine, if there is one.
    pub fn wait_cycle(&self, id: TaskId) -> Option<Vec<String>> {
        let core = self.core_ref();
        match deadlock::diagnose(id, |t| core.node_info(t))? {
            deadlock::Diagnosis::Cycle { cycle, .. } => {
                Some(cycle.iter().map(|&t| core.wait_line(t)).collect())
            }
            deadlock::Diagnosis::Orphaned { .. } => None,
        }
    }
}

/// What observers are told.
#[derive(Debug, Clone, Copy)]
enum TaskEvent {
    Spawned {
        id: TaskId,
        at: Nanos,
    },
    Finished {
        id: TaskId,
        at: Nanos,
        failed: bool,
        lifetime: Nanos,
    },
}

/// A spawn or an exit for the observers, taken while the core is borrowed and delivered once
/// the borrow has ended: an observer may read the runtime (`now`, `live_goroutines`, ...), which
/// would panic on a core still borrowed mutably.
pub(super) struct Notice {
    observers: Vec<Rc<dyn TaskObserver>>,
    event: TaskEvent,
}

impl Notice {
    /// Tells every observer. Call it with the core not borrowed.
    pub(super) fn deliver(self) {
        for o in &self.observers {
            match self.event {
                TaskEvent::Spawned { id, at } => o.spawned(id, at),
                TaskEvent::Finished {
                    id,
                    at,
                    failed,
                    lifetime,
                } => o.finished(id, at, failed, lifetime),
            }
        }
    }
}

impl Core {
    /// The notice of a spawn, for `Notice::deliver` after the borrow; `None` when nobody
    /// observes (the common case costs one test).
    #[must_use = "deliver the notice once the core is no longer borrowed"]
    pub(super) fn spawned_notice(&mut self, id: TaskId, at: Nanos) -> Option<Notice> {
        self.notice(TaskEvent::Spawned { id, at })
    }

    /// The notice of an exit (see `spawned_notice`).
    #[must_use = "deliver the notice once the core is no longer borrowed"]
    pub(super) fn finished_notice(
        &mut self,
        id: TaskId,
        at: Nanos,
        failed: bool,
        lifetime: Nanos,
    ) -> Option<Notice> {
        self.notice(TaskEvent::Finished {
            id,
            at,
            failed,
            lifetime,
        })
    }

    fn notice(&mut self, event: TaskEvent) -> Option<Notice> {
        if self.observers.is_empty() {
            return None;
        }
        self.observers.retain(|o| o.strong_count() > 0);
        let observers: Vec<Rc<dyn TaskObserver>> =
            self.observers.iter().filter_map(Weak::upgrade).collect();
        (!observers.is_empty()).then_some(Notice { observers, event })
    }
}
