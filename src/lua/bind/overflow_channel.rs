//! `goroutine.channel_with_overflow(cap, strategy)` (`patterns::OverflowChannel`, seed 1.1):
//! `och:send(v, timeout_ms?) -> true | true, "dropped" | false, "channel full" | false, "send on
//! closed channel" | false, "timeout"`, `och:receive(timeout_ms?)`, and the channel methods `try_receive`,
//! `close`, `len`, `cap`, `is_closed` (`range` is in the prelude). It can be a *receive* case of
//! `goroutine.select` (a send case would bypass its strategy, so that is misuse).

use mlua::Value;

use super::broadcaster::{closed, received};
use super::{Cx, Func, Kind, Method, Res, shown, string};
use crate::lua::objects::LuaOverflowChannel;
use crate::lua::value::LuaValue;
use crate::patterns::{OverflowChannel, OverflowStrategy, SendOutcome};
use crate::sync::TryRecvError;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "channel_with_overflow",
    results: 1,
    call: |cx, (cap, strategy, _)| {
        let cap = match super::integer(&cap) {
            Some(c) if c >= 0 => c as usize,
            _ => {
                return Err(cx.misuse(format!(
                    "capacity must be a non-negative integer (got {})",
                    shown(&cap)
                )));
            }
        };
        let strategy = match &strategy {
            Value::String(s) => OverflowStrategy::parse(&s.to_string_lossy()),
            _ => None,
        }
        .ok_or_else(|| {
            cx.misuse(format!(
                "strategy must be \"block\", \"drop_oldest\", \"drop_newest\" or \"error\" (got {})",
                shown(&strategy)
            ))
        })?;
        if cap == 0 && strategy != OverflowStrategy::Block {
            return Err(cx.misuse(format!(
                "strategy \"{}\" needs a capacity of at least 1 (got 0)",
                strategy.name()
            )));
        }
        cx.handle(LuaOverflowChannel(OverflowChannel::new(
            cx.rt(),
            cap,
            strategy,
            cx.here(),
        )))
    },
}];

fn send(cx: &Cx<'_>, c: &LuaOverflowChannel, v: Value, t: &Value) -> Res {
    let t = cx.timeout(t)?;
    cx.wait(c.0.send(LuaValue(v), t), |lua, r| {
        let (ok, msg) = match r {
            SendOutcome::Sent => (true, None),
            SendOutcome::Dropped => (true, Some("dropped")),
            SendOutcome::Full => (false, Some("channel full")),
            SendOutcome::Closed => (false, Some("send on closed channel")),
            SendOutcome::Timeout => (false, Some("timeout")),
        };
        let msg = msg.map_or(Value::Nil, |m| string(lua, m));
        (Value::Boolean(ok), msg, Value::Nil)
    })
}

pub(crate) static KIND: Kind<LuaOverflowChannel> = Kind {
    table: "overflow_channel",
    name: "overflow_channel",
    what: "an overflow channel",
    methods: &[
        Method {
            name: "send",
            results: 2,
            call: |cx, c, (v, t, _)| send(cx, c, v, &t),
        },
        Method {
            name: "receive",
            results: 3,
            call: |cx, c, (t, _, _)| match &t {
                // No timeout: exactly a channel's receive.
                Value::Nil => cx.wait(c.0.recv(), |_, r| match r {
                    Some(v) => (v.0, Value::Boolean(true), Value::Nil),
                    None => (Value::Nil, Value::Boolean(false), Value::Nil),
                }),
                t => {
                    let t = cx.timeout(t)?;
                    cx.wait(c.0.recv_timeout(t), received)
                }
            },
        },
        Method {
            name: "try_receive",
            results: 2,
            call: |cx, c, _| match c.0.channel().try_recv() {
                Ok(v) => cx.point((v.0, Value::Boolean(true))),
                Err(TryRecvError::Empty | TryRecvError::Closed) => {
                    cx.point((Value::Nil, Value::Boolean(false)))
                }
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
            call: |cx, c, _| cx.ret(c.0.cap()),
        },
        Method {
            name: "is_closed",
            results: 1,
            call: |cx, c, _| cx.point(c.0.channel().is_closed()),
        },
        Method {
            name: "strategy",
            results: 1,
            call: |cx, c, _| cx.ret(c.0.strategy().name()),
        },
    ],
};
