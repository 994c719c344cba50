//! The Rust half of the Lua modules: the `raw` functions the prelude wraps, and the deterministic
//! replacements of `math.random`, `os.time`, `os.clock` and `os.date`.
//!
//! Conventions: every function returns fixed-arity values; `(MISUSE, message)` asks the shim to
//! raise a Lua error at the user's line; `(PARK, nil)` asks it to yield to the scheduler.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, UserDataRef, Value};

use super::objects::{Dir, LuaChannel, LuaCond, LuaDetector, LuaOnce};
use super::value::LuaValue;
use super::{Host, Resume, caller_location};
use crate::patterns::{DeadlockDetector, DeadlockInfo};
use crate::runtime::{NANOS_PER_MS, Nanos, Subject, ms_to_nanos, nanos_to_ms_f64};
use crate::sync::{Case, Cond, Once, OnceStart, SelectResult, SelectStart, select_start};

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
    t.set("declared", super::bind::declarations(lua, host)?)?;
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
    // ---- channels ---------------------------------------------------------------------------
    op!("ch_check_recv", |_lua, _h, (ch, fname): (Value, String)| {
        chan(&ch, &fname, Dir::Receive)?;
        Ok((Value::Nil, Value::Nil))
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
    // ---- observability (seed 6.x): reads only, never a scheduling point ------------------------
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
        super::bind::log_line(h, &level, msg);
        Ok(())
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
                let task = Some((me, h.rt.task_name(me).map(|n| n.to_string())));
                h.rt.fail(crate::runtime::Failure::in_task(
                    crate::runtime::FailureKind::Assertion,
                    task,
                    text,
                    location,
                    h.rt.now(),
                ));
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
            ch if receive
                && super::bind::borrow::<super::objects::LuaOverflowChannel>(&ch).is_some() =>
            {
                // An overflow channel is a channel underneath: receiving from it is a plain
                // receive (a send case would bypass its strategy, so it is refused below).
                let o = super::bind::borrow::<super::objects::LuaOverflowChannel>(&ch)
                    .expect("checked");
                Case::Recv(o.0.channel().clone())
            }
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
