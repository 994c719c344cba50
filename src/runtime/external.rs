//! Wake-ups from outside the scheduler, for production mode: a Rust task awaiting a foreign
//! future (tokio I/O) parks as "external", and the future's waker (which may be called from any
//! thread) queues the task here. The scheduler takes the queue between steps, and an idle
//! scheduler waits on it (with the next timer's deadline as a timeout). A simulation never uses
//! it: there, awaiting a foreign future is an error.

use std::sync::{Arc, Condvar, Mutex};
use std::task::{Wake, Waker};
use std::time::Duration;

use super::task::TaskId;

/// The queue of tasks woken from outside, shared with their wakers.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{TaskId, Wakeups};
/// use std::sync::Arc;
///
/// // Shared with wakers on other threads (a tokio I/O future's waker); the scheduler takes them.
/// let wakeups = Arc::new(Wakeups::default());
/// let w = wakeups.clone();
/// std::thread::spawn(move || w.push(TaskId(7))).join().unwrap();
/// assert_eq!(wakeups.take(), vec![TaskId(7)]);
/// assert!(wakeups.take().is_empty());
/// ```
#[derive(Default)]
pub struct Wakeups {
    queue: Mutex<Vec<TaskId>>,
    signal: Condvar,
    /// Also told on every wake-up (an async host's notifier, e.g. a tokio `Notify`).
    listener: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wakeups")
    }
}

impl Wakeups {
    /// Queues `id` and signals whoever waits.
    pub fn push(&self, id: TaskId) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
        self.signal.notify_all();
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(l) = listener {
            l();
        }
    }

    /// Takes the queued tasks.
    pub fn take(&self) -> Vec<TaskId> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Blocks the thread until a wake-up is queued or `timeout` passes (`None`: no timeout).
    pub fn wait(&self, timeout: Option<Duration>) {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if !queue.is_empty() {
            return;
        }
        match timeout {
            Some(t) => drop(self.signal.wait_timeout(queue, t)),
            None => drop(self.signal.wait(queue)),
        }
    }

    /// Sets the function told of every wake-up.
    pub fn set_listener(&self, f: Arc<dyn Fn() + Send + Sync>) {
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }
}

struct TaskWake {
    id: TaskId,
    wakeups: Arc<Wakeups>,
}

impl Wake for TaskWake {
    fn wake(self: Arc<Self>) {
        self.wakeups.push(self.id);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakeups.push(self.id);
    }
}

/// A waker that queues `id` on `wakeups`.
pub(crate) fn waker(id: TaskId, wakeups: &Arc<Wakeups>) -> Waker {
    Waker::from(Arc::new(TaskWake {
        id,
        wakeups: wakeups.clone(),
    }))
}
