//! `AtomicInt`: Go's `atomic.Int64` (and the Lua `goroutine.atomic_int`), an integer whose
//! operations are indivisible.
//!
//! On one thread every operation is trivially atomic; what matters for a simulation is that each
//! one is a **scheduling point** taken after its effect, so the seed can interleave other tasks
//! between a `load` and a `compare_and_swap` exactly where a real race could. Hence the ops are
//! futures (`Op`s). Each op leaves one trace event, verb `atomic.<op>`, detail
//! `"<result> (now <value>)"`; creating one leaves none (as in Lua, where the story is told by the
//! ops). The effect is `apply`, one match over `AtomicOp`, so the Lua binding and the Rust futures
//! cannot drift apart.

use std::cell::RefCell;
use std::rc::Rc;

use super::base::{Base, debug_handle};
use super::op::Op;
use crate::runtime::{ResourceKind, Runtime};

/// Any goroutine may change an atomic; nobody waits on one.
pub(crate) const KIND: ResourceKind = ResourceKind::released_by_anyone("atomic");

/// One atomic operation.
///
/// # Examples
///
/// ```
/// use gosim::sync::{AtomicOp, AtomicResult};
///
/// let sim = gosim::Sim::with_seed(1);
/// let n = sim.atomic_int(5);
/// assert_eq!(AtomicOp::Add(2).verb(), "atomic.add");
/// assert!(matches!(n.apply(AtomicOp::Add(2)), AtomicResult::Int(7)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicOp {
    /// Adds (wrapping); the result is the new value.
    Add(i64),
    /// Reads.
    Load,
    /// Writes; no result.
    Store(i64),
    /// Writes; the result is the old value.
    Swap(i64),
    /// Writes `new` if the value is `old`; the result says whether it did.
    CompareAndSwap {
        /// The expected value.
        old: i64,
        /// The value written when the expectation holds.
        new: i64,
    },
}

impl AtomicOp {
    /// The trace verb.
    pub fn verb(self) -> &'static str {
        match self {
            AtomicOp::Add(_) => "atomic.add",
            AtomicOp::Load => "atomic.load",
            AtomicOp::Store(_) => "atomic.store",
            AtomicOp::Swap(_) => "atomic.swap",
            AtomicOp::CompareAndSwap { .. } => "atomic.cas",
        }
    }
}

/// What an atomic operation returned.
///
/// # Examples
///
/// ```
/// use gosim::sync::{AtomicOp, AtomicResult};
///
/// let sim = gosim::Sim::with_seed(1);
/// let n = sim.atomic_int(5);
/// let r = n.apply(AtomicOp::CompareAndSwap { old: 5, new: 9 });
/// assert_eq!(r, AtomicResult::Swapped(true));
/// assert_eq!(n.peek(), 9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicResult {
    /// A value (add: the new one; load; swap: the old one).
    Int(i64),
    /// Nothing (store).
    Unit,
    /// Whether a compare-and-swap swapped.
    Swapped(bool),
}

impl std::fmt::Display for AtomicResult {
    /// As the Lua value would be shown (`5`, `nil`, `true`), so the traces of both languages agree.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AtomicResult::Int(v) => write!(f, "{v}"),
            AtomicResult::Unit => f.write_str("nil"),
            AtomicResult::Swapped(b) => write!(f, "{b}"),
        }
    }
}

/// An atomic integer. Clones are the same integer.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let hits = s.atomic_int(0);
///     let mut handles = Vec::new();
///     for _ in 0..4 {
///         let h = hits.clone();
///         handles.push(s.spawn("worker", async move { h.add(1).await }));
///     }
///     for h in handles {
///         h.await.expect("no panic");
///     }
///     assert_eq!(hits.load().await, 4); // every add is atomic: none is lost
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct AtomicInt {
    shared: Rc<Base<i64>>,
}

debug_handle!(AtomicInt);

impl AtomicInt {
    /// A new atomic integer holding `init` (resource kind `atomic`; no trace event, as in Lua).
    pub fn new(rt: &Runtime, init: i64, created_at: Option<Rc<str>>) -> AtomicInt {
        let res = rt.new_resource(KIND, created_at);
        AtomicInt {
            shared: Rc::new(Base {
                rt: rt.clone(),
                res,
                state: RefCell::new(init),
            }),
        }
    }

    /// Its identity.
    pub fn resource(&self) -> &crate::runtime::ResourceRef {
        &self.shared.res
    }

    /// Performs `op` now and traces it, without the scheduling point (the caller takes it: the
    /// futures below, or a language binding).
    pub fn apply(&self, op: AtomicOp) -> AtomicResult {
        let (result, now) = {
            let mut v = self.shared.state.borrow_mut();
            let cur = *v;
            let result = match op {
                AtomicOp::Add(d) => {
                    *v = cur.wrapping_add(d);
                    AtomicResult::Int(*v)
                }
                AtomicOp::Load => AtomicResult::Int(cur),
                AtomicOp::Store(x) => {
                    *v = x;
                    AtomicResult::Unit
                }
                AtomicOp::Swap(x) => {
                    *v = x;
                    AtomicResult::Int(cur)
                }
                AtomicOp::CompareAndSwap { old, new } => {
                    let swapped = cur == old;
                    if swapped {
                        *v = new;
                    }
                    AtomicResult::Swapped(swapped)
                }
            };
            (result, *v)
        };
        if self.shared.rt.tracing() {
            self.shared
                .trace(op.verb(), Some(format!("{result} (now {now})")));
        }
        result
    }

    fn op<R: 'static>(&self, op: AtomicOp, out: fn(AtomicResult) -> R) -> Op<R> {
        let a = self.clone();
        Op::now(&self.shared.rt, move || out(a.apply(op)))
    }

    /// Adds `delta` (wrapping) and returns the new value.
    ///
    /// # Examples
    ///
    /// ```
    /// # let sim = gosim::Sim::with_seed(1);
    /// # let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let n = s.atomic_int(10);
    ///     assert_eq!(n.add(5).await, 15); // the new value
    ///     assert_eq!(n.add(-20).await, -5);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn add(&self, delta: i64) -> Op<i64> {
        self.op(AtomicOp::Add(delta), int)
    }

    /// Reads the value.
    ///
    /// # Examples
    ///
    /// ```
    /// # let sim = gosim::Sim::with_seed(1);
    /// # let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let n = s.atomic_int(3);
    ///     assert_eq!(n.load().await, 3);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn load(&self) -> Op<i64> {
        self.op(AtomicOp::Load, int)
    }

    /// Writes `v`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let sim = gosim::Sim::with_seed(1);
    /// # let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let n = s.atomic_int(3);
    ///     n.store(8).await;
    ///     assert_eq!(n.load().await, 8);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn store(&self, v: i64) -> Op<()> {
        self.op(AtomicOp::Store(v), |_| ())
    }

    /// Writes `v` and returns the old value.
    ///
    /// # Examples
    ///
    /// ```
    /// # let sim = gosim::Sim::with_seed(1);
    /// # let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let n = s.atomic_int(3);
    ///     assert_eq!(n.swap(4).await, 3); // the old value
    ///     assert_eq!(n.peek(), 4);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn swap(&self, v: i64) -> Op<i64> {
        self.op(AtomicOp::Swap(v), int)
    }

    /// Writes `new` if the value is `old`; returns whether it did.
    ///
    /// # Examples
    ///
    /// ```
    /// # let sim = gosim::Sim::with_seed(1);
    /// # let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let n = s.atomic_int(3);
    ///     assert!(n.compare_and_swap(3, 6).await);
    ///     assert!(!n.compare_and_swap(3, 9).await); // it is 6 now
    ///     assert_eq!(n.peek(), 6);
    /// });
    /// report.assert_pass();
    /// ```
    pub fn compare_and_swap(&self, old: i64, new: i64) -> Op<bool> {
        self.op(AtomicOp::CompareAndSwap { old, new }, |r| {
            matches!(r, AtomicResult::Swapped(true))
        })
    }

    /// The value, read without an operation (no trace, no scheduling point): for assertions
    /// after a run and for observers.
    pub fn peek(&self) -> i64 {
        *self.shared.state.borrow()
    }
}

fn int(r: AtomicResult) -> i64 {
    match r {
        AtomicResult::Int(v) => v,
        _ => unreachable!("this atomic op returns an integer"),
    }
}
