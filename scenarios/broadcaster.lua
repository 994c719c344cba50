-- broadcaster.lua: one value to many subscribers, each at its own pace (seed 1.4).
--
-- Shows: the seed's example (three subscribers each receive "message" independently); the
-- default overflow = "block" (a slow subscriber's full buffer makes broadcast wait: nothing is
-- lost); overflow = "drop_oldest" (broadcast never waits; a lagging subscriber skips to the
-- oldest value kept and missed() counts what it lost; range goes on after the lag); close (the
-- subscribers drain their buffers, then range ends).
--
-- Run:   cargo run --release -- run scenarios/broadcaster.lua --seed 7
--
-- In the trace: "broadcast broadcaster#1 "message" n=3" then three receives; on broadcaster#2
-- (capacity 2, block) "block-broadcast" while "slow" sleeps, released by its receive; on
-- broadcaster#4 (drop_oldest) the lagging subscriber's receive says "missed=3".

-- The seed's example, as written there.
local bc = goroutine.broadcaster()
local sub1 = bc:subscribe()
local sub2 = bc:subscribe()
local sub3 = bc:subscribe()
assert(bc:broadcast("message") == 3)
local msg1 = sub1:receive()
local msg2 = sub2:receive()
local msg3 = sub3:receive()
assert(msg1 == "message" and msg2 == "message" and msg3 == "message")
bc:close()

-- Block (the default): a slow subscriber holds the broadcaster back; nobody loses anything.
local events = goroutine.broadcaster{capacity = 2}
local done = goroutine.wait_group()
for _, who in ipairs({ "fast", "slow" }) do
  local sub = events:subscribe()
  done:add(1)
  goroutine.spawn{name = who, fn = function()
    local seen = 0
    sub:range(function(v)
      seen = seen + 1
      if who == "slow" then goroutine.sleep(10) end
    end)
    log.info(who .. " saw " .. seen .. " events, missed " .. sub:missed())
    assert(seen == 5 and sub:missed() == 0)
    done:done()
  end}
end
for i = 1, 5 do events:broadcast("event " .. i) end
log.info("5 events broadcast at t=" .. goroutine.now())
events:close()
done:wait()

-- drop_oldest: the broadcaster never waits; a subscriber that falls behind counts its loss.
local ticks = goroutine.broadcaster{capacity = 2, overflow = "drop_oldest"}
local lagging = ticks:subscribe()
for i = 1, 5 do ticks:broadcast(i) end          -- 1, 2 and 3 are evicted from its buffer
ticks:close()
local got = {}
lagging:range(function(v) got[#got + 1] = v end)
log.info("lagging subscriber got " .. table.concat(got, ",") .. ", missed " .. lagging:missed())
assert(table.concat(got, ",") == "4,5" and lagging:missed() == 3)
