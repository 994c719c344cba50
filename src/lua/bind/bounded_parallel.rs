//! `goroutine.bounded_parallel{max_parallel, queue_size}` and its methods
//! (`patterns::BoundedParallel`, seed 7.1): `submit(fn, timeout_ms?) -> true | false,
//! "timeout"`, `wait_all(timeout_ms?) -> errors | nil, "timeout"` (a list of messages, empty
//! when none failed), `stats() -> {active, queued, completed, failed}`. The prelude's `submit`
//! starts the group's goroutine when this file's first step (`submit`) says so; that
//! goroutine's loop runs the functions between `_done` steps.

use mlua::{Table, Value};

use super::{Func, Kind, Method, is_callable, shown, string};
use crate::lua::objects::LuaBoundedParallel;
use crate::lua::value::LuaValue;
use crate::patterns::{Admit, BoundedParallel};

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "bounded_parallel",
    results: 1,
    call: |cx, (opts, _, _)| {
        let t: Table = match &opts {
            Value::Table(t) => t.clone(),
            other => {
                return Err(cx.misuse(format!("options must be a table (got {})", shown(other))));
            }
        };
        let get = |k: &str| t.get::<Value>(k).map_err(|e| cx.misuse(e));
        let max = match get("max_parallel")? {
            Value::Nil => 10,
            v => match super::integer(&v) {
                Some(n) if n >= 1 => n as usize,
                _ => {
                    return Err(cx.misuse(format!(
                        "max_parallel must be a positive integer (got {})",
                        shown(&v)
                    )));
                }
            },
        };
        let queue = match get("queue_size")? {
            Value::Nil => 0,
            v => match super::integer(&v) {
                Some(n) if n >= 0 => n as usize,
                _ => {
                    return Err(cx.misuse(format!(
                        "queue_size must be a non-negative integer (got {})",
                        shown(&v)
                    )));
                }
            },
        };
        cx.handle(LuaBoundedParallel(BoundedParallel::new(
            cx.rt(),
            max,
            queue,
            cx.here(),
        )))
    },
}];

pub(crate) static KIND: Kind<LuaBoundedParallel> = Kind {
    table: "bounded_parallel",
    name: "bounded_parallel",
    what: "a bounded_parallel",
    methods: &[
        Method {
            // The first step of the prelude's `submit`: `"start"` (start a goroutine for fn),
            // `true` (queued) or `false, "timeout"`.
            name: "submit",
            results: 2,
            call: |cx, b, (f, t, _)| {
                if !is_callable(&f) {
                    return Err(cx.misuse(format!("expects a function (got {})", shown(&f))));
                }
                let t = cx.timeout(&t)?;
                cx.wait(b.0.submit_begin(LuaValue(f), t), |lua, r| match r {
                    Ok(Admit::Start(_)) => (string(lua, "start"), Value::Nil, Value::Nil),
                    Ok(Admit::Queued) => (Value::Boolean(true), Value::Nil, Value::Nil),
                    Err(e) => (
                        Value::Boolean(false),
                        string(lua, &e.to_string()),
                        Value::Nil,
                    ),
                })
            },
        },
        Method {
            // Private: a function ended (`ok`, message); the next one to run, or nil.
            name: "_done",
            results: 1,
            call: |cx, b, (ok, msg, _)| {
                let next = b.0.job_done(match ok {
                    Value::Boolean(true) => Ok(()),
                    _ => Err(match msg {
                        Value::String(s) => s.to_string_lossy(),
                        other => crate::lua::value::describe(&other),
                    }),
                });
                cx.ret(next.map_or(Value::Nil, |v| v.0))
            },
        },
        Method {
            name: "wait_all",
            results: 2,
            call: |cx, b, (t, _, _)| {
                let t = cx.timeout(&t)?;
                cx.wait(b.0.wait_all(t), |lua, r| match r {
                    Ok(errors) => {
                        let list = lua.create_table_with_capacity(errors.len(), 0);
                        match list {
                            Ok(list) => {
                                for (i, e) in errors.iter().enumerate() {
                                    let _ = list.raw_set(i + 1, e.as_str());
                                }
                                (Value::Table(list), Value::Nil, Value::Nil)
                            }
                            Err(_) => (Value::Nil, string(lua, "out of memory"), Value::Nil),
                        }
                    }
                    Err(e) => (Value::Nil, string(lua, &e.to_string()), Value::Nil),
                })
            },
        },
        Method {
            name: "stats",
            results: 1,
            call: |cx, b, _| {
                let s = b.0.stats();
                cx.counts(&[
                    ("active", s.active as i64),
                    ("queued", s.queued as i64),
                    ("completed", s.completed as i64),
                    ("failed", s.failed as i64),
                ])
            },
        },
    ],
};
