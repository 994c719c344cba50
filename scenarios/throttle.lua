-- throttle.lua: a throttled channel (seed 1.3): at most one value per 100 ms window gets
-- through, the first of each window, at its arrival time.
--
-- Shows: the seed's example (goroutine.throttle_channel(input, 100)) fed with mouse moves every
-- 30 ms: moves 1, 5, 9 go out at t=0, 120, 240 (each opens a window; the moves inside a window
-- are dropped); a move exactly 100 ms after the last emission opens a new window and goes out;
-- with {trailing = true} the last dropped move of a window also goes out at the window's end
-- (and opens the next window); closing the input flushes a pending trailing value and closes
-- the output.
--
-- Run:   cargo run --release -- run scenarios/throttle.lua --seed 7
--
-- In the trace: the "throttle" forwarder (a Rust task) receives every move and sends on
-- channel#2"throttle" only the first of each window.

local input = goroutine.channel()
local throttled = goroutine.throttle_channel(input, 100)  -- max 1 msg/100ms (the seed's example)

goroutine.spawn{name = "mouse", fn = function()
  for i = 1, 10 do input:send(i) goroutine.sleep(30) end   -- t = 0, 30, ..., 270
  goroutine.sleep(70)                                      -- t = 370: 130 ms after move 9
  input:send(11)
  goroutine.sleep(100)                                     -- exactly 100 ms later
  input:send(12)
  input:close()
end}

local got = {}
throttled:range(function(v)
  log.info("move " .. v .. " at t=" .. goroutine.now())
  got[#got + 1] = v .. "@" .. goroutine.now()
end)
assert(table.concat(got, " ") == "1@0 5@120 9@240 11@370 12@470", table.concat(got, " "))

-- trailing: the last value dropped in a window goes out at its end.
local moves = goroutine.channel()
local smooth = goroutine.throttle_channel(moves, 100, {trailing = true})
goroutine.spawn{name = "mouse2", fn = function()
  for i = 1, 4 do moves:send(i) goroutine.sleep(30) end     -- 0, 30, 60, 90 (relative)
  goroutine.sleep(200)
  moves:send(5)                                             -- 320
  moves:send(6)                                             -- 320: pending trailing value
  moves:close()                                             -- flushed at once
end}
local t0 = goroutine.now()
local got2 = {}
smooth:range(function(v) got2[#got2 + 1] = v .. "@" .. (goroutine.now() - t0) end)
assert(table.concat(got2, " ") == "1@0 4@100 5@320 6@320", table.concat(got2, " "))
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
