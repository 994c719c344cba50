//! `goroutine.retry_policy{max_attempts = 3, initial_delay = 100, max_delay = 10000,
//! multiplier = 2, jitter = false}` (`patterns::Retry`, seed 3.5): `p:next_delay(attempt) -> ms |
//! nil` (nil: no attempt left), `p:delay_cap(k) -> ms`, `p:max_attempts()`. `goroutine.retry(opts,
//! fn)` and `goroutine.permanent(err)` are the prelude's loop over a policy: it calls the user's
//! `fn` and sleeps the policy's delays, which Rust cannot do for a Lua function.

use std::time::Duration;

use mlua::{Table, Value};

use super::{Cx, Func, Kind, Method, integer, ms_value, shown};
use crate::lua::objects::LuaRetry;
use crate::patterns::{Retry, RetrySettings};

/// A duration field in ms (non-negative), or its default.
fn ms_field(cx: &Cx<'_>, t: &Table, name: &str, default: Duration) -> Result<Duration, String> {
    let v: Value = t.get(name).map_err(|e| cx.misuse(e))?;
    match v {
        Value::Nil => Ok(default),
        Value::Integer(i) if i >= 0 => Ok(Duration::from_nanos(cx.duration(&v)?)),
        Value::Number(n) if n >= 0.0 => Ok(Duration::from_nanos(cx.duration(&v)?)),
        other => Err(cx.misuse(format!(
            "{name} must be a non-negative number of milliseconds (got {})",
            shown(&other)
        ))),
    }
}

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "retry_policy",
    results: 1,
    call: |cx, (opts, _, _)| {
        let t = match &opts {
            Value::Nil => cx.lua.create_table().map_err(|e| cx.misuse(e))?,
            Value::Table(t) => t.clone(),
            other => {
                return Err(cx.misuse(format!(
                    "expects an options table {{max_attempts, initial_delay, max_delay, multiplier, jitter}} (got {})",
                    shown(other)
                )));
            }
        };
        let settings = settings(cx, &t)?;
        cx.handle(LuaRetry(Retry::new(cx.rt(), settings, cx.here())))
    },
}];

/// The settings in a `retry_policy` options table (also a pipeline stage's `backoff` table).
pub(super) fn settings(cx: &Cx<'_>, t: &Table) -> Result<RetrySettings, String> {
    let d = RetrySettings::default();
    let v: Value = t.get("max_attempts").map_err(|e| cx.misuse(e))?;
    let max_attempts = match v {
        Value::Nil => d.max_attempts,
        v => match integer(&v) {
            Some(n) if n >= 1 && n <= u32::MAX as i64 => n as u32,
            _ => {
                return Err(cx.misuse(format!(
                    "max_attempts must be a positive integer (got {})",
                    shown(&v)
                )));
            }
        },
    };
    let initial_delay = ms_field(cx, t, "initial_delay", d.initial_delay)?;
    let max_delay = ms_field(cx, t, "max_delay", d.max_delay)?;
    let v: Value = t.get("multiplier").map_err(|e| cx.misuse(e))?;
    let multiplier = match v {
        Value::Nil => d.multiplier,
        Value::Integer(i) if i >= 1 => i as f64,
        Value::Number(n) if n.is_finite() && n >= 1.0 => n,
        other => {
            return Err(cx.misuse(format!(
                "multiplier must be a number >= 1 (got {})",
                shown(&other)
            )));
        }
    };
    let v: Value = t.get("jitter").map_err(|e| cx.misuse(e))?;
    let jitter = match v {
        Value::Nil => d.jitter,
        Value::Boolean(b) => b,
        other => {
            return Err(cx.misuse(format!("jitter must be a boolean (got {})", shown(&other))));
        }
    };
    Ok(RetrySettings {
        max_attempts,
        initial_delay,
        max_delay,
        multiplier,
        jitter,
    })
}

/// An attempt number argument (a positive integer).
fn attempt(cx: &Cx<'_>, v: &Value) -> Result<u32, String> {
    let n = cx.int(v, "attempt")?;
    if n < 1 {
        return Err(cx.misuse(format!("attempt must be at least 1 (got {n})")));
    }
    Ok(n.min(u32::MAX as i64) as u32)
}

fn ms_of(d: Duration) -> Value {
    ms_value(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(crate) static KIND: Kind<LuaRetry> = Kind {
    table: "retry_policy",
    name: "retry_policy",
    what: "a retry policy",
    methods: &[
        Method {
            name: "next_delay",
            results: 1,
            call: |cx, p, (a, _, _)| {
                let a = attempt(cx, &a)?;
                cx.ret(p.0.next_delay(a).map(ms_of).unwrap_or(Value::Nil))
            },
        },
        Method {
            name: "delay_cap",
            results: 1,
            call: |cx, p, (a, _, _)| {
                let a = attempt(cx, &a)?;
                cx.ret(ms_of(p.0.delay_cap(a)))
            },
        },
        Method {
            name: "max_attempts",
            results: 1,
            call: |cx, p, _| cx.ret(p.0.settings().max_attempts as i64),
        },
    ],
};
