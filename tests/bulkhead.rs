//! The bulkhead (seed 3.4): its laws across many seeds and generated workloads, the behaviour
//! of its reference at exact virtual instants, its misuse errors, the wait-for graph, one
//! bulkhead shared by Lua and Rust, and a real-time run.
//!
//! Cases follow resilience4j's `SemaphoreBulkheadTest` (calls permitted up to
//! maxConcurrentCalls, a call rejected at once with maxWaitDuration 0, a waiting call admitted
//! when a slot frees within maxWaitDuration and rejected when it does not, the permission
//! released after a failed call). resilience4j throws `BulkheadFullException`; gosim returns
//! `false, "bulkhead full: NAME"` (Rust: `Err(Full)`), and partitions are one bulkhead's named
//! semaphores instead of one bulkhead each.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{Bulkhead, Full, Partition};
use gosim::runtime::Subject;
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn sim_run<F, Fut>(seed: u64, body: F)
where
    F: FnOnce(Sim) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let sim = Sim::with_seed(seed);
    let fut = body(sim.clone());
    let report = sim.run(fut);
    assert!(
        report.outcome.is_pass(),
        "{}\n{}",
        report.outcome,
        report.trace_text()
    );
}

fn part(n: u64, wait: Option<u64>) -> Partition {
    Partition {
        max_concurrent: n,
        max_wait: wait.map(ms),
    }
}

/// Permitted up to max_concurrent; rejected at once beyond (max_wait 0); a failed call releases
/// its slot; a waiter with max_wait gets the slot freed in time, or is rejected at its deadline.
#[test]
fn resilience4j_semaphore_bulkhead_cases() {
    sim_run(1, |s| async move {
        let bh = Bulkhead::new(
            s.runtime(),
            &[("a", part(2, Some(0))), ("w", part(1, Some(10)))],
            None,
        );
        let wg = s.wait_group();
        for i in 0..2 {
            wg.add(1).unwrap();
            let (bh, s2, wg) = (bh.clone(), s.clone(), wg.clone());
            s.spawn(&format!("hold-{i}"), async move {
                bh.execute("a", || s2.sleep(ms(5))).await.unwrap();
                wg.add(-1).unwrap();
            });
        }
        s.sleep(ms(1)).await;
        assert_eq!(bh.in_flight("a").unwrap(), 2);
        let r = bh
            .execute("a", || async { unreachable!("rejected calls never run") })
            .await;
        assert_eq!(
            r,
            Err::<(), _>(Full {
                partition: "a".into()
            })
        );
        assert_eq!(s.now(), ms(1), "rejected at once");
        wg.wait().await;
        // A failing call gives its slot back.
        let r: Result<Result<(), &str>, Full> = bh.execute("a", || async { Err("boom") }).await;
        assert_eq!(r, Ok(Err("boom")));
        assert_eq!(bh.in_flight("a").unwrap(), 0);
        // max_wait: freed within it (at +8 of a 10 ms wait) -> admitted then.
        let (bh2, s2) = (bh.clone(), s.clone());
        s.spawn("holder", async move {
            bh2.execute("w", || s2.sleep(ms(8))).await.unwrap();
        });
        s.yield_now().await;
        s.sleep(Duration::ZERO).await;
        let t0 = s.now();
        bh.execute("w", || async {}).await.unwrap();
        assert!(s.now() - t0 <= ms(8));
        // Not freed within it -> rejected exactly at the deadline.
        let (bh2, s2) = (bh.clone(), s.clone());
        s.spawn("long", async move {
            bh2.execute("w", || s2.sleep(ms(30))).await.unwrap();
        });
        s.sleep(ms(1)).await;
        let t0 = s.now();
        assert!(bh.execute("w", || async {}).await.is_err());
        assert_eq!(s.now() - t0, ms(10));
        assert_eq!(
            bh.waiting("w").unwrap(),
            0,
            "the expired waiter left the queue"
        );
        s.sleep(ms(30)).await;
    });
}

// ---------------------------------------------------------------------------------------------
// Laws
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct CallSpec {
    start: u64,
    part: usize,
    dur: u64,
}

fn call_spec() -> impl Strategy<Value = CallSpec> {
    (0u64..30, 0usize..3, 0u64..12).prop_map(|(start, part, dur)| CallSpec { start, part, dur })
}

const NAMES: [&str; 3] = ["a", "b", "c"];

/// Laws on one run: in-flight(p) ≤ max_concurrent(p) at every instant; a call is rejected only
/// while its own partition is full (so partitions never affect each other); rejected calls
/// never run; every slot comes back.
fn check_laws(parts: &[Partition], calls: &[CallSpec], seed: u64) {
    let sim = Sim::with_seed(seed);
    let named: Vec<(&str, Partition)> = NAMES.iter().copied().zip(parts.iter().copied()).collect();
    let bh = Bulkhead::new(sim.runtime(), &named, None);
    let inflight: Rc<RefCell<BTreeMap<usize, u64>>> = Rc::default();
    let counts: Rc<RefCell<(u64, u64)>> = Rc::default(); // (ran, rejected)
    let s = sim.clone();
    let (bh2, inf2, c2) = (bh.clone(), inflight.clone(), counts.clone());
    let calls2: Vec<CallSpec> = calls
        .iter()
        .filter(|c| c.part < parts.len())
        .cloned()
        .collect();
    let maxes: Vec<u64> = parts.iter().map(|p| p.max_concurrent).collect();
    let n_calls = calls2.len() as u64;
    let report = sim.run(async move {
        let wg = s.wait_group();
        for (i, c) in calls2.into_iter().enumerate() {
            wg.add(1).unwrap();
            let (s2, bh, wg, inf, cnt) =
                (s.clone(), bh2.clone(), wg.clone(), inf2.clone(), c2.clone());
            let max = maxes[c.part];
            s.spawn(&format!("call-{i}"), async move {
                s2.sleep(ms(c.start)).await;
                let (inf3, s3, cnt3) = (inf.clone(), s2.clone(), cnt.clone());
                let r = bh
                    .execute(NAMES[c.part], || async move {
                        let now = {
                            let mut m = inf3.borrow_mut();
                            let e = m.entry(c.part).or_default();
                            *e += 1;
                            *e
                        };
                        assert!(now <= max, "in-flight {now} > {max}");
                        cnt3.borrow_mut().0 += 1;
                        s3.sleep(ms(c.dur)).await;
                        *inf3.borrow_mut().get_mut(&c.part).unwrap() -= 1;
                    })
                    .await;
                if r.is_err() {
                    cnt.borrow_mut().1 += 1;
                }
                wg.add(-1).unwrap();
            });
        }
        wg.wait().await;
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let (ran, rejected) = *counts.borrow();
    assert_eq!(
        ran + rejected,
        n_calls,
        "seed {seed}: each call ran or was rejected"
    );
    for name in &NAMES[..parts.len()] {
        assert_eq!(bh.in_flight(name).unwrap(), 0, "every slot came back");
    }
    // From the trace: each partition's holders, and every rejection happening while the
    // rejected call's own partition was full.
    let res: Vec<String> = NAMES[..parts.len()]
        .iter()
        .map(|n| bh.partition_resource(n).unwrap().to_string())
        .collect();
    let mut held = vec![0u64; parts.len()];
    // What each refused call saw when its partition refused it (a refused try, or its wait's
    // deadline), checked at its "reject" (which it emits when it runs again).
    let mut seen_full: BTreeMap<u64, bool> = BTreeMap::new();
    let mut rejects = 0;
    for e in &report.events {
        let Subject::Resource(r) = e.subject() else {
            continue;
        };
        let r = r.to_string();
        if let Some(p) = res.iter().position(|x| *x == r) {
            match e.verb {
                "acquire" => held[p] += 1,
                "release" => held[p] -= 1,
                "try_acquire" | "timeout" => {
                    seen_full.insert(e.task.0, held[p] == parts[p].max_concurrent);
                }
                _ => {}
            }
            assert!(
                held[p] <= parts[p].max_concurrent,
                "seed {seed}: partition {p} over its limit"
            );
        } else if e.verb == "reject" {
            assert_eq!(
                seen_full.remove(&e.task.0),
                Some(true),
                "seed {seed}: {:?} rejected a call while it had a free slot",
                e.detail()
            );
            rejects += 1;
        }
    }
    assert_eq!(rejects, rejected);
}

fn partition_strategy() -> impl Strategy<Value = Partition> {
    (
        1u64..4,
        prop_oneof![Just(Some(0)), (1u64..15).prop_map(Some), Just(None)],
    )
        .prop_map(|(n, w)| part(n, w))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn laws_hold_for_generated_workloads(
        parts in prop::collection::vec(partition_strategy(), 1..4),
        calls in prop::collection::vec(call_spec(), 1..20),
        seed in 0u64..1_000_000,
    ) {
        check_laws(&parts, &calls, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let parts = [part(2, Some(0)), part(1, Some(5)), part(3, None)];
    let calls: Vec<CallSpec> = (0..15)
        .map(|i| CallSpec {
            start: (i * 5) % 11,
            part: (i as usize) % 3,
            dur: 2 + (i * 3) % 7,
        })
        .collect();
    for seed in 0..1000 {
        check_laws(&parts, &calls, seed);
    }
}

/// A call that waits (without a max_wait) for a slot its own goroutine holds is a real
/// deadlock, named; with a max_wait it is not a cycle and is rejected.
#[test]
fn the_wait_for_graph_names_a_real_deadlock_and_no_false_one() {
    let src = r#"
local bh = goroutine.bulkhead{partitions = {api = {max_concurrent = 1, max_wait = math.huge}}}
bh:execute("api", function()
  bh:execute("api", function() end)
end)
"#;
    let r = common::run(src, 1);
    let text = r.outcome.to_string();
    assert!(text.contains("deadlock"), "{text}");
    assert!(text.contains("weighted_semaphore"), "{text}");
    let src = r#"
local bh = goroutine.bulkhead{partitions = {api = {max_concurrent = 1, max_wait = 20}}}
local ok, inner = bh:execute("api", function()
  return bh:execute("api", function() end)
end)
assert(ok == true and inner == false)
assert(goroutine.now() == 20)
"#;
    common::expect_pass_on_seeds(src);
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const B: &str = "local bh = goroutine.bulkhead{partitions = {api = {max_concurrent = 2}}}";
    check_all(&[
        m("", "goroutine.bulkhead(3)", "goroutine.bulkhead", "(got 3)"),
        m(
            "",
            "goroutine.bulkhead{}",
            "goroutine.bulkhead",
            "partitions must be a table",
        ),
        m(
            "",
            "goroutine.bulkhead{partitions = {}}",
            "goroutine.bulkhead",
            "at least one partition",
        ),
        m(
            "",
            "goroutine.bulkhead{partitions = {api = {max_concurrent = 0}}}",
            "goroutine.bulkhead",
            "max_concurrent must be a positive integer (got 0)",
        ),
        m(
            "",
            "goroutine.bulkhead{partitions = {api = {max_concurrent = 1, max_wait = 'x'}}}",
            "goroutine.bulkhead",
            "max_wait must be a non-negative number",
        ),
        m(
            "",
            "goroutine.bulkhead{partitions = {{max_concurrent = 1}}}",
            "goroutine.bulkhead",
            "partition names must be strings (got 1)",
        ),
        m(
            B,
            "bh:execute('db', function() end)",
            "bulkhead:execute",
            "unknown partition \"db\"",
        ),
        m(
            B,
            "bh:execute('api', 7)",
            "bulkhead:execute",
            "expects a function (got 7)",
        ),
        m(
            B,
            "bh:execute(7, function() end)",
            "bulkhead:execute",
            "partition name must be a string (got 7)",
        ),
        m(B, "bh:leave('api')", "bulkhead:leave", "only 0 are held"),
        m(
            B,
            "bh:in_flight('x')",
            "bulkhead:in_flight",
            "unknown partition",
        ),
    ]);
}

/// One bulkhead, created in Rust: a Rust task fills a partition, Lua calls are rejected from
/// it but run in the other one, then get in once the Rust task leaves.
#[test]
fn lua_and_rust_share_one_bulkhead() {
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let bh = Bulkhead::new(
        sim.runtime(),
        &[("api", part(1, Some(0))), ("db", part(1, Some(0)))],
        None,
    );
    world.expose("bh", bh.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
goroutine.sleep(1)                          -- the Rust task holds "api" until t=10
local ok, err = bh:execute("api", function() error("never runs") end)
assert(not ok and err == "bulkhead full: api")
assert(bh:execute("db", function() return 1 end))
goroutine.sleep(10)
local ok2, v = bh:execute("api", function() return "in" end)
assert(ok2 and v == "in")
"#,
        )
        .unwrap();
    let s = sim.clone();
    s.clone().spawn("rust", async move {
        bh.execute("api", || s.sleep(ms(10))).await.unwrap();
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local bh = goroutine.bulkhead{partitions = {p = {max_concurrent = 1, max_wait = 5}}}
local done = goroutine.channel(1)
goroutine.spawn(function()
  assert(bh:execute("p", function() goroutine.sleep(30) end))
  done:send(true)
end)
goroutine.sleep(2)
local t0 = goroutine.now()
local ok, err = bh:execute("p", function() end)
assert(not ok and err == "bulkhead full: p")
assert(goroutine.now() - t0 >= 5)
done:receive()
assert(bh:execute("p", function() return 1 end))
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
