//! Go's `select`: wait on several channel operations, perform exactly one.
//!
//! If some cases are ready, one of them is chosen uniformly from the run's seed (Go picks at
//! random too; here the choice is reproducible). If none is and there is a default, the default is
//! taken. Otherwise the goroutine registers in every case's queue and parks; the first channel to
//! complete one case wins, and the others are unregistered when the goroutine resumes.

use std::cell::RefCell;
use std::fmt::Debug;
use std::rc::Rc;

use super::channel::{
    Channel, RecvSlot, SendSlot, SendState, TryRecvError, TrySendError, send_result,
};
use super::op::{Begin, Op};
use super::park::Parked;
use crate::runtime::{Blocking, OpMode, ResourceRef, Runtime, Wait};

/// A select waiting for one of its cases.
const SELECT: Blocking = Blocking::new("select", "block-select");

/// One case of a select.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use gosim::sync::{Case, SelectResult};
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let (a, b) = (s.channel::<u8>(1), s.channel::<u8>(1));
///     b.try_send(2).expect("room");
///     let r = s.select(vec![Case::Recv(a.clone()), Case::Recv(b.clone()), Case::Never], false).await;
///     assert!(matches!(r, SelectResult::Recv(1, Some(2)))); // the only ready case
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub enum Case<T> {
    /// Receive from the channel.
    Recv(Channel<T>),
    /// Send the value on the channel.
    Send(Channel<T>, T),
    /// Never ready (Go's nil channel), so case lists can keep a fixed shape.
    Never,
}

/// How a select ended.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use gosim::sync::{Case, SelectResult};
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(1);
///     let r = s.select(vec![Case::Send(ch.clone(), 5)], true).await;
///     assert!(matches!(r, SelectResult::Sent(0)));
///     let r = s.select(vec![Case::Send(ch.clone(), 6)], true).await;
///     assert!(matches!(r, SelectResult::Default)); // full: the default is taken
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub enum SelectResult<T> {
    /// Case `idx` received a value, or `None` because the channel is closed.
    Recv(usize, Option<T>),
    /// Case `idx` sent its value.
    Sent(usize),
    /// Case `idx` was a send on a closed channel.
    SendClosed(usize),
    /// Nothing was ready and the default was taken.
    Default,
}

enum Slot<T> {
    Recv(Channel<T>, RecvSlot<T>),
    Send(Channel<T>, SendSlot<T>),
    Never,
}

/// A parked select, to finish when the goroutine wakes.
pub(crate) struct SelectWait<T> {
    parked: Rc<Parked>,
    slots: Vec<Slot<T>>,
}

impl<T> std::fmt::Debug for SelectWait<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectWait")
            .field("cases", &self.slots.len())
            .finish()
    }
}

/// The start of a select.
#[derive(Debug)]
pub(crate) enum SelectStart<T> {
    /// Completed at once.
    Done(SelectResult<T>),
    /// Parked; call `SelectWait::finish` when the goroutine wakes.
    Parked(SelectWait<T>),
}

/// Starts a select over `cases` for the current goroutine.
pub(crate) fn select_start<T: Debug + 'static>(
    rt: &Runtime,
    cases: Vec<Case<T>>,
    has_default: bool,
) -> SelectStart<T> {
    let ready: Vec<usize> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| match c {
            Case::Recv(ch) => ch.recv_ready(),
            Case::Send(ch, _) => ch.send_ready(),
            Case::Never => false,
        })
        .map(|(i, _)| i)
        .collect();
    if !ready.is_empty() {
        let idx = choose_ready(rt, &ready);
        let case = cases.into_iter().nth(idx).expect("chosen case exists");
        return SelectStart::Done(perform_ready(idx, case));
    }
    if has_default {
        return SelectStart::Done(SelectResult::Default);
    }
    let parked = Parked::new(rt.current());
    let mut resources = Vec::with_capacity(cases.len());
    let mut slots = Vec::with_capacity(cases.len());
    for (i, case) in cases.into_iter().enumerate() {
        match case {
            Case::Recv(ch) => {
                let slot: RecvSlot<T> = Rc::new(RefCell::new(None));
                ch.register_recv(parked.clone(), i, slot.clone());
                resources.push(ch.resource().clone());
                slots.push(Slot::Recv(ch, slot));
            }
            Case::Send(ch, v) => {
                let slot: SendSlot<T> = Rc::new(RefCell::new(SendState::Pending(v)));
                ch.register_send(parked.clone(), i, slot.clone());
                resources.push(ch.resource().clone());
                slots.push(Slot::Send(ch, slot));
            }
            Case::Never => slots.push(Slot::Never),
        }
    }
    rt.block(Wait::on_all(SELECT, resources));
    SelectStart::Parked(SelectWait { parked, slots })
}

fn perform_ready<T: Debug + 'static>(idx: usize, case: Case<T>) -> SelectResult<T> {
    match case {
        Case::Recv(ch) => match ch.try_recv() {
            Ok(v) => SelectResult::Recv(idx, Some(v)),
            Err(TryRecvError::Closed) => SelectResult::Recv(idx, None),
            Err(TryRecvError::Empty) => unreachable!("a ready receive case receives"),
        },
        Case::Send(ch, v) => match ch.try_send(v) {
            Ok(()) => SelectResult::Sent(idx),
            Err(TrySendError::Closed(_)) => SelectResult::SendClosed(idx),
            Err(TrySendError::Full(_)) => unreachable!("a ready send case sends"),
        },
        Case::Never => unreachable!("a never case is never ready"),
    }
}

impl<T: Debug + 'static> SelectWait<T> {
    /// Ends the select after the goroutine woke: unregisters from the other channels and returns
    /// the completed case.
    pub(crate) fn finish(self) -> SelectResult<T> {
        let fired = self
            .parked
            .fired_case()
            .expect("a select wakes only when a case completes");
        let mut result = None;
        for (i, slot) in self.slots.into_iter().enumerate() {
            match slot {
                Slot::Recv(ch, s) => {
                    ch.unregister(&self.parked);
                    if i == fired {
                        let v = s
                            .borrow_mut()
                            .take()
                            .expect("the fired receive case has a result");
                        result = Some(SelectResult::Recv(i, v));
                    }
                }
                Slot::Send(ch, s) => {
                    ch.unregister(&self.parked);
                    if i == fired {
                        result = Some(match send_result(&s) {
                            Ok(()) => SelectResult::Sent(i),
                            Err(_) => SelectResult::SendClosed(i),
                        });
                    }
                }
                Slot::Never => {}
            }
        }
        result.expect("the fired case is one of the cases")
    }
}

/// A select over cases of one value type.
pub(crate) fn select<T: Debug + 'static>(
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

/// How a select with a deadline ended.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use gosim::sync::{Case, Timed};
/// use std::time::Duration;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(0);
///     let r = s.select_timeout(Duration::from_millis(15), vec![Case::Recv(ch)]).await;
///     assert!(matches!(r, Timed::TimedOut));
///     assert_eq!(s.now(), Duration::from_millis(15));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub enum Timed<T> {
    /// One of the cases completed.
    Case(SelectResult<T>),
    /// The deadline came first.
    TimedOut,
}

/// A parked select with a deadline, to finish when the goroutine wakes.
pub(super) struct DeadlineWait<T, U> {
    inner: SelectWait<T>,
    deadline: Channel<U>,
    slot: RecvSlot<U>,
}

impl<T, U> std::fmt::Debug for DeadlineWait<T, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineWait")
            .field("cases", &self.inner.slots.len())
            .finish()
    }
}

/// The start of a select with a deadline.
#[derive(Debug)]
pub(super) enum DeadlineStart<T, U> {
    /// Completed at once.
    Done(Timed<T>),
    /// Parked; call `DeadlineWait::finish` when the goroutine wakes.
    Parked(DeadlineWait<T, U>),
}

/// Starts a select over `cases` plus one more receive case, `deadline` (a timer's channel, of its
/// own value type): Lua's `select_timeout` and `timeout`, whose select is exactly the user's cases
/// followed by the timer's channel, so the seed's choices and the trace are the same as a plain
/// select over those channels. No default: a deadline is the way out.
pub(crate) fn select_deadline_start<T: Debug + 'static, U: Debug + 'static>(
    rt: &Runtime,
    cases: Vec<Case<T>>,
    deadline: Channel<U>,
) -> DeadlineStart<T, U> {
    let n = cases.len();
    let mut ready: Vec<usize> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| match c {
            Case::Recv(ch) => ch.recv_ready(),
            Case::Send(ch, _) => ch.send_ready(),
            Case::Never => false,
        })
        .map(|(i, _)| i)
        .collect();
    if deadline.recv_ready() {
        ready.push(n);
    }
    if !ready.is_empty() {
        let idx = choose_ready(rt, &ready);
        if idx == n {
            let _ = deadline.try_recv();
            return DeadlineStart::Done(Timed::TimedOut);
        }
        let case = cases.into_iter().nth(idx).expect("chosen case exists");
        return DeadlineStart::Done(Timed::Case(perform_ready(idx, case)));
    }
    let parked = Parked::new(rt.current());
    let mut resources = Vec::with_capacity(n + 1);
    let mut slots = Vec::with_capacity(n);
    for (i, case) in cases.into_iter().enumerate() {
        match case {
            Case::Recv(ch) => {
                let slot: RecvSlot<T> = Rc::new(RefCell::new(None));
                ch.register_recv(parked.clone(), i, slot.clone());
                resources.push(ch.resource().clone());
                slots.push(Slot::Recv(ch, slot));
            }
            Case::Send(ch, v) => {
                let slot: SendSlot<T> = Rc::new(RefCell::new(SendState::Pending(v)));
                ch.register_send(parked.clone(), i, slot.clone());
                resources.push(ch.resource().clone());
                slots.push(Slot::Send(ch, slot));
            }
            Case::Never => slots.push(Slot::Never),
        }
    }
    let slot: RecvSlot<U> = Rc::new(RefCell::new(None));
    deadline.register_recv(parked.clone(), n, slot.clone());
    resources.push(deadline.resource().clone());
    rt.block(Wait::on_all(SELECT, resources));
    DeadlineStart::Parked(DeadlineWait {
        inner: SelectWait { parked, slots },
        deadline,
        slot,
    })
}

impl<T: Debug + 'static, U: Debug + 'static> DeadlineWait<T, U> {
    /// Ends the select after the goroutine woke: unregisters from every channel and says which
    /// case completed, or that the deadline came first.
    pub(super) fn finish(self) -> Timed<T> {
        self.deadline.unregister(&self.inner.parked);
        let fired = self.inner.parked.fired_case();
        if fired == Some(self.inner.slots.len()) {
            for slot in &self.inner.slots {
                match slot {
                    Slot::Recv(ch, _) => ch.unregister(&self.inner.parked),
                    Slot::Send(ch, _) => ch.unregister(&self.inner.parked),
                    Slot::Never => {}
                }
            }
            self.slot.borrow_mut().take();
            return Timed::TimedOut;
        }
        Timed::Case(self.inner.finish())
    }
}

/// A select over `cases` with a deadline channel, as a future (see `select_deadline_start`).
pub(crate) fn select_deadline<T: Debug + 'static, U: Debug + 'static>(
    rt: &Runtime,
    cases: Vec<Case<T>>,
    deadline: Channel<U>,
) -> Op<Timed<T>> {
    let rt2 = rt.clone();
    Op::new(rt, None, move || {
        match select_deadline_start(&rt2, cases, deadline) {
            DeadlineStart::Done(r) => Begin::Done(r),
            DeadlineStart::Parked(wait) => Begin::Parked(Box::new(move || wait.finish())),
        }
    })
}

/// One arm of `gosim::select!`: an operation of any value type that a select can test, perform
/// when ready, or register in its queue under the select's one parked operation (Go's select
/// cases: a channel receive, a send, a context's done, a timer's channel). Implemented by
/// `RecvFuture<T>` (`ch.recv()`), `SendFuture<T>` (`ch.send(v)`) and `context::Done` (`ctx.done()`).
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
/// use gosim::sync::SelectArm;
///
/// fn is_ready<A: SelectArm>(arm: &A) -> bool { arm.ready() }
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(1);
///     assert!(!is_ready(&ch.recv()));
///     ch.try_send(1).expect("room");
///     assert!(is_ready(&ch.recv()));
///     assert!(is_ready(&s.context().done()) == false);
/// });
/// report.assert_pass();
/// ```
pub trait SelectArm {
    /// What the arm's pattern binds: `Option<T>` for a receive, `Result<(), SendError<T>>`
    /// for a send, `ContextError` for `ctx.done()`.
    type Output;
    /// The run it belongs to.
    fn runtime(&self) -> &Runtime;
    /// Whether it would complete now.
    fn ready(&self) -> bool;
    /// Completes it now (it is ready).
    fn perform(&mut self) -> Self::Output;
    /// Registers it as case `case` of the parked select; returns the resource it waits on.
    fn register(&mut self, parked: &Rc<Parked>, case: usize) -> ResourceRef;
    /// Unregisters it after the select woke; its result if it is the case that completed.
    fn finish(&mut self, parked: &Rc<Parked>, won: bool) -> Option<Self::Output>;
}

/// An arm of `gosim::select!` with its value type erased (the macro's array of arms).
#[doc(hidden)]
pub trait ErasedArm {
    fn runtime(&self) -> Runtime;
    fn ready(&self) -> bool;
    fn perform(&mut self);
    fn register(&mut self, parked: &Rc<Parked>, case: usize) -> ResourceRef;
    fn finish(&mut self, parked: &Rc<Parked>, won: bool);
}

/// An arm of `gosim::select!` and, once it completed, its result.
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct ArmSlot<A: SelectArm> {
    arm: A,
    out: Option<A::Output>,
}

impl<A: SelectArm> ArmSlot<A> {
    /// The arm, not yet tried.
    pub fn new(arm: A) -> ArmSlot<A> {
        ArmSlot { arm, out: None }
    }

    /// Whether this arm is the one the select completed.
    pub fn has_output(&self) -> bool {
        self.out.is_some()
    }

    /// The completed arm's result.
    pub fn take(&mut self) -> A::Output {
        self.out.take().expect("the chosen arm has its result")
    }
}

impl<A: SelectArm> ErasedArm for ArmSlot<A> {
    fn runtime(&self) -> Runtime {
        self.arm.runtime().clone()
    }
    fn ready(&self) -> bool {
        self.arm.ready()
    }
    fn perform(&mut self) {
        self.out = Some(self.arm.perform());
    }
    fn register(&mut self, parked: &Rc<Parked>, case: usize) -> ResourceRef {
        self.arm.register(parked, case)
    }
    fn finish(&mut self, parked: &Rc<Parked>, won: bool) {
        if let Some(v) = self.arm.finish(parked, won) {
            self.out = Some(v);
        }
    }
}

/// Picks one of the ready cases of a select with the run's seeded decision (Go picks at random;
/// here the choice is reproducible): the one rule of every select, Lua's and Rust's.
fn choose_ready(rt: &Runtime, ready: &[usize]) -> usize {
    ready[rt.choose(ready.len())]
}

enum AllState {
    Start,
    Parked(Rc<Parked>),
    Yielded(Option<usize>),
    Finished,
}

/// The future of `gosim::select!`: the index of the arm that completed (`None`: the default).
/// The same rules as Lua's `select` (`select_start`): ready arms are tested in order and one is
/// picked with the seeded decision; none ready, the default if there is one; else the task
/// parks on every arm under one parked operation, and the first to complete wins.
#[doc(hidden)]
#[must_use = "a gosim operation does nothing until it is awaited"]
#[allow(missing_debug_implementations)]
pub struct SelectAll<'a, 'b> {
    rt: Runtime,
    arms: &'a mut [&'b mut dyn ErasedArm],
    default: bool,
    state: AllState,
}

impl<'a, 'b> SelectAll<'a, 'b> {
    /// A select over `arms` (at least one), with a default arm if `default`.
    pub fn new(arms: &'a mut [&'b mut dyn ErasedArm], default: bool) -> SelectAll<'a, 'b> {
        let rt = arms
            .first()
            .expect("gosim::select! needs at least one arm besides default")
            .runtime();
        SelectAll {
            rt,
            arms,
            default,
            state: AllState::Start,
        }
    }

    fn start(&mut self) -> std::task::Poll<Option<usize>> {
        use std::task::Poll;
        let mode = self.rt.op_mode();
        if matches!(mode, OpMode::Later | OpMode::Refused) {
            self.state = AllState::Start;
            return Poll::Pending;
        }
        let ready: Vec<usize> = (0..self.arms.len())
            .filter(|&i| self.arms[i].ready())
            .collect();
        let chosen = if !ready.is_empty() {
            let idx = choose_ready(&self.rt, &ready);
            self.arms[idx].perform();
            Some(idx)
        } else if self.default {
            None
        } else {
            let parked = Parked::new(self.rt.current());
            let resources = (0..self.arms.len())
                .map(|i| self.arms[i].register(&parked, i))
                .collect();
            self.rt
                .block_member(Wait::on_all(SELECT, resources), &parked);
            self.state = AllState::Parked(parked);
            return Poll::Pending;
        };
        if super::channel::after_effect(&self.rt, mode) {
            Poll::Ready(chosen)
        } else {
            self.state = AllState::Yielded(chosen);
            Poll::Pending
        }
    }
}

impl std::future::Future for SelectAll<'_, '_> {
    type Output = Option<usize>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<usize>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::mem::replace(&mut this.state, AllState::Finished) {
            AllState::Start => this.start(),
            AllState::Parked(parked) => {
                let fired = parked.fired_case();
                if parked.take_claim() {
                    this.rt.release_result();
                }
                for (i, arm) in this.arms.iter_mut().enumerate() {
                    arm.finish(&parked, fired == Some(i));
                }
                match fired {
                    Some(i) => Poll::Ready(Some(i)),
                    None => {
                        // Another operation of the task's wait completed first: start over.
                        parked.lose();
                        this.start()
                    }
                }
            }
            AllState::Yielded(r) => {
                this.rt.release_result();
                Poll::Ready(r)
            }
            AllState::Finished => panic!("a gosim select was polled after it completed"),
        }
    }
}

impl Drop for SelectAll<'_, '_> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, AllState::Finished) {
            AllState::Parked(parked) => {
                if parked.take_claim() {
                    self.rt.release_result();
                }
                parked.lose();
                for arm in self.arms.iter_mut() {
                    arm.finish(&parked, false);
                }
            }
            AllState::Yielded(_) => self.rt.release_result(),
            _ => {}
        }
    }
}
