-- once.lua: one-time initialisation shared by many goroutines (Go's sync.Once).
--
-- Shows: once:call(fn) runs fn only on the first call; callers that arrive while it runs
-- block until it has finished, so everybody sees the initialised value; if fn raises, the
-- error goes to that first caller only and the once still counts as done.
--
-- Run:   cargo run --release -- run scenarios/once.lua --seed 7
--
-- In the trace: one "loading config" line; the other callers block until t=10 and then all
-- read the same config.

local once = goroutine.once()
local config, loads = nil, 0

local function load_config()
  loads = loads + 1
  log.info("loading config (takes 10 ms)")
  goroutine.sleep(10)                       -- the other callers block meanwhile
  config = { port = 8080 }
end

local wg = goroutine.wait_group()
for i = 1, 4 do
  wg:add(1)
  goroutine.spawn{name = "handler-" .. i, fn = function()
    once:call(load_config)
    -- Whoever ran it, and whenever this caller arrived, the config is ready here.
    assert(config and config.port == 8080, "call returns only after the first call finished")
    log.info("handler " .. i .. " sees port " .. config.port .. " at t=" .. goroutine.now())
    wg:done()
  end}
end
wg:wait()
assert(loads == 1, "loaded once, not " .. loads .. " times")
assert(goroutine.now() == 10)

-- An error in fn: raised to the first caller, and the once is spent anyway.
local failing = goroutine.once()
local ok, err = pcall(failing.call, failing, function() error("disk on fire") end)
assert(not ok and tostring(err):find("disk on fire"))
log.info("first call failed: " .. tostring(err))
local ran_again = false
failing:call(function() ran_again = true end)
assert(not ran_again, "a once whose fn raised still counts as done")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
