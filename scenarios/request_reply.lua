-- request_reply.lua: a server answering requests with correlation ids and timeouts (seed 4.2).
--
-- Shows: the seed's example (a server goroutine inside rr:serve, a client calling
-- rr:request({data = ...}, 5000) and logging the response or the error); a handler that raises
-- (the requester gets nil, msg); a request that times out and whose late reply is discarded,
-- never delivered to the next request; close() (later requests get nil, "closed"; the server
-- leaves serve and ends).
--
-- Run:   cargo run --release -- run scenarios/request_reply.lua --seed 7
--
-- In the trace: "request request_reply#1 id=N", the server's "take ... id=N" and "reply ... id=N";
-- request 3 ("slow") gives up at t=16 ("timeout ... id=3"), its reply comes at t=36 and is
-- "late-reply ... id=3 discarded"; request 4 gets its own answer; "close" ends the server.

local rr = goroutine.request_reply()

local function process(data)
  goroutine.sleep(data == "slow" and 30 or 5)  -- some work, in virtual time
  return string.upper(data)
end

-- Before any server: nobody could answer.
local none, why = rr:request({data = "early"}, 100)
assert(none == nil and why == "no responder")

-- Server (the seed's example).
local server = goroutine.spawn{name = "server", fn = function()
  rr:serve(function(request)
    if request.data == "bad" then error("cannot process bad data") end
    return {result = process(request.data)}
  end)
  log.info("server stopped")
end}
goroutine.sleep(1)  -- the server is inside serve from now on

-- Client (the seed's example).
local function call(data, timeout)
  local response, err = rr:request({data = data}, timeout)
  if err then
    log.error("Request failed: " .. err)
  else
    log.info("Response: " .. response.result)
  end
  return response, err
end

assert(call("hello", 5000).result == "HELLO")
local _, err = call("bad", 5000)
assert(err:find("cannot process bad data", 1, true))
local t0 = goroutine.now()
local _, err2 = call("slow", 10)
assert(err2 == "timeout" and goroutine.now() == t0 + 10)
-- The late reply to "slow" (at t=36) must not answer this one.
local r4 = call("next", 5000)
assert(r4.result == "NEXT")
assert(rr:pending() == 0)

rr:close()
local _, err5 = call("after close", 5000)
assert(err5 == "closed")
goroutine.sleep(1)  -- let the server leave serve
-- gosim: exact-time (asserts exact virtual instants: explore's portfolio runs no cost or jitter member)
