//! The patterns of the wish-list, built only from `crate::sync` and the runtime's public API (so
//! they are written as a user would write them). For now: the observability patterns (seed 6.x),
//! a goroutine profiler, a channel inspector and a deadlock detector.

mod detector;
mod inspector;
mod profiler;

pub use detector::{DeadlockDetector, DeadlockInfo};
pub use inspector::{ChannelInspector, ChannelStats};
pub use profiler::{ProfileStats, Profiler};
