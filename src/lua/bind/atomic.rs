//! `goroutine.atomic_int(init)` and its methods. Plain data (one goroutine runs at a time), but
//! every operation is traced and is a scheduling point, so the interleavings around it are explored.

use std::cell::Cell;

use mlua::Value;

use super::{Cx, Func, Kind, Method, Res};
use crate::lua::objects::LuaAtomic;
use crate::lua::value::describe;
use crate::runtime::{ResourceKind, Subject};

/// Any goroutine may change an atomic; nobody waits on one.
const RESOURCE: ResourceKind = ResourceKind::released_by_anyone("atomic");

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "atomic_int",
    results: 1,
    call: |cx, (init, _, _)| {
        let init = cx.int_or(&init, "initial value", 0)?;
        let res = cx.rt().new_resource(RESOURCE, cx.here());
        cx.handle(LuaAtomic {
            value: Cell::new(init),
            res,
        })
    },
}];

/// Traces the operation (`atomic.add atomic#1 3 (now 3)`) and takes the scheduling point.
fn done(cx: &Cx<'_>, a: &LuaAtomic, verb: &'static str, out: Value) -> Res {
    let rt = cx.rt();
    if rt.tracing() {
        let detail = format!("{} (now {})", describe(&out), a.value.get());
        rt.emit(verb, Subject::Resource(a.res.clone()), Some(detail));
    }
    cx.point(out)
}

pub(crate) static KIND: Kind<LuaAtomic> = Kind {
    table: "atomic",
    name: "atomic_int",
    what: "an atomic_int",
    methods: &[
        Method {
            name: "add",
            results: 1,
            call: |cx, a, (d, _, _)| {
                let n = a.value.get().wrapping_add(cx.int(&d, "delta")?);
                a.value.set(n);
                done(cx, a, "atomic.add", Value::Integer(n))
            },
        },
        Method {
            name: "load",
            results: 1,
            call: |cx, a, _| done(cx, a, "atomic.load", Value::Integer(a.value.get())),
        },
        Method {
            name: "store",
            results: 0,
            call: |cx, a, (v, _, _)| {
                a.value.set(cx.int(&v, "value")?);
                done(cx, a, "atomic.store", Value::Nil)
            },
        },
        Method {
            name: "swap",
            results: 1,
            call: |cx, a, (v, _, _)| {
                let old = a.value.replace(cx.int(&v, "value")?);
                done(cx, a, "atomic.swap", Value::Integer(old))
            },
        },
        Method {
            name: "compare_and_swap",
            results: 1,
            call: |cx, a, (old, new, _)| {
                let (old, new) = (cx.int(&old, "old")?, cx.int(&new, "new")?);
                let swapped = a.value.get() == old;
                if swapped {
                    a.value.set(new);
                }
                done(cx, a, "atomic.cas", Value::Boolean(swapped))
            },
        },
    ],
};
