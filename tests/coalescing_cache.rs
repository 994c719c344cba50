//! The coalescing cache (seed 7.4): its laws across many seeds and generated workloads, the test
//! cases of its references ported (golang.org/x/sync/singleflight's `singleflight_test.go`:
//! TestDo, TestDoErr, TestDoDupSuppress, TestForget with golang/go#31420 — a Forget during a
//! flight must not let the old flight remove the new one —, TestPanicDo; Guava's
//! `CacheExpirationTest`/`CacheLoadingTest`: expireAfterWrite at exact instants, a failed load
//! is not cached), `ttl = 0`, join timeouts, a cancelled Rust load, the wait-for graph (a
//! loader that waits on its own key is a deadlock, never a false cycle), misuse, one cache
//! shared by Lua and Rust, and a real run.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{CacheError, CoalescingCache};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One get: after `gap` ms, get `key`.
#[derive(Debug, Clone, Copy)]
struct GetSpec {
    gap: u64,
    key: u32,
}

fn get_spec() -> impl Strategy<Value = GetSpec> {
    (0u64..15, 0u32..3).prop_map(|(gap, key)| GetSpec { gap, key })
}

#[derive(Debug, Clone)]
struct Load {
    key: u32,
    start: Duration,
    end: Option<Duration>,
    ok: bool,
}

#[derive(Default)]
struct Log {
    loads: Vec<Load>,
    in_flight: BTreeSet<u32>,
    /// (key, called at, returned at, result: load number or error's load number).
    gets: Vec<(u32, Duration, Duration, Result<usize, usize>)>,
}

/// The laws on one run: one loader per key in flight; every caller gets the result of a load of
/// its key that was in flight when it called (and returns when that load ends), or a fresh
/// cached value (`now − t' < ttl`, t' the load's end); errors are never served from cache (only
/// to callers of the failing flight); a load starts only when no fresh entry and no flight
/// exist.
fn check_laws(ttl: u64, work: u64, fail_every: usize, tasks: &[Vec<GetSpec>], seed: u64) {
    let sim = Sim::with_seed(seed);
    let log = Rc::new(RefCell::new(Log::default()));
    let (s, log2) = (sim.clone(), log.clone());
    let tasks = tasks.to_vec();
    let report = sim.run(async move {
        let (s2, log3) = (s.clone(), log2.clone());
        let cache: CoalescingCache<u32, usize> = CoalescingCache::with_loader(
            s.runtime(),
            ms(ttl),
            move |key: u32| {
                let (s3, log4) = (s2.clone(), log3.clone());
                async move {
                    let n = {
                        let mut l = log4.borrow_mut();
                        assert!(l.in_flight.insert(key), "two loaders of key {key}");
                        l.loads.push(Load {
                            key,
                            start: s3.now(),
                            end: None,
                            ok: false,
                        });
                        l.loads.len() - 1
                    };
                    s3.sleep(ms(work)).await;
                    let mut l = log4.borrow_mut();
                    l.in_flight.remove(&key);
                    let ok = fail_every == 0 || n % fail_every != fail_every - 1;
                    l.loads[n].end = Some(s3.now());
                    l.loads[n].ok = ok;
                    if ok { Ok(n) } else { Err(format!("fail#{n}")) }
                }
            },
            None,
        );
        let mut hs = Vec::new();
        for gets in tasks {
            let (s5, c5, log5) = (s.clone(), cache.clone(), log2.clone());
            hs.push(s.go(async move {
                for g in gets {
                    s5.sleep(ms(g.gap)).await;
                    let at = s5.now();
                    let r = c5.get(g.key, None).await;
                    let r = match r {
                        Ok(n) => Ok(n),
                        Err(CacheError::Failed(m)) => Err(m[5..].parse().unwrap()),
                        Err(CacheError::Timeout) => panic!("no timeout was asked"),
                    };
                    log5.borrow_mut().gets.push((g.key, at, s5.now(), r));
                }
            }));
        }
        s.join_all(&hs).await;
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let l = log.borrow();
    let ttl = ms(ttl);
    for (key, at, back, r) in &l.gets {
        let (n, ok) = match r {
            Ok(n) => (*n, true),
            Err(n) => (*n, false),
        };
        let load = &l.loads[n];
        let end = load.end.unwrap();
        assert_eq!(load.key, *key, "seed {seed}: a value of another key");
        assert_eq!(load.ok, ok);
        let joined = load.start <= *at && *at <= end && *back == end;
        if !joined {
            assert!(
                ok,
                "seed {seed}: an error served from cache: {r:?} at {at:?}"
            );
            assert!(
                end <= *at && *at - end < ttl && *back == *at,
                "seed {seed}: stale value: load {n} ended {end:?}, get at {at:?}, ttl {ttl:?}"
            );
        }
    }
    // A load starts only when no fresh entry and no flight of its key exist.
    for (i, a) in l.loads.iter().enumerate() {
        for (j, b) in l.loads.iter().enumerate() {
            if i == j || a.key != b.key {
                continue;
            }
            let b_end = b.end.unwrap();
            if j < i {
                assert!(
                    a.start >= b_end,
                    "seed {seed}: loads {j} and {i} of one key overlap"
                );
                assert!(
                    !(b.ok && a.start - b_end < ttl),
                    "seed {seed}: load {i} started while load {j}'s entry was fresh"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn one_flight_per_key_and_fresh_values(
        ttl in 0u64..40,
        work in 0u64..12,
        fail_every in 0usize..4,
        tasks in prop::collection::vec(prop::collection::vec(get_spec(), 1..8), 1..6),
        seed in 0u64..1_000_000,
    ) {
        check_laws(ttl, work, fail_every, &tasks, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let tasks: Vec<Vec<GetSpec>> = (0..5)
        .map(|t| {
            (0..6)
                .map(|i| GetSpec {
                    gap: ((t * 3 + i * 5) % 7) as u64,
                    key: ((t + i) % 2) as u32,
                })
                .collect()
        })
        .collect();
    for seed in 0..1000 {
        check_laws(if seed % 3 == 0 { 0 } else { 10 }, 4, 3, &tasks, seed);
    }
}

/// singleflight's TestDo, TestDoErr and TestDoDupSuppress: one caller gets the value; an error
/// is returned as is; many concurrent callers of one key cause one call and all get its
/// result. TestPanicDo: a loader that raises gives every caller of its flight the error (the
/// callers' goroutines do not die), and nothing is cached.
#[test]
fn singleflight_do_err_dup_suppress_and_panic() {
    common::expect_pass_on_seeds(
        r#"
local calls = 0
local c = goroutine.coalescing_cache{ttl = 0, loader = function(key)
  calls = calls + 1
  if key == "err" then return nil, "some error" end
  if key == "panic" then goroutine.sleep(5) error("invalid memory address") end
  goroutine.sleep(10)
  return "bar"
end}
-- TestDo
assert(c:get("key") == "bar" and calls == 1)
-- TestDoErr
local v, err = c:get("err")
assert(v == nil and err == "some error")
-- TestDoDupSuppress: 10 callers while the call is blocked: one call.
calls = 0
local wg, got = goroutine.wait_group(), {}
for i = 1, 10 do
  wg:add(1)
  goroutine.spawn(function() local v1 = c:get("key") got[#got + 1] = v1 wg:done() end)
end
wg:wait()
assert(calls == 1 and #got == 10, calls)
for _, g in ipairs(got) do assert(g == "bar") end
-- TestPanicDo: every caller of the flight gets the error, their goroutines go on.
local errs = {}
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn(function()
    local v2, e2 = c:get("panic")
    assert(v2 == nil)
    errs[#errs + 1] = e2
    wg:done()
  end)
end
wg:wait()
assert(#errs == 3 and errs[1]:find("invalid memory address") and errs[1] == errs[2] and errs[2] == errs[3])
assert(c:stats().errors == 2 and c:stats().entries == 0)
"#,
    );
}

/// singleflight's TestForget and golang/go#31420: `forget` during a flight detaches it; the
/// next get starts a second flight; when the first flight finishes it must neither remove the
/// second flight (a third get still joins the second) nor cache its value.
#[test]
fn forget_during_a_flight_golang_go_31420() {
    common::expect_pass_on_seeds(
        r#"
local n = 0
local c = goroutine.coalescing_cache{ttl = 1000, loader = function(key)
  n = n + 1
  local mine = n
  goroutine.sleep(mine == 1 and 10 or 20)
  return mine
end}
local first
goroutine.spawn(function() first = c:get("k") end)     -- flight 1: t=0..10
goroutine.sleep(1)
c:forget("k")
local second
goroutine.spawn(function() second = c:get("k") end)    -- flight 2: t=1..21
goroutine.sleep(14)                                      -- t=15: flight 1 has finished
assert(first == 1)
local third = c:get("k")                                 -- joins flight 2, no third call
goroutine.sleep(1)
assert(third == 2 and second == 2 and n == 2, tostring(third))
assert(c:get("k") == 2 and n == 2)                       -- flight 2's value is cached
assert(c:stats().joins == 1 and c:stats().loads == 2)
c:forget("k")
assert(c:get("k") == 3)                                  -- forgotten entry: loads again
"#,
    );
}

/// Guava's expireAfterWrite at exact instants: the entry's time is when its load finished; it
/// is served while now − t' < ttl, so at exactly ttl it is stale; a failed load is never cached;
/// `ttl = 0` coalesces without caching.
#[test]
fn ttl_at_exact_instants_and_errors_are_never_cached() {
    common::expect_pass_on_seeds(
        r#"
local n = 0
local c = goroutine.coalescing_cache{ttl = 100, loader = function(key)
  n = n + 1
  goroutine.sleep(30)
  if key == "bad" and n < 4 then error("down") end
  return key .. n
end}
assert(c:get("a") == "a1" and goroutine.now() == 30)    -- loaded at t' = 30
goroutine.sleep(99)
assert(c:get("a") == "a1" and n == 1)                    -- t = 129: 99 < 100, a hit
goroutine.sleep(1)
assert(c:get("a") == "a2" and n == 2)                    -- t = 130: exactly ttl, loaded again
assert(goroutine.now() == 160)
local v, err = c:get("bad")
assert(v == nil and err:find("down"))
v, err = c:get("bad")                                     -- not cached: loads again
assert(v == "bad4" and n == 4, n)
local z = 0
local c0 = goroutine.coalescing_cache{ttl = 0, loader = function()
  z = z + 1
  goroutine.sleep(10)
  return z
end}
local r = {}
goroutine.spawn(function() r[1] = c0:get(1) end)
goroutine.spawn(function() r[2] = c0:get(1.0) end)       -- 1.0 is the key 1, as in a table
goroutine.sleep(11)
assert(r[1] == 1 and r[2] == 1 and z == 1)               -- coalesced
assert(c0:get(1) == 2 and c0:stats().entries == 0)       -- never cached
"#,
    );
}

/// A joined caller's timeout: it gets `nil, "timeout"` at its deadline (`0`: at once), leaves
/// the flight, and the flight goes on for the others and is cached; the loading caller itself
/// has no timeout.
#[test]
fn a_joined_caller_times_out_and_the_flight_goes_on() {
    common::expect_pass_on_seeds(
        r#"
local c = goroutine.coalescing_cache{ttl = 1000, loader = function(key)
  goroutine.sleep(50)
  return "v"
end}
local loader_got
goroutine.spawn(function() loader_got = c:get("k", 1) end)   -- runs the loader: no timeout
goroutine.sleep(1)
local v, err = c:get("k", 10)
assert(v == nil and err == "timeout" and goroutine.now() == 11)
v, err = c:get("k", 0)
assert(v == nil and err == "timeout")
assert(c:get("k") == "v" and goroutine.now() == 50)
goroutine.sleep(1)
assert(loader_got == "v")
"#,
    );
}

/// A Rust load whose future is dropped before it finishes (its task panicked) fails its flight
/// with "load cancelled", so joined callers never wait forever; the next get loads again.
#[test]
fn a_cancelled_rust_load_fails_its_flight() {
    let sim = Sim::with_seed(3);
    let s = sim.clone();
    let report = sim.run(async move {
        let cache: CoalescingCache<u32, u32> = CoalescingCache::new(s.runtime(), ms(100), None);
        let (c1, s1) = (cache.clone(), s.clone());
        let h = s.go(async move {
            c1.get_with(1, None, |_| async move {
                s1.sleep(ms(10)).await;
                panic!("loader task dies");
            })
            .await
        });
        s.sleep(ms(1)).await;
        let r = cache.get_with(1, None, |_| async { Ok(7) }).await;
        assert_eq!(r, Err(CacheError::Failed("load cancelled".into())));
        assert!(h.join().await.is_err());
        assert_eq!(cache.get_with(1, None, |_| async { Ok(7) }).await, Ok(7));
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}

/// A loader that gets its own key joins its own flight: a real deadlock, reported naming the
/// cache, never as a wait-for cycle (a joined wait is released by anyone).
#[test]
fn a_loader_waiting_on_its_own_key_is_a_deadlock_not_a_false_cycle() {
    let r = common::run(
        r#"
local c
c = goroutine.coalescing_cache{ttl = 10, loader = function(key) return c:get(key) end}
c:get("k")
"#,
        1,
    );
    let text = r.outcome.to_string();
    assert!(!r.outcome.is_pass(), "{text}");
    assert!(text.contains("coalescing_cache"), "{text}");
    assert!(!text.contains("cycle"), "{text}");
}

#[test]
fn lua_and_rust_share_one_cache() {
    use gosim::lua::{LuaKey, LuaLimits, LuaValue, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let loads = Rc::new(RefCell::new(0));
    let (l2, s2) = (loads.clone(), sim.clone());
    let cache: CoalescingCache<LuaKey, LuaValue> = CoalescingCache::with_loader(
        sim.runtime(),
        ms(1000),
        move |k: LuaKey| {
            let (l3, s3) = (l2.clone(), s2.clone());
            async move {
                *l3.borrow_mut() += 1;
                s3.sleep(ms(20)).await;
                match k {
                    LuaKey::Int(i) => Ok(LuaValue(mlua::Value::Integer(i * 10))),
                    _ => Err("only integers".to_string()),
                }
            }
        },
        None,
    );
    world.expose("cache", cache.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
assert(cache:get(4) == 40)
local v, err = cache:get("x")
assert(v == nil and err == "only integers")
assert(cache:get(4) == 40)
"#,
        )
        .unwrap();
    let c2 = cache.clone();
    sim.spawn("rust", async move {
        let v = c2.get(LuaKey::Int(4), None).await.unwrap();
        assert!(matches!(v.0, mlua::Value::Integer(40)));
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(
        *loads.borrow(),
        2,
        "Lua and Rust joined one flight for key 4"
    );
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const S: &str =
        "local c = goroutine.coalescing_cache{ttl = 10, loader = function(k) return k end}";
    check_all(&[
        m(
            "",
            "goroutine.coalescing_cache(3)",
            "goroutine.coalescing_cache",
            "options must be a table (got 3)",
        ),
        m(
            "",
            "goroutine.coalescing_cache{ttl = 10}",
            "goroutine.coalescing_cache",
            "loader must be a function (got nil)",
        ),
        m(
            "",
            "goroutine.coalescing_cache{loader = print}",
            "goroutine.coalescing_cache",
            "ttl must be a non-negative number of milliseconds (got nil)",
        ),
        m(
            "",
            "goroutine.coalescing_cache{ttl = -1, loader = print}",
            "goroutine.coalescing_cache",
            "(got -1)",
        ),
        m(
            S,
            "c:get({})",
            "coalescing_cache:get",
            "key must be a string, a number or a boolean (got table)",
        ),
        m(S, "c:get(nil)", "coalescing_cache:get", "(got nil)"),
        m(S, "c:get(0/0)", "coalescing_cache:get", "(got NaN)"),
        m(
            S,
            "c:get('k', 'soon')",
            "coalescing_cache:get",
            "(got \"soon\")",
        ),
        m(S, "c:forget({})", "coalescing_cache:forget", "key must be"),
        m(
            S,
            "c.stats(1)",
            "coalescing_cache:stats",
            "expects a coalescing_cache",
        ),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local n = 0
local c = goroutine.coalescing_cache{ttl = 5000, loader = function(k)
  n = n + 1
  goroutine.sleep(20)
  return k * 2
end}
local wg = goroutine.wait_group()
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn(function() assert(c:get(21) == 42) wg:done() end)
end
wg:wait()
assert(n == 1 and c:get(21) == 42 and n == 1)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
