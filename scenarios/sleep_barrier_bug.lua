-- sleep_barrier_bug.lua: a timing bug that exact virtual time hides (after cockroach#4407).
--
-- Shows: a WaitGroup.Add racing with Wait. A stopper starts tasks and, to "let them register",
-- sleeps 1 ms before waiting for them; each task does a little setup, then registers with
-- wg:add(1). The bug (as in CockroachDB's stopper, issue 4407): the sleep is not a barrier. On a
-- real machine a task's setup can take longer than 1 ms, so the stopper's wait sees a zero
-- counter, returns at once, and closes the store while a task is about to use it.
--
-- Under `gosim run` (and `--strategy random` or `pct`) the virtual clock moves only when no
-- goroutine can run, so every task finishes its setup before the 1 ms timer fires: the sleep
-- acts as a barrier and this scenario passes for every seed. The default `gosim explore` runs a
-- portfolio whose `cost` members make every scheduling step take time, as real work does: a few
-- runs in a hundred then fail, and the summary says they were found by `cost:...`.
--
-- Run:   cargo run --release -- run scenarios/sleep_barrier_bug.lua --seed 7          (passes)
--        cargo run --release -- explore scenarios/sleep_barrier_bug.lua --runs 1000  (fails)
--        then run the printed reproduce line, or `gosim shrink` with it.
--
-- The fix: wg:add(1) in the stopper, before spawning each task (as wait_group.lua does), never
-- inside the task.

local wg = goroutine.wait_group()
local registry = goroutine.mutex()
local started = {}        -- task names, in registration order (guarded by `registry`)
local closed = false      -- the store, closed by the stopper once every task is done

local function start_task(name)
  goroutine.spawn{name = name, fn = function()
    -- Setup before registering: take the registry lock and record the task (each call is a
    -- scheduling point; under a step cost each one takes time).
    registry:lock()
    started[#started + 1] = name
    registry:unlock()
    goroutine.yield()
    wg:add(1)                                -- THE BUG: registering from inside the task
    assert(not closed, name .. " uses the store after the stopper closed it")
    goroutine.yield()                        -- the task's work
    wg:done()
  end}
end

for i = 1, 3 do start_task("task-" .. i) end

goroutine.sleep(1)                           -- "give the tasks time to register"
wg:wait()
closed = true
log.info("stopper: closed the store with " .. #started .. " tasks started")
-- gosim: expect-fail (a demonstrated bug: `gosim test` passes when the sweep finds it)
