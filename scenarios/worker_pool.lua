-- worker_pool.lua: a named pool of 2 workers (the original module's pool_* functions).
--
-- Shows: pool_create / pool_submit / pool_wait / pool_stats / pool_close; that pool_submit
-- never blocks and answers `nil, "pool queue is full"` when its queue (workers*2 = 4 tasks)
-- is full, and how to handle that: back off and retry; a failing task counted in `failed`.
--
-- Run:   cargo run --release -- run scenarios/worker_pool.lua --seed 7
--
-- In the trace: "queue full" warnings while the two workers are busy, each retry 5 ms later,
-- never more than two tasks running at once, and the final stats.

local POOL = "jobs"
assert(goroutine.pool_create(POOL, { workers = 2 }) == true)

local running, max_running = 0, 0
local function job(n)
  running = running + 1
  max_running = math.max(max_running, running)
  goroutine.sleep(10)                  -- the work: 10 ms of virtual time
  running = running - 1
  if n == 7 then error("job 7 failed on purpose") end  -- counted in stats.failed, not a run failure
  log.info("job " .. n .. " done at t=" .. goroutine.now())
end

-- Submit 10 jobs. The queue holds only 4, so some submits are refused: retry them later.
local refused = 0
for n = 1, 10 do
  while true do
    local id, err = goroutine.pool_submit(POOL, job, n)   -- extra arguments go to the task
    if id then
      log.info("submitted job " .. n .. " as " .. id)
      break
    end
    assert(err == "pool queue is full", err)
    refused = refused + 1
    log.warn("queue full for job " .. n .. ", retrying in 5 ms")
    goroutine.sleep(5)                 -- give the workers time to take tasks from the queue
  end
end
assert(refused > 0, "with 10 jobs and room for 4 + 2 running, some submits must be refused")

log.table(goroutine.pool_stats(POOL), "stats while running")

-- pool_wait closes the queue and blocks until the workers have finished everything.
assert(goroutine.pool_wait(POOL) == true)
local st = goroutine.pool_stats(POOL)
log.table(st, "stats after wait")
assert(st.name == POOL and st.workers == 2)
assert(st.completed == 9 and st.failed == 1 and st.active == 0 and st.queued == 0)
assert(max_running == 2, "at most 2 jobs run at once")

-- The queue is closed now: a new submit is refused, never blocked.
local id, err = goroutine.pool_submit(POOL, job, 11)
assert(id == nil and err == "pool is closed", tostring(err))

-- pool_close after pool_wait is fine (the Go original panicked here).
assert(goroutine.pool_close(POOL) == true)
local none, err2 = goroutine.pool_submit("no-such-pool", job, 12)
assert(none == nil and err2 == "pool not found: no-such-pool")
log.info("10 jobs: 9 completed, 1 failed; " .. refused .. " submits had to be retried")
