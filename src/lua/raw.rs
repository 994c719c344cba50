//! The prelude's private functions: the `raw` table it receives, which no user script can reach.
//!
//! What is here is plumbing the prelude needs for itself (the goroutine entry, `where`, tracebacks,
//! the memory limit, `print`'s and `log.table`'s log lines, the assertion events), and the Rust
//! halves of the few Lua combinators that still call user code with their own protocol (`once`,
//! `cond`, the deadlock detector's periodic goroutine). Every public function and method is
//! declared in `bind/`; so are the private ones of the pattern loops (module `raw` there:
//! `raw.select`, `raw.pool_next`, `raw.stage_emit`...), which the prelude finds in this same
//! table. `raw.lookup(owner, name)` makes a declared binding for this state (first use).
//!
//! Conventions: every function returns fixed-arity values; `(MISUSE, message)` asks the shim to
//! raise a Lua error at the user's line; `(PARK, nil)` asks it to yield to the scheduler.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, UserDataRef, Value};

use super::bind::select::channel_for;
use super::bind::{ms_value, shown, type_name};
use super::objects::{Dir, LuaCond, LuaDetector, LuaOnce};
use super::{Host, Resume, caller_location};
use crate::patterns::{DeadlockDetector, DeadlockInfo};
use crate::runtime::{Nanos, Subject, ms_to_nanos};
use crate::sync::{Cond, Once, OnceStart};

type R2 = (Value, Value);

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
    // A declared binding, made for this state on first use (the prelude's lazy tables).
    func!("lookup", |lua, h, (owner, name): (String, String)| {
        Ok(match super::bind::make(lua, h, &owner, &name)? {
            Some((f, results)) => (Value::Function(f), Value::Integer(results as i64)),
            None => (Value::Nil, Value::Nil),
        })
    });
    // The prelude's maker of lazy methods tables, used whenever a kind's table is created.
    func!("set_make_lazy", |lua, _h, f: Function| lua
        .set_named_registry_value(super::objects::MAKE_LAZY_KEY, f));
    // The goroutine entry: a C function around the prelude's message handler (`capi`).
    func!("set_entry", |lua, h, on_error: Value| {
        let entry = match super::capi::goroutine_entry(lua, on_error, h.failed.clone())? {
            Value::Function(f) => f,
            _ => unreachable!("a C closure is a function"),
        };
        *h.entry.borrow_mut() = Some(entry);
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
    // The hot operations as C functions (`capi`): the prelude hands over what they need.
    func!("hot_functions", |lua,
                            h,
                            (
        raise,
        checked_yield,
        send,
        receive,
        sleep,
        spawn,
    ): (
        Value,
        Value,
        Value,
        Value,
        Value,
        Value
    )| super::capi::hot_functions(
        lua,
        h,
        h.token.clone(),
        raise,
        checked_yield,
        super::capi::Slow {
            send,
            receive,
            sleep,
            spawn
        },
    ));
    // ---- goroutines ---------------------------------------------------------------------------
    op!("spawn", |lua, h, args: MultiValue| spawn(lua, h, args));
    op!("spawn_quiet", |lua, h, args: MultiValue| spawn_quiet(
        lua, h, args
    ));
    op!("yield", |_lua, h, (): ()| Ok(
        h.finish(Value::Nil, Value::Nil)
    ));
    // ---- channels ---------------------------------------------------------------------------
    op!("ch_check_recv", |_lua, _h, (ch, fname): (Value, String)| {
        channel_for(&ch, &fname, Dir::Receive)?;
        Ok((Value::Nil, Value::Nil))
    });
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
        new_handle(
            lua,
            LuaDetector(
                Rc::new(DeadlockDetector::new_nanos(&h.rt, d)),
                RefCell::new(None),
            ),
        )
    });
    // Arms (a function) or disarms (nil) the detector's report of a deadlock that is about to
    // fail the run: the function runs in a new goroutine with the info table, first.
    func!("detector_arm", |_lua,
                           h,
                           (d, f): (
        UserDataRef<LuaDetector>,
        Option<Function>
    )| {
        let reporter = f.map(|f| {
            let r: Rc<dyn crate::runtime::DeadlockReporter> = Rc::new(LuaReporter {
                host: Rc::downgrade(h),
                detector: d.0.clone(),
                f,
            });
            h.rt.report_deadlocks_to(Rc::downgrade(&r));
            r
        });
        *d.1.borrow_mut() = reporter;
        Ok(())
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
    // ---- log and sim --------------------------------------------------------------------------
    func!("log", |_lua, h, (level, msg): (String, String)| {
        super::bind::log_line(h, &level, msg);
        Ok(())
    });
    // `sim.assert_always` failed: the run fails here, even if a `pcall` catches the error the
    // prelude raises next.
    func!("assert_failed", |lua, h, msg: String| {
        if h.rt.tracing() {
            h.rt.emit("assert", Subject::None, Some(format!("failed: {msg}")));
        }
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
            crate::runtime::duration(h.rt.now()),
        ));
        Ok(())
    });
    Ok(t)
}

/// The table handed to `on_deadlock` handlers.
fn deadlock_info(lua: &Lua, info: &DeadlockInfo) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("time", ms_value(crate::sync::to_nanos(info.time)))?;
    t.set("stuck_count", info.stuck_count as i64)?;
    t.set("blocked_channels", info.blocked_channels as i64)?;
    // `goroutines` entries are `{id, name, waiting_on, since, line}` (patterns.md); `stuck`,
    // `waits_on` (the list form of `waiting_on`) and `location` (= `line`) are the older names,
    // kept as aliases.
    let stuck = lua.create_table()?;
    for (i, b) in info.stuck.iter().enumerate() {
        let g = lua.create_table()?;
        g.set("id", b.id.0 as i64)?;
        g.set("name", b.name.clone())?;
        g.set("op", b.op)?;
        g.set("waiting_on", b.waits_on.join("; "))?;
        g.set(
            "waits_on",
            lua.create_sequence_from(b.waits_on.iter().cloned())?,
        )?;
        g.set("since", ms_value(crate::sync::to_nanos(b.since)))?;
        g.set("line", b.location.clone())?;
        g.set("location", b.location.clone())?;
        stuck.raw_set(i + 1, g)?;
    }
    t.set("goroutines", stuck.clone())?;
    t.set("stuck", stuck)?;
    if let Some(cycle) = &info.cycle {
        t.set("cycle", lua.create_sequence_from(cycle.iter().cloned())?)?;
    }
    Ok(t)
}

fn new_handle<T: mlua::UserData + 'static>(lua: &Lua, v: T) -> Result<R2, String> {
    Ok((
        Value::UserData(lua.create_userdata(v).map_err(|e| e.to_string())?),
        Value::Nil,
    ))
}

/// `raw.spawn_quiet(f, name, args...)`: a pattern's worker goroutine running `f(args...)`, with
/// no scheduling point (the caller takes one after starting all of them).
fn spawn_quiet(lua: &Lua, h: &Rc<Host>, args: MultiValue) -> Result<R2, String> {
    let mut args = args.into_iter();
    let f = args.next().unwrap_or(Value::Nil);
    let name = match args.next() {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    };
    let id = h
        .spawn(lua, f, name.as_deref(), false, args.collect())
        .map_err(|e| format!("goroutine.spawn: {e}"))?;
    Ok((
        id.map_or(Value::Nil, |id| Value::Integer(id.0 as i64)),
        Value::Nil,
    ))
}

/// `raw.spawn(f, name, daemon)`: the deadlock detector's periodic goroutine (a scheduling point).
fn spawn(lua: &Lua, h: &Rc<Host>, args: MultiValue) -> Result<R2, String> {
    let mut args = args.into_iter();
    let f = args.next().unwrap_or(Value::Nil);
    let name = match args.next() {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    };
    let daemon = matches!(args.next(), Some(Value::Boolean(true)));
    let id = h
        .spawn(lua, f, name.as_deref(), daemon, MultiValue::new())
        .map_err(|e| format!("goroutine.spawn: {e}"))?;
    // Past the goroutine limit the run is over: the scheduling point parks this goroutine rather
    // than raise an error a `pcall` could catch and loop on.
    let id = id.map_or(Value::Nil, |id| Value::Integer(id.0 as i64));
    Ok(h.finish(id, Value::Nil))
}

/// A started Lua deadlock detector as the runtime's reporter: before a deadlock fails the run,
/// its handler runs in a goroutine of its own (`on_deadlock`), with the info table.
struct LuaReporter {
    host: std::rc::Weak<Host>,
    detector: Rc<DeadlockDetector>,
    f: Function,
}

impl crate::runtime::DeadlockReporter for LuaReporter {
    fn deadlock(
        &self,
        _rt: &crate::runtime::Runtime,
        failure: &crate::runtime::Failure,
    ) -> Vec<crate::runtime::TaskId> {
        let Some(host) = self.host.upgrade() else {
            return Vec::new();
        };
        let Some(lua) = host.weak_lua.try_upgrade() else {
            return Vec::new();
        };
        let info = self.detector.report(failure);
        let Ok(table) = deadlock_info(&lua, &info) else {
            return Vec::new();
        };
        let args = MultiValue::from_vec(vec![Value::Table(table)]);
        let f = Value::Function(self.f.clone());
        match host.spawn(&lua, f, Some("on_deadlock"), true, args) {
            Ok(Some(id)) => vec![id],
            _ => Vec::new(),
        }
    }
}
