//! Per-stage metrics of a pipeline (`goroutine.pipeline_with_metrics`, seed 2.4): counters a
//! stage updates at its steps, read as snapshots. Times are the run's clock (virtual in a
//! simulation, so deterministic).
//!
//! Why it is shaped so. A stage only adds to its own row, at the steps of `Stage` (take,
//! retry, finish), never in user code; `PipelineMetrics::total` is computed from the rows, so
//! the totals always equal the sums of the stages (a law the tests check).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::Nanos;

/// How a stage is named in error records and metrics: its `name`, or its 1-based index.
///
/// # Examples
///
/// ```
/// use gosim::patterns::StageLabel;
///
/// assert_eq!(StageLabel::Index(2).to_string(), "2");
/// assert_eq!(StageLabel::Name("parse".into()).to_string(), "parse");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StageLabel {
    /// A stage given no name: its position from 1.
    Index(usize),
    /// A named stage.
    Name(String),
}

impl std::fmt::Display for StageLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageLabel::Index(i) => write!(f, "{i}"),
            StageLabel::Name(n) => f.write_str(n),
        }
    }
}

/// One stage's counters (a snapshot), or their totals.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{StageLabel, StageSpec, pipeline_with};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u32>(0);
///     let t = s.clone();
///     let stage = StageSpec::new(1, move |v| {
///         let t = t.clone();
///         async move { t.sleep(Duration::from_millis(4)).await; Ok(v) }
///     }).name("slow");
///     let p = pipeline_with(s.runtime(), &s, input.clone(), vec![stage], false, None);
///     input.send(1).await.expect("open");
///     input.close();
///     while p.output.recv().await.is_some() {}
///     let m = p.metrics.stage(&StageLabel::Name("slow".into())).expect("a row");
///     assert_eq!((m.processed, m.avg_time()), (1, Duration::from_millis(4)));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMetrics {
    /// The stage (for the totals: `Name("total")`).
    pub label: StageLabel,
    /// Items finished, with a result or an error.
    pub processed: u64,
    /// Items finished with an error (after their retries).
    pub errors: u64,
    /// Retries (calls after an item's first).
    pub retries: u64,
    /// Items received and not finished yet.
    pub in_flight: u64,
    /// Time spent on finished items: from an item's first call to its outcome, retry delays
    /// included (not the wait for a rate-limit token, nor the wait to send the result on).
    pub total_time: Duration,
    /// The longest of those times.
    pub max_time: Duration,
}

impl StageMetrics {
    fn empty(label: StageLabel) -> StageMetrics {
        StageMetrics {
            label,
            processed: 0,
            errors: 0,
            retries: 0,
            in_flight: 0,
            total_time: Duration::ZERO,
            max_time: Duration::ZERO,
        }
    }

    /// `total_time / processed` (zero before the first item), truncated to the nanosecond.
    pub fn avg_time(&self) -> Duration {
        if self.processed == 0 {
            return Duration::ZERO;
        }
        let ns = self.total_time.as_nanos() / u128::from(self.processed);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

/// The metrics of one pipeline: a row per stage. Clones are the same metrics.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{StageSpec, pipeline_with};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u32>(0);
///     let stages = vec![StageSpec::new(1, |v| async move { Ok(v + 1) }),
///                       StageSpec::new(1, |v| async move { Ok(v * 2) })];
///     let p = pipeline_with(s.runtime(), &s, input.clone(), stages, false, None);
///     for v in 0..3 {
///         input.send(v).await.expect("open");
///     }
///     input.close();
///     while p.output.recv().await.is_some() {}
///     assert_eq!(p.metrics.get().len(), 2); // a row per stage
///     assert_eq!(p.metrics.total().processed, 6);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Default)]
pub struct PipelineMetrics {
    rows: Rc<RefCell<Vec<StageMetrics>>>,
}

impl PipelineMetrics {
    /// No stage yet.
    pub fn new() -> PipelineMetrics {
        PipelineMetrics::default()
    }

    /// Adds a row for a stage; returns its slot.
    pub(crate) fn add_stage(&self, label: StageLabel) -> usize {
        let mut rows = self.rows.borrow_mut();
        rows.push(StageMetrics::empty(label));
        rows.len() - 1
    }

    pub(crate) fn update(&self, slot: usize, f: impl FnOnce(&mut StageMetrics)) {
        if let Some(row) = self.rows.borrow_mut().get_mut(slot) {
            f(row);
        }
    }

    /// An item was received.
    pub(crate) fn took(&self, slot: usize) {
        self.update(slot, |m| m.in_flight += 1);
    }

    /// An item is called again.
    pub(crate) fn retried(&self, slot: usize) {
        self.update(slot, |m| m.retries += 1);
    }

    /// An item finished after `took` nanoseconds, failed or not.
    pub(crate) fn finished(&self, slot: usize, took: Nanos, failed: bool) {
        self.update(slot, |m| {
            m.in_flight -= 1;
            m.processed += 1;
            if failed {
                m.errors += 1;
            }
            let d = Duration::from_nanos(took);
            m.total_time += d;
            m.max_time = m.max_time.max(d);
        });
    }

    /// A snapshot of every stage, in pipeline order.
    pub fn get(&self) -> Vec<StageMetrics> {
        self.rows.borrow().clone()
    }

    /// The stage named (or numbered) `label`.
    pub fn stage(&self, label: &StageLabel) -> Option<StageMetrics> {
        self.rows
            .borrow()
            .iter()
            .find(|m| &m.label == label)
            .cloned()
    }

    /// The sums over the stages (`max_time`: the largest), labelled `total`.
    pub fn total(&self) -> StageMetrics {
        let mut t = StageMetrics::empty(StageLabel::Name("total".into()));
        for m in self.rows.borrow().iter() {
            t.processed += m.processed;
            t.errors += m.errors;
            t.retries += m.retries;
            t.in_flight += m.in_flight;
            t.total_time += m.total_time;
            t.max_time = t.max_time.max(m.max_time);
        }
        t
    }
}
