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
        let child = root.with_timeout(10_000_000, None);
        assert_eq!(child.err(), None);
        root.cancel();
        assert_eq!(child.done().await, ContextError::Canceled);
        assert_eq!(ContextError::Canceled.to_string(), "context canceled");
        let timed = s.context().with_timeout(10_000_000, None);
        assert_eq!(timed.done().await, ContextError::DeadlineExceeded);
        assert_eq!(
            timed.err().map(|e| e.to_string()).as_deref(),
            Some("context deadline exceeded")
        );
    });
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
}
