//! The features that were Lua-only, from Rust tasks: atomic_int, after_func, async/await
//! (`Sim::go`, `JoinHandle::join`, `join_all`), timeout, select_timeout, worker pools, pipelines,
//! fan-in and fan-out. Behaviour at exact virtual instants, laws over many seeds, determinism,
//! and one trace snapshot.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{PoolError, StageFn, TaskError};
use gosim::sim::{Sim, SimReport};
use gosim::sync::{Case, Channel, SelectResult, Timed};
use proptest::prelude::*;

mod common;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `body(sim)` as the main task under `seed`.
fn run<F, Fut>(seed: u64, body: F) -> SimReport
where
    F: FnOnce(Sim) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let sim = Sim::with_seed(seed);
    let main = body(sim.clone());
    sim.run(main)
}

fn assert_pass(r: &SimReport) {
    assert!(r.outcome.is_pass(), "{}\n{}", r.outcome, r.trace_text());
}

/// The trace lines containing `needle`.
fn lines_with(r: &SimReport, needle: &str) -> Vec<String> {
    r.trace_text()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Feeds `values` into a new channel of capacity `cap` from a task named `feeder`, then closes it.
fn source(s: &Sim, values: Vec<i64>, cap: usize) -> Channel<i64> {
    let ch = s.channel::<i64>(cap);
    let tx = ch.clone();
    s.spawn("feeder", async move {
        for v in values {
            tx.send(v).await.expect("open");
        }
        tx.close();
    });
    ch
}

async fn drain(ch: &Channel<i64>) -> Vec<i64> {
    let mut got = Vec::new();
    while let Some(v) = ch.recv().await {
        got.push(v);
    }
    got
}

// ---- atomic_int ------------------------------------------------------------------------------

#[test]
fn atomic_ops_return_go_results_and_are_traced_like_lua() {
    let r = run(1, |s| async move {
        let a = s.atomic_int(5);
        assert_eq!(a.add(2).await, 7);
        assert_eq!(a.load().await, 7);
        a.store(1).await;
        assert_eq!(a.swap(3).await, 1);
        assert!(a.compare_and_swap(3, 4).await);
        assert!(!a.compare_and_swap(0, 9).await);
        assert_eq!(a.add(i64::MAX).await, 4i64.wrapping_add(i64::MAX));
        assert_eq!(a.peek(), 4i64.wrapping_add(i64::MAX));
    });
    assert_pass(&r);
    let ops: Vec<String> = lines_with(&r, "atomic");
    assert_eq!(
        ops,
        [
            "0ms g1(main) atomic.add atomic#1 7 (now 7)",
            "0ms g1(main) atomic.load atomic#1 7 (now 7)",
            "0ms g1(main) atomic.store atomic#1 nil (now 1)",
            "0ms g1(main) atomic.swap atomic#1 1 (now 3)",
            "0ms g1(main) atomic.cas atomic#1 true (now 4)",
            "0ms g1(main) atomic.cas atomic#1 false (now 4)",
            "0ms g1(main) atomic.add atomic#1 -9223372036854775805 (now -9223372036854775805)",
        ],
        "no `new` event, one event per op"
    );
}

/// `load` then `store(v + 1)` is two operations, and each is a scheduling point: some seed loses
/// an update. `add` never does.
#[test]
fn every_atomic_op_is_a_scheduling_point() {
    let lost_on_some_seed = (0..40u64).any(|seed| {
        let total = Rc::new(Cell::new(0));
        let out = total.clone();
        let r = run(seed, |s| async move {
            let a = s.atomic_int(0);
            let wg = s.wait_group();
            for i in 0..3 {
                wg.add(1).expect("add");
                let (a, wg) = (a.clone(), wg.clone());
                s.spawn(&format!("racer-{i}"), async move {
                    let v = a.load().await;
                    a.store(v + 1).await;
                    wg.add(-1).expect("done");
                });
            }
            wg.wait().await;
            out.set(a.load().await);
        });
        assert_pass(&r);
        total.get() < 3
    });
    assert!(lost_on_some_seed, "load/store interleave on some seed");
}

// ---- after_func --------------------------------------------------------------------------------

#[test]
fn after_func_spawns_its_task_at_the_instant_and_a_stopped_one_never_runs() {
    let r = run(2, |s| async move {
        let done = s.channel::<Duration>(1);
        let (tx, t) = (done.clone(), s.clone());
        s.sleep(ms(100)).await;
        let _timer = s.after_func(ms(5), move || {
            let (tx, t) = (tx.clone(), t.clone());
            async move {
                tx.send(t.now()).await.expect("open");
            }
        });
        let cancelled = s.after_func(ms(3), || async { panic!("stopped, never runs") });
        assert!(cancelled.stop(), "stopped in time");
        assert_eq!(done.recv().await, Some(ms(105)));
        s.sleep(ms(10)).await;
    });
    assert_pass(&r);
    assert_eq!(
        lines_with(&r, "after_func"),
        [
            "100ms g1(main) new after_func#2 5ms",
            "100ms g1(main) new after_func#3 3ms",
            "100ms g1(main) stop after_func#3",
            "105ms sched fire after_func#2",
            "105ms sched spawn g2(after_func)",
            "105ms g2(after_func) send channel#1 105ms to g1",
            "105ms g2(after_func) wake g1(main)",
            "105ms g2(after_func) exit",
        ]
    );
}

// ---- async/await and timeout ---------------------------------------------------------------

#[test]
fn join_returns_the_value_at_the_instant_the_task_ends_and_again_without_waiting() {
    let r = run(3, |s| async move {
        let t = s.clone();
        let h = s.go(async move {
            t.sleep(ms(10)).await;
            ("users", 10)
        });
        assert_eq!(h.join().await, Ok(("users", 10)));
        assert_eq!(s.now(), ms(10));
        assert!(h.is_finished());
        assert_eq!(h.join().await, Ok(("users", 10)), "kept");
        assert_eq!(s.now(), ms(10));
    });
    assert_pass(&r);
    assert_eq!(
        lines_with(&r, "\"await\"")[0],
        "0ms g1(main) new channel#1\"await\" cap=0"
    );
}

#[test]
fn await_returns_the_error_of_a_failed_task_and_join_all_keeps_order() {
    let r = run(4, |s| async move {
        let fetch = |name: &'static str, d: u64| {
            let t = s.clone();
            s.go(async move {
                t.sleep(ms(d)).await;
                if name == "broken" {
                    panic!("connection refused");
                }
                name
            })
        };
        let hs = vec![fetch("orders", 20), fetch("broken", 5), fetch("stock", 10)];
        let results = s.join_all(&hs).await;
        assert_eq!(
            results,
            [
                Ok("orders"),
                Err(TaskError::Failed("connection refused".to_string())),
                Ok("stock"),
            ]
        );
        assert_eq!(s.now(), ms(20), "they ran concurrently");
        assert_eq!(
            results[1].as_ref().unwrap_err().to_string(),
            "connection refused"
        );
    });
    assert_pass(&r);
}

#[test]
fn timeout_expires_at_exactly_its_limit_and_the_task_runs_on() {
    let finished_at = Rc::new(Cell::new(None));
    let seen = finished_at.clone();
    let r = run(5, |s| async move {
        let t = s.clone();
        let fast = s
            .timeout(ms(50), async move {
                t.sleep(ms(10)).await;
                42
            })
            .await;
        assert_eq!(fast, Ok(42));
        assert_eq!(s.now(), ms(10));

        let t = s.clone();
        let slow = s
            .timeout(ms(100), async move {
                t.sleep(ms(150)).await;
                seen.set(Some(t.now()));
            })
            .await;
        assert_eq!(slow, Err(TaskError::TimedOut));
        assert_eq!(slow.unwrap_err().to_string(), "timeout exceeded");
        assert_eq!(s.now(), ms(110), "exactly 100 ms later");

        let bad = s.timeout(ms(50), async { panic!("bad input") }).await;
        assert_eq!(
            bad,
            Err::<(), _>(TaskError::Failed("bad input".to_string()))
        );
        assert_eq!(s.now(), ms(110));
    });
    assert_pass(&r);
    assert_eq!(
        finished_at.get(),
        Some(ms(160)),
        "the abandoned task finished anyway"
    );
    assert!(
        lines_with(&r, "block-select")
            .iter()
            .any(|l| l.contains("\"await\"") && l.contains("\"after\"")),
        "one select over the task's await channel and an after channel, as in Lua"
    );
}

// ---- select_timeout ------------------------------------------------------------------------

#[test]
fn select_timeout_gives_the_case_or_times_out_at_the_exact_instant() {
    let r = run(6, |s| async move {
        let data = s.channel::<&'static str>(0);
        let (tx, t) = (data.clone(), s.clone());
        s.spawn("replier", async move {
            t.sleep(ms(20)).await;
            tx.send("late but in time").await.expect("open");
        });
        let got = s
            .select_timeout(ms(100), vec![Case::Never, Case::Recv(data.clone())])
            .await;
        assert!(matches!(
            got,
            Timed::Case(SelectResult::Recv(1, Some("late but in time")))
        ));
        assert_eq!(s.now(), ms(20));

        let got = s
            .select_timeout(ms(50), vec![Case::Recv(data.clone())])
            .await;
        assert!(matches!(got, Timed::TimedOut));
        assert_eq!(s.now(), ms(70));
    });
    assert_pass(&r);
    assert_eq!(
        lines_with(&r, "70ms"),
        [
            "70ms sched fire timer#5",
            "70ms sched send channel#4\"after\" 70ms to g1",
            "70ms g1(main) receive channel#4\"after\" 70ms",
            "70ms sched wake g1(main)",
            "70ms g1(main) exit",
        ]
    );
}

// ---- pools ---------------------------------------------------------------------------------

#[test]
fn a_pool_runs_every_job_with_at_most_its_workers_at_once_and_wait_returns_after_all() {
    let r = run(7, |s| async move {
        let pool = s.pool("jobs", 2);
        let running = Rc::new(Cell::new(0));
        let max_running = Rc::new(Cell::new(0));
        let mut refused = 0;
        for n in 1..=10 {
            loop {
                let (t, running, max_running) = (s.clone(), running.clone(), max_running.clone());
                let job = async move {
                    running.set(running.get() + 1);
                    max_running.set(max_running.get().max(running.get()));
                    t.sleep(ms(10)).await;
                    running.set(running.get() - 1);
                    if n == 7 {
                        panic!("job 7 failed on purpose");
                    }
                };
                match pool.submit_fn(job) {
                    Ok(id) => {
                        assert_eq!(id.to_string(), format!("jobs-{}", id.number()));
                        break;
                    }
                    Err(e) => {
                        assert_eq!(e, PoolError::QueueFull);
                        assert_eq!(e.to_string(), "pool queue is full");
                        refused += 1;
                        s.sleep(ms(5)).await;
                    }
                }
            }
        }
        assert!(refused > 0, "room for 4 queued + 2 running");
        pool.wait().await;
        let st = pool.stats();
        assert_eq!(
            (st.workers, st.active, st.completed, st.failed, st.queued),
            (2, 0, 9, 1, 0)
        );
        assert_eq!(max_running.get(), 2);
        assert_eq!(s.now(), ms(50), "10 jobs of 10 ms on 2 workers");
        assert_eq!(pool.submit_fn(async {}).unwrap_err(), PoolError::Closed);
        assert_eq!(PoolError::Closed.to_string(), "pool is closed");
        pool.close().await;
    });
    assert_pass(&r);
    assert_eq!(
        lines_with(&r, "spawn g2")[0],
        "0ms g1(main) spawn g2(jobs-worker-1)"
    );
    assert!(!lines_with(&r, "new channel#1\"pool jobs\" cap=4").is_empty());
    assert!(!lines_with(&r, "try_send channel#1\"pool jobs\" full").is_empty());
    assert_eq!(lines_with(&r, " note ").len(), 1);
    assert!(lines_with(&r, " note ")[0].ends_with("note jobs: job 7 failed on purpose"));
}

#[test]
fn closing_a_pool_drops_its_queued_jobs() {
    let ran = Rc::new(Cell::new(0));
    let count = ran.clone();
    let r = run(8, |s| async move {
        let pool = s.pool("p", 1);
        for i in 0..3 {
            if i == 2 {
                s.sleep(ms(1)).await; // the worker has taken job 1: room for a third
            }
            let (t, count) = (s.clone(), count.clone());
            pool.submit_fn(async move {
                t.sleep(ms(10)).await;
                count.set(count.get() + 1);
            })
            .expect("room");
        }
        pool.close().await;
        assert_eq!(pool.submit_fn(async {}).unwrap_err(), PoolError::Closed);
        s.sleep(ms(50)).await;
        assert_eq!(pool.dropped(), 2);
        assert_eq!(pool.stats().completed, 1);
    });
    assert_pass(&r);
    assert_eq!(
        ran.get(),
        1,
        "the running job finishes, the queued ones never start"
    );
}

// ---- pipeline ------------------------------------------------------------------------------

#[test]
fn a_pipeline_with_one_worker_per_stage_keeps_order() {
    let r = run(9, |s| async move {
        let input = source(&s, vec![1, 2, 3, 4, 5], 10);
        let out = s.pipeline(
            input,
            vec![
                StageFn::new(1, |x| async move { x * 2 }),
                StageFn::new(1, |x| async move { x + 10 }),
            ],
        );
        assert_eq!(drain(&out).await, [12, 14, 16, 18, 20]);
    });
    assert_pass(&r);
    assert!(!lines_with(&r, "spawn g3(pipeline-1-1)").is_empty());
    assert!(!lines_with(&r, "new channel#3\"pipeline stage 2\" cap=10").is_empty());
}

#[test]
fn a_failing_pipeline_item_is_dropped_with_a_note() {
    let r = run(10, |s| async move {
        let input = source(&s, vec![1, 2, 3, 4, 5, 6], 10);
        let t = s.clone();
        let out = s.pipeline(
            input,
            vec![
                StageFn::new(3, move |x: i64| {
                    let t = t.clone();
                    async move {
                        t.sleep(ms((7 - x as u64) * 10)).await;
                        if x == 4 {
                            panic!("cannot handle 4");
                        }
                        x * 2
                    }
                }),
                StageFn::new(1, |x| async move { x + 10 }),
            ],
        );
        let mut got = drain(&out).await;
        got.sort();
        assert_eq!(got, [12, 14, 16, 20, 22]);
    });
    assert_pass(&r);
    let notes = lines_with(&r, " note ");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].ends_with("note stage 1: cannot handle 4"),
        "{}",
        notes[0]
    );
}

// ---- fan_out, fan_in -----------------------------------------------------------------------

#[test]
fn fan_out_delivers_every_value_to_every_output() {
    let r = run(11, |s| async move {
        let input = s.channel::<i64>(0);
        let outs = s.fan_out(input.clone(), 3);
        assert_eq!(outs.len(), 3);
        assert_eq!(outs[0].cap(), 10);
        let sums = Rc::new(RefCell::new(vec![Vec::new(); 3]));
        let wg = s.wait_group();
        for (i, ch) in outs.into_iter().enumerate() {
            wg.add(1).expect("add");
            let (sums, wg) = (sums.clone(), wg.clone());
            s.spawn(&format!("subscriber-{}", i + 1), async move {
                let got = drain(&ch).await;
                sums.borrow_mut()[i] = got;
                wg.add(-1).expect("done");
            });
        }
        for v in 1..=4 {
            input.send(v).await.expect("open");
        }
        input.close();
        wg.wait().await;
        assert_eq!(*sums.borrow(), vec![vec![1, 2, 3, 4]; 3]);
    });
    assert_pass(&r);
    assert!(!lines_with(&r, "spawn g2(fan_out)").is_empty());
    assert!(!lines_with(&r, "new channel#4\"fan_out 3\" cap=10").is_empty());
}

#[test]
fn fan_in_closes_after_all_inputs_closed() {
    let r = run(12, |s| async move {
        let inputs: Vec<Channel<i64>> = (1..=3)
            .map(|p| {
                let t = s.clone();
                let ch = s.channel::<i64>(0);
                let tx = ch.clone();
                s.spawn(&format!("producer-{p}"), async move {
                    for k in 1..=3 {
                        tx.send(p * 10 + k).await.expect("open");
                    }
                    t.sleep(ms(p as u64 * 10)).await;
                    tx.close();
                });
                ch
            })
            .collect();
        let merged = s.fan_in(inputs);
        let mut got = drain(&merged).await;
        assert_eq!(s.now(), ms(30), "closed when the last input (30 ms) closed");
        got.sort();
        assert_eq!(got, [11, 12, 13, 21, 22, 23, 31, 32, 33]);
    });
    assert_pass(&r);
    assert!(!lines_with(&r, "spawn g5(fan_in-1)").is_empty());
    assert_eq!(lines_with(&r, "close channel#4\"fan_in\"").len(), 1);
}

// ---- laws over many seeds ------------------------------------------------------------------

/// A pool run: (report, runs per job, most jobs running at once).
fn pool_run(seed: u64, workers: usize, jobs: usize) -> (SimReport, Vec<u32>, usize) {
    let runs = Rc::new(RefCell::new(vec![0u32; jobs]));
    let peak = Rc::new(Cell::new(0usize));
    let (runs2, peak2) = (runs.clone(), peak.clone());
    let r = run(seed, |s| async move {
        let pool = s.pool("p", workers);
        let running = Rc::new(Cell::new(0usize));
        for j in 0..jobs {
            loop {
                let (t, runs, running, peak) =
                    (s.clone(), runs2.clone(), running.clone(), peak2.clone());
                let job = async move {
                    running.set(running.get() + 1);
                    peak.set(peak.get().max(running.get()));
                    let d = t.random_below(3);
                    t.sleep(ms(d)).await;
                    runs.borrow_mut()[j] += 1;
                    running.set(running.get() - 1);
                };
                match pool.submit_fn(job) {
                    Ok(_) => break,
                    Err(PoolError::QueueFull) => s.sleep(ms(1)).await,
                    Err(PoolError::Closed) => unreachable!("open until wait"),
                }
            }
        }
        pool.wait().await;
    });
    let runs = runs.borrow().clone();
    (r, runs, peak.get())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every submitted job runs exactly once, and never more than `workers` at once.
    #[test]
    fn every_pool_job_runs_once_with_at_most_workers_at_once(
        seed in any::<u64>(), workers in 1usize..4, jobs in 0usize..16,
    ) {
        let (r, runs, peak) = pool_run(seed, workers, jobs);
        prop_assert!(r.outcome.is_pass(), "seed {}: {}", seed, r.outcome);
        prop_assert!(runs.iter().all(|&n| n == 1), "{:?}", runs);
        prop_assert!(peak <= workers);
    }

    /// With no failing stage, a pipeline outputs as many values as it got (the same multiset).
    #[test]
    fn a_pipeline_outputs_every_input(
        seed in any::<u64>(), n in 0i64..20, w1 in 1usize..4, w2 in 1usize..4,
    ) {
        let got = Rc::new(RefCell::new(Vec::new()));
        let out = got.clone();
        let r = run(seed, |s| async move {
            let input = source(&s, (1..=n).collect(), 2);
            let t = s.clone();
            let end = s.pipeline(input, vec![
                StageFn::new(w1, move |x: i64| {
                    let t = t.clone();
                    async move { t.sleep(ms(t.random_below(3))).await; x * 3 }
                }),
                StageFn::new(w2, |x| async move { x + 1 }),
            ]);
            *out.borrow_mut() = drain(&end).await;
        });
        prop_assert!(r.outcome.is_pass(), "seed {}: {}", seed, r.outcome);
        let mut got = got.borrow().clone();
        got.sort();
        prop_assert_eq!(got, (1..=n).map(|x| x * 3 + 1).collect::<Vec<_>>());
    }

    /// fan_in delivers the multiset of its inputs, each input's values in order.
    #[test]
    fn fan_in_delivers_the_multiset_in_per_input_order(
        seed in any::<u64>(), sizes in proptest::collection::vec(0i64..6, 1..4),
    ) {
        let got = Rc::new(RefCell::new(Vec::new()));
        let out = got.clone();
        let sizes2 = sizes.clone();
        let r = run(seed, |s| async move {
            let inputs = sizes2
                .iter()
                .enumerate()
                .map(|(p, &k)| source(&s, (1..=k).map(|i| p as i64 * 100 + i).collect(), 0))
                .collect();
            let merged = s.fan_in(inputs);
            *out.borrow_mut() = drain(&merged).await;
        });
        prop_assert!(r.outcome.is_pass(), "seed {}: {}", seed, r.outcome);
        let got = got.borrow().clone();
        for (p, &k) in sizes.iter().enumerate() {
            let mine: Vec<i64> = got.iter().copied().filter(|v| v / 100 == p as i64).collect();
            prop_assert_eq!(mine, (1..=k).map(|i| p as i64 * 100 + i).collect::<Vec<_>>());
        }
        prop_assert_eq!(got.len() as i64, sizes.iter().sum::<i64>());
    }

    /// A CAS retry loop never loses an increment.
    #[test]
    fn a_cas_counter_ends_at_n(seed in any::<u64>(), n in 1usize..8) {
        let total = Rc::new(Cell::new(0));
        let out = total.clone();
        let r = run(seed, |s| async move {
            let a = s.atomic_int(0);
            let wg = s.wait_group();
            for i in 0..n {
                wg.add(1).expect("add");
                let (a, wg) = (a.clone(), wg.clone());
                s.spawn(&format!("w{i}"), async move {
                    loop {
                        let v = a.load().await;
                        if a.compare_and_swap(v, v + 1).await {
                            break;
                        }
                    }
                    wg.add(-1).expect("done");
                });
            }
            wg.wait().await;
            out.set(a.load().await);
        });
        prop_assert!(r.outcome.is_pass(), "seed {}: {}", seed, r.outcome);
        prop_assert_eq!(total.get(), n as i64);
    }
}

// ---- determinism and a snapshot --------------------------------------------------------------

/// A small run using several features.
fn tour(seed: u64) -> SimReport {
    run(seed, |s| async move {
        let hits = s.atomic_int(0);
        let pool = s.pool("jobs", 2);
        for _ in 0..3 {
            let (t, hits) = (s.clone(), hits.clone());
            pool.submit_fn(async move {
                t.sleep(ms(5)).await;
                hits.add(1).await;
            })
            .expect("room");
        }
        let (t, h2) = (s.clone(), hits.clone());
        let _timer = s.after_func(ms(2), move || {
            let h2 = h2.clone();
            async move {
                h2.add(100).await;
            }
        });
        let slow = s
            .timeout(ms(3), async move {
                t.sleep(ms(20)).await;
            })
            .await;
        assert_eq!(slow, Err(TaskError::TimedOut));
        pool.wait().await;
        let a = source(&s, vec![1, 2], 0);
        let b = source(&s, vec![3], 0);
        let merged = s.fan_in(vec![a, b]);
        let mut got = drain(&merged).await;
        got.sort();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(hits.load().await, 103);
    })
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [1, 2, 3, 99] {
        let (a, b) = (tour(seed), tour(seed));
        assert_pass(&a);
        assert_eq!(a.trace_text(), b.trace_text(), "seed {seed}");
    }
}

#[test]
fn a_tour_of_the_rust_patterns_trace_is_a_snapshot() {
    let r = tour(7);
    assert_pass(&r);
    insta::assert_snapshot!("rust_patterns_tour", r.trace_text());
}

// ---- the same trace as the Lua versions ------------------------------------------------------
//
// Each test runs a Lua snippet and the same steps written in Rust under one seed, and compares
// the traces. The Rust side takes `yield_now` where the Lua call it mirrors is a scheduling point
// and the Rust call is not (spawn, close, wait-group add, creating a pattern): in Rust, calls
// that never block are not scheduling points; the Lua binding takes one after every call. Values
// are rendered by their language (a Lua job is a `table`, a Rust one a `job`; Lua's timer
// delivers `80`, Rust's `80ms`; a Lua error carries its `file:line:`), so these are normalised.

fn rust_trace<F, Fut>(seed: u64, body: F) -> String
where
    F: FnOnce(Sim) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let r = run(seed, body);
    assert_pass(&r);
    r.trace_text()
}

/// Lua's renderings of values turned into Rust's.
fn as_rust(lua_trace: &str) -> String {
    lua_trace
        .lines()
        .map(|l| {
            let mut l = l.replace("\"pool jobs\" table", "\"pool jobs\" job");
            l = l.replace("note jobs: t.lua:5: ", "note jobs: ");
            if let Some(at) = l.find("\"after\" ") {
                let start = at + "\"after\" ".len();
                let digits = l[start..].chars().take_while(char::is_ascii_digit).count();
                if digits > 0 {
                    l.insert_str(start + digits, "ms");
                }
            }
            l + "\n"
        })
        .collect()
}

fn cmp(name: &str, lua: &str, rs: String) {
    let l = common::run(lua, 7);
    assert!(l.outcome.is_pass(), "{name}: {}", l.outcome);
    assert_eq!(
        as_rust(&l.trace_text()),
        rs,
        "{name}: the Rust trace differs from Lua's"
    );
}

#[test]
fn fan_in_has_the_trace_of_the_lua_fan_in() {
    let lua = r#"
local sources = {}
for p = 1, 3 do
  local ch = goroutine.channel()
  sources[p] = ch
  goroutine.spawn{name = "producer-" .. p, fn = function()
    for k = 1, 3 do ch:send(p * 10 + k) end
    ch:close()
  end}
end
local merged = goroutine.fan_in(sources)
local seen = {}
merged:range(function(v) seen[#seen + 1] = v end)
"#;
    let rs = rust_trace(7, |s| async move {
        let mut sources = Vec::new();
        for p in 1..=3i64 {
            let ch = s.channel::<i64>(0);
            sources.push(ch.clone());
            let t = s.clone();
            s.spawn(&format!("producer-{p}"), async move {
                for k in 1..=3 {
                    ch.send(p * 10 + k).await.unwrap();
                }
                ch.close();
                t.yield_now().await;
            });
            s.yield_now().await;
        }
        let merged = s.fan_in(sources);
        s.yield_now().await;
        while let Some(_v) = merged.recv().await {}
    });
    cmp("fan_in", lua, rs);
}

#[test]
fn fan_out_has_the_trace_of_the_lua_fan_out() {
    let lua = r#"
local input = goroutine.channel()
local outs = goroutine.fan_out(input, 3)
local wg = goroutine.wait_group()
for i, ch in ipairs(outs) do
  wg:add(1)
  goroutine.spawn{name = "subscriber-" .. i, fn = function()
    local sum = 0
    ch:range(function(v) sum = sum + v end)
    wg:done()
  end}
end
for v = 1, 4 do input:send(v) end
input:close()
wg:wait()
"#;
    let rs = rust_trace(7, |s| async move {
        let input = s.channel::<i64>(0);
        let outs = s.fan_out(input.clone(), 3);
        s.yield_now().await;
        let wg = s.wait_group();
        for (i, ch) in outs.into_iter().enumerate() {
            wg.add(1).unwrap();
            s.yield_now().await;
            let (wg, t) = (wg.clone(), s.clone());
            s.spawn(&format!("subscriber-{}", i + 1), async move {
                while let Some(_v) = ch.recv().await {}
                wg.add(-1).unwrap();
                t.yield_now().await;
            });
            s.yield_now().await;
        }
        for v in 1..=4 {
            input.send(v).await.unwrap();
        }
        input.close();
        s.yield_now().await;
        wg.wait().await;
    });
    cmp("fan_out", lua, rs);
}

#[test]
fn pipeline_has_the_trace_of_the_lua_pipeline() {
    let lua = r#"
local function source(values)
  local input = goroutine.channel(10)
  goroutine.spawn{name = "feeder", fn = function()
    for _, v in ipairs(values) do input:send(v) end
    input:close()
  end}
  return input
end
local out = goroutine.pipeline(source{1, 2, 3, 4, 5}, {
  { workers = 1, fn = function(x) return x * 2 end },
  { workers = 2, fn = function(x) goroutine.sleep(x) return x + 10 end },
})
local got = {}
out:range(function(v) got[#got + 1] = v end)
"#;
    let rs = rust_trace(7, |s| async move {
        let input = s.channel::<i64>(10);
        let (tx, t) = (input.clone(), s.clone());
        s.spawn("feeder", async move {
            for v in 1..=5 {
                tx.send(v).await.unwrap();
            }
            tx.close();
            t.yield_now().await;
        });
        s.yield_now().await;
        let t = s.clone();
        let out = s.pipeline(
            input,
            vec![
                StageFn::new(1, |x| async move { x * 2 }),
                StageFn::new(2, move |x: i64| {
                    let t = t.clone();
                    async move {
                        t.sleep(Duration::from_millis(x as u64)).await;
                        x + 10
                    }
                }),
            ],
        );
        s.yield_now().await;
        while let Some(_v) = out.recv().await {}
    });
    cmp("pipeline", lua, rs);
}

#[test]
fn async_await_and_timeout_have_the_trace_of_the_lua_ones() {
    let lua = r#"
local function fetch(name, ms)
  return function()
    goroutine.sleep(ms)
    if name == "broken" then error("connection refused") end
    return name, ms
  end
end
local h = goroutine.async(fetch("users", 10))
local ok, name, ms = goroutine.await(h)
local results = goroutine.await_all({
  goroutine.async(fetch("orders", 20)),
  goroutine.async(fetch("broken", 5)),
  goroutine.async(fetch("stock", 10)),
})
local fast_ok, v = goroutine.timeout(50, function() goroutine.sleep(10) return 42 end)
local slow_ok, err = goroutine.timeout(40, function()
  goroutine.sleep(90)
end)
"#;
    let rs = rust_trace(7, |s| async move {
        let fetch = |name: &'static str, d: u64| {
            let t = s.clone();
            async move {
                t.sleep(Duration::from_millis(d)).await;
                if name == "broken" {
                    panic!("connection refused");
                }
                name
            }
        };
        let h = s.go(fetch("users", 10));
        s.yield_now().await;
        h.join().await.unwrap();
        let a = s.go(fetch("orders", 20));
        s.yield_now().await;
        let b = s.go(fetch("broken", 5));
        s.yield_now().await;
        let c = s.go(fetch("stock", 10));
        s.yield_now().await;
        s.join_all(&[a, b, c]).await;
        let t = s.clone();
        s.timeout(Duration::from_millis(50), async move {
            t.sleep(Duration::from_millis(10)).await;
            42
        })
        .await
        .unwrap();
        let t = s.clone();
        s.timeout(Duration::from_millis(40), async move {
            t.sleep(Duration::from_millis(90)).await;
        })
        .await
        .unwrap_err();
    });
    cmp("async", lua, rs);
}

#[test]
fn a_pool_has_the_trace_of_the_lua_pool() {
    let lua = r#"
assert(goroutine.pool_create("jobs", { workers = 2 }) == true)
local function job(n)
  goroutine.sleep(10)
  if n == 7 then error("job 7 failed on purpose") end
end
for n = 1, 10 do
  while true do
    local id, err = goroutine.pool_submit("jobs", job, n)
    if id then break end
    goroutine.sleep(5)
  end
end
goroutine.pool_stats("jobs")
assert(goroutine.pool_wait("jobs") == true)
local id, err = goroutine.pool_submit("jobs", job, 11)
assert(goroutine.pool_close("jobs") == true)
"#;
    let rs = rust_trace(7, |s| async move {
        let pool = s.pool("jobs", 2);
        s.yield_now().await; // pool_create's wg:add point (before the spawns in Lua)
        s.yield_now().await;
        for n in 1..=10 {
            loop {
                let t = s.clone();
                let r = pool.submit_fn(async move {
                    t.sleep(Duration::from_millis(10)).await;
                    if n == 7 {
                        panic!("job 7 failed on purpose")
                    }
                });
                s.yield_now().await;
                if r.is_ok() {
                    break;
                }
                s.sleep(Duration::from_millis(5)).await;
            }
        }
        pool.stats();
        s.yield_now().await;
        pool.wait().await;
        let _ = pool.submit_fn(async {});
        pool.close().await;
    });
    cmp("pool", lua, rs);
}

#[test]
fn select_timeout_after_func_and_atomic_have_the_trace_of_the_lua_ones() {
    let lua = r#"
local data = goroutine.channel()
goroutine.spawn{name = "replier", fn = function()
  goroutine.sleep(20)
  data:send("x")
end}
local timed_out, idx = goroutine.select_timeout(100, {
  { channel = false, receive = true, handler = function() end },
  { channel = data, receive = true, handler = function(v) end },
})
timed_out, idx = goroutine.select_timeout(50, {
  { channel = data, receive = true, handler = function() end },
})
local cancelled = goroutine.after_func(3, function() error("never") end)
cancelled:stop()
local done = goroutine.channel(1)
goroutine.after_func(5, function() done:send(1) end)
done:receive()
local a = goroutine.atomic_int(5)
a:add(2) a:load() a:store(1) a:swap(3) a:compare_and_swap(3, 4)
"#;
    let rs = rust_trace(7, |s| async move {
        use gosim::sync::Case;
        let data = s.channel::<&'static str>(0);
        let (tx, t) = (data.clone(), s.clone());
        s.spawn("replier", async move {
            t.sleep(Duration::from_millis(20)).await;
            tx.send("x").await.unwrap();
        });
        s.yield_now().await;
        s.select_timeout(
            Duration::from_millis(100),
            vec![Case::Never, Case::Recv(data.clone())],
        )
        .await;
        s.select_timeout(Duration::from_millis(50), vec![Case::Recv(data.clone())])
            .await;
        let c = s.after_func(Duration::from_millis(3), || async { panic!("never") });
        c.stop();
        s.yield_now().await;
        let done = s.channel::<i64>(1);
        let d2 = done.clone();
        s.after_func(Duration::from_millis(5), move || {
            let d = d2.clone();
            async move {
                d.send(1).await.unwrap();
            }
        });
        done.recv().await;
        let a = s.atomic_int(5);
        a.add(2).await;
        a.load().await;
        a.store(1).await;
        a.swap(3).await;
        a.compare_and_swap(3, 4).await;
    });
    cmp("select_timeout", lua, rs);
}

// ---- the Lua bindings run on these state machines ------------------------------------------

#[test]
fn a_lua_async_handle_is_a_rust_join_handle_with_the_lua_face() {
    let r = common::run(
        r#"
local h = goroutine.async(function() return 1, nil, 3 end)
log.info(tostring(h) .. " " .. h.id .. " " .. type(h))
local ok, a, b, c = goroutine.await(h)
log.info(tostring(ok) .. " " .. a .. " " .. tostring(b) .. " " .. c)
local bad = goroutine.async(function() error("boom") end)
local all = goroutine.await_all({h, 42, bad})
log.info(#all .. " " .. #all[1].values .. " " .. tostring(all[2].success) .. " " .. all[2].error)
"#,
        1,
    );
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    assert_eq!(
        common::logs(&r),
        [
            "async(2) 2 userdata",
            "true 1 nil 3",
            "2 3 false t.lua:6: boom",
        ]
    );
}

#[test]
fn a_lua_pool_name_reused_cancels_the_old_pool_in_rust() {
    let r = common::run(
        r#"
goroutine.pool_create("p", {workers = 1})
local ran = 0
for i = 1, 2 do goroutine.pool_submit("p", function() goroutine.sleep(10) ran = ran + 1 end) end
goroutine.sleep(1)
goroutine.pool_create("p", {workers = 2})
local st = goroutine.pool_stats("p")
log.info(st.workers .. " " .. st.queued)
goroutine.pool_wait("p")
goroutine.sleep(20)
log.info(ran)
"#,
        1,
    );
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    // The old pool's running job finishes; its queued one is dropped.
    assert_eq!(common::logs(&r), ["2 0", "1"]);
}

#[test]
fn lua_fan_and_pipeline_reject_a_send_only_input_at_the_call() {
    for (call, fname) in [
        ("goroutine.fan_out(tx, 2)", "goroutine.fan_out"),
        ("goroutine.fan_in({tx})", "goroutine.fan_in"),
        (
            "goroutine.pipeline(tx, {{fn = function(v) return v end}})",
            "goroutine.pipeline",
        ),
    ] {
        let src = format!(
            "local tx = goroutine.channel(1, \"send\")\nlocal ok, err = pcall(function() {call} end)\nlog.info(err)\n"
        );
        let r = common::run(&src, 1);
        assert_eq!(
            common::logs(&r),
            [format!(
                "t.lua:2: {fname}: cannot receive on a send-only channel"
            )]
        );
    }
}

#[test]
fn a_lua_runs_fan_forwarders_are_rust_tasks_whose_reports_name_no_rust_line() {
    let r = common::run(
        "local a = goroutine.channel(0)\nlocal out = goroutine.fan_in({a})\nlocal outs = goroutine.fan_out(out, 2)\n",
        1,
    );
    let report = r.outcome.to_string();
    assert!(
        report.contains("g2(fan_in-1) blocked in receive"),
        "{report}"
    );
    assert!(
        report.contains("g3(fan_out) blocked in receive"),
        "{report}"
    );
    assert!(!report.contains(".rs:"), "{report}");
}
