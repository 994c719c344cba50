//! `goroutine.rate_limiter{rate, per = 1000, burst = 1}` and its methods (`patterns::RateLimiter`,
//! seed 3.2): `allow(n?) -> bool`, `wait(n?, timeout_ms?) -> true | false, msg`,
//! `reserve(n?) -> reservation` (`r:ok()`, `r:delay()`, `r:cancel()`), `tokens()`, `burst()`.
//! A missing `n` is 1; `n > burst` is an outcome (refused), not misuse.

use std::time::Duration;

use mlua::{Table, Value};

use super::{Cx, Func, Kind, Method, integer, ms_value, shown};
use crate::lua::objects::{LuaRateLimiter, LuaReservation};
use crate::patterns::RateLimiter;

/// A non-negative integer field of the options table.
fn field_int(cx: &Cx<'_>, t: &Table, name: &str, default: Option<i64>) -> Result<i64, String> {
    let v: Value = t.get(name).map_err(|e| cx.misuse(e))?;
    match (&v, default) {
        (Value::Nil, Some(d)) => Ok(d),
        _ => match integer(&v) {
            Some(n) if n >= 0 => Ok(n),
            _ => Err(cx.misuse(format!(
                "{name} must be a non-negative integer (got {})",
                shown(&v)
            ))),
        },
    }
}

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "rate_limiter",
    results: 1,
    call: |cx, (opts, _, _)| {
        let Value::Table(t) = &opts else {
            return Err(cx.misuse(format!(
                "expects an options table {{rate, per, burst}} (got {})",
                shown(&opts)
            )));
        };
        let rate = field_int(cx, t, "rate", None)?;
        let burst = field_int(cx, t, "burst", Some(1))?;
        let per: Value = t.get("per").map_err(|e| cx.misuse(e))?;
        let per = match per {
            Value::Nil => 1_000_000_000,
            Value::Integer(i) if i > 0 => cx.duration(&per)?,
            Value::Number(n) if n > 0.0 => cx.duration(&per)?,
            other => {
                return Err(cx.misuse(format!(
                    "per must be a positive number of milliseconds (got {})",
                    shown(&other)
                )));
            }
        };
        cx.handle(LuaRateLimiter(RateLimiter::new(
            cx.rt(),
            rate as u64,
            Duration::from_nanos(per),
            burst as u64,
            cx.here(),
        )))
    },
}];

/// The token count argument: a non-negative integer (default 1).
fn count(cx: &Cx<'_>, v: &Value) -> Result<u64, String> {
    let n = cx.int_or(v, "n", 1)?;
    if n < 0 {
        return Err(cx.misuse(format!("n must be non-negative (got {n})")));
    }
    Ok(n as u64)
}

pub(crate) static KIND: Kind<LuaRateLimiter> = Kind {
    table: "rate_limiter",
    name: "rate_limiter",
    what: "a rate limiter",
    methods: &[
        Method {
            name: "allow",
            results: 1,
            call: |cx, l, (n, _, _)| {
                let n = count(cx, &n)?;
                cx.point(l.0.allow(n))
            },
        },
        Method {
            name: "wait",
            results: 2,
            call: |cx, l, (n, t, _)| {
                let n = count(cx, &n)?;
                let t = match t {
                    Value::Nil => None,
                    t => Some(Duration::from_nanos(cx.duration(&t)?)),
                };
                cx.wait(l.0.wait(n, t), super::outcome)
            },
        },
        Method {
            name: "reserve",
            results: 1,
            call: |cx, l, (n, _, _)| {
                let n = count(cx, &n)?;
                let r = l.0.reserve(n);
                let (a, _, _) = cx.handle(LuaReservation(r))?;
                cx.point(a)
            },
        },
        Method {
            name: "tokens",
            results: 1,
            call: |cx, l, _| cx.ret(Value::Number(l.0.tokens())),
        },
        Method {
            name: "burst",
            results: 1,
            call: |cx, l, _| cx.ret(l.0.burst() as i64),
        },
    ],
};

pub(crate) static RESERVATION: Kind<LuaReservation> = Kind {
    table: "reservation",
    name: "reservation",
    what: "a reservation",
    methods: &[
        Method {
            name: "ok",
            results: 1,
            call: |cx, r, _| cx.ret(r.0.ok()),
        },
        Method {
            name: "delay",
            results: 1,
            call: |cx, r, _| {
                if !r.0.ok() {
                    return cx.ret(Value::Number(f64::INFINITY));
                }
                let ns = u64::try_from(r.0.delay().as_nanos()).unwrap_or(u64::MAX);
                cx.ret(ms_value(ns))
            },
        },
        Method {
            name: "cancel",
            results: 0,
            call: |cx, r, _| {
                r.0.cancel();
                cx.point(())
            },
        },
    ],
};
