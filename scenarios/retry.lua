-- retry.lua: retrying a flaky operation with exponential backoff (seed 3.5; cenkalti/backoff and
-- AWS "Exponential Backoff And Jitter" semantics).
--
-- Shows: the seed's example (5 attempts, 100 ms doubling up to 10 s, full jitter): the operation
-- fails 3 times, then succeeds on the 4th call; each jittered delay is at most its cap d_k
-- (100, 200, 400 ms) and comes from the run's seed; without jitter the calls land at exact
-- instants (0, 100, 300, 700 ms after the start); when every attempt fails, the last error is
-- returned after max_attempts calls and max_attempts - 1 sleeps; a permanent error stops at once.
--
-- Run:   cargo run --release -- run scenarios/retry.lua --seed 7
--
-- In the trace: "retry retry#1 attempt=2 delay=..." before each sleep (the jittered delays
-- change with the seed), "log.info attempt N" for each call, and no sleep after the permanent
-- error.

local attempts = 0
local called_at = {}
local function risky_operation()
  attempts = attempts + 1
  called_at[attempts] = goroutine.now()
  log.info("attempt " .. attempts .. " at t=" .. goroutine.now())
  if attempts < 4 then
    return nil, "temporarily unavailable"   -- a `nil, err` return is a failure
  end
  return "data"
end

-- The seed's example.
local result, err = goroutine.retry({
  max_attempts = 5,
  initial_delay = 100,   -- ms
  max_delay = 10000,     -- ms
  multiplier = 2,        -- doubles each attempt
  jitter = true          -- full jitter, from the run's seed
}, function()
  return risky_operation()
end)
assert(result == "data" and err == nil and attempts == 4)
for k = 1, 3 do
  local slept = called_at[k + 1] - called_at[k]
  assert(slept >= 0 and slept <= 100 * 2 ^ (k - 1), "delay " .. k .. " beyond its cap")
end

-- Without jitter: exact instants (compared to the nanosecond: the clock is in ns, Lua's ms are
-- floats after the jittered part).
local function near(a, b) return math.abs(a - b) < 1e-6 end
attempts, called_at = 0, {}
local t0 = goroutine.now()
assert(goroutine.retry({max_attempts = 5}, risky_operation) == "data")
assert(near(called_at[2] - t0, 100) and near(called_at[3] - t0, 300) and near(called_at[4] - t0, 700))

-- Every attempt fails: the last error, after 3 calls (the default) and 2 sleeps.
attempts = 0
t0 = goroutine.now()
local r2, e2 = goroutine.retry({}, function()
  attempts = attempts + 1
  error("down " .. attempts)
end)
assert(r2 == nil and e2:find("down 3") and attempts == 3)
assert(near(goroutine.now() - t0, 300))
log.info("gave up: " .. e2)

-- A permanent error stops at once, unwrapped.
attempts = 0
local r3, e3 = goroutine.retry({max_attempts = 10}, function()
  attempts = attempts + 1
  return nil, goroutine.permanent("invalid credentials")
end)
assert(r3 == nil and e3 == "invalid credentials" and attempts == 1)
log.info("stopped: " .. e3)
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
