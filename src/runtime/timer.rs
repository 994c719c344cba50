//! Pending timers, ordered by deadline and then by creation: timers due at the same instant fire in
//! the order they were created, whatever the backend.

use std::collections::BTreeMap;

use super::Runtime;
use super::backend::Nanos;
use super::task::TaskId;

/// Identifies a pending timer: its deadline and creation number. Cancelling uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey {
    /// When it fires.
    pub at: Nanos,
    seq: u64,
}

/// Code run when a timer fires (a ticker delivering a tick, a context expiring, ...).
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

/// The timer queue.
#[derive(Default)]
pub(crate) struct Timers {
    queue: BTreeMap<TimerKey, TimerAction>,
    next_seq: u64,
    /// How many `Wake` timers are pending: each one can make a goroutine runnable, so while any
    /// exists the deadlock check need not ask the callbacks.
    n_wake: usize,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("pending", &self.queue.len())
            .finish()
    }
}

impl Timers {
    pub(crate) fn add(&mut self, at: Nanos, action: TimerAction) -> TimerKey {
        let key = TimerKey {
            at,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        if matches!(action, TimerAction::Wake(_)) {
            self.n_wake += 1;
        }
        self.queue.insert(key, action);
        key
    }

    pub(crate) fn cancel(&mut self, key: TimerKey) -> bool {
        match self.queue.remove(&key) {
            Some(action) => {
                if matches!(action, TimerAction::Wake(_)) {
                    self.n_wake -= 1;
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        self.queue.contains_key(&key)
    }

    pub(crate) fn next_deadline(&self) -> Option<Nanos> {
        self.queue.first_key_value().map(|(k, _)| k.at)
    }

    /// Removes and returns the earliest timer if it is due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<TimerAction> {
        let entry = self.queue.first_entry()?;
        if entry.key().at > now {
            return None;
        }
        let action = entry.remove();
        if matches!(action, TimerAction::Wake(_)) {
            self.n_wake -= 1;
        }
        Some(action)
    }

    /// Whether some pending timer could make a goroutine runnable.
    pub(crate) fn any_may_wake(&self) -> bool {
        self.n_wake > 0
            || self.queue.values().any(|a| match a {
                TimerAction::Wake(_) => true,
                TimerAction::WakeObserver(_) => false,
                TimerAction::Call(cb) => cb.may_wake(),
            })
    }
}
