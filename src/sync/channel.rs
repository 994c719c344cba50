//! Go channels: buffered or rendezvous, closable, with FIFO wait queues on both sides.
//!
//! A value is handed directly to a parked receiver when there is one (so an unbuffered send
//! completes exactly when a receiver takes it), otherwise buffered, otherwise the sender parks.
//! Unlike Go, a send on a closed channel is an outcome, not a crash: it returns "closed", and a
//! sender parked when the channel closes wakes with "closed".

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

use super::base::{Base, debug_handle};
use super::op::{Loc, park_at};
use super::park::Parked;
use crate::runtime::{
    Blocking, Detail, OpMode, PeerShown, ResourceKind, ResourceRef, Runtime, Subject, TaskId, Wait,
};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// Any goroutine that reaches a channel may send, receive or close it: who will release a
/// waiter is unknown.
pub(crate) const KIND: ResourceKind = ResourceKind::released_by_anyone("channel");

/// A receive waiting for a value (or the close).
const RECEIVE: Blocking = Blocking::new("receive", "block-receive");
/// A send waiting for a receiver or room (or the close).
const SEND: Blocking = Blocking::new("send", "block-send");

/// How a channel value is shown in a trace line: implemented for every `T: Debug + 'static`, so
/// any value can travel on a channel (tuples, `Option`, your own `#[derive(Debug)]` types) with
/// no newtype. Never implement it: it is here for its two methods.
///
/// The compact kinds of the trace are used for the types that have one (integers, `bool`, `f64`,
/// `String`, `&'static str`, `()`, `Duration`, and the values a binding registers with
/// [`set_detail_hook`], such as Lua values), chosen by `TypeId` so that nothing is formatted
/// or allocated on the hot path; other values are formatted with `{:?}`, and only when the
/// trace is on. A value's `Debug` must not show addresses or hash order (determinism).
///
/// # Examples
///
/// ```
/// use gosim::sync::Describe;
///
/// assert_eq!(42i64.describe(), "42");
/// assert_eq!((1u8, "a").describe(), "(1, \"a\")");
/// ```
pub trait Describe {
    /// A short, stable rendering (`42`, `"job-1"`, `table`).
    fn describe(&self) -> String;

    /// The same rendering as a compact trace detail, formatted only if the trace is rendered.
    fn trace_detail(&self) -> Detail;
}

/// A binding's compact trace detail for its own value types (the Lua binding's values), asked
/// before the `Debug` fallback: `None` for a value it does not know.
pub(super) type DetailHook = fn(&dyn Any) -> Option<Detail>;

static DETAIL_HOOK: OnceLock<DetailHook> = OnceLock::new();

/// Installs the binding's detail hook (see [`Describe`]). The first installed stays: a binding
/// installs the same pure function every time, so the trace never depends on which ran first.
pub(crate) fn set_detail_hook(hook: DetailHook) {
    let _ = DETAIL_HOOK.set(hook);
}

impl<T: Debug + 'static> Describe for T {
    fn describe(&self) -> String {
        let mut s = String::new();
        self.trace_detail().write(&mut s);
        s
    }

    fn trace_detail(&self) -> Detail {
        let any = self as &dyn Any;
        // Each `TypeId` test is a constant once monomorphized: a type's branch is all that stays.
        macro_rules! compact {
            ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
                if let Some($v) = any.downcast_ref::<$t>() {
                    return $e;
                }
            )*};
        }
        compact! {
            i64 => |v| Detail::Int(*v),
            i32 => |v| Detail::Int(i64::from(*v)),
            u64 => |v| Detail::Uint(*v),
            u32 => |v| Detail::Uint(u64::from(*v)),
            usize => |v| Detail::Uint(*v as u64),
            bool => |v| Detail::Bool(*v),
            f64 => |v| Detail::Float(*v),
            String => |v| Detail::quoted(v),
            () => |_v| Detail::Static(&"()"),
            Duration => |v| Detail::Ms(v.as_nanos().min(u128::from(u64::MAX)) as u64),
            Vec<u8> => |v| Detail::text(format!("{} bytes", v.len())),
        }
        if let Some(hook) = DETAIL_HOOK.get()
            && let Some(d) = hook(any)
        {
            return d;
        }
        Detail::text(format!("{self:?}"))
    }
}

/// Where a parked receiver gets its result: `Some(value)`, or `None` if the channel closed.
pub(crate) type RecvSlot<T> = Rc<RefCell<Option<Option<T>>>>;

/// What happened to a parked sender's value.
#[derive(Debug)]
pub(crate) enum SendState<T> {
    /// Still waiting for a receiver or for room.
    Pending(T),
    /// Delivered (to a receiver or into the buffer).
    Sent,
    /// The channel closed first; the value is kept for the sender (`SendError`).
    Closed(T),
}

/// Where a parked sender's value waits.
pub(crate) type SendSlot<T> = Rc<RefCell<SendState<T>>>;

/// How a parked send ended, read once by the woken sender (a send, a select's send case, a Lua
/// send): delivered, or the channel closed first (the value comes back in the error).
pub(crate) fn send_result<T>(slot: &SendSlot<T>) -> Result<(), SendError<T>> {
    match std::mem::replace(&mut *slot.borrow_mut(), SendState::Sent) {
        SendState::Sent => Ok(()),
        SendState::Closed(v) => Err(SendError(v)),
        SendState::Pending(_) => unreachable!("a woken sender is not pending"),
    }
}

/// A send failed because the channel is closed; the value is given back (tokio's `SendError`).
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<String>(1);
///     ch.close();
///     let err = ch.send("late".to_string()).await.unwrap_err();
///     assert_eq!(err.to_string(), "send on closed channel");
///     assert_eq!(err.0, "late"); // the value comes back
/// });
/// report.assert_pass();
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> std::fmt::Debug for SendError<T> {
    /// `SendError { .. }`, as tokio shows it: the value need not be `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendError").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("send on closed channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> std::fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("no available capacity"),
            TrySendError::Closed(_) => f.write_str("send on closed channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl std::fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// Why `try_send` did not send; the value is given back.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(1);
///     assert_eq!(ch.try_send(1), Ok(()));
///     assert_eq!(ch.try_send(2), Err(TrySendError::Full(2))); // no room, no receiver
///     ch.close();
///     assert_eq!(ch.try_send(3), Err(TrySendError::Closed(3)));
/// });
/// report.assert_pass();
/// ```
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// No receiver waiting and no room in the buffer.
    Full(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> std::fmt::Debug for TrySendError<T> {
    /// `Full(..)` or `Closed(..)`: the value need not be `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

/// Why `try_recv` got nothing.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(1);
///     assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
///     ch.try_send(9).expect("room");
///     ch.close();
///     assert_eq!(ch.try_recv(), Ok(9)); // buffered values outlive the close
///     assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing buffered and no sender waiting.
    Empty,
    /// Closed and drained.
    Closed,
}

/// The start of a blocking receive.
#[derive(Debug)]
pub(crate) enum RecvStart<T> {
    /// Completed at once: a value, or `None` when closed and drained.
    Ready(Option<T>),
    /// The current goroutine is parked; the slot is filled when it wakes.
    Parked(RecvSlot<T>),
}

/// The start of a blocking send.
#[derive(Debug)]
pub(crate) enum SendStart<T> {
    /// Completed at once: `true` sent, `false` the channel is closed.
    Done(bool),
    /// The current goroutine is parked; the slot says how it ended when it wakes.
    Parked(SendSlot<T>),
}

struct RecvWaiter<T> {
    parked: Rc<Parked>,
    case: usize,
    slot: RecvSlot<T>,
}

struct SendWaiter<T> {
    parked: Rc<Parked>,
    case: usize,
    slot: SendSlot<T>,
}

/// Whether a queued waiter can be a partner of the current task: live, and not one of the
/// current task's own (`me`: a Rust task whose other operations of this poll are parked; a
/// goroutine never meets itself on a channel, as in Go).
fn is_peer(parked: &Parked, me: Option<TaskId>) -> bool {
    parked.is_live() && me != Some(parked.task())
}

/// Takes the first waiter of `q` that can be the current task's partner (see `is_peer`),
/// dropping the dead ones ahead of it; the current task's own waiters keep their places.
fn take_peer<W>(
    q: &mut VecDeque<W>,
    parked: impl Fn(&W) -> &Rc<Parked>,
    me: Option<TaskId>,
) -> Option<W> {
    if me.is_none() {
        while let Some(w) = q.pop_front() {
            if parked(&w).is_live() {
                return Some(w);
            }
        }
        return None;
    }
    q.retain(|w| parked(w).is_live());
    let i = q.iter().position(|w| is_peer(parked(w), me))?;
    q.remove(i)
}

struct State<T> {
    cap: usize,
    buf: VecDeque<T>,
    closed: bool,
    recvq: VecDeque<RecvWaiter<T>>,
    sendq: VecDeque<SendWaiter<T>>,
    n_sent: u64,
    n_received: u64,
    /// Buffered values discarded without a receive (a timer's stale tick on stop/reset).
    n_dropped: u64,
}

type Shared<T> = Base<State<T>>;

/// A Go channel carrying values of type `T`. Clones are the same channel.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<&str>(1);
///     let tx = ch.clone(); // the same channel
///     tx.send("ping").await.expect("open");
///     assert_eq!((ch.len(), ch.cap()), (1, 1));
///     tx.close();
///     assert_eq!(ch.recv().await, Some("ping"));
///     assert_eq!(ch.recv().await, None); // closed and drained
/// });
/// report.assert_pass();
/// ```
pub struct Channel<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel {
            shared: self.shared.clone(),
        }
    }
}

debug_handle!(Channel<T>);

impl<T: Debug + 'static> Channel<T> {
    /// A channel with room for `cap` values (0: rendezvous).
    pub fn new(rt: &Runtime, cap: usize, created_at: Option<Rc<str>>) -> Channel<T> {
        let state = State {
            cap,
            buf: VecDeque::new(),
            closed: false,
            recvq: VecDeque::new(),
            sendq: VecDeque::new(),
            n_sent: 0,
            n_received: 0,
            n_dropped: 0,
        };
        Channel {
            shared: Base::new(rt, KIND, created_at, Some(format!("cap={cap}")), state),
        }
    }

    /// The channel's identity (for traces, reports and naming).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Whether two handles are the same channel.
    pub fn same(&self, other: &Channel<T>) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    fn rt(&self) -> &Runtime {
        &self.shared.rt
    }

    fn trace(&self, verb: &'static str, detail: impl FnOnce() -> Detail) {
        self.shared.record_with(verb, detail);
    }

    /// Traces one side of a transfer: the event of `task` (the current goroutine when `None`),
    /// whose value went to or came from `peer` (a parked goroutine, or the current one taking
    /// a parked goroutine's value), shown in the text as `shown` says.
    fn trace_handoff(
        &self,
        task: Option<TaskId>,
        verb: &'static str,
        peer: Option<(TaskId, PeerShown)>,
        detail: impl FnOnce() -> Detail,
    ) {
        let rt = self.rt();
        if rt.tracing() {
            let subject = Subject::Resource(self.shared.res.clone());
            rt.record_handoff(task, verb, subject, detail(), peer);
        }
    }

    /// Sends without blocking.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let me = self.rt().waiting_task();
        let mut st = self.shared.state.borrow_mut();
        if st.closed {
            return Err(TrySendError::Closed(value));
        }
        if let Some(w) = take_peer(&mut st.recvq, |w| &w.parked, me) {
            st.n_sent += 1;
            st.n_received += 1;
            drop(st);
            let receiver = w.parked.task();
            let to = Some((receiver, PeerShown::To));
            self.trace_handoff(None, "send", to, || value.trace_detail());
            self.trace_handoff(Some(receiver), "receive", None, || value.trace_detail());
            *w.slot.borrow_mut() = Some(Some(value));
            w.parked.fire(self.rt(), w.case);
            return Ok(());
        }
        if st.buf.len() < st.cap {
            st.n_sent += 1;
            drop(st);
            self.trace("send", || value.trace_detail());
            self.shared.state.borrow_mut().buf.push_back(value);
            return Ok(());
        }
        Err(TrySendError::Full(value))
    }

    /// Receives without blocking.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.shared.state.borrow_mut();
        if let Some(v) = st.buf.pop_front() {
            st.n_received += 1;
            // A parked sender can now put its value into the freed slot.
            let mut refilled = None;
            while let Some(w) = st.sendq.pop_front() {
                if !w.parked.is_live() {
                    continue;
                }
                let SendState::Pending(sv) =
                    std::mem::replace(&mut *w.slot.borrow_mut(), SendState::Sent)
                else {
                    unreachable!("a queued sender holds its value")
                };
                let shown = self.rt().tracing().then(|| sv.trace_detail());
                st.buf.push_back(sv);
                st.n_sent += 1;
                refilled = Some((w, shown));
                break;
            }
            drop(st);
            self.trace("receive", || v.trace_detail());
            if let Some((w, shown)) = refilled {
                // The parked sender's value enters the freed slot now: its send happens here.
                let shown = shown.unwrap_or(Detail::None);
                self.trace_handoff(Some(w.parked.task()), "send", None, || shown);
                w.parked.fire(self.rt(), w.case);
            }
            return Ok(v);
        }
        let me = self.rt().waiting_task();
        if let Some(w) = take_peer(&mut st.sendq, |w| &w.parked, me) {
            let SendState::Pending(v) =
                std::mem::replace(&mut *w.slot.borrow_mut(), SendState::Sent)
            else {
                unreachable!("a queued sender holds its value")
            };
            st.n_sent += 1;
            st.n_received += 1;
            drop(st);
            let sender = w.parked.task();
            let me = self.rt().try_current().unwrap_or(TaskId(0));
            let to = Some((me, PeerShown::To));
            self.trace_handoff(Some(sender), "send", to, || v.trace_detail());
            let from = Some((sender, PeerShown::From));
            self.trace_handoff(None, "receive", from, || v.trace_detail());
            w.parked.fire(self.rt(), w.case);
            return Ok(v);
        }
        if st.closed {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Drops the oldest buffered value without tracing a receive (a timer's stale tick being
    /// discarded by `stop`/`reset`). True if there was one.
    pub fn discard_buffered(&self) -> bool {
        let mut st = self.shared.state.borrow_mut();
        let dropped = st.buf.pop_front().is_some();
        if dropped {
            st.n_dropped += 1;
        }
        dropped
    }

    /// Receives, parking the current goroutine if nothing is available.
    pub(crate) fn recv_or_park(&self) -> RecvStart<T> {
        match self.try_recv() {
            Ok(v) => RecvStart::Ready(Some(v)),
            Err(TryRecvError::Closed) => {
                self.trace("receive", || Detail::Static(&"closed"));
                RecvStart::Ready(None)
            }
            Err(TryRecvError::Empty) => {
                let parked = Parked::new(self.rt().current());
                let slot: RecvSlot<T> = Rc::new(RefCell::new(None));
                self.register_recv(parked, 0, slot.clone());
                self.rt().block(Wait::on(RECEIVE, &self.shared.res));
                RecvStart::Parked(slot)
            }
        }
    }

    /// Sends, parking the current goroutine if no receiver or room is available.
    pub(crate) fn send_or_park(&self, value: T) -> SendStart<T> {
        match self.try_send(value) {
            Ok(()) => SendStart::Done(true),
            Err(TrySendError::Closed(_)) => {
                self.trace("send", || Detail::Static(&"closed"));
                SendStart::Done(false)
            }
            Err(TrySendError::Full(value)) => SendStart::Parked(self.park_send(value)),
        }
    }

    /// Parks the current goroutine as a sender of `value` (no receiver, no room).
    fn park_send(&self, value: T) -> SendSlot<T> {
        let parked = Parked::new(self.rt().current());
        let slot: SendSlot<T> = Rc::new(RefCell::new(SendState::Pending(value)));
        self.register_send(parked, 0, slot.clone());
        self.rt().block(Wait::on(SEND, &self.shared.res));
        slot
    }

    /// Adds a parked receiver (used by `recv_or_park` and `select`).
    pub(crate) fn register_recv(&self, parked: Rc<Parked>, case: usize, slot: RecvSlot<T>) {
        self.shared
            .state
            .borrow_mut()
            .recvq
            .push_back(RecvWaiter { parked, case, slot });
    }

    /// Adds a parked sender (used by `send_or_park` and `select`).
    pub(crate) fn register_send(&self, parked: Rc<Parked>, case: usize, slot: SendSlot<T>) {
        self.shared
            .state
            .borrow_mut()
            .sendq
            .push_back(SendWaiter { parked, case, slot });
    }

    /// Removes every registration of `parked` (a `select` that completed elsewhere).
    pub(crate) fn unregister(&self, parked: &Rc<Parked>) {
        let mut st = self.shared.state.borrow_mut();
        st.recvq.retain(|w| !Rc::ptr_eq(&w.parked, parked));
        st.sendq.retain(|w| !Rc::ptr_eq(&w.parked, parked));
    }

    /// Whether a receive would complete now (a value, a waiting sender, or closed).
    pub fn recv_ready(&self) -> bool {
        let me = self.rt().waiting_task();
        let st = self.shared.state.borrow();
        !st.buf.is_empty() || st.closed || st.sendq.iter().any(|w| is_peer(&w.parked, me))
    }

    /// Whether a send would complete now (room, a waiting receiver, or closed).
    pub fn send_ready(&self) -> bool {
        let me = self.rt().waiting_task();
        let st = self.shared.state.borrow();
        st.closed || st.buf.len() < st.cap || st.recvq.iter().any(|w| is_peer(&w.parked, me))
    }

    /// Closes the channel; false if it was already closed. Parked receivers get "closed",
    /// parked senders get "closed" and their values are dropped. Buffered values stay.
    pub fn close(&self) -> bool {
        let (receivers, senders) = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return false;
            }
            st.closed = true;
            (std::mem::take(&mut st.recvq), std::mem::take(&mut st.sendq))
        };
        self.trace("close", || Detail::None);
        for w in receivers {
            if w.parked.is_live() {
                *w.slot.borrow_mut() = Some(None);
                w.parked.fire(self.rt(), w.case);
            }
        }
        for w in senders {
            if w.parked.is_live() {
                let mut slot = w.slot.borrow_mut();
                if let SendState::Pending(v) = std::mem::replace(&mut *slot, SendState::Sent) {
                    *slot = SendState::Closed(v);
                }
                drop(slot);
                w.parked.fire(self.rt(), w.case);
            }
        }
        true
    }

    /// Values buffered now.
    pub fn len(&self) -> usize {
        self.shared.state.borrow().buf.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity.
    pub fn cap(&self) -> usize {
        self.shared.state.borrow().cap
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    /// Goroutines parked receiving (directly or in a select).
    pub fn blocked_receivers(&self) -> usize {
        self.shared
            .state
            .borrow()
            .recvq
            .iter()
            .filter(|w| w.parked.is_live())
            .count()
    }

    /// Goroutines parked sending.
    pub fn blocked_senders(&self) -> usize {
        self.shared
            .state
            .borrow()
            .sendq
            .iter()
            .filter(|w| w.parked.is_live())
            .count()
    }

    /// Values sent and values received so far.
    pub fn totals(&self) -> (u64, u64) {
        let st = self.shared.state.borrow();
        (st.n_sent, st.n_received)
    }

    /// Buffered values discarded without being received (timer ticks dropped by stop/reset).
    /// Always `sent == received + len + dropped`.
    pub fn dropped(&self) -> u64 {
        self.shared.state.borrow().n_dropped
    }
}

impl<T: Debug + 'static> super::context::CancelHook for Channel<T> {
    fn cancel(&self) {
        self.close();
    }

    fn has_waiters(&self) -> bool {
        self.blocked_receivers() > 0
    }
}

impl<T: Debug + 'static> Channel<T> {
    /// Sends `value`, waiting for a receiver or room; `Err(SendError(value))` if the channel is
    /// closed (before or while waiting): the value comes back.
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
    ///     let ch = s.channel::<u32>(0); // unbuffered: a send waits for its receiver
    ///     let (rx, t) = (ch.clone(), s.clone());
    ///     let receiver = s.spawn("receiver", async move {
    ///         t.sleep(Duration::from_millis(10)).await;
    ///         rx.recv().await
    ///     });
    ///     ch.send(7).await.expect("open");
    ///     assert_eq!(s.now(), Duration::from_millis(10));
    ///     assert_eq!(receiver.await.expect("no panic"), Some(7));
    ///     ch.close();
    ///     assert_eq!(ch.send(8).await, Err(SendError(8)));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn send(&self, value: T) -> SendFuture<T> {
        SendFuture {
            ch: self.clone(),
            state: SendFut::Start(value),
            location: std::panic::Location::caller(),
        }
    }

    /// Receives a value, waiting for one; `None` once the channel is closed and drained.
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
    ///     let ch = s.channel::<String>(0);
    ///     let (tx, t) = (ch.clone(), s.clone());
    ///     s.spawn("sender", async move {
    ///         t.sleep(Duration::from_millis(5)).await;
    ///         tx.send("hello".to_string()).await.expect("open");
    ///         tx.close();
    ///     });
    ///     assert_eq!(ch.recv().await.as_deref(), Some("hello"));
    ///     assert_eq!(s.now(), Duration::from_millis(5)); // waited for the sender
    ///     assert_eq!(ch.recv().await, None); // closed
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn recv(&self) -> RecvFuture<T> {
        self.recv_at(std::panic::Location::caller())
    }

    /// `recv` called at `location`.
    pub(crate) fn recv_at(&self, location: Loc) -> RecvFuture<T> {
        RecvFuture {
            ch: self.clone(),
            state: RecvFut::Start,
            location,
        }
    }
}

enum SendFut<T> {
    Start(T),
    Parked(Rc<Parked>, SendSlot<T>),
    Yielded(Result<(), SendError<T>>),
    Finished,
}

/// The future of `Channel::send`. No allocation: channel operations are the hot path.
///
/// Like every gosim operation it is `#[must_use]`: a send that is never awaited sends nothing,
/// and the compiler says so.
///
/// ```
/// let sim = gosim::sim::Sim::with_seed(1);
/// let ch = sim.channel::<u64>(1);
/// let report = sim.run(async move {
///     ch.send(1).await.expect("open");
/// });
/// assert!(report.outcome.is_pass());
/// ```
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let sim = gosim::sim::Sim::with_seed(1);
/// let ch = sim.channel::<u64>(1);
/// let report = sim.run(async move {
///     ch.send(1); // not awaited: nothing is sent
/// });
/// assert!(report.outcome.is_pass());
/// ```
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct SendFuture<T> {
    ch: Channel<T>,
    state: SendFut<T>,
    location: Loc,
}

impl<T> std::fmt::Debug for SendFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gosim::sync::SendFuture")
    }
}

impl<T> Unpin for SendFuture<T> {}

/// Ends an operation's result as a future does after its effect: returned now if the task keeps
/// running at the scheduling point, else held (`Yielded`) until the next poll. In a wait shared
/// with other operations of the task (`OpMode::Joined`), completing at once wins it, and the
/// result is held for the next poll (`Runtime::won_now`).
#[inline]
pub(crate) fn after_effect(rt: &Runtime, mode: OpMode) -> bool {
    if mode == OpMode::Joined {
        rt.won_now();
        rt.hold_result();
        return false;
    }
    rt.schedule_point_holding()
}

impl<T: Debug + 'static> SendFuture<T> {
    fn start(&mut self, value: T) -> Poll<Result<(), SendError<T>>> {
        let rt = self.ch.rt();
        let mode = rt.op_mode();
        if matches!(mode, OpMode::Later | OpMode::Refused) {
            self.state = SendFut::Start(value);
            return Poll::Pending;
        }
        let result = match self.ch.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(v)) => {
                self.ch.trace("send", || Detail::Static(&"closed"));
                Err(SendError(v))
            }
            Err(TrySendError::Full(value)) => {
                let parked = Parked::new(rt.current());
                let slot: SendSlot<T> = Rc::new(RefCell::new(SendState::Pending(value)));
                self.ch.register_send(parked.clone(), 0, slot.clone());
                rt.block_member(Wait::on(SEND, &self.ch.shared.res), &parked);
                park_at(rt, Some(self.location));
                self.state = SendFut::Parked(parked, slot);
                return Poll::Pending;
            }
        };
        if after_effect(rt, mode) {
            Poll::Ready(result)
        } else {
            self.state = SendFut::Yielded(result);
            Poll::Pending
        }
    }
}

impl<T: Debug + 'static> Future for SendFuture<T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, SendFut::Finished) {
            SendFut::Start(value) => this.start(value),
            SendFut::Parked(parked, slot) => {
                if parked.fired_case().is_some() {
                    if parked.take_claim() {
                        this.ch.rt().release_result();
                    }
                    return Poll::Ready(send_result(&slot));
                }
                // Another operation of the task's wait completed first: nobody took the value
                // (a queue skips a lost sender); start over with it.
                parked.lose();
                let SendState::Pending(value) =
                    std::mem::replace(&mut *slot.borrow_mut(), SendState::Sent)
                else {
                    unreachable!("a lost sender still holds its value")
                };
                this.start(value)
            }
            SendFut::Yielded(r) => {
                this.ch.rt().release_result();
                Poll::Ready(r)
            }
            SendFut::Finished => panic!("a gosim send was polled after it completed"),
        }
    }
}

impl<T> Drop for SendFuture<T> {
    fn drop(&mut self) {
        match &self.state {
            // Dropped while waiting (a `select!` took another branch): no queue completes it.
            SendFut::Parked(parked, _) => {
                if parked.take_claim() {
                    self.ch.shared.rt.release_result();
                }
                parked.lose();
            }
            SendFut::Yielded(_) => self.ch.shared.rt.release_result(),
            _ => {}
        }
    }
}

enum RecvFut<T> {
    Start,
    Parked(Rc<Parked>, RecvSlot<T>),
    Yielded(Option<T>),
    Finished,
}

/// The future of `Channel::recv`: `None` once closed and drained.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use gosim::sync::RecvFuture;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(1);
///     ch.try_send(4).expect("room");
///     let next: RecvFuture<u8> = ch.recv(); // nothing happens until awaited
///     assert_eq!(ch.len(), 1);
///     assert_eq!(next.await, Some(4));
/// });
/// report.assert_pass();
/// ```
#[must_use = "a gosim operation does nothing until it is awaited"]
pub struct RecvFuture<T> {
    ch: Channel<T>,
    state: RecvFut<T>,
    location: Loc,
}

impl<T> std::fmt::Debug for RecvFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gosim::sync::RecvFuture")
    }
}

impl<T> Unpin for RecvFuture<T> {}

impl<T: Debug + 'static> RecvFuture<T> {
    fn start(&mut self) -> Poll<Option<T>> {
        let rt = self.ch.rt();
        let mode = rt.op_mode();
        if matches!(mode, OpMode::Later | OpMode::Refused) {
            self.state = RecvFut::Start;
            return Poll::Pending;
        }
        let v = match self.ch.try_recv() {
            Ok(v) => Some(v),
            Err(TryRecvError::Closed) => {
                self.ch.trace("receive", || Detail::Static(&"closed"));
                None
            }
            Err(TryRecvError::Empty) => {
                let parked = Parked::new(rt.current());
                let slot: RecvSlot<T> = Rc::new(RefCell::new(None));
                self.ch.register_recv(parked.clone(), 0, slot.clone());
                rt.block_member(Wait::on(RECEIVE, &self.ch.shared.res), &parked);
                park_at(rt, Some(self.location));
                self.state = RecvFut::Parked(parked, slot);
                return Poll::Pending;
            }
        };
        if after_effect(rt, mode) {
            Poll::Ready(v)
        } else {
            self.state = RecvFut::Yielded(v);
            Poll::Pending
        }
    }
}

impl<T: Debug + 'static> Future for RecvFuture<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, RecvFut::Finished) {
            RecvFut::Start => this.start(),
            RecvFut::Parked(parked, slot) => {
                if parked.fired_case().is_some() {
                    if parked.take_claim() {
                        this.ch.rt().release_result();
                    }
                    return Poll::Ready(
                        slot.borrow_mut()
                            .take()
                            .expect("a woken receiver has its result"),
                    );
                }
                // Another operation of the task's wait completed first; nothing was received.
                parked.lose();
                this.start()
            }
            RecvFut::Yielded(v) => {
                this.ch.rt().release_result();
                Poll::Ready(v)
            }
            RecvFut::Finished => panic!("a gosim receive was polled after it completed"),
        }
    }
}

impl<T> Drop for RecvFuture<T> {
    fn drop(&mut self) {
        match &self.state {
            RecvFut::Parked(parked, _) => {
                if parked.take_claim() {
                    self.ch.shared.rt.release_result();
                }
                parked.lose();
            }
            RecvFut::Yielded(_) => self.ch.shared.rt.release_result(),
            _ => {}
        }
    }
}

impl<T: Debug + 'static> super::select::SelectArm for RecvFuture<T> {
    type Output = Option<T>;

    fn runtime(&self) -> &Runtime {
        self.ch.rt()
    }

    fn ready(&self) -> bool {
        self.ch.recv_ready()
    }

    fn perform(&mut self) -> Option<T> {
        match self.ch.try_recv() {
            Ok(v) => Some(v),
            Err(TryRecvError::Closed) => None,
            Err(TryRecvError::Empty) => unreachable!("a ready receive arm receives"),
        }
    }

    fn register(&mut self, parked: &Rc<Parked>, case: usize) -> ResourceRef {
        let slot: RecvSlot<T> = Rc::new(RefCell::new(None));
        self.ch.register_recv(parked.clone(), case, slot.clone());
        self.state = RecvFut::Parked(parked.clone(), slot);
        self.ch.resource().clone()
    }

    fn finish(&mut self, parked: &Rc<Parked>, won: bool) -> Option<Option<T>> {
        self.ch.unregister(parked);
        match std::mem::replace(&mut self.state, RecvFut::Start) {
            RecvFut::Parked(_, slot) if won => Some(
                slot.borrow_mut()
                    .take()
                    .expect("the completed receive arm has its result"),
            ),
            _ => None,
        }
    }
}

impl<T: Debug + 'static> super::select::SelectArm for SendFuture<T> {
    type Output = Result<(), SendError<T>>;

    fn runtime(&self) -> &Runtime {
        self.ch.rt()
    }

    fn ready(&self) -> bool {
        self.ch.send_ready()
    }

    fn perform(&mut self) -> Result<(), SendError<T>> {
        let SendFut::Start(value) = std::mem::replace(&mut self.state, SendFut::Finished) else {
            panic!("a gosim send arm was used twice");
        };
        match self.ch.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(v)) => Err(SendError(v)),
            Err(TrySendError::Full(_)) => unreachable!("a ready send arm sends"),
        }
    }

    fn register(&mut self, parked: &Rc<Parked>, case: usize) -> ResourceRef {
        let SendFut::Start(value) = std::mem::replace(&mut self.state, SendFut::Finished) else {
            panic!("a gosim send arm was used twice");
        };
        let slot: SendSlot<T> = Rc::new(RefCell::new(SendState::Pending(value)));
        self.ch.register_send(parked.clone(), case, slot.clone());
        self.state = SendFut::Parked(parked.clone(), slot);
        self.ch.resource().clone()
    }

    fn finish(&mut self, parked: &Rc<Parked>, won: bool) -> Option<Result<(), SendError<T>>> {
        self.ch.unregister(parked);
        let SendFut::Parked(_, slot) = std::mem::replace(&mut self.state, SendFut::Finished) else {
            return None;
        };
        if won {
            return Some(send_result(&slot));
        }
        // Not the completed arm: it keeps its value, for a select that starts over.
        if let SendState::Pending(v) = std::mem::replace(&mut *slot.borrow_mut(), SendState::Sent) {
            self.state = SendFut::Start(v);
        }
        None
    }
}
