-- canary_cycle.lua: a lock-order inversion while another goroutine keeps running.
-- THIS SCENARIO MUST FAIL (exit code 1) under every seed.
--
-- A global deadlock check ("no goroutine can run") would never fire here: a daemon heartbeat
-- keeps ticking, so there is always something to run, and the run would go on until the time
-- horizon. gosim checks the wait-for graph each time a goroutine blocks on a lock: when the two
-- transfers wait on each other's mutex the cycle is closed, and the run fails at once (t=1ms)
-- with "deadlock (cycle)", printing the cycle in order.
--
-- Run:   cargo run --release -- run scenarios/canary_cycle.lua --seed 7      (expect exit code 1)
--
-- Look for: "FAIL (deadlock (cycle)) at 1ms", then the cycle: each goroutine, the mutex it waits
-- on (with the line that created it) and who holds it; the heartbeat is not part of it.

local A = goroutine.mutex()                -- account A
local B = goroutine.mutex()                -- account B

-- A background heartbeat that never stops (a daemon: it is never a leak).
goroutine.spawn{name = "heartbeat", daemon = true, fn = function()
  local t = goroutine.ticker(10)
  while true do
    t:channel():receive()
    log.debug("beat at " .. goroutine.now())
  end
end}

local function transfer(name, first, second)
  goroutine.spawn{name = name, fn = function()
    first:lock()
    goroutine.sleep(1)                     -- both now hold their first lock
    second:lock()                          -- closes the cycle: detected right here
    second:unlock()
    first:unlock()
  end}
end

transfer("transfer-a-to-b", A, B)
transfer("transfer-b-to-a", B, A)
goroutine.sleep(1000)                      -- main would wait here; the cycle ends the run first
-- gosim: expect-fail (the canary: `gosim test` passes when the sweep finds the cycle)
-- gosim: exact-time (the deadlock relies on a sleep being a barrier: the clock moves only when everybody is blocked)
