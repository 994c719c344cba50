//! `Sim::spawn`'s handle: tokio's `JoinHandle<T>` on gosim's scheduler.
//!
//! Why it is shaped so. Awaiting the handle gives the task's value, so `T` moves out once and
//! need not be `Clone` (the re-awaitable, shareable handle of Lua's `goroutine.async` is
//! [`crate::patterns::JoinHandle`], which `Sim::go` returns). Spawning must cost what it did
//! before handles existed and leave the trace unchanged, so nothing is created at spawn: the
//! rendezvous an awaiter parks on (a channel named `join`, closed when the task ends, so it
//! releases the awaiter like any gosim wake) is made only when someone awaits a task that is
//! still running. A panic is a failure of the run in gosim, unless somebody can observe it:
//! while the handle is held, the panic becomes the awaiter's [`JoinError`] (the task is marked
//! failed for the observers, as a failed `goroutine.async` is); a task whose handle was dropped
//! (detached, the common `sim.spawn(...);`) fails the run as `FAIL (panic)`, as it always did,
//! and so does a panic left in a handle that is dropped without taking it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use crate::patterns::poll_catching;
use crate::runtime::{Failure, FailureKind, Runtime, TaskId, TaskState, duration};
use crate::sync::{Channel, Loc, RecvFuture};

/// Why a spawned task gave no value: it panicked (tokio's `JoinError`; gosim cannot cancel a
/// task from outside, as Go cannot, so a panic is the only cause).
///
/// ```
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let h = s.spawn("doomed", async { panic!("boom") });
///     let err = h.await.unwrap_err();
///     assert!(err.is_panic());
///     assert_eq!(err.panic_message(), "boom");
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError {
    id: TaskId,
    name: Option<String>,
    message: String,
}

impl JoinError {
    /// Whether the task panicked (always true: a gosim task cannot be cancelled from outside;
    /// kept for code written against tokio).
    pub fn is_panic(&self) -> bool {
        true
    }

    /// The task's panic message.
    pub fn panic_message(&self) -> &str {
        &self.message
    }

    /// The panic message, by value (tokio gives the payload; gosim keeps its text).
    pub fn into_panic(self) -> String {
        self.message
    }

    /// The task that panicked.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Its name (as given to `spawn`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {} panicked: {}", self.id, self.message)
    }
}

impl std::error::Error for JoinError {}

/// What the task and its handle share.
struct Shared<T> {
    id: Cell<TaskId>,
    /// The task's result, until the awaiter takes it.
    result: RefCell<Option<Result<T, JoinError>>>,
    /// Whether the task has ended (its result may have been taken since).
    finished: Cell<bool>,
    /// Whether the handle still exists (a panic then goes to it instead of failing the run).
    held: Cell<bool>,
    /// The rendezvous of a waiting awaiter, made by the first await of a running task.
    done: RefCell<Option<Channel<()>>>,
}

/// An owned permission to await a spawned task's value (tokio's `JoinHandle`). Dropping it
/// detaches the task: it runs on, and a panic in it then fails the run (so does dropping a
/// handle that holds a panic nobody took).
///
/// ```
/// use std::time::Duration;
/// use gosim::sim::Sim;
///
/// let sim = Sim::with_seed(3);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let t = s.clone();
///     let h = s.spawn("worker", async move {
///         t.sleep(Duration::from_millis(5)).await;
///         String::from("done") // not Clone-bound: moved out to the awaiter
///     });
///     assert_eq!(h.await.unwrap(), "done");
///     assert_eq!(s.now(), Duration::from_millis(5));
///     42
/// });
/// assert!(report.outcome.is_pass(), "{}", report.outcome);
/// assert_eq!(report.value, Some(42));
/// ```
pub struct JoinHandle<T> {
    shared: Rc<Shared<T>>,
    rt: Runtime,
    location: Loc,
    waiting: Option<RecvFuture<()>>,
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JoinHandle({})", self.shared.id.get())
    }
}

impl<T> Unpin for JoinHandle<T> {}

impl<T: 'static> JoinHandle<T> {
    /// Wraps `task` so that its value or panic goes to the returned handle; the caller spawns
    /// the returned future and records its id with `set_id`.
    pub(crate) fn wrap(
        rt: &Runtime,
        location: Loc,
        task: impl Future<Output = T> + 'static,
    ) -> (JoinHandle<T>, impl Future<Output = ()> + 'static) {
        let shared = Rc::new(Shared {
            id: Cell::new(TaskId(0)),
            result: RefCell::new(None),
            finished: Cell::new(false),
            held: Cell::new(true),
            done: RefCell::new(None),
        });
        let (mine, rt2) = (shared.clone(), rt.clone());
        let body = async move {
            // Pinned inside this future: no box of its own, one indirection less per poll.
            let mut task = std::pin::pin!(task);
            let caught = std::future::poll_fn(|cx| poll_catching(task.as_mut(), cx));
            let r = match caught.await {
                Ok(v) => Ok(v),
                // Nobody can observe the panic: the run fails as it would without a handle.
                Err(message) if !mine.held.get() => std::panic::resume_unwind(Box::new(message)),
                Err(message) => {
                    let id = rt2.current();
                    rt2.mark_failed(id);
                    let name = rt2.task_name(id).map(|n| n.to_string());
                    Err(JoinError { id, name, message })
                }
            };
            *mine.result.borrow_mut() = Some(r);
            mine.finished.set(true);
            if let Some(done) = mine.done.borrow_mut().take() {
                done.close();
            }
        };
        let handle = JoinHandle {
            shared,
            rt: rt.clone(),
            location,
            waiting: None,
        };
        (handle, body)
    }

    pub(crate) fn set_id(&self, id: TaskId) {
        self.shared.id.set(id);
    }
}

impl<T> JoinHandle<T> {
    /// The spawned task's id (`TaskId(0)` if the goroutine limit refused it: the run is then
    /// over with that limit).
    pub fn id(&self) -> TaskId {
        self.shared.id.get()
    }

    /// Whether the task has ended (not an operation: no trace, no scheduling point).
    pub fn is_finished(&self) -> bool {
        self.shared.finished.get()
    }
}

impl<T> Drop for JoinHandle<T> {
    /// Detaches the task. A panic the handle received and nobody took fails the run now (a
    /// panic is a bug unless someone handled it); after the run (the handle freed with it),
    /// there is no run left to fail.
    fn drop(&mut self) {
        self.shared.held.set(false);
        if self.rt.try_current().is_none() || self.rt.is_over() {
            return;
        }
        let untaken = match &mut *self.shared.result.borrow_mut() {
            r @ Some(Err(_)) => r.take(),
            _ => None,
        };
        if let Some(Err(e)) = untaken {
            self.rt.fail(Failure::in_task(
                FailureKind::Panic,
                Some((e.id, e.name)),
                format!(
                    "panicked: {} (its JoinHandle was dropped without taking the error)",
                    e.message
                ),
                None,
                duration(self.rt.now()),
            ));
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// A finished task's result at once (no operation, as awaiting a finished Lua task); a
    /// running task's once it ends, waiting on the `join` rendezvous.
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            if let Some(recv) = this.waiting.as_mut() {
                match Pin::new(recv).poll(cx) {
                    Poll::Pending => {
                        // A report names the user's line (the spawn), not this file's.
                        if this.rt.current_state() == Some(TaskState::Blocked) {
                            this.rt.set_location(this.rt.current(), Some(this.location));
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(_) => this.waiting = None,
                }
            }
            if let Some(r) = this.shared.result.borrow_mut().take() {
                return Poll::Ready(r);
            }
            assert!(
                !this.shared.finished.get(),
                "JoinHandle polled again after it gave the task's result"
            );
            let done = this
                .shared
                .done
                .borrow_mut()
                .get_or_insert_with(|| {
                    let at = format!("{}:{}", this.location.file(), this.location.line());
                    let ch: Channel<()> = Channel::new(&this.rt, 0, Some(Rc::from(at)));
                    ch.resource().set_name("join");
                    ch
                })
                .clone();
            this.waiting = Some(done.recv());
        }
    }
}
