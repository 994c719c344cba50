//! Drives a channel-forwarding pattern (debounce, throttle) with inputs `0..n` arriving at given
//! instants, and collects what comes out and when: the harness both of their tests share.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::sim::Sim;
use gosim::sync::Channel;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sends `0..n` at `times` (ms, sorted) into the channel that `make` forwards, closes it at
/// `close`, and returns the outputs as (value, ms). The run must pass.
pub fn run_forwarder(
    times: &[u64],
    close: u64,
    seed: u64,
    make: impl FnOnce(&Sim, Channel<usize>) -> Channel<usize> + 'static,
) -> Vec<(usize, u64)> {
    let sim = Sim::with_seed(seed);
    let got = Rc::new(RefCell::new(Vec::new()));
    let (s, got2, times2) = (sim.clone(), got.clone(), times.to_vec());
    let report = sim.run(async move {
        let input: Channel<usize> = s.channel(0);
        let out = make(&s, input.clone());
        let s2 = s.clone();
        s.spawn("producer", async move {
            for (i, t) in times2.into_iter().enumerate() {
                let now = s2.now();
                if ms(t) > now {
                    s2.sleep(ms(t) - now).await;
                }
                input.send(i).await.unwrap();
            }
            let now = s2.now();
            if ms(close) > now {
                s2.sleep(ms(close) - now).await;
            }
            input.close();
        });
        while let Some(v) = out.recv().await {
            got2.borrow_mut().push((v, s.now().as_millis() as u64));
        }
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    got.take()
}
