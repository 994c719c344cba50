//! `goroutine.bulkhead{partitions = {NAME = {max_concurrent = n, max_wait = ms}}}`
//! (`patterns::Bulkhead`, seed 3.4): the state machine's steps `bh:enter(name) -> true | false,
//! "bulkhead full: NAME"` (waits at most the partition's `max_wait`, default 0) and
//! `bh:leave(name)`, plus `bh:in_flight(name)` and `bh:waiting(name)`. `bh:execute(name, fn, ...)`
//! is the prelude's combinator over them (it calls the user's `fn`, which Rust cannot do).

use std::collections::BTreeMap;
use std::time::Duration;

use mlua::Value;

use super::{Cx, Func, Kind, Method, integer, shown};
use crate::lua::objects::LuaBulkhead;
use crate::patterns::{Bulkhead, Partition};

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "bulkhead",
    results: 1,
    call: |cx, (opts, _, _)| {
        let Value::Table(t) = &opts else {
            return Err(cx.misuse(format!(
                "expects an options table {{partitions = {{...}}}} (got {})",
                shown(&opts)
            )));
        };
        let parts: Value = t.get("partitions").map_err(|e| cx.misuse(e))?;
        let Value::Table(parts) = parts else {
            return Err(cx.misuse(format!(
                "partitions must be a table of name = {{max_concurrent = n}} (got {})",
                shown(&parts)
            )));
        };
        let mut list: BTreeMap<String, Partition> = BTreeMap::new();
        for pair in parts.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| cx.misuse(e))?;
            let Value::String(name) = &k else {
                return Err(cx.misuse(format!(
                    "partition names must be strings (got {})",
                    shown(&k)
                )));
            };
            let name = name.to_string_lossy();
            let Value::Table(p) = &v else {
                return Err(cx.misuse(format!(
                    "partition {name:?} must be a table {{max_concurrent = n}} (got {})",
                    shown(&v)
                )));
            };
            let mc: Value = p.get("max_concurrent").map_err(|e| cx.misuse(e))?;
            let max_concurrent = match integer(&mc) {
                Some(n) if n > 0 => n as u64,
                _ => {
                    return Err(cx.misuse(format!(
                        "partition {name:?}: max_concurrent must be a positive integer (got {})",
                        shown(&mc)
                    )));
                }
            };
            let mw: Value = p.get("max_wait").map_err(|e| cx.misuse(e))?;
            let max_wait = match mw {
                Value::Nil => Some(Duration::ZERO),
                Value::Number(n) if n == f64::INFINITY => None,
                Value::Integer(i) if i >= 0 => Some(Duration::from_nanos(cx.duration(&mw)?)),
                Value::Number(n) if n >= 0.0 => Some(Duration::from_nanos(cx.duration(&mw)?)),
                other => {
                    return Err(cx.misuse(format!(
                        "partition {name:?}: max_wait must be a non-negative number of milliseconds (got {})",
                        shown(&other)
                    )));
                }
            };
            list.insert(
                name,
                Partition {
                    max_concurrent,
                    max_wait,
                },
            );
        }
        if list.is_empty() {
            return Err(cx.misuse("at least one partition is needed"));
        }
        let parts: Vec<(&str, Partition)> = list.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        cx.handle(LuaBulkhead(Bulkhead::new(cx.rt(), &parts, cx.here())))
    },
}];

/// The partition name argument.
fn name(cx: &Cx<'_>, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.to_string_lossy()),
        other => Err(cx.misuse(format!(
            "partition name must be a string (got {})",
            shown(other)
        ))),
    }
}

pub(crate) static KIND: Kind<LuaBulkhead> = Kind {
    table: "bulkhead",
    name: "bulkhead",
    what: "a bulkhead",
    methods: &[
        Method {
            name: "enter",
            results: 2,
            call: |cx, b, (n, _, _)| {
                let n = name(cx, &n)?;
                let op = b.0.enter(&n).map_err(|e| cx.misuse(e))?;
                cx.wait(op, super::outcome)
            },
        },
        Method {
            name: "leave",
            results: 0,
            call: |cx, b, (n, _, _)| {
                let n = name(cx, &n)?;
                b.0.leave(&n).map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
        Method {
            name: "in_flight",
            results: 1,
            call: |cx, b, (n, _, _)| {
                let n = name(cx, &n)?;
                let v = b.0.in_flight(&n).map_err(|e| cx.misuse(e))?;
                cx.ret(v as i64)
            },
        },
        Method {
            name: "waiting",
            results: 1,
            call: |cx, b, (n, _, _)| {
                let n = name(cx, &n)?;
                let v = b.0.waiting(&n).map_err(|e| cx.misuse(e))?;
                cx.ret(v as i64)
            },
        },
    ],
};
