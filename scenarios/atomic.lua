-- atomic.lua: lock-free counters with atomic_int.
--
-- Shows: add(delta) returns the new value, so concurrent increments never get lost (compare
-- with mutex.lua); load/store/swap; compare_and_swap and the classic CAS retry loop.
--
-- Run:   cargo run --release -- run scenarios/atomic.lua --seed 7
--
-- In the trace (atomic operations are scheduling points but not trace events, so the story is
-- told by log lines): each counter's last add, in a seed-dependent order, the CAS retries
-- caused by races, and a total that is always 40.

local hits = goroutine.atomic_int()         -- starts at 0
local peak = goroutine.atomic_int(0)

-- Raise `peak` to at least v, even if other goroutines race us: the CAS retry loop.
local function raise_peak(v)
  while true do
    local cur = peak:load()
    if v <= cur then return end
    if peak:compare_and_swap(cur, v) then return end   -- false: someone changed it, retry
    log.debug("CAS lost a race (expected " .. cur .. "), retrying")
  end
end

local wg = goroutine.wait_group()
for w = 1, 4 do
  wg:add(1)
  goroutine.spawn{name = "counter-" .. w, fn = function()
    local now
    for _ = 1, 10 do
      now = hits:add(1)                    -- atomic read-modify-write: returns the new value
      raise_peak(now)
    end
    log.info("counter " .. w .. ": my last add returned " .. now)
    wg:done()
  end}
end
wg:wait()
log.info("hits = " .. hits:load() .. ", peak = " .. peak:load())
assert(hits:load() == 40 and peak:load() == 40)

-- swap sets a new value and returns the old one: a "read and reset" in one step.
local old = hits:swap(0)
assert(old == 40 and hits:load() == 0)
hits:store(7)
assert(hits:compare_and_swap(7, 8) == true)    -- expected 7: swapped
assert(hits:compare_and_swap(7, 9) == false)   -- it is 8 now: unchanged
assert(hits:load() == 8 and math.type(hits:load()) == "integer")
log.info("swap returned " .. old .. "; after store(7) and CAS(7->8): " .. hits:load())
