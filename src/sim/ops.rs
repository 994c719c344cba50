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
    location: Option<Loc>,
}

/// Where an operation was called (`#[track_caller]`): copied, not formatted, until a report
/// needs it (the task parks).
pub(crate) type Loc = &'static std::panic::Location<'static>;

/// Records `loc` as where the current task stopped.
fn park_at(rt: &Runtime, loc: Option<Loc>) {
    if loc.is_some() {
        rt.set_location(rt.current(), loc);
    }
}

impl<R> std::fmt::Debug for Op<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gosim::sim::Op")
    }
}

impl<R> Op<R> {
    pub(crate) fn new(
        rt: &Runtime,
        location: Option<Loc>,
        start: impl FnOnce() -> Begin<R> + 'static,
    ) -> Op<R> {
        Op {
            rt: rt.clone(),
            state: State::Start(Box::new(start)),
            location,
        }
    }
}

impl Op<()> {
    /// An operation with no result, from a primitive's `*_or_park`: `true` means done at once,
    /// `false` that the task is parked until a wake completes it.
    pub(crate) fn unit(
        rt: &Runtime,
        location: Option<Loc>,
        done_or_park: impl FnOnce() -> bool + 'static,
    ) -> Op<()> {
        Op::new(rt, location, move || {
            if done_or_park() {
                Begin::Done(())
            } else {
                Begin::Parked(Box::new(|| ()))
            }
        })
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
                        park_at(&this.rt, this.location);
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

impl<T: Describe + 'static> Channel<T> {
    /// Sends `value`, waiting for a receiver or room; `Err(Closed)` if the channel is closed.
    #[track_caller]
    pub fn send(&self, value: T) -> Send<T> {
        Send {
            ch: self.clone(),
            state: SendFut::Start(value),
            location: std::panic::Location::caller(),
        }
    }

    /// Receives a value, waiting for one; `None` once the channel is closed and drained.
    #[track_caller]
    pub fn recv(&self) -> Recv<T> {
        Recv {
            ch: self.clone(),
            state: RecvFut::Start,
            location: std::panic::Location::caller(),
        }
    }
}

enum SendFut<T> {
    Start(T),
    Parked(crate::sync::SendSlot<T>),
    Yielded(Result<(), Closed>),
    Finished,
}

/// The future of `Channel::send`. No allocation: channel operations are the hot path.
pub struct Send<T> {
    ch: Channel<T>,
    state: SendFut<T>,
    location: Loc,
}

impl<T> std::fmt::Debug for Send<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gosim::sim::Send")
    }
}

impl<T> Unpin for Send<T> {}

impl<T: Describe + 'static> Future for Send<T> {
    type Output = Result<(), Closed>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, SendFut::Finished) {
            SendFut::Start(value) => {
                let result = match this.ch.send_or_park(value) {
                    SendStart::Done(true) => Ok(()),
                    SendStart::Done(false) => Err(Closed),
                    SendStart::Parked(slot) => {
                        park_at(&this.ch.rt_handle(), Some(this.location));
                        this.state = SendFut::Parked(slot);
                        return Poll::Pending;
                    }
                };
                if this.ch.rt_handle().schedule_point() {
                    Poll::Ready(result)
                } else {
                    this.state = SendFut::Yielded(result);
                    Poll::Pending
                }
            }
            SendFut::Parked(slot) => {
                let state = std::mem::replace(&mut *slot.borrow_mut(), SendState::Sent);
                Poll::Ready(if matches!(state, SendState::Sent) {
                    Ok(())
                } else {
                    Err(Closed)
                })
            }
            SendFut::Yielded(r) => Poll::Ready(r),
            SendFut::Finished => panic!("a gosim send was polled after it completed"),
        }
    }
}

enum RecvFut<T> {
    Start,
    Parked(crate::sync::RecvSlot<T>),
    Yielded(Option<T>),
    Finished,
}

/// The future of `Channel::recv`: `None` once closed and drained.
pub struct Recv<T> {
    ch: Channel<T>,
    state: RecvFut<T>,
    location: Loc,
}

impl<T> std::fmt::Debug for Recv<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gosim::sim::Recv")
    }
}

impl<T> Unpin for Recv<T> {}

impl<T: Describe + 'static> Future for Recv<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, RecvFut::Finished) {
            RecvFut::Start => match this.ch.recv_or_park() {
                RecvStart::Ready(v) => {
                    if this.ch.rt_handle().schedule_point() {
                        Poll::Ready(v)
                    } else {
                        this.state = RecvFut::Yielded(v);
                        Poll::Pending
                    }
                }
                RecvStart::Parked(slot) => {
                    park_at(&this.ch.rt_handle(), Some(this.location));
                    this.state = RecvFut::Parked(slot);
                    Poll::Pending
                }
            },
            RecvFut::Parked(slot) => Poll::Ready(
                slot.borrow_mut()
                    .take()
                    .expect("a woken receiver has its result"),
            ),
            RecvFut::Yielded(v) => Poll::Ready(v),
            RecvFut::Finished => panic!("a gosim receive was polled after it completed"),
        }
    }
}

impl Mutex {
    /// Locks, waiting while another task holds it (a woken waiter may be overtaken, as in Go).
    #[track_caller]
    pub fn lock(&self) -> LockFuture {
        LockFuture {
            m: self.clone(),
            state: LockState::Start,
            location: std::panic::Location::caller(),
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
    location: Loc,
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
        park_at(&rt, Some(self.location));
        self.state = LockState::Waiting;
        Poll::Pending
    }
}

impl RwMutex {
    /// Write-locks, waiting for readers and writers to leave.
    #[track_caller]
    pub fn lock(&self) -> Op<()> {
        let m = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || m.lock_or_park(),
        )
    }

    /// Read-locks, waiting while a writer holds or waits for the lock.
    #[track_caller]
    pub fn rlock(&self) -> Op<()> {
        let m = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || m.rlock_or_park(),
        )
    }
}

impl Semaphore {
    /// Takes a permit, waiting (FIFO) for one.
    #[track_caller]
    pub fn acquire(&self) -> Op<()> {
        let s = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || s.acquire_or_park(),
        )
    }
}

impl WaitGroup {
    /// Waits until the counter is zero.
    #[track_caller]
    pub fn wait(&self) -> Op<()> {
        let wg = self.clone();
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || wg.wait_or_park(),
        )
    }
}

impl Once {
    /// Runs `f` on the first call; concurrent callers wait until it has finished (Go's
    /// `sync.Once`). Returns whether this call ran it.
    pub async fn call<F: Future<Output = ()>>(&self, f: impl FnOnce() -> F) -> bool {
        let o = self.clone();
        let rt = o.rt_handle();
        let first = Op::new(&rt, Some(std::panic::Location::caller()), move || {
            match o.begin() {
                OnceStart::Run => Begin::Done(true),
                OnceStart::Done => Begin::Done(false),
                OnceStart::Parked => Begin::Parked(Box::new(|| false)),
            }
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
        Op::unit(
            &self.rt_handle(),
            Some(std::panic::Location::caller()),
            move || c.wait_or_park(ticket),
        )
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
        let ch: Channel<()> = Channel::new(&rt, 0, None);
        ch.resource()
            .set_name(&format!("done of {}", self.resource()));
        self.on_cancel(Box::new(ch.clone()));
        let _ = ch.recv().await;
        self.err().unwrap_or("context canceled")
    }
}

/// Sleeps the current task.
pub(crate) fn sleep(rt: &Runtime, d: Nanos, location: Option<Loc>) -> Sleep {
    Sleep {
        rt: rt.clone(),
        d,
        started: false,
        location,
    }
}

/// The future of `Sim::sleep`. No allocation: timers are the other hot path.
#[derive(Debug)]
pub struct Sleep {
    rt: Runtime,
    d: Nanos,
    started: bool,
    location: Option<Loc>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.started {
            // Woken by the timer (or, for a zero sleep, resumed after the scheduling point).
            return Poll::Ready(());
        }
        self.started = true;
        if self.d == 0 {
            return if self.rt.schedule_point() {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        }
        self.rt.sleep(self.d);
        park_at(&self.rt, self.location);
        Poll::Pending
    }
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
