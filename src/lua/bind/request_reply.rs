//! `goroutine.request_reply()` and its methods (`patterns::RequestReply`, seed 4.2):
//! `request(data, timeout_ms?) -> response | nil, err`, `close()`, `pending()`, and `serve(fn)`,
//! the Lua loop in the prelude over the private steps declared here (`serve`'s first step, `_next`,
//! `_reply`, `_fail`, `_serve_end`; the prelude removes them from the methods table).

use mlua::Value;

use super::{Cx, Func, Kind, Method, nothing, string};
use crate::lua::objects::LuaRequestReply;
use crate::lua::value::LuaValue;
use crate::patterns::RequestReply;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "request_reply",
    results: 1,
    call: |cx, _| cx.handle(LuaRequestReply(RequestReply::new(cx.rt(), cx.here()))),
}];

/// A correlation id handed out by `_next`.
fn id(cx: &Cx<'_>, v: &Value) -> Result<u64, String> {
    match cx.int(v, "correlation id")? {
        i if i > 0 => Ok(i as u64),
        i => Err(cx.misuse(format!("bad correlation id {i}"))),
    }
}

pub(crate) static KIND: Kind<LuaRequestReply> = Kind {
    table: "request_reply",
    name: "request_reply",
    what: "a request_reply",
    methods: &[
        Method {
            name: "request",
            results: 2,
            call: |cx, r, (data, t, _)| {
                let t = cx.timeout(&t)?;
                cx.wait(r.0.request(LuaValue(data), t), |lua, out| match out {
                    Ok(v) => (v.0, Value::Nil, Value::Nil),
                    Err(e) => (Value::Nil, string(lua, &e.to_string()), Value::Nil),
                })
            },
        },
        Method {
            name: "close",
            results: 0,
            call: |cx, r, _| {
                r.0.close();
                cx.point(())
            },
        },
        Method {
            name: "pending",
            results: 1,
            call: |cx, r, _| cx.ret(r.0.pending()),
        },
        Method {
            // The first step of the prelude's `serve` loop (which replaces it in the methods
            // table), so its misuse messages name `request_reply:serve`.
            name: "serve",
            results: 0,
            call: |cx, r, _| {
                r.0.serve_begin();
                cx.ret(())
            },
        },
        Method {
            name: "_next",
            results: 2,
            call: |cx, r, _| {
                cx.wait(r.0.next_request(), |_, out| match out {
                    Some((id, v)) => (Value::Integer(id as i64), v.0, Value::Nil),
                    None => nothing(),
                })
            },
        },
        Method {
            name: "_reply",
            results: 0,
            call: |cx, r, (i, v, _)| {
                r.0.reply(id(cx, &i)?, Ok(LuaValue(v)));
                cx.ret(())
            },
        },
        Method {
            name: "_fail",
            results: 0,
            call: |cx, r, (i, msg, _)| {
                let msg = match msg {
                    Value::String(s) => s.to_string_lossy(),
                    other => crate::lua::value::describe(&other),
                };
                r.0.reply(id(cx, &i)?, Err(msg));
                cx.ret(())
            },
        },
        Method {
            name: "_serve_end",
            results: 0,
            call: |cx, r, _| {
                r.0.serve_end();
                cx.ret(())
            },
        },
    ],
};
