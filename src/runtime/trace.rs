//! The trace: one event per scheduling-relevant step, in a stable text form (what snapshot tests
//! store) and as JSON Lines. An event never contains an address, a wall-clock reading or anything
//! else that differs between two processes running the same seed.
//!
//! Events are recorded compactly and formatted only when rendered: a fixed-size `Event` (72
//! bytes) holds the time, the goroutine, the verb, the resource (a shared handle), the other
//! goroutine as an id, and a `Detail` (an integer, a number, a duration, a static or short inline
//! string, ...). Recording a channel hand-off, a block, a wake, a lock or a sleep allocates
//! nothing and formats nothing. Goroutine names are not copied into events either: the run keeps
//! one `NameLog` (who was called what from which event on), shared by its events, so a rename is
//! shown from the event after it, as if each event had copied the name.
//!
//! Why not smaller: `time`, `task` and `verb` stay public fields of their old types (tests and
//! views read them), and an event must render by itself (`Event::to_text`), hence the shared
//! name log handle. The renderer writes bytes and formats numbers by hand: at a few hundred
//! instructions a line, rendering is still most of what the text trace costs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::rc::Rc;

use super::backend::{NANOS_PER_MS, Nanos, format_ms};
use super::resource::ResourceRef;
use super::task::TaskId;

/// What an event is about, besides the goroutine that caused it.
///
/// # Examples
///
/// ```
/// use gosim::runtime::Subject;
///
/// let sim = gosim::Sim::with_seed(1);
/// let report = sim.run(async {});
/// let first = &report.events[0];
/// assert!(matches!(first.subject(), Subject::None | Subject::Resource(_) | Subject::Task(..)));
/// ```
#[derive(Debug, Clone)]
pub enum Subject {
    /// Nothing more.
    None,
    /// A resource (channel, mutex, timer, ...).
    Resource(ResourceRef),
    /// Another goroutine (spawned or woken), with its name at the time. When recording, the name
    /// given here is not stored: the run's name log already knows it.
    Task(TaskId, Option<Rc<str>>),
}

/// The longest string a `Detail::Quoted` keeps inline (it fills the rest of the detail's 16 bytes).
pub const SHORT_MAX: usize = 14;

/// A short string stored inline (no heap), at most `SHORT_MAX` bytes of UTF-8.
///
/// # Examples
///
/// ```
/// use gosim::runtime::ShortStr;
///
/// assert_eq!(ShortStr::new("job-1").expect("short").as_str(), "job-1");
/// assert!(ShortStr::new("a string longer than fourteen bytes").is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortStr {
    len: u8,
    bytes: [u8; SHORT_MAX],
}

impl ShortStr {
    /// `s` inline, if it is short enough.
    pub fn new(s: &str) -> Option<ShortStr> {
        let n = s.len();
        if n > SHORT_MAX {
            return None;
        }
        let mut bytes = [0u8; SHORT_MAX];
        bytes[..n].copy_from_slice(s.as_bytes());
        Some(ShortStr {
            len: n as u8,
            bytes,
        })
    }

    /// `bytes` inline, if they are UTF-8 and short enough.
    pub fn from_utf8(bytes: &[u8]) -> Option<ShortStr> {
        if bytes.len() > SHORT_MAX {
            return None;
        }
        ShortStr::new(std::str::from_utf8(bytes).ok()?)
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // Only `new` builds one, from a `&str` cut at its end: always valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An event's free text (a value, a duration, a message), kept in a form that costs nothing to
/// record and is formatted when the trace is rendered. The rendered text of each kind is fixed
/// (snapshot tests store it): see `Detail::write`. 16 bytes: every payload is one word, or a
/// short string inline.
///
/// # Examples
///
/// ```
/// use gosim::runtime::Detail;
///
/// let mut out = String::new();
/// Detail::Int(42).write(&mut out);
/// out.push(' ');
/// Detail::quoted("job-1").write(&mut out);
/// assert_eq!(out, "42 \"job-1\"");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// No detail.
    None,
    /// A fixed text (`Detail::Static(&"closed")`: a reference to a `&'static str`, one word).
    Static(&'static &'static str),
    /// Text formatted by the caller (patterns' details; values too long to keep inline), boxed
    /// so that the detail stays one word.
    Text(Box<String>),
    /// An integer: `42`.
    Int(i64),
    /// An unsigned integer: `42`.
    Uint(u64),
    /// A Rust float, as Rust's `Display` shows it: `1.5`, `2`.
    Float(f64),
    /// A Lua number (a float), as gosim shows Lua values: `2.0`, `1.5`, `1e+20`.
    LuaNumber(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A duration in milliseconds: `5ms`, `0.25ms`.
    Ms(Nanos),
    /// A string shown quoted and escaped (Rust's `{:?}`): `"job-1"`.
    Quoted(ShortStr),
}

impl Detail {
    /// Owned text (allocated once; prefer a specific kind on hot paths).
    pub fn text(s: String) -> Detail {
        Detail::Text(Box::new(s))
    }

    /// A string shown quoted, as Rust's `{:?}` shows it: inline when short, else formatted now.
    pub fn quoted(s: &str) -> Detail {
        match ShortStr::new(s) {
            Some(short) => Detail::Quoted(short),
            None => Detail::text(format!("{s:?}")),
        }
    }

    /// Whether there is a detail.
    pub fn is_none(&self) -> bool {
        matches!(self, Detail::None)
    }

    /// Appends the rendered text.
    pub fn write(&self, out: &mut String) {
        Out::append_to(out, |o| self.write_out(o));
    }

    fn write_out(&self, out: &mut Out) {
        match self {
            Detail::None => {}
            Detail::Static(s) => out.s(s),
            Detail::Text(s) => out.s(s),
            Detail::Int(i) => {
                if *i < 0 {
                    out.b(b'-');
                }
                push_u64(out, i.unsigned_abs());
            }
            Detail::Uint(u) => push_u64(out, *u),
            Detail::Float(x) => {
                let _ = write!(out, "{x}");
            }
            Detail::LuaNumber(n) => {
                if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
                    let _ = write!(out, "{n:.1}");
                } else {
                    let _ = write!(out, "{n}");
                }
            }
            Detail::Bool(b) => out.s(if *b { "true" } else { "false" }),
            Detail::Ms(ns) => write_ms(out, *ns),
            Detail::Quoted(s) => {
                let _ = write!(out, "{:?}", s.as_str());
            }
        }
    }
}

impl From<Option<String>> for Detail {
    fn from(d: Option<String>) -> Detail {
        match d {
            None => Detail::None,
            Some(s) => Detail::text(s),
        }
    }
}

/// The renderer's buffer: bytes rather than a `String`, so that appending a digit or a space is
/// a store, not a character encoding. Everything appended comes from a `&str` or is ASCII, so
/// the bytes are always UTF-8.
struct Out(Vec<u8>);

impl Out {
    /// Appends a string.
    fn s(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// Appends one ASCII byte.
    fn b(&mut self, b: u8) {
        debug_assert!(b.is_ascii());
        self.0.push(b);
    }

    fn into_string(self) -> String {
        String::from_utf8(self.0)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Runs `f` on a buffer that then goes at the end of `out`.
    fn append_to(out: &mut String, f: impl FnOnce(&mut Out)) {
        let mut o = Out(std::mem::take(out).into_bytes());
        f(&mut o);
        *out = o.into_string();
    }
}

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.s(s);
        Ok(())
    }
}

/// Appends `n` in decimal, without the formatting machinery (rendering a trace is mostly
/// numbers: times, goroutine and resource ids, values).
fn push_u64(out: &mut Out, n: u64) {
    push_digits(out, n, 1);
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
fn push_digits(out: &mut Out, mut n: u64, width: usize) {
    // Most numbers in a trace (ids, small values, whole milliseconds) have one or two digits.
    if width <= 1 && n < 10 {
        out.b(b'0' + n as u8);
        return;
    }
    if width <= 2 && n < 100 {
        out.b(b'0' + (n / 10) as u8);
        out.b(b'0' + (n % 10) as u8);
        return;
    }
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(buf.len().saturating_sub(width));
    out.0.extend_from_slice(&buf[start..]);
}

/// `format_ms` without the allocation: `12ms`, `1.5ms`, `0.000001ms`.
fn write_ms(out: &mut Out, ns: Nanos) {
    push_u64(out, ns / NANOS_PER_MS);
    let frac = ns % NANOS_PER_MS;
    if frac != 0 {
        let mut digits = frac;
        let mut width = 6;
        while digits.is_multiple_of(10) {
            digits /= 10;
            width -= 1;
        }
        out.b(b'.');
        push_digits(out, digits, width);
    }
    out.s("ms");
}

/// `channel#3` or `mutex#2"accounts"`, as `Resource`'s `Display` writes it, appended.
fn write_resource(out: &mut Out, r: &ResourceRef) {
    out.s(r.kind());
    out.b(b'#');
    push_u64(out, r.id());
    if let Some(name) = r.name() {
        let _ = write!(out, "{name:?}");
    }
}

/// `g3` or `g3(worker)`, appended.
fn write_label(out: &mut Out, id: u64, name: Option<&str>) {
    out.b(b'g');
    push_u64(out, id);
    if let Some(n) = name {
        out.b(b'(');
        out.s(n);
        out.b(b')');
    }
}

/// Every goroutine's name over the run, shared by the run's events: for each named goroutine,
/// the names it had and the event sequence number from which each held. Unnamed goroutines take
/// no room.
#[derive(Debug, Default)]
pub(crate) struct NameLog {
    by_task: RefCell<BTreeMap<u64, Vec<Named>>>,
}

/// A goroutine's name (`None`: unnamed, or exited) from an event's sequence number on.
type Named = (u32, Option<Rc<str>>);

impl NameLog {
    /// `task` is called `name` from event `seq` on.
    fn set(&self, task: TaskId, seq: u32, name: Option<Rc<str>>) {
        let mut by_task = self.by_task.borrow_mut();
        let log = by_task.entry(task.0).or_default();
        match log.last_mut() {
            Some(last) if last.0 == seq => last.1 = name,
            _ => log.push((seq, name)),
        }
    }

    /// `task`'s name at event `seq`.
    fn at(&self, task: u64, seq: u32) -> Option<Rc<str>> {
        let by_task = self.by_task.borrow();
        let log = by_task.get(&task)?;
        let i = log.partition_point(|(from, _)| *from <= seq);
        log[..i].last().and_then(|(_, n)| n.clone())
    }

    /// Appends `task`'s label at event `seq` (`sched` for the scheduler).
    fn write_label(&self, out: &mut Out, task: u64, seq: u32) {
        if task == 0 {
            out.s("sched");
            return;
        }
        let by_task = self.by_task.borrow();
        let name = by_task.get(&task).and_then(|log| {
            let i = log.partition_point(|(from, _)| *from <= seq);
            log[..i].last().and_then(|(_, n)| n.as_deref())
        });
        write_label(out, task, name);
    }
}

/// What `Event::other` holds (in its top bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Other {
    /// Nothing.
    None,
    /// The subject goroutine (`spawn`, `wake`).
    Subject,
    /// The peer of a hand-off, not shown in the text.
    Peer,
    /// The peer, shown after the detail as `to gN`.
    PeerTo,
    /// The peer, shown after the detail as `from gN`.
    PeerFrom,
}

/// `Event::other`: the low `OTHER_BITS` bits are a goroutine id, the top three what it means
/// (`Other`). A traced run reaching goroutine 2^29 would hold at least two events per goroutine
/// spawned (its spawn and its exit, over 70 GB): memory runs out long before the id does.
const OTHER_BITS: u32 = 29;
const OTHER_ID: u32 = (1 << OTHER_BITS) - 1;

fn pack_other(shape: Other, id: u64) -> u32 {
    let id = u32::try_from(id)
        .ok()
        .filter(|&i| i <= OTHER_ID)
        .expect("goroutine ids fit in 29 bits");
    ((shape as u32) << OTHER_BITS) | id
}

/// How the other goroutine of a channel hand-off appears in the text of the event.
///
/// # Examples
///
/// ```
/// use gosim::runtime::PeerShown;
///
/// // How a channel hand-off names its other goroutine: `send 42 to g3`, `receive 42 from g3`.
/// assert_ne!(PeerShown::To, PeerShown::From);
/// assert_ne!(PeerShown::Hidden, PeerShown::To);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerShown {
    /// Not at all (the views still link the two through `Event::peer`).
    Hidden,
    /// After the detail: `send 42 to g3`.
    To,
    /// After the detail: `receive 42 from g3`.
    From,
}

/// One trace event: fixed size, formatted only when rendered.
///
/// # Examples
///
/// ```
/// use gosim::prelude::*;
///
/// let sim = Sim::with_seed(1);
/// let s = sim.clone();
/// let report = sim.run(async move {
///     let ch = s.channel::<u8>(1);
///     ch.send(5).await.expect("open");
/// });
/// let send = report.events.iter().find(|e| e.verb == "send").expect("traced");
/// assert_eq!(send.detail().as_deref(), Some("5"));
/// assert!(send.to_text().contains("g1(main) send channel#1 5"));
/// ```
#[derive(Clone)]
pub struct Event {
    /// The run's time when it happened.
    pub time: Nanos,
    /// The goroutine that caused it (`g0` stands for the scheduler itself, e.g. a timer firing).
    pub task: TaskId,
    /// A short verb: `spawn`, `send`, `receive`, `block`, `wake`, `lock`, `log`, ...
    pub verb: &'static str,
    /// The run's goroutine names.
    names: Rc<NameLog>,
    /// The resource it acted on.
    resource: Option<ResourceRef>,
    /// Free text: a value, a duration, a message.
    detail: Detail,
    /// Its number in the run (names are looked up as of it).
    seq: u32,
    /// Another goroutine and what it is to this event (`pack_other`).
    other: u32,
}

impl fmt::Debug for Event {
    /// The event as its text line shows it (not the run's whole name log, which it shares).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("text", &self.to_text())
            .field("peer", &self.peer())
            .finish()
    }
}

impl Event {
    fn shape(&self) -> Other {
        match self.other >> OTHER_BITS {
            0 => Other::None,
            1 => Other::Subject,
            2 => Other::Peer,
            3 => Other::PeerTo,
            _ => Other::PeerFrom,
        }
    }

    fn other_id(&self) -> u64 {
        u64::from(self.other & OTHER_ID)
    }

    /// The name of the goroutine that caused it, at the time.
    pub fn task_name(&self) -> Option<Rc<str>> {
        self.names.at(self.task.0, self.seq)
    }

    /// What it acted on.
    pub fn subject(&self) -> Subject {
        if self.shape() == Other::Subject {
            let id = TaskId(self.other_id());
            return Subject::Task(id, self.names.at(id.0, self.seq));
        }
        match &self.resource {
            Some(r) => Subject::Resource(r.clone()),
            None => Subject::None,
        }
    }

    /// The resource it acted on, if any.
    pub fn resource(&self) -> Option<&ResourceRef> {
        self.resource.as_ref()
    }

    /// The goroutine on the other side of a hand-off: for a channel `send` the receiver the
    /// value went to, for a `receive` the sender it came from, when that goroutine was parked.
    /// Views (the Chrome trace's message arrows) read it instead of parsing the detail back.
    pub fn peer(&self) -> Option<TaskId> {
        match self.shape() {
            Other::Peer | Other::PeerTo | Other::PeerFrom => Some(TaskId(self.other_id())),
            Other::None | Other::Subject => None,
        }
    }

    /// The detail as recorded.
    pub fn detail_kind(&self) -> &Detail {
        &self.detail
    }

    /// The detail's text (with the `to gN` / `from gN` of a hand-off), as the text form shows it.
    pub fn detail(&self) -> Option<String> {
        if self.detail.is_none() && !matches!(self.shape(), Other::PeerTo | Other::PeerFrom) {
            return None;
        }
        let mut out = Out(Vec::new());
        self.write_detail(&mut out);
        Some(out.into_string())
    }

    fn write_detail(&self, out: &mut Out) {
        self.detail.write_out(out);
        match self.shape() {
            Other::PeerTo => {
                out.s(" to g");
                push_u64(out, self.other_id());
            }
            Other::PeerFrom => {
                out.s(" from g");
                push_u64(out, self.other_id());
            }
            _ => {}
        }
    }

    fn has_detail(&self) -> bool {
        !self.detail.is_none() || matches!(self.shape(), Other::PeerTo | Other::PeerFrom)
    }

    /// Appends `verb subject` (`send channel#1`, `wake g3(worker)`).
    pub(crate) fn write_headline(&self, out: &mut String) {
        Out::append_to(out, |o| self.headline_out(o));
    }

    fn headline_out(&self, out: &mut Out) {
        out.s(self.verb);
        if self.shape() == Other::Subject {
            out.b(b' ');
            self.names.write_label(out, self.other_id(), self.seq);
        } else if let Some(r) = &self.resource {
            out.b(b' ');
            write_resource(out, r);
        }
    }

    /// Appends the stable one-line text form, without a newline.
    pub fn write_text(&self, out: &mut String) {
        Out::append_to(out, |o| self.text_out(o));
    }

    fn text_out(&self, out: &mut Out) {
        write_ms(out, self.time);
        out.b(b' ');
        self.names.write_label(out, self.task.0, self.seq);
        out.b(b' ');
        self.headline_out(out);
        if self.has_detail() {
            out.b(b' ');
            self.write_detail(out);
        }
    }

    /// The stable one-line text form: `12ms g2(worker) send channel#1 42`.
    pub fn to_text(&self) -> String {
        let mut line = Out(Vec::with_capacity(64));
        self.text_out(&mut line);
        line.into_string()
    }

    /// One JSON object (a JSON Lines record).
    pub fn to_json(&self) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("t_ns".into(), self.time.into());
        obj.insert("t".into(), format_ms(self.time).into());
        obj.insert("g".into(), self.task.0.into());
        obj.insert(
            "name".into(),
            self.task_name()
                .as_deref()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        );
        obj.insert("ev".into(), self.verb.into());
        match self.subject() {
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
        if let Some(d) = self.detail() {
            obj.insert("detail".into(), d.into());
        }
        serde_json::Value::Object(obj).to_string()
    }
}

/// The largest chunk of events `Recorder` allocates at once.
const CHUNK_MAX: usize = 8192;

/// A run's trace as it is recorded: the events, and the names they share.
///
/// Events are kept in chunks rather than one growing `Vec`: a doubling `Vec` would carry up to
/// as much unused room as it has events (and copy them all at each growth), and a run of 100,000
/// parked goroutines would pay that per goroutine. The chunks grow with the trace up to
/// `CHUNK_MAX` events, so the slack stays below one chunk.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    chunks: Vec<Vec<Event>>,
    names: Rc<NameLog>,
    seq: u32,
}

impl Recorder {
    /// Records one event. `other` is the subject goroutine or the hand-off's peer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        time: Nanos,
        task: TaskId,
        verb: &'static str,
        subject: Subject,
        detail: Detail,
        peer: Option<(TaskId, PeerShown)>,
    ) {
        let (resource, other) = match (subject, peer) {
            (Subject::Task(id, _), _) => (None, pack_other(Other::Subject, id.0)),
            (Subject::None, None) => (None, 0),
            (Subject::Resource(r), None) => (Some(r), 0),
            (subject, Some((p, shown))) => {
                let shape = match shown {
                    PeerShown::Hidden => Other::Peer,
                    PeerShown::To => Other::PeerTo,
                    PeerShown::From => Other::PeerFrom,
                };
                let resource = match subject {
                    Subject::Resource(r) => Some(r),
                    _ => None,
                };
                (resource, pack_other(shape, p.0))
            }
        };
        let full = self.chunks.last().is_none_or(|c| c.len() == c.capacity());
        if full {
            let recorded: usize = self.chunks.iter().map(Vec::len).sum();
            self.chunks
                .push(Vec::with_capacity(recorded.clamp(64, CHUNK_MAX)));
        }
        let chunk = self.chunks.last_mut().expect("a chunk with room");
        chunk.push(Event {
            time,
            task,
            verb,
            names: self.names.clone(),
            resource,
            detail,
            seq: self.seq,
            other,
        });
        self.seq = self.seq.wrapping_add(1);
    }

    /// `task` is called `name` from the next event on (`None`: it has exited, or lost its name).
    pub(crate) fn name(&mut self, task: TaskId, name: Option<Rc<str>>) {
        self.names.set(task, self.seq, name);
    }

    /// A copy of the events recorded so far.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.chunks.iter().flatten().cloned().collect()
    }

    /// Takes the events recorded so far, as one `Vec` (each chunk is freed once moved, so the
    /// trace is never held twice).
    pub(crate) fn take(&mut self) -> Vec<Event> {
        let mut chunks = std::mem::take(&mut self.chunks);
        if chunks.len() == 1 {
            return chunks.pop().unwrap_or_default();
        }
        let mut events = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
        for chunk in chunks {
            events.extend(chunk);
        }
        events
    }
}

/// The formats a trace can be written in.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{TraceFormat, render};
///
/// let sim = gosim::Sim::with_seed(1);
/// let report = sim.run(async {});
/// let text = render(&report.events, TraceFormat::Text);
/// let jsonl = render(&report.events, TraceFormat::Jsonl);
/// assert_eq!(text.lines().count(), jsonl.lines().count()); // one line per event either way
/// assert!(jsonl.lines().all(|l| l.starts_with('{')));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Jsonl,
}

/// Renders events in a format, one line each, with a final newline.
pub fn render(events: &[Event], format: TraceFormat) -> String {
    let mut out = Out(Vec::with_capacity(events.len() * 48));
    for e in events {
        match format {
            TraceFormat::Text => e.text_out(&mut out),
            TraceFormat::Jsonl => out.s(&e.to_json()),
        }
        out.b(b'\n');
    }
    out.into_string()
}

/// A 64-bit FNV-1a hash of the text trace: a cheap fingerprint to compare runs without keeping
/// whole traces (the hash is fixed by the algorithm, not by the process).
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, run_source};
///
/// let src = "local ch = goroutine.channel(1) ch:send(1) ch:receive()";
/// let a = run_source("h.lua", src, &RunOptions::with_seed(8)).expect("compiles");
/// let b = run_source("h.lua", src, &RunOptions::with_seed(8)).expect("compiles");
/// assert_eq!(a.trace_hash(), b.trace_hash()); // the same seed, the same trace
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceHash(pub u64);

impl TraceHash {
    /// The hash of nothing.
    pub const EMPTY: TraceHash = TraceHash(0xcbf29ce484222325);

    /// Adds one line.
    pub fn add_line(self, line: &str) -> TraceHash {
        self.add_bytes(line.as_bytes())
    }

    fn add_bytes(self, line: &[u8]) -> TraceHash {
        let mut h = self.0;
        for &b in line.iter().chain(std::iter::once(&b'\n')) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        TraceHash(h)
    }

    /// Adds every event's text line (one buffer reused for all of them).
    pub fn add_events(self, events: &[Event]) -> TraceHash {
        let mut line = Out(Vec::with_capacity(128));
        events.iter().fold(self, |h, e| {
            line.0.clear();
            e.text_out(&mut line);
            h.add_bytes(&line.0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::resource::{Resource, ResourceKind};

    fn text(d: Detail) -> String {
        let mut out = String::new();
        d.write(&mut out);
        out
    }

    #[test]
    fn each_detail_kind_renders_its_fixed_text() {
        assert_eq!(text(Detail::None), "");
        assert_eq!(text(Detail::Static(&"closed")), "closed");
        assert_eq!(text(Detail::text("n=3 full".into())), "n=3 full");
        assert_eq!(text(Detail::Int(-42)), "-42");
        assert_eq!(text(Detail::Uint(u64::MAX)), "18446744073709551615");
        assert_eq!(text(Detail::Float(1.5)), "1.5");
        assert_eq!(text(Detail::Float(2.0)), "2");
        assert_eq!(text(Detail::LuaNumber(2.0)), "2.0");
        assert_eq!(text(Detail::LuaNumber(-0.25)), "-0.25");
        assert_eq!(text(Detail::LuaNumber(1e20)), "100000000000000000000");
        assert_eq!(text(Detail::LuaNumber(f64::INFINITY)), "inf");
        assert_eq!(text(Detail::LuaNumber(f64::NAN)), "NaN");
        assert_eq!(text(Detail::Bool(true)), "true");
        assert_eq!(text(Detail::Bool(false)), "false");
        assert_eq!(text(Detail::Ms(5_000_000)), "5ms");
        assert_eq!(text(Detail::quoted("job-1")), "\"job-1\"");
        assert_eq!(text(Detail::quoted("a\"b\n")), "\"a\\\"b\\n\"");
        let long = "x".repeat(SHORT_MAX + 1);
        assert!(matches!(Detail::quoted(&long), Detail::Text(_)));
        assert_eq!(text(Detail::quoted(&long)), format!("{long:?}"));
        assert!(matches!(
            Detail::quoted(&"é".repeat(SHORT_MAX / 2)),
            Detail::Quoted(_)
        ));
        assert_eq!(text(Detail::from(None)), "");
        assert_eq!(text(Detail::from(Some("free".to_string()))), "free");
    }

    #[test]
    fn numbers_and_resources_render_as_display_does() {
        for n in [
            0,
            1,
            9,
            10,
            11,
            42,
            99,
            100,
            101,
            999,
            12345,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Out(Vec::new());
            push_u64(&mut out, n);
            assert_eq!(out.into_string(), n.to_string());
        }
        for i in [0, -1, 7, i64::MIN, i64::MAX] {
            assert_eq!(text(Detail::Int(i)), i.to_string());
        }
        let mut padded = Out(Vec::new());
        push_digits(&mut padded, 25, 6);
        assert_eq!(padded.into_string(), "000025");
        for (n, width, shown) in [(5, 2, "05"), (25, 2, "25"), (7, 3, "007"), (123, 2, "123")] {
            let mut out = Out(Vec::new());
            push_digits(&mut out, n, width);
            assert_eq!(out.into_string(), shown);
        }
        let r = channel(12);
        let mut out = Out(Vec::new());
        write_resource(&mut out, &r);
        assert_eq!(out.into_string(), r.to_string());
        r.set_name("jobs \"x\"");
        let mut out = Out(Vec::new());
        write_resource(&mut out, &r);
        let out = out.into_string();
        assert_eq!(out, r.to_string());
        assert_eq!(out, "channel#12\"jobs \\\"x\\\"\"");
    }

    #[test]
    fn milliseconds_render_as_format_ms_does() {
        for ns in [
            0,
            1,
            10,
            999_999,
            1_000_000,
            1_500_000,
            1_000_001,
            12_340_000,
            123_456_789_012,
            u64::MAX,
        ] {
            let mut out = Out(Vec::new());
            write_ms(&mut out, ns);
            assert_eq!(out.into_string(), format_ms(ns), "{ns} ns");
        }
    }

    #[test]
    fn short_strings_stay_inline_and_events_stay_small() {
        assert_eq!(std::mem::size_of::<Detail>(), 16);
        assert_eq!(std::mem::size_of::<Event>(), 72);
        assert_eq!(
            ShortStr::new("abc").map(|s| s.as_str().to_string()),
            Some("abc".into())
        );
        assert!(ShortStr::from_utf8(b"\xff").is_none());
        assert!(ShortStr::new(&"y".repeat(SHORT_MAX)).is_some());
    }

    fn channel(id: u64) -> ResourceRef {
        Rc::new(Resource::new(
            id,
            ResourceKind::released_by_anyone("channel"),
            None,
        ))
    }

    #[test]
    fn chunks_keep_every_event_in_order() {
        let mut rec = Recorder::default();
        let n = 3 * CHUNK_MAX + 17;
        for i in 0..n {
            rec.push(
                i as u64,
                TaskId(1),
                "tick",
                Subject::None,
                Detail::None,
                None,
            );
        }
        assert!(rec.chunks.iter().all(|c| c.capacity() <= CHUNK_MAX));
        assert_eq!(rec.events().len(), n);
        let events = rec.take();
        assert_eq!(events.len(), n);
        assert!(events.iter().enumerate().all(|(i, e)| e.time == i as u64));
        assert!(rec.take().is_empty());
    }

    #[test]
    fn events_render_subjects_peers_and_names_as_of_their_time() {
        let mut rec = Recorder::default();
        let ch = channel(1);
        rec.name(TaskId(1), Some(Rc::from("main")));
        rec.push(
            0,
            TaskId(1),
            "spawn",
            Subject::Task(TaskId(2), None),
            Detail::Static(&"daemon"),
            None,
        );
        rec.name(TaskId(2), Some(Rc::from("worker")));
        rec.push(
            1_500_000,
            TaskId(2),
            "send",
            Subject::Resource(ch.clone()),
            Detail::Int(7),
            Some((TaskId(1), PeerShown::To)),
        );
        rec.push(
            1_500_000,
            TaskId(1),
            "receive",
            Subject::Resource(ch.clone()),
            Detail::Int(7),
            Some((TaskId(2), PeerShown::From)),
        );
        rec.push(
            2_000_000,
            TaskId(1),
            "receive",
            Subject::Resource(ch),
            Detail::LuaNumber(1.0),
            Some((TaskId(2), PeerShown::Hidden)),
        );
        rec.push(
            2_000_000,
            TaskId(0),
            "wake",
            Subject::Task(TaskId(2), None),
            Detail::None,
            None,
        );
        rec.push(
            3_000_000,
            TaskId(2),
            "exit",
            Subject::None,
            Detail::None,
            None,
        );
        rec.name(TaskId(2), None);
        rec.push(
            3_000_000,
            TaskId(2),
            "note",
            Subject::None,
            Detail::Ms(250_000),
            None,
        );
        let events = rec.take();
        assert_eq!(
            render(&events, TraceFormat::Text),
            "0ms g1(main) spawn g2 daemon\n\
             1.5ms g2(worker) send channel#1 7 to g1\n\
             1.5ms g1(main) receive channel#1 7 from g2\n\
             2ms g1(main) receive channel#1 1.0\n\
             2ms sched wake g2(worker)\n\
             3ms g2(worker) exit\n\
             3ms g2 note 0.25ms\n"
        );
        assert_eq!(events[1].peer(), Some(TaskId(1)));
        assert_eq!(events[3].peer(), Some(TaskId(2)));
        assert_eq!(events[3].detail().as_deref(), Some("1.0"));
        assert_eq!(events[1].detail().as_deref(), Some("7 to g1"));
        assert_eq!(events[5].detail(), None);
        assert!(
            matches!(events[4].subject(), Subject::Task(TaskId(2), Some(n)) if &*n == "worker")
        );
        assert_eq!(events[0].peer(), None);
        assert_eq!(
            format!("{:?}", events[1]),
            r#"Event { text: "1.5ms g2(worker) send channel#1 7 to g1", peer: Some(TaskId(1)) }"#
        );
        assert_eq!(
            events[1].to_json(),
            r#"{"detail":"7 to g1","ev":"send","g":2,"name":"worker","res":{"id":1,"kind":"channel"},"t":"1.5ms","t_ns":1500000}"#
        );
        let hash = TraceHash::EMPTY.add_events(&events);
        let by_line = events
            .iter()
            .fold(TraceHash::EMPTY, |h, e| h.add_line(&e.to_text()));
        assert_eq!(hash, by_line);
    }
}
