//! Resources are the things goroutines wait on: channels, mutexes, wait groups, timers... Each one
//! has an identity that is stable for the run (a per-run counter, never an address), a kind, an
//! optional name and the source line that created it, so traces and deadlock reports can name it.
//! Locks also record who holds them, so a report can say "held by g2(worker)".

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::task::TaskId;

/// A shared handle to a resource's identity and bookkeeping.
pub type ResourceRef = Rc<Resource>;

/// Identity and holders of one waitable thing.
#[derive(Debug)]
pub struct Resource {
    id: u64,
    kind: &'static str,
    name: RefCell<Option<Rc<str>>>,
    created_at: Option<Rc<str>>,
    holders: RefCell<Vec<TaskId>>,
}

impl Resource {
    pub(crate) fn new(id: u64, kind: &'static str, created_at: Option<Rc<str>>) -> Resource {
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
        self.kind
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
        write!(f, "{}#{}", self.kind, self.id)?;
        if let Some(name) = self.name.borrow().as_deref() {
            write!(f, "{name:?}")?;
        }
        Ok(())
    }
}
