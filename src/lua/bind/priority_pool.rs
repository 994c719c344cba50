//! `goroutine.priority_worker_pool{workers, fn}` and its methods (`patterns::PriorityPool`,
//! seed 3.1): `submit(task, prio?) -> true | false, "closed"` (prio: an integer, default 0,
//! larger first), `wait(timeout_ms?) -> true | false, "timeout"`, `close()`, `stats() ->
//! {workers, active, queued, completed, failed}`. The prelude's constructor starts the worker
//! loops over the private steps declared here (`_next`, `_done`), calling `fn(task)`.

use mlua::{Table, Value};

use super::{Func, Kind, Method, is_callable, nothing, shown, string};
use crate::lua::objects::LuaPriorityPool;
use crate::lua::value::LuaValue;
use crate::patterns::PriorityPool;

pub(crate) static FUNCS: &[Func] = &[Func {
    // The first step of the prelude's constructor, which then starts the workers.
    module: "goroutine",
    name: "priority_worker_pool",
    results: 1,
    call: |cx, (opts, _, _)| {
        let t: Table = match &opts {
            Value::Table(t) => t.clone(),
            other => {
                return Err(cx.misuse(format!("options must be a table (got {})", shown(other))));
            }
        };
        let get = |k: &str| t.get::<Value>(k).map_err(|e| cx.misuse(e));
        let f = get("fn")?;
        if !is_callable(&f) {
            return Err(cx.misuse(format!("fn must be a function (got {})", shown(&f))));
        }
        let workers = match get("workers")? {
            Value::Nil => 4,
            v => match super::integer(&v) {
                Some(n) if n >= 1 => n as usize,
                _ => {
                    return Err(cx.misuse(format!(
                        "workers must be a positive integer (got {})",
                        shown(&v)
                    )));
                }
            },
        };
        cx.handle(LuaPriorityPool(PriorityPool::new(
            cx.rt(),
            workers,
            cx.here(),
        )))
    },
}];

pub(crate) static KIND: Kind<LuaPriorityPool> = Kind {
    table: "priority_worker_pool",
    name: "priority_worker_pool",
    what: "a priority_worker_pool",
    methods: &[
        Method {
            name: "submit",
            results: 2,
            call: |cx, p, (task, prio, _)| {
                if task.is_nil() {
                    return Err(cx.misuse("task must not be nil"));
                }
                let prio = cx.int_or(&prio, "priority", 0)?;
                let p = p.0.clone();
                let fut = Box::pin(async move { p.submit(LuaValue(task), prio).await });
                cx.wait(fut, |lua, r| match r {
                    Ok(()) => (Value::Boolean(true), Value::Nil, Value::Nil),
                    Err(_) => (Value::Boolean(false), string(lua, "closed"), Value::Nil),
                })
            },
        },
        Method {
            name: "wait",
            results: 2,
            call: |cx, p, (t, _, _)| {
                let t = cx.timeout(&t)?;
                cx.wait(p.0.wait(t), super::outcome)
            },
        },
        Method {
            name: "close",
            results: 0,
            call: |cx, p, _| {
                p.0.close();
                cx.point(())
            },
        },
        Method {
            name: "stats",
            results: 1,
            call: |cx, p, _| {
                let s = p.0.stats();
                cx.counts(&[
                    ("workers", s.workers as i64),
                    ("active", s.active as i64),
                    ("queued", s.queued as i64),
                    ("completed", s.completed as i64),
                    ("failed", s.failed as i64),
                ])
            },
        },
        Method {
            // Private: the number of workers to start (the constructor's second step).
            name: "_workers",
            results: 1,
            call: |cx, p, _| cx.ret(p.0.workers() as i64),
        },
        Method {
            // Private: a worker's next task (`nil` once closed and drained).
            name: "_next",
            results: 2,
            call: |cx, p, _| {
                let p = p.0.clone();
                let fut = Box::pin(async move { p.next_job().await });
                cx.wait(fut, |_, t| match t {
                    Some(v) => (Value::Boolean(true), v.0, Value::Nil),
                    None => nothing(),
                })
            },
        },
        Method {
            // Private: the task ended (`ok`, message).
            name: "_done",
            results: 0,
            call: |cx, p, (ok, msg, _)| {
                p.0.job_done(match ok {
                    Value::Boolean(true) => Ok(()),
                    _ => Err(match msg {
                        Value::String(s) => s.to_string_lossy(),
                        other => crate::lua::value::describe(&other),
                    }),
                });
                cx.ret(())
            },
        },
    ],
};
