-- priority_worker_pool.lua: a worker pool that runs the highest-priority task first (seed 3.1).
--
-- Shows: the seed's example (priority_worker_pool{workers, fn}; submit(task, prio); wait();
-- close()), with 2 workers instead of 10 so that tasks queue up and the priority order shows.
-- Tasks 1 and 2 are taken at once by the two idle workers; the others wait in the queue and are
-- run highest priority first, FIFO among equal priorities: 5 and 7 (priority 10, in submit
-- order), then 4 (priority 5), then 3 and 6 (priority 1), at distinct instants since each task
-- works 10 + id ms. wait() returns when the queue is
-- empty and no task runs; close() refuses new work and ends the workers.
--
-- Run:   cargo run --release -- run scenarios/priority_worker_pool.lua --seed 7
--
-- In the trace: "send priority_channel#2 ... prio=10", the workers' "receive" in priority
-- order, "block-wait priority_pool#1" for wait(), then "close" and the workers' exit.

local started = {}
local function process(task)
  goroutine.sleep(10 + task.id)  -- some work, in virtual time (each task a different length)
  return task.id
end

local pool = goroutine.priority_worker_pool({
  workers = 2,
  fn = function(task)
    started[#started + 1] = task.id
    log.info("Processing task: " .. task.id)
    return process(task)
  end
})

-- Submit tasks with a priority
pool:submit({id = 1, data = "..."}, 10)  -- high priority
pool:submit({id = 2, data = "..."}, 1)   -- low priority
goroutine.sleep(1)                        -- both workers are busy now
pool:submit({id = 3, data = "..."}, 1)
pool:submit({id = 4, data = "..."}, 5)
pool:submit({id = 5, data = "..."}, 10)
pool:submit({id = 6, data = "..."}, 1)
pool:submit({id = 7, data = "..."}, 10)

-- Wait for completion
pool:wait()
pool:close()

assert(table.concat(started, ",", 3) == "5,7,4,3,6", table.concat(started, ","))
local ok, err = pool:submit({id = 8}, 10)
assert(ok == false and err == "closed")
local s = pool:stats()
assert(s.completed == 7 and s.failed == 0 and s.queued == 0 and s.active == 0)
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
