//! One Lua world per thread, reset between runs (`scenario::run_source`): a run must not be able
//! to tell a reused world from a new one. A new thread's first run is a new world (as in a fresh
//! process); runs on one long-lived thread reuse its world after any number of other runs.

mod common;

use std::path::PathBuf;

use common::{NAME, gosim, logs};
use gosim::runtime::TraceHash;
use gosim::scenario::{RunOptions, RunReport, run_source};

fn scenarios() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = format!("scenarios/{}", p.file_name().unwrap().to_string_lossy());
            (name, std::fs::read_to_string(&p).expect("readable"))
        })
        .collect()
}

/// What a run showed (a `RunReport` stays on its thread).
#[derive(Debug, PartialEq)]
struct Seen {
    /// The trace's fingerprint, the outcome and the steps: what must be identical.
    fingerprint: (TraceHash, String, u64),
    text: String,
    logs: Vec<String>,
    pass: bool,
}

fn seen(r: &RunReport) -> Seen {
    Seen {
        fingerprint: (r.trace_hash(), r.outcome.to_string(), r.stats.steps),
        text: r.trace_text(),
        logs: logs(r),
        pass: r.outcome.is_pass(),
    }
}

fn run_here(name: &str, src: &str, seed: u64) -> RunReport {
    run_source(name, src, &RunOptions::with_seed(seed)).expect("the scenario loads")
}

/// The run as the first of a new world: on a new thread.
fn run_fresh(name: &str, src: &str, seed: u64) -> Seen {
    let (name, src) = (name.to_string(), src.to_string());
    std::thread::spawn(move || seen(&run_here(&name, &src, seed)))
        .join()
        .expect("the run does not panic")
}

/// Every scenario, seeds 1 to 20 (and 200 seeds for a spread of them): the run in a reused world
/// (after every earlier scenario and seed on this thread) equals the first run of a new world.
#[test]
fn a_reused_world_runs_every_scenario_as_a_new_one() {
    let all = scenarios();
    assert!(all.len() >= 20, "scenarios/ holds the examples");
    let wide = [
        "scenarios/canary.lua",
        "scenarios/producer_consumer.lua",
        "scenarios/select_timeout.lua",
        "scenarios/worker_pool.lua",
        "scenarios/pct_bug.lua",
        "scenarios/sim_features.lua",
        "scenarios/coalescing_cache.lua",
        "scenarios/pipeline_patterns.lua",
    ];
    let mut compared = 0;
    for seed in 1..=200u64 {
        // Interleaved: each run follows runs of other scenarios in this thread's world.
        for (name, src) in &all {
            if seed > 20 && !wide.contains(&name.as_str()) {
                continue;
            }
            let reused = seen(&run_here(name, src, seed));
            let fresh = run_fresh(name, src, seed);
            assert_eq!(
                reused.fingerprint, fresh.fingerprint,
                "{name} seed {seed}: a reused world diverged from a new one\n--- reused ---\n{}\n--- new ---\n{}",
                reused.text, fresh.text
            );
            compared += 1;
        }
    }
    assert!(compared >= 8 * 200);
}

/// Across processes: `gosim run` (a new process, a new world) prints the trace a reused world
/// records for the same scenario and seed.
#[test]
fn a_reused_world_replays_what_a_new_process_prints() {
    let all = scenarios();
    // Warm this thread's world with other runs first.
    for (name, src) in all.iter().take(10) {
        run_here(name, src, 7);
    }
    for (name, src) in all.iter().step_by(5) {
        for seed in [3u64, 41] {
            let reused = run_here(name, src, seed);
            let out = gosim(&["run", name, "--seed", &seed.to_string(), "--trace", "text"]);
            let printed = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                printed.trim_end(),
                reused.trace_text().trim_end(),
                "{name} seed {seed}: the process printed another trace"
            );
        }
    }
}

/// A script that pollutes everything it can reach in run 1.
const POLLUTER: &str = r#"
string.upper = function() return "polluted" end
string.extra = 1
table.insert = nil
math.pi = 3
goroutine.spawn = nil
goroutine.extra = true
sim.extra = true
os.time = nil
coroutine.extra = 1
getmetatable("").__index = setmetatable({ len = function() return -1 end }, { __index = string })
getmetatable("").__add = function() return 42 end
package.loaded.string = { fake = true }
package.loaded.mine = "leaked"
package.preload.other = function() return "leaked too" end
_G.leaked_global = 1
polluted_global = 2
setmetatable(_G, { __index = function() return "from the metatable" end })
local ok = pcall(setmetatable, {}, { __gc = function() end })
assert(not ok, "__gc refused")
weak = setmetatable({}, { __mode = "k" })
for i = 1, 1000 do weak[{}] = i end
local big = {}
for i = 1, 20000 do big[i] = tostring(i) .. "garbage" end
log.info("polluted")
-- Tables the prelude makes once per world: their metatables are out of reach, and what a
-- script can rawset into one is gone at the next reset.
for _, mt in ipairs({ getmetatable(goroutine.NIL), getmetatable(goroutine.permanent("x")),
                      getmetatable(goroutine.deadlock_detector()), getmetatable(goroutine),
                      getmetatable(sim), getmetatable(log) }) do
  if type(mt) == "table" then rawset(mt, "polluted", true); mt.__index = nil end
end
rawset(goroutine.NIL, "polluted", true)
collectgarbage("generational")
collectgarbage("stop")
"#;

/// What run 2 checks: everything as in a new world.
const CHECKER: &str = r#"
assert(("x"):upper() == "X", "string.upper")
assert(string.extra == nil, "string.extra")
assert(type(table.insert) == "function", "table.insert")
assert(math.pi > 3.14 and math.pi < 3.15, "math.pi")
assert(type(goroutine.spawn) == "function", "goroutine.spawn")
assert(goroutine.extra == nil and sim.extra == nil, "module fields")
assert(type(os.time) == "function", "os.time")
assert(coroutine.extra == nil, "coroutine")
assert(getmetatable("").__index == string, "string metatable")
assert(getmetatable("").__add == nil, "string metatable __add")
assert(("abc"):len() == 3, "string methods")
assert(package.loaded.string == string, "package.loaded.string")
assert(package.loaded.mine == nil, "package.loaded.mine")
assert(package.preload.other == nil, "package.preload")
assert(not pcall(require, "other"), "require other")
assert(require("string") == string and require("goroutine") == goroutine, "require")
assert(leaked_global == nil and polluted_global == nil, "globals")
assert(getmetatable(_G) == nil, "_G metatable")
assert(_G == _ENV and package.loaded._G == _G, "_G")
assert(weak == nil, "weak")
assert(collectgarbage("isrunning"), "the collector runs")
assert(getmetatable(goroutine.NIL) == false and tostring(goroutine.NIL) == "goroutine.NIL", "NIL")
assert(rawget(goroutine.NIL, "polluted") == nil, "NIL's fields")
assert(getmetatable(goroutine.permanent("x")) == false, "permanent errors")
local d = goroutine.deadlock_detector()
assert(getmetatable(d) == false and type(d.check) == "function", "deadlock detector")
for _, m in ipairs({ goroutine, sim, log }) do
  local mt = getmetatable(m)
  assert(mt == nil or mt == false or rawget(mt, "polluted") == nil, "a module's metatable")
end
assert(type(goroutine.select) == "function" and type(sim.seed) == "function", "lazy module fields")
local ch = goroutine.channel(1)
goroutine.spawn(function() ch:send(1) end)
assert(ch:receive() == 1)
log.info("pristine")
"#;

#[test]
fn a_polluting_run_leaves_a_pristine_world_for_the_next() {
    std::thread::spawn(|| {
        let a = run_here(NAME, POLLUTER, 1);
        assert!(a.outcome.is_pass(), "{}", a.outcome);
        assert_eq!(logs(&a), vec!["polluted".to_string()]);
        for seed in 1..=3 {
            let b = run_here(NAME, CHECKER, seed);
            assert!(b.outcome.is_pass(), "{}\n{}", b.outcome, b.trace_text());
            assert_eq!(logs(&b), vec!["pristine".to_string()]);
        }
        // The checker passes in a new world too (it checks nothing a new world lacks).
        let fresh = run_fresh(NAME, CHECKER, 1);
        assert!(fresh.pass, "{}", fresh.text);
    })
    .join()
    .expect("no panic");
}

/// `collectgarbage("count")` at the same points of the same script reads the same in a new world
/// and in a world after other runs: at the start, after allocating, and after a full collection
/// (live data, weak tables cleared). Not compared: a reading taken while the incremental
/// collector is mid-cycle, whose progress depends on the whole heap (see src/lua/reuse.rs).
const COUNTER: &str = r#"
local function kb() return string.format("%.3f", collectgarbage("count")) end
local out = { kb() }
local keep = {}
for i = 1, 300 do keep[i] = { i, tostring(i) } end
out[#out + 1] = kb()
local weak = setmetatable({}, { __mode = "v" })
for i = 1, 200 do weak[i] = {} end
for i = 1, 5000 do local _ = { i } end
collectgarbage()
local live = 0
for _ in pairs(weak) do live = live + 1 end
out[#out + 1] = kb()
local ch = goroutine.channel(4)
goroutine.spawn(function() for i = 1, 4 do ch:send(i) end end)
for i = 1, 4 do keep[#keep + 1] = ch:receive() end
log.info(table.concat(out, " ") .. " weak:" .. live)
"#;

#[test]
fn collectgarbage_count_is_the_same_in_a_new_and_a_reused_world() {
    let fresh = run_fresh(NAME, COUNTER, 5);
    assert!(fresh.pass, "{}", fresh.text);
    assert!(fresh.logs[0].ends_with("weak:0"), "{:?}", fresh.logs);
    std::thread::spawn(move || {
        for (name, src) in scenarios().iter().take(24) {
            run_here(name, src, 2);
        }
        for seed in 1..=3 {
            let reused = seen(&run_here(NAME, COUNTER, seed + 4));
            assert!(reused.pass, "{}", reused.text);
            if seed == 1 {
                assert_eq!(reused.logs, fresh.logs);
                assert_eq!(reused.fingerprint, fresh.fingerprint);
            }
        }
    })
    .join()
    .expect("no panic");
}

/// The memory and runaway limits stop runs of a reused world (and the world serves the next
/// run normally afterwards).
#[test]
fn limits_are_enforced_in_a_reused_world() {
    std::thread::spawn(|| {
        let runaway = "while true do end";
        let hog = "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1 << 20) .. i end";
        let mut opts = RunOptions::with_seed(1);
        opts.lua.max_memory = 64 * 1024 * 1024;
        opts.lua.max_instructions = 1_000_000;
        for round in 0..3 {
            let r = run_source(NAME, runaway, &opts).expect("loads");
            assert!(
                r.outcome
                    .to_string()
                    .contains("Lua instructions without a scheduling point"),
                "round {round}: {}",
                r.outcome
            );
            let m = run_source(NAME, hog, &opts).expect("loads");
            assert!(
                m.outcome.to_string().contains("memory") || m.outcome.to_string().contains("MB"),
                "round {round}: {}",
                m.outcome
            );
            let ok = run_source(NAME, "log.info('fine')", &opts).expect("loads");
            assert!(ok.outcome.is_pass(), "round {round}: {}", ok.outcome);
            assert_eq!(logs(&ok), vec!["fine".to_string()]);
        }
    })
    .join()
    .expect("no panic");
}

/// A syntax error reported by a reused world, and the world still serves the next run.
#[test]
fn a_load_error_leaves_the_world_usable() {
    std::thread::spawn(|| {
        assert!(run_source(NAME, "local = ", &RunOptions::with_seed(1)).is_err());
        let ok = run_here(NAME, "log.info('ok')", 1);
        assert_eq!(logs(&ok), vec!["ok".to_string()]);
    })
    .join()
    .expect("no panic");
}
