//! A token-bucket rate limiter (seed 3.2), as golang.org/x/time/rate's `Limiter`: `burst` tokens,
//! full at creation, refilled at `rate` tokens per `per`.
//!
//! - `allow(n)` takes `n` tokens now or refuses, and a refusal changes nothing (golang/go#52584:
//!   a refused call once moved the limiter's clock).
//! - `reserve(n)` takes `n` tokens now, possibly into debt, and says when they may be used: later
//!   callers queue behind earlier ones because the debt grows (FIFO by construction).
//!   `Reservation::cancel` gives back only the tokens later reservations do not already count on,
//!   as x/time/rate's `CancelAt`; unlike x/time/rate, a caller after a cancel still acts no
//!   earlier than the reservations before it, so waiters wake in call order (patterns.md's law).
//! - `wait(n, timeout)` is a reservation slept through; one that could not finish within its
//!   timeout fails at once and takes nothing; one that needs exactly its timeout succeeds.
//! - `n > burst` can never succeed and fails at once; `rate = 0` lets the first `burst` tokens
//!   through, then nothing (golang/go#39984, #68541); `n = 0` always succeeds at once.
//!
//! Time is read lazily at each call: no goroutine refills the bucket. All arithmetic is on
//! integers (golang/go#71154: float durations overflowed with tiny rates): an amount of tokens
//! is kept in *units* of `1 / per_ns` token, so `elapsed_ns * rate` units accrue exactly, and a
//! wait is the exact ceiling `debt / rate` in nanoseconds. A wait too long for the clock (about
//! 584 years) counts as never.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::{
    Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TimerCallback, Wait,
};
use crate::sync::{Base, Begin, Op, Parked, debug_handle};

/// Only time ends a limiter wait: never a wait-for edge.
const KIND: ResourceKind = ResourceKind::released_by_anyone("rate_limiter");

/// A wait sleeping until its reservation's instant.
const WAIT: Blocking = Blocking::new("wait", "block-wait");

struct State {
    /// Tokens added per `per_ns`.
    rate: u64,
    /// The refill period in nanoseconds (at least 1).
    per_ns: u64,
    burst: u64,
    /// Tokens, in units of `1/per_ns` token (negative: debt of queued reservations).
    tokens: i128,
    /// When `tokens` was last brought up to date.
    last: Nanos,
    /// The latest instant a reservation may act (x/time/rate's `lastEvent`).
    last_event: Nanos,
}

impl State {
    fn unit(&self) -> i128 {
        self.per_ns as i128
    }

    fn cap(&self) -> i128 {
        self.burst as i128 * self.unit()
    }

    /// The tokens at `now` (refilled since `last`, capped at the burst), without storing them.
    fn advance(&self, now: Nanos) -> i128 {
        let elapsed = now.saturating_sub(self.last) as i128;
        let room = self.cap() - self.tokens;
        if room <= 0 || self.rate == 0 {
            return self.tokens;
        }
        let delta = elapsed * self.rate as i128;
        if delta >= room {
            self.cap()
        } else {
            self.tokens + delta
        }
    }

    /// Nanoseconds for `units` to accrue: `None` if never (rate 0, or beyond the clock).
    fn duration_for(&self, units: i128) -> Option<Nanos> {
        if units <= 0 {
            return Some(0);
        }
        if self.rate == 0 {
            return None;
        }
        let rate = self.rate as i128;
        let ns = (units + rate - 1) / rate;
        u64::try_from(ns).ok()
    }
}

type Shared = Base<State>;

/// A token bucket. Clones are the same limiter.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let rl = s.rate_limiter(1, Duration::from_millis(100), 2); // 10/s, burst 2
///     assert!(rl.allow(1) && rl.allow(1));
///     assert!(!rl.allow(1)); // the burst is spent
///     rl.wait(1, None).await.expect("in time");
///     assert_eq!(s.now(), Duration::from_millis(100)); // one token's refill
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    shared: Rc<Shared>,
}

debug_handle!(RateLimiter);

/// Why a wait failed (at once: a wait never starts unless it will finish in time).
///
/// # Examples
///
/// ```
/// use gosim::patterns::WaitError;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let rl = s.rate_limiter(1, Duration::from_secs(1), 1);
///     assert_eq!(rl.wait(2, None).await, Err(WaitError::ExceedsBurst { n: 2, burst: 1 }));
///     rl.wait(1, None).await.expect("a token is there");
///     let r = rl.wait(1, Some(Duration::from_millis(10))).await;
///     assert_eq!(r, Err(WaitError::WouldExceedTimeout)); // fails at once, without waiting
///     assert_eq!(s.now(), Duration::ZERO);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// More tokens than the burst were asked for: they can never be available at once.
    ExceedsBurst {
        /// Tokens asked for.
        n: u64,
        /// The limiter's burst.
        burst: u64,
    },
    /// The tokens would come later than the timeout allows.
    WouldExceedTimeout,
    /// The tokens would never come (rate 0 with the burst spent, or beyond the clock).
    Never,
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitError::ExceedsBurst { n, burst } => {
                write!(f, "wait(n={n}) exceeds the burst {burst}")
            }
            WaitError::WouldExceedTimeout => f.write_str("wait would exceed the timeout"),
            WaitError::Never => f.write_str("wait would never end (no tokens will come)"),
        }
    }
}

impl std::error::Error for WaitError {}

/// Tokens taken now for use at an instant (`RateLimiter::reserve`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let rl = sim.rate_limiter(1, Duration::from_millis(50), 1);
/// let now = rl.reserve(1);
/// assert!(now.ok());
/// assert_eq!(now.delay(), Duration::ZERO);
/// let later = rl.reserve(1);
/// assert_eq!(later.delay(), Duration::from_millis(50)); // act then
/// later.cancel(); // gives its token back
/// ```
#[derive(Debug, Clone)]
pub struct Reservation {
    inner: Rc<ResInner>,
}

#[derive(Debug)]
struct ResInner {
    limiter: RateLimiter,
    ok: bool,
    tokens: u64,
    /// When the tokens may be used (`Nanos::MAX` if never).
    time_to_act: Nanos,
    cancelled: Cell<bool>,
}

/// How a reservation attempt ended: a reservation (ok or not) and, if not ok, why.
struct Attempt {
    ok: bool,
    time_to_act: Nanos,
    why: Option<WaitError>,
}

impl RateLimiter {
    /// A limiter of `burst` tokens refilled at `rate` tokens per `per`, full now. `per` is
    /// rounded up to at least 1 ns.
    pub fn new(
        rt: &Runtime,
        rate: u64,
        per: Duration,
        burst: u64,
        created_at: Option<Rc<str>>,
    ) -> RateLimiter {
        let per_ns = u64::try_from(per.as_nanos()).unwrap_or(u64::MAX).max(1);
        let detail = Some(format!(
            "rate={rate} per={} burst={burst}",
            crate::runtime::format_ms(per_ns)
        ));
        let now = rt.now();
        RateLimiter {
            shared: Base::new(
                rt,
                KIND,
                created_at,
                detail,
                State {
                    rate,
                    per_ns,
                    burst,
                    tokens: burst as i128 * per_ns as i128,
                    last: now,
                    last_event: now,
                },
            ),
        }
    }

    /// Its identity (`rate_limiter#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// The bucket's size.
    pub fn burst(&self) -> u64 {
        self.shared.state.borrow().burst
    }

    /// Tokens added per period, and the period.
    pub fn rate(&self) -> (u64, Duration) {
        let st = self.shared.state.borrow();
        (st.rate, Duration::from_nanos(st.per_ns))
    }

    /// Tokens available now (negative: owed to reservations), as a fraction.
    pub fn tokens(&self) -> f64 {
        let st = self.shared.state.borrow();
        st.advance(self.shared.rt.now()) as f64 / st.per_ns as f64
    }

    /// x/time/rate's `reserveN`: takes `n` tokens at `now` if they are available within
    /// `max_wait` (`None`: any finite time); changes nothing otherwise.
    fn reserve_at(&self, now: Nanos, n: u64, max_wait: Option<Nanos>) -> Attempt {
        let mut st = self.shared.state.borrow_mut();
        if n == 0 {
            return Attempt {
                ok: true,
                time_to_act: now,
                why: None,
            };
        }
        if n > st.burst {
            return Attempt {
                ok: false,
                time_to_act: Nanos::MAX,
                why: Some(WaitError::ExceedsBurst { n, burst: st.burst }),
            };
        }
        let mut tokens = st.advance(now) - n as i128 * st.unit();
        let wait = st.duration_for(-tokens);
        if let (Some(w), true) = (wait, tokens < 0) {
            // In debt, the wait is rounded up to a whole nanosecond: the debt is rounded up
            // with it, so the tokens are exactly 0 at the reservation's instant and the next
            // reservation queues after that instant, never into its rounding (otherwise two
            // admissions could be closer than the rate allows by a fraction of a nanosecond).
            tokens = tokens.min(-(w as i128 * st.rate as i128));
        }
        // Callers queue in call order (patterns.md), including after a cancel: a cancelled
        // reservation gives back the tokens later ones do not count on (x/time/rate's
        // `CancelAt`), and without this a caller arriving next could use them and act before a
        // waiter already parked. No earlier than the last reservation's instant, then.
        let act = wait
            .and_then(|w| now.checked_add(w))
            .filter(|&a| a < Nanos::MAX)
            .map(|a| a.max(st.last_event));
        let wait = match (wait, act) {
            (Some(_), Some(a)) => Some(a - now),
            (w, _) => w,
        };
        let (ok, why) = match (wait, act) {
            (Some(w), Some(_)) if max_wait.is_none_or(|m| w <= m) => (true, None),
            (Some(_), Some(_)) => (false, Some(WaitError::WouldExceedTimeout)),
            _ => (false, Some(WaitError::Never)),
        };
        if !ok {
            return Attempt {
                ok,
                time_to_act: Nanos::MAX,
                why,
            };
        }
        let act = act.expect("ok means a finite instant");
        st.last = now;
        st.tokens = tokens;
        st.last_event = act;
        Attempt {
            ok,
            time_to_act: act,
            why: None,
        }
    }

    /// Takes `n` tokens if they are available now; refuses otherwise, changing nothing.
    pub fn allow(&self, n: u64) -> bool {
        let now = self.shared.rt.now();
        let a = self.reserve_at(now, n, Some(0));
        self.trace("allow", format!("n={n}{}", refused(a.ok)));
        a.ok
    }

    /// Reserves `n` tokens: they may be used after `Reservation::delay`. Not ok (and nothing
    /// taken) if `n > burst` or if they would never come.
    pub fn reserve(&self, n: u64) -> Reservation {
        let now = self.shared.rt.now();
        let a = self.reserve_at(now, n, None);
        if self.shared.rt.tracing() {
            let detail = if a.ok {
                format!(
                    "n={n} delay={}",
                    crate::runtime::format_ms(a.time_to_act - now)
                )
            } else {
                format!("n={n} refused")
            };
            self.trace("reserve", detail);
        }
        Reservation {
            inner: Rc::new(ResInner {
                limiter: self.clone(),
                ok: a.ok,
                tokens: if a.ok { n } else { 0 },
                time_to_act: a.time_to_act,
                cancelled: Cell::new(false),
            }),
        }
    }

    /// Starts a wait: done at once, refused at once, or the current goroutine parked until
    /// its reservation's instant (woken by a timer, in call order for equal instants).
    pub(crate) fn wait_or_park(&self, n: u64, timeout: Option<Nanos>) -> Result<bool, WaitError> {
        let rt = &self.shared.rt;
        let now = rt.now();
        let a = self.reserve_at(now, n, timeout);
        if let Some(why) = a.why {
            self.trace("wait", format!("n={n} refused"));
            return Err(why);
        }
        if a.time_to_act <= now {
            self.trace("wait", format!("n={n}"));
            return Ok(true);
        }
        let me = rt.current();
        let mut wait = Wait::on(WAIT, &self.shared.res);
        wait.until = Some(a.time_to_act);
        rt.block(wait);
        rt.add_timer(
            a.time_to_act,
            Box::new(Admit {
                parked: Parked::new(me),
                res: self.shared.res.clone(),
                n,
            }),
        );
        Ok(false)
    }

    /// Waits until `n` tokens are available, in call order; fails at once (taking nothing) if
    /// `n > burst`, if they would never come, or if they would come later than `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let rl = s.rate_limiter(2, Duration::from_millis(10), 2);
    ///     for _ in 0..4 {
    ///         rl.wait(1, None).await.expect("in time"); // FIFO, as tokens come back
    ///     }
    ///     assert_eq!(s.now(), Duration::from_millis(10));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn wait(&self, n: u64, timeout: Option<Duration>) -> Op<Result<(), WaitError>> {
        let lim = self.clone();
        let timeout = timeout.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            match lim.wait_or_park(n, timeout) {
                Err(e) => Begin::Done(Err(e)),
                Ok(true) => Begin::Done(Ok(())),
                Ok(false) => Begin::Parked(Box::new(|| Ok(()))),
            }
        })
    }

    /// x/time/rate's `CancelAt`.
    fn cancel_at(&self, r: &ResInner, now: Nanos) {
        let mut st = self.shared.state.borrow_mut();
        if !r.ok || r.tokens == 0 || r.time_to_act < now {
            return;
        }
        // Tokens that reservations made after `r` already count on stay taken.
        let later = r.time_to_act.min(st.last_event);
        let counted = (st.last_event - later) as i128 * st.rate as i128;
        let restore = r.tokens as i128 * st.unit() - counted;
        if restore <= 0 {
            return;
        }
        let tokens = (st.advance(now) + restore).min(st.cap());
        st.last = now;
        st.tokens = tokens;
        if r.time_to_act == st.last_event && st.rate > 0 {
            let back = (r.tokens as i128 * st.unit()) / st.rate as i128;
            let prev = r
                .time_to_act
                .saturating_sub(u64::try_from(back).unwrap_or(u64::MAX));
            if prev >= now {
                st.last_event = prev;
            }
        }
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
}

fn refused(ok: bool) -> &'static str {
    if ok { "" } else { " refused" }
}

/// A waiter's reservation instant: it goes. Nothing else completes the wait (its tokens are
/// already taken), so this timer is the only way out and always wakes it.
struct Admit {
    parked: Rc<Parked>,
    res: ResourceRef,
    n: u64,
}

impl TimerCallback for Admit {
    fn fire(self: Box<Self>, rt: &Runtime) {
        if !self.parked.is_live() {
            return;
        }
        if rt.tracing() {
            let detail = Some(format!("n={}", self.n));
            let task = self.parked.task();
            rt.emit_as(task, "wait", Subject::Resource(self.res), detail, None);
        }
        self.parked.fire(rt, 0);
    }

    fn may_wake(&self) -> bool {
        self.parked.is_live()
    }
}

impl Reservation {
    /// Whether the tokens were reserved (false: `n > burst`, or they would never come).
    pub fn ok(&self) -> bool {
        self.inner.ok
    }

    /// How long from now until the tokens may be used: never negative (zero once the instant
    /// has passed); `Duration::MAX` for a reservation that is not ok.
    pub fn delay(&self) -> Duration {
        if !self.inner.ok {
            return Duration::MAX;
        }
        let now = self.inner.limiter.shared.rt.now();
        Duration::from_nanos(self.inner.time_to_act.saturating_sub(now))
    }

    /// The run's instant at which the tokens may be used (`None` if not ok).
    pub fn time_to_act(&self) -> Option<Duration> {
        self.inner
            .ok
            .then(|| Duration::from_nanos(self.inner.time_to_act))
    }

    /// Gives the tokens back, as far as later reservations do not already count on them; does
    /// nothing once the instant has passed, for a reservation that is not ok, or a second time.
    pub fn cancel(&self) {
        if self.inner.cancelled.replace(true) {
            return;
        }
        let lim = &self.inner.limiter;
        lim.cancel_at(&self.inner, lim.shared.rt.now());
        lim.trace("cancel", format!("n={}", self.inner.tokens));
    }
}
