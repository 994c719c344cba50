//! Debounce (seed 1.3), as lodash's `debounce` and RxJS's `debounceTime`: a forwarder that emits
//! the last value of a burst once the input has been quiet for `ms`.
//!
//! Options: `leading` (default false) emits the first value of a burst at once; `trailing`
//! (default true) emits the burst's last value after `ms` of quiet (with `leading`, only if more
//! values came after the leading one, as lodash); `max_wait` forces out the latest pending value
//! when that long has passed since the burst began or since its last forced emission (so a
//! steady stream still gets through); `leading = trailing = false` emits nothing. When the input
//! closes, a pending trailing value is emitted at once and the output closes.
//!
//! Exact instants (decided here, deterministically): a gap of exactly `ms` ends the burst, so
//! the value before it is emitted (lodash's `timeSinceLastCall >= wait`). The quiet deadline is
//! a timer, and timers fire before goroutines run at their instant, so a value sent at the very
//! instant the deadline falls arrives after the emission. A gap shorter than `ms` never emits.
//!
//! Quiet is measured on the input as the forwarder receives it: while an emission waits for a
//! receiver on an unbuffered output, the input is not read (backpressure, as a Go forwarder).

use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::super::Spawn;
use crate::runtime::{Blocking, Nanos, Runtime, TimerKey, Wait};
use crate::sync::{Begin, Channel, Op, Parked, RecvSlot, TIMED_OUT, TryRecvError};

/// Debounce settings.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{DebounceOptions, debounce};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u32>(0);
///     let out = debounce(s.runtime(), &s, input.clone(), Duration::from_millis(10),
///                        DebounceOptions::default(), None);
///     for v in 1..=3 {
///         input.send(v).await.expect("open"); // a burst, 1 ms apart
///         s.sleep(Duration::from_millis(1)).await;
///     }
///     assert_eq!(out.recv().await, Some(3)); // the burst's last value
///     assert_eq!(s.now(), Duration::from_millis(12)); // 10 ms after the last send
///     input.close();
///     assert_eq!(out.recv().await, None);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebounceOptions {
    /// Emit the first value of a burst at once (default false).
    pub leading: bool,
    /// Emit the last value of a burst after the quiet period (default true).
    pub trailing: bool,
    /// Force out the pending value after this long in a burst (default none).
    pub max_wait: Option<Duration>,
    /// The output's capacity (default 0: unbuffered).
    pub capacity: usize,
}

impl Default for DebounceOptions {
    fn default() -> Self {
        DebounceOptions {
            leading: false,
            trailing: true,
            max_wait: None,
            capacity: 0,
        }
    }
}

/// A forwarder's receive that also gives up at a deadline.
const RECV: Blocking = Blocking::new("receive", "block-receive");

/// How a receive with a deadline ended.
#[derive(Debug)]
pub(crate) enum Recv<T> {
    /// A value.
    Value(T),
    /// The input is closed and drained.
    Closed,
    /// The deadline came first.
    Deadline,
}

/// Receives from `ch`, giving up at `until` (an instant; `None`: no deadline). A value already
/// there is taken even at the deadline; a value sent at the deadline's instant comes after it
/// (timers fire first).
pub(crate) fn recv_until<T: Debug + 'static>(
    rt: &Runtime,
    ch: &Channel<T>,
    until: Option<Nanos>,
) -> Op<Recv<T>> {
    let (rt2, ch) = (rt.clone(), ch.clone());
    Op::new(rt, None, move || {
        match ch.try_recv() {
            Ok(v) => return Begin::Done(Recv::Value(v)),
            Err(TryRecvError::Closed) => return Begin::Done(Recv::Closed),
            Err(TryRecvError::Empty) => {}
        }
        if until.is_some_and(|at| at <= rt2.now()) {
            return Begin::Done(Recv::Deadline);
        }
        let parked = Parked::new(rt2.current());
        let slot: RecvSlot<T> = Rc::new(std::cell::RefCell::new(None));
        ch.register_recv(parked.clone(), 0, slot.clone());
        let mut wait = Wait::on(RECV, ch.resource());
        wait.until = until;
        rt2.block(wait);
        let key: Option<TimerKey> = until.map(|at| {
            let ch2 = ch.clone();
            parked.expire_at(&rt2, at, move |_, p| ch2.unregister(p))
        });
        Begin::Parked(Box::new(move || {
            if parked.fired_case() == Some(TIMED_OUT) {
                return Recv::Deadline;
            }
            if let Some(k) = key {
                rt2.cancel_timer(k);
            }
            match slot.borrow_mut().take().flatten() {
                Some(v) => Recv::Value(v),
                None => Recv::Closed,
            }
        }))
    })
}

pub(crate) use crate::runtime::duration_nanos as nanos;

/// Closes `out` (a scheduling point, as a Lua forwarder's `close`).
pub(crate) async fn close<T: Debug + 'static>(rt: &Runtime, out: Channel<T>) {
    Op::now(rt, move || {
        out.close();
    })
    .await;
}

/// Debounces `input` into a new channel (capacity `opts.capacity`) through a forwarder task
/// named `debounce`. The output closes after the input does. Not a scheduling point.
pub fn debounce<T: Debug + 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    input: Channel<T>,
    ms: Duration,
    opts: DebounceOptions,
    created_at: Option<Rc<str>>,
) -> Channel<T> {
    let out: Channel<T> = Channel::new(rt, opts.capacity, created_at);
    out.resource().set_name("debounce");
    let (rt2, out2) = (rt.clone(), out.clone());
    let (wait, max_wait) = (nanos(ms), opts.max_wait.map(nanos));
    spawner.spawn_boxed(
        Some("debounce"),
        Box::pin(async move {
            let rt = rt2;
            'idle: loop {
                // No burst: wait for its first value.
                let Some(first) = input.recv().await else {
                    break 'idle;
                };
                let mut last = rt.now();
                let mut anchor = last;
                let mut pending = None;
                if opts.leading {
                    let _ = out2.send(first).await;
                } else {
                    pending = Some(first);
                }
                loop {
                    let quiet_at = last.saturating_add(wait);
                    let forced_at = max_wait.map(|m| anchor.saturating_add(m));
                    let until = forced_at.map_or(quiet_at, |f| f.min(quiet_at));
                    match recv_until(&rt, &input, Some(until)).await {
                        Recv::Value(v) => {
                            last = rt.now();
                            pending = Some(v);
                        }
                        Recv::Closed => {
                            if let Some(v) = pending.take().filter(|_| opts.trailing) {
                                let _ = out2.send(v).await;
                            }
                            break 'idle;
                        }
                        Recv::Deadline if rt.now() >= quiet_at => {
                            if let Some(v) = pending.take().filter(|_| opts.trailing) {
                                let _ = out2.send(v).await;
                            }
                            continue 'idle;
                        }
                        Recv::Deadline => {
                            // max_wait: force the latest value out, or (leading only) end the
                            // burst so the next value leads again.
                            if !opts.trailing {
                                continue 'idle;
                            }
                            if let Some(v) = pending.take() {
                                let _ = out2.send(v).await;
                            }
                            anchor = rt.now();
                        }
                    }
                }
            }
            close(&rt, out2).await;
        }),
    );
    out
}
