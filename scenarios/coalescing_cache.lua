-- coalescing_cache.lua: a coalescing cache, single flight plus TTL (seed 7.4).
--
-- Shows: the seed's example (coalescing_cache{ttl, loader}; many goroutines get the same key at
-- once; only one loader call is made), with 10 goroutines instead of 100 to keep the trace
-- readable, and ttl = 60000 ms as in the seed. The first get starts the flight ("load ...
-- flight=1") and runs expensive_load in its own goroutine for 200 ms; the nine others "join" it
-- and all get its value at t=200. A get at t=30000 is a "hit". The entry was loaded at t=200,
-- so it is served while now - 200 < 60000: at exactly t=60200 it is stale and the next get
-- loads again (flight=2). A failing load is never cached: both of its callers get the error,
-- and the next get loads again.
--
-- Run:   cargo run --release -- run scenarios/coalescing_cache.lua --seed 7
--
-- In the trace: "load coalescing_cache#1 \"expensive_key\" flight=1", nine "join ... flight=1",
-- "loaded ... flight=1 ok" at 200ms, "hit" at 30200ms, "load ... flight=2" at 60200ms, and for
-- "flaky" a "loaded ... error" followed by a new flight.

local loads = 0
local function expensive_load(key)
  loads = loads + 1
  goroutine.sleep(200)
  if key == "flaky" and loads == 3 then error("backend unavailable") end
  return key .. " v" .. loads
end

local cache = goroutine.coalescing_cache({
  ttl = 60000,  -- 60s
  loader = function(key)
    -- called only once per key while a load is in flight, however many goroutines ask
    return expensive_load(key)
  end
})

local function process(value)
  assert(value == "expensive_key v1", value)
end

local wg = goroutine.wait_group()
for i = 1, 10 do
  wg:add(1)
  goroutine.spawn(function()
    local value = cache:get("expensive_key")
    -- only 1 call to expensive_load() is made
    process(value)
    wg:done()
  end)
end
wg:wait()
assert(loads == 1 and goroutine.now() == 200)

goroutine.sleep(30000)
assert(cache:get("expensive_key") == "expensive_key v1")   -- fresh: a hit
goroutine.sleep(30000)                                      -- t = 60200: exactly ttl old
assert(cache:get("expensive_key") == "expensive_key v2")   -- stale: loaded again
assert(loads == 2)

-- Errors are never cached: both callers of the failing flight get the error.
local errs = {}
wg:add(1)
goroutine.spawn(function()
  local v, err = cache:get("flaky")
  errs[#errs + 1] = err
  wg:done()
end)
local v, err = cache:get("flaky")
wg:wait()
assert(v == nil and err:find("backend unavailable") and #errs == 1 and errs[1] == err)
assert(cache:get("flaky") == "flaky v4")                    -- the next get loads again

local s = cache:stats()
log.info(string.format("loads=%d joins=%d hits=%d errors=%d", s.loads, s.joins, s.hits, s.errors))
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
