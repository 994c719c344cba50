//! A channel with an overflow strategy (seed 1.1; ref: Kotlin channels' `BufferOverflow`): a Go
//! channel of capacity `cap` whose *sends* decide what a full buffer does.
//!
//! - `Block`: a Go send (waits for room, with an optional timeout).
//! - `DropOldest`: evicts the head of the buffer and enqueues; the send succeeds.
//! - `DropNewest`: discards the incoming value; the send reports `Dropped`.
//! - `Error`: refuses (`Full`), enqueuing nothing.
//!
//! It *is* a [`Channel`] underneath (`channel()`), so receives, `close`, `len`, `cap`, `range`
//! and a select's receive case work unchanged; only sends must go through this type (a plain
//! channel send would block under every strategy). A strategy other than `Block` needs a buffer
//! (capacity ≥ 1). Close never crashes: a send after it reports `Closed`.

use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::nanos;
use crate::runtime::{Blocking, Nanos, Runtime, Subject};
use crate::sync::{
    Begin, Channel, Describe, Op, Parked, RecvSlot, SendSlot, SendState, TIMED_OUT, Timeout,
    TryRecvError, TrySendError, block_timed, send_result,
};

const SEND: Blocking = Blocking::new("send", "block-send");
const RECEIVE: Blocking = Blocking::new("receive", "block-receive");

/// What a send does when the buffer is full.
///
/// # Examples
///
/// ```
/// use gosim::patterns::OverflowStrategy;
///
/// assert_eq!(OverflowStrategy::parse("drop_oldest"), Some(OverflowStrategy::DropOldest));
/// assert_eq!(OverflowStrategy::DropNewest.name(), "drop_newest");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowStrategy {
    /// Wait for room (a Go channel).
    Block,
    /// Evict the oldest buffered value.
    DropOldest,
    /// Discard the value being sent.
    DropNewest,
    /// Refuse the send.
    Error,
}

impl OverflowStrategy {
    /// The strategy named as in Lua (`"drop_oldest"`...).
    pub fn parse(s: &str) -> Option<OverflowStrategy> {
        Some(match s {
            "block" => OverflowStrategy::Block,
            "drop_oldest" => OverflowStrategy::DropOldest,
            "drop_newest" => OverflowStrategy::DropNewest,
            "error" => OverflowStrategy::Error,
            _ => return None,
        })
    }

    /// Its Lua name.
    pub fn name(self) -> &'static str {
        match self {
            OverflowStrategy::Block => "block",
            OverflowStrategy::DropOldest => "drop_oldest",
            OverflowStrategy::DropNewest => "drop_newest",
            OverflowStrategy::Error => "error",
        }
    }
}

/// How a send ended.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{OverflowChannel, OverflowStrategy, SendOutcome};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = OverflowChannel::new(s.runtime(), 1, OverflowStrategy::Error, None);
///     assert_eq!(ch.send(1, None).await, SendOutcome::Sent);
///     assert_eq!(ch.send(2, None).await, SendOutcome::Full); // refused, not queued
///     ch.close();
///     assert_eq!(ch.send(3, None).await, SendOutcome::Closed);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Enqueued (or handed to a receiver). Under `DropOldest` the head may have been evicted.
    Sent,
    /// `DropNewest` discarded the value (the buffer was full).
    Dropped,
    /// `Error` refused the value (the buffer was full).
    Full,
    /// The channel is closed; the value was not sent.
    Closed,
    /// `Block`: the timeout passed first; the value was not sent.
    Timeout,
}

/// A channel whose sends follow an [`OverflowStrategy`]. Clones are the same channel.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{OverflowChannel, OverflowStrategy, SendOutcome};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = OverflowChannel::new(s.runtime(), 2, OverflowStrategy::DropOldest, None);
///     for v in 1..=3 {
///         ch.send(v, None).await; // never blocks: the oldest value makes room
///     }
///     assert_eq!(ch.evicted(), 1);
///     assert_eq!(ch.recv().await, Some(2));
///     assert_eq!(ch.recv().await, Some(3));
///     assert_eq!(ch.send(4, None).await, SendOutcome::Sent);
/// });
/// report.assert_pass();
/// ```
pub struct OverflowChannel<T> {
    ch: Channel<T>,
    strategy: OverflowStrategy,
}

impl<T> Clone for OverflowChannel<T> {
    fn clone(&self) -> Self {
        OverflowChannel {
            ch: self.ch.clone(),
            strategy: self.strategy,
        }
    }
}

impl<T> std::fmt::Debug for OverflowChannel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OverflowChannel({:?}, {})",
            self.ch,
            self.strategy.name()
        )
    }
}

impl<T: Debug + 'static> OverflowChannel<T> {
    /// A channel of capacity `cap` with `strategy`. Panics if a dropping or refusing strategy
    /// has no buffer (`cap == 0`): it could never hold a value to drop.
    pub fn new(
        rt: &Runtime,
        cap: usize,
        strategy: OverflowStrategy,
        created_at: Option<Rc<str>>,
    ) -> OverflowChannel<T> {
        assert!(
            cap > 0 || strategy == OverflowStrategy::Block,
            "strategy {} needs a capacity of at least 1",
            strategy.name()
        );
        let ch = Channel::new(rt, cap, created_at);
        if strategy != OverflowStrategy::Block {
            ch.resource()
                .set_name(&format!("{} channel", strategy.name()));
        }
        OverflowChannel { ch, strategy }
    }

    /// The channel underneath: receive, close, inspect or select on it (send through `send`).
    pub fn channel(&self) -> &Channel<T> {
        &self.ch
    }

    /// Its strategy.
    pub fn strategy(&self) -> OverflowStrategy {
        self.strategy
    }

    /// Values evicted by `DropOldest` so far.
    pub fn evicted(&self) -> u64 {
        self.ch.dropped()
    }

    fn trace(&self, verb: &'static str, detail: String) {
        let rt = self.ch.rt_handle();
        if rt.tracing() {
            rt.emit(
                verb,
                Subject::Resource(self.ch.resource().clone()),
                Some(detail),
            );
        }
    }

    /// Sends now under the strategy, or (`Block`, full) parks until room or `timeout`.
    fn send_or_park(&self, v: T, timeout: Option<Nanos>) -> Begin<SendOutcome> {
        let v = match self.ch.try_send(v) {
            Ok(()) => return Begin::Done(SendOutcome::Sent),
            Err(TrySendError::Closed(_)) => {
                self.trace("send", "closed".to_string());
                return Begin::Done(SendOutcome::Closed);
            }
            Err(TrySendError::Full(v)) => v,
        };
        match self.strategy {
            OverflowStrategy::DropOldest => {
                self.ch.discard_buffered();
                self.trace("drop-oldest", "head evicted".to_string());
                match self.ch.try_send(v) {
                    Ok(()) => Begin::Done(SendOutcome::Sent),
                    // Unreachable through this type's sends; a full buffer again means a plain
                    // sender parked on the channel took the freed slot: report the drop.
                    Err(_) => Begin::Done(SendOutcome::Dropped),
                }
            }
            OverflowStrategy::DropNewest => {
                self.trace("drop-newest", v.describe());
                Begin::Done(SendOutcome::Dropped)
            }
            OverflowStrategy::Error => {
                self.trace("send", format!("{} full", v.describe()));
                Begin::Done(SendOutcome::Full)
            }
            OverflowStrategy::Block => {
                if timeout == Some(0) {
                    self.trace("send", format!("{} full", v.describe()));
                    return Begin::Done(SendOutcome::Timeout);
                }
                let rt = self.ch.rt_handle();
                let parked = Parked::new(rt.current());
                let slot: SendSlot<T> = Rc::new(std::cell::RefCell::new(SendState::Pending(v)));
                self.ch.register_send(parked.clone(), 0, slot.clone());
                let ch = self.ch.clone();
                let key = block_timed(&rt, SEND, self.ch.resource(), &parked, timeout, {
                    move |rt, p| {
                        ch.unregister(p);
                        if rt.tracing() {
                            let subject = Subject::Resource(ch.resource().clone());
                            rt.emit_as(p.task(), "timeout", subject, Some("send".into()), None);
                        }
                    }
                });
                Begin::Parked(Box::new(move || {
                    if parked.fired_case() == Some(TIMED_OUT) {
                        return SendOutcome::Timeout;
                    }
                    let _ = parked.timed_result(&rt, key);
                    match send_result(&slot) {
                        Ok(()) => SendOutcome::Sent,
                        Err(_) => SendOutcome::Closed,
                    }
                }))
            }
        }
    }

    /// Sends `v` under the strategy (`timeout` only matters to `Block`; `Some(ZERO)`: a try).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{OverflowChannel, OverflowStrategy, SendOutcome};
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let ch = OverflowChannel::new(s.runtime(), 1, OverflowStrategy::Block, None);
    ///     ch.send("a", None).await;
    ///     let r = ch.send("b", Some(Duration::from_millis(5))).await; // Block waits for room
    ///     assert_eq!(r, SendOutcome::Timeout);
    ///     assert_eq!(s.now(), Duration::from_millis(5));
    ///     let drop_newest = OverflowChannel::new(s.runtime(), 1, OverflowStrategy::DropNewest, None);
    ///     drop_newest.send("x", None).await;
    ///     assert_eq!(drop_newest.send("y", None).await, SendOutcome::Dropped);
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn send(&self, v: T, timeout: Option<Duration>) -> Op<SendOutcome> {
        let this = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.ch.rt_handle(), Some(loc), move || {
            this.send_or_park(v, timeout)
        })
    }

    /// Receives (as `Channel::recv`): `None` once closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{OverflowChannel, OverflowStrategy};
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let ch = OverflowChannel::<u8>::new(s.runtime(), 2, OverflowStrategy::DropNewest, None);
    ///     let (c, t) = (ch.clone(), s.clone());
    ///     s.spawn("sender", async move {
    ///         t.sleep(Duration::from_millis(3)).await;
    ///         c.send(1, None).await;
    ///         c.close();
    ///     });
    ///     assert_eq!(ch.recv().await, Some(1)); // a plain channel receive: waits for a value
    ///     assert_eq!(s.now(), Duration::from_millis(3));
    ///     assert_eq!(ch.recv().await, None);
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn recv(&self) -> crate::sync::RecvFuture<T> {
        self.ch.recv()
    }

    /// Receives with a deadline: `Ok(Some(v))`, `Ok(None)` once closed and drained, or
    /// `Err(Timeout)` if `timeout` passes first (`Some(ZERO)`: a try). A timed-out receiver
    /// leaves the channel's queue and takes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{OverflowChannel, OverflowStrategy};
    /// use gosim::sync::Timeout;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let ch = OverflowChannel::<u8>::new(s.runtime(), 1, OverflowStrategy::DropOldest, None);
    ///     assert_eq!(ch.recv_timeout(Some(Duration::from_millis(8))).await, Err(Timeout));
    ///     assert_eq!(s.now(), Duration::from_millis(8));
    ///     ch.close();
    ///     assert_eq!(ch.recv_timeout(None).await, Ok(None));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Option<Duration>) -> Op<Result<Option<T>, Timeout>> {
        let ch = self.ch.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.ch.rt_handle(), Some(loc), move || {
            match ch.try_recv() {
                Ok(v) => return Begin::Done(Ok(Some(v))),
                Err(TryRecvError::Closed) => return Begin::Done(Ok(None)),
                Err(TryRecvError::Empty) => {}
            }
            let rt = ch.rt_handle();
            if timeout == Some(0) {
                if rt.tracing() {
                    let subject = Subject::Resource(ch.resource().clone());
                    rt.emit("receive", subject, Some("empty".to_string()));
                }
                return Begin::Done(Err(Timeout));
            }
            let parked = Parked::new(rt.current());
            let slot: RecvSlot<T> = Rc::new(std::cell::RefCell::new(None));
            ch.register_recv(parked.clone(), 0, slot.clone());
            let ch2 = ch.clone();
            let key = block_timed(
                &rt,
                RECEIVE,
                ch.resource(),
                &parked,
                timeout,
                move |rt, p| {
                    ch2.unregister(p);
                    if rt.tracing() {
                        let subject = Subject::Resource(ch2.resource().clone());
                        rt.emit_as(p.task(), "timeout", subject, Some("receive".into()), None);
                    }
                },
            );
            Begin::Parked(Box::new(move || {
                if parked.fired_case() == Some(TIMED_OUT) {
                    return Err(Timeout);
                }
                let _ = parked.timed_result(&rt, key);
                Ok(slot
                    .borrow_mut()
                    .take()
                    .expect("a woken receiver has its result"))
            }))
        })
    }

    /// Closes it; false if already closed. Receivers drain, then get `None`.
    pub fn close(&self) -> bool {
        self.ch.close()
    }

    /// Values buffered now (never more than `cap`).
    pub fn len(&self) -> usize {
        self.ch.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.ch.is_empty()
    }

    /// Its capacity.
    pub fn cap(&self) -> usize {
        self.ch.cap()
    }
}
