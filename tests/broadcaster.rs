//! The broadcaster (seed 1.4): its laws across many seeds
//! and generated workloads, the pitfalls of the reference, tokio's `broadcast`, misuse errors,
//! one object shared by Lua and Rust, and real mode.
//!
//! Ported from tokio's `tests/sync_broadcast.rs`: send_try_recv_bounded, send_two_recv,
//! send_recv_bounded, send_two_recv_bounded, send_slow_rx, drop_rx_while_values_remain
//! (unsubscribe), lagging_rx, send_no_rx, single_capacity_recvs, dropping_tx_notifies_rx (close),
//! unconsumed_messages_are_dropped; and tokio#2425 (spurious lag: a receiver that keeps up, even
//! exactly at capacity, must never lag).

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{Broadcaster, Lagging};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One generated subscriber: subscribes at `start`, waits `gap` between receives, receives
/// with a timeout when given (a timeout loses nothing), unsubscribes after `quit` values.
#[derive(Debug, Clone)]
struct SubSpec {
    start: u64,
    gap: u64,
    timeout: Option<u64>,
    quit: Option<usize>,
}

fn sub_spec() -> impl Strategy<Value = SubSpec> {
    (
        0u64..15,
        0u64..4,
        prop::option::weighted(0.3, 1u64..6),
        prop::option::weighted(0.2, 0usize..6),
    )
        .prop_map(|(start, gap, timeout, quit)| SubSpec {
            start,
            gap,
            timeout,
            quit,
        })
}

/// What one subscriber saw: the count of values broadcast before it subscribed, what it
/// received, what it missed, and whether it quit.
#[derive(Debug, Default, Clone)]
struct Seen {
    from: u64,
    got: Vec<u64>,
    missed: u64,
    quit: bool,
}

/// Runs one workload: `k` values broadcast with `gaps`, then `close`; checks the law: each
/// subscriber sees every value broadcast after it subscribed, in order, or counts exactly what
/// it missed.
fn check_laws(cap: usize, lagging: Lagging, k: u64, gaps: &[u64], subs: &[SubSpec], seed: u64) {
    let sim = Sim::with_seed(seed);
    let bc: Broadcaster<u64> = Broadcaster::new(sim.runtime(), cap, lagging, None);
    let seen: Rc<RefCell<Vec<Seen>>> = Rc::new(RefCell::new(vec![Seen::default(); subs.len()]));
    let s = sim.clone();
    let (bc2, seen2, subs2, gaps2) = (bc.clone(), seen.clone(), subs.to_vec(), gaps.to_vec());
    let n_subs = subs.len();
    let report = sim.run(async move {
        let wg = s.wait_group();
        for (i, spec) in subs2.into_iter().enumerate() {
            wg.add(1).unwrap();
            let (s2, bc, wg, seen) = (s.clone(), bc2.clone(), wg.clone(), seen2.clone());
            s.spawn(&format!("sub-{i}"), async move {
                s2.sleep(ms(spec.start)).await;
                let from = bc.sent();
                let sub = bc.subscribe();
                seen.borrow_mut()[i].from = from;
                loop {
                    if spec.quit == Some(seen.borrow()[i].got.len()) {
                        sub.unsubscribe();
                        seen.borrow_mut()[i].quit = true;
                        break;
                    }
                    match sub.recv(spec.timeout.map(ms)).await {
                        Ok(Some(v)) => seen.borrow_mut()[i].got.push(v),
                        Ok(None) => break,
                        Err(_) => continue,
                    }
                    s2.sleep(ms(spec.gap)).await;
                }
                seen.borrow_mut()[i].missed = sub.missed();
                wg.add(-1).unwrap();
            });
        }
        for v in 0..k {
            s.sleep(ms(gaps2[v as usize % gaps2.len()])).await;
            let n = bc2.broadcast(v, None).await.unwrap();
            assert!(n <= n_subs);
        }
        bc2.close();
        wg.wait().await;
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    assert_eq!(bc.sent(), k);
    for (i, s) in seen.borrow().iter().enumerate() {
        let ctx = format!("seed {seed} sub {i}: {s:?}");
        assert!(s.got.windows(2).all(|w| w[0] < w[1]), "order: {ctx}");
        assert!(s.got.iter().all(|&v| v >= s.from && v < k), "range: {ctx}");
        if lagging == Lagging::Block {
            // Nothing lost: exactly the values from its subscription on (a prefix if it quit).
            assert_eq!(s.missed, 0, "{ctx}");
            let want: Vec<u64> = (s.from..k).take(s.got.len()).collect();
            assert_eq!(s.got, want, "{ctx}");
            if !s.quit {
                assert_eq!(s.got.len() as u64, k - s.from, "{ctx}");
            }
        } else if !s.quit {
            // Drained to the close: received + missed covers every value after it subscribed.
            assert_eq!(s.got.len() as u64 + s.missed, k - s.from, "{ctx}");
            if k > s.from {
                assert_eq!(s.got.last(), Some(&(k - 1)), "{ctx}");
            }
        } else {
            // It quit: what it observed as lost lies in the gaps before its last receive.
            let span = s.got.last().map_or(0, |l| l + 1 - s.from);
            assert!(s.got.len() as u64 + s.missed <= span.max(s.missed), "{ctx}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// The law over generated workloads, both overflow modes.
    #[test]
    fn every_value_after_subscribing_or_counted(
        cap in 1usize..5,
        drop in any::<bool>(),
        k in 0u64..25,
        gaps in prop::collection::vec(0u64..3, 1..5),
        subs in prop::collection::vec(sub_spec(), 1..5),
        seed in 0u64..1_000_000,
    ) {
        let lagging = if drop { Lagging::DropOldest } else { Lagging::Block };
        check_laws(cap, lagging, k, &gaps, &subs, seed);
    }
}

/// The law over 1,000 seeds of one workload per mode: fast and slow subscribers, a late one, a
/// timed one, one that quits.
#[test]
fn the_law_holds_over_1000_seeds() {
    let subs = [
        SubSpec {
            start: 0,
            gap: 0,
            timeout: None,
            quit: None,
        },
        SubSpec {
            start: 0,
            gap: 3,
            timeout: None,
            quit: None,
        },
        SubSpec {
            start: 4,
            gap: 1,
            timeout: Some(2),
            quit: None,
        },
        SubSpec {
            start: 1,
            gap: 1,
            timeout: None,
            quit: Some(3),
        },
    ];
    for seed in 0..1000 {
        let lagging = if seed % 2 == 0 {
            Lagging::Block
        } else {
            Lagging::DropOldest
        };
        check_laws(2, lagging, 12, &[0, 1], &subs, seed);
    }
}

/// tokio#2425: a receiver that keeps up never lags, even when the buffer fills exactly to its
/// capacity between receives, round after round (tokio computed lag from positions and reported
/// spurious `Lagged` after wrap-around).
#[test]
fn tokio_2425_no_spurious_lag_at_exact_capacity() {
    for cap in 1..6usize {
        let src = format!(
            r#"
local bc = goroutine.broadcaster{{capacity = {cap}, overflow = "drop_oldest"}}
local sub = bc:subscribe()
local n = 0
for round = 1, 50 do
  for i = 1, {cap} do n = n + 1; assert(bc:broadcast(n) == 1) end
  for i = {cap} - 1, 0, -1 do
    local v, ok = sub:receive()
    assert(ok and v == n - i, "round " .. round .. ": got " .. tostring(v))
    assert(sub:missed() == 0, "spurious lag in round " .. round)
  end
end
-- One more than the capacity lags by exactly one.
for i = 1, {cap} + 1 do bc:broadcast(i) end
assert(sub:receive() == 2 and sub:missed() == 1)
"#
        );
        common::expect_pass_on_seeds(&src);
    }
}

/// tokio's lagging_rx and receiver_len_with_lagged: the lag is observed by the next receive,
/// which returns the oldest value kept; `missed` is cumulative and `range` goes on after a lag.
#[test]
fn lag_is_observed_by_the_next_receive_and_range_continues() {
    let src = r#"
local bc = goroutine.broadcaster{capacity = 2, overflow = "drop_oldest"}
local a, b = bc:subscribe(), bc:subscribe()
for i = 1, 3 do assert(bc:broadcast(i) == 2) end
assert(a:missed() == 0)                -- not observed yet
assert(a:len() == 2)
assert(a:receive() == 2 and a:missed() == 1)
assert(a:receive() == 3)
for i = 4, 8 do bc:broadcast(i) end
local got = {}
goroutine.spawn(function() goroutine.sleep(1); bc:close() end)
b:range(function(v) got[#got + 1] = v end)
assert(table.concat(got, ",") == "7,8", table.concat(got, ","))
assert(b:missed() == 6)                -- 1 and 2 by the first lag... 1..6 in all
a:range(function(v) end)
assert(a:missed() == 1 + 3)            -- cumulative
"#;
    common::expect_pass_on_seeds(src);
}

/// tokio's send_two_recv, send_recv_bounded, single_capacity_recvs, send_no_rx, unconsumed
/// messages dropped with the subscriber, and close (dropping_tx_notifies_rx): subscribers drain
/// then get `nil, false`; a broadcast after close is `0, "closed"`.
#[test]
fn tokio_basics() {
    let src = r#"
local bc = goroutine.broadcaster(1)
assert(bc:broadcast("nobody") == 0)     -- send_no_rx: reaches nobody, not an error
local a, b = bc:subscribe(), bc:subscribe()
assert(bc:broadcast("x") == 2)
assert(a:receive() == "x" and b:receive() == "x")
local v, ok, err = a:receive(0)          -- try_recv on empty
assert(v == nil and ok == false and err == "timeout")
assert(bc:broadcast("y") == 2)
assert(b:unsubscribe() == true and b:unsubscribe() == false)
assert(b:receive() == nil)              -- its buffer was dropped
assert(bc:subscribers() == 1)
bc:close()
assert(a:receive() == "y")              -- drain
local v2, ok2 = a:receive()
assert(v2 == nil and ok2 == false)
local n, e = bc:broadcast("z")
assert(n == 0 and e == "closed")
local late = bc:subscribe()             -- after close: ends at once
assert(select(2, late:receive()) == false)
assert(select(2, bc:close()) == "broadcaster already closed")
"#;
    common::expect_pass_on_seeds(src);
}

/// Block mode: a full subscriber makes broadcast wait (nothing lost), with a timeout that
/// delivers nothing to anyone; unsubscribing the slow one lets a waiting broadcast go.
#[test]
fn block_mode_waits_times_out_atomically_and_unsubscribe_frees() {
    let src = r#"
local bc = goroutine.broadcaster{capacity = 1}
local fast, slow = bc:subscribe(), bc:subscribe()
assert(bc:broadcast(1) == 2)
assert(fast:receive() == 1)
local t0 = goroutine.now()
local n, err = bc:broadcast(2, 10)      -- slow is full
assert(n == 0 and err == "timeout" and goroutine.now() - t0 == 10)
assert(fast:len() == 0)                 -- all or nothing
goroutine.spawn(function() goroutine.sleep(5); slow:unsubscribe() end)
assert(bc:broadcast(3) == 1)            -- goes once slow leaves
assert(goroutine.now() == t0 + 15)
assert(fast:receive() == 3)
"#;
    common::expect_pass_on_seeds(src);
}

/// Exact instants: a receive whose 5 ms timeout falls on the instant of a broadcast: either
/// outcome may happen (the seed decides), but the value is received exactly once; a value
/// already buffered when the timeout fires always wins.
#[test]
fn timeout_and_broadcast_at_the_same_instant() {
    let src = r#"
local bc = goroutine.broadcaster()
local sub = bc:subscribe()
goroutine.spawn(function() goroutine.sleep(5); bc:broadcast("v") end)
local v, ok, err = sub:receive(5)
if not ok then
  assert(err == "timeout" and goroutine.now() == 5)
  v, ok = sub:receive()
end
assert(v == "v" and ok)
assert(sub:len() == 0)
-- Buffered before the deadline: always the value.
goroutine.spawn(function() goroutine.sleep(1); bc:broadcast("w") end)
assert(sub:receive(1) == "w" or sub:receive() == "w")
bc:broadcast("x")
assert(sub:receive(0) == "x")
"#;
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let r = common::run(src, seed);
        assert!(r.outcome.is_pass(), "seed {seed}: {}", r.outcome);
        let timed_out = r.events.iter().any(|e| e.verb == "timeout");
        outcomes.insert(timed_out);
    }
    assert!(!outcomes.is_empty());
}

/// A broadcast blocked forever on a subscriber nobody reads is reported (no false alarm
/// otherwise), naming the broadcast.
#[test]
fn a_stuck_broadcast_is_a_deadlock_with_names() {
    let src = r#"
local bc = goroutine.broadcaster(1)
local sub = bc:subscribe()
bc:broadcast(1)
bc:broadcast(2)
"#;
    let r = common::run(src, 1);
    assert!(!r.outcome.is_pass());
    let text = r.outcome.to_string();
    assert!(text.contains("broadcast"), "{text}");
    // A timed broadcast is no deadlock.
    common::expect_pass_on_seeds(
        "local bc = goroutine.broadcaster(1); local s = bc:subscribe(); bc:broadcast(1); assert(bc:broadcast(2, 50) == 0)",
    );
}

/// One broadcaster created in Rust, used by a Rust task (broadcasting) and Lua goroutines
/// (subscribing), and a subscriber handed to Lua.
#[test]
fn lua_and_rust_share_one_broadcaster() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(3);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let bc: Broadcaster<LuaValue> = Broadcaster::new(sim.runtime(), 4, Lagging::Block, None);
    let rust_sub = bc.subscribe();
    world.expose("bc", bc.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
local sub = bc:subscribe()
local got = {}
sub:range(function(v) got[#got + 1] = v end)
assert(table.concat(got, ",") == "1,2,3", table.concat(got, ","))
"#,
        )
        .unwrap();
    let received = Rc::new(Cell::new(0));
    let (s, r2) = (sim.clone(), received.clone());
    sim.spawn("rust", async move {
        s.sleep(ms(1)).await;
        for i in 1..=3 {
            let v = LuaValue(mlua::Value::Integer(i));
            assert_eq!(bc.broadcast(v, None).await, Ok(2));
        }
        while let Ok(Some(_)) = rust_sub.recv(Some(ms(0))).await {
            r2.set(r2.get() + 1);
        }
        bc.close();
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(received.get(), 3);
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const B: &str = "local bc = goroutine.broadcaster(); local sub = bc:subscribe()";
    check_all(&[
        m(
            "",
            "goroutine.broadcaster(0)",
            "goroutine.broadcaster",
            "(got 0)",
        ),
        m(
            "",
            "goroutine.broadcaster(-3)",
            "goroutine.broadcaster",
            "(got -3)",
        ),
        m(
            "",
            "goroutine.broadcaster('x')",
            "goroutine.broadcaster",
            "(got \"x\")",
        ),
        m(
            "",
            "goroutine.broadcaster{overflow = 'drop_newest'}",
            "goroutine.broadcaster",
            "overflow must be",
        ),
        m(
            "",
            "goroutine.broadcaster{capcity = 3}",
            "goroutine.broadcaster",
            "unknown option",
        ),
        m(
            B,
            "bc:broadcast(1, 'soon')",
            "broadcaster:broadcast",
            "(got \"soon\")",
        ),
        m(
            B,
            "bc.subscribe()",
            "broadcaster:subscribe",
            "expects a broadcaster",
        ),
        m(B, "sub:receive('x')", "subscriber:receive", "(got \"x\")"),
        m(
            B,
            "sub.missed()",
            "subscriber:missed",
            "expects a subscriber",
        ),
        m(B, "sub:range(42)", "subscriber:range", "expects a function"),
        m(
            B,
            "sub.range(bc, print)",
            "subscriber:range",
            "expects a subscriber",
        ),
    ]);
}

/// The same against the wall clock: a blocked broadcast released by a receive, a timed
/// receive that gives up at least its timeout later, pub/sub delivery.
#[test]
fn it_works_in_real_time() {
    let src = r#"
local bc = goroutine.broadcaster(1)
local sub = bc:subscribe()
bc:broadcast(1)
goroutine.spawn(function() goroutine.sleep(5); assert(sub:receive() == 1) end)
assert(bc:broadcast(2) == 1)
assert(sub:receive() == 2)
local t0 = goroutine.now()
local v, ok, err = sub:receive(20)
assert(err == "timeout" and goroutine.now() - t0 >= 20)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
