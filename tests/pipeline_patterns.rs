//! The wish-list's pipelines (seed 2.1-2.5): `pipeline_with` (error records, retries, rate
//! limits, metrics, all on the one `Stage` state machine the plain `pipeline` uses) and the
//! dynamic pipeline. Their laws across generated workloads (proptest) and ≥ 1,000 seeds, exact
//! instants of retry delays and rate-limited spacing, misuse, one object shared by Lua and Rust,
//! and real time.
//!
//! References: the Go blog's "Pipelines and cancellation" (a stage closes its output when all
//! its workers are done; one worker keeps order; no goroutine is left once the input is closed
//! and the output drained), golang.org/x/sync errgroup (every item's error is reported, none is
//! lost) and tower's `RateLimit`/`Retry` layers (a token per request, taken when the request is
//! there; a retry policy per layer). The limiter and retry policy are `RateLimiter` and `Retry`,
//! whose own reference cases are in `tests/rate_limiter.rs` and `tests/retry.rs`.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{
    DynamicPipeline, Failure, PipelineMetrics, RetrySettings, StageError, StageLabel, StageSpec,
    permanent, pipeline_with,
};
use gosim::sim::Sim;
use gosim::sync::Channel;
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
    // A pass also means no goroutine was left blocked (a leak fails the run).
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
}

// ---------------------------------------------------------------------------------------------
// Generated workloads
// ---------------------------------------------------------------------------------------------

/// One stage of a generated workload.
#[derive(Debug, Clone)]
struct StageGen {
    workers: usize,
    /// Items `v` with `v % fail_mod == fail_rem` fail every call.
    fail_mod: u64,
    fail_rem: u64,
    /// Items `v` with `v % flaky_mod == 0` fail their first `flaky_calls` calls.
    flaky_mod: u64,
    flaky_calls: u32,
    /// Items `v` with `v % perm_mod == 1` fail permanently.
    perm_mod: u64,
    max_retries: u32,
    delay: u64,
    rate_limit: Option<u64>,
    work: u64,
}

#[derive(Debug, Clone)]
struct Workload {
    inputs: u64,
    gap: u64,
    stages: Vec<StageGen>,
    with_errors: bool,
}

fn stage_gen() -> impl Strategy<Value = StageGen> {
    (
        1usize..4,
        (2u64..7, 0u64..7),
        (2u64..5, 0u32..4),
        3u64..9,
        (0u32..4, 0u64..30),
        prop::option::of(prop::sample::select(vec![5u64, 10, 40, 1000])),
        0u64..15,
    )
        .prop_map(
            |(workers, (fm, fr), (flm, flc), perm_mod, (max_retries, delay), rate_limit, work)| {
                StageGen {
                    workers,
                    fail_mod: fm,
                    fail_rem: fr % fm,
                    flaky_mod: flm,
                    flaky_calls: flc,
                    perm_mod,
                    max_retries,
                    delay,
                    rate_limit,
                    work,
                }
            },
        )
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        0u64..30,
        0u64..20,
        prop::collection::vec(stage_gen(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(inputs, gap, stages, with_errors)| Workload {
            inputs,
            gap,
            stages,
            with_errors,
        })
}

/// A workload drawn from a seed (for the 1,000-seed runs): small and varied.
fn workload_from(seed: u64) -> Workload {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let n_stages = next(4) as usize;
    let stages = (0..n_stages)
        .map(|_| {
            let fail_mod = 2 + next(5);
            StageGen {
                workers: 1 + next(3) as usize,
                fail_mod,
                fail_rem: next(fail_mod),
                flaky_mod: 2 + next(3),
                flaky_calls: next(4) as u32,
                perm_mod: 3 + next(6),
                max_retries: next(4) as u32,
                delay: next(30),
                rate_limit: [None, Some(10), Some(40), Some(1000)][next(4) as usize],
                work: next(15),
            }
        })
        .collect();
    Workload {
        inputs: next(25),
        gap: next(10),
        stages,
        with_errors: next(2) == 0,
    }
}

/// What a run of a workload observed.
#[derive(Debug, Default)]
struct Observed {
    outputs: Vec<u64>,
    errors: Vec<StageError<u64>>,
    /// Per stage: the instants of each item's first call.
    first_calls: Vec<Vec<Duration>>,
    metrics: Option<PipelineMetrics>,
    errors_closed_after_output: bool,
}

fn run_workload(seed: u64, w: &Workload) -> Observed {
    let obs = Rc::new(RefCell::new(Observed {
        first_calls: vec![Vec::new(); w.stages.len()],
        ..Observed::default()
    }));
    let o = obs.clone();
    let w = w.clone();
    sim_run(seed, move |s| async move {
        let input: Channel<u64> = s.channel(0);
        let mut specs = Vec::new();
        for (i, g) in w.stages.iter().enumerate() {
            let (g2, s2, o2) = (g.clone(), s.clone(), o.clone());
            let calls: Rc<RefCell<BTreeMap<u64, u32>>> = Rc::default();
            let mut spec = StageSpec::new(g.workers, move |v: u64| {
                let (g, s, o, calls) = (g2.clone(), s2.clone(), o2.clone(), calls.clone());
                async move {
                    let n = {
                        let mut c = calls.borrow_mut();
                        let e = c.entry(v).or_insert(0);
                        *e += 1;
                        *e
                    };
                    if n == 1 {
                        o.borrow_mut().first_calls[i].push(s.now());
                    }
                    s.sleep(ms(g.work)).await;
                    if v % g.perm_mod == 1 {
                        return Err(permanent(format!("perm {v}")));
                    }
                    if v % g.fail_mod == g.fail_rem {
                        return Err(Failure::Transient(format!("bad {v}")));
                    }
                    if v.is_multiple_of(g.flaky_mod) && n <= g.flaky_calls {
                        return Err(Failure::Transient(format!("flaky {v}")));
                    }
                    Ok(v)
                }
            })
            .retries(g.max_retries, ms(g.delay))
            .name(&format!("s{}", i + 1));
            if let Some(r) = g.rate_limit {
                spec = spec.rate_limit(r as f64);
            }
            specs.push(spec);
        }
        let p = pipeline_with(s.runtime(), &s, input.clone(), specs, w.with_errors, None);
        o.borrow_mut().metrics = Some(p.metrics.clone());
        let (s2, gap, n) = (s.clone(), w.gap, w.inputs);
        s.spawn("producer", async move {
            for v in 0..n {
                input.send(v).await.unwrap();
                s2.sleep(ms(gap)).await;
            }
            input.close();
        });
        let errs = p.errors.clone();
        let o2 = o.clone();
        let reader = errs.map(|e| {
            s.go(async move {
                while let Some(r) = e.recv().await {
                    o2.borrow_mut().errors.push(r);
                }
            })
        });
        while let Some(v) = p.output.recv().await {
            o.borrow_mut().outputs.push(v);
        }
        if let Some(r) = reader {
            r.join().await.unwrap();
            o.borrow_mut().errors_closed_after_output = true;
        }
    });
    Rc::try_unwrap(obs).unwrap().into_inner()
}

/// Checks every law of `pipeline_with` on one run.
fn check_laws(w: &Workload, o: &Observed) {
    let n = w.inputs as usize;
    let m = o.metrics.as_ref().unwrap();
    let rows = m.get();
    let failed: u64 = rows.iter().map(|r| r.errors).sum();
    // |outputs| + |errors| = |inputs|, each input exactly once.
    assert_eq!(o.outputs.len() as u64 + failed, n as u64, "{w:?}\n{o:?}");
    let mut seen: Vec<u64> = o.outputs.clone();
    if w.with_errors {
        assert!(o.errors_closed_after_output);
        assert_eq!(o.errors.len() as u64, failed);
        seen.extend(o.errors.iter().map(|e| e.value));
        let mut ids = seen.clone();
        ids.sort();
        assert_eq!(ids, (0..w.inputs).collect::<Vec<_>>(), "{w:?}");
        for e in &o.errors {
            let StageLabel::Name(name) = &e.stage else {
                panic!("stages are named")
            };
            let i: usize = name[1..].parse().unwrap();
            let g = &w.stages[i - 1];
            // attempts ≤ 1 + max_retries; a transient failure uses them all.
            assert!(e.attempts >= 1 && e.attempts <= g.max_retries + 1, "{e:?}");
            if !e.error.starts_with("perm") {
                assert_eq!(e.attempts, g.max_retries + 1, "{e:?}");
            } else {
                assert_eq!(e.attempts, 1, "a permanent error is never retried");
            }
            assert_eq!(format!("{e}"), format!("stage {name}: {}", e.error));
        }
    }
    // One worker everywhere keeps the order.
    if w.stages.iter().all(|g| g.workers == 1) {
        assert!(o.outputs.windows(2).all(|p| p[0] < p[1]), "{o:?}");
    }
    // Metrics: every stage sees what the previous one passed on; nothing is in flight; the
    // totals are the sums.
    let mut entering = n as u64;
    for r in &rows {
        assert_eq!(r.processed, entering, "{r:?}");
        assert_eq!(r.in_flight, 0);
        assert!(r.max_time <= r.total_time || r.processed == 0);
        entering -= r.errors;
    }
    assert_eq!(entering, o.outputs.len() as u64);
    let t = m.total();
    assert_eq!(t.processed, rows.iter().map(|r| r.processed).sum::<u64>());
    assert_eq!(t.errors, failed);
    assert_eq!(t.retries, rows.iter().map(|r| r.retries).sum::<u64>());
    assert_eq!(t.in_flight, 0);
    assert_eq!(
        t.total_time,
        rows.iter().map(|r| r.total_time).sum::<Duration>()
    );
    assert_eq!(
        t.max_time,
        rows.iter().map(|r| r.max_time).max().unwrap_or_default()
    );
    // Rate limits: a stage's first calls are at least 1/rate apart (burst 1), whatever its
    // workers.
    for (g, calls) in w.stages.iter().zip(&o.first_calls) {
        if let Some(r) = g.rate_limit {
            let period = Duration::from_secs(1) / r as u32;
            let mut c = calls.clone();
            c.sort();
            for p in c.windows(2) {
                assert!(p[1] - p[0] >= period, "{g:?}: {c:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn laws_hold_for_generated_workloads(w in workload(), seed in 0u64..1_000_000) {
        let o = run_workload(seed, &w);
        check_laws(&w, &o);
    }
}

#[test]
fn laws_hold_over_a_thousand_seeds() {
    for seed in 0..1000 {
        let w = workload_from(seed);
        let o = run_workload(seed, &w);
        check_laws(&w, &o);
    }
}

// ---------------------------------------------------------------------------------------------
// Exact instants
// ---------------------------------------------------------------------------------------------

/// An item that always fails is called at 0, 100, 200, 300 (max_retries 3, retry_delay 100)
/// and its record is sent at 300; with a backoff, at 0, 10, 30, 70.
#[test]
fn retry_delays_at_exact_instants() {
    for (spec_retry, want) in [
        (None, vec![0u64, 100, 200, 300]),
        (
            Some(RetrySettings {
                max_attempts: 4,
                initial_delay: ms(10),
                max_delay: ms(1000),
                multiplier: 2.0,
                jitter: false,
            }),
            vec![0, 10, 30, 70],
        ),
    ] {
        sim_run(1, move |s| async move {
            let input: Channel<u64> = s.channel(1);
            let calls: Rc<RefCell<Vec<u64>>> = Rc::default();
            let (c2, s2) = (calls.clone(), s.clone());
            let mut spec = StageSpec::new(1, move |_v: u64| {
                let (c, s) = (c2.clone(), s2.clone());
                async move {
                    c.borrow_mut().push(s.now().as_millis() as u64);
                    Err::<u64, _>(Failure::Transient("down".to_string()))
                }
            });
            spec = match spec_retry {
                None => spec.retries(3, ms(100)),
                Some(r) => spec.retry(r),
            };
            let p = pipeline_with(s.runtime(), &s, input.clone(), vec![spec], true, None);
            input.send(7).await.unwrap();
            input.close();
            let e = p.errors.unwrap().recv().await.unwrap();
            assert_eq!(s.now().as_millis() as u64, *want.last().unwrap());
            assert_eq!(e.attempts, 4);
            assert_eq!(e.value, 7);
            assert_eq!(e.stage, StageLabel::Index(1));
            assert_eq!(format!("{e}"), "stage 1: down");
            assert_eq!(*calls.borrow(), want);
            assert!(p.output.recv().await.is_none());
            assert_eq!(p.metrics.total().retries, 3);
        });
    }
}

/// rate_limit 10: items waiting at t=0 are called at 0, 100, 200, 300 by two workers; after
/// an idle second the next item goes at once (the stage holds one token, burst 1), the one
/// after it 100 ms later.
#[test]
fn rate_limited_spacing_at_exact_instants() {
    for seed in 0..50 {
        sim_run(seed, |s| async move {
            let input: Channel<u64> = s.channel(10);
            let calls: Rc<RefCell<Vec<u64>>> = Rc::default();
            let (c2, s2) = (calls.clone(), s.clone());
            let spec = StageSpec::new(2, move |v: u64| {
                let (c, s) = (c2.clone(), s2.clone());
                async move {
                    c.borrow_mut().push(s.now().as_millis() as u64);
                    Ok(v)
                }
            })
            .rate_limit(10.0);
            let p = pipeline_with(s.runtime(), &s, input.clone(), vec![spec], true, None);
            for v in 0..4 {
                input.send(v).await.unwrap();
            }
            for _ in 0..4 {
                p.output.recv().await.unwrap();
            }
            s.sleep(ms(1000)).await;
            let t0 = s.now().as_millis() as u64;
            input.send(4).await.unwrap();
            input.send(5).await.unwrap();
            input.close();
            while p.output.recv().await.is_some() {}
            let mut c = calls.borrow().clone();
            c.sort();
            assert_eq!(c, vec![0, 100, 200, 300, t0, t0 + 100]);
        });
    }
}

/// A fractional rate: 2.5 items per second is one every 400 ms.
#[test]
fn fractional_rate_limit() {
    sim_run(3, |s| async move {
        let input: Channel<u64> = s.channel(10);
        let calls: Rc<RefCell<Vec<u64>>> = Rc::default();
        let (c2, s2) = (calls.clone(), s.clone());
        let spec = StageSpec::new(1, move |v: u64| {
            let (c, s) = (c2.clone(), s2.clone());
            async move {
                c.borrow_mut().push(s.now().as_millis() as u64);
                Ok(v)
            }
        })
        .rate_limit(2.5);
        let p = pipeline_with(s.runtime(), &s, input.clone(), vec![spec], false, None);
        for v in 0..3 {
            input.send(v).await.unwrap();
        }
        input.close();
        while p.output.recv().await.is_some() {}
        assert_eq!(*calls.borrow(), vec![0, 400, 800]);
    });
}

/// Metrics in virtual ms: avg and max of a stage whose calls take 10 and 30 ms.
#[test]
fn metrics_times_are_exact() {
    sim_run(2, |s| async move {
        let input: Channel<u64> = s.channel(10);
        let s2 = s.clone();
        let spec = StageSpec::new(1, move |v: u64| {
            let s = s2.clone();
            async move {
                s.sleep(ms(v)).await;
                Ok(v)
            }
        })
        .name("work");
        let p = pipeline_with(s.runtime(), &s, input.clone(), vec![spec], false, None);
        input.send(10).await.unwrap();
        input.send(30).await.unwrap();
        input.close();
        while p.output.recv().await.is_some() {}
        let m = p.metrics.stage(&StageLabel::Name("work".into())).unwrap();
        assert_eq!((m.processed, m.errors, m.in_flight), (2, 0, 0));
        assert_eq!(m.avg_time(), ms(20));
        assert_eq!(m.max_time, ms(30));
    });
}

/// No stage: the output is the input and the errors channel is closed at once.
#[test]
fn no_stage() {
    sim_run(1, |s| async move {
        let input: Channel<u64> = s.channel(1);
        let p = pipeline_with(s.runtime(), &s, input.clone(), vec![], true, None);
        assert!(p.output.same(&input));
        assert!(p.errors.unwrap().recv().await.is_none());
        input.close();
    });
}

// ---------------------------------------------------------------------------------------------
// The dynamic pipeline
// ---------------------------------------------------------------------------------------------

/// One change or send of a generated dynamic workload.
#[derive(Debug, Clone)]
enum Step {
    Send,
    Add(usize),
    Remove(usize),
    Sleep(u64),
}

fn dyn_steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(Step::Send),
            2 => (0usize..4).prop_map(Step::Add),
            2 => (0usize..4).prop_map(Step::Remove),
            1 => (0u64..20).prop_map(Step::Sleep),
        ],
        0..40,
    )
}

fn steps_from(seed: u64) -> Vec<Step> {
    let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    (0..next(30))
        .map(|_| match next(9) {
            0..=3 => Step::Send,
            4 | 5 => Step::Add(next(4) as usize),
            6 | 7 => Step::Remove(next(4) as usize),
            _ => Step::Sleep(next(20)),
        })
        .collect()
}

/// Values are paths: `id` then the stages (by add number) it went through. Checks: nothing
/// dropped or duplicated; stages visited in pipeline order, each once; a stage removed before
/// an item was sent, or added after it entered, never sees it; a stage added before it was sent
/// and never removed always does. (An item enters when the router takes it up, which may be
/// after its unbuffered send completed, but always before the next item is received.)
/// When a stage was added and removed, in driver steps.
type Span = (usize, Option<usize>);

fn run_dynamic(seed: u64, steps: &[Step]) {
    let steps = steps.to_vec();
    sim_run(seed, move |s| async move {
        let input: Channel<String> = s.channel(0);
        let p = DynamicPipeline::new(s.runtime(), &s, input.clone(), None);
        // For each add number: when it was added and removed (in driver order).
        let log: Rc<RefCell<Vec<Span>>> = Rc::default();
        let out = p.output();
        let collector = s.go(async move {
            let mut got = Vec::new();
            while let Some(v) = out.recv().await {
                got.push(v);
            }
            got
        });
        let mut clock = 0usize;
        let mut live: BTreeMap<usize, usize> = BTreeMap::new(); // slot -> add number
        let mut sent: Vec<usize> = Vec::new(); // item -> clock when sent
        for st in steps {
            clock += 1;
            match st {
                Step::Send => {
                    let id = sent.len();
                    sent.push(clock);
                    input.send(format!("{id}")).await.unwrap();
                    clock += 1;
                }
                Step::Add(slot) => {
                    if live.contains_key(&slot) {
                        assert!(
                            p.add_stage(&s, &format!("slot{slot}"), 1, |v| async move { v })
                                .is_err()
                        );
                        continue;
                    }
                    let k = log.borrow().len();
                    log.borrow_mut().push((clock, None));
                    live.insert(slot, k);
                    let s2 = s.clone();
                    let workers = 1 + (k % 3);
                    p.add_stage(&s, &format!("slot{slot}"), workers, move |v: String| {
                        let s = s2.clone();
                        async move {
                            s.sleep(ms((k as u64 * 7) % 5)).await;
                            format!("{v},{k}")
                        }
                    })
                    .unwrap();
                }
                Step::Remove(slot) => match live.remove(&slot) {
                    Some(k) => {
                        assert!(p.remove_stage(&format!("slot{slot}")));
                        log.borrow_mut()[k].1 = Some(clock);
                    }
                    None => assert!(!p.remove_stage(&format!("slot{slot}"))),
                },
                Step::Sleep(d) => s.sleep(ms(d)).await,
            }
        }
        input.close();
        let got = collector.join().await.unwrap();
        assert_eq!(got.len(), sent.len(), "{got:?}");
        let mut ids: Vec<usize> = Vec::new();
        let log = log.borrow();
        for v in &got {
            let mut parts = v.split(',').map(|p| p.parse::<usize>().unwrap());
            let id = parts.next().unwrap();
            ids.push(id);
            let path: Vec<usize> = parts.collect();
            assert!(path.windows(2).all(|p| p[0] < p[1]), "order: {v}");
            let sent_at = sent[id];
            // The router takes an item up before it receives the next one: a stage added once
            // the next item's send has completed came after this item entered.
            let entered_by = sent.get(id + 1).map(|&c| c + 1).unwrap_or(usize::MAX);
            for &k in &path {
                let (added, removed) = log[k];
                assert!(
                    added < entered_by,
                    "{v}: stage {k} added after the item entered"
                );
                assert!(
                    removed.is_none_or(|r| r > sent_at),
                    "{v}: stage {k} removed before the item was sent"
                );
            }
            // A stage live for the item's whole passage is visited.
            for (k, &(added, removed)) in log.iter().enumerate() {
                if added < sent_at && removed.is_none() {
                    assert!(path.contains(&k), "{v}: skipped live stage {k}");
                }
            }
        }
        ids.sort();
        assert_eq!(ids, (0..sent.len()).collect::<Vec<_>>());
        assert!(p.output().is_closed());
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn dynamic_laws_for_generated_changes(steps in dyn_steps(), seed in 0u64..1_000_000) {
        run_dynamic(seed, &steps);
    }
}

#[test]
fn dynamic_laws_over_a_thousand_seeds() {
    for seed in 0..1000 {
        run_dynamic(seed, &steps_from(seed));
    }
}

/// An item a worker holds when its stage is removed finishes there; items queued behind it
/// skip the stage; the output stays one channel.
#[test]
fn dynamic_in_flight_item_finishes_where_it_is() {
    for seed in 0..100 {
        sim_run(seed, |s| async move {
            let input: Channel<u64> = s.channel(10);
            let p = DynamicPipeline::new(s.runtime(), &s, input.clone(), None);
            let s2 = s.clone();
            p.add_stage(&s, "slow", 1, move |v: u64| {
                let s = s2.clone();
                async move {
                    s.sleep(ms(100)).await;
                    v * 10
                }
            })
            .unwrap();
            let out = p.output();
            for v in 1..=3 {
                input.send(v).await.unwrap();
            }
            s.sleep(ms(50)).await;
            // 1 is inside "slow"; 2 and 3 are queued for it.
            assert!(p.remove_stage("slow"));
            assert!(!p.remove_stage("slow"));
            input.close();
            let mut got = Vec::new();
            while let Some(v) = out.recv().await {
                got.push(v);
            }
            got.sort();
            assert_eq!(got, vec![2, 3, 10]);
            assert!(p.output().same(&out));
        });
    }
}

/// A stage function that panics drops its item (a note) and the worker goes on.
#[test]
fn dynamic_failure_drops_the_item_only() {
    sim_run(4, |s| async move {
        let input: Channel<u64> = s.channel(10);
        let p = DynamicPipeline::new(s.runtime(), &s, input.clone(), None);
        p.add_stage(&s, "picky", 1, |v: u64| async move {
            assert!(v != 2, "two");
            v
        })
        .unwrap();
        for v in 1..=3 {
            input.send(v).await.unwrap();
        }
        input.close();
        let out = p.output();
        let mut got = Vec::new();
        while let Some(v) = out.recv().await {
            got.push(v);
        }
        assert_eq!(got, vec![1, 3]);
    });
}

// ---------------------------------------------------------------------------------------------
// Lua: the laws, the shape of records and metrics, misuse, sharing, real time
// ---------------------------------------------------------------------------------------------

#[test]
fn lua_error_records_and_laws_over_seeds() {
    let src = r#"
local input = goroutine.channel(4)
local out, errs = goroutine.pipeline_with_retry(input, {
  {name = "parse", workers = 2, max_retries = 1, retry_delay = 5, fn = function(x)
    if x % 3 == 0 then return nil, "div3" end
    if x % 5 == 0 then error({code = x}) end
    if x % 7 == 0 then return nil, goroutine.permanent("seven") end
    return x
  end},
  {workers = 3, fn = function(x) if x % 4 == 0 then error("four") end return x * 2 end},
})
goroutine.spawn(function() for i = 1, 30 do input:send(i) end input:close() end)
local errors = {}
local r = goroutine.async(function()
  errs:range(function(e) errors[#errors + 1] = e end)
end)
local n = 0
out:range(function() n = n + 1 end)
goroutine.await(r)
assert(n + #errors == 30, n .. " + " .. #errors)
for _, e in ipairs(errors) do
  local s = tostring(e)
  assert(s == "stage " .. e.stage .. ": " .. e.error, s)
  assert(("x: " .. e) == "x: " .. s and (e .. "!") == s .. "!")
  if e.value % 3 == 0 then assert(e.stage == "parse" and e.attempts == 2 and e.error == "div3") end
  if e.value == 7 or e.value == 14 or e.value == 28 then assert(e.attempts == 1 and e.error == "seven") end
  -- pipeline_with_retry retries a stage with no retry field 3 times, 100 ms apart.
  if e.stage == 2 then assert(e.attempts == 4 and e.error:find("four")) end
end
"#;
    for seed in 0..200 {
        let r = common::run(src, seed);
        assert!(r.outcome.is_pass(), "seed {seed}: {}", r.outcome);
    }
}

#[test]
fn lua_metrics_sum_to_the_totals() {
    common::expect_pass_on_seeds(
        r#"
local input = goroutine.channel()
local out, metrics = goroutine.pipeline_with_metrics(input, {
  {name = "a", workers = 2, max_retries = 2, retry_delay = 1, fn = function(x)
    goroutine.sleep(x % 3)
    if x % 4 == 0 then return nil, "no" end
    return x
  end},
  {workers = 1, fn = function(x) goroutine.sleep(1) return x end},
})
goroutine.spawn(function() for i = 1, 20 do input:send(i) end input:close() end)
out:range(function() end)
local m = metrics:get()
assert(m.a.processed == 20 and m.a.errors == 5 and m.a.retries == 10, m.a.retries)
assert(m[1] == nil and m[2].processed == 15 and m[2].avg_time == 1 and m[2].max_time == 1)
for _, k in ipairs({"processed", "errors", "retries", "in_flight", "total_time"}) do
  assert(m.total[k] == m.a[k] + m[2][k], k)
end
assert(m.total.in_flight == 0 and m.total.max_time == math.max(m.a.max_time, m[2].max_time))
"#,
    );
}

#[test]
fn lua_dynamic_pipeline_adds_and_removes_while_running() {
    common::expect_pass_on_seeds(
        r#"
local input = goroutine.channel()
local p = goroutine.dynamic_pipeline(input)
local out = p:output()
local got = {}
local c = goroutine.async(function() out:range(function(v) got[#got + 1] = v end) end)
p:add_stage{name = "double", workers = 2, fn = function(x) goroutine.sleep(3) return x * 2 end}
for i = 1, 5 do input:send(i) end
p:add_stage{name = "plus", fn = function(x) return x + 1000 end}
for i = 6, 10 do input:send(i) end
assert(p:remove_stage("double") and not p:remove_stage("double"))
for i = 11, 15 do input:send(i) end
assert(#p:stages() == 1 and p:stages()[1] == "plus")
assert(p:output() ~= nil and tostring(p:output()) == tostring(out))
input:close()
goroutine.await(c)
assert(#got == 15, #got)
local seen = {}
for _, v in ipairs(got) do seen[v] = true end
-- 1-5 entered before "plus" existed: doubled only (or not doubled if it was removed first:
-- never, they were taken before the removal... but may still be queued: then they skip it).
for i = 11, 15 do assert(seen[i + 1000], i) end
"#,
    );
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const C: &str = "local ch = goroutine.channel(1)";
    // The dynamic pipeline's router is a goroutine: made in the misusing statement (so the
    // misusing goroutine is g2) on a closed input (so it ends).
    const CLOSED: &str = "local c = goroutine.channel() c:close()";
    check_all(&[
        m(
            C,
            "goroutine.pipeline_with_errors(5, {})",
            "goroutine.pipeline_with_errors",
            "expects a channel (got 5)",
        ),
        m(
            C,
            "goroutine.pipeline_with_errors(ch, {{workers = 1}})",
            "goroutine.pipeline_with_errors",
            "stage 1 needs fn = function",
        ),
        m(
            C,
            "goroutine.pipeline_with_retry(ch, {{fn = print, max_retries = -1}})",
            "goroutine.pipeline_with_retry",
            "stage 1 max_retries must be a non-negative integer (got -1)",
        ),
        m(
            C,
            "goroutine.pipeline_with_retry(ch, {{fn = print, retry_delay = 'soon'}})",
            "goroutine.pipeline_with_retry",
            "stage 1 retry_delay must be a non-negative number of milliseconds",
        ),
        m(
            C,
            "goroutine.pipeline_with_retry(ch, {{fn = print, retry_delay = 5, backoff = {}}})",
            "goroutine.pipeline_with_retry",
            "stage 1 takes retry_delay or backoff, not both",
        ),
        m(
            C,
            "goroutine.pipeline_with_retry(ch, {{fn = print, backoff = {multiplier = 0}}})",
            "goroutine.pipeline_with_retry",
            "multiplier must be a number >= 1",
        ),
        m(
            C,
            "goroutine.pipeline_with_rate_limit(ch, {{fn = print, rate_limit = 0}})",
            "goroutine.pipeline_with_rate_limit",
            "stage 1 rate_limit must be a positive number of items per second (got 0)",
        ),
        m(
            C,
            "goroutine.pipeline_with_metrics(ch, {{fn = print, name = 'x'}, {fn = print, name = 'x'}})",
            "goroutine.pipeline_with_metrics",
            "two stages are named \"x\"",
        ),
        m(
            C,
            "goroutine.pipeline_with_metrics(ch, {{fn = print, name = 'total'}})",
            "goroutine.pipeline_with_metrics",
            "may not be named \"total\"",
        ),
        m(
            C,
            "goroutine.dynamic_pipeline({})",
            "goroutine.dynamic_pipeline",
            "expects a channel (got table)",
        ),
        m(
            CLOSED,
            "goroutine.dynamic_pipeline(c):add_stage{name = 'a'}",
            "dynamic_pipeline:add_stage",
            "the stage needs fn = function (got nil)",
        ),
        m(
            CLOSED,
            "goroutine.dynamic_pipeline(c):add_stage{fn = print}",
            "dynamic_pipeline:add_stage",
            "the stage needs name = string (got nil)",
        ),
        m(
            "local c = goroutine.channel() c:close() local function mk() local p = goroutine.dynamic_pipeline(c) p:add_stage{name = 'a', fn = print} return p end",
            "mk():add_stage{name = 'a', fn = print}",
            "dynamic_pipeline:add_stage",
            "a stage named \"a\" is already in the pipeline",
        ),
        m(
            CLOSED,
            "goroutine.dynamic_pipeline(c):remove_stage(3)",
            "dynamic_pipeline:remove_stage",
            "expects a stage name (got 3)",
        ),
    ]);
}

/// One dynamic pipeline made in Rust, with a Rust stage, gets a Lua stage too; one metrics
/// object read from Lua and from Rust.
#[test]
fn lua_and_rust_share_one_pipeline() {
    use gosim::lua::LuaValue;
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let input: Channel<LuaValue> = Channel::new(sim.runtime(), 0, None);
    let p = DynamicPipeline::new(sim.runtime(), &sim, input.clone(), None);
    p.add_stage(&sim, "rust", 1, |v: LuaValue| async move {
        match v.0 {
            mlua::Value::Integer(i) => LuaValue(mlua::Value::Integer(i * 10)),
            other => LuaValue(other),
        }
    })
    .unwrap();
    world.expose("p", p.clone()).unwrap();
    world.expose_channel("input", &input).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
p:add_stage{name = "lua", fn = function(x) return x + 1 end}
assert(p:stages()[1] == "rust" and p:stages()[2] == "lua")
local out = p:output()
for i = 1, 3 do input:send(i) end
input:close()
local got = {}
out:range(function(v) got[#got + 1] = v end)
table.sort(got)
assert(#got == 3 and got[1] == 11 and got[3] == 31)
"#,
        )
        .unwrap();
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local input = goroutine.channel(10)
local out, errs = goroutine.pipeline_with_rate_limit(input, {
  {workers = 2, rate_limit = 200, max_retries = 1, retry_delay = 2,
   fn = function(x) if x == 3 then return nil, "three" end return x end},
})
for i = 1, 5 do input:send(i) end
input:close()
local n = 0
out:range(function() n = n + 1 end)
local e = errs:receive()
assert(n == 4 and e.value == 3 and e.attempts == 2 and errs:receive() == nil)
local input2 = goroutine.channel(10)
local p = goroutine.dynamic_pipeline(input2)
p:add_stage{name = "a", workers = 2, fn = function(x) goroutine.sleep(1) return x end}
for i = 1, 5 do input2:send(i) end
p:remove_stage("a")
input2:close()
local m = 0
p:output():range(function() m = m + 1 end)
assert(m == 5)
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}

/// In a dynamic pipeline, a stage `fn` that returns `nil, err` drops only that item, like one
/// that raises (its stages are the same `Stage`s as `pipeline_with_*`'s).
#[test]
fn lua_dynamic_failures_drop_the_item_only() {
    common::expect_pass_on_seeds(
        r#"
local input = goroutine.channel(10)
local p = goroutine.dynamic_pipeline(input)
p:add_stage{name = "check", workers = 2, fn = function(x)
  if x == 2 then return nil, "two" end
  if x == 3 then error("three") end
  return x
end}
for i = 1, 5 do input:send(i) end
input:close()
local got = {}
p:output():range(function(v) got[#got + 1] = v end)
table.sort(got)
assert(#got == 3 and got[1] == 1 and got[2] == 4 and got[3] == 5)
"#,
    );
}

/// The wait-for graph: a pipeline whose output nobody reads, while main waits for its errors,
/// is a deadlock the run reports (naming the worker blocked on its stage's output); a worker
/// waiting for a rate-limit token is woken by time alone, never a deadlock.
#[test]
fn an_unread_output_is_a_reported_deadlock_and_a_token_wait_is_not() {
    let r = common::run(
        r#"
local input = goroutine.channel(20)
local out, errs = goroutine.pipeline_with_errors(input, {{fn = function(x) return x end}})
for i = 1, 15 do input:send(i) end
input:close()
errs:receive()
"#,
        1,
    );
    match &r.outcome {
        gosim::runtime::Outcome::Fail(f) => {
            assert_eq!(
                f.kind,
                gosim::runtime::FailureKind::Deadlock,
                "{}",
                r.outcome
            );
            assert!(
                r.outcome.to_string().contains("pipeline-1-1"),
                "{}",
                r.outcome
            );
        }
        other => panic!("expected a deadlock, got {other}"),
    }
    common::expect_pass_on_seeds(
        r#"
local input = goroutine.channel(20)
local out = goroutine.pipeline_with_rate_limit(input, {{workers = 3, rate_limit = 1, fn = function(x) return x end}})
for i = 1, 4 do input:send(i) end
input:close()
local n = 0
out:range(function() n = n + 1 end)
assert(n == 4 and goroutine.now() == 3000)
"#,
    );
}

/// A Rust `pipeline_with` over Lua values: Lua feeds it, reads its output and errors, and reads
/// the same metrics object Rust reads.
#[test]
fn lua_and_rust_share_one_pipeline_with_metrics() {
    use gosim::lua::LuaValue;
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(9);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let input: Channel<LuaValue> = Channel::new(sim.runtime(), 0, None);
    let spec = StageSpec::new(2, |v: LuaValue| async move {
        match v.0 {
            mlua::Value::Integer(i) if i % 2 == 0 => Err(Failure::Transient("odd one out".into())),
            other => Ok(LuaValue(other)),
        }
    })
    .name("rust");
    let p = pipeline_with(sim.runtime(), &sim, input.clone(), vec![spec], false, None);
    world.expose("metrics", p.metrics.clone()).unwrap();
    world.expose_channel("input", &input).unwrap();
    world.expose_channel("output", &p.output).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
goroutine.spawn(function() for i = 1, 6 do input:send(i) end input:close() end)
local n = 0
output:range(function() n = n + 1 end)
local m = metrics:get()
assert(n == 3 and m.rust.processed == 6 and m.rust.errors == 3 and m.total.errors == 3)
"#,
        )
        .unwrap();
    let outcome = sim.runtime().run();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(p.metrics.total().processed, 6);
    sim.runtime().shutdown();
}
