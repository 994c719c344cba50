//! `Stage`: the one stage state machine every pipeline runs on (`pipeline`, the wish-list's
//! `pipeline_with_*`, Lua's and Rust's alike).
//!
//! Why it is shaped so. A stage is an input channel, an output channel (capacity 10, named
//! `pipeline stage <i>`; none when its results are routed, as the dynamic pipeline's), `N` workers, and a counter that closes the output when the last worker
//! has seen the input close, so closing the pipeline's input drains and closes every stage in
//! turn. It runs no user code: a worker loop is its steps around the user's function. The plain
//! pipeline's loop is `next`, the function, `emit` or `item_failed`, then `worker_done`. A stage
//! built with `StageOptions` (error records, a retry policy, a rate limiter, metrics) is driven
//! by `take` (receive, then a token, then the item is in flight), the function, and `finish`
//! (emit, or retry after the policy's delay, or an error record), then `worker_done`: the
//! decisions (retry or give up, where a failure goes, what is counted) are all here, so the
//! Rust and Lua loops cannot differ. A plain stage takes exactly the steps it always took, so
//! traces of `pipeline` are unchanged.

use std::cell::Cell;
use std::fmt::Debug;
use std::future::Future;
use std::rc::Rc;

use super::metrics::{PipelineMetrics, StageLabel};
use crate::patterns::resilience::{RateLimiter, Retry};
use crate::runtime::{Nanos, Runtime, Subject};
use crate::sync::{Channel, Op};

/// An item that failed for good: what entered the failing stage, the last error, the stage and
/// how many calls were made (Lua: `{value, error, stage, attempts}`).
///
/// # Examples
///
/// ```
/// use gosim::patterns::{StageLabel, StageSpec, pipeline_with};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u8>(0);
///     let stage = StageSpec::new(1, |_v: u8| async { Err("bad".to_string().into()) });
///     let p = pipeline_with(s.runtime(), &s, input.clone(), vec![stage], true, None);
///     input.send(5).await.expect("open");
///     input.close();
///     let e = p.errors.expect("with_errors").recv().await.expect("an error record");
///     assert_eq!((e.value, e.stage, e.error.as_str()), (5, StageLabel::Index(1), "bad"));
/// });
/// report.assert_pass();
/// ```
#[derive(Clone, PartialEq)]
pub struct StageError<T> {
    /// The value the stage's function was called with.
    pub value: T,
    /// The last error.
    pub error: String,
    /// The failing stage.
    pub stage: StageLabel,
    /// Calls made on this item in that stage (1 without retries).
    pub attempts: u32,
}

impl<T> std::fmt::Display for StageError<T> {
    /// `stage S: msg`, as the seed's `"Pipeline error: " .. err` prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stage {}: {}", self.stage, self.error)
    }
}

impl<T> std::fmt::Debug for StageError<T> {
    /// As `Display` (`stage S: msg`): how the trace shows an error record.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Where a stage's failed items go: a function that sends the record without blocking (on an
/// unbounded channel), so an unread error channel never stalls the pipeline.
pub type ErrorSink<I> = Rc<dyn Fn(StageError<I>)>;

/// A boxed future of a routing step.
pub type RouteFuture = std::pin::Pin<Box<dyn Future<Output = ()>>>;

/// How a stage that has left its pipeline passes items on: `active` says whether it has, and
/// `pass` sends an item it received past it, untouched (the dynamic pipeline's removed stages).
///
/// # Examples
///
/// ```
/// use gosim::patterns::{Bypass, RouteFuture, Stage, StageOptions};
/// use std::rc::Rc;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let (input, passed) = (s.channel::<u8>(1), s.channel::<u8>(1));
///     let p = passed.clone();
///     let bypass = Bypass {
///         active: Rc::new(|| true), // e.g. the stage is being removed
///         pass: Rc::new(move |v| -> RouteFuture {
///             let p = p.clone();
///             Box::pin(async move { p.send(v).await.expect("open") })
///         }),
///     };
///     let opts = StageOptions { bypass: Some(bypass), ..StageOptions::default() };
///     let stage: Stage<u8, u8> = Stage::with_options(s.runtime(), 1, input.clone(), 1, None, opts);
///     s.spawn("worker", async move {
///         while let Some(_taken) = stage.take().await {
///             unreachable!("every item is bypassed");
///         }
///         stage.worker_done().await;
///     });
///     input.send(9).await.expect("room");
///     assert_eq!(passed.recv().await, Some(9)); // passed on untouched
///     input.close();
/// });
/// report.assert_pass();
/// ```
pub struct Bypass<I> {
    /// Whether items skip the stage now.
    pub active: Rc<dyn Fn() -> bool>,
    /// Sends an item on past the stage.
    pub pass: Rc<dyn Fn(I) -> RouteFuture>,
}

impl<I> std::fmt::Debug for Bypass<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bypass(active={})", (self.active)())
    }
}

/// What a stage adds to the plain stage. `Default` is the plain stage.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{PipelineMetrics, Stage, StageOptions};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u8>(1);
///     let metrics = PipelineMetrics::new();
///     let opts = StageOptions { name: Some("parse".into()), metrics: Some(metrics.clone()),
///                               ..StageOptions::default() };
///     let stage: Stage<u8, u8> = Stage::with_options(s.runtime(), 1, input.clone(), 1, None, opts);
///     assert_eq!(stage.label().to_string(), "parse");
///     assert_eq!(metrics.get().len(), 1); // its row is registered
/// });
/// report.assert_pass();
/// ```
pub struct StageOptions<I, O = I> {
    /// The stage's name in error records and metrics (its index when `None`).
    pub name: Option<String>,
    /// Retry a failed item by this policy (one call when `None`).
    pub retry: Option<Retry>,
    /// Take a token (one per item, after receiving it) before calling the function.
    pub limiter: Option<RateLimiter>,
    /// Send a record of each item that failed for good here (a `note` event when `None`).
    pub errors: Option<ErrorSink<I>>,
    /// Count into these metrics.
    pub metrics: Option<PipelineMetrics>,
    /// Also run when the stage closes its output (the last stage closes the errors channel).
    pub on_close: Option<Rc<dyn Fn()>>,
    /// Items received while this is active skip the stage.
    pub bypass: Option<Bypass<I>>,
    /// Results go here instead of the output channel (the dynamic pipeline routes them).
    pub emit_to: Option<Rc<dyn Fn(O) -> RouteFuture>>,
}

impl<I, O> std::fmt::Debug for StageOptions<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageOptions")
            .field("name", &self.name)
            .field("retry", &self.retry)
            .field("limiter", &self.limiter)
            .field("errors", &self.errors.is_some())
            .field("metrics", &self.metrics.is_some())
            .field("bypass", &self.bypass.is_some())
            .field("emit_to", &self.emit_to.is_some())
            .finish()
    }
}

impl<I, O> Default for StageOptions<I, O> {
    fn default() -> Self {
        StageOptions {
            name: None,
            retry: None,
            limiter: None,
            errors: None,
            metrics: None,
            on_close: None,
            bypass: None,
            emit_to: None,
        }
    }
}

struct Shared<I, O> {
    rt: Runtime,
    index: usize,
    input: Channel<I>,
    /// `None` when results are routed (`emit_to`).
    output: Option<Channel<O>>,
    remaining: Cell<usize>,
    label: StageLabel,
    opts: StageOptions<I, O>,
    /// The stage's row in `opts.metrics`.
    slot: usize,
}

/// One stage of a pipeline. Clones are the same stage.
///
/// # Examples
///
/// ```
/// use gosim::patterns::Stage;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u32>(0);
///     let stage: Stage<u32, String> = Stage::new(s.runtime(), 1, input.clone(), 1, None);
///     let st = stage.clone();
///     // The worker loop a language binding writes: next, the function, emit.
///     s.spawn(&stage.worker_name(1), async move {
///         while let Some(v) = st.next().await {
///             st.emit(format!("#{v}")).await;
///         }
///         st.worker_done().await; // the last worker closes the output
///     });
///     input.send(7).await.expect("open");
///     input.close();
///     let out = stage.output();
///     assert_eq!(out.recv().await.as_deref(), Some("#7"));
///     assert_eq!(out.recv().await, None);
/// });
/// report.assert_pass();
/// ```
pub struct Stage<I, O> {
    shared: Rc<Shared<I, O>>,
}

impl<I, O> Clone for Stage<I, O> {
    fn clone(&self) -> Self {
        Stage {
            shared: self.shared.clone(),
        }
    }
}

impl<I, O> std::fmt::Debug for Stage<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stage({})", self.shared.index)
    }
}

/// An item a worker has taken: its value, for the function and for an error record, and its
/// calls so far. Given back to `Stage::finish`.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{Stage, StageOptions};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u8>(1);
///     let stage: Stage<u8, u8> =
///         Stage::with_options(s.runtime(), 1, input.clone(), 1, None, StageOptions::default());
///     input.send(3).await.expect("room");
///     let taken = stage.take().await.expect("an item");
///     assert_eq!((*taken.value(), taken.attempts()), (3, 1));
///     let again = stage.finish(taken, Ok(6), false).await; // sent downstream
///     assert!(again.is_none());
///     assert_eq!(stage.output().recv().await, Some(6));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub struct Taken<I> {
    value: I,
    attempts: u32,
    started: Nanos,
}

impl<I> Taken<I> {
    /// The value to call the function with.
    pub fn value(&self) -> &I {
        &self.value
    }

    /// Calls made or being made on it (from 1).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl<I: Debug + 'static, O: Debug + 'static> Stage<I, O> {
    /// Stage number `index` (from 1) reading `input` with `workers` workers (`> 0`): creates its
    /// output channel. Starts no worker: the caller spawns `workers` loops named
    /// `worker_name(1..=workers)`. Not a scheduling point.
    pub fn new(
        rt: &Runtime,
        index: usize,
        input: Channel<I>,
        workers: usize,
        created_at: Option<Rc<str>>,
    ) -> Stage<I, O> {
        Stage::with_options(
            rt,
            index,
            input,
            workers,
            created_at,
            StageOptions::default(),
        )
    }

    /// `new` with options (error records, retries, a rate limiter, metrics): a stage for
    /// `take`/`finish` loops. Registers its metrics row. Not a scheduling point.
    pub fn with_options(
        rt: &Runtime,
        index: usize,
        input: Channel<I>,
        workers: usize,
        created_at: Option<Rc<str>>,
        opts: StageOptions<I, O>,
    ) -> Stage<I, O> {
        assert!(workers > 0, "a pipeline stage needs at least one worker");
        let output = opts.emit_to.is_none().then(|| {
            let output: Channel<O> = Channel::new(rt, 10, created_at);
            output
                .resource()
                .set_name(&format!("pipeline stage {index}"));
            output
        });
        let label = match &opts.name {
            Some(n) => StageLabel::Name(n.clone()),
            None => StageLabel::Index(index),
        };
        let slot = opts
            .metrics
            .as_ref()
            .map(|m| m.add_stage(label.clone()))
            .unwrap_or(0);
        Stage {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                index,
                input,
                output,
                remaining: Cell::new(workers),
                label,
                opts,
                slot,
            }),
        }
    }

    /// The goroutine name of worker `w` (from 1): `pipeline-<index>-<w>`.
    pub fn worker_name(&self, w: usize) -> String {
        format!("pipeline-{}-{w}", self.shared.index)
    }

    /// How error records and metrics name it.
    pub fn label(&self) -> &StageLabel {
        &self.shared.label
    }

    /// Its output channel (the next stage's input). Panics for a stage whose results are
    /// routed (`StageOptions::emit_to`), which has none.
    pub fn output(&self) -> Channel<O> {
        self.shared
            .output
            .clone()
            .expect("a stage whose results are routed has no output channel")
    }

    /// For a worker: the next input value; `None` once the input is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::Stage;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let input = s.channel::<u8>(0);
    ///     let stage: Stage<u8, u8> = Stage::new(s.runtime(), 1, input.clone(), 1, None);
    ///     let (i, t) = (input.clone(), s.clone());
    ///     s.spawn("feeder", async move {
    ///         t.sleep(Duration::from_millis(5)).await;
    ///         i.send(1).await.expect("open");
    ///         i.close();
    ///     });
    ///     assert_eq!(stage.next().await, Some(1)); // waits for an input value
    ///     assert_eq!(s.now(), Duration::from_millis(5));
    ///     assert_eq!(stage.next().await, None); // the input closed
    /// });
    /// report.assert_pass();
    /// ```
    pub fn next(&self) -> impl Future<Output = Option<I>> + use<I, O> {
        self.shared.input.recv()
    }

    /// For a worker: sends a result downstream (waiting for room); false if the output was
    /// closed (only a caller closing it by hand does that).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::Stage;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let input = s.channel::<u8>(0);
    ///     let stage: Stage<u8, u8> = Stage::new(s.runtime(), 1, input, 1, None);
    ///     assert!(stage.emit(5).await); // into the stage's output (capacity 10)
    ///     assert_eq!(stage.output().recv().await, Some(5));
    /// });
    /// report.assert_pass();
    /// ```
    pub fn emit(&self, value: O) -> impl Future<Output = bool> + use<I, O> {
        let (send, route) = match &self.shared.opts.emit_to {
            None => (self.shared.output.as_ref().map(|o| o.send(value)), None),
            Some(f) => (None, Some(f(value))),
        };
        async move {
            if let Some(r) = route {
                r.await;
                return true;
            }
            match send {
                Some(send) => send.await.is_ok(),
                None => false,
            }
        }
    }

    /// For a worker: the function failed on an item, which is dropped (a `note` event). Not a
    /// scheduling point.
    pub fn item_failed(&self, message: &str) {
        if self.shared.rt.tracing() {
            self.shared.rt.emit(
                "note",
                Subject::None,
                Some(format!("stage {}: {message}", self.shared.label)),
            );
        }
    }

    /// For a worker of a stage with options: the next item (`None` once the input is closed
    /// and drained). An item received while the stage's bypass is active is passed on
    /// untouched instead. After receiving it, takes a rate-limit token if the stage has a
    /// limiter (so an idle stage holds none); the item is then in flight.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{Stage, StageOptions, fixed_retries};
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let input = s.channel::<u8>(1);
    ///     let retry = s.retry_policy(fixed_retries(1, Duration::from_millis(2)));
    ///     let opts = StageOptions { retry: Some(retry), ..StageOptions::default() };
    ///     let stage: Stage<u8, u8> = Stage::with_options(s.runtime(), 1, input.clone(), 1, None, opts);
    ///     input.send(1).await.expect("room");
    ///     let t = stage.take().await.expect("an item");
    ///     let t = stage.finish(t, Err("flaky".into()), false).await.expect("call again");
    ///     assert_eq!((t.attempts(), s.now()), (2, Duration::from_millis(2)));
    ///     assert!(stage.finish(t, Ok(1), false).await.is_none());
    /// });
    /// report.assert_pass();
    /// ```
    pub fn take(&self) -> impl Future<Output = Option<Taken<I>>> + use<I, O> {
        let stage = self.clone();
        async move {
            let value = loop {
                let v = stage.shared.input.recv().await?;
                match &stage.shared.opts.bypass {
                    Some(b) if (b.active)() => (b.pass)(v).await,
                    _ => break v,
                }
            };
            let sh = &stage.shared;
            if let Some(m) = &sh.opts.metrics {
                m.took(sh.slot);
            }
            if let Some(l) = &sh.opts.limiter {
                // Burst 1 and no timeout: the wait cannot be refused.
                let _ = l.wait(1, None).await;
            }
            Some(Taken {
                value,
                attempts: 1,
                started: sh.rt.now(),
            })
        }
    }

    /// For a worker of a stage with options, after a call of the function on `t`: sends a
    /// result downstream, or (on a failure the retry policy allows, unless `permanent`) sleeps
    /// the policy's delay and gives the item back to be called again, or counts the item as
    /// failed and sends its error record (a `note` event without an error sink). Returns the
    /// item when the function is to be called again.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{Stage, StageOptions};
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let input = s.channel::<u8>(1);
    ///     let stage: Stage<u8, u8> =
    ///         Stage::with_options(s.runtime(), 1, input.clone(), 1, None, StageOptions::default());
    ///     input.send(1).await.expect("room");
    ///     let t = stage.take().await.expect("an item");
    ///     // No retry policy: a failure is final (a note event without an error sink).
    ///     assert!(stage.finish(t, Err("bad".into()), false).await.is_none());
    ///     assert!(stage.output().is_empty());
    /// });
    /// report.assert_pass();
    /// ```
    pub fn finish(
        &self,
        mut t: Taken<I>,
        result: Result<O, String>,
        permanent: bool,
    ) -> impl Future<Output = Option<Taken<I>>> + use<I, O> {
        let stage = self.clone();
        async move {
            let sh = &stage.shared;
            let error = match result {
                Ok(out) => {
                    stage.done(&t, false);
                    let _ = stage.emit(out).await;
                    return None;
                }
                Err(e) => e,
            };
            let delay = match (&sh.opts.retry, permanent) {
                (Some(policy), false) => policy.next_delay(t.attempts),
                _ => None,
            };
            if let Some(d) = delay {
                if let Some(m) = &sh.opts.metrics {
                    m.retried(sh.slot);
                }
                let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                crate::sync::sleep(&sh.rt, ns, None).await;
                t.attempts += 1;
                return Some(t);
            }
            stage.done(&t, true);
            let s2 = stage.clone();
            Op::now(&sh.rt, move || {
                let record = StageError {
                    value: t.value,
                    error,
                    stage: s2.shared.label.clone(),
                    attempts: t.attempts,
                };
                match &s2.shared.opts.errors {
                    Some(sink) => sink(record),
                    None => s2.item_failed(&record.error),
                }
            })
            .await;
            None
        }
    }

    /// Counts a finished item.
    fn done(&self, t: &Taken<I>, failed: bool) {
        let sh = &self.shared;
        if let Some(m) = &sh.opts.metrics {
            m.finished(sh.slot, sh.rt.now().saturating_sub(t.started), failed);
        }
    }

    /// For a worker, after `next` or `take` said `None`: the last worker to leave closes the
    /// output (and runs `on_close`; a scheduling point); the others leave without an operation.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::Stage;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let input = s.channel::<u8>(0);
    ///     input.close();
    ///     let stage: Stage<u8, u8> = Stage::new(s.runtime(), 1, input, 1, None);
    ///     assert_eq!(stage.next().await, None);
    ///     stage.worker_done().await; // the last of its workers: closes the output
    ///     assert!(stage.output().is_closed());
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn worker_done(&self) {
        let left = self.shared.remaining.get() - 1;
        self.shared.remaining.set(left);
        if left == 0 {
            let out = self.shared.output.clone();
            let on_close = self.shared.opts.on_close.clone();
            Op::now(&self.shared.rt, move || {
                if let Some(out) = out {
                    out.close();
                }
                if let Some(f) = on_close {
                    f();
                }
            })
            .await;
        }
    }
}
