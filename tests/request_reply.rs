//! Request/reply (seed 4.2): its laws across many seeds and generated workloads, the edge cases of
//! its reference (tokio's `oneshot` + `timeout`: a value sent before the deadline is received, a
//! dropped sender is an error, a late send is lost and never reaches anyone else), exact instants,
//! misuse, one endpoint shared by Lua and Rust, and a real run.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{RequestError, RequestReply};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One generated request: made at `start` ms with `timeout` ms; the handler works `work` ms,
/// and fails when `fail`.
#[derive(Debug, Clone)]
struct Req {
    start: u64,
    timeout: Option<u64>,
    work: u64,
    fail: bool,
}

fn req() -> impl Strategy<Value = Req> {
    (
        0u64..20,
        prop::option::weighted(0.7, 0u64..15),
        0u64..12,
        prop::bool::weighted(0.2),
    )
        .prop_map(|(start, timeout, work, fail)| Req {
            start,
            timeout,
            work,
            fail,
        })
}

type Outcomes = Rc<RefCell<Vec<Vec<Result<usize, RequestError>>>>>;

/// The laws on one run: every request has exactly one outcome; a response is the answer to
/// that very request (correlation: never another's); a timeout happens exactly at the deadline
/// and a response never after it; the pending map is empty at the end.
fn check_laws(servers: usize, reqs: &[Req], seed: u64) {
    let sim = Sim::with_seed(seed);
    let rr: RequestReply<(usize, u64, bool), usize> = RequestReply::new(sim.runtime(), None);
    let outcomes: Outcomes = Rc::new(RefCell::new(vec![Vec::new(); reqs.len()]));
    let s = sim.clone();
    let (rr2, out2, reqs2) = (rr.clone(), outcomes.clone(), reqs.to_vec());
    let report = sim.run(async move {
        for i in 0..servers {
            let (rr, s2) = (rr2.clone(), s.clone());
            s.spawn(&format!("server-{i}"), async move {
                rr.serve(|(n, work, fail)| {
                    let s3 = s2.clone();
                    async move {
                        s3.sleep(ms(work)).await;
                        if fail {
                            Err(format!("failed {n}"))
                        } else {
                            Ok(n)
                        }
                    }
                })
                .await;
            });
        }
        s.sleep(ms(1)).await; // every server is inside serve
        let wg = s.wait_group();
        for (i, r) in reqs2.into_iter().enumerate() {
            wg.add(1).unwrap();
            let (rr, s2, wg, out) = (rr2.clone(), s.clone(), wg.clone(), out2.clone());
            s.spawn(&format!("client-{i}"), async move {
                s2.sleep(ms(r.start)).await;
                let t0 = s2.now();
                let o = rr.request((i, r.work, r.fail), r.timeout.map(ms)).await;
                let waited = s2.now() - t0;
                if let Some(t) = r.timeout {
                    match &o {
                        Err(RequestError::Timeout) => {
                            assert_eq!(waited, ms(t), "timeout at the deadline")
                        }
                        _ => assert!(waited <= ms(t), "an outcome after the deadline"),
                    }
                } else {
                    assert_ne!(o, Err(RequestError::Timeout));
                }
                out.borrow_mut()[i].push(o);
                wg.add(-1).unwrap();
            });
        }
        wg.wait().await;
        assert_eq!(
            rr2.pending(),
            0,
            "the pending map is empty when all requests are done"
        );
        rr2.close();
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    for (i, os) in outcomes.borrow().iter().enumerate() {
        assert_eq!(os.len(), 1, "seed {seed}: request {i} has one outcome");
        match &os[0] {
            Ok(n) => assert_eq!(*n, i, "seed {seed}: request {i} got another's answer"),
            Err(RequestError::Failed(m)) => assert_eq!(m, &format!("failed {i}")),
            Err(RequestError::Timeout) => {}
            Err(e) => panic!("seed {seed}: request {i}: unexpected {e}"),
        }
    }
    assert_eq!(rr.pending(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn one_outcome_per_request(
        servers in 1usize..4,
        reqs in prop::collection::vec(req(), 1..12),
        seed in 0u64..1_000_000,
    ) {
        check_laws(servers, &reqs, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let reqs: Vec<Req> = (0..8)
        .map(|i| Req {
            start: (i * 3) % 5,
            timeout: if i % 3 == 0 { None } else { Some(4 + i % 4) },
            work: (i * 7) % 9,
            fail: i % 5 == 4,
        })
        .collect();
    for seed in 0..1000 {
        check_laws(2, &reqs, seed);
    }
}

/// Runs Lua `src` under several seeds; each must pass.
fn lua_passes(src: &str) {
    common::expect_pass_on_seeds(src);
}

#[test]
fn no_responder_closed_and_handler_errors() {
    lua_passes(
        r#"
local rr = goroutine.request_reply()
local v, e = rr:request(1, 10)
assert(v == nil and e == "no responder", e)      -- at once: nobody is inside serve
assert(goroutine.now() == 0)
goroutine.spawn(function()
  rr:serve(function(x)
    if x == "raise" then error("bad input") end
    if x == "nil-err" then return nil, "refused" end
    if x == "nil" then return nil end
    return x * 2
  end)
end)
goroutine.sleep(1)
assert(rr:request(21) == 42)                      -- no timeout: waits as long as it takes
local v2, e2 = rr:request("raise", 100)
assert(v2 == nil and e2:find("bad input", 1, true), e2)
local v3, e3 = rr:request("nil-err", 100)
assert(v3 == nil and e3 == "refused", e3)
local v4, e4 = rr:request("nil", 100)
assert(v4 == nil and e4 == nil)                   -- a nil answer is an answer
assert(rr:request(1, 100) == 2)                   -- the server survived the error
rr:close()
local v5, e5 = rr:request(1, 100)
assert(v5 == nil and e5 == "closed")
rr:close()                                        -- idempotent
local v6, e6 = goroutine.request_reply(), nil
v6:close()
local v7, e7 = v6:request(1)
assert(v7 == nil and e7 == "closed", e7)          -- closed wins over no responder
"#,
    );
}

/// Tokio: a value sent after the receiver's timeout is lost, and it is never delivered to the
/// next request (each request has its own correlation id).
#[test]
fn a_late_reply_is_discarded_not_delivered_to_the_next_request() {
    lua_passes(
        r#"
local rr = goroutine.request_reply()
goroutine.spawn(function()
  rr:serve(function(x) goroutine.sleep(x.work) return x.name end)
end)
goroutine.sleep(1)
local v, e = rr:request({name = "slow", work = 20}, 5)
assert(v == nil and e == "timeout")
assert(rr:pending() == 0)                         -- it left the pending map at its deadline
local v2 = rr:request({name = "second", work = 1}, 100)
assert(v2 == "second", v2)                        -- not "slow"
rr:close()
"#,
    );
    // The Rust view of the same: the late reply is counted as discarded.
    let sim = Sim::with_seed(1);
    let rr: RequestReply<u64, u64> = RequestReply::new(sim.runtime(), None);
    let (s, rr2) = (sim.clone(), rr.clone());
    let report = sim.run(async move {
        let (srv, s2) = (rr2.clone(), s.clone());
        s.spawn("server", async move {
            srv.serve(|w| {
                let s3 = s2.clone();
                async move {
                    s3.sleep(ms(w)).await;
                    Ok(w)
                }
            })
            .await;
        });
        s.sleep(ms(1)).await;
        assert_eq!(
            rr2.request(20, Some(ms(5))).await,
            Err(RequestError::Timeout)
        );
        assert_eq!(rr2.request(1, Some(ms(100))).await, Ok(1));
        rr2.close();
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    assert_eq!(rr.late_replies(), 1);
    assert_eq!(rr.pending(), 0);
}

/// Exact instants. A reply made before the deadline's instant wins even if the requester only
/// runs at that instant; a handler that finishes exactly at the deadline loses (timers fire
/// before goroutines run at their instant, so the reply is not available yet): documented.
#[test]
fn a_reply_and_a_deadline_at_the_same_instant() {
    for seed in 0..100 {
        let sim = Sim::with_seed(seed);
        let rr: RequestReply<u64, u64> = RequestReply::new(sim.runtime(), None);
        let s = sim.clone();
        let got = Rc::new(RefCell::new(Vec::new()));
        let got2 = got.clone();
        let report = sim.run(async move {
            let (srv, s2) = (rr.clone(), s.clone());
            s.spawn("server", async move {
                srv.serve(|w| {
                    let s3 = s2.clone();
                    async move {
                        s3.sleep(ms(w)).await;
                        Ok(w)
                    }
                })
                .await;
            });
            s.sleep(ms(1)).await;
            // 9 ms of work, 10 ms of patience: the reply is there one ms before the deadline.
            let a = rr.request(9, Some(ms(10))).await;
            got2.borrow_mut().push(a);
            // 10 ms of work, 10 ms of patience: the reply would come at the deadline's instant.
            let b = rr.request(10, Some(ms(10))).await;
            got2.borrow_mut().push(b);
            s.sleep(ms(1)).await;
            rr.close();
        });
        assert!(report.outcome.is_pass(), "{}", report.outcome);
        assert_eq!(
            *got.borrow(),
            vec![Ok(9), Err(RequestError::Timeout)],
            "seed {seed}"
        );
    }
}

/// Two servers: requests are answered concurrently, each by one server.
#[test]
fn several_servers_share_the_requests() {
    lua_passes(
        r#"
local rr = goroutine.request_reply()
local by = {}
for i = 1, 2 do
  goroutine.spawn(function()
    rr:serve(function(x) goroutine.sleep(10) by[i] = (by[i] or 0) + 1 return x end)
  end)
end
goroutine.sleep(1)
local done = goroutine.channel(4)
for i = 1, 4 do goroutine.spawn(function() done:send(rr:request(i, 100)) end) end
local sum = 0
for _ = 1, 4 do sum = sum + done:receive() end
assert(sum == 10)
assert(goroutine.now() == 21, goroutine.now())   -- two at a time
assert(by[1] == 2 and by[2] == 2)
rr:close()
"#,
    );
}

/// A client waiting forever on a server that never answers is not a false wait-for cycle: the
/// run ends as a plain deadlock (everyone blocked), not a cycle.
#[test]
fn a_server_that_never_answers_is_a_deadlock_not_a_cycle() {
    let r = common::run(
        r#"
local rr = goroutine.request_reply()
local never = goroutine.channel()
goroutine.spawn(function() rr:serve(function() never:receive() end) end)
goroutine.sleep(1)
rr:request(1)
"#,
        1,
    );
    let text = r.outcome.to_string();
    assert!(!r.outcome.is_pass());
    assert!(!text.contains("cycle"), "{text}");
    assert!(text.contains("request_reply#1"), "{text}");
}

#[test]
fn lua_and_rust_share_one_endpoint() {
    use gosim::lua::LuaValue;
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let rr: RequestReply<LuaValue, LuaValue> = RequestReply::new(sim.runtime(), None);
    world.expose("rr", rr.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
goroutine.sleep(1)                      -- the Rust server is inside serve
assert(rr:request(20, 100) == 21)
local v, e = rr:request(-1, 100)
assert(v == nil and e == "negative")
rr:close()
"#,
        )
        .unwrap();
    let s = sim.clone();
    let served = Rc::new(Cell::new(0));
    let served2 = served.clone();
    s.clone().spawn("rust-server", async move {
        rr.serve(|v: LuaValue| {
            served2.set(served2.get() + 1);
            async move {
                match v.0 {
                    mlua::Value::Integer(n) if n >= 0 => Ok(LuaValue(mlua::Value::Integer(n + 1))),
                    _ => Err("negative".to_string()),
                }
            }
        })
        .await;
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(served.get(), 2);
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const S: &str = "local rr = goroutine.request_reply()";
    check_all(&[
        m(
            S,
            "rr:request(1, 'soon')",
            "request_reply:request",
            "(got \"soon\")",
        ),
        m(
            S,
            "rr.request(1)",
            "request_reply:request",
            "expects a request_reply",
        ),
        m(
            S,
            "rr:serve(42)",
            "request_reply:serve",
            "expects a function",
        ),
        m(
            S,
            "rr.close()",
            "request_reply:close",
            "expects a request_reply",
        ),
        m(
            S,
            "rr.serve(1, print)",
            "request_reply:serve",
            "expects a request_reply",
        ),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local rr = goroutine.request_reply()
goroutine.spawn(function()
  rr:serve(function(x) goroutine.sleep(x) return x end)
end)
goroutine.sleep(2)
assert(rr:request(1, 1000) == 1)
local t0 = goroutine.now()
local v, e = rr:request(50, 10)
assert(v == nil and e == "timeout")
assert(goroutine.now() - t0 >= 10)
rr:close()
goroutine.sleep(60)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
