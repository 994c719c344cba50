//! Pub/sub (seed 4.1), built on the broadcaster (one broadcaster per topic, so subscriber
//! buffers, lag counting and overflow are the broadcaster's, tested in `tests/broadcaster.rs`):
//! topic independence, `publish` counts, late subscribers, unsubscribe, close, the delivery law
//! over 1,000 seeds, misuse, Lua/Rust sharing and real mode.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{Lagging, PubSub};
use gosim::sim::Sim;

use common::misuse::{check_all, m};

/// What one subscriber got: its topic, the topic's count at its subscription, its messages.
type Delivery = (String, u64, Vec<u64>);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Pub/sub: topics are independent, publish counts the subscribers reached (0: dropped), late
/// subscribers see only later messages, unsubscribe (both forms) stops delivery, close ends
/// every subscriber after its buffer; per-subscriber buffers follow the overflow option.
#[test]
fn pubsub_semantics() {
    let src = r#"
local ps = goroutine.pubsub()
local s1, s2, s3 = ps:subscribe("events"), ps:subscribe("events"), ps:subscribe("logs")
assert(ps:publish("events", {type = "user_login", user = "john"}) == 2)
assert(ps:publish("logs", {level = "info", msg = "system started"}) == 1)
assert(ps:publish("nobody", 1) == 0)
local late = ps:subscribe("events")
assert(ps:publish("events", {type = "second"}) == 3)
assert(late:receive().type == "second")  -- only later messages
assert(s3:receive().msg == "system started")
assert(s3:receive(0) == nil)             -- topics are independent
ps:unsubscribe(s2)
assert(ps:subscribers("events") == 2)
s1:unsubscribe()
assert(ps:publish("events", {type = "third"}) == 1)
assert(s1:receive() == nil)
ps:close()
assert(late:receive().type == "third")
assert(select(2, late:receive()) == false)
local n, err = ps:publish("events", 1)
assert(n == 0 and err == "closed")
-- drop_oldest buffers
local d = goroutine.pubsub{capacity = 1, overflow = "drop_oldest"}
local s = d:subscribe("t")
d:publish("t", 1); d:publish("t", 2)
assert(s:receive() == 2 and s:missed() == 1)
-- block buffers: a full subscriber of one topic never delays another topic
local b = goroutine.pubsub{capacity = 1}
local full, other = b:subscribe("a"), b:subscribe("b")
b:publish("a", 1)
local n2, e2 = b:publish("a", 2, 5)
assert(n2 == 0 and e2 == "timeout")
assert(b:publish("b", 1) == 1)
"#;
    common::expect_pass_on_seeds(src);
}

/// The pub/sub law over 1,000 seeds: publishers on two topics race with subscribers; every
/// subscriber gets exactly its topic's messages published after it subscribed, in order.
#[test]
fn pubsub_law_over_1000_seeds() {
    for seed in 0..1000 {
        let sim = Sim::with_seed(seed);
        let ps: PubSub<u64> = PubSub::new(sim.runtime(), 2, Lagging::Block, None);
        let got: Rc<RefCell<Vec<Delivery>>> = Rc::default();
        let s = sim.clone();
        let (ps2, got2) = (ps.clone(), got.clone());
        let report = sim.run(async move {
            let wg = s.wait_group();
            for (i, topic) in ["a", "b", "a"].into_iter().enumerate() {
                wg.add(1).unwrap();
                let (s2, ps, wg, got) = (s.clone(), ps2.clone(), wg.clone(), got2.clone());
                s.spawn(&format!("sub-{i}"), async move {
                    s2.sleep(ms(i as u64)).await;
                    let sub = ps.subscribe(topic);
                    let from = sub.broadcaster().sent();
                    let mut vs = Vec::new();
                    while let Ok(Some(v)) = sub.recv(None).await {
                        vs.push(v);
                    }
                    got.borrow_mut().push((topic.to_string(), from, vs));
                    wg.add(-1).unwrap();
                });
            }
            for v in 0..6 {
                let _ = ps2.publish("a", v, None).await;
                let _ = ps2.publish("b", v, None).await;
                s.sleep(ms(v % 2)).await;
            }
            ps2.close();
            wg.wait().await;
        });
        assert!(report.outcome.is_pass(), "seed {seed}: {}", report.outcome);
        for (topic, from, vs) in got.borrow().iter() {
            // Messages are their publish number: a late subscriber's are a contiguous tail
            // (nothing lost, nothing from before it subscribed: `from` values had entered its
            // topic before then).
            let first = vs.first().copied().unwrap_or(6);
            let want: Vec<u64> = (first..6).collect();
            assert_eq!(vs, &want, "seed {seed} topic {topic}");
            assert!(first >= *from, "seed {seed} topic {topic}");
        }
    }
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const P: &str =
        "local ps = goroutine.pubsub(); local other = goroutine.broadcaster():subscribe()";
    check_all(&[
        m(
            "",
            "goroutine.pubsub{capacity = 0}",
            "goroutine.pubsub",
            "(got 0)",
        ),
        m(
            P,
            "ps:subscribe({})",
            "pubsub:subscribe",
            "topic must be a string",
        ),
        m(
            P,
            "ps:publish(nil, 1)",
            "pubsub:publish",
            "topic must be a string",
        ),
        m(
            P,
            "ps:unsubscribe(42)",
            "pubsub:unsubscribe",
            "expects a subscriber",
        ),
        m(
            P,
            "ps:unsubscribe(other)",
            "pubsub:unsubscribe",
            "another pubsub",
        ),
        m(
            "",
            "goroutine.pubsub{overflow = 'x'}",
            "goroutine.pubsub",
            "overflow must be",
        ),
        m(
            P,
            "ps.publish('t', 1)",
            "pubsub:publish",
            "expects a pubsub",
        ),
    ]);
}

/// One hub created in Rust: a Rust task publishes, a Lua goroutine subscribes.
#[test]
fn lua_and_rust_share_one_pubsub() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(4);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let ps: PubSub<LuaValue> = PubSub::new(sim.runtime(), 4, Lagging::Block, None);
    world.expose("ps", ps.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
local sub = ps:subscribe("events")
local got = {}
sub:range(function(v) got[#got + 1] = v end)
assert(table.concat(got, ",") == "1,2", table.concat(got, ","))
"#,
        )
        .unwrap();
    let s = sim.clone();
    sim.spawn("rust", async move {
        s.sleep(ms(1)).await;
        for i in 1..=2 {
            let v = LuaValue(mlua::Value::Integer(i));
            assert_eq!(ps.publish("events", v, None).await, Ok(1));
        }
        ps.close();
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local ps = goroutine.pubsub()
local s = ps:subscribe("t")
goroutine.spawn(function() goroutine.sleep(5); ps:publish("t", "hello") end)
assert(s:receive() == "hello")
local t0 = goroutine.now()
assert(select(3, s:receive(20)) == "timeout" and goroutine.now() - t0 >= 20)
ps:close()
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
