//! The userdata behind Lua handles: each wraps one `crate::sync` primitive. Methods live in Lua
//! tables (written in the prelude) reached through `__index`, and `tostring` prints the
//! resource's stable identity (`channel#3`), never an address.

use std::cell::RefCell;

use mlua::{UserData, UserDataFields, UserDataMethods, Value};

use super::value::LuaValue;
use crate::runtime::ResourceRef;
use crate::sync::{Channel, Cond, Context, Mutex, Once, RwMutex, Semaphore, Timer, WaitGroup};

/// Which way a channel handle may be used.
///
/// # Examples
///
/// ```
/// use gosim::lua::Dir;
///
/// // A script's channel handle is both ways unless narrowed (a context's `done()` is receive-only).
/// let dirs = [Dir::Both, Dir::Send, Dir::Receive];
/// assert_eq!(dirs.iter().filter(|d| **d != Dir::Both).count(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Send and receive.
    Both,
    /// Send only.
    Send,
    /// Receive only.
    Receive,
}

/// A channel handle.
#[derive(Debug)]
pub struct LuaChannel {
    pub(crate) ch: Channel<LuaValue>,
    pub(crate) dir: Dir,
    /// False for the channels gosim owns (a timer's, a context's `done()`): only their owner
    /// closes them.
    pub(crate) closable: bool,
}

impl LuaChannel {
    /// A handle on a channel gosim owns (a timer's, a context's `done()`): the script may only
    /// receive from it, and only its owner closes it.
    pub(crate) fn owned_by_gosim(ch: Channel<LuaValue>) -> LuaChannel {
        LuaChannel {
            ch,
            dir: Dir::Receive,
            closable: false,
        }
    }
}

/// A mutex handle.
#[derive(Debug)]
pub(super) struct LuaMutex(pub(crate) Mutex);
/// An rwmutex handle.
#[derive(Debug)]
pub(super) struct LuaRwMutex(pub(crate) RwMutex);
/// The read side of an rwmutex as a locker (`rw:rlocker()`).
#[derive(Debug)]
pub(super) struct LuaRLocker(pub(crate) RwMutex);
/// A weighted semaphore handle (seed 5.4).
#[derive(Debug)]
pub struct LuaWeightedSemaphore(pub(crate) crate::patterns::WeightedSemaphore);
/// A latch handle (seed 5.2).
#[derive(Debug)]
pub struct LuaLatch(pub(crate) crate::patterns::Latch);
/// A barrier handle (seed 5.1).
#[derive(Debug)]
pub struct LuaBarrier(pub(crate) crate::patterns::Barrier);
/// An upgradeable rwmutex handle (seed 5.3).
#[derive(Debug)]
pub struct LuaUpgradeableRwLock(pub(crate) crate::patterns::UpgradeableRwLock);
/// A semaphore handle.
#[derive(Debug)]
pub(super) struct LuaSemaphore(pub(crate) Semaphore);
/// A wait group handle.
#[derive(Debug)]
pub(super) struct LuaWaitGroup(pub(crate) WaitGroup);
/// A once handle.
#[derive(Debug)]
pub(super) struct LuaOnce(pub(crate) Once);

/// An atomic integer handle (`crate::sync::AtomicInt`, the one a Rust task uses).
#[derive(Debug)]
pub(super) struct LuaAtomic(pub(crate) crate::sync::AtomicInt);

/// A cond handle and its locker (any Lua object with lock/unlock).
#[derive(Debug)]
pub(super) struct LuaCond {
    pub(crate) cond: Cond,
    pub(crate) locker: RefCell<Value>,
}

/// A context handle.
#[derive(Debug)]
pub(super) struct LuaContext(pub(crate) Context);

/// A timer, ticker or after_func handle.
#[derive(Debug)]
pub(super) struct LuaTimer {
    pub(crate) timer: Timer,
    pub(crate) chan: Option<Channel<LuaValue>>,
    pub(crate) periodic: bool,
}

/// The registry key of the prelude's `make_lazy(t, kind)`, which gives a new methods table the
/// metatable that makes its declared methods on first use.
pub(crate) const MAKE_LAZY_KEY: &str = "gosim.make_lazy";

/// The methods table of a kind (`channel`, `semaphore`...), made on first use and kept in the
/// registry: the prelude fills it (its own methods, and declared ones on first use), and the
/// handles' `__index` reads it, whichever comes first.
pub(crate) fn methods_table(lua: &mlua::Lua, kind: &str) -> mlua::Result<mlua::Table> {
    let key = format!("gosim.methods.{kind}");
    match lua.named_registry_value::<Option<mlua::Table>>(&key)? {
        Some(t) => Ok(t),
        None => {
            let t = lua.create_table()?;
            if let Some(make_lazy) =
                lua.named_registry_value::<Option<mlua::Function>>(MAKE_LAZY_KEY)?
            {
                make_lazy.call::<()>((&t, kind))?;
            }
            lua.set_named_registry_value(&key, &t)?;
            Ok(t)
        }
    }
}

/// `UserData` for a handle: methods from the kind's Lua table, `tostring` from `$name` (anything
/// `Display`: the resource, `channel#3`, never an address).
macro_rules! handle {
    ($ty:ty, $kind:literal, |$this:ident| $name:expr) => {
        impl UserData for $ty {
            fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
                fields.add_meta_field_with("__index", |lua| methods_table(lua, $kind));
                fields.add_meta_field("__name", $kind);
            }

            fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
                methods.add_meta_method("__tostring", |_, $this, ()| Ok($name.to_string()));
            }
        }
    };
}

handle!(LuaChannel, "channel", |this| this.ch.resource());
handle!(LuaMutex, "mutex", |this| this.0.resource());
handle!(LuaRwMutex, "rwmutex", |this| this.0.resource());
handle!(LuaSemaphore, "semaphore", |this| this.0.resource());
handle!(LuaWeightedSemaphore, "weighted_semaphore", |this| this
    .0
    .resource());
handle!(LuaLatch, "latch", |this| this.0.resource());
handle!(LuaBarrier, "barrier", |this| this.0.resource());
handle!(LuaUpgradeableRwLock, "rwmutex_upgradeable", |this| this
    .0
    .resource());
handle!(LuaRLocker, "rlocker", |this| format!(
    "rlocker({})",
    this.0.resource()
));
handle!(LuaWaitGroup, "waitgroup", |this| this.0.resource());
handle!(LuaOnce, "once", |this| this.0.resource());
handle!(LuaAtomic, "atomic", |this| this.0.resource());
handle!(LuaCond, "cond", |this| this.cond.resource());
handle!(LuaContext, "context", |this| this.0.resource());
handle!(LuaTimer, "timer", |this| this.timer.resource());

/// An async handle (`goroutine.async`, `crate::patterns::JoinHandle`): the result is the
/// packed table of the function's results (`table.pack`), a failure its error message.
#[derive(Debug)]
pub(super) struct LuaAsync(pub(crate) crate::patterns::JoinHandle<Value>);

/// No methods; `h.id` is the goroutine's id, as the documentation promises.
impl UserData for LuaAsync {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "async handle");
        fields.add_field_method_get("id", |_, this| Ok(this.0.id().0 as i64));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("async({})", this.0.id().0))
        });
    }
}

/// A goroutine profiler handle.
#[derive(Debug)]
pub(super) struct LuaProfiler(pub(crate) crate::patterns::Profiler);
/// A channel inspector handle.
#[derive(Debug)]
pub(super) struct LuaInspector(
    pub(crate) crate::patterns::ChannelInspector<LuaValue>,
    pub(crate) ResourceRef,
);
/// A deadlock detector's Rust half (the periodic loop is Lua).
pub(super) struct LuaDetector(
    pub(crate) std::rc::Rc<crate::patterns::DeadlockDetector>,
    /// While started: what calls `on_deadlock` before a deadlock fails the run.
    pub(crate) RefCell<Option<std::rc::Rc<dyn crate::runtime::DeadlockReporter>>>,
);

impl std::fmt::Debug for LuaDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LuaDetector")
            .field(&self.0)
            .finish_non_exhaustive()
    }
}

handle!(LuaProfiler, "profiler", |_this| "profiler");

/// A broadcaster handle (seed 1.4).
#[derive(Debug)]
pub struct LuaBroadcaster(pub(crate) crate::patterns::Broadcaster<LuaValue>);
/// A subscriber of a broadcaster or of a pub/sub topic.
#[derive(Debug)]
pub struct LuaSubscriber(pub(crate) crate::patterns::Subscriber<LuaValue>);
/// A pub/sub hub handle (seed 4.1).
#[derive(Debug)]
pub struct LuaPubSub(pub(crate) crate::patterns::PubSub<LuaValue>);
/// A channel with an overflow strategy (seed 1.1).
#[derive(Debug)]
pub struct LuaOverflowChannel(pub(crate) crate::patterns::OverflowChannel<LuaValue>);
/// A priority channel handle (seed 1.2).
#[derive(Debug)]
pub struct LuaPriorityChannel(pub(crate) crate::patterns::PriorityChannel<LuaValue>);

handle!(LuaBroadcaster, "broadcaster", |this| this.0.resource());
handle!(LuaSubscriber, "subscriber", |this| this.0);
handle!(LuaPubSub, "pubsub", |this| this.0.resource());
handle!(LuaOverflowChannel, "overflow_channel", |this| this
    .0
    .channel()
    .resource());
handle!(LuaPriorityChannel, "priority_channel", |this| this
    .0
    .resource());
handle!(LuaInspector, "inspector", |this| format!(
    "inspector({})",
    this.1
));
handle!(LuaDetector, "detector", |_this| "deadlock_detector");

/// A request/reply handle (seed 4.2).
#[derive(Debug)]
pub struct LuaRequestReply(pub(crate) crate::patterns::RequestReply<LuaValue, LuaValue>);
handle!(LuaRequestReply, "request_reply", |this| this.0.resource());

/// A work queue handle (seed 4.3); its dead letters are Lua tables.
#[derive(Debug)]
pub struct LuaWorkQueue(pub(crate) crate::patterns::WorkQueue<LuaValue, LuaValue>);
handle!(LuaWorkQueue, "work_queue", |this| this.0.resource());

/// A Rust primitive or pattern that a Lua script can be handed (`LuaWorld::expose`): it becomes
/// the same handle the script would get from the `goroutine` module.
///
/// # Examples
///
/// ```
/// use gosim::lua::{LuaLimits, LuaWorld};
/// use gosim::runtime::{Config, Runtime};
/// use gosim::patterns::Latch;
///
/// let rt = Runtime::simulated(Config::default());
/// let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
/// let latch = Latch::new(&rt, 1, None); // a Rust pattern, handed to the script
/// world.expose("ready", latch.clone()).expect("exposed");
/// world.spawn_main("main.lua", "ready:count_down()").expect("compiles");
/// assert!(rt.run().is_pass());
/// assert_eq!(latch.count(), 0);
/// rt.shutdown();
/// ```
pub trait Exposable {
    /// The userdata behind the Lua handle.
    type Handle: UserData + 'static;
    /// Wraps the object (a clone of the same primitive) in its handle.
    fn into_handle(self) -> Self::Handle;
}

impl Exposable for Channel<LuaValue> {
    type Handle = LuaChannel;
    fn into_handle(self) -> LuaChannel {
        LuaChannel {
            ch: self,
            dir: Dir::Both,
            closable: true,
        }
    }
}

impl Exposable for crate::patterns::WeightedSemaphore {
    type Handle = LuaWeightedSemaphore;
    fn into_handle(self) -> LuaWeightedSemaphore {
        LuaWeightedSemaphore(self)
    }
}

impl Exposable for crate::patterns::Latch {
    type Handle = LuaLatch;
    fn into_handle(self) -> LuaLatch {
        LuaLatch(self)
    }
}

impl Exposable for crate::patterns::Barrier {
    type Handle = LuaBarrier;
    fn into_handle(self) -> LuaBarrier {
        LuaBarrier(self)
    }
}

impl Exposable for crate::patterns::UpgradeableRwLock {
    type Handle = LuaUpgradeableRwLock;
    fn into_handle(self) -> LuaUpgradeableRwLock {
        LuaUpgradeableRwLock(self)
    }
}

impl Exposable for crate::patterns::RequestReply<LuaValue, LuaValue> {
    type Handle = LuaRequestReply;
    fn into_handle(self) -> LuaRequestReply {
        LuaRequestReply(self)
    }
}

impl Exposable for crate::patterns::WorkQueue<LuaValue, LuaValue> {
    type Handle = LuaWorkQueue;
    fn into_handle(self) -> LuaWorkQueue {
        LuaWorkQueue(self)
    }
}

impl Exposable for crate::patterns::Broadcaster<LuaValue> {
    type Handle = LuaBroadcaster;
    fn into_handle(self) -> LuaBroadcaster {
        LuaBroadcaster(self)
    }
}

impl Exposable for crate::patterns::Subscriber<LuaValue> {
    type Handle = LuaSubscriber;
    fn into_handle(self) -> LuaSubscriber {
        LuaSubscriber(self)
    }
}

impl Exposable for crate::patterns::PubSub<LuaValue> {
    type Handle = LuaPubSub;
    fn into_handle(self) -> LuaPubSub {
        LuaPubSub(self)
    }
}

impl Exposable for crate::patterns::OverflowChannel<LuaValue> {
    type Handle = LuaOverflowChannel;
    fn into_handle(self) -> LuaOverflowChannel {
        LuaOverflowChannel(self)
    }
}

impl Exposable for crate::patterns::PriorityChannel<LuaValue> {
    type Handle = LuaPriorityChannel;
    fn into_handle(self) -> LuaPriorityChannel {
        LuaPriorityChannel(self)
    }
}

/// A rate limiter handle (seed 3.2).
#[derive(Debug)]
pub struct LuaRateLimiter(pub(crate) crate::patterns::RateLimiter);
/// A rate limiter's reservation.
#[derive(Debug)]
pub(super) struct LuaReservation(pub(crate) crate::patterns::Reservation);

handle!(LuaRateLimiter, "rate_limiter", |this| this.0.resource());
handle!(LuaReservation, "reservation", |_this| "reservation");

impl Exposable for crate::patterns::RateLimiter {
    type Handle = LuaRateLimiter;
    fn into_handle(self) -> LuaRateLimiter {
        LuaRateLimiter(self)
    }
}

/// A circuit breaker handle (seed 3.3).
#[derive(Debug)]
pub struct LuaCircuitBreaker(pub(crate) crate::patterns::CircuitBreaker);
/// A circuit breaker's permit: recorded once (then empty).
#[derive(Debug)]
pub(super) struct LuaPermit(pub(crate) RefCell<Option<crate::patterns::Permit>>);

handle!(LuaCircuitBreaker, "circuit_breaker", |this| this
    .0
    .resource());
handle!(LuaPermit, "permit", |_this| "permit");

impl Exposable for crate::patterns::CircuitBreaker {
    type Handle = LuaCircuitBreaker;
    fn into_handle(self) -> LuaCircuitBreaker {
        LuaCircuitBreaker(self)
    }
}

/// A retry policy handle (seed 3.5).
#[derive(Debug)]
pub struct LuaRetry(pub(crate) crate::patterns::Retry);

handle!(LuaRetry, "retry_policy", |this| this.0.resource());

impl Exposable for crate::patterns::Retry {
    type Handle = LuaRetry;
    fn into_handle(self) -> LuaRetry {
        LuaRetry(self)
    }
}

/// A bulkhead handle (seed 3.4).
#[derive(Debug)]
pub struct LuaBulkhead(pub(crate) crate::patterns::Bulkhead);

handle!(LuaBulkhead, "bulkhead", |this| this.0.resource());

impl Exposable for crate::patterns::Bulkhead {
    type Handle = LuaBulkhead;
    fn into_handle(self) -> LuaBulkhead {
        LuaBulkhead(self)
    }
}

/// Metrics of a `pipeline_with_metrics` pipeline (seed 2.4).
#[derive(Debug)]
pub struct LuaPipelineMetrics(pub(crate) crate::patterns::PipelineMetrics);
/// A dynamic pipeline handle (seed 2.5).
#[derive(Debug)]
pub struct LuaDynamicPipeline(pub(crate) crate::patterns::DynamicPipeline<LuaValue>);

handle!(
    LuaPipelineMetrics,
    "pipeline_metrics",
    |_this| "pipeline_metrics"
);
handle!(LuaDynamicPipeline, "dynamic_pipeline", |this| format!(
    "dynamic_pipeline({})",
    this.0.output().resource()
));

impl Exposable for crate::patterns::PipelineMetrics {
    type Handle = LuaPipelineMetrics;
    fn into_handle(self) -> LuaPipelineMetrics {
        LuaPipelineMetrics(self)
    }
}

impl Exposable for crate::patterns::DynamicPipeline<LuaValue> {
    type Handle = LuaDynamicPipeline;
    fn into_handle(self) -> LuaDynamicPipeline {
        LuaDynamicPipeline(self)
    }
}

/// A batch processor handle (seed 7.2); its loop is the prelude's.
#[derive(Debug)]
pub struct LuaBatchProcessor(pub(crate) crate::patterns::BatchProcessor<LuaValue>);
handle!(LuaBatchProcessor, "batch_processor", |this| this
    .0
    .resource());

impl Exposable for crate::patterns::BatchProcessor<LuaValue> {
    type Handle = LuaBatchProcessor;
    fn into_handle(self) -> LuaBatchProcessor {
        LuaBatchProcessor(self)
    }
}

/// A coalescing cache handle (seed 7.4): keys are Lua strings, numbers and booleans.
#[derive(Debug)]
pub struct LuaCoalescingCache(pub(crate) crate::patterns::CoalescingCache<LuaKey, LuaValue>);
handle!(LuaCoalescingCache, "coalescing_cache", |this| this
    .0
    .resource());

impl Exposable for crate::patterns::CoalescingCache<LuaKey, LuaValue> {
    type Handle = LuaCoalescingCache;
    fn into_handle(self) -> LuaCoalescingCache {
        LuaCoalescingCache(self)
    }
}

/// A Lua table key as an ordered Rust value (a coalescing cache's key): a float with an integral
/// value is the integer, as in a Lua table.
///
/// # Examples
///
/// ```
/// use gosim::lua::LuaKey;
/// use gosim::mlua::Value;
///
/// assert!(LuaKey::of(&Value::Integer(2)) == LuaKey::of(&Value::Number(2.0))); // as in a table
/// assert!(LuaKey::of(&Value::Nil).is_none());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LuaKey {
    /// `true` or `false`.
    Bool(bool),
    /// An integer (or an integral float).
    Int(i64),
    /// Another float (not NaN), ordered by its total order.
    Float(i64),
    /// A string's bytes.
    Str(Vec<u8>),
}

impl LuaKey {
    /// The key of a Lua value; `None` for nil, NaN, tables, functions and other references.
    pub fn of(v: &Value) -> Option<LuaKey> {
        match v {
            Value::Boolean(b) => Some(LuaKey::Bool(*b)),
            Value::Integer(i) => Some(LuaKey::Int(*i)),
            Value::Number(n) if n.is_nan() => None,
            Value::Number(n) if n.fract() == 0.0 && *n >= -9.2e18 && *n <= 9.2e18 => {
                Some(LuaKey::Int(*n as i64))
            }
            Value::Number(n) => {
                let b = n.to_bits() as i64;
                Some(LuaKey::Float(b ^ ((((b >> 63) as u64) >> 1) as i64)))
            }
            Value::String(s) => Some(LuaKey::Str(s.as_bytes().to_vec())),
            _ => None,
        }
    }

    /// Back to a Lua value (a Rust loader's argument).
    pub fn to_value(&self, lua: &mlua::Lua) -> Value {
        match self {
            LuaKey::Bool(b) => Value::Boolean(*b),
            LuaKey::Int(i) => Value::Integer(*i),
            LuaKey::Float(k) => {
                let b = k ^ ((((k >> 63) as u64) >> 1) as i64);
                Value::Number(f64::from_bits(b as u64))
            }
            LuaKey::Str(s) => lua
                .create_string(s)
                .map(Value::String)
                .unwrap_or(Value::Nil),
        }
    }
}

impl std::fmt::Debug for LuaKey {
    /// As traces show a key: `42`, `1.5`, `"user-1"` (at most 40 characters).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LuaKey::Bool(b) => write!(f, "{b}"),
            LuaKey::Int(i) => write!(f, "{i}"),
            LuaKey::Float(k) => {
                let b = k ^ ((((k >> 63) as u64) >> 1) as i64);
                write!(f, "{}", f64::from_bits(b as u64))
            }
            LuaKey::Str(s) => {
                let text = String::from_utf8_lossy(s);
                let short: String = text.chars().take(40).collect();
                write!(f, "{short:?}")
            }
        }
    }
}

/// A bounded-parallelism group handle (seed 7.1); its goroutines' loop is the prelude's.
#[derive(Debug)]
pub struct LuaBoundedParallel(pub(crate) crate::patterns::BoundedParallel<LuaValue>);
handle!(LuaBoundedParallel, "bounded_parallel", |this| this
    .0
    .resource());

impl Exposable for crate::patterns::BoundedParallel<LuaValue> {
    type Handle = LuaBoundedParallel;
    fn into_handle(self) -> LuaBoundedParallel {
        LuaBoundedParallel(self)
    }
}

/// A priority worker pool handle (seed 3.1); its workers' loop is the prelude's.
#[derive(Debug)]
pub struct LuaPriorityPool(pub(crate) crate::patterns::PriorityPool<LuaValue>);
handle!(LuaPriorityPool, "priority_worker_pool", |this| this
    .0
    .resource());

impl Exposable for crate::patterns::PriorityPool<LuaValue> {
    type Handle = LuaPriorityPool;
    fn into_handle(self) -> LuaPriorityPool {
        LuaPriorityPool(self)
    }
}

/// An adaptive worker pool handle (seed 7.3); its workers' loop is the prelude's.
#[derive(Debug)]
pub struct LuaAdaptivePool(pub(crate) crate::patterns::AdaptivePool<LuaValue>);
handle!(LuaAdaptivePool, "adaptive_pool", |this| this.0.resource());

impl Exposable for crate::patterns::AdaptivePool<LuaValue> {
    type Handle = LuaAdaptivePool;
    fn into_handle(self) -> LuaAdaptivePool {
        LuaAdaptivePool(self)
    }
}
