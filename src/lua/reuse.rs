//! One Lua world for many runs: what `LuaWorld::reset_for_main` resets so that a run cannot tell
//! a reused state from a new one.
//!
//! Building a world (state, standard libraries, sandbox, prelude, bindings) costs many times more
//! than a short run, so every command keeps one world per thread and resets it between runs
//! (`scenario::run_source`). The first run of a new world takes the same reset path, so "new" and
//! "reused" are one path, not two that must agree:
//!
//! - **Globals.** The table the world was built with is kept pristine, out of reach of scripts.
//!   Each run gets a new globals table whose table-valued fields (`string`, `table`, `math`,
//!   `goroutine`, `package`...) are copies (`capi::copy_table`), with copies of their metatables
//!   (the modules' lazy ones); `_G` is the copy itself; `package.loaded` maps every name to the
//!   copies, and `require` reads the run's `package.loaded`/`package.preload`. The string
//!   metatable is reset to `{ __index = <the run's string> }`. Whatever a run changes is garbage at
//!   the next reset. gosim's own Lua code (the prelude, the sandbox's wrappers) keeps the pristine
//!   tables, in the first run as in the hundredth.
//! - **Private tables.** The prelude makes bindings lazily (a table looks a missing name up on
//!   first use). A world makes every declared binding in the prelude's private tables and the
//!   methods tables when it is built (the prelude's `force`), so no run grows a table that
//!   outlives it. The public module tables stay lazy: each run fills its own copies.
//! - **The heap.** Each run starts after two full collections (the second frees the userdata the
//!   first finalized), with the collector restarted, in incremental mode, with Lua's default
//!   parameters. `collectgarbage("count")` answers the heap of a newly built world plus what the
//!   run added since it started. A new world makes one warm-up run (`scenario::run_source`): a
//!   world's first collection inside a run shrinks what the build left oversized, and after it
//!   every run starts alike.
//! - **The chunk.** The scenario's compiled main chunk is kept (by name and source text) with its
//!   `_ENV` rebound to the run's globals; it exists before the heap settles.
//! - **Limits and per-run state.** The instruction budget and the hook's countdown, the memory
//!   watch's baseline, the recycled coroutines (dropped: a run starts with none, as a new world
//!   does), the pending resume, `sim.assert_sometimes` results, the named worker pools and the
//!   sandbox's per-run flags are reset.
//!
//! What a reset cannot make identical (none of it reaches a trace unless the script reads the
//! collector): Lua's string table keeps the size a previous run grew it to (a collection halves
//! it at most), and mlua makes the metatable of a userdata kind (a channel handle, a mutex
//! handle...) with the first object of that kind in the state and keeps it. So after other runs,
//! the collector's progress between explicit collections (`collectgarbage("count")` read
//! mid-cycle, when a weak entry goes without a `collectgarbage()`) may differ, and so may the
//! count after a run makes its first channel or interns thousands of strings; the count after
//! a full collection is otherwise the same (`tests/reuse.rs`).
//!
//! What the runs of a world share, and why no run can change it for the next: the metatables of
//! gosim's userdata and the methods tables (`getmetatable(ch)` gives `false`: mlua protects
//! them), the metatables the prelude makes once (`goroutine.NIL`'s, permanent errors', the
//! deadlock detector's, pipeline error records': `__metatable = false`), and `goroutine.NIL`
//! itself (a script can only `rawset` into it; the reset clears it). `tests/reuse.rs` pollutes
//! each of them in one run and checks the next.

use mlua::prelude::{LuaGcGenParams, LuaGcIncParams, LuaGcMode};
use mlua::{Function, Lua, Table};

/// The registry key of the sandbox's `set_package(loaded, preload)`: which tables `require`
/// reads (`sandbox.rs`).
pub(crate) const SET_PACKAGE_KEY: &str = "gosim.set_package";

/// The Lua half: `fresh()` makes a run's globals; `set_base()` takes the settled heap as the
/// run's baseline for `collectgarbage("count")`.
const FRESH_LUA: &str = r#"
local pristine, set_package, getmt, copy_table, raw_collectgarbage = ...
local next, type = next, type
local string_mt = getmt("")
local base, pristine_kb = 0, nil
-- `goroutine.NIL` is one table for every run (the prelude compares with it); its metatable is
-- protected, but a script can still `rawset` a field into it: cleared at each reset.
local NIL = rawget(pristine.goroutine, "NIL")

-- collectgarbage("count") answers the run's own heap (see reuse.rs); the rest is Lua's. Tail
-- calls keep Lua's own argument errors.
pristine.collectgarbage = function(opt, ...)
  if opt == "count" then
    return raw_collectgarbage("count") - base + (pristine_kb or base)
  end
  return raw_collectgarbage(opt, ...)
end

local function copy(t, copies)
  local c = copies[t]
  if c ~= nil then return c end
  c = copy_table(t)
  copies[t] = c
  return c
end

local function fresh()
  local copies = {}
  local G = copy(pristine, copies)
  for k, v in next, G do
    if type(v) == "table" then G[k] = copy(v, copies) end
  end
  local package = G.package
  local loaded = copy(package.loaded, copies)
  for k, v in next, loaded do
    if type(v) == "table" then loaded[k] = copy(v, copies) end
  end
  local preload = copy(package.preload, copies)
  package.loaded, package.preload = loaded, preload
  set_package(loaded, preload)
  for k in next, string_mt do string_mt[k] = nil end
  string_mt.__index = G.string
  for k in next, NIL do rawset(NIL, k, nil) end
  return G
end

-- Called once the heap has settled: the first call (the world just built, before any scenario is
-- compiled) fixes the figure every run starts from.
local function set_base()
  base = raw_collectgarbage("count")
  if pristine_kb == nil then pristine_kb = base end
end

return fresh, set_base
"#;

/// The per-world half of the reset: the pristine globals and the functions that copy them.
#[derive(Debug)]
pub(crate) struct Pristine {
    fresh: Function,
    set_base: Function,
}

impl Pristine {
    /// Takes the world's current globals as the pristine ones. Called at the end of the build,
    /// while `debug` is still reachable (its raw metatable functions are kept privately).
    pub(crate) fn new(lua: &Lua) -> mlua::Result<Pristine> {
        let globals = lua.globals();
        let debug: Table = globals.get("debug")?;
        let set_package: Function = lua.named_registry_value(SET_PACKAGE_KEY)?;
        let (fresh, set_base): (Function, Function) =
            lua.load(FRESH_LUA).set_name(super::PRELUDE_NAME).call((
                globals.clone(),
                set_package,
                debug.get::<Function>("getmetatable")?,
                super::capi::copy_table_function(lua)?,
                globals.get::<Function>("collectgarbage")?,
            ))?;
        Ok(Pristine { fresh, set_base })
    }

    /// New globals for a run (copies of the pristine tables), installed as the state's globals.
    pub(crate) fn install_fresh_globals(&self, lua: &Lua) -> mlua::Result<Table> {
        let globals: Table = self.fresh.call(())?;
        lua.set_globals(globals.clone())?;
        Ok(globals)
    }

    /// Collects all garbage, restores the collector's mode and parameters, and makes the run's
    /// `collectgarbage("count")` start from the figure of the world as built (the first call).
    pub(crate) fn settle_heap(&self, lua: &Lua) -> mlua::Result<()> {
        lua.gc_restart();
        // Lua 5.4's defaults (LUAI_GCPAUSE, LUAI_GCMUL, LUAI_GCSTEPSIZE): a script may have
        // changed them, or switched to generational mode.
        let incremental = || {
            LuaGcMode::Incremental(
                LuaGcIncParams::default()
                    .pause(200)
                    .step_multiplier(100)
                    .step_size(13),
            )
        };
        if let LuaGcMode::Generational(_) = lua.gc_set_mode(incremental()) {
            // The generational parameters too (LUAI_GENMINORMUL, LUAI_GENMAJORMUL).
            lua.gc_set_mode(LuaGcMode::Generational(
                LuaGcGenParams::default()
                    .minor_multiplier(20)
                    .minor_to_major(100),
            ));
            lua.gc_set_mode(incremental());
        }
        lua.gc_collect()?;
        lua.gc_collect()?;
        self.set_base.call::<()>(())
    }
}
