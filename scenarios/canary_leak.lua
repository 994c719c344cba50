-- canary_leak.lua: a deliberate goroutine leak. THIS SCENARIO MUST FAIL (exit code 1) under
-- every seed.
--
-- Shows: the most common leak in Go: a request is abandoned after a timeout, and the worker
-- that was going to answer blocks forever on an unbuffered reply channel nobody reads any
-- more. Main itself ends normally, so only the leak check at the end catches it (goleak
-- semantics: a non-daemon goroutine still alive after main and the drain is a failure).
--
-- Run:   cargo run --release -- run scenarios/canary_leak.lua --seed 7      (expect exit code 1)
--
-- Look for: "FAIL (leak)" naming goroutine "slow-worker", blocked sending on the reply
-- channel (created on line 15) at line 19. The fix: `goroutine.channel(1)`, so the late
-- reply fits in the buffer and the worker can exit (see context_cancel.lua).

local reply = goroutine.channel()           -- unbuffered: the bug

goroutine.spawn{name = "slow-worker", fn = function()
  goroutine.sleep(100)
  reply:send("too late")                    -- blocks forever: main stopped listening at t=50
end}

local timed_out = goroutine.select_timeout(50, {
  { channel = reply, receive = true },
})
assert(timed_out == true)
log.info("gave up waiting at t=" .. goroutine.now() .. "; main returns, slow-worker is leaked")
-- gosim: expect-fail (the canary: `gosim test` passes when the sweep finds the leak)
-- gosim: exact-time (the deadlock relies on a sleep being a barrier: the clock moves only when everybody is blocked)
