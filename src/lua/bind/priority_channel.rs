//! `goroutine.priority_channel(cap?)` (`patterns::PriorityChannel`, seed 1.2): `pq:send(v, prio?,
//! timeout_ms?) -> true | false, "timeout" | false, "send on closed channel"` (priority: an
//! integer, default 0, larger first), `pq:receive(timeout_ms?) -> v, true | nil, false | nil,
//! false, "timeout"`, `close`, `len`, `cap` (`nil`: unbounded), `is_closed`; `range` is in the
//! prelude.

use mlua::Value;

use super::broadcaster::{closed, received};
use super::{Func, Kind, Method, shown};
use crate::lua::objects::LuaPriorityChannel;
use crate::lua::value::LuaValue;
use crate::patterns::PriorityChannel;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "priority_channel",
    results: 1,
    call: |cx, (cap, _, _)| {
        let cap = match &cap {
            Value::Nil => None,
            v => match super::integer(v) {
                Some(c) if c > 0 => Some(c as usize),
                _ => {
                    return Err(cx.misuse(format!(
                        "capacity must be a positive integer or nil for unbounded (got {})",
                        shown(v)
                    )));
                }
            },
        };
        cx.handle(LuaPriorityChannel(PriorityChannel::new(
            cx.rt(),
            cap,
            cx.here(),
        )))
    },
}];

pub(crate) static KIND: Kind<LuaPriorityChannel> = Kind {
    table: "priority_channel",
    name: "priority_channel",
    what: "a priority channel",
    methods: &[
        Method {
            name: "send",
            results: 2,
            call: |cx, c, (v, prio, t)| {
                let prio = cx.int_or(&prio, "priority", 0)?;
                let t = cx.timeout(&t)?;
                cx.wait(c.0.send(LuaValue(v), prio, t), |lua, r| {
                    super::outcome(lua, r)
                })
            },
        },
        Method {
            name: "receive",
            results: 3,
            call: |cx, c, (t, _, _)| {
                let t = cx.timeout(&t)?;
                cx.wait(c.0.recv(t), received)
            },
        },
        Method {
            name: "close",
            results: 2,
            call: |cx, c, _| closed(cx, c.0.close(), "channel"),
        },
        Method {
            name: "len",
            results: 1,
            call: |cx, c, _| cx.point(c.0.len()),
        },
        Method {
            name: "cap",
            results: 1,
            call: |cx, c, _| match c.0.cap() {
                Some(n) => cx.ret(n),
                None => cx.ret(()),
            },
        },
        Method {
            name: "is_closed",
            results: 1,
            call: |cx, c, _| cx.point(c.0.is_closed()),
        },
    ],
};
