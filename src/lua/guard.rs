//! Guards for the C loops of the standard library that no hook can stop.
//!
//! Lua's count hook runs only between Lua instructions, so a single C call that loops for a long
//! time (pattern matching that backtracks exponentially, `string.rep("", 1e15)`, `table.move`
//! over a huge range) would hang a run with the instruction budget never firing. Each such call
//! is checked before the C function runs:
//!
//! * patterns (`string.find`, `match`, `gmatch`, `gsub`): [`pattern_cost`] replays the work the C
//!   matcher of Lua 5.4 (`lstrlib.c`) would do, step for step, and stops as soon as the count
//!   passes the budget. It is a faithful port of the matcher's control flow (same recursion, same
//!   backtracking order), so its count bounds the C call's work; the results themselves still
//!   come from Lua's own C code.
//! * element counts (`table.move`, `table.insert`, `table.remove`): the count is compared with
//!   the budget directly.
//!
//! The budget is `--max-instructions` (one pattern step or one moved element counts as one
//! instruction), so one flag bounds all the CPU a goroutine may spend without a scheduling point.

use crate::runtime::{LimitKind, Runtime};

/// The most Lua goroutines alive at once, whatever `--max-goroutines` says. Every Lua value the
/// runtime holds (a goroutine's coroutine, the function and arguments of one not started yet, a
/// value buffered in a channel) takes a slot of mlua's reference stack, which Lua 5.4 caps at
/// 1,000,000 for the whole state. A goroutine holds one or two slots; this cap keeps room for
/// the other values, so the run ends with a goroutine limit instead of `out of Lua stack` errors
/// at random calls (which also left the state unusable).
pub(crate) const LUA_GOROUTINES_MAX: usize = 300_000;

/// Whether one more Lua goroutine may start; if not, ends the run with the goroutine limit.
pub(crate) fn may_spawn_lua_goroutine(rt: &Runtime) -> bool {
    if rt.live_goroutines() < LUA_GOROUTINES_MAX {
        return true;
    }
    rt.hit_limit(
        LimitKind::Goroutines,
        format!(
            "more than {LUA_GOROUTINES_MAX} Lua goroutines alive at once (the most a Lua run can \
             hold, whatever --max-goroutines says: each holds Lua values in mlua's reference \
             stack of 1,000,000 slots)"
        ),
        None,
    );
    false
}

/// A goroutine failed with mlua's "out of Lua stack": the reference stack is full (too many
/// values held by the runtime at once, e.g. buffered in channels). That is a resource limit, not
/// an error of the scenario: end the run with the memory limit and say so.
pub(crate) fn classify_failure(rt: &Runtime, message: &str) {
    if message.contains("out of Lua stack") {
        rt.hit_limit(
            LimitKind::Memory,
            "more Lua values held by the runtime at once than mlua's reference stack allows \
             (1,000,000 slots: goroutines, values buffered in channels, pending results; a cap \
             of the Lua binding, not raised by --max-memory)"
                .to_string(),
            None,
        );
    }
}

/// Reads the calling thread's net allocated bytes. Installed by a program that counts its
/// allocations (the `gosim` binary's global allocator); without one, only the Lua heap is
/// limited.
static MEMORY_PROBE: std::sync::OnceLock<fn() -> i64> = std::sync::OnceLock::new();

/// Installs the probe behind the whole-run memory limit: `probe()` must return the bytes the
/// calling thread has allocated and not freed (see `MemoryWatch`). The first call wins.
pub fn set_memory_probe(probe: fn() -> i64) {
    let _ = MEMORY_PROBE.set(probe);
}

/// The whole-run memory limit: the Lua heap, the runtime's tasks, queues and timers, channel
/// buffers and the trace together. A run executes on one thread, so its memory is the growth of
/// that thread's allocation count since the run's Lua state was created. Checked at every
/// scheduling point and every instruction-hook call (every 1,000 Lua instructions).
#[derive(Debug)]
pub(crate) struct MemoryWatch {
    baseline: std::cell::Cell<i64>,
    /// What the world itself took (measured at its first run): a reused world's runs count it
    /// too, as a new world's first run does.
    world: std::cell::Cell<Option<i64>>,
    limit: i64,
}

impl MemoryWatch {
    /// Starts watching the current thread with a limit of `limit` bytes.
    pub(crate) fn new(limit: usize) -> MemoryWatch {
        MemoryWatch {
            baseline: std::cell::Cell::new(MEMORY_PROBE.get().map_or(0, |p| p())),
            world: std::cell::Cell::new(None),
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
        }
    }

    /// Starts a run's accounting: the first run of a world counts from before the world was
    /// built; a later run from now, less what the world took.
    pub(crate) fn restart(&self) {
        let Some(probe) = MEMORY_PROBE.get() else {
            return;
        };
        let now = probe();
        match self.world.get() {
            None => self.world.set(Some(now.wrapping_sub(self.baseline.get()))),
            Some(world) => self.baseline.set(now.wrapping_sub(world)),
        }
    }

    /// Ends the run with the memory limit if the run's memory passed it.
    pub(crate) fn check(&self, rt: &Runtime) {
        if MEMORY_PROBE.get().is_some() {
            self.reserve(rt, 0);
        }
    }

    /// Whether `bytes` more fit under the limit; if not, ends the run with the memory limit. For
    /// Rust code that would allocate much in one call, with no scheduling point to check at
    /// (`fan_out(ch, 1e9)` making a billion channels): it asks first. Without a probe only
    /// `bytes` itself is compared with the limit.
    pub(crate) fn reserve(&self, rt: &Runtime, bytes: i64) -> bool {
        let used = MEMORY_PROBE
            .get()
            .map_or(0, |probe| probe().wrapping_sub(self.baseline.get()));
        if used.saturating_add(bytes) > self.limit {
            if !rt.is_over() {
                rt.hit_limit(
                LimitKind::Memory,
                format!(
                    "the run's memory (Lua heap, goroutines, channels, timers and trace) passed \
                     {} MB",
                    self.limit / (1024 * 1024)
                ),
                None,
            );
            }
            return false;
        }
        true
    }
}

/// The largest number of captures Lua allows (`LUA_MAXCAPTURES`).
const MAX_CAPTURES: usize = 32;
/// The recursion bound of Lua's matcher (`MAXCCALLS` in `lstrlib.c`).
const MAX_DEPTH: u32 = 200;
/// The escape character of patterns.
const ESC: u8 = b'%';
/// Capture length markers, as in `lstrlib.c`.
const CAP_UNFINISHED: isize = -1;
const CAP_POSITION: isize = -2;

/// Why a replay stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// More steps than the budget: the C call would run too long.
    Budget,
    /// The C matcher raises an error at this point (malformed pattern, too many captures,
    /// pattern too complex): the C call fails fast, so it may run.
    Error,
}

/// Which library function is being checked: they differ in how they loop over the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternCall {
    /// `string.find` / `string.match`: the first match from `init`, honouring `^`.
    Find,
    /// `string.gmatch`: every match from `init` (a leading `^` is an ordinary character).
    Gmatch,
    /// `string.gsub` with at most `n` replacements, honouring `^`.
    Gsub(u64),
}

struct Matcher<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    capture: [(usize, isize); MAX_CAPTURES],
    depth: u32,
    steps: u64,
    budget: u64,
}

/// Counts the matcher steps of one pattern call, `Err(Stop::Budget)` past `budget`.
/// `init` is the 0-based start offset, already resolved as Lua does (`posrelat`), and may be
/// `src.len()`; a larger `init` means Lua returns at once.
pub(crate) fn pattern_cost(
    call: PatternCall,
    src: &[u8],
    pat: &[u8],
    init: usize,
    budget: u64,
) -> Result<u64, Stop> {
    let mut m = Matcher {
        src,
        pat,
        level: 0,
        capture: [(0, 0); MAX_CAPTURES],
        depth: MAX_DEPTH,
        steps: 0,
        budget,
    };
    if init > src.len() {
        return Ok(0);
    }
    match call {
        PatternCall::Find => {
            let (anchor, p) = if pat.first() == Some(&b'^') {
                (true, 1)
            } else {
                (false, 0)
            };
            let mut s = init;
            loop {
                m.reset();
                if m.do_match(s, p)?.is_some() {
                    break;
                }
                if anchor || s >= src.len() {
                    break;
                }
                s += 1;
            }
        }
        PatternCall::Gmatch => {
            let mut s = init;
            let mut last: Option<usize> = None;
            while s <= src.len() {
                m.reset();
                match m.do_match(s, 0)? {
                    Some(e) if Some(e) != last => {
                        s = e;
                        last = Some(e);
                    }
                    _ => s += 1,
                }
            }
        }
        PatternCall::Gsub(max_n) => {
            let (anchor, p) = if pat.first() == Some(&b'^') {
                (true, 1)
            } else {
                (false, 0)
            };
            let mut s = init;
            let mut last: Option<usize> = None;
            let mut n = 0;
            while n < max_n {
                m.reset();
                match m.do_match(s, p)? {
                    Some(e) if Some(e) != last => {
                        n += 1;
                        s = e;
                        last = Some(e);
                    }
                    _ if s < src.len() => s += 1,
                    _ => break,
                }
                if anchor {
                    break;
                }
            }
        }
    }
    Ok(m.steps)
}

impl Matcher<'_> {
    fn reset(&mut self) {
        self.level = 0;
        self.depth = MAX_DEPTH;
    }

    fn tick(&mut self) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps > self.budget {
            Err(Stop::Budget)
        } else {
            Ok(())
        }
    }

    /// The pattern byte at `i`, or 0 past the end (C strings end with a NUL).
    fn p(&self, i: usize) -> u8 {
        self.pat.get(i).copied().unwrap_or(0)
    }

    /// The subject byte at `i`, or 0 past the end.
    fn s(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    fn do_match(&mut self, s: usize, p: usize) -> Result<Option<usize>, Stop> {
        if self.depth == 0 {
            return Err(Stop::Error);
        }
        self.depth -= 1;
        let r = self.match_body(s, p);
        self.depth += 1;
        r
    }

    fn match_body(&mut self, mut s: usize, mut p: usize) -> Result<Option<usize>, Stop> {
        loop {
            self.tick()?;
            if p == self.pat.len() {
                return Ok(Some(s));
            }
            match self.pat[p] {
                b'(' => {
                    return if self.p(p + 1) == b')' {
                        self.start_capture(s, p + 2, CAP_POSITION)
                    } else {
                        self.start_capture(s, p + 1, CAP_UNFINISHED)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                ESC if self.p(p + 1) == b'b' => match self.match_balance(s, p + 2)? {
                    Some(e) => {
                        s = e;
                        p += 4;
                        continue;
                    }
                    None => return Ok(None),
                },
                ESC if self.p(p + 1) == b'f' => {
                    p += 2;
                    if self.p(p) != b'[' {
                        return Err(Stop::Error);
                    }
                    let ep = self.class_end(p)?;
                    let prev = if s == 0 { 0 } else { self.s(s - 1) };
                    let cur = self.s(s);
                    if !self.bracket_class(prev, p, ep - 1) && self.bracket_class(cur, p, ep - 1) {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                ESC if self.p(p + 1).is_ascii_digit() => {
                    match self.match_capture(s, self.p(p + 1))? {
                        Some(e) => {
                            s = e;
                            p += 2;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                _ => {
                    let ep = self.class_end(p)?;
                    let suffix = self.p(ep);
                    if !self.single(s, p, ep) {
                        if matches!(suffix, b'*' | b'?' | b'-') {
                            p = ep + 1;
                            continue;
                        }
                        return Ok(None);
                    }
                    match suffix {
                        b'?' => {
                            if let Some(r) = self.do_match(s + 1, ep + 1)? {
                                return Ok(Some(r));
                            }
                            p = ep + 1;
                            continue;
                        }
                        b'+' => return self.max_expand(s + 1, p, ep),
                        b'*' => return self.max_expand(s, p, ep),
                        b'-' => return self.min_expand(s, p, ep),
                        _ => {
                            s += 1;
                            p = ep;
                            continue;
                        }
                    }
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Result<Option<usize>, Stop> {
        let mut i = 0;
        while self.single(s + i, p, ep) {
            self.tick()?;
            i += 1;
        }
        loop {
            if let Some(r) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(r));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Result<Option<usize>, Stop> {
        loop {
            if let Some(r) = self.do_match(s, ep + 1)? {
                return Ok(Some(r));
            }
            if self.single(s, p, ep) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: isize) -> Result<Option<usize>, Stop> {
        if self.level >= MAX_CAPTURES {
            return Err(Stop::Error);
        }
        self.capture[self.level] = (s, what);
        self.level += 1;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.level -= 1;
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Result<Option<usize>, Stop> {
        let Some(l) = (0..self.level)
            .rev()
            .find(|&l| self.capture[l].1 == CAP_UNFINISHED)
        else {
            return Err(Stop::Error);
        };
        self.capture[l].1 = (s - self.capture[l].0) as isize;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.capture[l].1 = CAP_UNFINISHED;
        }
        Ok(r)
    }

    fn match_capture(&mut self, s: usize, digit: u8) -> Result<Option<usize>, Stop> {
        let l = digit as isize - b'1' as isize;
        if l < 0 || l as usize >= self.level || self.capture[l as usize].1 == CAP_UNFINISHED {
            return Err(Stop::Error);
        }
        let (start, len) = self.capture[l as usize];
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        self.steps += len as u64;
        if self.steps > self.budget {
            return Err(Stop::Budget);
        }
        if self.src.len() - s >= len && self.src[start..start + len] == self.src[s..s + len] {
            Ok(Some(s + len))
        } else {
            Ok(None)
        }
    }

    fn match_balance(&mut self, s: usize, p: usize) -> Result<Option<usize>, Stop> {
        if p + 1 >= self.pat.len() {
            return Err(Stop::Error);
        }
        if self.s(s) != self.pat[p] || s >= self.src.len() {
            return Ok(None);
        }
        let (b, e) = (self.pat[p], self.pat[p + 1]);
        let mut cont = 1;
        let mut i = s + 1;
        while i < self.src.len() {
            self.tick()?;
            let c = self.src[i];
            if c == e {
                cont -= 1;
                if cont == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == b {
                cont += 1;
            }
            i += 1;
        }
        Ok(None)
    }

    /// The end of the single-character class at `p` (where its suffix would be).
    fn class_end(&self, p: usize) -> Result<usize, Stop> {
        let c = self.pat[p];
        let mut p = p + 1;
        match c {
            ESC => {
                if p >= self.pat.len() {
                    return Err(Stop::Error);
                }
                Ok(p + 1)
            }
            b'[' => {
                if self.p(p) == b'^' {
                    p += 1;
                }
                loop {
                    if p >= self.pat.len() {
                        return Err(Stop::Error);
                    }
                    let c = self.pat[p];
                    p += 1;
                    if c == ESC && p < self.pat.len() {
                        p += 1;
                    }
                    if self.p(p) == b']' {
                        break;
                    }
                }
                Ok(p + 1)
            }
            _ => Ok(p),
        }
    }

    fn single(&self, s: usize, p: usize, ep: usize) -> bool {
        if s >= self.src.len() {
            return false;
        }
        let c = self.src[s];
        match self.pat[p] {
            b'.' => true,
            ESC => class_matches(c, self.p(p + 1)),
            b'[' => self.bracket_class(c, p, ep - 1),
            pc => pc == c,
        }
    }

    /// `[...]` from `p` (the `[`) to `ec` (the `]`).
    fn bracket_class(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut sig = true;
        if self.p(p + 1) == b'^' {
            sig = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                break;
            }
            if self.p(p) == ESC {
                p += 1;
                if class_matches(c, self.p(p)) {
                    return sig;
                }
            } else if self.p(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if self.p(p - 2) <= c && c <= self.p(p) {
                    return sig;
                }
            } else if self.p(p) == c {
                return sig;
            }
        }
        !sig
    }
}

/// `%a`, `%d`... in the C locale, as Lua's `match_class`.
fn class_matches(c: u8, cl: u8) -> bool {
    let res = match cl.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        _ => return cl == c,
    };
    if cl.is_ascii_uppercase() { !res } else { res }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_cost(s: &str, p: &str) -> Result<u64, Stop> {
        pattern_cost(PatternCall::Find, s.as_bytes(), p.as_bytes(), 0, 10_000_000)
    }

    #[test]
    fn ordinary_patterns_are_cheap() {
        for (s, p) in [
            ("hello world", "o w"),
            ("key = value", "^%s*(%S+)%s*=%s*(.-)%s*$"),
            ("f(a(b)c)", "%b()"),
            ("THE (quick) fox", "%f[%a]%a+"),
            ("abcabc", "(a)(b)c%1%2"),
            ("", ".*"),
        ] {
            let c = find_cost(s, p).unwrap();
            assert!(c < 1000, "{p:?} on {s:?}: {c}");
        }
    }

    #[test]
    fn catastrophic_backtracking_is_over_budget() {
        let s = "a".repeat(40);
        let p = format!("{}b", "a*".repeat(40));
        assert_eq!(find_cost(&s, &p), Err(Stop::Budget));
    }

    #[test]
    fn malformed_patterns_are_left_to_lua() {
        for p in ["[a", "%", "%1", "%b", "%fa"] {
            assert_eq!(find_cost("aaa", p), Err(Stop::Error), "{p:?}");
        }
    }

    #[test]
    fn gsub_and_gmatch_count_every_position() {
        let s = "x".repeat(1000);
        let c = pattern_cost(PatternCall::Gmatch, s.as_bytes(), b"x", 0, u64::MAX).unwrap();
        assert!((1000..5000).contains(&c), "{c}");
        let c = pattern_cost(PatternCall::Gsub(1), s.as_bytes(), b"x", 0, u64::MAX).unwrap();
        assert!(c < 10, "{c}");
    }
}
