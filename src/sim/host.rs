//! Hosting a production run inside a tokio current-thread runtime (a `LocalSet`), so that gosim
//! tasks and tokio tasks share one thread: gosim's primitives and patterns next to tokio I/O.
//!
//! The loop is `Runtime::step` with tokio doing the waiting: between steps it yields to tokio
//! now and then, and when the scheduler is idle it sleeps on tokio's timer until the next gosim
//! timer or until a foreign future (a tokio socket awaited by a gosim task) wakes a task.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::{Sim, SimReport};
use crate::runtime::Step;

/// How many scheduler steps run before yielding to tokio's other tasks.
const STEPS_PER_YIELD: u32 = 64;

impl Sim {
    /// Runs `main` as goroutine 1 inside the current tokio `LocalSet` (production mode: build the
    /// `Sim` with `Sim::real`). gosim tasks may await tokio futures; tokio tasks keep running
    /// while gosim waits.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gosim::runtime::Config;
    /// use gosim::sim::Sim;
    ///
    /// let tokio_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let local = tokio::task::LocalSet::new();
    /// let report = local.block_on(&tokio_rt, async {
    ///     let sim = Sim::real(Config::default());
    ///     let s = sim.clone();
    ///     sim.run_local(async move {
    ///         // a tokio timer and a gosim sleep in the same task
    ///         tokio::time::sleep(Duration::from_millis(5)).await;
    ///         s.sleep(Duration::from_millis(5)).await;
    ///         assert!(s.now() >= Duration::from_millis(10));
    ///     })
    ///     .await
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    pub async fn run_local<T: 'static>(
        self,
        main: impl std::future::Future<Output = T> + 'static,
    ) -> SimReport<T> {
        assert!(
            !self.rt.is_simulated(),
            "Sim::run_local hosts a production run: build it with Sim::real"
        );
        let slot = self.spawn_main(main);
        let outcome = self.drive_outcome().await;
        self.finish(outcome, &slot)
    }

    /// Runs the goroutines already spawned on this run to its outcome, inside the current tokio
    /// `LocalSet` (production mode, as `run_local`): for a host whose main goroutine is not a
    /// Rust future, such as a Lua script spawned with `LuaWorld::spawn_main` on `Sim::on(&rt)`'s
    /// runtime (docs/embedding.md).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::runtime::Config;
    /// use gosim::sim::Sim;
    ///
    /// let tokio_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let local = tokio::task::LocalSet::new();
    /// let report = local.block_on(&tokio_rt, async {
    ///     let sim = Sim::real(Config::default());
    ///     let ch = sim.channel::<u8>(1);
    ///     let (tx, rx) = (ch.clone(), ch);
    ///     sim.spawn("sender", async move { tx.send(1).await.expect("open") });
    ///     sim.spawn("receiver", async move { assert_eq!(rx.recv().await, Some(1)) });
    ///     sim.drive_local().await // runs the tasks already spawned to the outcome
    /// });
    /// assert!(report.outcome.is_pass(), "{}", report.outcome);
    /// ```
    pub async fn drive_local(self) -> SimReport {
        assert!(
            !self.rt.is_simulated(),
            "Sim::drive_local hosts a production run: build its runtime with a real clock"
        );
        let outcome = self.drive_outcome().await;
        // main is not a Rust future here: the report has no value.
        self.finish(outcome, &std::cell::RefCell::new(None))
    }

    /// The step loop of `run_local` and `drive_local`, to the run's outcome.
    async fn drive_outcome(&self) -> crate::runtime::Outcome {
        let notify = Arc::new(tokio::sync::Notify::new());
        let n = notify.clone();
        self.rt
            .wakeups()
            .set_listener(Arc::new(move || n.notify_one()));
        let notify = Rc::new(notify);
        let mut steps = 0u32;
        loop {
            match self.rt.step() {
                Step::Ran => {
                    steps += 1;
                    if steps.is_multiple_of(STEPS_PER_YIELD) {
                        tokio::task::yield_now().await;
                    }
                }
                Step::Over(outcome) => return outcome,
                Step::Idle { until } => {
                    let wait = until.map(|t| Duration::from_nanos(t.saturating_sub(self.rt.now())));
                    match wait {
                        Some(d) => {
                            tokio::select! {
                                _ = tokio::time::sleep(d) => {}
                                _ = notify.notified() => {}
                            }
                        }
                        None => notify.notified().await,
                    }
                }
            }
        }
    }
}
