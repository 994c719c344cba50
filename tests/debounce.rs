//! Debounce (seed 1.3; lodash `debounce`, RxJS `debounceTime`): exact emission instants against
//! a model and the laws of `patterns.md` over generated inputs and >= 1,000 seeds; the lodash
//! regressions #2089 (with max_wait, a later burst must not emit on its leading edge) and #1964
//! (after the first burst, a single value is emitted once, not on both edges); es-toolkit#1494
//! (`leading = trailing = false` with max_wait emits nothing); exact instants (a gap of exactly
//! `ms` emits: decided and documented); close flushes; misuse; Lua/Rust sharing; a real run.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{DebounceOptions, debounce};
use gosim::sim::Sim;
use gosim::sync::Channel;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs a debounce over inputs `0..n` arriving at `times` (ms, sorted), the input closing at
/// `close`; returns the outputs as (value, ms).
fn run(
    times: &[u64],
    close: u64,
    wait: u64,
    opts: DebounceOptions,
    seed: u64,
) -> Vec<(usize, u64)> {
    common::forwarder::run_forwarder(times, close, seed, move |s, input| {
        debounce(s.runtime(), s, input, ms(wait), opts, None)
    })
}

/// The semantics, event by event: at one instant a deadline comes before an arrival.
fn model(times: &[u64], close: u64, wait: u64, o: DebounceOptions) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let mut i = 0;
    let mw = o.max_wait.map(|d| d.as_millis() as u64);
    'idle: loop {
        if i == times.len() {
            return out;
        }
        let (mut last, mut anchor) = (times[i], times[i]);
        let mut pending = None;
        if o.leading {
            out.push((i, times[i]));
        } else {
            pending = Some(i);
        }
        i += 1;
        loop {
            let quiet = last + wait;
            let until = mw.map_or(quiet, |m| quiet.min(anchor + m));
            let next = if i < times.len() { times[i] } else { close };
            if until <= next {
                if until >= quiet {
                    if let Some(p) = pending.take().filter(|_| o.trailing) {
                        out.push((p, until));
                    }
                    continue 'idle;
                }
                if !o.trailing {
                    continue 'idle;
                }
                if let Some(p) = pending.take() {
                    out.push((p, until));
                }
                anchor = until;
            } else if i < times.len() {
                last = times[i];
                pending = Some(i);
                i += 1;
            } else {
                if let Some(p) = pending.take().filter(|_| o.trailing) {
                    out.push((p, close));
                }
                return out;
            }
        }
    }
}

fn arrivals() -> impl Strategy<Value = (Vec<u64>, u64)> {
    (prop::collection::vec(0u64..40, 0..14), 0u64..60).prop_map(|(gaps, tail)| {
        let mut t = 0;
        let times: Vec<u64> = gaps
            .into_iter()
            .map(|g| {
                t += g;
                t
            })
            .collect();
        (times, t + tail)
    })
}

/// The laws for the default options, checked without the model: outputs are a subsequence of
/// the inputs in order; input i is emitted iff the next one comes >= ms later (a gap of exactly
/// ms emits, a shorter one never does), or it is the last; at last + ms, or at the close.
fn check_default_laws(times: &[u64], close: u64, wait: u64, got: &[(usize, u64)]) {
    assert!(got.len() <= times.len());
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "order kept");
    let mut expect = Vec::new();
    for i in 0..times.len() {
        match times.get(i + 1) {
            Some(&next) if next - times[i] >= wait => expect.push((i, times[i] + wait)),
            Some(_) => {}
            None => expect.push((i, (times[i] + wait).min(close))),
        }
    }
    assert_eq!(got, expect.as_slice(), "times {times:?} close {close}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn default_debounce_laws((times, close) in arrivals(), wait in 1u64..30, seed in 0u64..1_000_000) {
        let got = run(&times, close, wait, DebounceOptions::default(), seed);
        check_default_laws(&times, close, wait, &got);
    }

    #[test]
    fn every_option_matches_the_model(
        (times, close) in arrivals(),
        wait in 1u64..30,
        leading in any::<bool>(),
        trailing in any::<bool>(),
        max_wait in prop::option::of(1u64..40),
        capacity in 0usize..3,
        seed in 0u64..1_000_000,
    ) {
        let o = DebounceOptions { leading, trailing, max_wait: max_wait.map(ms), capacity };
        let got = run(&times, close, wait, o, seed);
        prop_assert_eq!(&got, &model(&times, close, wait, o));
        prop_assert!(got.len() <= times.len());
        prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        if !leading && !trailing {
            prop_assert!(got.is_empty());
        }
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let times = [0, 3, 10, 20, 21, 22, 40, 50, 51, 70];
    let close = 75;
    let d = DebounceOptions::default();
    let mw = DebounceOptions {
        max_wait: Some(ms(12)),
        leading: true,
        ..d
    };
    for seed in 0..1000 {
        let got = run(&times, close, 10, d, seed);
        check_default_laws(&times, close, 10, &got);
        assert_eq!(
            run(&times, close, 10, mw, seed),
            model(&times, close, 10, mw),
            "seed {seed}"
        );
    }
}

/// Exact instants: a gap of exactly `ms` emits (the quiet deadline fires before a value sent at
/// that instant); a gap of ms - 1 does not; ms + 1 does.
#[test]
fn a_gap_of_exactly_ms_emits() {
    let d = DebounceOptions::default();
    assert_eq!(run(&[0, 10], 30, 10, d, 1), vec![(0, 10), (1, 20)]);
    assert_eq!(run(&[0, 9], 30, 10, d, 1), vec![(1, 19)]);
    assert_eq!(run(&[0, 11], 30, 10, d, 1), vec![(0, 10), (1, 21)]);
    // The close at the instant of the deadline: the same value, at the same instant.
    assert_eq!(run(&[0], 10, 10, d, 1), vec![(0, 10)]);
    // The close before the deadline flushes at once.
    assert_eq!(run(&[0, 2], 5, 10, d, 1), vec![(1, 5)]);
}

/// lodash#2089: with max_wait (leading off), the first value of a *later* burst is not emitted
/// at once: it waits like the first burst's.
#[test]
fn lodash_2089_max_wait_never_turns_into_leading() {
    let o = DebounceOptions {
        max_wait: Some(ms(20)),
        ..DebounceOptions::default()
    };
    // Burst 1: 0..25 every 5 ms (forced at 20, trailing at 35); burst 2: a single value at 100.
    let times = [0, 5, 10, 15, 20, 25, 100];
    let got = run(&times, 200, 10, o, 3);
    assert_eq!(got, vec![(3, 20), (5, 35), (6, 110)]);
    assert!(!got.contains(&(6, 100)), "no leading-edge emission");
}

/// lodash#1964: after a first burst, a single value is emitted once (not on both edges), for
/// the default options and for leading + trailing.
#[test]
fn lodash_1964_a_single_value_is_emitted_once() {
    let d = DebounceOptions::default();
    assert_eq!(run(&[0, 5, 100], 200, 32, d, 1), vec![(1, 37), (2, 132)]);
    let lt = DebounceOptions { leading: true, ..d };
    // Leading and trailing: a lone value goes out once (leading); a burst of two, twice.
    assert_eq!(run(&[0, 100], 200, 32, lt, 1), vec![(0, 0), (1, 100)]);
    assert_eq!(
        run(&[0, 10, 100], 200, 32, lt, 1),
        vec![(0, 0), (1, 42), (2, 100)]
    );
}

/// es-toolkit#1494 / lodash: both edges off emits nothing, max_wait included.
#[test]
fn both_edges_off_emit_nothing() {
    let o = DebounceOptions {
        leading: false,
        trailing: false,
        max_wait: Some(ms(5)),
        capacity: 0,
    };
    assert!(run(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 30], 40, 10, o, 1).is_empty());
}

#[test]
fn lua_options_and_close() {
    common::expect_pass_on_seeds(
        r#"
local input = goroutine.channel(8)
local out = goroutine.debounce_channel(input, 10, {leading = true, capacity = 4})
input:send("a") input:send("b") input:send("c")
goroutine.sleep(30)
input:close()
local got = {}
out:range(function(v) got[#got + 1] = v end)   -- buffered: a (leading) and c (trailing) wait there
assert(table.concat(got, " ") == "a c", table.concat(got, " "))
-- The output is gosim's: receive-only.
local ok, err = pcall(function() out:send(1) end)
assert(not ok and err:find("receive%-only"), err)
-- An empty input that closes: the output closes, nothing emitted.
local e = goroutine.channel()
local o2 = goroutine.debounce_channel(e, 5)
e:close()
local v, more = o2:receive()
assert(v == nil and more == false)
"#,
    );
}

/// Lua sends, a Rust task debounces and receives: one channel shared by both.
#[test]
fn lua_and_rust_share_the_channels() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let input: Channel<LuaValue> = Channel::new(sim.runtime(), 0, None);
    world.expose("input", input.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
for i = 1, 3 do input:send(i) goroutine.sleep(1) end
goroutine.sleep(20)
input:send(4)
input:close()
"#,
        )
        .unwrap();
    let out = debounce(
        sim.runtime(),
        &sim,
        input,
        ms(10),
        DebounceOptions::default(),
        None,
    );
    let got = Rc::new(RefCell::new(Vec::new()));
    let (s, got2) = (sim.clone(), got.clone());
    sim.spawn("rust", async move {
        while let Some(v) = out.recv().await {
            got2.borrow_mut()
                .push((gosim::lua::describe(&v.0), s.now().as_millis()));
        }
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(
        *got.borrow(),
        vec![("3".to_string(), 12), ("4".to_string(), 23)]
    );
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const S: &str = "local ch, tx = goroutine.channel(), goroutine.channel(1, 'send')";
    check_all(&[
        m(
            S,
            "goroutine.debounce_channel(3, 10)",
            "goroutine.debounce_channel",
            "expects a channel (got 3)",
        ),
        m(
            S,
            "goroutine.debounce_channel(tx, 10)",
            "goroutine.debounce_channel",
            "send-only",
        ),
        m(
            S,
            "goroutine.debounce_channel(ch, 0)",
            "goroutine.debounce_channel",
            "positive number of milliseconds (got 0)",
        ),
        m(
            S,
            "goroutine.debounce_channel(ch, -5)",
            "goroutine.debounce_channel",
            "(got -5)",
        ),
        m(
            S,
            "goroutine.debounce_channel(ch, 'x')",
            "goroutine.debounce_channel",
            "(got \"x\")",
        ),
        m(
            S,
            "goroutine.debounce_channel(ch, 10, 5)",
            "goroutine.debounce_channel",
            "options must be a table",
        ),
        m(
            S,
            "goroutine.debounce_channel(ch, 10, {leading = 1})",
            "goroutine.debounce_channel",
            "leading must be a boolean",
        ),
        m(
            S,
            "goroutine.debounce_channel(ch, 10, {capacity = -1})",
            "goroutine.debounce_channel",
            "capacity must be a non-negative integer",
        ),
        m(
            S,
            "goroutine.debounce_channel(ch, 10, {max_wait = 0})",
            "goroutine.debounce_channel",
            "max_wait must be a positive number",
        ),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local input = goroutine.channel()
local out = goroutine.debounce_channel(input, 20)
goroutine.spawn(function()
  for i = 1, 3 do input:send(i) goroutine.sleep(2) end
  goroutine.sleep(60)
  input:send(4)
  input:close()
end)
local got = {}
out:range(function(v) got[#got + 1] = v end)
assert(table.concat(got, ",") == "3,4", table.concat(got, ","))
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
