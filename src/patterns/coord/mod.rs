//! Synchronisation patterns (seed §5): coordination primitives built on the runtime's waits and
//! `sync::Parked`, each usable from Rust tasks and Lua goroutines on the same object.

mod barrier;
mod latch;
mod upgradeable_rwlock;
mod weighted_semaphore;

pub use barrier::{Barrier, BarrierStart};
pub use latch::{Latch, LatchStart};
pub use upgradeable_rwlock::{LockStart, UpgradeableRwLock};
pub use weighted_semaphore::{AcquireStart, WeightedSemaphore};

/// A Rust API timeout in the runtime's nanoseconds (saturating).
fn nanos(timeout: Option<std::time::Duration>) -> Option<crate::runtime::Nanos> {
    timeout.map(crate::runtime::duration_nanos)
}
