-- channel_close.lua: the edges of channels: nil values, closing, directions, function forms.
--
-- Shows: nil is a value like any other (ch:send(nil), and `send = goroutine.NIL` in a select
-- case); a sender blocked on a channel that gets closed wakes with
-- `false, "send on closed channel"` (the Go original crashed); closing twice returns
-- `false, "channel already closed"`; receive-only channels (goroutine.after gives one) refuse
-- sends with an error; the goroutine.channel_* function forms.
--
-- Run:   cargo run --release -- run scenarios/channel_close.lua --seed 7
--
-- In the trace: "send ... nil", the blocked "stuck-sender" woken by main's close at t=10, and
-- the receiver getting `nil, false` once the channel is closed and drained.

-- nil travels through a channel: `v, ok` tells a nil value (ok = true) from a closed channel.
local ch = goroutine.channel(2)
assert(ch:send(nil))
local v, ok = ch:receive()
assert(v == nil and ok == true, "a nil value, not a closed channel")

-- In a select case a table field cannot hold nil: goroutine.NIL stands for it.
goroutine.select({ { channel = ch, send = goroutine.NIL } })
v, ok = ch:receive()
assert(v == nil and ok == true)
log.info("nil sent and received, ok=" .. tostring(ok))

-- The function forms do the same as the methods.
assert(goroutine.channel_send(ch, "x") and goroutine.channel_len(ch) == 1 and goroutine.channel_cap(ch) == 2)
assert(goroutine.channel_receive(ch) == "x")

-- A sender blocked on a full channel is woken by close with an error value, not a crash.
local full = goroutine.channel(1)
full:send("first")
local result = goroutine.channel(1)
goroutine.spawn{name = "stuck-sender", fn = function()
  local sent, err = full:send("second")      -- blocks: the buffer is full
  log.info("stuck-sender woke: " .. tostring(sent) .. ", " .. tostring(err))
  result:send(err)
end}
goroutine.sleep(10)
assert(full:close() == true)
assert(result:receive() == "send on closed channel")

-- Closing again is reported, not raised.
local again, msg = full:close()
assert(again == false and msg == "channel already closed")

-- Values buffered before the close are still delivered, then `nil, false`.
v, ok = full:receive()
assert(v == "first" and ok == true)
v, ok = full:receive()
assert(v == nil and ok == false)
log.info("after close: buffered value drained, then nil, false")

-- goroutine.after returns a receive-only channel: sending on it is a misuse (a Lua error).
local timer_ch = goroutine.after(5)
local sent, err = pcall(function() timer_ch:send("no") end)
assert(not sent and err:find("receive%-only"))
log.info("misuse: " .. err)
assert(timer_ch:receive() == 15)              -- delivered 5 ms after t=10
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
