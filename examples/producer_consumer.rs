//! A producer and a consumer in Rust on gosim's scheduler, run under several seeds.
//!
//! Run: `cargo run --example producer_consumer`

use std::time::Duration;

use gosim::sim::Sim;

fn main() {
    for seed in 1..=3 {
        let sim = Sim::with_seed(seed);
        let s = sim.clone();
        let report = sim.run(async move {
            let jobs = s.channel::<u64>(2);
            let tx = jobs.clone();
            let t = s.clone();
            s.spawn("producer", async move {
                for i in 1..=5 {
                    t.sleep(Duration::from_millis(10)).await; // virtual: takes no real time
                    tx.send(i).await.expect("the channel is open");
                }
                tx.close();
            });
            let mut sum = 0;
            while let Some(job) = jobs.recv().await {
                sum += job;
            }
            assert_eq!(sum, 15);
            assert_eq!(s.now(), Duration::from_millis(50), "exact virtual time");
        });
        println!(
            "seed {seed}: {} ({} trace events)",
            report.outcome,
            report.events.len()
        );
        assert!(report.outcome.is_pass());
    }
}
