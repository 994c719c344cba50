//! `goroutine.fan_out` and `goroutine.fan_in`: pure Rust, since they run no user code. The
//! forwarders are `crate::patterns::{fan_out, fan_in}`'s Rust tasks, spawned through the Lua
//! host (`Host` implements `patterns::Spawn`); the binding only checks the arguments and hands
//! out the new channels.

use mlua::Value;

use super::select::{channel_for, lua_shown};
use super::{Func, borrow, integer};
use crate::lua::objects::{Dir, LuaChannel};
use crate::patterns::{fan_in, fan_out};

/// About what one `fan_out` output costs (its channel, resource, handle and table slot), for the
/// memory check before making them all.
const BYTES_PER_OUTPUT: i64 = 512;

/// A handle on a channel the pattern made: the caller may use it in both directions.
fn handle(lua: &mlua::Lua, ch: crate::sync::Channel<crate::lua::value::LuaValue>) -> Value {
    let h = LuaChannel {
        ch,
        dir: Dir::Both,
        closable: true,
    };
    lua.create_userdata(h)
        .map(Value::UserData)
        .unwrap_or(Value::Nil)
}

pub(crate) static FUNCS: &[Func] = &[
    Func {
        module: "goroutine",
        name: "fan_out",
        results: 1,
        call: |cx, (input, n, _)| {
            if borrow::<LuaChannel>(&input).is_none() {
                return Err(cx.misuse(format!("expects a channel (got {})", lua_shown(&input))));
            }
            let count = integer(&n).filter(|n| *n > 0).ok_or_else(|| {
                cx.misuse(format!(
                    "count must be a positive integer (got {})",
                    lua_shown(&n)
                ))
            })?;
            let input = channel_for(&input, cx.fname, Dir::Receive)?.ch.clone();
            // One call makes `count` channels with no scheduling point in between: ask the
            // run's memory limit first (an absurd count ends the run with that limit).
            let bytes = count.saturating_mul(BYTES_PER_OUTPUT);
            if !cx.host.memory.reserve(cx.rt(), bytes) {
                return cx.point(Value::Nil);
            }
            let outs = fan_out(cx.rt(), &**cx.host, input, count as usize, cx.here());
            let list = cx
                .lua
                .create_sequence_from(outs.into_iter().map(|ch| handle(cx.lua, ch)))
                .map_err(|e| cx.misuse(e))?;
            cx.point(Value::Table(list))
        },
    },
    Func {
        module: "goroutine",
        name: "fan_in",
        results: 1,
        call: |cx, (inputs, _, _)| {
            let Value::Table(list) = &inputs else {
                return Err(cx.misuse(format!(
                    "expects an array of channels (got {})",
                    lua_shown(&inputs)
                )));
            };
            // As `ipairs`, up to the first nil; anything but a channel is skipped.
            let mut chans = Vec::new();
            for i in 1.. {
                let v = list.get::<Value>(i).map_err(|e| cx.misuse(e))?;
                if v.is_nil() {
                    break;
                }
                if borrow::<LuaChannel>(&v).is_some() {
                    chans.push(channel_for(&v, cx.fname, Dir::Receive)?.ch.clone());
                }
            }
            if chans.is_empty() {
                return Err(cx.misuse("at least one input channel required"));
            }
            let out = fan_in(cx.rt(), &**cx.host, chans, cx.here());
            cx.point(handle(cx.lua, out))
        },
    },
];
