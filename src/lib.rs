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

pub mod explore;
pub mod lua;
pub mod patterns;
pub mod runtime;
pub mod scenario;
pub mod sim;
pub mod sync;

pub use gosim_macros::test;
pub use sim::{Check, Sim, check};
