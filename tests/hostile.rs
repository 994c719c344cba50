//! Hostile and careless scenarios (issue 8): no way out of the sandbox, no hang, no unbounded
//! memory or input, no scheduler corruption from user code, no panic from the command line.
//!
//! Each test reproduces one defect found by attacking gosim; it failed before the fix.

use std::sync::mpsc;
use std::time::Duration;

use gosim::lua::LuaLimits;
use gosim::runtime::{Config, LimitKind, Outcome};
use gosim::scenario::{RunOptions, RunReport, run_source};

mod common;
use common::{gosim, logs};

/// This test binary counts its allocations per thread, as the `gosim` binary does, so the
/// whole-run memory limit can be checked in process (`gosim::lua::set_memory_probe`).
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static THREAD: Cell<i64> = const { Cell::new(0) };
        static PEAK: Cell<i64> = const { Cell::new(0) };
    }

    fn add(n: i64) {
        let _ = THREAD.try_with(|c| {
            let now = c.get().wrapping_add(n);
            c.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
    }

    /// This thread's net allocations.
    pub fn current() -> i64 {
        THREAD.try_with(Cell::get).unwrap_or(0)
    }

    /// This thread's highest net allocations since `reset_peak`.
    pub fn peak() -> i64 {
        PEAK.try_with(Cell::get).unwrap_or(0)
    }

    pub fn reset_peak() {
        let now = current();
        let _ = PEAK.try_with(|p| p.set(now));
    }

    pub struct Counting;

    // SAFETY: every method forwards to `System` unchanged and only updates counters.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's layout.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                add(layout.size() as i64);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded with the caller's pointer and layout.
            unsafe { System.dealloc(ptr, layout) };
            add(-(layout.size() as i64));
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded with the caller's arguments.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                add(new_size as i64 - layout.size() as i64);
            }
            p
        }
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Runs `src` as `t.lua` with seed 1 and default limits; a load error or a panic fails the test.
fn run(src: &str) -> RunReport {
    run_with(src, &RunOptions::with_seed(1))
}

fn run_with(src: &str, opts: &RunOptions) -> RunReport {
    match try_run(src, opts) {
        Ok(r) => r,
        Err(e) => panic!("{e}\n--- source ---\n{src}"),
    }
}

fn try_run(src: &str, opts: &RunOptions) -> Result<RunReport, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_source("t.lua", src, opts)
    })) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("the scenario did not load: {e}")),
        Err(_) => Err("gosim panicked".to_string()),
    }
}

/// How long one of these runs may take before it counts as a hang.
const HANG_AFTER: Duration = Duration::from_secs(20);

/// What a guarded run sends back from its thread (a `RunReport` is not `Send`).
#[derive(Debug)]
struct Ended {
    outcome: Outcome,
    trace: String,
    logs: Vec<String>,
}

impl Ended {
    fn trace_text(&self) -> String {
        self.trace.clone()
    }
}

/// Runs `src` on its own thread and gives up after `HANG_AFTER` (a hang fails the test instead
/// of hanging the suite).
fn run_guarded(src: &str, opts: &RunOptions) -> Ended {
    let (tx, rx) = mpsc::channel();
    let source = src.to_string();
    let opts = opts.clone();
    std::thread::spawn(move || {
        let _ = tx.send(try_run(&source, &opts).map(|r| Ended {
            trace: r.trace_text(),
            logs: logs(&r),
            outcome: r.outcome,
        }));
    });
    match rx.recv_timeout(HANG_AFTER) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => panic!("{e}\n--- source ---\n{src}"),
        Err(_) => panic!(
            "the run did not end within {} s (a hang)\n--- source ---\n{src}",
            HANG_AFTER.as_secs()
        ),
    }
}

fn error_message(outcome: &Outcome, src: &str) -> String {
    match outcome {
        Outcome::Fail(f) => f.message.clone(),
        other => panic!("expected a failure, got {other}\n--- source ---\n{src}"),
    }
}

fn expect_pass(r: &RunReport, src: &str) {
    assert!(
        r.outcome.is_pass(),
        "{}\n{}\n--- source ---\n{src}",
        r.outcome,
        r.trace_text()
    );
}

fn expect_limit(r: &Ended, kind: LimitKind, src: &str) -> gosim::runtime::LimitHit {
    match &r.outcome {
        Outcome::Limit(l) if l.kind == kind => l.clone(),
        other => panic!(
            "expected the {}, got {other}\n{}\n--- source ---\n{src}",
            kind.word(),
            r.trace
        ),
    }
}

fn with_lua(f: impl FnOnce(&mut LuaLimits)) -> RunOptions {
    let mut o = RunOptions::with_seed(1);
    f(&mut o.lua);
    o
}

fn with_config(f: impl FnOnce(&mut Config)) -> RunOptions {
    let mut o = RunOptions::with_seed(1);
    f(&mut o.config);
    o
}

/// A small instruction budget: the guards replay pattern matching step by step, which a debug
/// build does slowly; the default budget (10^8) works the same, only later.
fn small_budget() -> RunOptions {
    with_lua(|l| l.max_instructions = 2_000_000)
}

// ---------------------------------------------------------------------------------------------
// 1. The sandbox
// ---------------------------------------------------------------------------------------------

#[test]
fn require_gives_only_the_sandboxed_libraries() {
    let src = r#"
local os2 = require("os")
assert(os2 == os, "require('os') is the sandboxed os")
assert(os2.execute == nil and os2.exit == nil and os2.getenv == nil and os2.remove == nil)
assert(package.loaded.os == os and package.loaded.os.execute == nil)
for _, name in ipairs{"io", "debug", "ffi", "lfs", "socket"} do
  local ok, e = pcall(function() local m = require(name) return m end)
  assert(not ok, name)
  assert(e:find("t.lua:7: require: module '" .. name .. "' not found", 1, true), e)
  assert(package.loaded[name] == nil, name)
end
assert(require("package") == package and package.searchers == nil and package.loadlib == nil)
assert(package.path == "" and package.cpath == "")
assert(require("string") == string and require("table") == table and require("math") == math)
assert(require("coroutine") == coroutine and require("utf8") == utf8 and require("_G") == _G)
assert(require("goroutine") == goroutine and require("log") == log and require("sim") == sim)
-- a scenario's own modules, through preload or loaded
package.preload.mymod = function(name, extra) return {name = name, extra = extra} end
local m, extra = require("mymod")
assert(m.name == "mymod" and m.extra == ":preload:" and extra == ":preload:")
assert(require("mymod") == m and package.loaded.mymod == m)
package.loaded.other = 42
assert(require("other") == 42)
-- a preload loader that returns nothing registers true
package.preload.empty = function() end
assert(require("empty") == true)
-- no path reaches a file: a searcher list is ignored, path is not used
package.path = "./?.lua;/etc/?"
package.searchers = {function() return function() return "pwned" end end}
assert(not pcall(require, "passwd"))
assert(dofile == nil and loadfile == nil and io == nil and debug == nil)
"#;
    expect_pass(&run(src), src);
}

#[test]
fn require_os_cannot_run_a_command_nor_exit() {
    let dir = std::env::temp_dir().join(format!("gosim-hostile-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("pwned");
    let src = format!(
        "pcall(function() require('os').execute('id > {}') end)\n\
         pcall(function() require('os').exit(7) end)\n\
         pcall(function() package.loaded.os.exit(7) end)\n\
         log.info('still here')\n",
        file.display()
    );
    let r = run(&src);
    expect_pass(&r, &src);
    assert_eq!(logs(&r), vec!["still here".to_string()]);
    assert!(!file.exists(), "os.execute ran a command");
}

#[test]
fn the_string_metatable_and_bytecode_lead_nowhere() {
    let src = r#"
local mt = getmetatable("")
assert(mt.__index == string, "the string metatable indexes the sandboxed string table")
assert(mt.__index.dump ~= nil)
-- bytecode cannot be loaded, by string or by reader function
local code = string.dump(function() return 1 end)
local f, e = load(code)
assert(f == nil and e:find("binary chunk"), e)
local parts = {code}
f, e = load(function() return table.remove(parts) end)
assert(f == nil and e:find("binary chunk"), e)
f, e = load(code, "x", "b")
assert(f == nil and e:find("binary chunk"), e)
-- the real os is not reachable through the string library either
assert(mt.__index.os == nil and string.os == nil)
"#;
    expect_pass(&run(src), src);
}

#[test]
fn collectgarbage_options_neither_escape_nor_hang() {
    let src = r#"
for _, opt in ipairs{"collect", "step", "count", "isrunning", "incremental", "generational", "incremental"} do
  collectgarbage(opt)
end
assert(not pcall(collectgarbage, "nonsense"))
collectgarbage("stop")
collectgarbage("restart")
log.info("ok")
"#;
    expect_pass(&run(src), src);
    // With the collector stopped, Lua still collects when an allocation fails (an emergency
    // collection), and live data still meets the memory limit: a limit, never a hang.
    let src =
        "collectgarbage('stop')\nwhile true do local t = {} for i = 1, 1000 do t[i] = i end end\n";
    let r = run_guarded(src, &with_lua(|l| l.max_memory = 32 * 1024 * 1024));
    assert!(matches!(r.outcome, Outcome::Limit(_)), "{}", r.outcome);
    let src = "collectgarbage('stop')\nlocal keep = {}\nwhile true do keep[#keep + 1] = {} end\n";
    let r = run_guarded(src, &with_lua(|l| l.max_memory = 32 * 1024 * 1024));
    expect_limit(&r, LimitKind::Memory, src);
}

// ---------------------------------------------------------------------------------------------
// 2. Hangs in C code and in finalizers
// ---------------------------------------------------------------------------------------------

#[test]
fn gc_finalizers_are_refused_with_a_clear_error() {
    for src in [
        // explicit collection
        "setmetatable({}, {__gc = function() while true do end end})\ncollectgarbage()\n",
        // at state close, after main returned
        "local keep = setmetatable({}, {__gc = function() while true do end end})\n",
        // set up in a goroutine
        "goroutine.spawn(function()\n  setmetatable({}, {__gc = function() while true do end end})\nend)\ngoroutine.sleep(1)\ncollectgarbage()\n",
        // a finalizer that sleeps or errors
        "setmetatable({}, {__gc = function() goroutine.sleep(10) end})\n",
        "setmetatable({}, {__gc = function() error('boom') end})\n",
        // any non-nil __gc marks an object for finalization
        "setmetatable({}, {__gc = true})\n",
    ] {
        let r = run_guarded(src, &RunOptions::with_seed(1));
        let msg = error_message(&r.outcome, src);
        assert!(
            msg.contains("t.lua:") && msg.contains("setmetatable: __gc finalizers are not allowed"),
            "{msg}\n--- source ---\n{src}"
        );
    }
    // A __gc added after setmetatable does not mark the object (Lua's rule): harmless.
    let src = "local mt = {}\nsetmetatable({}, mt)\nmt.__gc = function() while true do end end\ncollectgarbage()\nlog.info('ok')\n";
    let r = run_guarded(src, &RunOptions::with_seed(1));
    assert!(r.outcome.is_pass(), "{}\n{}", r.outcome, r.trace);
}

#[test]
fn catastrophic_patterns_end_with_the_instruction_limit() {
    for src in [
        "string.find(string.rep('a', 40), string.rep('a*', 40) .. 'b')\n",
        "local s = string.rep('a', 40)\nlocal ok = pcall(string.match, s, string.rep('a-', 40) .. 'b')\nwhile true do end\n",
        "for w in string.gmatch(string.rep('a', 40), string.rep('a*', 30) .. 'b') do end\n",
        "string.gsub(string.rep('a', 40), string.rep('a?', 40) .. 'b', 'x')\n",
        "goroutine.spawn(function() ('x'):rep(30):find(('x*'):rep(30) .. 'y') end)\ngoroutine.sleep(1)\n",
    ] {
        let r = run_guarded(src, &small_budget());
        let l = expect_limit(&r, LimitKind::Instructions, src);
        assert!(
            l.message.contains("catastrophic backtracking") || l.message.contains("instructions"),
            "{}\n--- source ---\n{src}",
            l.message
        );
        assert!(
            l.location.as_deref().unwrap_or("").starts_with("t.lua:"),
            "{:?}",
            l.location
        );
    }
}

#[test]
fn a_limit_in_c_code_keeps_the_trace_so_far() {
    let src = "log.info('before')\ngoroutine.sleep(5)\nstring.find(string.rep('a', 40), string.rep('a*', 40) .. 'b')\n";
    let r = run_guarded(src, &small_budget());
    expect_limit(&r, LimitKind::Instructions, src);
    assert_eq!(r.logs, vec!["before".to_string()]);
    assert!(r.trace_text().contains("sleep"), "{}", r.trace_text());
}

#[test]
fn ordinary_patterns_still_work() {
    let src = r#"
assert(("hello world"):find("o w") == 5)
assert(select(3, ("key = value"):find("^%s*(%S+)%s*=%s*(.-)%s*$")) == "key")
assert(("f(a(b)c)"):match("%b()") == "(a(b)c)")
assert(("THE (quick) fox"):match("%f[%a]%a+", 2) == "quick")
assert(("abcabc"):match("(a)(b)c%1%2") == "a")
local n = 0
for k, v in ("a=1, b=2"):gmatch("(%w+)=(%w+)") do n = n + 1 end
assert(n == 2)
assert(("hello"):gsub("l", {l = "L"}) == "heLLo")
assert(select(2, ("abc"):gsub("", "-")) == 4)
assert(("x"):rep(3, ",") == "x,x,x" and (""):rep(1e15) == "" and ("ab"):rep(0) == "")
assert(string.find("a+b", "+", 1, true) == 2)
assert(("abc"):find("b", -2) == 2)
assert(("123"):find(2) == 2)
local t = {1, 2, 3}
table.insert(t, 1, 0) table.insert(t, 4) assert(table.concat(t) == "01234")
assert(table.remove(t, 1) == 0 and table.remove(t) == 4 and table.concat(t) == "123")
assert(table.concat(table.move({1, 2, 3}, 1, 3, 2), ",") == "1,1,2,3")
-- argument errors keep the caller's line and the function's name
local ok, e = pcall(function() return string.find(nil, "x") end)
assert(e:find("bad argument #1 to 'find'"), e)
ok, e = pcall(function() local x = string.rep("x") return x end)
assert(e:find("t.lua:%d+: bad argument #2 to 'rep'"), e)
ok, e = pcall(setmetatable, 1, {})
assert(e:find("bad argument #1 to 'setmetatable'"), e)
-- a malformed pattern is Lua's own error
ok, e = pcall(string.find, "abc", "[a")
assert(not ok and e:find("malformed pattern"), e)
"#;
    expect_pass(&run(src), src);
}

#[test]
fn c_loops_over_huge_ranges_end_with_the_instruction_limit() {
    for src in [
        "table.move({}, 1, 1e15, 2)\n",
        "local t = setmetatable({}, {__len = function() return 1e15 end})\ntable.insert(t, 1, 'x')\n",
        "local t = setmetatable({}, {__len = function() return 1e15 end})\ntable.remove(t, 1)\n",
    ] {
        let r = run_guarded(src, &RunOptions::with_seed(1));
        expect_limit(&r, LimitKind::Instructions, src);
    }
}

#[test]
fn explore_ends_on_hostile_c_code_too() {
    let dir = std::env::temp_dir().join(format!("gosim-hostile-explore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pattern.lua");
    std::fs::write(
        &path,
        "goroutine.sleep(1)\nstring.find(string.rep('a', 40), string.rep('a*', 40) .. 'b')\n",
    )
    .unwrap();
    let out = gosim(&[
        "explore",
        path.to_str().unwrap(),
        "--runs",
        "4",
        "--jobs",
        "2",
        "--max-instructions",
        "2000000",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("catastrophic backtracking"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// 4. User code cannot resume or close a goroutine's coroutine
// ---------------------------------------------------------------------------------------------

#[test]
fn a_goroutine_coroutine_cannot_be_resumed_or_closed_by_user_code() {
    for (call, what) in [
        ("coroutine.resume(co, 'forged', true)", "coroutine.resume"),
        ("coroutine.close(co)", "coroutine.close"),
    ] {
        let src = format!(
            "local ch, handoff = goroutine.channel(), goroutine.channel(1)\n\
             goroutine.spawn(function()\n\
               handoff:send(coroutine.running())\n\
               local v, ok = ch:receive()\n\
               log.info('received ' .. tostring(v))\n\
             end)\n\
             local co = handoff:receive()\n\
             goroutine.yield()\n\
             local ok, e = pcall(function() local a, b = {call} return a, b end)\n\
             log.info(tostring(ok) .. ' ' .. tostring(e))\n\
             ch:send('real')\n"
        );
        let r = run(&src);
        expect_pass(&r, &src);
        let l = logs(&r);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(
            l[0].starts_with(&format!(
                "false t.lua:9: {what}: this is a goroutine's own coroutine"
            )),
            "{l:?}"
        );
        assert_eq!(l[1], "received real");
    }
}

#[test]
fn sleep_and_wait_groups_are_not_cut_short_by_a_forged_resume() {
    let src = r#"
local handoff = goroutine.channel(2)
local wg = goroutine.wait_group()
wg:add(1)
goroutine.spawn(function()
  handoff:send(coroutine.running())
  goroutine.sleep(100)
  assert(goroutine.now() == 100, "slept 100 ms")
  wg:done()
end)
goroutine.spawn(function()
  handoff:send(coroutine.running())
  wg:wait()
  log.info("waited until " .. goroutine.now())
end)
local a, b = handoff:receive(), handoff:receive()
goroutine.yield()
for _, co in ipairs{a, b} do
  assert(not pcall(coroutine.resume, co))
  assert(not pcall(coroutine.close, co))
  assert(coroutine.status(co) == "suspended")
end
"#;
    let r = run(src);
    expect_pass(&r, src);
    assert_eq!(logs(&r), vec!["waited until 100".to_string()]);
}

#[test]
fn a_user_coroutine_blocked_in_a_call_cannot_be_resumed_elsewhere() {
    let src = r#"
local ch, shared = goroutine.channel(), goroutine.channel(1)
goroutine.spawn(function()
  local gen = coroutine.create(function() local v = ch:receive() coroutine.yield(v) end)
  shared:send(gen)
  local ok, v = coroutine.resume(gen)
  log.info("gen gave " .. tostring(v))
end)
local gen = shared:receive()
goroutine.yield()
local ok, e = pcall(function() local a, b = coroutine.resume(gen, "forged") return a, b end)
log.info(tostring(ok) .. " " .. tostring(e))
ok, e = pcall(function() local a, b = coroutine.close(gen) return a, b end)
log.info(tostring(ok))
ch:send("real")
"#;
    let r = run(src);
    expect_pass(&r, src);
    let l = logs(&r);
    assert!(
        l[0].starts_with(
            "false t.lua:11: coroutine.resume: this coroutine is blocked in a goroutine.* call"
        ),
        "{l:?}"
    );
    assert_eq!(l[1], "false");
    assert_eq!(l[2], "gen gave real");
}

#[test]
fn user_coroutines_keep_working_inside_goroutines() {
    let src = r#"
assert(coroutine.isyieldable() == false, "a goroutine yields only through goroutine.* calls")
local co = coroutine.create(function(a)
  assert(coroutine.isyieldable())
  goroutine.sleep(5)
  local b = coroutine.yield(a + 1)
  local me = coroutine.running()
  assert(coroutine.status(me) == "running")
  return b * 2
end)
local ok, v = coroutine.resume(co, 1)
assert(ok and v == 2 and goroutine.now() == 5)
ok, v = coroutine.resume(co, 21)
assert(ok and v == 42 and coroutine.status(co) == "dead")
-- wrap, a generator shared with another goroutine, close of a suspended one
local ch = goroutine.channel(3)
for i = 1, 3 do ch:send(i) end
ch:close()
local gen = coroutine.wrap(function() ch:range(function(v) coroutine.yield(v) end) end)
local done = goroutine.channel()
goroutine.spawn(function() done:send(gen() + gen()) end)
assert(done:receive() == 3 and gen() == 3)
local c2 = coroutine.create(function() coroutine.yield() end)
coroutine.resume(c2)
assert(coroutine.close(c2) == true and coroutine.status(c2) == "dead")
assert(not pcall(coroutine.create, 5))
"#;
    expect_pass(&run(src), src);
}

// ---------------------------------------------------------------------------------------------
// 6. Limits are what they say
// ---------------------------------------------------------------------------------------------

#[test]
fn the_instruction_limit_cannot_be_caught() {
    for src in [
        "local ok = pcall(function() while true do end end)\nlog.info('caught')\nwhile true do end\n",
        "local ok = xpcall(function() while true do end end, function(e) return e end)\nlog.info('caught')\n",
        "local co = coroutine.create(function() while true do end end)\nlocal ok = coroutine.resume(co)\nlog.info('caught')\n",
        "local f = load(function() while true do end end)\nlog.info('caught')\n",
        "local t = {3, 2, 1}\nwhile true do pcall(table.sort, t, function(a, b) while true do end end) end\n",
        "local t = {3, 2, 1}\ntable.sort(t, function(a, b)\n  while true do coroutine.resume(coroutine.create(function() while true do end end)) end\nend)\n",
        "for i = 1, 100 do pcall(function() while true do end end) end\nlog.info('caught')\n",
        // A message handler called for the hook's error runs inside the hook, with hooks off.
        "xpcall(function() while true do end end, function(e) while true do end end)\nlog.info('caught')\n",
        "xpcall(function() error('x') end, function(e) while true do end end)\nlog.info('caught')\n",
    ] {
        let r = run_guarded(src, &with_lua(|l| l.max_instructions = 100_000));
        expect_limit(&r, LimitKind::Instructions, src);
        assert!(
            r.logs.is_empty(),
            "user code went on after the limit: {:?}\n{src}",
            r.logs
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Numeric flags are validated; 3. inputs are capped; 8. small CLI items
// ---------------------------------------------------------------------------------------------

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn out_of_range_flags_are_usage_errors_not_panics() {
    let t = "scenarios/timers.lua";
    for (args, needle) in [
        (
            vec![
                "run",
                t,
                "--step-cost",
                "18446744073710",
                "--step-cost-random",
            ],
            "--step-cost",
        ),
        (vec!["run", t, "--step-cost=-1"], "--step-cost"),
        (vec!["run", t, "--max-time", "nan"], "--max-time"),
        (vec!["run", t, "--max-time", "inf"], "--max-time"),
        (vec!["run", t, "--drain-time", "1e300"], "--drain-time"),
        (vec!["run", t, "--max-goroutines", "0"], "--max-goroutines"),
        (vec!["run", t, "--max-steps", "0"], "--max-steps"),
        (vec!["run", t, "--max-memory", "0"], "--max-memory"),
        (
            vec!["run", t, "--max-memory", "18446744073709551615"],
            "--max-memory",
        ),
        (vec!["run", t, "--max-input", "0"], "--max-input"),
        (vec!["explore", t, "--jobs", "0"], "--jobs"),
        (vec!["explore", t, "--jobs", "100000"], "--jobs"),
        (
            vec!["shrink", t, "--seed", "1", "--max-runs", "0"],
            "--max-runs",
        ),
    ] {
        let out = gosim(&args);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // The largest accepted step cost, drawn at random, runs to a limit without a panic.
    let out = gosim(&[
        "run",
        t,
        "--step-cost",
        "1e13",
        "--step-cost-random",
        "--trace",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
}

#[test]
fn library_configs_with_extreme_step_costs_do_not_panic() {
    let opts = with_config(|c| {
        c.step_cost = std::time::Duration::from_nanos(u64::MAX);
        c.step_cost_random = true;
    });
    let r = run_guarded("goroutine.sleep(1)\ngoroutine.yield()\n", &opts);
    assert!(
        !matches!(&r.outcome, Outcome::Fail(f) if f.kind == gosim::runtime::FailureKind::Panic),
        "{}",
        r.outcome
    );
}

#[test]
fn endless_inputs_are_refused_at_the_cap() {
    for args in [
        vec!["run", "/dev/zero"],
        vec!["explore", "/dev/zero", "--runs", "1"],
        vec!["replay", "scenarios/timers.lua", "--schedule", "/dev/zero"],
        vec!["run", "/dev/zero", "--max-input", "1"],
    ] {
        let start = std::time::Instant::now();
        let out = gosim(&args);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("is larger than") && err.contains("--max-input"),
            "{args:?}: {err}"
        );
        assert!(start.elapsed() < Duration::from_secs(20), "{args:?}");
    }
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gosim-hostile-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_schedule_is_refused_against_another_scenario() {
    let dir = temp_dir("schedule");
    let canary = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/canary.lua"),
    )
    .unwrap();
    let a = dir.join("a.lua");
    let b = dir.join("b.lua");
    std::fs::write(&a, &canary).unwrap();
    std::fs::write(&b, format!("{canary}\n-- another version\n")).unwrap();
    let sched = dir.join("a.schedule");
    let out = gosim(&[
        "shrink",
        a.to_str().unwrap(),
        "--seed",
        "1",
        "--out",
        sched.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let text = std::fs::read_to_string(&sched).unwrap();
    assert!(text.contains("# scenario-hash "), "{text}");
    // Same scenario: replays.
    let out = gosim(&[
        "replay",
        a.to_str().unwrap(),
        "--schedule",
        sched.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    // Another scenario: refused.
    let out = gosim(&[
        "replay",
        b.to_str().unwrap(),
        "--schedule",
        sched.to_str().unwrap(),
    ]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("recorded for another scenario"), "{err}");
    // A schedule naming a goroutine the run never had: refused.
    let forged = dir.join("forged.schedule");
    let edited: String = text
        .lines()
        .filter(|l| !l.starts_with("# scenario-hash"))
        .map(|l| {
            if l.starts_with("P ") || l.starts_with("S ") {
                "P 2 g999\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&forged, edited).unwrap();
    let out = gosim(&[
        "replay",
        a.to_str().unwrap(),
        "--schedule",
        forged.to_str().unwrap(),
    ]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("g999"), "{err}");
}

#[test]
fn a_bom_or_a_shebang_line_is_accepted_and_lines_stay_right() {
    for src in [
        "\u{feff}-- a comment\nlog.info('bom')\nerror('here')\n",
        "#!/usr/bin/env gosim run\nlog.info('shebang')\nerror('here')\n",
        "\u{feff}#!/usr/bin/env gosim run\nlog.info('both')\nerror('here')\n",
    ] {
        let r = run(src);
        let msg = error_message(&r.outcome, src);
        assert!(msg.starts_with("t.lua:3: here"), "{msg}");
        assert_eq!(logs(&r).len(), 1);
    }
}

#[test]
fn limits_of_zero_are_refused_without_a_doubled_prefix() {
    let out = gosim(&["run", "scenarios/timers.lua", "--max-goroutines", "0"]);
    let err = stderr_of(&out);
    assert!(!err.contains("gosim: gosim:"), "{err}");
    let out = gosim(&["run", "/nonexistent/x.lua"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("gosim: gosim:"), "{err}");
}

#[test]
fn huge_spawns_end_with_the_goroutine_limit_not_a_stack_error() {
    for src in [
        "goroutine.spawn_many(520000, function() goroutine.sleep(1000) end)\n",
        "local p = goroutine.pool_create('p', {workers = 1e9})\n",
        "local ok = pcall(goroutine.spawn_many, 520000, function() goroutine.sleep(1000) end)\nlog.info('caught')\n",
    ] {
        let r = run_guarded(src, &RunOptions::with_seed(1));
        let l = expect_limit(&r, LimitKind::Goroutines, src);
        assert!(
            l.message.contains("300000 Lua goroutines") && !l.message.contains("out of Lua stack"),
            "{}",
            l.message
        );
        assert!(r.logs.is_empty(), "{:?}", r.logs);
        let shown = r.outcome.to_string();
        assert!(!shown.contains("raise it with"), "{shown}");
    }
}

#[test]
fn too_many_values_held_at_once_is_a_limit_not_an_error() {
    let src = "local ch = goroutine.channel(2e6)\nfor i = 1, 1.2e6 do ch:send({}) end\n";
    let r = run_guarded(src, &RunOptions::with_seed(1));
    let l = expect_limit(&r, LimitKind::Memory, src);
    assert!(l.message.contains("reference stack"), "{}", l.message);
}

#[test]
fn an_endless_sleep_names_the_call_and_the_line() {
    for src in [
        "goroutine.spawn(function() end)\ngoroutine.sleep(math.huge)\n",
        "goroutine.spawn(function() end)\ngoroutine.sleep(1e300)\n",
    ] {
        let r = run(src);
        let msg = error_message(&r.outcome, src);
        assert!(
            msg.starts_with("t.lua:2: goroutine.sleep: duration must be finite"),
            "{msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Smaller items
// ---------------------------------------------------------------------------------------------

#[test]
fn logs_with_bytes_that_are_not_utf8_are_escaped() {
    let src = "log.info('bad \\255\\254 bytes')\nprint('p \\255', 1)\nlog.warn('ok é')\nlog.table({k = 'v\\255'})\n";
    let r = run(src);
    expect_pass(&r, src);
    let text = r.trace_text();
    assert!(text.contains("log.info bad \\xFF\\xFE bytes"), "{text}");
    assert!(text.contains("p \\xFF\t1"), "{text}");
    assert!(text.contains("ok é"), "{text}");
    assert!(text.contains("\\xFF"), "{text}");
}

#[test]
fn error_nil_says_what_happened() {
    for src in ["error(nil)\n", "error()\n"] {
        let msg = error_message(&run(src).outcome, src);
        assert!(
            msg.starts_with("nil (an error raised with no message"),
            "{msg}"
        );
    }
}

#[test]
fn a_blocking_call_inside_tostring_names_the_call_and_cannot_be_caught() {
    for src in [
        "local ch = goroutine.channel(1)\nlocal t = setmetatable({}, {__tostring = function() ch:receive() return 'x' end})\ngoroutine.spawn(function() goroutine.sleep(1) ch:send(1) end)\nlocal s = tostring(t)\n",
        "local ch = goroutine.channel(1)\nlocal t = setmetatable({}, {__tostring = function() ch:receive() return 'x' end})\ngoroutine.spawn(function() goroutine.sleep(1) ch:send(1) end)\nlocal ok = pcall(tostring, t)\nlog.info('went on')\n",
        "local t = {3, 1, 2}\ngoroutine.spawn(function() end)\ntable.sort(t, function(a, b) goroutine.sleep(1) return a < b end)\n",
    ] {
        let r = run_guarded(src, &RunOptions::with_seed(1));
        let msg = error_message(&r.outcome, src);
        assert!(
            msg.contains("t.lua:2: a goroutine call (")
                || msg.contains("t.lua:3: a goroutine call ("),
            "{msg}\n{src}"
        );
        assert!(msg.contains("cannot switch goroutines here"), "{msg}");
        assert!(r.logs.is_empty(), "{:?}", r.logs);
    }
}

#[test]
fn a_stack_overflow_through_a_goroutine_call_names_the_line() {
    let src = "local ch = goroutine.channel(1)\nlocal function f(n)\n  ch:send(n)\n  ch:receive()\n  return f(n + 1) + 1\nend\nf(1)\n";
    let msg = error_message(&run(src).outcome, src);
    assert!(msg.starts_with("t.lua:"), "{msg}");
    assert!(msg.contains("stack overflow"), "{msg}");
    assert!(!msg.starts_with("?:-1"), "{msg}");
    // Caught by pcall, the message names the line too.
    let src = "local ch = goroutine.channel(1)\nlocal function f(n)\n  ch:send(n)\n  ch:receive()\n  return f(n + 1) + 1\nend\nlocal ok, e = pcall(f, 1)\nassert(not ok and e:find('^t.lua:%d+: stack overflow'), e)\n";
    expect_pass(&run(src), src);
}

// ---------------------------------------------------------------------------------------------
// 5. The memory limit bounds the whole run
// ---------------------------------------------------------------------------------------------

#[test]
fn the_memory_limit_counts_the_rust_side_of_a_run() {
    gosim::lua::set_memory_probe(counting::current);
    const MB: usize = 1024 * 1024;
    for src in [
        // Channels: a small userdata in the Lua heap, the queue and its name on the Rust side.
        "local ch = goroutine.channel()\nlocal outs = goroutine.fan_out(ch, 1e9)\n",
        // Goroutines parked on timers: tasks and timers on the Rust side.
        "while true do goroutine.spawn(function() goroutine.sleep(1000) end) end\n",
    ] {
        let (tx, rx) = mpsc::channel();
        let source = src.to_string();
        std::thread::spawn(move || {
            let mut opts = with_lua(|l| l.max_memory = 32 * MB);
            opts.config.trace = false;
            counting::reset_peak();
            let start = counting::current();
            let r = try_run(&source, &opts).map(|r| r.outcome);
            let _ = tx.send((r, counting::peak() - start));
        });
        let (outcome, peak) = rx.recv_timeout(Duration::from_secs(120)).expect("no hang");
        let outcome = outcome.unwrap();
        match &outcome {
            Outcome::Limit(l) if l.kind == LimitKind::Memory => {}
            other => panic!("expected the memory limit, got {other}\n{src}"),
        }
        // The documented margin: what one step allocates past the limit, at most the limit again.
        assert!(
            peak < 2 * 32 * MB as i64,
            "the run reached {} MB with a 32 MB limit\n{src}",
            peak / MB as i64
        );
    }
}

#[test]
fn the_binary_bounds_the_whole_run_in_run_and_explore() {
    let dir = temp_dir("memory");
    let path = dir.join("fan_out.lua");
    std::fs::write(
        &path,
        "local ch = goroutine.channel()\nlocal outs = goroutine.fan_out(ch, 1e9)\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let out = gosim(&["run", p, "--max-memory", "32", "--trace", "none"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("the run's memory"), "{err}");
    let out = gosim(&[
        "explore",
        p,
        "--runs",
        "2",
        "--jobs",
        "2",
        "--max-memory",
        "32",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("the run's memory"), "{stdout}");
}

#[test]
fn virtual_dates_out_of_range_are_errors_not_overflows() {
    let src = r#"
local ok, e = pcall(function() local t = os.time{year = 1e18, month = 1, day = 1} return t end)
assert(not ok and e:find("t.lua:2: os.time: field 'year' is out%-of%-bound"), e)
ok, e = pcall(os.time, {year = 2000, month = 1e18, day = 1, hour = 1e18})
assert(not ok and e:find("out%-of%-bound"), e)
ok, e = pcall(os.time, {year = 2000})
assert(not ok and e:find("field 'month' missing"), e)
ok, e = pcall(os.date, "%Y", 1e17)
assert(not ok and e:find("os.date: time must be an integer"), e)
ok, e = pcall(os.date, {})
assert(not ok and e:find("os.date: format must be a string"), e)
assert(os.time{year = 2000, month = 13, day = 1, hour = 0} == os.time{year = 2001, month = 1, day = 1, hour = 0})
assert(os.time{year = 2000, month = 1, day = 1, hour = 0} == 946684800)
assert(os.date("!%Y-%m-%d", 253402300799) == "9999-12-31")
"#;
    expect_pass(&run(src), src);
}

#[test]
fn a_looping_close_handler_cannot_hang_a_run_after_a_limit() {
    // The hook's error unwinds the interrupted function from inside the hook (hooks off there):
    // a __close that loops would never be stopped.
    for src in [
        "local x <close> = setmetatable({}, {__close = function() while true do end end})\nwhile true do end\n",
        "goroutine.spawn(function()\n  local x <close> = setmetatable({}, {__close = function() while true do end end})\n  while true do end\nend)\ngoroutine.sleep(1)\n",
        "local x <close> = setmetatable({}, {__close = function() while true do end end})\nerror('x')\n",
    ] {
        let r = run_guarded(src, &with_lua(|l| l.max_instructions = 100_000));
        assert!(
            matches!(r.outcome, Outcome::Limit(_)),
            "{}\n{src}",
            r.outcome
        );
    }
    // An ordinary __close still runs.
    let src = "do\n  local x <close> = setmetatable({}, {__close = function(_, e) log.info('closed ' .. tostring(e)) end})\nend\nlog.info('after')\n";
    let r = run(src);
    expect_pass(&r, src);
    assert_eq!(
        logs(&r),
        vec!["closed nil".to_string(), "after".to_string()]
    );
}
