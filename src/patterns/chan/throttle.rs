//! Throttle (seed 1.3), as RxJS's `throttleTime`: a forwarder that emits the first value at once,
//! then drops the rest until `ms` has passed; with `trailing`, the last dropped value is emitted
//! at the end of the window (and starts a new window, so emissions stay `ms` apart). When the
//! input closes, a pending trailing value is emitted at once and the output closes.
//!
//! Exact instants (decided here, deterministically): the window is `[t, t + ms)`. A value that
//! arrives exactly `ms` after the last emission opens a new window and is emitted at once: the
//! window's end is a timer, and timers fire before goroutines run at their instant.
//!
//! Laws: emitted values are at least `ms` apart; the first input of each window is emitted at
//! its arrival time (when the output's receiver is ready: an unbuffered output waits for it).

use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::super::Spawn;
use super::debounce::{Recv, close, nanos, recv_until};
use crate::runtime::Runtime;
use crate::sync::Channel;

/// Throttle settings.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{ThrottleOptions, throttle};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u32>(0);
///     let opts = ThrottleOptions { capacity: 4, ..ThrottleOptions::default() };
///     let out = throttle(s.runtime(), &s, input.clone(), Duration::from_millis(10), opts, None);
///     for v in 1..=3 {
///         input.send(v).await.expect("open"); // three values inside one window
///     }
///     input.close();
///     assert_eq!(out.recv().await, Some(1)); // the window's first value
///     assert_eq!(out.recv().await, None);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleOptions {
    /// Also emit the last value dropped in a window, at the window's end (default false).
    pub trailing: bool,
    /// The output's capacity (default 0: unbuffered).
    pub capacity: usize,
}

/// Throttles `input` into a new channel (capacity `opts.capacity`) through a forwarder task
/// named `throttle`. The output closes after the input does. Not a scheduling point.
pub fn throttle<T: Debug + 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    input: Channel<T>,
    ms: Duration,
    opts: ThrottleOptions,
    created_at: Option<Rc<str>>,
) -> Channel<T> {
    let out: Channel<T> = Channel::new(rt, opts.capacity, created_at);
    out.resource().set_name("throttle");
    let (rt2, out2) = (rt.clone(), out.clone());
    let window = nanos(ms);
    spawner.spawn_boxed(
        Some("throttle"),
        Box::pin(async move {
            let rt = rt2;
            'idle: loop {
                let Some(first) = input.recv().await else {
                    break 'idle;
                };
                let _ = out2.send(first).await;
                // Windows open at delivery, so emissions stay `ms` apart even when an
                // unbuffered output's receiver was late.
                let mut opened = rt.now();
                let mut pending = None;
                loop {
                    let end = opened.saturating_add(window);
                    match recv_until(&rt, &input, Some(end)).await {
                        Recv::Value(v) => {
                            if opts.trailing {
                                pending = Some(v);
                            }
                        }
                        Recv::Closed => {
                            if let Some(v) = pending.take() {
                                let _ = out2.send(v).await;
                            }
                            break 'idle;
                        }
                        Recv::Deadline => match pending.take() {
                            // The trailing value opens the next window.
                            Some(v) => {
                                let _ = out2.send(v).await;
                                opened = rt.now();
                            }
                            None => continue 'idle,
                        },
                    }
                }
            }
            close(&rt, out2).await;
        }),
    );
    out
}
