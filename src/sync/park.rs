//! A parked operation: one blocked goroutine, possibly registered in several wait queues at once
//! (a `select`). The first queue to complete it wins; the others see it is no longer live and
//! skip it, and the owner removes its other registrations when it wakes.

use std::cell::Cell;
use std::rc::Rc;

use crate::runtime::{Runtime, TaskId};

/// One blocked operation of one goroutine.
#[derive(Debug)]
pub struct Parked {
    task: TaskId,
    fired: Cell<Option<usize>>,
}

impl Parked {
    /// A new parked operation of `task`.
    pub fn new(task: TaskId) -> Rc<Parked> {
        Rc::new(Parked {
            task,
            fired: Cell::new(None),
        })
    }

    /// The goroutine it belongs to.
    pub fn task(&self) -> TaskId {
        self.task
    }

    /// Whether no queue has completed it yet.
    pub fn is_live(&self) -> bool {
        self.fired.get().is_none()
    }

    /// The case that completed it (0 for single operations).
    pub fn fired_case(&self) -> Option<usize> {
        self.fired.get()
    }

    /// Completes it through `case` and wakes its goroutine. Completing twice is a bug.
    pub fn fire(&self, rt: &Runtime, case: usize) {
        assert!(self.is_live(), "a parked operation completes once");
        self.fired.set(Some(case));
        rt.wake(self.task);
    }
}
