//! `Sim` shortcuts for the resilience and work patterns that have no element type: each records
//! the caller's line (`#[track_caller]`) as the pattern's creation line, so a Rust test never
//! passes a `created_at` (the patterns' `new(rt, ..., created_at)` stay the language bindings'
//! hooks, which pass the script's own `file:line`).

use super::{Sim, here};
use crate::patterns::{
    BoundedParallel, Bulkhead, CircuitBreaker, CircuitSettings, Partition, Retry, RetrySettings,
};

impl Sim {
    /// A bulkhead of named partitions (`execute(name, f).await`).
    ///
    /// ```
    /// use gosim::patterns::Partition;
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let bh = s.bulkhead(&[("db", Partition::new(1))]);
    ///     let v = bh.execute("db", || async { 7 }).await;
    ///     assert_eq!(v.ok(), Some(7));
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    #[track_caller]
    pub fn bulkhead(&self, partitions: &[(&str, Partition)]) -> Bulkhead {
        Bulkhead::new(&self.rt, partitions, here())
    }

    /// A circuit breaker (`call(f).await`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gosim::patterns::{CircuitSettings, CircuitState};
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let cb = s.circuit_breaker(CircuitSettings {
    ///         threshold: 1,
    ///         timeout: Duration::from_millis(10),
    ///         half_open_max: 1,
    ///         on_state_change: None,
    ///     });
    ///     let r: Result<(), _> = cb.call(|| async { Err::<(), _>("down") }).await;
    ///     assert!(r.is_err());
    ///     assert_eq!(cb.state(), CircuitState::Open);
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    #[track_caller]
    pub fn circuit_breaker(&self, settings: CircuitSettings) -> CircuitBreaker {
        CircuitBreaker::new(&self.rt, settings, here())
    }

    /// A retry policy (`retry(&policy, f).await`, `next_delay(attempt)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gosim::patterns::RetrySettings;
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let policy = sim.retry_policy(RetrySettings {
    ///     max_attempts: 3,
    ///     initial_delay: Duration::from_millis(10),
    ///     max_delay: Duration::from_millis(100),
    ///     multiplier: 2.0,
    ///     jitter: false,
    /// });
    /// assert_eq!(policy.next_delay(1), Some(Duration::from_millis(10)));
    /// ```
    #[track_caller]
    pub fn retry_policy(&self, settings: RetrySettings) -> Retry {
        Retry::new(&self.rt, settings, here())
    }

    /// At most `max_parallel` functions running and `queue_size` waiting
    /// (`submit(&sim, f, timeout).await`, `wait_all(timeout).await`).
    ///
    /// ```
    /// use gosim::patterns::BoundedJob;
    /// use gosim::sim::Sim;
    ///
    /// let sim = Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let b = s.bounded_parallel::<BoundedJob>(2, 4);
    ///     for i in 0..3 {
    ///         let job = Box::pin(async move { if i == 1 { Err("odd".to_string()) } else { Ok(()) } });
    ///         b.submit(&s, job, None).await.unwrap();
    ///     }
    ///     assert_eq!(b.wait_all(None).await.unwrap(), ["odd"]);
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    #[track_caller]
    pub fn bounded_parallel<J: 'static>(
        &self,
        max_parallel: usize,
        queue_size: usize,
    ) -> BoundedParallel<J> {
        BoundedParallel::new(&self.rt, max_parallel, queue_size, here())
    }
}
