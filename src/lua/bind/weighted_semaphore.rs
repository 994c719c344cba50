//! `goroutine.weighted_semaphore(n)` and its methods (`patterns::WeightedSemaphore`, seed 5.4):
//! `acquire(w, timeout_ms?) -> true | false, "timeout"`, `release(w)`, `try_acquire(w)`,
//! `available()`, `capacity()`. A missing weight is 1.

use mlua::Value;

use super::{Cx, Func, Kind, Method, Res, shown};
use crate::lua::objects::LuaWeightedSemaphore;
use crate::patterns::WeightedSemaphore;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "weighted_semaphore",
    results: 1,
    call: |cx, (n, _, _)| {
        let n = match super::integer(&n) {
            Some(n) if n > 0 => n as u64,
            _ => {
                return Err(cx.misuse(format!(
                    "capacity must be a positive integer (got {})",
                    shown(&n)
                )));
            }
        };
        cx.handle(LuaWeightedSemaphore(WeightedSemaphore::new(
            cx.rt(),
            n,
            cx.here(),
        )))
    },
}];

/// The weight argument: a non-negative integer no larger than the capacity (default 1).
fn weight(cx: &Cx<'_>, s: &WeightedSemaphore, v: &Value) -> Result<u64, String> {
    let w = cx.int_or(v, "weight", 1)?;
    if w < 0 {
        return Err(cx.misuse(format!("weight must be non-negative (got {w})")));
    }
    let w = w as u64;
    if w > s.capacity() {
        return Err(cx.misuse(format!(
            "weight {w} exceeds the capacity {}: it could never be acquired",
            s.capacity()
        )));
    }
    Ok(w)
}

fn acquire(cx: &Cx<'_>, s: &WeightedSemaphore, w: &Value, t: &Value) -> Res {
    let w = weight(cx, s, w)?;
    let t = cx.timeout(t)?;
    cx.wait(s.acquire(w, t), super::outcome)
}

pub(crate) static KIND: Kind<LuaWeightedSemaphore> = Kind {
    table: "weighted_semaphore",
    name: "weighted_semaphore",
    what: "a weighted semaphore",
    methods: &[
        Method {
            name: "acquire",
            results: 2,
            call: |cx, s, (w, t, _)| acquire(cx, &s.0, &w, &t),
        },
        Method {
            name: "release",
            results: 0,
            call: |cx, s, (w, _, _)| {
                let w = cx.int_or(&w, "weight", 1)?;
                if w < 0 {
                    return Err(cx.misuse(format!("weight must be non-negative (got {w})")));
                }
                s.0.release(w as u64).map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
        Method {
            name: "try_acquire",
            results: 1,
            call: |cx, s, (w, _, _)| {
                let w = weight(cx, &s.0, &w)?;
                let ok = s.0.try_acquire(w).map_err(|e| cx.misuse(e))?;
                cx.point(ok)
            },
        },
        Method {
            name: "available",
            results: 1,
            call: |cx, s, _| cx.point(s.0.available() as i64),
        },
        Method {
            name: "capacity",
            results: 1,
            call: |cx, s, _| cx.ret(s.0.capacity() as i64),
        },
    ],
};
