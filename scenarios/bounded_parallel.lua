-- bounded_parallel.lua: bounded parallelism (seed 7.1), errgroup with SetLimit and a queue.
--
-- Shows: the seed's example (bounded_parallel{max_parallel, queue_size}; submit many functions;
-- only max_parallel run at once; wait_all), with max_parallel = 3, queue_size = 4 and 12 tasks
-- instead of 10, 100 and 1000 to keep the trace readable. Each task works 10 ms. The first 3
-- submits "start" a goroutine each; the next 4 are queued; the 8th submit blocks until a
-- running task ends (t=10) and its goroutine takes the oldest queued one. Task 5 fails: its
-- error is in the list wait_all returns. The peak of concurrently running tasks is 3, every
-- task runs once, and the group's goroutines have all ended when wait_all returns (t=40).
--
-- Run:   cargo run --release -- run scenarios/bounded_parallel.lua --seed 7
--
-- In the trace: "start bounded_parallel#1 active=N", "queue ... queued=N",
-- "block-submit bounded_parallel#1", the workers' sleeps, and "block-wait" for wait_all.

local bounded = goroutine.bounded_parallel({
  max_parallel = 3,
  queue_size = 4,
})

local running, peak, ran = 0, 0, {}
local function work(i)
  running = running + 1
  if running > peak then peak = running end
  goroutine.sleep(10)
  running = running - 1
  ran[i] = (ran[i] or 0) + 1
  if i == 5 then error("task 5 failed") end
end

-- Submit 12 tasks, but only 3 run at the same time
for i = 1, 12 do
  bounded:submit(function()
    work(i)
  end)
end

local errors = bounded:wait_all()
assert(#errors == 1 and errors[1]:find("task 5 failed"), #errors)
assert(peak == 3, peak)
for i = 1, 12 do assert(ran[i] == 1, "task " .. i .. " ran once") end
local s = bounded:stats()
assert(s.active == 0 and s.queued == 0 and s.completed == 11 and s.failed == 1)
log.info(string.format("done at %sms, peak %d, %d error(s)", tostring(goroutine.now()), peak, #errors))
