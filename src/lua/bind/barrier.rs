//! `goroutine.barrier(n)` and its methods (`patterns::Barrier`, seed 5.1):
//! `wait(timeout_ms?) -> true` (the leader) `| false` (the others) `| false, "timeout"`,
//! `parties()`, `waiting()`, `generation()`.

use mlua::Value;

use super::{Func, Kind, Method, shown, string};
use crate::lua::objects::LuaBarrier;
use crate::patterns::Barrier;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "barrier",
    results: 1,
    call: |cx, (n, _, _)| {
        let n = match super::integer(&n) {
            Some(n) if n >= 1 => n as usize,
            _ => {
                return Err(cx.misuse(format!(
                    "parties must be a positive integer (got {})",
                    shown(&n)
                )));
            }
        };
        cx.handle(LuaBarrier(Barrier::new(cx.rt(), n, cx.here())))
    },
}];

pub(crate) static KIND: Kind<LuaBarrier> = Kind {
    table: "barrier",
    name: "barrier",
    what: "a barrier",
    methods: &[
        Method {
            name: "wait",
            results: 2,
            call: |cx, b, (t, _, _)| {
                let t = cx.timeout(&t)?;
                cx.wait(b.0.wait(t), |lua, r| match r {
                    Ok(leader) => (Value::Boolean(leader), Value::Nil, Value::Nil),
                    Err(e) => (
                        Value::Boolean(false),
                        string(lua, &e.to_string()),
                        Value::Nil,
                    ),
                })
            },
        },
        Method {
            name: "parties",
            results: 1,
            call: |cx, b, _| cx.ret(b.0.parties() as i64),
        },
        Method {
            name: "waiting",
            results: 1,
            call: |cx, b, _| cx.point(b.0.waiting() as i64),
        },
        Method {
            name: "generation",
            results: 1,
            call: |cx, b, _| cx.point(b.0.generation() as i64),
        },
    ],
};
