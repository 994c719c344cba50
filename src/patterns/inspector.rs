//! The channel inspector (seed 6.2): a channel's counters, exact at every instant.
//!
//! Laws: `total_sent == total_received + len + dropped` at every instant; `len <= cap`;
//! `total_sent` equals the number of `send` events on the channel in the trace so far, and
//! `total_received` the number of `receive` events that carried a value.

use crate::sync::Channel;
use std::fmt::Debug;

/// All of a channel's counters at one instant.
///
/// # Examples
///
/// ```
/// use gosim::patterns::ChannelInspector;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(2);
///     ch.send(1).await.expect("open");
///     ch.send(2).await.expect("open");
///     ch.recv().await;
///     let st = ChannelInspector::new(&ch).stats();
///     assert_eq!((st.len, st.cap, st.total_sent, st.total_received), (1, 2, 2, 1));
///     assert!(!st.is_closed);
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelStats {
    /// Values buffered now.
    pub len: usize,
    /// Buffer capacity.
    pub cap: usize,
    /// Values that entered the channel (buffered or handed to a receiver).
    pub total_sent: u64,
    /// Values that left it to a receiver.
    pub total_received: u64,
    /// Buffered values discarded without a receiver (a timer's stale tick on stop/reset).
    pub dropped: u64,
    /// Whether it is closed.
    pub is_closed: bool,
    /// Goroutines parked sending on it (directly or in a select).
    pub blocked_senders: usize,
    /// Goroutines parked receiving from it (directly or in a select).
    pub blocked_receivers: usize,
}

/// Reads a channel's counters without touching it.
///
/// # Examples
///
/// ```
/// use gosim::patterns::ChannelInspector;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(0);
///     let inspector = ChannelInspector::new(&ch);
///     let rx = ch.clone();
///     let h = s.spawn("receiver", async move { rx.recv().await });
///     s.yield_now().await;
///     assert_eq!(inspector.stats().blocked_receivers, 1);
///     ch.send(1).await.expect("open");
///     assert_eq!(h.await.expect("no panic"), Some(1));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone)]
pub struct ChannelInspector<T> {
    ch: Channel<T>,
}

impl<T: Debug + 'static> ChannelInspector<T> {
    /// An inspector of `ch`.
    pub fn new(ch: &Channel<T>) -> ChannelInspector<T> {
        ChannelInspector { ch: ch.clone() }
    }

    /// The counters now.
    pub fn stats(&self) -> ChannelStats {
        let (total_sent, total_received) = self.ch.totals();
        ChannelStats {
            len: self.ch.len(),
            cap: self.ch.cap(),
            total_sent,
            total_received,
            dropped: self.ch.dropped(),
            is_closed: self.ch.is_closed(),
            blocked_senders: self.ch.blocked_senders(),
            blocked_receivers: self.ch.blocked_receivers(),
        }
    }
}
