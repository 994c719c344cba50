-- pubsub.lua: topics, publishers and subscribers (seed 4.1).
--
-- Shows: the seed's example (two subscribers of "events", one of "logs"; each gets only its
-- topic's messages); publish returns how many subscribers received the message (0: dropped);
-- a late subscriber sees only later messages; unsubscribe stops delivery; close ends every
-- subscriber's range after its buffer is drained. Pub/sub is a broadcaster per topic, so the
-- subscribers' buffers follow the same overflow option (here the default, block).
--
-- Run:   cargo run --release -- run scenarios/pubsub.lua --seed 7
--
-- In the trace: one broadcaster per topic ("topic events", "topic logs"), created at the first
-- subscription; "publish pubsub#1 ... topic=metrics n=0" for the topic nobody listens to.

local pubsub = goroutine.pubsub()

-- Subscribers
local sub1 = pubsub:subscribe("events")
local sub2 = pubsub:subscribe("events")
local sub3 = pubsub:subscribe("logs")

-- Publisher
assert(pubsub:publish("events", {type = "user_login", user = "john"}) == 2)
assert(pubsub:publish("logs", {level = "info", msg = "system started"}) == 1)
assert(pubsub:publish("metrics", 42) == 0)      -- nobody listens: dropped

-- A late subscriber sees only later messages.
local late = pubsub:subscribe("events")
assert(pubsub:publish("events", {type = "user_logout", user = "john"}) == 3)

local wg = goroutine.wait_group()
local function consume(name, sub, field)
  wg:add(1)
  goroutine.spawn{name = name, fn = function()
    local n = 0
    -- Each subscriber receives the messages of its topic.
    sub:range(function(msg)
      n = n + 1
      log.info(name .. " received: " .. msg[field])
    end)
    log.info(name .. " done after " .. n .. " message(s)")
    wg:done()
  end}
end
consume("sub1", sub1, "type")
consume("sub2", sub2, "type")
consume("sub3", sub3, "msg")
consume("late", late, "type")

goroutine.sleep(1)
pubsub:unsubscribe(sub2)                         -- sub2 stops here
assert(pubsub:publish("events", {type = "user_login", user = "mary"}) == 2)
goroutine.sleep(1)
pubsub:close()                                   -- every range ends
wg:wait()
