//! The Rust half of the Lua modules: the `raw` functions the prelude wraps, and the deterministic
//! replacements of `math.random`, `os.time`, `os.clock` and `os.date`.
//!
//! Conventions: every function returns fixed-arity values; `(MISUSE, message)` asks the shim to
//! raise a Lua error at the user's line; `(PARK, nil)` asks it to yield to the scheduler.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, UserDataRef, Value};

use super::objects::{
    Dir, LuaAtomic, LuaChannel, LuaCond, LuaContext, LuaDetector, LuaInspector, LuaMutex, LuaOnce,
    LuaProfiler, LuaRwMutex, LuaSemaphore, LuaTimer, LuaWaitGroup,
};
use super::value::{LuaValue, describe};
use super::{Host, Resume, caller_location};
use crate::patterns::{ChannelInspector, DeadlockDetector, DeadlockInfo, Profiler};
use crate::runtime::{NANOS_PER_MS, Nanos, Runtime, Subject, ms_to_nanos, nanos_to_ms_f64};
use crate::sync::{
    Case, Channel, Cond, Context, Mutex, Once, OnceStart, RecvStart, RwMutex, SelectResult,
    SelectStart, Semaphore, SendStart, Timer, TimerTarget, TryRecvError, TrySendError, WaitGroup,
    select_start,
};

type R2 = (Value, Value);

/// `type(v)` as Lua would say it, with our handles named.
fn type_name(v: &Value) -> String {
    match v {
        Value::UserData(ud) => ud
            .type_name()
            .ok()
            .map(|s| s.to_string_lossy())
            .unwrap_or_else(|| "userdata".into()),
        other => other.type_name().to_string(),
    }
}

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

/// Borrows a handle of type `T`, or explains what was given instead.
fn handle<T: 'static>(v: &Value, fname: &str, what: &str) -> Result<UserDataRef<T>, String> {
    match v {
        Value::UserData(ud) => ud
            .borrow::<T>()
            .map_err(|_| format!("{fname}: expects {what} (got {})", type_name(v))),
        _ => Err(format!("{fname}: expects {what} (got {})", type_name(v))),
    }
}

/// A duration in milliseconds (a number; fractions allowed; negative counts as 0).
fn duration(v: &Value, fname: &str) -> Result<Nanos, String> {
    match v {
        Value::Integer(i) => Ok(ms_to_nanos(*i as f64)),
        // Past 1e13 ms (about 317 years) the clock would saturate: say so at the call.
        Value::Number(n) if n.is_infinite() || *n > 1e13 => Err(format!(
            "{fname}: duration must be finite and at most 1e13 ms (got {})",
            shown(v)
        )),
        Value::Number(n) if !n.is_nan() => Ok(ms_to_nanos(*n)),
        other => Err(format!(
            "{fname}: duration must be a number of milliseconds (got {})",
            shown(other)
        )),
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

fn int(i: usize) -> Value {
    Value::Integer(i as i64)
}

/// Builds the `raw` table handed to the prelude.
pub(crate) fn raw_table(lua: &Lua, host: &Rc<Host>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    macro_rules! func {
        ($name:literal, |$lua:ident, $h:ident, $args:tt : $ty:ty| $body:expr) => {{
            let $h = host.clone();
            t.set(
                $name,
                lua.create_function(move |$lua, $args: $ty| {
                    let $h = &$h;
                    $body
                })?,
            )?;
        }};
    }
    macro_rules! op {
        ($name:literal, |$lua:ident, $h:ident, $args:tt : $ty:ty| $body:expr) => {
            func!($name, |$lua, $h, $args: $ty| {
                #[allow(clippy::redundant_closure_call)]
                let r: Result<R2, String> = (|| $body)();
                Ok(match r {
                    Ok(v) => v,
                    Err(msg) => $h.misuse($lua, msg),
                })
            })
        };
    }

    // ---- plumbing --------------------------------------------------------------------------
    func!("set_entry", |_lua, h, f: Function| {
        *h.entry.borrow_mut() = Some(f);
        Ok(())
    });
    func!("set_where", |_lua, h, f: Function| {
        *h.where_fn.borrow_mut() = Some(f);
        Ok(())
    });
    func!("traceback", |lua, _h, (msg, level): (String, usize)| lua
        .traceback(Some(&msg), level)
        .map(|s| s.to_string_lossy()));
    func!("memory_error", |_lua, h, (): ()| {
        h.rt.hit_limit(
            crate::runtime::LimitKind::Memory,
            super::memory_message(h),
            None,
        );
        Ok(())
    });
    func!("note", |_lua, h, (what, detail): (String, String)| {
        let _ = what;
        if h.rt.tracing() {
            h.rt.emit("note", Subject::None, Some(detail));
        }
        Ok(())
    });
    func!("is_channel", |_lua, _h, v: Value| Ok(
        matches!(&v, Value::UserData(ud) if ud.is::<LuaChannel>())
    ));
    func!("name_channel", |_lua,
                           _h,
                           (ch, name): (
        UserDataRef<LuaChannel>,
        String
    )| {
        ch.ch.resource().set_name(&name);
        Ok(())
    });

    // ---- goroutines and time ----------------------------------------------------------------
    op!("spawn", |lua, h, args: MultiValue| spawn(
        lua, h, args, true
    ));
    op!("spawn_quiet", |lua, h, args: MultiValue| spawn(
        lua, h, args, false
    ));
    op!("yield", |_lua, h, (): ()| Ok(
        h.finish(Value::Nil, Value::Nil)
    ));
    op!("sleep", |lua, h, ms: Value| {
        let d = duration(&ms, "goroutine.sleep")?;
        if d == 0 {
            return Ok(h.finish(Value::Nil, Value::Nil));
        }
        h.rt.sleep(d);
        Ok(h.park_with(Resume::Nothing))
    });
    func!("now", |_lua, h, (): ()| Ok(ms_value(h.rt.now())));
    func!("id", |_lua, h, (): ()| Ok(h.rt.current().0 as i64));
    op!("name", |lua, h, new: Value| {
        let me = h.rt.current();
        match new {
            Value::Nil => {}
            Value::String(s) => h.rt.set_task_name(me, &s.to_string_lossy()),
            other => {
                return Err(format!(
                    "goroutine.name: name must be a string (got {})",
                    shown(&other)
                ));
            }
        }
        let name = h.rt.task_name(me);
        Ok((
            name.map(|n| Value::String(lua.create_string(&*n).expect("string")))
                .unwrap_or(Value::Nil),
            Value::Nil,
        ))
    });

    // ---- channels ---------------------------------------------------------------------------
    op!("channel", |lua, h, (cap, dir): (Value, Value)| {
        let cap = match &cap {
            Value::Nil => 0,
            v => match integer(v) {
                Some(c) if c >= 0 => c as usize,
                _ => {
                    return Err(format!(
                        "goroutine.channel: capacity must be a non-negative integer (got {})",
                        shown(v)
                    ));
                }
            },
        };
        let dir = match &dir {
            Value::Nil => Dir::Both,
            Value::String(s) => match &*s.to_string_lossy() {
                "bidirectional" => Dir::Both,
                "send" => Dir::Send,
                "receive" => Dir::Receive,
                _ => return Err(bad_dir(&dir)),
            },
            _ => return Err(bad_dir(&dir)),
        };
        let ch = Channel::new(&h.rt, cap, caller_location(lua));
        Ok((
            Value::UserData(
                lua.create_userdata(LuaChannel {
                    ch,
                    dir,
                    closable: true,
                })
                .map_err(|e| e.to_string())?,
            ),
            Value::Nil,
        ))
    });
    // The function forms (`goroutine.channel_send`) pass their own name for misuse messages.
    op!("ch_send", |lua,
                    h,
                    (ch, v, fname): (
        Value,
        Value,
        Option<String>
    )| {
        let c = chan(&ch, fname.as_deref().unwrap_or("channel:send"), Dir::Send)?;
        Ok(match c.ch.send_or_park(LuaValue(v)) {
            SendStart::Done(true) => h.finish(Value::Boolean(true), Value::Nil),
            SendStart::Done(false) => h.finish(Value::Boolean(false), h.closed_msg.clone()),
            SendStart::Parked(slot) => h.park_with(Resume::Send(slot)),
        })
    });
    op!("ch_recv", |lua, h, (ch, fname): (Value, Option<String>)| {
        let c = chan(
            &ch,
            fname.as_deref().unwrap_or("channel:receive"),
            Dir::Receive,
        )?;
        Ok(match c.ch.recv_or_park() {
            RecvStart::Ready(Some(v)) => h.finish(v.0, Value::Boolean(true)),
            RecvStart::Ready(None) => h.finish(Value::Nil, Value::Boolean(false)),
            RecvStart::Parked(slot) => h.park_with(Resume::Recv(slot)),
        })
    });
    op!("ch_check_recv", |_lua, _h, (ch, fname): (Value, String)| {
        chan(&ch, &fname, Dir::Receive)?;
        Ok((Value::Nil, Value::Nil))
    });
    op!("ch_try_send", |_lua, h, (ch, v): (Value, Value)| {
        let c = chan(&ch, "channel:try_send", Dir::Send)?;
        Ok(match c.ch.try_send(LuaValue(v)) {
            Ok(()) => h.finish(Value::Boolean(true), Value::Nil),
            Err(TrySendError::Full(_)) => {
                trace_refused(h, &c, "try_send", "full");
                h.finish(Value::Boolean(false), Value::Nil)
            }
            Err(TrySendError::Closed(_)) => h.finish(Value::Boolean(false), h.closed_msg.clone()),
        })
    });
    op!("ch_try_recv", |_lua, h, ch: Value| {
        let c = chan(&ch, "channel:try_receive", Dir::Receive)?;
        Ok(match c.ch.try_recv() {
            Ok(v) => h.finish(v.0, Value::Boolean(true)),
            Err(e) => {
                let why = if e == TryRecvError::Empty {
                    "empty"
                } else {
                    "closed"
                };
                trace_refused(h, &c, "try_receive", why);
                h.finish(Value::Nil, Value::Boolean(false))
            }
        })
    });
    op!("ch_close", |lua, h, ch: Value| {
        let c = chan(&ch, "channel:close", Dir::Both)?;
        if !c.closable {
            return Err("channel:close: this channel belongs to a timer or a context and only gosim closes it".into());
        }
        Ok(if c.ch.close() {
            h.finish(Value::Boolean(true), Value::Nil)
        } else {
            let msg = lua
                .create_string("channel already closed")
                .map_err(|e| e.to_string())?;
            h.finish(Value::Boolean(false), Value::String(msg))
        })
    });
    op!("ch_len", |_lua, h, ch: Value| {
        let n = int(chan(&ch, "channel:len", Dir::Both)?.ch.len());
        Ok(h.finish(n, Value::Nil))
    });
    op!("ch_cap", |_lua, _h, ch: Value| Ok((
        int(chan(&ch, "channel:cap", Dir::Both)?.ch.cap()),
        Value::Nil
    )));
    op!("ch_is_closed", |_lua, h, ch: Value| {
        let closed = chan(&ch, "channel:is_closed", Dir::Both)?.ch.is_closed();
        Ok(h.finish(Value::Boolean(closed), Value::Nil))
    });

    // select returns three values, so it is written out.
    {
        let h = host.clone();
        t.set(
            "select",
            lua.create_function(
                move |lua, (cases, fname, nil_marker): (Value, String, Value)| {
                    Ok(match select(&h, &cases, &fname, &nil_marker) {
                        Ok(v) => v,
                        Err(msg) => {
                            let (a, b) = h.misuse(lua, msg);
                            (a, b, Value::Nil)
                        }
                    })
                },
            )?,
        )?;
    }

    // ---- mutexes and friends ------------------------------------------------------------------
    op!("mutex", |lua, h, (): ()| new_handle(
        lua,
        LuaMutex(Mutex::new(&h.rt, caller_location(lua)))
    ));
    op!("mutex_lock", |lua, h, (m, retry): (Value, bool)| {
        let m = handle::<LuaMutex>(&m, "mutex:lock", "a mutex")?;
        Ok(if m.0.lock_or_park(retry) {
            h.finish(Value::Nil, Value::Nil)
        } else {
            h.park_with(Resume::Retry)
        })
    });
    op!("mutex_unlock", |_lua, h, m: Value| {
        let m = handle::<LuaMutex>(&m, "mutex:unlock", "a mutex")?;
        m.0.unlock().map_err(|e| format!("mutex:unlock: {e}"))?;
        Ok(h.finish(Value::Nil, Value::Nil))
    });
    op!("mutex_try_lock", |_lua, h, m: Value| {
        let m = handle::<LuaMutex>(&m, "mutex:try_lock", "a mutex")?;
        let ok = m.0.try_lock();
        Ok(h.finish(Value::Boolean(ok), Value::Nil))
    });

    op!("rwmutex", |lua, h, (): ()| new_handle(
        lua,
        LuaRwMutex(RwMutex::new(&h.rt, caller_location(lua)))
    ));
    op!("rw_check", |_lua, _h, m: Value| {
        handle::<LuaRwMutex>(&m, "rwmutex:rlocker", "an rwmutex")?;
        Ok((Value::Nil, Value::Nil))
    });
    op!("rw_lock", |lua, h, m: Value| {
        let m = handle::<LuaRwMutex>(&m, "rwmutex:lock", "an rwmutex")?;
        Ok(h.granted_or_parked(m.0.lock_or_park()))
    });
    op!("rw_rlock", |lua, h, m: Value| {
        let m = handle::<LuaRwMutex>(&m, "rwmutex:rlock", "an rwmutex")?;
        Ok(h.granted_or_parked(m.0.rlock_or_park()))
    });
    op!("rw_unlock", |_lua, h, m: Value| {
        let m = handle::<LuaRwMutex>(&m, "rwmutex:unlock", "an rwmutex")?;
        m.0.unlock().map_err(|e| format!("rwmutex:unlock: {e}"))?;
        Ok(h.finish(Value::Nil, Value::Nil))
    });
    op!("rw_runlock", |_lua, h, m: Value| {
        let m = handle::<LuaRwMutex>(&m, "rwmutex:runlock", "an rwmutex")?;
        m.0.runlock().map_err(|e| format!("rwmutex:runlock: {e}"))?;
        Ok(h.finish(Value::Nil, Value::Nil))
    });
    op!("rw_try_lock", |_lua, h, m: Value| {
        let ok = handle::<LuaRwMutex>(&m, "rwmutex:try_lock", "an rwmutex")?
            .0
            .try_lock();
        Ok(h.finish(Value::Boolean(ok), Value::Nil))
    });
    op!("rw_try_rlock", |_lua, h, m: Value| {
        let ok = handle::<LuaRwMutex>(&m, "rwmutex:try_rlock", "an rwmutex")?
            .0
            .try_rlock();
        Ok(h.finish(Value::Boolean(ok), Value::Nil))
    });

    op!("semaphore", |lua, h, n: Value| {
        let n = match integer(&n) {
            Some(n) if n > 0 => n as usize,
            _ => {
                return Err(format!(
                    "goroutine.semaphore: capacity must be a positive integer (got {})",
                    shown(&n)
                ));
            }
        };
        new_handle(
            lua,
            LuaSemaphore(Semaphore::new(&h.rt, n, caller_location(lua))),
        )
    });
    op!("sem_acquire", |lua, h, s: Value| {
        let s = handle::<LuaSemaphore>(&s, "semaphore:acquire", "a semaphore")?;
        Ok(h.granted_or_parked(s.0.acquire_or_park()))
    });
    op!("sem_release", |_lua, h, s: Value| {
        let s = handle::<LuaSemaphore>(&s, "semaphore:release", "a semaphore")?;
        s.0.release()
            .map_err(|e| format!("semaphore:release: {e}"))?;
        Ok(h.finish(Value::Nil, Value::Nil))
    });
    op!("sem_try_acquire", |_lua, h, s: Value| {
        let ok = handle::<LuaSemaphore>(&s, "semaphore:try_acquire", "a semaphore")?
            .0
            .try_acquire();
        Ok(h.finish(Value::Boolean(ok), Value::Nil))
    });
    op!("sem_available", |_lua, h, s: Value| {
        let sem = handle::<LuaSemaphore>(&s, "semaphore:available", "a semaphore")?;
        Ok(h.finish(int(sem.0.available()), Value::Nil))
    });
    op!("sem_capacity", |_lua, _h, s: Value| {
        Ok((
            int(
                handle::<LuaSemaphore>(&s, "semaphore:capacity", "a semaphore")?
                    .0
                    .capacity(),
            ),
            Value::Nil,
        ))
    });

    op!("wait_group", |lua, h, (): ()| new_handle(
        lua,
        LuaWaitGroup(WaitGroup::new(&h.rt, caller_location(lua)))
    ));
    // `wg:done()` is `wg:add(-1)` under its own name (the shim passes which one was called).
    op!(
        "wg_add",
        |_lua, h, (wg, delta, fname): (Value, Value, String)| {
            let fname = fname.as_str();
            let wg = handle::<LuaWaitGroup>(&wg, fname, "a wait group")?;
            let delta = match &delta {
                Value::Nil => 1,
                v => integer(v).ok_or_else(|| {
                    format!("{fname}: delta must be an integer (got {})", shown(v))
                })?,
            };
            wg.0.add(delta).map_err(|e| format!("{fname}: {e}"))?;
            Ok(h.finish(Value::Nil, Value::Nil))
        }
    );
    op!("wg_wait", |lua, h, wg: Value| {
        let wg = handle::<LuaWaitGroup>(&wg, "wait_group:wait", "a wait group")?;
        Ok(h.granted_or_parked(wg.0.wait_or_park()))
    });

    op!("atomic_int", |lua, h, init: Value| {
        let init = match &init {
            Value::Nil => 0,
            v => integer(v).ok_or_else(|| {
                format!(
                    "goroutine.atomic_int: initial value must be an integer (got {})",
                    shown(v)
                )
            })?,
        };
        let res = h.rt.new_resource("atomic", caller_location(lua));
        new_handle(
            lua,
            LuaAtomic {
                value: Cell::new(init),
                res,
            },
        )
    });
    op!("atomic_op", |_lua,
                      h,
                      (a, what, x, y): (
        Value,
        String,
        Value,
        Value
    )| {
        let fname = format!("atomic_int:{what}");
        let a = handle::<LuaAtomic>(&a, &fname, "an atomic_int")?;
        let need = |v: &Value, arg: &str| {
            integer(v)
                .ok_or_else(|| format!("{fname}: {arg} must be an integer (got {})", shown(v)))
        };
        let cur = a.value.get();
        let out = match what.as_str() {
            "add" => {
                let d = need(&x, "delta")?;
                let n = cur.wrapping_add(d);
                a.value.set(n);
                Value::Integer(n)
            }
            "load" => Value::Integer(cur),
            "store" => {
                a.value.set(need(&x, "value")?);
                Value::Nil
            }
            "swap" => {
                a.value.set(need(&x, "value")?);
                Value::Integer(cur)
            }
            _ => {
                let (old, new) = (need(&x, "old")?, need(&y, "new")?);
                let swapped = cur == old;
                if swapped {
                    a.value.set(new);
                }
                Value::Boolean(swapped)
            }
        };
        if h.rt.tracing() {
            let detail = format!("{} (now {})", describe(&out), a.value.get());
            h.rt.emit(
                atomic_verb(&what),
                Subject::Resource(a.res.clone()),
                Some(detail),
            );
        }
        Ok(h.finish(out, Value::Nil))
    });

    op!("once", |lua, h, (): ()| new_handle(
        lua,
        LuaOnce(Once::new(&h.rt, caller_location(lua)))
    ));
    op!("once_begin", |lua, h, o: Value| {
        let o = handle::<LuaOnce>(&o, "once:call", "a once")?;
        Ok(match o.0.begin() {
            OnceStart::Run => (Value::Boolean(true), Value::Nil),
            OnceStart::Done => h.finish(Value::Boolean(false), Value::Nil),
            OnceStart::Parked => h.park_with(Resume::One(Value::Boolean(false))),
        })
    });
    func!("once_finish", |_lua, _h, o: UserDataRef<LuaOnce>| {
        o.0.finish();
        Ok(())
    });

    op!("cond", |lua, h, (): ()| new_handle(
        lua,
        LuaCond {
            cond: Cond::new(&h.rt, caller_location(lua)),
            locker: RefCell::new(Value::Nil)
        }
    ));
    func!("cond_set_locker", |_lua,
                              _h,
                              (c, l): (
        UserDataRef<LuaCond>,
        Value
    )| {
        *c.locker.borrow_mut() = l;
        Ok(())
    });
    op!("cond_locker", |_lua, _h, (c, fname): (Value, String)| {
        let c = handle::<LuaCond>(&c, &fname, "a cond")?;
        Ok((c.locker.borrow().clone(), Value::Nil))
    });
    op!("cond_ticket", |_lua, _h, c: Value| {
        let c = handle::<LuaCond>(&c, "cond:wait", "a cond")?;
        Ok((Value::Integer(c.cond.ticket() as i64), Value::Nil))
    });
    func!("cond_abandon", |_lua,
                           _h,
                           (c, ticket): (
        UserDataRef<LuaCond>,
        u64
    )| {
        c.cond.abandon(ticket);
        Ok(())
    });
    op!("cond_wait", |lua, h, (c, ticket): (Value, u64)| {
        let c = handle::<LuaCond>(&c, "cond:wait", "a cond")?;
        Ok(h.granted_or_parked(c.cond.wait_or_park(ticket)))
    });
    op!("cond_signal", |_lua, h, c: Value| {
        handle::<LuaCond>(&c, "cond:signal", "a cond")?
            .cond
            .signal();
        Ok(h.finish(Value::Nil, Value::Nil))
    });
    op!("cond_broadcast", |_lua, h, c: Value| {
        handle::<LuaCond>(&c, "cond:broadcast", "a cond")?
            .cond
            .broadcast();
        Ok(h.finish(Value::Nil, Value::Nil))
    });

    // ---- context ------------------------------------------------------------------------------
    op!("context", |lua, h, (): ()| {
        new_handle(
            lua,
            LuaContext {
                ctx: Context::background(&h.rt, caller_location(lua)),
                done: RefCell::new(None),
            },
        )
    });
    op!(
        "ctx_child",
        |lua, h, (c, how, ms): (Value, String, Value)| {
            let fname = format!("context:{how}");
            let parent = handle::<LuaContext>(&c, &fname, "a context")?;
            let at = caller_location(lua);
            let ctx = match how.as_str() {
                "with_cancel" => parent.ctx.with_cancel(at),
                "with_timeout" => parent.ctx.with_timeout(duration(&ms, &fname)?, at),
                _ => parent.ctx.with_deadline(duration(&ms, &fname)?, at),
            };
            new_handle(
                lua,
                LuaContext {
                    ctx,
                    done: RefCell::new(None),
                },
            )
        }
    );
    op!("ctx_cancel", |_lua, h, c: Value| {
        handle::<LuaContext>(&c, "context:cancel", "a context")?
            .ctx
            .cancel();
        Ok(h.finish(Value::Nil, Value::Nil))
    });
    op!("ctx_is_cancelled", |_lua, h, c: Value| {
        let v = handle::<LuaContext>(&c, "context:is_cancelled", "a context")?
            .ctx
            .is_cancelled();
        Ok(h.finish(Value::Boolean(v), Value::Nil))
    });
    op!("ctx_err", |lua, h, c: Value| {
        let err = handle::<LuaContext>(&c, "context:err", "a context")?
            .ctx
            .err();
        let err = match err {
            Some(e) => Value::String(lua.create_string(e).map_err(|e| e.to_string())?),
            None => Value::Nil,
        };
        Ok(h.finish(err, Value::Nil))
    });
    op!("ctx_deadline", |_lua, _h, c: Value| {
        Ok(
            match handle::<LuaContext>(&c, "context:deadline", "a context")?
                .ctx
                .deadline()
            {
                Some(d) => (ms_value(d), Value::Boolean(true)),
                None => (Value::Nil, Value::Boolean(false)),
            },
        )
    });
    op!("ctx_done", |lua, h, c: Value| {
        let c = handle::<LuaContext>(&c, "context:done", "a context")?;
        let existing = c.done.borrow().clone();
        let ch = match existing {
            Some(ch) => ch,
            None => {
                let ch: Channel<LuaValue> = Channel::new(&h.rt, 0, caller_location(lua));
                ch.resource()
                    .set_name(&format!("done of {}", c.ctx.resource()));
                c.ctx.on_cancel(Box::new(ch.clone()));
                *c.done.borrow_mut() = Some(ch.clone());
                ch
            }
        };
        new_handle(lua, LuaChannel::owned_by_gosim(ch))
    });

    // ---- timers -------------------------------------------------------------------------------
    op!("after", |lua, h, ms: Value| {
        let d = duration(&ms, "goroutine.after")?;
        let at = caller_location(lua);
        let ch: Channel<LuaValue> = Channel::new(&h.rt, 1, at.clone());
        ch.resource().set_name("after");
        Timer::start(
            &h.rt,
            "timer",
            d,
            None,
            Box::new(ChanTarget { ch: ch.clone() }),
            at,
        );
        new_handle(lua, LuaChannel::owned_by_gosim(ch))
    });
    op!("timer", |lua, h, (ms, kind, f): (Value, String, Value)| {
        let fname = format!("goroutine.{kind}");
        let d = duration(&ms, &fname)?;
        let at = caller_location(lua);
        let (timer, chan, periodic) = match kind.as_str() {
            "after_func" => {
                if !matches!(f, Value::Function(_) | Value::Table(_)) {
                    return Err(format!("{fname}: expects a function"));
                }
                let target = FuncTarget {
                    host: Rc::downgrade(h),
                    f,
                };
                (
                    Timer::start(&h.rt, "after_func", d, None, Box::new(target), at),
                    None,
                    false,
                )
            }
            _ => {
                let periodic = kind == "ticker";
                if periodic && d == 0 {
                    return Err(format!(
                        "{fname}: period must be positive (got {})",
                        shown(&ms)
                    ));
                }
                let ch: Channel<LuaValue> = Channel::new(&h.rt, 1, at.clone());
                ch.resource()
                    .set_name(if periodic { "ticks" } else { "timer" });
                let period = periodic.then_some(d);
                let kind = if periodic { "ticker" } else { "timer" };
                let timer = Timer::start(
                    &h.rt,
                    kind,
                    d,
                    period,
                    Box::new(ChanTarget { ch: ch.clone() }),
                    at,
                );
                (timer, Some(ch), periodic)
            }
        };
        new_handle(
            lua,
            LuaTimer {
                timer,
                chan,
                periodic,
            },
        )
    });
    op!("timer_channel", |lua, _h, t: Value| {
        let t = handle::<LuaTimer>(&t, "timer:channel", "a timer or ticker")?;
        let Some(ch) = t.chan.clone() else {
            return Err("timer:channel: an after_func timer has no channel".to_string());
        };
        new_handle(lua, LuaChannel::owned_by_gosim(ch))
    });
    op!("timer_stop", |_lua, h, t: Value| {
        let stopped = handle::<LuaTimer>(&t, "timer:stop", "a timer or ticker")?
            .timer
            .stop();
        Ok(h.finish(Value::Boolean(stopped), Value::Nil))
    });
    op!("timer_reset", |_lua, h, (t, ms): (Value, Value)| {
        let t = handle::<LuaTimer>(&t, "timer:reset", "a timer or ticker")?;
        let fname = if t.periodic {
            "ticker:reset"
        } else {
            "timer:reset"
        };
        let d = duration(&ms, fname)?;
        if t.periodic && d == 0 {
            return Err(format!(
                "{fname}: period must be positive (got {})",
                shown(&ms)
            ));
        }
        let was = t.timer.reset(d);
        Ok(h.finish(Value::Boolean(was), Value::Nil))
    });

    // ---- observability (seed 6.x): reads only, never a scheduling point ------------------------
    op!("profiler", |lua, h, (): ()| new_handle(
        lua,
        LuaProfiler(Profiler::new(&h.rt))
    ));
    op!("prof_do", |lua, _h, (p, what): (Value, String)| {
        let fname = format!("profiler:{what}");
        let p = handle::<LuaProfiler>(&p, &fname, "a profiler")?;
        match what.as_str() {
            "start" => p.0.start(),
            "stop" => p.0.stop(),
            _ => {
                let st = p.0.stats();
                let t = lua.create_table().map_err(|e| e.to_string())?;
                let set = |k: &str, v: Value| t.set(k, v).map_err(|e| e.to_string());
                set("active", Value::Integer(st.active as i64))?;
                set("max_active", Value::Integer(st.max_active as i64))?;
                set("total_created", Value::Integer(st.total_created as i64))?;
                set("completed", Value::Integer(st.completed as i64))?;
                set("failed", Value::Integer(st.failed as i64))?;
                set("avg_lifetime", Value::Number(st.avg_lifetime_ms))?;
                return Ok((Value::Table(t), Value::Nil));
            }
        }
        Ok((Value::Nil, Value::Nil))
    });
    op!("channel_inspector", |lua, _h, ch: Value| {
        let c = handle::<LuaChannel>(&ch, "goroutine.channel_inspector", "a channel")?;
        let res = c.ch.resource().clone();
        new_handle(lua, LuaInspector(ChannelInspector::new(&c.ch), res))
    });
    op!("insp_stats", |lua, _h, (i, what): (Value, String)| {
        let i = handle::<LuaInspector>(&i, &format!("inspector:{what}"), "a channel inspector")?;
        let st = i.0.stats();
        let int = |n: u64| Value::Integer(n as i64);
        let one = match what.as_str() {
            "len" => int(st.len as u64),
            "cap" => int(st.cap as u64),
            "total_sent" => int(st.total_sent),
            "total_received" => int(st.total_received),
            "dropped" => int(st.dropped),
            "is_closed" => Value::Boolean(st.is_closed),
            "blocked_senders" => int(st.blocked_senders as u64),
            "blocked_receivers" => int(st.blocked_receivers as u64),
            _ => {
                let t = lua.create_table().map_err(|e| e.to_string())?;
                for (k, v) in [
                    ("len", int(st.len as u64)),
                    ("cap", int(st.cap as u64)),
                    ("total_sent", int(st.total_sent)),
                    ("total_received", int(st.total_received)),
                    ("dropped", int(st.dropped)),
                    ("is_closed", Value::Boolean(st.is_closed)),
                    ("blocked_senders", int(st.blocked_senders as u64)),
                    ("blocked_receivers", int(st.blocked_receivers as u64)),
                ] {
                    t.set(k, v).map_err(|e| e.to_string())?;
                }
                Value::Table(t)
            }
        };
        Ok((one, Value::Nil))
    });
    op!("detector", |lua, h, timeout: Value| {
        let d = duration(&timeout, "goroutine.deadlock_detector")?;
        new_handle(lua, LuaDetector(DeadlockDetector::new(&h.rt, d)))
    });
    op!("detector_check", |lua, _h, d: Value| {
        let d = handle::<LuaDetector>(&d, "deadlock_detector:check", "a deadlock detector")?;
        match d.0.check() {
            None => Ok((Value::Nil, Value::Nil)),
            Some(info) => Ok((
                Value::Table(deadlock_info(lua, &info).map_err(|e| e.to_string())?),
                Value::Nil,
            )),
        }
    });
    func!("mark_observer", |_lua, h, id: i64| {
        h.rt.mark_observer(crate::runtime::TaskId(id as u64));
        Ok(())
    });
    func!("mark_failed", |_lua, h, (): ()| {
        h.rt.mark_failed(h.rt.current());
        Ok(())
    });

    // ---- log and sim --------------------------------------------------------------------------
    func!("log", |_lua, h, (level, msg): (String, String)| {
        if !h.rt.is_simulated() {
            // Production: logs are printed as they happen (and traced if tracing is on).
            let me = h.rt.try_current().unwrap_or(crate::runtime::TaskId(0));
            let who = crate::runtime::format_ms(h.rt.now());
            let name = h.rt.task_name(me);
            let label = match name {
                Some(n) => format!("{me}({n})"),
                None => me.to_string(),
            };
            if level == "print" {
                println!("{msg}");
            } else {
                println!("{who} {label} {level}: {msg}");
            }
        }
        if h.rt.tracing() {
            let verb = match level.as_str() {
                "info" => "log.info",
                "warn" => "log.warn",
                "error" => "log.error",
                "debug" => "log.debug",
                "table" => "log.table",
                _ => "log.print",
            };
            h.rt.emit(verb, Subject::None, Some(msg));
        }
        Ok(())
    });
    func!("seed", |_lua, h, (): ()| Ok(h.rt.seed() as i64));
    func!("is_simulated", |_lua, h, (): ()| Ok(h.rt.is_simulated()));
    op!("buggify", |_lua, h, p: Value| {
        let p = match &p {
            Value::Nil => 0.25,
            Value::Integer(i) => *i as f64,
            Value::Number(n) => *n,
            other => {
                return Err(format!(
                    "sim.buggify: probability must be a number in [0, 1] (got {})",
                    shown(other)
                ));
            }
        };
        if !(0.0..=1.0).contains(&p) {
            return Err(format!(
                "sim.buggify: probability must be a number in [0, 1] (got {p})"
            ));
        }
        let fire = h.rt.is_simulated() && h.rt.random_unit() < p;
        if fire && h.rt.tracing() {
            h.rt.emit("buggify", Subject::None, None);
        }
        Ok((Value::Boolean(fire), Value::Nil))
    });
    func!(
        "assert_event",
        |lua, h, (kind, msg, ok): (String, String, bool)| {
            if kind == "sometimes" {
                let mut map = h.sometimes.borrow_mut();
                let e = map.entry(msg).or_insert(false);
                *e |= ok;
            } else {
                if h.rt.tracing() {
                    h.rt.emit("assert", Subject::None, Some(format!("failed: {msg}")));
                }
                // The run fails here even if a `pcall` catches the error the shim raises next.
                let me = h.rt.current();
                let location = super::caller_location(lua).map(|l| l.to_string());
                let text = match &location {
                    Some(l) => format!("{l}: assertion failed: {msg}"),
                    None => format!("assertion failed: {msg}"),
                };
                h.rt.fail(crate::runtime::Failure {
                    kind: crate::runtime::FailureKind::Assertion,
                    task: Some((me, h.rt.task_name(me).map(|n| n.to_string()))),
                    message: text,
                    location,
                    stuck: Vec::new(),
                    cycle: Vec::new(),
                    notes: Vec::new(),
                    time: h.rt.now(),
                });
            }
            Ok(())
        }
    );
    Ok(t)
}

/// The table handed to `on_deadlock` handlers.
fn deadlock_info(lua: &Lua, info: &DeadlockInfo) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("time", ms_value(info.time))?;
    t.set("stuck_count", info.stuck_count as i64)?;
    t.set("blocked_channels", info.blocked_channels as i64)?;
    let stuck = lua.create_table()?;
    for (i, b) in info.stuck.iter().enumerate() {
        let g = lua.create_table()?;
        g.set("id", b.id.0 as i64)?;
        g.set("name", b.name.clone())?;
        g.set("op", b.op)?;
        g.set(
            "waits_on",
            lua.create_sequence_from(b.waits_on.iter().cloned())?,
        )?;
        g.set("since", ms_value(b.since))?;
        g.set("location", b.location.clone())?;
        stuck.raw_set(i + 1, g)?;
    }
    t.set("stuck", stuck)?;
    if let Some(cycle) = &info.cycle {
        t.set("cycle", lua.create_sequence_from(cycle.iter().cloned())?)?;
    }
    Ok(t)
}

/// A non-blocking operation that did nothing still leaves a trace line (it was a scheduling point).
fn trace_refused(h: &Host, c: &LuaChannel, verb: &'static str, why: &str) {
    if h.rt.tracing() {
        h.rt.emit(
            verb,
            Subject::Resource(c.ch.resource().clone()),
            Some(why.to_string()),
        );
    }
}

fn atomic_verb(what: &str) -> &'static str {
    match what {
        "add" => "atomic.add",
        "load" => "atomic.load",
        "store" => "atomic.store",
        "swap" => "atomic.swap",
        _ => "atomic.cas",
    }
}

fn bad_dir(v: &Value) -> String {
    format!(
        "goroutine.channel: direction must be \"bidirectional\", \"send\" or \"receive\" (got {})",
        shown(v)
    )
}

fn ms_value(ns: Nanos) -> Value {
    if ns.is_multiple_of(NANOS_PER_MS) && ns / NANOS_PER_MS <= i64::MAX as u64 {
        Value::Integer((ns / NANOS_PER_MS) as i64)
    } else {
        Value::Number(nanos_to_ms_f64(ns))
    }
}

fn new_handle<T: mlua::UserData + 'static>(lua: &Lua, v: T) -> Result<R2, String> {
    Ok((
        Value::UserData(lua.create_userdata(v).map_err(|e| e.to_string())?),
        Value::Nil,
    ))
}

/// Borrows a channel handle and checks that it may be used in direction `need`.
fn chan(v: &Value, fname: &str, need: Dir) -> Result<UserDataRef<LuaChannel>, String> {
    let c = handle::<LuaChannel>(v, fname, "a channel")?;
    match (need, c.dir) {
        (Dir::Send, Dir::Receive) => Err(format!("{fname}: cannot send on a receive-only channel")),
        (Dir::Receive, Dir::Send) => Err(format!("{fname}: cannot receive on a send-only channel")),
        _ => Ok(c),
    }
}

fn spawn(lua: &Lua, h: &Rc<Host>, args: MultiValue, with_options: bool) -> Result<R2, String> {
    let mut args = args.into_iter();
    // The prelude has checked that a table argument is callable (has `__call`).
    let f = match args.next() {
        Some(f @ (Value::Function(_) | Value::Table(_))) => f,
        other => {
            return Err(format!(
                "goroutine.spawn: expects a function (got {})",
                shown(&other.unwrap_or(Value::Nil))
            ));
        }
    };
    let name = match args.next() {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    };
    let daemon = if with_options {
        matches!(args.next(), Some(Value::Boolean(true)))
    } else {
        false
    };
    let rest: MultiValue = args.collect();
    let id = h
        .spawn(lua, f, name.as_deref(), daemon, rest)
        .map_err(|e| format!("goroutine.spawn: {e}"))?;
    let Some(id) = id else {
        // The run has ended with a limit: stop this goroutine here rather than raise an error a
        // `pcall` could catch and loop on.
        return Ok(h.finish(Value::Nil, Value::Nil));
    };
    let id = Value::Integer(id.0 as i64);
    Ok(if with_options {
        h.finish(id, Value::Nil)
    } else {
        (id, Value::Nil)
    })
}

/// Parses the case array and starts the select.
fn select(
    h: &Rc<Host>,
    cases: &Value,
    fname: &str,
    nil_marker: &Value,
) -> Result<(Value, Value, Value), String> {
    let Value::Table(list) = cases else {
        return Err(format!(
            "{fname}: expects an array of cases (got {})",
            type_name(cases)
        ));
    };
    let n = list.raw_len();
    let mut parsed = Vec::with_capacity(n);
    let mut map = Vec::with_capacity(n);
    let mut default_idx = None;
    for i in 1..=n {
        let case: Value = list.raw_get(i).map_err(|e| e.to_string())?;
        let Value::Table(case) = case else {
            return Err(format!(
                "{fname}: case {i} must be a table (got {})",
                type_name(&case)
            ));
        };
        let get = |k: &str| -> Value { case.raw_get(k).unwrap_or(Value::Nil) };
        if get("default").as_boolean() == Some(true) {
            if default_idx.is_some() {
                return Err(format!("{fname}: more than one default case"));
            }
            default_idx = Some(i);
            continue;
        }
        let handler = get("handler");
        if !matches!(handler, Value::Nil | Value::Function(_)) {
            return Err(format!(
                "{fname}: case {i} handler must be a function (got {})",
                type_name(&handler)
            ));
        }
        let channel = get("channel");
        let send = get("send");
        let receive = get("receive").as_boolean() == Some(true);
        if receive != send.is_nil() {
            return Err(format!(
                "{fname}: case {i} needs exactly one of receive = true or send = value"
            ));
        }
        let case = match channel {
            Value::Boolean(false) => Case::Never,
            Value::Nil => return Err(format!("{fname}: case {i} has no channel")),
            ch => {
                let c = chan(
                    &ch,
                    &format!("{fname} case {i}"),
                    if receive { Dir::Receive } else { Dir::Send },
                )?;
                if receive {
                    Case::Recv(c.ch.clone())
                } else {
                    let v = if send == *nil_marker {
                        Value::Nil
                    } else {
                        send
                    };
                    Case::Send(c.ch.clone(), LuaValue(v))
                }
            }
        };
        parsed.push(case);
        map.push(i);
    }
    if parsed.is_empty() && default_idx.is_none() {
        return Err(format!(
            "{fname}: no cases (a select with nothing to wait for blocks forever)"
        ));
    }
    let has_default = default_idx.is_some();
    match select_start(&h.rt, parsed, has_default) {
        SelectStart::Done(SelectResult::Default) => {
            let idx = Value::Integer(default_idx.expect("default taken only when present") as i64);
            Ok(h.finish3(idx, Value::Nil, Value::Nil))
        }
        SelectStart::Done(result) => {
            let mut it = select_values(h, result, &map).into_iter();
            let mut next = || it.next().unwrap_or(Value::Nil);
            let (a, b, c) = (next(), next(), next());
            Ok(h.finish3(a, b, c))
        }
        SelectStart::Parked(wait) => {
            let (p, _) = h.park_with(Resume::Select(wait, map));
            Ok((p, Value::Nil, Value::Nil))
        }
    }
}

/// The Lua values of a finished select: `index, value, ok`.
pub(crate) fn select_values(h: &Host, result: SelectResult<LuaValue>, map: &[usize]) -> MultiValue {
    let idx = |i: usize| Value::Integer(map[i] as i64);
    let v = match result {
        SelectResult::Recv(i, Some(v)) => vec![idx(i), v.0, Value::Boolean(true)],
        SelectResult::Recv(i, None) => vec![idx(i), Value::Nil, Value::Boolean(false)],
        SelectResult::Sent(i) => vec![idx(i), Value::Boolean(true), Value::Nil],
        SelectResult::SendClosed(i) => vec![idx(i), Value::Boolean(false), h.closed_msg.clone()],
        SelectResult::Default => unreachable!("the default case is handled by the caller"),
    };
    MultiValue::from_vec(v)
}

/// Delivers the time on a channel, dropping it if the buffer is full (Go's timers do the same).
struct ChanTarget {
    ch: Channel<LuaValue>,
}

impl TimerTarget for ChanTarget {
    fn fire(&self, _rt: &Runtime, now: Nanos) {
        let _ = self.ch.try_send(LuaValue(ms_value(now)));
    }

    fn may_wake(&self) -> bool {
        self.ch.blocked_receivers() > 0
    }

    fn drain(&self) -> bool {
        self.ch.discard_buffered()
    }
}

/// Spawns `f` as a new goroutine (Go's `time.AfterFunc`).
struct FuncTarget {
    host: std::rc::Weak<Host>,
    f: Value,
}

impl TimerTarget for FuncTarget {
    fn fire(&self, _rt: &Runtime, _now: Nanos) {
        let Some(host) = self.host.upgrade() else {
            return;
        };
        let Some(lua) = host.weak_lua.try_upgrade() else {
            return;
        };
        let _ = host.spawn(
            &lua,
            self.f.clone(),
            Some("after_func"),
            false,
            MultiValue::new(),
        );
    }

    fn may_wake(&self) -> bool {
        true
    }

    fn drain(&self) -> bool {
        false
    }
}
