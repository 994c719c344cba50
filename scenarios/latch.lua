-- latch.lua: waiting for five workers with a countdown latch (seed 5.2, Java's CountDownLatch).
--
-- Shows: the seed's example (five workers count down, main waits for all of them); the count
-- only goes down (count_down at 0 does nothing); a wait on an open latch returns at once; a timed
-- wait that gives up returns false and changes nothing; several waiters are all woken by the
-- count_down that reaches 0.
--
-- Run:   cargo run --release -- run scenarios/latch.lua --seed 7
--
-- In the trace: "new latch#1 count=5", then each worker's "count_down latch#1 count=N" (in an
-- order the seed picks) and main's "block-wait latch#1" until the fifth, which wakes main
-- ("open"). For the second latch, main's 5 ms wait and "impatient"'s 15 ms
-- wait time out ("timeout"), while "patient" and main's second wait are woken together at t=120.

local latch = goroutine.latch(5)
assert(latch:count() == 5)

local function work(i)
  goroutine.sleep(10 * i)
  log.info("worker " .. i .. " done at t=" .. goroutine.now())
end

-- The seed's example, as written there.
for i = 1, 5 do
  goroutine.spawn(function()
    work(i)
    latch:count_down()
  end)
end

latch:wait()
log.info("All workers completed")
assert(latch:count() == 0 and goroutine.now() == 50)

-- The count never increases: counting down an open latch does nothing, and waits return at once.
latch:count_down()
assert(latch:count() == 0)
assert(latch:wait() == true and latch:wait(0) == true)

-- Several waiters, one of them impatient.
local gate = goroutine.latch(2)
local start = goroutine.now()
local patient_at, impatient_result
goroutine.spawn{name = "patient", fn = function()
  assert(gate:wait() == true)
  patient_at = goroutine.now()
end}
goroutine.spawn{name = "impatient", fn = function()
  impatient_result = gate:wait(15)
end}
goroutine.spawn{name = "opener", fn = function()
  goroutine.sleep(10)
  gate:count_down()
  goroutine.sleep(60)
  gate:count_down()
end}
assert(gate:wait(5) == false, "a timed wait gives up")
assert(gate:count() == 2, "a wait that gave up changes nothing")
assert(gate:wait(100) == true)
assert(goroutine.now() == start + 70)
goroutine.sleep(1)
assert(impatient_result == false and patient_at == start + 70)
log.info("gate opened at t=" .. patient_at)
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
