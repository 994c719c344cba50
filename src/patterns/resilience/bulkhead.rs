//! A bulkhead (seed 3.4), as resilience4j's `SemaphoreBulkhead`: named partitions, each a FIFO
//! semaphore of `max_concurrent` slots with its own `max_wait` (default 0: reject at once).
//!
//! - A call enters its partition (taking a slot, or waiting at most `max_wait` in call order),
//!   runs, and leaves; the slot is given back whatever the call's outcome.
//! - A call that cannot enter is rejected without running: [`Full`] (`"bulkhead full: NAME"`),
//!   also when its `max_wait` expires.
//! - Partitions are independent semaphores: one partition's load never delays another's.
//!
//! Each partition is a [`WeightedSemaphore`] of weight-1 requests, so a running call holds its
//! slot in the wait-for graph (a call stuck waiting on a partition whose holders are all
//! blocked on it is a named deadlock), and a timed wait leaves the queue cleanly.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::patterns::{AcquireStart, WeightedSemaphore};
use crate::runtime::{Nanos, ResourceKind, ResourceRef, Runtime, Subject};
use crate::sync::{Begin, Misuse, Op};

/// Nothing waits on the bulkhead itself (calls wait on their partition's semaphore).
const KIND: ResourceKind = ResourceKind::released_by_anyone("bulkhead");

/// One partition's limits.
///
/// # Examples
///
/// ```
/// use gosim::patterns::Partition;
/// use std::time::Duration;
///
/// let fail_fast = Partition::new(2); // a full partition rejects at once
/// assert_eq!(fail_fast.max_wait, Some(Duration::ZERO));
/// let patient = Partition { max_concurrent: 2, max_wait: None }; // waits for a slot
/// assert_eq!(patient.max_concurrent, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// Calls running at once (at least 1).
    pub max_concurrent: u64,
    /// How long a call may wait for a slot: `Some(ZERO)` rejects at once (the default), `None`
    /// waits as long as it takes.
    pub max_wait: Option<Duration>,
}

impl Partition {
    /// `max_concurrent` slots, rejecting at once when they are all taken.
    pub fn new(max_concurrent: u64) -> Partition {
        Partition {
            max_concurrent,
            max_wait: Some(Duration::ZERO),
        }
    }
}

/// A call rejected without running: its partition was full (for `max_wait`).
///
/// # Examples
///
/// ```
/// use gosim::patterns::Partition;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let bh = s.bulkhead(&[("db", Partition::new(1))]);
///     let (b, t) = (bh.clone(), s.clone());
///     s.spawn("holder", async move {
///         b.execute("db", || t.sleep(Duration::from_millis(5))).await.expect("free");
///     });
///     s.yield_now().await;
///     let err = bh.execute("db", || async {}).await.unwrap_err();
///     assert_eq!(&*err.partition, "db");
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full {
    /// The partition.
    pub partition: Rc<str>,
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bulkhead full: {}", self.partition)
    }
}

impl std::error::Error for Full {}

struct Part {
    name: Rc<str>,
    sem: WeightedSemaphore,
    max_wait: Option<Nanos>,
}

struct Shared {
    rt: Runtime,
    res: ResourceRef,
    parts: BTreeMap<Rc<str>, Part>,
}

/// A bulkhead of named partitions. Clones are the same bulkhead.
///
/// # Examples
///
/// ```
/// use gosim::patterns::Partition;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let bh = s.bulkhead(&[("api", Partition::new(2)), ("db", Partition::new(1))]);
///     let r = bh.execute("db", || async { "row" }).await;
///     assert_eq!(r, Ok("row"));
///     assert_eq!(bh.in_flight("db"), Ok(0)); // the slot came back
///     assert_eq!(bh.partitions().len(), 2);
///     s.sleep(Duration::from_millis(1)).await;
/// });
/// report.assert_pass();
/// ```
#[derive(Clone)]
pub struct Bulkhead {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bulkhead({})", self.shared.res)
    }
}

impl Bulkhead {
    /// A bulkhead with these partitions (their semaphores are created in name order). Panics if
    /// a partition has `max_concurrent == 0` (the Lua binding reports it as misuse).
    pub fn new(
        rt: &Runtime,
        partitions: &[(&str, Partition)],
        created_at: Option<Rc<str>>,
    ) -> Bulkhead {
        let res = rt.new_resource(KIND, created_at.clone());
        let sorted: BTreeMap<&str, Partition> = partitions.iter().copied().collect();
        if rt.tracing() {
            let names: Vec<String> = sorted
                .iter()
                .map(|(n, p)| format!("{n}={}", p.max_concurrent))
                .collect();
            rt.emit("new", Subject::Resource(res.clone()), Some(names.join(" ")));
        }
        let parts = sorted
            .into_iter()
            .map(|(n, p)| {
                assert!(
                    p.max_concurrent > 0,
                    "bulkhead partition {n}: max_concurrent >= 1"
                );
                let name: Rc<str> = n.into();
                let part = Part {
                    name: name.clone(),
                    sem: WeightedSemaphore::new(rt, p.max_concurrent, created_at.clone()),
                    max_wait: p
                        .max_wait
                        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                };
                (name, part)
            })
            .collect();
        Bulkhead {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                parts,
            }),
        }
    }

    /// Its identity (`bulkhead#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// The partition names, in order.
    pub fn partitions(&self) -> Vec<Rc<str>> {
        self.shared.parts.keys().cloned().collect()
    }

    fn part(&self, name: &str) -> Result<&Part, Misuse> {
        self.shared
            .parts
            .get(name)
            .ok_or_else(|| Misuse(format!("unknown partition {name:?}")))
    }

    /// The semaphore resource of a partition (`weighted_semaphore#4`), as traces name it.
    pub fn partition_resource(&self, name: &str) -> Result<&ResourceRef, Misuse> {
        Ok(self.part(name)?.sem.resource())
    }

    /// Calls running in a partition now.
    pub fn in_flight(&self, name: &str) -> Result<u64, Misuse> {
        let p = self.part(name)?;
        Ok(p.sem.capacity() - p.sem.available())
    }

    /// Calls waiting for a slot of a partition now.
    pub fn waiting(&self, name: &str) -> Result<usize, Misuse> {
        Ok(self.part(name)?.sem.waiting())
    }

    /// A partition's `max_concurrent`.
    pub fn max_concurrent(&self, name: &str) -> Result<u64, Misuse> {
        Ok(self.part(name)?.sem.capacity())
    }

    /// Takes a slot of partition `name` (waiting at most its `max_wait`, in call order), or
    /// `Err(Full)`. An unknown partition is misuse, reported at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::Partition;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let bh = s.bulkhead(&[("db", Partition::new(1))]);
    ///     // The steps of `execute`, for a binding: enter, run, leave.
    ///     bh.enter("db").expect("a known partition").await.expect("a free slot");
    ///     assert_eq!(bh.in_flight("db"), Ok(1));
    ///     assert!(bh.enter("db").expect("known").await.is_err()); // full: rejected at once
    ///     bh.leave("db").expect("entered");
    ///     assert!(bh.enter("cache").is_err()); // an unknown partition is misuse
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn enter(&self, name: &str) -> Result<Op<Result<(), Full>>, Misuse> {
        let p = self.part(name)?;
        let (sem, timeout, pname) = (p.sem.clone(), p.max_wait, p.name.clone());
        let (rt, res) = (self.shared.rt.clone(), self.shared.res.clone());
        let loc = std::panic::Location::caller();
        Ok(Op::new(&self.shared.rt, Some(loc), move || {
            let full = move |rt: &Runtime| {
                if rt.tracing() {
                    rt.emit("reject", Subject::Resource(res), Some(pname.to_string()));
                }
                Full { partition: pname }
            };
            match sem.acquire_or_park(1, timeout) {
                Ok(AcquireStart::Granted) => Begin::Done(Ok(())),
                Ok(AcquireStart::Refused) | Err(_) => Begin::Done(Err(full(&rt))),
                Ok(AcquireStart::Parked(parked, key)) => Begin::Parked(Box::new(move || {
                    parked.timed_result(&rt, key).map_err(|_| full(&rt))
                })),
            }
        }))
    }

    /// Gives a slot of partition `name` back (by the goroutine that entered). Leaving a
    /// partition nobody is in is misuse.
    pub fn leave(&self, name: &str) -> Result<(), Misuse> {
        self.part(name)?.sem.release(1)
    }

    /// Runs `f` in partition `name`: rejected without running (`Err(Full)`), or run with a slot
    /// held until it finishes (also if the future is dropped). Panics on an unknown partition.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::Partition;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let patient = Partition { max_concurrent: 1, max_wait: None };
    ///     let bh = s.bulkhead(&[("db", patient)]);
    ///     let (b, t) = (bh.clone(), s.clone());
    ///     s.spawn("first", async move {
    ///         b.execute("db", || t.sleep(Duration::from_millis(8))).await.expect("free");
    ///     });
    ///     s.yield_now().await;
    ///     let r = bh.execute("db", || async { 1 }).await; // waits for the slot
    ///     assert_eq!((r, s.now()), (Ok(1), Duration::from_millis(8)));
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn execute<T, F, Fut>(&self, name: &str, f: F) -> Result<T, Full>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let enter = match self.enter(name) {
            Ok(op) => op,
            Err(e) => panic!("bulkhead:execute: {e}"),
        };
        enter.await?;
        let slot = Slot {
            bh: self.clone(),
            name: name.to_string(),
        };
        let v = f().await;
        drop(slot);
        Ok(v)
    }
}

/// A held slot, given back when dropped.
struct Slot {
    bh: Bulkhead,
    name: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Outside a goroutine (the run is being torn down) there is nobody to hand it to.
        if self.bh.shared.rt.try_current().is_some() {
            let _ = self.bh.leave(&self.name);
        }
    }
}
