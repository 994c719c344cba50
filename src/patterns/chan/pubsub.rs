//! Pub/sub (seed 4.1): named topics, each a [`Broadcaster`] created at its first subscription, so
//! a subscriber's buffer, its lag counting and its `Block`/`DropOldest` behaviour are exactly the
//! broadcaster's (one subscriber queue in the crate, not two).
//!
//! - Topics are independent: a full subscriber of one topic never delays another topic.
//! - `publish` returns how many subscribers of the topic received the value; 0 (dropped) when the
//!   topic has none. Late subscribers see only later messages.
//! - `close` closes every topic: publishes fail with `Closed`, subscribers drain then end.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use super::{BroadcastError, Broadcaster, Lagging, Subscriber};
use crate::runtime::{ResourceKind, ResourceRef, Runtime, Subject};
use crate::sync::{Describe, Op};

const KIND: ResourceKind = ResourceKind::released_by_anyone("pubsub");

struct State<T> {
    topics: BTreeMap<String, Broadcaster<T>>,
    closed: bool,
}

struct Shared<T> {
    rt: Runtime,
    res: ResourceRef,
    cap: usize,
    lagging: Lagging,
    created_at: Option<Rc<str>>,
    state: RefCell<State<T>>,
}

/// A pub/sub hub of `T` messages. Clones are the same hub.
///
/// # Examples
///
/// ```
/// use gosim::patterns::{Lagging, PubSub};
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let hub = PubSub::<String>::new(s.runtime(), 8, Lagging::Block, None);
///     let orders = hub.subscribe("orders");
///     assert_eq!(hub.publish("orders", "#1".to_string(), None).await, Ok(1));
///     assert_eq!(hub.publish("audit", "x".to_string(), None).await, Ok(0)); // nobody listens
///     assert_eq!(orders.recv(None).await, Ok(Some("#1".to_string())));
///     assert_eq!(hub.topics(), vec!["orders".to_string()]);
/// });
/// report.assert_pass();
/// ```
pub struct PubSub<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for PubSub<T> {
    fn clone(&self) -> Self {
        PubSub {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for PubSub<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PubSub({})", self.shared.res)
    }
}

impl<T: Clone + Debug + 'static> PubSub<T> {
    /// A hub whose subscribers buffer `capacity` messages each (`capacity > 0`), `lagging` saying
    /// what a full buffer does.
    pub fn new(
        rt: &Runtime,
        capacity: usize,
        lagging: Lagging,
        created_at: Option<Rc<str>>,
    ) -> PubSub<T> {
        assert!(capacity > 0, "a pubsub buffers at least one message");
        let res = rt.new_resource(KIND, created_at.clone());
        if rt.tracing() {
            let detail = format!("cap={capacity} overflow={}", lagging.name());
            rt.emit("new", Subject::Resource(res.clone()), Some(detail));
        }
        PubSub {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                cap: capacity,
                lagging,
                created_at,
                state: RefCell::new(State {
                    topics: BTreeMap::new(),
                    closed: false,
                }),
            }),
        }
    }

    /// Its identity (`pubsub#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// The topics that have had a subscriber, in name order.
    pub fn topics(&self) -> Vec<String> {
        self.shared.state.borrow().topics.keys().cloned().collect()
    }

    /// Subscribers of `topic` now.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        let st = self.shared.state.borrow();
        st.topics.get(topic).map_or(0, |b| b.receiver_count())
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    /// A new subscriber of `topic`: it sees every message published there from now on. After
    /// `close`, a subscriber that receives nothing. Not a scheduling point.
    pub fn subscribe(&self, topic: &str) -> Subscriber<T> {
        let bc = {
            let mut st = self.shared.state.borrow_mut();
            let closed = st.closed;
            let sh = &self.shared;
            st.topics
                .entry(topic.to_string())
                .or_insert_with(|| {
                    let bc = Broadcaster::new(&sh.rt, sh.cap, sh.lagging, sh.created_at.clone());
                    bc.resource().set_name(&format!("topic {topic}"));
                    if closed {
                        bc.close();
                    }
                    bc
                })
                .clone()
        };
        bc.subscribe()
    }

    /// Whether `sub` is a subscriber of this hub.
    pub fn owns(&self, sub: &Subscriber<T>) -> bool {
        let st = self.shared.state.borrow();
        st.topics.values().any(|b| b.same(sub.broadcaster()))
    }

    /// Publishes `v` on `topic`: `Ok(n)`, the subscribers it reached (0: dropped, nobody
    /// listens). Under `Block` it waits while a subscriber's buffer is full, until `timeout`.
    /// `Err(Closed)` after `close`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosim::patterns::{BroadcastError, Lagging, PubSub};
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let hub = PubSub::<u8>::new(s.runtime(), 1, Lagging::Block, None);
    ///     let _slow = hub.subscribe("t");
    ///     hub.publish("t", 1, None).await.expect("room");
    ///     let r = hub.publish("t", 2, Some(Duration::from_millis(4))).await; // the buffer is full
    ///     assert_eq!(r, Err(BroadcastError::Timeout));
    ///     assert_eq!(s.now(), Duration::from_millis(4));
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn publish(
        &self,
        topic: &str,
        v: T,
        timeout: Option<Duration>,
    ) -> Op<Result<usize, BroadcastError>> {
        let (bc, closed) = {
            let st = self.shared.state.borrow();
            (st.topics.get(topic).cloned(), st.closed)
        };
        match bc {
            Some(bc) => bc.broadcast(v, timeout),
            None => {
                let (rt, res, topic) = (
                    self.shared.rt.clone(),
                    self.shared.res.clone(),
                    topic.to_string(),
                );
                Op::now(&self.shared.rt, move || {
                    if rt.tracing() {
                        let detail = format!("{} topic={topic} n=0", v.describe());
                        rt.emit("publish", Subject::Resource(res), Some(detail));
                    }
                    if closed {
                        Err(BroadcastError::Closed)
                    } else {
                        Ok(0)
                    }
                })
            }
        }
    }

    /// Closes every topic; false if it was already closed.
    pub fn close(&self) -> bool {
        let topics: Vec<Broadcaster<T>> = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return false;
            }
            st.closed = true;
            st.topics.values().cloned().collect()
        };
        if self.shared.rt.tracing() {
            let subject = Subject::Resource(self.shared.res.clone());
            self.shared.rt.emit("close", subject, None);
        }
        for bc in topics {
            bc.close();
        }
        true
    }
}
