//! The priority channel (seed 1.2; ref: Java's `PriorityBlockingQueue` with sequence numbers, as
//! its `PriorityBlockingQueueTest` checks ordering, blocking `put` on a bounded queue and
//! `poll(timeout)`): its laws over generated workloads and 1,000 seeds, checked against the
//! run's own trace (the exact order of effects), exact-instant edges, close, misuse, Lua/Rust
//! sharing and real mode.
//!
//! Laws: each receive returns a maximal-priority buffered value; equal priorities keep send
//! order; sent = received + buffered; a timed-out send enqueues nothing.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{PriorityChannel, PrioritySendError};
use gosim::runtime::Subject;
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A value encodes its priority and identity: `prio * 100_000 + producer * 1_000 + index`.
fn prio_of(v: u64) -> u64 {
    v / 100_000
}

#[derive(Debug, Clone)]
struct Work {
    cap: Option<usize>,
    /// Per producer: (gap ms, priority) of each send.
    producers: Vec<Vec<(u64, u64)>>,
    send_timeout: Option<u64>,
    /// Per consumer: gap ms between receives, receive timeout.
    consumers: Vec<(u64, Option<u64>)>,
}

fn check_laws(w: &Work, seed: u64) {
    let sim = Sim::with_seed(seed);
    let pc: PriorityChannel<u64> = PriorityChannel::new(sim.runtime(), w.cap, None);
    let accepted: Rc<RefCell<BTreeSet<u64>>> = Rc::default();
    let refused: Rc<RefCell<BTreeSet<u64>>> = Rc::default();
    let got: Rc<RefCell<Vec<u64>>> = Rc::default();
    let s = sim.clone();
    let (pc2, acc2, ref2, got2, w2) = (
        pc.clone(),
        accepted.clone(),
        refused.clone(),
        got.clone(),
        w.clone(),
    );
    let report = sim.run(async move {
        let producers = s.wait_group();
        for (p, sends) in w2.producers.iter().cloned().enumerate() {
            producers.add(1).unwrap();
            let (s2, pc, wg, acc, rf) = (
                s.clone(),
                pc2.clone(),
                producers.clone(),
                acc2.clone(),
                ref2.clone(),
            );
            let timeout = w2.send_timeout;
            s.spawn(&format!("producer-{p}"), async move {
                for (i, (gap, prio)) in sends.into_iter().enumerate() {
                    s2.sleep(ms(gap)).await;
                    let v = prio * 100_000 + p as u64 * 1_000 + i as u64;
                    match pc.send(v, prio as i64, timeout.map(ms)).await {
                        Ok(()) => acc.borrow_mut().insert(v),
                        Err(PrioritySendError::Timeout) => rf.borrow_mut().insert(v),
                        Err(PrioritySendError::Closed) => panic!("closed too early"),
                    };
                }
                wg.add(-1).unwrap();
            });
        }
        let consumers = s.wait_group();
        for (c, (gap, timeout)) in w2.consumers.iter().copied().enumerate() {
            consumers.add(1).unwrap();
            let (s2, pc, wg, got) = (s.clone(), pc2.clone(), consumers.clone(), got2.clone());
            s.spawn(&format!("consumer-{c}"), async move {
                loop {
                    match pc.recv(timeout.map(ms)).await {
                        Ok(Some(v)) => got.borrow_mut().push(v),
                        Ok(None) => break,
                        Err(_) => {}
                    }
                    s2.sleep(ms(gap)).await;
                }
                wg.add(-1).unwrap();
            });
        }
        producers.wait().await;
        pc2.close();
        consumers.wait().await;
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    // Replay the trace: a model of the buffer in effect order.
    let mut model: Vec<u64> = Vec::new(); // in send order
    let mut replayed = 0u64;
    for e in &report.events {
        let ours = matches!(&e.subject(), Subject::Resource(r) if r.kind() == "priority_channel");
        if !ours {
            continue;
        }
        let Some(detail) = e.detail() else {
            continue;
        };
        let Some(v) = detail.split(' ').next().and_then(|x| x.parse::<u64>().ok()) else {
            continue;
        };
        if detail.ends_with("full") {
            continue;
        }
        match e.verb {
            "send" => model.push(v),
            "receive" => {
                let pos = model
                    .iter()
                    .position(|&x| x == v)
                    .expect("received a sent value");
                // Maximal priority, and the first sent among equals.
                let best = model
                    .iter()
                    .enumerate()
                    .max_by(|a, b| prio_of(*a.1).cmp(&prio_of(*b.1)).then(b.0.cmp(&a.0)))
                    .map(|(i, _)| i)
                    .unwrap();
                assert_eq!(pos, best, "seed {seed}: received {v}, buffer {model:?}");
                model.remove(pos);
                replayed += 1;
            }
            _ => {}
        }
    }
    assert!(model.is_empty(), "seed {seed}: left {model:?}");
    let (sent, received) = pc.totals();
    assert_eq!(
        replayed, received,
        "seed {seed}: the trace shows every receive"
    );
    assert_eq!(sent, received + pc.len() as u64);
    let got: BTreeSet<u64> = got.borrow().iter().copied().collect();
    assert_eq!(got.len(), received as usize, "each value received once");
    assert_eq!(got, *accepted.borrow(), "seed {seed}: accepted = received");
    assert!(
        refused.borrow().is_disjoint(&got),
        "a timed-out send enqueued nothing"
    );
}

fn work() -> impl Strategy<Value = Work> {
    (
        prop::option::of(1usize..4),
        prop::collection::vec(prop::collection::vec((0u64..3, 0u64..4), 0..10), 1..4),
        prop::option::weighted(0.3, 1u64..5),
        prop::collection::vec((0u64..4, prop::option::weighted(0.3, 1u64..5)), 1..3),
    )
        .prop_map(|(cap, producers, send_timeout, consumers)| Work {
            cap,
            producers,
            send_timeout,
            consumers,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn laws_over_generated_workloads(w in work(), seed in 0u64..1_000_000) {
        check_laws(&w, seed);
    }
}

#[test]
fn the_laws_hold_over_1000_seeds() {
    let w = Work {
        cap: Some(2),
        producers: vec![
            vec![(0, 1), (0, 1), (1, 3), (0, 0), (2, 3)],
            vec![(1, 2), (0, 2), (0, 0), (1, 1)],
        ],
        send_timeout: Some(3),
        consumers: vec![(2, None), (1, Some(2))],
    };
    for seed in 0..1000 {
        let mut w = w.clone();
        if seed % 2 == 1 {
            w.cap = None;
            w.send_timeout = None;
        }
        check_laws(&w, seed);
    }
}

/// The seed's example: larger priority first, FIFO among equals, default priority 0.
#[test]
fn larger_first_fifo_among_equals_default_zero() {
    let src = r#"
local pq = goroutine.priority_channel()
assert(pq:cap() == nil)
pq:send("low", 1)
pq:send("high-a", 10)
pq:send("zero")               -- default priority 0
pq:send("high-b", 10)
pq:send("neg", -5)
local order = {}
for i = 1, 5 do order[i] = pq:receive() end
assert(table.concat(order, ",") == "high-a,high-b,low,zero,neg", table.concat(order, ","))
assert(pq:len() == 0)
"#;
    common::expect_pass_on_seeds(src);
}

/// Bounded: a send waits while full (optional timeout that enqueues nothing), receive with a
/// timeout, close: senders waiting fail, receivers drain then get `nil, false`.
#[test]
fn bounded_timeouts_and_close() {
    let src = r#"
local pq = goroutine.priority_channel(2)
assert(pq:cap() == 2)
assert(pq:send("a", 1) and pq:send("b", 2))
local ok, err = pq:send("c", 9, 5)
assert(ok == false and err == "timeout" and goroutine.now() == 5 and pq:len() == 2)
goroutine.spawn(function() goroutine.sleep(5); assert(pq:receive() == "b") end)
assert(pq:send("d", 0))                     -- waits for room
assert(goroutine.now() == 10)
local v, okr, e = goroutine.priority_channel():receive(3)
assert(v == nil and okr == false and e == "timeout")
goroutine.spawn(function() goroutine.sleep(1); pq:close() end)
local okc, errc = pq:send("e", 1)           -- waiting when it closes
assert(okc == false and errc == "send on closed channel")
assert(pq:receive() == "a" and pq:receive() == "d")
local v2, ok2 = pq:receive()
assert(v2 == nil and ok2 == false)
assert(select(2, pq:send(1)) == "send on closed channel")
assert(select(2, pq:close()) == "channel already closed")
"#;
    common::expect_pass_on_seeds(src);
}

/// A receiver waiting on an empty channel gets the first value sent (whatever its priority);
/// range drains in priority order and ends at close.
#[test]
fn handoff_and_range() {
    let src = r#"
local pq = goroutine.priority_channel()
goroutine.spawn(function() goroutine.sleep(1); pq:send("only", -1) end)
assert(pq:receive() == "only")
for i = 1, 4 do pq:send(i, i % 2) end
pq:close()
local got = {}
pq:range(function(v) got[#got + 1] = v end)
assert(table.concat(got, ",") == "1,3,2,4")
"#;
    common::expect_pass_on_seeds(src);
}

/// Exact instants: a receive timing out at the instant a value is sent: either outcome, the
/// value received exactly once; a send timing out at the instant room frees: delivered iff
/// `true`.
#[test]
fn ties_at_one_instant() {
    let src = r#"
local pq = goroutine.priority_channel(1)
goroutine.spawn(function() goroutine.sleep(5); pq:send("v", 1) end)
local v, ok = pq:receive(5)
if not ok then v = pq:receive() end
assert(v == "v" and pq:len() == 0)
pq:send("x")
goroutine.spawn(function() goroutine.sleep(5); assert(pq:receive() == "x") end)
local sent = pq:send("y", 0, 5)
goroutine.sleep(1)
assert(pq:len() == (sent and 1 or 0))
"#;
    common::expect_pass_on_seeds(src);
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const P: &str = "local pq = goroutine.priority_channel()";
    check_all(&[
        m(
            "",
            "goroutine.priority_channel(0)",
            "goroutine.priority_channel",
            "(got 0)",
        ),
        m(
            "",
            "goroutine.priority_channel(-2)",
            "goroutine.priority_channel",
            "(got -2)",
        ),
        m(
            "",
            "goroutine.priority_channel('x')",
            "goroutine.priority_channel",
            "(got \"x\")",
        ),
        m(
            P,
            "pq:send(1, 'high')",
            "priority_channel:send",
            "(got \"high\")",
        ),
        m(P, "pq:send(1, 1.5)", "priority_channel:send", "(got 1.5)"),
        m(
            P,
            "pq:send(1, 1, 'x')",
            "priority_channel:send",
            "(got \"x\")",
        ),
        m(
            P,
            "pq:receive({})",
            "priority_channel:receive",
            "(got table)",
        ),
        m(
            P,
            "pq.len()",
            "priority_channel:len",
            "expects a priority channel",
        ),
        m(
            P,
            "pq:range()",
            "priority_channel:range",
            "expects a function",
        ),
    ]);
}

/// One priority channel created in Rust: Lua sends with priorities, a Rust task receives.
#[test]
fn lua_and_rust_share_one_channel() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(8);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let pc: PriorityChannel<LuaValue> = PriorityChannel::new(sim.runtime(), None, None);
    world.expose("pq", pc.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            "pq:send('low', 1); pq:send('high', 5); pq:send('mid', 3); pq:close()",
        )
        .unwrap();
    let got: Rc<RefCell<Vec<String>>> = Rc::default();
    let (s, got2) = (sim.clone(), got.clone());
    sim.spawn("rust", async move {
        s.sleep(ms(1)).await;
        while let Ok(Some(v)) = pc.recv(None).await {
            got2.borrow_mut().push(gosim::lua::describe(&v.0));
        }
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(*got.borrow(), vec!["\"high\"", "\"mid\"", "\"low\""]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local pq = goroutine.priority_channel(1)
pq:send("a", 1)
local t0 = goroutine.now()
local ok, err = pq:send("b", 2, 20)
assert(not ok and err == "timeout" and goroutine.now() - t0 >= 20)
goroutine.spawn(function() goroutine.sleep(5); assert(pq:receive() == "a") end)
assert(pq:send("c", 3))
assert(pq:receive() == "c")
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}

/// A receive nobody can end is reported with the channel's name; a timed one is no deadlock.
#[test]
fn a_receive_nobody_ends_is_a_deadlock_with_names() {
    let r = common::run("local pq = goroutine.priority_channel()\npq:receive()", 1);
    assert!(!r.outcome.is_pass());
    let text = r.outcome.to_string();
    assert!(text.contains("priority_channel"), "{text}");
    assert!(text.contains("t.lua:2"), "{text}");
    common::expect_pass_on_seeds(
        "local pq = goroutine.priority_channel(1); pq:send(1); assert(pq:send(2, 0, 50) == false)",
    );
}
