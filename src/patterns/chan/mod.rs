//! Channel patterns (seed §1) and the messaging patterns built on them (seed §4.1): a
//! broadcaster with per-subscriber buffers, pub/sub (one broadcaster per topic), merge, a channel
//! with an overflow strategy, a priority channel, and debounce and throttle (forwarders that run
//! no user code, so Rust tasks whatever the caller's language). Each is a Rust state machine over the
//! runtime's waits and `sync::Parked`, usable from Rust tasks and Lua goroutines on one object.

mod broadcaster;
mod debounce;
mod merge;
mod overflow;
mod priority;
mod pubsub;
mod throttle;

pub use broadcaster::{BroadcastError, Broadcaster, Lagging, Subscriber};
pub use debounce::{DebounceOptions, debounce};
pub use merge::{MERGE_CAPACITY, merge};
pub use overflow::{OverflowChannel, OverflowStrategy, SendOutcome};
pub use priority::{PriorityChannel, PrioritySendError};
pub use pubsub::PubSub;
pub use throttle::{ThrottleOptions, throttle};

use std::rc::Rc;
use std::time::Duration;

use crate::runtime::{Blocking, Nanos, ResourceRef, Runtime, TimerKey, Wait};
use crate::sync::Parked;

/// A timeout as the runtime counts it (saturating: a huge `Duration` waits "forever").
pub(crate) fn nanos(d: Option<Duration>) -> Option<Nanos> {
    d.map(|d| d.as_nanos().min(u64::MAX as u128) as Nanos)
}

/// Blocks the current goroutine on `res` in `op` (with its deadline, if any, so the wait-for
/// graph knows a timed wait is no false cycle) and arms the deadline: `leave` takes the waiter
/// out of the primitive's queue when it passes first.
pub(crate) fn block_timed(
    rt: &Runtime,
    op: Blocking,
    res: &ResourceRef,
    parked: &Rc<Parked>,
    timeout: Option<Nanos>,
    leave: impl FnOnce(&Runtime, &Rc<Parked>) + 'static,
) -> Option<TimerKey> {
    let until = timeout.map(|t| rt.now().saturating_add(t));
    let mut wait = Wait::on(op, res);
    wait.until = until;
    rt.block(wait);
    until.map(|at| parked.expire_at(rt, at, leave))
}
