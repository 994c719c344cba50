-- pipeline_patterns.lua: the wish-list's pipelines (seed 2.1-2.5), each run as the seed writes
-- it, completed so that it ends cleanly.
--
-- Shows: pipeline_with_errors (a failed item becomes an error record on a second channel, and
-- "Pipeline error: " .. err prints "stage S: msg"); pipeline_with_retry (a flaky call is retried
-- retry_delay ms apart, a hopeless one becomes an error record after max_retries + 1 calls);
-- pipeline_with_rate_limit (rate_limit = 10 spaces items 100 ms apart, shared by both workers);
-- pipeline_with_metrics (per-stage counters and times in virtual ms; the totals are the sums);
-- dynamic_pipeline (stages added and removed while it runs; nothing is dropped).
--
-- Run:   cargo run --release -- run scenarios/pipeline_patterns.lua --seed 7
--
-- In the trace: "send channel#2"pipeline errors"" carries each error record; "retry retry#N
-- attempt=2 delay=100ms" before each retry; "wait rate_limiter#N n=1" once per item, 100 ms
-- apart; "note dynamic pipeline add_stage/remove_stage ..." for the dynamic pipeline's changes.
-- Every section asserts its law: |outputs| + |errors| = |inputs|.

local function feed(ch, values)
  goroutine.spawn(function()
    for _, v in ipairs(values) do ch:send(v) end
    ch:close()
  end)
end

---------------------------------------------------------------------------------------------
-- 2.1 Pipeline with error handling (the seed's example).
local input = goroutine.channel(10)
local output, errors = goroutine.pipeline_with_errors(input, {
  {
    workers = 2,
    fn = function(x)
      if x < 0 then
        return nil, "negative value not allowed"
      end
      return x * 2, nil
    end
  },
  {
    workers = 2,
    fn = function(x)
      return x + 10, nil
    end
  }
})
feed(input, { 1, -2, 3, -4, 5 })

-- Process values and errors separately (the error reader reports when it is done).
local errors_done = goroutine.channel()
local n_errors = 0
goroutine.spawn(function()
  errors:range(function(err)
    log.error("Pipeline error: " .. err)
    assert(err.value < 0 and err.stage == 1 and err.attempts == 1)
    n_errors = n_errors + 1
  end)
  errors_done:send(true)
end)

local results = 0
output:range(function(value)
  log.info("Result: " .. value)
  results = results + 1
end)
errors_done:receive()
assert(results == 3 and n_errors == 2, "every input is one result or one error")

---------------------------------------------------------------------------------------------
-- 2.2 Pipeline with retry logic: risky_operation fails twice for even numbers, always for 7.
local calls = {}
local function risky_operation(x)
  calls[x] = (calls[x] or 0) + 1
  if x == 7 then return nil, "service unavailable" end
  if x % 2 == 0 and calls[x] < 3 then return nil, "temporary failure" end
  return x * 100
end

local input2 = goroutine.channel(10)
local output2, errors2 = goroutine.pipeline_with_retry(input2, {
  {
    workers = 2,
    max_retries = 3,
    retry_delay = 100,  -- ms
    fn = function(x)
      -- May fail temporarily
      return risky_operation(x)
    end
  }
})
feed(input2, { 1, 2, 7 })
local failed = {}
local reader = goroutine.async(function()
  errors2:range(function(err) failed[#failed + 1] = err end)
end)
local got = 0
output2:range(function(v) got = got + 1 log.info("retried result " .. v) end)
assert(got == 2 and calls[2] == 3, "2 succeeded on its third call")
-- 7 failed 4 times (1 + max_retries): its record says so. The errors channel closes with
-- the output, so the reader ends too.
goroutine.await(reader)
assert(#failed == 1 and failed[1].value == 7 and failed[1].attempts == 4)
log.warn("gave up: " .. failed[1])

---------------------------------------------------------------------------------------------
-- 2.3 Pipeline with rate limiting: 10 ops per second for the stage, whatever its workers.
local function expensive_api_call(x) return "api(" .. x .. ")" end
local input3 = goroutine.channel(10)
local output3 = goroutine.pipeline_with_rate_limit(input3, {
  {
    workers = 2,
    rate_limit = 10,  -- max 10 ops/second
    fn = function(x)
      return expensive_api_call(x)
    end
  }
})
feed(input3, { 1, 2, 3, 4 })
local times = {}
output3:range(function(v) times[#times + 1] = goroutine.now() log.info(v) end)
assert(#times == 4)
for i = 2, #times do
  assert(times[i] - times[i - 1] >= 100, "items 100 ms apart")
end

---------------------------------------------------------------------------------------------
-- 2.4 Pipeline with metrics (the seed's example; the work takes virtual time).
local input4 = goroutine.channel(10)
local output4, metrics = goroutine.pipeline_with_metrics(input4, {
  {
    name = "multiply",
    workers = 2,
    fn = function(x) goroutine.sleep(20) return x * 2 end
  },
  {
    name = "add",
    workers = 2,
    fn = function(x) goroutine.sleep(10) return x + 10 end
  }
})
feed(input4, { 1, 2, 3, 4, 5, 6 })
goroutine.spawn(function() output4:range(function() end) end)

-- Available metrics
local reporter = goroutine.async(function()
  goroutine.sleep(5000)
  local stats = metrics:get()
  log.info("Stage 'multiply': " .. stats.multiply.processed .. " items, avg time: " .. stats.multiply.avg_time .. "ms")
  log.info("Stage 'add': " .. stats.add.processed .. " items, avg time: " .. stats.add.avg_time .. "ms")
  assert(stats.multiply.avg_time == 20 and stats.add.max_time == 10)
  assert(stats.total.processed == stats.multiply.processed + stats.add.processed)
end)
goroutine.await(reporter)

---------------------------------------------------------------------------------------------
-- 2.5 Dynamic pipeline (the seed's example), then items sent through it.
local input5 = goroutine.channel(10)
local pipeline = goroutine.dynamic_pipeline(input5)

-- Add stages
pipeline:add_stage({
  name = "stage1",
  workers = 2,
  fn = function(x) return x * 2 end
})

pipeline:add_stage({
  name = "stage2",
  workers = 2,
  fn = function(x) return x + 10 end
})

-- Remove stage
pipeline:remove_stage("stage1")

-- Get output
local output5 = pipeline:output()

feed(input5, { 1, 2, 3 })
local seen = {}
output5:range(function(v) seen[#seen + 1] = v log.info("dynamic result " .. v) end)
table.sort(seen)
assert(#seen == 3 and seen[1] == 11 and seen[3] == 13, "stage1 was removed before any item")
log.info("done at t=" .. goroutine.now())
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
