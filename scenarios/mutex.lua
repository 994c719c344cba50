-- mutex.lua: protecting a shared counter with a mutex.
--
-- Shows: lock/unlock around a read-modify-write that contains a scheduling point, so without
-- the lock updates would be lost; try_lock, which never blocks.
--
-- Run:   cargo run --release -- run scenarios/mutex.lua --seed 7
--
-- In the trace: "block-lock" events when a goroutine finds the mutex taken, and the holder's
-- unlock waking it. The final count is always 3 * 4 = 12, under every seed.
--
-- Try it: remove the lock/unlock lines and run `explore`: some seeds lose updates and the
-- final assert fails.

local m = goroutine.mutex()
local counter = 0
local wg = goroutine.wait_group()

for w = 1, 3 do
  wg:add(1)
  goroutine.spawn{name = "incr-" .. w, fn = function()
    for _ = 1, 4 do
      m:lock()
      local v = counter
      goroutine.yield()          -- a scheduling point between read and write: others may run here
      counter = v + 1
      m:unlock()
    end
    wg:done()
  end}
end
wg:wait()
log.info("counter = " .. counter)
assert(counter == 12, "lost updates: " .. counter)

-- try_lock takes the mutex only if it is free, and never blocks.
assert(m:try_lock() == true)
local answer = goroutine.channel()
goroutine.spawn{name = "impatient", fn = function()
  answer:send(m:try_lock())      -- the mutex is held by main: false at once, no waiting
end}
local got = answer:receive()
log.info("try_lock from another goroutine while main holds it: " .. tostring(got))
assert(got == false)
m:unlock()
assert(m:try_lock() == true, "free again")
m:unlock()
