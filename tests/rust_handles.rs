//! The Rust API's tokio-shaped handles (issue 14, part 3): `JoinHandle<T>` from `spawn`, main's
//! value in the report, `Mutex<T>`/`RwLock<T>` guards, semaphore permits, `WaitGroup::done`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use gosim::runtime::{FailureKind, Outcome};
use gosim::sim::{Sim, SimReport};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_join_handle_gives_the_task_value_after_the_task_time() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report: SimReport<(String, Duration)> = sim.run(async move {
        let t = s.clone();
        let h = s.spawn("worker", async move {
            t.sleep(ms(25)).await;
            vec![String::from("a"), String::from("b")] // moved out, never cloned
        });
        let v = h.await.expect("no panic");
        (v.concat(), s.now())
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    assert_eq!(report.value, Some((String::from("ab"), ms(25))));
}

#[test]
fn awaiting_a_finished_task_is_not_an_operation_and_leaves_the_trace_alone() {
    let run = |await_it: bool| {
        let sim = Sim::new(gosim::runtime::Config {
            seed: 4,
            trace: true,
            ..Default::default()
        });
        let s = sim.clone();
        sim.run(async move {
            let h = s.spawn("quick", async { 7 });
            s.sleep(ms(1)).await;
            assert!(h.is_finished());
            if await_it {
                assert_eq!(h.await, Ok(7));
            }
        })
    };
    let (with, without) = (run(true), run(false));
    assert!(with.outcome.is_pass(), "{}", with.outcome);
    assert_eq!(with.trace_text(), without.trace_text());
}

#[test]
fn a_panic_in_a_task_whose_handle_is_held_is_the_awaiter_error_not_a_failure() {
    let sim = Sim::with_seed(2);
    let s = sim.clone();
    let report = sim.run(async move {
        let t = s.clone();
        let h = s.spawn("doomed", async move {
            t.sleep(ms(3)).await;
            if t.now() > ms(1) {
                panic!("invariant broken: {}", 42);
            }
            1
        });
        let id = h.id();
        let err = h.await.expect_err("it panicked");
        assert!(err.is_panic());
        assert_eq!(err.id(), id);
        assert_eq!(err.name(), Some("doomed"));
        assert_eq!(err.panic_message(), "invariant broken: 42");
        assert_eq!(
            err.to_string(),
            format!("task {id} panicked: invariant broken: 42")
        );
        s.now()
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    assert_eq!(report.value, Some(ms(3)));
}

#[test]
fn a_panic_in_a_task_whose_handle_was_dropped_fails_the_run() {
    let sim = Sim::with_seed(2);
    let s = sim.clone();
    let report = sim.run(async move {
        let t = s.clone();
        let h = s.spawn("detached", async move {
            t.sleep(ms(3)).await;
            panic!("nobody is listening");
        });
        drop(h);
        s.sleep(ms(10)).await;
        "main finished"
    });
    match &report.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Panic, "{f}");
            assert!(f.message.contains("nobody is listening"), "{f}");
            assert_eq!(
                f.task.as_ref().and_then(|t| t.1.clone()).as_deref(),
                Some("detached")
            );
        }
        other => panic!("expected a panic, got {other}"),
    }
    assert_eq!(report.value, None, "main never finished");
}

#[test]
fn a_task_awaiting_a_stuck_task_is_reported_at_the_spawn_line() {
    let sim = Sim::with_seed(3);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<i64>(0);
        let h = s.spawn("stuck", async move { ch.recv().await });
        let _ = h.await;
    });
    match &report.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Deadlock, "{f}");
            let text = f.to_string();
            assert!(text.contains("tests/rust_handles.rs:"), "{text}");
            assert!(!text.contains("src/sim/join.rs"), "{text}");
        }
        other => panic!("expected a deadlock, got {other}"),
    }
}

#[test]
fn a_guarded_lock_order_inversion_beside_a_ticker_names_both_tasks_and_lines() {
    let sim = Sim::with_seed(7);
    let s = sim.clone();
    let report = sim.run(async move {
        let (ticker, ticks) = s.ticker(ms(5));
        s.spawn_daemon(
            "heartbeat",
            async move { while ticks.recv().await.is_some() {} },
        );
        let accounts = s.mutex(100i64);
        let audit = s.mutex(Vec::<i64>::new());
        let (a, b) = (accounts.clone(), audit.clone());
        let t = s.clone();
        s.spawn("transfer", async move {
            let mut balance = a.lock().await;
            t.sleep(ms(1)).await;
            let mut log = b.lock().await;
            *balance -= 10;
            log.push(-10);
        });
        let t = s.clone();
        s.spawn("auditor", async move {
            let log = audit.lock().await;
            t.sleep(ms(1)).await;
            let balance = accounts.lock().await;
            assert_eq!(*balance + log.iter().sum::<i64>(), 100);
        });
        s.sleep(Duration::from_secs(60)).await;
        ticker.stop();
    });
    match &report.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Cycle, "{f}");
            let text = f.to_string();
            assert!(
                text.contains("transfer") && text.contains("auditor"),
                "{text}"
            );
            assert!(text.contains("held by"), "holders: {text}");
            assert!(
                text.contains("(created at tests/rust_handles.rs:"),
                "creation lines: {text}"
            );
            assert!(
                text.contains("blocked in lock at tests/rust_handles.rs:"),
                "blocking lines: {text}"
            );
            assert_eq!(f.time, ms(1), "the cycle is found when it closes");
        }
        other => panic!("expected a cycle, got {other}"),
    }
}

#[test]
fn a_mutex_guard_unlocks_on_drop_even_on_an_early_return() {
    async fn withdraw(m: &gosim::sim::Mutex<i64>, amount: i64) -> Result<i64, String> {
        let mut balance = m.lock().await;
        if *balance < amount {
            return Err(format!("only {}", *balance)); // the guard unlocks here too
        }
        *balance -= amount;
        Ok(*balance)
    }
    let sim = Sim::with_seed(5);
    let s = sim.clone();
    let report = sim.run(async move {
        let m = s.mutex(50i64);
        assert_eq!(withdraw(&m, 80).await, Err("only 50".to_string()));
        assert!(!m.is_locked());
        assert_eq!(withdraw(&m, 20).await, Ok(30));
        let g = m.try_lock().expect("free");
        assert!(m.try_lock().is_none());
        assert_eq!(*g, 30);
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}

#[test]
fn an_rwlock_lets_readers_share_and_a_writer_exclude_them() {
    let sim = Sim::with_seed(6);
    let s = sim.clone();
    let report = sim.run(async move {
        let cfg = s.rwlock(1u32);
        let wg = s.wait_group();
        for i in 0..3 {
            wg.add(1).expect("add");
            let (cfg, t, wg) = (cfg.clone(), s.clone(), wg.clone());
            s.spawn(&format!("reader-{i}"), async move {
                let v = cfg.read().await;
                t.sleep(ms(10)).await; // all three hold it at once
                assert_eq!(*v, 1);
                drop(v);
                wg.done();
            });
        }
        s.sleep(ms(1)).await; // every reader holds it now
        let mut w = cfg.write().await; // waits for the readers to leave
        assert_eq!(s.now(), ms(10), "readers share the lock");
        assert!(cfg.try_read().is_none());
        *w = 2;
        drop(w);
        wg.wait().await;
        *cfg.try_read().expect("free")
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    assert_eq!(report.value, Some(2));
}

#[test]
fn semaphore_permits_bound_concurrency_and_are_given_back_on_drop() {
    let sim = Sim::with_seed(8);
    let s = sim.clone();
    let report = sim.run(async move {
        let sem = s.semaphore(2);
        let (active, max) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let mut handles = Vec::new();
        for i in 0..5 {
            let (sem, t, active, max) = (sem.clone(), s.clone(), active.clone(), max.clone());
            handles.push(s.spawn(&format!("job-{i}"), async move {
                let _permit = sem.acquire().await;
                active.set(active.get() + 1);
                max.set(max.get().max(active.get()));
                t.sleep(ms(10)).await;
                active.set(active.get() - 1);
                i
            }));
        }
        let mut done = Vec::new();
        for h in handles {
            done.push(h.await.expect("no panic"));
        }
        assert_eq!(done, [0, 1, 2, 3, 4]);
        assert_eq!(max.get(), 2);
        assert_eq!(s.now(), ms(30), "5 jobs of 10 ms, 2 at a time");
        assert_eq!(sem.available(), 2, "every permit came back");
        // An explicit release, then a waiter served FIFO by another task's permit.
        let p = sem.acquire().await;
        p.release();
        assert_eq!(sem.available(), 2);
        let (s2, t) = (sem.clone(), s.clone());
        let h = s.spawn("holder", async move {
            let _p = s2.acquire().await;
            t.sleep(ms(5)).await;
        });
        s.yield_now().await;
        s.sleep(ms(1)).await;
        let _q = sem.acquire().await;
        let r = sem.acquire().await; // waits for the holder's permit
        assert_eq!(s.now(), ms(35));
        h.await.expect("no panic");
        r.forget();
        assert_eq!(sem.available(), 0);
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}

#[test]
fn wait_group_done_below_zero_fails_the_run_at_the_caller_line() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let wg = s.wait_group();
        wg.done();
    });
    match &report.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Panic, "{f}");
            assert!(
                f.message.contains("WaitGroup::done: negative counter"),
                "{f}"
            );
        }
        other => panic!("expected a panic, got {other}"),
    }
}

#[test]
fn a_panic_left_in_a_dropped_handle_fails_the_run() {
    let sim = Sim::with_seed(2);
    let s = sim.clone();
    let report = sim.run(async move {
        let h = s.spawn("ignored", async { panic!("lost?") });
        s.sleep(ms(2)).await;
        assert!(h.is_finished());
        drop(h); // the error was never taken
        s.sleep(ms(2)).await;
    });
    match &report.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Panic, "{f}");
            assert!(f.message.contains("lost?"), "{f}");
            assert!(f.message.contains("JoinHandle was dropped"), "{f}");
            assert_eq!(f.time, ms(2));
            assert_eq!(
                f.task.as_ref().and_then(|t| t.1.clone()).as_deref(),
                Some("ignored")
            );
        }
        other => panic!("expected a panic, got {other}"),
    }
}

#[test]
fn a_permit_released_by_another_task_leaves_the_right_holder() {
    let sim = Sim::with_seed(3);
    let s = sim.clone();
    let report = sim.run(async move {
        let sem = s.semaphore(2);
        let mine = sem.acquire().await;
        let main_id = sem.resource().holders()[0];
        let (s2, t) = (sem.clone(), s.clone());
        let h = s.spawn("other", async move {
            let own = s2.acquire().await;
            drop(mine); // main's permit, given back here
            t.sleep(ms(5)).await;
            drop(own);
        });
        s.sleep(ms(1)).await;
        let holders = sem.resource().holders();
        assert_eq!(holders, [h.id()], "main holds nothing now");
        assert_ne!(holders[0], main_id);
        h.await.expect("no panic");
        assert!(sem.resource().holders().is_empty());
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}
