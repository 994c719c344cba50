-- buffered_channel.lua: a channel with room for 3 values.
--
-- Shows: capacity, len/cap, the non-blocking try_send/try_receive, a producer that blocks
-- only when the buffer is full, and ch:range(fn) stopped early by returning false.
--
-- Run:   cargo run --release -- run scenarios/buffered_channel.lua --seed 7
--
-- In the trace: the three try_sends are plain "send" events (no block); the refused fourth
-- leaves no event at all. Later the producer can only "block-send" while the buffer holds 3
-- values (whether it does depends on the seed's interleaving; the result never does).

local ch = goroutine.channel(3)
assert(ch:cap() == 3 and ch:len() == 0)

-- try_send never blocks: true while there is room, plain false when the buffer is full.
for i = 1, 3 do assert(ch:try_send(i) == true) end
assert(ch:len() == 3)
local ok, err = ch:try_send(4)
assert(ok == false and err == nil, "a full buffer refuses without an error message")
log.info("buffer full: len=" .. ch:len() .. " cap=" .. ch:cap())

-- try_receive takes the oldest value at once (FIFO).
local v, got = ch:try_receive()
assert(v == 1 and got == true)
log.info("try_receive got " .. v .. ", len now " .. ch:len())

-- A producer adds 4..8 and closes. It blocks whenever the buffer is full.
goroutine.spawn{name = "producer", fn = function()
  for i = 4, 8 do ch:send(i) end
  ch:close()
  log.info("producer closed the channel")
end}

-- range calls fn for each value; returning false stops the loop early (the channel stays open).
local first = {}
ch:range(function(x)
  first[#first + 1] = x
  log.info("range got " .. x)
  if x == 4 then return false end    -- stop after 2, 3, 4
end)
assert(#first == 3 and first[1] == 2 and first[3] == 4)

-- A second range drains the rest; it ends when the channel is closed and empty.
local rest = {}
ch:range(function(x) rest[#rest + 1] = x end)
assert(#rest == 4 and rest[1] == 5 and rest[4] == 8, "got " .. #rest .. " values")
log.info("drained 5..8 after the early stop")

-- After close: receives report `nil, false`, sends and try_sends report the closed channel.
assert(ch:is_closed())
local v2, ok2 = ch:try_receive()
assert(v2 == nil and ok2 == false)
local sent, msg = ch:try_send(9)
assert(sent == false and msg == "send on closed channel")
log.info("closed: try_send says '" .. msg .. "'")
