//! Retry with exponential backoff (seed 3.5), as cenkalti/backoff and AWS's "Exponential Backoff
//! And Jitter": `max_attempts` counts every call, the first included; the delay before call
//! `k + 1` is `d_k = min(max_delay, initial_delay · multiplier^(k-1))`; with jitter it is drawn
//! from `U[0, d_k]` ("full jitter") from the run's seed. A permanent error stops at once.
//!
//! [`Retry`] is the policy (a state machine with no state: which delay comes after which
//! attempt); [`retry`] is the Rust loop, `goroutine.retry` the Lua one, each only calling the
//! user's function and sleeping between the policy's answers.
//!
//! Delays are integer nanoseconds. An integral multiplier multiplies exactly, saturating (no
//! overflow however many attempts); a fractional one multiplies in `f64` from the previous
//! delay, rounded to the nanosecond, and stops growing once it reaches `max_delay`.

use std::rc::Rc;
use std::time::Duration;

use crate::runtime::{Nanos, ResourceKind, ResourceRef, Runtime, Subject};

/// Nothing waits on a policy: it only names the retries in traces.
const KIND: ResourceKind = ResourceKind::released_by_anyone("retry");

/// The settings of a retry policy.
///
/// # Examples
///
/// ```
/// use gosim::patterns::RetrySettings;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let policy = sim.retry_policy(RetrySettings { max_attempts: 4, ..RetrySettings::default() });
/// assert_eq!(policy.next_delay(1), Some(Duration::from_millis(100)));
/// assert_eq!(policy.next_delay(2), Some(Duration::from_millis(200))); // doubled
/// assert_eq!(policy.next_delay(4), None); // no attempt after the last
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// Calls in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The delay after the first failure.
    pub initial_delay: Duration,
    /// No delay is longer.
    pub max_delay: Duration,
    /// Growth per attempt (finite, at least 1).
    pub multiplier: f64,
    /// Full jitter: each delay uniform in `[0, d_k]`.
    pub jitter: bool,
}

impl Default for RetrySettings {
    /// `max_attempts 3`, `initial_delay 100ms`, `max_delay 10s`, `multiplier 2`, no jitter.
    fn default() -> RetrySettings {
        RetrySettings {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: false,
        }
    }
}

/// How a call failed: worth retrying, or not.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{Failure, RetrySettings, permanent, retry};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let policy = s.retry_policy(RetrySettings::default());
///     let tries = s.atomic_int(0);
///     let r: Result<(), &str> = retry(&policy, || {
///         let t = tries.clone();
///         async move {
///             t.add(1).await;
///             Err(permanent("bad request")) // never retried
///         }
///     }).await;
///     assert_eq!((r, tries.peek()), (Err("bad request"), 1));
///     let _transient: Failure<&str> = Failure::Transient("busy");
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<E> {
    /// Retry (if attempts are left).
    Transient(E),
    /// Stop at once and return this error.
    Permanent(E),
}

impl<E> From<E> for Failure<E> {
    fn from(e: E) -> Failure<E> {
        Failure::Transient(e)
    }
}

/// Marks an error as permanent (`goroutine.permanent` in Lua).
pub fn permanent<E>(e: E) -> Failure<E> {
    Failure::Permanent(e)
}

/// A retry policy. Clones are the same policy.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{RetrySettings, retry};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let policy = s.retry_policy(RetrySettings::default()); // 3 attempts, 100 ms doubling
///     let tries = s.atomic_int(0);
///     let r = retry(&policy, || {
///         let t = tries.clone();
///         async move {
///             if t.add(1).await < 3 { Err("busy".into()) } else { Ok("done") }
///         }
///     }).await;
///     assert_eq!(r, Ok::<_, &str>("done"));
///     assert_eq!(s.now(), Duration::from_millis(300)); // 100 + 200 between attempts
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Retry {
    rt: Runtime,
    res: ResourceRef,
    settings: Rc<RetrySettings>,
}

impl std::fmt::Debug for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Retry({}, {:?})", self.res, self.settings)
    }
}

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Retry {
    /// A policy. Panics if `max_attempts` is 0 or `multiplier` is not a finite number ≥ 1 (the
    /// Lua binding reports them as misuse).
    pub fn new(rt: &Runtime, settings: RetrySettings, created_at: Option<Rc<str>>) -> Retry {
        assert!(
            settings.max_attempts >= 1,
            "retry: max_attempts must be >= 1"
        );
        assert!(
            settings.multiplier.is_finite() && settings.multiplier >= 1.0,
            "retry: multiplier must be a finite number >= 1"
        );
        let res = rt.new_resource(KIND, created_at);
        Retry {
            rt: rt.clone(),
            res,
            settings: Rc::new(settings),
        }
    }

    /// Its identity (`retry#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.res
    }

    /// Its settings.
    pub fn settings(&self) -> &RetrySettings {
        &self.settings
    }

    /// `d_k`, the longest delay after the `k`-th failed call (`k >= 1`), without jitter.
    pub fn delay_cap(&self, k: u32) -> Duration {
        let s = &self.settings;
        let max = nanos(s.max_delay);
        let mut d = nanos(s.initial_delay).min(max);
        let m = s.multiplier;
        for _ in 1..k.max(1) {
            if d >= max {
                break;
            }
            d = if m.fract() == 0.0 && m < u64::MAX as f64 {
                d.saturating_mul(m as u64)
            } else {
                let next = (d as f64 * m).round();
                if next >= max as f64 { max } else { next as u64 }
            };
            d = d.min(max);
        }
        Duration::from_nanos(d)
    }

    /// The delay before the next call after `attempt` calls have failed: `None` when no
    /// attempt is left. With jitter, drawn from `U[0, d_k]` from the run's seed.
    pub fn next_delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.settings.max_attempts {
            return None;
        }
        let cap = self.delay_cap(attempt);
        let d = if self.settings.jitter {
            let cap = nanos(cap);
            Duration::from_nanos(if cap == u64::MAX {
                self.rt.random_u64()
            } else {
                self.rt.random_below(cap + 1)
            })
        } else {
            cap
        };
        if self.rt.tracing() {
            let detail = format!(
                "attempt={} delay={}",
                attempt + 1,
                crate::runtime::format_ms(nanos(d))
            );
            self.rt
                .emit("retry", Subject::Resource(self.res.clone()), Some(detail));
        }
        Some(d)
    }
}

/// Calls `f` until it succeeds, fails permanently, or the policy's attempts are spent, sleeping
/// the policy's delay between calls. Returns the result, or the last error (unwrapped).
///
/// # Examples
///
/// ```
/// use gosim::patterns::{RetrySettings, retry};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let settings = RetrySettings { max_attempts: 2, initial_delay: Duration::from_millis(5),
///                                    ..RetrySettings::default() };
///     let policy = s.retry_policy(settings);
///     let r: Result<(), &str> = retry(&policy, || async { Err("down".into()) }).await;
///     assert_eq!(r, Err("down")); // the last error, after 2 attempts
///     assert_eq!(s.now(), Duration::from_millis(5));
/// });
/// report.assert_pass();
/// ```
pub async fn retry<T, E, F, Fut>(policy: &Retry, mut f: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure<E>>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match f().await {
            Ok(v) => return Ok(v),
            Err(Failure::Permanent(e)) => return Err(e),
            Err(Failure::Transient(e)) => match policy.next_delay(attempt) {
                None => return Err(e),
                Some(d) => crate::sync::sleep(&policy.rt, nanos(d), None).await,
            },
        }
    }
}
