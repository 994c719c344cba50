-- gosim prelude: the Lua half of the `goroutine`, `log` and `sim` modules.
--
-- Rust keeps the data (channels, queues, timers, the RNG); this file holds what must be Lua:
--  * the yield shims: a blocking call asks Rust to do the operation; if Rust answers PARK, the
--    goroutine yields TOKEN to the scheduler, which resumes it with the operation's results;
--  * every combinator that calls user functions that may block (select handlers, pools,
--    pipelines, async/await, once, range), because a coroutine cannot yield through Rust;
--  * misuse errors: Rust answers MISUSE, msg and the shim raises it prefixed with the user's
--    line (`raise`), skipping frames of this file.
-- Chunk arguments: raw (Rust functions), TOKEN, PARK, MISUSE, RETRY, FAILED, methods (tables).

local raw, TOKEN, PARK, MISUSE, RETRY, FAILED, methods = ...

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

-- Ops whose blocked form must try again when woken (a mutex lock can be barged).
local function retry_loop(f, obj)
  local a, b = f(obj, false)
  if a == PARK then a = yield(TOKEN) end
  if a == MISUSE then raise(b) end
  while a == RETRY do
    a, b = f(obj, true)
    if a == PARK then a = yield(TOKEN) end
  end
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
assert = function(cond, msg, ...)
  if cond then return cond, msg, ... end
  if msg == nil then raise("assertion failed!") end
  if type(msg) == "string" or type(msg) == "number" then raise("assertion failed: " .. msg) end
  error(msg, 2)
end

---------------------------------------------------------------------------------------------
-- Goroutines and time
---------------------------------------------------------------------------------------------
function goroutine.spawn(f, ...)
  if type(f) == "table" and not is_callable(f) then
    local spec = f
    argcheck(is_callable(spec.fn), "goroutine.spawn", "table form needs fn = function", spec.fn)
    argcheck(spec.name == nil or type(spec.name) == "string", "goroutine.spawn", "name must be a string", spec.name)
    argcheck(spec.args == nil or type(spec.args) == "table", "goroutine.spawn", "args must be a table", spec.args)
    local args = spec.args or {}
    return op1(raw.spawn(spec.fn, spec.name, spec.daemon and true or false, unpack(args, 1, args.n or #args)))
  end
  argcheck(is_callable(f), "goroutine.spawn", "expects a function", f)
  return op1(raw.spawn(f, nil, false, ...))
end

function goroutine.spawn_many(n, f)
  argcheck(is_int(n), "goroutine.spawn_many", "count must be an integer", n)
  argcheck(n >= 0, "goroutine.spawn_many", "count must be non-negative", n)
  argcheck(is_callable(f), "goroutine.spawn_many", "expects a function", f)
  for i = 1, math.tointeger(n) do
    op1(raw.spawn_quiet(f, nil, i))
  end
  op2(raw.yield())
end

function goroutine.sleep(ms) op2(raw.sleep(ms)) end
function goroutine.yield() op2(raw.yield()) end
goroutine.now = raw.now
goroutine.id = raw.id
function goroutine.name(new) return one(raw.name(new)) end

---------------------------------------------------------------------------------------------
-- Channels
---------------------------------------------------------------------------------------------
local ch_send, ch_recv, ch_try_send, ch_try_recv = raw.ch_send, raw.ch_recv, raw.ch_try_send, raw.ch_try_recv
local ch_close = raw.ch_close

function goroutine.channel(cap, dir) return one(raw.channel(cap, dir)) end

local C = methods.channel
-- send and receive are the hottest calls: op2 is written out inline.
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
function C.try_send(ch, v) return op2(ch_try_send(ch, v)) end
function C.try_receive(ch) return op2(ch_try_recv(ch)) end
function C.close(ch) return op2(ch_close(ch)) end
function C.len(ch) return op1(raw.ch_len(ch)) end
function C.cap(ch) return one(raw.ch_cap(ch)) end
function C.is_closed(ch) return op1(raw.ch_is_closed(ch)) end
function C.range(ch, f)
  argcheck(is_callable(f), "channel:range", "expects a function", f)
  check(raw.ch_check_recv(ch, "channel:range"))
  while true do
    local v, ok = op2(ch_recv(ch))
    if not ok then return end
    if f(v) == false then return end
  end
end

local function need_channel(fname, ch)
  argcheck(raw.is_channel(ch), fname, "expects a channel", ch)
end
function goroutine.channel_send(ch, v)
  need_channel("goroutine.channel_send", ch)
  return op2(ch_send(ch, v, "goroutine.channel_send"))
end
function goroutine.channel_receive(ch)
  need_channel("goroutine.channel_receive", ch)
  return op2(ch_recv(ch, "goroutine.channel_receive"))
end
function goroutine.channel_close(ch) need_channel("goroutine.channel_close", ch) return op2(ch_close(ch)) end
function goroutine.channel_len(ch) need_channel("goroutine.channel_len", ch) return op1(raw.ch_len(ch)) end
function goroutine.channel_cap(ch) need_channel("goroutine.channel_cap", ch) return one(raw.ch_cap(ch)) end

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
function goroutine.mutex() return one(raw.mutex()) end
local M = methods.mutex
local mutex_lock = raw.mutex_lock
function M.lock(m) retry_loop(mutex_lock, m) end
function M.unlock(m) op2(raw.mutex_unlock(m)) end
function M.try_lock(m) return (op2(raw.mutex_try_lock(m))) end

function goroutine.rwmutex() return one(raw.rwmutex()) end
local RW = methods.rwmutex
function RW.lock(m) op2(raw.rw_lock(m)) end
function RW.unlock(m) op2(raw.rw_unlock(m)) end
function RW.rlock(m) op2(raw.rw_rlock(m)) end
function RW.runlock(m) op2(raw.rw_runlock(m)) end
function RW.try_lock(m) return (op2(raw.rw_try_lock(m))) end
function RW.try_rlock(m) return (op2(raw.rw_try_rlock(m))) end
local rlocker_mt = { __index = {}, __name = "rlocker" }
function rlocker_mt.__index.lock(l) op2(raw.rw_rlock(l.rw)) end
function rlocker_mt.__index.unlock(l) op2(raw.rw_runlock(l.rw)) end
function rlocker_mt.__tostring(l) return "rlocker(" .. tostring(l.rw) .. ")" end
function RW.rlocker(m)
  check(raw.rw_check(m))
  return setmetatable({ rw = m }, rlocker_mt)
end

function goroutine.semaphore(n) return one(raw.semaphore(n)) end
local S = methods.semaphore
function S.acquire(s) op2(raw.sem_acquire(s)) end
function S.release(s) op2(raw.sem_release(s)) end
function S.try_acquire(s) return (op2(raw.sem_try_acquire(s))) end
function S.available(s) return op1(raw.sem_available(s)) end
function S.capacity(s) return one(raw.sem_capacity(s)) end

function goroutine.wait_group() return one(raw.wait_group()) end
local WG = methods.waitgroup
function WG.add(wg, delta) op2(raw.wg_add(wg, delta, "wait_group:add")) end
function WG.done(wg) op2(raw.wg_add(wg, -1, "wait_group:done")) end
function WG.wait(wg) op2(raw.wg_wait(wg)) end

function goroutine.atomic_int(init) return one(raw.atomic_int(init)) end
local A = methods.atomic
function A.add(a, d) return (op2(raw.atomic_op(a, "add", d))) end
function A.load(a) return (op2(raw.atomic_op(a, "load"))) end
function A.store(a, v) op2(raw.atomic_op(a, "store", v)) end
function A.swap(a, v) return (op2(raw.atomic_op(a, "swap", v))) end
function A.compare_and_swap(a, old, new) return (op2(raw.atomic_op(a, "compare_and_swap", old, new))) end

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
local X = methods.context
function goroutine.context()
  local ctx = one(raw.context())
  return ctx, function() op2(raw.ctx_cancel(ctx)) end
end
function X.with_cancel(ctx)
  local c = one(raw.ctx_child(ctx, "with_cancel"))
  return c, function() op2(raw.ctx_cancel(c)) end
end
function X.with_timeout(ctx, ms)
  local c = one(raw.ctx_child(ctx, "with_timeout", ms))
  return c, function() op2(raw.ctx_cancel(c)) end
end
function X.with_deadline(ctx, ms)
  local c = one(raw.ctx_child(ctx, "with_deadline", ms))
  return c, function() op2(raw.ctx_cancel(c)) end
end
function X.cancel(ctx) op2(raw.ctx_cancel(ctx)) end
function X.is_cancelled(ctx) return (op2(raw.ctx_is_cancelled(ctx))) end
function X.err(ctx) return op1(raw.ctx_err(ctx)) end
function X.deadline(ctx) return check(raw.ctx_deadline(ctx)) end
function X.done(ctx) return one(raw.ctx_done(ctx)) end

---------------------------------------------------------------------------------------------
-- Timers
---------------------------------------------------------------------------------------------
function goroutine.after(ms) return one(raw.after(ms)) end
function goroutine.timer(ms) return one(raw.timer(ms, "timer")) end
function goroutine.ticker(ms) return one(raw.timer(ms, "ticker")) end
function goroutine.after_func(ms, f)
  argcheck(is_callable(f), "goroutine.after_func", "expects a function", f)
  return one(raw.timer(ms, "after_func", f))
end
local T = methods.timer
function T.channel(t) return one(raw.timer_channel(t)) end
function T.stop(t) return (op2(raw.timer_stop(t))) end
function T.reset(t, ms) return (op2(raw.timer_reset(t, ms))) end

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
-- Observability (seed 6.x): profiler, channel inspector, deadlock detector. Reading them is never
-- a scheduling point, so adding them to a scenario does not change its interleavings.
---------------------------------------------------------------------------------------------
function goroutine.profiler() return one(raw.profiler()) end
local P = methods.profiler
function P.start(p) one(raw.prof_do(p, "start")) end
function P.stop(p) one(raw.prof_do(p, "stop")) end
function P.stats(p) return one(raw.prof_do(p, "stats")) end

function goroutine.channel_inspector(ch) return one(raw.channel_inspector(ch)) end
local I = methods.inspector
for _, what in ipairs({ "len", "cap", "total_sent", "total_received", "dropped", "is_closed",
                        "blocked_senders", "blocked_receivers", "stats" }) do
  I[what] = function(i) return one(raw.insp_stats(i, what)) end
end

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
local function log_fn(level)
  return function(msg)
    local t = type(msg)
    if t ~= "string" and t ~= "number" then
      raise("log." .. level .. ": expects a string (got " .. t .. ")")
    end
    raw.log(level, printable(tostring(msg)))
  end
end
log.info, log.warn, log.error, log.debug, log.print = log_fn("info"), log_fn("warn"), log_fn("error"), log_fn("debug"), log_fn("print")

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

sim.seed = raw.seed
sim.is_simulated = raw.is_simulated
do
  local rust_random = math.random
  _G.math.random = function(...)
    local a, b = rust_random(...)
    if a == MISUSE then raise(b) end
    return a
  end
end
sim.random = math.random
function sim.buggify(p) return one(raw.buggify(p)) end
function sim.assert_always(cond, msg)
  if not cond then
    raw.assert_event("always", msg == nil and "assertion" or tostring(msg), false)
    raise("assertion failed: " .. (msg == nil and "sim.assert_always" or tostring(msg)))
  end
end
function sim.assert_sometimes(cond, msg)
  argcheck(msg ~= nil, "sim.assert_sometimes", "needs a message naming the assertion", msg)
  raw.assert_event("sometimes", tostring(msg), cond and true or false)
end

return goroutine, log, sim, run_goroutine, describe_error
