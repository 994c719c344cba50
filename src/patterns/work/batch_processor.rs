//! A batch processor (seed 7.2; refs: RxJS `bufferTime` with a max size, OpenTelemetry's batch
//! span processor): items added one by one are handed to `fn` in batches.
//!
//! - A batch is cut from the oldest pending items when `batch_size` are pending (at once), when
//!   `flush_interval` has passed since its first item was added, on `flush()` (every item added
//!   before the flush, in as many batches as needed) and on `close()` (the final flush).
//! - `fn` runs in the processor's own goroutine, one batch at a time, in add order, and never
//!   gets an empty batch. While it runs, `add` keeps buffering up to `max_queue` pending items
//!   (unbounded by default), then blocks (FIFO, with an optional timeout).
//! - `add` after `close` is refused (`BatchError::Closed`); so are adds still blocked on
//!   `max_queue` when `close` comes (their items were never added). `close` waits until every
//!   added item has been handed to `fn` and `fn` has returned (the final flush), at most its
//!   timeout; the processor's goroutine then ends.
//!
//! Laws: each added item is in exactly one batch, in add order; 1 ≤ |batch| ≤ batch_size; no
//! item waits longer than flush_interval unless `fn` is still busy.
//!
//! Why it is shaped so. Rust owns the pending items, the cut rule, the deadline and every
//! waiter; the processor's loop is `next_batch` (parks until a batch is due: an add that fills a
//! batch, a flush, a close, or the first item's deadline, armed as the wait's own timer so an
//! idle processor with nothing pending has no timer and never hides a deadlock), run `fn`,
//! `batch_done`. `BatchProcessor::start` is that loop over an async Rust function; the Lua
//! binding's loop (`prelude.lua`) calls a Lua function between the same steps. Every wait here
//! can be ended by any goroutine, so none is a wait-for edge (`released_by_anyone`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use super::super::Spawn;
use super::nanos;
use crate::runtime::{
    Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TimerKey, Wait,
};
use crate::sync::{Begin, Op, Parked, TIMED_OUT, Timeout, block_timed};

/// Anyone (an add, a flush, a close, the processor) may end a wait on a batch processor.
const KIND: ResourceKind = ResourceKind::released_by_anyone("batch_processor");
/// The processor waiting for a batch to be due.
const NEXT: Blocking = Blocking::new("next batch", "block-batch");
/// An `add` blocked by `max_queue`.
const ADD: Blocking = Blocking::new("add", "block-add");
/// `close` waiting for the final flush.
const CLOSE: Blocking = Blocking::new("close", "block-close");

/// A batch processor's settings.
///
/// # Examples
///
/// ```
/// use gosim::patterns::BatchOptions;
/// use std::time::Duration;
///
/// let opts = BatchOptions { batch_size: 10, ..BatchOptions::default() };
/// assert_eq!((opts.flush_interval, opts.max_queue), (Duration::from_millis(1000), None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Items per batch at most; a batch is due at once when this many are pending (> 0).
    pub batch_size: usize,
    /// How long after its first item a batch is due.
    pub flush_interval: Duration,
    /// Pending items at most before `add` blocks (`None`: unbounded; else ≥ `batch_size`).
    pub max_queue: Option<usize>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            batch_size: 100,
            flush_interval: Duration::from_millis(1000),
            max_queue: None,
        }
    }
}

/// Why an `add` or a `close` did not happen.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{BatchError, BatchOptions, BatchProcessor};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let bp = BatchProcessor::<u8>::start(s.runtime(), &s, BatchOptions::default(),
///                                          |_batch| async { Ok(()) });
///     bp.close(None).await.expect("flushed");
///     assert_eq!(bp.add(1, None).await, Err(BatchError::Closed));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchError {
    /// The processor is closed: the item was not added.
    Closed,
    /// The timeout passed first (the item was not added; `close`: the final flush goes on).
    Timeout,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BatchError::Closed => "closed",
            BatchError::Timeout => "timeout",
        })
    }
}

impl std::error::Error for BatchError {}

/// A batch processor's counters.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{BatchOptions, BatchProcessor};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let opts = BatchOptions { batch_size: 2, ..BatchOptions::default() };
///     let bp = BatchProcessor::<u8>::start(s.runtime(), &s, opts, |_b| async { Ok(()) });
///     for v in 0..5 {
///         bp.add(v, None).await.expect("open");
///     }
///     bp.close(None).await.expect("flushed");
///     let st = bp.stats();
///     assert_eq!((st.added, st.batches, st.pending), (5, 3, 0)); // 2 + 2 + the final 1
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Items added.
    pub added: u64,
    /// Batches handed to `fn`.
    pub batches: u64,
    /// Batches whose `fn` failed.
    pub failed: u64,
    /// Items added and not yet handed to `fn`.
    pub pending: usize,
}

/// An `add` blocked by `max_queue`: its item until admitted.
struct Adder<T> {
    parked: Rc<Parked>,
    item: Option<T>,
}

/// Case of an adder's `Parked` when `close` refused it.
const REFUSED: usize = 1;

struct State<T> {
    /// Pending items with the instant each was added.
    pending: VecDeque<(T, Nanos)>,
    /// Items handed out so far (the number of the oldest pending item).
    taken: u64,
    /// Items added so far.
    added: u64,
    /// Items numbered below this are due (a `flush`).
    flush_upto: u64,
    closed: bool,
    /// `fn` is running on a batch.
    busy: bool,
    /// The processor's loop has ended.
    finished: bool,
    worker: Option<Rc<Parked>>,
    adders: VecDeque<Adder<T>>,
    closers: Vec<Rc<Parked>>,
    stats: BatchStats,
}

struct Shared<T> {
    rt: Runtime,
    res: ResourceRef,
    opts: BatchOptions,
    state: RefCell<State<T>>,
}

/// A batch processor of items `T`. Clones are the same processor.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{BatchOptions, BatchProcessor};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let opts = BatchOptions { batch_size: 3, flush_interval: Duration::from_millis(50),
///                               max_queue: None };
///     let sizes = s.channel::<usize>(10);
///     let out = sizes.clone();
///     let bp = BatchProcessor::<u32>::start(s.runtime(), &s, opts, move |batch| {
///         let out = out.clone();
///         async move { out.send(batch.len()).await.map_err(|_| "closed".to_string()) }
///     });
///     for v in 0..4 {
///         bp.add(v, None).await.expect("open");
///     }
///     assert_eq!(sizes.recv().await, Some(3)); // a full batch at once
///     assert_eq!(sizes.recv().await, Some(1)); // the rest at the flush interval
///     assert_eq!(s.now(), Duration::from_millis(50));
///     bp.close(None).await.expect("flushed");
/// });
/// report.assert_pass();
/// ```
pub struct BatchProcessor<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for BatchProcessor<T> {
    fn clone(&self) -> Self {
        BatchProcessor {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for BatchProcessor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BatchProcessor({})", self.shared.res)
    }
}

/// What one poll of `next_batch` found.
enum Step<T> {
    Batch(Vec<T>),
    End,
    Again,
}

impl<T: 'static> BatchProcessor<T> {
    /// A processor with no loop yet (a binding starts its own; Rust uses `start`). Panics on a
    /// zero `batch_size` or a `max_queue` below it (the bindings check first).
    pub fn new(rt: &Runtime, opts: BatchOptions, created_at: Option<Rc<str>>) -> BatchProcessor<T> {
        assert!(opts.batch_size > 0, "a batch holds at least one item");
        assert!(
            opts.max_queue.is_none_or(|m| m >= opts.batch_size),
            "max_queue must hold a whole batch"
        );
        let res = rt.new_resource(KIND, created_at);
        if rt.tracing() {
            let detail = format!(
                "batch_size={} flush_interval={} max_queue={}",
                opts.batch_size,
                crate::runtime::format_ms(nanos(Some(opts.flush_interval)).unwrap_or(0)),
                opts.max_queue
                    .map_or_else(|| "unbounded".to_string(), |m| m.to_string())
            );
            rt.emit("new", Subject::Resource(res.clone()), Some(detail));
        }
        BatchProcessor {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                opts,
                state: RefCell::new(State {
                    pending: VecDeque::new(),
                    taken: 0,
                    added: 0,
                    flush_upto: 0,
                    closed: false,
                    busy: false,
                    finished: false,
                    worker: None,
                    adders: VecDeque::new(),
                    closers: Vec::new(),
                    stats: BatchStats::default(),
                }),
            }),
        }
    }

    /// A processor whose loop, a goroutine named `batch_processor`, calls `f` on each batch;
    /// `Err(msg)` counts the batch as failed (its items are not handed out again).
    pub fn start<F, Fut>(
        rt: &Runtime,
        spawner: &dyn Spawn,
        opts: BatchOptions,
        f: F,
    ) -> BatchProcessor<T>
    where
        F: Fn(Vec<T>) -> Fut + 'static,
        Fut: Future<Output = Result<(), String>> + 'static,
    {
        let b = BatchProcessor::new(rt, opts, None);
        let p = b.clone();
        spawner.spawn_boxed(
            Some("batch_processor"),
            Box::pin(async move {
                while let Some(batch) = p.next_batch().await {
                    let r = f(batch).await;
                    p.batch_done(r);
                }
            }),
        );
        b
    }

    /// Its identity (`batch_processor#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Its settings.
    pub fn options(&self) -> BatchOptions {
        self.shared.opts
    }

    /// The counters now.
    pub fn stats(&self) -> BatchStats {
        let st = self.shared.state.borrow();
        BatchStats {
            pending: st.pending.len(),
            ..st.stats
        }
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    fn trace(&self, verb: &'static str, detail: Option<String>) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            rt.emit(verb, Subject::Resource(self.shared.res.clone()), detail);
        }
    }

    /// Wakes the processor if it waits for a batch.
    fn wake_worker(st: &mut State<T>, rt: &Runtime) {
        if let Some(p) = st.worker.take()
            && p.is_live()
        {
            p.fire(rt, 0);
        }
    }

    /// Appends an admitted item (the state is borrowed by the caller).
    fn push(&self, st: &mut State<T>, item: T) {
        let rt = &self.shared.rt;
        st.pending.push_back((item, rt.now()));
        st.added += 1;
        st.stats.added += 1;
        // A first pending item arms the deadline; a full batch is due at once.
        if st.pending.len() == 1 || st.pending.len() >= self.shared.opts.batch_size {
            Self::wake_worker(st, rt);
        }
    }

    /// Adds `item`, blocking while `max_queue` items are pending (FIFO among blocked adds), at
    /// most `timeout` (`Some(0)`: a try). Refused once closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{BatchError, BatchOptions, BatchProcessor};
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let opts = BatchOptions { batch_size: 2, max_queue: Some(2), ..BatchOptions::default() };
    ///     let bp = BatchProcessor::<u8>::new(s.runtime(), opts, None); // no processor loop yet
    ///     bp.add(1, None).await.expect("room");
    ///     bp.add(2, None).await.expect("room");
    ///     let r = bp.add(3, Some(Duration::from_millis(5))).await; // the queue is full
    ///     assert_eq!(r, Err(BatchError::Timeout));
    ///     assert_eq!(s.now(), Duration::from_millis(5));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn add(&self, item: T, timeout: Option<Duration>) -> Op<Result<(), BatchError>> {
        let b = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            let rt = b.shared.rt.clone();
            let mut st = b.shared.state.borrow_mut();
            if st.closed {
                drop(st);
                b.trace("add", Some("closed".into()));
                return Begin::Done(Err(BatchError::Closed));
            }
            let full = b
                .shared
                .opts
                .max_queue
                .is_some_and(|m| st.pending.len() >= m || !st.adders.is_empty());
            if !full {
                b.push(&mut st, item);
                return Begin::Done(Ok(()));
            }
            if timeout == Some(0) {
                return Begin::Done(Err(BatchError::Timeout));
            }
            let parked = Parked::new(rt.current());
            st.adders.push_back(Adder {
                parked: parked.clone(),
                item: Some(item),
            });
            drop(st);
            let key = {
                let b2 = b.clone();
                block_timed(&rt, ADD, &b.shared.res, &parked, timeout, move |_, p| {
                    b2.shared
                        .state
                        .borrow_mut()
                        .adders
                        .retain(|a| !Rc::ptr_eq(&a.parked, p));
                })
            };
            Begin::Parked(Box::new(move || match parked.fired_case() {
                Some(TIMED_OUT) => Err(BatchError::Timeout),
                Some(REFUSED) => {
                    if let Some(k) = key {
                        rt.cancel_timer(k);
                    }
                    Err(BatchError::Closed)
                }
                _ => {
                    if let Some(k) = key {
                        rt.cancel_timer(k);
                    }
                    Ok(())
                }
            }))
        })
    }

    /// Admits blocked adds while there is room.
    fn admit(&self, st: &mut State<T>) {
        let Some(m) = self.shared.opts.max_queue else {
            return;
        };
        while st.pending.len() < m {
            let Some(mut a) = st.adders.pop_front() else {
                break;
            };
            if !a.parked.is_live() {
                continue;
            }
            let item = a.item.take().expect("a queued add holds its item");
            self.push(st, item);
            a.parked.fire(&self.shared.rt, 0);
        }
    }

    /// Makes every item added so far due (in as many batches as needed). Never blocks, not a
    /// scheduling point; nothing to do once closed (close flushed).
    pub fn flush(&self) {
        let mut st = self.shared.state.borrow_mut();
        if st.closed {
            return;
        }
        st.flush_upto = st.added;
        let due = st.flush_upto > st.taken;
        if due {
            Self::wake_worker(&mut st, &self.shared.rt);
        }
        drop(st);
        self.trace(
            "flush",
            Some(format!("upto={}", self.shared.state.borrow().added)),
        );
    }

    /// Stops intake (blocked adds are refused) and waits until every added item has been handed
    /// to `fn` and `fn` has returned, at most `timeout` (on timeout the final flush goes on).
    /// Idempotent: a second `close` waits the same way.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{BatchOptions, BatchProcessor};
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let seen = s.atomic_int(0);
    ///     let c = seen.clone();
    ///     let bp = BatchProcessor::<u8>::start(s.runtime(), &s, BatchOptions::default(), move |b| {
    ///         let c = c.clone();
    ///         async move { c.add(b.len() as i64).await; Ok(()) }
    ///     });
    ///     bp.add(1, None).await.expect("open");
    ///     bp.close(None).await.expect("flushed"); // waits for the final flush
    ///     assert_eq!(seen.peek(), 1);
    ///     assert!(bp.is_closed());
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn close(&self, timeout: Option<Duration>) -> Op<Result<(), BatchError>> {
        let b = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            let rt = b.shared.rt.clone();
            let mut st = b.shared.state.borrow_mut();
            if !st.closed {
                st.closed = true;
                for a in std::mem::take(&mut st.adders) {
                    if a.parked.is_live() {
                        a.parked.fire(&rt, REFUSED);
                    }
                }
                Self::wake_worker(&mut st, &rt);
                drop(st);
                b.trace("close", None);
                st = b.shared.state.borrow_mut();
            }
            if st.finished {
                return Begin::Done(Ok(()));
            }
            if timeout == Some(0) {
                return Begin::Done(Err(BatchError::Timeout));
            }
            let parked = Parked::new(rt.current());
            st.closers.push(parked.clone());
            drop(st);
            let key = {
                let b2 = b.clone();
                block_timed(&rt, CLOSE, &b.shared.res, &parked, timeout, move |_, p| {
                    b2.shared
                        .state
                        .borrow_mut()
                        .closers
                        .retain(|w| !Rc::ptr_eq(w, p));
                })
            };
            Begin::Parked(Box::new(move || {
                parked
                    .timed_result(&rt, key)
                    .map_err(|Timeout| BatchError::Timeout)
            }))
        })
    }

    /// The batch due now, if any (cut from the oldest pending items).
    fn cut(&self, st: &mut State<T>) -> Option<Vec<T>> {
        let n = st.pending.len();
        if n == 0 {
            return None;
        }
        let size = self.shared.opts.batch_size;
        let rt = &self.shared.rt;
        let deadline = st.pending[0]
            .1
            .saturating_add(nanos(Some(self.shared.opts.flush_interval)).unwrap_or(0));
        let (take, why) = if n >= size {
            (size, "size")
        } else if st.flush_upto > st.taken {
            (((st.flush_upto - st.taken) as usize).min(size), "flush")
        } else if st.closed {
            (n, "close")
        } else if rt.now() >= deadline {
            (n, "interval")
        } else {
            return None;
        };
        let batch: Vec<T> = st.pending.drain(..take).map(|(v, _)| v).collect();
        let first = st.taken + 1;
        st.taken += take as u64;
        st.busy = true;
        st.stats.batches += 1;
        if rt.tracing() {
            rt.emit(
                "batch",
                Subject::Resource(self.shared.res.clone()),
                Some(format!(
                    "items {first}..{} ({take}, {why})",
                    first + take as u64 - 1
                )),
            );
        }
        self.admit(st);
        Some(batch)
    }

    /// One look at the state for the processor: a due batch, the end (closed and drained), or
    /// park until something changes (at most until the oldest item's deadline).
    fn step(&self) -> Begin<Step<T>> {
        let rt = self.shared.rt.clone();
        let mut st = self.shared.state.borrow_mut();
        if let Some(batch) = self.cut(&mut st) {
            return Begin::Done(Step::Batch(batch));
        }
        if st.closed && st.pending.is_empty() {
            st.finished = true;
            let closers = std::mem::take(&mut st.closers);
            drop(st);
            for p in closers {
                if p.is_live() {
                    p.fire(&rt, 0);
                }
            }
            self.trace("end", None);
            return Begin::Done(Step::End);
        }
        let parked = Parked::new(rt.current());
        st.worker = Some(parked.clone());
        let until = st.pending.front().map(|(_, t)| {
            t.saturating_add(nanos(Some(self.shared.opts.flush_interval)).unwrap_or(0))
        });
        drop(st);
        let mut wait = Wait::on(NEXT, &self.shared.res);
        wait.until = until;
        rt.block(wait);
        let key: Option<TimerKey> = until.map(|at| {
            let b = self.clone();
            parked.expire_at(&rt, at, move |_, p| {
                let mut st = b.shared.state.borrow_mut();
                if st.worker.as_ref().is_some_and(|w| Rc::ptr_eq(w, p)) {
                    st.worker = None;
                }
            })
        });
        let b = self.clone();
        Begin::Parked(Box::new(move || {
            let _ = parked.timed_result(&rt, key);
            let mut st = b.shared.state.borrow_mut();
            match b.cut(&mut st) {
                Some(batch) => Step::Batch(batch),
                None => Step::Again,
            }
        }))
    }

    /// For the processor's loop: the next batch, waiting until one is due; `None` once closed
    /// and drained (the loop then ends, and `close` returns).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{BatchOptions, BatchProcessor};
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let opts = BatchOptions { batch_size: 2, ..BatchOptions::default() };
    ///     let bp = BatchProcessor::<u8>::new(s.runtime(), opts, None);
    ///     let (p, got) = (bp.clone(), s.channel::<Vec<u8>>(4));
    ///     let g = got.clone();
    ///     // The processor loop's steps, as a language binding writes it.
    ///     s.spawn("batch_processor", async move {
    ///         while let Some(batch) = p.next_batch().await {
    ///             g.send(batch).await.expect("open");
    ///             p.batch_done(Ok(()));
    ///         }
    ///     });
    ///     bp.add(1, None).await.expect("open");
    ///     bp.add(2, None).await.expect("open");
    ///     assert_eq!(got.recv().await, Some(vec![1, 2]));
    ///     bp.close(None).await.expect("flushed");
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn next_batch(&self) -> Option<Vec<T>> {
        loop {
            let b = self.clone();
            match Op::new(&self.shared.rt, None, move || b.step()).await {
                Step::Batch(batch) => return Some(batch),
                Step::End => return None,
                Step::Again => {}
            }
        }
    }

    /// For the processor's loop: `fn` returned on the batch it took (`Err(msg)`: failed, and a
    /// `note` event carries the message's first line). Not a scheduling point.
    pub fn batch_done(&self, result: Result<(), String>) {
        let mut st = self.shared.state.borrow_mut();
        st.busy = false;
        if let Err(message) = result {
            st.stats.failed += 1;
            drop(st);
            if self.shared.rt.tracing() {
                let first = message.lines().next().unwrap_or("");
                self.shared.rt.emit(
                    "note",
                    Subject::Resource(self.shared.res.clone()),
                    Some(format!("batch failed: {first}")),
                );
            }
        }
    }
}
