-- adaptive_pool.lua: an adaptive worker pool that grows and shrinks with its load (seed 7.3).
--
-- Shows: the seed's example (adaptive_pool{min_workers = 2, max_workers = 20, scale_up_threshold
-- = 0.8, scale_down_threshold = 0.2, check_interval = 5000}; process(fn)), with max_workers = 6
-- and a burst of 40 tasks of 3 s each at t=0 to keep the trace readable. Checks run every 5 s
-- from the pool's creation: while queued tasks keep utilisation = (busy + queued) / workers above
-- 0.8, each check adds one worker ("scale-up ... workers=3" at 5000ms, ... up to 6); once the
-- queue is drained and workers sit idle, each check retires one idle worker ("scale-down") down
-- to 2. The count changes only at checks. wait() returns when the burst is done; close() ends
-- the workers. A check that could change nothing is not armed, so the idle pool keeps no timer.
--
-- Run:   cargo run --release -- run scenarios/adaptive_pool.lua --seed 7
--
-- In the trace: "scale-up adaptive_pool#1 utilisation=19.00 workers=3" at 5000ms, ..., then
-- "scale-down ... workers=5" and so on, "close", and the workers' exit.

local pool = goroutine.adaptive_pool({
  min_workers = 2,
  max_workers = 6,
  scale_up_threshold = 0.8,    -- 80% utilisation
  scale_down_threshold = 0.2,  -- 20% utilisation
  check_interval = 5000        -- check every 5s
})

local done = 0
local function work(task)
  goroutine.sleep(3000)        -- 3 s of virtual work
  done = done + 1
  return task * 2
end

pool:process(function(task)
  return work(task)
end)

for i = 1, 40 do pool:submit(i) end

local peak = 0
-- The pool adjusts its workers automatically: watch it every 5 s.
for _ = 1, 12 do
  goroutine.sleep(5000)
  local s = pool:stats()
  if s.workers > peak then peak = s.workers end
  log.info(string.format("t=%ss workers=%d busy=%d queued=%d", tostring(goroutine.now() // 1000),
    s.workers, s.busy, s.queued))
end
assert(pool:wait())
assert(done == 40 and peak == 6, peak)
assert(pool:stats().workers == 2)    -- back to min once idle
pool:close()
