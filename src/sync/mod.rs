//! Go's synchronisation primitives over the runtime core: channels and `select`, mutexes, rwmutexes,
//! semaphores, wait groups, once, cond, contexts, timers and atomic integers.
//!
//! Each primitive keeps its own queues and calls the core only to block, wake and trace. Blocking
//! operations never block the thread: they register the current goroutine and return a value that
//! says "parked"; the goroutine's body (a Lua coroutine) then yields to the scheduler, and the
//! primitive completes the operation when it wakes the goroutine. So one implementation serves
//! every kind of task body.

mod atomic;
mod base;
mod channel;
mod cond;
mod context;
mod mutex;
mod once;
mod op;
mod park;
mod rwmutex;
mod select;
mod semaphore;
mod timer;
mod wait_group;

pub use atomic::{AtomicInt, AtomicOp, AtomicResult};
pub(crate) use base::{Base, debug_handle};
pub use channel::{
    Channel, Describe, RecvFuture, SendError, SendFuture, TryRecvError, TrySendError,
};
pub(crate) use channel::{
    KIND as CHANNEL_KIND, RecvSlot, RecvStart, SendSlot, SendStart, SendState, send_result,
    set_detail_hook,
};
pub use cond::Cond;
pub use context::{Context, ContextError, Done};
pub use mutex::{LockFuture, Mutex};
pub use once::Once;
pub(crate) use once::OnceStart;
pub(crate) use op::{Begin, Loc, sleep, yield_now};
pub use op::{Op, Sleep};
pub use park::Timeout;
pub(crate) use park::{Parked, TIMED_OUT, block_timed, block_timed_behind};
pub use rwmutex::RwMutex;
// What `gosim::select!` expands to: public for the macro, not part of the API.
#[doc(hidden)]
pub use select::{ArmSlot, ErasedArm, SelectAll};
pub use select::{Case, SelectArm, SelectResult, Timed};
pub(crate) use select::{SelectStart, SelectWait, select, select_deadline, select_start};
pub use semaphore::Semaphore;
pub use timer::Timer;
pub(crate) use timer::{after, after_channel, after_func, channel_timer};
pub use wait_group::WaitGroup;

/// `file:line` of the caller, for resource creation lines (where a task stopped is kept as the
/// caller's `Location` and formatted only for a report). The Rust-facing constructors are
/// `#[track_caller]` and call this; language bindings pass their own line instead.
#[track_caller]
pub(crate) fn here() -> Option<std::rc::Rc<str>> {
    let l = std::panic::Location::caller();
    Some(std::rc::Rc::from(format!("{}:{}", l.file(), l.line())))
}

/// A `Duration` as the runtime's nanoseconds, saturating (the core's one conversion).
pub(crate) use crate::runtime::duration_nanos as to_nanos;

/// A misuse of a primitive (unlocking an unlocked mutex, a negative wait group...). The Lua layer
/// turns it into a Lua error that names the function.
///
/// # Examples
///
/// ```
/// let sim = gosim::Sim::with_seed(1);
/// let wg = sim.wait_group();
/// let err = wg.add(-1).unwrap_err(); // a negative counter is misuse
/// assert!(!err.to_string().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misuse(pub String);

impl std::fmt::Display for Misuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Misuse {}
