//! `goroutine.atomic_int(init)` and its methods, over `crate::sync::AtomicInt` (the one a Rust
//! task uses): `AtomicInt::apply` does and traces the operation, the binding takes the
//! scheduling point after it, so the interleavings around it are explored.

use mlua::Value;

use super::{Cx, Func, Kind, Method, Res};
use crate::lua::objects::LuaAtomic;
use crate::sync::{AtomicInt, AtomicOp, AtomicResult};

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "atomic_int",
    results: 1,
    call: |cx, (init, _, _)| {
        let init = cx.int_or(&init, "initial value", 0)?;
        cx.handle(LuaAtomic(AtomicInt::new(cx.rt(), init, cx.here())))
    },
}];

/// Applies `op` (which traces it) and takes the scheduling point.
fn apply(cx: &Cx<'_>, a: &LuaAtomic, op: AtomicOp) -> Res {
    cx.point(match a.0.apply(op) {
        AtomicResult::Int(v) => Value::Integer(v),
        AtomicResult::Unit => Value::Nil,
        AtomicResult::Swapped(b) => Value::Boolean(b),
    })
}

pub(crate) static KIND: Kind<LuaAtomic> = Kind {
    table: "atomic",
    name: "atomic_int",
    what: "an atomic_int",
    methods: &[
        Method {
            name: "add",
            results: 1,
            call: |cx, a, (d, _, _)| apply(cx, a, AtomicOp::Add(cx.int(&d, "delta")?)),
        },
        Method {
            name: "load",
            results: 1,
            call: |cx, a, _| apply(cx, a, AtomicOp::Load),
        },
        Method {
            name: "store",
            results: 0,
            call: |cx, a, (v, _, _)| apply(cx, a, AtomicOp::Store(cx.int(&v, "value")?)),
        },
        Method {
            name: "swap",
            results: 1,
            call: |cx, a, (v, _, _)| apply(cx, a, AtomicOp::Swap(cx.int(&v, "value")?)),
        },
        Method {
            name: "compare_and_swap",
            results: 1,
            call: |cx, a, (old, new, _)| {
                let (old, new) = (cx.int(&old, "old")?, cx.int(&new, "new")?);
                apply(cx, a, AtomicOp::CompareAndSwap { old, new })
            },
        },
    ],
};
