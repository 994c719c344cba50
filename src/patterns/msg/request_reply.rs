//! Request/reply (seed 4.2), as tokio's `oneshot` + `timeout`: a requester sends `data` and waits
//! for the one answer that carries its correlation id; servers loop taking requests and replying.
//!
//! - Each request gets a correlation id (from 1) and exactly one outcome: the response, a
//!   handler failure (`Failed(msg)`: Lua's `nil, msg`), `Timeout`, `NoResponder` (at once when no
//!   goroutine is inside `serve`) or `Closed` (after `close`; it wins over `NoResponder`).
//! - A reply already delivered wins over a deadline reached in the same instant (the requester's
//!   wait is completed by the reply, so its deadline finds it done and does nothing). A reply
//!   produced by a goroutine that only runs at the deadline's instant loses: timers fire before
//!   goroutines run at their instant (see `Parked::expire_at`).
//! - A late reply (its request timed out) is discarded (`late-reply` trace event), never
//!   delivered to a later request: the pending map is keyed by id and entries leave it exactly
//!   once.
//! - `close()` stops intake: queued requests not yet taken by a server end with `Closed`,
//!   servers waiting for a request leave `serve`; a request a server already took still gets its
//!   reply.
//!
//! Why it is shaped so. Rust owns the state machine (ids, the queue, the pending map); a server
//! loop is `serve_begin`, `next_request` (a wait), run the user's handler, `reply`, and at the
//! end `serve_end`: the Rust loop (`serve`) awaits an async handler, the Lua binding's loop calls
//! a Lua function between the same steps. Both waits (a requester for its reply, a server for a
//! request) can be ended by any goroutine, so they are `released_by_anyone`: never a false cycle.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::{
    Blocking, Nanos, ResourceKind, ResourceRef, Runtime, Subject, TimerKey, Wait,
};
use crate::sync::{Begin, Op, Parked, TIMED_OUT, block_timed};

/// Any goroutine may end either wait (a request arrives, a server replies, a close).
const KIND: ResourceKind = ResourceKind::released_by_anyone("request_reply");

/// A requester waiting for its reply.
const REQUEST: Blocking = Blocking::new("request", "block-request");
/// A server waiting for a request.
const SERVE: Blocking = Blocking::new("serve", "block-serve");

/// Why a request has no response.
///
/// # Examples
///
/// ```
/// use gosim::patterns::RequestError;
/// use std::time::Duration;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let rr = s.request_reply::<u32, u32>();
///     // Nobody serves: the request gives up at its timeout.
///     let r = rr.request(1, Some(Duration::from_millis(5))).await;
///     assert!(matches!(r, Err(RequestError::Timeout | RequestError::NoResponder)));
///     rr.close();
///     assert_eq!(rr.request(2, None).await, Err(RequestError::Closed));
/// });
/// report.assert_pass();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The timeout passed before a reply.
    Timeout,
    /// No goroutine was inside `serve` when the request was made.
    NoResponder,
    /// The request/reply was closed (before the request, or before a server took it).
    Closed,
    /// The handler failed (raised, or returned an error) with this message.
    Failed(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Timeout => f.write_str("timeout"),
            RequestError::NoResponder => f.write_str("no responder"),
            RequestError::Closed => f.write_str("closed"),
            RequestError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RequestError {}

type Outcome<Resp> = Result<Resp, RequestError>;
type Slot<T> = Rc<RefCell<Option<T>>>;

struct Pending<Resp> {
    parked: Rc<Parked>,
    slot: Slot<Outcome<Resp>>,
}

struct Server<Req> {
    parked: Rc<Parked>,
    slot: Slot<Option<(u64, Req)>>,
}

struct State<Req, Resp> {
    next_id: u64,
    closed: bool,
    serving: usize,
    queue: VecDeque<(u64, Req)>,
    pending: BTreeMap<u64, Pending<Resp>>,
    idle: VecDeque<Server<Req>>,
    late: u64,
}

struct Shared<Req, Resp> {
    rt: Runtime,
    res: ResourceRef,
    state: RefCell<State<Req, Resp>>,
}

/// A request/reply endpoint: requests of type `Req` answered with `Resp`. Clones are the same
/// endpoint.
///
/// # Examples
///
/// ```
/// use gosim::patterns::RequestError;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let rr = s.request_reply::<u32, u32>();
///     let server = rr.clone();
///     let h = s.spawn("server", async move {
///         server.serve(|n| async move {
///             if n == 0 { Err("zero".to_string()) } else { Ok(n * 2) }
///         }).await; // until close
///     });
///     s.yield_now().await; // the server starts waiting
///     assert_eq!(rr.request(21, None).await, Ok(42));
///     assert_eq!(rr.request(0, None).await, Err(RequestError::Failed("zero".into())));
///     rr.close();
///     h.await.expect("no panic");
/// });
/// report.assert_pass();
/// ```
pub struct RequestReply<Req, Resp> {
    shared: Rc<Shared<Req, Resp>>,
}

impl<Req, Resp> Clone for RequestReply<Req, Resp> {
    fn clone(&self) -> Self {
        RequestReply {
            shared: self.shared.clone(),
        }
    }
}

impl<Req, Resp> std::fmt::Debug for RequestReply<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestReply({})", self.shared.res)
    }
}

impl<Req: 'static, Resp: 'static> RequestReply<Req, Resp> {
    /// A new endpoint with no server.
    pub fn new(rt: &Runtime, created_at: Option<Rc<str>>) -> RequestReply<Req, Resp> {
        let res = rt.new_resource(KIND, created_at);
        if rt.tracing() {
            rt.emit("new", Subject::Resource(res.clone()), None);
        }
        RequestReply {
            shared: Rc::new(Shared {
                rt: rt.clone(),
                res,
                state: RefCell::new(State {
                    next_id: 0,
                    closed: false,
                    serving: 0,
                    queue: VecDeque::new(),
                    pending: BTreeMap::new(),
                    idle: VecDeque::new(),
                    late: 0,
                }),
            }),
        }
    }

    /// Its identity (`request_reply#3`).
    pub fn resource(&self) -> &ResourceRef {
        &self.shared.res
    }

    /// Requests waiting for their outcome now (queued or being handled).
    pub fn pending(&self) -> usize {
        self.shared.state.borrow().pending.len()
    }

    /// Goroutines inside `serve` now.
    pub fn serving(&self) -> usize {
        self.shared.state.borrow().serving
    }

    /// Replies discarded because their request had already ended (timed out).
    pub fn late_replies(&self) -> u64 {
        self.shared.state.borrow().late
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    fn trace(&self, verb: &'static str, detail: String) {
        let rt = &self.shared.rt;
        if rt.tracing() {
            let detail = (!detail.is_empty()).then_some(detail);
            rt.emit(verb, Subject::Resource(self.shared.res.clone()), detail);
        }
    }

    /// Sends `req` and waits for its outcome, at most `timeout` (`None`: as long as it takes).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let rr = s.request_reply::<&str, usize>();
    ///     let (server, t) = (rr.clone(), s.clone());
    ///     s.spawn("server", async move {
    ///         server.serve(|q| {
    ///             let t = t.clone();
    ///             async move {
    ///                 t.sleep(Duration::from_millis(3)).await; // the service's latency
    ///                 Ok(q.len())
    ///             }
    ///         }).await;
    ///     });
    ///     s.yield_now().await; // the server starts waiting
    ///     assert_eq!(rr.request("hello", None).await, Ok(5)); // waits for the reply
    ///     assert_eq!(s.now(), Duration::from_millis(3));
    ///     rr.close();
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn request(&self, req: Req, timeout: Option<Duration>) -> Op<Outcome<Resp>> {
        let this = self.clone();
        let timeout = timeout.map(|d| d.as_nanos().min(u64::MAX as u128) as Nanos);
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            this.request_start(req, timeout)
        })
    }

    fn request_start(&self, req: Req, timeout: Option<Nanos>) -> Begin<Outcome<Resp>> {
        let rt = self.shared.rt.clone();
        let me = rt.current();
        let id = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                drop(st);
                self.trace("request", "closed".into());
                return Begin::Done(Err(RequestError::Closed));
            }
            if st.serving == 0 {
                drop(st);
                self.trace("request", "no responder".into());
                return Begin::Done(Err(RequestError::NoResponder));
            }
            st.next_id += 1;
            st.next_id
        };
        let parked = Parked::new(me);
        let slot: Slot<Outcome<Resp>> = Rc::new(RefCell::new(None));
        self.shared.state.borrow_mut().pending.insert(
            id,
            Pending {
                parked: parked.clone(),
                slot: slot.clone(),
            },
        );
        self.trace("request", format!("id={id}"));
        self.deliver(id, req);
        let key = {
            let this = self.clone();
            block_timed(
                &rt,
                REQUEST,
                &self.shared.res,
                &parked,
                timeout,
                move |rt, p| this.expire(rt, p, id),
            )
        };
        Begin::Parked(Box::new(move || finish(&rt, &parked, &slot, key)))
    }

    /// Hands request `id` to an idle server, or queues it.
    fn deliver(&self, id: u64, req: Req) {
        let mut st = self.shared.state.borrow_mut();
        while let Some(s) = st.idle.pop_front() {
            if !s.parked.is_live() {
                continue;
            }
            drop(st);
            *s.slot.borrow_mut() = Some(Some((id, req)));
            if self.shared.rt.tracing() {
                self.shared.rt.emit_as(
                    s.parked.task(),
                    "take",
                    Subject::Resource(self.shared.res.clone()),
                    Some(format!("id={id}")),
                    None,
                );
            }
            s.parked.fire(&self.shared.rt, 0);
            return;
        }
        st.queue.push_back((id, req));
    }

    /// A request's deadline passed with no reply: it leaves the queue and the pending map.
    fn expire(&self, rt: &Runtime, parked: &Rc<Parked>, id: u64) {
        {
            let mut st = self.shared.state.borrow_mut();
            st.pending.remove(&id);
            st.queue.retain(|(i, _)| *i != id);
        }
        if rt.tracing() {
            rt.emit_as(
                parked.task(),
                "timeout",
                Subject::Resource(self.shared.res.clone()),
                Some(format!("id={id}")),
                None,
            );
        }
    }

    /// For a server loop: this goroutine is now inside `serve` (requests are accepted while at
    /// least one is). Not a scheduling point.
    pub fn serve_begin(&self) {
        self.shared.state.borrow_mut().serving += 1;
    }

    /// For a server loop: this goroutine left `serve`. Not a scheduling point.
    pub fn serve_end(&self) {
        let mut st = self.shared.state.borrow_mut();
        st.serving = st.serving.saturating_sub(1);
    }

    /// For a server loop: the next request with its correlation id, waiting for one; `None`
    /// once the endpoint is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let rr = s.request_reply::<u8, u8>();
    ///     let server = rr.clone();
    ///     // The server loop's steps, as a language binding writes it.
    ///     s.spawn("server", async move {
    ///         server.serve_begin();
    ///         while let Some((id, req)) = server.next_request().await {
    ///             server.reply(id, Ok(req + 1));
    ///         }
    ///         server.serve_end();
    ///     });
    ///     s.yield_now().await; // the server starts waiting
    ///     assert_eq!(rr.request(1, None).await, Ok(2));
    ///     rr.close(); // next_request returns None
    /// });
    /// report.assert_pass();
    /// ```
    #[track_caller]
    pub fn next_request(&self) -> Op<Option<(u64, Req)>> {
        let this = self.clone();
        let loc = std::panic::Location::caller();
        Op::new(&self.shared.rt, Some(loc), move || {
            let rt = this.shared.rt.clone();
            let mut st = this.shared.state.borrow_mut();
            if st.closed {
                return Begin::Done(None);
            }
            if let Some((id, req)) = st.queue.pop_front() {
                drop(st);
                this.trace("take", format!("id={id}"));
                return Begin::Done(Some((id, req)));
            }
            let parked = Parked::new(rt.current());
            let slot: Slot<Option<(u64, Req)>> = Rc::new(RefCell::new(None));
            st.idle.push_back(Server {
                parked: parked.clone(),
                slot: slot.clone(),
            });
            drop(st);
            rt.block(Wait::on(SERVE, &this.shared.res));
            Begin::Parked(Box::new(move || slot.borrow_mut().take().flatten()))
        })
    }

    /// For a server loop: the outcome of request `id` (`Err(msg)`: the handler failed). A reply
    /// to a request that already ended is discarded. Not a scheduling point.
    pub fn reply(&self, id: u64, outcome: Result<Resp, String>) {
        let entry = self.shared.state.borrow_mut().pending.remove(&id);
        match entry {
            Some(p) if p.parked.is_live() => {
                let ok = outcome.is_ok();
                *p.slot.borrow_mut() = Some(outcome.map_err(RequestError::Failed));
                self.trace(
                    "reply",
                    format!("id={id}{}", if ok { "" } else { " failed" }),
                );
                p.parked.fire(&self.shared.rt, 0);
            }
            _ => {
                self.shared.state.borrow_mut().late += 1;
                self.trace("late-reply", format!("id={id} discarded"));
            }
        }
    }

    /// Stops intake: later requests get `Closed`, queued ones not yet taken end with `Closed`,
    /// idle servers leave `serve`. Requests already taken still get their reply. Idempotent.
    /// Not a scheduling point (the Lua binding takes one after it).
    pub fn close(&self) {
        let (queued, idle) = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return;
            }
            st.closed = true;
            let queued: Vec<u64> = st.queue.drain(..).map(|(id, _)| id).collect();
            let queued: Vec<Pending<Resp>> = queued
                .iter()
                .filter_map(|id| st.pending.remove(id))
                .collect();
            (queued, std::mem::take(&mut st.idle))
        };
        self.trace("close", String::new());
        let rt = &self.shared.rt;
        for p in queued {
            if p.parked.is_live() {
                *p.slot.borrow_mut() = Some(Err(RequestError::Closed));
                p.parked.fire(rt, 0);
            }
        }
        for s in idle {
            if s.parked.is_live() {
                *s.slot.borrow_mut() = Some(None);
                s.parked.fire(rt, 0);
            }
        }
    }

    /// Serves requests with `handler` until `close` (one request at a time; run several loops
    /// for concurrency). `Err(msg)` from the handler is the requester's `Failed(msg)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let sim = gosim::Sim::with_seed(1);
    /// let s = sim.clone();
    /// let report = sim.run(async move {
    ///     let rr = s.request_reply::<String, String>();
    ///     let server = rr.clone();
    ///     let h = s.spawn("echo", async move {
    ///         server.serve(|req| async move { Ok(req.to_uppercase()) }).await;
    ///         "closed"
    ///     });
    ///     s.yield_now().await; // the server starts waiting
    ///     assert_eq!(rr.request("hi".into(), None).await.as_deref(), Ok("HI"));
    ///     rr.close();
    ///     assert_eq!(h.await.expect("no panic"), "closed"); // serve returned after close
    /// });
    /// report.assert_pass();
    /// ```
    pub async fn serve<F, Fut>(&self, mut handler: F)
    where
        F: FnMut(Req) -> Fut,
        Fut: Future<Output = Result<Resp, String>>,
    {
        self.serve_begin();
        while let Some((id, req)) = self.next_request().await {
            let out = handler(req).await;
            self.reply(id, out);
        }
        self.serve_end();
    }
}

fn finish<Resp>(
    rt: &Runtime,
    parked: &Parked,
    slot: &Slot<Outcome<Resp>>,
    key: Option<TimerKey>,
) -> Outcome<Resp> {
    if parked.fired_case() == Some(TIMED_OUT) {
        return Err(RequestError::Timeout);
    }
    if let Some(k) = key {
        rt.cancel_timer(k);
    }
    slot.borrow_mut()
        .take()
        .expect("a completed request has its outcome")
}
