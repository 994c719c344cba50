//! Go's timers and tickers (`time.Timer`, `time.Ticker`, `time.AfterFunc`, `time.After`) on the
//! run's clock. What a firing does is a `TimerTarget`: deliver the time on a channel (dropped if
//! nobody made room, as Go does), or spawn a goroutine. `stop` and `reset` follow Go 1.23: they
//! report whether the timer was pending or had fired with its value still unreceived, and that
//! value is discarded, so no stale tick is ever received after them.

use std::fmt::Debug;
use std::rc::Rc;

use std::cell::RefCell;

use super::base::Base;
use super::channel::Channel;
use crate::runtime::{
    Nanos, ResourceKind, ResourceRef, Runtime, TimerCallback, TimerKey, format_ms,
};
use std::time::Duration;

/// What a timer does when it fires.
pub trait TimerTarget {
    /// Fires at the run's time `now`.
    fn fire(&self, rt: &Runtime, now: Nanos);
    /// Whether firing could wake a blocked goroutine (for the deadlock check).
    fn may_wake(&self) -> bool;
    /// Drops an already-delivered, unreceived value; true if there was one.
    fn drain(&self) -> bool;
}

struct State {
    key: Option<TimerKey>,
    period: Option<Nanos>,
    /// Shared so that it is called with the state not borrowed: firing may run code (a spawn)
    /// that reaches this timer again.
    target: Rc<dyn TimerTarget>,
}

type Shared = Base<State>;

/// A one-shot timer or a ticker. Clones are the same timer.
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
///     let (ticker, ticks) = s.ticker(Duration::from_millis(10));
///     assert_eq!(ticks.recv().await, Some(Duration::from_millis(10)));
///     assert_eq!(ticks.recv().await, Some(Duration::from_millis(20)));
///     assert!(ticker.stop()); // it was still running
///     assert!(!ticker.is_pending());
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Timer {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Timer({})", self.shared.res)
    }
}

/// The queued firing. It holds the timer strongly: `goroutine.after(ms)` keeps no handle, yet
/// its channel must still receive the tick.
struct Fire {
    timer: Rc<Shared>,
}

impl TimerCallback for Fire {
    fn fire(self: Box<Self>, rt: &Runtime) {
        let shared = self.timer;
        let now = rt.now();
        let (period, target) = {
            let mut st = shared.state.borrow_mut();
            st.key = None;
            (st.period, st.target.clone())
        };
        shared.trace("fire", None);
        if let Some(p) = period {
            // Re-arm before delivering, so a target that stops the ticker wins.
            let key = rt.add_timer(
                now.saturating_add(p),
                Box::new(Fire {
                    timer: shared.clone(),
                }),
            );
            shared.state.borrow_mut().key = Some(key);
        }
        target.fire(rt, now);
    }

    fn may_wake(&self) -> bool {
        let target = self.timer.state.borrow().target.clone();
        target.may_wake()
    }
}

impl Timer {
    /// A timer of `kind` ("timer", "ticker", "after_func"...) firing after `delay`, then every
    /// `period` if one is given (`period > 0`).
    pub fn start(
        rt: &Runtime,
        kind: &'static str,
        delay: Nanos,
        period: Option<Nanos>,
        target: Box<dyn TimerTarget>,
        created_at: Option<Rc<str>>,
    ) -> Timer {
        assert!(period != Some(0), "a ticker's period is positive");
        // Nobody holds a timer: it fires by itself, or whoever has it stops or resets it.
        let kind = ResourceKind::released_by_anyone(kind);
        let state = State {
            key: None,
            period,
            target: Rc::from(target),
        };
        let detail = rt.tracing().then(|| format_ms(delay));
        let timer = Timer {
            shared: Base::new(rt, kind, created_at, detail, state),
        };
        timer.arm(delay);
        timer
    }

    fn arm(&self, delay: Nanos) {
        let rt = &self.shared.rt;
        let at = rt.now().saturating_add(delay);
        let key = rt.add_timer(
            at,
            Box::new(Fire {
                timer: self.shared.clone(),
            }),
        );
        self.shared.state.borrow_mut().key = Some(key);
    }

    /// Its identity.
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Stops it. True if it was pending, or had fired with its value not yet received (that
    /// value is dropped).
    pub fn stop(&self) -> bool {
        self.halt("stop")
    }

    fn halt(&self, verb: &'static str) -> bool {
        let (key, target) = {
            let mut st = self.shared.state.borrow_mut();
            (st.key.take(), st.target.clone())
        };
        let was_pending = key.is_some_and(|k| self.shared.rt.cancel_timer(k));
        let drained = target.drain();
        self.shared.trace_with(verb, || {
            drained.then(|| "dropped an unreceived value".to_string())
        });
        was_pending || drained
    }

    /// Stops it and arms it again to fire after `delay` (a ticker then every `delay`). Returns
    /// what `stop` would have.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let (ticker, ticks) = s.ticker(Duration::from_millis(10));
    ///     ticker.reset(Duration::from_millis(3));
    ///     assert_eq!(ticks.recv().await, Some(Duration::from_millis(3)));
    ///     ticker.stop();
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    pub fn reset(&self, delay: std::time::Duration) -> bool {
        self.reset_nanos(super::to_nanos(delay))
    }

    /// `reset` in nanoseconds (the bindings' unit).
    pub(crate) fn reset_nanos(&self, delay: Nanos) -> bool {
        let was = self.halt("reset");
        {
            let mut st = self.shared.state.borrow_mut();
            if st.period.is_some() {
                st.period = Some(delay.max(1));
            }
        }
        self.arm(delay);
        was
    }

    /// Whether it will fire again.
    pub fn is_pending(&self) -> bool {
        self.shared.state.borrow().key.is_some()
    }
}

/// What an `after_func` timer calls when it fires.
type Spawner = Box<dyn FnMut(&Runtime)>;

/// Calls a function when the timer fires (Go's `time.AfterFunc`): the function spawns the
/// goroutine, so this target knows no task body. One target serves every binding: the Rust
/// API passes a closure that spawns a Rust task, a language binding one that spawns its own
/// goroutine. `FnMut`, because a fired `after_func` timer may be `reset` and fire again. The
/// function gets the runtime as an argument so it need not hold one (a timer holding its run
/// would be a cycle).
pub(super) struct FuncTarget {
    f: RefCell<Spawner>,
}

impl FuncTarget {
    /// A target calling `f` at every firing.
    pub(super) fn new(f: impl FnMut(&Runtime) + 'static) -> FuncTarget {
        FuncTarget {
            f: RefCell::new(Box::new(f)),
        }
    }
}

impl std::fmt::Debug for FuncTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FuncTarget")
    }
}

impl TimerTarget for FuncTarget {
    fn fire(&self, rt: &Runtime, _now: Nanos) {
        (self.f.borrow_mut())(rt);
    }

    /// A new goroutine may release anybody.
    fn may_wake(&self) -> bool {
        true
    }

    fn drain(&self) -> bool {
        false
    }
}

/// Starts a one-shot timer (kind `after_func`) that calls `spawn` when it fires, `delay` from now.
pub(crate) fn after_func(
    rt: &Runtime,
    delay: Nanos,
    spawn: impl FnMut(&Runtime) + 'static,
    created_at: Option<Rc<str>>,
) -> Timer {
    Timer::start(
        rt,
        "after_func",
        delay,
        None,
        Box::new(FuncTarget::new(spawn)),
        created_at,
    )
}

/// Delivers a value made from the run's time on a channel, dropping it if nobody made room (Go's
/// timers do the same). Generic over the channel's value type, so one target serves every
/// binding (Rust delivers a `Duration`, Lua a number of milliseconds).
pub(super) struct ChannelTarget<T> {
    ch: Channel<T>,
    value: fn(Nanos) -> T,
}

impl<T> ChannelTarget<T> {
    /// A target sending `value(now)` on `ch`.
    pub(super) fn new(ch: Channel<T>, value: fn(Nanos) -> T) -> ChannelTarget<T> {
        ChannelTarget { ch, value }
    }
}

impl<T> std::fmt::Debug for ChannelTarget<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelTarget")
    }
}

impl<T: Debug + 'static> TimerTarget for ChannelTarget<T> {
    fn fire(&self, _rt: &Runtime, now: Nanos) {
        let _ = self.ch.try_send((self.value)(now));
    }

    fn may_wake(&self) -> bool {
        self.ch.blocked_receivers() > 0
    }

    fn drain(&self) -> bool {
        self.ch.discard_buffered()
    }
}

/// A timer (one-shot, or periodic with `period`) delivering the time on a new channel of
/// capacity 1 named `name`. The channel is created first, then the timer (trace order).
pub(crate) fn channel_timer<T: Debug + 'static>(
    rt: &Runtime,
    delay: Nanos,
    period: Option<Nanos>,
    created_at: Option<Rc<str>>,
    name: &str,
    make: fn(Nanos) -> T,
) -> (Timer, Channel<T>) {
    let ch: Channel<T> = Channel::new(rt, 1, created_at.clone());
    ch.resource().set_name(name);
    let kind = if period.is_some() { "ticker" } else { "timer" };
    let target = ChannelTarget::new(ch.clone(), make);
    let timer = Timer::start(rt, kind, delay, period, Box::new(target), created_at);
    (timer, ch)
}

/// A Rust timer or ticker: `Duration`s on a channel named `after` (one-shot) or `ticks`.
pub(crate) fn after(
    rt: &Runtime,
    delay: Nanos,
    period: Option<Nanos>,
    location: Option<Rc<str>>,
) -> (Timer, Channel<Duration>) {
    let name = if period.is_some() { "ticks" } else { "after" };
    channel_timer(rt, delay, period, location, name, Duration::from_nanos)
}

/// Go's `time.After`: a new channel of capacity 1 named `after` that receives `value(now)` once,
/// `delay` from now, from a timer of kind `timer`.
pub(crate) fn after_channel<T: Debug + 'static>(
    rt: &Runtime,
    delay: Nanos,
    value: fn(Nanos) -> T,
    created_at: Option<Rc<str>>,
) -> Channel<T> {
    channel_timer(rt, delay, None, created_at, "after", value).1
}
