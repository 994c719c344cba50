-- circuit_breaker.lua: protecting callers from a failing service (seed 3.3; sony/gobreaker
-- semantics with generations).
--
-- Shows: the seed's example (threshold 5, timeout 30 s, 3 trial calls); 5 consecutive failures
-- open the breaker; while open, calls are rejected without running ("circuit breaker is open");
-- at exactly +30000 ms it is still open, strictly after it turns half-open; half-open admits 3
-- trial calls and rejects a 4th ("too many requests"); 3 successes close it; a slow call admitted
-- before the breaker opened finishes later and its result is ignored (an older generation);
-- on_state_change runs in the goroutine whose call caused each transition.
--
-- Run:   cargo run --release -- run scenarios/circuit_breaker.lua --seed 7
--
-- In the trace: "failure circuit_breaker#1" five times, then "state ... closed -> open";
-- "reject ... circuit breaker is open"; at t=30001 "state ... open -> half-open"; three
-- "admit ... generation=2" by the trial goroutines, one "reject ... too many requests";
-- "state ... half-open -> closed"; and "ignored ... generation=0" for the slow call.

local healthy = false
local runs = 0
local function risky_operation()
  runs = runs + 1
  if healthy then return "ok" end
  return nil, "service unavailable"      -- a `nil, err` return is a failure
end

local transitions = {}
local cb = goroutine.circuit_breaker({
  threshold = 5,        -- consecutive failures that open it
  timeout = 30000,      -- time spent open (ms)
  half_open_max = 3,    -- trial calls when half-open
  on_state_change = function(from, to)
    transitions[#transitions + 1] = from .. "->" .. to
    log.info("breaker: " .. from .. " -> " .. to .. " at t=" .. goroutine.now())
  end,
})

-- A slow call admitted while closed (generation 0): its failure arrives after the breaker has
-- opened, and is ignored.
local slow_done = goroutine.channel(1)
goroutine.spawn{name = "slow", fn = function()
  local ok, err = cb:call(function() goroutine.sleep(50) error("slow failure") end)
  assert(not ok)
  slow_done:send(true)
end}

-- The seed's example, five times: each failure is counted; the fifth opens the breaker.
for i = 1, 5 do
  local success, result = cb:call(function()
    return risky_operation()
  end)
  if not success then
    log.error("call failed: " .. result)
  end
end
assert(cb:state() == "open" and runs == 5)
local opened = goroutine.now()

-- While open: rejected without running.
local success, result = cb:call(function() return risky_operation() end)
assert(not success and result == "circuit breaker is open" and runs == 5)
log.error("Circuit breaker open: " .. result)
log.info("State: " .. cb:state())
assert(slow_done:receive())                -- its late failure was ignored: still open

-- At exactly +timeout it is still open; strictly after, half-open.
goroutine.sleep(opened + 30000 - goroutine.now())
assert(not cb:call(risky_operation) and runs == 5)
goroutine.sleep(1)
assert(cb:state() == "half-open")

-- Half-open: 3 trial calls run (they take 10 ms), a 4th is rejected.
healthy = true
local wg = goroutine.wait_group()
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn{name = "trial-" .. i, fn = function()
    local ok, v = cb:call(function() goroutine.sleep(10) return risky_operation() end)
    assert(ok and v == "ok")
    wg:done()
  end}
end
goroutine.sleep(1)
local ok, err = cb:call(risky_operation)
assert(not ok and err == "too many requests")
wg:wait()
assert(cb:state() == "closed")
log.info("State: " .. cb:state())
assert(table.concat(transitions, ",") == "closed->open,open->half-open,half-open->closed")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
