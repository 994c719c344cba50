//! A future as a goroutine: the task body every Rust task runs in, whoever spawns it (`sim::Sim`
//! for the Rust API, the Lua layer for the forwarders of `fan_in`/`fan_out`). It lives here,
//! below both bindings, because both need it and neither may depend on the other.
//!
//! The future is polled with a no-op waker in simulation (gosim's operations never use the
//! waker: only the scheduler completes them) and with an external waker in production (a foreign
//! future, tokio I/O say, queues the task for the scheduler). A panic fails the run as
//! `FAIL (panic)`.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use crate::runtime::{FailureKind, Runtime, TaskBody, TaskId, TaskState, TaskStep};

/// Spawns `fut` as a goroutine named `name` (unnamed with `None`); a daemon is never a leak and
/// never keeps the run alive. Not a scheduling point. `None` past the goroutine limit (the run
/// then ends with that limit).
pub(crate) fn spawn_future(
    rt: &Runtime,
    name: Option<&str>,
    daemon: bool,
    fut: Pin<Box<dyn Future<Output = ()>>>,
) -> Option<TaskId> {
    let body = FutureTask {
        future: fut,
        rt: rt.clone(),
    };
    rt.spawn(name, daemon, Box::new(body))
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".to_string())
}

/// A Rust task as the scheduler sees it.
struct FutureTask {
    future: Pin<Box<dyn Future<Output = ()>>>,
    rt: Runtime,
}

impl TaskBody for FutureTask {
    fn run(&mut self, _rt: &Runtime) -> TaskStep {
        // gosim's own operations never use the waker; a foreign future (production mode only)
        // gets one that queues this task for the scheduler.
        let simulated = self.rt.is_simulated();
        let waker = if simulated {
            Waker::noop().clone()
        } else {
            self.rt.external_waker(self.rt.current())
        };
        let mut cx = TaskContext::from_waker(&waker);
        let polled = catch_unwind(AssertUnwindSafe(|| self.future.as_mut().poll(&mut cx)));
        match polled {
            Ok(Poll::Ready(())) => TaskStep::Finished,
            Ok(Poll::Pending) => {
                if self.rt.current_state() == Some(TaskState::Running) {
                    if !simulated {
                        self.rt.block_external();
                        return TaskStep::Parked;
                    }
                    return TaskStep::Failed {
                        kind: FailureKind::Error,
                        message: "a Rust task awaited a future that is not a gosim operation: in a simulated task, \
                         await only gosim's primitives (channels, locks, sleep, ...); foreign futures \
                         (tokio I/O) work in production mode (Sim::real, Sim::run_local)"
                            .to_string(),
                        location: None,
                    };
                }
                TaskStep::Parked
            }
            Err(payload) => TaskStep::Failed {
                kind: FailureKind::Panic,
                message: format!("panicked: {}", panic_message(&*payload)),
                location: None,
            },
        }
    }
}
