-- bulkhead.lua: isolating services so one overloaded dependency cannot starve the others
-- (seed 3.4; resilience4j SemaphoreBulkhead semantics).
--
-- Shows: the seed's example (api_service 10, db_service 20, cache_service 5 concurrent calls);
-- 12 simultaneous api calls: 10 run, 2 are rejected at once ("bulkhead full: api_service")
-- without running; while api_service is full, db_service calls run unaffected; a partition with
-- max_wait queues callers in order and rejects the one whose wait expires; a call that fails
-- still gives its slot back.
--
-- Run:   cargo run --release -- run scenarios/bulkhead.lua --seed 7
--
-- In the trace: "acquire weighted_semaphore#2 w=1" per admitted api call (each partition is a
-- FIFO semaphore), "reject bulkhead#1 api_service" twice, the db calls admitted at t=0 too;
-- in the second part, "block-acquire" for the cache waiters, one "timeout" and its "reject".

local bulkhead = goroutine.bulkhead({
  partitions = {
    api_service = {max_concurrent = 10},
    db_service = {max_concurrent = 20},
    cache_service = {max_concurrent = 5, max_wait = 15},
  }
})

local function api_call() goroutine.sleep(10) return "api ok" end
local function db_call() goroutine.sleep(5) return "db ok" end

-- The seed's example: run with isolation.
local ok, v = bulkhead:execute("api_service", function()
  return api_call()
end)
assert(ok and v == "api ok")

-- If one partition is overloaded, the others are not affected.
local results = {ran = 0, rejected = 0, db = 0}
local wg = goroutine.wait_group()
for i = 1, 12 do
  wg:add(1)
  goroutine.spawn{name = "api-" .. i, fn = function()
    local ok, v = bulkhead:execute("api_service", function()
      results.ran = results.ran + 1
      return api_call()
    end)
    if not ok then
      assert(v == "bulkhead full: api_service")
      results.rejected = results.rejected + 1
    end
    wg:done()
  end}
end
goroutine.sleep(1)
assert(bulkhead:in_flight("api_service") == 10)
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn{name = "db-" .. i, fn = function()
    local t0 = goroutine.now()
    assert(bulkhead:execute("db_service", db_call))
    assert(goroutine.now() - t0 == 5, "db is not delayed by the api partition")
    results.db = results.db + 1
    wg:done()
  end}
end
wg:wait()
assert(results.ran == 10 and results.rejected == 2 and results.db == 3)
log.info("api: 10 ran, 2 rejected; db: 3 ran")

-- A failing call gives its slot back.
local ok2, err2 = bulkhead:execute("cache_service", function() error("cache miss") end)
assert(not ok2 and err2:find("cache miss") and bulkhead:in_flight("cache_service") == 0)

-- max_wait: 5 slots held for 20 ms; a 6th waits (in order) and gets in at t+20 ... but only
-- if 20 ms fit in its 15 ms max_wait: it does not, and is rejected at t+15.
local t0 = goroutine.now()
for i = 1, 5 do
  wg:add(1)
  goroutine.spawn{name = "cache-" .. i, fn = function()
    assert(bulkhead:execute("cache_service", function() goroutine.sleep(20) end))
    wg:done()
  end}
end
goroutine.sleep(1)
local ok3, err3 = bulkhead:execute("cache_service", function() error("never runs") end)
assert(not ok3 and err3 == "bulkhead full: cache_service" and goroutine.now() == t0 + 16)
-- One that waits from t+10 gets the first freed slot at t+20.
goroutine.sleep(t0 + 10 - goroutine.now())
assert(bulkhead:execute("cache_service", function() return true end))
assert(goroutine.now() == t0 + 20)
wg:wait()
log.info("cache: waited and got in at t+20")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
