//! The patterns of the wish-list, built only from `crate::sync` and the runtime's public API (so
//! they are written as a user would write them): the observability patterns (a goroutine
//! profiler, a channel inspector, a deadlock detector), and the concurrency patterns that were
//! Lua-only before (async/await and timeout, worker pools, pipelines, fan-in/fan-out).
//!
//! **Rust owns every state machine; a language layer only calls the user's functions.** A
//! pattern that runs user code is split in two: a state machine here (`Pool`, `Stage`, the
//! `JoinHandle` cell) whose every step is a method or a gosim future, and a worker loop that
//! calls the user's function between those steps. This module also has the Rust worker loops
//! (jobs and stage functions are async closures); a language binding writes its own loop over
//! the same state machine. Patterns that run no user code (fan-in/out forwarders) are Rust tasks
//! whatever the caller's language.
//!
//! Patterns start goroutines through `Spawn`, implemented by each layer that spawns Rust tasks
//! (`sim::Sim`, and the Lua layer's `Host` for the fan forwarders); both build the task body with
//! `spawn_future` (the future as a `TaskBody`), so this layer needs nothing above `sync`.
//!
//! Scheduling points follow the Lua versions, so a binding switched onto these implementations
//! keeps its traces: steps inside a pattern's own tasks (a receive, a send, a close, a
//! wait-group `done`) are scheduling points exactly where Lua's were; calls that never block
//! (`Pool::submit`, creating a pipeline) take none, as `Sim::spawn` and `Channel::try_send` take
//! none in Rust: the Lua binding takes its scheduling point after them, as after any call.

mod chan;
mod coord;
mod detector;
mod fan;
mod inspector;
mod msg;
mod pipeline;
mod pool;
mod profiler;
mod resilience;
mod spawn;
mod task;
mod work;

use std::future::Future;
use std::pin::Pin;

use crate::runtime::TaskId;

pub use chan::{
    BroadcastError, Broadcaster, DebounceOptions, Lagging, MERGE_CAPACITY, OverflowChannel,
    OverflowStrategy, PriorityChannel, PrioritySendError, PubSub, SendOutcome, Subscriber,
    ThrottleOptions, debounce, merge, throttle,
};
pub use coord::{AcquireStart, WeightedSemaphore};
pub use coord::{Barrier, BarrierStart};
pub use coord::{Latch, LatchStart};
pub use coord::{LockStart, UpgradeableRwLock};
pub use detector::{DeadlockDetector, DeadlockInfo};
pub use fan::{fan_in, fan_out};
pub use inspector::{ChannelInspector, ChannelStats};
pub use msg::{
    DeadLetter, QueueClosed, RequestError, RequestReply, WorkQueue, WorkQueueOptions,
    WorkQueueStats, retry_delay,
};
pub use pipeline::{Bypass, DynItem, RouteFuture};
pub use pipeline::{
    DynamicPipeline, DynamicStage, ErrorSink, PipelineMetrics, PipelineWith, StageError,
    StageLabel, StageMetrics, StageOptions, StageSpec, Taken, fixed_retries, pipeline_with,
    stage_limiter,
};
pub use pipeline::{Stage, StageFn, pipeline};
pub use pool::{Job, JobId, Pool, PoolError, PoolStats};
pub use profiler::{ProfileStats, Profiler};
pub use resilience::{Bulkhead, Full, Partition};
pub use resilience::{
    CallError, CircuitBreaker, CircuitSettings, CircuitState, Permit, Rejected, Transition,
};
pub use resilience::{Failure, Retry, RetrySettings, permanent, retry};
pub use resilience::{RateLimiter, Reservation, WaitError};
pub(crate) use spawn::spawn_future;
pub(crate) use task::poll_catching;
pub use task::{JoinHandle, TaskError, go, join_all, timeout};
pub use work::{AdaptiveJob, AdaptiveOptions, AdaptivePool, AdaptiveStats};
pub use work::{Admit, BoundedJob, BoundedParallel, BoundedStats};
pub use work::{BatchError, BatchOptions, BatchProcessor, BatchStats};
pub use work::{CacheError, CacheStats, CoalescingCache, Lookup};
pub use work::{PriorityPool, PriorityPoolStats};

/// A future to run as a goroutine.
pub type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// How a pattern starts a goroutine running a Rust future.
///
/// # Examples
///
/// ```
/// use gosim::patterns::Spawn;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let flag = s.atomic_int(0);
///     let f = flag.clone();
///     // `Sim` is a `Spawn`: the patterns start their tasks through it.
///     let spawner: &dyn Spawn = &s;
///     let id = spawner.spawn_boxed(Some("helper"), Box::pin(async move { f.store(1).await; }));
///     assert!(id.is_some());
///     while flag.peek() == 0 {
///         s.yield_now().await;
///     }
/// });
/// report.assert_pass();
/// ```
pub trait Spawn {
    /// Spawns `task` as a goroutine named `name` (unnamed with `None`). Not a scheduling point.
    /// `None` when the run has hit its goroutine limit (the run then ends with that limit).
    fn spawn_boxed(&self, name: Option<&str>, task: LocalTask) -> Option<TaskId>;
}
