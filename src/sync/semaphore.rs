//! A counting semaphore with FIFO hand-over: a release gives the permit straight to the oldest
//! waiter, so nobody can overtake a waiting goroutine (the bulkhead pattern relies on this).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use super::Misuse;
use super::park::Parked;
use crate::runtime::{ResourceRef, Runtime, Subject, Wait};

struct State {
    capacity: usize,
    available: usize,
    waiters: VecDeque<Rc<Parked>>,
}

struct Shared {
    rt: Runtime,
    res: ResourceRef,
    state: RefCell<State>,
}

/// A semaphore of `capacity` permits. Clones are the same semaphore.
#[derive(Clone)]
pub struct Semaphore {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Semaphore({})", self.shared.res)
    }
}

impl Semaphore {
    /// A semaphore with all `capacity` permits available (`capacity > 0`).
    pub fn new(rt: &Runtime, capacity: usize, created_at: Option<Rc<str>>) -> Semaphore {
        assert!(capacity > 0, "a semaphore has at least one permit");
        let res = rt.new_resource("semaphore", created_at);
        if rt.tracing() {
            rt.emit(
                "new",
                Subject::Resource(res.clone()),
                Some(format!("n={capacity}")),
            );
        }
        let state = State {
            capacity,
            available: capacity,
            waiters: VecDeque::new(),
        };
        Semaphore {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                state: RefCell::new(state),
            }),
        }
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    fn trace(&self, verb: &'static str) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            rt.emit(verb, Subject::Resource(self.shared.res.clone()), None);
        }
    }

    /// Takes a permit if one is free and nobody is queued.
    pub fn try_acquire(&self) -> bool {
        let mut st = self.shared.state.borrow_mut();
        if st.available == 0 || !st.waiters.is_empty() {
            return false;
        }
        st.available -= 1;
        self.shared.res.add_holder(self.shared.rt.current());
        drop(st);
        self.trace("acquire");
        true
    }

    /// Takes a permit now (true) or parks until one is handed over (false).
    pub fn acquire_or_park(&self) -> bool {
        if self.try_acquire() {
            return true;
        }
        let parked = Parked::new(self.shared.rt.current());
        self.shared.state.borrow_mut().waiters.push_back(parked);
        self.shared.rt.block(Wait::on("acquire", &self.shared.res));
        false
    }

    /// Gives a permit back (to the oldest waiter if any). Releasing more than was acquired is misuse.
    pub fn release(&self) -> Result<(), Misuse> {
        let mut st = self.shared.state.borrow_mut();
        let in_use = st.capacity - st.available;
        if in_use == 0 {
            return Err(Misuse("release without acquire".to_string()));
        }
        self.shared.res.remove_holder(self.shared.rt.current());
        let next = st.waiters.pop_front();
        match &next {
            Some(p) => self.shared.res.add_holder(p.task()),
            None => st.available += 1,
        }
        drop(st);
        self.trace("release");
        if let Some(p) = next {
            p.fire(&self.shared.rt, 0);
        }
        Ok(())
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.shared.state.borrow().available
    }

    /// Permits in all.
    pub fn capacity(&self) -> usize {
        self.shared.state.borrow().capacity
    }
}
