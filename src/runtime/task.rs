//! Goroutines as the scheduler sees them: an id, a name, a state, and a body it can run until the
//! body's next scheduling point. The body is opaque (a Lua coroutine, a Rust future): the core
//! never looks inside it.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use super::Runtime;
use super::backend::Nanos;
use super::outcome::FailureKind;
use super::resource::ResourceRef;

/// A goroutine's id: 1 is main, then 2, 3, ... in spawn order. Never reused within a run.
///
/// # Examples
///
/// ```
/// use gosim::runtime::TaskId;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let h = s.spawn("worker", async {});
///     assert_eq!(h.id(), TaskId(2)); // main is g1
///     h.await.expect("no panic");
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

impl TaskId {
    /// The main goroutine.
    pub const MAIN: TaskId = TaskId(1);
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

/// Where a goroutine is in its life.
///
/// # Examples
///
/// ```
/// use gosim::runtime::TaskState;
///
/// // A task is runnable, running, blocked on something, or done.
/// let states = [TaskState::Runnable, TaskState::Running, TaskState::Blocked, TaskState::Done];
/// assert_eq!(states.iter().filter(|s| **s != TaskState::Done).count(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Ready to run; in the runnable set.
    Runnable,
    /// Being run right now (exactly one task at a time).
    Running,
    /// Waiting on a resource or a timer; only a wake makes it runnable again.
    Blocked,
    /// Returned or failed.
    Done,
}

/// A blocking operation as its primitive declares it (a `const` next to the primitive): its name
/// in reports and the verb of the trace event when a goroutine blocks in it. The core only
/// copies these strings; it never maps one operation to another by name.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Blocking, WaitOp};
///
/// const RECEIVE: Blocking = Blocking::new("receive", "block-receive");
/// assert_eq!(WaitOp::On(RECEIVE).name(), "receive"); // how reports name the operation
/// assert_eq!(WaitOp::On(RECEIVE).verb(), "block-receive"); // the trace verb
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    /// The operation's name in reports: `receive`, `lock`, ...
    pub name: &'static str,
    /// The trace verb when a goroutine blocks in it: `block-receive`, `block-lock`, ...
    pub verb: &'static str,
}

impl Blocking {
    /// An operation named `name` whose block events read `verb`.
    pub const fn new(name: &'static str, verb: &'static str) -> Blocking {
        Blocking { name, verb }
    }
}

/// The kind of wait a blocked goroutine is in.
///
/// # Examples
///
/// ```
/// use gosim::runtime::WaitOp;
///
/// assert_eq!(WaitOp::Sleep.verb(), "sleep");
/// assert_eq!(WaitOp::External.name(), "external");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOp {
    /// `Runtime::sleep`: only its timer wakes it; reports call it sleeping, not blocked.
    Sleep,
    /// `Runtime::block_external`: a foreign future's waker wakes it (production mode).
    External,
    /// An operation of a primitive on its resources.
    On(Blocking),
}

impl WaitOp {
    /// Its name in reports: `sleep`, `external`, or the operation's.
    pub fn name(self) -> &'static str {
        match self {
            WaitOp::Sleep => "sleep",
            WaitOp::External => "external",
            WaitOp::On(b) => b.name,
        }
    }

    /// The verb of the trace event when a goroutine blocks in it (`Runtime::block`).
    pub fn verb(self) -> &'static str {
        match self {
            WaitOp::Sleep => "sleep",
            WaitOp::External => "block",
            WaitOp::On(b) => b.verb,
        }
    }
}

/// What a blocked goroutine waits for, for reports.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Blocking, Wait};
///
/// let sim = gosim::Sim::with_seed(1);
/// let (a, b) = (sim.channel::<u8>(0), sim.channel::<u8>(0));
/// let wait = Wait::on_all(Blocking::new("select", "block-select"),
///                         vec![a.resource().clone(), b.resource().clone()]);
/// assert_eq!(wait.resources().count(), 2); // a wait on several resources at once
/// ```
#[derive(Debug, Clone)]
pub struct Wait {
    /// The operation.
    pub op: WaitOp,
    /// The resource it waits on (the first case of a `select`).
    pub resource: Option<ResourceRef>,
    /// The other resources of a `select` (kept apart so a single wait allocates nothing).
    pub more: Vec<ResourceRef>,
    /// The instant a timer will wake it, if one will.
    pub until: Option<Nanos>,
}

impl Wait {
    /// A wait on one resource with no timer.
    pub fn on(op: Blocking, resource: &ResourceRef) -> Wait {
        Wait {
            op: WaitOp::On(op),
            resource: Some(resource.clone()),
            more: Vec::new(),
            until: None,
        }
    }

    /// A wait on several resources (a `select`).
    pub fn on_all(op: Blocking, mut resources: Vec<ResourceRef>) -> Wait {
        let resource = if resources.is_empty() {
            None
        } else {
            Some(resources.remove(0))
        };
        Wait {
            op: WaitOp::On(op),
            resource,
            more: resources,
            until: None,
        }
    }

    /// Every resource it waits on.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceRef> {
        self.resource.iter().chain(self.more.iter())
    }

    /// The resource, when only its holders can end this wait: one resource whose releasers are
    /// its holders, and no timer. Only such waits make wait-for edges.
    pub(crate) fn exact_holders(&self) -> Option<&ResourceRef> {
        let r = self.resource.as_ref()?;
        let exact = self.more.is_empty() && self.until.is_none() && r.releasers_are_holders();
        exact.then_some(r)
    }
}

/// What a body reports when it gives control back to the scheduler.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Config, Runtime, TaskBody, TaskStep};
///
/// struct Done;
/// impl TaskBody for Done {
///     fn run(&mut self, _rt: &Runtime) -> TaskStep { TaskStep::Finished }
/// }
/// let rt = Runtime::simulated(Config::default());
/// assert!(matches!(Done.run(&rt), TaskStep::Finished)); // parked, finished or failed
/// rt.shutdown();
/// ```
#[derive(Debug)]
pub enum TaskStep {
    /// It reached a scheduling point: it has either made itself blocked (through a primitive) or
    /// was put back in the runnable set by `Runtime::schedule_point`.
    Parked,
    /// It returned.
    Finished,
    /// It ended with a failure nobody caught, and the run fails with it. The body's layer says
    /// what kind of failure it is and where it happened: only that layer knows what raised it
    /// (the Lua prelude's `assert`, a Lua `error`, a Rust panic) and how its messages name lines.
    Failed {
        /// `Error`, `Assertion` or `Panic`.
        kind: FailureKind,
        /// The message (for a Lua error, with its traceback).
        message: String,
        /// Where it happened (`file.lua:12`, `src/x.rs:12`), when the layer knows; otherwise
        /// the report falls back to where the task last stopped.
        location: Option<String>,
    },
}

/// The code of a goroutine, run piecewise by the scheduler.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Config, FailureKind, Runtime, TaskBody, TaskStep};
///
/// // A goroutine of another language: each `run` resumes it until it parks or ends.
/// struct Fails;
/// impl TaskBody for Fails {
///     fn run(&mut self, _rt: &Runtime) -> TaskStep {
///         TaskStep::Failed { kind: FailureKind::Error, message: "boom".into(), location: None }
///     }
/// }
/// let rt = Runtime::simulated(Config::default());
/// assert!(matches!(Fails.run(&rt), TaskStep::Failed { kind: FailureKind::Error, .. }));
/// assert_eq!(Fails.location(), None); // where it stopped, for reports
/// rt.shutdown();
/// ```
pub trait TaskBody {
    /// Runs until the next scheduling point that switches away, or to the end.
    fn run(&mut self, rt: &Runtime) -> TaskStep;

    /// Where the suspended body stopped (`file.lua:12`), for reports. Asked only when a report
    /// is built, so bodies need not record it at every switch.
    fn location(&self) -> Option<String> {
        None
    }
}

/// One blocked operation of one goroutine, possibly registered in several wait queues at once (a
/// `select`). The first queue to complete it wins; the others see it is no longer live and skip
/// it, and the owner removes its other registrations when it wakes.
///
/// A Rust task may also wait on several operations at once (two gosim futures polled in one
/// `tokio::select!` or `join!`): each makes its own `Parked`, and the scheduler keeps the ones
/// of the task's current wait together, so that when one completes (or a sleep of the same wait
/// ends) the others are [`lost`](Parked::is_lost): no queue completes them any more, and their
/// futures start over if polled again.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Parked, TaskId};
///
/// let parked = Parked::new(TaskId(3)); // one parked operation of g3
/// assert_eq!(parked.task(), TaskId(3));
/// assert!(parked.is_live());
/// assert_eq!(parked.fired_case(), None); // no select case completed it yet
/// ```
#[derive(Debug)]
pub struct Parked {
    task: TaskId,
    /// `LIVE`, `LOST`, or the case that completed it. One word, not an `Option`: every parked
    /// goroutine has a `Parked`, so its size is memory per parked goroutine.
    fired: Cell<usize>,
    /// It won a wait of several operations: its task holds its result until its future returns
    /// it (`Runtime::release_result`), and no other operation of the task starts before.
    claim: Cell<bool>,
}

/// `Parked::fired` while no queue has completed it (cases are small, or `TIMED_OUT`, the
/// largest).
const LIVE: usize = usize::MAX - 2;

/// The "case" a parked operation ends with when another operation of the same wait completed
/// first: it did nothing, and starts over if polled again.
const LOST: usize = usize::MAX - 1;

impl Parked {
    /// A new parked operation of `task`.
    pub fn new(task: TaskId) -> Rc<Parked> {
        Rc::new(Parked {
            task,
            fired: Cell::new(LIVE),
            claim: Cell::new(false),
        })
    }

    /// The goroutine it belongs to.
    pub fn task(&self) -> TaskId {
        self.task
    }

    /// Whether no queue has completed it yet (and no other operation of its wait has).
    pub fn is_live(&self) -> bool {
        self.fired.get() == LIVE
    }

    /// The case that completed it (0 for single operations), `None` while live or when lost.
    pub fn fired_case(&self) -> Option<usize> {
        let f = self.fired.get();
        (f != LIVE && f != LOST).then_some(f)
    }

    /// Whether another operation of the same wait completed first (see the type's doc).
    pub fn is_lost(&self) -> bool {
        self.fired.get() == LOST
    }

    /// Whether it won a wait of several operations, whose result its future must now return
    /// (then call `Runtime::release_result`); reading it clears it.
    pub fn take_claim(&self) -> bool {
        self.claim.replace(false)
    }

    pub(crate) fn set_claim(&self) {
        self.claim.set(true);
    }

    /// Marks it lost if it is still live: no queue will complete it.
    pub fn lose(&self) {
        if self.is_live() {
            self.fired.set(LOST);
        }
    }

    /// Completes it through `case` and wakes its goroutine. Completing twice is a bug.
    pub fn fire(&self, rt: &Runtime, case: usize) {
        assert!(self.is_live(), "a parked operation completes once");
        debug_assert!(
            case != LIVE && case != LOST,
            "a case is not a reserved value"
        );
        self.fired.set(case);
        rt.wake(self.task);
    }
}

/// The scheduler's record of one goroutine.
pub(crate) struct Task {
    pub(crate) name: Option<Rc<str>>,
    pub(crate) daemon: bool,
    pub(crate) state: TaskState,
    pub(crate) body: Option<Box<dyn TaskBody>>,
    pub(crate) wait: Option<Wait>,
    /// When it was spawned (for lifetimes).
    pub(crate) spawned_at: Nanos,
    /// When it last blocked (meaningful while `Blocked`).
    pub(crate) blocked_since: Nanos,
    /// Its body reported an error it caught (an `async` that raised): counted as failed.
    pub(crate) failed: bool,
    /// An observer (a deadlock detector's loop): a daemon whose sleeps never count as a way
    /// out of a deadlock.
    pub(crate) observer: bool,
    /// What only a Rust task needs (made when it first parks or stops at a source line, then
    /// reused; never for a Lua goroutine). Boxed so that a Lua goroutine's record stays as small
    /// as before Rust tasks could wait on several operations: memory per parked goroutine.
    pub(crate) multi: Option<Box<Multi>>,
    /// Its current wait is one of several operations (`multi` holds them).
    pub(crate) several: bool,
    /// Whether its current wait, made during this poll, may be joined by another operation.
    pub(crate) joinable: bool,
}

/// The part of a task's record only a Rust task uses: its current wait's operations (see
/// `Parked`), its held results and its source line.
#[derive(Debug, Default)]
pub(crate) struct Multi {
    /// The first operation of its current wait when it is a Rust future's `Parked`.
    pub(crate) first: Option<Rc<Parked>>,
    /// Its last sleep's timer (`TimerKey::parts`), for a wait that another operation joins.
    pub(crate) sleep_timer: (u64, u32),
    /// Futures of this task holding a completed result they have not returned yet (an operation
    /// that completed, then gave way at its scheduling point): no other operation of the task
    /// may start until it is returned, or one of the two results would be lost to a `select!`.
    pub(crate) unclaimed: u32,
    /// The Rust source line where it last stopped (set by the body's layer when it parks). Kept as
    /// the caller's `Location`, formatted only when a report needs it: formatting it at every park
    /// cost ~15% of a Rust channel round trip.
    pub(crate) location: Option<&'static std::panic::Location<'static>>,
    /// The operations of a wait of several: the first to complete loses the rest.
    pub(crate) group: Vec<Rc<Parked>>,
    /// The sleep timers of a wait of several, cancelled when something else ends it.
    pub(crate) sleeps: Vec<super::TimerKey>,
}

impl Task {
    /// The task's wait record, made on first use.
    pub(crate) fn multi(&mut self) -> &mut Multi {
        self.multi.get_or_insert_with(Box::default)
    }

    /// A second operation joins its wait (made in this poll by a Rust future): the first one
    /// (a sleep, or a `Parked`) moves into the record of several.
    pub(crate) fn join(&mut self) {
        if self.several {
            return;
        }
        self.several = true;
        let is_sleep = self.wait.as_ref().is_some_and(|w| w.op == WaitOp::Sleep);
        let m = self.multi();
        let first = m.first.take();
        let sleep = super::TimerKey::from_parts(m.sleep_timer);
        if is_sleep {
            m.sleeps.push(sleep);
        } else {
            m.group.extend(first);
        }
    }

    /// Where it last stopped as `file:line`, for reports.
    pub(crate) fn location_text(&self) -> Option<String> {
        let l = self.multi.as_ref()?.location?;
        Some(format!("{}:{}", l.file(), l.line()))
    }

    /// Futures of this task holding a result they have not returned (`Multi::unclaimed`).
    #[inline]
    pub(crate) fn unclaimed(&self) -> u32 {
        self.multi.as_ref().map_or(0, |m| m.unclaimed)
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// `g3` or `g3(worker)`.
pub(crate) fn label(id: TaskId, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{id}({n})"),
        None => id.to_string(),
    }
}
