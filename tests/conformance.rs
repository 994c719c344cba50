//! Conformance suite: the original `goroutine` module's Go tests, ported to gosim.
//!
//! Source: `internal/modules/core/goroutine_test.go` of
//! <https://github.com/chalkan3-sloth/sloth-runner>, read at commit
//! `7abd878c1223a7ccc57104f11218c3a16c08969b` (2025-10-21; the file last
//! changed in `e7fd9836578f740edfb425c1164f06f2d6d2904f`).
//! It has 41 Go tests that embed Lua scripts; each has one `#[test]` here with the same name in
//! snake_case. No Go code is copied: each test ports the *intent* of its original as a Lua
//! scenario, run under seeds 1..=20, so every assertion must hold for every interleaving.
//!
//! How the port adapts the original to deterministic semantics (lua-api.md, harness.md):
//!
//! - Virtual time is exact. "elapsed >= 100ms" becomes `goroutine.now() == 100`, and the
//!   originals' "sleep a bit and hope the goroutines ran" becomes an exact check of when things
//!   happen (a wait group released at `now() == 30`, a pool done at `now() == 30`, ...).
//! - Nondeterministic interleavings become assertions that hold under every seed: exact counts,
//!   multisets instead of orders where the order is free (fan-in, pipelines with several
//!   workers), per-source order where it is fixed, "max concurrency == capacity" instead of
//!   "<= capacity".
//! - Vacuous originals (`completed >= 0`, "succeeded or timed out") get real assertions, and the
//!   error paths the originals could not reach (a real timeout, a closed pool, a blocked sender
//!   on a closing channel) are asserted with their exact shapes (`nil, "pool is closed"`, ...).
//! - Tests that inspected Go internals (`module.pools`, `Info()`, `Cleanup()`, pushing tasks
//!   into `pool.tasks`) are ported through the Lua API and the harness: `pool_stats`, the
//!   module tables, `pool_close`, and the end-of-run leak check (a pool left open leaks its
//!   workers, asserted from Rust).
//! - Bugs of the original fixed on purpose by the contract are asserted in their fixed form:
//!   `select` blocks and fires exactly one case; `context()` returns `ctx, cancel`;
//!   `pool_close` is idempotent, also after `pool_wait`; a sender blocked on a channel that
//!   closes gets `false, "send on closed channel"`; `once` callers wait for the first call.
//! - Every script lets its goroutines finish (closes channels, waits for pools), since a
//!   goroutine still alive at the end of a run is a leak and fails the run.
//! - Seed 1 of every scenario is also run twice, and the two traces must be identical.

use gosim::runtime::{FailureKind, Outcome};
use gosim::scenario::{RunOptions, RunReport, run_source};

/// Seeds every scenario runs under.
const SEEDS: std::ops::RangeInclusive<u64> = 1..=20;

/// Lua helpers put in front of every script, joined into one line so that line numbers in
/// messages are those of the script literals below.
const LUA_HELPERS: &str = r#"
local function fmt(t)
  if type(t) ~= "table" then return tostring(t) end
  local parts = {}
  for i = 1, (t.n or #t) do parts[#parts + 1] = tostring(t[i]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
local function same_list(got, want, what)
  local msg = what .. ": got " .. fmt(got) .. ", want " .. fmt(want)
  assert(#got == #want, msg)
  for i = 1, #want do assert(got[i] == want[i], msg) end
end
local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end
local function now_is(ms, what)
  local t = goroutine.now()
  assert(t == ms, what .. ": now() = " .. tostring(t) .. ", want " .. tostring(ms))
end
local function expect_error(f, needle)
  local ok, err = pcall(f)
  assert(not ok, "expected an error mentioning '" .. needle .. "', but the call succeeded")
  assert(type(err) == "string" and string.find(err, needle, 1, true),
    "error should mention '" .. needle .. "', got: " .. tostring(err))
  return err
end
local function submit_retry(pool, f, ...)
  while true do
    local id, err = goroutine.pool_submit(pool, f, ...)
    if id then return id end
    assert(err == "pool queue is full", "unexpected pool_submit error: " .. tostring(err))
    goroutine.yield()
  end
end
"#;

fn options(seed: u64, trace: bool) -> RunOptions {
    let mut o = RunOptions::with_seed(seed);
    o.config.trace = trace;
    // Generous for these scripts, but small enough that a hang shows up as a limit quickly.
    o.config.max_steps = 5_000_000;
    o.config.max_time = std::time::Duration::from_secs(3_600);
    o
}

fn run(name: &str, src: &str, seed: u64, trace: bool) -> RunReport {
    let source = format!("{}{src}", LUA_HELPERS.replace('\n', " "));
    run_source(name, &source, &options(seed, trace))
        .unwrap_or_else(|e| panic!("{name}: load error: {e}"))
}

/// Runs `src` under every seed; each run must pass. Also checks that one seed replays to the
/// same trace. Returns the reports for further checks.
fn check(name: &str, src: &str) -> Vec<RunReport> {
    let mut reports = Vec::new();
    for seed in SEEDS {
        let r = run(name, src, seed, false);
        if !r.outcome.is_pass() {
            let traced = run(name, src, seed, true);
            panic!(
                "{name}: seed {seed}: {}\n--- trace ---\n{}",
                traced.outcome,
                traced.trace_text()
            );
        }
        reports.push(r);
    }
    let a = run(name, src, 1, true);
    let b = run(name, src, 1, true);
    assert_eq!(
        a.trace_hash(),
        b.trace_hash(),
        "{name}: seed 1 gave two different traces"
    );
    reports
}

/// Runs `src` under every seed; each run must fail with `kind`. Returns the reports.
fn check_fails(name: &str, src: &str, kind: FailureKind) -> Vec<RunReport> {
    SEEDS
        .map(|seed| {
            let r = run(name, src, seed, false);
            match &r.outcome {
                Outcome::Fail(f) if f.kind == kind => r,
                other => {
                    let traced = run(name, src, seed, true);
                    panic!(
                        "{name}: seed {seed}: expected a {} failure, got {other}\n--- trace ---\n{}",
                        kind.word(),
                        traced.trace_text()
                    )
                }
            }
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Module, loader, info
// ------------------------------------------------------------------------------------------

#[test]
fn test_new_goroutine_module() {
    check(
        "new_goroutine_module.lua",
        r#"
assert(type(goroutine) == "table", "the goroutine module is a global table")
assert(require("goroutine") == goroutine, "require('goroutine') returns the global table")
assert(type(log) == "table" and require("log") == log, "log is a global and a module")
assert(type(sim) == "table" and require("sim") == sim, "sim is a global and a module")

-- the pool registry starts empty
assert(goroutine.pool_stats("test_pool") == nil, "no pool before pool_create")
assert(goroutine.pool_close("test_pool") == false, "closing an unknown pool gives false")
local ok, err = goroutine.pool_wait("test_pool")
assert(ok == false and err == "pool not found: test_pool", "pool_wait on unknown pool: " .. tostring(err))

-- the background context: not cancelled, no deadline
local ctx, cancel = goroutine.context()
assert(ctx ~= nil, "context() returns a context")
assert(type(cancel) == "function", "context() also returns its cancel function")
assert(ctx:is_cancelled() == false, "a new context is not cancelled")
assert(ctx:err() == nil, "a new context has no error")
local dl, has = ctx:deadline()
assert(dl == nil and has == false, "the background context has no deadline")
cancel()

-- the clock starts at 0
now_is(0, "start of the run")
"#,
    );
}

#[test]
fn test_goroutine_module_loader() {
    check(
        "goroutine_module_loader.lua",
        r#"
local g = require("goroutine")
local existing = {
  "spawn", "spawn_many", "wait_group", "pool_create", "pool_submit", "pool_wait", "pool_close",
  "pool_stats", "async", "await", "await_all", "sleep", "timeout", "channel", "channel_send",
  "channel_receive", "channel_close", "channel_len", "channel_cap", "select", "select_timeout",
  "mutex", "rwmutex", "semaphore", "atomic_int", "once", "cond", "context", "pipeline", "fan_out",
  "fan_in",
}
assert(#existing == 31, "the original module registers 31 functions")
for _, name in ipairs(existing) do
  assert(type(g[name]) == "function", "goroutine." .. name .. " function not found")
end
local additions = { "now", "id", "name", "yield", "after", "timer", "ticker", "after_func" }
for _, name in ipairs(additions) do
  assert(type(g[name]) == "function", "goroutine." .. name .. " (harness addition) not found")
end
assert(g.NIL ~= nil, "goroutine.NIL exists")
for _, name in ipairs({ "info", "warn", "error", "debug", "print", "table" }) do
  assert(type(log[name]) == "function", "log." .. name .. " not found")
end
for _, name in ipairs({ "seed", "is_simulated", "random", "buggify", "assert_always", "assert_sometimes" }) do
  assert(type(sim[name]) == "function", "sim." .. name .. " not found")
end
"#,
    );
}

#[test]
fn test_goroutine_module_info() {
    // The original checked the Go module's name, category and version. Its Lua-visible
    // counterpart: the module's identity, the run it is in (simulated, its seed) and the main
    // goroutine (id 1, named "main").
    let src = r#"
assert(require("goroutine") == goroutine, "the module is registered as 'goroutine'")
assert(sim.is_simulated() == true, "runs are simulated")
assert(sim.seed() == EXPECTED_SEED, "sim.seed() = " .. tostring(sim.seed()) .. ", want " .. EXPECTED_SEED)
assert(math.type(sim.seed()) == "integer", "the seed is an integer")
assert(goroutine.id() == 1, "main is goroutine 1, got " .. tostring(goroutine.id()))
assert(math.type(goroutine.id()) == "integer", "ids are integers")
assert(goroutine.name() == "main", "main is named 'main', got " .. tostring(goroutine.name()))
goroutine.name("entry")
assert(goroutine.name() == "entry", "name(new) renames the goroutine")
"#;
    for seed in SEEDS {
        let script = format!("local EXPECTED_SEED = {seed}{src}");
        let r = run("goroutine_module_info.lua", &script, seed, true);
        assert!(
            r.outcome.is_pass(),
            "seed {seed}: {}\n{}",
            r.outcome,
            r.trace_text()
        );
    }
}

// ------------------------------------------------------------------------------------------
// Goroutines, wait groups, sleep
// ------------------------------------------------------------------------------------------

#[test]
fn test_goroutine_spawn() {
    let reports = check(
        "goroutine_spawn.lua",
        r#"
local ch = goroutine.channel()
local id = goroutine.spawn(function(a, b)
  ch:send({ id = goroutine.id(), sum = a + b })
end, 20, 22)
assert(math.type(id) == "integer", "spawn returns an integer id, got " .. tostring(id))
assert(id ~= goroutine.id(), "the new goroutine has its own id")
local msg = ch:receive()
assert(msg.id == id, "goroutine.id() inside is the id spawn returned")
assert(msg.sum == 42, "extra arguments are passed to fn")

-- table form: name and args
local id2 = goroutine.spawn({ name = "worker", fn = function(x) ch:send(goroutine.name() .. ":" .. x) end, args = { 7 } })
assert(math.type(id2) == "integer" and id2 ~= id, "ids are distinct")
local v = ch:receive()
assert(v == "worker:7", "table form: got " .. tostring(v))

-- as in the original: spawn and do not wait. The goroutine still runs (after main returned);
-- checked from Rust.
goroutine.spawn(function()
  goroutine.sleep(5)
  sim.assert_sometimes(true, "detached goroutine ran")
end)
"#,
    );
    for r in &reports {
        assert_eq!(
            r.sometimes.get("detached goroutine ran"),
            Some(&true),
            "seed {}: the detached goroutine did not run to its end",
            r.seed
        );
        assert_eq!(
            r.stats.spawned, 4,
            "seed {}: main plus three goroutines",
            r.seed
        );
    }

    // An uncaught error in a spawned goroutine fails the run, naming the goroutine.
    let failed = check_fails(
        "goroutine_spawn_error.lua",
        r#"
goroutine.spawn({ name = "bad", fn = function() error("kaboom") end })
"#,
        FailureKind::Error,
    );
    for r in &failed {
        let Outcome::Fail(f) = &r.outcome else {
            unreachable!()
        };
        assert!(
            f.message.contains("kaboom"),
            "seed {}: message {:?}",
            r.seed,
            f.message
        );
        let (tid, tname) = f.task.clone().expect("the failing goroutine is named");
        assert_eq!(tid.0, 2, "seed {}: the failing goroutine is g2", r.seed);
        assert_eq!(tname.as_deref(), Some("bad"), "seed {}", r.seed);
    }
}

#[test]
fn test_goroutine_spawn_many() {
    check(
        "goroutine_spawn_many.lua",
        r#"
local seen, count = {}, 0
local wg = goroutine.wait_group()
wg:add(5)
local r = table.pack(goroutine.spawn_many(5, function(id)
  assert(math.type(id) == "integer", "each goroutine gets an integer id")
  seen[id] = (seen[id] or 0) + 1
  count = count + 1
  wg:done()
end))
assert(r.n == 0, "spawn_many returns nothing")
wg:wait()
assert(count == 5, "five goroutines ran, got " .. count)
for i = 1, 5 do
  assert(seen[i] == 1, "id " .. i .. " was given exactly once, got " .. tostring(seen[i]))
end
assert(seen[0] == nil and seen[6] == nil, "ids are 1..5")

goroutine.spawn_many(0, function() error("spawn_many(0) must start nothing") end)
"#,
    );
}

#[test]
fn test_goroutine_wait_group() {
    check(
        "goroutine_wait_group.lua",
        r#"
local wg = goroutine.wait_group()
assert(wg ~= nil, "WaitGroup should be created")
wg:add(1)
wg:done()
wg:wait()
now_is(0, "wait on a zero counter returns at once")

-- wait blocks until the last done(); add() defaults to 1
local finished = {}
for _, d in ipairs({ 30, 10, 20 }) do
  wg:add()
  goroutine.spawn(function()
    goroutine.sleep(d)
    finished[#finished + 1] = d
    wg:done()
  end)
end
wg:wait()
now_is(30, "wait returns when the last goroutine calls done")
same_list(finished, { 10, 20, 30 }, "done order")

-- several waiters are all released
wg:add(1)
local released = 0
local waiters = goroutine.wait_group()
for _ = 1, 3 do
  waiters:add(1)
  goroutine.spawn(function()
    wg:wait()
    released = released + 1
    waiters:done()
  end)
end
goroutine.sleep(10)
assert(released == 0, "waiters block while the counter is 1")
wg:done()
waiters:wait()
assert(released == 3, "all waiters released, got " .. released)
now_is(40, "released at the instant of done")

-- misuse: a negative counter is a Lua error naming the call, and the wait group survives it
expect_error(function() wg:done() end, "done")
expect_error(function() wg:add(-1) end, "add")
wg:wait()
now_is(40, "the counter is still 0 after the misuse")
"#,
    );
}

#[test]
fn test_goroutine_sleep() {
    check(
        "goroutine_sleep.lua",
        r#"
now_is(0, "start")
goroutine.sleep(100)
now_is(100, "sleep(100) takes exactly 100ms of virtual time")
goroutine.sleep(0)
now_is(100, "sleep(0) does not advance the clock")
goroutine.sleep(-5)
now_is(100, "a negative duration counts as 0")

-- concurrent sleepers overlap and wake at their exact instants, in deadline order
local woke = {}
local wg = goroutine.wait_group()
for _, d in ipairs({ 30, 10, 20 }) do
  wg:add()
  goroutine.spawn(function()
    goroutine.sleep(d)
    woke[#woke + 1] = d .. "@" .. goroutine.now()
    wg:done()
  end)
end
wg:wait()
same_list(woke, { "10@110", "20@120", "30@130" }, "wake order")
now_is(130, "three concurrent sleeps take as long as the longest")

goroutine.sleep(0.5)
now_is(130.5, "fractional milliseconds")
"#,
    );
}

// ------------------------------------------------------------------------------------------
// Pools
// ------------------------------------------------------------------------------------------

#[test]
fn test_goroutine_pool_create() {
    check(
        "goroutine_pool_create.lua",
        r#"
local success = goroutine.pool_create("test_pool", { workers = 4 })
assert(success == true, "pool_create returns true")
local s = goroutine.pool_stats("test_pool")
assert(s ~= nil and s.name == "test_pool", "the pool exists")
assert(s.workers == 4 and math.type(s.workers) == "integer", "4 workers, got " .. tostring(s.workers))

-- workers default to 4
assert(goroutine.pool_create("default_pool") == true, "pool_create without options")
assert(goroutine.pool_stats("default_pool").workers == 4, "default is 4 workers")

-- creating a pool with an existing name replaces it
assert(goroutine.pool_create("test_pool", { workers = 2 }) == true, "re-create returns true")
assert(goroutine.pool_stats("test_pool").workers == 2, "the new pool replaced the old one")
local ran = 0
for _ = 1, 3 do
  assert(goroutine.pool_submit("test_pool", function() ran = ran + 1 end), "the new pool takes tasks")
end
assert(goroutine.pool_wait("test_pool") == true, "pool_wait")
assert(ran == 3, "the new pool ran the tasks, got " .. ran)
assert(goroutine.pool_stats("test_pool").completed == 3, "completed counts the new pool's tasks only")

expect_error(function() goroutine.pool_create(42) end, "goroutine.pool_create")

assert(goroutine.pool_close("test_pool") == true, "close test_pool")
assert(goroutine.pool_close("default_pool") == true, "close default_pool")
"#,
    );
}

#[test]
fn test_goroutine_pool_submit() {
    check(
        "goroutine_pool_submit.lua",
        r#"
goroutine.pool_create("test_pool", { workers = 2 })
local got = {}
local id, err = goroutine.pool_submit("test_pool", function(a, b) got[#got + 1] = a + b end, 1, 2)
assert(id ~= nil, "task id should be returned, got error " .. tostring(err))
assert(err == nil, "no error expected")
assert(type(id) == "string" and id:sub(1, #"test_pool-") == "test_pool-", "task id names the pool: " .. tostring(id))
local ids = { [id] = true }
goroutine.sleep(1)
same_list(got, { 3 }, "the task ran with its arguments")

-- occupy both workers, then fill the queue: it holds workers*2 = 4 tasks
local gate = goroutine.channel()
for _ = 1, 2 do
  local tid = assert(goroutine.pool_submit("test_pool", function() gate:receive() end))
  ids[tid] = true
end
goroutine.sleep(1)
assert(goroutine.pool_stats("test_pool").active == 2, "both workers busy")
for i = 1, 4 do
  local tid, e = goroutine.pool_submit("test_pool", function() gate:receive() end)
  assert(tid, "submit " .. i .. " fits in the queue: " .. tostring(e))
  assert(not ids[tid], "task ids are unique: " .. tid)
  ids[tid] = true
end
local t0 = goroutine.now()
local fid, ferr = goroutine.pool_submit("test_pool", function() end)
assert(fid == nil and ferr == "pool queue is full", "full queue: got " .. tostring(fid) .. ", " .. tostring(ferr))
now_is(t0, "submit never blocks")
assert(goroutine.pool_stats("test_pool").queued == 4, "4 tasks queued")

local nid, nerr = goroutine.pool_submit("nope", function() end)
assert(nid == nil and nerr == "pool not found: nope", "unknown pool: " .. tostring(nerr))

gate:close()
assert(goroutine.pool_wait("test_pool") == true, "pool_wait")
local cid, cerr = goroutine.pool_submit("test_pool", function() end)
assert(cid == nil and cerr == "pool is closed", "submit after pool_wait: " .. tostring(cerr))
local s = goroutine.pool_stats("test_pool")
assert(s.completed == 7 and s.failed == 0 and s.active == 0 and s.queued == 0,
  "7 tasks completed, got completed=" .. s.completed .. " failed=" .. s.failed)
goroutine.pool_close("test_pool")
"#,
    );
}

#[test]
fn test_goroutine_pool_stats() {
    check(
        "goroutine_pool_stats.lua",
        r#"
goroutine.pool_create("test_pool", { workers = 3 })
local stats = goroutine.pool_stats("test_pool")
assert(stats ~= nil, "stats should be returned")
assert(stats.name == "test_pool", "pool name should match")
assert(stats.workers == 3, "workers count should match")
for _, k in ipairs({ "active", "completed", "failed", "queued" }) do
  assert(stats[k] == 0 and math.type(stats[k]) == "integer", k .. " starts at integer 0, got " .. tostring(stats[k]))
end

-- active counts running tasks, failed counts tasks that raised
local gate = goroutine.channel()
for _ = 1, 2 do goroutine.pool_submit("test_pool", function() gate:receive() end) end
goroutine.pool_submit("test_pool", function() error("task failed on purpose") end)
goroutine.sleep(1)
stats = goroutine.pool_stats("test_pool")
assert(stats.active == 2, "2 tasks running, got " .. stats.active)
assert(stats.failed == 1, "1 task failed, got " .. stats.failed)
assert(stats.completed == 0, "none completed yet, got " .. stats.completed)
gate:close()
goroutine.pool_wait("test_pool")
stats = goroutine.pool_stats("test_pool")
assert(stats.active == 0 and stats.completed == 2 and stats.failed == 1 and stats.queued == 0,
  "final: active=" .. stats.active .. " completed=" .. stats.completed .. " failed=" .. stats.failed)

assert(goroutine.pool_stats("missing") == nil, "no stats for an unknown pool")
goroutine.pool_close("test_pool")
"#,
    );
}

#[test]
fn test_goroutine_pool_close() {
    check(
        "goroutine_pool_close.lua",
        r#"
goroutine.pool_create("test_pool", { workers = 2 })
local success = goroutine.pool_close("test_pool")
assert(success == true, "pool should be closed")
success = goroutine.pool_close("test_pool")
assert(success == false, "closing a removed pool returns false")
assert(goroutine.pool_stats("test_pool") == nil, "the pool is removed")
local id, err = goroutine.pool_submit("test_pool", function() end)
assert(id == nil and err == "pool not found: test_pool", "submit after close: " .. tostring(err))

-- idempotent after pool_wait (the Go original panicked: close of a closed channel)
goroutine.pool_create("waited", { workers = 2 })
local ran = 0
goroutine.pool_submit("waited", function() goroutine.sleep(10) ran = ran + 1 end)
assert(goroutine.pool_wait("waited") == true, "pool_wait")
now_is(10, "pool_wait returns when the task is done")
assert(ran == 1, "the task ran")
assert(goroutine.pool_stats("waited") ~= nil, "a waited pool still has stats")
assert(goroutine.pool_close("waited") == true, "pool_close after pool_wait")
assert(goroutine.pool_close("waited") == false, "and again")
local ok, werr = goroutine.pool_wait("waited")
assert(ok == false and werr == "pool not found: waited", "pool_wait after close: " .. tostring(werr))

-- the name can be reused
assert(goroutine.pool_create("test_pool", { workers = 1 }) == true, "re-create after close")
assert(goroutine.pool_wait("test_pool") == true, "wait the new pool")
assert(goroutine.pool_close("test_pool") == true, "close the new pool")
"#,
    );
}

#[test]
fn test_goroutine_pool_worker_execution() {
    check(
        "goroutine_pool_worker_execution.lua",
        r#"
goroutine.pool_create("worker_test", { workers = 2 })
local running, max_running, done, last = 0, 0, 0, nil
local function task()
  running = running + 1
  if running > max_running then max_running = running end
  goroutine.sleep(10)
  running = running - 1
  done = done + 1
  last = goroutine.now()
end
for _ = 1, 5 do submit_retry("worker_test", task) end
now_is(0, "all five tasks submitted at once")

goroutine.sleep(200)
local stats = goroutine.pool_stats("worker_test")
assert(stats.completed == 5, "all 5 tasks completed, got " .. stats.completed)
assert(done == 5, "5 task bodies ran, got " .. done)
assert(max_running == 2, "exactly 2 workers ran in parallel, got " .. max_running)
assert(last == 30, "5 tasks of 10ms on 2 workers end at 30ms, got " .. tostring(last))
assert(stats.active == 0 and stats.queued == 0, "the pool is idle")
assert(goroutine.pool_wait("worker_test") == true, "pool_wait")
goroutine.pool_close("worker_test")
"#,
    );
}

#[test]
fn test_goroutine_module_cleanup() {
    const CREATE: &str = r#"
goroutine.pool_create("pool1", { workers = 2 })
goroutine.pool_create("pool2", { workers = 3 })
goroutine.pool_create("pool3", { workers = 4 })
local total = 0
for i, w in ipairs({ 2, 3, 4 }) do
  local s = goroutine.pool_stats("pool" .. i)
  assert(s ~= nil and s.workers == w, "pool" .. i .. " has " .. w .. " workers")
  total = total + s.workers
end
assert(total == 9, "3 pools, 9 workers")
"#;
    const CLEANUP: &str = r#"
for i = 1, 3 do assert(goroutine.pool_close("pool" .. i) == true, "close pool" .. i) end
for i = 1, 3 do assert(goroutine.pool_stats("pool" .. i) == nil, "pool" .. i .. " removed") end
-- the end-of-run leak check verifies that all 9 workers exited
"#;
    check(
        "goroutine_module_cleanup.lua",
        &format!("{CREATE}{CLEANUP}"),
    );

    // Without the cleanup, the 9 workers are still blocked on their queues: a leak.
    for r in check_fails("goroutine_module_no_cleanup.lua", CREATE, FailureKind::Leak) {
        let Outcome::Fail(f) = &r.outcome else {
            unreachable!()
        };
        assert_eq!(
            f.stuck.len(),
            9,
            "seed {}: 9 leaked workers, got {}",
            r.seed,
            r.outcome
        );
    }
}

#[test]
fn test_goroutine_pool_task_execution() {
    check(
        "goroutine_pool_task_execution.lua",
        r#"
goroutine.pool_create("test", { workers = 2 })
local counter, sum = 0, 0
for i = 1, 10 do
  submit_retry("test", function(n) counter = counter + 1 sum = sum + n end, i)
end
assert(goroutine.pool_wait("test") == true, "pool_wait drains the queue")
assert(counter == 10, "expected 10 tasks to execute, got " .. counter)
assert(sum == 55, "each task got its argument, sum " .. sum)
local s = goroutine.pool_stats("test")
assert(s.completed == 10, "expected 10 completed tasks, got " .. s.completed)
assert(s.failed == 0 and s.active == 0 and s.queued == 0, "nothing failed, running or queued")
goroutine.pool_close("test")
"#,
    );
}

// ------------------------------------------------------------------------------------------
// async / await / timeout
// ------------------------------------------------------------------------------------------

#[test]
fn test_goroutine_async() {
    check(
        "goroutine_async.lua",
        r#"
local ran = false
local handle = goroutine.async(function()
  ran = true
  return "result"
end)
assert(handle ~= nil, "handle should be returned")
goroutine.sleep(1)
assert(ran == true, "async starts fn at once, without await")
local ok, v = goroutine.await(handle)
assert(ok == true and v == "result", "await gives the result")

-- async functions run concurrently with each other and with the caller
local h1 = goroutine.async(function() goroutine.sleep(50) return goroutine.now() end)
local h2 = goroutine.async(function() goroutine.sleep(30) return goroutine.now() end)
local _, t1 = goroutine.await(h1)
local _, t2 = goroutine.await(h2)
assert(t1 == 51 and t2 == 31, "ends at 51 and 31, got " .. tostring(t1) .. ", " .. tostring(t2))
now_is(51, "two async sleeps overlap")
"#,
    );
}

#[test]
fn test_goroutine_await() {
    check(
        "goroutine_await.lua",
        r#"
local handle = goroutine.async(function() return "test_result" end)
local success, result = goroutine.await(handle)
assert(success == true, "async should succeed")
assert(result == "test_result", "result should match")

-- all return values, nil included; await blocks until fn ends
local h = goroutine.async(function() goroutine.sleep(25) return 1, nil, 3 end)
local r = table.pack(goroutine.await(h))
assert(r.n == 4 and r[1] == true and r[2] == 1 and r[3] == nil and r[4] == 3, "await returns true, 1, nil, 3")
now_is(25, "await returns when fn ends")

-- a handle may be awaited again (cached result)
local r2 = table.pack(goroutine.await(h))
assert(r2.n == 4 and r2[1] == true and r2[2] == 1 and r2[4] == 3, "second await gives the same results")
now_is(25, "a cached await does not block")

-- several goroutines may await one handle
local shared = goroutine.async(function() goroutine.sleep(10) return "shared" end)
local wg = goroutine.wait_group()
local got = {}
for _ = 1, 3 do
  wg:add()
  goroutine.spawn(function()
    local ok, v = goroutine.await(shared)
    assert(ok, "await in a goroutine")
    got[#got + 1] = v .. "@" .. goroutine.now()
    wg:done()
  end)
end
wg:wait()
same_list(got, { "shared@35", "shared@35", "shared@35" }, "all awaiters get the result when it is ready")

expect_error(function() goroutine.await(42) end, "goroutine.await")
"#,
    );
}

#[test]
fn test_goroutine_await_all() {
    check(
        "goroutine_await_all.lua",
        r#"
local h1 = goroutine.async(function() goroutine.sleep(30) return 1 end)
local h2 = goroutine.async(function() goroutine.sleep(10) return 2 end)
local h3 = goroutine.async(function() goroutine.sleep(20) return 3 end)
local results = goroutine.await_all({ h1, h2, h3 })
assert(#results == 3, "should have 3 results, got " .. #results)
now_is(30, "await_all returns when the slowest ends")
for i, result in ipairs(results) do
  assert(result.success == true, "result " .. i .. " should succeed")
  assert(#result.values == 1 and result.values[1] == i, "results in table order: result " .. i .. " = " .. fmt(result.values))
end

-- failures are entries, not errors
local ok_h = goroutine.async(function() return "a", "b" end)
local bad_h = goroutine.async(function() error("second failed") end)
local mixed = goroutine.await_all({ ok_h, bad_h })
assert(#mixed == 2, "two entries")
assert(mixed[1].success == true, "first succeeds")
same_list(mixed[1].values, { "a", "b" }, "first values")
assert(mixed[2].success == false, "second fails")
assert(type(mixed[2].error) == "string" and mixed[2].error:find("second failed", 1, true),
  "second carries its error: " .. tostring(mixed[2].error))

assert(#goroutine.await_all({}) == 0, "await_all of nothing is empty")
"#,
    );
}

#[test]
fn test_goroutine_async_error() {
    check(
        "goroutine_async_error.lua",
        r#"
local handle = goroutine.async(function()
  error("test error")
end)
local success, err = goroutine.await(handle)
assert(success == false, "should fail")
assert(type(err) == "string" and err:find("test error", 1, true), "error message should be present: " .. tostring(err))
local s2, e2 = goroutine.await(handle)
assert(s2 == false and e2 == err, "awaiting again gives the same error")

-- an error raised after blocking
local late = goroutine.async(function()
  goroutine.sleep(5)
  error("late failure")
end)
local ok, lerr = goroutine.await(late)
assert(ok == false and lerr:find("late failure", 1, true), "late error: " .. tostring(lerr))
now_is(5, "await returns when the failing fn ends")
-- (the run passing checks that an awaited error is not a run failure)
"#,
    );
}

#[test]
fn test_goroutine_timeout() {
    check(
        "goroutine_timeout.lua",
        r#"
local success, result = goroutine.timeout(1000, function()
  return "quick"
end)
assert(success == true, "should succeed within timeout")
assert(result == "quick", "result should match")
now_is(0, "a quick fn does not wait for the timeout")

local r = table.pack(goroutine.timeout(1000, function()
  goroutine.sleep(200)
  return 1, 2
end))
assert(r.n == 3 and r[1] == true and r[2] == 1 and r[3] == 2, "all results returned: " .. fmt(r))
now_is(200, "timeout returns when fn ends")

local ok, err = goroutine.timeout(1000, function() error("inner failure") end)
assert(ok == false and type(err) == "string" and err:find("inner failure", 1, true), "error shape: " .. tostring(err))
now_is(200, "an error returns at once")
"#,
    );
}

#[test]
fn test_goroutine_timeout_exceeded() {
    check(
        "goroutine_timeout_exceeded.lua",
        r#"
local finished_at = nil
local done = goroutine.channel(1)
local success, err = goroutine.timeout(10, function()
  goroutine.sleep(1000)
  finished_at = goroutine.now()
  done:send(true)
  return "late"
end)
assert(success == false, "should time out")
assert(err == "timeout exceeded", "timeout message, got " .. tostring(err))
now_is(10, "timeout returns exactly at the timeout")
assert(finished_at == nil, "fn has not finished yet")

-- no preemption: fn keeps running to its end
assert(done:receive() == true, "fn completes after the timeout")
now_is(1000, "fn ends at 1000")
assert(finished_at == 1000, "fn ran to its end")

-- the original's shape: a quick fn under a short timeout succeeds
local ok, v = goroutine.timeout(10, function() return "result" end)
assert(ok == true and v == "result", "quick fn within 10ms")
now_is(1000, "no waiting")
"#,
    );
}

// ------------------------------------------------------------------------------------------
// Channels
// ------------------------------------------------------------------------------------------

#[test]
fn test_goroutine_channel() {
    check(
        "goroutine_channel.lua",
        r#"
local ch = goroutine.channel(5)
assert(ch ~= nil, "channel should be created")
local sent, serr = ch:send(42)
assert(sent == true and serr == nil, "should send successfully")
local value, ok = ch:receive()
assert(ok == true, "should receive successfully")
assert(value == 42, "value should match")

-- nil is a value; tables are shared, not copied
assert(ch:send(nil) == true, "nil can be sent")
local nv, nok = ch:receive()
assert(nv == nil and nok == true, "nil arrives as nil, true")
local t = { n = 1 }
ch:send(t)
assert(rawequal(ch:receive(), t), "the same table comes out")

-- function forms
assert(goroutine.channel_send(ch, "x") == true, "channel_send")
local fv, fok = goroutine.channel_receive(ch)
assert(fv == "x" and fok == true, "channel_receive")

-- buffered: sends do not block while there is room; try_send reports a full buffer
for i = 1, 5 do assert(ch:send(i), "send " .. i) end
now_is(0, "five buffered sends do not block")
assert(ch:try_send(6) == false, "try_send on a full buffer")
for i = 1, 5 do
  local v, vok = ch:try_receive()
  assert(v == i and vok == true, "FIFO: got " .. tostring(v) .. ", want " .. i)
end
local ev, eok = ch:try_receive()
assert(ev == nil and eok == false, "try_receive on an empty channel")

-- unbuffered: a send completes only when a receiver takes the value
local rv = goroutine.channel()
local send_done_at
local wg = goroutine.wait_group()
wg:add()
goroutine.spawn(function()
  assert(rv:send("ping"), "rendezvous send")
  send_done_at = goroutine.now()
  wg:done()
end)
goroutine.sleep(50)
assert(send_done_at == nil, "the sender waits for a receiver")
local p, pok = rv:receive()
assert(p == "ping" and pok == true, "rendezvous receive")
wg:wait()
assert(send_done_at == 50, "the send completed at the receive, got " .. tostring(send_done_at))

-- direction misuse
local ro = goroutine.channel(1, "receive")
expect_error(function() ro:send(1) end, "receive-only")
local so = goroutine.channel(1, "send")
expect_error(function() so:receive() end, "send-only")
expect_error(function() goroutine.channel(-1) end, "goroutine.channel")
"#,
    );
}

#[test]
fn test_goroutine_channel_close() {
    check(
        "goroutine_channel_close.lua",
        r#"
local ch = goroutine.channel(5)
ch:send(1)
ch:send(2)
local closed, cerr = ch:close()
assert(closed == true and cerr == nil, "should close successfully")
assert(ch:is_closed() == true, "is_closed")
local v1, ok1 = ch:receive()
assert(ok1 == true and v1 == 1, "value 1 still buffered")
local v2, ok2 = ch:receive()
assert(ok2 == true and v2 == 2, "value 2 still buffered")
local v3, ok3 = ch:receive()
assert(v3 == nil and ok3 == false, "closed and drained gives nil, false")

local again, msg = ch:close()
assert(again == false and msg == "channel already closed", "double close: " .. tostring(msg))
local s, serr = ch:send(3)
assert(s == false and serr == "send on closed channel", "send after close: " .. tostring(serr))
local ts, tserr = ch:try_send(3)
assert(ts == false and tserr == "send on closed channel", "try_send after close: " .. tostring(tserr))
local tv, tok = ch:try_receive()
assert(tv == nil and tok == false, "try_receive after close")

-- close wakes every blocked receiver with nil, false at the instant of the close
local waiters = goroutine.channel()
local results = {}
local wg = goroutine.wait_group()
for _ = 1, 3 do
  wg:add()
  goroutine.spawn(function()
    local v, ok = waiters:receive()
    results[#results + 1] = tostring(v) .. "," .. tostring(ok) .. "@" .. goroutine.now()
    wg:done()
  end)
end
goroutine.sleep(10)
assert(#results == 0, "receivers block until the close")
assert(goroutine.channel_close(waiters) == true, "channel_close")
wg:wait()
same_list(results, { "nil,false@10", "nil,false@10", "nil,false@10" }, "woken receivers")

-- a blocked sender wakes with false, "send on closed channel" (the Go original crashed)
local full = goroutine.channel(1)
full:send("kept")
local sres
wg:add()
goroutine.spawn(function()
  local ok, e = full:send("blocked")
  sres = tostring(ok) .. "," .. tostring(e) .. "@" .. goroutine.now()
  wg:done()
end)
goroutine.sleep(10)
assert(sres == nil, "the sender is blocked on a full buffer")
full:close()
wg:wait()
assert(sres == "false,send on closed channel@20", "woken sender: " .. tostring(sres))
local kv, kok = full:receive()
assert(kv == "kept" and kok == true, "the buffered value survives the close")
local dv, dok = full:receive()
assert(dv == nil and dok == false, "then closed and drained; the blocked value was not delivered")
"#,
    );
}

#[test]
fn test_goroutine_channel_range() {
    check(
        "goroutine_channel_range.lua",
        r#"
local ch = goroutine.channel(10)
goroutine.spawn(function()
  for i = 1, 5 do ch:send(i) end
  ch:close()
end)
local sum, seen = 0, {}
local r = table.pack(ch:range(function(value)
  sum = sum + value
  seen[#seen + 1] = value
end))
assert(sum == 15, "sum should be 15 (1+2+3+4+5), got " .. sum)
same_list(seen, { 1, 2, 3, 4, 5 }, "range order")
assert(r.n == 0, "range returns nothing")

-- unbuffered, slow producer: range returns when the channel closes
local slow = goroutine.channel()
goroutine.spawn(function()
  for i = 1, 3 do
    goroutine.sleep(10)
    slow:send(i * i)
  end
  slow:close()
end)
local got = {}
slow:range(function(v) got[#got + 1] = v end)
same_list(got, { 1, 4, 9 }, "slow range")
now_is(30, "range ends at the close")

-- returning false stops early; other return values do not
local st = goroutine.channel(10)
for i = 1, 5 do st:send(i) end
st:close()
local taken = {}
st:range(function(v)
  taken[#taken + 1] = v
  if v == 3 then return false end
  return nil
end)
same_list(taken, { 1, 2, 3 }, "early stop")
assert(st:len() == 2, "two values left, got " .. st:len())
local rest = {}
st:range(function(v) rest[#rest + 1] = v return true end)
same_list(rest, { 4, 5 }, "true does not stop")

-- an error in fn propagates
local ech = goroutine.channel(1)
ech:send("x")
ech:close()
expect_error(function() ech:range(function(v) error("handler failed on " .. v) end) end, "handler failed on x")
"#,
    );
}

#[test]
fn test_goroutine_channel_cap_len() {
    check(
        "goroutine_channel_cap_len.lua",
        r#"
local ch = goroutine.channel(10)
assert(ch:cap() == 10, "capacity should be 10")
assert(ch:len() == 0, "should be empty")
ch:send(1)
ch:send(2)
ch:send(3)
assert(ch:len() == 3, "should have 3 items")
assert(math.type(ch:len()) == "integer" and math.type(ch:cap()) == "integer", "integers")
assert("n=" .. ch:len() == "n=3", "prints as n=3")
assert(goroutine.channel_len(ch) == 3 and goroutine.channel_cap(ch) == 10, "function forms")
ch:receive()
assert(ch:len() == 2, "receive takes one out")
ch:close()
assert(ch:len() == 2 and ch:cap() == 10, "close keeps the buffer")

local un = goroutine.channel()
assert(un:cap() == 0 and un:len() == 0, "unbuffered: cap 0")
"#,
    );
}

// ------------------------------------------------------------------------------------------
// Pipeline, fan-out, fan-in
// ------------------------------------------------------------------------------------------

#[test]
fn test_goroutine_pipeline() {
    check(
        "goroutine_pipeline.lua",
        r#"
local input = goroutine.channel(10)
local output = goroutine.pipeline(input, {
  { workers = 1, fn = function(x) return x * 2 end },
  { workers = 1, fn = function(x) return x + 10 end },
})
goroutine.spawn(function()
  for i = 1, 5 do input:send(i) end
  input:close()
end)
local results = {}
output:range(function(value) table.insert(results, value) end)
-- 1*2+10=12, 2*2+10=14, ...; one worker per stage keeps the order
same_list(results, { 12, 14, 16, 18, 20 }, "pipeline results")
assert(output:cap() == 10, "stage outputs hold 10")
local v, ok = output:receive()
assert(v == nil and ok == false, "the output is closed")

-- an error in fn drops that item only
local in2 = goroutine.channel(10)
local out2 = goroutine.pipeline(in2, {
  { fn = function(x) if x == 3 then error("bad item") end return x * 10 end },
})
for i = 1, 5 do in2:send(i) end
in2:close()
local got = {}
out2:range(function(x) got[#got + 1] = x end)
same_list(got, { 10, 20, 40, 50 }, "item 3 dropped")
"#,
    );
}

#[test]
fn test_goroutine_pipeline_multiple_workers() {
    check(
        "goroutine_pipeline_multiple_workers.lua",
        r#"
local input = goroutine.channel(20)
local output = goroutine.pipeline(input, {
  { workers = 3, fn = function(x) goroutine.sleep(10) return x * 2 end },
  { workers = 2, fn = function(x) return x + 1 end },
})
goroutine.spawn(function()
  for i = 1, 10 do input:send(i) end
  input:close()
end)
local results = {}
output:range(function(value) table.insert(results, value) end)
assert(#results == 10, "should have 10 results, got " .. #results)
-- the order may vary; the multiset may not
same_list(sorted(results), { 3, 5, 7, 9, 11, 13, 15, 17, 19, 21 }, "sorted results")
-- 10 items of 10ms on 3 workers: 4 rounds
now_is(40, "three workers run in parallel")
"#,
    );
}

#[test]
fn test_goroutine_fan_out() {
    check(
        "goroutine_fan_out.lua",
        r#"
local input = goroutine.channel(10)
local outputs = goroutine.fan_out(input, 3)
assert(#outputs == 3, "should have 3 output channels")
goroutine.spawn(function()
  for i = 1, 5 do input:send(i) end
  input:close()
end)
local wg = goroutine.wait_group()
wg:add(3)
local results = { {}, {}, {} }
for i = 1, 3 do
  local idx = i
  goroutine.spawn(function()
    outputs[idx]:range(function(value) table.insert(results[idx], value) end)
    wg:done()
  end)
end
wg:wait()
-- broadcast: every output gets every value, in order
for i = 1, 3 do
  same_list(results[i], { 1, 2, 3, 4, 5 }, "output " .. i)
  assert(outputs[i]:cap() == 10, "output " .. i .. " holds 10")
  assert(outputs[i]:is_closed(), "output " .. i .. " closed with the input")
end
"#,
    );
}

#[test]
fn test_goroutine_fan_in() {
    check(
        "goroutine_fan_in.lua",
        r#"
local ch1 = goroutine.channel(5)
local ch2 = goroutine.channel(5)
local ch3 = goroutine.channel(5)
local output = goroutine.fan_in({ ch1, ch2, ch3 })
local function producer(ch, k)
  goroutine.spawn(function()
    for i = 1, 3 do ch:send(i * k) end
    ch:close()
  end)
end
producer(ch1, 10)
producer(ch2, 100)
producer(ch3, 1000)
local results = {}
output:range(function(value) table.insert(results, value) end)
assert(#results == 9, "should have 9 total values, got " .. #results)
same_list(sorted(results), { 10, 20, 30, 100, 200, 300, 1000, 2000, 3000 }, "all values once")
-- the interleaving is free, but each source's order is kept
for _, k in ipairs({ 10, 100, 1000 }) do
  local from = {}
  for _, v in ipairs(results) do
    if v == k or v == 2 * k or v == 3 * k then from[#from + 1] = v end
  end
  same_list(from, { k, 2 * k, 3 * k }, "order from source " .. k)
end
assert(output:cap() == 10, "fan_in output holds 10")
"#,
    );
}

// ------------------------------------------------------------------------------------------
// Context
// ------------------------------------------------------------------------------------------

#[test]
fn test_goroutine_context() {
    check(
        "goroutine_context.lua",
        r#"
local ctx, cancel = goroutine.context()
assert(ctx ~= nil, "context should be created")
assert(type(cancel) == "function", "context() returns ctx, cancel")
assert(ctx:is_cancelled() == false, "should not be cancelled initially")
assert(ctx:err() == nil, "no error initially")
assert(ctx:done():is_closed() == false, "done() is open")

-- a goroutine blocked on done() wakes at the cancel
local woke_at
local wg = goroutine.wait_group()
wg:add()
goroutine.spawn(function()
  local v, ok = ctx:done():receive()
  assert(v == nil and ok == false, "done() is closed, not sent on")
  woke_at = goroutine.now()
  wg:done()
end)
goroutine.sleep(10)
ctx:cancel()
assert(ctx:is_cancelled() == true, "should be cancelled after cancel()")
assert(ctx:err() == "context canceled", "error after cancel: " .. tostring(ctx:err()))
wg:wait()
assert(woke_at == 10, "done() closed at the cancel, got " .. tostring(woke_at))
ctx:cancel()
cancel()
assert(ctx:err() == "context canceled", "cancel is idempotent")

-- the cancel function returned by context()
local ctx2, cancel2 = goroutine.context()
cancel2()
assert(ctx2:is_cancelled() == true and ctx2:err() == "context canceled", "cancel function")

-- done() in a select
local ctx3, cancel3 = goroutine.context()
goroutine.spawn(function()
  goroutine.sleep(5)
  cancel3()
end)
local fired = 0
local which, ok = goroutine.select({
  { channel = ctx3:done(), receive = true, handler = function(_, ok) fired = fired + 1 return "done", ok end },
  { channel = goroutine.after(100), receive = true, handler = function() fired = fired + 1 return "timer", nil end },
})
assert(which == "done" and ok == false, "select on done(): " .. tostring(which))
now_is(15, "select blocked until the cancel")
goroutine.sleep(200)
assert(fired == 1, "select fires exactly one handler, fired " .. fired)
"#,
    );
}

#[test]
fn test_goroutine_context_timeout() {
    check(
        "goroutine_context_timeout.lua",
        r#"
local ctx = goroutine.context()
local timeoutCtx, cancel = ctx:with_timeout(100)
assert(type(cancel) == "function", "with_timeout returns child, cancel")
assert(timeoutCtx:is_cancelled() == false and timeoutCtx:err() == nil, "not expired yet")
local dl, has = timeoutCtx:deadline()
assert(dl == 100 and has == true, "deadline 100, got " .. tostring(dl))
local pdl, phas = ctx:deadline()
assert(pdl == nil and phas == false, "the parent has no deadline")
local child = timeoutCtx:with_cancel()

local _, ok = timeoutCtx:done():receive()
assert(ok == false, "done() closes at the deadline")
now_is(100, "expires exactly at its deadline")
assert(timeoutCtx:is_cancelled() == true, "should be cancelled after timeout")
assert(timeoutCtx:err() == "context deadline exceeded", "timeout error: " .. tostring(timeoutCtx:err()))
assert(child:is_cancelled() == true, "children expire with their parent")
assert(child:err() == "context deadline exceeded", "a child gets its parent's error: " .. tostring(child:err()))
assert(ctx:is_cancelled() == false, "the parent is unaffected")

-- the original's shape: sleep past the timeout, then poll
local t2 = ctx:with_timeout(100)
goroutine.sleep(99)
assert(t2:is_cancelled() == false, "not expired 1ms before its deadline")
goroutine.sleep(51)
assert(t2:is_cancelled() == true and t2:err() == "context deadline exceeded", "expired after 150ms")

-- cancelled before its deadline: canceled, not deadline exceeded
local t3, cancel3 = ctx:with_timeout(1000)
cancel3()
assert(t3:err() == "context canceled", "early cancel: " .. tostring(t3:err()))

-- with_deadline takes an absolute time on the run's clock
now_is(250, "before with_deadline")
local d = ctx:with_deadline(400)
assert(d:deadline() == 400, "absolute deadline")
d:done():receive()
now_is(400, "with_deadline expires at 400")
assert(d:err() == "context deadline exceeded", "deadline error")
"#,
    );
}

#[test]
fn test_goroutine_context_with_cancel() {
    check(
        "goroutine_context_with_cancel.lua",
        r#"
local parentCtx = goroutine.context()
local childCtx, cancel = parentCtx:with_cancel()
assert(childCtx:is_cancelled() == false, "child should not be cancelled")
cancel()
assert(childCtx:is_cancelled() == true, "child should be cancelled")
assert(childCtx:err() == "context canceled", "child error")
assert(parentCtx:is_cancelled() == false and parentCtx:err() == nil, "parent should still be active")
assert(childCtx:done():is_closed() and not parentCtx:done():is_closed(), "only the child's done() closed")

-- cancelling a context cancels all its descendants, not its siblings
local a, cancel_a = parentCtx:with_cancel()
local b = a:with_cancel()
local c = b:with_timeout(1000)
local sibling = parentCtx:with_cancel()
local woke_at
local wg = goroutine.wait_group()
wg:add()
goroutine.spawn(function()
  c:done():receive()
  woke_at = goroutine.now()
  wg:done()
end)
goroutine.sleep(5)
cancel_a()
assert(a:is_cancelled() and b:is_cancelled() and c:is_cancelled(), "descendants cancelled")
assert(c:err() == "context canceled", "grandchild error: " .. tostring(c:err()))
assert(sibling:is_cancelled() == false, "siblings unaffected")
wg:wait()
assert(woke_at == 5, "the grandchild's done() closed at the cancel, got " .. tostring(woke_at))

-- a child of a cancelled context starts cancelled
local late = a:with_cancel()
assert(late:is_cancelled() and late:err() == "context canceled", "late child")
local late_dl = a:with_deadline(10000)
assert(late_dl:is_cancelled(), "late deadline child")
"#,
    );
}

// ------------------------------------------------------------------------------------------
// Mutexes, semaphores
// ------------------------------------------------------------------------------------------

#[test]
fn test_goroutine_mutex() {
    check(
        "goroutine_mutex.lua",
        r#"
local mu = goroutine.mutex()
assert(mu ~= nil, "mutex should be created")

local function increment_all(use_lock)
  local counter, inside, max_inside = 0, 0, 0
  local wg = goroutine.wait_group()
  for _ = 1, 10 do
    wg:add(1)
    goroutine.spawn(function()
      if use_lock then mu:lock() end
      inside = inside + 1
      if inside > max_inside then max_inside = inside end
      local temp = counter
      goroutine.sleep(1)
      counter = temp + 1
      inside = inside - 1
      if use_lock then mu:unlock() end
      wg:done()
    end)
  end
  wg:wait()
  return counter, max_inside
end

local counter, max_inside = increment_all(true)
assert(counter == 10, "counter should be 10 with proper locking, got " .. counter)
assert(max_inside == 1, "one goroutine at a time in the critical section")
now_is(10, "ten 1ms critical sections run one after another")

-- without the lock every goroutine reads 0 before any writes: the race is deterministic
local racy, racers = increment_all(false)
assert(racy == 1 and racers == 10, "without a lock: counter " .. racy .. ", " .. racers .. " inside")
now_is(11, "the racy version takes 1ms")

-- try_lock
assert(mu:try_lock() == true, "try_lock on a free mutex")
assert(mu:try_lock() == false, "try_lock on a held mutex")
mu:unlock()

-- not owned: another goroutine may unlock it
mu:lock()
local ch = goroutine.channel()
goroutine.spawn(function()
  mu:unlock()
  ch:send(true)
end)
ch:receive()
assert(mu:try_lock() == true, "unlocked by the other goroutine")
mu:unlock()

-- misuse: unlocking an unlocked mutex is a Lua error, and the mutex keeps working
expect_error(function() mu:unlock() end, "unlock")
mu:lock()
mu:unlock()
"#,
    );
}

#[test]
fn test_goroutine_rwmutex() {
    check(
        "goroutine_rwmutex.lua",
        r#"
local rwmu = goroutine.rwmutex()
assert(rwmu ~= nil, "rwmutex should be created")
local value = 0
rwmu:rlock()
local read1 = value
rwmu:runlock()
rwmu:lock()
value = 42
rwmu:unlock()
rwmu:rlock()
local read2 = value
rwmu:runlock()
assert(read1 == 0 and read2 == 42, "should read updated value")

-- readers share, writers exclude
rwmu:rlock()
assert(rwmu:try_rlock() == true, "a second reader gets in")
rwmu:runlock()
assert(rwmu:try_lock() == false, "no writer while read-locked")
rwmu:runlock()
assert(rwmu:try_lock() == true, "writer when free")
assert(rwmu:try_rlock() == false and rwmu:try_lock() == false, "nobody while write-locked")
rwmu:unlock()

-- three readers overlap; a writer waits for them; a reader arriving while the writer waits
-- is held back until the writer is done
local readers, max_readers, writer_at, late_reader_at = 0, 0, nil, nil
local wg = goroutine.wait_group()
for _ = 1, 3 do
  wg:add()
  goroutine.spawn(function()
    rwmu:rlock()
    readers = readers + 1
    if readers > max_readers then max_readers = readers end
    goroutine.sleep(10)
    readers = readers - 1
    rwmu:runlock()
    wg:done()
  end)
end
goroutine.sleep(1)
wg:add()
goroutine.spawn(function()
  rwmu:lock()
  writer_at = goroutine.now()
  assert(readers == 0, "no reader while writing")
  goroutine.sleep(10)
  rwmu:unlock()
  wg:done()
end)
goroutine.sleep(1)
wg:add()
goroutine.spawn(function()
  rwmu:rlock()
  late_reader_at = goroutine.now()
  rwmu:runlock()
  wg:done()
end)
wg:wait()
assert(max_readers == 3, "readers overlap, max " .. max_readers)
assert(writer_at == 10, "the writer got the lock when the readers left, at " .. tostring(writer_at))
assert(late_reader_at == 20, "a waiting writer blocks new readers, late reader at " .. tostring(late_reader_at))

expect_error(function() rwmu:runlock() end, "runlock")
expect_error(function() rwmu:unlock() end, "unlock")
"#,
    );
}

#[test]
fn test_goroutine_semaphore() {
    check(
        "goroutine_semaphore.lua",
        r#"
local sem = goroutine.semaphore(3)
assert(sem ~= nil, "semaphore should be created")
assert(sem:capacity() == 3, "capacity should be 3")
assert(sem:available() == 3, "should have 3 tokens available")
assert(math.type(sem:capacity()) == "integer" and math.type(sem:available()) == "integer", "integers")
sem:acquire()
assert(sem:available() == 2, "should have 2 tokens after acquire")
sem:acquire()
assert(sem:available() == 1, "should have 1 token after second acquire")
sem:release()
assert(sem:available() == 2, "should have 2 tokens after release")

assert(sem:try_acquire() == true and sem:try_acquire() == true, "two more tokens")
assert(sem:available() == 0 and sem:try_acquire() == false, "no tokens left")
now_is(0, "nothing blocked so far")

-- acquire blocks until a release
local got_at
local wg = goroutine.wait_group()
wg:add()
goroutine.spawn(function()
  sem:acquire()
  got_at = goroutine.now()
  sem:release()
  wg:done()
end)
goroutine.sleep(10)
assert(got_at == nil, "acquire blocks with no tokens")
sem:release()
wg:wait()
assert(got_at == 10, "acquired at the release, got " .. tostring(got_at))
for _ = 1, 2 do sem:release() end
assert(sem:available() == 3, "all tokens back")

expect_error(function() sem:release() end, "release")
assert(sem:available() == 3, "a bad release does not add a token")
expect_error(function() goroutine.semaphore(0) end, "goroutine.semaphore")
expect_error(function() goroutine.semaphore(-2) end, "goroutine.semaphore")
"#,
    );
}

#[test]
fn test_goroutine_semaphore_concurrency() {
    check(
        "goroutine_semaphore_concurrency.lua",
        r#"
local sem = goroutine.semaphore(2)
local wg = goroutine.wait_group()
local active, maxActive = 0, 0
local mu = goroutine.mutex()
for _ = 1, 5 do
  wg:add(1)
  goroutine.spawn(function()
    sem:acquire()
    mu:lock()
    active = active + 1
    if active > maxActive then maxActive = active end
    mu:unlock()
    goroutine.sleep(50)
    mu:lock()
    active = active - 1
    mu:unlock()
    sem:release()
    wg:done()
  end)
end
wg:wait()
assert(maxActive == 2, "max concurrent should be exactly the capacity 2, got " .. maxActive)
now_is(150, "5 jobs of 50ms, 2 at a time: 3 rounds")
assert(sem:available() == 2, "all tokens returned")
"#,
    );
}

// ------------------------------------------------------------------------------------------
// Atomics, once, cond
// ------------------------------------------------------------------------------------------

#[test]
fn test_goroutine_atomic_int() {
    check(
        "goroutine_atomic_int.lua",
        r#"
local counter = goroutine.atomic_int(0)
assert(counter ~= nil, "atomic int should be created")
assert(counter:load() == 0, "initial value should be 0")
local newVal = counter:add(5)
assert(newVal == 5, "after add(5), value should be 5")
assert(counter:load() == 5, "load should return 5")
counter:store(10)
assert(counter:load() == 10, "after store(10), value should be 10")
local oldVal = counter:swap(20)
assert(oldVal == 10, "swap should return old value 10")
assert(counter:load() == 20, "after swap, value should be 20")
local swapped = counter:compare_and_swap(20, 30)
assert(swapped == true, "CAS should succeed")
assert(counter:load() == 30, "value should be 30 after successful CAS")
swapped = counter:compare_and_swap(20, 40)
assert(swapped == false, "CAS should fail with wrong old value")
assert(counter:load() == 30, "value should still be 30")

assert(counter:add(-45) == -15, "negative deltas")
assert(math.type(counter:load()) == "integer", "values are integers")
assert(goroutine.atomic_int():load() == 0, "init defaults to 0")
assert(goroutine.atomic_int(7):load() == 7, "init value")
"#,
    );
}

#[test]
fn test_goroutine_atomic_concurrency() {
    check(
        "goroutine_atomic_concurrency.lua",
        r#"
local counter = goroutine.atomic_int(0)
local wg = goroutine.wait_group()
local returned = {}
for _ = 1, 100 do
  wg:add(1)
  goroutine.spawn(function()
    local v = counter:add(1)
    returned[#returned + 1] = v
    wg:done()
  end)
end
wg:wait()
assert(counter:load() == 100, "counter should be 100 with atomic ops, got " .. counter:load())
-- every add saw a distinct value: together exactly 1..100
local s = sorted(returned)
assert(#s == 100, "100 adds returned")
for i = 1, 100 do assert(s[i] == i, "add results are 1..100, missing " .. i) end
"#,
    );
}

#[test]
fn test_goroutine_once() {
    check(
        "goroutine_once.lua",
        r#"
local once = goroutine.once()
assert(once ~= nil, "once should be created")
local counter = 0
for _ = 1, 5 do
  once:call(function() counter = counter + 1 end)
end
assert(counter == 1, "function should execute exactly once, got " .. counter)

-- an error reaches the first caller, and the once still counts as done
local o2 = goroutine.once()
expect_error(function() o2:call(function() error("init failed") end) end, "init failed")
local ran = false
o2:call(function() ran = true end)
assert(ran == false, "a once whose fn raised is done")
"#,
    );
}

#[test]
fn test_goroutine_once_concurrent() {
    check(
        "goroutine_once_concurrent.lua",
        r#"
local once = goroutine.once()
local counter = goroutine.atomic_int(0)
local wg = goroutine.wait_group()
local initialised = false
local early, returned_at = 0, {}
for _ = 1, 50 do
  wg:add(1)
  goroutine.spawn(function()
    once:call(function()
      goroutine.sleep(10)
      initialised = true
      counter:add(1)
    end)
    if not initialised then early = early + 1 end
    returned_at[#returned_at + 1] = goroutine.now()
    wg:done()
  end)
end
wg:wait()
assert(counter:load() == 1, "should execute exactly once even with concurrency, got " .. counter:load())
assert(early == 0, early .. " callers returned before the first call finished")
assert(#returned_at == 50, "all callers returned")
for i, t in ipairs(returned_at) do
  assert(t == 10, "caller " .. i .. " returned at " .. tostring(t) .. ", want 10")
end
"#,
    );
}

#[test]
fn test_goroutine_cond() {
    check(
        "goroutine_cond.lua",
        r#"
local cond = goroutine.cond()
assert(cond ~= nil, "cond should be created")
local mu = cond:get_mutex()
assert(mu ~= nil, "should get mutex from cond")
local ready = false
local woke_at
local wg = goroutine.wait_group()
wg:add(1)
goroutine.spawn(function()
  mu:lock()
  while not ready do cond:wait() end
  woke_at = goroutine.now()
  mu:unlock()
  wg:done()
end)
goroutine.sleep(50)
-- the waiter released the mutex in wait(), so this does not block
mu:lock()
ready = true
cond:signal()
mu:unlock()
wg:wait()
assert(woke_at == 50, "the waiter woke at the signal, got " .. tostring(woke_at))

-- with an explicit locker; signal wakes exactly one waiter
local m = goroutine.mutex()
local c2 = goroutine.cond(m)
assert(c2:get_mutex() == m, "get_mutex returns the locker given")
local tokens, wakeups, served = 0, 0, 0
for _ = 1, 3 do
  wg:add()
  goroutine.spawn(function()
    m:lock()
    while tokens == 0 do
      c2:wait()
      wakeups = wakeups + 1
    end
    tokens = tokens - 1
    served = served + 1
    m:unlock()
    wg:done()
  end)
end
goroutine.sleep(10)
m:lock()
tokens = 1
c2:signal()
m:unlock()
goroutine.sleep(10)
assert(wakeups == 1 and served == 1, "signal wakes one waiter: wakeups " .. wakeups .. ", served " .. served)
m:lock()
tokens = 2
c2:broadcast()
m:unlock()
wg:wait()
assert(wakeups == 3 and served == 3, "broadcast wakes the other two: wakeups " .. wakeups .. ", served " .. served)
"#,
    );
}

#[test]
fn test_goroutine_cond_broadcast() {
    check(
        "goroutine_cond_broadcast.lua",
        r#"
local cond = goroutine.cond()
local mu = cond:get_mutex()
local ready = false
local wg = goroutine.wait_group()
local completed = goroutine.atomic_int(0)
local woke = {}
cond:broadcast()  -- no waiters: nothing happens
for _ = 1, 5 do
  wg:add(1)
  goroutine.spawn(function()
    mu:lock()
    while not ready do cond:wait() end
    woke[#woke + 1] = goroutine.now()
    mu:unlock()
    completed:add(1)
    wg:done()
  end)
end
goroutine.sleep(100)
assert(completed:load() == 0, "all waiters wait")
mu:lock()
ready = true
cond:broadcast()
mu:unlock()
wg:wait()
assert(completed:load() == 5, "all 5 waiters should complete, got " .. completed:load())
same_list(woke, { 100, 100, 100, 100, 100 }, "all woke at the broadcast")
"#,
    );
}
