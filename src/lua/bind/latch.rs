//! `goroutine.latch(n)` and its methods (`patterns::Latch`, seed 5.2): `count_down()`,
//! `wait(timeout_ms?) -> true | false`, `count()`.

use mlua::Value;

use super::{Func, Kind, Method, shown};
use crate::lua::objects::LuaLatch;
use crate::patterns::Latch;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "latch",
    results: 1,
    call: |cx, (n, _, _)| {
        let n = match super::integer(&n) {
            Some(n) if n >= 0 => n as u64,
            _ => {
                return Err(cx.misuse(format!(
                    "count must be a non-negative integer (got {})",
                    shown(&n)
                )));
            }
        };
        cx.handle(LuaLatch(Latch::new(cx.rt(), n, cx.here())))
    },
}];

pub(crate) static KIND: Kind<LuaLatch> = Kind {
    table: "latch",
    name: "latch",
    what: "a latch",
    methods: &[
        Method {
            name: "count_down",
            results: 0,
            call: |cx, l, _| {
                l.0.count_down();
                cx.point(())
            },
        },
        Method {
            name: "wait",
            results: 1,
            call: |cx, l, (t, _, _)| {
                let t = cx.timeout(&t)?;
                cx.wait(l.0.wait(t), |_, ok| {
                    (Value::Boolean(ok), Value::Nil, Value::Nil)
                })
            },
        },
        Method {
            name: "count",
            results: 1,
            call: |cx, l, _| cx.point(l.0.count() as i64),
        },
    ],
};
