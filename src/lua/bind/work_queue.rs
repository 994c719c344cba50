//! `goroutine.work_queue{workers, max_retries, dlq_enabled, retry_delay, max_delay}` and its
//! methods (`patterns::WorkQueue`, seed 4.3): `enqueue(item) -> true | false, "closed"`,
//! `dead_letter_queue() -> channel` (records `{item=..., error=..., attempts=...}`), `close()`,
//! `wait(timeout_ms?) -> true | false, "timeout"`, `stats()`, `len()`, and `process(fn)`, the
//! prelude's worker loops over the private steps declared here (`process`'s first step,
//! `_next`, `_done`, `_fail`).

use std::time::Duration;

use mlua::{Table, Value};

use super::{Cx, Func, Kind, Method, nothing, shown, string};
use crate::lua::objects::{LuaChannel, LuaWorkQueue};
use crate::lua::value::LuaValue;
use crate::patterns::{WorkQueue, WorkQueueOptions};

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "work_queue",
    results: 1,
    call: |cx, (opts, _, _)| {
        let opts = options(cx, &opts)?;
        let weak = cx.lua.weak();
        let q = WorkQueue::with_dead_letters(
            cx.rt(),
            opts,
            cx.here(),
            move |d: crate::patterns::DeadLetter<LuaValue>| {
                // A record table, made while the Lua state is alive (always, while a script runs).
                let t = weak.try_upgrade().and_then(|lua| {
                    let t = lua.create_table().ok()?;
                    t.set("item", d.item.0).ok()?;
                    t.set("error", d.error).ok()?;
                    t.set("attempts", d.attempts).ok()?;
                    Some(t)
                });
                LuaValue(t.map(Value::Table).unwrap_or(Value::Nil))
            },
        );
        cx.handle(LuaWorkQueue(q))
    },
}];

/// The options table (every field optional).
fn options(cx: &Cx<'_>, v: &Value) -> Result<WorkQueueOptions, String> {
    let mut o = WorkQueueOptions::default();
    let t: Table = match v {
        Value::Nil => return Ok(o),
        Value::Table(t) => t.clone(),
        other => {
            return Err(cx.misuse(format!("options must be a table (got {})", shown(other))));
        }
    };
    let get = |k: &str| t.get::<Value>(k).map_err(|e| cx.misuse(e));
    let count = |k: &str, v: Value, min: i64| -> Result<Option<i64>, String> {
        match v {
            Value::Nil => Ok(None),
            v => match super::integer(&v) {
                Some(n) if n >= min => Ok(Some(n)),
                _ => Err(cx.misuse(format!(
                    "{k} must be an integer >= {min} (got {})",
                    shown(&v)
                ))),
            },
        }
    };
    let ms = |k: &str, v: Value| -> Result<Option<Duration>, String> {
        match v {
            Value::Nil => Ok(None),
            Value::Integer(i) if i >= 0 => Ok(Some(Duration::from_nanos(cx.duration(&v)?))),
            Value::Number(n) if n >= 0.0 => Ok(Some(Duration::from_nanos(cx.duration(&v)?))),
            other => Err(cx.misuse(format!(
                "{k} must be a non-negative number of milliseconds (got {})",
                shown(&other)
            ))),
        }
    };
    if let Some(n) = count("workers", get("workers")?, 1)? {
        o.workers = n as usize;
    }
    if let Some(n) = count("max_retries", get("max_retries")?, 0)? {
        o.max_retries = n.min(u32::MAX as i64) as u32;
    }
    match get("dlq_enabled")? {
        Value::Nil => {}
        Value::Boolean(b) => o.dlq_enabled = b,
        other => {
            return Err(cx.misuse(format!(
                "dlq_enabled must be a boolean (got {})",
                shown(&other)
            )));
        }
    }
    if let Some(d) = ms("retry_delay", get("retry_delay")?)? {
        o.retry_delay = d;
    }
    if let Some(d) = ms("max_delay", get("max_delay")?)? {
        o.max_delay = d;
    }
    Ok(o)
}

/// A job id handed out by `_next`.
fn job(cx: &Cx<'_>, v: &Value) -> Result<u64, String> {
    match cx.int(v, "job id")? {
        i if i > 0 => Ok(i as u64),
        i => Err(cx.misuse(format!("bad job id {i}"))),
    }
}

pub(crate) static KIND: Kind<LuaWorkQueue> = Kind {
    table: "work_queue",
    name: "work_queue",
    what: "a work_queue",
    methods: &[
        Method {
            name: "enqueue",
            results: 2,
            call: |cx, q, (item, _, _)| {
                if item.is_nil() {
                    return Err(cx.misuse("item must not be nil"));
                }
                match q.0.enqueue(LuaValue(item)) {
                    Ok(_) => cx.point(Value::Boolean(true)),
                    Err(e) => cx.point((Value::Boolean(false), string(cx.lua, &e.to_string()))),
                }
            },
        },
        Method {
            name: "dead_letter_queue",
            results: 1,
            call: |cx, q, _| cx.handle(LuaChannel::owned_by_gosim(q.0.dead_letter_queue())),
        },
        Method {
            name: "close",
            results: 0,
            call: |cx, q, _| {
                q.0.close();
                cx.point(())
            },
        },
        Method {
            name: "wait",
            results: 2,
            call: |cx, q, (t, _, _)| {
                let t = match t {
                    Value::Nil => None,
                    v => Some(Duration::from_nanos(cx.duration(&v)?)),
                };
                cx.wait(q.0.wait(t), super::outcome)
            },
        },
        Method {
            name: "stats",
            results: 1,
            call: |cx, q, _| {
                let s = q.0.stats();
                cx.counts(&[
                    ("processed", s.processed as i64),
                    ("failed", s.failed as i64),
                    ("retried", s.retried as i64),
                    ("dead_lettered", s.dead_lettered as i64),
                    ("dropped", s.dropped as i64),
                ])
            },
        },
        Method {
            name: "len",
            results: 1,
            call: |cx, q, _| cx.ret(q.0.len()),
        },
        Method {
            // The first step of the prelude's `process` (which replaces it in the methods
            // table): how many worker loops to start; a second call is misuse.
            name: "process",
            results: 1,
            call: |cx, q, _| {
                let n = q.0.process_begin().map_err(|e| cx.misuse(e))?;
                cx.ret(n)
            },
        },
        Method {
            name: "_next",
            results: 2,
            call: |cx, q, _| {
                let q = q.0.clone();
                let fut = Box::pin(async move { q.next_job().await });
                cx.wait(fut, |_, out| match out {
                    Some((id, v)) => (Value::Integer(id as i64), v.0, Value::Nil),
                    None => nothing(),
                })
            },
        },
        Method {
            name: "_done",
            results: 0,
            call: |cx, q, (i, _, _)| {
                q.0.job_done(job(cx, &i)?);
                cx.ret(())
            },
        },
        Method {
            name: "_fail",
            results: 0,
            call: |cx, q, (i, msg, _)| {
                let msg = match msg {
                    Value::String(s) => s.to_string_lossy(),
                    other => crate::lua::value::describe(&other),
                };
                q.0.job_failed(job(cx, &i)?, msg);
                cx.ret(())
            },
        },
    ],
};
