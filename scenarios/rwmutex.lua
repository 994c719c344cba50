-- rwmutex.lua: many readers or one writer.
--
-- Shows: rlock/runlock let readers share the lock; lock waits until every reader has left and
-- then excludes everybody; a waiting writer blocks NEW readers (Go's rule, so writers are not
-- starved); rlocker() turns the read side into a plain lock/unlock object.
--
-- Run:   cargo run --release -- run scenarios/rwmutex.lua --seed 7
--
-- In the trace: readers 1-3 hold the read lock together from t=0 to t=10; the writer asks at
-- t=5 and gets it at t=10; reader 4 arrives at t=7, behind the waiting writer, and only gets in
-- at t=15, when the writer unlocks: it sees the new value.

local rw = goroutine.rwmutex()
local config = { version = 1 }
local readers, max_readers, writing = 0, 0, false
local wg = goroutine.wait_group()

local function reader(n, delay)
  wg:add(1)
  goroutine.spawn{name = "reader-" .. n, fn = function()
    goroutine.sleep(delay)
    rw:rlock()
    assert(not writing, "a reader never overlaps the writer")
    readers = readers + 1
    max_readers = math.max(max_readers, readers)
    log.info("reader " .. n .. " sees version " .. config.version .. " at t=" .. goroutine.now())
    if n == 4 then assert(config.version == 2, "reader 4 queued behind the writer") end
    goroutine.sleep(10)                 -- reading takes 10 ms
    readers = readers - 1
    rw:runlock()
    wg:done()
  end}
end

for n = 1, 3 do reader(n, 0) end
reader(4, 7)                            -- arrives while the writer is waiting

wg:add(1)
goroutine.spawn{name = "writer", fn = function()
  goroutine.sleep(5)
  rw:lock()                             -- waits for readers 1-3 to leave
  log.info("writer got the lock at t=" .. goroutine.now())
  assert(readers == 0 and goroutine.now() == 10)
  writing = true
  goroutine.sleep(5)
  config.version = 2
  writing = false
  rw:unlock()                           -- reader 4 goes next
  wg:done()
end}

wg:wait()
assert(max_readers == 3, "readers 1-3 shared the lock")
assert(goroutine.now() == 25)          -- reader 4: in at 15, out at 25

-- rlocker(): an object whose lock/unlock take the READ side (e.g. for goroutine.cond).
local rl = rw:rlocker()
rl:lock()
assert(rw:try_rlock() == true, "other readers may join")
rw:runlock()
assert(rw:try_lock() == false, "but a writer may not")
rl:unlock()
assert(rw:try_lock() == true)
rw:unlock()
log.info("rlocker read-locks: readers may join, writers may not")
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
