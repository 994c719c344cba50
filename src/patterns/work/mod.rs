//! Work patterns (seed §3.1 and §7): batch processor, coalescing cache, bounded parallelism,
//! priority worker pool, adaptive pool. Each runs user code, so each is a state machine here
//! whose steps a worker loop (Rust below, Lua in the prelude) calls around the user's function.

mod adaptive_pool;
mod batch_processor;
mod bounded_parallel;
mod coalescing_cache;
mod priority_pool;

pub use adaptive_pool::{AdaptiveJob, AdaptiveOptions, AdaptivePool, AdaptiveStats};
pub use batch_processor::{BatchError, BatchOptions, BatchProcessor, BatchStats};
pub use bounded_parallel::{Admit, BoundedJob, BoundedParallel, BoundedStats};
pub use coalescing_cache::{CacheError, CacheStats, CoalescingCache, Lookup};
pub use priority_pool::{PriorityPool, PriorityPoolStats};

/// A Rust API timeout in the runtime's nanoseconds (saturating).
fn nanos(timeout: Option<std::time::Duration>) -> Option<crate::runtime::Nanos> {
    timeout.map(crate::runtime::duration_nanos)
}
