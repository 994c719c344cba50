-- debounce.lua: a debounced channel (seed 1.3): only the last value of a burst gets through,
-- once the input has been quiet for 500 ms.
--
-- Shows: the seed's example (goroutine.debounce_channel(input, 500)) fed with keystrokes: a
-- burst "g", "go", "gos", "gosi", "gosim" 100 ms apart emits only "gosim", 500 ms after the last
-- keystroke; a keystroke exactly 500 ms after the previous one starts a new burst (a gap of
-- exactly `ms` ends the burst: the value before it is emitted); closing the input flushes the
-- pending value at once and closes the output. A second debounce with max_wait = 250 shows a
-- steady stream still getting through every 250 ms.
--
-- Run:   cargo run --release -- run scenarios/debounce.lua --seed 7
--
-- In the trace: the "debounce" forwarder (a Rust task) receives every keystroke from
-- channel#1 and sends on channel#2"debounce" only at t=900 ("gosim"), t=1500 ("x", after the
-- exact 500 ms gap) and at the close (t=1600, "xy").

local input = goroutine.channel()
local debounced = goroutine.debounce_channel(input, 500)  -- 500ms (the seed's example)

goroutine.spawn{name = "typist", fn = function()
  for _, text in ipairs{"g", "go", "gos", "gosi", "gosim"} do
    input:send(text)
    goroutine.sleep(100)
  end
  goroutine.sleep(500)   -- quiet since t=400: "gosim" goes out at t=900
  input:send("x")        -- t=1000
  goroutine.sleep(500)   -- exactly 500 ms: "x" goes out at t=1500, then "xy" arrives
  input:send("xy")
  goroutine.sleep(100)
  input:close()          -- "xy" is flushed at once (t=1600) and the output closes
end}

local got = {}
debounced:range(function(text)
  log.info("search for " .. text .. " at t=" .. goroutine.now())
  got[#got + 1] = text .. "@" .. goroutine.now()
end)
assert(table.concat(got, " ") == "gosim@900 x@1500 xy@1600", table.concat(got, " "))

-- max_wait: a steady stream every 100 ms for 600 ms, forced out every 250 ms.
local stream = goroutine.channel()
local sampled = goroutine.debounce_channel(stream, 200, {max_wait = 250, capacity = 4})
goroutine.spawn{name = "stream", fn = function()
  for i = 1, 6 do stream:send(i) goroutine.sleep(100) end
  stream:close()
end}
local forced = {}
sampled:range(function(v) forced[#forced + 1] = v .. "@" .. (goroutine.now() - 1600) end)
-- 1..6 at 0..500 (relative): 3 is forced out at 250, 5 at 500 (6 arrives at 500 too, but the
-- max_wait deadline fires first), and 6 is flushed when the stream closes at 600.
assert(table.concat(forced, " ") == "3@250 5@500 6@600", table.concat(forced, " "))
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
