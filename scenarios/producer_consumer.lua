-- producer_consumer.lua: the simplest hand-off between two goroutines.
--
-- Shows: an unbuffered (rendezvous) channel, a producer that closes it when done, and a
-- consumer loop on `v, ok = ch:receive()` that stops when `ok` is false (closed and drained).
--
-- Run:   cargo run --release -- run scenarios/producer_consumer.lua --seed 7
--
-- In the trace: each send completes only when the consumer receives (capacity 0), the
-- producer's sleep(100) makes the virtual clock jump by exactly 100 ms between items, and
-- after the close the consumer's last receive returns `nil, false`.

local ch = goroutine.channel()          -- capacity 0: every send waits for a receiver
assert(ch:cap() == 0)

goroutine.spawn{name = "producer", fn = function()
  for i = 1, 5 do
    log.info("producing " .. i)
    assert(ch:send(i))                  -- blocks until main takes the value
    goroutine.sleep(100)                -- virtual time: the clock jumps, no real waiting
  end
  ch:close()                            -- tells the consumer there is nothing more
  log.info("producer done, channel closed")
end}

local received = {}
while true do
  local v, ok = ch:receive()
  if not ok then break end              -- closed and drained: v is nil
  log.info("consumed " .. v .. " at t=" .. goroutine.now())
  received[#received + 1] = v
end

-- A rendezvous channel keeps order, and nothing is lost.
assert(#received == 5)
for i = 1, 5 do assert(received[i] == i) end
-- The last item is sent at t=400, then the producer sleeps 100 ms more before closing.
assert(goroutine.now() == 500, "closed at t=" .. goroutine.now())
log.info("all 5 items received in order")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
