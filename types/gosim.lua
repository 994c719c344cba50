---@meta gosim
-- Editor definitions (LuaLS / EmmyLua) of gosim's Lua modules: `goroutine`, `log`, `sim`, and
-- every object they return. Shipped in types/ and printed by `gosim types` (`gosim types >
-- gosim.d.lua` puts them in any project). docs/lua-api.md is the full reference; each entry here
-- is one line of it. tests/types.rs checks that these declarations and the API at run time name
-- the same functions and methods.

---A duration or an instant of the run's virtual clock, in milliseconds (fractions allowed).
---@alias gosim.ms number

---A goroutine id: main is 1, then 2, 3, ... in creation order.
---@alias gosim.id integer

---@class gosim.spawn_spec
---@field fn function the goroutine's body
---@field name? string its name in traces and reports
---@field daemon? boolean a daemon never counts as leaked and does not keep the run alive
---@field args? any[] the arguments of `fn`

---@class gosim.select_case
---@field channel gosim.channel|false the channel (`false`: a case that is never ready)
---@field receive? boolean a receive case
---@field send? any a send case: the value to send (`goroutine.NIL` sends nil)
---@field default? boolean the case taken when no other is ready
---@field handler? fun(v?: any, ok?: boolean): ... called with what the case received

---@class gosim.pool_stats
---@field name string
---@field workers integer
---@field active integer tasks running now
---@field completed integer
---@field failed integer
---@field queued integer

---@class gosim.stage
---@field fn fun(v: any): any the stage's function
---@field workers? integer goroutines running it (default 1)
---@field name? string the stage's name (metrics, traces)
---@field max_retries? integer pipeline_with_retry: retries of an item
---@field retry_delay? gosim.ms pipeline_with_retry: the delay between tries
---@field backoff? table pipeline_with_retry: a retry policy's options
---@field rate_limit? number pipeline_with_rate_limit: items per second

---@class gosim.await_result
---@field success boolean
---@field values? any[] the function's results, on success
---@field error? string the error, on failure

---The `goroutine` module: goroutines, channels, select, locks, timers, contexts and patterns.
---@class gosim.goroutine_module
---@field NIL table a sentinel for `nil` in a select send case
goroutine = {}

-- 2. Goroutines and time --------------------------------------------------------------------

---Starts `fn(...)` (or a spec `{fn=, name=, daemon=, args=}`) as a new goroutine; returns its id.
---@param fn function|gosim.spawn_spec
---@param ... any
---@return gosim.id
function goroutine.spawn(fn, ...) end

---Starts `n` goroutines, the i-th calling `fn(i)`.
---@param n integer
---@param fn fun(i: integer)
function goroutine.spawn_many(n, fn) end

---Blocks this goroutine for `ms` of virtual time (0: just a scheduling point).
---@param ms gosim.ms
function goroutine.sleep(ms) end

---An explicit scheduling point: other goroutines may run (the seed decides).
function goroutine.yield() end

---The run's virtual clock: milliseconds since the start.
---@return gosim.ms
function goroutine.now() end

---The current goroutine's id (main is 1).
---@return gosim.id
function goroutine.id() end

---Gets the current goroutine's name, or sets it to `new_name` and returns it.
---@param new_name? string
---@return string?
function goroutine.name(new_name) end

---Runs `fn()` in a new goroutine and waits at most `ms`: `true, ...` or `false, err`.
---@param ms gosim.ms
---@param fn function
---@return boolean ok
---@return any ...
function goroutine.timeout(ms, fn) end

---Starts `fn(...)` in a new goroutine; returns a handle for `goroutine.await`.
---@param fn function
---@param ... any
---@return gosim.async
function goroutine.async(fn, ...) end

---Waits for an async function: `true, ...results` or `false, err`.
---@param h gosim.async
---@return boolean ok
---@return any ...
function goroutine.await(h) end

---Awaits every handle in order: `{success=, values=}` or `{success=false, error=}` each.
---@param handles gosim.async[]
---@return gosim.await_result[]
function goroutine.await_all(handles) end

-- 3. Channels ----------------------------------------------------------------------------------

---A new channel with `cap` buffered values (0: rendezvous) and a direction.
---@param cap? integer
---@param dir? "bidirectional"|"send"|"receive"
---@return gosim.channel
function goroutine.channel(cap, dir) end

---`ch:send(v)` as a function.
---@param ch gosim.channel
---@param v any
---@return boolean ok
---@return string? err
function goroutine.channel_send(ch, v) end

---`ch:receive()` as a function.
---@param ch gosim.channel
---@return any v
---@return boolean ok
function goroutine.channel_receive(ch) end

---`ch:close()` as a function.
---@param ch gosim.channel
---@return boolean ok
---@return string? err
function goroutine.channel_close(ch) end

---`ch:len()` as a function.
---@param ch gosim.channel
---@return integer
function goroutine.channel_len(ch) end

---`ch:cap()` as a function.
---@param ch gosim.channel
---@return integer
function goroutine.channel_cap(ch) end

-- 4. Select ------------------------------------------------------------------------------------

---Performs exactly one ready case (blocking until one is, unless there is a default case).
---@param cases gosim.select_case[]
---@return any ...
function goroutine.select(cases) end

---`select` with a time limit: `true, nil` on timeout, `false, i` (0-based case) or `false, err`.
---@param ms gosim.ms
---@param cases gosim.select_case[]
---@return boolean timed_out
---@return integer|string|nil idx_or_err
function goroutine.select_timeout(ms, cases) end

-- 5. Synchronisation ---------------------------------------------------------------------------

---A mutex (FIFO waiters, no hand-over).
---@return gosim.mutex
function goroutine.mutex() end

---A readers-writer lock.
---@return gosim.rwmutex
function goroutine.rwmutex() end

---A counting semaphore with `n` permits.
---@param n integer
---@return gosim.semaphore
function goroutine.semaphore(n) end

---A wait group (counter starts at 0).
---@return gosim.waitgroup
function goroutine.wait_group() end

---A once: the first `call` runs its function, later ones wait for it or return.
---@return gosim.once
function goroutine.once() end

---A condition variable over `locker` (default: a new mutex).
---@param locker? gosim.mutex|gosim.rwmutex|gosim.rlocker
---@return gosim.cond
function goroutine.cond(locker) end

---An atomic integer (every operation is a scheduling point).
---@param init? integer
---@return gosim.atomic
function goroutine.atomic_int(init) end

-- 6. Context ------------------------------------------------------------------------------------

---A new root context and its cancel function.
---@return gosim.context ctx
---@return fun() cancel
function goroutine.context() end

-- 7. Timers -------------------------------------------------------------------------------------

---A receive-only channel that receives the time once, `ms` from now.
---@param ms gosim.ms
---@return gosim.channel
function goroutine.after(ms) end

---A one-shot timer delivering the time on `t:channel()` after `ms`.
---@param ms gosim.ms
---@return gosim.timer
function goroutine.timer(ms) end

---A ticker delivering the time on `t:channel()` every `ms`.
---@param ms gosim.ms
---@return gosim.timer
function goroutine.ticker(ms) end

---Spawns `fn()` after `ms`; the timer can stop or reset it.
---@param ms gosim.ms
---@param fn function
---@return gosim.timer
function goroutine.after_func(ms, fn) end

-- 8. Named worker pools -----------------------------------------------------------------------

---Creates (or replaces) the pool `name` with `workers` goroutines.
---@param name string
---@param opts? {workers?: integer}
---@return boolean
function goroutine.pool_create(name, opts) end

---Queues `fn(...)` on the pool: its task id, or `nil, err`.
---@param name string
---@param fn function
---@param ... any
---@return integer? task_id
---@return string? err
function goroutine.pool_submit(name, fn, ...) end

---Closes the pool to new tasks and waits until its queue is drained and its workers exited.
---@param name string
---@return boolean ok
---@return string? err
function goroutine.pool_wait(name) end

---Closes the pool at once (queued tasks dropped); whether it existed.
---@param name string
---@return boolean existed
function goroutine.pool_close(name) end

---The pool's counters, or nil if there is no such pool.
---@param name string
---@return gosim.pool_stats?
function goroutine.pool_stats(name) end

-- 9. Pipeline, fan-out, fan-in ----------------------------------------------------------------

---Stages of worker goroutines from `input`; returns the last stage's output channel.
---@param input gosim.channel
---@param stages gosim.stage[]
---@return gosim.channel
function goroutine.pipeline(input, stages) end

---Copies every value of `input` to all `n` new output channels.
---@param input gosim.channel
---@param n integer
---@return gosim.channel[]
function goroutine.fan_out(input, n) end

---One channel receiving the values of all `inputs`; closes when they all have.
---@param inputs gosim.channel[]
---@return gosim.channel
function goroutine.fan_in(inputs) end

-- 12. Observability ---------------------------------------------------------------------------

---Counts goroutines spawned while started (never a scheduling point).
---@return gosim.profiler
function goroutine.profiler() end

---Read-only counters of a channel (sent, received, dropped, blocked).
---@param ch gosim.channel
---@return gosim.inspector
function goroutine.channel_inspector(ch) end

---A detector of goroutines stuck for at least `timeout` ms.
---@param opts? {check_interval?: gosim.ms, timeout?: gosim.ms}
---@return gosim.deadlock_detector
function goroutine.deadlock_detector(opts) end

-- 13. Synchronisation patterns ------------------------------------------------------------------

---A weighted semaphore of `n` units, strict FIFO.
---@param n integer
---@return gosim.weighted_semaphore
function goroutine.weighted_semaphore(n) end

---A count-down latch starting at `n`.
---@param n integer
---@return gosim.latch
function goroutine.latch(n) end

---A cyclic barrier of `n` parties.
---@param n integer
---@return gosim.barrier
function goroutine.barrier(n) end

---A readers-writer lock with upgradable reads.
---@return gosim.rwmutex_upgradeable
function goroutine.rwmutex_upgradeable() end

-- 14. Channel patterns ----------------------------------------------------------------------------

---One-to-many broadcast with a buffer per subscriber.
---@param opts? integer|{capacity?: integer, overflow?: "block"|"drop_oldest"}
---@return gosim.broadcaster
function goroutine.broadcaster(opts) end

---One receive-only channel with the values of all inputs (each input's order kept).
---@param inputs (gosim.channel|gosim.overflow_channel)[]
---@return gosim.channel
function goroutine.merge(inputs) end

---A buffered channel with a policy for a full buffer.
---@param cap integer
---@param strategy "block"|"drop_oldest"|"drop_newest"|"error"
---@return gosim.overflow_channel
function goroutine.channel_with_overflow(cap, strategy) end

---A channel that delivers the highest priority first (FIFO among equals).
---@param cap? integer nil: unbounded
---@return gosim.priority_channel
function goroutine.priority_channel(cap) end

---A channel of `input`'s values once `ms` passed without a new one.
---@param input gosim.channel
---@param ms gosim.ms
---@param opts? {leading?: boolean, trailing?: boolean, max_wait?: gosim.ms, capacity?: integer}
---@return gosim.channel
function goroutine.debounce_channel(input, ms, opts) end

---A channel of `input`'s first value per window of `ms`.
---@param input gosim.channel
---@param ms gosim.ms
---@param opts? {trailing?: boolean, capacity?: integer}
---@return gosim.channel
function goroutine.throttle_channel(input, ms, opts) end

-- 15. Messaging patterns ----------------------------------------------------------------------

---Topics, each a broadcaster.
---@param opts? integer|{capacity?: integer, overflow?: "block"|"drop_oldest"}
---@return gosim.pubsub
function goroutine.pubsub(opts) end

---Requests answered by a serving goroutine, each with exactly one outcome.
---@return gosim.request_reply
function goroutine.request_reply() end

---A job queue with workers, retries with backoff and a dead-letter queue.
---@param opts? {workers?: integer, max_retries?: integer, dlq_enabled?: boolean, retry_delay?: gosim.ms, max_delay?: gosim.ms}
---@return gosim.work_queue
function goroutine.work_queue(opts) end

-- 16. Resilience patterns -----------------------------------------------------------------------

---A token bucket: `rate` tokens per `per` ms, up to `burst`.
---@param opts {rate: number, per?: gosim.ms, burst?: integer}
---@return gosim.rate_limiter
function goroutine.rate_limiter(opts) end

---A circuit breaker (closed, open, half-open).
---@param opts? {threshold?: integer, timeout?: gosim.ms, half_open_max?: integer, on_state_change?: fun(from: string, to: string)}
---@return gosim.circuit_breaker
function goroutine.circuit_breaker(opts) end

---Calls `fn` until it succeeds, with exponential backoff: its results, or `nil, last_err`.
---@param opts table|gosim.retry_policy {max_attempts=, initial_delay=, max_delay=, multiplier=, jitter=}
---@param fn function
---@return any ...
function goroutine.retry(opts, fn) end

---Wraps `err` so that `goroutine.retry` stops at once.
---@param err any
---@return table
function goroutine.permanent(err) end

---A backoff policy (the delays `goroutine.retry` would use).
---@param opts table {max_attempts=, initial_delay=, max_delay=, multiplier=, jitter=}
---@return gosim.retry_policy
function goroutine.retry_policy(opts) end

---Partitions of bounded concurrency with a bounded wait.
---@param opts {partitions: table<string, {max_concurrent: integer, max_wait?: gosim.ms}>}
---@return gosim.bulkhead
function goroutine.bulkhead(opts) end

-- 17. Pipeline patterns ---------------------------------------------------------------------------

---A pipeline whose failed items go to an errors channel.
---@param input gosim.channel
---@param stages gosim.stage[]
---@return gosim.channel output
---@return gosim.channel errors
function goroutine.pipeline_with_errors(input, stages) end

---A pipeline whose stages retry failed items.
---@param input gosim.channel
---@param stages gosim.stage[]
---@return gosim.channel output
---@return gosim.channel errors
function goroutine.pipeline_with_retry(input, stages) end

---A pipeline whose stages are rate limited.
---@param input gosim.channel
---@param stages gosim.stage[]
---@return gosim.channel output
---@return gosim.channel errors
function goroutine.pipeline_with_rate_limit(input, stages) end

---A pipeline that measures each stage.
---@param input gosim.channel
---@param stages gosim.stage[]
---@return gosim.channel output
---@return gosim.pipeline_metrics metrics
function goroutine.pipeline_with_metrics(input, stages) end

---A pipeline whose stages can be added and removed while it runs.
---@param input gosim.channel
---@return gosim.dynamic_pipeline
function goroutine.dynamic_pipeline(input) end

-- 18. Work patterns -----------------------------------------------------------------------------

---Batches items by size or by time and hands each batch to `fn`.
---@param opts {batch_size?: integer, flush_interval?: gosim.ms, fn: fun(batch: any[]), max_queue?: integer}
---@return gosim.batch_processor
function goroutine.batch_processor(opts) end

---A cache whose concurrent misses of one key share one `loader` call.
---@param opts {ttl?: gosim.ms, loader: fun(key: any): any, string?}
---@return gosim.coalescing_cache
function goroutine.coalescing_cache(opts) end

---Runs functions with at most `max_parallel` at once (errgroup with a limit).
---@param opts? {max_parallel?: integer, queue_size?: integer}
---@return gosim.bounded_parallel
function goroutine.bounded_parallel(opts) end

---Workers taking the highest-priority task first.
---@param opts {workers?: integer, fn: fun(task: any)}
---@return gosim.priority_worker_pool
function goroutine.priority_worker_pool(opts) end

---A worker pool that grows and shrinks with its load.
---@param opts? {min_workers?: integer, max_workers?: integer, scale_up_threshold?: number, scale_down_threshold?: number, check_interval?: gosim.ms}
---@return gosim.adaptive_pool
function goroutine.adaptive_pool(opts) end

-- 10. log ---------------------------------------------------------------------------------------

---The `log` module: trace events (printed at once in production mode).
log = {}

---Logs `msg` at info level.
---@param msg string|number
function log.info(msg) end

---Logs `msg` at warn level.
---@param msg string|number
function log.warn(msg) end

---Logs `msg` at error level.
---@param msg string|number
function log.error(msg) end

---Logs `msg` at debug level.
---@param msg string|number
function log.debug(msg) end

---Logs `msg` as a plain print.
---@param msg string|number
function log.print(msg) end

---Logs a table's contents, sorted, with an optional title.
---@param t any
---@param title? string
function log.table(t, title) end

-- 11. sim ---------------------------------------------------------------------------------------

---The `sim` module: the run's seed, seeded randomness, fault injection, assertions.
sim = {}

---The run's seed.
---@return integer
function sim.seed() end

---Whether the run is simulated (false in production mode).
---@return boolean
function sim.is_simulated() end

---Seeded random numbers, as `math.random`.
---@param m? integer
---@param n? integer
---@return number
function sim.random(m, n) end

---True with probability `p` (default 0.25) in a simulation; never in production.
---@param p? number
---@return boolean
function sim.buggify(p) end

---Fails the run if `cond` is false.
---@param cond any
---@param msg? string
function sim.assert_always(cond, msg) end

---Records whether `cond` was ever true; `explore` lists names never true.
---@param cond any
---@param msg string
function sim.assert_sometimes(cond, msg) end

-- Objects ------------------------------------------------------------------------------------------

---A handle from `goroutine.async`.
---@class gosim.async
---@field id gosim.id the goroutine's id

---A channel (`goroutine.channel`; also `ctx:done()`, timers' channels, pattern outputs).
---@class gosim.channel
local channel = {}

---Sends `v`, blocking until taken or buffered: `true`, or `false, "send on closed channel"`.
---@param v any
---@return boolean ok
---@return string? err
function channel:send(v) end

---Receives a value: `v, true`, or `nil, false` once closed and drained.
---@return any v
---@return boolean ok
function channel:receive() end

---Sends without blocking: `true`, `false` (full) or `false, err` (closed).
---@param v any
---@return boolean ok
---@return string? err
function channel:try_send(v) end

---Receives without blocking: `v, true` or `nil, false`.
---@return any v
---@return boolean ok
function channel:try_receive() end

---Closes the channel: `true`, or `false, "channel already closed"`.
---@return boolean ok
---@return string? err
function channel:close() end

---Values buffered now.
---@return integer
function channel:len() end

---The buffer's capacity.
---@return integer
function channel:cap() end

---Whether the channel is closed.
---@return boolean
function channel:is_closed() end

---Calls `fn(v)` for each value until closed and drained (`false` from `fn` stops).
---@param fn fun(v: any): boolean?
function channel:range(fn) end

---A mutex.
---@class gosim.mutex
local mutex = {}

---Locks, blocking while locked.
function mutex:lock() end

---Unlocks (misuse if not locked).
function mutex:unlock() end

---Locks if free; whether it did.
---@return boolean
function mutex:try_lock() end

---A readers-writer lock.
---@class gosim.rwmutex
local rwmutex = {}

---Takes the write lock.
function rwmutex:lock() end

---Releases the write lock.
function rwmutex:unlock() end

---Takes a read lock.
function rwmutex:rlock() end

---Releases a read lock.
function rwmutex:runlock() end

---Takes the write lock if free.
---@return boolean
function rwmutex:try_lock() end

---Takes a read lock if no writer holds or waits.
---@return boolean
function rwmutex:try_rlock() end

---A locker whose lock/unlock are rlock/runlock.
---@return gosim.rlocker
function rwmutex:rlocker() end

---The read side of an rwmutex as a locker.
---@class gosim.rlocker
local rlocker = {}

---Takes a read lock.
function rlocker:lock() end

---Releases a read lock.
function rlocker:unlock() end

---A counting semaphore.
---@class gosim.semaphore
local semaphore = {}

---Takes a permit, blocking while none is free.
function semaphore:acquire() end

---Gives a permit back.
function semaphore:release() end

---Takes a permit if one is free.
---@return boolean
function semaphore:try_acquire() end

---Free permits.
---@return integer
function semaphore:available() end

---Total permits.
---@return integer
function semaphore:capacity() end

---A wait group.
---@class gosim.waitgroup
local waitgroup = {}

---Adds `delta` (default 1) to the counter.
---@param delta? integer
function waitgroup:add(delta) end

---Subtracts 1 from the counter.
function waitgroup:done() end

---Blocks until the counter is 0.
function waitgroup:wait() end

---A once.
---@class gosim.once
local once = {}

---Runs `fn()` if no call has yet; otherwise waits for the first to finish.
---@param fn function
function once:call(fn) end

---A condition variable.
---@class gosim.cond
local cond = {}

---Unlocks the locker, waits for a signal, locks it again.
function cond:wait() end

---Wakes the longest-waiting goroutine.
function cond:signal() end

---Wakes every waiting goroutine.
function cond:broadcast() end

---The locker the condition uses.
---@return gosim.mutex|gosim.rwmutex|gosim.rlocker
function cond:get_mutex() end

---An atomic integer.
---@class gosim.atomic
local atomic = {}

---Adds `delta`; returns the new value.
---@param delta integer
---@return integer
function atomic:add(delta) end

---The value.
---@return integer
function atomic:load() end

---Sets the value.
---@param v integer
function atomic:store(v) end

---Sets the value; returns the old one.
---@param v integer
---@return integer
function atomic:swap(v) end

---Sets `new` if the value is `old`; whether it did.
---@param old integer
---@param new integer
---@return boolean
function atomic:compare_and_swap(old, new) end

---A context: cancellation and deadlines for a tree of work.
---@class gosim.context
local context = {}

---A child that can be cancelled on its own.
---@return gosim.context child
---@return fun() cancel
function context:with_cancel() end

---A child whose deadline is `ms` from now.
---@param ms gosim.ms
---@return gosim.context child
---@return fun() cancel
function context:with_timeout(ms) end

---A child whose deadline is the instant `at_ms`.
---@param at_ms gosim.ms
---@return gosim.context child
---@return fun() cancel
function context:with_deadline(at_ms) end

---Cancels it and its descendants.
function context:cancel() end

---Whether it is cancelled or expired.
---@return boolean
function context:is_cancelled() end

---nil, "context canceled" or "context deadline exceeded".
---@return string?
function context:err() end

---The absolute deadline: `at_ms, true`, or `nil, false`.
---@return gosim.ms? at_ms
---@return boolean ok
function context:deadline() end

---A receive-only channel closed when the context ends.
---@return gosim.channel
function context:done() end

---A timer, ticker or after_func.
---@class gosim.timer
local timer = {}

---The channel the time is delivered on (not for after_func).
---@return gosim.channel
function timer:channel() end

---Stops it; whether it was pending.
---@return boolean
function timer:stop() end

---Stops it and arms it again `ms` from now; whether it was pending.
---@param ms gosim.ms
---@return boolean
function timer:reset(ms) end

---Counts goroutines spawned while started.
---@class gosim.profiler
local profiler = {}

---(Re)starts counting from zero.
function profiler:start() end

---Stops counting new goroutines.
function profiler:stop() end

---{active, max_active, total_created, completed, failed, avg_lifetime}.
---@return table
function profiler:stats() end

---Counters of one channel.
---@class gosim.inspector
local inspector = {}

---Values buffered.
---@return integer
function inspector:len() end

---The channel's capacity.
---@return integer
function inspector:cap() end

---Values that entered the channel.
---@return integer
function inspector:total_sent() end

---Values that left it to a receiver.
---@return integer
function inspector:total_received() end

---Buffered values discarded without a receiver.
---@return integer
function inspector:dropped() end

---Whether the channel is closed.
---@return boolean
function inspector:is_closed() end

---Goroutines blocked sending on it.
---@return integer
function inspector:blocked_senders() end

---Goroutines blocked receiving from it.
---@return integer
function inspector:blocked_receivers() end

---All the counters in one table.
---@return table
function inspector:stats() end

---A detector of stuck goroutines.
---@class gosim.deadlock_detector
local deadlock_detector = {}

---Sets the function called with the info table of each new stuck situation.
---@param fn fun(info: table)
function deadlock_detector:on_deadlock(fn) end

---Starts a daemon that checks every check_interval ms.
function deadlock_detector:start() end

---Stops the periodic check.
function deadlock_detector:stop() end

---Checks now: the info table of a new stuck situation, or nil.
---@return table?
function deadlock_detector:check() end

---A weighted semaphore.
---@class gosim.weighted_semaphore
local weighted_semaphore = {}

---Takes `w` units (default 1): `true`, or `false, "timeout"`.
---@param w? integer
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function weighted_semaphore:acquire(w, timeout_ms) end

---Gives `w` units back (default 1).
---@param w? integer
function weighted_semaphore:release(w) end

---Takes `w` units if free and nobody waits.
---@param w? integer
---@return boolean
function weighted_semaphore:try_acquire(w) end

---Units not held.
---@return integer
function weighted_semaphore:available() end

---Total units.
---@return integer
function weighted_semaphore:capacity() end

---A count-down latch.
---@class gosim.latch
local latch = {}

---Lowers the count by one (nothing at 0).
function latch:count_down() end

---Waits until the count is 0: `true`, or `false` on timeout.
---@param timeout_ms? gosim.ms
---@return boolean
function latch:wait(timeout_ms) end

---The count.
---@return integer
function latch:count() end

---A cyclic barrier.
---@class gosim.barrier
local barrier = {}

---Waits for the generation: `true` (leader), `false`, or `false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return boolean leader
---@return string? err
function barrier:wait(timeout_ms) end

---Parties per generation.
---@return integer
function barrier:parties() end

---Parties waiting now.
---@return integer
function barrier:waiting() end

---Releases so far.
---@return integer
function barrier:generation() end

---A readers-writer lock with upgradable reads.
---@class gosim.rwmutex_upgradeable
local rwmutex_upgradeable = {}

---Takes a read lock: `true`, or `false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function rwmutex_upgradeable:rlock(timeout_ms) end

---Releases a read lock.
function rwmutex_upgradeable:runlock() end

---Takes the write lock: `true`, or `false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function rwmutex_upgradeable:lock(timeout_ms) end

---Releases the write lock.
function rwmutex_upgradeable:unlock() end

---From a held read lock, becomes the writer if alone.
---@return boolean
function rwmutex_upgradeable:try_upgrade() end

---Takes the upgradable read lock (one holder at a time).
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function rwmutex_upgradeable:upgradable_rlock(timeout_ms) end

---Upgrades the upgradable read lock to the write lock.
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function rwmutex_upgradeable:upgrade(timeout_ms) end

---Releases the upgradable read lock without upgrading.
function rwmutex_upgradeable:upgradable_runlock() end

---A one-to-many broadcaster.
---@class gosim.broadcaster
local broadcaster = {}

---A new subscriber.
---@return gosim.subscriber
function broadcaster:subscribe() end

---Sends `v` to every subscriber: how many, or `0, "timeout"` / `0, "closed"`.
---@param v any
---@param timeout_ms? gosim.ms
---@return integer n
---@return string? err
function broadcaster:broadcast(v, timeout_ms) end

---Closes it: `true`, or `false, "broadcaster already closed"`.
---@return boolean ok
---@return string? err
function broadcaster:close() end

---Subscribers now.
---@return integer
function broadcaster:subscribers() end

---Each subscriber's buffer size.
---@return integer
function broadcaster:capacity() end

---Whether it is closed.
---@return boolean
function broadcaster:is_closed() end

---A subscriber of a broadcaster or a pubsub topic.
---@class gosim.subscriber
local subscriber = {}

---Receives: `v, true`, `nil, false`, or `nil, false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return any v
---@return boolean ok
---@return string? err
function subscriber:receive(timeout_ms) end

---Calls `fn(v)` for each value until unsubscribed or closed and drained.
---@param fn fun(v: any): boolean?
function subscriber:range(fn) end

---Values lost to lag.
---@return integer
function subscriber:missed() end

---Values buffered for it.
---@return integer
function subscriber:len() end

---Unsubscribes; false if already.
---@return boolean
function subscriber:unsubscribe() end

---Whether it is still subscribed.
---@return boolean
function subscriber:is_subscribed() end

---A channel with an overflow strategy.
---@class gosim.overflow_channel
local overflow_channel = {}

---Sends by the strategy: `true`, `true, "dropped"`, `false, "timeout"` or `false, err`.
---@param v any
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? msg
function overflow_channel:send(v, timeout_ms) end

---Receives: `v, true`, `nil, false`, or `nil, false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return any v
---@return boolean ok
---@return string? err
function overflow_channel:receive(timeout_ms) end

---Receives without blocking.
---@return any v
---@return boolean ok
function overflow_channel:try_receive() end

---Calls `fn(v)` for each value until closed and drained.
---@param fn fun(v: any): boolean?
function overflow_channel:range(fn) end

---Closes it.
---@return boolean ok
---@return string? err
function overflow_channel:close() end

---Values buffered.
---@return integer
function overflow_channel:len() end

---The capacity.
---@return integer
function overflow_channel:cap() end

---Whether it is closed.
---@return boolean
function overflow_channel:is_closed() end

---The overflow strategy.
---@return string
function overflow_channel:strategy() end

---A priority channel.
---@class gosim.priority_channel
local priority_channel = {}

---Sends `v` with priority `prio` (default 0).
---@param v any
---@param prio? integer
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function priority_channel:send(v, prio, timeout_ms) end

---Receives the highest priority: `v, true`, `nil, false`, or `nil, false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return any v
---@return boolean ok
---@return string? err
function priority_channel:receive(timeout_ms) end

---Calls `fn(v)` for each value until closed and drained.
---@param fn fun(v: any): boolean?
function priority_channel:range(fn) end

---Closes it.
---@return boolean ok
---@return string? err
function priority_channel:close() end

---Values buffered.
---@return integer
function priority_channel:len() end

---The capacity (nil: unbounded).
---@return integer?
function priority_channel:cap() end

---Whether it is closed.
---@return boolean
function priority_channel:is_closed() end

---Topics, each a broadcaster.
---@class gosim.pubsub
local pubsub = {}

---A subscriber of `topic`.
---@param topic string
---@return gosim.subscriber
function pubsub:subscribe(topic) end

---Publishes `v` on `topic`: subscribers reached, or `0, err`.
---@param topic string
---@param v any
---@param timeout_ms? gosim.ms
---@return integer n
---@return string? err
function pubsub:publish(topic, v, timeout_ms) end

---Unsubscribes `sub`.
---@param sub gosim.subscriber
---@return boolean
function pubsub:unsubscribe(sub) end

---Subscribers of `topic`.
---@param topic string
---@return integer
function pubsub:subscribers(topic) end

---Closes every topic.
---@return boolean ok
---@return string? err
function pubsub:close() end

---Whether it is closed.
---@return boolean
function pubsub:is_closed() end

---Request-reply over a serving goroutine.
---@class gosim.request_reply
local request_reply = {}

---Answers each request with `fn(data)` until closed.
---@param fn fun(data: any): any, string?
function request_reply:serve(fn) end

---Sends a request and waits for its one outcome: `response` or `nil, err`.
---@param data any
---@param timeout_ms? gosim.ms
---@return any response
---@return string? err
function request_reply:request(data, timeout_ms) end

---Closes it (pending requests get `nil, "closed"`).
function request_reply:close() end

---Requests waiting for their outcome.
---@return integer
function request_reply:pending() end

---A job queue with retries and a dead-letter queue.
---@class gosim.work_queue
local work_queue = {}

---Starts the workers calling `fn(item)`.
---@param fn fun(item: any): any, string?
function work_queue:process(fn) end

---Queues `item`: `true`, or `false, "closed"`.
---@param item any
---@return boolean ok
---@return string? err
function work_queue:enqueue(item) end

---The receive-only channel of `{item=, error=, attempts=}` of jobs that gave up.
---@return gosim.channel
function work_queue:dead_letter_queue() end

---Stops intake.
function work_queue:close() end

---Waits until every job enqueued so far has ended: `true`, or `false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function work_queue:wait(timeout_ms) end

---{processed, failed, retried, dead_lettered, dropped}.
---@return table
function work_queue:stats() end

---Jobs not ended yet.
---@return integer
function work_queue:len() end

---A token-bucket rate limiter.
---@class gosim.rate_limiter
local rate_limiter = {}

---Takes `n` tokens (default 1) now if there are; whether it did.
---@param n? integer
---@return boolean
function rate_limiter:allow(n) end

---Waits for `n` tokens: `true`, or `false, err` at once.
---@param n? integer
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function rate_limiter:wait(n, timeout_ms) end

---Takes `n` tokens now, into debt if need be.
---@param n? integer
---@return gosim.reservation
function rate_limiter:reserve(n) end

---Tokens now (negative while owed).
---@return number
function rate_limiter:tokens() end

---The bucket's size.
---@return integer
function rate_limiter:burst() end

---A rate limiter's reservation.
---@class gosim.reservation
local reservation = {}

---Whether the tokens can ever be had.
---@return boolean
function reservation:ok() end

---The wait from now until they may be used (ms).
---@return gosim.ms
function reservation:delay() end

---Gives back the tokens later reservations do not count on.
function reservation:cancel() end

---A circuit breaker.
---@class gosim.circuit_breaker
local circuit_breaker = {}

---Runs `fn(...)` if admitted: `true, results...` or `false, err`.
---@param fn function
---@param ... any
---@return boolean ok
---@return any ...
function circuit_breaker:call(fn, ...) end

---"closed", "open" or "half-open".
---@return string
function circuit_breaker:state() end

---Transitions so far.
---@return integer
function circuit_breaker:generation() end

---The first step of `call`: a permit, or `nil, err`, and the transitions made.
---@return gosim.permit? permit
---@return string? err
---@return table? transitions
function circuit_breaker:acquire() end

---A circuit breaker's admission of one call.
---@class gosim.permit
local permit = {}

---Records the call's outcome; returns the transitions made.
---@param ok boolean
---@return table
function permit:record(ok) end

---A backoff policy.
---@class gosim.retry_policy
local retry_policy = {}

---The delay after attempt `attempt` (nil: stop).
---@param attempt integer
---@return gosim.ms?
function retry_policy:next_delay(attempt) end

---The cap of the k-th delay.
---@param k integer
---@return gosim.ms
function retry_policy:delay_cap(k) end

---Attempts at most.
---@return integer
function retry_policy:max_attempts() end

---A bulkhead of partitions.
---@class gosim.bulkhead
local bulkhead = {}

---Runs `fn(...)` in partition `name`: `true, results...` or `false, err`.
---@param name string
---@param fn function
---@param ... any
---@return boolean ok
---@return any ...
function bulkhead:execute(name, fn, ...) end

---Calls running in the partition.
---@param name string
---@return integer
function bulkhead:in_flight(name) end

---Calls waiting to enter the partition.
---@param name string
---@return integer
function bulkhead:waiting(name) end

---Enters the partition: `true`, or `false, err`.
---@param name string
---@return boolean ok
---@return string? err
function bulkhead:enter(name) end

---Leaves the partition.
---@param name string
function bulkhead:leave(name) end

---A metrics pipeline's counters.
---@class gosim.pipeline_metrics
local pipeline_metrics = {}

---Per stage name: {processed, errors, avg_time, ...}.
---@return table
function pipeline_metrics:get() end

---A pipeline whose stages change while it runs.
---@class gosim.dynamic_pipeline
local dynamic_pipeline = {}

---Appends a stage.
---@param stage gosim.stage
function dynamic_pipeline:add_stage(stage) end

---Removes the stage `name`; false if none.
---@param name string
---@return boolean
function dynamic_pipeline:remove_stage(name) end

---The pipeline's output channel.
---@return gosim.channel
function dynamic_pipeline:output() end

---The stages' names, in order.
---@return string[]
function dynamic_pipeline:stages() end

---A batch processor.
---@class gosim.batch_processor
local batch_processor = {}

---Adds an item: `true`, or `false, "closed"` / `false, "timeout"`.
---@param item any
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function batch_processor:add(item, timeout_ms) end

---Hands the pending items over as a batch now.
function batch_processor:flush() end

---Flushes and stops: `true`, or `false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function batch_processor:close(timeout_ms) end

---{added, batches, failed, pending}.
---@return table
function batch_processor:stats() end

---A coalescing cache.
---@class gosim.coalescing_cache
local coalescing_cache = {}

---The value of `key` (loading it once for all callers): value, or `nil, err`.
---@param key any
---@param timeout_ms? gosim.ms
---@return any value
---@return string? err
function coalescing_cache:get(key, timeout_ms) end

---Drops `key`'s entry.
---@param key any
function coalescing_cache:forget(key) end

---{hits, loads, joins, errors, entries}.
---@return table
function coalescing_cache:stats() end

---A group of functions with bounded parallelism.
---@class gosim.bounded_parallel
local bounded_parallel = {}

---Starts or queues `fn()`: `true`, or `false, "timeout"`.
---@param fn function
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function bounded_parallel:submit(fn, timeout_ms) end

---Waits for every function: the list of error messages, or `nil, "timeout"`.
---@param timeout_ms? gosim.ms
---@return string[]? errors
---@return string? err
function bounded_parallel:wait_all(timeout_ms) end

---{active, queued, completed, failed}.
---@return table
function bounded_parallel:stats() end

---A priority worker pool.
---@class gosim.priority_worker_pool
local priority_worker_pool = {}

---Queues `task` with priority `prio` (default 0): `true`, or `false, "closed"`.
---@param task any
---@param prio? integer
---@return boolean ok
---@return string? err
function priority_worker_pool:submit(task, prio) end

---Waits until no task is queued or running: `true`, or `false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function priority_worker_pool:wait(timeout_ms) end

---Refuses new tasks; queued ones still run.
function priority_worker_pool:close() end

---{workers, active, queued, completed, failed}.
---@return table
function priority_worker_pool:stats() end

---An adaptive worker pool.
---@class gosim.adaptive_pool
local adaptive_pool = {}

---Sets `fn(task)` and starts the minimum of workers.
---@param fn fun(task: any)
function adaptive_pool:process(fn) end

---Queues `task`: `true`, or `false, "closed"`.
---@param task any
---@return boolean ok
---@return string? err
function adaptive_pool:submit(task) end

---Waits until no task is queued or running: `true`, or `false, "timeout"`.
---@param timeout_ms? gosim.ms
---@return boolean ok
---@return string? err
function adaptive_pool:wait(timeout_ms) end

---Refuses new tasks; queued ones still run.
function adaptive_pool:close() end

---{workers, busy, queued, completed, failed}.
---@return table
function adaptive_pool:stats() end
