-- pipeline.lua: goroutine.pipeline with two stages.
--
-- Shows: stages connected by channels (capacity 10 each), each stage's output closing when its
-- workers finish; with ONE worker per stage the order of the input is kept. A second pipeline
-- with 3 workers in one stage gives the same values, but not necessarily in the same order, and
-- an item whose fn raises is dropped (a trace event), not a run failure.
--
-- Run:   cargo run --release -- run scenarios/pipeline.lua --seed 7
--
-- In the trace: goroutines pipeline-1-1 and pipeline-2-1 pass values along; the output comes
-- out as 12, 14, 16, 18, 20. In part 2, the "note" event for the dropped item.

-- Feed `values` into a new channel from a goroutine, then close it (closing ends the pipeline).
local function source(values)
  local input = goroutine.channel(10)
  goroutine.spawn{name = "feeder", fn = function()
    for _, v in ipairs(values) do input:send(v) end
    input:close()
  end}
  return input
end

-- Part 1: the original users' check (test_pipeline_fix): x*2, then +10, one worker each.
local out = goroutine.pipeline(source{1, 2, 3, 4, 5}, {
  { workers = 1, fn = function(x) return x * 2 end },
  { workers = 1, fn = function(x) return x + 10 end },
})
local got = {}
out:range(function(v)                 -- ends when the last stage's output closes
  got[#got + 1] = v
  log.info("pipeline 1 output " .. v)
end)
assert(table.concat(got, ",") == "12,14,16,18,20", table.concat(got, ","))

-- Part 2: 3 workers in stage 1, each item taking a different time: the order may change.
-- Item 4 raises: it is dropped and logged, the other items go through.
local out2 = goroutine.pipeline(source{1, 2, 3, 4, 5, 6}, {
  { workers = 3, fn = function(x)
      goroutine.sleep((7 - x) * 10)   -- later items are faster
      if x == 4 then error("cannot handle 4") end
      return x * 2
    end },
  { workers = 1, fn = function(x) return x + 10 end },
})
local got2 = {}
out2:range(function(v) got2[#got2 + 1] = v end)
log.info("pipeline 2 output (arrival order) " .. table.concat(got2, ","))
table.sort(got2)
assert(table.concat(got2, ",") == "12,14,16,20,22", table.concat(got2, ","))
