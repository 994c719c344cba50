-- gosim prelude: the Lua half of the `goroutine`, `log` and `sim` modules.
--
-- Rust keeps the data (channels, queues, timers, the RNG); this file holds what must be Lua:
--  * the yield shims: a blocking call asks Rust to do the operation; if Rust answers PARK, the
--    goroutine yields TOKEN to the scheduler, which resumes it with the operation's results;
--  * the loops that call user functions that may block (select handlers, pool workers,
--    pipeline workers, the async body, once, range), because a coroutine cannot yield through
--    Rust; Rust owns every state machine they step (`src/lua/bind/`), Lua only calls the user;
--  * misuse errors: Rust answers MISUSE, msg and the shim raises it prefixed with the user's
--    line (`raise`), skipping frames of this file.
-- Chunk arguments: raw (private Rust functions: `src/lua/raw.rs`, and the declarations of module
-- `raw`), TOKEN, PARK, MISUSE, FAILED, methods (tables).

local raw, TOKEN, PARK, MISUSE, FAILED, methods = ...

local yield = coroutine.yield
local raw_resume = coroutine.resume
local raw_create = coroutine.create
local raw_status = coroutine.status
local pack, unpack = table.pack, table.unpack
local type, error, pcall, xpcall, select_n, tostring = type, error, pcall, xpcall, select, tostring
local raw_pcall, raw_xpcall = pcall, xpcall
local setmetatable, ipairs, pairs = setmetatable, ipairs, pairs
local getinfo = debug.getinfo  -- private: the global `debug` is removed after this chunk
-- A world's runs share this file's tables (a reused Lua state, `src/lua/reuse.rs`): metatables a
-- script can reach carry `__metatable = false`, so no run can change one for the next; this file
-- reads them raw.
local raw_getmetatable = debug.getmetatable
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
-- Declarations with module `raw` are the prelude's private functions.
local modules = { goroutine = goroutine, log = log, sim = sim, raw = raw }

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

-- Every declared binding, made on first use (a state makes only what its script touches): a
-- module or methods table looks a missing name up among the declarations, wraps it, and keeps
-- it. Lua definitions below may wrap a declared function (to call user code) under the same
-- name; plain assignment puts them in the table, so they take precedence. `declared[owner][name]`
-- is the unwrapped function, for the shims written by hand (select, the patterns' loops).
local lookup = raw.lookup
local function make_lazy(t, owner)
  setmetatable(t, { __index = function(tbl, name)
    if type(name) ~= "string" then return nil end
    local f, n = lookup(owner, name)
    if f == nil then return nil end
    local w = wrappers[n](f)
    rawset(tbl, name, w)
    return w
  end })
end
raw.set_make_lazy(make_lazy)
for owner, t in pairs(modules) do
  if owner ~= "raw" then make_lazy(t, owner) end
end
-- The private steps declared under `raw` are used unwrapped or wrapped by the prelude's loops.
setmetatable(raw, { __index = function(tbl, name)
  local f, n = lookup("raw", name)
  if f == nil then return nil end
  local w = wrappers[n](f)
  rawset(tbl, name, w)
  return w
end })
local declared = setmetatable({}, { __index = function(all, owner)
  local o = setmetatable({}, { __index = function(fns, name)
    local f = lookup(owner, name)
    rawset(fns, name, f)
    return f
  end })
  rawset(all, owner, o)
  return o
end })

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

---------------------------------------------------------------------------------------------
-- Nested coroutines: a blocking call made inside a user's coroutine travels up to the
-- scheduler and back, so user generators can use channels and sleeps.
-- A goroutine's own coroutine belongs to the scheduler: user code may see it (coroutine.running)
-- but never resume or close it, or a parked goroutine would return from a call with values
-- nobody sent. Only coroutines made by coroutine.create/wrap can be resumed, and not while a
-- blocking call made inside one travels to the scheduler (its results belong to the goroutine
-- that resumed it, which is parked).
-- Once the run has an outcome (a limit), an error caught by resume/close/pcall/load is raised
-- again: user code cannot swallow a limit.
---------------------------------------------------------------------------------------------
local raw_close, raw_running, raw_isyieldable = coroutine.close, coroutine.running, coroutine.isyieldable
local run_over = raw.run_over
local user_coroutines = setmetatable({}, {__mode = "k"})
local in_transit = setmetatable({}, {__mode = "k"})

local function back_from_scheduler(co, ...)
  in_transit[co] = nil
  return raw_resume(co, ...)
end

local function pass_through(co, r)
  while r[1] and r[2] == TOKEN and raw_status(co) == "suspended" do
    in_transit[co] = true
    r = pack(back_from_scheduler(co, yield(TOKEN)))
  end
  if not r[1] and run_over() then error(r[2], 0) end
  return r
end

local function check_resumable(fname, co)
  if type(co) ~= "thread" then return end
  if not user_coroutines[co] then
    raise(fname .. ": this is a goroutine's own coroutine (from coroutine.running()); only the " ..
      "scheduler runs goroutines: talk to them with channels and goroutine.* calls")
  end
  if in_transit[co] then
    raise(fname .. ": this coroutine is blocked in a goroutine.* call made inside it; it can be " ..
      "resumed again once that call returns to the goroutine that resumed it")
  end
end

local function new_coroutine(fname, f)
  if type(f) ~= "function" then raise(fname .. ": expects a function (got " .. type(f) .. ")") end
  local co = raw_create(f)
  user_coroutines[co] = true
  return co
end

coroutine.create = function(f) return new_coroutine("coroutine.create", f) end

coroutine.resume = function(co, ...)
  check_resumable("coroutine.resume", co)
  local r = pass_through(co, pack(raw_resume(co, ...)))
  return unpack(r, 1, r.n)
end

coroutine.close = function(co)
  check_resumable("coroutine.close", co)
  local ok, e = raw_close(co)
  if not ok and run_over() then error(e, 0) end
  return ok, e
end

-- A goroutine gives up control only through goroutine.* calls: only a user coroutine can yield.
coroutine.isyieldable = function(co)
  if co ~= nil and type(co) ~= "thread" then
    raise("coroutine.isyieldable: expects a coroutine (got " .. type(co) .. ")")
  end
  co = co or raw_running()
  return user_coroutines[co] == true and raw_isyieldable(co)
end

coroutine.wrap = function(f)
  local co = new_coroutine("coroutine.wrap", f)
  return function(...)
    if in_transit[co] then check_resumable("coroutine.wrap", co) end
    local r = pass_through(co, pack(raw_resume(co, ...)))
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 0)
  end
end

-- Text for the trace: bytes that are not UTF-8 are shown escaped (\xNN), never an error.
local utf8_len, byte, gsub_raw = utf8.len, string.byte, string.gsub
local function printable(s)
  if utf8_len(s) then return s end
  return (gsub_raw(s, "[\128-\255]", function(c) return string.format("\\x%02X", byte(c)) end))
end

-- Runtime errors raised inside this prelude's stripped code say "?:-1:": point at the user's line.
local function fix_position(e)
  if type(e) == "string" and e:sub(1, 6) == "?:-1: " then return user_position() .. e:sub(7) end
  return e
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
  if t == "nil" then return "nil (an error raised with no message: error() or error(nil))" end
  if t == "userdata" then return tostring(e) end
  if t == "number" or t == "boolean" then return tostring(e) end
  return "error object (" .. t .. ")"
end

local function on_error(e)
  if e == "not enough memory" then raw.memory_error() end
  return raw.traceback(describe_error(fix_position(e)), 2)
end

-- The body of every goroutine (main included) is a C function (`capi::entry`): fn(...) under
-- the raw protected call with on_error as the handler, returning nothing or FAILED, message
-- (memory errors that reach this level are recognised by the Rust side).
raw.set_entry(on_error)

-- An out-of-memory error ends the run with the memory limit even when a pcall catches it: the
-- heap is full, and going on would only fail again somewhere less clear.
local function after_pcall(ok, ...)
  if not ok then
    if (...) == "not enough memory" then raw.memory_error() end
    if run_over() then error((...), 0) end
    return ok, fix_position((...)), select_n(2, ...)
  end
  return ok, ...
end
_G.pcall = function(f, ...) return after_pcall(raw_pcall(f, ...)) end
-- A message handler runs at the point of the error: for an error raised by the instruction hook
-- (a limit), that is inside the hook, where Lua runs no hook, so a looping handler would never
-- be stopped. Once the run is over the user's handler is skipped (the error is raised again).
local function guarded_handler(h)
  if type(h) ~= "function" then return h end
  return function(e)
    if run_over() then return e end
    return h(e)
  end
end
_G.xpcall = function(f, h, ...) return after_pcall(raw_xpcall(f, guarded_handler(h), ...)) end
pcall, xpcall = _G.pcall, _G.xpcall  -- the prelude's own catches check too

-- `print` writes a trace event (verb `print`) instead of bypassing the trace on stdout.
_G.print = function(...)
  local n = select_n("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select_n(i, ...))) end
  raw.log("print", printable(table.concat(parts, "\t")))
end

-- Only source text may be loaded: precompiled bytecode can crash the VM.
local raw_load = load
load = function(chunk, name, mode, env)
  local f, e = raw_load(chunk, name, "t", env)
  if f == nil and run_over() then error(e, 0) end
  return f, e
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
local C = methods.channel
-- send and receive are the hottest calls: C functions that yield to the scheduler themselves
-- (`src/lua/capi.rs`), as are yield, sleep and spawn. What they do not take (a handle that is
-- not a channel, a spec table, a bad duration) goes to the declared binding's generic shim,
-- read from the lazy tables before the C functions replace it.
local hot = raw.hot_functions(raise, yield, C.send, C.receive, goroutine.sleep, goroutine.spawn)
C.send, C.receive, goroutine.yield, goroutine.sleep, goroutine.spawn =
  hot[1], hot[2], hot[3], hot[4], hot[5]

function C.range(ch, f)
  argcheck(is_callable(f), "channel:range", "expects a function", f)
  check(raw.ch_check_recv(ch, "channel:range"))
  while true do
    local v, ok = C.receive(ch)
    if not ok then return end
    if f(v) == false then return end
  end
end

-- `range(fn)` of the channel patterns (subscriber, overflow and priority channels): receive
-- until the stream ends (closed, or unsubscribed), calling fn between declared receives; fn
-- returning false stops early, as `channel:range`.
for _, kind in ipairs({ "subscriber", "overflow_channel", "priority_channel" }) do
  local recv = declared[kind].receive
  local fname = kind .. ":range"
  methods[kind].range = function(h, f)
    argcheck(is_callable(f), fname, "expects a function", f)
    while true do
      local v, ok = recv(h)
      if v == PARK then v, ok = yield(TOKEN) end
      if v == MISUSE then raise((ok:gsub("^[%w_]+:receive", fname))) end
      if not ok then return end
      if f(v) == false then return end
    end
  end
end

---------------------------------------------------------------------------------------------
-- Select: Rust commits exactly one case; its handler then runs here (it may block).
---------------------------------------------------------------------------------------------
local NIL = setmetatable({}, { __name = "goroutine.NIL", __metatable = false,
                               __tostring = function() return "goroutine.NIL" end })
goroutine.NIL = NIL

-- The select itself is Rust (`bind/select.rs`); a hot call, so its shim is written out.
local ch_select = declared.raw.select
local function run_select(cases)
  argcheck(type(cases) == "table", "goroutine.select", "expects an array of cases", cases)
  local idx, v, ok = ch_select(cases, NIL)
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
  local idx, v, ok = run_select(cases)
  return call_handler(cases[idx], v, ok)
end

-- Rust selects over the cases and a timer (`bind/select.rs`); here only the handler runs.
local select_deadline = goroutine.select_timeout
function goroutine.select_timeout(ms, cases)
  local idx, v, ok = select_deadline(ms, cases, NIL)
  if idx == nil then return true, nil end
  local r = pack(pcall(call_handler, cases[idx], v, ok))
  if not r[1] then return false, describe_error(r[2]) end
  return false, idx - 1
end

---------------------------------------------------------------------------------------------
-- Synchronisation
---------------------------------------------------------------------------------------------

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
-- Rust owns the handles and the waits (`bind/task.rs`); an async goroutine's body only calls the
-- user's function and hands the packed result to Rust, which keeps it and closes `await`.
local async_finish = raw.async_finish
local function async_body(h, f, ...)
  async_finish(h, pack(xpcall(f, describe_error, ...)))
end

local function await_values(ok, r)
  if ok then return true, unpack(r, 2, r.n) end
  return false, r
end

local start_async, await_handle, start_timeout = goroutine.async, goroutine.await, goroutine.timeout
function goroutine.async(...) return start_async(async_body, ...) end
function goroutine.await(h) return await_values(await_handle(h)) end
function goroutine.timeout(ms, f) return await_values(start_timeout(ms, f, async_body)) end

---------------------------------------------------------------------------------------------
-- Named worker pools: Rust owns the pools and their names (`bind/pool.rs`); a worker only runs
-- the user's jobs between taking one and reporting how it ended.
---------------------------------------------------------------------------------------------
local pool_next, pool_job_done, pool_worker_exit = raw.pool_next, raw.pool_job_done, raw.pool_worker_exit

local function pool_worker(p)
  while true do
    local f, args = pool_next(p)
    if not f then break end
    pool_job_done(p, xpcall(f, on_error, unpack(args, 1, args.n)))
  end
  pool_worker_exit(p)
end

local create_pool, submit, wait_pool = goroutine.pool_create, goroutine.pool_submit, goroutine.pool_wait
function goroutine.pool_create(name, opts) return create_pool(name, opts, pool_worker) end
-- One value on success, two (nil or false, and why) on failure.
local function result(a, b)
  if a then return a end
  return a, b
end
function goroutine.pool_submit(...) return result(submit(...)) end
function goroutine.pool_wait(name) return result(wait_pool(name)) end

---------------------------------------------------------------------------------------------
-- pipeline: Rust makes the stages (`bind/pipeline.rs`); a worker only calls the stage's function
-- (fan_out and fan_in run no user code: they are Rust, `bind/fan.rs`)
---------------------------------------------------------------------------------------------
local stage_next, stage_emit, stage_failed, stage_done = raw.stage_next, raw.stage_emit, raw.stage_failed, raw.stage_done
local function stage_worker(stage, st)
  while true do
    local v, ok = stage_next(stage)
    if not ok then break end
    local fine, out = pcall(st.fn, v)
    if fine then stage_emit(stage, out) else stage_failed(stage, describe_error(out)) end
  end
  stage_done(stage)
end

local connect = goroutine.pipeline
function goroutine.pipeline(input, stages) return connect(input, stages, stage_worker) end

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
local permanent_mt = { __name = "permanent error", __metatable = false }
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
    if raw_getmetatable(e) == permanent_mt then return nil, e.err end
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
local detector_mt = { __name = "deadlock_detector", __metatable = false }
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
  -- A deadlock that is about to fail the run (a wait-for cycle, or every goroutine asleep) is
  -- reported first: the handler runs in a goroutine of its own, then the run fails.
  raw.detector_arm(d.rust, function(info)
    if d.handler then d.handler(info) end
  end)
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

function detector_mt.stop(d)
  d.running = false
  raw.detector_arm(d.rust, nil)
end

---------------------------------------------------------------------------------------------
-- Messaging (seed 4.x): the loops that call user functions between declared Rust steps
-- (`src/lua/bind/request_reply.rs`, `work_queue.rs`); their private steps leave the methods
-- tables.
---------------------------------------------------------------------------------------------
do
  local RR, d = methods.request_reply, declared.request_reply
  local begin_, next_, reply_, fail_, end_ = d.serve, d._next, d._reply, d._fail, d._serve_end
  RR._next, RR._reply, RR._fail, RR._serve_end = nil, nil, nil, nil
  -- Answers each request with fn(data) until close; a handler that raises (or returns nil, err)
  -- gives the requester nil, msg.
  function RR.serve(rr, f)
    check(begin_(rr))
    if not is_callable(f) then
      check(end_(rr))
      argcheck(false, "request_reply:serve", "expects a function", f)
    end
    while true do
      local id, data = op2(next_(rr))
      if id == nil then break end
      local r = pack(pcall(f, data))
      if r[1] and not (r[2] == nil and r[3] ~= nil) then
        check(reply_(rr, id, r[2]))
      else
        local e = r[1] and r[3] or r[2]
        check(fail_(rr, id, type(e) == "string" and e or describe_error(e)))
      end
    end
    check(end_(rr))
  end
end

do
  local WQ, d = methods.work_queue, declared.work_queue
  local begin_, next_, done_, fail_ = d.process, d._next, d._done, d._fail
  WQ._next, WQ._done, WQ._fail = nil, nil, nil
  local function worker(q, f)
    while true do
      local id, item = op2(next_(q))
      if id == nil then break end
      local r = pack(pcall(f, item))
      if r[1] and not (r[2] == nil and r[3] ~= nil) then
        check(done_(q, id))
      else
        local e = r[1] and r[3] or r[2]
        check(fail_(q, id, type(e) == "string" and e or describe_error(e)))
      end
    end
  end
  -- Starts the worker loops, each calling fn(item) on one job at a time; raising or returning
  -- nil, err is a failed attempt.
  function WQ.process(q, f)
    argcheck(is_callable(f), "work_queue:process", "expects a function", f)
    local n = check(begin_(q))
    for i = 1, n do
      op1(raw.spawn_quiet(worker, "work_queue-worker-" .. i, q, f))
    end
    op2(raw.yield())
  end
end

---------------------------------------------------------------------------------------------
-- The wish-list's pipelines (seed 2.x): Rust makes the stages and decides everything
-- (`bind/pipeline_with.rs`: retry or not, emit, error record, metrics, tokens); a worker only
-- calls the stage's function and says how the call went.
---------------------------------------------------------------------------------------------
do
  local take, finish = raw.stage_take, raw.stage_finish
  -- How a call went: true, result | false, message | "permanent", message.
  local function how(r)
    local e
    if not r[1] then
      e = r[2]
    elseif r[2] == nil and r.n >= 3 and r[3] ~= nil then
      e = r[3]
    else
      return true, r[2]
    end
    if raw_getmetatable(e) == permanent_mt then
      e = e.err
      return "permanent", type(e) == "string" and e or describe_error(e)
    end
    return false, type(e) == "string" and e or describe_error(e)
  end
  -- The worker loop of a stage: take an item, call fn until `finish` says it is done with it.
  local function stage_loop(take_, finish_, done_)
    return function(stage, st)
      local f = st.fn
      while true do
        local item, v = take_(stage)
        if item == nil then break end
        repeat
          item = finish_(item, how(pack(pcall(f, v))))
        until item == nil
      end
      done_(stage)
    end
  end
  local worker = stage_loop(take, finish, stage_done)
  for _, name in ipairs({ "pipeline_with_errors", "pipeline_with_retry", "pipeline_with_rate_limit",
                          "pipeline_with_metrics" }) do
    local connect_with = goroutine[name]
    goroutine[name] = function(input, stages) return connect_with(input, stages, worker) end
  end

  -- dynamic_pipeline: Rust routes every item; its stages run the same loop.
  local dworker = stage_loop(raw.dynamic_take, raw.dynamic_finish, raw.dynamic_done)
  local DP = methods.dynamic_pipeline
  local add = DP.add_stage
  function DP.add_stage(p, spec) return add(p, spec, dworker) end
end

---------------------------------------------------------------------------------------------
-- Work patterns (seed 3.1, 7.x): Rust owns each state machine (`patterns::work`); these loops
-- only call the user's functions between its declared steps.
---------------------------------------------------------------------------------------------
do
  local BP, d = methods.batch_processor, declared.batch_processor
  local next_, done_ = d._next, d._done
  BP._next, BP._done = nil, nil
  -- The processor's own goroutine: fn(items) on one batch at a time, until closed and drained.
  local function loop(b, f)
    while true do
      local items = op1(next_(b))
      if items == nil then break end
      local r = pack(pcall(f, items))
      local ok, e = outcome(r)
      check(done_(b, ok, e))
    end
  end
  local make = goroutine.batch_processor
  function goroutine.batch_processor(opts)
    local b = make(opts)
    op1(raw.spawn_quiet(loop, "batch_processor", b, opts.fn))
    return b
  end
end

do
  local CC, d = methods.coalescing_cache, declared.coalescing_cache
  local begin_, join_, finish_, rust_get = d.get, d._join, d._finish, d._get
  CC._join, CC._finish, CC._get = nil, nil, nil
  local loaders = setmetatable({}, { __mode = "k" })
  local make = goroutine.coalescing_cache
  function goroutine.coalescing_cache(opts)
    local c = make(opts)
    loaders[c] = opts.loader
    return c
  end
  -- A hit returns the entry; a joined caller waits for the flight; the first caller runs the
  -- loader itself (raising or returning nil, err is an error every joined caller gets).
  function CC.get(c, key, timeout)
    local f = loaders[c]
    if f == nil then return op2(rust_get(c, key, timeout)) end
    local kind, v = op2(begin_(c, key, timeout))
    if kind == "hit" then return v end
    if kind == "join" then return op2(join_(c, v, timeout)) end
    local r = pack(pcall(f, key))
    local ok, e = outcome(r)
    if ok then return op2(finish_(c, v, true, r[2])) end
    return op2(finish_(c, v, false, e))
  end
end

do
  local BPAR, d = methods.bounded_parallel, declared.bounded_parallel
  local submit_, done_ = d.submit, d._done
  BPAR._done = nil
  -- A goroutine of the group: runs fn, then each queued function it is handed, then ends.
  local function worker(b, f)
    while f ~= nil do
      local ok, e = outcome(pack(pcall(f)))
      f = check(done_(b, ok, e))
    end
  end
  function BPAR.submit(b, f, timeout)
    local r, err = op2(submit_(b, f, timeout))
    if r == "start" then
      op1(raw.spawn_quiet(worker, "bounded_parallel-worker", b, f))
      return true
    end
    return r, err
  end
end

do
  local PP, d = methods.priority_worker_pool, declared.priority_worker_pool
  local workers_, next_, done_ = d._workers, d._next, d._done
  PP._workers, PP._next, PP._done = nil, nil, nil
  -- A worker: fn(task) on the highest-priority task, one at a time, until closed and drained.
  local function worker(p, f)
    while true do
      local has, task = op2(next_(p))
      if not has then break end
      local ok, e = outcome(pack(pcall(f, task)))
      check(done_(p, ok, e))
    end
  end
  local make = goroutine.priority_worker_pool
  function goroutine.priority_worker_pool(opts)
    local p = make(opts)
    for i = 1, check(workers_(p)) do
      op1(raw.spawn_quiet(worker, "priority_pool-worker-" .. i, p, opts.fn))
    end
    return p
  end
end

do
  local AP, d = methods.adaptive_pool, declared.adaptive_pool
  local process_, next_, done_ = d.process, d._next, d._done
  AP._next, AP._done = nil, nil
  -- A worker: fn(task) on one task at a time, until retired or closed and drained.
  local function worker(p, f)
    while true do
      local has, task = op2(next_(p))
      if not has then break end
      local ok, e = outcome(pack(pcall(f, task)))
      check(done_(p, ok, e))
    end
  end
  -- Sets the task function and starts min_workers workers (Rust starts more at its checks).
  function AP.process(p, f)
    argcheck(is_callable(f), "adaptive_pool:process", "expects a function", f)
    local a, b = process_(p, worker, f)
    if a == PARK then yield(TOKEN) elseif a == MISUSE then raise(b) end
  end
end

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
  raw.log("table", printable(table.concat(out)))
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
    raw.assert_failed(msg == nil and "assertion" or tostring(msg))
    raise_assertion("assertion failed: " .. (msg == nil and "sim.assert_always" or tostring(msg)))
  end
end

-- Makes the declared binding `owner.name` now in `declared` and, with `in_table`, in its methods
-- table or `raw` (the public modules are left lazy: each run fills its own copies). A world
-- reused between runs calls it for every declaration when it is built, so that no run grows a
-- table that outlives it: the first run of a state and the hundredth allocate the same
-- (`collectgarbage("count")`).
local function force(owner, name, in_table)
  if in_table then
    local _ = (modules[owner] or methods[owner])[name]
  end
  local _ = declared[owner][name]
end

return goroutine, log, sim, force
