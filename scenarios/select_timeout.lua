-- select_timeout.lua: waiting on several channels at once, with timeouts.
--
-- Shows: goroutine.select over a data channel and goroutine.after(ms); select_timeout and its
-- return shapes (`false, idx0` when a case fired, `true, nil` on timeout); a default case;
-- `channel = false` cases that are never ready; a send case.
--
-- Run:   cargo run --release -- run scenarios/select_timeout.lua --seed 7
--
-- In the trace: the clock only moves when everybody is blocked, so each wait ends at an exact
-- instant: the reply at t=50, the first timeout at t=130, the select_timeout reply at t=150
-- and its timeout at t=200.

local data = goroutine.channel()

-- Reply after `ms` with `v` from a new goroutine.
local function reply_later(ms, v)
  goroutine.spawn{name = "replier", fn = function()
    goroutine.sleep(ms)
    data:send(v)
  end}
end

-- 1. select returns what the chosen handler returns. The reply (50 ms) beats the timer (100 ms).
reply_later(50, "hello")
local got = goroutine.select({
  { channel = data, receive = true, handler = function(v, ok) return "data:" .. v end },
  { channel = goroutine.after(100), receive = true, handler = function() return "timeout" end },
})
log.info("select 1 -> " .. got .. " at t=" .. goroutine.now())
assert(got == "data:hello" and goroutine.now() == 50)

-- 2. Nobody sends: the after(80) channel delivers and its handler runs at exactly t=130.
got = goroutine.select({
  { channel = data, receive = true, handler = function() return "data" end },
  { channel = goroutine.after(80), receive = true, handler = function() return "timeout" end },
})
log.info("select 2 -> " .. got .. " at t=" .. goroutine.now())
assert(got == "timeout" and goroutine.now() == 130)

-- 3. select_timeout: `false, idx0` names the case that fired, counted from 0 (as the original).
--    Case 0 has `channel = false`: Go's nil channel, never ready, so the list can stay fixed.
reply_later(20, "late but in time")
local timed_out, idx = goroutine.select_timeout(100, {
  { channel = false, receive = true, handler = function() error("never runs") end },
  { channel = data, receive = true, handler = function(v) log.info("case 1 got: " .. v) end },
})
log.info("select_timeout -> " .. tostring(timed_out) .. ", " .. tostring(idx))
assert(timed_out == false and idx == 1 and goroutine.now() == 150)

-- 4. Nothing ready within 50 ms: `true, nil`, exactly 50 ms later.
timed_out, idx = goroutine.select_timeout(50, {
  { channel = data, receive = true, handler = function() error("nobody sends") end },
})
log.info("select_timeout -> " .. tostring(timed_out) .. ", " .. tostring(idx) .. " at t=" .. goroutine.now())
assert(timed_out == true and idx == nil and goroutine.now() == 200)

-- 5. A default case runs at once when nothing else is ready: a non-blocking poll.
got = goroutine.select({
  { channel = data, receive = true, handler = function() return "data" end },
  { default = true, handler = function() return "nothing ready" end },
})
log.info("select with default -> " .. got)
assert(got == "nothing ready" and goroutine.now() == 200)

-- 6. A send case: ready because the buffered channel has room; the default is not taken.
local box = goroutine.channel(1)
got = goroutine.select({
  { channel = box, send = "parcel", handler = function() return "sent" end },
  { default = true, handler = function() return "full" end },
})
assert(got == "sent" and box:len() == 1)
-- Now the buffer is full, so the same select falls to default.
got = goroutine.select({
  { channel = box, send = "another", handler = function() return "sent" end },
  { default = true, handler = function() return "full" end },
})
log.info("second send case -> " .. got)
assert(got == "full" and box:receive() == "parcel")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
