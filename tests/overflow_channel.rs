//! The overflow channel (seed 1.1; ref: Kotlin channels' `BufferOverflow`, whose tests
//! `BufferedChannelTest`/`ConflatedChannelTest` give the drop cases): its laws over generated
//! workloads and 1,000 seeds, exact-instant edges, close (never a crash), select, misuse,
//! Lua/Rust sharing and real mode.
//!
//! Laws: `len <= cap` always; `block` and `error` lose nothing and deliver each accepted value
//! once, in order; `drop_oldest` delivers an order-preserving subsequence that ends with the
//! last `min(cap, pending)` values (every one of the last `cap` values sent is delivered, and
//! delivered + evicted = sent); `drop_newest` delivers exactly the values whose send did not
//! report "dropped", in order, the first `cap` always among them.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{OverflowChannel, OverflowStrategy, SendOutcome};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const STRATEGIES: [OverflowStrategy; 4] = [
    OverflowStrategy::Block,
    OverflowStrategy::DropOldest,
    OverflowStrategy::DropNewest,
    OverflowStrategy::Error,
];

/// One producer sends `0..n` with `send_gaps`, then closes; one consumer receives with
/// `recv_gaps` until closed. Checks every law.
fn check_laws(
    strategy: OverflowStrategy,
    cap: usize,
    n: u64,
    send_gaps: &[u64],
    recv_gaps: &[u64],
    seed: u64,
) {
    let sim = Sim::with_seed(seed);
    let ch: OverflowChannel<u64> = OverflowChannel::new(sim.runtime(), cap, strategy, None);
    let outcomes: Rc<RefCell<Vec<SendOutcome>>> = Rc::default();
    let got: Rc<RefCell<Vec<u64>>> = Rc::default();
    let max_len = Rc::new(std::cell::Cell::new(0usize));
    let s = sim.clone();
    let (ch2, out2, got2, max2) = (ch.clone(), outcomes.clone(), got.clone(), max_len.clone());
    let (sg, rg) = (send_gaps.to_vec(), recv_gaps.to_vec());
    let report = sim.run(async move {
        let (s2, ch3, out3, max3) = (s.clone(), ch2.clone(), out2.clone(), max2.clone());
        s.spawn("producer", async move {
            for v in 0..n {
                s2.sleep(ms(sg[v as usize % sg.len()])).await;
                let o = ch3.send(v, None).await;
                out3.borrow_mut().push(o);
                max3.set(max3.get().max(ch3.len()));
            }
            ch3.close();
            // Close never crashes: a send after it is an outcome.
            assert_eq!(ch3.send(99, None).await, SendOutcome::Closed);
        });
        let mut i = 0;
        while let Some(v) = ch2.recv().await {
            got2.borrow_mut().push(v);
            max2.set(max2.get().max(ch2.len()));
            s.sleep(ms(rg[i % rg.len()])).await;
            i += 1;
        }
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let (outcomes, got) = (outcomes.borrow(), got.borrow());
    let ctx =
        format!("seed {seed} {strategy:?} cap {cap} n {n}: outcomes {outcomes:?} got {got:?}");
    assert!(max_len.get() <= cap, "len <= cap: {ctx}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "order: {ctx}");
    let accepted: Vec<u64> = (0..n)
        .filter(|&v| outcomes[v as usize] == SendOutcome::Sent)
        .collect();
    match strategy {
        OverflowStrategy::Block => {
            assert!(outcomes.iter().all(|o| *o == SendOutcome::Sent), "{ctx}");
            assert_eq!(*got, (0..n).collect::<Vec<_>>(), "{ctx}");
        }
        OverflowStrategy::Error => {
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, SendOutcome::Sent | SendOutcome::Full)),
                "{ctx}"
            );
            assert_eq!(*got, accepted, "each accepted value once: {ctx}");
        }
        OverflowStrategy::DropNewest => {
            assert_eq!(*got, accepted, "{ctx}");
            let first = (cap as u64).min(n);
            assert!((0..first).all(|v| got.contains(&v)), "first cap: {ctx}");
        }
        OverflowStrategy::DropOldest => {
            assert!(outcomes.iter().all(|o| *o == SendOutcome::Sent), "{ctx}");
            let last = (cap as u64).min(n);
            assert!(
                (n - last..n).all(|v| got.contains(&v)),
                "ends with the last cap: {ctx}"
            );
            assert_eq!(
                got.len() as u64 + ch.evicted(),
                n,
                "delivered + evicted: {ctx}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn laws_over_generated_workloads(
        s in 0usize..4,
        cap in 1usize..5,
        n in 0u64..30,
        send_gaps in prop::collection::vec(0u64..3, 1..5),
        recv_gaps in prop::collection::vec(0u64..5, 1..5),
        seed in 0u64..1_000_000,
    ) {
        check_laws(STRATEGIES[s], cap, n, &send_gaps, &recv_gaps, seed);
    }
}

#[test]
fn the_laws_hold_over_1000_seeds() {
    for seed in 0..1000 {
        let strategy = STRATEGIES[seed as usize % 4];
        check_laws(strategy, 3, 20, &[0, 1, 0], &[2, 0, 3], seed);
    }
    // Block with no buffer is a Go rendezvous channel.
    for seed in 0..50 {
        check_laws(OverflowStrategy::Block, 0, 10, &[0, 1], &[1], seed);
    }
}

/// The send results of `patterns.md`, exactly, and close never crashes.
#[test]
fn send_results_and_close() {
    let src = r#"
local o = goroutine.channel_with_overflow(2, "drop_oldest")
assert(o:send(1) == true and o:send(2) == true)
local ok, msg = o:send(3)
assert(ok == true and msg == nil)
assert(o:len() == 2 and o:cap() == 2 and o:strategy() == "drop_oldest")
assert(o:receive() == 2 and o:receive() == 3)

local n = goroutine.channel_with_overflow(1, "drop_newest")
assert(n:send("a") == true)
local ok2, msg2 = n:send("b")
assert(ok2 == true and msg2 == "dropped")
assert(n:receive() == "a" and n:len() == 0)

local e = goroutine.channel_with_overflow(1, "error")
assert(e:send("a") == true)
local ok3, msg3 = e:send("b")
assert(ok3 == false and msg3 == "channel full" and e:len() == 1)

local b = goroutine.channel_with_overflow(1, "block")
assert(b:send(1))
local ok4, msg4 = b:send(2, 5)
assert(ok4 == false and msg4 == "timeout" and goroutine.now() == 5)

for _, c in ipairs({o, n, e, b}) do
  c:close()
  local okc, msgc = c:send(9)
  assert(okc == false and msgc == "send on closed channel")
  assert(select(2, c:close()) == "channel already closed")
end
-- receivers drain, then get nil, false
assert(e:receive() == "a")
assert(select(2, e:receive()) == false)
local rest = {}
b:range(function(v) rest[#rest + 1] = v end)
assert(#rest == 1 and rest[1] == 1)
"#;
    common::expect_pass_on_seeds(src);
}

/// An overflow channel is a receive case of `select` (and of `select_timeout`); a send case
/// would bypass its strategy, so it is misuse.
#[test]
fn it_can_be_a_select_receive_case() {
    let src = r#"
local o = goroutine.channel_with_overflow(1, "drop_oldest")
goroutine.spawn(function() goroutine.sleep(3); o:send("x"); o:send("y") end)
local got
goroutine.select({
  { channel = o, receive = true, handler = function(v) got = v end },
  { channel = goroutine.after(100), receive = true, handler = function() got = "late" end },
})
assert(got == "x" or got == "y", tostring(got))
local timed_out = goroutine.select_timeout(5, {
  { channel = o, receive = true },
})
"#;
    common::expect_pass_on_seeds(src);
}

/// Exact instant: a blocked send whose timeout falls on the instant a receiver frees room:
/// either outcome may happen (the seed decides), and the value is delivered iff the send says
/// `true`.
#[test]
fn timed_send_and_receive_at_the_same_instant() {
    let src = r#"
local b = goroutine.channel_with_overflow(1, "block")
b:send("first")
goroutine.spawn(function() goroutine.sleep(5); assert(b:receive() == "first") end)
local ok, err = b:send("second", 5)
assert(goroutine.now() == 5)
goroutine.sleep(1)
if ok then
  assert(b:len() == 1 and b:receive() == "second")
else
  assert(err == "timeout" and b:len() == 0)
end
"#;
    common::expect_pass_on_seeds(src);
}

/// `receive(timeout_ms)`: every blocking call takes a timeout; a timed-out receive takes
/// nothing and leaves the queue (the next value goes to the next receive).
#[test]
fn timed_receive() {
    let src = r#"
local o = goroutine.channel_with_overflow(1, "drop_oldest")
local v, ok, err = o:receive(5)
assert(v == nil and ok == false and err == "timeout" and goroutine.now() == 5)
goroutine.spawn(function() goroutine.sleep(2); o:send("x") end)
v, ok = o:receive(10)
assert(v == "x" and ok and goroutine.now() == 7)
o:send("y")
assert(o:receive(0) == "y")
o:close()
v, ok, err = o:receive(10)
assert(v == nil and ok == false and err == nil)
"#;
    common::expect_pass_on_seeds(src);
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const O: &str = "local o = goroutine.channel_with_overflow(2, 'error')";
    check_all(&[
        m(
            "",
            "goroutine.channel_with_overflow(-1, 'block')",
            "goroutine.channel_with_overflow",
            "(got -1)",
        ),
        m(
            "",
            "goroutine.channel_with_overflow(0, 'drop_oldest')",
            "goroutine.channel_with_overflow",
            "needs a capacity of at least 1",
        ),
        m(
            "",
            "goroutine.channel_with_overflow(2, 'bogus')",
            "goroutine.channel_with_overflow",
            "(got \"bogus\")",
        ),
        m(
            "",
            "goroutine.channel_with_overflow('x', 'block')",
            "goroutine.channel_with_overflow",
            "(got \"x\")",
        ),
        m(
            O,
            "o:send(1, 'soon')",
            "overflow_channel:send",
            "(got \"soon\")",
        ),
        m(
            O,
            "o.send(1)",
            "overflow_channel:send",
            "expects an overflow channel",
        ),
        m(
            O,
            "o:range(7)",
            "overflow_channel:range",
            "expects a function",
        ),
        m(
            O,
            "goroutine.select({{channel = o, send = 1}})",
            "goroutine.select",
            "expects a channel",
        ),
    ]);
}

/// One overflow channel created in Rust: a Rust task receives what Lua sends.
#[test]
fn lua_and_rust_share_one_channel() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(2);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let ch: OverflowChannel<LuaValue> =
        OverflowChannel::new(sim.runtime(), 2, OverflowStrategy::DropOldest, None);
    world.expose("ch", ch.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            "for i = 1, 5 do assert(ch:send(i)) end\nch:close()",
        )
        .unwrap();
    let got: Rc<RefCell<Vec<String>>> = Rc::default();
    let (s, got2) = (sim.clone(), got.clone());
    sim.spawn("rust", async move {
        s.sleep(ms(1)).await;
        while let Some(v) = ch.recv().await {
            got2.borrow_mut().push(gosim::lua::describe(&v.0));
        }
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(*got.borrow(), vec!["4", "5"]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local b = goroutine.channel_with_overflow(1, "block")
b:send(1)
local t0 = goroutine.now()
local ok, err = b:send(2, 20)
assert(not ok and err == "timeout" and goroutine.now() - t0 >= 20)
goroutine.spawn(function() goroutine.sleep(5); b:receive() end)
assert(b:send(3))
local d = goroutine.channel_with_overflow(1, "drop_oldest")
d:send(1); d:send(2)
assert(d:receive() == 2)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}

/// A blocked send nobody can end is reported with the channel's name; a timed one is not.
#[test]
fn a_send_nobody_ends_is_a_deadlock_with_names() {
    let r = common::run(
        "local o = goroutine.channel_with_overflow(1, 'block')\no:send(1)\no:send(2)",
        1,
    );
    assert!(!r.outcome.is_pass());
    let text = r.outcome.to_string();
    assert!(
        text.contains("block channel") || text.contains("channel#1"),
        "{text}"
    );
    assert!(text.contains("t.lua:3"), "{text}");
    common::expect_pass_on_seeds(
        "local o = goroutine.channel_with_overflow(1, 'block'); o:send(1); assert(o:send(2, 50) == false)",
    );
}
