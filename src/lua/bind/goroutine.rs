//! Goroutines and time: `goroutine.spawn`, `spawn_many`, `sleep`, `yield`, `now`, `id`, `name`.

use mlua::{MultiValue, Table, Value};

use super::{Cx, Func, Res, VarFunc, is_callable, ms_value, shown, string};
use crate::lua::Resume;

/// Spawns `f(args...)`; the new goroutine's id after the scheduling point (`nil` once the run
/// has hit its goroutine limit: the caller then stops at that point, rather than getting an error
/// a `pcall` could catch and loop on).
fn spawn(cx: &Cx<'_>, f: Value, name: Option<String>, daemon: bool, args: MultiValue) -> Res {
    let id = cx
        .host
        .spawn(cx.lua, f, name.as_deref(), daemon, args)
        .map_err(|e| cx.misuse(e))?;
    cx.point(id.map_or(Value::Nil, |id| Value::Integer(id.0 as i64)))
}

/// `goroutine.spawn{fn = f, name = "worker", daemon = true, args = {...}}`.
fn spawn_table(cx: &Cx<'_>, spec: &Table) -> Res {
    let get = |k: &str| spec.get::<Value>(k).map_err(|e| cx.misuse(e));
    let f = get("fn")?;
    if !is_callable(&f) {
        return Err(cx.misuse(format!(
            "table form needs fn = function (got {})",
            shown(&f)
        )));
    }
    let name = match get("name")? {
        Value::Nil => None,
        Value::String(s) => Some(s.to_string_lossy()),
        other => return Err(cx.misuse(format!("name must be a string (got {})", shown(&other)))),
    };
    let args = match get("args")? {
        Value::Nil => MultiValue::new(),
        Value::Table(t) => {
            let n = match t.get::<Value>("n").map_err(|e| cx.misuse(e))? {
                Value::Integer(n) => n.max(0) as usize,
                _ => t.raw_len(),
            };
            let mut args = MultiValue::with_capacity(n);
            for i in 1..=n {
                args.push_back(t.get::<Value>(i).map_err(|e| cx.misuse(e))?);
            }
            args
        }
        other => return Err(cx.misuse(format!("args must be a table (got {})", shown(&other)))),
    };
    let daemon = !matches!(get("daemon")?, Value::Nil | Value::Boolean(false));
    spawn(cx, f, name, daemon, args)
}

pub(crate) static VAR_FUNCS: &[VarFunc] = &[VarFunc {
    module: "goroutine",
    name: "spawn",
    results: 1,
    call: |cx, mut args| {
        let f = args.pop_front().unwrap_or(Value::Nil);
        match f {
            Value::Table(spec) if !is_callable(&Value::Table(spec.clone())) => {
                spawn_table(cx, &spec)
            }
            f if is_callable(&f) => spawn(cx, f, None, false, args),
            other => Err(cx.misuse(format!("expects a function (got {})", shown(&other)))),
        }
    },
}];

pub(crate) static FUNCS: &[Func] = &[
    Func {
        module: "goroutine",
        name: "spawn_many",
        results: 0,
        call: |cx, (n, f, _)| {
            let n = cx.int(&n, "count")?;
            if n < 0 {
                return Err(cx.misuse(format!("count must be non-negative (got {n})")));
            }
            if !is_callable(&f) {
                return Err(cx.misuse(format!("expects a function (got {})", shown(&f))));
            }
            for i in 1..=n {
                let args = MultiValue::from_vec(vec![Value::Integer(i)]);
                let spawned = cx.host.spawn(cx.lua, f.clone(), None, false, args);
                if spawned.map_err(|e| cx.misuse(e))?.is_none() {
                    break;
                }
            }
            cx.point(())
        },
    },
    Func {
        module: "goroutine",
        name: "sleep",
        results: 0,
        call: |cx, (ms, _, _)| {
            let d = cx.duration(&ms)?;
            if d == 0 {
                return cx.point(());
            }
            cx.rt().sleep(d);
            let (p, _) = cx.host.park_with(Resume::Nothing);
            Ok((p, Value::Nil, Value::Nil))
        },
    },
    Func {
        module: "goroutine",
        name: "yield",
        results: 0,
        call: |cx, _| cx.point(()),
    },
    Func {
        module: "goroutine",
        name: "now",
        results: 1,
        call: |cx, _| cx.ret(ms_value(cx.rt().now())),
    },
    Func {
        module: "goroutine",
        name: "id",
        results: 1,
        call: |cx, _| cx.ret(cx.rt().current().0 as i64),
    },
    Func {
        module: "goroutine",
        name: "name",
        results: 1,
        call: |cx, (new, _, _)| {
            let rt = cx.rt();
            let me = rt.current();
            match &new {
                Value::Nil => {}
                Value::String(s) => rt.set_task_name(me, &s.to_string_lossy()),
                other => {
                    return Err(cx.misuse(format!("name must be a string (got {})", shown(other))));
                }
            }
            cx.ret(rt.task_name(me).map_or(Value::Nil, |n| string(cx.lua, &n)))
        },
    },
];
