//! The goroutine profiler (seed 6.1): counts goroutines spawned after `start()` and how they end.
//!
//! Laws: `total_created == active + completed + failed`; `active <= max_active`; `avg_lifetime`
//! is the mean virtual lifetime of the goroutines that ended. Observing never changes the run's
//! schedule (the profiler is told about spawns and exits; it makes no scheduling point).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::runtime::{NANOS_PER_MS, Nanos, Runtime, TaskId, TaskObserver};

/// What the profiler saw since `start()`.
///
/// # Examples
///
/// ```
/// use gosim::patterns::Profiler;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let prof = Profiler::new(s.runtime());
///     prof.start();
///     let t = s.clone();
///     s.spawn("w", async move { t.sleep(Duration::from_millis(10)).await })
///         .await
///         .expect("no panic");
///     let st = prof.stats();
///     assert_eq!((st.total_created, st.completed, st.active), (1, 1, 0));
///     assert_eq!(st.avg_lifetime_ms, 10.0);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProfileStats {
    /// Goroutines spawned since start that are still alive.
    pub active: u64,
    /// The most of them alive at once.
    pub max_active: u64,
    /// Goroutines spawned since start.
    pub total_created: u64,
    /// Of those, how many returned.
    pub completed: u64,
    /// Of those, how many ended with an error (an `async` that raised counts).
    pub failed: u64,
    /// Mean lifetime of the ones that ended, in virtual milliseconds (0 when none has).
    pub avg_lifetime_ms: f64,
}

#[derive(Default)]
struct Counters {
    running: bool,
    tracked: BTreeMap<TaskId, Nanos>,
    total_created: u64,
    completed: u64,
    failed: u64,
    max_active: u64,
    lifetime_sum: Nanos,
}

struct Watch {
    counters: RefCell<Counters>,
}

impl TaskObserver for Watch {
    fn spawned(&self, id: TaskId, at: Nanos) {
        let mut c = self.counters.borrow_mut();
        if !c.running {
            return;
        }
        c.tracked.insert(id, at);
        c.total_created += 1;
        c.max_active = c.max_active.max(c.tracked.len() as u64);
    }

    fn finished(&self, id: TaskId, _at: Nanos, failed: bool, lifetime: Nanos) {
        let mut c = self.counters.borrow_mut();
        if c.tracked.remove(&id).is_none() {
            return;
        }
        if failed {
            c.failed += 1;
        } else {
            c.completed += 1;
        }
        c.lifetime_sum = c.lifetime_sum.saturating_add(lifetime);
    }
}

/// A goroutine profiler. Clones share the same counters.
///
/// # Examples
///
/// ```
/// use gosim::patterns::Profiler;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let prof = Profiler::new(s.runtime());
///     s.spawn("before", async {}).await.expect("no panic"); // not counted: not started
///     prof.start();
///     let hs: Vec<_> = (0..3).map(|_| s.spawn("w", async {})).collect();
///     assert_eq!(prof.stats().max_active, 3);
///     for h in hs {
///         h.await.expect("no panic");
///     }
///     prof.stop();
///     assert_eq!(prof.stats().total_created, 3);
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Profiler {
    rt: Runtime,
    watch: Rc<Watch>,
    registered: Rc<RefCell<bool>>,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Profiler {
    /// A profiler that counts nothing until `start`.
    pub fn new(rt: &Runtime) -> Profiler {
        let watch = Rc::new(Watch {
            counters: RefCell::new(Counters::default()),
        });
        Profiler {
            rt: rt.clone(),
            watch,
            registered: Rc::new(RefCell::new(false)),
        }
    }

    /// Starts (or restarts, from zero) counting goroutines spawned from now on.
    pub fn start(&self) {
        *self.watch.counters.borrow_mut() = Counters {
            running: true,
            ..Counters::default()
        };
        if !*self.registered.borrow() {
            let weak: std::rc::Weak<dyn TaskObserver> =
                Rc::downgrade(&(self.watch.clone() as Rc<dyn TaskObserver>));
            self.rt.observe(weak);
            *self.registered.borrow_mut() = true;
        }
    }

    /// Stops counting new goroutines (those already tracked are still followed to their end).
    pub fn stop(&self) {
        self.watch.counters.borrow_mut().running = false;
    }

    /// The counts so far.
    pub fn stats(&self) -> ProfileStats {
        let c = self.watch.counters.borrow();
        let ended = c.completed + c.failed;
        let avg_lifetime_ms = if ended == 0 {
            0.0
        } else {
            c.lifetime_sum as f64 / ended as f64 / NANOS_PER_MS as f64
        };
        ProfileStats {
            active: c.tracked.len() as u64,
            max_active: c.max_active,
            total_created: c.total_created,
            completed: c.completed,
            failed: c.failed,
            avg_lifetime_ms,
        }
    }
}
