//! Pipelines (Lua's `goroutine.pipeline` and the wish-list's `pipeline_with_*`, seed 2.x):
//! stages connected by channels, each stage `N` workers applying a function to every value of
//! its input and sending the result to its output.
//!
//! Why it is shaped so. Every pipeline runs on one stage state machine, [`Stage`]
//! (`stage.rs`): the plain `pipeline` with its `next`/`emit` steps, and `pipeline_with`, whose
//! stages carry `StageOptions` (error records, a retry policy, a rate limiter, metrics) and are
//! driven by `take`/`finish`. The Rust loops here run async closures; Lua's worker loops
//! (`prelude.lua`) take the same steps around a Lua function. With one worker per stage the
//! input's order is kept; with more, values may overtake each other. The dynamic pipeline
//! (`dynamic.rs`) routes items between stages that come and go.
//!
//! A plain stage function fails by panicking: the panic is caught, the item is dropped with a
//! `note` event (`stage <i>: <message>`), and the worker goes on, as Lua drops an item whose
//! function raised. A `pipeline_with` function returns `Err` (or panics): the item is retried
//! or becomes a [`StageError`] record.

mod dynamic;
mod metrics;
mod stage;

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use super::Spawn;
use super::resilience::{Failure, RateLimiter, Retry, RetrySettings};
use super::task::CatchPanic;
use crate::runtime::Runtime;
use crate::sync::Channel;

pub use dynamic::{DynItem, DynamicPipeline, DynamicStage};
pub use metrics::{PipelineMetrics, StageLabel, StageMetrics};
pub use stage::{Bypass, ErrorSink, RouteFuture, Stage, StageError, StageOptions, Taken};

/// A stage function, boxed.
type BoxedStageFn<T> = Rc<dyn Fn(T) -> Pin<Box<dyn Future<Output = T>>>>;

/// The function of a stage of a Rust pipeline: `workers` workers applying `f`.
///
/// # Examples
///
/// ```
/// use gosim::patterns::StageFn;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u32>(0);
///     let out = s.pipeline(input.clone(), vec![
///         StageFn::new(2, |v| async move { v * 10 }),
///         StageFn::new(1, |v| async move { v + 1 }),
///     ]);
///     input.send(4).await.expect("open");
///     input.close();
///     assert_eq!(out.recv().await, Some(41));
///     assert_eq!(out.recv().await, None); // closes after the last value
/// });
/// report.assert_pass();
/// ```
pub struct StageFn<T> {
    workers: usize,
    f: BoxedStageFn<T>,
}

impl<T> std::fmt::Debug for StageFn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StageFn(workers={})", self.workers)
    }
}

impl<T: 'static> StageFn<T> {
    /// A stage of `workers` workers (`> 0`) applying the async function `f`.
    pub fn new<F, Fut>(workers: usize, f: F) -> StageFn<T>
    where
        F: Fn(T) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        StageFn {
            workers,
            f: Rc::new(move |v| Box::pin(f(v))),
        }
    }
}

/// Connects `stages` in order after `input` and starts their workers (`pipeline-<i>-<w>`);
/// returns the last stage's output (`input` itself with no stage). Closing `input` closes the
/// output once every value has gone through. Not a scheduling point.
pub fn pipeline<T: Debug + 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    input: Channel<T>,
    stages: Vec<StageFn<T>>,
    created_at: Option<Rc<str>>,
) -> Channel<T> {
    let mut current = input;
    for (i, st) in stages.into_iter().enumerate() {
        let stage: Stage<T, T> = Stage::new(rt, i + 1, current, st.workers, created_at.clone());
        for w in 1..=st.workers {
            let (s, f) = (stage.clone(), st.f.clone());
            spawner.spawn_boxed(Some(&stage.worker_name(w)), Box::pin(rust_worker(s, f)));
        }
        current = stage.output();
    }
    current
}

/// The Rust worker loop of a stage.
async fn rust_worker<T: Debug + 'static>(stage: Stage<T, T>, f: BoxedStageFn<T>) {
    while let Some(v) = stage.next().await {
        let f = f.clone();
        match CatchPanic::new(async move { f(v).await }).await {
            Ok(out) => {
                let _ = stage.emit(out).await;
            }
            Err(message) => stage.item_failed(&message),
        }
    }
    stage.worker_done().await;
}

/// A stage function of `pipeline_with`, boxed.
type BoxedTryFn<T> = Rc<dyn Fn(T) -> Pin<Box<dyn Future<Output = Result<T, Failure<String>>>>>>;

/// A stage of `pipeline_with`: workers, a function that may fail, and the stage's options.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{StageSpec, permanent, pipeline_with};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<i32>(0);
///     let check = StageSpec::new(1, |v: i32| async move {
///         if v < 0 { Err(permanent("negative".to_string())) } else { Ok(v) }
///     }).name("check").retries(2, Duration::from_millis(1));
///     let p = pipeline_with(s.runtime(), &s, input.clone(), vec![check], true, None);
///     input.send(-1).await.expect("open");
///     input.close();
///     let err = p.errors.as_ref().expect("with_errors").recv().await.expect("one error");
///     assert_eq!((err.value, err.attempts), (-1, 1)); // permanent: not retried
///     assert_eq!(err.to_string(), "stage check: negative");
///     assert_eq!(p.output.recv().await, None);
/// });
/// report.assert_pass();
/// ```
pub struct StageSpec<T> {
    workers: usize,
    name: Option<String>,
    retry: Option<RetrySettings>,
    rate_limit: Option<f64>,
    f: BoxedTryFn<T>,
}

impl<T> std::fmt::Debug for StageSpec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StageSpec(workers={}, name={:?}, retry={:?}, rate_limit={:?})",
            self.workers, self.name, self.retry, self.rate_limit
        )
    }
}

impl<T: 'static> StageSpec<T> {
    /// `workers` workers (`> 0`) applying `f`, which fails with `Err` (a `Failure::Permanent`
    /// error is never retried) or by panicking. No name, no retry, no rate limit.
    pub fn new<F, Fut>(workers: usize, f: F) -> StageSpec<T>
    where
        F: Fn(T) -> Fut + 'static,
        Fut: Future<Output = Result<T, Failure<String>>> + 'static,
    {
        StageSpec {
            workers,
            name: None,
            retry: None,
            rate_limit: None,
            f: Rc::new(move |v| Box::pin(f(v))),
        }
    }

    /// Names the stage in error records and metrics.
    pub fn name(mut self, name: &str) -> StageSpec<T> {
        self.name = Some(name.to_string());
        self
    }

    /// Retries a failed item by `settings` (`max_attempts` counts the first call).
    pub fn retry(mut self, settings: RetrySettings) -> StageSpec<T> {
        self.retry = Some(settings);
        self
    }

    /// Retries a failed item up to `max_retries` more times, `delay` apart (the seed's
    /// `max_retries`/`retry_delay`).
    pub fn retries(self, max_retries: u32, delay: Duration) -> StageSpec<T> {
        self.retry(fixed_retries(max_retries, delay))
    }

    /// At most `per_second` items per second (`> 0`, fractions allowed), shared by the stage's
    /// workers: a token bucket of burst 1.
    pub fn rate_limit(mut self, per_second: f64) -> StageSpec<T> {
        self.rate_limit = Some(per_second);
        self
    }
}

/// The retry settings of `max_retries` retries `delay` apart.
pub fn fixed_retries(max_retries: u32, delay: Duration) -> RetrySettings {
    RetrySettings {
        max_attempts: max_retries.saturating_add(1),
        initial_delay: delay,
        max_delay: delay,
        multiplier: 1.0,
        jitter: false,
    }
}

/// The limiter of a `rate_limit` stage: `per_second` tokens per second, burst 1 (an integral
/// rate is exact; a fractional one is one token per `1 / per_second` s, to the nanosecond).
/// Panics unless `per_second` is finite and `> 0`.
pub fn stage_limiter(rt: &Runtime, per_second: f64, created_at: Option<Rc<str>>) -> RateLimiter {
    assert!(
        per_second.is_finite() && per_second > 0.0,
        "rate_limit must be a positive number of items per second"
    );
    if per_second.fract() == 0.0 && per_second <= 1e9 {
        RateLimiter::new(rt, per_second as u64, Duration::from_secs(1), 1, created_at)
    } else {
        let per = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1));
        RateLimiter::new(rt, 1, per, 1, created_at)
    }
}

/// What `pipeline_with` returns.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{StageSpec, pipeline_with};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u8>(0);
///     let stage = StageSpec::new(1, |v| async move { Ok(v) });
///     let p = pipeline_with(s.runtime(), &s, input.clone(), vec![stage], false, None);
///     assert!(p.errors.is_none()); // failures become note events
///     input.send(3).await.expect("open");
///     input.close();
///     assert_eq!(p.output.recv().await, Some(3));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub struct PipelineWith<T> {
    /// The last stage's output.
    pub output: Channel<T>,
    /// Records of the items that failed for good (unbounded; closes with `output`), if asked.
    pub errors: Option<Channel<StageError<T>>>,
    /// Per-stage metrics.
    pub metrics: PipelineMetrics,
}

/// Connects `stages` after `input` with their options and starts their workers
/// (`pipeline-<i>-<w>`). Every input yields exactly one output value or one failure: an error
/// record on `errors` when `with_errors`, else a `note` event. Not a scheduling point.
pub fn pipeline_with<T: Debug + Clone + 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    input: Channel<T>,
    stages: Vec<StageSpec<T>>,
    with_errors: bool,
    created_at: Option<Rc<str>>,
) -> PipelineWith<T> {
    let errors: Option<Channel<StageError<T>>> =
        with_errors.then(|| Channel::new(rt, usize::MAX, created_at.clone()));
    if let Some(e) = &errors {
        e.resource().set_name("pipeline errors");
    }
    let metrics = PipelineMetrics::new();
    let n = stages.len();
    let mut current = input;
    for (i, st) in stages.into_iter().enumerate() {
        let sink: Option<ErrorSink<T>> = errors.clone().map(|e| {
            Rc::new(move |r: StageError<T>| {
                let _ = e.try_send(r);
            }) as ErrorSink<T>
        });
        let on_close: Option<Rc<dyn Fn()>> = match (&errors, i + 1 == n) {
            (Some(e), true) => {
                let e = e.clone();
                Some(Rc::new(move || {
                    e.close();
                }))
            }
            _ => None,
        };
        let opts = StageOptions {
            name: st.name.clone(),
            retry: st
                .retry
                .clone()
                .map(|s| Retry::new(rt, s, created_at.clone())),
            limiter: st
                .rate_limit
                .map(|r| stage_limiter(rt, r, created_at.clone())),
            errors: sink,
            metrics: Some(metrics.clone()),
            on_close,
            ..StageOptions::default()
        };
        let stage: Stage<T, T> =
            Stage::with_options(rt, i + 1, current, st.workers, created_at.clone(), opts);
        for w in 1..=st.workers {
            let (s, f) = (stage.clone(), st.f.clone());
            spawner.spawn_boxed(Some(&stage.worker_name(w)), Box::pin(try_worker(s, f)));
        }
        current = stage.output();
    }
    if n == 0
        && let Some(e) = &errors
    {
        // No stage, so no failure: the errors channel has nothing to wait for.
        e.close();
    }
    PipelineWith {
        output: current,
        errors,
        metrics,
    }
}

/// The Rust worker loop of a `pipeline_with` stage.
async fn try_worker<T: Debug + Clone + 'static>(stage: Stage<T, T>, f: BoxedTryFn<T>) {
    while let Some(mut t) = stage.take().await {
        loop {
            let (f, v) = (f.clone(), t.value().clone());
            let (r, permanent) = match CatchPanic::new(async move { f(v).await }).await {
                Ok(Ok(out)) => (Ok(out), false),
                Ok(Err(Failure::Transient(e))) => (Err(e), false),
                Ok(Err(Failure::Permanent(e))) => (Err(e), true),
                Err(panic) => (Err(panic), false),
            };
            match stage.finish(t, r, permanent).await {
                Some(again) => t = again,
                None => break,
            }
        }
    }
    stage.worker_done().await;
}
