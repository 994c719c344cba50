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

use std::time::Duration;

use crate::runtime::Nanos;

/// A timeout as the runtime counts it (saturating: a huge `Duration` waits "forever").
pub(crate) fn nanos(d: Option<Duration>) -> Option<Nanos> {
    d.map(crate::runtime::duration_nanos)
}
