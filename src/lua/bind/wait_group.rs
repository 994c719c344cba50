//! `goroutine.wait_group()` and its methods (`crate::sync::WaitGroup`). `wg:done()` is
//! `wg:add(-1)` under its own name in misuse messages.

use mlua::Value;

use super::{Cx, Func, Kind, Method, Res, nothing};
use crate::lua::objects::LuaWaitGroup;
use crate::sync::WaitGroup;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "wait_group",
    results: 1,
    call: |cx, _| cx.handle(LuaWaitGroup(WaitGroup::new(cx.rt(), cx.here()))),
}];

fn add(cx: &Cx<'_>, wg: &LuaWaitGroup, delta: &Value, default: i64) -> Res {
    let delta = cx.int_or(delta, "delta", default)?;
    wg.0.add(delta).map_err(|e| cx.misuse(e))?;
    cx.point(())
}

pub(crate) static KIND: Kind<LuaWaitGroup> = Kind {
    table: "waitgroup",
    name: "wait_group",
    what: "a wait group",
    methods: &[
        Method {
            name: "add",
            results: 0,
            call: |cx, wg, (delta, _, _)| add(cx, wg, &delta, 1),
        },
        Method {
            name: "done",
            results: 0,
            call: |cx, wg, _| add(cx, wg, &Value::Nil, -1),
        },
        Method {
            name: "wait",
            results: 0,
            call: |cx, wg, _| cx.wait(wg.0.wait(), |_, ()| nothing()),
        },
    ],
};
