-- weighted_semaphore.lua: sharing 10 units of a resource among jobs of different sizes (seed 5.4).
--
-- Shows: the seed's example (acquire 3, work, release 3; acquire 1, work, release 1); strict
-- FIFO with no barging (a big request at the head is not overtaken by small ones that would fit);
-- try_acquire refuses while anyone waits; a timed acquire that gives up leaves the queue and lets
-- the next waiter in; available() and capacity().
--
-- Run:   cargo run --release -- run scenarios/weighted_semaphore.lua --seed 7
--
-- In the trace: "acquire weighted_semaphore#1 w=3" and its release; at t=12 "big" (w=8) blocks
-- behind the 6 units held, and at t=13 "small" (w=1) queues behind it although 4 units are free;
-- at t=22 the holders release, "big" gets its 8 units, then "small" its 1; "impatient" gives up
-- at t=42 ("timeout"), and "patient", queued behind it, is granted in the same instant.

local sem = goroutine.weighted_semaphore(10)
assert(sem:capacity() == 10 and sem:available() == 10)

local function work_with_resources(n)
  log.info("working with " .. n .. " unit(s) at t=" .. goroutine.now())
  goroutine.sleep(1)
end

-- The seed's example, as written there.
sem:acquire(3)
work_with_resources(3)
sem:release(3)

sem:acquire(1)
work_with_resources(1)
sem:release(1)
assert(sem:available() == 10)

-- No barging: two holders take 6 units; "big" wants 8 and waits; "small" wants 1 and would fit,
-- but it queues behind "big" (FIFO), so a stream of small requests can never starve a big one.
local wg = goroutine.wait_group()
local function job(name, w, hold, check)
  wg:add(1)
  goroutine.spawn{name = name, fn = function()
    assert(sem:acquire(w))
    if check then check() end
    goroutine.sleep(hold)
    sem:release(w)
    wg:done()
  end}
end
job("holder-a", 3, 20)
job("holder-b", 3, 20)
goroutine.sleep(10)
job("big", 8, 5)
goroutine.sleep(1)
job("small", 1, 5, function()
  -- Granted in request order: when "small" gets its unit, "big" already holds its 8.
  assert(sem:available() == 1, "big was granted before small")
end)
goroutine.sleep(1)
assert(sem:available() == 4, "6 units held, waiters take nothing until granted")
assert(sem:try_acquire(1) == false, "try_acquire refuses while anyone waits")
wg:wait()
log.info("big and small granted in request order at t=" .. goroutine.now() - 5)

-- A timed acquire: "impatient" (w=10) gives up after 15 ms; "patient" (w=2), queued behind it,
-- is granted the moment the head leaves.
local ok, err, gave_up_at = nil, nil, nil
sem:acquire(9)
local started = goroutine.now()
goroutine.spawn{name = "impatient", fn = function()
  ok, err = sem:acquire(10, 15)
  gave_up_at = goroutine.now()
end}
goroutine.sleep(1)                      -- "impatient" is queued first
local patient_at
goroutine.spawn{name = "patient", fn = function()
  sem:acquire(1)
  patient_at = goroutine.now()
  sem:release(1)
end}
goroutine.sleep(20)
assert(ok == false and err == "timeout" and gave_up_at == started + 15)
assert(patient_at == gave_up_at, "the next waiter went in when the head timed out")
sem:release(9)

-- A timeout of 0 is a try.
assert(sem:acquire(1, 0) == true)
sem:release(1)
log.info("done at t=" .. goroutine.now() .. ", available=" .. sem:available())
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
