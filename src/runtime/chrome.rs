//! The trace as Chrome trace-event JSON (`--trace chrome`), for Perfetto (ui.perfetto.dev) and
//! `chrome://tracing`.
//!
//! One process (`pid` 1) with one thread track per goroutine (`tid` = goroutine id, named
//! `g3 worker`) and one track for the scheduler (`tid` 0, `sched`: timers firing, timer channels,
//! context deadlines). On a goroutine's track:
//!
//! - its lifetime is a complete slice (`X`) from its spawn (main: its first event) to its exit, or
//!   to the end of the trace if it never exited;
//! - every blocked interval (`block-receive channel#2"jobs"`, `block-lock mutex#1`, ...) and every
//!   sleep is a slice from the block event to the wake that ended it, or to the end of the trace if
//!   nothing woke it (a deadlocked or leaked goroutine). A slice of positive length is a `B`/`E`
//!   pair, a zero-length one an `X` with `dur` 0: viewers sort events of equal `ts` with every `E`
//!   first, so a `B` and `E` at the same instant would be read in the wrong order;
//! - the wake itself is an instant (`woken by g2(producer)`) on the woken goroutine's track;
//! - every other event (send, receive, close, lock, log, error, ...) is an instant (`ph` `i`,
//!   scope `t`) on the track of the goroutine that caused it, with the event's text in `args`.
//!
//! Flow arrows (`s`/`f` pairs sharing an `id`, the finish with `"bp":"e"`) are drawn only where the
//! trace itself names both ends (a channel event's `Event::peer`, which its text shows as
//! `to gN` / `from gN`; the text is never parsed back):
//!
//! - `message`: a value handed to a parked receiver (a `send` whose peer is gN, `send V to gN`)
//!   → gN's receive at that instant, or gN's wake when the trace has no receive of gN; a value
//!   taken from a parked sender (a `receive` whose peer is gN, `receive V from gN`) → from gN's
//!   `send` to it at that instant, or else from gN's blocked slice. Values that pass through a channel's buffer are not paired: the trace does not say
//!   which send a buffered receive takes.
//! - `wake`: any other wake of a blocked goroutine (unlock, close, done, signal, cancel, ...) →
//!   from the waker's last event at that instant (the operation that woke it) to the wake. A sleep
//!   ended by its timer, and a wait already linked by a `message` arrow, get no arrow.
//! - `spawn`: the parent's spawn event → the child's lifetime slice.
//!
//! Timestamps are microseconds from the run's virtual nanoseconds (integers when whole, else
//! fractions). Events are written in trace order, so several events sharing a timestamp keep their
//! order. The output depends only on the events: no hash-map iteration, no wall clock.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{Map, Value};

use super::backend::{Nanos, format_ms};
use super::task::{TaskId, label};
use super::trace::{Event, Subject};

/// The one process every track belongs to.
const PID: u64 = 1;
/// The scheduler's track (`g0`, shown as `sched` in the text trace).
const SCHED: u64 = 0;

/// Renders events as a Chrome trace-event JSON object
/// (`{"traceEvents": [...], "displayTimeUnit": "ms"}`), one trace event per line. Slices still open
/// at the last event (goroutines that never exited, waits nothing ended) run to that event's time.
///
/// # Examples
///
/// ```
/// use gosim::runtime::render_chrome;
///
/// let sim = gosim::Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move { s.spawn("w", async {}).await.expect("no panic") });
/// let json = render_chrome(&report.events); // open it in chrome://tracing or Perfetto
/// assert!(json.starts_with("{\"traceEvents\":["));
/// assert!(json.contains("g2(w)")); // each event keeps its trace line in `args`
/// ```
pub fn render_chrome(events: &[Event]) -> String {
    let mut b = Builder::default();
    for e in events {
        b.event(e);
    }
    let end = events.last().map_or(0, |e| e.time);
    b.finish(end)
}

/// One output trace event and the flow events that must follow it directly (a flow binds to the
/// slice that is topmost on its track when it is read: the event just before it).
#[derive(Debug)]
struct Item {
    value: Map<String, Value>,
    after: Vec<Value>,
}

/// A goroutine's (or the scheduler's) track.
#[derive(Debug, Default)]
struct Track {
    /// The latest name seen.
    name: Option<Rc<str>>,
    /// The open lifetime slice: its item and start.
    life: Option<(usize, Nanos)>,
    /// Every lifetime slice of this track (named when the final name is known).
    lives: Vec<usize>,
    /// The last instant on the track and its time, while no slice started after it.
    last_instant: Option<(usize, Nanos)>,
}

/// An open blocked (or sleeping) interval.
#[derive(Debug)]
struct OpenWait {
    item: usize,
    start: Nanos,
    sleep: bool,
    /// A message arrow already links this wait to its waker (a value handed to it, or its own
    /// value taken): its wake gets no second arrow.
    linked: bool,
}

/// A `send ... to gN` waiting for the receive (or the wake) of gN that it fed.
#[derive(Debug, Clone, Copy)]
struct PendingSend {
    item: usize,
    sender: u64,
    at: Nanos,
}

#[derive(Debug, Default)]
struct Builder {
    items: Vec<Item>,
    tracks: BTreeMap<u64, Track>,
    waits: BTreeMap<u64, OpenWait>,
    /// By receiver.
    sends: BTreeMap<u64, PendingSend>,
    flows: u64,
}

/// Virtual nanoseconds as trace-event microseconds: an integer when whole, else a fraction.
fn micros(ns: Nanos) -> Value {
    if ns.is_multiple_of(1000) {
        Value::from(ns / 1000)
    } else {
        Value::from(ns as f64 / 1000.0)
    }
}

fn task_label(id: u64, name: Option<&str>) -> String {
    if id == SCHED {
        "sched".to_string()
    } else {
        label(TaskId(id), name)
    }
}

/// `verb subject` (the text line without time, actor and detail).
fn headline(e: &Event) -> String {
    let mut out = String::with_capacity(32);
    e.write_headline(&mut out);
    out
}

fn base(ph: &str, tid: u64, ts: Nanos) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ph".into(), ph.into());
    m.insert("pid".into(), PID.into());
    m.insert("tid".into(), tid.into());
    m.insert("ts".into(), micros(ts));
    m
}

fn args_of(e: &Event) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("trace".into(), e.to_text().into());
    if let Some(d) = e.detail() {
        args.insert("detail".into(), d.into());
    }
    if let Some(r) = e.resource()
        && let Some(at) = r.created_at()
    {
        args.insert("created_at".into(), at.into());
    }
    args
}

impl Builder {
    fn push(&mut self, value: Map<String, Value>) -> usize {
        self.items.push(Item {
            value,
            after: Vec::new(),
        });
        self.items.len() - 1
    }

    fn args_mut(&mut self, item: usize) -> &mut Map<String, Value> {
        let v = self.items[item]
            .value
            .entry("args")
            .or_insert_with(|| Value::Object(Map::new()));
        match v {
            Value::Object(m) => m,
            _ => unreachable!("args is always an object"),
        }
    }

    /// Makes sure a track exists (and a lifetime slice for a goroutine), noting its latest name.
    fn touch(&mut self, tid: u64, name: Option<&Rc<str>>, at: Nanos) {
        let track = self.tracks.entry(tid).or_default();
        if let Some(n) = name {
            track.name = Some(n.clone());
        }
        if tid != SCHED && track.life.is_none() {
            self.begin_life(tid, at, Map::new());
        }
    }

    fn begin_life(&mut self, tid: u64, at: Nanos, args: Map<String, Value>) -> usize {
        let mut v = base("X", tid, at);
        v.insert("cat".into(), "goroutine".into());
        v.insert("dur".into(), 0.into());
        v.insert("args".into(), args.into());
        let item = self.push(v);
        let track = self.tracks.entry(tid).or_default();
        track.life = Some((item, at));
        track.lives.push(item);
        track.last_instant = None;
        item
    }

    fn end_life(&mut self, tid: u64, at: Nanos, how: &str) {
        let Some(track) = self.tracks.get_mut(&tid) else {
            return;
        };
        let Some((item, start)) = track.life.take() else {
            return;
        };
        self.items[item]
            .value
            .insert("dur".into(), micros(at - start));
        self.args_mut(item).insert("end".into(), how.into());
    }

    fn instant(
        &mut self,
        tid: u64,
        at: Nanos,
        name: String,
        cat: &str,
        args: Map<String, Value>,
    ) -> usize {
        let mut v = base("i", tid, at);
        v.insert("s".into(), "t".into());
        v.insert("name".into(), name.into());
        v.insert("cat".into(), cat.into());
        v.insert("args".into(), args.into());
        let item = self.push(v);
        self.tracks.entry(tid).or_default().last_instant = Some((item, at));
        item
    }

    /// An arrow from the slice `from` (on track `from_tid`) to the slice `to` (on `to_tid`).
    fn flow(&mut self, cat: &str, from: (usize, u64), to: (usize, u64)) {
        self.flows += 1;
        let id = self.flows;
        let ts = |b: &Self, item: usize| b.items[item].value["ts"].clone();
        let mut s = base("s", from.1, 0);
        s.insert("ts".into(), ts(self, from.0));
        s.insert("id".into(), id.into());
        s.insert("name".into(), cat.into());
        s.insert("cat".into(), cat.into());
        let mut f = base("f", to.1, 0);
        f.insert("ts".into(), ts(self, to.0));
        f.insert("id".into(), id.into());
        f.insert("name".into(), cat.into());
        f.insert("cat".into(), cat.into());
        f.insert("bp".into(), "e".into());
        self.items[from.0].after.push(s.into());
        self.items[to.0].after.push(f.into());
    }

    /// Ends `tid`'s open wait at `at`: an `E`, or the `B` becomes a zero-length `X`.
    fn close_wait(&mut self, tid: u64, at: Nanos, ended_by: String) -> Option<OpenWait> {
        let w = self.waits.remove(&tid)?;
        let args = self.args_mut(w.item);
        args.insert("until".into(), format_ms(at).into());
        args.insert("ended_by".into(), ended_by.into());
        if at == w.start {
            let v = &mut self.items[w.item].value;
            v.insert("ph".into(), "X".into());
            v.insert("dur".into(), 0.into());
        } else {
            self.push(base("E", tid, at));
        }
        Some(w)
    }

    /// A `message` arrow; a parked goroutine at either end needs no `wake` arrow any more.
    fn message(&mut self, from: (usize, u64), to: (usize, u64)) {
        for tid in [from.1, to.1] {
            if let Some(w) = self.waits.get_mut(&tid) {
                w.linked = true;
            }
        }
        self.flow("message", from, to);
    }

    fn event(&mut self, e: &Event) {
        let actor = e.task.0;
        let at = e.time;
        let actor_name = e.task_name();
        self.touch(actor, actor_name.as_ref(), at);
        match (e.verb, e.subject()) {
            ("spawn", Subject::Task(child, name)) => {
                let from = self.instant(actor, at, headline(e), "event", args_of(e));
                let child = child.0;
                let track = self.tracks.entry(child).or_default();
                if let Some(n) = name {
                    track.name = Some(n.clone());
                }
                if track.life.is_none() {
                    let mut args = Map::new();
                    let parent = task_label(actor, actor_name.as_deref());
                    args.insert("spawned_by".into(), parent.into());
                    args.insert("spawned_at".into(), format_ms(at).into());
                    if e.detail().as_deref() == Some("daemon") {
                        args.insert("daemon".into(), true.into());
                    }
                    let life = self.begin_life(child, at, args);
                    self.flow("spawn", (from, actor), (life, child));
                }
            }
            ("exit", _) => {
                // Nothing is open on an exiting goroutine; if something were, keep slices nested.
                self.close_wait(actor, at, "exit (no wake in the trace)".into());
                self.end_life(actor, at, &format!("exit at {}", format_ms(at)));
            }
            ("wake", Subject::Task(woken, name)) => self.wake(e, woken.0, name.as_ref()),
            (verb, _) if verb == "sleep" || verb.starts_with("block") => {
                self.close_wait(actor, at, "its next wait (no wake in the trace)".into());
                let sleep = verb == "sleep";
                let mut name = headline(e);
                if let (true, Some(d)) = (sleep || matches!(e.subject(), Subject::None), e.detail())
                {
                    name.push(' ');
                    name.push_str(&d);
                }
                let mut v = base("B", actor, at);
                v.insert("name".into(), name.into());
                v.insert("cat".into(), if sleep { "sleep" } else { "blocked" }.into());
                let mut args = args_of(e);
                args.insert("since".into(), format_ms(at).into());
                v.insert("args".into(), args.into());
                let item = self.push(v);
                if let Some(t) = self.tracks.get_mut(&actor) {
                    t.last_instant = None;
                }
                let wait = OpenWait {
                    item,
                    start: at,
                    sleep,
                    linked: false,
                };
                self.waits.insert(actor, wait);
            }
            (verb, _) => {
                let cat = if verb.starts_with("log.") {
                    "log"
                } else if verb == "error" || verb == "assert" {
                    "error"
                } else {
                    "event"
                };
                let item = self.instant(actor, at, headline(e), cat, args_of(e));
                match verb {
                    "send" => {
                        if let Some(to) = e.peer().map(|p| p.0) {
                            let sender = actor;
                            self.sends.insert(to, PendingSend { item, sender, at });
                        }
                    }
                    "receive" => self.receive(e, item),
                    _ => {}
                }
            }
        }
    }

    /// Pairs a receive with the send that fed it: the sender's `send ... to` event at this instant
    /// if the trace has one, else (`receive ... from gN`) the sender's blocked slice.
    fn receive(&mut self, e: &Event, item: usize) {
        let actor = e.task.0;
        let from = e.peer().map(|p| p.0);
        let fed = self
            .sends
            .get(&actor)
            .copied()
            .filter(|p| p.at == e.time && from.is_none_or(|f| f == p.sender));
        if let Some(p) = fed {
            self.sends.remove(&actor);
            self.message((p.item, p.sender), (item, actor));
        } else if let Some(f) = from
            && let Some(w) = self.waits.get(&f)
            && !w.sleep
        {
            let src = w.item;
            self.message((src, f), (item, actor));
        }
    }

    fn wake(&mut self, e: &Event, woken: u64, name: Option<&Rc<str>>) {
        let waker = e.task.0;
        let at = e.time;
        let by = task_label(waker, e.task_name().as_deref());
        self.touch(woken, name, at);
        let waker_last = self.tracks.get(&waker).and_then(|t| t.last_instant);
        let wait = self.close_wait(woken, at, by.clone());
        let mut args = args_of(e);
        args.insert("by".into(), by.as_str().into());
        let item = self.instant(woken, at, format!("woken by {by}"), "event", args);
        let Some(w) = wait else {
            return;
        };
        if w.sleep || w.linked {
            return;
        }
        if let Some(p) = self.sends.get(&woken).copied()
            && p.sender == waker
            && p.at == at
        {
            // A value handed to a parked receiver, whose receive is not in the trace.
            self.sends.remove(&woken);
            self.flow("message", (p.item, waker), (item, woken));
            return;
        }
        let src = match waker_last {
            Some((src, t)) if t == at => Some(src),
            _ if waker != SCHED => {
                // The waker left no event at this instant: show the wake on its track too.
                let target = task_label(woken, name.map(|n| &**n));
                Some(self.instant(waker, at, format!("wake {target}"), "event", args_of(e)))
            }
            _ => None,
        };
        if let Some(src) = src {
            self.flow("wake", (src, waker), (item, woken));
        }
    }

    fn finish(mut self, end: Nanos) -> String {
        let open: Vec<u64> = self.waits.keys().copied().collect();
        for tid in open {
            self.close_wait(
                tid,
                end,
                "nothing: still waiting at the end of the trace".into(),
            );
        }
        let alive: Vec<u64> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.life.is_some())
            .map(|(&tid, _)| tid)
            .collect();
        for tid in alive {
            self.end_life(tid, end, "still alive at the end of the trace");
        }

        let mut out: Vec<Value> = Vec::with_capacity(self.items.len() + 2 * self.tracks.len() + 1);
        let mut meta = |name: &str, tid: u64, args: Map<String, Value>| {
            let mut v = base("M", tid, 0);
            v.insert("name".into(), name.into());
            v.insert("args".into(), args.into());
            out.push(v.into());
        };
        let mut args = Map::new();
        args.insert("name".into(), "gosim".into());
        meta("process_name", PID, args);
        for (&tid, track) in &self.tracks {
            let mut args = Map::new();
            args.insert(
                "name".into(),
                thread_name(tid, track.name.as_deref()).into(),
            );
            meta("thread_name", tid, args);
            let mut args = Map::new();
            args.insert("sort_index".into(), tid.into());
            meta("thread_sort_index", tid, args);
        }
        for (&tid, track) in &self.tracks {
            let name = thread_name(tid, track.name.as_deref());
            for &item in &track.lives {
                self.items[item]
                    .value
                    .insert("name".into(), name.as_str().into());
            }
        }
        for item in self.items {
            out.push(item.value.into());
            out.extend(item.after);
        }

        let mut text = String::with_capacity(out.len() * 160);
        text.push_str("{\"traceEvents\":[\n");
        for (i, v) in out.iter().enumerate() {
            if i > 0 {
                text.push_str(",\n");
            }
            text.push_str(&v.to_string());
        }
        text.push_str("\n],\"displayTimeUnit\":\"ms\"}\n");
        text
    }
}

/// `g3 worker`, `g4` or `sched`.
fn thread_name(tid: u64, name: Option<&str>) -> String {
    match (tid, name) {
        (SCHED, _) => "sched".to_string(),
        (_, Some(n)) => format!("g{tid} {n}"),
        (_, None) => format!("g{tid}"),
    }
}
