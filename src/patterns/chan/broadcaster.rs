//! A broadcaster (seed 1.4), as tokio's `broadcast`: every subscriber sees every value broadcast
//! after it subscribed, in order, each through its own buffer of `capacity` values.
//!
//! - `Lagging::Block` (the default): a full subscriber buffer makes `broadcast` wait (FIFO among
//!   broadcasters, all or nothing: a value enters every buffer at once), so nothing is lost.
//! - `Lagging::DropOldest`: `broadcast` never waits; a full buffer loses its oldest value and the
//!   subscriber counts it. The next receive *observes* the lag: it adds it to `missed()` and
//!   returns the oldest value kept (tokio returns `Lagged(n)` first; a Lua `range` would then
//!   stop, so here the count is a side channel and the stream goes on).
//! - tokio#2425 (spurious lag): a lag is counted only when a value is actually evicted, never
//!   from positions, so a subscriber that keeps up (even exactly at capacity) never lags.
//! - `close`: broadcasts fail with `Closed`; subscribers drain their buffers, then get `None`.
//!   `unsubscribe` drops the subscriber's buffer, ends its receives, and may let a blocked
//!   broadcast go.
//!
//! Anyone may receive, broadcast or close, so waits are `released_by_anyone` (no false cycle).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::nanos;
use crate::runtime::{Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TimerKey};
use crate::sync::{
    Base, Begin, Describe, Op, Parked, RecvSlot, TIMED_OUT, Timeout, block_timed, debug_handle,
};

const KIND: ResourceKind = ResourceKind::released_by_anyone("broadcaster");
const RECEIVE: Blocking = Blocking::new("receive", "block-receive");
const BROADCAST: Blocking = Blocking::new("broadcast", "block-broadcast");

/// What a broadcaster does when a subscriber's buffer is full.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{Broadcaster, Lagging};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     // DropOldest: a full subscriber loses its oldest value instead of blocking the sender.
///     let b = Broadcaster::<u8>::new(s.runtime(), 1, Lagging::DropOldest, None);
///     let sub = b.subscribe();
///     b.broadcast(1, None).await.expect("open");
///     b.broadcast(2, None).await.expect("open");
///     assert_eq!(sub.recv(None).await, Ok(Some(2)));
///     assert_eq!(sub.missed(), 1);
///     assert_eq!(Lagging::DropOldest.name(), "drop_oldest");
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lagging {
    /// `broadcast` waits for room in every buffer (nothing is lost).
    Block,
    /// The full buffer drops its oldest value; the subscriber counts it in `missed()`.
    DropOldest,
}

impl Lagging {
    /// The option's name in Lua (`"block"`, `"drop_oldest"`).
    pub fn name(self) -> &'static str {
        match self {
            Lagging::Block => "block",
            Lagging::DropOldest => "drop_oldest",
        }
    }
}

/// Why a broadcast delivered nothing.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{BroadcastError, Broadcaster, Lagging};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let b = Broadcaster::<u8>::new(s.runtime(), 1, Lagging::Block, None);
///     let _sub = b.subscribe();
///     b.broadcast(1, None).await.expect("room");
///     let full = b.broadcast(2, Some(Duration::from_millis(5))).await;
///     assert_eq!(full, Err(BroadcastError::Timeout)); // the subscriber never read
///     b.close();
///     assert_eq!(b.broadcast(3, None).await, Err(BroadcastError::Closed));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastError {
    /// Its timeout passed while a subscriber's buffer stayed full.
    Timeout,
    /// The broadcaster is closed.
    Closed,
}

impl std::fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BroadcastError::Timeout => "timeout",
            BroadcastError::Closed => "closed",
        })
    }
}

impl std::error::Error for BroadcastError {}

struct RecvWaiter<T> {
    parked: Rc<Parked>,
    slot: RecvSlot<T>,
}

struct Sub<T> {
    buf: VecDeque<T>,
    /// Values evicted and not yet observed by a receive.
    lag: u64,
    /// Values lost, as observed by receives (cumulative).
    missed: u64,
    active: bool,
    waiters: VecDeque<RecvWaiter<T>>,
}

type SendResult = Rc<Cell<Option<Result<usize, BroadcastError>>>>;

struct SendWaiter<T> {
    parked: Rc<Parked>,
    value: Option<T>,
    result: SendResult,
}

struct State<T> {
    cap: usize,
    lagging: Lagging,
    closed: bool,
    subs: BTreeMap<u64, Sub<T>>,
    next_id: u64,
    /// Values delivered so far.
    sent: u64,
    sendq: VecDeque<SendWaiter<T>>,
}

type Shared<T> = Base<State<T>>;

/// A broadcaster of `T` values. Clones are the same broadcaster.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{Broadcaster, Lagging};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let news = Broadcaster::<&str>::new(s.runtime(), 4, Lagging::Block, None);
///     let (a, b) = (news.subscribe(), news.subscribe());
///     assert_eq!(news.broadcast("hello", None).await, Ok(2)); // every subscriber gets it
///     assert_eq!(a.recv(None).await, Ok(Some("hello")));
///     assert_eq!(b.recv(None).await, Ok(Some("hello")));
///     news.close();
///     assert_eq!(a.recv(None).await, Ok(None)); // closed and drained
/// });
/// report.assert_pass();
/// ```
pub struct Broadcaster<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for Broadcaster<T> {
    fn clone(&self) -> Self {
        Broadcaster {
            shared: self.shared.clone(),
        }
    }
}

debug_handle!(Broadcaster<T>);

/// One subscriber of a broadcaster (or of a pub/sub topic). Clones are the same subscriber.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{Broadcaster, Lagging};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let b = Broadcaster::<u32>::new(s.runtime(), 2, Lagging::Block, None);
///     let sub = b.subscribe();
///     b.broadcast(1, None).await.expect("open");
///     assert_eq!(sub.len(), 1);
///     assert!(sub.unsubscribe());
///     assert_eq!(b.receiver_count(), 0);
///     assert_eq!(sub.recv(None).await, Ok(None)); // unsubscribed
/// });
/// report.assert_pass();
/// ```
pub struct Subscriber<T> {
    bc: Broadcaster<T>,
    id: u64,
}

impl<T> Clone for Subscriber<T> {
    fn clone(&self) -> Self {
        Subscriber {
            bc: self.bc.clone(),
            id: self.id,
        }
    }
}

impl<T> std::fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subscriber({} of {})", self.id, self.bc.shared.res)
    }
}

impl<T> std::fmt::Display for Subscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "subscriber {} of {}", self.id, self.bc.shared.res)
    }
}

/// How a receive starts.
enum RecvStart<T> {
    Ready(Option<T>),
    Refused,
    Parked(Rc<Parked>, RecvSlot<T>, Option<TimerKey>),
}

/// How a broadcast starts.
enum SendStart {
    Done(Result<usize, BroadcastError>),
    Parked(Rc<Parked>, SendResult, Option<TimerKey>),
}

impl<T: Clone + Debug + 'static> Broadcaster<T> {
    /// A broadcaster whose subscribers buffer `capacity` values each (`capacity > 0`).
    pub fn new(
        rt: &Runtime,
        capacity: usize,
        lagging: Lagging,
        created_at: Option<Rc<str>>,
    ) -> Broadcaster<T> {
        assert!(capacity > 0, "a broadcaster buffers at least one value");
        let detail = format!("cap={capacity} overflow={}", lagging.name());
        Broadcaster {
            shared: Base::new(
                rt,
                KIND,
                created_at,
                Some(detail),
                State {
                    cap: capacity,
                    lagging,
                    closed: false,
                    subs: BTreeMap::new(),
                    next_id: 1,
                    sent: 0,
                    sendq: VecDeque::new(),
                },
            ),
        }
    }

    /// Its identity (`broadcaster#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Whether two handles are the same broadcaster.
    pub fn same(&self, other: &Broadcaster<T>) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// Each subscriber's buffer size.
    pub fn capacity(&self) -> usize {
        self.shared.state.borrow().cap
    }

    /// What a full buffer does.
    pub fn lagging(&self) -> Lagging {
        self.shared.state.borrow().lagging
    }

    /// Subscribers now (not unsubscribed).
    pub fn receiver_count(&self) -> usize {
        let st = self.shared.state.borrow();
        st.subs.values().filter(|s| s.active).count()
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    /// Values broadcast so far (delivered to every subscriber of their instant, even none): a
    /// subscriber sees the values numbered from this count at its subscription on.
    pub fn sent(&self) -> u64 {
        self.shared.state.borrow().sent
    }

    fn trace(&self, verb: &'static str, detail: impl FnOnce() -> Option<String>) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            rt.emit(verb, Subject::Resource(self.shared.res.clone()), detail());
        }
    }

    fn trace_as(&self, task: crate::runtime::TaskId, verb: &'static str, detail: Option<String>) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            let subject = Subject::Resource(self.shared.res.clone());
            rt.emit_as(task, verb, subject, detail, None);
        }
    }

    /// A new subscriber: it sees every value broadcast from now on. After `close` it is a
    /// subscriber that receives nothing (its first receive gives `None`). Not a scheduling point.
    pub fn subscribe(&self) -> Subscriber<T> {
        let id = {
            let mut st = self.shared.state.borrow_mut();
            let id = st.next_id;
            st.next_id += 1;
            st.subs.insert(
                id,
                Sub {
                    buf: VecDeque::new(),
                    lag: 0,
                    missed: 0,
                    active: true,
                    waiters: VecDeque::new(),
                },
            );
            id
        };
        self.trace("subscribe", || Some(format!("sub={id}")));
        Subscriber {
            bc: self.clone(),
            id,
        }
    }

    /// Whether every subscriber's buffer has room (or `DropOldest`, which always has).
    fn has_room(st: &State<T>) -> bool {
        st.lagging == Lagging::DropOldest
            || st
                .subs
                .values()
                .filter(|s| s.active)
                .all(|s| s.buf.len() < st.cap)
    }

    /// Puts `v` into every subscriber's buffer (handing it to a waiting receiver directly),
    /// evicting the oldest value of a full buffer under `DropOldest`. Returns how many
    /// subscribers it reached and the receivers to wake with their values.
    fn deliver(st: &mut State<T>, v: &T) -> (usize, Vec<(RecvWaiter<T>, T)>) {
        let cap = st.cap;
        st.sent += 1;
        let mut n = 0;
        let mut wake = Vec::new();
        for sub in st.subs.values_mut().filter(|s| s.active) {
            n += 1;
            if sub.buf.is_empty() {
                // A parked receiver only waits on an empty buffer: it takes the value directly.
                let mut handed = false;
                while let Some(w) = sub.waiters.pop_front() {
                    if w.parked.is_live() {
                        wake.push((w, v.clone()));
                        handed = true;
                        break;
                    }
                }
                if handed {
                    continue;
                }
            }
            if sub.buf.len() >= cap {
                sub.buf.pop_front();
                sub.lag += 1;
            }
            sub.buf.push_back(v.clone());
        }
        (n, wake)
    }

    fn wake_receivers(&self, wake: Vec<(RecvWaiter<T>, T)>) {
        for (w, v) in wake {
            if self.shared.rt.tracing() {
                self.trace_as(w.parked.task(), "receive", Some(v.describe()));
            }
            *w.slot.borrow_mut() = Some(Some(v));
            w.parked.fire(&self.shared.rt, 0);
        }
    }

    /// Broadcasts `v` now, or parks the current goroutine until every buffer has room (under
    /// `Block`), or until `timeout` passes (`Some(0)`: a try).
    fn broadcast_or_park(&self, v: T, timeout: Option<Nanos>) -> SendStart {
        let rt = &self.shared.rt;
        let mut st = self.shared.state.borrow_mut();
        if st.closed {
            drop(st);
            self.trace("broadcast", || Some("closed".to_string()));
            return SendStart::Done(Err(BroadcastError::Closed));
        }
        let queued = st.sendq.iter().any(|w| w.parked.is_live());
        if !queued && Self::has_room(&st) {
            let (n, wake) = Self::deliver(&mut st, &v);
            drop(st);
            self.trace("broadcast", || Some(format!("{} n={n}", v.describe())));
            self.wake_receivers(wake);
            return SendStart::Done(Ok(n));
        }
        if timeout == Some(0) {
            drop(st);
            self.trace("broadcast", || Some(format!("{} full", v.describe())));
            return SendStart::Done(Err(BroadcastError::Timeout));
        }
        let parked = Parked::new(rt.current());
        let result: SendResult = Rc::new(Cell::new(None));
        st.sendq.push_back(SendWaiter {
            parked: parked.clone(),
            value: Some(v),
            result: result.clone(),
        });
        drop(st);
        let bc = self.clone();
        let key = block_timed(
            rt,
            BROADCAST,
            &self.shared.res,
            &parked,
            timeout,
            move |rt, p| {
                bc.shared
                    .state
                    .borrow_mut()
                    .sendq
                    .retain(|w| !Rc::ptr_eq(&w.parked, p));
                bc.trace_as(p.task(), "timeout", Some("broadcast".to_string()));
                let _ = rt;
                bc.pump();
            },
        );
        SendStart::Parked(parked, result, key)
    }

    /// Lets queued broadcasts go, in order, while every buffer has room.
    fn pump(&self) {
        loop {
            let (w, n, wake) = {
                let mut st = self.shared.state.borrow_mut();
                while st.sendq.front().is_some_and(|w| !w.parked.is_live()) {
                    st.sendq.pop_front();
                }
                if st.sendq.is_empty() || !Self::has_room(&st) {
                    return;
                }
                let mut w = st.sendq.pop_front().expect("front exists");
                let v = w.value.take().expect("a queued broadcast holds its value");
                let (n, wake) = Self::deliver(&mut st, &v);
                if self.shared.rt.tracing() {
                    self.trace_as(
                        w.parked.task(),
                        "broadcast",
                        Some(format!("{} n={n}", v.describe())),
                    );
                }
                (w, n, wake)
            };
            w.result.set(Some(Ok(n)));
            w.parked.fire(&self.shared.rt, 0);
            self.wake_receivers(wake);
        }
    }

    /// Sends `v` to every subscriber; `Ok(n)`: the number of subscribers it reached (0: none).
    /// Under `Block` it waits while a buffer is full, until `timeout` (`Some(ZERO)`: a try);
    /// `Err(Timeout)` then delivered nothing. `Err(Closed)` after `close`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{Broadcaster, Lagging};
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let b = Broadcaster::<u8>::new(s.runtime(), 1, Lagging::Block, None);
    ///     let (sub, t) = (b.subscribe(), s.clone());
    ///     b.broadcast(1, None).await.expect("room");
    ///     s.spawn("reader", async move {
    ///         t.sleep(Duration::from_millis(10)).await;
    ///         while let Ok(Some(_)) = sub.recv(None).await {}
    ///     });
    ///     assert_eq!(b.broadcast(2, None).await, Ok(1)); // waited for room
    ///     assert_eq!(s.now(), Duration::from_millis(10));
    ///     b.close();
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn broadcast(&self, v: T, timeout: Option<Duration>) -> Op<Result<usize, BroadcastError>> {
        let bc = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            match bc.broadcast_or_park(v, timeout) {
                SendStart::Done(r) => Begin::Done(r),
                SendStart::Parked(parked, result, key) => {
                    let rt = bc.shared.rt.clone();
                    Begin::Parked(Box::new(move || {
                        if parked.timed_result(&rt, key).is_err() {
                            return Err(BroadcastError::Timeout);
                        }
                        result.take().expect("a woken broadcast has its result")
                    }))
                }
            }
        })
    }

    /// Closes it; false if it was already closed. Queued broadcasts fail with `Closed`;
    /// subscribers drain their buffers, then receive `None`.
    pub fn close(&self) -> bool {
        let (senders, receivers) = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return false;
            }
            st.closed = true;
            let senders = std::mem::take(&mut st.sendq);
            let mut receivers = Vec::new();
            for sub in st.subs.values_mut() {
                receivers.extend(sub.waiters.drain(..));
            }
            (senders, receivers)
        };
        self.trace("close", || None);
        for w in senders {
            if w.parked.is_live() {
                w.result.set(Some(Err(BroadcastError::Closed)));
                w.parked.fire(&self.shared.rt, 0);
            }
        }
        for w in receivers {
            if w.parked.is_live() {
                *w.slot.borrow_mut() = Some(None);
                w.parked.fire(&self.shared.rt, 0);
            }
        }
        true
    }

    fn recv_or_park(&self, id: u64, timeout: Option<Nanos>) -> RecvStart<T> {
        let rt = &self.shared.rt;
        let mut st = self.shared.state.borrow_mut();
        let closed = st.closed;
        let sub = st.subs.get_mut(&id).expect("a subscriber's entry stays");
        if !sub.active {
            drop(st);
            self.trace("receive", || Some(format!("sub={id} unsubscribed")));
            return RecvStart::Ready(None);
        }
        if let Some(v) = sub.buf.pop_front() {
            let lag = std::mem::take(&mut sub.lag);
            sub.missed += lag;
            drop(st);
            self.trace("receive", || {
                Some(if lag > 0 {
                    format!("{} sub={id} missed={lag}", v.describe())
                } else {
                    format!("{} sub={id}", v.describe())
                })
            });
            self.pump();
            return RecvStart::Ready(Some(v));
        }
        if closed {
            drop(st);
            self.trace("receive", || Some(format!("sub={id} closed")));
            return RecvStart::Ready(None);
        }
        if timeout == Some(0) {
            drop(st);
            self.trace("receive", || Some(format!("sub={id} empty")));
            return RecvStart::Refused;
        }
        let parked = Parked::new(rt.current());
        let slot: RecvSlot<T> = Rc::new(RefCell::new(None));
        sub.waiters.push_back(RecvWaiter {
            parked: parked.clone(),
            slot: slot.clone(),
        });
        drop(st);
        let bc = self.clone();
        let key = block_timed(
            rt,
            RECEIVE,
            &self.shared.res,
            &parked,
            timeout,
            move |_, p| {
                if let Some(sub) = bc.shared.state.borrow_mut().subs.get_mut(&id) {
                    sub.waiters.retain(|w| !Rc::ptr_eq(&w.parked, p));
                }
                bc.trace_as(p.task(), "timeout", Some(format!("receive sub={id}")));
            },
        );
        RecvStart::Parked(parked, slot, key)
    }

    fn unsubscribe_id(&self, id: u64) -> bool {
        let waiters = {
            let mut st = self.shared.state.borrow_mut();
            let sub = st.subs.get_mut(&id).expect("a subscriber's entry stays");
            if !sub.active {
                return false;
            }
            sub.active = false;
            sub.buf.clear();
            sub.lag = 0;
            std::mem::take(&mut sub.waiters)
        };
        self.trace("unsubscribe", || Some(format!("sub={id}")));
        for w in waiters {
            if w.parked.is_live() {
                *w.slot.borrow_mut() = Some(None);
                w.parked.fire(&self.shared.rt, 0);
            }
        }
        self.pump();
        true
    }
}

impl<T: Clone + Debug + 'static> Subscriber<T> {
    /// The broadcaster it belongs to.
    pub fn broadcaster(&self) -> &Broadcaster<T> {
        &self.bc
    }

    /// Its number within its broadcaster (1, 2, ... in subscription order).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next value: `Ok(Some(v))`; `Ok(None)` once unsubscribed, or closed and drained;
    /// `Err(Timeout)` if `timeout` passes first (`Some(ZERO)`: a try). A receive after a lag
    /// adds the lag to `missed()` and returns the oldest value kept.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{Broadcaster, Lagging};
    /// use gosim::sync::Timeout;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let b = Broadcaster::<u8>::new(s.runtime(), 1, Lagging::Block, None);
    ///     let sub = b.subscribe();
    ///     assert_eq!(sub.recv(Some(Duration::from_millis(3))).await, Err(Timeout));
    ///     assert_eq!(s.now(), Duration::from_millis(3));
    ///     b.broadcast(9, None).await.expect("room");
    ///     assert_eq!(sub.recv(None).await, Ok(Some(9)));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn recv(&self, timeout: Option<Duration>) -> Op<Result<Option<T>, Timeout>> {
        let (bc, id) = (self.bc.clone(), self.id);
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.bc.shared.rt, Some(loc), move || {
            match bc.recv_or_park(id, timeout) {
                RecvStart::Ready(v) => Begin::Done(Ok(v)),
                RecvStart::Refused => Begin::Done(Err(Timeout)),
                RecvStart::Parked(parked, slot, key) => {
                    let rt = bc.shared.rt.clone();
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
                }
            }
        })
    }

    /// Values lost to lag so far, as observed by its receives (cumulative).
    pub fn missed(&self) -> u64 {
        let st = self.bc.shared.state.borrow();
        st.subs.get(&self.id).map_or(0, |s| s.missed)
    }

    /// Values buffered for it now.
    pub fn len(&self) -> usize {
        let st = self.bc.shared.state.borrow();
        st.subs.get(&self.id).map_or(0, |s| s.buf.len())
    }

    /// Whether nothing is buffered for it.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it still receives (not unsubscribed).
    pub fn is_subscribed(&self) -> bool {
        let st = self.bc.shared.state.borrow();
        st.subs.get(&self.id).is_some_and(|s| s.active)
    }

    /// Stops delivery: its buffer is dropped, its receives end with `None`, and a broadcast
    /// waiting for room in its buffer may go. False if it was already unsubscribed.
    pub fn unsubscribe(&self) -> bool {
        self.bc.unsubscribe_id(self.id)
    }
}
