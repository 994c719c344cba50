//! `#[gosim::test]`: the attribute expands to a `#[test]` that sweeps the async body with
//! `gosim::Check`, named as `cargo test` filters it.

use std::time::Duration;

use gosim::Sim;

mod common;
use common::lost_update;

#[gosim::test(runs = 50)]
async fn a_bounded_channel_delivers_everything(sim: Sim) {
    let ch = sim.channel::<i64>(2);
    let tx = ch.clone();
    let s = sim.clone();
    sim.spawn("producer", async move {
        for i in 0..5 {
            s.sleep(Duration::from_millis(1)).await;
            tx.send(i).await.expect("open");
        }
        tx.close();
    });
    let mut got = Vec::new();
    while let Some(v) = ch.recv().await {
        got.push(v);
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(sim.now(), Duration::from_millis(5));
}

#[gosim::test(
    runs = 20,
    seed = 100,
    strategy = "pct:2",
    max_steps = 10_000,
    step_cost_us = 10,
    shrink_runs = 50
)]
async fn every_argument_is_accepted(sim: Sim) {
    let before = sim.now();
    sim.yield_now().await;
    // A step costs 10 us of virtual time.
    assert!(sim.now() > before);
    assert!((100..120).contains(&sim.seed()));
}

/// Two tasks read, yield and write back: an interleaving loses an update.
#[gosim::test(runs = 200, strategy = "random")]
#[should_panic(expected = "GOSIM_SEED=")]
async fn a_lost_update_fails_with_a_reproduce_line(sim: Sim) {
    lost_update(sim).await;
}

#[gosim::test(runs = 200, strategy = "random")]
#[should_panic(expected = "cargo test a_failure_names_this_test\n")]
async fn a_failure_names_this_test(sim: Sim) {
    lost_update(sim).await;
}

mod nested {
    use gosim::Sim;

    #[gosim::test(runs = 200, strategy = "random")]
    #[should_panic(expected = "cargo test nested::the_name_has_the_module_path\n")]
    async fn the_name_has_the_module_path(sim: Sim) {
        super::lost_update(sim).await;
    }
}
