//! The operations of the primitives as futures. Each completes now (and then takes the
//! scheduling point after its effect) or parks the task until a primitive wakes it; the wake is
//! the task's scheduling point, so the future then completes at its next poll.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use crate::runtime::{Nanos, Runtime, TaskState};
use crate::sync::{
    Case, Channel, Cond, Context, Describe, Mutex, Once, OnceStart, RecvStart, RwMutex,
    SelectResult, SelectStart, Semaphore, SendStart, SendState, Timer, TimerTarget, WaitGroup,
    select_start,
};

/// How an operation starts: finished (its result), or parked (how to finish when woken).
pub(crate) enum Begin<R> {
    Done(R),
    Parked(Box<dyn FnOnce() -> R>),
}

enum State<R> {
    Start(Box<dyn FnOnce() -> Begin<R>>),
    Parked(Box<dyn FnOnce() -> R>),
    Yielded(R),
    Finished,
}

/// A gosim operation as a future. Await it inside a gosim task.
pub struct Op<R> {
    rt: Runtime,
    state: State<R>,
    location: Option<Rc<str>>,
}

impl<R> std::fmt::Debug for Op<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gosim::sim::Op")
    }
}

impl<R> Op<R> {
    pub(crate) fn new(
        rt: &Runtime,
        location: Option<Rc<str>>,
        start: impl FnOnce() -> Begin<R> + 'static,
    ) -> Op<R> {
        Op {
            rt: rt.clone(),
            state: State::Start(Box::new(start)),
            location,
        }
    }
}

impl<R> Unpin for Op<R> {}

impl<R> Future for Op<R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<R> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, State::Finished) {
            State::Start(start) => match start() {
                Begin::Done(r) => {
                    if this.rt.schedule_point() {
                        Poll::Ready(r)
                    } else {
                        this.state = State::Yielded(r);
                        Poll::Pending
                    }
                }
                Begin::Parked(finish) => {
                    if this.rt.current_state() == Some(TaskState::Blocked) {
                        let me = this.rt.current();
                        this.rt.set_location(me, this.location.clone());
                    }
                    this.state = State::Parked(finish);
                    Poll::Pending
                }
            },
            State::Parked(finish) => Poll::Ready(finish()),
            State::Yielded(r) => Poll::Ready(r),
            State::Finished => panic!("a gosim operation was polled after it completed"),
        }
    }
}

/// The value could not be sent: the channel is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("send on closed channel")
    }
}

impl std::error::Error for Closed {}

/// A send (the future of `Channel::send`).
pub type Send = Op<Result<(), Closed>>;
/// A receive (the future of `Channel::recv`): `None` once closed and drained.
pub type Recv<T> = Op<Option<T>>;

impl<T: Describe + 'static> Channel<T> {
    /// Sends `value`, waiting for a receiver or room; `Err(Closed)` if the channel is closed.
    #[track_caller]
    pub fn send(&self, value: T) -> Send {
        let ch = self.clone();
        Op::new(&self.rt_handle(), super::here(), move || {
            match ch.send_or_park(value) {
                SendStart::Done(true) => Begin::Done(Ok(())),
                SendStart::Done(false) => Begin::Done(Err(Closed)),
                SendStart::Parked(slot) => {
                    Begin::Parked(Box::new(move || {
                        match std::mem::replace(&mut *slot.borrow_mut(), SendState::Sent) {
                            SendState::Sent => Ok(()),
                            _ => Err(Closed),
                        }
                    }))
                }
            }
        })
    }

    /// Receives a value, waiting for one; `None` once the channel is closed and drained.
    #[track_caller]
    pub fn recv(&self) -> Recv<T> {
        let ch = self.clone();
        Op::new(&self.rt_handle(), super::here(), move || {
            match ch.recv_or_park() {
                RecvStart::Ready(v) => Begin::Done(v),
                RecvStart::Parked(slot) => Begin::Parked(Box::new(move || {
                    slot.borrow_mut()
                        .take()
                        .expect("a woken receiver has its result")
                })),
            }
        })
    }
}

impl Mutex {
    /// Locks, waiting while another task holds it (a woken waiter may be overtaken, as in Go).
    #[track_caller]
    pub fn lock(&self) -> LockFuture {
        LockFuture {
            m: self.clone(),
            state: LockState::Start,
            location: super::here(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockState {
    /// Not tried yet.
    Start,
    /// Parked; woken by an unlock, it tries again (at the head of the queue if overtaken).
    Waiting,
    /// Locked, but switched away at the scheduling point that followed.
    Acquired,
}

/// The future of `Mutex::lock`.
#[derive(Debug)]
pub struct LockFuture {
    m: Mutex,
    state: LockState,
    location: Option<Rc<str>>,
}

impl Future for LockFuture {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.state == LockState::Acquired {
            return Poll::Ready(());
        }
        let rt = self.m.rt_handle();
        if self.m.lock_or_park(self.state == LockState::Waiting) {
            if rt.schedule_point() {
                return Poll::Ready(());
            }
            self.state = LockState::Acquired;
            return Poll::Pending;
        }
        rt.set_location(rt.current(), self.location.clone());
        self.state = LockState::Waiting;
        Poll::Pending
    }
}

impl RwMutex {
    /// Write-locks, waiting for readers and writers to leave.
    #[track_caller]
    pub fn lock(&self) -> Op<()> {
        let m = self.clone();
        Op::new(&self.rt_handle(), super::here(), move || {
            if m.lock_or_park() {
                Begin::Done(())
            } else {
                Begin::Parked(Box::new(|| ()))
            }
        })
    }

    /// Read-locks, waiting while a writer holds or waits for the lock.
    #[track_caller]
    pub fn rlock(&self) -> Op<()> {
        let m = self.clone();
        Op::new(&self.rt_handle(), super::here(), move || {
            if m.rlock_or_park() {
                Begin::Done(())
            } else {
                Begin::Parked(Box::new(|| ()))
            }
        })
    }
}

impl Semaphore {
    /// Takes a permit, waiting (FIFO) for one.
    #[track_caller]
    pub fn acquire(&self) -> Op<()> {
        let s = self.clone();
        Op::new(&self.rt_handle(), super::here(), move || {
            if s.acquire_or_park() {
                Begin::Done(())
            } else {
                Begin::Parked(Box::new(|| ()))
            }
        })
    }
}

impl WaitGroup {
    /// Waits until the counter is zero.
    #[track_caller]
    pub fn wait(&self) -> Op<()> {
        let wg = self.clone();
        Op::new(&self.rt_handle(), super::here(), move || {
            if wg.wait_or_park() {
                Begin::Done(())
            } else {
                Begin::Parked(Box::new(|| ()))
            }
        })
    }
}

impl Once {
    /// Runs `f` on the first call; concurrent callers wait until it has finished (Go's
    /// `sync.Once`). Returns whether this call ran it.
    pub async fn call<F: Future<Output = ()>>(&self, f: impl FnOnce() -> F) -> bool {
        let o = self.clone();
        let rt = o.rt_handle();
        let first = Op::new(&rt, super::here(), move || match o.begin() {
            OnceStart::Run => Begin::Done(true),
            OnceStart::Done => Begin::Done(false),
            OnceStart::Parked => Begin::Parked(Box::new(|| false)),
        })
        .await;
        if first {
            f().await;
            self.finish();
        }
        first
    }
}

impl Cond {
    /// Unlocks `m`, waits for a signal, and locks `m` again (Go's `Cond.Wait`).
    pub async fn wait(&self, m: &Mutex) {
        let ticket = self.ticket();
        m.unlock()
            .expect("cond.wait: the mutex must be locked by the caller");
        let c = self.clone();
        Op::new(&self.rt_handle(), super::here(), move || {
            if c.wait_or_park(ticket) {
                Begin::Done(())
            } else {
                Begin::Parked(Box::new(|| ()))
            }
        })
        .await;
        m.lock().await;
    }
}

impl Context {
    /// Waits until the context is cancelled or expires; returns its error text.
    pub async fn done(&self) -> &'static str {
        if let Some(e) = self.err() {
            return e;
        }
        let rt = self.rt_handle();
        let ch: Channel<()> = Channel::new(&rt, 0, super::here());
        ch.resource()
            .set_name(&format!("done of {}", self.resource()));
        self.on_cancel(Box::new(ch.clone()));
        let _ = ch.recv().await;
        self.err().unwrap_or("context canceled")
    }
}

/// Sleeps the current task.
pub(crate) fn sleep(rt: &Runtime, d: Nanos, location: Option<Rc<str>>) -> Op<()> {
    let rt2 = rt.clone();
    Op::new(rt, location, move || {
        if d == 0 {
            return Begin::Done(());
        }
        rt2.sleep(d);
        Begin::Parked(Box::new(|| ()))
    })
}

/// A bare scheduling point.
pub(crate) fn yield_now(rt: &Runtime) -> Op<()> {
    Op::new(rt, None, || Begin::Done(()))
}

/// Delivers the run's time on a channel, dropping it if nobody made room.
struct TimeTarget {
    ch: Channel<Duration>,
}

impl TimerTarget for TimeTarget {
    fn fire(&self, _rt: &Runtime, now: Nanos) {
        let _ = self.ch.try_send(Duration::from_nanos(now));
    }

    fn may_wake(&self) -> bool {
        self.ch.blocked_receivers() > 0
    }

    fn drain(&self) -> bool {
        self.ch.discard_buffered()
    }
}

/// A timer (one-shot, or periodic with `period`) delivering on a new channel of capacity 1.
pub(crate) fn after(
    rt: &Runtime,
    delay: Nanos,
    period: Option<Nanos>,
    location: Option<Rc<str>>,
) -> (Timer, Channel<Duration>) {
    let ch: Channel<Duration> = Channel::new(rt, 1, location.clone());
    ch.resource()
        .set_name(if period.is_some() { "ticks" } else { "after" });
    let kind = if period.is_some() { "ticker" } else { "timer" };
    let timer = Timer::start(
        rt,
        kind,
        delay,
        period,
        Box::new(TimeTarget { ch: ch.clone() }),
        location,
    );
    (timer, ch)
}

/// A select over cases of one value type.
pub(crate) fn select<T: Describe + 'static>(
    rt: &Runtime,
    cases: Vec<Case<T>>,
    default: bool,
) -> Op<SelectResult<T>> {
    let rt2 = rt.clone();
    Op::new(rt, None, move || match select_start(&rt2, cases, default) {
        SelectStart::Done(r) => Begin::Done(r),
        SelectStart::Parked(wait) => Begin::Parked(Box::new(move || wait.finish())),
    })
}
