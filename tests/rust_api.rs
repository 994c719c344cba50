//! The Rust API: async Rust tasks on the same scheduler, primitives, trace and reports as Lua
//! scenarios, including runs that mix Rust tasks and Lua goroutines over one channel.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
use gosim::runtime::{Config, FailureKind, Outcome, Runtime};
use gosim::sim::Sim;
use gosim::sync::{Case, Channel, SelectResult};
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn producer_consumer(seed: u64, n: i64, cap: usize) -> (gosim::sim::SimReport, Vec<i64>) {
    let sim = Sim::with_seed(seed);
    let s = sim.clone();
    let got = Rc::new(RefCell::new(Vec::new()));
    let out = got.clone();
    let report = sim.run(async move {
        let ch = s.channel::<i64>(cap);
        let tx = ch.clone();
        let t = s.clone();
        s.spawn("producer", async move {
            for i in 1..=n {
                if t.random_below(2) == 0 {
                    t.yield_now().await;
                }
                tx.send(i).await.expect("the channel is open");
            }
            tx.close();
        });
        while let Some(v) = ch.recv().await {
            out.borrow_mut().push(v);
        }
    });
    let values = got.borrow().clone();
    (report, values)
}

#[test]
fn a_rust_producer_consumer_passes_and_its_trace_is_a_snapshot() {
    let (report, got) = producer_consumer(7, 5, 0);
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    assert_eq!(got, [1, 2, 3, 4, 5]);
    insta::assert_snapshot!("rust_producer_consumer", report.trace_text());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// For all seeds, counts and capacities, a channel delivers every message exactly once, in order.
    #[test]
    fn a_channel_delivers_every_message_once_in_order(seed in any::<u64>(), n in 0i64..40, cap in 0usize..5) {
        let (report, got) = producer_consumer(seed, n, cap);
        prop_assert!(report.outcome.is_pass(), "seed {}: {}", seed, report.outcome);
        prop_assert_eq!(got, (1..=n).collect::<Vec<_>>());
    }

    /// For all seeds and task counts, a mutex-protected read-yield-write counter ends at N.
    #[test]
    fn a_mutex_protected_counter_ends_at_n(seed in any::<u64>(), n in 1usize..12) {
        let sim = Sim::with_seed(seed);
        let s = sim.clone();
        let total = Rc::new(Cell::new(0usize));
        let seen = total.clone();
        let report = sim.run(async move {
            let m = s.mutex(());
            let wg = s.wait_group();
            for i in 0..n {
                wg.add(1).expect("add");
                let (m, wg, t, total) = (m.clone(), wg.clone(), s.clone(), seen.clone());
                s.spawn(&format!("worker-{i}"), async move {
                    let guard = m.lock().await;
                    let x = total.get();
                    t.yield_now().await;          // another task may run, but not in here
                    total.set(x + 1);
                    drop(guard);
                    wg.done();
                });
            }
            wg.wait().await;
        });
        prop_assert!(report.outcome.is_pass(), "seed {}: {}", seed, report.outcome);
        prop_assert_eq!(total.get(), n);
    }
}

#[test]
fn a_lock_order_inversion_in_rust_is_reported_as_a_cycle_with_rust_lines() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let (a, b) = (s.mutex(()), s.mutex(()));
        for (name, first, second) in [("w1", a.clone(), b.clone()), ("w2", b.clone(), a.clone())] {
            let t = s.clone();
            s.spawn(name, async move {
                let _first = first.lock().await;
                t.sleep(ms(1)).await;
                let _second = second.lock().await;
            });
        }
        s.sleep(ms(100)).await;
    });
    match &report.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Cycle, "{f}");
            let text = f.to_string();
            assert!(text.contains("w1") && text.contains("w2"), "{text}");
            assert!(
                text.contains("(created at tests/rust_api.rs:"),
                "Rust creation lines: {text}"
            );
            assert!(
                text.contains("blocked in lock at tests/rust_api.rs:"),
                "Rust blocking lines: {text}"
            );
        }
        other => panic!("expected a cycle, got {other}"),
    }
}

#[test]
fn a_panic_in_a_rust_task_fails_the_run_with_the_task_name() {
    let sim = Sim::with_seed(3);
    let s = sim.clone();
    let report = sim.run(async move {
        s.spawn("doomed", async move { panic!("invariant broken: {}", 42) });
        s.sleep(ms(1)).await;
    });
    match &report.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Panic);
            assert_eq!(
                f.task.as_ref().and_then(|t| t.1.clone()).as_deref(),
                Some("doomed")
            );
            assert!(f.message.contains("invariant broken: 42"), "{}", f.message);
        }
        other => panic!("expected a panic, got {other}"),
    }
}

#[test]
fn awaiting_a_foreign_future_fails_clearly_instead_of_hanging() {
    let sim = Sim::with_seed(1);
    let report = sim.run(async move { std::future::pending::<()>().await });
    match &report.outcome {
        Outcome::Fail(f) => assert!(f.message.contains("not a gosim operation"), "{}", f.message),
        other => panic!("expected a failure, got {other}"),
    }
}

#[test]
fn every_primitive_works_from_rust() {
    let sim = Sim::with_seed(11);
    let s = sim.clone();
    let done = Rc::new(Cell::new(false));
    let finished = done.clone();
    let report = sim.run(async move {
        // select with a timeout channel
        let ch = s.channel::<i64>(0);
        let timeout = s.after(ms(50));
        let _ = timeout;
        let r = s.select(vec![Case::Recv(ch.clone())], true).await;
        assert!(matches!(r, SelectResult::Default));
        // semaphore bounds concurrency
        let sem = s.semaphore(2);
        let active = Rc::new(Cell::new(0));
        let max = Rc::new(Cell::new(0));
        let wg = s.wait_group();
        for i in 0..5 {
            wg.add(1).expect("add");
            let (sem, t, wg, active, max) = (
                sem.clone(),
                s.clone(),
                wg.clone(),
                active.clone(),
                max.clone(),
            );
            s.spawn(&format!("job-{i}"), async move {
                let permit = sem.acquire().await;
                active.set(active.get() + 1);
                max.set(max.get().max(active.get()));
                t.sleep(ms(10)).await;
                active.set(active.get() - 1);
                drop(permit);
                wg.done();
            });
        }
        wg.wait().await;
        assert_eq!(max.get(), 2);
        assert_eq!(s.now(), ms(30), "5 jobs of 10 ms, 2 at a time");
        // rwmutex, once, cond, context
        let rw = s.rwlock(0);
        assert_eq!(*rw.read().await, 0);
        *rw.write().await += 1;
        assert_eq!(*rw.read().await, 1);
        let once = s.once();
        assert!(once.call(|| async {}).await);
        assert!(!once.call(|| async {}).await);
        let ctx = s.context().with_timeout(ms(10));
        let err = ctx.done().await;
        assert_eq!(err, gosim::sync::ContextError::DeadlineExceeded);
        assert_eq!(err.to_string(), "context deadline exceeded");
        assert_eq!(s.now(), ms(40));
        let (m, c) = (s.mutex(false), s.cond());
        {
            let (m, c) = (m.clone(), c.clone());
            s.spawn("signaller", async move {
                let mut ready = m.lock().await;
                *ready = true;
                c.signal();
            });
        }
        let mut ready = m.lock().await;
        while !*ready {
            ready = ready.wait(&c).await;
        }
        drop(ready);
        // a ticker, stopped after 3 ticks
        let (ticker, ticks) = s.ticker(ms(5));
        for _ in 0..3 {
            ticks.recv().await.expect("ticks");
        }
        ticker.stop();
        finished.set(true);
    });
    assert!(
        report.outcome.is_pass(),
        "{}\n{}",
        report.outcome,
        report.trace_text()
    );
    assert!(done.get());
}

#[test]
fn rust_tasks_and_lua_goroutines_share_a_channel() {
    for seed in 1..=10 {
        let rt = Runtime::simulated(Config {
            seed,
            ..Config::default()
        });
        let world = LuaWorld::new(&rt, LuaLimits::default()).expect("lua");
        let requests: Channel<LuaValue> = Channel::new(&rt, 0, None);
        requests.resource().set_name("requests");
        world
            .expose_channel("requests", &requests)
            .expect("exposed");
        // The Lua scenario is the main goroutine (g1): spawn it first.
        world
            .spawn_main(
                "client.lua",
                r#"
                local results = {}
                local wg = goroutine.wait_group()
                for i = 1, 3 do
                  wg:add(1)
                  goroutine.spawn{name = "client-" .. i, fn = function()
                    local reply = goroutine.channel(1)
                    requests:send({n = i, reply = reply})
                    results[i] = reply:receive()
                    wg:done()
                  end}
                end
                wg:wait()
                assert(results[1] == 1 and results[2] == 4 and results[3] == 9, "squares from the Rust server")
                "#,
            )
            .expect("loads");
        let sim = Sim::on(&rt);
        // A Rust "server": receives {n = ..., reply = channel} tables and answers n * n on the
        // reply channel, through the same channel type the script uses.
        sim.spawn_daemon("rust-server", async move {
            while let Some(LuaValue(req)) = requests.recv().await {
                let mlua::Value::Table(t) = req else {
                    panic!("a request is a table")
                };
                let n: i64 = t.get("n").expect("n");
                let reply =
                    LuaWorld::channel_of(&t.get("reply").expect("reply")).expect("a channel");
                reply
                    .send(LuaValue(mlua::Value::Integer(n * n)))
                    .await
                    .expect("open");
            }
        });
        let outcome = rt.run();
        let events = rt.take_events();
        rt.shutdown();
        assert!(outcome.is_pass(), "seed {seed}: {outcome}");
        let text: String = events.iter().map(|e| e.to_text() + "\n").collect();
        assert!(
            text.contains("g2(rust-server) receive channel#1\"requests\""),
            "{text}"
        );
    }
}

#[test]
fn the_observability_tools_work_from_rust_tasks() {
    use gosim::patterns::{ChannelInspector, DeadlockDetector, Profiler};

    let sim = Sim::with_seed(5);
    let s = sim.clone();
    let report = sim.run(async move {
        let profiler = Profiler::new(s.runtime());
        profiler.start();
        let ch = s.channel::<i64>(2);
        let inspector = ChannelInspector::new(&ch);
        let detector = DeadlockDetector::new(s.runtime(), ms(20));
        let stuck = s.channel::<i64>(0);
        let waiting = stuck.clone();
        s.spawn("waiter", async move {
            waiting.recv().await;
        });
        for i in 0..3 {
            let tx = ch.clone();
            s.spawn(&format!("sender-{i}"), async move {
                tx.send(i).await.expect("open");
            });
        }
        s.sleep(ms(30)).await;
        let info = detector
            .check()
            .expect("the waiter and the third sender are stuck");
        assert_eq!(info.stuck_count, 2);
        assert_eq!(info.blocked_channels, 2);
        assert!(
            detector.check().is_none(),
            "the same situation is reported once"
        );
        let st = inspector.stats();
        assert_eq!((st.total_sent, st.len, st.blocked_senders), (2, 2, 1));
        ch.recv().await.expect("a value");
        stuck.send(9).await.expect("open");
        s.sleep(ms(1)).await;
        let p = profiler.stats();
        assert_eq!(p.total_created, 4);
        assert_eq!(p.total_created, p.active + p.completed + p.failed);
        ch.recv().await.expect("a value");
        ch.recv().await.expect("a value");
    });
    assert!(
        report.outcome.is_pass(),
        "{}\n{}",
        report.outcome,
        report.trace_text()
    );
}
