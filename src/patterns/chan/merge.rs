//! Merge (seed 1.5; ref: the Go blog's "Pipelines and cancellation" `merge`): one forwarder task
//! per input copies its values to one output channel of capacity 10 (as `fan_in`), keeping each
//! input's order; the output closes when every input has closed and every value has been
//! forwarded (the last forwarder to finish closes it). `merge` of no input is a closed channel.
//!
//! Why not `fan_in` itself: `fan_in` refuses an empty list (the original module's behaviour) and
//! names its tasks `fan_in-<i>`; a merge's trace says `merge`. The forwarder is the same loop.

use std::cell::Cell;
use std::fmt::Debug;
use std::rc::Rc;

use crate::patterns::Spawn;
use crate::runtime::Runtime;
use crate::sync::{Channel, Op};

/// The output's capacity (`patterns.md`: like `fan_in`).
pub const MERGE_CAPACITY: usize = 10;

/// Merges `inputs` into a new channel (capacity 10, named `merge`) through one forwarder task
/// per input, `merge-<i>`. With no input, the channel is returned closed. Not a scheduling point.
///
/// # Examples
///
/// ```
/// use gosim::patterns::merge;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let (a, b) = (s.channel::<u8>(1), s.channel::<u8>(1));
///     let out = merge(s.runtime(), &s, vec![a.clone(), b.clone()], None);
///     a.send(1).await.expect("open");
///     b.send(2).await.expect("open");
///     a.close();
///     b.close();
///     let (x, y) = (out.recv().await, out.recv().await);
///     assert_eq!(x.zip(y).map(|(x, y)| x + y), Some(3));
///     assert_eq!(out.recv().await, None); // closed after every input
///     assert!(merge::<u8>(s.runtime(), &s, vec![], None).is_closed()); // no input: closed
/// });
/// report.assert_pass();
/// ```
pub fn merge<T: Debug + 'static>(
    rt: &Runtime,
    spawner: &dyn Spawn,
    inputs: Vec<Channel<T>>,
    created_at: Option<Rc<str>>,
) -> Channel<T> {
    let out: Channel<T> = Channel::new(rt, MERGE_CAPACITY, created_at);
    out.resource().set_name("merge");
    if inputs.is_empty() {
        out.close();
        return out;
    }
    let remaining = Rc::new(Cell::new(inputs.len()));
    for (i, input) in inputs.into_iter().enumerate() {
        let (rt2, out, remaining) = (rt.clone(), out.clone(), remaining.clone());
        spawner.spawn_boxed(
            Some(&format!("merge-{}", i + 1)),
            Box::pin(async move {
                while let Some(v) = input.recv().await {
                    // The output closed by its reader: drain the input anyway, so its senders
                    // are never stuck.
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
