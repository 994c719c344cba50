//! Bindings declared in Rust: what each Lua function and method of the `goroutine`, `log` and `sim`
//! modules is, as data.
//!
//! A binding is a name, how many values the Lua call returns, and a Rust function that checks the
//! arguments and does the operation. The prelude wraps every declared function, on first use,
//! with one generic shim per result count (`wrappers` in `prelude.lua`), which turns the two private answers into Lua
//! control flow: `MISUSE, message` raises the message at the user's line, `PARK` yields to the
//! scheduler. So a new primitive or pattern needs no Lua at all unless it calls user functions:
//! its file here declares its methods, and blocking ones hand a Rust future to [`Cx::wait`], which
//! drives it (see `lua::bridge`).
//!
//! Each kind of handle (`semaphore`, `mutex`, ...) has a [`Kind`]: its methods, each receiving the
//! borrowed handle. Module functions (`goroutine.semaphore`) are [`Func`]s.

mod atomic;
mod barrier;
mod bulkhead;
mod channel;
mod circuit_breaker;
mod context;
mod debounce;
mod fan;
mod goroutine;
mod latch;
mod log;
mod mutex;
mod observe;
mod pipeline;
mod pipeline_with;
pub(crate) mod pool;
mod rate_limiter;
mod request_reply;
mod retry;
mod rwmutex;
pub(crate) mod select;
mod semaphore;
mod task;
mod throttle;
mod timer;
mod upgradeable_rwlock;
mod wait_group;
mod weighted_semaphore;
mod work_queue;

mod adaptive_pool;
mod batch_processor;
mod bounded_parallel;
mod coalescing_cache;
mod priority_pool;

mod broadcaster;
mod merge;
mod overflow_channel;
mod priority_channel;
mod pubsub;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::rc::Rc;
use std::sync::OnceLock;

use mlua::{IntoLua, Lua, MultiValue, UserData, UserDataRef, Value};

pub(crate) use log::log_line;

use super::{Host, caller_location};
use crate::runtime::{NANOS_PER_MS, Nanos, Runtime, ms_to_nanos, nanos_to_ms_f64};

/// The longest duration a call accepts, in milliseconds (about 317 years): past it the virtual
/// clock would saturate.
pub(crate) const MAX_MS: f64 = 1e13;

/// What a binding returns to its Lua shim: up to three values (the shim keeps as many as the
/// declaration says), or `PARK`, or `MISUSE, message`.
pub(crate) type Out = (Value, Value, Value);

/// A binding's result: its values, or a misuse message (already prefixed with the function name).
pub(crate) type Res = Result<Out, String>;

/// The arguments after the handle (methods) or all of them (functions); missing ones are `nil`.
pub(crate) type Args = (Value, Value, Value);

/// A method of a kind of handle.
pub(crate) struct Method<T> {
    /// The Lua name (`acquire`); misuse messages say `kind:name`.
    pub(crate) name: &'static str,
    /// How many values the Lua call returns.
    pub(crate) results: u8,
    /// The operation, given the borrowed handle.
    pub(crate) call: fn(&Cx<'_>, &T, Args) -> Res,
}

/// A kind of handle: the userdata type `T` and its methods.
pub(crate) struct Kind<T: 'static> {
    /// The methods table (`semaphore`; `waitgroup`), as the handle's `__index` finds it.
    pub(crate) table: &'static str,
    /// The prefix of its misuse messages (`semaphore`; `wait_group`).
    pub(crate) name: &'static str,
    /// How a misuse message names the expected handle (`a semaphore`).
    pub(crate) what: &'static str,
    /// Its methods.
    pub(crate) methods: &'static [Method<T>],
}

/// A module function (`goroutine.semaphore`).
pub(crate) struct Func {
    /// The module table: `goroutine`, `log` or `sim`.
    pub(crate) module: &'static str,
    /// The Lua name.
    pub(crate) name: &'static str,
    /// How many values the Lua call returns.
    pub(crate) results: u8,
    /// The operation.
    pub(crate) call: fn(&Cx<'_>, Args) -> Res,
}

/// A module function with any number of arguments (`goroutine.spawn(f, ...)`).
pub(crate) struct VarFunc {
    /// The module table.
    pub(crate) module: &'static str,
    /// The Lua name.
    pub(crate) name: &'static str,
    /// How many values the Lua call returns.
    pub(crate) results: u8,
    /// The operation.
    pub(crate) call: fn(&Cx<'_>, MultiValue) -> Res,
}

/// What a binding has at hand: the Lua state, the host (runtime, sentinels, pending resume) and
/// its own name for misuse messages.
pub(crate) struct Cx<'a> {
    pub(crate) lua: &'a Lua,
    pub(crate) host: &'a Rc<Host>,
    pub(crate) fname: &'a str,
}

impl Cx<'_> {
    /// The run.
    pub(crate) fn rt(&self) -> &Runtime {
        &self.host.rt
    }

    /// The user's line calling this binding (for a resource's creation site).
    pub(crate) fn here(&self) -> Option<Rc<str>> {
        caller_location(self.lua)
    }

    /// A misuse message naming this function.
    pub(crate) fn misuse(&self, msg: impl Display) -> String {
        format!("{}: {msg}", self.fname)
    }

    /// Returns `v` without a scheduling point (a read that cannot change another goroutine's
    /// view, a constructor).
    pub(crate) fn ret(&self, v: impl Values) -> Res {
        Ok(v.values(self.lua))
    }

    /// Takes the scheduling point after the operation's effect: the values now if the goroutine
    /// keeps running, else `PARK` with them kept for the resume.
    pub(crate) fn point(&self, v: impl Values) -> Res {
        let (a, b, c) = v.values(self.lua);
        Ok(self.host.finish3(a, b, c))
    }

    /// Drives a gosim future (see `lua::bridge`): its values now if it completes at its first
    /// poll, else `PARK`; the goroutine resumes with `convert(output)` once the future completes.
    pub(crate) fn wait<F>(
        &self,
        fut: F,
        convert: impl FnOnce(&Lua, F::Output) -> Out + 'static,
    ) -> Res
    where
        F: Future + Unpin + 'static,
    {
        Ok(self.host.drive(self.lua, fut, convert))
    }

    /// An optional timeout in milliseconds: `nil` waits as long as it takes, `0` is a try.
    pub(crate) fn timeout(&self, v: &Value) -> Result<Option<std::time::Duration>, String> {
        match v {
            Value::Nil => Ok(None),
            v => Ok(Some(std::time::Duration::from_nanos(self.duration(v)?))),
        }
    }

    /// A table of named values (a stats snapshot) as the single result.
    pub(crate) fn table(&self, fields: &[(&str, Value)]) -> Res {
        let make = || -> mlua::Result<Value> {
            let t = self.lua.create_table_with_capacity(0, fields.len())?;
            for (k, v) in fields {
                t.set(*k, v.clone())?;
            }
            Ok(Value::Table(t))
        };
        let t = make().map_err(|e| self.misuse(e))?;
        self.ret(t)
    }

    /// A table of named counts (a pattern's `stats()`) as the single result.
    pub(crate) fn counts(&self, fields: &[(&str, i64)]) -> Res {
        let values: Vec<(&str, Value)> = fields
            .iter()
            .map(|&(k, n)| (k, Value::Integer(n)))
            .collect();
        self.table(&values)
    }

    /// A new handle (userdata) as the single result.
    pub(crate) fn handle<U: UserData + 'static>(&self, u: U) -> Res {
        let ud = self.lua.create_userdata(u).map_err(|e| self.misuse(e))?;
        Ok((Value::UserData(ud), Value::Nil, Value::Nil))
    }

    /// An integer argument (a float with an integral value is accepted, as Lua 5.1 scripts pass).
    pub(crate) fn int(&self, v: &Value, what: &str) -> Result<i64, String> {
        integer(v)
            .ok_or_else(|| self.misuse(format!("{what} must be an integer (got {})", shown(v))))
    }

    /// An optional integer argument.
    pub(crate) fn int_or(&self, v: &Value, what: &str, default: i64) -> Result<i64, String> {
        match v {
            Value::Nil => Ok(default),
            v => self.int(v, what),
        }
    }

    /// A duration in milliseconds (fractions allowed; negative counts as 0).
    pub(crate) fn duration(&self, v: &Value) -> Result<Nanos, String> {
        match v {
            // Past 1e13 ms (about 317 years) the clock would saturate: say so at the call.
            Value::Integer(i) if *i as f64 > MAX_MS => Err(self.misuse(format!(
                "duration must be finite and at most 1e13 ms (got {})",
                shown(v)
            ))),
            Value::Number(n) if n.is_infinite() || *n > MAX_MS => Err(self.misuse(format!(
                "duration must be finite and at most 1e13 ms (got {})",
                shown(v)
            ))),
            Value::Integer(i) => Ok(ms_to_nanos(*i as f64)),
            Value::Number(n) if !n.is_nan() => Ok(ms_to_nanos(*n)),
            other => Err(self.misuse(format!(
                "duration must be a number of milliseconds (got {})",
                shown(other)
            ))),
        }
    }
}

/// How a call that may give up ended, as Lua sees it: `true`, or `false, why` (`"timeout"`,
/// `"closed"`...: the error's text).
pub(crate) fn outcome<E: Display>(lua: &Lua, r: Result<(), E>) -> Out {
    match r {
        Ok(()) => (Value::Boolean(true), Value::Nil, Value::Nil),
        Err(e) => (
            Value::Boolean(false),
            string(lua, &e.to_string()),
            Value::Nil,
        ),
    }
}

/// No values (a blocking call that returns nothing).
pub(crate) fn nothing() -> Out {
    (Value::Nil, Value::Nil, Value::Nil)
}

/// Values a binding can return.
pub(crate) trait Values {
    fn values(self, lua: &Lua) -> Out;
}

impl Values for () {
    fn values(self, _lua: &Lua) -> Out {
        (Value::Nil, Value::Nil, Value::Nil)
    }
}

impl Values for Value {
    fn values(self, _lua: &Lua) -> Out {
        (self, Value::Nil, Value::Nil)
    }
}

impl Values for bool {
    fn values(self, _lua: &Lua) -> Out {
        (Value::Boolean(self), Value::Nil, Value::Nil)
    }
}

impl Values for i64 {
    fn values(self, _lua: &Lua) -> Out {
        (Value::Integer(self), Value::Nil, Value::Nil)
    }
}

impl Values for usize {
    fn values(self, _lua: &Lua) -> Out {
        (Value::Integer(self as i64), Value::Nil, Value::Nil)
    }
}

impl Values for &str {
    fn values(self, lua: &Lua) -> Out {
        let s = lua.create_string(self).map(Value::String);
        (s.unwrap_or(Value::Nil), Value::Nil, Value::Nil)
    }
}

impl Values for (Value, Value) {
    fn values(self, _lua: &Lua) -> Out {
        (self.0, self.1, Value::Nil)
    }
}

impl Values for Out {
    fn values(self, _lua: &Lua) -> Out {
        self
    }
}

/// `type(v)` as Lua would say it, with gosim's handles named (`semaphore`, never an address).
pub(crate) fn type_name(v: &Value) -> String {
    match v {
        Value::UserData(ud) => ud
            .type_name()
            .ok()
            .map(|s| s.to_string_lossy())
            .unwrap_or_else(|| "userdata".into()),
        other => other.type_name().to_string(),
    }
}

/// How a bad argument is shown: scalars by value, anything else by type (never an address).
pub(crate) fn shown(v: &Value) -> String {
    match v {
        Value::Nil => "nil".to_string(),
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        other => type_name(other),
    }
}

/// An integer argument (a float with an integral value is accepted).
pub(crate) fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(*n as i64),
        _ => None,
    }
}

/// The run's time as Lua sees it: integer milliseconds when whole, else a float.
pub(crate) fn ms_value(ns: Nanos) -> Value {
    if ns.is_multiple_of(NANOS_PER_MS) && ns / NANOS_PER_MS <= i64::MAX as u64 {
        Value::Integer((ns / NANOS_PER_MS) as i64)
    } else {
        Value::Number(nanos_to_ms_f64(ns))
    }
}

/// Makes one declared binding's Lua function for a Lua state (its host).
type Make = Box<dyn Fn(&Lua, &Rc<Host>) -> mlua::Result<mlua::Function> + Send + Sync>;

/// One declared binding: how many values it returns and how to make it.
struct Decl {
    results: u8,
    make: Make,
}

/// Every declared kind and function, by owner (a methods table such as `semaphore`, or a module:
/// `goroutine`, `log`, `sim`, `raw`) and name. Built once per process; a Lua state makes only the
/// bindings its script touches (`make`), on first use: creating them all for every state cost
/// more than a short run (`explore` makes a state per run).
fn index() -> &'static BTreeMap<(&'static str, &'static str), Decl> {
    static INDEX: OnceLock<BTreeMap<(&'static str, &'static str), Decl>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut d = Declarer {
            index: BTreeMap::new(),
        };
        d.funcs(goroutine::FUNCS);
        d.var_funcs(goroutine::VAR_FUNCS);
        d.funcs(log::FUNCS);
        d.kind(&channel::KIND);
        d.funcs(channel::FUNCS);
        d.kind(&semaphore::KIND);
        d.funcs(semaphore::FUNCS);
        d.kind(&weighted_semaphore::KIND);
        d.funcs(weighted_semaphore::FUNCS);
        d.kind(&latch::KIND);
        d.funcs(latch::FUNCS);
        d.kind(&barrier::KIND);
        d.funcs(barrier::FUNCS);
        d.kind(&upgradeable_rwlock::KIND);
        d.funcs(upgradeable_rwlock::FUNCS);
        d.kind(&mutex::KIND);
        d.funcs(mutex::FUNCS);
        d.kind(&rwmutex::KIND);
        d.kind(&rwmutex::RLOCKER);
        d.funcs(rwmutex::FUNCS);
        d.kind(&wait_group::KIND);
        d.funcs(wait_group::FUNCS);
        d.kind(&atomic::KIND);
        d.funcs(atomic::FUNCS);
        d.kind(&context::KIND);
        d.funcs(context::FUNCS);
        d.kind(&timer::KIND);
        d.funcs(timer::FUNCS);
        d.kind(&observe::PROFILER);
        d.kind(&observe::INSPECTOR);
        d.funcs(observe::FUNCS);
        d.kind(&request_reply::KIND);
        d.funcs(request_reply::FUNCS);
        d.kind(&work_queue::KIND);
        d.funcs(work_queue::FUNCS);
        d.funcs(debounce::FUNCS);
        d.funcs(throttle::FUNCS);
        d.funcs(select::FUNCS);
        d.funcs(task::FUNCS);
        d.var_funcs(task::VAR_FUNCS);
        d.funcs(fan::FUNCS);
        d.funcs(pool::FUNCS);
        d.var_funcs(pool::VAR_FUNCS);
        d.funcs(pipeline::FUNCS);
        d.kind(&broadcaster::KIND);
        d.kind(&broadcaster::SUBSCRIBER);
        d.funcs(broadcaster::FUNCS);
        d.kind(&pubsub::KIND);
        d.funcs(pubsub::FUNCS);
        d.funcs(merge::FUNCS);
        d.kind(&overflow_channel::KIND);
        d.funcs(overflow_channel::FUNCS);
        d.kind(&priority_channel::KIND);
        d.funcs(priority_channel::FUNCS);
        d.kind(&rate_limiter::KIND);
        d.kind(&rate_limiter::RESERVATION);
        d.funcs(rate_limiter::FUNCS);
        d.kind(&circuit_breaker::KIND);
        d.kind(&circuit_breaker::PERMIT);
        d.funcs(circuit_breaker::FUNCS);
        d.kind(&retry::KIND);
        d.funcs(retry::FUNCS);
        d.kind(&bulkhead::KIND);
        d.funcs(bulkhead::FUNCS);
        d.kind(&pipeline_with::METRICS);
        d.kind(&pipeline_with::DYNAMIC);
        d.funcs(pipeline_with::FUNCS);
        d.kind(&batch_processor::KIND);
        d.funcs(batch_processor::FUNCS);
        d.kind(&coalescing_cache::KIND);
        d.funcs(coalescing_cache::FUNCS);
        d.kind(&bounded_parallel::KIND);
        d.funcs(bounded_parallel::FUNCS);
        d.kind(&priority_pool::KIND);
        d.funcs(priority_pool::FUNCS);
        d.kind(&adaptive_pool::KIND);
        d.funcs(adaptive_pool::FUNCS);
        d.index
    })
}

/// Every declaration's owner and name, in order (for `lua::declared_api`).
pub(crate) fn declared_names() -> impl Iterator<Item = (&'static str, &'static str)> {
    index().keys().copied()
}

/// The declared binding `owner.name` made for this Lua state, with its result count, or `None`
/// if nothing is declared under that name.
pub(crate) fn make(
    lua: &Lua,
    host: &Rc<Host>,
    owner: &str,
    name: &str,
) -> mlua::Result<Option<(mlua::Function, u8)>> {
    match index().get(&(owner, name)) {
        Some(decl) => Ok(Some(((decl.make)(lua, host)?, decl.results))),
        None => Ok(None),
    }
}

/// Builds the index of declarations.
struct Declarer {
    index: BTreeMap<(&'static str, &'static str), Decl>,
}

impl Declarer {
    fn push(&mut self, owner: &'static str, name: &'static str, results: u8, make: Make) {
        let previous = self.index.insert((owner, name), Decl { results, make });
        assert!(previous.is_none(), "{owner}.{name} is declared twice");
    }

    fn kind<T: 'static>(&mut self, kind: &'static Kind<T>) {
        for m in kind.methods {
            let make: Make = Box::new(move |lua, host| {
                let host = host.clone();
                let fname = format!("{}:{}", kind.name, m.name);
                let call = m.call;
                lua.create_function(
                    move |lua,
                          (this, a, b, c): (Value, Value, Value, Value)|
                          -> mlua::Result<Out> {
                        let cx = Cx {
                            lua,
                            host: &host,
                            fname: &fname,
                        };
                        let r = match borrow::<T>(&this) {
                            Some(h) => call(&cx, &h, (a, b, c)),
                            None => Err(cx.misuse(format!(
                                "expects {} (got {})",
                                kind.what,
                                type_name(&this)
                            ))),
                        };
                        Ok(r.unwrap_or_else(|msg| host.misuse3(lua, msg)))
                    },
                )
            });
            self.push(kind.table, m.name, m.results, make);
        }
    }

    fn funcs(&mut self, funcs: &'static [Func]) {
        for func in funcs {
            let make = module_fn(func.module, func.name, func.call);
            self.push(func.module, func.name, func.results, make);
        }
    }

    fn var_funcs(&mut self, funcs: &'static [VarFunc]) {
        for func in funcs {
            let make = module_fn(func.module, func.name, func.call);
            self.push(func.module, func.name, func.results, make);
        }
    }
}

/// How a module function is made: its arguments (`A`: three values, or all of them) go to `call`
/// with a `Cx` named `module.name`; an error is the misuse answer.
fn module_fn<A: mlua::FromLuaMulti + 'static>(
    module: &'static str,
    name: &'static str,
    call: fn(&Cx<'_>, A) -> Res,
) -> Make {
    Box::new(move |lua, host| {
        let host = host.clone();
        let fname = format!("{module}.{name}");
        lua.create_function(move |lua, args: A| -> mlua::Result<Out> {
            let cx = Cx {
                lua,
                host: &host,
                fname: &fname,
            };
            Ok(call(&cx, args).unwrap_or_else(|msg| host.misuse3(lua, msg)))
        })
    })
}

/// Borrows a handle of type `T`, if `v` is one.
pub(crate) fn borrow<T: 'static>(v: &Value) -> Option<UserDataRef<T>> {
    match v {
        Value::UserData(ud) => ud.borrow::<T>().ok(),
        _ => None,
    }
}

/// A Lua string (for binding results).
pub(crate) fn string(lua: &Lua, s: &str) -> Value {
    s.into_lua(lua).unwrap_or(Value::Nil)
}

/// Whether `v` can be called: a function, or a table whose metatable has `__call`.
pub(crate) fn is_callable(v: &Value) -> bool {
    match v {
        Value::Function(_) => true,
        Value::Table(t) => t
            .metatable()
            .is_some_and(|mt| !matches!(mt.raw_get::<Value>("__call"), Ok(Value::Nil) | Err(_))),
        _ => false,
    }
}
