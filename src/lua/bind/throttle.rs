//! `goroutine.throttle_channel(input, ms, opts?)` (`patterns::throttle`, seed 1.3): returns the
//! throttled output channel (receive-only). Options `trailing`, `capacity`. The forwarder is a
//! Rust task, started through `sim::Sim` (the `Spawn` the Lua host has at hand).

use super::debounce::{capacity, flag, input, period, table};
use super::{Cx, Func};
use crate::lua::objects::LuaChannel;
use crate::patterns::{ThrottleOptions, throttle};

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "throttle_channel",
    results: 1,
    call: |cx: &Cx<'_>, (ch, ms, opts)| {
        let input = input(cx, &ch)?;
        let ms = period(cx, &ms)?;
        let mut o = ThrottleOptions::default();
        if let Some(t) = table(cx, &opts)? {
            o.trailing = flag(cx, &t, "trailing", false)?;
            o.capacity = capacity(cx, &t)?;
        }
        let out = throttle(cx.rt(), cx.host.as_ref(), input, ms, o, cx.here());
        cx.handle(LuaChannel::owned_by_gosim(out))
    },
}];
