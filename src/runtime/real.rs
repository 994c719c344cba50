//! The wall-clock backend: the same scheduler and primitives, driven by real time, for running
//! scenarios in production. The only module of the crate that reads the system clock (the CLI's
//! throughput figures aside). Production runs also wait for real when nothing can run (the
//! condition variable of `Wakeups::wait` in external.rs, tokio's sleep in sim/host.rs); a
//! simulated run never reaches those waits, and nothing in it depends on the wall clock.

use std::time::{Duration, Instant};

use super::backend::{Backend, Nanos};

/// Real time since the run started; reaching a deadline means sleeping until it.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Backend, RealClock};
///
/// let clock = RealClock::new(); // production mode: the wall clock, from 0 at creation
/// assert!(!clock.is_simulated());
/// assert!(clock.now() < 60_000_000_000);
/// ```
#[derive(Debug)]
pub struct RealClock {
    start: Instant,
}

impl Default for RealClock {
    fn default() -> RealClock {
        RealClock::new()
    }
}

impl RealClock {
    /// A clock whose zero is now.
    pub fn new() -> RealClock {
        RealClock {
            start: Instant::now(),
        }
    }
}

impl Backend for RealClock {
    fn now(&self) -> Nanos {
        self.start.elapsed().as_nanos().min(u64::MAX as u128) as Nanos
    }

    fn advance_to(&mut self, deadline: Nanos) {
        let now = self.now();
        if deadline > now {
            std::thread::sleep(Duration::from_nanos(deadline - now));
        }
    }

    fn is_simulated(&self) -> bool {
        false
    }
}
