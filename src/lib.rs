//! # gosim
//!
//! A deterministic simulation and testing harness for Go-style concurrency. Scenarios (Lua
//! scripts using the `goroutine` module, or Rust code) run on a single-threaded scheduler with a
//! virtual clock: every scheduling choice and random draw comes from the run's seed, so the same
//! seed gives a byte-identical trace on any machine.
//!
//! The crate is layered; each layer uses only the layers below it:
//!
//! - [`scenario`]: load a Lua scenario, run it under a seed, explore many seeds;
//! - [`lua`]: the `goroutine`, `log` and `sim` Lua modules (bindings only);
//! - [`sim`]: the Rust API: async Rust tasks on the same scheduler and primitives, and the
//!   test entry point [`check`] / [`macro@test`] (seed sweeps, shrinking, reproduce lines);
//! - [`explore`]: seed sweeps, shrinking and replay over "one run under a configuration",
//!   shared by Lua scenarios and Rust tests;
//! - [`patterns`]: the wish-list's patterns, built from `sync` (profiler, channel inspector,
//!   deadlock detector; async/await and timeout, worker pools, pipelines, fan-in/fan-out);
//! - [`sync`]: channels, select, locks, wait groups, contexts, timers, atomic integers;
//! - [`runtime`]: the scheduler core, virtual clock, RNG, trace and outcomes.
//!
//! ```
//! let report = gosim::scenario::run_source(
//!     "hello.lua",
//!     r#"
//!         local ch = goroutine.channel()
//!         goroutine.spawn(function() ch:send("hi") end)
//!         local v = ch:receive()
//!         assert(v == "hi")
//!     "#,
//!     &gosim::scenario::RunOptions::with_seed(7),
//! )
//! .expect("the scenario compiles");
//! assert!(report.outcome.is_pass());
//! ```

// The public surface is curated (issue 14): an item is `pub` only if a user can name it.
#![warn(unreachable_pub)]

pub mod explore;
pub mod lua;
pub mod patterns;
pub mod runtime;
pub mod scenario;
pub mod sim;
pub mod sync;

pub use gosim_macros::test;
/// The Lua binding's crate, re-exported so that a mixed Lua/Rust test names the same mlua
/// version gosim uses (`gosim::mlua::Value` in a `LuaValue`, host functions' arguments).
pub use mlua;
pub use sim::{Check, Sim, check};

/// What a Rust test of concurrent code needs, in one import: `use gosim::prelude::*;`.
///
/// The run and its checks (`Sim`, `check`, `Check`, `#[gosim::test]` as `test`, `select!`), the
/// primitives with tokio's shapes (`Channel`, `Mutex<T>`, `RwLock<T>`, `Semaphore`, `WaitGroup`,
/// `Context`, `Once`, `Cond`), their futures' outputs and errors, and the report types. Nothing
/// in it shadows the standard prelude (the channel futures are `SendFuture`/`RecvFuture`).
///
/// ```
/// use gosim::prelude::*;
/// use std::time::Duration;
///
/// let sim = Sim::with_seed(3);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let (tx, rx) = (s.channel::<(u8, Option<&str>)>(1), s.context());
///     let h = s.spawn("worker", async move { tx.send((1, Some("one"))).await.is_ok() });
///     assert!(h.await.expect("no panic"));
///     rx.cancel();
///     assert_eq!(rx.done().await, ContextError::Canceled);
///     s.sleep(Duration::from_millis(5)).await;
///     s.now()
/// });
/// report.assert_pass();
/// assert_eq!(report.value, Some(Duration::from_millis(5)));
/// ```
pub mod prelude {
    pub use crate::runtime::{Config, Failure, FailureKind, LimitKind, Outcome, Strategy};
    pub use crate::sim::{
        Check, JoinError, JoinHandle, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
        Semaphore, SemaphorePermit, Sim, SimReport, check,
    };
    pub use crate::sync::{
        Channel, Cond, Context, ContextError, Once, SendError, Timer, TryRecvError, TrySendError,
        WaitGroup,
    };
    pub use crate::{select, test};
}

/// Go's `select` over gosim operations of any value types, with the seeded fair choice of Lua's
/// `select`: among the arms ready now, one is picked with the run's seeded decision; none ready,
/// the `default` arm if there is one; else the task waits on every arm, and the first to
/// complete wins (the others do nothing: a send that did not win keeps its value).
///
/// Each arm is `pattern = operation => body`, the operation one of `ch.recv()` (binds
/// `Option<T>`), `ch.send(v)` (binds `Result<(), SendError<T>>`), `ctx.done()` (binds
/// `ContextError`); a timeout is a timer's channel, `sim.after(d).recv()`. Patterns must be
/// irrefutable. An optional last arm `default => body` makes it non-blocking. Await it inside a
/// gosim task (it expands to an `.await`).
///
/// ```
/// use std::time::Duration;
/// let sim = gosim::sim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let (jobs, results) = (s.channel::<u32>(1), s.channel::<String>(0));
///     let ctx = s.context().with_timeout(Duration::from_millis(50));
///     jobs.send(7).await.expect("open");
///     let got = gosim::select! {
///         v = jobs.recv() => format!("job {v:?}"),
///         r = results.send("late".to_string()) => format!("sent: {}", r.is_ok()),
///         e = ctx.done() => format!("done: {e}"),
///         _ = s.after(Duration::from_millis(10)).recv() => "timeout".to_string(),
///     };
///     assert_eq!(got, "job Some(7)");
///     let idle = gosim::select! {
///         v = jobs.recv() => v,
///         default => None,
///     };
///     assert_eq!(idle, None);
/// });
/// assert!(report.outcome.is_pass());
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)+) => {
        $crate::__select_parse!([] $($tokens)+)
    };
}

/// `select!`'s parser: collects the arms, then binds each to a local of its own.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    ([$($arms:tt)*] default => $body:block $(,)?) => {
        $crate::__select_bind!([] [$($arms)*] (true) ($body))
    };
    ([$($arms:tt)*] default => $body:expr $(,)?) => {
        $crate::__select_bind!([] [$($arms)*] (true) ($body))
    };
    ([$($arms:tt)*] $p:pat = $op:expr => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!([$($arms)* (($p) ($op) ($body))] $($rest)*)
    };
    ([$($arms:tt)*] $p:pat = $op:expr => $body:block $($rest:tt)*) => {
        $crate::__select_parse!([$($arms)* (($p) ($op) ($body))] $($rest)*)
    };
    ([$($arms:tt)*] $p:pat = $op:expr => $body:expr , $($rest:tt)*) => {
        $crate::__select_parse!([$($arms)* (($p) ($op) ($body))] $($rest)*)
    };
    ([$($arms:tt)*] $p:pat = $op:expr => $body:expr) => {
        $crate::__select_parse!([$($arms)* (($p) ($op) ($body))])
    };
    ([$($arms:tt)+]) => {
        $crate::__select_bind!([] [$($arms)+] (false) ({
            ::core::unreachable!("gosim::select! without default completes an arm")
        }))
    };
}

/// `select!`'s binder: one local per arm (each expansion's `arm` is its own, by hygiene), then
/// the select over all of them and the chosen arm's body.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_bind {
    ([$($bound:tt)*] [(($p:pat) ($op:expr) ($body:expr)) $($rest:tt)*] ($default:expr) ($dbody:expr)) => {{
        let mut arm = $crate::sync::ArmSlot::new($op);
        $crate::__select_bind!([$($bound)* (arm ($p) ($body))] [$($rest)*] ($default) ($dbody))
    }};
    ([$(($arm:ident ($p:pat) ($body:expr)))+] [] ($default:expr) ($dbody:expr)) => {{
        let _ = $crate::sync::SelectAll::new(
            &mut [$(&mut $arm as &mut dyn $crate::sync::ErasedArm),+],
            $default,
        )
        .await;
        $(
            if $arm.has_output() {
                let $p = $arm.take();
                $body
            } else
        )+
        {
            $dbody
        }
    }};
}
