//! `goroutine.adaptive_pool{min_workers, max_workers, scale_up_threshold, scale_down_threshold,
//! check_interval}` and its methods (`patterns::AdaptivePool`, seed 7.3): `process(fn)`,
//! `submit(task) -> true | false, "closed"`, `wait(timeout_ms?) -> true | false, "timeout"`,
//! `close()`, `stats() -> {workers, busy, queued, completed, failed}`. `process` (its first
//! step here, then the prelude) hands Rust a spawner of the prelude's worker loop, which runs
//! `fn(task)` between the private steps `_next` and `_done`.

use std::time::Duration;

use mlua::{MultiValue, Table, Value};

use super::{Cx, Func, Kind, Method, nothing, shown, string};
use crate::lua::objects::LuaAdaptivePool;
use crate::lua::value::LuaValue;
use crate::patterns::{AdaptiveOptions, AdaptivePool};

pub(crate) static FUNCS: &[Func] = &[Func {
    module: "goroutine",
    name: "adaptive_pool",
    results: 1,
    call: |cx, (opts, _, _)| {
        let o = options(cx, &opts)?;
        cx.handle(LuaAdaptivePool(AdaptivePool::new(cx.rt(), o, cx.here())))
    },
}];

fn options(cx: &Cx<'_>, v: &Value) -> Result<AdaptiveOptions, String> {
    let mut o = AdaptiveOptions::default();
    let t: Table = match v {
        Value::Nil => return Ok(o),
        Value::Table(t) => t.clone(),
        other => {
            return Err(cx.misuse(format!("options must be a table (got {})", shown(other))));
        }
    };
    let get = |k: &str| t.get::<Value>(k).map_err(|e| cx.misuse(e));
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
    let ratio = |k: &str, v: Value| -> Result<Option<f64>, String> {
        match v {
            Value::Nil => Ok(None),
            Value::Integer(i) if i >= 0 => Ok(Some(i as f64)),
            Value::Number(n) if n >= 0.0 && n.is_finite() => Ok(Some(n)),
            other => Err(cx.misuse(format!(
                "{k} must be a non-negative number (got {})",
                shown(&other)
            ))),
        }
    };
    if let Some(n) = count("min_workers", get("min_workers")?)? {
        o.min_workers = n;
        o.max_workers = o.max_workers.max(n);
    }
    if let Some(n) = count("max_workers", get("max_workers")?)? {
        o.max_workers = n;
    }
    if o.max_workers < o.min_workers {
        return Err(cx.misuse(format!(
            "max_workers ({}) must be at least min_workers ({})",
            o.max_workers, o.min_workers
        )));
    }
    if let Some(r) = ratio("scale_up_threshold", get("scale_up_threshold")?)? {
        o.scale_up_threshold = r;
    }
    if let Some(r) = ratio("scale_down_threshold", get("scale_down_threshold")?)? {
        o.scale_down_threshold = r;
    }
    if o.scale_down_threshold > o.scale_up_threshold {
        return Err(cx.misuse(format!(
            "scale_down_threshold ({}) must not exceed scale_up_threshold ({})",
            o.scale_down_threshold, o.scale_up_threshold
        )));
    }
    match get("check_interval")? {
        Value::Nil => {}
        v @ (Value::Integer(_) | Value::Number(_)) if cx.duration(&v).is_ok_and(|d| d > 0) => {
            o.check_interval = Duration::from_nanos(cx.duration(&v)?);
        }
        other => {
            return Err(cx.misuse(format!(
                "check_interval must be a positive number of milliseconds (got {})",
                shown(&other)
            )));
        }
    }
    Ok(o)
}

pub(crate) static KIND: Kind<LuaAdaptivePool> = Kind {
    table: "adaptive_pool",
    name: "adaptive_pool",
    what: "an adaptive_pool",
    methods: &[
        Method {
            // The first step of the prelude's `process(fn)`: `(worker loop, fn)`; starts the
            // min workers. A second call is misuse.
            name: "process",
            results: 0,
            call: |cx, p, (worker, f, _)| {
                let host = cx.host.clone();
                p.0.process_with(move |pool, i| {
                    let Some(lua) = host.weak_lua.try_upgrade() else {
                        return;
                    };
                    let Ok(ud) = lua.create_userdata(LuaAdaptivePool(pool.clone())) else {
                        return;
                    };
                    let args = MultiValue::from_vec(vec![Value::UserData(ud), f.clone()]);
                    let _ = host.spawn(
                        &lua,
                        worker.clone(),
                        Some(&pool.worker_name(i)),
                        false,
                        args,
                    );
                })
                .map_err(|e| cx.misuse(e))?;
                cx.point(())
            },
        },
        Method {
            name: "submit",
            results: 2,
            call: |cx, p, (task, _, _)| {
                if task.is_nil() {
                    return Err(cx.misuse("task must not be nil"));
                }
                match p.0.submit(LuaValue(task)) {
                    Ok(()) => cx.point(Value::Boolean(true)),
                    Err(_) => cx.point((Value::Boolean(false), string(cx.lua, "closed"))),
                }
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
                    ("busy", s.busy as i64),
                    ("queued", s.queued as i64),
                    ("completed", s.completed as i64),
                    ("failed", s.failed as i64),
                ])
            },
        },
        Method {
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
