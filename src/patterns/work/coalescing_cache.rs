//! A coalescing cache (seed 7.4; refs: golang.org/x/sync `singleflight`, Guava `LoadingCache`):
//! `get(key)` returns the cached value, or loads it with `loader(key)`, at most one load in
//! flight per key.
//!
//! - The first caller of a key with no fresh entry runs the loader itself, in its own goroutine
//!   (singleflight's `Do`); callers of the same key meanwhile join its flight and all get the
//!   same result, value or error.
//! - An entry's time is when its load finished: it is served while `now − t' < ttl` (at exactly
//!   `ttl` it is stale and the next caller loads again). `ttl = 0` coalesces without caching.
//! - Errors are never cached: every caller joined to a failing flight gets the error, the next
//!   call loads again.
//! - `forget(key)` (singleflight's `Forget`, Guava's `invalidate`) drops the entry and detaches
//!   a flight in progress: callers already joined still get its result, the next `get` starts a
//!   new flight, and the detached flight, when it finishes, neither caches its value nor
//!   disturbs the new flight (golang/go#31420).
//! - Only a joined caller waits, so only joining takes a timeout; the loading caller runs the
//!   loader and cannot time out (its flight would then have no one to finish it). A Rust load
//!   whose future is dropped before it finishes fails its flight ("load cancelled") so joined
//!   callers never wait forever.
//!
//! Laws: one loader per key in flight; served values are fresh; errors never served from cache.
//!
//! Why it is shaped so. Rust owns the entries, the flights (each a result cell and its joined
//! waiters) and the counters; a `get` is `begin` (a hit, or "load this flight", or "join this
//! flight"), then for a loader the user's function and `finish`, for a joiner `join`. The Rust
//! `get` is those steps around an async loader; the Lua binding's `get` (`prelude.lua`) calls a
//! Lua loader between the same steps. A joined caller waits for whoever runs the loader, which
//! may itself wait for anything, so the wait is `released_by_anyone` (never a false cycle).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::nanos;
use crate::runtime::{Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject};
use crate::sync::{Begin, Describe, Op, Parked, TIMED_OUT, block_timed};

/// Anyone (the goroutine running the loader) ends a joined caller's wait.
const KIND: ResourceKind = ResourceKind::released_by_anyone("coalescing_cache");
/// A caller joined to a flight.
const JOIN: Blocking = Blocking::new("join", "block-join");

/// Why a `get` gave no value.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{CacheError, CoalescingCache};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let cache = CoalescingCache::<u32, String>::with_loader(
///         s.runtime(), Duration::from_secs(60),
///         |k| async move { if k == 0 { Err("no such user".to_string()) } else { Ok(format!("user{k}")) } },
///         None,
///     );
///     assert_eq!(cache.get(0, None).await, Err(CacheError::Failed("no such user".into())));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// A joined caller's timeout passed first (the flight goes on).
    Timeout,
    /// The load failed with this message (raised, returned as an error, or cancelled).
    Failed(String),
}

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheError::Timeout => f.write_str("timeout"),
            CacheError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CacheError {}

/// A cache's counters.
///
/// # Examples
///
/// ```
/// use gosim::patterns::CoalescingCache;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let cache = CoalescingCache::<u8, u8>::with_loader(
///         s.runtime(), Duration::from_secs(1), |k| async move { Ok(k * 2) }, None);
///     cache.get(1, None).await.expect("loaded");
///     cache.get(1, None).await.expect("cached");
///     let st = cache.stats();
///     assert_eq!((st.loads, st.hits, st.entries), (1, 1, 1));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Gets served from a fresh entry.
    pub hits: u64,
    /// Loader calls started (one per flight).
    pub loads: u64,
    /// Gets that joined a flight in progress.
    pub joins: u64,
    /// Flights that failed.
    pub errors: u64,
    /// Entries held (fresh or not yet found stale).
    pub entries: usize,
}

/// What `begin` found for a key.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{CoalescingCache, Lookup};
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let cache = CoalescingCache::<&str, u32>::new(s.runtime(), Duration::from_secs(1), None);
///     let Lookup::Load(flight) = cache.begin("k") else { panic!("first caller loads") };
///     assert!(matches!(cache.begin("k"), Lookup::Join(f) if f == flight)); // in flight
///     assert_eq!(cache.finish(flight, Ok(7)), Ok(7));
///     assert!(matches!(cache.begin("k"), Lookup::Hit(7)));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug)]
pub enum Lookup<V> {
    /// A fresh entry's value.
    Hit(V),
    /// No fresh entry and no flight: the caller runs the loader, then `finish(flight, ..)`.
    Load(u64),
    /// A flight is in progress: the caller waits with `join(flight, ..)`.
    Join(u64),
}

struct Flight<K, V> {
    key: K,
    /// Still the key's flight (not forgotten nor finished).
    attached: bool,
    result: Option<Result<V, String>>,
    waiters: Vec<Rc<Parked>>,
}

struct State<K, V> {
    entries: BTreeMap<K, (V, Nanos)>,
    /// The flight in progress per key.
    in_flight: BTreeMap<K, u64>,
    /// Flights not finished yet, by id.
    flights: BTreeMap<u64, Rc<RefCell<Flight<K, V>>>>,
    next_flight: u64,
    stats: CacheStats,
}

type Loader<K, V> = Rc<dyn Fn(K) -> std::pin::Pin<Box<dyn Future<Output = Result<V, String>>>>>;

struct Shared<K, V> {
    rt: Runtime,
    res: ResourceRef,
    ttl: Nanos,
    loader: Option<Loader<K, V>>,
    state: RefCell<State<K, V>>,
}

/// A coalescing cache from `K` to `V`. Clones are the same cache.
///
/// # Examples
///
/// ```
/// use gosim::patterns::CoalescingCache;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let (loads, t) = (s.atomic_int(0), s.clone());
///     let l = loads.clone();
///     let cache = CoalescingCache::<u32, u32>::with_loader(s.runtime(), Duration::from_secs(10),
///         move |k| {
///             let (l, t) = (l.clone(), t.clone());
///             async move { l.add(1).await; t.sleep(Duration::from_millis(5)).await; Ok(k + 1) }
///         }, None);
///     let hs: Vec<_> = (0..3).map(|_| {
///         let c = cache.clone();
///         s.spawn("caller", async move { c.get(1, None).await })
///     }).collect();
///     for h in hs {
///         assert_eq!(h.await.expect("no panic"), Ok(2));
///     }
///     assert_eq!(loads.peek(), 1); // three callers, one load
/// });
/// report.assert_pass();
/// ```
pub struct CoalescingCache<K, V> {
    shared: Rc<Shared<K, V>>,
}

impl<K, V> Clone for CoalescingCache<K, V> {
    fn clone(&self) -> Self {
        CoalescingCache {
            shared: self.shared.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for CoalescingCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CoalescingCache({})", self.shared.res)
    }
}

/// Fails a Rust flight whose loading future was dropped before `finish`.
struct FlightGuard<K: Ord + Clone + Debug + 'static, V: Clone + 'static> {
    cache: CoalescingCache<K, V>,
    flight: Option<u64>,
}

impl<K: Ord + Clone + Debug + 'static, V: Clone + 'static> Drop for FlightGuard<K, V> {
    fn drop(&mut self) {
        if let Some(id) = self.flight.take() {
            let _ = self.cache.finish(id, Err("load cancelled".to_string()));
        }
    }
}

impl<K: Ord + Clone + Debug + 'static, V: Clone + 'static> CoalescingCache<K, V> {
    /// A cache whose loads are run by each caller (`get_with`, or a binding's loop).
    pub fn new(rt: &Runtime, ttl: Duration, created_at: Option<Rc<str>>) -> Self {
        Self::build(rt, ttl, None, created_at)
    }

    /// A cache with a Rust loader (`get`).
    pub fn with_loader<F, Fut>(
        rt: &Runtime,
        ttl: Duration,
        loader: F,
        created_at: Option<Rc<str>>,
    ) -> Self
    where
        F: Fn(K) -> Fut + 'static,
        Fut: Future<Output = Result<V, String>> + 'static,
    {
        let l: Loader<K, V> = Rc::new(move |k| Box::pin(loader(k)));
        Self::build(rt, ttl, Some(l), created_at)
    }

    fn build(
        rt: &Runtime,
        ttl: Duration,
        loader: Option<Loader<K, V>>,
        created_at: Option<Rc<str>>,
    ) -> Self {
        let ttl = nanos(Some(ttl)).unwrap_or(0);
        let res = rt.new_resource(KIND, created_at);
        if rt.tracing() {
            rt.emit(
                "new",
                Subject::Resource(res.clone()),
                Some(format!("ttl={}", crate::runtime::format_ms(ttl))),
            );
        }
        CoalescingCache {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                ttl,
                loader,
                state: RefCell::new(State {
                    entries: BTreeMap::new(),
                    in_flight: BTreeMap::new(),
                    flights: BTreeMap::new(),
                    next_flight: 0,
                    stats: CacheStats::default(),
                }),
            }),
        }
    }

    /// Its identity (`coalescing_cache#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Whether it has a Rust loader (`get` works).
    pub fn has_loader(&self) -> bool {
        self.shared.loader.is_some()
    }

    /// The counters now.
    pub fn stats(&self) -> CacheStats {
        let st = self.shared.state.borrow();
        CacheStats {
            entries: st.entries.len(),
            ..st.stats
        }
    }

    fn trace(&self, verb: &'static str, detail: String) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            rt.emit(
                verb,
                Subject::Resource(self.shared.res.clone()),
                Some(detail),
            );
        }
    }

    /// The first step of a get: a fresh entry's value, or the flight to run or to join. A stale
    /// entry is dropped here. Not a scheduling point.
    pub fn begin(&self, key: K) -> Lookup<V> {
        let now = self.shared.rt.now();
        let mut st = self.shared.state.borrow_mut();
        if let Some((v, at)) = st.entries.get(&key) {
            if now.saturating_sub(*at) < self.shared.ttl {
                let v = v.clone();
                st.stats.hits += 1;
                drop(st);
                self.trace("hit", key.describe());
                return Lookup::Hit(v);
            }
            st.entries.remove(&key);
        }
        if let Some(&id) = st.in_flight.get(&key) {
            st.stats.joins += 1;
            drop(st);
            self.trace("join", format!("{} flight={id}", key.describe()));
            return Lookup::Join(id);
        }
        st.next_flight += 1;
        let id = st.next_flight;
        st.stats.loads += 1;
        st.in_flight.insert(key.clone(), id);
        st.flights.insert(
            id,
            Rc::new(RefCell::new(Flight {
                key: key.clone(),
                attached: true,
                result: None,
                waiters: Vec::new(),
            })),
        );
        drop(st);
        self.trace("load", format!("{} flight={id}", key.describe()));
        Lookup::Load(id)
    }

    /// The loader of `flight` returned: caches a value (unless `ttl = 0` or the flight was
    /// forgotten), wakes every joined caller with the result, and returns it to the loader's
    /// caller. Not a scheduling point. An unknown or finished flight changes nothing.
    pub fn finish(&self, flight: u64, result: Result<V, String>) -> Result<V, CacheError> {
        let rt = self.shared.rt.clone();
        let mut st = self.shared.state.borrow_mut();
        let Some(cell) = st.flights.remove(&flight) else {
            return result.map_err(CacheError::Failed);
        };
        let mut f = cell.borrow_mut();
        let key = f.key.clone();
        // golang/go#31420: only remove the key's flight if it is still this one.
        if f.attached {
            st.in_flight.remove(&key);
            f.attached = false;
            if let Ok(v) = &result
                && self.shared.ttl > 0
            {
                st.entries.insert(key.clone(), (v.clone(), rt.now()));
            }
        }
        if result.is_err() {
            st.stats.errors += 1;
        }
        f.result = Some(result.clone());
        let waiters = std::mem::take(&mut f.waiters);
        drop(f);
        drop(st);
        self.trace(
            "loaded",
            format!(
                "{} flight={flight} {}",
                key.describe(),
                if result.is_ok() { "ok" } else { "error" }
            ),
        );
        for p in waiters {
            if p.is_live() {
                p.fire(&rt, 0);
            }
        }
        result.map_err(CacheError::Failed)
    }

    /// Waits for `flight`'s result, at most `timeout` (`Some(0)`: only if already finished).
    /// An unknown flight fails (`Failed("no such flight")`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{CoalescingCache, Lookup};
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let cache = CoalescingCache::<u8, u8>::new(s.runtime(), Duration::from_secs(1), None);
    ///     let Lookup::Load(flight) = cache.begin(1) else { unreachable!() };
    ///     let (c, t) = (cache.clone(), s.clone());
    ///     s.spawn("loader", async move {
    ///         t.sleep(Duration::from_millis(8)).await;
    ///         c.finish(flight, Ok(10)).expect("loaded");
    ///     });
    ///     assert_eq!(cache.join(flight, None).await, Ok(10)); // waits for the flight
    ///     assert_eq!(s.now(), Duration::from_millis(8));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn join(&self, flight: u64, timeout: Option<Duration>) -> Op<Result<V, CacheError>> {
        let c = self.clone();
        let timeout = nanos(timeout);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            let rt = c.shared.rt.clone();
            let Some(cell) = c.shared.state.borrow().flights.get(&flight).cloned() else {
                return Begin::Done(Err(CacheError::Failed("no such flight".into())));
            };
            if timeout == Some(0) {
                return Begin::Done(Err(CacheError::Timeout));
            }
            let parked = Parked::new(rt.current());
            cell.borrow_mut().waiters.push(parked.clone());
            let key = {
                let cell2 = cell.clone();
                block_timed(&rt, JOIN, &c.shared.res, &parked, timeout, move |_, p| {
                    cell2.borrow_mut().waiters.retain(|w| !Rc::ptr_eq(w, p));
                })
            };
            Begin::Parked(Box::new(move || {
                if parked.fired_case() == Some(TIMED_OUT) {
                    return Err(CacheError::Timeout);
                }
                if let Some(k) = key {
                    rt.cancel_timer(k);
                }
                let r = cell.borrow().result.clone();
                r.unwrap_or_else(|| Err("load cancelled".to_string()))
                    .map_err(CacheError::Failed)
            }))
        })
    }

    /// Drops `key`'s entry and detaches its flight in progress (joined callers still get its
    /// result; the next `get` loads again; the detached flight caches nothing). Not a
    /// scheduling point.
    pub fn forget(&self, key: &K) {
        let mut st = self.shared.state.borrow_mut();
        st.entries.remove(key);
        if let Some(id) = st.in_flight.remove(key)
            && let Some(cell) = st.flights.get(&id)
        {
            cell.borrow_mut().attached = false;
        }
        drop(st);
        self.trace("forget", key.describe());
    }

    /// Gets `key`, loading it with `load` when this caller runs the flight; a joined caller
    /// waits at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::CoalescingCache;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let cache = CoalescingCache::<u8, String>::new(s.runtime(), Duration::from_secs(1), None);
    ///     let v = cache.get_with(3, None, |k| async move { Ok(format!("v{k}")) }).await;
    ///     assert_eq!(v.as_deref(), Ok("v3"));
    ///     let again = cache.get_with(3, None, |_| async { Err("not called".to_string()) }).await;
    ///     assert_eq!(again.as_deref(), Ok("v3")); // a hit: the loader is not called
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn get_with<F, Fut>(
        &self,
        key: K,
        timeout: Option<Duration>,
        load: F,
    ) -> Result<V, CacheError>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = Result<V, String>>,
    {
        match self.begin(key.clone()) {
            Lookup::Hit(v) => {
                crate::sync::yield_now(&self.shared.rt).await;
                Ok(v)
            }
            Lookup::Join(id) => self.join(id, timeout).await,
            Lookup::Load(id) => {
                let mut guard = FlightGuard {
                    cache: self.clone(),
                    flight: Some(id),
                };
                let r = load(key).await;
                guard.flight = None;
                let out = self.finish(id, r);
                crate::sync::yield_now(&self.shared.rt).await;
                out
            }
        }
    }

    /// Gets `key` with the cache's Rust loader. Panics if it was made without one (`new`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::CoalescingCache;
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let cache = CoalescingCache::<u8, u8>::with_loader(
    ///         s.runtime(), Duration::from_millis(100), |k| async move { Ok(k) }, None);
    ///     assert_eq!(cache.get(4, None).await, Ok(4));
    ///     s.sleep(Duration::from_millis(150)).await; // past the ttl: loaded again
    ///     assert_eq!(cache.get(4, None).await, Ok(4));
    ///     assert_eq!(cache.stats().loads, 2);
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn get(&self, key: K, timeout: Option<Duration>) -> Result<V, CacheError> {
        let loader = self
            .shared
            .loader
            .clone()
            .expect("CoalescingCache::get needs a cache made with_loader");
        self.get_with(key, timeout, move |k| loader(k)).await
    }
}
