//! `goroutine.coalescing_cache{ttl, loader}` and its methods (`patterns::CoalescingCache`, seed
//! 7.4): `get(key, timeout_ms?) -> value | nil, err`, `forget(key)`, `stats() -> {hits, loads,
//! joins, errors, entries}`. The prelude's `get` calls the Lua loader between the steps declared
//! here: `get` (its first step, `begin`: `"hit", value | "load", flight | "join", flight`),
//! `_join`, `_finish`; `_get` drives the Rust `get` of a cache made in Rust with a Rust loader.

use std::time::Duration;

use mlua::{Table, Value};

use super::{Cx, Func, Kind, Method, Out, is_callable, shown, string};
use crate::lua::objects::{LuaCoalescingCache, LuaKey};
use crate::lua::value::LuaValue;
use crate::patterns::{CacheError, CoalescingCache, Lookup};

pub(crate) static FUNCS: &[Func] = &[Func {
    // The first step of the prelude's constructor, which keeps the loader.
    module: "goroutine",
    name: "coalescing_cache",
    results: 1,
    call: |cx, (opts, _, _)| {
        let t: Table = match &opts {
            Value::Table(t) => t.clone(),
            other => {
                return Err(cx.misuse(format!("options must be a table (got {})", shown(other))));
            }
        };
        let get = |k: &str| t.get::<Value>(k).map_err(|e| cx.misuse(e));
        let loader = get("loader")?;
        if !is_callable(&loader) {
            return Err(cx.misuse(format!(
                "loader must be a function (got {})",
                shown(&loader)
            )));
        }
        let ttl = match get("ttl")? {
            v @ (Value::Integer(_) | Value::Number(_))
                if !matches!(v, Value::Number(n) if n.is_nan()) && cx.duration(&v).is_ok() =>
            {
                let neg = match v {
                    Value::Integer(i) => i < 0,
                    Value::Number(n) => n < 0.0,
                    _ => false,
                };
                if neg {
                    return Err(cx.misuse(format!(
                        "ttl must be a non-negative number of milliseconds (got {})",
                        shown(&v)
                    )));
                }
                Duration::from_nanos(cx.duration(&v)?)
            }
            other => {
                return Err(cx.misuse(format!(
                    "ttl must be a non-negative number of milliseconds (got {})",
                    shown(&other)
                )));
            }
        };
        cx.handle(LuaCoalescingCache(CoalescingCache::new(
            cx.rt(),
            ttl,
            cx.here(),
        )))
    },
}];

/// A key argument, misuse named after `fname` (the user's `get`, whatever step checks it).
fn key(v: &Value, fname: &str) -> Result<LuaKey, String> {
    LuaKey::of(v).ok_or_else(|| {
        format!(
            "{fname}: key must be a string, a number or a boolean (got {})",
            shown(v)
        )
    })
}

fn flight(cx: &Cx<'_>, v: &Value) -> Result<u64, String> {
    match cx.int(v, "flight")? {
        i if i > 0 => Ok(i as u64),
        i => Err(cx.misuse(format!("bad flight {i}"))),
    }
}

/// `value` or `nil, err`.
fn got(lua: &mlua::Lua, r: Result<LuaValue, CacheError>) -> Out {
    match r {
        Ok(v) => (v.0, Value::Nil, Value::Nil),
        Err(e) => (Value::Nil, string(lua, &e.to_string()), Value::Nil),
    }
}

pub(crate) static KIND: Kind<LuaCoalescingCache> = Kind {
    table: "coalescing_cache",
    name: "coalescing_cache",
    what: "a coalescing_cache",
    methods: &[
        Method {
            // The first step of the prelude's `get` (which replaces it in the methods table).
            name: "get",
            results: 2,
            call: |cx, c, (k, t, _)| {
                let k = key(&k, "coalescing_cache:get")?;
                cx.timeout(&t)?;
                match c.0.begin(k) {
                    Lookup::Hit(v) => cx.point((string(cx.lua, "hit"), v.0)),
                    Lookup::Load(id) => {
                        cx.point((string(cx.lua, "load"), Value::Integer(id as i64)))
                    }
                    Lookup::Join(id) => {
                        cx.point((string(cx.lua, "join"), Value::Integer(id as i64)))
                    }
                }
            },
        },
        Method {
            name: "_join",
            results: 2,
            call: |cx, c, (id, t, _)| {
                let id = flight(cx, &id)?;
                let t = cx.timeout(&t)?;
                cx.wait(c.0.join(id, t), got)
            },
        },
        Method {
            // `fn` returned: `ok` and the value, or the error message.
            name: "_finish",
            results: 2,
            call: |cx, c, (id, ok, v)| {
                let id = flight(cx, &id)?;
                let r = match ok {
                    Value::Boolean(true) => Ok(LuaValue(v)),
                    _ => Err(match v {
                        Value::String(s) => s.to_string_lossy(),
                        other => crate::lua::value::describe(&other),
                    }),
                };
                let out = got(cx.lua, c.0.finish(id, r));
                cx.point(out)
            },
        },
        Method {
            // `get` on a cache made in Rust with a Rust loader.
            name: "_get",
            results: 2,
            call: |cx, c, (k, t, _)| {
                let k = key(&k, "coalescing_cache:get")?;
                let t = cx.timeout(&t)?;
                if !c.0.has_loader() {
                    return Err("coalescing_cache:get: this cache has no loader".to_string());
                }
                let c = c.0.clone();
                let fut = Box::pin(async move { c.get(k, t).await });
                cx.wait(fut, got)
            },
        },
        Method {
            name: "forget",
            results: 0,
            call: |cx, c, (k, _, _)| {
                let k = key(&k, "coalescing_cache:forget")?;
                c.0.forget(&k);
                cx.ret(())
            },
        },
        Method {
            name: "stats",
            results: 1,
            call: |cx, c, _| {
                let s = c.0.stats();
                cx.counts(&[
                    ("hits", s.hits as i64),
                    ("loads", s.loads as i64),
                    ("joins", s.joins as i64),
                    ("errors", s.errors as i64),
                    ("entries", s.entries as i64),
                ])
            },
        },
    ],
};
