-- gosim-fuzz harness: the checked operations that generated scenarios call.
--
-- The generator (fuzz/src/lib.rs) prepends the configuration (CAPS, PREFILL_N, CLOSED_AT_START,
-- NMUTEX, NRW, SEMCAPS, SINGLE_RECEIVER, MAXSPAWN) and appends the goroutine bodies `B[i]` and
-- main's operations. Every operation checks an invariant of gosim; a broken one raises an error
-- whose message starts with "invariant broken:" (the fuzz target turns it into a crash).
--
-- Values: every value sent is a unique integer `gid * SEQ + seq` (the sender's goroutine id and
-- its own counter), so a receiver knows who sent it and in which order.
--   sent[v] = c        v is being offered, or was delivered, on channel c
--   confirmed[v]       v's send returned true (it was buffered or handed to a receiver)
--   recvd[v] = gid     v was received (by goroutine gid)
-- Laws: received values were sent on that channel, never twice, and in each sender's order (per
-- receiver); a send that failed or a select send case that lost delivered nothing; when every
-- goroutine is quiescent, every confirmed value was received or is still buffered (FINAL drains).

local G = goroutine
local SEQ = 100000

local function fail(msg) error("invariant broken: " .. msg, 2) end
local function check(cond, msg, ...)
  if not cond then error("invariant broken: " .. string.format(msg, ...), 2) end
end

local chans, mx, rws, sems = {}, {}, {}, {}
for c = 1, #CAPS do chans[c] = G.channel(CAPS[c]) end
for m = 1, NMUTEX do mx[m] = G.mutex() end
for r = 1, NRW do rws[r] = G.rwmutex() end
for s = 1, #SEMCAPS do sems[s] = G.semaphore(SEMCAPS[s]) end
local wg = G.wait_group()
local wgc = 0

local sent, confirmed, recvd, last, seqs = {}, {}, {}, {}, {}
local conf_on = {}
for c = 1, #CAPS do conf_on[c] = {} end
local closing, closed, closes_ok = {}, {}, {}
local owner, readers, writer, holders = {}, {}, {}, {}
local timers = {}
local CTX_TIMEOUT = 15
local ctx, cancel_root = G.context()
local child = ctx:with_timeout(CTX_TIMEOUT)
local cancelling, cancelled = false, false
local once = G.once()
local once_runs, once_finished = 0, false
B = {}
local nspawned = 0

local function newval()
  local g = G.id()
  local s = (seqs[g] or 0) + 1
  seqs[g] = s
  return g * SEQ + s
end

local function confirm(c, v)
  check(sent[v] == c, "confirmed value %d was not offered on channel %d", v, c)
  check(not confirmed[v], "value %d confirmed twice", v)
  confirmed[v] = true
  local l = conf_on[c]
  l[#l + 1] = v
end

-- A send of v on c failed (closed) or lost a select: v must not have been delivered.
local function withdraw(c, v)
  check(recvd[v] == nil, "value %d on channel %d was received although its send did not happen", v, c)
  check(not confirmed[v], "value %d withdrawn after it was confirmed", v)
  sent[v] = nil
end

-- Records a receive on channel c; `blocking` says whether `nil, false` means "closed" for sure.
local function on_recv(c, v, ok, blocking)
  if ok == true then
    check(math.type(v) == "integer", "channel %d delivered a value that nobody sent: %s", c, tostring(v))
    check(sent[v] == c, "value %d received on channel %d was never sent on it (sent on %s)", v, c,
      tostring(sent[v]))
    check(recvd[v] == nil, "value %d received twice on channel %d (g%s, then g%d)", v, c,
      tostring(recvd[v]), G.id())
    recvd[v] = G.id()
    local key = G.id() .. ":" .. c .. ":" .. (v // SEQ)
    local s = v % SEQ
    check((last[key] or 0) < s, "FIFO broken on channel %d: g%d received %d after seq %d of the same sender",
      c, G.id(), v, last[key] or 0)
    last[key] = s
  else
    check(ok == false and v == nil, "failed receive on channel %d returned %s, %s", c, tostring(v), tostring(ok))
    if blocking then
      check(closing[c], "a blocking receive on open channel %d returned nil, false", c)
      if SINGLE_RECEIVER then
        for _, w in ipairs(conf_on[c]) do
          check(recvd[w] ~= nil, "channel %d said closed-and-drained but value %d sent on it was never received", c, w)
        end
      end
    end
  end
end

local function send_result(c, v, ok, err)
  if ok == true then
    check(err == nil, "send on channel %d returned true with %s", c, tostring(err))
    confirm(c, v)
  else
    check(ok == false and err == "send on closed channel", "send on channel %d returned %s, %s", c,
      tostring(ok), tostring(err))
    check(closing[c], "send on open channel %d failed as closed", c)
    withdraw(c, v)
  end
end

---------------------------------------------------------------------------------------------------
-- Goroutines
---------------------------------------------------------------------------------------------------
function SPAWN(i)
  if nspawned < MAXSPAWN then
    nspawned = nspawned + 1
    G.spawn(B[i])
  end
end

function SLEEP(ms)
  local t0 = G.now()
  G.sleep(ms)
  check(G.now() == t0 + ms, "sleep(%d) from %s woke at %s", ms, tostring(t0), tostring(G.now()))
end

function YIELD()
  local t0 = G.now()
  G.yield()
  check(G.now() == t0, "yield moved the clock from %s to %s", tostring(t0), tostring(G.now()))
end

---------------------------------------------------------------------------------------------------
-- Channels
---------------------------------------------------------------------------------------------------
function SEND(c)
  local v = newval()
  sent[v] = c
  send_result(c, v, chans[c]:send(v))
end

function TRYSEND(c)
  local v = newval()
  sent[v] = c
  local was_closed = closed[c]
  local ok, err = chans[c]:try_send(v)
  if ok == false and err == nil then
    check(not was_closed, "try_send on closed channel %d said full instead of closed", c)
    withdraw(c, v)
  else
    send_result(c, v, ok, err)
  end
end

function RECV(c)
  local v, ok = chans[c]:receive()
  on_recv(c, v, ok, true)
end

function TRYRECV(c)
  local v, ok = chans[c]:try_receive()
  on_recv(c, v, ok, false)
end

function CLOSE(c)
  closing[c] = true
  local ok, err = chans[c]:close()
  if ok == true then
    closes_ok[c] = (closes_ok[c] or 0) + 1
    check(closes_ok[c] == 1, "channel %d closed successfully twice", c)
  else
    check(ok == false and err == "channel already closed", "close of channel %d returned %s, %s", c,
      tostring(ok), tostring(err))
  end
  closed[c] = true
end

function LEN(c)
  local n = chans[c]:len()
  check(math.type(n) == "integer" and n >= 0 and n <= CAPS[c], "channel %d (cap %d) has len %s", c, CAPS[c],
    tostring(n))
  check(chans[c]:cap() == CAPS[c], "channel %d cap changed", c)
  local was_closed = closed[c] -- is_closed is a scheduling point: read what we knew before it
  local isc = chans[c]:is_closed()
  if was_closed then check(isc == true, "closed channel %d says it is open", c) end
  if isc then check(closing[c], "channel %d says it is closed before anyone closed it", c) end
end

---------------------------------------------------------------------------------------------------
-- Select. specs: {"r", c} receive, {"s", c} send, {"nr"}/{"ns"} channel = false cases,
-- {"a", ms} receive from goroutine.after(ms), {"d", k} receive from ctx:done() (k even: the root
-- context, odd: its child with a deadline). mode: "block", "default" or "timeout" (with ms).
---------------------------------------------------------------------------------------------------
function SEL(specs, mode, ms)
  local fired, which, dfired, send_ok = 0, nil, 0, nil
  local cases, offered = {}, {}
  local must_ready = false
  if SINGLE_RECEIVER then
    -- Only this goroutine receives, so a buffered value stays there until it takes it.
    for _, sp in ipairs(specs) do
      if sp[1] == "r" and chans[sp[2]]:len() > 0 then must_ready = true end
    end
  end
  local t0 = G.now()
  for i, sp in ipairs(specs) do
    local kind, c = sp[1], sp[2]
    if kind == "r" then
      if closed[c] then must_ready = true end
      cases[i] = { channel = chans[c], receive = true, handler = function(v, ok)
        fired, which = fired + 1, i
        on_recv(c, v, ok, true)
        return "r", i
      end }
    elseif kind == "s" then
      if closed[c] then must_ready = true end
      local v = newval()
      sent[v] = c
      offered[i] = v
      cases[i] = { channel = chans[c], send = v, handler = function(ok, err)
        fired, which, send_ok = fired + 1, i, ok
        send_result(c, v, ok, err)
        return "s", i
      end }
    elseif kind == "nr" or kind == "ns" then
      local case = { channel = false, handler = function() fail("a channel = false case fired") end }
      if kind == "nr" then case.receive = true else case.send = 1 end
      cases[i] = case
    elseif kind == "d" then
      local cx = c % 2 == 0 and ctx or child
      if cancelled or (cx == child and t0 > CTX_TIMEOUT) then must_ready = true end
      cases[i] = { channel = cx:done(), receive = true, handler = function(v, ok)
        fired, which = fired + 1, i
        check(v == nil and ok == false, "done() delivered %s, %s", tostring(v), tostring(ok))
        check(cancelling or (c % 2 == 1 and G.now() >= CTX_TIMEOUT), "done() closed at %s before any cancel",
          tostring(G.now()))
        return "x", i
      end }
    elseif kind == "a" then
      local at = t0 + c
      cases[i] = { channel = G.after(c), receive = true, handler = function(v, ok)
        fired, which = fired + 1, i
        check(ok == true and v == at, "after(%d) from %s delivered %s, %s", c, tostring(t0), tostring(v),
          tostring(ok))
        return "a", i
      end }
    else
      fail("bad select spec " .. tostring(kind))
    end
  end
  if mode == "timeout" then
    local timed_out, idx = G.select_timeout(ms, cases)
    if type(idx) == "string" then error(idx, 0) end -- a handler's check failed
    if timed_out then
      check(fired == 0, "select_timeout timed out after a case fired")
      check(not must_ready, "select_timeout timed out although a case was ready")
      check(G.now() == t0 + ms, "select_timeout(%d) from %s timed out at %s", ms, tostring(t0),
        tostring(G.now()))
      check(idx == nil, "select_timeout timed out with index %s", tostring(idx))
    else
      check(fired == 1 and idx == which - 1, "select_timeout fired %d handlers, index %s, handler %s", fired,
        tostring(idx), tostring(which))
      check(G.now() <= t0 + ms, "select_timeout(%d) from %s fired a case at %s", ms, tostring(t0),
        tostring(G.now()))
    end
  else
    if mode == "default" then
      cases[#cases + 1] = { default = true, handler = function()
        dfired = dfired + 1
        return "d"
      end }
    end
    local what, i = G.select(cases)
    if what == "d" then
      check(dfired == 1 and fired == 0, "default taken with %d case handlers run", fired)
      check(not must_ready, "select took default although a case was ready")
    else
      check(dfired == 0 and fired == 1 and i == which, "select ran %d handlers (+%d default)", fired, dfired)
    end
  end
  for i, v in pairs(offered) do
    if i ~= which or send_ok ~= true then withdraw(specs[i][2], v) end
  end
end

---------------------------------------------------------------------------------------------------
-- Locks. The generator tracks what each body holds, so these are never misuse.
---------------------------------------------------------------------------------------------------
function LOCK(m)
  mx[m]:lock()
  check(owner[m] == nil, "mutex %d locked by g%d while g%s holds it", m, G.id(), tostring(owner[m]))
  owner[m] = G.id()
end

function UNLOCK(m)
  check(owner[m] == G.id(), "mutex %d: g%d unlocks but the owner is g%s", m, G.id(), tostring(owner[m]))
  owner[m] = nil
  mx[m]:unlock()
end

function TRYLOCK(m)
  if mx[m]:try_lock() then
    check(owner[m] == nil, "mutex %d try-locked by g%d while g%s holds it", m, G.id(), tostring(owner[m]))
    owner[m] = G.id()
    G.yield()
    UNLOCK(m)
  end
end

function TRYLOCK_HELD(m)
  check(mx[m]:try_lock() == false, "try_lock of mutex %d succeeded while g%d holds it", m, G.id())
end

function RLOCK(r)
  rws[r]:rlock()
  check(writer[r] == nil, "rwmutex %d read-locked while g%s writes", r, tostring(writer[r]))
  readers[r] = (readers[r] or 0) + 1
end

function RUNLOCK(r)
  readers[r] = readers[r] - 1
  check(readers[r] >= 0, "rwmutex %d reader count negative", r)
  rws[r]:runlock()
end

function WLOCK(r)
  rws[r]:lock()
  check(writer[r] == nil and (readers[r] or 0) == 0, "rwmutex %d write-locked with writer g%s and %d readers",
    r, tostring(writer[r]), readers[r] or 0)
  writer[r] = G.id()
end

function WUNLOCK(r)
  check(writer[r] == G.id(), "rwmutex %d: g%d unlocks but the writer is g%s", r, G.id(), tostring(writer[r]))
  writer[r] = nil
  rws[r]:unlock()
end

function TRYRLOCK(r)
  if rws[r]:try_rlock() then
    check(writer[r] == nil, "rwmutex %d try-read-locked while g%s writes", r, tostring(writer[r]))
    readers[r] = (readers[r] or 0) + 1
    G.yield()
    RUNLOCK(r)
  end
end

function TRYWLOCK(r)
  if rws[r]:try_lock() then
    check(writer[r] == nil and (readers[r] or 0) == 0, "rwmutex %d try-write-locked with writer g%s and %d readers",
      r, tostring(writer[r]), readers[r] or 0)
    writer[r] = G.id()
    G.yield()
    WUNLOCK(r)
  end
end

-- The caller holds r (either side): neither try may succeed.
function TRYRW_HELD(r)
  check(rws[r]:try_lock() == false, "rwmutex %d try_lock succeeded while g%d holds it", r, G.id())
  if writer[r] == G.id() then
    check(rws[r]:try_rlock() == false, "rwmutex %d try_rlock succeeded while g%d writes", r, G.id())
  end
end

function ACQ(s)
  sems[s]:acquire()
  holders[s] = (holders[s] or 0) + 1
  check(holders[s] <= SEMCAPS[s], "semaphore %d (capacity %d) has %d holders", s, SEMCAPS[s], holders[s])
end

function REL(s)
  holders[s] = holders[s] - 1
  sems[s]:release()
end

function TRYACQ(s)
  if sems[s]:try_acquire() then
    holders[s] = (holders[s] or 0) + 1
    check(holders[s] <= SEMCAPS[s], "semaphore %d (capacity %d) has %d holders", s, SEMCAPS[s], holders[s])
    G.yield()
    REL(s)
  end
  local a = sems[s]:available()
  check(math.type(a) == "integer" and a >= 0 and a <= SEMCAPS[s], "semaphore %d (capacity %d) has %s available", s,
    SEMCAPS[s], tostring(a))
end

---------------------------------------------------------------------------------------------------
-- Context (a root and a child with a deadline at CTX_TIMEOUT ms) and once
---------------------------------------------------------------------------------------------------
function CANCEL()
  cancelling = true
  cancel_root()
  cancelled = true
end

function CTXERR()
  local was_cancelled = cancelled
  local e = ctx:err()
  if was_cancelled then check(e == "context canceled", "cancelled context has err %s", tostring(e)) end
  if e ~= nil then check(cancelling and e == "context canceled", "root context err %s", tostring(e)) end
  local ce = child:err()
  if was_cancelled then check(ce ~= nil, "child of a cancelled context is not cancelled") end
  if ce == "context canceled" then
    check(cancelling, "child context cancelled before anyone cancelled")
  elseif ce == "context deadline exceeded" then
    check(G.now() >= CTX_TIMEOUT, "child context expired at %s, before its deadline", tostring(G.now()))
  else
    check(ce == nil, "child context err %s", tostring(ce))
  end
end

function ONCE(ms)
  once:call(function()
    once_runs = once_runs + 1
    check(once_runs == 1, "once ran its function %d times", once_runs)
    G.sleep(ms)
    once_finished = true
  end)
  check(once_finished, "once:call returned before the function finished")
end

---------------------------------------------------------------------------------------------------
-- Wait group
---------------------------------------------------------------------------------------------------
function WGADD(n)
  wgc = wgc + n
  wg:add(n)
end

function WGDONE()
  if wgc > 0 then
    wgc = wgc - 1
    wg:done()
  end
end

function WGWAIT()
  wg:wait()
end

---------------------------------------------------------------------------------------------------
-- Timers (one slot per goroutine)
---------------------------------------------------------------------------------------------------
function AFTER(ms)
  local t0 = G.now()
  local v, ok = G.after(ms):receive()
  check(ok == true and v == t0 + ms, "after(%d) from %s delivered %s, %s", ms, tostring(t0), tostring(v),
    tostring(ok))
  check(G.now() == v, "after(%d) delivered %s but woke its receiver at %s", ms, tostring(v), tostring(G.now()))
end

function TNEW(ms)
  timers[G.id()] = G.timer(ms)
end

function TSTOP()
  local t = timers[G.id()]
  if t then
    t:stop()
    local v, ok = t:channel():try_receive()
    check(not ok, "a stopped timer delivered %s", tostring(v))
  end
end

function TRESET(ms)
  local t = timers[G.id()]
  if t then
    t:reset(ms)
    local v, ok = t:channel():try_receive()
    check(not ok, "a timer reset to %d ms delivered %s at once", ms, tostring(v))
  end
end

function TWAIT(ms)
  local t = timers[G.id()]
  if t then
    local t0 = G.now()
    local timed_out, err = G.select_timeout(ms, { { channel = t:channel(), receive = true, handler = function(v, ok)
      check(ok == true and math.type(v) ~= nil and v <= G.now(), "timer delivered %s, %s at %s", tostring(v),
        tostring(ok), tostring(G.now()))
    end } })
    if type(err) == "string" then error(err, 0) end
    if timed_out then check(G.now() == t0 + ms, "timer wait(%d) from %s timed out at %s", ms, tostring(t0),
      tostring(G.now())) end
  end
end

---------------------------------------------------------------------------------------------------
-- Start and end
---------------------------------------------------------------------------------------------------
function PREFILL()
  for c = 1, #CAPS do
    for _ = 1, PREFILL_N[c] or 0 do SEND(c) end
    if CLOSED_AT_START[c] then CLOSE(c) end
  end
end

-- Every checked operation counts as activity when it completes (FINAL uses it to see that the
-- other goroutines are quiescent).
local activity = 0
for _, name in ipairs({ "SPAWN", "SLEEP", "YIELD", "SEND", "TRYSEND", "RECV", "TRYRECV", "CLOSE", "LEN", "SEL",
  "LOCK", "UNLOCK", "TRYLOCK", "TRYLOCK_HELD", "RLOCK", "RUNLOCK", "WLOCK", "WUNLOCK", "TRYRLOCK", "TRYWLOCK",
  "TRYRW_HELD", "ACQ", "REL", "TRYACQ", "WGADD", "WGDONE", "WGWAIT", "AFTER", "TNEW", "TSTOP", "TRESET",
  "TWAIT", "CANCEL", "CTXERR", "ONCE" }) do
  local f = _ENV[name]
  _ENV[name] = function(...)
    f(...)
    activity = activity + 1
  end
end

-- Main's last step: wait until every other goroutine is quiescent (finished, or blocked with no
-- timer that could wake it), drain every channel, and check that no confirmed value was lost.
-- Every wait in a scenario is at most a few tens of ms, so a QUIET stretch of virtual time in which
-- no operation completed and nothing was left in a channel means that nobody can move any more
-- (and nobody holds a received value that it has not recorded yet).
local QUIET = 5000
function FINAL()
  for _ = 1, 100000 do
    local before = activity
    G.sleep(QUIET)
    local got = 0
    for c = 1, #CAPS do
      while true do
        local v, ok = chans[c]:try_receive()
        if not ok then break end
        on_recv(c, v, ok, false)
        got = got + 1
      end
    end
    if got == 0 and activity == before then break end
  end
  for c = 1, #CAPS do
    for _, v in ipairs(conf_on[c]) do
      check(recvd[v] ~= nil, "value %d sent on channel %d was lost (send returned true, nobody received it)", v, c)
    end
  end
end
