//! The Lua C API, used directly where mlua's safe wrappers cost more than the work: resuming a
//! goroutine's coroutine, and the hottest operations (channel `send`/`receive`,
//! `goroutine.yield`) as raw C functions that yield to the scheduler themselves.
//!
//! Why: a Lua ping-pong message through mlua's callback machinery (argument conversion, the
//! reference stack, `callback_error_ext`) and `Thread::resume` (status checks, two `lua_getinfo`
//! calls per resume when a hook is set) cost about 10,000 instructions, of which the channel
//! and the scheduler are a tenth (see `docs/performance.md`).
//!
//! This is the only module of the crate (besides the binary's counting allocator) that may use
//! `unsafe`. Every block says why it is sound; the rules they rely on:
//!
//! * **No destructor across a jump.** `lua_error` and `lua_yield` leave a C function with a
//!   `longjmp`, skipping the Rust frames in between. At each such call, every Rust value with a
//!   destructor in the calling frame has already been dropped (the work is done in inner
//!   functions that return plain data first), so nothing is leaked and no destructor is skipped.
//! * **No panic across the boundary.** The C functions call only code that reports errors as
//!   values (mlua's conversions in their `Result` form: a full reference stack becomes the
//!   memory limit, not a panic).
//! * **Pointers live as long as their owners.** A C function finds its `Host` through a light
//!   userdata upvalue, next to a full userdata upvalue holding an `Rc<Host>`: the host outlives
//!   every call of the closure. A channel handle's user value holds a pointer to the handle's
//!   own `LuaChannel`, read only while the handle is an argument on the stack (alive).
//! * mlua is pinned to one version (`Cargo.toml`): the module relies on its documented-hidden
//!   `RawLua` (`exec_raw_lua`, `push_value`, `pop_value`) to move reference values between a
//!   goroutine's stack and mlua `Value`s, and on mlua leaving a userdata's user value alone.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::rc::Rc;

use mlua::ffi::{self, lua_State};
use mlua::{FromLua, Lua, LuaOptions, StdLib, Thread, Value};

use super::objects::{Dir, LuaChannel};
use super::value::LuaValue;
use super::{Host, Resume};
use crate::sync::{RecvStart, SendStart};

/// A Lua state with the libraries gosim needs, `debug` included.
///
/// `debug` is only reachable from mlua's unsafe constructor. The prelude keeps a private
/// reference to `debug.getinfo` (to read the line where a suspended goroutine stopped, which
/// mlua's safe API cannot do) and the global is removed before any user code runs. Loading C
/// modules, the other thing the safe mode forbids, is disabled by removing `package.loadlib` and
/// the C searchers (`sandbox::install_stdlib_overrides`).
pub(super) fn new_state() -> Lua {
    let libs = StdLib::COROUTINE
        | StdLib::TABLE
        | StdLib::STRING
        | StdLib::UTF8
        | StdLib::MATH
        | StdLib::OS
        | StdLib::PACKAGE
        | StdLib::DEBUG;
    // SAFETY: user scripts never see `debug` nor a way to load native code (see above).
    unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) }
}

// ---- resuming a goroutine ----------------------------------------------------------------------

/// How a resume of a goroutine's coroutine ended.
pub(super) enum Resumed {
    /// It yielded (parked in a gosim call, or a stray `coroutine.yield`).
    Yielded,
    /// Its entry returned: `Some(message)` when it returned the FAILED sentinel and a message.
    Finished(Option<Value>),
    /// An error escaped the entry's `xpcall` (out of memory, an error in the error handler): the
    /// message as mlua would word it, and whether it is a memory error.
    Error { message: String, memory: bool },
}

/// Resumes `thread` with `args` as the results of the call it is suspended in (or, the first
/// time, as its entry's arguments).
pub(super) fn resume(host: &Host, thread: &Thread, args: &[Value]) -> Resumed {
    let th = thread.state();
    let n = args.len() as c_int;
    // SAFETY: `th` is a live coroutine of this state (the `Thread` keeps it), suspended or new,
    // and no Lua code runs while the arguments are pushed onto its stack (checked for room
    // first). `lua_resume` then runs it; its results are read and popped before returning, so
    // the stack is left as a suspended coroutine expects (only its own frames).
    unsafe {
        if ffi::lua_checkstack(th, n + 4) == 0 {
            return Resumed::Error {
                message: "stack overflow (resuming a goroutine)".to_string(),
                memory: false,
            };
        }
        for v in args {
            if let Err(message) = push(host, th, v) {
                return Resumed::Error {
                    message,
                    memory: false,
                };
            }
        }
        resume_with(host, thread, n)
    }
}

/// Resumes `thread` with the `n` values on top of its stack as the results of the call it is
/// suspended in (or, the first time, as its entry's arguments).
pub(super) fn resume_with(host: &Host, thread: &Thread, n: c_int) -> Resumed {
    let th = thread.state();
    // SAFETY: as `resume`: `th` is a live coroutine of this state with `n` values pushed.
    unsafe {
        let mut nres: c_int = 0;
        let status = ffi::lua_resume(th, std::ptr::null_mut(), n, &mut nres);
        match status {
            ffi::LUA_YIELD => {
                ffi::lua_settop(th, -nres - 1);
                Resumed::Yielded
            }
            ffi::LUA_OK => {
                // A finished coroutine's stack holds only its results.
                let top = ffi::lua_gettop(th);
                let failed =
                    nres >= 1 && ffi::lua_topointer(th, top - nres + 1) == host.failed.to_pointer();
                let message = if failed && nres >= 2 {
                    // The message is the second result: drop what follows, take it from the top.
                    ffi::lua_settop(th, top - nres + 2);
                    Some(pop(host, th))
                } else if failed {
                    Some(Value::Nil)
                } else {
                    None
                };
                ffi::lua_settop(th, 0);
                Resumed::Finished(message)
            }
            code => {
                let memory = code == ffi::LUA_ERRMEM;
                let message = error_message(host, th, code);
                ffi::lua_settop(th, 0);
                Resumed::Error { message, memory }
            }
        }
    }
}

/// The error object on top of `th`'s stack, worded as mlua's `Error` would show it (a Rust
/// error raised through Lua keeps its own text; a runtime error gets mlua's prefix and Lua's
/// traceback). Nothing is pushed onto `th`: a coroutine that died in an error may have no room
/// left in its frame; the work is done on the state mlua is using (the main thread).
///
/// SAFETY: the caller guarantees an error object on top of `th` (a failed resume).
unsafe fn error_message(host: &Host, th: *mut lua_State, code: c_int) -> String {
    // SAFETY: the caller's contract (an error object on top of `th`); nothing is pushed onto `th`.
    unsafe {
        if code == ffi::LUA_ERRMEM {
            return mlua::Error::MemoryError(to_string_lossy(th, -1)).to_string();
        }
        let is_string = ffi::lua_type(th, -1) == ffi::LUA_TSTRING;
        let Some(lua) = host.weak_lua.try_upgrade() else {
            return to_string_lossy(th, -1);
        };
        lua.exec_raw_lua(|raw| {
            let main = raw.state();
            if main == th || ffi::lua_checkstack(main, 4) == 0 {
                return to_string_lossy(th, -1);
            }
            ffi::lua_xmove(th, main, 1);
            if !is_string {
                // A Rust error raised through Lua (mlua's wrapped error) keeps its own text.
                let v = <Value as FromLua>::from_stack(-1, raw);
                ffi::lua_pop(main, 1);
                return match v {
                    Ok(Value::Error(e)) => e.to_string(),
                    Ok(other) => mlua::Error::RuntimeError(super::describe(&other)).to_string(),
                    Err(e) => e.to_string(),
                };
            }
            // As mlua's `Thread::resume`: the message with the coroutine's traceback.
            ffi::luaL_traceback(main, th, ffi::lua_tostring(main, -1), 0);
            let with_trace = to_string_lossy(main, -1);
            ffi::lua_pop(main, 2);
            mlua::Error::RuntimeError(with_trace).to_string()
        })
    }
}

/// The string at `idx` (or `tostring`-less placeholder for other types).
///
/// SAFETY: `idx` is a valid index of `l`.
unsafe fn to_string_lossy(l: *mut lua_State, idx: c_int) -> String {
    // SAFETY: `idx` is valid (the caller's contract); the bytes are copied before Lua runs again.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            let t = ffi::lua_typename(l, ffi::lua_type(l, idx));
            let t = std::ffi::CStr::from_ptr(t).to_string_lossy();
            return format!("(error object is a {t} value)");
        }
        let bytes = std::slice::from_raw_parts(p as *const u8, len);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

// ---- values between stacks and Rust -------------------------------------------------------------

/// Pushes `v` onto `l`. Scalars directly; reference values through mlua, which keeps them in
/// its reference stack.
///
/// SAFETY: `l` is a thread of the host's Lua state with room for two more values.
unsafe fn push(host: &Host, l: *mut lua_State, v: &Value) -> Result<(), String> {
    // SAFETY: `l` has room for the value (the caller's contract); reference values go through mlua.
    unsafe {
        match v {
            Value::Nil => ffi::lua_pushnil(l),
            Value::Boolean(b) => ffi::lua_pushboolean(l, *b as c_int),
            Value::Integer(i) => ffi::lua_pushinteger(l, *i),
            Value::Number(n) => ffi::lua_pushnumber(l, *n),
            other => {
                let Some(lua) = host.weak_lua.try_upgrade() else {
                    return Err("the Lua state is closing".to_string());
                };
                return lua.exec_raw_lua(|raw| {
                    let from = raw.state();
                    if ffi::lua_checkstack(from, 2) == 0 {
                        return Err("stack overflow (moving a Lua value)".to_string());
                    }
                    raw.push_value(other).map_err(|e| e.to_string())?;
                    ffi::lua_xmove(from, l, 1);
                    Ok(())
                });
            }
        }
        Ok(())
    }
}

/// Pops the value on top of `l` as an mlua `Value` (an error value if mlua's reference stack
/// is full: the caller reports it as "out of Lua stack").
///
/// SAFETY: `l` is a thread of the host's Lua state with a value on top.
unsafe fn pop(host: &Host, l: *mut lua_State) -> Value {
    // SAFETY: a value is on top of `l` (the caller's contract); it is popped on every path.
    unsafe {
        let scalar = match ffi::lua_type(l, -1) {
            ffi::LUA_TNIL => Some(Value::Nil),
            ffi::LUA_TBOOLEAN => Some(Value::Boolean(ffi::lua_toboolean(l, -1) != 0)),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(l, -1) != 0 => {
                Some(Value::Integer(ffi::lua_tointeger(l, -1)))
            }
            ffi::LUA_TNUMBER => Some(Value::Number(ffi::lua_tonumber(l, -1))),
            _ => None,
        };
        if let Some(v) = scalar {
            ffi::lua_pop(l, 1);
            return v;
        }
        let Some(lua) = host.weak_lua.try_upgrade() else {
            ffi::lua_pop(l, 1);
            return out_of_stack();
        };
        lua.exec_raw_lua(|raw| {
            let to = raw.state();
            if ffi::lua_checkstack(to, 2) == 0 {
                ffi::lua_pop(l, 1);
                return out_of_stack();
            }
            ffi::lua_xmove(l, to, 1);
            // The `Result` form of mlua's conversion (`pop_value` panics when mlua's reference
            // stack cannot grow).
            let v = <Value as FromLua>::from_stack(-1, raw).unwrap_or_else(|_| out_of_stack());
            ffi::lua_pop(to, 1);
            v
        })
    }
}

fn out_of_stack() -> Value {
    Value::Error(Box::new(mlua::Error::runtime(
        "out of Lua stack: too many Lua values held by the runtime",
    )))
}

// ---- the hot operations as C functions ----------------------------------------------------------

/// Upvalues of every hot C function.
const UP_HOST: c_int = 1; // light userdata: *const Host
// 2: full userdata keeping the host alive (never read)
const UP_TOKEN: c_int = 3; // the scheduler's yield TOKEN
const UP_RAISE: c_int = 4; // the prelude's `raise(msg)`: errors at the user's line
const UP_YIELD: c_int = 5; // the checked `coroutine.yield` (explains a yield where Lua cannot)
const UP_SLOW: c_int = 6; // the declared binding, for arguments the fast path does not take
const UP_ATTACH: c_int = 7; // `attach(v)`: a pointer to v's LuaChannel, or nil

/// What a hot operation decided, with nothing left that needs a destructor.
enum Step {
    /// Return these many values, already pushed.
    Return(c_int),
    /// Yield to the scheduler (the goroutine is parked, its `Resume` stored in the host).
    Yield,
    /// Raise this misuse error at the user's line.
    Misuse(&'static str),
    /// Hand the call to the declared (slow) binding.
    Slow,
}

/// Keeps the host alive for as long as a C closure holding it exists.
struct HostKeep(#[allow(dead_code)] Rc<Host>);

/// The slow paths of the hot functions: the declared bindings' shims, for arguments the fast
/// path does not take (they raise the misuse error, or handle the rare case).
pub(super) struct Slow {
    /// `ch:send`.
    pub(super) send: Value,
    /// `ch:receive`.
    pub(super) receive: Value,
    /// `goroutine.sleep`.
    pub(super) sleep: Value,
    /// `goroutine.spawn`.
    pub(super) spawn: Value,
}

/// `methods.channel.send`, `methods.channel.receive`, `goroutine.yield`, `goroutine.sleep` and
/// `goroutine.spawn` as C functions, for the prelude (which installs them in place of the declared bindings'
/// generic shims).
pub(super) fn hot_functions(
    lua: &Lua,
    host: &Rc<Host>,
    token: Value,
    raise: Value,
    checked_yield: Value,
    slow: Slow,
) -> mlua::Result<[Value; 5]> {
    let keep = lua.create_any_userdata(HostKeep(host.clone()))?;
    let attach = lua.create_function(|_, v: Value| {
        Ok(match super::bind::borrow::<LuaChannel>(&v) {
            Some(c) => {
                Value::LightUserData(mlua::LightUserData(&*c as *const LuaChannel as *mut c_void))
            }
            None => Value::Nil,
        })
    })?;
    let host_ptr = Value::LightUserData(mlua::LightUserData(Rc::as_ptr(host) as *mut c_void));
    let make = |f: ffi::lua_CFunction, slow: &Value| -> mlua::Result<Value> {
        let ups = (
            host_ptr.clone(),
            keep.clone(),
            token.clone(),
            raise.clone(),
            checked_yield.clone(),
            slow.clone(),
            attach.clone(),
        );
        // SAFETY: `exec_raw` pushed the seven values; `lua_pushcclosure` pops them as the
        // closure's upvalues and pushes the closure, which `exec_raw` returns as a `Value`.
        unsafe { lua.exec_raw::<Value>(ups, |l| ffi::lua_pushcclosure(l, f, 7)) }
    };
    Ok([
        make(channel_send, &slow.send)?,
        make(channel_receive, &slow.receive)?,
        make(goroutine_yield, &Value::Nil)?,
        make(goroutine_sleep, &slow.sleep)?,
        make(goroutine_spawn, &slow.spawn)?,
    ])
}

/// The host of a hot C function.
///
/// SAFETY: called only from the C functions made by `hot_functions`, whose upvalue 1 points
/// to a host kept alive by upvalue 2.
unsafe fn host<'a>(l: *mut lua_State) -> &'a Host {
    // SAFETY: upvalue 1 is the host's pointer, kept alive by upvalue 2 (see `hot_functions`).
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(UP_HOST)) as *const Host) }
}

/// The `LuaChannel` behind argument 1, or `None` when it is not a channel handle.
///
/// A channel handle seen before carries a pointer to its `LuaChannel` in its user value (slot 1
/// of the userdata, which mlua leaves alone unless `set_user_value` is called, and gosim calls
/// it on no handle). Only channel handles ever get a light userdata there, and scripts cannot
/// set user values (no `debug` library), so the pointer's presence says the handle is a
/// channel.
///
/// SAFETY: called from a hot C function; the pointer returned is valid while argument 1 stays
/// on the stack (the handle owns the `LuaChannel`, at a fixed address: mlua keeps it behind an
/// `Rc`).
unsafe fn channel_arg<'a>(l: *mut lua_State) -> Option<&'a LuaChannel> {
    // SAFETY: argument 1 stays on the stack while the returned reference is used (the caller's
    // contract); every push is popped or stored as the user value.
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TUSERDATA {
            return None;
        }
        if ffi::lua_getiuservalue(l, 1, 1) == ffi::LUA_TLIGHTUSERDATA {
            let p = ffi::lua_touserdata(l, -1) as *const LuaChannel;
            ffi::lua_pop(l, 1);
            return Some(&*p);
        }
        ffi::lua_pop(l, 1);
        // First use of this handle: ask mlua whether it is a channel.
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UP_ATTACH));
        ffi::lua_pushvalue(l, 1);
        ffi::lua_call(l, 1, 1);
        if ffi::lua_type(l, -1) != ffi::LUA_TLIGHTUSERDATA {
            ffi::lua_pop(l, 1);
            return None;
        }
        let p = ffi::lua_touserdata(l, -1) as *const LuaChannel;
        ffi::lua_setiuservalue(l, 1, 1);
        Some(&*p)
    }
}

/// Carries out a step: returns values, yields to the scheduler, raises a misuse error, or
/// calls the declared binding. Called in tail position by every hot C function, after every
/// Rust value with a destructor is gone.
///
/// SAFETY: called from a hot C function of `l`, with `nargs` arguments at the bottom of the
/// stack (for `Step::Slow`).
unsafe fn finish_step(l: *mut lua_State, step: Step, nargs: c_int) -> c_int {
    // SAFETY: the last thing a hot C function does; no Rust value with a destructor is alive.
    unsafe {
        match step {
            Step::Return(n) => n,
            Step::Yield => {
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UP_TOKEN));
                if ffi::lua_isyieldable(l) == 0 {
                    // Where Lua cannot yield, the checked yield raises the explanation.
                    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UP_YIELD));
                    ffi::lua_insert(l, -2);
                    ffi::lua_call(l, 1, 0);
                    return 0;
                }
                ffi::lua_yield(l, 1)
            }
            Step::Misuse(msg) => {
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UP_RAISE));
                ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
                ffi::lua_call(l, 1, 0);
                0
            }
            Step::Slow => {
                ffi::lua_settop(l, nargs);
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UP_SLOW));
                ffi::lua_insert(l, 1);
                // The declared binding may park (a spawn's scheduling point): call it with a
                // continuation, so that it can yield through this C function.
                ffi::lua_callk(l, nargs, ffi::LUA_MULTRET, 0, Some(all_results));
                ffi::lua_gettop(l)
            }
        }
    }
}

/// The continuation of a slow call that yielded: its results are the whole stack.
unsafe extern "C-unwind" fn all_results(
    l: *mut lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: called by Lua with this function's stack, which holds only the results.
    unsafe { ffi::lua_gettop(l) }
}

/// After an operation that completed: the scheduling point. True if the goroutine keeps
/// running (the caller returns the results); false if it was switched away (the caller parks
/// it with the results kept for the resume, and yields).
fn point(host: &Host) -> bool {
    host.instructions.set(0);
    host.memory.check(&host.rt);
    host.rt.schedule_point()
}

/// `ch:send(v)`: `true`, or `false, "send on closed channel"`.
unsafe extern "C-unwind" fn channel_send(l: *mut lua_State) -> c_int {
    // SAFETY: see the module's rules; `send_step` returns only plain data and leaves the
    // results on the stack; `finish_step` is the tail call.
    unsafe {
        let nargs = ffi::lua_gettop(l);
        let step = send_step(l);
        finish_step(l, step, nargs)
    }
}

/// SAFETY: called by `channel_send` only.
unsafe fn send_step(l: *mut lua_State) -> Step {
    // SAFETY: runs inside `channel_send`'s C call and returns plain data; the one call that may
    // raise (`channel_arg`'s attach) runs before any Rust value with a destructor exists.
    unsafe {
        let host = host(l);
        let Some(c) = channel_arg(l) else {
            return Step::Slow;
        };
        if c.dir == Dir::Receive {
            return Step::Misuse("channel:send: cannot send on a receive-only channel");
        }
        if ffi::lua_gettop(l) < 2 {
            ffi::lua_settop(l, 2);
        }
        ffi::lua_pushvalue(l, 2);
        let v = pop(host, l);
        if let Value::Error(_) = v {
            super::guard::classify_failure(&host.rt, "out of Lua stack");
            return Step::Misuse("channel:send: out of Lua stack (too many Lua values held)");
        }
        match c.ch.send_or_park(LuaValue(v)) {
            SendStart::Done(ok) => {
                if point(host) {
                    ffi::lua_pushboolean(l, ok as c_int);
                    if ok {
                        return Step::Return(1);
                    }
                    let _ = push(host, l, &host.closed_msg);
                    return Step::Return(2);
                }
                host.park(if ok {
                    Resume::One(Value::Boolean(true))
                } else {
                    Resume::Two(Box::new((Value::Boolean(false), host.closed_msg.clone())))
                });
                Step::Yield
            }
            SendStart::Parked(slot) => {
                host.park(Resume::Send(slot));
                Step::Yield
            }
        }
    }
}

/// `ch:receive()`: `v, true`, or `nil, false` once closed and drained.
unsafe extern "C-unwind" fn channel_receive(l: *mut lua_State) -> c_int {
    // SAFETY: as `channel_send`.
    unsafe {
        let nargs = ffi::lua_gettop(l);
        let step = receive_step(l);
        finish_step(l, step, nargs)
    }
}

/// SAFETY: called by `channel_receive` only.
unsafe fn receive_step(l: *mut lua_State) -> Step {
    // SAFETY: runs inside `channel_receive`'s C call and returns plain data; the one call that may
    // raise (`channel_arg`'s attach) runs before any Rust value with a destructor exists.
    unsafe {
        let host = host(l);
        let Some(c) = channel_arg(l) else {
            return Step::Slow;
        };
        if c.dir == Dir::Send {
            return Step::Misuse("channel:receive: cannot receive on a send-only channel");
        }
        match c.ch.recv_or_park() {
            RecvStart::Ready(got) => {
                let ok = got.is_some();
                let v = got.map_or(Value::Nil, |v| v.0);
                if point(host) {
                    if push(host, l, &v).is_err() {
                        ffi::lua_pushnil(l);
                    }
                    ffi::lua_pushboolean(l, ok as c_int);
                    return Step::Return(2);
                }
                host.park(Resume::Got(v, ok));
                Step::Yield
            }
            RecvStart::Parked(slot) => {
                host.park(Resume::Recv(slot));
                Step::Yield
            }
        }
    }
}

/// `goroutine.yield()`: a bare scheduling point.
unsafe extern "C-unwind" fn goroutine_yield(l: *mut lua_State) -> c_int {
    // SAFETY: as `channel_send`; nothing here needs dropping.
    unsafe {
        let host = host(l);
        let step = if point(host) {
            Step::Return(0)
        } else {
            host.park(Resume::Nothing);
            Step::Yield
        };
        finish_step(l, step, 0)
    }
}

/// `goroutine.sleep(ms)`: parks until the virtual clock reaches now + ms (a scheduling point
/// only, for 0). Anything but a finite number in range goes to the declared binding, which
/// words the error.
unsafe extern "C-unwind" fn goroutine_sleep(l: *mut lua_State) -> c_int {
    // SAFETY: as `channel_send`; nothing here needs dropping.
    unsafe {
        let nargs = ffi::lua_gettop(l);
        let host = host(l);
        let ms = match ffi::lua_type(l, 1) {
            ffi::LUA_TNUMBER if ffi::lua_isinteger(l, 1) != 0 => ffi::lua_tointeger(l, 1) as f64,
            ffi::LUA_TNUMBER => ffi::lua_tonumber(l, 1),
            _ => f64::NAN,
        };
        let step = if ms.is_nan() || ms.is_infinite() || ms > super::bind::MAX_MS {
            Step::Slow
        } else {
            match crate::runtime::ms_to_nanos(ms) {
                0 if point(host) => Step::Return(0),
                0 => {
                    host.park(Resume::Nothing);
                    Step::Yield
                }
                d => {
                    host.instructions.set(0);
                    host.rt.sleep(d);
                    host.park(Resume::Nothing);
                    Step::Yield
                }
            }
        };
        finish_step(l, step, nargs)
    }
}

/// `goroutine.spawn(f, ...)` for a Lua function `f`: the new goroutine's coroutine gets `f` and
/// the arguments moved onto its stack (no conversion), and its id is returned after the
/// scheduling point. Anything else (a callable table, a spec table, a bad argument) goes to the
/// declared binding.
unsafe extern "C-unwind" fn goroutine_spawn(l: *mut lua_State) -> c_int {
    // SAFETY: as `channel_send`; `spawn_step` drops its Rust values before returning.
    unsafe {
        let nargs = ffi::lua_gettop(l);
        let step = spawn_step(l, nargs);
        finish_step(l, step, nargs)
    }
}

/// SAFETY: called by `goroutine_spawn` only, with `nargs` arguments on the stack.
unsafe fn spawn_step(l: *mut lua_State, nargs: c_int) -> Step {
    // SAFETY: runs inside `goroutine_spawn`'s C call with `nargs` arguments on the stack.
    unsafe {
        let host = host(l);
        if ffi::lua_type(l, 1) != ffi::LUA_TFUNCTION {
            return Step::Slow;
        }
        let id = if super::guard::may_spawn_lua_goroutine(&host.rt) {
            let Some(lua) = host.weak_lua.try_upgrade() else {
                return Step::Slow;
            };
            let Ok(thread) = host.new_thread(&lua) else {
                // The declared binding tries again and reports the error.
                return Step::Slow;
            };
            let th = thread.state();
            if ffi::lua_checkstack(th, nargs + 1) == 0 {
                return Step::Slow;
            }
            // The coroutine's stack: the entry, then `f` and the arguments.
            ffi::lua_xmove(l, th, nargs);
            host.spawn_on(thread, Resume::Started(nargs), None, false)
        } else {
            None
        };
        let id = id.map_or(Value::Nil, |id| Value::Integer(id.0 as i64));
        if point(host) {
            let _ = push(host, l, &id);
            return Step::Return(1);
        }
        host.park(Resume::One(id));
        Step::Yield
    }
}

/// The body of every goroutine (main included), as a C function: `entry(f, ...)` calls `f(...)`
/// under `lua_pcallk` with the prelude's message handler and returns nothing, or FAILED and the
/// handled error. A C entry is one call frame less per goroutine than a Lua function around
/// `xpcall` (64 bytes of every parked goroutine) and runs no Lua instructions of its own.
pub(super) fn goroutine_entry(lua: &Lua, on_error: Value, failed: Value) -> mlua::Result<Value> {
    // SAFETY: `exec_raw` pushed the two upvalues; `lua_pushcclosure` pops them and pushes the
    // closure, returned as a `Value`.
    unsafe { lua.exec_raw::<Value>((on_error, failed), |l| ffi::lua_pushcclosure(l, entry, 2)) }
}

unsafe extern "C-unwind" fn entry(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with `f` and its arguments; the handler goes below them (slot 1),
    // and `lua_pcallk` with a continuation lets `f` yield through this frame. No Rust value
    // lives here.
    unsafe {
        let nargs = ffi::lua_gettop(l) - 1;
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        let status = ffi::lua_pcallk(l, nargs, 0, 1, 0, Some(entry_done));
        entry_done(l, status, 0)
    }
}

/// How the goroutine's function ended: normally (nothing to return), or with an error (the
/// handler's result, or the error itself for a memory error, which runs no handler).
unsafe extern "C-unwind" fn entry_done(
    l: *mut lua_State,
    status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: called by `entry` or by Lua as its continuation, with the error object on top
    // when `status` is an error.
    unsafe {
        if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
            return 0;
        }
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
        ffi::lua_insert(l, -2);
        2
    }
}

/// Restarts the count hook's countdown on the state's main thread, as installing the hook does
/// (`resethookcount`): a reused world's main thread runs the reset's own Lua code and report
/// helpers between runs, and each run must find the countdown where a new world's first run
/// finds it (the budget hook fires at the same instructions, and never inside a report).
pub(super) fn restart_hook_count(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: outside any run no Lua code is executing; the closure reads the current thread's
    // hook settings and sets them again unchanged, which only resets the countdown; it pushes
    // and pops nothing.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            let hook = ffi::lua_gethook(l);
            let mask = ffi::lua_gethookmask(l);
            let count = ffi::lua_gethookcount(l);
            ffi::lua_sethook(l, hook, mask, count);
        })
    }
}

/// `copy_table(t)`: a new table with `t`'s raw fields, sized for them at once, with a copy of
/// `t`'s metatable (raw fields) if it has one: the per-run copies of the pristine library and
/// module tables (`reuse.rs`). In C because the copies are most of a world's reset: Lua code
/// would rehash each table as it grows, and run the count hook at every instruction.
pub(super) fn copy_table_function(lua: &Lua) -> mlua::Result<Value> {
    // SAFETY: pushes a C function with no upvalues, returned as a `Value`.
    unsafe { lua.exec_raw::<Value>((), |l| ffi::lua_pushcfunction(l, copy_table)) }
}

unsafe extern "C-unwind" fn copy_table(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments at 1..; `luaL_checktype` raises a Lua error (no
    // Rust value with a destructor is alive here); the function uses at most 6 stack slots of the
    // LUA_MINSTACK (20) a C function is given; a memory error raised by `lua_createtable` or
    // `lua_rawset` unwinds through plain integers only.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        copy_fields(l, 1);
        if ffi::lua_getmetatable(l, 1) != 0 {
            let mt = ffi::lua_gettop(l);
            copy_fields(l, mt);
            ffi::lua_setmetatable(l, -3);
            ffi::lua_pop(l, 1);
        }
        1
    }
}

/// Pushes a table with the raw fields of the table at the absolute index `t`.
///
/// # Safety
/// `t` is an absolute index of a table on `l`'s stack, with 4 free slots above the top.
unsafe fn copy_fields(l: *mut lua_State, t: c_int) {
    // SAFETY: as the caller promises; `lua_next` is given a key from the same traversal each
    // time, and the table is not changed while it is traversed.
    unsafe {
        let mut fields: c_int = 0;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            fields = fields.saturating_add(1);
            ffi::lua_pop(l, 1);
        }
        let array = c_int::try_from(ffi::lua_rawlen(l, t))
            .unwrap_or(0)
            .min(fields);
        ffi::lua_createtable(l, array, fields - array);
        let copy = ffi::lua_gettop(l);
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, copy);
        }
    }
}
