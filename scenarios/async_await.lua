-- async_await.lua: futures over goroutines, and running a function with a time limit.
--
-- Shows: goroutine.async(fn) starts fn at once and returns a handle; await(h) blocks until fn
-- ends and returns `true, ...results` or `false, errmsg` (an error in an awaited fn is a value,
-- not a run failure); a handle may be awaited again; await_all keeps table order;
-- goroutine.timeout(ms, fn) returns `false, "timeout exceeded"` and lets fn run on.
--
-- Run:   cargo run --release -- run scenarios/async_await.lua --seed 7
--
-- In the trace: the three fetches run concurrently, so await_all returns at t=30 (10 + the
-- slowest, 20), not t=45; the slow job times out at exactly t=80 and still finishes,
-- unobserved, at t=130.

local function fetch(name, ms)
  return function()
    goroutine.sleep(ms)
    if name == "broken" then error("connection refused") end
    return name, ms                          -- several results are kept
  end
end

-- One handle: await returns true plus all results; awaiting again returns the same (cached).
local h = goroutine.async(fetch("users", 10))
local ok, name, ms = goroutine.await(h)
assert(ok == true and name == "users" and ms == 10 and goroutine.now() == 10)
local again_ok, again_name = goroutine.await(h)
assert(again_ok and again_name == "users" and goroutine.now() == 10, "cached, no waiting")
log.info("await -> " .. tostring(ok) .. ", " .. name .. ", " .. ms)

-- await_all: results in table order, whatever order the functions finish in.
local results = goroutine.await_all({
  goroutine.async(fetch("orders", 20)),
  goroutine.async(fetch("broken", 5)),
  goroutine.async(fetch("stock", 10)),
})
for i, r in ipairs(results) do
  -- An error message may carry a traceback after its first line: log only the first line.
  local what = r.success and ("ok " .. r.values[1]) or ("error " .. r.error:match("[^\n]*"))
  log.info("await_all[" .. i .. "] " .. what)
end
assert(#results == 3)
assert(results[1].success and results[1].values[1] == "orders" and results[1].values[2] == 20)
assert(results[2].success == false and results[2].error:find("connection refused"))
assert(results[3].success and results[3].values[1] == "stock")
assert(goroutine.now() == 30, "they ran concurrently: 10 + max(20, 5, 10)")

-- timeout: a fast function returns its results, a slow one is abandoned (but keeps running).
local fast_ok, v = goroutine.timeout(50, function() goroutine.sleep(10) return 42 end)
assert(fast_ok == true and v == 42 and goroutine.now() == 40)
local slow_ok, err = goroutine.timeout(40, function()
  goroutine.sleep(90)
  log.info("slow job finished anyway at t=" .. goroutine.now())
end)
log.info("timeout -> " .. tostring(slow_ok) .. ", " .. err .. " at t=" .. goroutine.now())
assert(slow_ok == false and err == "timeout exceeded" and goroutine.now() == 80)

-- An error inside a timed function is returned too.
local bad_ok, bad_err = goroutine.timeout(50, function() error("bad input") end)
assert(bad_ok == false and bad_err:find("bad input"))
log.info("timeout with an error -> " .. tostring(bad_ok) .. ", " .. bad_err:match("[^\n]*"))
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
