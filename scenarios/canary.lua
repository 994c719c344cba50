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
-- Look for: "FAIL (deadlock)" and a report naming every blocked goroutine with the line where
-- it blocked, each mutex with its creation line (A is created on line 19, B on line 20), and
-- who holds which, so the cycle can be read off the report:
--   transfer-a-to-b waits mutex B (held by transfer-b-to-a) -> transfer-b-to-a waits mutex A
--   (held by transfer-a-to-b).
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
