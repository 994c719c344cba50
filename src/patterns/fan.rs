//! Fan-out and fan-in (Lua's `goroutine.fan_out`, `goroutine.fan_in`): one channel broadcast to
//! many, many merged into one.
//!
//! Why it is shaped so. The forwarders run no user code, so they are Rust tasks whatever the
//! caller's language, generic over the value type (`Clone` for the broadcast). Their steps are
//! the Lua versions' steps, in order, each a scheduling point (receive, send, close), and their
//! channels have the same capacities (10) and names (`fan_out <i>`, `fan_in`), so a binding
//! switched onto them keeps its traces. `fan_out` is a broadcast, as in the original module: every
//! input value goes to every output, in order, and all outputs close when the input closes.
//! `fan_in` closes its output when the last input has closed; values of one input keep their
//! order, inputs interleave as the seed decides.

use std::cell::Cell;
use std::fmt::Debug;
use std::rc::Rc;

use super::Spawn;
use crate::runtime::Runtime;
use crate::sync::{Channel, Op};

/// Broadcasts `input` to `n` new channels (`n > 0`, capacity 10, named `fan_out <i>`) through
/// one forwarder task named `fan_out`. Not a scheduling point.
///
/// # Examples
///
/// ```
/// use gosim::patterns::fan_out;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let input = s.channel::<u8>(2);
///     let outs = fan_out(s.runtime(), &s, input.clone(), 3, None);
///     assert_eq!(outs.len(), 3);
///     input.close(); // every output closes with the input
///     for o in outs {
///         assert_eq!(o.recv().await, None);
///     }
/// });
/// report.assert_pass();
/// ```
pub fn fan_out<T: Debug + Clone + 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    input: Channel<T>,
    n: usize,
    created_at: Option<Rc<str>>,
) -> Vec<Channel<T>> {
    assert!(n > 0, "fan_out: count must be positive");
    let outs: Vec<Channel<T>> = (1..=n)
        .map(|i| {
            let ch: Channel<T> = Channel::new(rt, 10, created_at.clone());
            ch.resource().set_name(&format!("fan_out {i}"));
            ch
        })
        .collect();
    let (rt2, targets) = (rt.clone(), outs.clone());
    spawner.spawn_boxed(
        Some("fan_out"),
        Box::pin(async move {
            while let Some(v) = input.recv().await {
                for out in &targets {
                    let _ = out.send(v.clone()).await;
                }
            }
            for out in targets {
                Op::now(&rt2, move || {
                    out.close();
                })
                .await;
            }
        }),
    );
    outs
}

/// Merges `inputs` (at least one) into a new channel (capacity 10, named `fan_in`) through one
/// forwarder task per input, `fan_in-<i>`. Not a scheduling point.
///
/// # Examples
///
/// ```
/// use gosim::patterns::fan_in;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let a = s.channel::<&str>(1);
///     let out = fan_in(s.runtime(), &s, vec![a.clone()], None);
///     a.send("x").await.expect("open");
///     a.close();
///     assert_eq!(out.recv().await, Some("x"));
///     assert_eq!(out.recv().await, None);
/// });
/// report.assert_pass();
/// ```
pub fn fan_in<T: Debug + 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    inputs: Vec<Channel<T>>,
    created_at: Option<Rc<str>>,
) -> Channel<T> {
    assert!(
        !inputs.is_empty(),
        "fan_in: at least one input channel required"
    );
    let out: Channel<T> = Channel::new(rt, 10, created_at);
    out.resource().set_name("fan_in");
    let remaining = Rc::new(Cell::new(inputs.len()));
    for (i, input) in inputs.into_iter().enumerate() {
        let (rt2, out, remaining) = (rt.clone(), out.clone(), remaining.clone());
        spawner.spawn_boxed(
            Some(&format!("fan_in-{}", i + 1)),
            Box::pin(async move {
                while let Some(v) = input.recv().await {
                    let _ = out.send(v).await;
                }
                remaining.set(remaining.get() - 1);
                if remaining.get() == 0 {
                    Op::now(&rt2, move || {
                        out.close();
                    })
                    .await;
                }
            }),
        );
    }
    out
}
