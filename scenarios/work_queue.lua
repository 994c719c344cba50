-- work_queue.lua: a work queue with retries and a dead-letter queue (seed 4.3).
--
-- Shows: the seed's example (10 workers, max_retries = 3, dlq_enabled; process(fn); enqueue;
-- dead_letter_queue():range(...)), with 20 items instead of 100 to keep the trace readable.
-- Items 7 and 14 always fail (one raises, one returns nil, err): each is attempted 4 times
-- (max_retries + 1), 100, 200 and 400 ms apart (retry_delay doubling), then dead-lettered as
-- {item=..., error=..., attempts=4}. Item 3 fails once, then succeeds on its retry.
-- close() stops intake, wait() drains, and the dead-letter channel closes once drained, which
-- ends the range.
--
-- Run:   cargo run --release -- run scenarios/work_queue.lua --seed 7
--
-- In the trace: "enqueue work_queue#1 job=N"; workers "receive" job ids from "work_queue jobs";
-- "retry work_queue#1 job=7 attempt=1 in 100ms", then 200ms, 400ms; "dead-letter ... job=7
-- attempts=4" and the record sent on "dead letters"; at the end "close" of both channels.

local queue = goroutine.work_queue({
  workers = 10,
  max_retries = 3,
  dlq_enabled = true,
})

local failed_once = {}
local function process(item)
  goroutine.sleep(10)  -- some work, in virtual time
  if item.id == 7 then error("cannot process item 7") end
  if item.id == 14 then return nil, "item 14 is invalid" end
  if item.id == 3 and not failed_once[3] then
    failed_once[3] = true
    error("transient failure")
  end
  return true
end

-- Process work (the seed's example).
queue:process(function(item)
  return process(item)
end)

-- Enqueue items.
for i = 1, 20 do
  assert(queue:enqueue({id = i, data = "..."}))
end

-- Process the DLQ.
local dlq = queue:dead_letter_queue()
local dead = {}
local dlq_done = goroutine.channel()
goroutine.spawn{name = "dlq", fn = function()
  dlq:range(function(failed_item)
    log.error("Failed permanently: " .. failed_item.item.id .. " after " ..
      failed_item.attempts .. " attempts: " .. failed_item.error)
    dead[#dead + 1] = failed_item.item.id
  end)
  dlq_done:send(true)
end}

queue:close()
assert(queue:enqueue({id = 21}) == false)  -- intake stopped
assert(queue:wait())
dlq_done:receive()

local s = queue:stats()
log.table(s, "stats")
table.sort(dead)
assert(#dead == 2 and dead[1] == 7 and dead[2] == 14)
assert(s.processed == 18 and s.dead_lettered == 2 and s.dropped == 0)
assert(s.failed == 4 + 4 + 1 and s.retried == 3 + 3 + 1)
