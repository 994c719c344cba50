//! Throttle (seed 1.3; RxJS `throttleTime`): exact emission instants against a model and the
//! laws of `patterns.md` (emitted values are >= ms apart; the first input of each window is
//! emitted at its arrival time) over generated inputs and >= 1,000 seeds; lodash#1964 (after the
//! first window, a single value is emitted once, never again at the window's end); exact
//! instants (a value exactly `ms` after the last emission opens a new window: decided and
//! documented); close flushes a trailing value; misuse; Lua/Rust sharing; a real run.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{ThrottleOptions, throttle};
use gosim::sim::Sim;
use gosim::sync::Channel;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs a throttle over inputs `0..n` arriving at `times` (ms, sorted), the input closing at
/// `close`; returns the outputs as (value, ms).
fn run(
    times: &[u64],
    close: u64,
    wait: u64,
    opts: ThrottleOptions,
    seed: u64,
) -> Vec<(usize, u64)> {
    common::forwarder::run_forwarder(times, close, seed, move |s, input| {
        throttle(s.runtime(), s, input, ms(wait), opts, None)
    })
}

/// The semantics, event by event: at one instant a window's end comes before an arrival.
fn model(times: &[u64], close: u64, wait: u64, o: ThrottleOptions) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let mut i = 0;
    'idle: loop {
        if i == times.len() {
            return out;
        }
        out.push((i, times[i]));
        let mut opened = times[i];
        i += 1;
        let mut pending = None;
        loop {
            let end = opened + wait;
            let next = if i < times.len() { times[i] } else { close };
            if end <= next {
                match pending.take() {
                    Some(p) => {
                        out.push((p, end));
                        opened = end;
                    }
                    None => continue 'idle,
                }
            } else if i < times.len() {
                if o.trailing {
                    pending = Some(i);
                }
                i += 1;
            } else {
                if let Some(p) = pending.take() {
                    out.push((p, close));
                }
                return out;
            }
        }
    }
}

fn arrivals() -> impl Strategy<Value = (Vec<u64>, u64)> {
    (prop::collection::vec(0u64..25, 0..16), 0u64..60).prop_map(|(gaps, tail)| {
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

/// The laws without the model (trailing off): input i is emitted iff it comes >= ms after the
/// last emission, and then at its arrival time; emissions are >= ms apart.
fn check_laws(times: &[u64], wait: u64, got: &[(usize, u64)]) {
    let mut expect = Vec::new();
    let mut last: Option<u64> = None;
    for (i, &t) in times.iter().enumerate() {
        if last.is_none_or(|l| t >= l + wait) {
            expect.push((i, t));
            last = Some(t);
        }
    }
    assert_eq!(got, expect.as_slice(), "times {times:?}");
    assert!(
        got.windows(2).all(|w| w[1].1 >= w[0].1 + wait),
        ">= ms apart"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn throttle_laws((times, close) in arrivals(), wait in 1u64..30, seed in 0u64..1_000_000) {
        let got = run(&times, close, wait, ThrottleOptions::default(), seed);
        check_laws(&times, wait, &got);
    }

    #[test]
    fn trailing_matches_the_model(
        (times, close) in arrivals(),
        wait in 1u64..30,
        trailing in any::<bool>(),
        capacity in 0usize..3,
        seed in 0u64..1_000_000,
    ) {
        let o = ThrottleOptions { trailing, capacity };
        let got = run(&times, close, wait, o, seed);
        prop_assert_eq!(&got, &model(&times, close, wait, o));
        // >= ms apart, except a trailing value flushed by the close.
        let n = got.len();
        for (k, w) in got.windows(2).enumerate() {
            let flushed = k + 2 == n && w[1].1 == close && trailing;
            prop_assert!(flushed || w[1].1 >= w[0].1 + wait);
        }
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let times = [0, 3, 10, 20, 21, 22, 40, 50, 51, 70];
    let tr = ThrottleOptions {
        trailing: true,
        capacity: 0,
    };
    for seed in 0..1000 {
        let got = run(&times, 90, 10, ThrottleOptions::default(), seed);
        check_laws(&times, 10, &got);
        assert_eq!(
            run(&times, 90, 10, tr, seed),
            model(&times, 90, 10, tr),
            "seed {seed}"
        );
    }
}

/// Exact instants: a value exactly `ms` after the last emission opens a new window (emitted);
/// one at ms - 1 is dropped.
#[test]
fn a_value_exactly_ms_later_opens_a_new_window() {
    let d = ThrottleOptions::default();
    assert_eq!(run(&[0, 10], 30, 10, d, 1), vec![(0, 0), (1, 10)]);
    assert_eq!(run(&[0, 9], 30, 10, d, 1), vec![(0, 0)]);
    // Trailing: the trailing value goes out at the window's end and opens the next window.
    let t = ThrottleOptions {
        trailing: true,
        capacity: 0,
    };
    assert_eq!(
        run(&[0, 5, 12, 15], 40, 10, t, 1),
        vec![(0, 0), (1, 10), (3, 20)]
    );
}

/// lodash#1964: after the first window, a single value goes out once (at arrival), never again
/// at the window's end, with trailing on.
#[test]
fn lodash_1964_a_single_value_is_emitted_once() {
    let t = ThrottleOptions {
        trailing: true,
        capacity: 0,
    };
    assert_eq!(
        run(&[0, 20, 40], 100, 32, t, 1),
        vec![(0, 0), (1, 32), (2, 64)]
    );
    assert_eq!(run(&[0, 100], 200, 32, t, 1), vec![(0, 0), (1, 100)]);
}

#[test]
fn close_flushes_a_trailing_value() {
    let t = ThrottleOptions {
        trailing: true,
        capacity: 0,
    };
    assert_eq!(run(&[0, 3], 5, 10, t, 1), vec![(0, 0), (1, 5)]);
    assert_eq!(
        run(&[0, 3], 5, 10, ThrottleOptions::default(), 1),
        vec![(0, 0)]
    );
}

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
for i = 1, 6 do input:send(i) goroutine.sleep(4) end
input:close()
"#,
        )
        .unwrap();
    let out = throttle(
        sim.runtime(),
        &sim,
        input,
        ms(10),
        ThrottleOptions::default(),
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
        vec![("1".to_string(), 0), ("4".to_string(), 12)]
    );
}

#[test]
fn lua_options() {
    common::expect_pass_on_seeds(
        r#"
local input = goroutine.channel()
local out = goroutine.throttle_channel(input, 10, {trailing = true, capacity = 2})
goroutine.spawn(function()
  input:send("a") input:send("b") input:send("c")
  goroutine.sleep(50)
  input:close()
end)
local got = {}
out:range(function(v) got[#got + 1] = v end)
assert(table.concat(got, " ") == "a c", table.concat(got, " "))
"#,
    );
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const S: &str = "local ch, tx = goroutine.channel(), goroutine.channel(1, 'send')";
    check_all(&[
        m(
            S,
            "goroutine.throttle_channel(nil, 10)",
            "goroutine.throttle_channel",
            "expects a channel (got nil)",
        ),
        m(
            S,
            "goroutine.throttle_channel(tx, 10)",
            "goroutine.throttle_channel",
            "send-only",
        ),
        m(
            S,
            "goroutine.throttle_channel(ch, -1)",
            "goroutine.throttle_channel",
            "positive number of milliseconds (got -1)",
        ),
        m(
            S,
            "goroutine.throttle_channel(ch)",
            "goroutine.throttle_channel",
            "(got nil)",
        ),
        m(
            S,
            "goroutine.throttle_channel(ch, 10, {trailing = 'yes'})",
            "goroutine.throttle_channel",
            "trailing must be a boolean",
        ),
        m(
            S,
            "goroutine.throttle_channel(ch, 10, {capacity = 1.5})",
            "goroutine.throttle_channel",
            "capacity must be a non-negative integer",
        ),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local input = goroutine.channel()
local out = goroutine.throttle_channel(input, 40)
goroutine.spawn(function()
  input:send(1) input:send(2)
  goroutine.sleep(80)
  input:send(3)
  input:close()
end)
local got = {}
out:range(function(v) got[#got + 1] = v end)
assert(table.concat(got, ",") == "1,3", table.concat(got, ","))
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
