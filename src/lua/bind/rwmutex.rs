//! `goroutine.rwmutex()`, its methods, and `rw:rlocker()` (a locker whose lock/unlock are the
//! read side, for `goroutine.cond`).

use super::{Func, Kind, Method, nothing};
use crate::lua::objects::{LuaRLocker, LuaRwMutex};
use crate::sync::RwMutex;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "rwmutex",
    results: 1,
    call: |cx, _| cx.handle(LuaRwMutex(RwMutex::new(cx.rt(), cx.here()))),
}];

pub(crate) static KIND: Kind<LuaRwMutex> = Kind {
    table: "rwmutex",
    name: "rwmutex",
    what: "an rwmutex",
    methods: &[
        Method {
            name: "lock",
            results: 0,
            call: |cx, m, _| cx.wait(m.0.lock(), |_, ()| nothing()),
        },
        Method {
            name: "rlock",
            results: 0,
            call: |cx, m, _| cx.wait(m.0.rlock(), |_, ()| nothing()),
        },
        Method {
            name: "unlock",
            results: 0,
            call: |cx, m, _| {
                m.0.unlock().map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
        Method {
            name: "runlock",
            results: 0,
            call: |cx, m, _| {
                m.0.runlock().map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
        Method {
            name: "try_lock",
            results: 1,
            call: |cx, m, _| cx.point(m.0.try_lock()),
        },
        Method {
            name: "try_rlock",
            results: 1,
            call: |cx, m, _| cx.point(m.0.try_rlock()),
        },
        Method {
            name: "rlocker",
            results: 1,
            call: |cx, m, _| cx.handle(LuaRLocker(m.0.clone())),
        },
    ],
};

/// The read side of an rwmutex as a locker.
pub(crate) static RLOCKER: Kind<LuaRLocker> = Kind {
    table: "rlocker",
    name: "rlocker",
    what: "an rlocker",
    methods: &[
        Method {
            name: "lock",
            results: 0,
            call: |cx, l, _| cx.wait(l.0.rlock(), |_, ()| nothing()),
        },
        Method {
            name: "unlock",
            results: 0,
            call: |cx, l, _| {
                l.0.runlock().map_err(|e| format!("rwmutex:runlock: {e}"))?;
                cx.point(())
            },
        },
    ],
};
