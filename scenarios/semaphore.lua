-- semaphore.lua: bounding concurrency with a counting semaphore.
--
-- Shows: at most 2 of 5 downloads run at once; acquire blocks while no permit is free;
-- try_acquire never blocks; available() and capacity().
--
-- Run:   cargo run --release -- run scenarios/semaphore.lua --seed 7
--
-- In the trace: two downloads start at t=0, three "block-acquire"; each release at t=10 and
-- t=20 lets the next ones in; all five are done at exactly t=30 (ceil(5/2) rounds of 10 ms).

local sem = goroutine.semaphore(2)
assert(sem:capacity() == 2 and sem:available() == 2)

local running, max_running = 0, 0
local wg = goroutine.wait_group()
for i = 1, 5 do
  wg:add(1)
  goroutine.spawn{name = "download-" .. i, fn = function()
    sem:acquire()                       -- waits for a free permit
    running = running + 1
    max_running = math.max(max_running, running)
    log.info("download " .. i .. " starts at t=" .. goroutine.now() .. " (" .. running .. " running)")
    goroutine.sleep(10)
    running = running - 1
    sem:release()                       -- hands the permit to the next waiter
    wg:done()
  end}
end

-- While the downloads run, no permit is free: try_acquire says so at once.
goroutine.sleep(5)
assert(sem:available() == 0)
assert(sem:try_acquire() == false)
log.info("t=5: available=" .. sem:available() .. ", try_acquire refused")

wg:wait()
assert(max_running == 2, "never more than the capacity")
assert(goroutine.now() == 30)
assert(sem:available() == 2, "every permit came back")

-- try_acquire takes a free permit without blocking; give it back with release.
assert(sem:try_acquire() == true and sem:available() == 1)
sem:release()
log.info("all downloads done at t=" .. goroutine.now())
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
