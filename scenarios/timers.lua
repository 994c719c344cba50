-- timers.lua: virtual time, after, timer, ticker and after_func.
--
-- Shows: the clock only moves when every goroutine is blocked, and then jumps straight to the
-- next timer, so goroutine.now() gives exact instants. after(ms) delivers the time once;
-- timer stop/reset (Go 1.23 rules: true if the timer was pending or had fired unread, and then
-- the unread value is dropped); a ticker stopped after 3 ticks; after_func and stopping one.
--
-- Run:   cargo run --release -- run scenarios/timers.lua --seed 7
--
-- In the trace: "fire" events at exact instants: 25, 55, 65, 70 (a value nobody reads
-- before stop drops it), 85, 95, 105 (the ticks) and 110 (after_func spawning a goroutine);
-- the timer stopped at t=35 never fires at 75, and the stopped after_func never runs.

local function at(what) log.info(what .. " at t=" .. goroutine.now()) end

-- after: a receive-only channel that delivers the current time once, ms from now.
local fired_at = goroutine.after(25):receive()
assert(fired_at == 25 and goroutine.now() == 25)
at("after(25) delivered " .. fired_at)

-- timer: stop before it fires, then reset.
local t = goroutine.timer(50)              -- due at 75
goroutine.sleep(10)
assert(t:stop() == true, "it was pending")  -- it will not fire at 75
assert(t:reset(20) == false, "stopped timers are not pending")  -- due at 35 + 20 = 55
t:channel():receive()
at("timer fired after reset(20)")
assert(goroutine.now() == 55)
assert(t:reset(10) == false)               -- fired and read: not pending; due at 65
t:channel():receive()
at("timer re-armed with reset(10) fired")
assert(goroutine.now() == 65)

-- Fired but never read: stop() returns true and drops the value, so no stale tick is seen.
t:reset(5)                                  -- due at 70
goroutine.sleep(10)                         -- now 75: it has fired, its value waits unread
assert(t:stop() == true)
local stale, got = t:channel():try_receive()
assert(stale == nil and got == false, "stop dropped the unread value")
at("stop dropped the unread value")

-- ticker: a tick every 10 ms; stop it when done (a running ticker is wasted work).
local tk = goroutine.ticker(10)
for i = 1, 3 do
  tk:channel():receive()
  at("tick " .. i)
end
tk:stop()
assert(goroutine.now() == 105)

-- after_func: runs fn in a NEW goroutine when the timer fires.
local done = goroutine.channel(1)
goroutine.after_func(5, function()
  at("after_func callback runs")
  done:send(goroutine.now())
end)
local cancelled = goroutine.after_func(3, function() error("stopped, never runs") end)
assert(cancelled:stop() == true)            -- stopped in time: fn never starts
assert(done:receive() == 110)
at("all timers done")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
