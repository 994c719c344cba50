//! The features that were Lua-only, from Rust: a worker pool counting into an atomic integer, a
//! task raced against a timeout, a two-stage pipeline, and fan-in of two producers.
//!
//! Run: `cargo run --example rust_patterns`

use std::time::Duration;

use gosim::patterns::{StageFn, TaskError};
use gosim::sim::Sim;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn main() {
    let sim = Sim::with_seed(7);
    let s = sim.clone();
    let report = sim.run(async move {
        // A pool of 2 workers; 3 jobs of 5 ms each count into an atomic integer.
        let hits = s.atomic_int(0);
        let pool = s.pool("jobs", 2);
        for _ in 0..3 {
            let (t, hits) = (s.clone(), hits.clone());
            pool.submit_fn(async move {
                t.sleep(ms(5)).await;
                hits.add(1).await;
            })
            .expect("room in the queue (workers * 2)");
        }

        // A slow task abandoned after 3 ms (it runs on, as a goroutine would in Go).
        let t = s.clone();
        let slow = s.timeout(ms(3), async move { t.sleep(ms(20)).await }).await;
        assert_eq!(slow, Err(TaskError::TimedOut));
        assert_eq!(s.now(), ms(3));

        pool.wait().await; // no more submits; every queued job has run
        assert_eq!(hits.load().await, 3);
        assert_eq!(s.now(), ms(10), "3 jobs of 5 ms on 2 workers");

        // A pipeline: x * 2, then + 10, one worker each: the order is kept.
        let input = s.channel::<i64>(10);
        let out = s.pipeline(
            input.clone(),
            vec![
                StageFn::new(1, |x| async move { x * 2 }),
                StageFn::new(1, |x| async move { x + 10 }),
            ],
        );
        for v in 1..=3 {
            input.send(v).await.expect("open");
        }
        input.close();
        let mut got = Vec::new();
        while let Some(v) = out.recv().await {
            got.push(v);
        }
        assert_eq!(got, [12, 14, 16]);

        // fan_in: two producers merged; the merged channel closes after both have.
        let (a, b) = (s.channel::<i64>(0), s.channel::<i64>(0));
        for (name, ch, values) in [("left", a.clone(), [1, 2]), ("right", b.clone(), [3, 4])] {
            s.spawn(name, async move {
                for v in values {
                    ch.send(v).await.expect("open");
                }
                ch.close();
            });
        }
        let merged = s.fan_in(vec![a, b]);
        let mut all = Vec::new();
        while let Some(v) = merged.recv().await {
            all.push(v);
        }
        all.sort();
        assert_eq!(all, [1, 2, 3, 4]);
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    println!("{}", report.trace_text());
    println!("{}", report.outcome);
}
