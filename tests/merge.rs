//! Merge (seed 1.5; ref: the Go blog's "Pipelines and cancellation" `merge`): its laws over
//! generated inputs and 1,000 seeds, the edge cases (no input, inputs closing at the same
//! instant as another's last value, capacity 10), misuse, Lua/Rust sharing and real mode.
//!
//! Laws: every value of every input comes out exactly once; values of one input keep their
//! order; the output closes only after every input has closed and every value is forwarded.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{MERGE_CAPACITY, merge};
use gosim::sim::Sim;
use gosim::sync::Channel;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Inputs: per input, the gaps (ms) before each of its values; value `i * 1000 + j` is input
/// `i`'s `j`-th. Checks the laws on one run.
fn check_laws(inputs: &[Vec<u64>], caps: &[usize], seed: u64) {
    let sim = Sim::with_seed(seed);
    let chans: Vec<Channel<u64>> = inputs
        .iter()
        .enumerate()
        .map(|(i, _)| sim.channel(caps[i % caps.len()]))
        .collect();
    let out = merge(sim.runtime(), &sim, chans.clone(), None);
    assert_eq!(out.cap(), MERGE_CAPACITY);
    let got: Rc<RefCell<Vec<u64>>> = Rc::default();
    let closed_after: Rc<RefCell<Vec<bool>>> = Rc::default();
    let s = sim.clone();
    let (got2, closed2, inputs2) = (got.clone(), closed_after.clone(), inputs.to_vec());
    let n_inputs = inputs.len();
    let report = sim.run(async move {
        let done: Rc<RefCell<usize>> = Rc::default();
        for (i, (gaps, ch)) in inputs2.into_iter().zip(chans).enumerate() {
            let (s2, done) = (s.clone(), done.clone());
            s.spawn(&format!("producer-{i}"), async move {
                for (j, g) in gaps.into_iter().enumerate() {
                    s2.sleep(ms(g)).await;
                    ch.send(i as u64 * 1000 + j as u64).await.unwrap();
                }
                ch.close();
                *done.borrow_mut() += 1;
            });
        }
        while let Some(v) = out.recv().await {
            got2.borrow_mut().push(v);
        }
        // The output closed: every input had closed before.
        closed2.borrow_mut().push(*done.borrow() == n_inputs);
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let got = got.borrow();
    for (i, gaps) in inputs.iter().enumerate() {
        let mine: Vec<u64> = got
            .iter()
            .copied()
            .filter(|v| v / 1000 == i as u64)
            .collect();
        let want: Vec<u64> = (0..gaps.len() as u64)
            .map(|j| i as u64 * 1000 + j)
            .collect();
        assert_eq!(mine, want, "seed {seed}: input {i} (order kept, each once)");
    }
    assert_eq!(got.len(), inputs.iter().map(Vec::len).sum::<usize>());
    assert_eq!(*closed_after.borrow(), vec![true], "seed {seed}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn every_value_once_in_input_order(
        inputs in prop::collection::vec(prop::collection::vec(0u64..3, 0..12), 0..5),
        caps in prop::collection::vec(0usize..3, 1..3),
        seed in 0u64..1_000_000,
    ) {
        check_laws(&inputs, &caps, seed);
    }
}

#[test]
fn the_laws_hold_over_1000_seeds() {
    let inputs = vec![vec![0, 0, 1, 0, 2], vec![1, 1, 0], vec![], vec![0; 15]];
    for seed in 0..1000 {
        check_laws(&inputs, &[0, 2], seed);
    }
}

/// `merge({})` is a closed channel; the output's capacity is 10; inputs closing at the very
/// instant another input's last value is sent: the output still closes after that value.
#[test]
fn edges_no_input_capacity_and_closes_at_one_instant() {
    let src = r#"
local empty = goroutine.merge({})
local v, ok = empty:receive()
assert(v == nil and ok == false)
assert(empty:cap() == 10)

local a, b = goroutine.channel(), goroutine.channel(1)
local out = goroutine.merge({a, b})
goroutine.spawn(function() goroutine.sleep(5); a:close() end)
goroutine.spawn(function() goroutine.sleep(5); b:send("last"); b:close() end)
local got = {}
out:range(function(v) got[#got + 1] = v end)
assert(#got == 1 and got[1] == "last")
assert(goroutine.now() == 5)

-- The output buffers 10 values before a forwarder waits.
local c = goroutine.channel(20)
for i = 1, 15 do c:send(i) end
c:close()
local o = goroutine.merge({c})
goroutine.sleep(1)
assert(o:len() == 10)
local n = 0
o:range(function() n = n + 1 end)
assert(n == 15)

-- Overflow channels merge too, and the merged output is receive-only.
local oc = goroutine.channel_with_overflow(2, "drop_oldest")
for i = 1, 3 do oc:send(i) end
oc:close()
local got2 = {}
goroutine.merge({oc}):range(function(v) got2[#got2 + 1] = v end)
assert(table.concat(got2, ",") == "2,3")
"#;
    common::expect_pass_on_seeds(src);
}

/// Seed 1.5's example, completed: three channels of capacity 10 merged and ranged over.
#[test]
fn the_seed_example_receives_from_every_channel() {
    let src = r#"
local ch1 = goroutine.channel(10)
local ch2 = goroutine.channel(10)
local ch3 = goroutine.channel(10)
local merged = goroutine.merge({ch1, ch2, ch3})
for i, ch in ipairs({ch1, ch2, ch3}) do
  goroutine.spawn(function() for j = 1, 3 do ch:send(i * 10 + j) end ch:close() end)
end
local seen = {}
merged:range(function(value) seen[#seen + 1] = value end)
assert(#seen == 9)
"#;
    common::expect_pass_on_seeds(src);
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    check_all(&[
        m(
            "",
            "goroutine.merge(42)",
            "goroutine.merge",
            "expects an array of channels",
        ),
        m("", "goroutine.merge()", "goroutine.merge", "(got nil)"),
        m(
            "",
            "goroutine.merge({goroutine.channel(), 'x'})",
            "goroutine.merge",
            "input 2 is not a channel (got string)",
        ),
        m(
            "",
            "goroutine.merge({goroutine.channel(1, 'send')})",
            "goroutine.merge",
            "input 1 is send-only",
        ),
        m(
            "local out = goroutine.merge({})",
            "out:send(1)",
            "channel:send",
            "receive-only",
        ),
    ]);
}

/// Channels created in Rust, fed by a Rust task, merged by Lua and read there.
#[test]
fn lua_and_rust_share_the_inputs() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(9);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let a: Channel<LuaValue> = sim.channel(0);
    let b: Channel<LuaValue> = sim.channel(0);
    world.expose("a", a.clone()).unwrap();
    world.expose("b", b.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
local sum = 0
goroutine.merge({a, b}):range(function(v) sum = sum + v end)
assert(sum == 1 + 2 + 3 + 4, sum)
"#,
        )
        .unwrap();
    sim.spawn("rust", async move {
        for i in [1, 3] {
            a.send(LuaValue(mlua::Value::Integer(i))).await.unwrap();
        }
        for i in [2, 4] {
            b.send(LuaValue(mlua::Value::Integer(i))).await.unwrap();
        }
        a.close();
        b.close();
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local a, b = goroutine.channel(), goroutine.channel()
local out = goroutine.merge({a, b})
goroutine.spawn(function() goroutine.sleep(5); a:send(1); a:close() end)
goroutine.spawn(function() goroutine.sleep(2); b:send(2); b:close() end)
local n = 0
out:range(function(v) n = n + v end)
assert(n == 3)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
