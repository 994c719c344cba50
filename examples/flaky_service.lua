-- A client of a flaky key-value service. `fetch(key)` is a host function: in a simulation the
-- host (examples/flaky_service.rs) answers after a seeded latency, with seeded transient faults
-- (`buggify`) and a seeded outage window; in production it asks a real TCP service. The script
-- is the same in both: only the host decides what `fetch` talks to.
--
-- Resilience: every fetch goes through a circuit breaker (3 consecutive failures open it for
-- 100 ms) inside a retry with jittered exponential backoff (4 attempts). The property checked
-- at the end: every key was eventually fetched. It holds against transient faults; a long
-- enough outage defeats it, and a seed sweep finds the seeds where that happens.

local CLIENTS, KEYS_PER_CLIENT = 3, 4

local breaker = goroutine.circuit_breaker{threshold = 3, timeout = 100, half_open_max = 1,
  on_state_change = function(from, to) log.info("breaker " .. from .. " -> " .. to) end}
local policy = {max_attempts = 4, initial_delay = 20, max_delay = 100, jitter = true}

-- One resilient fetch: the breaker refuses at once while open, the retry waits and tries again.
local function fetch_resilient(key)
  return goroutine.retry(policy, function()
    local ok, value = breaker:call(fetch, key)
    if ok then return value end
    return nil, value
  end)
end

local failed = {}
local wg = goroutine.wait_group()
for c = 1, CLIENTS do
  wg:add(1)
  goroutine.spawn{name = "client-" .. c, fn = function()
    for k = 1, KEYS_PER_CLIENT do
      local key = "user" .. c .. "-" .. k
      local value, err = fetch_resilient(key)
      if value == nil then
        failed[#failed + 1] = key .. " (" .. tostring(err) .. ")"
      else
        assert(value == "value-of-" .. key, "wrong value for " .. key .. ": " .. tostring(value))
      end
      goroutine.sleep(30)
    end
    wg:done()
  end}
end
wg:wait()
log.info("fetched " .. (CLIENTS * KEYS_PER_CLIENT - #failed) .. " of " .. CLIENTS * KEYS_PER_CLIENT)
assert(#failed == 0, "gave up on " .. #failed .. " key(s): " .. table.concat(failed, ", "))
