//! The Rust-shaped futures side of the API: channel element types, errors that give the value
//! back, context errors, `gosim::select!`, and several gosim futures in one task.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::sim::{ContextError, SendError, Sim, TrySendError};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Any `Debug` value is a channel element: tuples, `Option`, a derived struct, no newtype; the
/// trace shows it with `{:?}`, and the compact kinds stay as they were.
#[test]
fn any_debug_type_travels_on_a_channel() {
    #[derive(Debug, PartialEq)]
    struct Order {
        id: u32,
        item: &'static str,
    }
    let sim = Sim::with_seed(3);
    let s = sim.clone();
    let got = Rc::new(RefCell::new(Vec::new()));
    let out = got.clone();
    let report = sim.run(async move {
        let pairs = s.channel::<(u32, Option<String>)>(2);
        let orders = s.channel::<Order>(1);
        let ints = s.channel::<i64>(1);
        pairs.send((1, Some("a".into()))).await.expect("open");
        pairs.send((2, None)).await.expect("open");
        orders
            .send(Order { id: 7, item: "tea" })
            .await
            .expect("open");
        ints.send(-4).await.expect("open");
        for _ in 0..2 {
            let v = pairs.recv().await;
            out.borrow_mut().push(format!("{v:?}"));
        }
        let o = orders.recv().await.expect("an order");
        assert_eq!(o, Order { id: 7, item: "tea" });
        assert_eq!(ints.recv().await, Some(-4));
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
    assert_eq!(
        *got.borrow(),
        vec![
            "Some((1, Some(\"a\")))".to_string(),
            "Some((2, None))".to_string()
        ]
    );
    let trace = report.trace_text();
    assert!(trace.contains("send channel#1 (1, Some(\"a\"))"), "{trace}");
    assert!(trace.contains("send channel#1 (2, None)"), "{trace}");
    assert!(
        trace.contains("send channel#2 Order { id: 7, item: \"tea\" }"),
        "{trace}"
    );
    assert!(trace.contains("send channel#3 -4"), "{trace}");
}

/// A send on a closed channel gives the value back: at once, or to a sender parked when it
/// closes; `try_send` says full or closed, with the value.
#[test]
fn send_errors_give_the_value_back() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<String>(1);
        assert_eq!(ch.try_send("a".into()), Ok(()));
        match ch.try_send("b".into()) {
            Err(TrySendError::Full(v)) => assert_eq!(v, "b"),
            other => panic!("expected Full, got {other:?}"),
        }
        let closer = ch.clone();
        let t = s.clone();
        s.spawn("closer", async move {
            t.sleep(ms(5)).await;
            closer.close();
        });
        // Parked (the buffer is full) when the channel closes: the value comes back.
        let err = ch.send("c".into()).await.expect_err("closed while waiting");
        assert_eq!(err, SendError("c".to_string()));
        assert_eq!(err.to_string(), "send on closed channel");
        assert_eq!(s.now(), ms(5));
        // Closed before the send: at once.
        assert_eq!(ch.send("d".into()).await, Err(SendError("d".to_string())));
        let e = ch.try_send("e".into()).expect_err("closed");
        assert_eq!(e.to_string(), "send on closed channel");
        assert_eq!(e.into_inner(), "e");
        let boxed: Box<dyn std::error::Error> = Box::new(SendError(1));
        assert_eq!(boxed.to_string(), "send on closed channel");
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}

/// A context's error is an enum whose `Display` is Go's text.
#[test]
fn context_errors_are_an_enum_with_gos_texts() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let root = s.context();
        let child = root.with_timeout(std::time::Duration::from_millis(10));
        assert_eq!(child.err(), None);
        root.cancel();
        assert_eq!(child.done().await, ContextError::Canceled);
        assert_eq!(ContextError::Canceled.to_string(), "context canceled");
        let timed = s
            .context()
            .with_timeout(std::time::Duration::from_millis(10));
        assert_eq!(timed.done().await, ContextError::DeadlineExceeded);
        assert_eq!(
            timed.err().map(|e| e.to_string()).as_deref(),
            Some("context deadline exceeded")
        );
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}

/// `tokio::select!` over two gosim receives: the first value to arrive wins, the loser is
/// dropped without having taken anything, and the other value stays for a later receive.
#[test]
fn tokio_select_over_two_receives_loses_nothing() {
    let sim = Sim::with_seed(7);
    let s = sim.clone();
    let report = sim.run(async move {
        let (a, b) = (s.channel::<i64>(0), s.channel::<i64>(0));
        let (ta, tb, t) = (a.clone(), b.clone(), s.clone());
        s.spawn("sender", async move {
            t.sleep(ms(5)).await;
            tb.send(2).await.expect("open");
            t.sleep(ms(5)).await;
            ta.send(1).await.expect("open");
        });
        let first = tokio::select! {
            biased;
            v = a.recv() => ("a", v),
            v = b.recv() => ("b", v),
        };
        assert_eq!(first, ("b", Some(2)));
        assert_eq!(s.now(), ms(5));
        // The dropped receive of `a` took nothing: the next value on `a` is received here.
        assert_eq!(a.recv().await, Some(1));
        assert_eq!(s.now(), ms(10));
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}

/// A timeout arm: a sleep against a receive, both orders.
#[test]
fn tokio_select_with_a_sleep_as_timeout() {
    let sim = Sim::with_seed(2);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<u32>(0);
        let (tx, t) = (ch.clone(), s.clone());
        s.spawn("late", async move {
            t.sleep(ms(50)).await;
            tx.send(9).await.expect("open");
        });
        let timed_out = tokio::select! {
            biased;
            _ = ch.recv() => false,
            _ = s.sleep(ms(20)) => true,
        };
        assert!(timed_out);
        assert_eq!(s.now(), ms(20));
        // The cancelled receive left nothing behind: the sender parks until this receive.
        let got = tokio::select! {
            biased;
            v = ch.recv() => v,
            _ = s.sleep(ms(100)) => None,
        };
        assert_eq!(got, Some(9));
        assert_eq!(s.now(), ms(50));
        // The dropped sleep's timer is gone: nothing is left to wake this task later.
        s.sleep(ms(1)).await;
        assert_eq!(s.now(), ms(51));
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}

/// A send that loses keeps its value: the sender's value is not taken by the dropped future.
#[test]
fn a_losing_send_keeps_its_value() {
    let sim = Sim::with_seed(4);
    let s = sim.clone();
    let report = sim.run(async move {
        let out = s.channel::<String>(0);
        let stop = s.channel::<()>(0);
        let (rx, st, t) = (out.clone(), stop.clone(), s.clone());
        s.spawn("stopper", async move {
            t.sleep(ms(3)).await;
            st.close();
            t.sleep(ms(3)).await;
            assert_eq!(rx.try_recv().ok(), None, "nobody sends any more");
        });
        let stopped = tokio::select! {
            biased;
            r = out.send("payload".to_string()) => { r.expect("open"); false }
            _ = stop.recv() => true,
        };
        assert!(stopped);
        assert_eq!(out.blocked_senders(), 0, "the lost send left the queue");
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}

/// `tokio::join!` over channels, sleeps and a mutex: every operation completes, each one
/// starting over when another one of the task's wait completed first.
#[test]
fn tokio_join_completes_every_operation() {
    for seed in 0..20 {
        let sim = Sim::with_seed(seed);
        let s = sim.clone();
        let report = sim.run(async move {
            let (a, b) = (s.channel::<i64>(0), s.channel::<i64>(1));
            let m = s.mutex(0);
            let (ta, tb, tm, t) = (a.clone(), b.clone(), m.clone(), s.clone());
            s.spawn("peer", async move {
                let guard = tm.lock().await;
                t.sleep(ms(4)).await;
                ta.send(10).await.expect("open");
                t.sleep(ms(4)).await;
                drop(guard);
                assert_eq!(tb.recv().await, Some(20));
            });
            s.sleep(ms(1)).await; // the peer holds the mutex
            let (x, sent, mut guard, ()) =
                tokio::join!(a.recv(), b.send(20), m.lock(), s.sleep(ms(6)));
            assert_eq!(x, Some(10));
            sent.expect("open");
            assert_eq!(s.now(), ms(8), "the lock came last");
            *guard += 1;
        });
        assert!(
            report.outcome.is_pass(),
            "seed {seed}: {:?}\n{}",
            report.outcome,
            report.trace_text()
        );
    }
}

/// A task waiting on two operations at once that nothing will complete is a deadlock that
/// names it, with both resources.
#[test]
fn a_task_blocked_on_two_operations_is_reported() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let (a, b) = (s.channel::<i64>(0), s.channel::<i64>(0));
        tokio::select! {
            biased;
            _ = a.recv() => {}
            _ = b.recv() => {}
        }
    });
    let text = format!("{:?}", report.outcome);
    assert!(!report.outcome.is_pass());
    assert!(text.contains("all goroutines are asleep"), "{text}");
    assert!(
        text.contains("channel#1") && text.contains("channel#2"),
        "{text}"
    );
}

/// An operation whose primitive cannot share a wait fails the run with the rule, never an
/// internal assertion.
#[test]
fn an_operation_that_cannot_share_a_wait_names_the_rule() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<i64>(0);
        let wg = s.wait_group();
        wg.add(1).expect("a positive count");
        tokio::select! {
            biased;
            _ = ch.recv() => {}
            _ = wg.wait() => {}
        }
    });
    let text = format!("{:?}", report.outcome);
    assert!(text.contains("cannot be shared"), "{text}");
    assert!(text.contains("spawn a task"), "{text}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Over seeds: two producers, one consumer selecting over both channels (and a timeout
    /// arm); every value is received exactly once, none lost, none duplicated.
    #[test]
    fn select_loses_and_duplicates_nothing(seed in 0u64..10_000, n in 1i64..20) {
        let sim = Sim::with_seed(seed);
        let s = sim.clone();
        let got = Rc::new(RefCell::new(Vec::new()));
        let out = got.clone();
        let report = sim.run(async move {
            let (a, b) = (s.channel::<i64>(0), s.channel::<i64>(1));
            for (ch, base) in [(a.clone(), 0), (b.clone(), 1000)] {
                let t = s.clone();
                s.spawn("producer", async move {
                    for i in 0..n {
                        if t.random_below(3) == 0 {
                            t.sleep(ms(1)).await;
                        }
                        ch.send(base + i).await.expect("open");
                    }
                    ch.close();
                });
            }
            let (mut a_open, mut b_open) = (true, true);
            while a_open || b_open {
                tokio::select! {
            biased;
                    v = a.recv(), if a_open => match v {
                        Some(v) => out.borrow_mut().push(v),
                        None => a_open = false,
                    },
                    v = b.recv(), if b_open => match v {
                        Some(v) => out.borrow_mut().push(v),
                        None => b_open = false,
                    },
                    _ = s.sleep(ms(2)) => {}
                }
            }
        });
        proptest::prop_assert!(report.outcome.is_pass(), "{:?}", report.outcome);
        let mut values = got.borrow().clone();
        values.sort_unstable();
        let mut want: Vec<i64> = (0..n).chain(1000..1000 + n).collect();
        want.sort_unstable();
        proptest::prop_assert_eq!(values, want);
    }
}

/// `gosim::select!` makes the same seeded choices and the same trace as Lua's `select` over the
/// same channels: both ready, then none ready (the select parks on both and a sender wins).
#[test]
fn gosim_select_has_the_choices_and_trace_of_the_lua_select() {
    let lua = r#"
local a = goroutine.channel(1)
local b = goroutine.channel(1)
a:send(1)
b:send(2)
for i = 1, 2 do
  goroutine.select({
    { channel = a, receive = true },
    { channel = b, receive = true },
  })
end
goroutine.spawn{name = "late", fn = function()
  goroutine.sleep(5)
  b:send(3)
end}
goroutine.select({
  { channel = a, receive = true },
  { channel = b, receive = true },
})
"#;
    let mut differing = 0;
    for seed in 0..16 {
        let opts = gosim::scenario::RunOptions::with_seed(seed);
        let l = gosim::scenario::run_source("t.lua", lua, &opts).expect("compiles");
        assert!(l.outcome.is_pass(), "{}", l.outcome);
        let sim = Sim::with_seed(seed);
        let s = sim.clone();
        let r = sim.run(async move {
            let (a, b) = (s.channel::<i64>(1), s.channel::<i64>(1));
            a.send(1).await.expect("open");
            b.send(2).await.expect("open");
            for _ in 0..2 {
                gosim::select! {
                    _ = a.recv() => {}
                    _ = b.recv() => {}
                }
            }
            let (tb, t) = (b.clone(), s.clone());
            s.spawn("late", async move {
                t.sleep(ms(5)).await;
                tb.send(3).await.expect("open");
            });
            s.yield_now().await; // a Lua spawn is a scheduling point
            let v = gosim::select! {
                v = a.recv() => v,
                v = b.recv() => v,
            };
            assert_eq!(v, Some(3));
            assert_eq!(t_now(&s), ms(5));
        });
        assert!(r.outcome.is_pass(), "{}", r.outcome);
        assert_eq!(l.trace_text(), r.trace_text(), "seed {seed}");
        let first = r
            .trace_text()
            .lines()
            .find(|l| l.contains("receive"))
            .map(str::to_string);
        if first.is_some_and(|l| l.contains("channel#2")) {
            differing += 1;
        }
    }
    assert!(
        (1..16).contains(&differing),
        "the seed picks either ready case: {differing} of 16 took the second first"
    );
}

fn t_now(s: &Sim) -> Duration {
    s.now()
}

/// Mixed value types, a send arm, `ctx.done()`, a timer arm and `default`.
#[test]
fn gosim_select_over_mixed_arms() {
    let sim = Sim::with_seed(5);
    let s = sim.clone();
    let report = sim.run(async move {
        let names = s.channel::<String>(0);
        let out = s.channel::<(u32, bool)>(0);
        let ctx = s
            .context()
            .with_timeout(std::time::Duration::from_millis(30));
        // Nothing ready: the default.
        let d = gosim::select! {
            v = names.recv() => format!("{v:?}"),
            r = out.send((1, true)) => format!("{r:?}"),
            default => "default".to_string(),
        };
        assert_eq!(d, "default");
        assert_eq!(
            out.blocked_senders(),
            0,
            "the default left no sender behind"
        );
        // A receiver comes at 10ms: the send arm wins; the timer at 20ms does not fire.
        let (rx, t) = (out.clone(), s.clone());
        s.spawn("receiver", async move {
            t.sleep(ms(10)).await;
            assert_eq!(rx.recv().await, Some((2, false)));
        });
        let r = gosim::select! {
            v = names.recv() => format!("name {v:?}"),
            r = out.send((2, false)) => format!("sent {r:?}"),
            e = ctx.done() => format!("ctx {e}"),
            _ = s.after(ms(20)).recv() => "timeout".to_string(),
        };
        assert_eq!(r, "sent Ok(())");
        assert_eq!(s.now(), ms(10));
        // Then the context expires at 30ms, before the 40ms timer.
        let r = gosim::select! {
            v = names.recv() => format!("name {v:?}"),
            e = ctx.done() => format!("ctx {e}"),
            _ = s.after(ms(30)).recv() => "timeout".to_string(),
        };
        assert_eq!(r, "ctx context deadline exceeded");
        assert_eq!(s.now(), ms(30));
        // A send arm on a closed channel completes with the value back.
        out.close();
        let r = gosim::select! {
            r = out.send((3, true)) => r,
        };
        assert_eq!(r, Err(SendError((3, true))));
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}

/// `gosim::select!` inside `tokio::select!` beside a sleep: a select can share a wait too.
#[test]
fn gosim_select_shares_a_wait_with_a_sleep() {
    let sim = Sim::with_seed(8);
    let s = sim.clone();
    let report = sim.run(async move {
        let (a, b) = (s.channel::<u8>(0), s.channel::<u8>(0));
        let timed_out = tokio::select! {
            biased;
            _ = async { gosim::select! { _ = a.recv() => {}, _ = b.recv() => {} } } => false,
            _ = s.sleep(ms(7)) => true,
        };
        assert!(timed_out);
        assert_eq!(s.now(), ms(7));
        assert_eq!((a.blocked_receivers(), b.blocked_receivers()), (0, 0));
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}

/// An operation that completes at once after another one of the same poll parked wins the wait:
/// the parked one (a sleep here) is cancelled and starts over to its own deadline.
#[test]
fn completing_at_once_wins_over_an_earlier_parked_operation() {
    let sim = Sim::with_seed(3);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<u8>(1);
        ch.send(1).await.expect("open");
        let ((), v) = tokio::join!(s.sleep(ms(10)), ch.recv());
        assert_eq!(v, Some(1));
        assert_eq!(s.now(), ms(10), "the sleep kept its deadline");
        let (v, ()) = tokio::join!(ch.recv(), async {
            s.sleep(ms(2)).await;
            ch.send(2).await.expect("open");
        });
        assert_eq!(v, Some(2));
        assert_eq!(s.now(), ms(12));
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}

/// A task never meets itself on a channel (as in Go): its own parked receive is no partner for
/// its own send in the same wait.
#[test]
fn a_task_is_not_its_own_partner() {
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<u8>(0);
        tokio::select! {
            biased;
            _ = ch.recv() => {}
            _ = ch.send(1) => {}
        }
    });
    let text = format!("{:?}", report.outcome);
    assert!(text.contains("all goroutines are asleep"), "{text}");
    // With a peer, the same select completes one of the two with it.
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<u8>(0);
        let (peer, t) = (ch.clone(), s.clone());
        s.spawn("peer", async move {
            t.sleep(ms(1)).await;
            assert_eq!(peer.recv().await, Some(1));
        });
        let sent = tokio::select! {
            biased;
            _ = ch.recv() => false,
            r = ch.send(1) => r.is_ok(),
        };
        assert!(sent);
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}
