-- priority_channel.lua: urgent messages first (seed 1.2).
--
-- Shows: the seed's example (send with priority 10 and 1; receive takes the highest first);
-- FIFO among equal priorities; the default priority 0; a bounded priority channel whose
-- senders wait while it is full (one gives up after its timeout, enqueuing nothing); close,
-- after which the consumer drains in priority order and its range ends.
--
-- Run:   cargo run --release -- run scenarios/priority_channel.lua --seed 7
--
-- In the trace: "send priority_channel#1 ... prio=10" and "receive ... prio=10" first; on the
-- bounded channel "block-send" for the producers while the dispatcher is busy, a "timeout"
-- for the impatient one, and receives in priority order once the dispatcher gets going.

-- The seed's example, as written there (value: the message).
local pq = goroutine.priority_channel()
local value = "message"
pq:send(value .. " (urgent)", 10)  -- alta prioridade
pq:send(value .. " (routine)", 1)  -- baixa prioridade
local first = pq:receive()
assert(first == "message (urgent)")
assert(pq:receive() == "message (routine)")

-- Equal priorities keep their send order; no priority means 0.
pq:send("a", 5); pq:send("default"); pq:send("b", 5)
assert(pq:receive() == "a" and pq:receive() == "b" and pq:receive() == "default")

-- A bounded ticket queue: producers wait while it is full.
local tickets = goroutine.priority_channel(3)
local wg = goroutine.wait_group()
local function producer(name, prio, n, timeout)
  wg:add(1)
  goroutine.spawn{name = name, fn = function()
    for i = 1, n do
      local ok, err = tickets:send(name .. "-" .. i, prio, timeout)
      if not ok then log.info(name .. "-" .. i .. " not queued: " .. err) end
    end
    wg:done()
  end}
end
producer("bulk", 0, 4)
producer("incident", 9, 2)
producer("impatient", 1, 1, 2)

goroutine.spawn{name = "closer", fn = function() wg:wait(); tickets:close() end}

goroutine.sleep(10)                     -- the dispatcher starts late: the queue is full
tickets:range(function(t)
  log.info("handling " .. t .. " at t=" .. goroutine.now())
  goroutine.sleep(1)
end)
assert(tickets:len() == 0)
