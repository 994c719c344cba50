//! async/await and timeout (Lua's `goroutine.async`, `await`, `await_all`, `timeout`): a task
//! whose result is kept for whoever awaits it, and running a task against a deadline.
//!
//! Why it is shaped so. A handle is the pair the Lua version builds: a result cell and a
//! rendezvous channel named `await` that the task *closes* when it ends, because a closed
//! channel releases every awaiter at once and can sit in a `select` (that is how `timeout` races
//! the task against a timer). The task is a goroutine of its own, unnamed as in Lua; awaiting a
//! finished task is not an operation (no trace, no scheduling point), as in Lua. A failure of the
//! task is a value for the awaiter, not a failure of the run: in Rust a failure is a panic, caught
//! around each poll of the task's future (`CatchPanic`), and the task is marked failed for the
//! observers as Lua's `raw.mark_failed` does. `timeout` has Go's semantics: on expiry the caller
//! gets `TimedOut` and the task runs on, unobserved.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use super::Spawn;
use super::spawn::panic_message;
use crate::runtime::{Runtime, TaskId};
use crate::sync::{Case, Channel, Timed, after_channel, select_deadline};

/// Why a task gave no value.
///
/// # Examples
///
/// ```
/// use gosim::patterns::TaskError;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let h = s.go(async { panic!("bad input") });
///     // A panic in a `go` task is a value for the awaiter, not a failed run.
///     assert_eq!(h.join().await, Err(TaskError::Failed("bad input".to_string())));
///     assert_eq!(TaskError::TimedOut.to_string(), "timeout exceeded");
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// The task panicked; the panic's message.
    Failed(String),
    /// `timeout`: the deadline came first (the task runs on).
    TimedOut,
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskError::Failed(m) => f.write_str(m),
            TaskError::TimedOut => f.write_str("timeout exceeded"),
        }
    }
}

impl std::error::Error for TaskError {}

/// Runs a future, turning a panic in any of its polls into `Err(message)`: how user code inside
/// a pattern fails without failing the run (Lua's `pcall` around a user function).
pub(crate) struct CatchPanic<F> {
    inner: Pin<Box<F>>,
}

impl<F> CatchPanic<F> {
    pub(crate) fn new(f: F) -> CatchPanic<F> {
        CatchPanic { inner: Box::pin(f) }
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        poll_catching(self.inner.as_mut(), cx)
    }
}

/// Polls `f` once, a panic becoming `Err(message)`: `CatchPanic` for a future already pinned in
/// place (a task's body pinned inside its own future, which then needs no box of its own).
pub(crate) fn poll_catching<F: Future>(
    f: Pin<&mut F>,
    cx: &mut TaskContext<'_>,
) -> Poll<Result<F::Output, String>> {
    match catch_unwind(AssertUnwindSafe(|| f.poll(cx))) {
        Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
    }
}

struct Shared<T> {
    rt: Runtime,
    id: Cell<TaskId>,
    done: Channel<()>,
    result: RefCell<Option<Result<T, TaskError>>>,
}

/// A running task's result, to await (Lua's async handle). Clones are the same handle.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let t = s.clone();
///     let h = s.go(async move {
///         t.sleep(Duration::from_millis(10)).await;
///         42
///     });
///     let h2 = h.clone(); // shareable, and joinable again and again
///     assert_eq!(h.join().await, Ok(42));
///     assert_eq!(h2.join().await, Ok(42));
///     assert_eq!(h2.try_join(), Some(Ok(42)));
/// });
/// report.assert_pass();
/// ```
pub struct JoinHandle<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for JoinHandle<T> {
    fn clone(&self) -> Self {
        JoinHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JoinHandle({})", self.shared.id.get())
    }
}

/// Spawns `task` as an unnamed goroutine whose result is kept for `JoinHandle::join`. Not a
/// scheduling point (like `Sim::spawn`; the Lua binding takes its own after it).
///
/// # Examples
///
/// ```
/// use gosim::patterns::go;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let h = go(s.runtime(), &s, async { "ready" }, None); // `Sim::go` without the caller's line
///     assert!(!h.is_finished()); // not a scheduling point: it has not run yet
///     assert_eq!(h.join().await, Ok("ready"));
/// });
/// report.assert_pass();
/// ```
pub fn go<T: 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    task: impl Future<Output = T> + 'static,
    created_at: Option<Rc<str>>,
) -> JoinHandle<T> {
    let h = JoinHandle::new(rt, created_at);
    let (rt2, mine) = (rt.clone(), h.clone());
    let id = spawner.spawn_boxed(
        None,
        Box::pin(async move {
            let r = CatchPanic::new(task).await;
            mine.complete(r);
            // Closing is a scheduling point in Lua, where the task's last act is `done:close()`.
            crate::sync::yield_now(&rt2).await;
        }),
    );
    h.set_id(id.unwrap_or(TaskId(0)));
    h
}

impl<T> JoinHandle<T> {
    /// A handle for a task its caller spawns: `go` for a Rust future; a language binding for a
    /// goroutine of its own that runs the user's function and then calls `complete`. It creates
    /// the `await` channel (not a scheduling point, no task yet).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::JoinHandle;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     // A binding's own task: it spawns the goroutine and completes the handle itself.
    ///     let h: JoinHandle<u8> = JoinHandle::new(s.runtime(), None);
    ///     let mine = h.clone();
    ///     let task = s.spawn("binding-task", async move { mine.complete(Ok(5)) });
    ///     h.set_id(task.id());
    ///     assert_eq!(h.join().await, Ok(5));
    /// });
    /// report.assert_pass();
    /// ```
    pub fn new(rt: &Runtime, created_at: Option<Rc<str>>) -> JoinHandle<T> {
        let done: Channel<()> = Channel::new(rt, 0, created_at);
        done.resource().set_name("await");
        JoinHandle {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                id: Cell::new(TaskId(0)),
                done,
                result: RefCell::new(None),
            }),
        }
    }

    /// Records the id of the task spawned for this handle (shown by `Debug`, Lua's `tostring`).
    pub fn set_id(&self, id: TaskId) {
        self.shared.id.set(id);
    }

    /// Called by the task itself as its last act: keeps its result (a failure is the failed
    /// user code's message, and marks the calling task failed for the observers), then closes
    /// the `await` channel, which releases every awaiter. Not a scheduling point: the caller
    /// takes one after it (the close's, in Lua).
    pub fn complete(&self, r: Result<T, String>) {
        let rt = &self.shared.rt;
        if r.is_err() {
            rt.mark_failed(rt.current());
        }
        *self.shared.result.borrow_mut() = Some(r.map_err(TaskError::Failed));
        self.shared.done.close();
    }

    /// Waits until the task ends or `deadline` (a timer's channel) delivers, whichever the
    /// select takes first: true if the deadline came first and the task has not ended. The
    /// select is the task's `await` channel then the deadline, as Lua's `timeout` has it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let t = s.clone();
    ///     let h = s.go(async move { t.sleep(Duration::from_millis(50)).await });
    ///     let deadline = s.after(Duration::from_millis(5));
    ///     assert!(h.deadline_first(deadline).await); // the deadline came first
    ///     assert_eq!(s.now(), Duration::from_millis(5));
    ///     assert!(h.join().await.is_ok());
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn deadline_first<U: Debug + 'static>(&self, deadline: Channel<U>) -> bool {
        let cases = vec![Case::Recv(self.shared.done.clone())];
        let r = select_deadline(&self.shared.rt, cases, deadline).await;
        matches!(r, Timed::TimedOut) && !self.is_finished()
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.shared.id.get()
    }

    /// Whether the task has ended (its result is kept).
    pub fn is_finished(&self) -> bool {
        self.shared.result.borrow().is_some()
    }

    /// Waits for the task to end (no operation if it has), then takes its result out.
    async fn wait_taken(&self) -> Result<T, TaskError> {
        if !self.is_finished() {
            let _ = self.shared.done.recv().await;
        }
        self.shared
            .result
            .borrow_mut()
            .take()
            .expect("a finished task has its result")
    }
}

impl<T: Clone> JoinHandle<T> {
    /// The result of a finished task (no operation); `None` while it runs.
    pub fn try_join(&self) -> Option<Result<T, TaskError>> {
        self.shared.result.borrow().clone()
    }

    /// Waits for the task to end; its value, or `Failed` with its panic's message. Awaiting a
    /// finished task returns at once, as often as asked (the result is kept).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let t = s.clone();
    ///     let h = s.go(async move {
    ///         t.sleep(Duration::from_millis(3)).await;
    ///         vec![1, 2]
    ///     });
    ///     assert_eq!(h.join().await, Ok(vec![1, 2])); // waits for the task
    ///     assert_eq!(s.now(), Duration::from_millis(3));
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn join(&self) -> Result<T, TaskError> {
        if !self.is_finished() {
            let _ = self.shared.done.recv().await;
        }
        self.shared
            .result
            .borrow()
            .clone()
            .expect("a finished task has its result")
    }
}

/// Awaits every handle in order (Lua's `await_all`): the results in the handles' order, whatever
/// order the tasks end in.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{TaskError, join_all};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let handles = vec![s.go(async { 1 }), s.go(async { panic!("no") }), s.go(async { 3 })];
///     let results = join_all(&handles).await;
///     assert_eq!(results, vec![Ok(1), Err(TaskError::Failed("no".into())), Ok(3)]);
/// });
/// report.assert_pass();
/// ```
pub async fn join_all<T: Clone>(handles: &[JoinHandle<T>]) -> Vec<Result<T, TaskError>> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.join().await);
    }
    out
}

/// Runs `task` as a new goroutine and waits at most `limit` for it (Lua's `goroutine.timeout`):
/// its value, `Failed` if it panicked, or `TimedOut`, in which case it keeps running (Go's
/// semantics: nothing can stop a goroutine from outside). The wait is a select between the
/// task's `await` channel and an `after` channel, in that order, as in Lua.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{TaskError, timeout};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let t = s.clone();
///     let slow = async move { t.sleep(Duration::from_millis(30)).await };
///     let r = timeout(s.runtime(), &s, Duration::from_millis(10), slow, None).await;
///     assert_eq!(r, Err(TaskError::TimedOut)); // the task runs on, as in Go
///     assert_eq!(s.now(), Duration::from_millis(10));
/// });
/// report.assert_pass();
/// ```
pub async fn timeout<T: 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    limit: Duration,
    task: impl Future<Output = T> + 'static,
    created_at: Option<Rc<str>>,
) -> Result<T, TaskError> {
    let h = go(rt, spawner, task, created_at.clone());
    let after = after_channel(rt, to_nanos(limit), Duration::from_nanos, created_at);
    if h.deadline_first(after).await {
        return Err(TaskError::TimedOut);
    }
    h.wait_taken().await
}

pub(crate) use crate::runtime::duration_nanos as to_nanos;
