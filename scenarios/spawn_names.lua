-- spawn_names.lua: starting goroutines, naming them, and background daemons.
--
-- Shows: goroutine.spawn(fn, ...) and its table form {fn=, name=, args=, daemon=}; the id it
-- returns; goroutine.id() and goroutine.name() (get, or set a new name); spawn_many(n, fn);
-- a daemon heartbeat that loops forever and is neither a leak nor keeps the run alive.
--
-- Run:   cargo run --release -- run scenarios/spawn_names.lua --seed 7
--
-- In the trace: names instead of bare ids (g2(heartbeat), g3(greeter), ...), a goroutine that
-- renames itself, heartbeats at t=100 and t=200, and the run passing at t=250 although the
-- heartbeat is still alive.

assert(goroutine.id() == 1 and goroutine.name() == "main")
assert(require("goroutine") == goroutine, "require gives the same module table")

-- A daemon: a background loop that never ends. Without daemon=true it would be reported as
-- a leak when main returns.
goroutine.spawn{name = "heartbeat", daemon = true, fn = function()
  while true do
    goroutine.sleep(100)
    log.info("heartbeat")
  end
end}

local wg = goroutine.wait_group()

-- Table form with arguments: args are passed to fn.
wg:add(1)
local id = goroutine.spawn{name = "greeter", args = { "hello", 2 }, fn = function(word, times)
  assert(goroutine.name() == "greeter")
  for _ = 1, times do log.info(word .. " from goroutine " .. goroutine.id()) end
  wg:done()
end}
assert(math.type(id) == "integer" and id > 1)

-- Plain form: extra arguments are passed to fn. A goroutine may name itself.
wg:add(1)
goroutine.spawn(function(job)
  goroutine.name("job-" .. job)            -- from now on the trace shows this name
  log.info("renamed myself to " .. goroutine.name())
  wg:done()
end, 42)

-- spawn_many: n goroutines calling fn(i) for i = 1..n.
local squares = {}
wg:add(3)
goroutine.spawn_many(3, function(i)
  squares[i] = i * i
  wg:done()
end)

wg:wait()
assert(squares[1] == 1 and squares[2] == 4 and squares[3] == 9)
goroutine.sleep(250)                       -- let the heartbeat beat twice
log.info("main ends; the daemon heartbeat is left running, and that is fine")
