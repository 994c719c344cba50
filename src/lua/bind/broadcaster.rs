//! `goroutine.broadcaster{capacity=16, overflow="block"}` (or `goroutine.broadcaster(cap)`) and
//! its subscribers (`patterns::Broadcaster`, seed 1.4): `bc:subscribe()`, `bc:broadcast(v,
//! timeout_ms?) -> n | 0, "timeout" | 0, "closed"`, `bc:close()`, `sub:receive(timeout_ms?) ->
//! v, true | nil, false | nil, false, "timeout"`, `sub:missed()`, `sub:unsubscribe()`,
//! `sub:len()`; `sub:range(fn)` is in the prelude (it calls the user's function).

use mlua::{Lua, Value};

use super::{Cx, Func, Kind, Method, Out, Res, shown, string};
use crate::lua::objects::{LuaBroadcaster, LuaSubscriber};
use crate::lua::value::LuaValue;
use crate::patterns::{BroadcastError, Broadcaster, Lagging, Subscriber};
use crate::sync::Timeout;

/// The default per-subscriber buffer (`patterns.md`).
pub(super) const DEFAULT_CAPACITY: usize = 16;

/// The options of a broadcaster or a pubsub: `nil`, a capacity, or `{capacity=, overflow=}`.
pub(super) fn options(cx: &Cx<'_>, v: &Value) -> Result<(usize, Lagging), String> {
    let cap_of = |v: &Value| -> Result<usize, String> {
        match super::integer(v) {
            Some(c) if c > 0 => Ok(c as usize),
            _ => Err(cx.misuse(format!(
                "capacity must be a positive integer (got {})",
                shown(v)
            ))),
        }
    };
    match v {
        Value::Nil => Ok((DEFAULT_CAPACITY, Lagging::Block)),
        Value::Table(t) => {
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, _) = pair.map_err(|e| cx.misuse(e))?;
                let known = matches!(&k, Value::String(s) if matches!(&*s.to_string_lossy(), "capacity" | "overflow"));
                if !known {
                    return Err(cx.misuse(format!(
                        "unknown option {} (options: capacity, overflow)",
                        shown(&k)
                    )));
                }
            }
            let cap = match t.raw_get::<Value>("capacity").map_err(|e| cx.misuse(e))? {
                Value::Nil => DEFAULT_CAPACITY,
                c => cap_of(&c)?,
            };
            let lagging = match t.raw_get::<Value>("overflow").map_err(|e| cx.misuse(e))? {
                Value::Nil => Lagging::Block,
                Value::String(s) if &*s.to_string_lossy() == "block" => Lagging::Block,
                Value::String(s) if &*s.to_string_lossy() == "drop_oldest" => Lagging::DropOldest,
                o => {
                    return Err(cx.misuse(format!(
                        "overflow must be \"block\" or \"drop_oldest\" (got {})",
                        shown(&o)
                    )));
                }
            };
            Ok((cap, lagging))
        }
        v => Ok((cap_of(v)?, Lagging::Block)),
    }
}

/// `n` or `0, "timeout" | "closed"`.
pub(super) fn sent_count(lua: &Lua, r: Result<usize, BroadcastError>) -> Out {
    match r {
        Ok(n) => (Value::Integer(n as i64), Value::Nil, Value::Nil),
        Err(e) => (Value::Integer(0), string(lua, &e.to_string()), Value::Nil),
    }
}

/// `v, true` or `nil, false` (ended) or `nil, false, "timeout"`.
pub(super) fn received(lua: &Lua, r: Result<Option<LuaValue>, Timeout>) -> Out {
    match r {
        Ok(Some(v)) => (v.0, Value::Boolean(true), Value::Nil),
        Ok(None) => (Value::Nil, Value::Boolean(false), Value::Nil),
        Err(_) => (Value::Nil, Value::Boolean(false), string(lua, "timeout")),
    }
}

/// `true`, or `false, msg` for a second close.
pub(super) fn closed(cx: &Cx<'_>, first: bool, what: &str) -> Res {
    if first {
        cx.point(true)
    } else {
        cx.point((
            Value::Boolean(false),
            string(cx.lua, &format!("{what} already closed")),
        ))
    }
}

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "broadcaster",
    results: 1,
    call: |cx, (opts, _, _)| {
        let (cap, lagging) = options(cx, &opts)?;
        cx.handle(LuaBroadcaster(Broadcaster::new(
            cx.rt(),
            cap,
            lagging,
            cx.here(),
        )))
    },
}];

fn receive(cx: &Cx<'_>, s: &Subscriber<LuaValue>, t: &Value) -> Res {
    let t = cx.timeout(t)?;
    cx.wait(s.recv(t), received)
}

pub(crate) static KIND: Kind<LuaBroadcaster> = Kind {
    table: "broadcaster",
    name: "broadcaster",
    what: "a broadcaster",
    methods: &[
        Method {
            name: "subscribe",
            results: 1,
            call: |cx, b, _| {
                let ud = cx
                    .lua
                    .create_userdata(LuaSubscriber(b.0.subscribe()))
                    .map_err(|e| cx.misuse(e))?;
                cx.point(Value::UserData(ud))
            },
        },
        Method {
            name: "broadcast",
            results: 2,
            call: |cx, b, (v, t, _)| {
                let t = cx.timeout(&t)?;
                cx.wait(b.0.broadcast(LuaValue(v), t), sent_count)
            },
        },
        Method {
            name: "close",
            results: 2,
            call: |cx, b, _| closed(cx, b.0.close(), "broadcaster"),
        },
        Method {
            name: "subscribers",
            results: 1,
            call: |cx, b, _| cx.point(b.0.receiver_count()),
        },
        Method {
            name: "capacity",
            results: 1,
            call: |cx, b, _| cx.ret(b.0.capacity()),
        },
        Method {
            name: "is_closed",
            results: 1,
            call: |cx, b, _| cx.point(b.0.is_closed()),
        },
    ],
};

pub(crate) static SUBSCRIBER: Kind<LuaSubscriber> = Kind {
    table: "subscriber",
    name: "subscriber",
    what: "a subscriber",
    methods: &[
        Method {
            name: "receive",
            results: 3,
            call: |cx, s, (t, _, _)| receive(cx, &s.0, &t),
        },
        Method {
            name: "missed",
            results: 1,
            call: |cx, s, _| cx.point(s.0.missed() as i64),
        },
        Method {
            name: "len",
            results: 1,
            call: |cx, s, _| cx.point(s.0.len()),
        },
        Method {
            name: "unsubscribe",
            results: 1,
            call: |cx, s, _| cx.point(s.0.unsubscribe()),
        },
        Method {
            name: "is_subscribed",
            results: 1,
            call: |cx, s, _| cx.point(s.0.is_subscribed()),
        },
    ],
};
