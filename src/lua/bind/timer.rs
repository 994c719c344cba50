//! `goroutine.after`, `timer`, `ticker`, `after_func` and a timer's methods
//! (`crate::sync::Timer`). Timer channels carry the run's time in milliseconds. Both use the
//! shared targets of `crate::sync` (`channel_timer`, `after_func`), as the Rust API does.

use std::rc::Rc;

use mlua::{MultiValue, Value};

use super::{Cx, Func, Kind, Method, Res, ms_value, shown};
use crate::lua::objects::{LuaChannel, LuaTimer};
use crate::lua::value::LuaValue;
use crate::runtime::{Nanos, Runtime};
use crate::sync::{after_func, channel_timer};

fn time_value(now: Nanos) -> LuaValue {
    LuaValue(ms_value(now))
}

/// A timer or ticker with its channel (`kind`: `timer` or `ticker`).
fn channel_timer_handle(cx: &Cx<'_>, ms: &Value, periodic: bool) -> Res {
    let d = cx.duration(ms)?;
    if periodic && d == 0 {
        return Err(cx.misuse(format!("period must be positive (got {})", shown(ms))));
    }
    let name = if periodic { "ticks" } else { "timer" };
    let period = periodic.then_some(d);
    let (timer, ch) = channel_timer(cx.rt(), d, period, cx.here(), name, time_value);
    cx.handle(LuaTimer {
        timer,
        chan: Some(ch),
        periodic,
    })
}

pub(crate) static FUNCS: &[Func] = &[
    Func {
        module: "goroutine",
        name: "after",
        results: 1,
        call: |cx, (ms, _, _)| {
            let d = cx.duration(&ms)?;
            let (_, ch) = channel_timer(cx.rt(), d, None, cx.here(), "after", time_value);
            cx.handle(LuaChannel::owned_by_gosim(ch))
        },
    },
    Func {
        module: "goroutine",
        name: "timer",
        results: 1,
        call: |cx, (ms, _, _)| channel_timer_handle(cx, &ms, false),
    },
    Func {
        module: "goroutine",
        name: "ticker",
        results: 1,
        call: |cx, (ms, _, _)| channel_timer_handle(cx, &ms, true),
    },
    Func {
        module: "goroutine",
        name: "after_func",
        results: 1,
        call: |cx, (ms, f, _)| {
            let d = cx.duration(&ms)?;
            if !super::is_callable(&f) {
                return Err(cx.misuse(format!("expects a function (got {})", shown(&f))));
            }
            // The timer holds the host weakly: a timer kept by the run must not keep the run alive.
            let host = Rc::downgrade(cx.host);
            let spawn = move |_: &Runtime| {
                let Some(host) = host.upgrade() else { return };
                let Some(lua) = host.weak_lua.try_upgrade() else {
                    return;
                };
                let _ = host.spawn(
                    &lua,
                    f.clone(),
                    Some("after_func"),
                    false,
                    MultiValue::new(),
                );
            };
            let timer = after_func(cx.rt(), d, spawn, cx.here());
            cx.handle(LuaTimer {
                timer,
                chan: None,
                periodic: false,
            })
        },
    },
];

pub(crate) static KIND: Kind<LuaTimer> = Kind {
    table: "timer",
    name: "timer",
    what: "a timer or ticker",
    methods: &[
        Method {
            name: "channel",
            results: 1,
            call: |cx, t, _| match t.chan.clone() {
                Some(ch) => cx.handle(LuaChannel::owned_by_gosim(ch)),
                None => Err(cx.misuse("an after_func timer has no channel")),
            },
        },
        Method {
            name: "stop",
            results: 1,
            call: |cx, t, _| cx.point(t.timer.stop()),
        },
        Method {
            name: "reset",
            results: 1,
            call: |cx, t, (ms, _, _)| {
                let fname = if t.periodic {
                    "ticker:reset"
                } else {
                    "timer:reset"
                };
                let cx = Cx { fname, ..*cx };
                let d = cx.duration(&ms)?;
                if t.periodic && d == 0 {
                    return Err(cx.misuse(format!("period must be positive (got {})", shown(&ms))));
                }
                cx.point(t.timer.reset_nanos(d))
            },
        },
    ],
};
