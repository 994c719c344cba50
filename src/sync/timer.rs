//! Go's timers and tickers (`time.Timer`, `time.Ticker`, `time.AfterFunc`, `time.After`) on the
//! run's clock. What a firing does is a `TimerTarget`: deliver the time on a channel (dropped if
//! nobody made room, as Go does), or spawn a goroutine. `stop` and `reset` follow Go 1.23: they
//! report whether the timer was pending or had fired with its value still unreceived, and that
//! value is discarded, so no stale tick is ever received after them.

use std::cell::RefCell;
use std::rc::Rc;

use super::channel::{Channel, Describe};
use crate::runtime::{Nanos, ResourceRef, Runtime, Subject, TimerCallback, TimerKey, format_ms};

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
}

struct Shared {
    rt: Runtime,
    res: ResourceRef,
    target: Box<dyn TimerTarget>,
    state: RefCell<State>,
}

/// A one-shot timer or a ticker. Clones are the same timer.
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
        let period = {
            let mut st = shared.state.borrow_mut();
            st.key = None;
            st.period
        };
        if rt.tracing() {
            rt.emit("fire", Subject::Resource(shared.res.clone()), None);
        }
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
        shared.target.fire(rt, now);
    }

    fn may_wake(&self) -> bool {
        self.timer.target.may_wake()
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
        let res = rt.new_resource(kind, created_at);
        if rt.tracing() {
            rt.emit(
                "new",
                Subject::Resource(res.clone()),
                Some(format_ms(delay)),
            );
        }
        let shared = Rc::new(Shared {
            rt: rt.clone(),
            res,
            target,
            state: RefCell::new(State { key: None, period }),
        });
        let timer = Timer { shared };
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
        let key = self.shared.state.borrow_mut().key.take();
        let was_pending = key.is_some_and(|k| self.shared.rt.cancel_timer(k));
        let drained = self.shared.target.drain();
        let rt = &self.shared.rt;
        if rt.tracing() {
            let detail = drained.then(|| "dropped an unreceived value".to_string());
            rt.emit(verb, Subject::Resource(self.shared.res.clone()), detail);
        }
        was_pending || drained
    }

    /// Stops it and arms it again to fire after `delay` (a ticker then every `delay`). Returns
    /// what `stop` would have.
    pub fn reset(&self, delay: Nanos) -> bool {
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
pub struct FuncTarget {
    f: RefCell<Spawner>,
}

impl FuncTarget {
    /// A target calling `f` at every firing.
    pub fn new(f: impl FnMut(&Runtime) + 'static) -> FuncTarget {
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
pub fn after_func(
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
pub struct ChannelTarget<T> {
    ch: Channel<T>,
    value: fn(Nanos) -> T,
}

impl<T> ChannelTarget<T> {
    /// A target sending `value(now)` on `ch`.
    pub fn new(ch: Channel<T>, value: fn(Nanos) -> T) -> ChannelTarget<T> {
        ChannelTarget { ch, value }
    }
}

impl<T> std::fmt::Debug for ChannelTarget<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelTarget")
    }
}

impl<T: Describe + 'static> TimerTarget for ChannelTarget<T> {
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

/// Go's `time.After`: a new channel of capacity 1 named `after` that receives `value(now)` once,
/// `delay` from now, from a timer of kind `timer`.
pub fn after_channel<T: Describe + 'static>(
    rt: &Runtime,
    delay: Nanos,
    value: fn(Nanos) -> T,
    created_at: Option<Rc<str>>,
) -> Channel<T> {
    let ch: Channel<T> = Channel::new(rt, 1, created_at.clone());
    ch.resource().set_name("after");
    Timer::start(
        rt,
        "timer",
        delay,
        None,
        Box::new(ChannelTarget::new(ch.clone(), value)),
        created_at,
    );
    ch
}
