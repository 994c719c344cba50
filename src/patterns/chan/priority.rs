//! A priority channel (seed 1.2; ref: Java's `PriorityBlockingQueue` with sequence numbers): a
//! receive takes the buffered value of the largest priority, and among equal priorities the one
//! sent first. Unbounded unless a capacity is given, then a send waits while it is full (FIFO
//! among senders; a waiting sender's value enters the buffer, with its sequence number, when
//! room frees).
//!
//! Laws: each receive returns a maximal-priority buffered value; equal priorities keep send
//! order; sent = received + buffered. A value sent while a receiver waits (so the buffer is
//! empty) goes straight to it. Close as a Go channel, never a crash: sends fail with `Closed`,
//! receivers drain, then get `None`.

use std::cell::{Cell, RefCell};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::nanos;
use crate::runtime::{Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TaskId};
use crate::sync::{
    Base, Begin, Describe, Op, Parked, RecvSlot, TIMED_OUT, Timeout, block_timed, debug_handle,
};

const KIND: ResourceKind = ResourceKind::released_by_anyone("priority_channel");
const RECEIVE: Blocking = Blocking::new("receive", "block-receive");
const SEND: Blocking = Blocking::new("send", "block-send");

/// Why a priority send did not enqueue its value.
///
/// # Examples
///
/// ```
/// use gosim::patterns::PrioritySendError;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let pc = s.priority_channel::<u8>(Some(1));
///     pc.send(1, 0, None).await.expect("room");
///     let full = pc.send(2, 0, Some(Duration::ZERO)).await; // a try
///     assert_eq!(full, Err(PrioritySendError::Timeout));
///     pc.close();
///     assert_eq!(pc.send(3, 0, None).await, Err(PrioritySendError::Closed));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrioritySendError {
    /// The timeout passed while the channel stayed full.
    Timeout,
    /// The channel is closed.
    Closed,
}

impl std::fmt::Display for PrioritySendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrioritySendError::Timeout => "timeout",
            PrioritySendError::Closed => "send on closed channel",
        })
    }
}

impl std::error::Error for PrioritySendError {}

/// A buffered value: larger priority first, then smaller sequence number (sent earlier).
struct Entry<T> {
    prio: i64,
    seq: u64,
    value: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, o: &Self) -> bool {
        self.prio == o.prio && self.seq == o.seq
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.prio.cmp(&o.prio).then_with(|| o.seq.cmp(&self.seq))
    }
}

type SendResult = Rc<Cell<Option<Result<(), PrioritySendError>>>>;

struct SendWaiter<T> {
    parked: Rc<Parked>,
    prio: i64,
    value: Option<T>,
    result: SendResult,
}

struct RecvWaiter<T> {
    parked: Rc<Parked>,
    slot: RecvSlot<T>,
}

struct State<T> {
    cap: Option<usize>,
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
    closed: bool,
    recvq: VecDeque<RecvWaiter<T>>,
    sendq: VecDeque<SendWaiter<T>>,
    sent: u64,
    received: u64,
}

type Shared<T> = Base<State<T>>;

/// A channel delivering the largest priority first. Clones are the same channel.
///
/// # Examples
///
/// ```
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let pc = s.priority_channel::<&str>(None); // unbounded
///     pc.send("low", 1, None).await.expect("open");
///     pc.send("high", 9, None).await.expect("open");
///     pc.send("low too", 1, None).await.expect("open");
///     assert_eq!(pc.recv(None).await, Ok(Some("high")));
///     assert_eq!(pc.recv(None).await, Ok(Some("low"))); // FIFO among equals
///     assert_eq!(pc.totals(), (3, 2));
/// });
/// report.assert_pass();
/// ```
pub struct PriorityChannel<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for PriorityChannel<T> {
    fn clone(&self) -> Self {
        PriorityChannel {
            shared: self.shared.clone(),
        }
    }
}

debug_handle!(PriorityChannel<T>);

enum SendStart {
    Done(Result<(), PrioritySendError>),
    Parked(Rc<Parked>, SendResult, Option<crate::runtime::TimerKey>),
}

enum RecvStart<T> {
    Ready(Option<T>),
    Refused,
    Parked(Rc<Parked>, RecvSlot<T>, Option<crate::runtime::TimerKey>),
}

impl<T: Debug + 'static> PriorityChannel<T> {
    /// A priority channel; `cap`: `None` unbounded, `Some(n)` (`n > 0`) sends wait while `n`
    /// values are buffered.
    pub fn new(rt: &Runtime, cap: Option<usize>, created_at: Option<Rc<str>>) -> Self {
        assert!(
            cap != Some(0),
            "a bounded priority channel holds at least one value"
        );
        let detail = match cap {
            Some(n) => format!("cap={n}"),
            None => "unbounded".to_string(),
        };
        PriorityChannel {
            shared: Base::new(
                rt,
                KIND,
                created_at,
                Some(detail),
                State {
                    cap,
                    heap: BinaryHeap::new(),
                    next_seq: 0,
                    closed: false,
                    recvq: VecDeque::new(),
                    sendq: VecDeque::new(),
                    sent: 0,
                    received: 0,
                },
            ),
        }
    }

    /// Its identity (`priority_channel#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Values buffered now.
    pub fn len(&self) -> usize {
        self.shared.state.borrow().heap.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its capacity (`None`: unbounded).
    pub fn cap(&self) -> Option<usize> {
        self.shared.state.borrow().cap
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    /// Values sent (entered the buffer or handed over) and received so far: always
    /// `sent == received + len`.
    pub fn totals(&self) -> (u64, u64) {
        let st = self.shared.state.borrow();
        (st.sent, st.received)
    }

    fn trace(&self, verb: &'static str, detail: String) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            rt.emit(
                verb,
                Subject::Resource(self.shared.res.clone()),
                Some(detail),
            );
        }
    }

    fn trace_as(&self, task: TaskId, verb: &'static str, detail: String) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            let subject = Subject::Resource(self.shared.res.clone());
            rt.emit_as(task, verb, subject, Some(detail), None);
        }
    }

    /// Enters `v` (priority `prio`): to a waiting receiver if there is one, else the buffer.
    /// The receiver to wake, if any.
    fn enter(st: &mut State<T>, prio: i64, v: T) -> Option<(RecvWaiter<T>, T)> {
        st.sent += 1;
        while let Some(w) = st.recvq.pop_front() {
            if w.parked.is_live() {
                st.received += 1;
                return Some((w, v));
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.heap.push(Entry {
            prio,
            seq,
            value: v,
        });
        None
    }

    fn wake_receiver(&self, wake: Option<(RecvWaiter<T>, T)>) {
        if let Some((w, v)) = wake {
            self.trace_as(w.parked.task(), "receive", v.describe());
            *w.slot.borrow_mut() = Some(Some(v));
            w.parked.fire(&self.shared.rt, 0);
        }
    }

    fn send_or_park(&self, v: T, prio: i64, timeout: Option<Nanos>) -> SendStart {
        let rt = &self.shared.rt;
        let mut st = self.shared.state.borrow_mut();
        if st.closed {
            drop(st);
            self.trace("send", "closed".to_string());
            return SendStart::Done(Err(PrioritySendError::Closed));
        }
        let full = st.cap.is_some_and(|c| st.heap.len() >= c)
            || st.sendq.iter().any(|w| w.parked.is_live());
        if !full {
            let shown = rt
                .tracing()
                .then(|| format!("{} prio={prio}", v.describe()));
            let wake = Self::enter(&mut st, prio, v);
            drop(st);
            if let Some(d) = shown {
                self.trace("send", d);
            }
            self.wake_receiver(wake);
            return SendStart::Done(Ok(()));
        }
        if timeout == Some(0) {
            drop(st);
            self.trace("send", format!("{} prio={prio} full", v.describe()));
            return SendStart::Done(Err(PrioritySendError::Timeout));
        }
        let parked = Parked::new(rt.current());
        let result: SendResult = Rc::new(Cell::new(None));
        st.sendq.push_back(SendWaiter {
            parked: parked.clone(),
            prio,
            value: Some(v),
            result: result.clone(),
        });
        drop(st);
        let pc = self.clone();
        let key = block_timed(rt, SEND, &self.shared.res, &parked, timeout, move |_, p| {
            pc.shared
                .state
                .borrow_mut()
                .sendq
                .retain(|w| !Rc::ptr_eq(&w.parked, p));
            pc.trace_as(p.task(), "timeout", "send".to_string());
            pc.refill();
        });
        SendStart::Parked(parked, result, key)
    }

    /// Moves waiting senders' values into freed room, in their order.
    fn refill(&self) {
        loop {
            let (w, wake) = {
                let mut st = self.shared.state.borrow_mut();
                while st.sendq.front().is_some_and(|w| !w.parked.is_live()) {
                    st.sendq.pop_front();
                }
                let room = st.cap.is_none_or(|c| st.heap.len() < c);
                if !room || st.sendq.is_empty() {
                    return;
                }
                let mut w = st.sendq.pop_front().expect("front exists");
                let v = w.value.take().expect("a queued sender holds its value");
                let shown = self
                    .shared
                    .rt
                    .tracing()
                    .then(|| format!("{} prio={}", v.describe(), w.prio));
                let wake = Self::enter(&mut st, w.prio, v);
                drop(st);
                if let Some(d) = shown {
                    self.trace_as(w.parked.task(), "send", d);
                }
                (w, wake)
            };
            w.result.set(Some(Ok(())));
            w.parked.fire(&self.shared.rt, 0);
            self.wake_receiver(wake);
        }
    }

    fn recv_or_park(&self, timeout: Option<Nanos>) -> RecvStart<T> {
        let rt = &self.shared.rt;
        let mut st = self.shared.state.borrow_mut();
        if let Some(e) = st.heap.pop() {
            st.received += 1;
            drop(st);
            self.trace("receive", format!("{} prio={}", e.value.describe(), e.prio));
            self.refill();
            return RecvStart::Ready(Some(e.value));
        }
        if st.closed {
            drop(st);
            self.trace("receive", "closed".to_string());
            return RecvStart::Ready(None);
        }
        if timeout == Some(0) {
            drop(st);
            self.trace("receive", "empty".to_string());
            return RecvStart::Refused;
        }
        let parked = Parked::new(rt.current());
        let slot: RecvSlot<T> = Rc::new(RefCell::new(None));
        st.recvq.push_back(RecvWaiter {
            parked: parked.clone(),
            slot: slot.clone(),
        });
        drop(st);
        let pc = self.clone();
        let key = block_timed(
            rt,
            RECEIVE,
            &self.shared.res,
            &parked,
            timeout,
            move |_, p| {
                pc.shared
                    .state
                    .borrow_mut()
                    .recvq
                    .retain(|w| !Rc::ptr_eq(&w.parked, p));
                pc.trace_as(p.task(), "timeout", "receive".to_string());
            },
        );
        RecvStart::Parked(parked, slot, key)
    }

    /// Sends `v` with priority `prio` (larger first); waits while a bounded channel is full,
    /// until `timeout` (`Some(ZERO)`: a try). Nothing is enqueued on an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pc = s.priority_channel::<u8>(Some(1));
    ///     pc.send(1, 0, None).await.expect("room");
    ///     let (p, t) = (pc.clone(), s.clone());
    ///     s.spawn("reader", async move {
    ///         t.sleep(Duration::from_millis(6)).await;
    ///         p.recv(None).await
    ///     });
    ///     pc.send(2, 5, None).await.expect("open"); // waits while the channel is full
    ///     assert_eq!(s.now(), Duration::from_millis(6));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn send(
        &self,
        v: T,
        prio: i64,
        timeout: Option<Duration>,
    ) -> Op<Result<(), PrioritySendError>> {
        let pc = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            match pc.send_or_park(v, prio, timeout) {
                SendStart::Done(r) => Begin::Done(r),
                SendStart::Parked(parked, result, key) => {
                    let rt = pc.shared.rt.clone();
                    Begin::Parked(Box::new(move || {
                        if parked.timed_result(&rt, key).is_err() {
                            return Err(PrioritySendError::Timeout);
                        }
                        result.take().expect("a woken sender has its result")
                    }))
                }
            }
        })
    }

    /// Receives the buffered value of the largest priority (the earliest among equals):
    /// `Ok(None)` once closed and drained; `Err(Timeout)` if `timeout` passes first.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::sync::Timeout;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let pc = s.priority_channel::<u8>(None);
    ///     assert_eq!(pc.recv(Some(Duration::from_millis(2))).await, Err(Timeout));
    ///     pc.send(4, 0, None).await.expect("open");
    ///     pc.close();
    ///     assert_eq!(pc.recv(None).await, Ok(Some(4))); // buffered values outlive the close
    ///     assert_eq!(pc.recv(None).await, Ok(None));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn recv(&self, timeout: Option<Duration>) -> Op<Result<Option<T>, Timeout>> {
        let pc = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            match pc.recv_or_park(timeout) {
                RecvStart::Ready(v) => Begin::Done(Ok(v)),
                RecvStart::Refused => Begin::Done(Err(Timeout)),
                RecvStart::Parked(parked, slot, key) => {
                    let rt = pc.shared.rt.clone();
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

    /// Closes it; false if already closed. Waiting senders fail with `Closed` (their values are
    /// dropped); receivers drain, then get `None`.
    pub fn close(&self) -> bool {
        let (senders, receivers) = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return false;
            }
            st.closed = true;
            (std::mem::take(&mut st.sendq), std::mem::take(&mut st.recvq))
        };
        self.trace("close", String::new());
        for w in senders {
            if w.parked.is_live() {
                w.result.set(Some(Err(PrioritySendError::Closed)));
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
}
