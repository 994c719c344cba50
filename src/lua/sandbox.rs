//! The standard library as a scenario sees it: deterministic `math.random`, `os.time`,
//! `os.clock` and `os.date` in a simulation, and the sandbox (what no scenario may reach: the
//! process, files, native code, the real `os` through `package.loaded`; what no scenario may do:
//! hang the run inside C code or a finalizer). docs/harness.md "Sandbox and limits" is the
//! user-facing side of this file.

use std::rc::Rc;

use mlua::{Function, Lua, Table, Value, Variadic};

use super::Host;
use super::bind::{integer, shown};
use super::guard::{PatternCall, Stop, pattern_cost};
use crate::runtime::{LimitKind, NANOS_PER_MS, Runtime};

type R2 = (Value, Value);

/// Installs the deterministic `math.random`, `math.randomseed`, `os.time`, `os.clock`,
/// `os.date`, and removes what a simulation must not reach (`os.execute`, `os.exit`, files,
/// environment, C modules).
pub(crate) fn install_stdlib_overrides(lua: &Lua, host: &Rc<Host>) -> mlua::Result<()> {
    let allow = host.limits.allow_stdlib;
    if host.rt.is_simulated() {
        install_virtual_time_and_randomness(lua, host)?;
    } else if !allow.os {
        keep_real_time_and_randomness(lua)?;
    }
    if allow.io && !host.rt.is_simulated() {
        lua.load_std_libs(mlua::StdLib::IO)?;
    }
    sandbox(lua, host)?;
    if allow.io && !host.rt.is_simulated() {
        // `require "io"` finds it too (`os` is always in the sandbox's `package.loaded`).
        let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
        loaded.set("io", lua.globals().get::<Value>("io")?)?;
    }
    Ok(())
}

/// The standard libraries a production run may give its scripts beyond the sandbox, when the
/// host (`LuaLimits::allow_stdlib`) or the operator (`gosim run --real --allow-stdlib io,os`)
/// asks: `io` (files, processes through `io.popen`, standard streams) and the whole of `os`
/// (`execute`, `exit`, `getenv`, `remove`, `rename`, `tmpname`...; without it `os` has only
/// `time`, `clock`, `date`, `difftime`). Both give up the sandbox (a script may then touch the
/// machine) and determinism (what they read differs between runs). Never on by default, and
/// refused in a simulation, which stays sandboxed and reproducible.
///
/// # Examples
///
/// ```
/// use gosim::lua::StdlibAccess;
///
/// let access = StdlibAccess::parse("io").expect("a known library");
/// assert_eq!(access, StdlibAccess { io: true, os: false });
/// assert!(StdlibAccess::parse("net").is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StdlibAccess {
    /// The `io` library.
    pub io: bool,
    /// All of `os`.
    pub os: bool,
}

impl StdlibAccess {
    /// Parses a comma-separated list of library names (`io`, `os`, `io,os`).
    pub fn parse(text: &str) -> Result<StdlibAccess, String> {
        let mut access = StdlibAccess::default();
        for name in text.split(',').map(str::trim) {
            match name {
                "io" => access.io = true,
                "os" => access.os = true,
                other => {
                    return Err(format!(
                        "unknown library {other:?} (a production run may allow \
                         io and os, comma-separated: --allow-stdlib io,os)"
                    ));
                }
            }
        }
        Ok(access)
    }

    /// Whether any library is allowed.
    pub fn any(self) -> bool {
        self.io || self.os
    }

    /// A simulation stays sandboxed: asking for a library there is an error, not a silent no.
    pub(crate) fn check(self, simulated: bool) -> Result<(), super::LoadError> {
        if simulated && self.any() {
            return Err(super::LoadError(
                "gosim: LuaLimits::allow_stdlib: io and os can be allowed only in a production \
                 run (a simulation stays sandboxed and deterministic)"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// Functions the prelude's sandbox half needs, added to its `raw` table: `run_over()` (the run
/// has an outcome, or a parked goroutine could not yield: an error caught then is raised again,
/// so no limit can be swallowed).
pub(crate) fn extend_raw(lua: &Lua, host: &Rc<Host>, raw: &Table) -> mlua::Result<()> {
    let h = host.clone();
    raw.set(
        "run_over",
        lua.create_function(move |lua, ()| {
            Ok(h.rt.is_over() || lua.app_data_ref::<CannotResume>().is_some())
        })?,
    )
}

/// In a real run `math.random`, `os.time`, `os.clock` and `os.date` are Lua's own; only the
/// functions that act on the process are removed from `os`.
fn keep_real_time_and_randomness(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let os: Table = globals.get("os")?;
    let safe = lua.create_table()?;
    for name in ["time", "clock", "date", "difftime"] {
        safe.set(name, os.get::<Value>(name)?)?;
    }
    globals.set("os", safe)
}

/// In a simulation, randomness comes from the seed and time from the virtual clock.
fn install_virtual_time_and_randomness(lua: &Lua, host: &Rc<Host>) -> mlua::Result<()> {
    let globals = lua.globals();
    let math: Table = globals.get("math")?;
    let h = host.clone();
    math.set(
        "random",
        lua.create_function(move |lua, args: Variadic<Value>| -> mlua::Result<R2> {
            Ok(match random(&h.rt, &args) {
                Ok(v) => (v, Value::Nil),
                Err(msg) => h.misuse(lua, msg),
            })
        })?,
    )?;
    let h = host.clone();
    math.set(
        "randomseed",
        lua.create_function(move |_, seed: Option<Value>| {
            let s = seed.as_ref().and_then(integer).unwrap_or(0);
            h.rt.reseed_data(s as u64);
            Ok(())
        })?,
    )?;

    let os: Table = globals.get("os")?;
    let real_date: Function = os.get("date")?;
    let safe = lua.create_table()?;
    // A fixed epoch for virtual time: 2000-01-01T00:00:00Z.
    const EPOCH_S: i64 = 946_684_800;
    // Both return `value, nil` or `nil, message`: the sandbox chunk raises the message at the
    // caller's line (a Rust error would carry mlua's prefix and a second traceback).
    let h = host.clone();
    let time_fn = lua.create_function(move |lua, t: Value| -> mlua::Result<(Value, Value)> {
        let now = EPOCH_S + (h.rt.now() / (1000 * NANOS_PER_MS)) as i64;
        let result = match &t {
            Value::Nil => Ok(now),
            Value::Table(t) => time_from_fields(t),
            other => Err(format!(
                "os.time: expects a table or nothing (got {})",
                shown(other)
            )),
        };
        Ok(match result {
            Ok(secs) => (Value::Integer(secs), Value::Nil),
            Err(msg) => (Value::Nil, Value::String(lua.create_string(msg)?)),
        })
    })?;
    safe.set("time", time_fn)?;
    let h = host.clone();
    safe.set(
        "clock",
        lua.create_function(move |_, ()| Ok(h.rt.now() as f64 / 1e9))?,
    )?;
    let h = host.clone();
    safe.set(
        "date",
        lua.create_function(move |lua, (fmt, t): (Value, Value)| -> mlua::Result<(Value, Value)> {
            let fail = |msg: String| -> mlua::Result<(Value, Value)> {
                Ok((Value::Nil, Value::String(lua.create_string(msg)?)))
            };
            // Local time depends on the machine's time zone: in a simulation, all dates are UTC.
            let fmt = match fmt {
                Value::Nil => "%c".to_string(),
                Value::String(s) => s.to_string_lossy(),
                other => {
                    return fail(format!(
                        "os.date: format must be a string (got {})",
                        shown(&other)
                    ));
                }
            };
            let fmt = if fmt.starts_with('!') {
                fmt
            } else {
                format!("!{fmt}")
            };
            let t = match &t {
                Value::Nil => EPOCH_S + (h.rt.now() / (1000 * NANOS_PER_MS)) as i64,
                other => match integer(other) {
                    // Years 1 to 9999: what every platform's C library formats.
                    Some(t) if (MIN_DATE..=MAX_DATE).contains(&t) => t,
                    _ => {
                        return fail(format!(
                            "os.date: time must be an integer between {MIN_DATE} and {MAX_DATE} \
                             (years 1 to 9999; got {})",
                            brief(other)
                        ));
                    }
                },
            };
            match real_date.call::<Value>((fmt, t)) {
                Ok(v) => Ok((v, Value::Nil)),
                Err(e) => fail(format!("os.date: {}", first_line(&e.to_string()))),
            }
        })?,
    )?;
    safe.set(
        "difftime",
        lua.create_function(|_, (a, b): (f64, Option<f64>)| Ok(a - b.unwrap_or(0.0)))?,
    )?;
    globals.set("os", safe)
}

/// The Lua half of the sandbox: `require`, the checked `coroutine.yield`, `os.time`/`os.date`
/// raising at the caller's line, `setmetatable` refusing `__gc` and wrapping `__close`, and the
/// wrappers that check the C loops of `string` and `table` before they run (see `guard.rs`).
/// Compiled once per process, like the prelude; its frames have the source `=?`, so errors it
/// raises with level 2 point at the user's line.
const SANDBOX_LUA: &str = r##"
local loaded, preload, check_pattern, check_count, getinfo, parked_here, simulated, run_over = ...
local type, error, rawget, select, tostring = type, error, rawget, select, tostring
local find, match, gmatch, gsub, rep = string.find, string.match, string.gmatch, string.gsub, string.rep
local move, insert, remove = table.move, table.insert, table.remove
local raw_setmetatable = setmetatable

-- require: only modules already in package.loaded (gosim's and the sandboxed standard
-- libraries) or put in package.preload by the scenario. Nothing is read from disk.
function require(name)
  if type(name) == "number" then name = tostring(name) end
  if type(name) ~= "string" then
    error("require: module name must be a string (got " .. type(name) .. ")", 2)
  end
  local m = loaded[name]
  if m then return m end
  local loader = preload[name]
  if loader == nil then
    error("require: module '" .. name .. "' not found: a scenario can require goroutine, log, sim, " ..
      "the standard libraries it sees (string, table, math, coroutine, utf8, os), and modules it put " ..
      "in package.preload or package.loaded; gosim loads no file and no native library", 2)
  end
  local r = loader(name, ":preload:")
  if r ~= nil then loaded[name] = r elseif loaded[name] == nil then loaded[name] = true end
  return loaded[name], ":preload:"
end
-- A reused world gives each run copies of package.loaded and package.preload (`reuse.rs`).
local function set_package(l, p) loaded, preload = l, p end

-- A gosim call that blocks parks the goroutine in Rust, then yields to the scheduler. Where Lua
-- cannot yield (a metamethod called from C such as __tostring, a table.sort comparator, a gsub
-- callback, a load reader), the yield fails after the park: say which call, at the user's line,
-- and end the goroutine (parked_here makes the error uncatchable: its results can never come).
local raw_yield, raw_isyieldable = coroutine.yield, coroutine.isyieldable
local GOSIM_SOURCE = { ["=[gosim]"] = true, ["=?"] = true }
function coroutine.yield(...)
  if raw_isyieldable() then return raw_yield(...) end
  local op = parked_here()
  if not op then return raw_yield(...) end
  local where = ""
  for level = 2, 60 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and not GOSIM_SOURCE[info.source] and (info.currentline or -1) > 0 then
      where = info.short_src .. ":" .. info.currentline .. ": "
      break
    end
  end
  error(where .. "a goroutine call (" .. op .. ") cannot switch goroutines here: Lua cannot " ..
    "suspend a goroutine inside a metamethod called by C (such as __tostring), a table.sort " ..
    "comparator, a string.gsub callback or a load reader; every goroutine.* call may switch " ..
    "goroutines, so make the call outside it", 0)
end

-- The wrappers below end with a tail call of the C function. Lua keeps the wrapper's frame for a
-- C callee, and that frame has no line nor names (stripped bytecode), so the common argument
-- errors are raised here, at the caller's line, as the C functions word them.
local function need(cond, fname, i, expected, v, level)
  if not cond then
    error("bad argument #" .. i .. " to '" .. fname .. "' (" .. expected .. " expected, got " ..
      (v == nil and "nil" or type(v)) .. ")", level or 3)
  end
end
local function strlike(v) local t = type(v) return t == "string" or t == "number" end

-- In a simulation os.time and os.date are gosim's: they return a value, or nil and a message to
-- raise at the caller's line.
if simulated then
  local time, date = os.time, os.date
  function os.time(t)
    local v, e = time(t)
    if e then error(e, 2) end
    return v
  end
  function os.date(f, t)
    local v, e = date(f, t)
    if e then error(e, 2) end
    return v
  end
end

-- When the instruction hook ends a goroutine, mlua unwinds the interrupted function's stack from
-- inside the hook, where Lua runs no hook: a to-be-closed variable's __close then runs with no
-- limit. The run is over at that point, so a __close set through setmetatable is skipped then.
-- (A __close stored into a metatable after setmetatable is not wrapped.)
local rawset, guarded = rawset, setmetatable({}, {__mode = "k"})
local function guard_close(mt)
  local f = rawget(mt, "__close")
  if type(f) == "function" and not guarded[f] then
    local g = function(...)
      if run_over() then return end
      return f(...)
    end
    guarded[g] = true
    rawset(mt, "__close", g)
  end
end

-- __gc finalizers run inside the garbage collector: outside the scheduler, with Lua's hooks off
-- (no instruction limit), at moments that differ between runs. They are refused.
function setmetatable(t, mt)
  need(type(t) == "table", "setmetatable", 1, "table", t)
  need(mt == nil or type(mt) == "table", "setmetatable", 2, "nil or table", mt)
  if mt ~= nil and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc finalizers are not allowed in gosim (they would run inside the " ..
      "garbage collector, outside the scheduler and every limit, at moments that differ between " ..
      "runs); release resources explicitly, or with a to-be-closed variable (__close)", 2)
  end
  if mt ~= nil then guard_close(mt) end
  return raw_setmetatable(t, mt)
end

-- Pattern matching and element loops run in C, where no hook fires: check their cost first.
local function patterns(fname, s, p)
  need(strlike(s), fname, 1, "string", s, 4)
  need(strlike(p), fname, 2, "string", p, 4)
end
function string.find(s, p, init, plain)
  patterns("find", s, p)
  if not plain then check_pattern("string.find", 0, s, p, init) end
  return find(s, p, init, plain)
end
function string.match(s, p, init)
  patterns("match", s, p)
  check_pattern("string.match", 0, s, p, init)
  return match(s, p, init)
end
function string.gmatch(s, p, init)
  patterns("gmatch", s, p)
  check_pattern("string.gmatch", 1, s, p, init)
  return gmatch(s, p, init)
end
function string.gsub(s, p, repl, n)
  patterns("gsub", s, p)
  local tr = type(repl)
  need(tr == "string" or tr == "number" or tr == "table" or tr == "function", "gsub", 3,
    "string/function/table", repl)
  check_pattern("string.gsub", 2, s, p, nil, n)
  return gsub(s, p, repl, n)
end
-- string.rep copies an empty string n times in a loop: string.rep("", 1e15) would never end.
function string.rep(s, n, sep)
  need(strlike(s), "rep", 1, "string", s)
  need(type(n) == "number", "rep", 2, "number", n)
  if s == "" and (sep == nil or sep == "") then return "" end
  return rep(s, n, sep)
end
function table.move(a1, f, e, t, a2)
  need(type(a1) == "table", "move", 1, "table", a1)
  if type(f) == "number" and type(e) == "number" and e >= f then check_count("table.move", e - f + 1) end
  return move(a1, f, e, t, a2)
end
function table.insert(t, ...)
  need(type(t) == "table", "insert", 1, "table", t)
  if select("#", ...) == 2 then
    local pos = ...
    if type(pos) == "number" then check_count("table.insert", #t - pos) end
  end
  return insert(t, ...)
end
function table.remove(t, ...)
  need(type(t) == "table", "remove", 1, "table", t)
  local pos = ...
  if type(pos) == "number" then check_count("table.remove", #t - pos) end
  return remove(t, ...)
end
return set_package
"##;

/// What neither a simulation nor a real run of a scenario may reach: the process, files, native
/// code, the real `os`, and C loops that no limit can stop.
///
/// `package` is replaced by a fresh table: the real `package.loaded` holds the real `os` (with
/// `execute` and `exit`), and its searchers read files from disk. The real tables stay in the
/// registry, out of reach of scripts; they are used only by Lua to name functions in error
/// messages, so they are pointed at the unwrapped functions (an error raised by `string.find`
/// called through its wrapper then says `string.find`, not `?`).
fn sandbox(lua: &Lua, host: &Rc<Host>) -> mlua::Result<()> {
    let globals = lua.globals();
    let real_package: Table = globals.get("package")?;
    let real_loaded: Table = real_package.get("loaded")?;

    let loaded = lua.create_table()?;
    for name in ["string", "table", "math", "coroutine", "utf8", "os"] {
        loaded.set(name, globals.get::<Value>(name)?)?;
    }
    loaded.set("_G", &globals)?;
    let preload = lua.create_table()?;
    let package = lua.create_table()?;
    package.set("loaded", &loaded)?;
    package.set("preload", &preload)?;
    package.set("path", "")?;
    package.set("cpath", "")?;
    package.set("config", real_package.get::<Value>("config")?)?;
    loaded.set("package", &package)?;
    globals.set("package", package)?;
    globals.set("dofile", Value::Nil)?;
    globals.set("loadfile", Value::Nil)?;

    // Names for error messages: the unwrapped functions, before the wrappers replace them.
    for lib in ["string", "table"] {
        let t: Table = globals.get(lib)?;
        real_loaded.set(lib, shallow_copy(lua, &t)?)?;
    }
    real_loaded.set("_G", shallow_copy(lua, &globals)?)?;
    for name in ["os", "io", "debug", "package"] {
        real_loaded.set(name, Value::Nil)?;
    }

    let h = host.clone();
    let check_pattern = lua.create_function(
        move |lua, (fname, kind, s, p, init, n): (String, i64, Value, Value, Value, Value)| {
            check_pattern(lua, &h, &fname, kind, s, p, init, n)
        },
    )?;
    let h = host.clone();
    let check_count = lua.create_function(move |lua, (fname, n): (String, Value)| {
        let n = match n {
            Value::Integer(i) => i as f64,
            Value::Number(x) => x,
            _ => return Ok(()),
        };
        let budget = h.limits.max_instructions;
        if budget > 0 && n > budget as f64 {
            over_budget(
                lua,
                &h,
                format!(
                    "{fname}: would move {n:.0} elements in one C call, more than the {budget} \
                     instructions a goroutine may run without a scheduling point"
                ),
            )
        } else {
            Ok(())
        }
    })?;
    let getinfo: Function = globals.get::<Table>("debug")?.get("getinfo")?;
    let h = host.clone();
    let parked_here = lua.create_function(move |lua, ()| {
        use super::Resume;
        let op = match &*h.resume.borrow() {
            None => return Ok(None),
            Some(Resume::Recv(_)) => "a blocked receive",
            Some(Resume::Send(_)) => "a blocked send",
            Some(Resume::Select(..)) => "a blocked select",
            Some(Resume::Future(_)) => "a blocked lock, wait or pattern call",
            Some(Resume::Nothing | Resume::Start(_) | Resume::Started(_)) => {
                "a sleep or wait that blocked"
            }
            Some(Resume::One(_) | Resume::Two(_) | Resume::Got(..) | Resume::Three(_)) => {
                "a scheduling point that switched goroutines"
            }
        };
        lua.set_app_data(CannotResume);
        Ok(Some(op))
    })?;
    let h = host.clone();
    let run_over = lua.create_function(move |lua, ()| {
        Ok(h.rt.is_over() || lua.app_data_ref::<CannotResume>().is_some())
    })?;
    let chunk = lua
        .load(sandbox_bytecode(lua)?)
        .set_name(super::PRELUDE_NAME)
        .set_mode(mlua::chunk::ChunkMode::Binary);
    let set_package: Function = chunk.call((
        loaded,
        preload,
        check_pattern,
        check_count,
        getinfo,
        parked_here,
        host.rt.is_simulated(),
        run_over,
    ))?;
    lua.set_named_registry_value(super::reuse::SET_PACKAGE_KEY, set_package)
}

/// Forgets the per-run flags the sandbox keeps in the state (a reused world starts a new run).
pub(crate) fn clear_run_flags(lua: &Lua) {
    lua.remove_app_data::<CannotResume>();
}

/// Set (as Lua app data) once a goroutine parked in Rust could not yield to the scheduler: its
/// state is inconsistent, so the error must end the run, like a limit (see `extend_raw`).
#[derive(Debug)]
struct CannotResume;

fn shallow_copy(lua: &Lua, t: &Table) -> mlua::Result<Table> {
    let copy = lua.create_table()?;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if matches!(v, Value::Function(_)) {
            copy.raw_set(k, v)?;
        }
    }
    Ok(copy)
}

/// The sandbox chunk compiled once per process (stripped), as `prelude_bytecode`.
fn sandbox_bytecode(lua: &Lua) -> mlua::Result<&'static [u8]> {
    static BYTECODE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    if let Some(b) = BYTECODE.get() {
        return Ok(b);
    }
    let f = lua
        .load(SANDBOX_LUA)
        .set_name(super::PRELUDE_NAME)
        .into_function()?;
    Ok(BYTECODE.get_or_init(|| f.dump(true)))
}

/// Ends the run with the instruction limit (a C loop too long for one goroutine step) and
/// raises an error to unwind the goroutine.
fn over_budget(lua: &Lua, host: &Host, message: String) -> mlua::Result<()> {
    let here = super::caller_location(lua).map(|l| l.to_string());
    host.rt
        .hit_limit(LimitKind::Instructions, message.clone(), here);
    Err(mlua::Error::runtime(format!("gosim: {message}")))
}

/// Replays the pattern call's matching work (`guard::pattern_cost`) within the instruction
/// budget. Arguments the C function would reject are let through: it raises its own error.
#[allow(clippy::too_many_arguments)]
fn check_pattern(
    lua: &Lua,
    host: &Host,
    fname: &str,
    kind: i64,
    s: Value,
    p: Value,
    init: Value,
    n: Value,
) -> mlua::Result<()> {
    let budget = host.limits.max_instructions;
    if budget == 0 {
        return Ok(());
    }
    let (Some(s), Some(p)) = (lua.coerce_string(s)?, lua.coerce_string(p)?) else {
        return Ok(());
    };
    let (s, p) = (s.as_bytes(), p.as_bytes());
    let len = s.len() as i64;
    let init = match init {
        Value::Nil => 1,
        other => match integer(&other) {
            Some(i) => i,
            None => return Ok(()),
        },
    };
    // posrelatI of lstrlib.c, then 0-based.
    let start = if init > 0 {
        init - 1
    } else if init == 0 || init < -len {
        0
    } else {
        len + init
    };
    let call = match kind {
        0 => PatternCall::Find,
        1 => PatternCall::Gmatch,
        _ => match n {
            Value::Nil => PatternCall::Gsub(len as u64 + 1),
            other => match integer(&other) {
                Some(n) if n <= 0 => return Ok(()),
                Some(n) => PatternCall::Gsub(n as u64),
                None => return Ok(()),
            },
        },
    };
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    match pattern_cost(call, &s, &p, start, budget) {
        Ok(_) | Err(Stop::Error) => Ok(()),
        Err(Stop::Budget) => over_budget(
            lua,
            host,
            format!(
                "{fname}: the pattern {} on a subject of {} bytes needs more than {budget} \
                 matching steps (catastrophic backtracking); matching runs in C, where no \
                 scheduling point can interrupt it",
                shown_pattern(&p),
                s.len()
            ),
        ),
    }
}

/// A pattern for a message: quoted, cut at 60 bytes, non-printable bytes escaped.
fn shown_pattern(p: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in p.iter().take(60) {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b}")),
        }
    }
    if p.len() > 60 {
        out.push_str("...");
    }
    out.push('"');
    out
}

/// `os.date`'s range of times: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const MIN_DATE: i64 = -62_135_596_800;
const MAX_DATE: i64 = 253_402_300_799;

/// `os.time{...}` in UTC. Fields out of range are an error, never an overflow.
fn time_from_fields(t: &Table) -> Result<i64, String> {
    let field = |name: &str, default: Option<i64>| -> Result<i64, String> {
        match t.get::<Value>(name).map_err(|e| e.to_string())? {
            Value::Nil => {
                default.ok_or_else(|| format!("os.time: field '{name}' missing in date table"))
            }
            v => match integer(&v) {
                // Lua keeps these fields in C ints.
                Some(i) if i32::try_from(i).is_ok() => Ok(i),
                Some(_) => Err(format!("os.time: field '{name}' is out-of-bound")),
                None if matches!(v, Value::Number(n) if n.fract() == 0.0) => {
                    Err(format!("os.time: field '{name}' is out-of-bound"))
                }
                None => Err(format!(
                    "os.time: field '{name}' is not an integer (got {})",
                    brief(&v)
                )),
            },
        }
    };
    let (year, month, day) = (
        field("year", None)?,
        field("month", None)?,
        field("day", None)?,
    );
    let (hour, min, sec) = (
        field("hour", Some(12))?,
        field("min", Some(0))?,
        field("sec", Some(0))?,
    );
    // Normalise the month as C's mktime does, then count in i128: no overflow is possible.
    let (year, month) = (
        year + (month - 1).div_euclid(12),
        (month - 1).rem_euclid(12) + 1,
    );
    let secs = days_from_civil(year, month, 1) as i128 * 86_400
        + (day as i128 - 1) * 86_400
        + hour as i128 * 3600
        + min as i128 * 60
        + sec as i128;
    i64::try_from(secs).map_err(|_| "os.time: time result cannot be represented".to_string())
}

/// `shown`, with huge numbers in exponent form.
fn brief(v: &Value) -> String {
    match v {
        Value::Number(n) if n.abs() >= 1e15 => format!("{n:e}"),
        other => shown(other),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// `math.random` (Lua 5.4 semantics) from the run's data stream. Errors are misuse messages.
fn random(rt: &Runtime, args: &[Value]) -> Result<Value, String> {
    let arg = |i: usize| -> Result<i64, String> {
        integer(&args[i]).ok_or_else(|| {
            format!(
                "math.random: argument {} must be an integer (got {})",
                i + 1,
                shown(&args[i])
            )
        })
    };
    let (lo, hi) = match args.len() {
        0 => return Ok(Value::Number(rt.random_unit())),
        1 => {
            let m = arg(0)?;
            if m == 0 {
                return Ok(Value::Integer(rt.random_u64() as i64));
            }
            (1, m)
        }
        2 => (arg(0)?, arg(1)?),
        n => {
            return Err(format!(
                "math.random: wrong number of arguments ({n}, at most 2)"
            ));
        }
    };
    if lo > hi {
        return Err(format!("math.random: interval is empty ({lo} > {hi})"));
    }
    let span = (hi as i128 - lo as i128 + 1) as u128;
    let off = if span > u64::MAX as u128 {
        rt.random_u64() as u128
    } else {
        rt.random_below(span as u64) as u128
    };
    Ok(Value::Integer((lo as i128 + off as i128) as i64))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::days_from_civil;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
    }
}
