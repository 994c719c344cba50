//! Named worker pools (`goroutine.pool_create`, `pool_submit`, `pool_wait`, `pool_close`,
//! `pool_stats`) over `crate::patterns::Pool`, the state machine a Rust pool runs on. Rust owns
//! the pools, their counters and the registry of names (`Pools`, kept in the Lua state's app
//! data: one per run); the prelude's worker loop only calls the user's job between
//! `raw.pool_next` (`Pool::next_job`) and `raw.pool_job_done`, then `raw.pool_worker_exit`.
//!
//! The scheduling points are the Lua pool's, so traces are unchanged: `pool_create` takes the
//! old pool's close points (when a name is reused), its wait group's `add` point and a final
//! one; `pool_submit` the point of the queue's `try_send` (none when the pool is missing or
//! closed); `pool_stats` the point of the queue's `len`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use mlua::{Lua, MultiValue, UserData, Value};

use super::select::lua_shown;
use super::{Cx, Func, Res, VarFunc, borrow, integer, is_callable, nothing, string};
use crate::lua::Host;
use crate::patterns::{Pool, PoolError};
use crate::sync::yield_now;

/// A queued job: the user's function and its arguments (`table.pack`). Shown as `table` in the
/// trace, as the Lua pool's job table was.
pub(crate) struct LuaJob {
    f: Value,
    args: Value,
}

impl std::fmt::Debug for LuaJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("table")
    }
}

/// The pools by name (a Lua string's bytes). A `BTreeMap`, though nothing iterates it.
#[derive(Default)]
struct Pools(RefCell<BTreeMap<Vec<u8>, Pool<LuaJob>>>);

/// Forgets the named pools of the previous run (a reused world starts a new run).
pub(crate) fn clear_run_state(lua: &Lua) {
    lua.remove_app_data::<Pools>();
}

fn pools(lua: &Lua) -> mlua::AppDataRef<'_, Pools> {
    if lua.app_data_ref::<Pools>().is_none() {
        lua.set_app_data(Pools::default());
    }
    lua.app_data_ref::<Pools>().expect("just set")
}

fn lookup(lua: &Lua, name: &[u8]) -> Option<Pool<LuaJob>> {
    pools(lua).0.borrow().get(name).cloned()
}

/// The handle a worker goroutine gets (no methods: only the prelude's worker loop uses it).
pub(crate) struct LuaPool(Pool<LuaJob>);

impl UserData for LuaPool {}

/// A name argument: its bytes and its text.
fn name_arg(cx: &Cx<'_>, v: &Value) -> Result<(Vec<u8>, String), String> {
    match v {
        Value::String(s) => Ok((s.as_bytes().to_vec(), s.to_string_lossy())),
        other => Err(cx.misuse(format!("name must be a string (got {})", lua_shown(other)))),
    }
}

fn pool_handle(cx: &Cx<'_>, v: &Value) -> Result<Pool<LuaJob>, String> {
    borrow::<LuaPool>(v)
        .map(|p| p.0.clone())
        .ok_or_else(|| cx.misuse("expects a pool"))
}

/// `false` or `nil`, then the message.
fn not_found(cx: &Cx<'_>, first: Value, name: &str) -> Res {
    cx.ret((first, string(cx.lua, &format!("pool not found: {name}"))))
}

/// Spawns the workers of a new pool: `worker(pool)` named `<name>-worker-<i>`. Stops at the
/// goroutine limit (the run is then over).
fn spawn_workers(host: &Rc<Host>, pool: &Pool<LuaJob>, workers: usize, worker: &Value) {
    let Some(lua) = host.weak_lua.try_upgrade() else {
        return;
    };
    let Ok(ud) = lua.create_userdata(LuaPool(pool.clone())) else {
        return;
    };
    for i in 1..=workers {
        let args = MultiValue::from_vec(vec![Value::UserData(ud.clone())]);
        let name = pool.worker_name(i);
        match host.spawn(&lua, worker.clone(), Some(&name), false, args) {
            Ok(Some(_)) => {}
            _ => return,
        }
    }
}

pub(crate) static FUNCS: &[Func] = &[
    Func {
        // The prelude calls `goroutine.pool_create(name, opts, pool_worker)`.
        module: "goroutine",
        name: "pool_create",
        results: 1,
        call: |cx, (name, opts, worker)| {
            let (key, name) = name_arg(cx, &name)?;
            let workers = match &opts {
                Value::Nil => Value::Nil,
                Value::Table(t) => t.get::<Value>("workers").map_err(|e| cx.misuse(e))?,
                other => {
                    return Err(cx.misuse(format!(
                        "options must be a table (got {})",
                        lua_shown(other)
                    )));
                }
            };
            let workers = match workers {
                Value::Nil | Value::Boolean(false) => Value::Integer(4),
                w => w,
            };
            let count = integer(&workers).filter(|n| *n > 0).ok_or_else(|| {
                cx.misuse(format!(
                    "workers must be a positive integer (got {})",
                    lua_shown(&workers)
                ))
            })? as usize;
            let (rt, host, here) = (cx.rt().clone(), cx.host.clone(), cx.here());
            let old = lookup(cx.lua, &key);
            let fut = Box::pin(async move {
                // Reusing a name cancels the old pool (its queued jobs are dropped).
                if let Some(old) = old {
                    old.cancel().await;
                }
                let pool = Pool::new(&rt, &name, count, here);
                if let Some(lua) = host.weak_lua.try_upgrade() {
                    pools(&lua).0.borrow_mut().insert(key, pool.clone());
                }
                // The point Lua's `wg:add(workers)` took, before the workers exist.
                yield_now(&rt).await;
                spawn_workers(&host, &pool, count, &worker);
                yield_now(&rt).await;
            });
            cx.wait(fut, |_, ()| (Value::Boolean(true), Value::Nil, Value::Nil))
        },
    },
    Func {
        module: "goroutine",
        name: "pool_wait",
        results: 2,
        call: |cx, (name, _, _)| {
            let (key, text) = name_arg(cx, &name)?;
            let Some(pool) = lookup(cx.lua, &key) else {
                return not_found(cx, Value::Boolean(false), &text);
            };
            let fut = Box::pin(async move { pool.wait().await });
            cx.wait(fut, |_, ()| (Value::Boolean(true), Value::Nil, Value::Nil))
        },
    },
    Func {
        module: "goroutine",
        name: "pool_close",
        results: 1,
        call: |cx, (name, _, _)| {
            let (key, _) = name_arg(cx, &name)?;
            let Some(pool) = lookup(cx.lua, &key) else {
                return cx.ret(false);
            };
            let (rt, host) = (cx.rt().clone(), cx.host.clone());
            let fut = Box::pin(async move {
                pool.cancel().await;
                // Unregistered after the close's points, whatever the name means by then.
                if let Some(lua) = host.weak_lua.try_upgrade() {
                    pools(&lua).0.borrow_mut().remove(&key);
                }
                yield_now(&rt).await;
            });
            cx.wait(fut, |_, ()| (Value::Boolean(true), Value::Nil, Value::Nil))
        },
    },
    Func {
        module: "goroutine",
        name: "pool_stats",
        results: 1,
        call: |cx, (name, _, _)| {
            let (key, text) = name_arg(cx, &name)?;
            let Some(pool) = lookup(cx.lua, &key) else {
                return cx.ret(Value::Nil);
            };
            let st = pool.stats();
            // Built as the Lua constructor built it (same size, same insertion order).
            let table = || -> mlua::Result<Value> {
                let t = cx.lua.create_table_with_capacity(0, 6)?;
                t.set("name", text)?;
                t.set("workers", st.workers as i64)?;
                t.set("active", st.active as i64)?;
                t.set("completed", st.completed as i64)?;
                t.set("failed", st.failed as i64)?;
                t.set("queued", st.queued as i64)?;
                Ok(Value::Table(t))
            };
            let t = table().map_err(|e| cx.misuse(e))?;
            // The point the queue's `len` took.
            cx.point(t)
        },
    },
    Func {
        // Private: a worker's next job, `f, args` (`nil` once the pool is closed and drained).
        module: "raw",
        name: "pool_next",
        results: 2,
        call: |cx, (p, _, _)| {
            let pool = pool_handle(cx, &p)?;
            let fut = Box::pin(async move { pool.next_job().await });
            cx.wait(fut, |_, job| match job {
                Some(LuaJob { f, args }) => (f, args, Value::Nil),
                None => nothing(),
            })
        },
    },
    Func {
        // Private: the job a worker took has ended (`ok`, and the error with its traceback).
        module: "raw",
        name: "pool_job_done",
        results: 0,
        call: |cx, (p, ok, err)| {
            let pool = pool_handle(cx, &p)?;
            pool.job_done(match ok {
                Value::Boolean(true) => Ok(()),
                _ => Err(match &err {
                    Value::String(s) => s.to_string_lossy(),
                    other => lua_shown(other),
                }),
            });
            cx.ret(())
        },
    },
    Func {
        // Private: a worker's last act (the wait group's `done`, a scheduling point).
        module: "raw",
        name: "pool_worker_exit",
        results: 0,
        call: |cx, (p, _, _)| {
            let pool = pool_handle(cx, &p)?;
            cx.wait(pool.worker_exit(), |_, ()| nothing())
        },
    },
];

pub(crate) static VAR_FUNCS: &[VarFunc] = &[VarFunc {
    module: "goroutine",
    name: "pool_submit",
    results: 2,
    call: |cx, args| {
        let mut args = args.into_iter();
        let name = args.next().unwrap_or(Value::Nil);
        let f = args.next().unwrap_or(Value::Nil);
        let (key, text) = name_arg(cx, &name)?;
        if !is_callable(&f) {
            return Err(cx.misuse(format!("expects a function (got {})", lua_shown(&f))));
        }
        let Some(pool) = lookup(cx.lua, &key) else {
            return not_found(cx, Value::Nil, &text);
        };
        let packed = || -> mlua::Result<Value> {
            let rest: Vec<Value> = args.collect();
            let t = cx.lua.create_table_with_capacity(rest.len(), 1)?;
            let n = rest.len() as i64;
            for (i, v) in rest.into_iter().enumerate() {
                t.raw_set(i + 1, v)?;
            }
            t.raw_set("n", n)?;
            Ok(Value::Table(t))
        };
        let args = packed().map_err(|e| cx.misuse(e))?;
        match pool.submit(LuaJob { f, args }) {
            Ok(id) => cx.point(string(cx.lua, &format!("{text}-{}", id.number()))),
            // A closed pool is refused before the queue is touched: no scheduling point.
            Err(PoolError::Closed) => {
                cx.ret((Value::Nil, string(cx.lua, &PoolError::Closed.to_string())))
            }
            Err(e) => cx.point((Value::Nil, string(cx.lua, &e.to_string()))),
        }
    },
}];
