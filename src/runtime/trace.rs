//! The trace: one event per scheduling-relevant step, in a stable text form (what snapshot tests
//! store) and as JSON Lines. An event never contains an address, a wall-clock reading or anything
//! else that differs between two processes running the same seed.

use std::fmt::Write as _;
use std::rc::Rc;

use super::backend::{Nanos, format_ms};
use super::resource::ResourceRef;
use super::task::{TaskId, label};

/// What an event is about, besides the goroutine that caused it.
#[derive(Debug, Clone)]
pub enum Subject {
    /// Nothing more.
    None,
    /// A resource (channel, mutex, timer, ...).
    Resource(ResourceRef),
    /// Another goroutine (spawned or woken).
    Task(TaskId, Option<Rc<str>>),
}

/// One trace event.
#[derive(Debug, Clone)]
pub struct Event {
    /// The run's time when it happened.
    pub time: Nanos,
    /// The goroutine that caused it (`g0` stands for the scheduler itself, e.g. a timer firing).
    pub task: TaskId,
    /// That goroutine's name at the time.
    pub task_name: Option<Rc<str>>,
    /// A short verb: `spawn`, `send`, `receive`, `block`, `wake`, `lock`, `log`, ...
    pub verb: &'static str,
    /// What it acted on.
    pub subject: Subject,
    /// Free text: a value, a duration, a message.
    pub detail: Option<String>,
    /// The goroutine on the other side of a hand-off: for a channel `send` the receiver the
    /// value went to, for a `receive` the sender it came from, when that goroutine was parked.
    /// The text and JSON forms do not show it (the detail already names it); it is there so
    /// views (the Chrome trace's message arrows) need not parse the detail back.
    pub peer: Option<TaskId>,
}

impl Event {
    /// The stable one-line text form: `12ms g2(worker) send channel#1 42`.
    pub fn to_text(&self) -> String {
        let mut line = String::with_capacity(64);
        let who = if self.task.0 == 0 {
            "sched".to_string()
        } else {
            label(self.task, self.task_name.as_deref())
        };
        let _ = write!(line, "{} {} {}", format_ms(self.time), who, self.verb);
        match &self.subject {
            Subject::None => {}
            Subject::Resource(r) => {
                let _ = write!(line, " {r}");
            }
            Subject::Task(id, name) => {
                let _ = write!(line, " {}", label(*id, name.as_deref()));
            }
        }
        if let Some(d) = &self.detail {
            line.push(' ');
            line.push_str(d);
        }
        line
    }

    /// One JSON object (a JSON Lines record).
    pub fn to_json(&self) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("t_ns".into(), self.time.into());
        obj.insert("t".into(), format_ms(self.time).into());
        obj.insert("g".into(), self.task.0.into());
        obj.insert(
            "name".into(),
            self.task_name
                .as_deref()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        );
        obj.insert("ev".into(), self.verb.into());
        match &self.subject {
            Subject::None => {}
            Subject::Resource(r) => {
                let mut res = serde_json::Map::new();
                res.insert("kind".into(), r.kind().into());
                res.insert("id".into(), r.id().into());
                if let Some(n) = r.name() {
                    res.insert("name".into(), n.as_ref().into());
                }
                obj.insert("res".into(), res.into());
            }
            Subject::Task(id, name) => {
                obj.insert("task".into(), id.0.into());
                if let Some(n) = name {
                    obj.insert("task_name".into(), n.as_ref().into());
                }
            }
        }
        if let Some(d) = &self.detail {
            obj.insert("detail".into(), d.as_str().into());
        }
        serde_json::Value::Object(obj).to_string()
    }
}

/// The formats a trace can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Jsonl,
}

/// Renders events in a format, one line each, with a final newline.
pub fn render(events: &[Event], format: TraceFormat) -> String {
    let mut out = String::with_capacity(events.len() * 48);
    for e in events {
        match format {
            TraceFormat::Text => out.push_str(&e.to_text()),
            TraceFormat::Jsonl => out.push_str(&e.to_json()),
        }
        out.push('\n');
    }
    out
}

/// A 64-bit FNV-1a hash of the text trace: a cheap fingerprint to compare runs without keeping
/// whole traces (the hash is fixed by the algorithm, not by the process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceHash(pub u64);

impl TraceHash {
    /// The hash of nothing.
    pub const EMPTY: TraceHash = TraceHash(0xcbf29ce484222325);

    /// Adds one line.
    pub fn add_line(self, line: &str) -> TraceHash {
        let mut h = self.0;
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        TraceHash(h)
    }
}
