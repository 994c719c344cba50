//! How a run ends, and the reports that explain a failure.

use std::fmt;

use std::time::Duration;

use super::backend::format_duration;
use super::task::{TaskId, label};

/// The three ways a run ends.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let report = sim.run(async { panic!("broken invariant") });
/// match &report.outcome {
///     Outcome::Fail(f) => assert_eq!(f.kind, FailureKind::Panic),
///     other => panic!("expected a failure, got {other}"),
/// }
/// assert_eq!(report.outcome.word(), "fail");
/// ```
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Main returned and every non-daemon goroutine finished.
    Pass,
    /// A bug was found.
    Fail(Failure),
    /// The run hit one of its limits before it could end.
    Limit(LimitHit),
}

impl Outcome {
    /// `pass`, `fail` or `limit`.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Limit(_) => "limit",
        }
    }

    /// Whether the run passed.
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
}

/// The kinds of failure.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(0);
///     ch.recv().await; // nobody will ever send
/// });
/// let Outcome::Fail(f) = &report.outcome else { panic!("a deadlock fails the run") };
/// assert_eq!(f.kind, FailureKind::Deadlock);
/// assert_eq!(f.kind.word(), "deadlock");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// An error raised in a goroutine and not caught.
    Error,
    /// `assert`/`sim.assert_always` failed.
    Assertion,
    /// No goroutine can run and no timer can ever wake one, while goroutines are blocked.
    Deadlock,
    /// A cycle in the wait-for graph: goroutines wait on locks held by each other (found as soon
    /// as the cycle closes, even while other goroutines keep running).
    Cycle,
    /// Goroutines still alive when the run ended.
    Leak,
    /// A Rust panic: in a Rust task, or a bug in gosim itself.
    Panic,
}

impl FailureKind {
    /// The word used in reports and summaries.
    pub fn word(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Assertion => "assertion",
            FailureKind::Deadlock => "deadlock",
            FailureKind::Cycle => "deadlock (cycle)",
            FailureKind::Leak => "leak",
            FailureKind::Panic => "panic",
        }
    }
}

/// A failed run.
///
/// ```
/// use std::time::Duration;
/// use gosim::runtime::{FailureKind, Outcome};
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     s.sleep(Duration::from_millis(3)).await;
///     s.channel::<i64>(0).recv().await; // nobody ever sends
/// });
/// let Outcome::Fail(f) = &report.outcome else { panic!("{}", report.outcome) };
/// assert_eq!(f.kind, FailureKind::Deadlock);
/// assert_eq!(f.time, Duration::from_millis(3));
/// assert!(f.to_string().starts_with("FAIL (deadlock) at 3ms"));
/// ```
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// The goroutine that raised the error or failed the assertion, if one did.
    pub task: Option<(TaskId, Option<String>)>,
    /// The message (for errors, with the Lua traceback).
    pub message: String,
    /// Where it happened (`file.lua:12`), used to group failures across seeds.
    pub location: Option<String>,
    /// The goroutines stuck at the end (deadlock and leak), or in the cycle.
    pub stuck: Vec<StuckTask>,
    /// For a cycle: one line per goroutine, in wait order (`g2 waits mutex#1 (held by g3)`).
    pub cycle: Vec<String>,
    /// Partial deadlocks noticed earlier in the run (goroutines stuck behind exited holders).
    pub notes: Vec<String>,
    /// The run's time when it failed.
    pub time: Duration,
}

impl Failure {
    /// A failure raised by one goroutine (an error, an assertion, a panic): no goroutine list.
    pub fn in_task(
        kind: FailureKind,
        task: Option<(TaskId, Option<String>)>,
        message: String,
        location: Option<String>,
        time: Duration,
    ) -> Failure {
        Failure {
            kind,
            task,
            message,
            location,
            stuck: Vec::new(),
            cycle: Vec::new(),
            notes: Vec::new(),
            time,
        }
    }

    /// A failure found by the scheduler in the state of several goroutines (a deadlock, a
    /// cycle, a leak): no single goroutine raised it, and the report lists the goroutines.
    /// A cycle's lines are set on the result (`cycle`).
    pub fn stuck(
        kind: FailureKind,
        message: String,
        location: Option<String>,
        stuck: Vec<StuckTask>,
        notes: Vec<String>,
        time: Duration,
    ) -> Failure {
        Failure {
            kind,
            task: None,
            message,
            location,
            stuck,
            cycle: Vec::new(),
            notes,
            time,
        }
    }
}

/// One goroutine in a deadlock or leak report.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(0);
///     let rx = ch.clone();
///     s.spawn("waiter", async move { rx.recv().await });
///     ch.recv().await;
/// });
/// let Outcome::Fail(f) = &report.outcome else { panic!("a deadlock") };
/// let waiter = f.stuck.iter().find(|t| t.name.as_deref() == Some("waiter")).expect("listed");
/// assert_eq!(waiter.op, Some("receive"));
/// assert!(!waiter.daemon);
/// ```
#[derive(Debug, Clone)]
pub struct StuckTask {
    /// Its id.
    pub id: TaskId,
    /// Its name.
    pub name: Option<String>,
    /// `blocked`, `sleeping` or `running`.
    pub state: &'static str,
    /// The operation it waits in (`receive`, `lock`, ...), when blocked.
    pub op: Option<&'static str>,
    /// The source line where it stopped.
    pub location: Option<String>,
    /// What it waits on, one line each: `channel#1 (created at x.lua:3)`, with holders.
    pub waits_on: Vec<String>,
    /// Whether it is a daemon (never a leak; listed in deadlocks for context).
    pub daemon: bool,
}

/// The limits a run can hit.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::new(Config { max_steps: 100, ..Config::default() });
/// let s = sim.clone();
/// let report = sim.run(async move {
///     loop {
///         s.yield_now().await; // never ends
///     }
/// });
/// let Outcome::Limit(hit) = &report.outcome else { panic!("a limit") };
/// assert_eq!(hit.kind, LimitKind::Steps);
/// assert_eq!(hit.kind.flag(), "--max-steps");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LimitKind {
    /// Too many scheduling steps.
    Steps,
    /// Virtual time passed the horizon.
    Time,
    /// Too many goroutines alive at once.
    Goroutines,
    /// The Lua heap grew past its limit.
    Memory,
    /// A goroutine ran too many instructions without a scheduling point.
    Instructions,
}

impl LimitKind {
    /// The flag that raises this limit.
    pub fn flag(self) -> &'static str {
        match self {
            LimitKind::Steps => "--max-steps",
            LimitKind::Time => "--max-time",
            LimitKind::Goroutines => "--max-goroutines",
            LimitKind::Memory => "--max-memory",
            LimitKind::Instructions => "--max-instructions",
        }
    }

    /// The word used in reports and summaries.
    pub fn word(self) -> &'static str {
        match self {
            LimitKind::Steps => "step limit",
            LimitKind::Time => "time horizon",
            LimitKind::Goroutines => "goroutine limit",
            LimitKind::Memory => "memory limit",
            LimitKind::Instructions => "instruction limit",
        }
    }
}

/// A limit that ended a run.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use std::time::Duration;
///
/// let sim = Sim::new(Config { max_time: Duration::from_secs(10), ..Config::default() });
/// let s = sim.clone();
/// let report = sim.run(async move { s.sleep(Duration::from_secs(60)).await });
/// let Outcome::Limit(hit) = &report.outcome else { panic!("a limit") };
/// assert_eq!(hit.kind, LimitKind::Time);
/// assert!(hit.time <= Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct LimitHit {
    /// Which limit.
    pub kind: LimitKind,
    /// The goroutine that was running, if one was.
    pub task: Option<(TaskId, Option<String>)>,
    /// Details (the limit's value, the line).
    pub message: String,
    /// Where it happened, when known.
    pub location: Option<String>,
    /// The run's time.
    pub time: Duration,
}

impl fmt::Display for StuckTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", label(self.id, self.name.as_deref()))?;
        if self.daemon {
            write!(f, " [daemon]")?;
        }
        write!(f, " {}", self.state)?;
        if let Some(op) = self.op {
            write!(f, " in {op}")?;
        }
        if let Some(loc) = &self.location {
            write!(f, " at {loc}")?;
        }
        for w in &self.waits_on {
            write!(f, "\n      waits on {w}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FAIL ({}) at {}",
            self.kind.word(),
            format_duration(self.time)
        )?;
        if let Some((id, name)) = &self.task {
            write!(f, " in {}", label(*id, name.as_deref()))?;
        }
        write!(f, ": {}", self.message)?;
        if !self.cycle.is_empty() {
            write!(f, "\n  cycle:")?;
            let n = self.cycle.len();
            for (i, step) in self.cycle.iter().enumerate() {
                let arrow = if i + 1 < n {
                    " ->"
                } else {
                    " -> (back to the first)"
                };
                write!(f, "\n    {step}{arrow}")?;
            }
        }
        if !self.stuck.is_empty() {
            write!(f, "\n  goroutines:")?;
            for s in &self.stuck {
                write!(f, "\n    {s}")?;
            }
        }
        for n in &self.notes {
            write!(f, "\n  note: {n}")?;
        }
        Ok(())
    }
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LIMIT ({}) at {}",
            self.kind.word(),
            format_duration(self.time)
        )?;
        if let Some((id, name)) = &self.task {
            write!(f, " in {}", label(*id, name.as_deref()))?;
        }
        // A message that names the flag itself says how it relates (a cap no flag raises).
        if self.message.contains(self.kind.flag()) {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {} (raise it with {})", self.message, self.kind.flag())
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => write!(f, "PASS"),
            Outcome::Fail(fl) => fl.fmt(f),
            Outcome::Limit(l) => l.fmt(f),
        }
    }
}

impl Outcome {
    /// The report as JSON (for tools): the same facts as the text form.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let task = |t: &Option<(TaskId, Option<String>)>| {
            t.as_ref()
                .map(|(id, name)| json!({ "id": id.0, "name": name }))
        };
        match self {
            Outcome::Pass => json!({ "outcome": "pass" }),
            Outcome::Fail(f) => json!({
                "outcome": "fail",
                "kind": f.kind.word(),
                "time": format_duration(f.time),
                "task": task(&f.task),
                "message": f.message,
                "location": f.location,
                "cycle": f.cycle,
                "goroutines": f.stuck.iter().map(|s| json!({
                    "id": s.id.0,
                    "name": s.name,
                    "state": s.state,
                    "op": s.op,
                    "location": s.location,
                    "waits_on": s.waits_on,
                    "daemon": s.daemon,
                })).collect::<Vec<_>>(),
                "notes": f.notes,
            }),
            Outcome::Limit(l) => json!({
                "outcome": "limit",
                "kind": l.kind.word(),
                "flag": l.kind.flag(),
                "time": format_duration(l.time),
                "task": task(&l.task),
                "message": l.message,
                "location": l.location,
            }),
        }
    }
}
