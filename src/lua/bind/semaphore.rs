//! `goroutine.semaphore(n)` and its methods: a counting semaphore with FIFO hand-over
//! (`crate::sync::Semaphore`).

use super::{Func, Kind, Method};
use crate::lua::objects::LuaSemaphore;
use crate::sync::Semaphore;

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "semaphore",
    results: 1,
    call: |cx, (n, _, _)| {
        let n = match super::integer(&n) {
            Some(n) if n > 0 => n as usize,
            _ => {
                return Err(cx.misuse(format!(
                    "capacity must be a positive integer (got {})",
                    super::shown(&n)
                )));
            }
        };
        cx.handle(LuaSemaphore(Semaphore::new(cx.rt(), n, cx.here())))
    },
}];

pub(crate) static KIND: Kind<LuaSemaphore> = Kind {
    table: "semaphore",
    name: "semaphore",
    what: "a semaphore",
    methods: &[
        Method {
            name: "acquire",
            results: 0,
            call: |cx, s, _| cx.wait(s.0.acquire(), |_, ()| super::nothing()),
        },
        Method {
            name: "release",
            results: 0,
            call: |cx, s, _| {
                s.0.release().map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
        Method {
            name: "try_acquire",
            results: 1,
            call: |cx, s, _| cx.point(s.0.try_acquire()),
        },
        Method {
            name: "available",
            results: 1,
            call: |cx, s, _| cx.point(s.0.available()),
        },
        Method {
            name: "capacity",
            results: 1,
            call: |cx, s, _| cx.ret(s.0.capacity()),
        },
    ],
};
