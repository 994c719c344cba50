-- wait_group.lua: waiting for a group of goroutines (Go's sync.WaitGroup).
--
-- Shows: wg:add before spawning (never inside the new goroutine: it might run too late),
-- wg:done at the end of each worker, wg:wait blocking until the counter is 0; several
-- goroutines may wait on the same group; making the counter negative is a misuse error.
--
-- Run:   cargo run --release -- run scenarios/wait_group.lua --seed 7
--
-- In the trace: "add waitgroup count=3", then each "done" lowering the count at t=10, 20, 30;
-- the count reaching 0 wakes both waiters (main and the reporter) at exactly t=30.

local wg = goroutine.wait_group()
local finished = {}

wg:add(3)                                  -- one add for the whole batch, before any spawn
for i = 1, 3 do
  goroutine.spawn{name = "worker-" .. i, fn = function()
    goroutine.sleep(i * 10)                -- worker i takes i*10 ms
    finished[#finished + 1] = i
    log.info("worker " .. i .. " done at t=" .. goroutine.now())
    wg:done()                              -- same as wg:add(-1)
  end}
end

-- A second waiter: wait may be called from any number of goroutines.
local reported = goroutine.channel(1)
goroutine.spawn{name = "reporter", fn = function()
  wg:wait()
  log.info("reporter: all workers finished at t=" .. goroutine.now())
  reported:send(goroutine.now())
end}

wg:wait()
assert(#finished == 3 and goroutine.now() == 30)
assert(reported:receive() == 30)

-- The counter is 0: wait returns at once, without blocking.
wg:wait()

-- done() on a zero counter would make it negative: a misuse, raised as a Lua error
-- (it would fail the run if not caught; pcall catches it here to show the message).
local ok, err = pcall(function() wg:done() end)
assert(not ok)
log.info("misuse reported: " .. tostring(err))
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
