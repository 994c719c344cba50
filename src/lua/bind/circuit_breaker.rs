//! `goroutine.circuit_breaker{threshold = 5, timeout = 60000, half_open_max = 1,
//! on_state_change}` (`patterns::CircuitBreaker`, seed 3.3): the state machine's two steps,
//! `cb:acquire() -> permit | false, msg` and `permit:record(ok)`, each also returning the
//! transitions it caused as `{{from, to}, ...}` (or nil); `cb:state()`, `cb:generation()`.
//! `cb:call(fn, ...)` is the prelude's combinator over these steps: it calls the user's `fn`
//! and `on_state_change` (both may block), which Rust cannot do.

use std::cell::RefCell;
use std::time::Duration;

use mlua::{Lua, Table, Value};

use super::{Cx, Func, Kind, Method, integer, is_callable, shown, string};
use crate::lua::objects::{LuaCircuitBreaker, LuaPermit};
use crate::patterns::{CircuitBreaker, CircuitSettings, Transition};

/// A positive integer field of the options table.
fn positive(cx: &Cx<'_>, t: &Table, name: &str, default: u32) -> Result<u32, String> {
    let v: Value = t.get(name).map_err(|e| cx.misuse(e))?;
    if v == Value::Nil {
        return Ok(default);
    }
    match integer(&v) {
        Some(n) if n > 0 && n <= u32::MAX as i64 => Ok(n as u32),
        _ => Err(cx.misuse(format!(
            "{name} must be a positive integer (got {})",
            shown(&v)
        ))),
    }
}

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "circuit_breaker",
    results: 1,
    call: |cx, (opts, _, _)| {
        let t = match &opts {
            Value::Nil => cx.lua.create_table().map_err(|e| cx.misuse(e))?,
            Value::Table(t) => t.clone(),
            other => {
                return Err(cx.misuse(format!(
                    "expects an options table {{threshold, timeout, half_open_max}} (got {})",
                    shown(other)
                )));
            }
        };
        let threshold = positive(cx, &t, "threshold", 5)?;
        let half_open_max = positive(cx, &t, "half_open_max", 1)?;
        let timeout: Value = t.get("timeout").map_err(|e| cx.misuse(e))?;
        let timeout = match timeout {
            Value::Nil => 60_000_000_000,
            Value::Integer(i) if i >= 0 => cx.duration(&timeout)?,
            Value::Number(n) if n >= 0.0 => cx.duration(&timeout)?,
            other => {
                return Err(cx.misuse(format!(
                    "timeout must be a non-negative number of milliseconds (got {})",
                    shown(&other)
                )));
            }
        };
        let cb: Value = t.get("on_state_change").map_err(|e| cx.misuse(e))?;
        if cb != Value::Nil && !is_callable(&cb) {
            return Err(cx.misuse(format!(
                "on_state_change must be a function (got {})",
                shown(&cb)
            )));
        }
        let settings = CircuitSettings {
            threshold,
            timeout: Duration::from_nanos(timeout),
            half_open_max,
            on_state_change: None,
        };
        cx.handle(LuaCircuitBreaker(CircuitBreaker::new(
            cx.rt(),
            settings,
            cx.here(),
        )))
    },
}];

/// `{{from, to}, ...}`, or nil when nothing changed.
fn transitions(lua: &Lua, ts: &[Transition]) -> Value {
    if ts.is_empty() {
        return Value::Nil;
    }
    let make = || -> mlua::Result<Table> {
        let list = lua.create_table()?;
        for (from, to) in ts {
            let pair = lua.create_table()?;
            pair.raw_push(from.as_str())?;
            pair.raw_push(to.as_str())?;
            list.raw_push(pair)?;
        }
        Ok(list)
    };
    make().map(Value::Table).unwrap_or(Value::Nil)
}

pub(crate) static KIND: Kind<LuaCircuitBreaker> = Kind {
    table: "circuit_breaker",
    name: "circuit_breaker",
    what: "a circuit breaker",
    methods: &[
        Method {
            name: "acquire",
            results: 3,
            call: |cx, cb, _| {
                let (r, ts) = cb.0.try_acquire();
                let ts = transitions(cx.lua, &ts);
                match r {
                    Ok(p) => {
                        // Admitted: the call's scheduling point comes after its outcome is
                        // recorded (`permit:record`), one per call like any other.
                        let (permit, _, _) = cx.handle(LuaPermit(RefCell::new(Some(p))))?;
                        cx.ret((permit, Value::Nil, ts))
                    }
                    Err(e) => cx.point((Value::Boolean(false), string(cx.lua, &e.to_string()), ts)),
                }
            },
        },
        Method {
            name: "state",
            results: 1,
            call: |cx, cb, _| cx.ret(cb.0.state().as_str()),
        },
        Method {
            name: "generation",
            results: 1,
            call: |cx, cb, _| cx.ret(cb.0.generation() as i64),
        },
    ],
};

pub(crate) static PERMIT: Kind<LuaPermit> = Kind {
    table: "permit",
    name: "permit",
    what: "a circuit breaker permit",
    methods: &[Method {
        name: "record",
        results: 1,
        call: |cx, p, (ok, _, _)| {
            let Some(permit) = p.0.borrow_mut().take() else {
                return Err(cx.misuse("this permit's result was already recorded"));
            };
            let ok = !matches!(ok, Value::Nil | Value::Boolean(false));
            let ts = permit.record(ok);
            cx.point(transitions(cx.lua, &ts))
        },
    }],
};
