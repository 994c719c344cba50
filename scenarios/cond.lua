-- cond.lua: condition variables (Go's sync.Cond).
--
-- Shows: wait() always inside `while not condition do c:wait() end` (a wake-up is a hint, not a
-- promise: re-check the condition); broadcast() to open a start gate for everybody; signal() to
-- wake one consumer per item of a queue; a cond built on your own mutex, and get_mutex().
--
-- Run:   cargo run --release -- run scenarios/cond.lua --seed 7
--
-- In the trace: three runners block on the cond until main broadcasts at t=10; then the producer
-- signals once per item and a waiting consumer wakes for it; a final broadcast tells both
-- consumers the queue is closed.

-- Part 1: a start gate. Everyone waits until `open`; one broadcast releases them all.
local gate = goroutine.cond()              -- owns a new mutex
local gm = gate:get_mutex()
local open, started = false, 0
local wg = goroutine.wait_group()
for r = 1, 3 do
  wg:add(1)
  goroutine.spawn{name = "runner-" .. r, fn = function()
    gm:lock()
    while not open do gate:wait() end      -- wait unlocks gm while waiting, relocks before returning
    started = started + 1
    gm:unlock()
    log.info("runner " .. r .. " off at t=" .. goroutine.now())
    wg:done()
  end}
end
goroutine.sleep(10)
gm:lock()
open = true
gate:broadcast()                            -- wakes all three
gm:unlock()
wg:wait()
assert(started == 3 and goroutine.now() == 10)

-- Part 2: a queue with two consumers. Built on our own mutex.
local m = goroutine.mutex()
local nonempty = goroutine.cond(m)
assert(nonempty:get_mutex() == m)
local queue, closed, handled = {}, false, {}

for c = 1, 2 do
  wg:add(1)
  goroutine.spawn{name = "consumer-" .. c, fn = function()
    while true do
      m:lock()
      while #queue == 0 and not closed do nonempty:wait() end
      if #queue == 0 then m:unlock() break end       -- closed and drained
      local item = table.remove(queue, 1)
      m:unlock()
      handled[#handled + 1] = item
      log.info("consumer " .. c .. " handles " .. item)
      goroutine.sleep(3)                              -- work outside the lock
    end
    wg:done()
  end}
end

for i = 1, 5 do
  m:lock()
  queue[#queue + 1] = "item-" .. i
  nonempty:signal()                                   -- wake one waiting consumer, if any
  m:unlock()
  goroutine.sleep(2)
end
m:lock()
closed = true
nonempty:broadcast()                                  -- every consumer must see `closed`
m:unlock()
wg:wait()
assert(#handled == 5 and #queue == 0, "every item handled exactly once")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
