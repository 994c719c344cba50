//! Resources are the things goroutines wait on: channels, mutexes, wait groups, timers... Each one
//! has an identity that is stable for the run (a per-run counter, never an address), a kind, an
//! optional name and the source line that created it, so traces and deadlock reports can name it.
//! Locks also record who holds them, so a report can say "held by g2(worker)".
//!
//! Each primitive declares its `ResourceKind` (a `const` in its own file): the name, and whether
//! the goroutines that can release a waiter are exactly its holders. The deadlock check reads
//! that flag; the core never matches on a kind's name.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::task::TaskId;

/// A shared handle to a resource's identity and bookkeeping.
pub type ResourceRef = Rc<Resource>;

/// What kind of resource it is, as its primitive declares it.
///
/// # Examples
///
/// ```
/// use gosim::runtime::ResourceKind;
///
/// const GATE: ResourceKind = ResourceKind::released_by_holders("gate");
/// assert!(GATE.releasers_are_holders); // waits on it make wait-for edges
/// assert!(!ResourceKind::released_by_anyone("signal").releasers_are_holders);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceKind {
    /// The name in traces and reports: `"channel"`, `"mutex"`, ...
    pub name: &'static str,
    /// Whether only its recorded holders can end a wait on it. Only such waits make wait-for
    /// edges: for any other resource the harness cannot know who might release a waiter, and an
    /// edge there could report a cycle that is not one.
    pub releasers_are_holders: bool,
}

impl ResourceKind {
    /// A resource that only its holders release (a mutex, an rwmutex, a semaphore, a `once`
    /// being run): waits on it make wait-for edges to the holders.
    pub const fn released_by_holders(name: &'static str) -> ResourceKind {
        ResourceKind {
            name,
            releasers_are_holders: true,
        }
    }

    /// A resource that any goroutine reaching it may release (a channel, a wait group, a cond,
    /// a timer): waits on it never make wait-for edges.
    pub const fn released_by_anyone(name: &'static str) -> ResourceKind {
        ResourceKind {
            name,
            releasers_are_holders: false,
        }
    }
}

/// Identity and holders of one waitable thing.
///
/// # Examples
///
/// ```
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(0);
///     let res = ch.resource(); // the identity every trace line and report names
///     res.set_name("jobs");
///     assert_eq!((res.kind(), res.name().as_deref()), ("channel", Some("jobs")));
///     assert!(res.created_at().is_some_and(|at| at.contains(".rs:")));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub struct Resource {
    id: u64,
    kind: ResourceKind,
    name: RefCell<Option<Rc<str>>>,
    created_at: Option<Rc<str>>,
    holders: RefCell<Vec<TaskId>>,
}

impl Resource {
    pub(crate) fn new(id: u64, kind: ResourceKind, created_at: Option<Rc<str>>) -> Resource {
        Resource {
            id,
            kind,
            name: RefCell::new(None),
            created_at,
            holders: RefCell::new(Vec::new()),
        }
    }

    /// The per-run number of this resource (1, 2, ... in creation order).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What it is: `"channel"`, `"mutex"`, ...
    pub fn kind(&self) -> &'static str {
        self.kind.name
    }

    /// Its kind as its primitive declared it (name and releasers).
    pub fn resource_kind(&self) -> ResourceKind {
        self.kind
    }

    /// Whether only its holders can release a goroutine waiting on it (see `ResourceKind`).
    pub fn releasers_are_holders(&self) -> bool {
        self.kind.releasers_are_holders
    }

    /// The name given by the user or by the pattern that created it.
    pub fn name(&self) -> Option<Rc<str>> {
        self.name.borrow().clone()
    }

    /// Names (or renames) the resource.
    pub fn set_name(&self, name: &str) {
        *self.name.borrow_mut() = Some(Rc::from(name));
    }

    /// The source location that created it (`file.lua:12`), when known.
    pub fn created_at(&self) -> Option<&str> {
        self.created_at.as_deref()
    }

    /// Records that `task` now holds the resource (a lock, a permit).
    pub fn add_holder(&self, task: TaskId) {
        self.holders.borrow_mut().push(task);
    }

    /// Records that `task` gave the resource back. When another goroutine releases it (Go allows
    /// unlocking a mutex from any goroutine), the oldest holder is removed instead.
    pub fn remove_holder(&self, task: TaskId) {
        let mut holders = self.holders.borrow_mut();
        if let Some(i) = holders.iter().position(|&t| t == task) {
            holders.remove(i);
        } else if !holders.is_empty() {
            holders.remove(0);
        }
    }

    /// The goroutines that hold it now, in acquisition order.
    pub fn holders(&self) -> Vec<TaskId> {
        self.holders.borrow().clone()
    }
}

impl fmt::Display for Resource {
    /// `channel#3` or `mutex#2"accounts"`: short enough for one trace line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.kind.name, self.id)?;
        if let Some(name) = self.name.borrow().as_deref() {
            write!(f, "{name:?}")?;
        }
        Ok(())
    }
}
