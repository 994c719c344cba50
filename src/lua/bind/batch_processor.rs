//! `goroutine.batch_processor{batch_size=100, flush_interval=1000, fn, max_queue?}` and its
//! methods (`patterns::BatchProcessor`, seed 7.2): `add(item, timeout_ms?) -> true | false,
//! "closed" | false, "timeout"`, `flush()`, `close(timeout_ms?) -> true | false, "timeout"`,
//! `stats() -> {added, batches, failed, pending}`. The prelude's constructor starts the
//! processor's goroutine, a loop over the private steps declared here (`_next`, `_done`) that
//! calls the user's `fn(items)`.

use std::time::Duration;

use mlua::{Table, Value};

use super::{Cx, Func, Kind, Method, is_callable, nothing, shown};
use crate::lua::objects::LuaBatchProcessor;
use crate::lua::value::LuaValue;
use crate::patterns::{BatchOptions, BatchProcessor};

pub(crate) static FUNCS: &[Func] = &[Func {
    // The first step of the prelude's constructor, which then starts the processor's loop.
    module: "goroutine",
    name: "batch_processor",
    results: 1,
    call: |cx, (opts, _, _)| {
        let opts = options(cx, &opts)?;
        cx.handle(LuaBatchProcessor(BatchProcessor::new(
            cx.rt(),
            opts,
            cx.here(),
        )))
    },
}];

/// The options table: `fn` is required (checked here, used by the prelude).
fn options(cx: &Cx<'_>, v: &Value) -> Result<BatchOptions, String> {
    let mut o = BatchOptions::default();
    let t: Table = match v {
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
    let count = |k: &str, v: Value| -> Result<Option<usize>, String> {
        match v {
            Value::Nil => Ok(None),
            v => match super::integer(&v) {
                Some(n) if n >= 1 => Ok(Some(n as usize)),
                _ => Err(cx.misuse(format!(
                    "{k} must be a positive integer (got {})",
                    shown(&v)
                ))),
            },
        }
    };
    if let Some(n) = count("batch_size", get("batch_size")?)? {
        o.batch_size = n;
    }
    match get("flush_interval")? {
        Value::Nil => {}
        v @ (Value::Integer(_) | Value::Number(_)) if cx.duration(&v).is_ok_and(|d| d > 0) => {
            o.flush_interval = Duration::from_nanos(cx.duration(&v)?);
        }
        other => {
            return Err(cx.misuse(format!(
                "flush_interval must be a positive number of milliseconds (got {})",
                shown(&other)
            )));
        }
    }
    if let Some(m) = count("max_queue", get("max_queue")?)? {
        if m < o.batch_size {
            return Err(cx.misuse(format!(
                "max_queue must be at least batch_size ({}) (got {m})",
                o.batch_size
            )));
        }
        o.max_queue = Some(m);
    }
    Ok(o)
}

pub(crate) static KIND: Kind<LuaBatchProcessor> = Kind {
    table: "batch_processor",
    name: "batch_processor",
    what: "a batch_processor",
    methods: &[
        Method {
            name: "add",
            results: 2,
            call: |cx, b, (item, t, _)| {
                if item.is_nil() {
                    return Err(cx.misuse("item must not be nil"));
                }
                let t = cx.timeout(&t)?;
                cx.wait(b.0.add(LuaValue(item), t), super::outcome)
            },
        },
        Method {
            name: "flush",
            results: 0,
            call: |cx, b, _| {
                b.0.flush();
                cx.point(())
            },
        },
        Method {
            name: "close",
            results: 2,
            call: |cx, b, (t, _, _)| {
                let t = cx.timeout(&t)?;
                cx.wait(b.0.close(t), super::outcome)
            },
        },
        Method {
            name: "stats",
            results: 1,
            call: |cx, b, _| {
                let s = b.0.stats();
                cx.counts(&[
                    ("added", s.added as i64),
                    ("batches", s.batches as i64),
                    ("failed", s.failed as i64),
                    ("pending", s.pending as i64),
                ])
            },
        },
        Method {
            // Private: the next batch as a list (`nil` once closed and drained).
            name: "_next",
            results: 1,
            call: |cx, b, _| {
                let b = b.0.clone();
                let fut = Box::pin(async move { b.next_batch().await });
                cx.wait(fut, |lua, batch| match batch {
                    Some(items) => {
                        let t = lua.create_table_with_capacity(items.len(), 0);
                        match t {
                            Ok(t) => {
                                for (i, v) in items.into_iter().enumerate() {
                                    let _ = t.raw_set(i + 1, v.0);
                                }
                                (Value::Table(t), Value::Nil, Value::Nil)
                            }
                            Err(_) => nothing(),
                        }
                    }
                    None => nothing(),
                })
            },
        },
        Method {
            // Private: `fn` returned on the batch (`ok`, and the error message).
            name: "_done",
            results: 0,
            call: |cx, b, (ok, msg, _)| {
                b.0.batch_done(match ok {
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
