-- rwmutex_upgradeable.lua: a readers-writer lock whose readers can become the writer (seed 5.3;
-- parking_lot's RwLock with upgradable reads).
--
-- Shows: the seed's example (read, try_upgrade, else fall back to runlock + lock), run twice: once
-- alone (try_upgrade succeeds: the only reader becomes the writer) and once while another
-- goroutine reads (try_upgrade fails, the caller keeps its read lock and falls back); then the
-- guaranteed path: upgradable_rlock coexists with plain readers, upgrade() waits for them to
-- drain while new readers queue behind it (task-fair), and the value read before the upgrade is
-- unchanged right after it.
--
-- Run:   cargo run --release -- run scenarios/rwmutex_upgradeable.lua --seed 7
--
-- In the trace: "try_upgrade rwmutex_upgradeable#1 ok", then "try_upgrade ... refused" while
-- "reader" holds a read lock; later "block-upgrade rwmutex_upgradeable_readers#2" (the upgrader
-- waits for the plain readers), "late-reader"'s "block-rlock" behind it, the readers' "runlock"s,
-- "upgrade", then "unlock" letting "late-reader" in.

local rwlock = goroutine.rwmutex_upgradeable()
local data = 0
local function read_data() return data end
local function write_data(v) data = v end

-- The seed's example, as written there.
local function seed_example()
  -- Read lock
  rwlock:rlock()
  local value = read_data()

  -- Tentar upgrade para write
  if rwlock:try_upgrade() then
    write_data(value + 1)
    rwlock:unlock()
    log.info("upgraded in place: " .. read_data())
  else
    -- Upgrade falhou, fazer unlock e tentar wlock
    rwlock:runlock()
    rwlock:lock()
    write_data(value + 1)
    rwlock:unlock()
    log.info("upgrade refused, took the write lock: " .. read_data())
  end
end

seed_example()                          -- alone: the only reader upgrades
assert(data == 1)

local wg = goroutine.wait_group()
wg:add(1)
goroutine.spawn{name = "reader", fn = function()
  rwlock:rlock()
  goroutine.sleep(10)
  rwlock:runlock()
  wg:done()
end}
goroutine.sleep(1)
seed_example()                          -- another reader holds: try_upgrade refuses
assert(data == 2 and goroutine.now() == 10)
wg:wait()

-- The guaranteed upgrade.
for i = 1, 2 do
  wg:add(1)
  goroutine.spawn{name = "reader-" .. i, fn = function()
    rwlock:rlock()
    goroutine.sleep(10 * i)
    rwlock:runlock()
    wg:done()
  end}
end
goroutine.sleep(1)
assert(rwlock:upgradable_rlock())       -- coexists with the two readers
local before = read_data()
local late_at
wg:add(1)
goroutine.spawn{name = "late-reader", fn = function()
  goroutine.sleep(1)
  rwlock:rlock()                        -- queued: an upgrade is pending
  late_at = goroutine.now()
  assert(read_data() == before + 10, "the late reader sees the upgrader's write")
  rwlock:runlock()
  wg:done()
end}
local start = goroutine.now()
assert(rwlock:upgrade())                -- waits for reader-1 and reader-2
assert(goroutine.now() == start + 19, "upgraded when the last plain reader left")
assert(read_data() == before, "nobody wrote between the read and the upgrade")
write_data(before + 10)
goroutine.sleep(5)
rwlock:unlock()
wg:wait()
assert(late_at == start + 24)

-- Timeouts: a writer that gives up leaves the queue.
rwlock:rlock()
local ok, err
goroutine.spawn{name = "impatient-writer", fn = function()
  ok, err = rwlock:lock(5)
end}
goroutine.sleep(10)
assert(ok == false and err == "timeout")
rwlock:runlock()
log.info("done at t=" .. goroutine.now() .. ", data=" .. data)
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
