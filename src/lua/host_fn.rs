//! Host functions: Rust functions a program embedding gosim gives its Lua scripts (issue 13), so
//! that the same script can call a simulated service in tests and the real one in production.
//!
//! `LuaWorld::register_async(name, f)` makes a global Lua function whose call runs the future
//! `f(args)` through the same bridge as every blocking binding (`Host::drive`, `lua::bridge`): it
//! is polled once at the call; if it completes, its values go straight back to Lua; if not, the
//! goroutine parks (on whatever gosim operation the future awaits: a sleep, a channel, a lock) and
//! the future is polled again before the coroutine resumes. Other goroutines run meanwhile, so
//! three calls with 100, 200 and 300 ms of simulated latency end together at 300 ms.
//!
//! What this file adds to the bridge, through `HostCall`, a wrapper around the host's future:
//! - in production mode a foreign future (tokio I/O) gets a waker that queues the goroutine for
//!   the scheduler, and the goroutine parks as "external" (`Runtime::block_external`), exactly as a
//!   Rust task does (`patterns::spawn_future`); in a simulation, such a future fails the run with
//!   a message naming the host function, since nothing in a simulation could ever wake it;
//! - a completed call is a scheduling point (after its effect, like every blocking call);
//! - a panic in the host's code fails the run as `FAIL (panic)` instead of unwinding through Lua.
//!
//! The Lua side is a small shim (`SHIM_LUA`) with the prelude's protocol: the Rust function answers
//! `PARK` (yield the private token to the scheduler, which resumes with the answer), `MISUSE,
//! message` (raise it, prefixed with the innermost user frame's `file:line`: found only on error,
//! and after a park too, since the coroutine is running again then), `n, v1, v2` for up to two
//! results, or `true, {n = k, ...}` for more (a host function may return any number of values,
//! more than the three slots of a bridged call; a table only when needed). Its frames carry the
//! prelude's chunk name, so reports and errors skip them and name the user's line.
//!
//! Observability: each call leaves a `host-call name(args)` event, and an async call a
//! `host-return name` event when its goroutine gets the answer; while a call is in flight, the
//! goroutine's location in deadlock and leak reports reads `x.lua:12 (in host function fetch)`;
//! a host future waiting on a gosim lock is in the wait-for graph like any other lock wait.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mlua::{Function, Lua, MultiValue, Table, Thread, Value};

use super::bind::{Out, string};
use super::{Host, LoadError, LuaWorld, PRELUDE_NAME, caller_location, describe};
use crate::runtime::{Failure, FailureKind, Runtime, Subject, TaskState};

/// The named registry value holding `{TOKEN, coroutine.yield, table.unpack, debug.getinfo}` as
/// they were when the state was built (before any user code could replace the globals, and while
/// `debug` still exists).
const SHIM_ARGS_KEY: &str = "gosim.host_fn.shim_args";

/// The Lua half of a host function (see the module comment). Arguments: PARK, MISUSE, TOKEN,
/// yield, unpack, getinfo; the result wraps one Rust function.
const SHIM_LUA: &str = r#"
local PARK, MISUSE, TOKEN, yield, unpack, getinfo = ...
local error = error
local GOSIM = { ["=[gosim]"] = true, ["=?"] = true }
-- The innermost user frame's `file:line: ` (skipping C, this shim and the prelude).
local function where()
  for level = 2, 60 do
    local info = getinfo(level, "Sl")
    if not info then return "" end
    if info.what ~= "C" and not GOSIM[info.source] and (info.currentline or -1) > 0 then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return ""
end
local function finish(a, b, c)
  if a == PARK then a, b, c = yield(TOKEN) end
  if a == 1 then return b end
  if a == 0 then return end
  if a == 2 then return b, c end
  if a == MISUSE then error(where() .. b, 0) end
  return unpack(b, 1, b.n)
end
return function(f)
  return function(...) return finish(f(...)) end
end
"#;

/// Globals a host function may not take: gosim's modules and Lua's standard globals, including the
/// ones the sandbox removes (a production run may bring `io` and `os` back).
const RESERVED: &[&str] = &[
    "goroutine",
    "sim",
    "log",
    "_G",
    "_VERSION",
    "_ENV",
    "assert",
    "collectgarbage",
    "coroutine",
    "debug",
    "dofile",
    "error",
    "getmetatable",
    "io",
    "ipairs",
    "load",
    "loadfile",
    "math",
    "next",
    "os",
    "package",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "require",
    "select",
    "setmetatable",
    "string",
    "table",
    "tonumber",
    "tostring",
    "type",
    "utf8",
    "warn",
    "xpcall",
];

/// Lua's reserved words: not usable as a global's name.
const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// Remembers, while the state is built, what the shim needs and a script could replace later:
/// the private token the scheduler expects, the sandbox's `coroutine.yield`, `table.unpack`.
/// Called by `lua::build` after the sandbox is installed.
pub(crate) fn remember_shim_args(lua: &Lua, token: &Value) -> mlua::Result<()> {
    let globals = lua.globals();
    let yield_fn: Function = globals.get::<Table>("coroutine")?.get("yield")?;
    let unpack: Function = globals.get::<Table>("table")?.get("unpack")?;
    let getinfo: Function = globals.get::<Table>("debug")?.get("getinfo")?;
    let args = lua.create_sequence_from([
        token.clone(),
        Value::Function(yield_fn),
        Value::Function(unpack),
        Value::Function(getinfo),
    ])?;
    lua.set_named_registry_value(SHIM_ARGS_KEY, args)
}

/// What one Lua state knows of its host functions (kept as the state's app data, made at the
/// first registration).
struct Registry {
    /// The shim factory: wraps a Rust function into the Lua function scripts call.
    wrap: Function,
    /// Goroutine coroutine -> the host function it is in, while a call is in flight (weak keys).
    calls: Table,
}

/// The registry of `world`'s state, made on first use: the shim is compiled, and the report
/// location of a goroutine learns to name the host function it is in.
fn registry(world: &LuaWorld) -> mlua::Result<(Function, Table)> {
    let lua = &world.lua;
    if let Some(r) = lua.app_data_ref::<Registry>() {
        return Ok((r.wrap.clone(), r.calls.clone()));
    }
    let args: Table = lua.named_registry_value(SHIM_ARGS_KEY)?;
    let token: Value = args.raw_get(1)?;
    let yield_fn: Function = args.raw_get(2)?;
    let unpack: Function = args.raw_get(3)?;
    let getinfo: Function = args.raw_get(4)?;
    let wrap: Function = lua.load(SHIM_LUA).set_name(PRELUDE_NAME).call((
        world.host.park.clone(),
        world.host.misuse.clone(),
        token,
        yield_fn,
        unpack,
        getinfo,
    ))?;
    let calls = lua.create_table()?;
    let weak_keys = lua.create_table()?;
    weak_keys.raw_set("__mode", "k")?;
    calls.set_metatable(Some(weak_keys))?;
    annotate_locations(lua, &world.host, &calls)?;
    lua.set_app_data(Registry {
        wrap: wrap.clone(),
        calls: calls.clone(),
    });
    Ok((wrap, calls))
}

/// Wraps the prelude's `where(thread)` (the user line where a suspended goroutine stopped, read
/// only for reports) so that a goroutine inside a host call says which one.
fn annotate_locations(lua: &Lua, host: &Rc<Host>, calls: &Table) -> mlua::Result<()> {
    let Some(inner) = host.where_fn.borrow().clone() else {
        return Ok(());
    };
    let calls = calls.clone();
    let wrapped = lua.create_function(move |_, co: Thread| -> mlua::Result<Option<String>> {
        let at: Option<String> = inner.call(&co)?;
        let within: Option<String> = calls.raw_get(&co)?;
        Ok(match (at, within) {
            (Some(at), Some(f)) => Some(format!("{at} (in host function {f})")),
            (None, Some(f)) => Some(format!("host function {f}")),
            (at, None) => at,
        })
    })?;
    *host.where_fn.borrow_mut() = Some(wrapped);
    Ok(())
}

/// Why a host call ended without values.
enum CallError {
    /// The host's `Err`: a Lua error at the caller's line.
    Lua(mlua::Error),
    /// A foreign future awaited in a simulation: fails the run.
    Foreign,
    /// The host's code panicked: fails the run as a panic.
    Panic(String),
}

/// A host future as the bridge drives it (see the module comment).
struct HostCall {
    fut: Pin<Box<dyn Future<Output = mlua::Result<MultiValue>>>>,
    rt: Runtime,
    /// The result, kept while the goroutine is switched away at the completion's scheduling point.
    done: Option<Result<MultiValue, CallError>>,
}

impl Future for HostCall {
    type Output = Result<MultiValue, CallError>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(done) = self.done.take() {
            return Poll::Ready(done);
        }
        let simulated = self.rt.is_simulated();
        // gosim's operations ignore the waker; a foreign future (production only) gets one that
        // queues this goroutine for the scheduler.
        let waker = if simulated {
            Waker::noop().clone()
        } else {
            self.rt.external_waker(self.rt.current())
        };
        let mut cx = Context::from_waker(&waker);
        let polled = catch_unwind(AssertUnwindSafe(|| self.fut.as_mut().poll(&mut cx)));
        let result = match polled {
            Ok(Poll::Ready(r)) => r.map_err(CallError::Lua),
            Ok(Poll::Pending) => {
                if self.rt.current_state() != Some(TaskState::Running) {
                    // Parked by a gosim operation: the scheduler will run us again.
                    return Poll::Pending;
                }
                if !simulated {
                    self.rt.block_external();
                    return Poll::Pending;
                }
                Err(CallError::Foreign)
            }
            Err(payload) => Err(CallError::Panic(panic_text(&*payload))),
        };
        // A completed call is a scheduling point, taken after its effect; a call that fails the
        // run (a foreign future, a panic) raises at once.
        if matches!(result, Err(CallError::Foreign | CallError::Panic(_)))
            || self.rt.schedule_point()
        {
            Poll::Ready(result)
        } else {
            self.done = Some(result);
            Poll::Pending
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".to_string())
}

/// The message of a host's error, without mlua's decorations for the common kinds.
fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(s) => s.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        other => other.to_string(),
    }
}

/// The results as the shim takes them: `n, v1, v2` for up to two values, else
/// `true, {n = k, v1, ..., vk}`.
fn results(lua: &Lua, mut values: MultiValue) -> mlua::Result<Out> {
    let n = values.len();
    if n <= 2 {
        let a = values.pop_front().unwrap_or(Value::Nil);
        let b = values.pop_front().unwrap_or(Value::Nil);
        return Ok((Value::Integer(n as i64), a, b));
    }
    let t = lua.create_table_with_capacity(n, 1)?;
    for (i, v) in values.into_iter().enumerate() {
        t.raw_set(i + 1, v)?;
    }
    t.raw_set("n", n)?;
    Ok((Value::Boolean(true), Value::Table(t), Value::Nil))
}

/// The detail of a `host-call` event: `fetch("a", 3)`, in the trace's address-free forms.
fn call_text(name: &str, args: &MultiValue) -> String {
    let shown: Vec<String> = args.iter().map(describe).collect();
    format!("{name}({})", shown.join(", "))
}

/// Ends the run with a failure raised by a host call of the current goroutine, at `here` (the
/// caller's line, when the goroutine's coroutine is the one running).
fn fail_run(rt: &Runtime, kind: FailureKind, message: String, here: &Option<Rc<str>>) {
    let id = rt.current();
    let name = rt.task_name(id).map(|n| n.to_string());
    rt.fail(Failure::in_task(
        kind,
        Some((id, name)),
        message,
        here.as_ref().map(|h| h.to_string()),
        crate::runtime::duration(rt.now()),
    ));
}

type AsyncFn = dyn Fn(MultiValue) -> Pin<Box<dyn Future<Output = mlua::Result<MultiValue>>>>;
type PlainFn = dyn Fn(MultiValue) -> mlua::Result<MultiValue>;

/// The answer that makes the shim raise `message` at the caller's line.
fn raise(lua: &Lua, misuse: &Value, message: &str) -> Out {
    (misuse.clone(), string(lua, message), Value::Nil)
}

/// A panic in the host's code: the run fails with it (as a panic in a Rust task does), and the
/// goroutine gets an error to unwind with.
fn panicked(rt: &Runtime, name: &str, what: &str, here: &Option<Rc<str>>) -> String {
    let message = format!("{name}: the host function panicked: {what}");
    fail_run(rt, FailureKind::Panic, message.clone(), here);
    message
}

/// The caller's line of a host call that is ending: read from the running coroutine at the call,
/// or (after a park, when the future is polled from outside Lua) from the suspended goroutine.
fn call_site(lua: &Lua, host: &Host, thread: &Thread) -> Option<Rc<str>> {
    caller_location(lua).or_else(|| {
        let f = host.where_fn.borrow().clone()?;
        let at: Option<String> = f.call(thread).ok().flatten();
        at.map(Rc::from)
    })
}

/// The Rust half of an async host function: start the host's future and drive it.
fn async_binding(
    world: &LuaWorld,
    name: Rc<str>,
    calls: Table,
    f: Rc<AsyncFn>,
) -> mlua::Result<Function> {
    let host = world.host.clone();
    world
        .lua
        .create_function(move |lua, args: MultiValue| -> mlua::Result<Out> {
            let rt = host.rt.clone();
            if rt.try_current().is_none() || rt.current_state() != Some(TaskState::Running) {
                let msg = format!("{name}: a host function can only be called by a goroutine");
                return Ok(raise(lua, &host.misuse, &msg));
            }
            if rt.tracing() {
                rt.emit("host-call", Subject::None, Some(call_text(&name, &args)));
            }
            let fut = match catch_unwind(AssertUnwindSafe(|| f(args))) {
                Ok(fut) => fut,
                Err(payload) => {
                    let here = caller_location(lua);
                    let message = panicked(&rt, &name, &panic_text(&*payload), &here);
                    return Ok(raise(lua, &host.misuse, &message));
                }
            };
            let call = HostCall {
                fut,
                rt: rt.clone(),
                done: None,
            };
            let thread = lua.current_thread();
            let (name_c, calls_c, host_c, thread_c) =
                (name.clone(), calls.clone(), host.clone(), thread.clone());
            let out = host.drive(lua, call, move |lua, result| {
                let name = name_c;
                let _ = calls_c.raw_set(&thread_c, Value::Nil);
                if rt.tracing() {
                    rt.emit("host-return", Subject::None, Some(name.to_string()));
                }
                let message = match result {
                    Ok(values) => match results(lua, values) {
                        Ok(out) => return out,
                        Err(e) => format!("{name}: {}", error_text(&e)),
                    },
                    Err(CallError::Lua(e)) => format!("{name}: {}", error_text(&e)),
                    Err(CallError::Panic(what)) => {
                        let here = call_site(lua, &host_c, &thread_c);
                        panicked(&rt, &name, &what, &here)
                    }
                    Err(CallError::Foreign) => {
                        let message = format!(
                            "{name}: the host function awaited a future that is not a gosim \
                             operation (it neither completed nor parked the goroutine): in a \
                             simulated run a host function may await only gosim's operations \
                             (through Sim::on(&runtime): sleep, channels, locks...); foreign \
                             futures (tokio I/O) work in production mode"
                        );
                        let here = call_site(lua, &host_c, &thread_c);
                        fail_run(&rt, FailureKind::Error, message.clone(), &here);
                        message
                    }
                };
                raise(lua, &host_c.misuse, &message)
            });
            if out.0 == host.park {
                // In flight: reports name the host function this goroutine is in.
                calls.raw_set(&thread, &*name)?;
            }
            Ok(out)
        })
}

/// The Rust half of a plain host function: call it, at once.
fn plain_binding(world: &LuaWorld, name: Rc<str>, f: Rc<PlainFn>) -> mlua::Result<Function> {
    let host = world.host.clone();
    world
        .lua
        .create_function(move |lua, args: MultiValue| -> mlua::Result<Out> {
            let rt = &host.rt;
            if rt.tracing() {
                rt.emit("host-call", Subject::None, Some(call_text(&name, &args)));
            }
            let message = match catch_unwind(AssertUnwindSafe(|| f(args))) {
                Ok(Ok(values)) => match results(lua, values) {
                    Ok(out) => return Ok(out),
                    Err(e) => format!("{name}: {}", error_text(&e)),
                },
                Ok(Err(e)) => format!("{name}: {}", error_text(&e)),
                Err(payload) => {
                    let what = panic_text(&*payload);
                    if rt.try_current().is_some() {
                        panicked(rt, &name, &what, &caller_location(lua))
                    } else {
                        format!("{name}: the host function panicked: {what}")
                    }
                }
            };
            Ok(raise(lua, &host.misuse, &message))
        })
}

/// Checks a global's or a module's name: Lua identifiers (a module's may be dotted, `svc.http`),
/// none of gosim's modules nor Lua's standard names, nothing already there.
fn check_name(world: &LuaWorld, what: &str, name: &str, module: bool) -> Result<(), LoadError> {
    let bad = |why: String| Err(LoadError(format!("gosim: {what}: {why}")));
    let identifier = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !KEYWORDS.contains(&part)
    };
    let well_formed = if module {
        name.split('.').all(identifier)
    } else {
        identifier(name)
    };
    if !well_formed {
        let form = if module {
            "a Lua identifier, or identifiers joined by dots"
        } else {
            "a Lua identifier (letters, digits, _; not a keyword)"
        };
        return bad(format!("the name must be {form} (got {name:?})"));
    }
    if RESERVED.contains(&name) {
        return bad(format!(
            "{name:?} is taken: it is one of gosim's modules (goroutine, sim, log) or a name of \
             Lua's standard library"
        ));
    }
    let lua = &world.lua;
    let exists = if module {
        let loaded: Option<Table> = lua
            .globals()
            .get::<Table>("package")
            .and_then(|p| p.get("loaded"))
            .ok();
        loaded.is_some_and(|l| !matches!(l.raw_get::<Value>(name), Ok(Value::Nil)))
    } else {
        !matches!(lua.globals().raw_get::<Value>(name), Ok(Value::Nil))
    };
    if exists {
        let kind = if module { "module" } else { "global" };
        return bad(format!(
            "{name:?} is already defined (a {kind} of this Lua state)"
        ));
    }
    Ok(())
}

fn setup_error(what: &str, e: mlua::Error) -> LoadError {
    LoadError(format!("gosim: {what}: {e}"))
}

impl LuaWorld {
    /// A Lua function that runs the host's future `f(args)` (see the module comment of
    /// `lua::host_fn`): a goroutine calling it parks until the future completes while others run;
    /// the future's values are the call's results, its `Err` a Lua error at the caller's line
    /// (`x.lua:12: name: message`). The future may await gosim's operations (through
    /// `Sim::on(world's runtime)`) and, in production mode only, foreign futures (tokio I/O). A
    /// completed call is a scheduling point. `name` names the function in traces, reports and
    /// errors. To put it in a module: [`LuaWorld::register_module`].
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::lua::{LuaLimits, LuaWorld};
    /// use gosim::runtime::{Config, Runtime};
    /// use gosim::sim::Sim;
    /// use mlua::{IntoLuaMulti, MultiValue};
    ///
    /// let rt = Runtime::simulated(Config::default());
    /// let world = LuaWorld::new(&rt, LuaLimits::default()).unwrap();
    /// let (sim, lua) = (Sim::on(&rt), world.lua().weak());
    /// let fetch = world
    ///     .async_function("fetch", move |_args: MultiValue| {
    ///         let (sim, lua) = (sim.clone(), lua.clone());
    ///         async move {
    ///             sim.sleep(std::time::Duration::from_millis(30)).await; // the caller parks meanwhile
    ///             "payload".into_lua_multi(&lua.upgrade())
    ///         }
    ///     })
    ///     .unwrap();
    /// let net = world.lua().create_table().unwrap();
    /// net.set("fetch", fetch).unwrap();
    /// world.register_module("net", net).unwrap();
    /// let src = r#"local net = require("net") assert(net.fetch() == "payload" and goroutine.now() == 30)"#;
    /// world.spawn_main("main.lua", src).unwrap();
    /// let outcome = rt.run();
    /// rt.shutdown();
    /// assert!(outcome.is_pass(), "{outcome}");
    /// ```
    pub fn async_function<F, Fut>(&self, name: &str, f: F) -> Result<Function, LoadError>
    where
        F: Fn(MultiValue) -> Fut + 'static,
        Fut: Future<Output = mlua::Result<MultiValue>> + 'static,
    {
        let what = "async_function";
        let (wrap, calls) = registry(self).map_err(|e| setup_error(what, e))?;
        let boxed: Rc<AsyncFn> = Rc::new(move |args| Box::pin(f(args)));
        async_binding(self, Rc::from(name), calls, boxed)
            .and_then(|raw| wrap.call::<Function>(raw))
            .map_err(|e| setup_error(what, e))
    }

    /// A Lua function that calls `f(args)` at once: not a scheduling point, usable anywhere (a
    /// pure computation, a read of host state). Its `Err` is a Lua error at the caller's line.
    pub fn function<F>(&self, name: &str, f: F) -> Result<Function, LoadError>
    where
        F: Fn(MultiValue) -> mlua::Result<MultiValue> + 'static,
    {
        let what = "function";
        let (wrap, _) = registry(self).map_err(|e| setup_error(what, e))?;
        plain_binding(self, Rc::from(name), Rc::new(f))
            .and_then(|raw| wrap.call::<Function>(raw))
            .map_err(|e| setup_error(what, e))
    }

    /// Installs [`LuaWorld::async_function`]`(name, f)` as the global `name`. The name must be a
    /// Lua identifier that is not `goroutine`, `sim`, `log`, a standard library name or a global
    /// already defined.
    ///
    /// ```
    /// use gosim::lua::{LuaLimits, LuaWorld};
    /// use gosim::runtime::{Config, Runtime};
    /// use gosim::sim::Sim;
    /// use mlua::{IntoLuaMulti, MultiValue, Value};
    ///
    /// let rt = Runtime::simulated(Config::default());
    /// let world = LuaWorld::new(&rt, LuaLimits::default()).unwrap();
    /// let sim = Sim::on(&rt);
    /// // A weak handle: a `Lua` clone kept inside the state would keep it alive forever.
    /// let lua = world.lua().weak();
    /// world
    ///     .register_async("slow_double", move |args: MultiValue| {
    ///         let (sim, lua) = (sim.clone(), lua.clone());
    ///         async move {
    ///             let n = match args.front() { Some(Value::Integer(n)) => *n, _ => 0 };
    ///             sim.sleep(std::time::Duration::from_millis(100)).await;
    ///             (n * 2).into_lua_multi(&lua.upgrade())
    ///         }
    ///     })
    ///     .unwrap();
    /// world
    ///     .spawn_main("main.lua", "assert(slow_double(21) == 42 and goroutine.now() == 100)")
    ///     .unwrap();
    /// let outcome = rt.run();
    /// rt.shutdown();
    /// assert!(outcome.is_pass(), "{outcome}");
    /// ```
    pub fn register_async<F, Fut>(&self, name: &str, f: F) -> Result<(), LoadError>
    where
        F: Fn(MultiValue) -> Fut + 'static,
        Fut: Future<Output = mlua::Result<MultiValue>> + 'static,
    {
        check_name(self, "register_async", name, false)?;
        let func = self.async_function(name, f)?;
        self.set_global("register_async", name, func)
    }

    /// Installs [`LuaWorld::function`]`(name, f)` as the global `name` (names as
    /// [`LuaWorld::register_async`]).
    pub fn register_fn<F>(&self, name: &str, f: F) -> Result<(), LoadError>
    where
        F: Fn(MultiValue) -> mlua::Result<MultiValue> + 'static,
    {
        check_name(self, "register_fn", name, false)?;
        let func = self.function(name, f)?;
        self.set_global("register_fn", name, func)
    }

    /// Makes `table` (functions by name, made with [`LuaWorld::async_function`] and
    /// [`LuaWorld::function`]) the module `name`, which scripts get with `require(name)`. The
    /// name is a Lua identifier or dotted identifiers (`svc.http`), not one of gosim's modules,
    /// a standard library, or a module already loaded; every key must be a string and every value
    /// a function.
    pub fn register_module(&self, name: &str, table: Table) -> Result<(), LoadError> {
        let what = "register_module";
        check_name(self, what, name, true)?;
        let mut problems = Vec::new();
        for pair in table.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| setup_error(what, e))?;
            match (&k, &v) {
                (Value::String(_), Value::Function(_)) => {}
                (Value::String(s), other) => problems.push(format!(
                    "{name}.{} is not a function (got {})",
                    s.to_string_lossy(),
                    other.type_name()
                )),
                (other, _) => problems.push(format!(
                    "a key of module {name} is not a string (got {})",
                    other.type_name()
                )),
            }
        }
        // Table order depends on the keys' hashes: report the first problem in text order.
        problems.sort();
        if let Some(first) = problems.first() {
            return Err(LoadError(format!(
                "gosim: {what}: {first} (a module holds functions made by \
                 LuaWorld::async_function or LuaWorld::function)"
            )));
        }
        let loaded: Table = self
            .lua
            .globals()
            .get::<Table>("package")
            .and_then(|p| p.get("loaded"))
            .map_err(|e| setup_error(what, e))?;
        loaded
            .raw_set(name, table)
            .map_err(|e| setup_error(what, e))
    }

    fn set_global(&self, what: &str, name: &str, func: Function) -> Result<(), LoadError> {
        self.lua
            .globals()
            .raw_set(name, func)
            .map_err(|e| setup_error(what, e))
    }
}
