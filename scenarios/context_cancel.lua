-- context_cancel.lua: stopping work with contexts (Go's context package).
--
-- Shows: goroutine.context() -> ctx, cancel; ctx:with_cancel(); ctx:with_timeout(ms);
-- ctx:done() as a select case; err() going from nil to "context canceled" or
-- "context deadline exceeded"; deadline(); with_deadline(instant); cancellation flowing from
-- parent to children.
--
-- Run:   cargo run --release -- run scenarios/context_cancel.lua --seed 7
--
-- In the trace: the worker ticks at t=10, 20, 30 and stops at t=35 when main cancels; the
-- slow request is abandoned at exactly t=85 (its 50 ms deadline), the deadline context expires
-- at t=100, and the slow request finishes unobserved at t=135.

local root, cancel_root = goroutine.context()
assert(root:err() == nil and not root:is_cancelled())
local d, has = root:deadline()
assert(d == nil and has == false, "a plain context has no deadline")

-- 1. with_cancel: a worker loops until its context is cancelled.
local ctx, cancel = root:with_cancel()
local wg = goroutine.wait_group()
wg:add(1)
goroutine.spawn{name = "worker", fn = function()
  local ticks = 0
  while goroutine.select({
    { channel = ctx:done(), receive = true, handler = function() return false end },  -- closed on cancel
    { channel = goroutine.after(10), receive = true, handler = function()
        ticks = ticks + 1
        log.info("worker tick " .. ticks)
        return true
      end },
  }) do end
  log.info("worker stopped: " .. ctx:err())
  assert(ticks == 3)
  wg:done()
end}
goroutine.sleep(35)
cancel()
wg:wait()
assert(ctx:err() == "context canceled" and ctx:is_cancelled())
assert(root:err() == nil, "cancelling a child does not touch its parent")

-- 2. with_timeout: give a slow request 50 ms. The reply channel has room for 1 value so the
--    late requester can still deliver and exit: with capacity 0 it would block forever (a leak).
local tctx, tcancel = root:with_timeout(50)
local deadline, ok = tctx:deadline()
log.info("deadline at t=" .. deadline)
assert(ok == true and deadline == goroutine.now() + 50)      -- absolute time: 35 + 50
local reply = goroutine.channel(1)
goroutine.spawn{name = "slow-request", fn = function()
  goroutine.sleep(100)
  reply:send("late answer")
  log.info("slow request finished, nobody listens")
end}
local result = goroutine.select({
  { channel = reply, receive = true, handler = function(v) return v end },
  { channel = tctx:done(), receive = true, handler = function() return "gave up: " .. tctx:err() end },
})
log.info(result .. " at t=" .. goroutine.now())
assert(result == "gave up: context deadline exceeded" and goroutine.now() == 85)
tcancel()     -- always call cancel (frees the timer in Go); the error stays "deadline exceeded"
assert(tctx:err() == "context deadline exceeded")

-- 3. with_deadline takes an absolute instant on the run's clock (goroutine.now() units).
local dctx = root:with_deadline(100)
assert(dctx:deadline() == 100)
goroutine.select({ { channel = dctx:done(), receive = true } })   -- just wait for it
assert(goroutine.now() == 100 and dctx:err() == "context deadline exceeded")

-- 4. Cancelling a parent cancels every descendant. ctx:cancel() works like the cancel function.
local child = root:with_cancel()
local grandchild = child:with_timeout(1000)
root:cancel()                               -- same as cancel_root()
assert(child:err() == "context canceled" and grandchild:err() == "context canceled")
local late = root:with_cancel()             -- a child of a cancelled context starts cancelled
assert(late:is_cancelled())
log.info("root cancelled: child and grandchild too")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
