//! Go's `context`: a tree of cancellation scopes. Cancelling a context cancels its descendants;
//! a deadline cancels it with "context deadline exceeded" when the run's clock reaches it. Code
//! observes cancellation by polling (`is_cancelled`, `err`) or through "done" hooks such as a
//! channel that is closed on cancel (the Lua layer's `ctx:done()`).

use std::fmt::Debug;
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::Channel;
use super::base::{Base, debug_handle};
use crate::runtime::{
    Nanos, ResourceKind, ResourceRef, Runtime, TimerCallback, TimerKey, format_ms,
};

/// Any goroutine (or a deadline) may cancel a context.
const KIND: ResourceKind = ResourceKind::released_by_anyone("context");

/// Why a context ended: Go's `context.Canceled` and `context.DeadlineExceeded`. `Display`
/// gives Go's texts, which the Lua binding returns as strings.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// assert_eq!(ContextError::DeadlineExceeded.as_str(), "context deadline exceeded");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextError {
    /// `cancel` was called (on it or an ancestor): "context canceled".
    Canceled,
    /// Its deadline (or an ancestor's) passed: "context deadline exceeded".
    DeadlineExceeded,
}

impl ContextError {
    /// Go's error text.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextError::Canceled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        }
    }
}

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ContextError {}

/// Something to do when a context is cancelled (close a done channel).
pub trait CancelHook {
    /// Called once, when the context is cancelled.
    fn cancel(&self);
    /// Whether some goroutine is blocked waiting for it (so the context's deadline timer can
    /// wake someone and does not hide a deadlock).
    fn has_waiters(&self) -> bool;
}

/// Parents hold their children strongly (a child whose handle is gone may still have a done
/// channel someone waits on) and children hold their parent weakly; a cancelled child leaves its
/// parent's list, so long-lived parents do not accumulate dead children.
struct State {
    err: Option<ContextError>,
    deadline: Option<Nanos>,
    parent: Option<Weak<Shared>>,
    children: Vec<Rc<Shared>>,
    hooks: Vec<Box<dyn CancelHook>>,
    timer: Option<TimerKey>,
    /// The done channel, made on first use and shared by every caller of `done_channel` and
    /// `done` (a Lua `ctx:done()` and a Rust `ctx.done().await` wait on the same one).
    done: Option<Rc<dyn std::any::Any>>,
}

type Shared = Base<State>;

/// A cancellation scope. Clones are the same context.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use std::time::Duration;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let root = s.context();
///     let child = root.with_timeout(Duration::from_millis(20));
///     assert_eq!(child.deadline(), Some(Duration::from_millis(20)));
///     root.cancel(); // cancels the whole tree below it
///     assert_eq!(child.err(), Some(ContextError::Canceled));
///     assert_eq!(s.now(), Duration::ZERO);
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Context {
    shared: Rc<Shared>,
}

debug_handle!(Context);

impl Context {
    /// A root context that can be cancelled and has no deadline.
    pub fn background(rt: &Runtime, created_at: Option<Rc<str>>) -> Context {
        Context::make(rt, None, None, created_at)
    }

    fn make(
        rt: &Runtime,
        parent: Option<&Context>,
        deadline: Option<Nanos>,
        created_at: Option<Rc<str>>,
    ) -> Context {
        let parent_deadline = parent.and_then(|p| p.deadline_nanos());
        let deadline = match (parent_deadline, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let detail = deadline.map(|d| format!("deadline={}", format_ms(d)));
        let parent_link = parent.map(|p| Rc::downgrade(&p.shared));
        let state = State {
            err: None,
            deadline,
            parent: parent_link,
            children: Vec::new(),
            hooks: Vec::new(),
            timer: None,
            done: None,
        };
        let ctx = Context {
            shared: Base::new(rt, KIND, created_at, detail, state),
        };
        if let Some(p) = parent {
            let parent_err = p.err();
            p.shared
                .state
                .borrow_mut()
                .children
                .push(ctx.shared.clone());
            if let Some(err) = parent_err {
                ctx.cancel_with(err);
                return ctx;
            }
        }
        if let Some(d) = deadline {
            if d <= rt.now() {
                ctx.cancel_with(ContextError::DeadlineExceeded);
            } else {
                let key = rt.add_timer(
                    d,
                    Box::new(Expire {
                        ctx: ctx.shared.clone(),
                    }),
                );
                ctx.shared.state.borrow_mut().timer = Some(key);
            }
        }
        ctx
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// A child that can be cancelled on its own (created where this is called).
    #[track_caller]
    pub fn with_cancel(&self) -> Context {
        self.with_cancel_at(super::here())
    }

    /// A child cancelled at `deadline` on the run's clock (time since the run started), or
    /// earlier with its parent.
    #[track_caller]
    pub fn with_deadline(&self, deadline: Duration) -> Context {
        self.with_deadline_at(super::to_nanos(deadline), super::here())
    }

    /// A child cancelled after `timeout` from now, or earlier with its parent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let ctx = s.context().with_timeout(Duration::from_millis(10));
    ///     assert_eq!(ctx.deadline(), Some(Duration::from_millis(10)));
    ///     ctx.done().await;
    ///     assert_eq!(s.now(), Duration::from_millis(10));
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    #[track_caller]
    pub fn with_timeout(&self, timeout: Duration) -> Context {
        self.with_timeout_at(super::to_nanos(timeout), super::here())
    }

    /// `with_cancel` with the creation line given (a language binding's own `file:line`).
    pub(crate) fn with_cancel_at(&self, created_at: Option<Rc<str>>) -> Context {
        Context::make(&self.shared.rt, Some(self), None, created_at)
    }

    /// `with_deadline` in nanoseconds, with the creation line given (a binding's).
    pub(crate) fn with_deadline_at(&self, deadline: Nanos, created_at: Option<Rc<str>>) -> Context {
        Context::make(&self.shared.rt, Some(self), Some(deadline), created_at)
    }

    /// `with_timeout` in nanoseconds, with the creation line given (a binding's).
    pub(crate) fn with_timeout_at(&self, timeout: Nanos, created_at: Option<Rc<str>>) -> Context {
        let at = self.shared.rt.now().saturating_add(timeout);
        self.with_deadline_at(at, created_at)
    }

    /// Cancels it and its descendants with "context canceled" (no effect if already cancelled).
    pub fn cancel(&self) {
        self.cancel_with(ContextError::Canceled);
    }

    fn cancel_with(&self, err: ContextError) {
        let (hooks, children, timer, parent) = {
            let mut st = self.shared.state.borrow_mut();
            if st.err.is_some() {
                return;
            }
            st.err = Some(err);
            (
                std::mem::take(&mut st.hooks),
                std::mem::take(&mut st.children),
                st.timer.take(),
                st.parent.take(),
            )
        };
        if let Some(p) = parent.and_then(|p| p.upgrade()) {
            // `try_borrow_mut`: the parent may be cancelling us right now, with its list taken.
            if let Ok(mut pst) = p.state.try_borrow_mut() {
                pst.children.retain(|c| !Rc::ptr_eq(c, &self.shared));
            }
        }
        let rt = &self.shared.rt;
        if let Some(key) = timer {
            rt.cancel_timer(key);
        }
        self.shared
            .trace_with("cancel", || Some(err.as_str().to_string()));
        for h in hooks {
            h.cancel();
        }
        for c in children {
            Context { shared: c }.cancel_with(err);
        }
    }

    /// Whether it is cancelled or expired.
    pub fn is_cancelled(&self) -> bool {
        self.shared.state.borrow().err.is_some()
    }

    /// `None` while it is live, else why it ended.
    pub fn err(&self) -> Option<ContextError> {
        self.shared.state.borrow().err
    }

    /// The instant it expires on the run's clock, if it has a deadline.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline_nanos().map(Duration::from_nanos)
    }

    /// `deadline` in nanoseconds (the bindings' and the children's unit).
    pub(crate) fn deadline_nanos(&self) -> Option<Nanos> {
        self.shared.state.borrow().deadline
    }

    /// Runs `hook.cancel()` when it is cancelled (at once if it already is).
    pub fn on_cancel(&self, hook: Box<dyn CancelHook>) {
        if self.is_cancelled() {
            hook.cancel();
        } else {
            self.shared.state.borrow_mut().hooks.push(hook);
        }
    }

    fn has_waiters(shared: &Rc<Shared>) -> bool {
        let st = shared.state.borrow();
        st.hooks.iter().any(|h| h.has_waiters()) || st.children.iter().any(Context::has_waiters)
    }
}

struct Expire {
    ctx: Rc<Shared>,
}

impl TimerCallback for Expire {
    fn fire(self: Box<Self>, _rt: &Runtime) {
        let shared = self.ctx;
        shared.state.borrow_mut().timer = None;
        Context { shared }.cancel_with(ContextError::DeadlineExceeded);
    }

    fn may_wake(&self) -> bool {
        Context::has_waiters(&self.ctx)
    }
}

impl Context {
    /// The channel closed when the context is cancelled (Go's `ctx.Done()`), made on first use
    /// (`created_at`: that caller's line). Every later call gets the same channel; a run uses one
    /// value type for it (a second type, in a run mixing Rust and Lua, gets a channel of its own).
    pub fn done_channel<T: Debug + 'static>(&self, created_at: Option<Rc<str>>) -> Channel<T> {
        let cached = self.shared.state.borrow().done.clone();
        if let Some(ch) = cached.and_then(|c| c.downcast::<Channel<T>>().ok()) {
            return (*ch).clone();
        }
        let ch: Channel<T> = Channel::new(&self.shared.rt, 0, created_at);
        ch.resource()
            .set_name(&format!("done of {}", self.resource()));
        self.on_cancel(Box::new(ch.clone()));
        self.shared.state.borrow_mut().done = Some(Rc::new(ch.clone()));
        ch
    }

    /// Waits until the context is cancelled or expires; returns why. Also an arm of
    /// `gosim::select!` (`_ = ctx.done() => ...`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::prelude::*;
    /// use std::time::Duration;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let ctx = s.context().with_timeout(Duration::from_millis(30));
    ///     assert_eq!(ctx.done().await, ContextError::DeadlineExceeded);
    ///     assert_eq!(s.now(), Duration::from_millis(30));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn done(&self) -> Done {
        Done {
            ctx: self.clone(),
            recv: None,
            location: std::panic::Location::caller(),
        }
    }

    fn done_recv(&self, location: super::Loc) -> super::RecvFuture<()> {
        self.done_channel::<()>(None).recv_at(location)
    }
}

/// The future of `Context::done`: why the context ended, once it has.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use std::time::Duration;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ctx = s.context().with_cancel();
///     let (c, t) = (ctx.clone(), s.clone());
///     s.spawn("canceller", async move {
///         t.sleep(Duration::from_millis(4)).await;
///         c.cancel();
///     });
///     let done: gosim::sync::Done = ctx.done();
///     assert_eq!(done.await, ContextError::Canceled);
///     assert_eq!(s.now(), Duration::from_millis(4));
/// });
/// report.assert_pass();
/// ```
#[must_use = "a gosim operation does nothing until it is awaited"]
#[derive(Debug)]
pub struct Done {
    ctx: Context,
    recv: Option<super::RecvFuture<()>>,
    location: super::Loc,
}

impl Done {
    fn why(&self) -> ContextError {
        self.ctx.err().unwrap_or(ContextError::Canceled)
    }
}

impl std::future::Future for Done {
    type Output = ContextError;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<ContextError> {
        let this = &mut *self;
        if this.recv.is_none() {
            if let Some(e) = this.ctx.err() {
                return std::task::Poll::Ready(e);
            }
            this.recv = Some(this.ctx.done_recv(this.location));
        }
        let recv = this.recv.as_mut().expect("made above");
        match std::pin::Pin::new(recv).poll(cx) {
            std::task::Poll::Ready(_) => std::task::Poll::Ready(this.why()),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl super::select::SelectArm for Done {
    type Output = ContextError;

    fn runtime(&self) -> &Runtime {
        &self.ctx.shared.rt
    }

    fn ready(&self) -> bool {
        self.ctx.is_cancelled()
    }

    fn perform(&mut self) -> ContextError {
        self.why()
    }

    fn register(&mut self, parked: &Rc<super::Parked>, case: usize) -> ResourceRef {
        let location = self.location;
        let ctx = self.ctx.clone();
        self.recv
            .get_or_insert_with(|| ctx.done_recv(location))
            .register(parked, case)
    }

    fn finish(&mut self, parked: &Rc<super::Parked>, won: bool) -> Option<ContextError> {
        let recv = self.recv.as_mut()?;
        recv.finish(parked, won).map(|_| self.why())
    }
}
