//! `goroutine.debounce_channel(input, ms, opts?)` (`patterns::debounce`, seed 1.3): returns the
//! debounced output channel (receive-only). Options `leading`, `trailing`, `max_wait` (ms),
//! `capacity`. The forwarder is a Rust task, started through `sim::Sim` (the `Spawn` the Lua
//! host has at hand), so no Lua runs in it.

use std::time::Duration;

use mlua::{Table, Value};

use super::{Cx, Func, borrow, shown};
use crate::lua::objects::{Dir, LuaChannel};
use crate::lua::value::LuaValue;
use crate::patterns::{DebounceOptions, debounce};
use crate::sync::Channel;

/// The input: a channel the caller may receive from.
pub(crate) fn input(cx: &Cx<'_>, v: &Value) -> Result<Channel<LuaValue>, String> {
    match borrow::<LuaChannel>(v) {
        Some(c) if c.dir == Dir::Send => Err(cx.misuse("cannot receive on a send-only channel")),
        Some(c) => Ok(c.ch.clone()),
        None => Err(cx.misuse(format!("expects a channel (got {})", shown(v)))),
    }
}

/// The period: a positive number of milliseconds.
pub(crate) fn period(cx: &Cx<'_>, v: &Value) -> Result<Duration, String> {
    match v {
        Value::Integer(i) if *i > 0 => {}
        Value::Number(n) if *n > 0.0 => {}
        other => {
            return Err(cx.misuse(format!(
                "period must be a positive number of milliseconds (got {})",
                shown(other)
            )));
        }
    }
    Ok(Duration::from_nanos(cx.duration(v)?))
}

/// The options table, if any (`nil` or a table).
pub(crate) fn table(cx: &Cx<'_>, v: &Value) -> Result<Option<Table>, String> {
    match v {
        Value::Nil => Ok(None),
        Value::Table(t) => Ok(Some(t.clone())),
        other => Err(cx.misuse(format!("options must be a table (got {})", shown(other)))),
    }
}

/// A boolean option.
pub(crate) fn flag(cx: &Cx<'_>, t: &Table, k: &str, default: bool) -> Result<bool, String> {
    match t.get::<Value>(k).map_err(|e| cx.misuse(e))? {
        Value::Nil => Ok(default),
        Value::Boolean(b) => Ok(b),
        other => Err(cx.misuse(format!("{k} must be a boolean (got {})", shown(&other)))),
    }
}

/// The `capacity` option: a non-negative integer.
pub(crate) fn capacity(cx: &Cx<'_>, t: &Table) -> Result<usize, String> {
    match t.get::<Value>("capacity").map_err(|e| cx.misuse(e))? {
        Value::Nil => Ok(0),
        v => match super::integer(&v) {
            Some(n) if n >= 0 => Ok(n as usize),
            _ => Err(cx.misuse(format!(
                "capacity must be a non-negative integer (got {})",
                shown(&v)
            ))),
        },
    }
}

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "debounce_channel",
    results: 1,
    call: |cx, (ch, ms, opts)| {
        let input = input(cx, &ch)?;
        let ms = period(cx, &ms)?;
        let mut o = DebounceOptions::default();
        if let Some(t) = table(cx, &opts)? {
            o.leading = flag(cx, &t, "leading", false)?;
            o.trailing = flag(cx, &t, "trailing", true)?;
            o.capacity = capacity(cx, &t)?;
            let mw = t.get::<Value>("max_wait").map_err(|e| cx.misuse(e))?;
            if !mw.is_nil() {
                o.max_wait = Some(period(cx, &mw).map_err(|_| {
                    cx.misuse(format!(
                        "max_wait must be a positive number of milliseconds (got {})",
                        shown(&mw)
                    ))
                })?);
            }
        }
        let out = debounce(cx.rt(), cx.host.as_ref(), input, ms, o, cx.here());
        cx.handle(LuaChannel::owned_by_gosim(out))
    },
}];
