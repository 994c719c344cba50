//! `goroutine.rwmutex_upgradeable()` and its methods (`patterns::UpgradeableRwLock`, seed 5.3):
//! `rlock`, `lock`, `upgradable_rlock`, `upgrade` (each `(timeout_ms?) -> true | false, "timeout"`),
//! `runlock`, `unlock`, `upgradable_runlock`, `try_upgrade() -> bool`.

use super::{Cx, Func, Kind, Method, Res};
use crate::lua::objects::LuaUpgradeableRwLock;
use crate::patterns::UpgradeableRwLock;
use crate::sync::{Op, Timeout};

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "rwmutex_upgradeable",
    results: 1,
    call: |cx, _| {
        cx.handle(LuaUpgradeableRwLock(UpgradeableRwLock::new(
            cx.rt(),
            cx.here(),
        )))
    },
}];

/// Drives a timed lock operation: `true`, or `false, "timeout"`.
fn timed(cx: &Cx<'_>, op: Op<Result<(), Timeout>>) -> Res {
    cx.wait(op, super::outcome)
}

pub(crate) static KIND: Kind<LuaUpgradeableRwLock> = Kind {
    table: "rwmutex_upgradeable",
    name: "rwmutex_upgradeable",
    what: "an upgradeable rwmutex",
    methods: &[
        Method {
            name: "rlock",
            results: 2,
            call: |cx, l, (t, _, _)| {
                let t = cx.timeout(&t)?;
                timed(cx, l.0.rlock(t))
            },
        },
        Method {
            name: "lock",
            results: 2,
            call: |cx, l, (t, _, _)| {
                let t = cx.timeout(&t)?;
                timed(cx, l.0.lock(t))
            },
        },
        Method {
            name: "upgradable_rlock",
            results: 2,
            call: |cx, l, (t, _, _)| {
                let t = cx.timeout(&t)?;
                timed(cx, l.0.upgradable_rlock(t))
            },
        },
        Method {
            name: "upgrade",
            results: 2,
            call: |cx, l, (t, _, _)| {
                let t = cx.timeout(&t)?;
                if !l.0.holds_upgradable() {
                    return Err(cx.misuse("upgrade without holding the upgradable read lock"));
                }
                timed(cx, l.0.upgrade(t))
            },
        },
        Method {
            name: "try_upgrade",
            results: 1,
            call: |cx, l, _| {
                let ok = l.0.try_upgrade().map_err(|e| cx.misuse(e))?;
                cx.point(ok)
            },
        },
        Method {
            name: "runlock",
            results: 0,
            call: |cx, l, _| {
                l.0.runlock().map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
        Method {
            name: "unlock",
            results: 0,
            call: |cx, l, _| {
                l.0.unlock().map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
        Method {
            name: "upgradable_runlock",
            results: 0,
            call: |cx, l, _| {
                l.0.upgradable_runlock().map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
    ],
};
