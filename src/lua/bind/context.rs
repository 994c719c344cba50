//! `goroutine.context()` and its methods (`crate::sync::Context`). The constructors return the
//! context alone; the prelude pairs each with its cancel function (Go's `ctx, cancel := ...`).

use mlua::Value;

use super::{Cx, Func, Kind, Method, Res, ms_value, string};
use crate::lua::objects::{LuaChannel, LuaContext};
use crate::lua::value::LuaValue;
use crate::sync::Context;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "context",
    results: 1,
    call: |cx, _| cx.handle(LuaContext(Context::background(cx.rt(), cx.here()))),
}];

fn child(cx: &Cx<'_>, ctx: Context) -> Res {
    cx.handle(LuaContext(ctx))
}

pub(crate) static KIND: Kind<LuaContext> = Kind {
    table: "context",
    name: "context",
    what: "a context",
    methods: &[
        Method {
            name: "with_cancel",
            results: 1,
            call: |cx, c, _| child(cx, c.0.with_cancel_at(cx.here())),
        },
        Method {
            name: "with_timeout",
            results: 1,
            call: |cx, c, (ms, _, _)| child(cx, c.0.with_timeout_at(cx.duration(&ms)?, cx.here())),
        },
        Method {
            name: "with_deadline",
            results: 1,
            call: |cx, c, (ms, _, _)| child(cx, c.0.with_deadline_at(cx.duration(&ms)?, cx.here())),
        },
        Method {
            name: "cancel",
            results: 0,
            call: |cx, c, _| {
                c.0.cancel();
                cx.point(())
            },
        },
        Method {
            name: "is_cancelled",
            results: 1,
            call: |cx, c, _| cx.point(c.0.is_cancelled()),
        },
        Method {
            name: "err",
            results: 1,
            call: |cx, c, _| {
                let err = c.0.err().map_or(Value::Nil, |e| string(cx.lua, e.as_str()));
                cx.point(err)
            },
        },
        Method {
            name: "deadline",
            results: 2,
            call: |cx, c, _| {
                cx.ret(match c.0.deadline_nanos() {
                    Some(d) => (ms_value(d), Value::Boolean(true)),
                    None => (Value::Nil, Value::Boolean(false)),
                })
            },
        },
        Method {
            name: "done",
            results: 1,
            call: |cx, c, _| {
                let ch = c.0.done_channel::<LuaValue>(cx.here());
                cx.handle(LuaChannel::owned_by_gosim(ch))
            },
        },
    ],
};
