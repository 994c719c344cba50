//! A circuit breaker (seed 3.3), as sony/gobreaker with resilience4j's permit discipline:
//! closed / open / half-open, with generations.
//!
//! - Closed counts consecutive failures; `threshold` of them (≥) open it.
//! - Open rejects without running anything ([`Rejected::Open`]); it becomes half-open strictly
//!   after `timeout` (at exactly `+timeout` it is still open). The check is lazy, at the next
//!   acquire: no goroutine watches the clock.
//! - Half-open admits `half_open_max` calls ([`Rejected::TooManyRequests`] beyond); any failure
//!   reopens it (a new timeout), `half_open_max` consecutive successes close it.
//! - Every transition starts a new generation; a permit records its result only in the
//!   generation that admitted it (a late result of an older period is ignored).
//!
//! The state machine is driven through permits: [`CircuitBreaker::try_acquire`] admits or
//! rejects, [`Permit::record`] reports the outcome once. A permit dropped without a result (an
//! ignored error, a cancelled call) gives its half-open slot back (resilience4j#544: a leaked
//! permit once left a half-open breaker refusing everything). Both report the transitions they
//! caused, in order, so the combinator of the calling goroutine's language (`call` here,
//! `cb:call` in Lua) can run `on_state_change(from, to)` itself, synchronously.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::{Nanos, ResourceKind, ResourceRef, Runtime, Subject};

/// Nothing ever waits on a breaker: it only names it in traces.
const KIND: ResourceKind = ResourceKind::released_by_anyone("circuit_breaker");

/// A breaker's state.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{CircuitSettings, CircuitState};
///
/// let sim = gosim::Sim::with_seed(1);
/// let cb = sim.circuit_breaker(CircuitSettings::default());
/// assert_eq!(cb.state(), CircuitState::Closed);
/// assert_eq!(CircuitState::HalfOpen.as_str(), "half-open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Calls run; consecutive failures are counted.
    Closed,
    /// Calls are rejected until the timeout has passed.
    Open,
    /// A few trial calls run.
    HalfOpen,
}

impl State {
    /// `closed`, `open` or `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change: `(from, to)`.
pub type Transition = (State, State);

/// Why a call was rejected without running.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{CircuitSettings, Rejected};
///
/// let sim = gosim::Sim::with_seed(1);
/// let cb = sim.circuit_breaker(CircuitSettings { threshold: 1, ..CircuitSettings::default() });
/// let (permit, _) = cb.try_acquire();
/// permit.expect("closed").record(false); // one failure opens it
/// let (refused, _) = cb.try_acquire();
/// assert_eq!(refused.unwrap_err(), Rejected::Open);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The breaker is open.
    Open,
    /// The breaker is half-open and its trial calls are all admitted.
    TooManyRequests,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rejected::Open => "circuit breaker is open",
            Rejected::TooManyRequests => "too many requests",
        })
    }
}

impl std::error::Error for Rejected {}

/// The settings of a breaker.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{CircuitSettings, CircuitState};
/// use std::time::Duration;
///
/// let settings = CircuitSettings {
///     threshold: 3,
///     timeout: Duration::from_secs(5),
///     on_state_change: Some(Box::new(|from: CircuitState, to: CircuitState| {
///         println!("{from} -> {to}");
///     })),
///     ..CircuitSettings::default()
/// };
/// assert_eq!(settings.half_open_max, 1);
/// ```
pub struct Settings {
    /// Consecutive failures that open a closed breaker (at least 1).
    pub threshold: u32,
    /// How long it stays open.
    pub timeout: Duration,
    /// Trial calls admitted while half-open, and consecutive successes that close it (≥ 1).
    pub half_open_max: u32,
    /// Called synchronously by the Rust [`CircuitBreaker::call`] (and for transitions caused
    /// through `try_acquire`/`record` from Rust), in order.
    pub on_state_change: Option<Box<dyn Fn(State, State)>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("threshold", &self.threshold)
            .field("timeout", &self.timeout)
            .field("half_open_max", &self.half_open_max)
            .field("on_state_change", &self.on_state_change.is_some())
            .finish()
    }
}

impl Default for Settings {
    /// gobreaker's defaults, with a 5-failure threshold: `threshold 5`, `timeout 60s`,
    /// `half_open_max 1`.
    fn default() -> Settings {
        Settings {
            threshold: 5,
            timeout: Duration::from_secs(60),
            half_open_max: 1,
            on_state_change: None,
        }
    }
}

struct Inner {
    state: State,
    generation: u64,
    /// Consecutive failures while closed.
    failures: u32,
    /// Consecutive successes while half-open.
    successes: u32,
    /// Calls admitted in this half-open period and not given back.
    admitted: u32,
    /// When it opened.
    opened_at: Nanos,
}

struct Shared {
    rt: Runtime,
    res: ResourceRef,
    threshold: u32,
    timeout: Nanos,
    half_open_max: u32,
    on_state_change: Option<Box<dyn Fn(State, State)>>,
    inner: RefCell<Inner>,
}

/// A circuit breaker. Clones are the same breaker.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{CallError, CircuitSettings, CircuitState, Rejected};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let settings = CircuitSettings { threshold: 2, timeout: Duration::from_millis(100),
///                                      ..CircuitSettings::default() };
///     let cb = s.circuit_breaker(settings);
///     for _ in 0..2 {
///         let r: Result<(), _> = cb.call(|| async { Err("down") }).await;
///         assert_eq!(r, Err(CallError::Failed("down")));
///     }
///     assert_eq!(cb.state(), CircuitState::Open);
///     let r = cb.call(|| async { Ok::<_, &str>(()) }).await; // not even tried
///     assert_eq!(r, Err(CallError::Rejected(Rejected::Open)));
///     s.sleep(Duration::from_millis(150)).await; // past the open timeout
///     assert_eq!(cb.call(|| async { Ok::<_, &str>(1) }).await, Ok(1)); // half-open probe
///     assert_eq!(cb.state(), CircuitState::Closed);
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CircuitBreaker({})", self.shared.res)
    }
}

/// The right to run one call, admitted in one generation. Record its outcome once with
/// [`Permit::record`]; dropping it unrecorded gives its slot back without counting.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{CircuitSettings, CircuitState};
///
/// let sim = gosim::Sim::with_seed(1);
/// let cb = sim.circuit_breaker(CircuitSettings { threshold: 1, ..CircuitSettings::default() });
/// let (permit, transitions) = cb.try_acquire();
/// assert!(transitions.is_empty());
/// let changes = permit.expect("closed").record(false); // the call failed
/// assert_eq!(changes, vec![(CircuitState::Closed, CircuitState::Open)]);
/// ```
#[derive(Debug)]
pub struct Permit {
    cb: CircuitBreaker,
    generation: u64,
    done: Cell<bool>,
}

/// The outcome of a call through [`CircuitBreaker::call`].
///
/// # Examples
///
/// ```
/// use gosim::patterns::{CallError, CircuitSettings};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let cb = s.circuit_breaker(CircuitSettings::default());
///     let r: Result<u8, CallError<String>> = cb.call(|| async { Err("boom".to_string()) }).await;
///     assert!(matches!(r, Err(CallError::Failed(ref e)) if e == "boom"));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// Rejected without running.
    Rejected(Rejected),
    /// Ran and failed.
    Failed(E),
}

impl<E: std::fmt::Display> std::fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rejected(r) => r.fmt(f),
            CallError::Failed(e) => e.fmt(f),
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker. Panics if `threshold` or `half_open_max` is 0 (the Lua binding reports
    /// them as misuse).
    pub fn new(rt: &Runtime, settings: Settings, created_at: Option<Rc<str>>) -> CircuitBreaker {
        assert!(
            settings.threshold > 0 && settings.half_open_max > 0,
            "a circuit breaker needs threshold >= 1 and half_open_max >= 1"
        );
        let res = rt.new_resource(KIND, created_at);
        let timeout = u64::try_from(settings.timeout.as_nanos()).unwrap_or(u64::MAX);
        if rt.tracing() {
            let detail = format!(
                "threshold={} timeout={} half_open_max={}",
                settings.threshold,
                crate::runtime::format_ms(timeout),
                settings.half_open_max
            );
            rt.emit("new", Subject::Resource(res.clone()), Some(detail));
        }
        CircuitBreaker {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                threshold: settings.threshold,
                timeout,
                half_open_max: settings.half_open_max,
                on_state_change: settings.on_state_change,
                inner: RefCell::new(Inner {
                    state: State::Closed,
                    generation: 0,
                    failures: 0,
                    successes: 0,
                    admitted: 0,
                    opened_at: 0,
                }),
            }),
        }
    }

    /// Its identity (`circuit_breaker#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// The state as of now: an open breaker whose timeout has passed reads `HalfOpen` (the
    /// transition itself, and its `on_state_change`, happen at the next acquire).
    pub fn state(&self) -> State {
        let st = self.shared.inner.borrow();
        if st.state == State::Open && self.expired(&st) {
            State::HalfOpen
        } else {
            st.state
        }
    }

    /// The current generation (0 at creation, +1 per transition).
    pub fn generation(&self) -> u64 {
        self.shared.inner.borrow().generation
    }

    fn expired(&self, st: &Inner) -> bool {
        self.shared.rt.now().saturating_sub(st.opened_at) > self.shared.timeout
    }

    fn to(&self, st: &mut Inner, to: State, out: &mut Vec<Transition>) {
        let from = st.state;
        st.state = to;
        st.generation += 1;
        st.failures = 0;
        st.successes = 0;
        st.admitted = 0;
        if to == State::Open {
            st.opened_at = self.shared.rt.now();
        }
        out.push((from, to));
    }

    /// Announces transitions: a trace event each, and the Rust callback if any.
    fn announce(&self, ts: &[Transition]) {
        for &(from, to) in ts {
            self.trace("state", format!("{from} -> {to}"));
            if let Some(f) = &self.shared.on_state_change {
                f(from, to);
            }
        }
    }

    /// Admits a call (a permit) or rejects it; also returns the transitions this caused (an
    /// open breaker whose timeout has passed turns half-open here).
    pub fn try_acquire(&self) -> (Result<Permit, Rejected>, Vec<Transition>) {
        let mut ts = Vec::new();
        let r = {
            let mut st = self.shared.inner.borrow_mut();
            if st.state == State::Open && self.expired(&st) {
                self.to(&mut st, State::HalfOpen, &mut ts);
            }
            match st.state {
                State::Closed => Ok(st.generation),
                State::Open => Err(Rejected::Open),
                State::HalfOpen if st.admitted >= self.shared.half_open_max => {
                    Err(Rejected::TooManyRequests)
                }
                State::HalfOpen => {
                    st.admitted += 1;
                    Ok(st.generation)
                }
            }
        };
        self.announce(&ts);
        match r {
            Ok(generation) => {
                self.trace("admit", format!("generation={generation}"));
                let p = Permit {
                    cb: self.clone(),
                    generation,
                    done: Cell::new(false),
                };
                (Ok(p), ts)
            }
            Err(e) => {
                self.trace("reject", e.to_string());
                (Err(e), ts)
            }
        }
    }

    fn record(&self, generation: u64, ok: bool) -> Vec<Transition> {
        let mut ts = Vec::new();
        {
            let mut st = self.shared.inner.borrow_mut();
            if st.generation != generation {
                drop(st);
                self.trace("ignored", format!("generation={generation}"));
                return ts;
            }
            match (st.state, ok) {
                (State::Closed, true) => st.failures = 0,
                (State::Closed, false) => {
                    st.failures += 1;
                    if st.failures >= self.shared.threshold {
                        self.to(&mut st, State::Open, &mut ts);
                    }
                }
                (State::HalfOpen, true) => {
                    st.successes += 1;
                    if st.successes >= self.shared.half_open_max {
                        self.to(&mut st, State::Closed, &mut ts);
                    }
                }
                (State::HalfOpen, false) => self.to(&mut st, State::Open, &mut ts),
                // No permit is ever issued in an open generation.
                (State::Open, _) => {}
            }
        }
        self.trace(if ok { "success" } else { "failure" }, String::new());
        self.announce(&ts);
        ts
    }

    /// Gives an unrecorded permit's half-open slot back (an ignored outcome).
    fn release(&self, generation: u64) {
        let mut st = self.shared.inner.borrow_mut();
        if st.generation == generation && st.state == State::HalfOpen {
            st.admitted = st.admitted.saturating_sub(1);
        }
    }

    /// Runs `f` through the breaker: rejected without running, or run and its result recorded
    /// (an `Err` is a failure). Transitions run the `on_state_change` of the settings, in this
    /// task, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::CircuitSettings;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let cb = s.circuit_breaker(CircuitSettings::default());
    ///     let t = s.clone();
    ///     let r = cb.call(|| async move {
    ///         t.sleep(std::time::Duration::from_millis(2)).await;
    ///         Ok::<_, String>("pong")
    ///     }).await;
    ///     assert_eq!(r, Ok("pong"));
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let (permit, _) = self.try_acquire();
        let permit = permit.map_err(CallError::Rejected)?;
        let r = f().await;
        permit.record(r.is_ok());
        r.map_err(CallError::Failed)
    }

    fn trace(&self, verb: &'static str, detail: String) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            let detail = (!detail.is_empty()).then_some(detail);
            rt.emit(verb, Subject::Resource(self.shared.res.clone()), detail);
        }
    }
}

impl Permit {
    /// Records the call's outcome (once: the permit is consumed) and returns the transitions it
    /// caused. Ignored if the breaker has changed generation since the permit was issued.
    pub fn record(self, ok: bool) -> Vec<Transition> {
        self.done.set(true);
        self.cb.record(self.generation, ok)
    }

    /// The generation that admitted it.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done.get() {
            self.cb.release(self.generation);
        }
    }
}
