//! `goroutine.mutex()` and its methods (`crate::sync::Mutex`: Go's barging mutex). A woken
//! locker that was overtaken parks again inside the bridged `LockFuture`: Lua never sees it.

use super::{Func, Kind, Method, nothing};
use crate::lua::objects::LuaMutex;
use crate::sync::Mutex;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "mutex",
    results: 1,
    call: |cx, _| cx.handle(LuaMutex(Mutex::new(cx.rt(), cx.here()))),
}];

pub(crate) static KIND: Kind<LuaMutex> = Kind {
    table: "mutex",
    name: "mutex",
    what: "a mutex",
    methods: &[
        Method {
            name: "lock",
            results: 0,
            call: |cx, m, _| cx.wait(m.0.lock(), |_, ()| nothing()),
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
            name: "try_lock",
            results: 1,
            call: |cx, m, _| cx.point(m.0.try_lock()),
        },
    ],
};
