//! Pending timers, ordered by deadline and then by creation: timers due at the same instant fire in
//! the order they were created, whatever the backend.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Runtime;
use super::backend::Nanos;
use super::task::TaskId;

/// Identifies a pending timer: its deadline, creation number and storage slot. Cancelling uses it.
/// Ordered by deadline, then creation (the slot never decides: creation numbers are unique).
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Config, Runtime, TimerCallback};
///
/// struct Noop;
/// impl TimerCallback for Noop {
///     fn fire(self: Box<Self>, _rt: &Runtime) {}
///     fn may_wake(&self) -> bool { false }
/// }
/// let rt = Runtime::simulated(Config::default());
/// let (a, b) = (rt.add_timer(1_000, Box::new(Noop)), rt.add_timer(1_000, Box::new(Noop)));
/// assert_eq!(a.at, 1_000); // the deadline, in nanoseconds
/// assert_ne!(a, b); // same deadline, distinct timers
/// rt.shutdown();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey {
    /// When it fires.
    pub at: Nanos,
    seq: u64,
    slot: u32,
}

impl TimerKey {
    /// Its creation number and slot: enough to cancel it (a task keeps these of its sleep).
    pub(crate) fn parts(&self) -> (u64, u32) {
        (self.seq, self.slot)
    }

    /// A key that cancels the timer of these `parts` (its deadline is not needed for that).
    pub(crate) fn from_parts((seq, slot): (u64, u32)) -> TimerKey {
        TimerKey { at: 0, seq, slot }
    }

    /// Deadline and creation number as one integer: the heap's comparisons are its hot path.
    fn order(&self) -> u128 {
        (u128::from(self.at) << 64) | u128::from(self.seq)
    }
}

impl Ord for TimerKey {
    fn cmp(&self, other: &TimerKey) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

impl PartialOrd for TimerKey {
    fn partial_cmp(&self, other: &TimerKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Code run when a timer fires (a ticker delivering a tick, a context expiring, ...).
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Config, Runtime, TimerCallback};
/// use std::{cell::Cell, rc::Rc};
///
/// struct Ring(Rc<Cell<bool>>);
/// impl TimerCallback for Ring {
///     fn fire(self: Box<Self>, _rt: &Runtime) { self.0.set(true) }
///     fn may_wake(&self) -> bool { false }
/// }
/// let rt = Runtime::simulated(Config::default());
/// let rang = Rc::new(Cell::new(false));
/// let _key = rt.add_timer(5_000_000, Box::new(Ring(rang.clone()))); // at 5 ms
/// let s = gosim::sim::Sim::on(&rt);
/// let t = s.clone();
/// s.spawn("main", async move { t.sleep(std::time::Duration::from_millis(10)).await });
/// assert!(rt.run().is_pass());
/// assert!(rang.get());
/// rt.shutdown();
/// ```
pub trait TimerCallback {
    /// Fires. The runtime is not borrowed: the callback may wake, spawn or add timers.
    fn fire(self: Box<Self>, rt: &Runtime);
    /// Whether firing could make a blocked goroutine runnable (someone waits on the ticker's
    /// channel, ...). A timer that can wake nobody must not hide a deadlock.
    fn may_wake(&self) -> bool;
}

pub(crate) enum TimerAction {
    /// Wake this sleeping goroutine.
    Wake(TaskId),
    /// Wake this sleeping *observer* goroutine (a deadlock detector's loop): it only watches,
    /// so its timer does not count as something that could unblock anyone.
    WakeObserver(TaskId),
    /// Run this callback.
    Call(Box<dyn TimerCallback>),
}

/// The timer queue: a binary heap of keys (earliest deadline, then creation order, on top) over
/// a slab of actions. A cancelled timer's slot is emptied at once and its heap entry removed
/// lazily (when it reaches the top, or when stale entries outnumber live ones), which keeps both
/// adding and firing a timer at O(log n) with no allocation in the steady state. The top of
/// the heap is always a live timer.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<TimerKey>>,
    /// Live timers by slot: the creation number (to tell a reused slot from a stale key) and
    /// the action.
    slots: Vec<Option<(u64, TimerAction)>>,
    free: Vec<u32>,
    next_seq: u64,
    /// Heap entries whose timer was cancelled.
    stale: usize,
    /// How many `Wake` timers are pending: each one can make a goroutine runnable, so while any
    /// exists the deadlock check need not ask the callbacks.
    n_wake: usize,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("pending", &(self.heap.len() - self.stale))
            .finish()
    }
}

impl Timers {
    pub(crate) fn add(&mut self, at: Nanos, action: TimerAction) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        if matches!(action, TimerAction::Wake(_)) {
            self.n_wake += 1;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some((seq, action));
                slot
            }
            None => {
                self.slots.push(Some((seq, action)));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 pending timers")
            }
        };
        let key = TimerKey { at, seq, slot };
        self.heap.push(Reverse(key));
        key
    }

    /// Takes the action of a live timer out of its slot.
    fn take(&mut self, key: TimerKey) -> Option<TimerAction> {
        let entry = self.slots.get_mut(key.slot as usize)?;
        if !matches!(entry, Some((seq, _)) if *seq == key.seq) {
            return None;
        }
        let (_, action) = entry.take()?;
        self.free.push(key.slot);
        if matches!(action, TimerAction::Wake(_)) {
            self.n_wake -= 1;
        }
        Some(action)
    }

    pub(crate) fn cancel(&mut self, key: TimerKey) -> bool {
        if self.take(key).is_none() {
            return false;
        }
        self.stale += 1;
        self.clean();
        true
    }

    /// Restores the invariants after a removal: the top is live, and stale entries do not
    /// outnumber live ones (a loop of cancelled far-off timeouts must not grow the heap).
    fn clean(&mut self) {
        if self.stale > 64 && self.stale * 2 > self.heap.len() {
            let slots = &self.slots;
            self.heap.retain(
                |Reverse(k)| matches!(&slots[k.slot as usize], Some((seq, _)) if *seq == k.seq),
            );
            self.stale = 0;
        }
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.contains(*top) {
                break;
            }
            self.heap.pop();
            self.stale -= 1;
        }
    }

    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        matches!(self.slots.get(key.slot as usize), Some(Some((seq, _))) if *seq == key.seq)
    }

    pub(crate) fn next_deadline(&self) -> Option<Nanos> {
        self.heap.peek().map(|Reverse(k)| k.at)
    }

    /// Removes and returns the earliest timer if it is due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<TimerAction> {
        let Reverse(key) = *self.heap.peek()?;
        if key.at > now {
            return None;
        }
        self.heap.pop();
        let action = self.take(key).expect("the top of the heap is a live timer");
        self.clean();
        Some(action)
    }

    /// Whether some pending timer could make a goroutine runnable.
    pub(crate) fn any_may_wake(&self) -> bool {
        self.n_wake > 0
            || self.slots.iter().flatten().any(|(_, a)| match a {
                TimerAction::Wake(_) => true,
                TimerAction::WakeObserver(_) => false,
                TimerAction::Call(cb) => cb.may_wake(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wake(n: u64) -> TimerAction {
        TimerAction::Wake(TaskId(n))
    }

    fn fired(t: &mut Timers, now: Nanos) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(a) = t.pop_due(now) {
            match a {
                TimerAction::Wake(id) => out.push(id.0),
                _ => unreachable!(),
            }
        }
        out
    }

    #[test]
    fn same_instant_timers_fire_in_creation_order_and_cancelled_ones_never() {
        let mut t = Timers::default();
        let a = t.add(5, wake(1));
        t.add(3, wake(2));
        t.add(5, wake(3));
        let d = t.add(3, wake(4));
        t.add(5, wake(5));
        assert!(t.cancel(d));
        assert!(!t.cancel(d), "a timer is cancelled once");
        assert!(t.cancel(a));
        assert_eq!(t.next_deadline(), Some(3));
        assert_eq!(fired(&mut t, 4), vec![2]);
        assert_eq!(fired(&mut t, 5), vec![3, 5]);
        assert_eq!(t.next_deadline(), None);
        assert!(!t.any_may_wake());
    }

    #[test]
    fn a_reused_slot_does_not_answer_for_an_old_key() {
        let mut t = Timers::default();
        let old = t.add(10, wake(1));
        assert!(t.cancel(old));
        let new = t.add(20, wake(2));
        assert!(!t.contains(old) && t.contains(new));
        assert!(!t.cancel(old));
        assert_eq!(fired(&mut t, 20), vec![2]);
    }

    #[test]
    fn cancelled_far_timers_do_not_pile_up() {
        let mut t = Timers::default();
        t.add(1, wake(0));
        for i in 0..10_000 {
            let k = t.add(1_000_000 + i, wake(i));
            assert!(t.cancel(k));
        }
        assert!(t.heap.len() <= 200, "{} heap entries", t.heap.len());
        assert_eq!(fired(&mut t, u64::MAX), vec![0]);
    }
}
