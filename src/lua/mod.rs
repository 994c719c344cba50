//! The Lua layer: the `goroutine`, `log` and `sim` modules on top of `crate::sync`, and Lua
//! coroutines as goroutines.
//!
//! How a blocking call works: the Lua shim (in `prelude.lua`) calls a Rust function, which does
//! the operation through `crate::sync`. If it completes, Rust takes the scheduling point at once
//! (`Runtime::schedule_point`) and, when the current goroutine may keep running, returns the
//! results directly: no coroutine switch at all. Otherwise Rust stores how to produce the results
//! (`Resume`) in the `Host` and returns the private PARK value; the shim yields the private TOKEN
//! to the scheduler, which resumes the coroutine later with those results. mlua cannot yield from
//! a Rust callback, and its async bridge costs several times more, hence this protocol.
//!
//! Nothing here schedules or decides: the bindings check arguments, call `crate::sync`, and
//! shape results (`value, ok` / `ok, err`, integers for counts).

mod api;
mod bind;
mod bridge;
mod capi;
mod guard;
mod host_fn;
mod objects;
mod raw;
mod reuse;
mod sandbox;
mod value;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use mlua::{Function, HookTriggers, Lua, MultiValue, Table, Thread, Value, VmState};

pub use api::declared_api;
pub use guard::set_memory_probe;
pub use objects::LuaKey;
pub use objects::{Dir, Exposable};
pub use sandbox::StdlibAccess;
pub use value::{LuaValue, describe};

use crate::runtime::{FailureKind, LimitKind, Runtime, TaskBody, TaskId, TaskStep};
use crate::sync::{RecvSlot, SelectWait, SendSlot, send_result};

/// The chunk name of the prelude; its frames are skipped when finding the user's line.
const PRELUDE_NAME: &str = "=[gosim]";

/// How often (in Lua instructions) the budget hook runs.
const HOOK_EVERY: u32 = 1_000;

/// Limits that belong to the Lua layer.
///
/// # Examples
///
/// ```
/// use gosim::lua::LuaLimits;
/// use gosim::scenario::{RunOptions, run_source};
///
/// let mut opts = RunOptions::with_seed(1);
/// opts.lua = LuaLimits { max_instructions: 10_000, ..LuaLimits::default() };
/// // A goroutine that never reaches a scheduling point hits the instruction budget.
/// let report = run_source("spin.lua", "while true do end", &opts).expect("compiles");
/// assert_eq!(report.outcome.word(), "limit");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaLimits {
    /// Lua heap limit in bytes.
    pub max_memory: usize,
    /// Instructions a goroutine may run without a scheduling point (0: no limit, and no hook).
    pub max_instructions: u64,
    /// Standard libraries a production run gives scripts beyond the sandbox (`io`, all of `os`);
    /// none by default, and refused in a simulation (see `StdlibAccess`).
    pub allow_stdlib: StdlibAccess,
}

impl Default for LuaLimits {
    fn default() -> LuaLimits {
        LuaLimits {
            max_memory: 2048 * 1024 * 1024,
            max_instructions: 100_000_000,
            allow_stdlib: StdlibAccess::default(),
        }
    }
}

/// How a parked goroutine's results are produced when it resumes. Every parked goroutine keeps
/// one, so the rare shapes are boxed: the enum is 48 bytes, not 120.
pub(crate) enum Resume {
    /// First run: the entry function's arguments.
    Start(Box<MultiValue>),
    /// First run: the entry function's `n` arguments are already on the coroutine's stack
    /// (`capi`'s spawn moved them there).
    Started(i32),
    /// The operation completed before the switch: these two values.
    Two(Box<(Value, Value)>),
    /// A receive that completed before the switch: `v, ok`.
    Got(Value, bool),
    /// A receive: `v, true` or `nil, false`.
    Recv(RecvSlot<LuaValue>),
    /// A send: `true` or `false, "send on closed channel"`.
    Send(SendSlot<LuaValue>),
    /// A select: `index, value, ok` (index into the user's case array).
    Select(Box<(SelectWait<LuaValue>, Vec<usize>)>),
    /// Nothing to return (a sleep, a granted lock, a wait group).
    Nothing,
    /// One value.
    One(Value),
    /// Three values (a select that completed before the switch).
    Three(Box<(Value, Value, Value)>),
    /// A Rust future driven by a binding (`bridge`): polled before the coroutine resumes.
    Future(Box<dyn bridge::PendingOp>),
}

/// State shared by every binding of one Lua state: the runtime, the sentinels, the resume slot
/// of the running goroutine, and the Lua-side limits.
pub(crate) struct Host {
    /// This host, for code that has only a reference and makes a goroutine (which keeps an
    /// `Rc<Host>`): the C functions of `capi`.
    me: std::rc::Weak<Host>,
    pub(crate) rt: Runtime,
    resume: RefCell<Option<Resume>>,
    pub(crate) park: Value,
    pub(crate) misuse: Value,
    failed: Value,
    /// What a goroutine yields to the scheduler when it parks (private to gosim).
    token: Value,
    pub(crate) closed_msg: Value,
    pub(crate) entry: RefCell<Option<Function>>,
    /// The prelude's `where(thread)`: the user line where a suspended goroutine stopped. Read
    /// only for reports, so parking costs nothing.
    pub(crate) where_fn: RefCell<Option<Function>>,
    /// Set while a report reads a goroutine's line (`where_fn`): that Lua code runs outside any
    /// goroutine, while the scheduler builds the report, so the budget hook must not charge it
    /// (ending the run from inside the report builder would re-enter the scheduler).
    reporting: Cell<bool>,
    pub(crate) instructions: Cell<u64>,
    limits: LuaLimits,
    pub(crate) sometimes: RefCell<BTreeMap<String, bool>>,
    pub(crate) weak_lua: mlua::WeakLua,
    /// Finished coroutines kept for reuse: `Thread::reset` costs a fraction of a new thread.
    free_threads: RefCell<Vec<Thread>>,
    /// The exact error the prelude's `assert` (or `sim.assert_always`) last raised in the running
    /// goroutine (`raw.assertion`). At the end of each slice it moves to that goroutine's
    /// `LuaTask`, which calls a failure an assertion only if its message begins with it: what
    /// raised the error decides, not its words (a user's `error("assertion failed")` is an error).
    assertion: RefCell<Option<String>>,
    /// The whole-run memory limit (`guard.rs`).
    pub(crate) memory: guard::MemoryWatch,
}

/// How many finished coroutines are kept for reuse.
const FREE_THREADS_MAX: usize = 4096;

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl Host {
    /// Takes the scheduling point after a completed operation: returns its results if the
    /// goroutine keeps running, or PARK with the results kept for the resume.
    pub(crate) fn finish(&self, a: Value, b: Value) -> (Value, Value) {
        self.instructions.set(0);
        self.memory.check(&self.rt);
        if self.rt.schedule_point() {
            (a, b)
        } else {
            self.park_with(Resume::Two(Box::new((a, b))))
        }
    }

    /// `finish` for operations with three results (select).
    pub(crate) fn finish3(&self, a: Value, b: Value, c: Value) -> (Value, Value, Value) {
        self.instructions.set(0);
        if self.rt.schedule_point() {
            (a, b, c)
        } else {
            let (p, _) = self.park_with(Resume::Three(Box::new((a, b, c))));
            (p, Value::Nil, Value::Nil)
        }
    }

    /// For operations that either complete now or park until granted (a lock handed over, a wait
    /// group reaching zero): the scheduling point, or the park with nothing to return.
    pub(crate) fn granted_or_parked(&self, done_now: bool) -> (Value, Value) {
        if done_now {
            self.finish(Value::Nil, Value::Nil)
        } else {
            self.park_with(Resume::Nothing)
        }
    }

    /// Parks the current goroutine (it has blocked, or was switched away) until it resumes
    /// with `resume`'s results.
    pub(crate) fn park_with(&self, resume: Resume) -> (Value, Value) {
        self.park(resume);
        (self.park.clone(), Value::Nil)
    }

    /// `park_with` for the C functions (`capi`), which yield themselves: no PARK value.
    pub(crate) fn park(&self, resume: Resume) {
        self.memory.check(&self.rt);
        let previous = self.resume.borrow_mut().replace(resume);
        debug_assert!(previous.is_none(), "one pending resume per goroutine");
    }

    /// A misuse error, raised by the shim at the user's line.
    pub(crate) fn misuse(&self, lua: &Lua, msg: String) -> (Value, Value) {
        let msg = lua
            .create_string(msg)
            .map(Value::String)
            .unwrap_or(Value::Nil);
        (self.misuse.clone(), msg)
    }

    /// `misuse` for bindings with three result slots.
    pub(crate) fn misuse3(&self, lua: &Lua, msg: String) -> (Value, Value, Value) {
        let (a, b) = self.misuse(lua, msg);
        (a, b, Value::Nil)
    }

    /// Creates a goroutine running `f(args...)`.
    pub(crate) fn spawn(
        self: &Rc<Self>,
        lua: &Lua,
        f: Value,
        name: Option<&str>,
        daemon: bool,
        args: MultiValue,
    ) -> mlua::Result<Option<TaskId>> {
        if !guard::may_spawn_lua_goroutine(&self.rt) {
            return Ok(None);
        }
        let thread = self.new_thread(lua)?;
        let mut start = MultiValue::with_capacity(args.len() + 1);
        start.push_back(f);
        start.extend(args);
        Ok(self.spawn_on(thread, Resume::Start(Box::new(start)), name, daemon))
    }

    /// A coroutine whose body is the goroutine entry, not started: a finished one reset, or a
    /// new one.
    pub(crate) fn new_thread(&self, lua: &Lua) -> mlua::Result<Thread> {
        let entry = self
            .entry
            .borrow()
            .clone()
            .expect("the prelude sets the goroutine entry");
        let recycled = self.free_threads.borrow_mut().pop();
        match recycled {
            Some(t) => {
                t.reset(entry)?;
                Ok(t)
            }
            None => lua.create_thread(entry),
        }
    }

    /// Makes `thread` a goroutine that starts with `start`.
    pub(crate) fn spawn_on(
        &self,
        thread: Thread,
        start: Resume,
        name: Option<&str>,
        daemon: bool,
    ) -> Option<TaskId> {
        let body = LuaTask {
            host: self.me.upgrade().expect("a host in use is alive"),
            thread: Some(thread),
            pending: Some(start),
            assertion: None,
        };
        self.rt.spawn(name, daemon, Box::new(body))
    }
}

/// The Lua layer spawns Rust tasks too: the forwarders of `fan_in`/`fan_out`, which run no user
/// code, are `crate::patterns`' own tasks.
impl crate::patterns::Spawn for Host {
    fn spawn_boxed(&self, name: Option<&str>, task: crate::patterns::LocalTask) -> Option<TaskId> {
        let task = Box::pin(WithoutRustLines {
            inner: task,
            rt: self.rt.clone(),
        });
        crate::patterns::spawn_future(&self.rt, name, false, task)
    }
}

/// A Rust task of a Lua run that forgets, whenever it parks, the Rust line its operation
/// recorded: a Lua scenario's reports name Lua lines only, and such a task has none (as when it
/// was prelude code).
struct WithoutRustLines {
    inner: crate::patterns::LocalTask,
    rt: Runtime,
}

impl Future for WithoutRustLines {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let polled = self.inner.as_mut().poll(cx);
        if polled.is_pending() {
            self.rt.set_location(self.rt.current(), None);
        }
        polled
    }
}

/// The source line of the innermost user frame (skipping Rust and prelude frames).
pub(crate) fn caller_location(lua: &Lua) -> Option<Rc<str>> {
    for level in 1..24 {
        let found = lua.inspect_stack(level, |d| {
            let src = d.source();
            if src.what == "C" || matches!(src.source.as_deref(), Some(PRELUDE_NAME | "=?")) {
                return None;
            }
            let line = d.current_line()?;
            Some(format!(
                "{}:{line}",
                src.short_src.as_deref().unwrap_or("?")
            ))
        });
        match found {
            None => return None,
            Some(None) => continue,
            Some(Some(loc)) => return Some(Rc::from(loc)),
        }
    }
    None
}

/// A goroutine whose body is a Lua coroutine.
struct LuaTask {
    host: Rc<Host>,
    /// `None` once finished and handed back for reuse.
    thread: Option<Thread>,
    pending: Option<Resume>,
    /// The last assertion error this goroutine raised (see `Host::assertion`).
    assertion: Option<String>,
}

impl LuaTask {
    /// Resumes the coroutine with the results its pending operation produced (through the C
    /// API: `capi::resume`).
    fn resume(&mut self) -> capi::Resumed {
        let host = &self.host;
        let t = self
            .thread
            .as_ref()
            .expect("a runnable goroutine has its coroutine");
        let pending = self
            .pending
            .take()
            .expect("a parked goroutine knows how to resume");
        let go = |args: &[Value]| capi::resume(host, t, args);
        match pending {
            Resume::Start(args) => {
                let args: Vec<Value> = args.into_iter().collect();
                go(&args)
            }
            Resume::Got(v, ok) => go(&[v, Value::Boolean(ok)]),
            Resume::Started(n) => capi::resume_with(host, t, n),
            Resume::Two(ab) => {
                let (a, b) = *ab;
                go(&[a, b])
            }
            Resume::One(v) => go(&[v]),
            Resume::Three(abc) => {
                let (a, b, c) = *abc;
                go(&[a, b, c])
            }
            Resume::Nothing => go(&[]),
            Resume::Recv(slot) => match slot
                .borrow_mut()
                .take()
                .expect("a woken receiver has a result")
            {
                Some(v) => go(&[v.0, Value::Boolean(true)]),
                None => go(&[Value::Nil, Value::Boolean(false)]),
            },
            Resume::Send(slot) => match send_result(&slot) {
                Ok(()) => go(&[Value::Boolean(true)]),
                Err(_) => go(&[Value::Boolean(false), host.closed_msg.clone()]),
            },
            Resume::Select(select) => {
                let (wait, map) = *select;
                let (a, b, c) = bind::select::select_values(host, wait.finish(), &map);
                go(&[a, b, c])
            }
            Resume::Future(_) => unreachable!("a pending future is polled before the resume"),
        }
    }
}

impl LuaTask {
    /// The failure step for an uncaught error: an assertion if its message begins with the
    /// assertion error this goroutine raised last, else an error; located at the `file:line`
    /// that begins Lua's message.
    fn failed(&mut self, message: String) -> TaskStep {
        let assertion = self
            .assertion
            .take()
            .is_some_and(|raised| message.starts_with(&raised));
        let kind = if assertion {
            FailureKind::Assertion
        } else {
            FailureKind::Error
        };
        TaskStep::Failed {
            kind,
            location: location_of_error(&message),
            message,
        }
    }
}

impl TaskBody for LuaTask {
    fn run(&mut self, rt: &Runtime) -> TaskStep {
        self.host.instructions.set(0);
        if matches!(self.pending, Some(Resume::Future(_))) {
            let Some(Resume::Future(mut op)) = self.pending.take() else {
                unreachable!("checked above");
            };
            let Some(lua) = self.host.weak_lua.try_upgrade() else {
                return self.failed("gosim: the Lua state is gone".to_string());
            };
            match op.poll(&lua) {
                Some(abc) => self.pending = Some(Resume::Three(Box::new(abc))),
                None if self.host.has_parked() => {
                    self.pending = Some(Resume::Future(op));
                    return TaskStep::Parked;
                }
                None => return self.failed(bridge::NOT_A_GOSIM_FUTURE.to_string()),
            }
        }
        let resumed = self.resume();
        if let Some(raised) = self.host.assertion.take() {
            self.assertion = Some(raised);
        }
        match resumed {
            capi::Resumed::Yielded => {
                let pending = self.host.resume.borrow_mut().take();
                match pending {
                    Some(r) => {
                        self.pending = Some(r);
                        TaskStep::Parked
                    }
                    None => self.failed(
                        "coroutine.yield called outside a coroutine: a goroutine gives up control only \
                         through goroutine.* calls (use goroutine.yield())"
                            .to_string(),
                    ),
                }
            }
            capi::Resumed::Finished(Some(error)) => {
                let message = describe_error_value(&error);
                // Lua does not call message handlers for memory errors: recognise them here.
                if message.starts_with("not enough memory") {
                    rt.hit_limit(LimitKind::Memory, memory_message(&self.host), None);
                }
                guard::classify_failure(rt, &message);
                self.failed(message)
            }
            capi::Resumed::Finished(None) => {
                let mut free = self.host.free_threads.borrow_mut();
                if free.len() < FREE_THREADS_MAX {
                    free.extend(self.thread.take());
                }
                TaskStep::Finished
            }
            capi::Resumed::Error { message, memory } => {
                if memory {
                    rt.hit_limit(LimitKind::Memory, memory_message(&self.host), None);
                }
                guard::classify_failure(rt, &message);
                self.failed(message)
            }
        }
    }

    fn location(&self) -> Option<String> {
        let f = self.host.where_fn.borrow().clone()?;
        let thread = self.thread.clone()?;
        self.host.reporting.set(true);
        let line = f.call::<Option<String>>(thread).ok().flatten();
        self.host.reporting.set(false);
        line
    }
}

fn describe_error_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        other => describe(other),
    }
}

/// The `file:line` at the start of a Lua error message (`x.lua:12: boom`), to group failures.
fn location_of_error(message: &str) -> Option<String> {
    let first = message.lines().next()?;
    let first = first.strip_prefix("runtime error: ").unwrap_or(first);
    let mut parts = first.splitn(3, ':');
    let file = parts.next()?;
    let line = parts.next()?;
    if file.is_empty() || line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("{file}:{line}"))
}

fn memory_message(host: &Host) -> String {
    format!(
        "the Lua heap reached its limit of {} MB",
        host.limits.max_memory / (1024 * 1024)
    )
}

/// Why a scenario could not be loaded.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, run_source};
///
/// let err = run_source("bad.lua", "local = 1", &RunOptions::default()).unwrap_err();
/// assert!(err.0.contains("bad.lua")); // the compile error names the chunk
/// ```
#[derive(Debug, Clone)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// One Lua state wired to one runtime handle. A world serves one run after another when its
/// runtime is restarted (`Runtime::restart`) and `reset` between them; a run cannot tell a reused
/// world from a new one (see `reuse.rs`, and docs/ARCHITECTURE.md).
///
/// # Examples
///
/// ```
/// use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
/// use gosim::runtime::{Config, Runtime};
/// use gosim::sim::Sim;
/// use gosim::sync::Channel;
///
/// let rt = Runtime::simulated(Config { seed: 1, ..Config::default() });
/// let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
/// let results: Channel<LuaValue> = Channel::new(&rt, 1, None);
/// world.expose_channel("results", &results).expect("exposed"); // a global of the script
/// world.spawn_main("main.lua", "results:send(6 * 7)").expect("compiles");
/// let sum = Sim::on(&rt).spawn("rust", async move { results.recv().await });
/// let outcome = rt.run();
/// assert!(outcome.is_pass(), "{outcome}");
/// rt.shutdown();
/// drop(sum);
/// ```
#[derive(Debug)]
pub struct LuaWorld {
    lua: Lua,
    host: Rc<Host>,
    pristine: reuse::Pristine,
    /// The last main chunk compiled: `(chunk name, source, function)`.
    main: RefCell<Option<(String, String, Function)>>,
}

impl LuaWorld {
    /// A fresh Lua state with the `goroutine`, `log` and `sim` modules installed on `rt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::lua::{LuaLimits, LuaWorld};
    /// use gosim::runtime::{Config, Runtime};
    ///
    /// let rt = Runtime::simulated(Config { seed: 3, ..Config::default() });
    /// let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
    /// world.spawn_main("main.lua", "goroutine.sleep(5)").expect("compiles");
    /// assert!(rt.run().is_pass());
    /// assert_eq!(rt.now(), 5_000_000);
    /// rt.shutdown();
    /// ```
    pub fn new(rt: &Runtime, limits: LuaLimits) -> Result<LuaWorld, LoadError> {
        limits.allow_stdlib.check(rt.is_simulated())?;
        let world =
            build(rt, limits).map_err(|e| LoadError(format!("gosim: cannot set up Lua: {e}")))?;
        world
            .pristine
            .settle_heap(&world.lua)
            .and_then(|()| world.pristine.install_fresh_globals(&world.lua))
            .map_err(|e| LoadError(format!("gosim: cannot set up Lua: {e}")))?;
        Ok(world)
    }

    /// Makes the world ready for another run on its runtime handle, which the caller has
    /// restarted (`Runtime::restart`: the previous run's goroutines are gone): new globals
    /// copied from the pristine ones, the string metatable and `package.loaded` reset, the heap
    /// collected, the limits' accounting and the per-run state of the bindings cleared. Globals
    /// set since the world was built (objects given with `expose`, host functions) belong to the
    /// previous run's globals and are not carried over: set them again.
    pub fn reset(&self) -> Result<(), LoadError> {
        self.reset_for(None)
    }

    /// `reset`, with the main chunk `source` (named `chunk_name`) compiled, or taken from the
    /// world's cache, before the heap is settled: `spawn_main` with the same name and source then
    /// spawns it without compiling, and the compiled chunk is part of every run's heap alike.
    /// A syntax error is returned as by `spawn_main`.
    pub fn reset_for_main(&self, chunk_name: &str, source: &str) -> Result<(), LoadError> {
        self.reset_for(Some((chunk_name, source)))
    }

    fn reset_for(&self, main: Option<(&str, &str)>) -> Result<(), LoadError> {
        let host = &self.host;
        host.resume.borrow_mut().take();
        host.instructions.set(0);
        host.sometimes.borrow_mut().clear();
        host.free_threads.borrow_mut().clear();
        host.assertion.borrow_mut().take();
        sandbox::clear_run_flags(&self.lua);
        bind::pool::clear_run_state(&self.lua);
        let failed = |e: mlua::Error| LoadError(format!("gosim: cannot reset the Lua state: {e}"));
        self.pristine
            .install_fresh_globals(&self.lua)
            .map_err(failed)?;
        if let Some((name, source)) = main {
            self.main_chunk(name, source)?;
        }
        self.pristine.settle_heap(&self.lua).map_err(failed)?;
        host.memory.restart();
        host.instructions.set(0);
        capi::restart_hook_count(&self.lua).map_err(failed)
    }

    /// The compiled main chunk for `source`, from the cache or compiled now, with its `_ENV`
    /// bound to the current globals.
    fn main_chunk(&self, chunk_name: &str, source: &str) -> Result<Function, LoadError> {
        let mut cached = self.main.borrow_mut();
        let f = match &*cached {
            Some((n, s, f)) if n == chunk_name && s == source => f.clone(),
            _ => {
                // The old chunk goes first: its memory is garbage for the coming collection.
                *cached = None;
                let f = self
                    .lua
                    .load(source)
                    .set_name(format!("@{chunk_name}"))
                    .into_function()
                    .map_err(|e| LoadError(syntax_message(&e)))?;
                *cached = Some((chunk_name.to_string(), source.to_string(), f.clone()));
                f
            }
        };
        f.set_environment(self.lua.globals())
            .map_err(|e| LoadError(format!("gosim: cannot start main: {e}")))?;
        Ok(f)
    }

    /// The Lua state (for embedding and tests).
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Compiles `source` (named `chunk_name`, e.g. the file path) and spawns it as the main
    /// goroutine. A syntax error is returned with its `file:line`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::lua::{LuaLimits, LuaWorld};
    /// use gosim::runtime::{Config, Runtime, TaskId};
    ///
    /// let rt = Runtime::simulated(Config::default());
    /// let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
    /// let id = world.spawn_main("main.lua", "log.info('hello')").expect("compiles");
    /// assert_eq!(id, TaskId::MAIN);
    /// assert!(world.spawn_main("bad.lua", "local = ").is_err()); // a compile error names the chunk
    /// assert!(rt.run().is_pass());
    /// rt.shutdown();
    /// ```
    pub fn spawn_main(&self, chunk_name: &str, source: &str) -> Result<TaskId, LoadError> {
        let f = self.main_chunk(chunk_name, source)?;
        match self.host.spawn(
            &self.lua,
            Value::Function(f),
            Some("main"),
            false,
            MultiValue::new(),
        ) {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(LoadError("gosim: cannot start main".to_string())),
            Err(e) => Err(LoadError(format!("gosim: cannot start main: {e}"))),
        }
    }

    /// The Rust channel behind a Lua channel handle (a channel a script passed to a Rust task),
    /// or `None` if the value is not a channel.
    pub fn channel_of(value: &Value) -> Option<crate::sync::Channel<LuaValue>> {
        match value {
            Value::UserData(ud) => ud
                .borrow::<objects::LuaChannel>()
                .ok()
                .map(|c| c.ch.clone()),
            _ => None,
        }
    }

    /// Makes a channel created in Rust a Lua global: Rust tasks and Lua goroutines of the same
    /// run then talk over it (Rust sends and receives `LuaValue`s).
    pub fn expose_channel(
        &self,
        name: &str,
        ch: &crate::sync::Channel<LuaValue>,
    ) -> Result<(), LoadError> {
        self.expose(name, ch.clone())
    }

    /// Makes a primitive or pattern created in Rust a Lua global, with its usual Lua methods: one
    /// object shared by Rust tasks and Lua goroutines of the same run.
    pub fn expose<T: Exposable>(&self, name: &str, object: T) -> Result<(), LoadError> {
        self.lua
            .create_userdata(object.into_handle())
            .and_then(|ud| self.lua.globals().set(name, ud))
            .map_err(|e| LoadError(format!("gosim: cannot expose {name}: {e}")))
    }

    /// `sim.assert_sometimes` results: for each message, whether it was ever true.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::lua::{LuaLimits, LuaWorld};
    /// use gosim::runtime::{Config, Runtime};
    ///
    /// let rt = Runtime::simulated(Config::default());
    /// let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
    /// world.spawn_main("main.lua", "sim.assert_sometimes(true, 'reached')").expect("compiles");
    /// assert!(rt.run().is_pass());
    /// assert_eq!(world.sometimes().get("reached"), Some(&true));
    /// rt.shutdown();
    /// ```
    pub fn sometimes(&self) -> BTreeMap<String, bool> {
        self.host.sometimes.borrow().clone()
    }
}

fn syntax_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => format!("syntax error: {message}"),
        other => other.to_string(),
    }
}

/// The prelude compiled once per process: parsing it costs more than creating the Lua state, and
/// `explore` creates a state per run. The bytes depend only on the source and the Lua build.
/// Stripped of debug information (loading it is then a third cheaper): prelude frames carry no
/// line numbers, and are recognised by their source `=?`.
fn prelude_bytecode(lua: &Lua) -> mlua::Result<&'static [u8]> {
    static BYTECODE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    if let Some(b) = BYTECODE.get() {
        return Ok(b);
    }
    let f = lua
        .load(include_str!("prelude.lua"))
        .set_name(PRELUDE_NAME)
        .into_function()?;
    Ok(BYTECODE.get_or_init(|| f.dump(true)))
}

fn build(rt: &Runtime, limits: LuaLimits) -> mlua::Result<LuaWorld> {
    crate::sync::set_detail_hook(value::trace_detail);
    let lua = capi::new_state();
    let sentinel = |name: &str| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        let mt = lua.create_table()?;
        mt.set("__name", format!("gosim.{name}"))?;
        mt.set("__metatable", false)?;
        t.set_metatable(Some(mt))?;
        Ok(Value::Table(t))
    };
    let (park, misuse, failed, token) = (
        sentinel("park")?,
        sentinel("misuse")?,
        sentinel("failed")?,
        sentinel("token")?,
    );
    let closed_msg = Value::String(lua.create_string("send on closed channel")?);
    let host = Rc::new_cyclic(|me| Host {
        me: me.clone(),
        rt: rt.clone(),
        resume: RefCell::new(None),
        park,
        misuse,
        failed,
        token,
        closed_msg,
        entry: RefCell::new(None),
        where_fn: RefCell::new(None),
        reporting: Cell::new(false),
        instructions: Cell::new(0),
        limits: limits.clone(),
        sometimes: RefCell::new(BTreeMap::new()),
        weak_lua: lua.weak(),
        free_threads: RefCell::new(Vec::new()),
        assertion: RefCell::new(None),
        memory: guard::MemoryWatch::new(limits.max_memory),
    });
    let token = host.token.clone();

    // `methods.<kind>`: each kind's methods table, made on first use (see `objects::methods_table`).
    let methods = lua.create_table()?;
    let by_kind = lua.create_table()?;
    by_kind.set(
        "__index",
        lua.create_function(|lua, (t, kind): (Table, String)| {
            let m = objects::methods_table(lua, &kind)?;
            t.raw_set(kind, &m)?;
            Ok(m)
        })?,
    )?;
    methods.set_metatable(Some(by_kind))?;
    // Kept for `declared_api`, which lists the methods the prelude defines in Lua.
    lua.set_named_registry_value(api::METHODS_KEY, &methods)?;
    let raw = raw::raw_table(&lua, &host)?;
    install_assertion_record(&lua, &raw, &host)?;
    sandbox::extend_raw(&lua, &host, &raw)?;
    sandbox::install_stdlib_overrides(&lua, &host)?;
    host_fn::remember_shim_args(&lua, &token)?;

    let prelude = lua
        .load(prelude_bytecode(&lua)?)
        .set_name(PRELUDE_NAME)
        .set_mode(mlua::chunk::ChunkMode::Binary);
    let (goroutine, log, sim, force): (Table, Table, Table, Function) = prelude.call((
        raw,
        token,
        host.park.clone(),
        host.misuse.clone(),
        host.failed.clone(),
        methods,
    ))?;
    // Every declared binding now in the prelude's private lazy tables and the methods tables
    // (see `reuse.rs`): no run grows a table that outlives it. The public module tables stay
    // lazy: each run fills its own copies, as the first run of a new world does. Names starting
    // with `_` stay lazy in methods tables too (the prelude hides some of them).
    for (owner, name) in bind::declared_names() {
        let public = !matches!(owner, "goroutine" | "log" | "sim") && !name.starts_with('_');
        force.call::<()>((owner, name, public))?;
    }
    let globals = lua.globals();
    globals.set("goroutine", &goroutine)?;
    globals.set("log", &log)?;
    globals.set("sim", &sim)?;
    let loaded: Table = globals.get::<Table>("package")?.get("loaded")?;
    loaded.set("goroutine", goroutine)?;
    loaded.set("log", log)?;
    loaded.set("sim", sim)?;
    let pristine = reuse::Pristine::new(&lua)?;
    globals.set("debug", Value::Nil)?;
    loaded.set("debug", Value::Nil)?;

    lua.set_memory_limit(limits.max_memory)?;
    if limits.max_instructions > 0 {
        install_budget_hook(&lua, &host)?;
    }
    Ok(LuaWorld {
        lua,
        host,
        pristine,
        main: RefCell::new(None),
    })
}

/// `raw.assertion(text)`: the prelude's `assert` and `sim.assert_always` record the exact error
/// they are about to raise (see `Host::assertion`).
fn install_assertion_record(lua: &Lua, raw: &Table, host: &Rc<Host>) -> mlua::Result<()> {
    let h = host.clone();
    let record = lua.create_function(move |_, text: String| {
        *h.assertion.borrow_mut() = Some(text);
        Ok(())
    })?;
    raw.set("assertion", record)
}

/// The instruction budget: a count hook that ends the run when a goroutine runs more than
/// `max_instructions` without a scheduling point. It never preempts (plain Lua code between two
/// calls runs uninterrupted), it only stops runaway code. Lua's count hook slows every
/// instruction, so `max_instructions = 0` leaves it out altogether.
fn install_budget_hook(lua: &Lua, host: &Rc<Host>) -> mlua::Result<()> {
    let hook_host = Rc::downgrade(host);
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |lua, debug| {
            let Some(host) = hook_host.upgrade() else {
                // The run's world is dropped: Lua code still running now (a `__close` run while
                // the state closes) belongs to no run, and must not loop unstopped.
                return Err(mlua::Error::runtime("gosim: the run is over"));
            };
            if host.reporting.get() {
                // A bounded walk of a suspended goroutine's frames for a report (see `reporting`).
                return Ok(VmState::Continue);
            }
            let n = host.instructions.get() + HOOK_EVERY as u64;
            host.instructions.set(n);
            host.memory.check(&host.rt);
            if n <= host.limits.max_instructions && !host.rt.is_over() {
                return Ok(VmState::Continue);
            }
            if host.rt.is_over() {
                // The limit was hit and its error caught: raise again. Every catch (pcall, resume,
                // close, load) raises it again once the run is over (prelude), and a yield would
                // be ignored where Lua cannot yield (a sort comparator, a metamethod).
                return Err(mlua::Error::runtime(
                    "gosim: the run is over (a limit was hit)",
                ));
            }
            let src = debug.source();
            let here = match (src.source.as_deref(), debug.current_line()) {
                (Some(s), Some(line)) if !s.starts_with('=') => Some(format!(
                    "{}:{line}",
                    src.short_src.as_deref().unwrap_or("?")
                )),
                _ => caller_location(lua).map(|l| l.to_string()),
            };
            let message = format!(
                "more than {} Lua instructions without a scheduling point",
                host.limits.max_instructions
            );
            host.rt.hit_limit(LimitKind::Instructions, message, here);
            Err(mlua::Error::runtime("gosim: instruction limit reached"))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_locations_are_parsed() {
        assert_eq!(
            location_of_error("x.lua:12: boom").as_deref(),
            Some("x.lua:12")
        );
        assert_eq!(
            location_of_error("runtime error: a/b.lua:3: x").as_deref(),
            Some("a/b.lua:3")
        );
        assert_eq!(location_of_error("boom"), None);
    }
}
