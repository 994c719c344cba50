-- barrier.lua: three workers meeting at a cyclic barrier (seed 5.1; tokio's Barrier, Java's
-- CyclicBarrier).
--
-- Shows: the seed's example (three workers sleep 1-3 s, then wait for each other); the last to
-- arrive is the leader (wait returns true), the others get false; the barrier is cyclic (the same
-- barrier serves several rounds, one generation each); a timed wait that gives up returns
-- false, "timeout" and leaves its generation, whose count goes back down.
--
-- Run:   cargo run --release -- run scenarios/barrier.lua --seed 7
--
-- In the trace: each worker's "arrive barrier#1 gen=0 k/3", then the last one's
-- "release barrier#1 gen=0 3/3 leader" waking the other two; three more rounds (gen=1..3); then a
-- second barrier where main gives up ("timeout ... 0 waiting"), then arrives again as the leader.

local barrier = goroutine.barrier(3)  -- aguarda 3 goroutines
local done = goroutine.wait_group()
local leaders = 0

-- The seed's example, as written there (plus a wait group so main waits for the workers).
for i = 1, 3 do
  done:add(1)
  goroutine.spawn(function()
    log.info("Worker " .. i .. " doing work...")
    goroutine.sleep(math.random(1000, 3000))

    log.info("Worker " .. i .. " reached barrier")
    if barrier:wait() then leaders = leaders + 1 end  -- bloqueia até todos chegarem

    log.info("Worker " .. i .. " continuing after barrier")
    done:done()
  end)
end
done:wait()
assert(leaders == 1, "exactly one leader per generation")
assert(barrier:generation() == 1 and barrier:waiting() == 0)

-- Cyclic: three more rounds on the same barrier, one leader each.
for i = 1, 3 do
  done:add(1)
  goroutine.spawn{name = "round-worker-" .. i, fn = function()
    for round = 1, 3 do
      goroutine.sleep(i * round)
      if barrier:wait() then leaders = leaders + 1 end
    end
    done:done()
  end}
end
done:wait()
assert(leaders == 4 and barrier:generation() == 4)
log.info("4 generations, 4 leaders at t=" .. goroutine.now())

-- A timed wait that gives up leaves its generation: the count goes back down, so the barrier
-- still needs two fresh arrivals.
local pair = goroutine.barrier(2)
local ok, err = pair:wait(10)
assert(ok == false and err == "timeout" and pair:waiting() == 0)
local follower
goroutine.spawn{name = "late", fn = function()
  follower = pair:wait()
end}
goroutine.sleep(5)
assert(pair:waiting() == 1)
assert(pair:wait() == true, "main arrives last: the leader")
goroutine.sleep(1)
assert(follower == false)
log.info("done at t=" .. goroutine.now())
