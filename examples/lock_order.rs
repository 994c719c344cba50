//! A lock-order inversion in Rust, with a heartbeat running next to it: gosim reports the cycle
//! the moment it closes, naming both tasks, both mutexes (with the lines that created them) and
//! who holds what.
//!
//! Run: `cargo run --example lock_order`

use std::time::Duration;

use gosim::runtime::{FailureKind, Outcome};
use gosim::sim::Sim;

fn main() {
    let sim = Sim::with_seed(7);
    let s = sim.clone();
    let report = sim.run(async move {
        let t = s.clone();
        s.spawn_daemon("heartbeat", async move {
            loop {
                t.sleep(Duration::from_millis(5)).await;
            }
        });
        let accounts = s.mutex(());
        let audit = s.mutex(());
        for (name, first, second) in [
            ("transfer", accounts.clone(), audit.clone()),
            ("auditor", audit.clone(), accounts.clone()),
        ] {
            let t = s.clone();
            s.spawn(name, async move {
                let _first = first.lock().await;
                t.sleep(Duration::from_millis(1)).await;
                let _second = second.lock().await; // never returns: the other task holds it
            });
        }
        s.sleep(Duration::from_secs(60)).await;
    });
    println!("{}", report.outcome);
    assert!(matches!(&report.outcome, Outcome::Fail(f) if f.kind == FailureKind::Cycle));
}
