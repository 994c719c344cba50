//! The deadlock detector (seed 6.3): a check, run every `check_interval`, that reports the
//! goroutines blocked for at least `timeout` (and the wait-for cycle if they are on one), once per
//! distinct situation. It only reads the scheduler's state, so it works on any backend; the
//! periodic loop that calls `check` is the caller's (a daemon goroutine in Lua).
//!
//! Laws: a situation is reported once (the same set of goroutines blocked on the same resources
//! since the same instants is not reported twice); every goroutine reported has been blocked for
//! at least `timeout`; a goroutine blocked for less is never reported.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::runtime::{BlockedInfo, Nanos, Runtime};
use crate::sync::CHANNEL_KIND;

/// What the detector found.
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
///     let (a, b) = (s.channel::<u8>(0), s.channel::<u8>(0));
///     s.spawn_daemon("a", async move { a.recv().await });
///     s.spawn_daemon("b", async move { b.recv().await });
///     let d = DeadlockDetector::new(s.runtime(), Duration::from_millis(5));
///     s.sleep(Duration::from_millis(5)).await;
///     let info = d.check().expect("both are stuck");
///     assert_eq!((info.stuck_count, info.blocked_channels), (2, 2));
///     assert!(d.check().is_none()); // the same situation is reported once
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlockInfo {
    /// The run's time of the check.
    pub time: std::time::Duration,
    /// How many goroutines are stuck (blocked for at least `timeout`).
    pub stuck_count: usize,
    /// How many distinct channels they wait on.
    pub blocked_channels: usize,
    /// The stuck goroutines, in id order.
    pub stuck: Vec<BlockedInfo>,
    /// The wait-for cycle among them, one line per goroutine, if there is one.
    pub cycle: Option<Vec<String>>,
}

/// A situation: each stuck goroutine with the resources it waits on and since when.
type Situation = Vec<(u64, Vec<u64>, std::time::Duration)>;

/// A deadlock detector. It remembers the last situation it reported.
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
///     let ch = s.channel::<u8>(0);
///     let rx = ch.clone();
///     s.spawn_daemon("waiter", async move { rx.recv().await });
///     let d = DeadlockDetector::new(s.runtime(), Duration::from_millis(10));
///     s.sleep(Duration::from_millis(5)).await;
///     assert!(d.check().is_none()); // not blocked long enough yet
///     s.sleep(Duration::from_millis(5)).await;
///     assert_eq!(d.check().expect("stuck").stuck_count, 1);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub struct DeadlockDetector {
    rt: Runtime,
    timeout: Nanos,
    last: RefCell<Option<Situation>>,
}

impl DeadlockInfo {
    /// The stuck goroutines under the name `patterns.md` gives them (Lua's `info.goroutines`;
    /// `stuck` is the older name).
    pub fn goroutines(&self) -> &[BlockedInfo] {
        &self.stuck
    }
}

impl DeadlockDetector {
    /// A detector that calls goroutines blocked for at least `timeout` stuck.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gosim::patterns::DeadlockDetector;
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let ch = s.channel::<u64>(0);
    ///     s.spawn_daemon("waiter", async move { ch.recv().await });
    ///     let d = DeadlockDetector::new(s.runtime(), Duration::from_millis(10));
    ///     s.sleep(Duration::from_millis(20)).await;
    ///     let info = d.check().expect("the waiter is stuck");
    ///     assert_eq!(info.time, Duration::from_millis(20));
    ///     assert_eq!(info.goroutines()[0].name.as_deref(), Some("waiter"));
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    pub fn new(rt: &Runtime, timeout: std::time::Duration) -> DeadlockDetector {
        DeadlockDetector::new_nanos(rt, crate::sync::to_nanos(timeout))
    }

    /// `new` in nanoseconds (the Lua binding's unit).
    pub(crate) fn new_nanos(rt: &Runtime, timeout: Nanos) -> DeadlockDetector {
        DeadlockDetector {
            rt: rt.clone(),
            timeout,
            last: RefCell::new(None),
        }
    }

    /// What a deadlock that is about to fail the run looks like (for `on_deadlock` before the
    /// failure): every blocked goroutine, whatever `timeout` says, and the failure's wait-for
    /// cycle if it is one. The situation counts as reported.
    pub fn report(&self, failure: &crate::runtime::Failure) -> DeadlockInfo {
        let stuck = self.rt.blocked_for(0);
        *self.last.borrow_mut() = Some(
            stuck
                .iter()
                .map(|b| (b.id.0, b.resource_ids.clone(), b.since))
                .collect(),
        );
        DeadlockInfo {
            time: crate::runtime::duration(self.rt.now()),
            stuck_count: stuck.len(),
            blocked_channels: count_channels(&stuck),
            stuck,
            cycle: (!failure.cycle.is_empty()).then(|| failure.cycle.clone()),
        }
    }

    /// Checks now: `Some(info)` when goroutines are stuck and this situation was not reported yet.
    pub fn check(&self) -> Option<DeadlockInfo> {
        let stuck = self.rt.blocked_for(self.timeout);
        if stuck.is_empty() {
            *self.last.borrow_mut() = None;
            return None;
        }
        let signature: Situation = stuck
            .iter()
            .map(|b| (b.id.0, b.resource_ids.clone(), b.since))
            .collect();
        if self.last.borrow().as_ref() == Some(&signature) {
            return None;
        }
        *self.last.borrow_mut() = Some(signature);
        let cycle = stuck.iter().find_map(|b| self.rt.wait_cycle(b.id));
        Some(DeadlockInfo {
            time: crate::runtime::duration(self.rt.now()),
            stuck_count: stuck.len(),
            blocked_channels: count_channels(&stuck),
            stuck,
            cycle,
        })
    }
}

/// How many distinct channels the goroutines wait on.
fn count_channels(stuck: &[BlockedInfo]) -> usize {
    let channels: BTreeSet<u64> = stuck
        .iter()
        .flat_map(|b| b.kinds.iter().zip(&b.resource_ids))
        .filter(|(k, _)| **k == CHANNEL_KIND)
        .map(|(_, id)| *id)
        .collect();
    channels.len()
}
