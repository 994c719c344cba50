-- rate_limiter.lua: a token bucket in front of an API (seed 3.2; x/time/rate semantics).
--
-- Shows: the seed's example (100 calls per second with a burst of 10; the loop is cut to 25
-- calls so the trace stays readable); the first 10 calls go at t=0 (the bucket starts full), then
-- one every 10 ms; allow() refuses without changing anything; reserve() takes tokens into debt
-- and says when they may be used, cancel() gives them back; a wait that could not finish within
-- its timeout fails at once and takes nothing; two goroutines waiting are admitted in call order.
--
-- Run:   cargo run --release -- run scenarios/rate_limiter.lua --seed 7
--
-- In the trace: ten "wait rate_limiter#1 n=1" at t=0, then "block-wait" / "wait" pairs 10 ms
-- apart; "allow ... refused" at t=150; "reserve n=3 delay=30ms" and its "cancel"; the refused
-- "wait n=5 refused" (a 20 ms timeout for a 50 ms wait), and the workers admitted at 10 ms steps.

local limiter = goroutine.rate_limiter({
  rate = 100,      -- 100 operations
  per = 1000,      -- per second (1000 ms)
  burst = 10       -- at most 10 at once
})

local calls = {}
local function api_call()
  calls[#calls + 1] = goroutine.now()
end

-- The seed's example (1000 calls in the seed; 25 here).
for i = 1, 25 do
  limiter:wait()   -- blocks while the bucket is empty
  api_call()
end
-- The burst goes at once, then one token every 10 ms.
for i = 1, 10 do assert(calls[i] == 0) end
for i = 11, 25 do assert(calls[i] == (i - 10) * 10, "call " .. i .. " at " .. calls[i]) end

-- Idle for a while: the bucket refills, but never beyond the burst.
goroutine.sleep(1000)
assert(limiter:allow(10))
assert(not limiter:allow())       -- refused: changes nothing
local t0 = goroutine.now()

-- A reservation: 3 tokens owed, usable in 30 ms; cancelled, they come back.
local r = limiter:reserve(3)
assert(r:ok() and r:delay() == 30)
r:cancel()
assert(limiter:allow(0))          -- zero tokens: always allowed

-- A wait that could not finish in time fails at once and takes nothing.
local ok, err = limiter:wait(5, 20)
assert(not ok and goroutine.now() == t0, err)
log.info("refused: " .. err)
local ok2, err2 = limiter:wait(11)
assert(not ok2, "more than the burst can never succeed")
log.info("refused: " .. err2)

-- Waiters are admitted in call order, one token each 10 ms.
local order = {}
local wg = goroutine.wait_group()
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn{name = "worker-" .. i, fn = function()
    goroutine.sleep(i)            -- call order: worker-1 first
    assert(limiter:wait())
    order[#order + 1] = i
    log.info("worker-" .. i .. " admitted at t=" .. goroutine.now())
    wg:done()
  end}
end
wg:wait()
assert(order[1] == 1 and order[2] == 2 and order[3] == 3)
assert(goroutine.now() == t0 + 30)
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
