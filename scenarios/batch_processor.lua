-- batch_processor.lua: a batch processor (seed 7.2) with its size and time triggers.
--
-- Shows: the seed's example (batch_processor{batch_size, flush_interval, fn}; add items one by
-- one; flush(); close()), with batch_size = 10 and 25 items instead of 100 and 10000 to keep the
-- trace readable. The first 20 items arrive at once: two full batches are cut at once ("size").
-- Items 21..23 arrive 100 ms apart from t=300: nobody fills their batch, so it is handed to fn
-- flush_interval (1000 ms) after its first item, at exactly t=1300 ("interval"). Items 24..25
-- arrive at t=1500 and the final flush() hands them over at once ("flush"); close() then waits
-- until fn has returned on every batch and ends the processor's goroutine.
-- fn runs in the processor's own goroutine, one batch at a time, in add order.
--
-- Run:   cargo run --release -- run scenarios/batch_processor.lua --seed 7
--
-- In the trace: "batch batch_processor#1 items 1..10 (10, size)", "items 21..23 (3, interval)"
-- at 1300ms, "items 24..25 (2, flush)", then "close", "end" and the processor's exit.

local seen = {}
local batch = goroutine.batch_processor({
  batch_size = 10,
  flush_interval = 1000,  -- ms
  fn = function(items)
    -- stands for bulk_insert_db(items): 50 ms of virtual work per batch
    goroutine.sleep(50)
    for _, item in ipairs(items) do seen[#seen + 1] = item.id end
    log.info(string.format("inserted %d items (%d..%d) at %dms", #items, items[1].id,
      items[#items].id, math.floor(goroutine.now())))
  end
})

for i = 1, 20 do
  batch:add({id = i, data = "..."})   -- batches 1..10 and 11..20 are due at once
end
goroutine.sleep(300)
for i = 21, 23 do
  batch:add({id = i, data = "..."})   -- not a full batch: due 1000 ms after item 21
  goroutine.sleep(100)
end
goroutine.sleep(900)                   -- t = 1500: the interval flush happened at 1300
for i = 24, 25 do batch:add({id = i, data = "..."}) end

batch:flush()  -- final flush
assert(batch:close())
assert(#seen == 25)
for i = 1, 25 do assert(seen[i] == i, "in add order") end
local ok, err = batch:add({id = 26})
assert(ok == false and err == "closed")
local s = batch:stats()
log.info(string.format("batches=%d added=%d pending=%d", s.batches, s.added, s.pending))
