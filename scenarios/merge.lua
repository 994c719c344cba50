-- merge.lua: many channels combined into one (seed 1.5).
--
-- Shows: the seed's example (three channels of capacity 10 merged, the merged channel ranged
-- over); one forwarder goroutine per input ("merge-1".."merge-3", Rust tasks: they run no user
-- code); each input's values keep their order while inputs interleave as the seed decides; the
-- merged channel closes once every input has closed and every value was forwarded, so the
-- range ends; merge({}) is a closed channel.
--
-- Run:   cargo run --release -- run scenarios/merge.lua --seed 7
--
-- In the trace: "spawn g2(merge-1)" ...; each value "receive channel#1" by a forwarder then
-- "send channel#4"merge""; after the last input closes, "close channel#4"merge"" and main's
-- range ends.

local ch1 = goroutine.channel(10)
local ch2 = goroutine.channel(10)
local ch3 = goroutine.channel(10)

local merged = goroutine.merge({ch1, ch2, ch3})

for i, ch in ipairs({ ch1, ch2, ch3 }) do
  goroutine.spawn{name = "producer-" .. i, fn = function()
    for j = 1, 3 do
      ch:send("ch" .. i .. "-" .. j)
      goroutine.sleep(i)                       -- each producer at its own pace
    end
    ch:close()
  end}
end

-- Receives from whichever channel has data.
local last = {}
local count = 0
merged:range(function(value)
  log.info("Received: " .. value)
  local i, j = value:match("ch(%d)%-(%d)")
  assert(tonumber(j) == (last[i] or 0) + 1, "per-input order")
  last[i] = tonumber(j)
  count = count + 1
end)
assert(count == 9)
log.info("merged channel closed at t=" .. goroutine.now())

local none = goroutine.merge({})
assert(select(2, none:receive()) == false)
