//! The Lua API as a list of names, for tools that must agree with it (the editor definitions in
//! `types/gosim.lua` are checked against it by `tests/types.rs`). The module and methods tables
//! are lazy (a declared binding is made on first use), so walking them in Lua would miss most
//! names: the list is the declarations (`bind`) plus what the prelude defines in Lua.

use std::collections::BTreeSet;

use mlua::{Table, Value};

use super::{LuaLimits, LuaWorld};
use crate::runtime::{Config, Runtime};

/// The registry key of the prelude's `methods` table (kind name to methods table), which holds
/// the kinds whose methods the prelude defines in Lua.
pub(crate) const METHODS_KEY: &str = "gosim.methods";

/// Every public name of the Lua API as `(owner, name)`, sorted: `owner` is a module
/// (`goroutine`, `log`, `sim`) or a kind of object, named as its methods table is (`channel`,
/// `waitgroup`, `deadlock_detector`...), and `name` a function or method of it. Private names
/// (the `raw` module, names starting with `_`, metamethods) are left out.
pub fn declared_api() -> Vec<(String, String)> {
    let mut out: BTreeSet<(String, String)> = BTreeSet::new();
    for (owner, name) in super::bind::declared_names() {
        if owner != "raw" && !name.starts_with('_') {
            out.insert((owner.to_string(), name.to_string()));
        }
    }
    if let Err(e) = add_lua_defined(&mut out) {
        // Only a broken build gets here (the prelude did not load): say so loudly in the list.
        out.insert(("error".to_string(), e.to_string()));
    }
    out.into_iter().collect()
}

/// Adds the names the prelude sets in Lua: plain fields of the module tables, of the methods
/// tables it touched, and of the deadlock detector's metatable (a Lua object).
fn add_lua_defined(out: &mut BTreeSet<(String, String)>) -> mlua::Result<()> {
    let rt = Runtime::simulated(Config::default());
    let world = LuaWorld::new(&rt, LuaLimits::default()).map_err(mlua::Error::external)?;
    let lua = world.lua();
    let mut add = |owner: &str, t: &Table| -> mlua::Result<()> {
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            if let (Value::String(k), Value::Function(_)) = (&k, &v) {
                let k = k.to_str()?.to_string();
                if !k.starts_with('_') {
                    out.insert((owner.to_string(), k));
                }
            }
        }
        Ok(())
    };
    let globals = lua.globals();
    for module in ["goroutine", "log", "sim"] {
        let t: Table = globals.get(module)?;
        add(module, &t)?;
    }
    let methods: Table = lua.named_registry_value(METHODS_KEY)?;
    for pair in methods.pairs::<String, Table>() {
        let (kind, t) = pair?;
        add(&kind, &t)?;
    }
    // Its metatable is protected from scripts (`__metatable`); Rust reads it raw.
    let detector: Table = lua.load("return goroutine.deadlock_detector()").eval()?;
    let detector = detector
        .metatable()
        .ok_or_else(|| mlua::Error::runtime("a deadlock detector has a metatable"))?;
    add("deadlock_detector", &detector)?;
    drop(world);
    rt.shutdown();
    Ok(())
}
