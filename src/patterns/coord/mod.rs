//! Synchronisation patterns (seed §5): coordination primitives built on the runtime's waits and
//! `sync::Parked`, each usable from Rust tasks and Lua goroutines on the same object.

mod weighted_semaphore;

pub use weighted_semaphore::{AcquireStart, WeightedSemaphore};
