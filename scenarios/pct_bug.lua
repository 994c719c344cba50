-- pct_bug.lua: a bug that uniform random scheduling almost never finds, and PCT finds at once.
--
-- Shows: why `gosim explore --strategy pct` exists. The bug needs one goroutine to run twenty
-- steps in a row while the other, though runnable all along, takes none: uniform random
-- scheduling gives that a chance of about 1 in 2^20 per run, so `explore` with the default
-- strategy sweeps thousands of seeds and finds nothing. PCT gives each goroutine a random
-- priority, runs the highest one until it blocks, and demotes the running goroutine at a few
-- random steps: a run where the loader outranks the reader and is demoted right after its
-- twentieth step hits the bug, a few runs in a hundred.
--
-- Run:   cargo run --release -- explore scenarios/pct_bug.lua --runs 2000                  (passes)
--        cargo run --release -- explore scenarios/pct_bug.lua --runs 200 --strategy pct    (fails)
--        then `gosim shrink` on the smallest failing seed, and `gosim replay --schedule FILE`.
--
-- Under the default random strategy this scenario passes for every seed the tests use, which is
-- exactly the point: a sweep with the wrong strategy can miss a real bug.

local steps = 0        -- the loader's progress: 20 small steps
local cache = nil      -- filled by the loader when all 20 are done

goroutine.spawn{name = "loader", fn = function()
  for i = 1, 20 do
    steps = steps + 1
    goroutine.yield()                 -- a scheduling point between steps
  end
  cache = "ready"
end}

goroutine.spawn{name = "reader", fn = function()
  -- The bug: the reader assumes that if the loader has finished all its steps, the cache is
  -- set. It is not, until the loader's next line runs: a reader that comes in exactly then
  -- (the loader ran its 20 steps with no interruption, then yielded once more) sees the gap.
  if steps == 20 then
    assert(cache ~= nil, "reader saw a finished loader but an empty cache")
  end
end}
-- gosim: expect-fail (a demonstrated bug: `gosim test` passes when the sweep finds it)
