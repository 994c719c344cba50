-- fan_in_out.lua: broadcasting one channel to many (fan_out), merging many into one (fan_in).
--
-- Shows: goroutine.fan_out(input, n) gives n channels (capacity 10) and EVERY input value goes
-- to ALL of them (a broadcast, as in the original module, not a work split); they all close when
-- the input closes. goroutine.fan_in({...}) merges channels into one that closes when all inputs
-- have closed; values from one input keep their order, inputs interleave as the seed decides.
--
-- Run:   cargo run --release -- run scenarios/fan_in_out.lua --seed 7
--
-- In the trace: the "fan_out" goroutine sends each value to channels fan_out 1..3; later
-- goroutines fan_in-1..3 forward into the "fan_in" channel.

-- Part 1: fan_out. Three subscribers each receive the full stream 1..4.
local input = goroutine.channel()
local outs = goroutine.fan_out(input, 3)
assert(#outs == 3 and outs[1]:cap() == 10)

local wg = goroutine.wait_group()
local sums = {}
for i, ch in ipairs(outs) do
  wg:add(1)
  goroutine.spawn{name = "subscriber-" .. i, fn = function()
    local sum = 0
    ch:range(function(v) sum = sum + v end)     -- ends when fan_out closes this channel
    sums[i] = sum
    log.info("subscriber " .. i .. " saw sum " .. sum)
    wg:done()
  end}
end
for v = 1, 4 do input:send(v) end
input:close()                                    -- closes all three outputs, after the values
wg:wait()
for i = 1, 3 do assert(sums[i] == 10, "every subscriber sees every value") end

-- Part 2: fan_in. Three producers, each with its own channel, merged into one.
local sources = {}
for p = 1, 3 do
  local ch = goroutine.channel()
  sources[p] = ch
  goroutine.spawn{name = "producer-" .. p, fn = function()
    for k = 1, 3 do ch:send(p * 10 + k) end    -- producer 2 sends 21, 22, 23
    ch:close()
  end}
end
local merged = goroutine.fan_in(sources)

local seen, last = {}, {}
merged:range(function(v)                         -- ends when all three sources have closed
  seen[#seen + 1] = v
  local p, k = v // 10, v % 10
  assert(k == (last[p] or 0) + 1, "values of one producer arrive in order")
  last[p] = k
end)
log.info("merged: " .. table.concat(seen, " "))
assert(#seen == 9 and last[1] == 3 and last[2] == 3 and last[3] == 3)
