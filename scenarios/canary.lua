-- canary.lua: a deliberate deadlock. THIS SCENARIO MUST FAIL (exit code 1) under every seed.
--
-- It is the harness's canary: if it ever passes, deadlock detection is broken.
--
-- Shows: the classic lock-order inversion. "transfer-a-to-b" locks account A then B,
-- "transfer-b-to-a" locks B then A. The sleep between the two locks makes the bad
-- interleaving certain: the clock only moves when everybody is blocked, so both goroutines
-- hold their first lock at t=0 before either asks for its second at t=1.
--
-- Run:   cargo run --release -- run scenarios/canary.lua --seed 7      (expect exit code 1)
--
-- Look for: "FAIL (deadlock (cycle))": gosim checks the wait-for graph whenever a goroutine
-- blocks on a lock, so the run fails the moment the second transfer closes the cycle. The report
-- prints the cycle in order, each mutex with its creation line (A is created on line 21, B on
-- line 22) and who holds it:
--   g3(transfer-b-to-a) waits mutex#1 (created at ...:21) held by g2(transfer-a-to-b) ->
--   g2(transfer-a-to-b) waits mutex#2 (created at ...:22) held by g3(transfer-b-to-a)
-- then every goroutine in the cycle with the line where it blocked.
-- The fix: always lock in the same order (A before B).

local A = goroutine.mutex()                -- account A
local B = goroutine.mutex()                -- account B
local wg = goroutine.wait_group()

local function transfer(name, first, second)
  wg:add(1)
  goroutine.spawn{name = name, fn = function()
    first:lock()
    log.info(name .. " holds its first lock")
    goroutine.sleep(1)                     -- let the other goroutine take its first lock
    second:lock()                          -- never returns: the other one holds it
    log.info(name .. " moved the money")   -- never reached
    second:unlock()
    first:unlock()
    wg:done()
  end}
end

transfer("transfer-a-to-b", A, B)
transfer("transfer-b-to-a", B, A)          -- opposite order: the bug
wg:wait()                                  -- main blocks too
error("unreachable: the canary did not deadlock")
-- gosim: expect-fail (the canary: `gosim test` passes when the sweep finds the deadlock)
-- gosim: exact-time (the deadlock relies on a sleep being a barrier: the clock moves only when everybody is blocked)
