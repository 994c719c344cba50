-- observability.lua: the profiler, the channel inspector and the deadlock detector (seed 6.x).
--
-- Shows: a profiler counting the goroutines of a small job; a channel inspector reading a
-- channel's counters (exact at every instant: sent = received + buffered + dropped); and a
-- deadlock detector that notices a goroutine stuck for longer than its timeout, reports it once,
-- and keeps quiet afterwards. Reading any of them is never a scheduling point, so adding them to a
-- scenario does not change its interleavings.
--
-- Run:   cargo run --release -- run scenarios/observability.lua --seed 7
--
-- Look for: the inspector's counters after each phase, the profiler's stats (5 goroutines, one
-- failed: the async that raised), and one log.warn from the detector at t=300ms naming the
-- goroutine stuck on the "orders" channel and the line where it waits.

local profiler = goroutine.profiler()
profiler:start()

local jobs = goroutine.channel(4)
local inspector = goroutine.channel_inspector(jobs)

local detector = goroutine.deadlock_detector{check_interval = 100, timeout = 250}
local reports = 0
detector:on_deadlock(function(info)
  reports = reports + 1
  local g = info.stuck[1]
  log.warn("detector: " .. info.stuck_count .. " goroutine(s) stuck on " .. info.blocked_channels ..
           " channel(s): " .. (g.name or ("g" .. g.id)) .. " in " .. g.op .. " at " .. g.location ..
           " since " .. g.since .. "ms")
end)
detector:start()                       -- a daemon that only watches: never a leak

-- Phase 1: three producers fill the buffered channel; the inspector sees every value.
local wg = goroutine.wait_group()
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn{name = "producer-" .. i, fn = function()
    jobs:send(i)
    goroutine.sleep(10 * i)
    wg:done()
  end}
end
wg:wait()
assert(inspector:total_sent() == 3 and inspector:len() == 3)
log.info("after producing: sent=" .. inspector:total_sent() .. " received=" .. inspector:total_received() ..
         " len=" .. inspector:len() .. "/" .. inspector:cap())

-- Phase 2: drain it; the counters keep sent = received + len.
jobs:receive(); jobs:receive()
local s = inspector:stats()
assert(s.total_sent == s.total_received + s.len + s.dropped)
log.info("after draining two: received=" .. s.total_received .. " len=" .. s.len)

-- An async that fails counts as failed in the profiler (its error is returned by await).
local ok, err = goroutine.await(goroutine.async(function() error("bad input") end))
assert(not ok and err:find("bad input"))
goroutine.sleep(1)                      -- let the async goroutine itself finish (after await returned)

local stats = profiler:stats()
log.info(string.format("profiler: created=%d completed=%d failed=%d active=%d max_active=%d avg_lifetime=%.1fms",
  stats.total_created, stats.completed, stats.failed, stats.active, stats.max_active, stats.avg_lifetime))
assert(stats.total_created == stats.active + stats.completed + stats.failed)
assert(stats.failed == 1 and stats.total_created == 5)

-- Phase 3: a consumer waits on a channel nobody feeds for a while: the detector reports it once.
local orders = goroutine.channel()
goroutine.spawn{name = "order-taker", fn = function() orders:receive() end}
goroutine.sleep(600)                    -- two more checks pass: the same situation is not re-reported
orders:send("late order")
assert(reports == 1, "the stuck consumer is reported exactly once, got " .. reports)
detector:stop()
