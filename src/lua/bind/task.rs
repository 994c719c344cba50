//! `goroutine.async`, `await`, `await_all` and `timeout` over `crate::patterns::JoinHandle` (the
//! handle a Rust task's `go` returns): Rust owns the handle's state (its `await` channel, its
//! result, the failed marking) and the waits; the goroutine's body is the prelude's
//! `async_body`, which only runs the user's function under `xpcall` and hands the packed result
//! to `raw.async_finish`.

use mlua::{MultiValue, Table, Value};

use super::select::{after, lua_shown, timeout_ms};
use super::{Cx, Func, Out, VarFunc, borrow, is_callable, string};
use crate::lua::objects::LuaAsync;
use crate::patterns::{JoinHandle, TaskError, join_all};

/// Starts `body(handle, f, args...)` as an unnamed goroutine (not a scheduling point, as
/// `patterns::go`); `None` when the run has hit its goroutine limit.
fn start(
    cx: &Cx<'_>,
    body: Value,
    f: Value,
    args: impl IntoIterator<Item = Value>,
) -> Result<Option<Value>, String> {
    if !is_callable(&f) {
        return Err(cx.misuse(format!("expects a function (got {})", lua_shown(&f))));
    }
    let h: JoinHandle<Value> = JoinHandle::new(cx.rt(), cx.here());
    let ud = Value::UserData(
        cx.lua
            .create_userdata(LuaAsync(h.clone()))
            .map_err(|e| cx.misuse(e))?,
    );
    let mut start = MultiValue::new();
    start.push_back(ud.clone());
    start.push_back(f);
    start.extend(args);
    match cx.host.spawn(cx.lua, body, None, false, start) {
        Ok(Some(id)) => {
            h.set_id(id);
            Ok(Some(ud))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(cx.misuse(e)),
    }
}

/// `true, packed results` or `false, message` (the prelude unpacks the results).
fn values(lua: &mlua::Lua, r: Result<Value, TaskError>) -> Out {
    match r {
        Ok(packed) => (Value::Boolean(true), packed, Value::Nil),
        Err(e) => (
            Value::Boolean(false),
            string(lua, &e.to_string()),
            Value::Nil,
        ),
    }
}

/// One entry of `await_all`'s result, built as the Lua constructors built it (same sizes, same
/// insertion order, so `pairs` visits its keys in the same order).
fn entry(lua: &mlua::Lua, r: Result<Value, TaskError>) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 2)?;
    match r {
        Ok(Value::Table(packed)) => {
            let n: i64 = packed.raw_get("n")?;
            let vals = lua.create_table_with_capacity((n - 1).max(0) as usize, 0)?;
            for i in 2..=n {
                vals.raw_set(i - 1, packed.raw_get::<Value>(i)?)?;
            }
            t.set("success", true)?;
            t.set("values", vals)?;
        }
        Ok(_) => unreachable!("an async result is a packed table"),
        Err(e) => {
            t.set("success", false)?;
            t.set("error", e.to_string())?;
        }
    }
    Ok(t)
}

fn await_all_table(lua: &mlua::Lua, rs: Vec<Result<Value, TaskError>>) -> Out {
    let build = || -> mlua::Result<Value> {
        let out = lua.create_table()?;
        for r in rs {
            out.raw_push(entry(lua, r)?)?;
        }
        Ok(Value::Table(out))
    };
    (build().unwrap_or(Value::Nil), Value::Nil, Value::Nil)
}

fn handle(cx: &Cx<'_>, v: &Value) -> Result<JoinHandle<Value>, String> {
    match borrow::<LuaAsync>(v) {
        Some(a) => Ok(a.0.clone()),
        None => Err(cx.misuse(format!(
            "expects a handle from goroutine.async (got {})",
            lua_shown(v)
        ))),
    }
}

/// The prelude calls `goroutine.async(async_body, f, ...)`.
pub(crate) static VAR_FUNCS: &[VarFunc] = &[VarFunc {
    module: "goroutine",
    name: "async",
    results: 1,
    call: |cx, args| {
        let mut args = args.into_iter();
        let body = args.next().unwrap_or(Value::Nil);
        let f = args.next().unwrap_or(Value::Nil);
        match start(cx, body, f, args)? {
            Some(h) => cx.point(h),
            // The run has ended with a limit: the scheduling point parks this goroutine for good.
            None => cx.point(()),
        }
    },
}];

pub(crate) static FUNCS: &[Func] = &[
    Func {
        module: "goroutine",
        name: "await",
        results: 2,
        call: |cx, (h, _, _)| {
            let h = handle(cx, &h)?;
            // Awaiting a finished task is no operation (and no scheduling point).
            if let Some(r) = h.try_join() {
                return cx.ret(values(cx.lua, r));
            }
            cx.wait(Box::pin(async move { h.join().await }), values)
        },
    },
    Func {
        module: "goroutine",
        name: "await_all",
        results: 1,
        call: |cx, (hs, _, _)| {
            let Value::Table(list) = &hs else {
                return Err(cx.misuse(format!(
                    "expects an array of handles (got {})",
                    lua_shown(&hs)
                )));
            };
            // As `ipairs`: up to the first nil; anything but a handle is skipped.
            let mut handles = Vec::new();
            for i in 1.. {
                match list.get::<Value>(i).map_err(|e| cx.misuse(e))? {
                    Value::Nil => break,
                    v => {
                        if let Some(a) = borrow::<LuaAsync>(&v) {
                            handles.push(a.0.clone());
                        }
                    }
                }
            }
            if handles.iter().all(|h| h.is_finished()) {
                let rs = handles.iter().filter_map(|h| h.try_join()).collect();
                return cx.ret(await_all_table(cx.lua, rs));
            }
            let fut = Box::pin(async move { join_all(&handles).await });
            cx.wait(fut, await_all_table)
        },
    },
    Func {
        // The prelude calls `goroutine.timeout(ms, f, async_body)`.
        module: "goroutine",
        name: "timeout",
        results: 2,
        call: |cx, (ms, f, body)| {
            timeout_ms(cx, &ms)?;
            let Some(ud) = start(cx, body, f, [])? else {
                return cx.point(());
            };
            let h = borrow::<LuaAsync>(&ud).expect("just made").0.clone();
            let deadline = after(cx, &ms)?;
            let fut = Box::pin(async move {
                if h.deadline_first(deadline).await {
                    Err(TaskError::TimedOut)
                } else {
                    h.join().await
                }
            });
            cx.wait(fut, values)
        },
    },
    Func {
        // Private (`raw.async_finish`): the last act of `async_body`, with `table.pack` of
        // `xpcall`'s results. Closing the `await` channel is the scheduling point.
        module: "raw",
        name: "async_finish",
        results: 0,
        call: |cx, (h, packed, _)| {
            let h = handle(cx, &h)?;
            let Value::Table(t) = &packed else {
                return Err(cx.misuse("expects the packed results"));
            };
            let r = if t.raw_get::<bool>(1).unwrap_or(false) {
                Ok(packed.clone())
            } else {
                let msg = t.raw_get::<Value>(2).unwrap_or(Value::Nil);
                Err(match msg {
                    Value::String(s) => s.to_string_lossy(),
                    other => lua_shown(&other),
                })
            };
            h.complete(r);
            cx.point(())
        },
    },
];
