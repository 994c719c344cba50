-- gosim prelude: the Lua half of the `goroutine`, `log` and `sim` modules.
--
-- Rust keeps the data (channels, queues, timers, the RNG); this file holds what must be Lua:
--  * the yield shims: a blocking call asks Rust to do the operation; if Rust answers PARK, the
--    goroutine yields TOKEN to the scheduler, which resumes it with the operation's results;
--  * every combinator that calls user functions that may block (select handlers, pools,
--    pipelines, async/await, once, range), because a coroutine cannot yield through Rust;
--  * misuse errors: Rust answers MISUSE, msg and the shim raises it prefixed with the user's
--    line (`raise`), skipping frames of this file.
-- Chunk arguments: raw (Rust functions), TOKEN, PARK, MISUSE, FAILED, methods (tables).

local raw, TOKEN, PARK, MISUSE, FAILED, methods = ...

local yield = coroutine.yield
local raw_resume = coroutine.resume
local raw_create = coroutine.create
local raw_status = coroutine.status
local pack, unpack = table.pack, table.unpack
local type, error, pcall, xpcall, select_n, tostring = type, error, pcall, xpcall, select, tostring
local raw_pcall, raw_xpcall = pcall, xpcall
local setmetatable, rawequal, ipairs, pairs = setmetatable, rawequal, ipairs, pairs
local getinfo = debug.getinfo  -- private: the global `debug` is removed after this chunk
-- This file is loaded as stripped bytecode (no line info, source "=?"), so its frames are
-- recognised by their source.
local PRELUDE_SOURCE = { ["=[gosim]"] = true, ["=?"] = true }

-- The user line where a suspended goroutine stopped (skipping C and prelude frames), for
-- deadlock and leak reports. Only called when a report is built.
raw.set_where(function(co)
  for level = 0, 60 do
    local info = getinfo(co, level, "Sl")
    if not info then return nil end
    if info.what ~= "C" and not PRELUDE_SOURCE[info.source] and (info.currentline or -1) > 0 then
      return info.short_src .. ":" .. info.currentline
    end
  end
end)

-- The module tables (also reachable through require).
local goroutine = {}
local log = {}
local sim = {}
local modules = { goroutine = goroutine, log = log, sim = sim }

-- Misuse errors point at the user's line: the innermost frame that is neither C nor this
-- prelude (so wrappers may tail-call each other freely).
local function user_position()
  for level = 2, 60 do
    local info = getinfo(level, "Sl")
    if not info then return "" end
    if info.what ~= "C" and not PRELUDE_SOURCE[info.source] and (info.currentline or -1) > 0 then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return ""
end
local function raise(msg) error(user_position() .. msg, 0) end

-- Every Rust op returns two values: results, or PARK (yield and take the results from the
-- resume), or MISUSE, message.
local function op2(a, b)
  if a == PARK then return yield(TOKEN) end
  if a == MISUSE then raise(b) end
  return a, b
end

-- The same for calls with one result (the second value is always nil then).
local function op1(a, b)
  if a == PARK then a = yield(TOKEN) end
  if a == MISUSE then raise(b) end
  return a
end

-- Calls that never park.
local function check(a, ...)
  if a == MISUSE then raise((...)) end
  return a, ...
end
local function one(a, b)
  if a == MISUSE then raise(b) end
  return a
end

-- Bindings declared in Rust (`src/lua/bind/`): one shim per result count turns the two private
-- answers into control flow (PARK: yield to the scheduler, which resumes with the results;
-- MISUSE: raise the message at the user's line) and returns as many values as declared.
local wrappers = {
  [0] = function(f)
    return function(...)
      local a, b = f(...)
      if a == PARK then yield(TOKEN) elseif a == MISUSE then raise(b) end
    end
  end,
  [1] = function(f)
    return function(...)
      local a, b = f(...)
      if a == PARK then return (yield(TOKEN)) end
      if a == MISUSE then raise(b) end
      return a
    end
  end,
  [2] = function(f)
    return function(...)
      local a, b = f(...)
      if a == PARK then a, b = yield(TOKEN) elseif a == MISUSE then raise(b) end
      return a, b
    end
  end,
  [3] = function(f)
    return function(...)
      local a, b, c = f(...)
      if a == PARK then return yield(TOKEN) end
      if a == MISUSE then raise(b) end
      return a, b, c
    end
  end,
}

-- Every declared binding: methods into their kind's table, functions into their module. Lua
-- definitions below may wrap a declared function (to call user code) under the same name.
-- `declared` keeps the unwrapped functions, for the few shims written by hand (the hot path).
local declared = {}
for _, d in ipairs(raw.declared) do
  local owner = d.kind or d.module
  local t = d.kind and methods[d.kind] or modules[d.module]
  t[d.name] = wrappers[d.results](d.fn)
  declared[owner] = declared[owner] or {}
  declared[owner][d.name] = d.fn
end

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

-- How a bad argument is shown: values for scalars, the type otherwise (never an address).
local function shown(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  return t
end

local function argcheck(cond, fname, msg, got)
  if not cond then
    raise(fname .. ": " .. msg .. " (got " .. shown(got) .. ")")
  end
end

-- An integer argument: an integer, or a float with an integral value (as Lua 5.1 scripts pass).
local function is_int(v)
  return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and v == v
    and v > -2^53 and v < 2^53)
end

---------------------------------------------------------------------------------------------
-- Nested coroutines: a blocking call made inside a user's coroutine travels up to the
-- scheduler and back, so user generators can use channels and sleeps.
---------------------------------------------------------------------------------------------
local function pass_through(co, r)
  while r[1] and r[2] == TOKEN and raw_status(co) == "suspended" do
    r = pack(raw_resume(co, yield(TOKEN)))
  end
  return r
end

coroutine.resume = function(co, ...)
  local r = pass_through(co, pack(raw_resume(co, ...)))
  return unpack(r, 1, r.n)
end

coroutine.wrap = function(f)
  local co = raw_create(f)
  return function(...)
    local r = pass_through(co, pack(raw_resume(co, ...)))
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 0)
  end
end

---------------------------------------------------------------------------------------------
-- Errors: describe any error value without addresses, with a traceback.
---------------------------------------------------------------------------------------------
local function describe_error(e)
  local t = type(e)
  if t == "string" then return e end
  if t == "table" then
    local mt = getmetatable(e)
    if mt and mt.__tostring then return tostring(e) end
    local keys = {}
    for k in pairs(e) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do
      local v = e[k]
      local vs = type(v) == "string" and string.format("%q", v) or
        ((type(v) == "number" or type(v) == "boolean") and tostring(v) or type(v))
      parts[#parts + 1] = tostring(k) .. "=" .. vs
    end
    return "error object {" .. table.concat(parts, ", ") .. "}"
  end
  if t == "nil" then return "nil" end
  if t == "userdata" then return tostring(e) end
  if t == "number" or t == "boolean" then return tostring(e) end
  return "error object (" .. t .. ")"
end

local function on_error(e)
  if e == "not enough memory" then raw.memory_error() end
  return raw.traceback(describe_error(e), 2)
end

-- The body of every goroutine (main included). No table is built on the way: spawning is hot.
local function finish_goroutine(ok, err)
  if not ok then return FAILED, err end
end
-- The raw xpcall: one frame less on every goroutine's stack (memory errors that reach this
-- level are recognised by the Rust side).
local function run_goroutine(fn, ...)
  return finish_goroutine(raw_xpcall(fn, on_error, ...))
end
raw.set_entry(run_goroutine)

-- An out-of-memory error ends the run with the memory limit even when a pcall catches it: the
-- heap is full, and going on would only fail again somewhere less clear.
local function after_pcall(ok, ...)
  if not ok and (...) == "not enough memory" then raw.memory_error() end
  return ok, ...
end
_G.pcall = function(f, ...) return after_pcall(raw_pcall(f, ...)) end
_G.xpcall = function(f, h, ...) return after_pcall(raw_xpcall(f, h, ...)) end
pcall, xpcall = _G.pcall, _G.xpcall  -- the prelude's own catches check too

-- `print` writes a trace event (verb `print`) instead of bypassing the trace on stdout.
_G.print = function(...)
  local n = select_n("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select_n(i, ...))) end
  raw.log("print", table.concat(parts, "\t"))
end

-- Only source text may be loaded: precompiled bytecode can crash the VM.
local raw_load = load
load = function(chunk, name, mode, env)
  return raw_load(chunk, name, "t", env)
end

-- `assert` failures are classified as assertion failures (not plain errors) in reports, and
-- point at the line of the assert. Non-string messages (tables) are raised unchanged.
-- The exact error is recorded first: what raised it makes it an assertion, not its words.
local function raise_assertion(msg)
  local e = user_position() .. msg
  raw.assertion(e)
  error(e, 0)
end
assert = function(cond, msg, ...)
  if cond then return cond, msg, ... end
  if msg == nil then raise_assertion("assertion failed!") end
  if type(msg) == "string" or type(msg) == "number" then raise_assertion("assertion failed: " .. msg) end
  error(msg, 2)
end

---------------------------------------------------------------------------------------------
-- Goroutines and time
---------------------------------------------------------------------------------------------

---------------------------------------------------------------------------------------------
-- Channels
---------------------------------------------------------------------------------------------
local ch_send, ch_recv = declared.channel.send, declared.channel.receive

local C = methods.channel
-- send and receive are the hottest calls: fixed-arity shims, written out.
function C.send(ch, v)
  local a, b = ch_send(ch, v)
  if a == PARK then return yield(TOKEN) end
  if a == MISUSE then raise(b) end
  return a, b
end
function C.receive(ch)
  local a, b = ch_recv(ch)
  if a == PARK then return yield(TOKEN) end
  if a == MISUSE then raise(b) end
  return a, b
end
local function need_channel(fname, ch)
  argcheck(raw.is_channel(ch), fname, "expects a channel", ch)
end

function C.range(ch, f)
  argcheck(is_callable(f), "channel:range", "expects a function", f)
  check(raw.ch_check_recv(ch, "channel:range"))
  while true do
    local v, ok = C.receive(ch)
    if not ok then return end
    if f(v) == false then return end
  end
end

---------------------------------------------------------------------------------------------
-- Select: Rust commits exactly one case; its handler then runs here (it may block).
---------------------------------------------------------------------------------------------
local NIL = setmetatable({}, { __name = "goroutine.NIL", __tostring = function() return "goroutine.NIL" end })
goroutine.NIL = NIL

local ch_select = raw.select
local function run_select(fname, cases, level)
  argcheck(type(cases) == "table", fname, "expects an array of cases", cases)
  local idx, v, ok = ch_select(cases, fname, NIL)
  if idx == PARK then idx, v, ok = yield(TOKEN) end
  if idx == MISUSE then raise(v) end
  return idx, v, ok
end

local function call_handler(case, v, ok)
  local h = case.handler
  if h == nil then return end
  return h(v, ok)
end

function goroutine.select(cases)
  local idx, v, ok = run_select("goroutine.select", cases, 4)
  return call_handler(cases[idx], v, ok)
end

function goroutine.select_timeout(ms, cases)
  argcheck(type(ms) == "number", "goroutine.select_timeout", "timeout must be a number of milliseconds", ms)
  argcheck(type(cases) == "table", "goroutine.select_timeout", "expects an array of cases", cases)
  for i, c in ipairs(cases) do
    if type(c) == "table" and c.default then
      raise("goroutine.select_timeout: case " .. i .. " is a default case, which select_timeout does not take")
    end
  end
  local all = { n = #cases + 1 }
  for i = 1, #cases do all[i] = cases[i] end
  all[#cases + 1] = { channel = goroutine.after(ms), receive = true }
  local idx, v, ok = run_select("goroutine.select_timeout", all, 4)
  if idx == #cases + 1 then return true, nil end
  local r = pack(pcall(call_handler, cases[idx], v, ok))
  if not r[1] then return false, describe_error(r[2]) end
  return false, idx - 1
end

---------------------------------------------------------------------------------------------
-- Synchronisation
---------------------------------------------------------------------------------------------
local WG = methods.waitgroup

function goroutine.once() return one(raw.once()) end
local O = methods.once
function O.call(o, f)
  argcheck(is_callable(f), "once:call", "expects a function", f)
  local first = op2(raw.once_begin(o))
  if not first then return end
  local r = pack(pcall(f))
  raw.once_finish(o)
  if not r[1] then error(r[2], 0) end
  op2(raw.yield())
end

local function is_locker(l)
  local ok, lock = pcall(function() return l.lock end)
  local ok2, unlock = pcall(function() return l.unlock end)
  return ok and ok2 and is_callable(lock) and is_callable(unlock)
end

function goroutine.cond(locker)
  if locker == nil then locker = goroutine.mutex() end
  argcheck(is_locker(locker), "goroutine.cond", "expects a locker (a mutex, an rwmutex or an rlocker)", locker)
  local c = one(raw.cond())
  raw.cond_set_locker(c, locker)
  return c
end
local CO = methods.cond
function CO.wait(c)
  local locker = one(raw.cond_locker(c, "cond:wait"))
  local ticket = one(raw.cond_ticket(c))
  local ok, err = pcall(locker.unlock, locker)
  if not ok then
    raw.cond_abandon(c, ticket)
    raise("cond:wait: the cond's locker must be locked by the caller (" .. describe_error(err) .. ")")
  end
  op2(raw.cond_wait(c, ticket))
  locker:lock()
end
function CO.signal(c) op2(raw.cond_signal(c)) end
function CO.broadcast(c) op2(raw.cond_broadcast(c)) end
function CO.get_mutex(c) return one(raw.cond_locker(c, "cond:get_mutex")) end

---------------------------------------------------------------------------------------------
-- Context
---------------------------------------------------------------------------------------------
-- Contexts come with their cancel function (Go's `ctx, cancel := context.WithCancel(...)`).
local X = methods.context
local function with_cancel_fn(make)
  return function(...)
    local c = make(...)
    return c, function() c:cancel() end
  end
end
goroutine.context = with_cancel_fn(goroutine.context)
X.with_cancel = with_cancel_fn(X.with_cancel)
X.with_timeout = with_cancel_fn(X.with_timeout)
X.with_deadline = with_cancel_fn(X.with_deadline)

---------------------------------------------------------------------------------------------
-- async / await / timeout
---------------------------------------------------------------------------------------------
local handle_mt = { __name = "async handle" }
handle_mt.__index = handle_mt
function handle_mt.__tostring(h) return "async(" .. tostring(h.id) .. ")" end

local function start_async(fname, f, ...)
  argcheck(is_callable(f), fname, "expects a function", f)
  local h = setmetatable({ done = goroutine.channel(0), finished = false }, handle_mt)
  raw.name_channel(h.done, "await")
  local args = pack(...)
  h.id = op1(raw.spawn_quiet(function()
    -- The error is returned to the awaiter as a message (no traceback: it is a value now).
    local r = pack(xpcall(f, describe_error, unpack(args, 1, args.n)))
    if not r[1] then raw.mark_failed() end
    h.result = r
    h.finished = true
    C.close(h.done)
  end, nil))
  return h
end

function goroutine.async(f, ...)
  local h = start_async("goroutine.async", f, ...)
  op2(raw.yield())
  return h
end

local function await_handle(h)
  if not h.finished then C.receive(h.done) end
  local r = h.result
  if r[1] then return true, unpack(r, 2, r.n) end
  return false, r[2]
end

function goroutine.await(h)
  argcheck(getmetatable(h) == handle_mt, "goroutine.await", "expects a handle from goroutine.async", h)
  return await_handle(h)
end

function goroutine.await_all(hs)
  argcheck(type(hs) == "table", "goroutine.await_all", "expects an array of handles", hs)
  local out = {}
  for _, h in ipairs(hs) do
    if getmetatable(h) == handle_mt then
      local r = pack(await_handle(h))
      if r[1] then
        out[#out + 1] = { success = true, values = { unpack(r, 2, r.n) } }
      else
        out[#out + 1] = { success = false, error = r[2] }
      end
    end
  end
  return out
end

function goroutine.timeout(ms, f)
  argcheck(type(ms) == "number", "goroutine.timeout", "timeout must be a number of milliseconds", ms)
  local h = start_async("goroutine.timeout", f)
  local timer = goroutine.after(ms)
  local idx = run_select("goroutine.timeout", {
    { channel = h.done, receive = true },
    { channel = timer, receive = true },
  }, 3)
  if idx == 2 and not h.finished then return false, "timeout exceeded" end
  return await_handle(h)
end

---------------------------------------------------------------------------------------------
-- Named worker pools (the original module's pool_*): workers are goroutines reading a queue
-- channel of workers*2 tasks; submit never blocks.
---------------------------------------------------------------------------------------------
local pools = {}

local function pool_worker(p)
  while true do
    local task, ok = C.receive(p.queue)
    if not ok then break end
    if p.cancelled then
      p.dropped = p.dropped + 1
    else
      p.active = p.active + 1
      local r = pack(xpcall(task.fn, on_error, unpack(task.args, 1, task.args.n)))
      p.active = p.active - 1
      if r[1] then
        p.completed = p.completed + 1
      else
        p.failed = p.failed + 1
        raw.note("pool task failed", p.name .. ": " .. tostring(r[2]):match("[^\n]*"))
      end
    end
  end
  WG.done(p.wg)
end

local function close_pool(p)
  p.closed = true
  if not C.is_closed(p.queue) then C.close(p.queue) end
end

function goroutine.pool_create(name, opts)
  argcheck(type(name) == "string", "goroutine.pool_create", "name must be a string", name)
  argcheck(opts == nil or type(opts) == "table", "goroutine.pool_create", "options must be a table", opts)
  local workers = (opts and opts.workers) or 4
  argcheck(is_int(workers) and workers > 0, "goroutine.pool_create", "workers must be a positive integer", workers)
  workers = math.tointeger(workers)
  local old = pools[name]
  if old then
    old.cancelled = true
    close_pool(old)
  end
  local p = {
    name = name, workers = workers, active = 0, completed = 0, failed = 0, dropped = 0,
    next_id = 0, closed = false, cancelled = false,
    queue = goroutine.channel(workers * 2), wg = goroutine.wait_group(),
  }
  raw.name_channel(p.queue, "pool " .. name)
  pools[name] = p
  WG.add(p.wg, workers)
  for i = 1, workers do
    op1(raw.spawn_quiet(pool_worker, name .. "-worker-" .. i, p))
  end
  op2(raw.yield())
  return true
end

function goroutine.pool_submit(name, f, ...)
  argcheck(type(name) == "string", "goroutine.pool_submit", "name must be a string", name)
  argcheck(is_callable(f), "goroutine.pool_submit", "expects a function", f)
  local p = pools[name]
  if not p then return nil, "pool not found: " .. name end
  if p.closed then return nil, "pool is closed" end
  p.next_id = p.next_id + 1
  local ok = C.try_send(p.queue, { fn = f, args = pack(...) })
  if not ok then
    p.next_id = p.next_id - 1
    return nil, "pool queue is full"
  end
  return name .. "-" .. p.next_id
end

function goroutine.pool_wait(name)
  argcheck(type(name) == "string", "goroutine.pool_wait", "name must be a string", name)
  local p = pools[name]
  if not p then return false, "pool not found: " .. name end
  close_pool(p)
  WG.wait(p.wg)
  return true
end

function goroutine.pool_close(name)
  argcheck(type(name) == "string", "goroutine.pool_close", "name must be a string", name)
  local p = pools[name]
  if not p then return false end
  p.cancelled = true
  close_pool(p)
  pools[name] = nil
  op2(raw.yield())
  return true
end

function goroutine.pool_stats(name)
  argcheck(type(name) == "string", "goroutine.pool_stats", "name must be a string", name)
  local p = pools[name]
  if not p then return nil end
  return {
    name = p.name, workers = p.workers, active = p.active, completed = p.completed,
    failed = p.failed, queued = C.len(p.queue),
  }
end

---------------------------------------------------------------------------------------------
-- pipeline, fan_out, fan_in
---------------------------------------------------------------------------------------------
function goroutine.pipeline(input, stages)
  need_channel("goroutine.pipeline", input)
  argcheck(type(stages) == "table", "goroutine.pipeline", "stages must be an array", stages)
  for i, st in ipairs(stages) do
    argcheck(type(st) == "table" and is_callable(st.fn), "goroutine.pipeline", "stage " .. i .. " needs fn = function", st)
    local w = st.workers or 1
    argcheck(is_int(w) and w > 0, "goroutine.pipeline", "stage " .. i .. " workers must be a positive integer", w)
  end
  local current = input
  for i, st in ipairs(stages) do
    local out = goroutine.channel(10)
    raw.name_channel(out, "pipeline stage " .. i)
    local src = current
    local remaining = math.tointeger(st.workers or 1)
    for w = 1, remaining do
      op1(raw.spawn_quiet(function()
        while true do
          local v, ok = C.receive(src)
          if not ok then break end
          local r = pack(pcall(st.fn, v))
          if r[1] then
            C.send(out, r[2])
          else
            raw.note("pipeline stage error", "stage " .. i .. ": " .. describe_error(r[2]))
          end
        end
        remaining = remaining - 1
        if remaining == 0 then C.close(out) end
      end, "pipeline-" .. i .. "-" .. w))
    end
    current = out
  end
  op2(raw.yield())
  return current
end

function goroutine.fan_out(input, n)
  need_channel("goroutine.fan_out", input)
  argcheck(is_int(n) and n > 0, "goroutine.fan_out", "count must be a positive integer", n)
  n = math.tointeger(n)
  local outs = {}
  for i = 1, n do
    outs[i] = goroutine.channel(10)
    raw.name_channel(outs[i], "fan_out " .. i)
  end
  op1(raw.spawn_quiet(function()
    while true do
      local v, ok = C.receive(input)
      if not ok then break end
      for i = 1, n do C.send(outs[i], v) end
    end
    for i = 1, n do C.close(outs[i]) end
  end, "fan_out"))
  op2(raw.yield())
  return outs
end

function goroutine.fan_in(inputs)
  argcheck(type(inputs) == "table", "goroutine.fan_in", "expects an array of channels", inputs)
  local chans = {}
  for _, ch in ipairs(inputs) do
    if raw.is_channel(ch) then chans[#chans + 1] = ch end
  end
  if #chans == 0 then raise("goroutine.fan_in: at least one input channel required") end
  local out = goroutine.channel(10)
  raw.name_channel(out, "fan_in")
  local remaining = #chans
  for i, ch in ipairs(chans) do
    op1(raw.spawn_quiet(function()
      while true do
        local v, ok = C.receive(ch)
        if not ok then break end
        C.send(out, v)
      end
      remaining = remaining - 1
      if remaining == 0 then C.close(out) end
    end, "fan_in-" .. i))
  end
  op2(raw.yield())
  return out
end

---------------------------------------------------------------------------------------------
-- Resilience (seed 3.x): Rust owns each state machine (`patterns::resilience`); these loops only
-- call the user's functions between its declared steps.
---------------------------------------------------------------------------------------------
local function op3(a, b, c)
  if a == PARK then return yield(TOKEN) end
  if a == MISUSE then raise(b) end
  return a, b, c
end

-- How a user function's outcome reads: raised (false, err), returned `nil, err` (false, err),
-- or anything else (true, results...).
local function outcome(r)
  if not r[1] then return false, describe_error(r[2]) end
  if r[2] == nil and r.n >= 3 and r[3] ~= nil then return false, r[3] end
  return true
end

local cb_acquire = declared.circuit_breaker.acquire
local permit_record = declared.permit.record
local cb_callbacks = setmetatable({}, { __mode = "k" })
local function cb_notify(cb, ts)
  if ts == nil then return end
  local f = cb_callbacks[cb]
  if f == nil then return end
  for _, t in ipairs(ts) do f(t[1], t[2]) end
end

do
  local make = goroutine.circuit_breaker
  function goroutine.circuit_breaker(opts)
    local cb = make(opts)
    if type(opts) == "table" and opts.on_state_change ~= nil then
      cb_callbacks[cb] = opts.on_state_change
    end
    return cb
  end
end

local CB = methods.circuit_breaker
function CB.call(cb, f, ...)
  argcheck(is_callable(f), "circuit_breaker:call", "expects a function", f)
  local permit, err, ts = op3(cb_acquire(cb))
  cb_notify(cb, ts)
  if not permit then return false, err end
  local r = pack(pcall(f, ...))
  local ok, e = outcome(r)
  cb_notify(cb, op1(permit_record(permit, ok)))
  if ok then return true, unpack(r, 2, r.n) end
  return false, e
end

-- Retry: `goroutine.permanent(err)` wraps an error that stops the retries at once.
local permanent_mt = { __name = "permanent error" }
function permanent_mt.__tostring(p) return "permanent: " .. describe_error(p.err) end
function goroutine.permanent(err)
  return setmetatable({ err = err }, permanent_mt)
end

local RP = methods.retry_policy
function goroutine.retry(opts, f)
  local policy
  if type(opts) == "userdata" then
    policy = opts
    RP.max_attempts(policy)  -- a misuse if it is not a retry policy
  else
    argcheck(opts == nil or type(opts) == "table", "goroutine.retry", "options must be a table", opts)
    policy = goroutine.retry_policy(opts)
  end
  argcheck(is_callable(f), "goroutine.retry", "expects a function", f)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local r = pack(pcall(f))
    if r[1] and not (r[2] == nil and r.n >= 3 and r[3] ~= nil) then
      return unpack(r, 2, r.n)
    end
    local e = r[1] and r[3] or r[2]
    if getmetatable(e) == permanent_mt then return nil, e.err end
    if not r[1] then e = describe_error(e) end
    local d = RP.next_delay(policy, attempt)
    if d == nil then return nil, e end
    goroutine.sleep(d)
  end
end

-- Bulkhead: enter the partition (Rust), run fn, leave whatever its outcome.
local BH = methods.bulkhead
local bh_enter, bh_leave = declared.bulkhead.enter, declared.bulkhead.leave
function BH.execute(bh, name, f, ...)
  argcheck(is_callable(f), "bulkhead:execute", "expects a function", f)
  local ok, err = bh_enter(bh, name)
  if ok == MISUSE then raise((err:gsub("^bulkhead:enter", "bulkhead:execute"))) end
  if ok == PARK then ok, err = yield(TOKEN) end
  if not ok then return false, err end
  local r = pack(pcall(f, ...))
  op2(bh_leave(bh, name))
  local good, e = outcome(r)
  if good then return true, unpack(r, 2, r.n) end
  return false, e
end

---------------------------------------------------------------------------------------------
-- Observability (seed 6.x): profiler, channel inspector, deadlock detector. Reading them is never
-- a scheduling point, so adding them to a scenario does not change its interleavings.
---------------------------------------------------------------------------------------------
local detector_mt = { __name = "deadlock_detector" }
detector_mt.__index = detector_mt
function detector_mt.__tostring() return "deadlock_detector" end

function goroutine.deadlock_detector(opts)
  argcheck(opts == nil or type(opts) == "table", "goroutine.deadlock_detector", "options must be a table", opts)
  opts = opts or {}
  local interval = opts.check_interval or 1000
  local timeout = opts.timeout or 5000
  argcheck(type(interval) == "number" and interval > 0, "goroutine.deadlock_detector", "check_interval must be a positive number of milliseconds", interval)
  argcheck(type(timeout) == "number" and timeout >= 0, "goroutine.deadlock_detector", "timeout must be a non-negative number of milliseconds", timeout)
  return setmetatable({ rust = one(raw.detector(timeout)), interval = interval, timeout = timeout,
                        running = false, handler = nil }, detector_mt)
end

function detector_mt.on_deadlock(d, f)
  argcheck(is_callable(f), "deadlock_detector:on_deadlock", "expects a function", f)
  d.handler = f
end

-- Checks now; returns the info table when goroutines are stuck in a situation not reported yet.
function detector_mt.check(d)
  return one(raw.detector_check(d.rust))
end

-- Starts the periodic check: a daemon goroutine (never a leak, never keeps the run alive).
function detector_mt.start(d)
  if d.running then return end
  d.running = true
  -- An observer daemon: its sleeps never count as a way out of a deadlock, so a run whose real
  -- goroutines are all stuck still ends with a deadlock report.
  local id = op1(raw.spawn(function()
    while d.running do
      goroutine.sleep(d.interval)
      if not d.running then break end
      local info = one(raw.detector_check(d.rust))
      if info and d.handler then d.handler(info) end
    end
  end, "deadlock_detector", true))
  raw.mark_observer(id)
end

function detector_mt.stop(d) d.running = false end

---------------------------------------------------------------------------------------------
-- log and sim
---------------------------------------------------------------------------------------------
local function dump(v, indent, seen, out)
  if type(v) ~= "table" then
    out[#out + 1] = type(v) == "string" and string.format("%q", v) or (type(v) == "number" or type(v) == "boolean" or v == nil) and tostring(v) or type(v)
    return
  end
  if seen[v] then out[#out + 1] = "<cycle>" return end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return false
  end)
  out[#out + 1] = "{\n"
  for _, k in ipairs(keys) do
    out[#out + 1] = indent .. "  " .. (type(k) == "string" and k or "[" .. tostring(k) .. "]") .. " = "
    dump(v[k], indent .. "  ", seen, out)
    out[#out + 1] = ",\n"
  end
  out[#out + 1] = indent .. "}"
  seen[v] = nil
end

function log.table(t, title)
  local out = {}
  if title ~= nil then out[1] = tostring(title) .. ": " end
  dump(t, "", {}, out)
  raw.log("table", table.concat(out))
end

do
  local rust_random = math.random
  _G.math.random = function(...)
    local a, b = rust_random(...)
    if a == MISUSE then raise(b) end
    return a
  end
end
sim.random = math.random
function sim.assert_always(cond, msg)
  if not cond then
    raw.assert_event("always", msg == nil and "assertion" or tostring(msg), false)
    raise_assertion("assertion failed: " .. (msg == nil and "sim.assert_always" or tostring(msg)))
  end
end

return goroutine, log, sim, run_goroutine, describe_error
