//! `goroutine.merge({ch...})` (`patterns::merge`, seed 1.5): a receive-only channel of capacity
//! 10 fed by one Rust forwarder task per input (they run no user code, so no Lua loop), closed
//! once every input has closed and been drained; `merge({})` is a closed channel. Inputs may be
//! channels (not send-only) or overflow channels.

use mlua::Value;

use super::{Func, borrow, shown, type_name};
use crate::lua::objects::{Dir, LuaChannel, LuaOverflowChannel};
use crate::lua::value::LuaValue;
use crate::sync::Channel;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "merge",
    results: 1,
    call: |cx, (inputs, _, _)| {
        let Value::Table(t) = &inputs else {
            return Err(cx.misuse(format!(
                "expects an array of channels (got {})",
                shown(&inputs)
            )));
        };
        let n = t.raw_len();
        let mut chans: Vec<Channel<LuaValue>> = Vec::with_capacity(n);
        for i in 1..=n {
            let v: Value = t.raw_get(i).map_err(|e| cx.misuse(e))?;
            if let Some(c) = borrow::<LuaChannel>(&v) {
                if c.dir == Dir::Send {
                    return Err(cx.misuse(format!(
                        "input {i} is send-only: it cannot be received from"
                    )));
                }
                chans.push(c.ch.clone());
            } else if let Some(o) = borrow::<LuaOverflowChannel>(&v) {
                chans.push(o.0.channel().clone());
            } else {
                return Err(cx.misuse(format!(
                    "input {i} is not a channel (got {})",
                    type_name(&v)
                )));
            }
        }
        let spawner = crate::sim::Sim::on(cx.rt());
        let out = crate::patterns::merge(cx.rt(), &spawner, chans, cx.here());
        let ud = cx
            .lua
            .create_userdata(LuaChannel {
                ch: out,
                dir: Dir::Receive,
                closable: true,
            })
            .map_err(|e| cx.misuse(e))?;
        cx.point(Value::UserData(ud))
    },
}];
