-- sim_features.lua: what the simulation gives a test: seeds, randomness, faults, assertions.
--
-- Shows: sim.seed() and sim.is_simulated(); math.random / sim.random drawn from the seed (the
-- same seed gives the same numbers); os.time / os.clock following the virtual clock;
-- sim.buggify(p) to inject faults (here: a slow server) in some seeds; sim.assert_always for
-- invariants; sim.assert_sometimes for situations the exploration must reach at least once.
--
-- Run:   cargo run --release -- run scenarios/sim_features.lua --seed 7
-- Then:  cargo run --release -- explore scenarios/sim_features.lua --runs 200
--        (it reports any assert_sometimes that no seed made true).
--
-- In the trace: the dice change with --seed; "buggify: slow server" warnings in some seeds,
-- each followed by a timeout at +50 ms and a retry.

assert(sim.is_simulated())
local seed = sim.seed()
assert(math.type(seed) == "integer")
log.info("seed " .. seed)

-- Randomness comes from the seed: rerun with the same --seed and you get the same dice.
local dice = {}
for i = 1, 5 do dice[i] = math.random(1, 6) end
local coin = sim.random()                   -- same as math.random: a float in [0, 1)
assert(coin >= 0 and coin < 1)
log.info("dice " .. table.concat(dice, " ") .. ", coin " .. string.format("%.3f", coin))

-- os.time (seconds) and os.clock follow the virtual clock: 2 s of sleep, no real waiting.
local t0, c0 = os.time(), os.clock()
goroutine.sleep(2000)
assert(os.time() - t0 == 2, "os.time advanced by the virtual 2 s")
assert(math.abs(os.clock() - c0 - 2) < 1e-9)

-- A server that buggify sometimes makes slow. Each reply channel has room for 1 value so a
-- late server can still deliver and exit after the client has given up (no leaked goroutine).
local requests = goroutine.channel()
goroutine.spawn{name = "server", fn = function()
  requests:range(function(req)
    local delay = 10
    if sim.buggify(0.3) then                -- true in ~30% of calls, in simulation only
      log.warn("buggify: slow server for request " .. req.n)
      delay = 100
    end
    goroutine.sleep(delay)
    req.reply:send("ok " .. req.n)
  end)
end}

local retries = 0
for n = 1, 5 do
  local answer
  repeat
    local req = { n = n, reply = goroutine.channel(1) }
    requests:send(req)
    goroutine.select_timeout(50, {
      { channel = req.reply, receive = true, handler = function(v) answer = v end },
    })
    if not answer then retries = retries + 1 log.info("request " .. n .. " timed out, retrying") end
  until answer
  sim.assert_always(answer == "ok " .. n, "each answer matches its request")
end
requests:close()                             -- ends the server's range loop

sim.assert_sometimes(retries > 0, "a request needed a retry")
sim.assert_sometimes(retries == 0, "every request succeeded first time")
log.info("5 requests answered with " .. retries .. " retries at t=" .. goroutine.now())
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
