-- overflow_channel.lua: a fast producer, a slow consumer, and what a full buffer does (seed 1.1).
--
-- Shows: the seed's example (a channel of 10 with "drop_oldest", used with a plain send); a
-- producer emitting 30 readings every 1 ms into a consumer that takes 5 ms each, under each
-- strategy: "drop_oldest" keeps the newest values (the consumer ends with the last readings),
-- "drop_newest" keeps the oldest (sends report "dropped"), "error" refuses ("channel full") and
-- "block" slows the producer down to the consumer's pace (nothing lost). Receiving, range, len
-- and close are a channel's.
--
-- Run:   cargo run --release -- run scenarios/overflow_channel.lua --seed 7
--
-- In the trace: "drop-oldest channel#N"drop_oldest channel" head evicted" once the buffer is
-- full; "drop-newest ... <value>"; "send ... full" for the error strategy; "block-send" for block.

-- The seed's example, as written there.
local ch = goroutine.channel_with_overflow(10, "drop_oldest")
local value = "reading"
ch:send(value)
assert(ch:receive() == "reading")
ch:close()

local function run(strategy)
  local c = goroutine.channel_with_overflow(10, strategy)
  local results = { sent = 0, dropped = 0, full = 0 }
  goroutine.spawn{name = strategy .. " producer", fn = function()
    for i = 1, 30 do
      local ok, msg = c:send(i)
      if ok and msg == nil then results.sent = results.sent + 1
      elseif ok then results.dropped = results.dropped + 1
      else results.full = results.full + 1 end
      goroutine.sleep(1)
    end
    c:close()
  end}
  local got = {}
  c:range(function(v)
    assert(c:len() <= c:cap())
    got[#got + 1] = v
    goroutine.sleep(5)
  end)
  log.info(string.format("%-11s sent=%d dropped=%d full=%d received=%d last=%d, finished at t=%.0f",
    strategy, results.sent, results.dropped, results.full, #got, got[#got], goroutine.now()))
  return got
end

local t0 = goroutine.now()
local got = run("drop_oldest")
assert(got[#got] == 30)                       -- the newest values survive
got = run("drop_newest")
assert(got[1] == 1)                             -- the oldest value survives
got = run("error")
assert(got[1] == 1)
got = run("block")
assert(#got == 30)                            -- nothing lost; the producer waited
