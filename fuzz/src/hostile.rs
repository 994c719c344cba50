//! The `hostile` and `hostile_canary` targets: generated scenarios that attack gosim (issue 8)
//! instead of using it: catastrophic patterns, C loops over huge ranges, `__gc` finalizers,
//! coroutine misuse across goroutines, blocking inside C callbacks, deep tables, runaway loops,
//! spawn and memory bombs, error values of every type, and probes of the sandbox.
//!
//! Every run must end within [`WALL_BOUND`] of wall time with an outcome (any `PASS`, `FAIL` or
//! `LIMIT` is fine), the same way twice, without a gosim panic, and without a probe reporting an
//! escape (a probe logs `ESCAPED ...` when it reaches something the sandbox removes).
//!
//! The canary runs the same programs with `--max-instructions 0`, which turns off the instruction
//! hook and the guards of C loops: the fuzzer must then find a program that hangs (a runaway loop,
//! a catastrophic pattern): if it ever stops finding one, the generator lost its teeth.

use std::sync::mpsc;
use std::time::Duration;

use arbitrary::Arbitrary;
use gosim::runtime::{FailureKind, Outcome};
use gosim::scenario::{RunOptions, run_source};

use crate::{options, scenario_text};

/// Snippets in one program.
pub const MAX_SNIPPETS: usize = 6;

/// How long one run may take (release build) before it counts as a hang.
pub const WALL_BOUND: Duration = Duration::from_secs(5);

/// A small number chosen by the fuzzer, mapped onto values that matter (0, 1, small, huge).
fn size(n: u8) -> &'static str {
    [
        "0",
        "1",
        "2",
        "10",
        "40",
        "1000",
        "100000",
        "1e6",
        "1e9",
        "1e15",
        "-1",
        "math.huge",
    ][n as usize % 12]
}

/// Pattern pieces that backtrack when repeated.
fn piece(n: u8) -> &'static str {
    [
        "a*", "a-", "a?", "(a*)", "%a*", ".-", "[ab]*", ".*", "a+", "(a-)", "%w*", "()a*",
    ][n as usize % 12]
}

/// One hostile construct; the bytes choose its shape and sizes.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Snippet {
    /// A pattern of `k` repeated pieces against `n` bytes, through find/match/gmatch/gsub.
    Pattern(u8, u8, u8, u8),
    /// `table.move`/`insert`/`remove` over a huge or lying range.
    TableLoop(u8, u8),
    /// `string.rep` with empty or large parts.
    Rep(u8, u8),
    /// `setmetatable` with a `__gc` that loops, sleeps or errors.
    Finalizer(u8),
    /// Resume or close another goroutine's coroutine, or a coroutine blocked in a call.
    CoroutineMisuse(u8),
    /// A blocking call inside `__tostring`, a sort comparator or a gsub callback.
    BlockInC(u8),
    /// A table nested `n` deep, logged or compared.
    DeepTable(u8),
    /// A loop with no scheduling point, bare or inside pcall/xpcall/resume/load.
    Runaway(u8),
    /// Spawn `n` goroutines at once.
    SpawnBomb(u8),
    /// Allocate until something gives.
    MemoryBomb(u8),
    /// `error` with values of every type.
    ErrorValue(u8),
    /// Probes of the sandbox.
    Probe(u8),
    /// `collectgarbage` options.
    Collect(u8),
    /// Durations that are not durations.
    Sleep(u8),
    /// Metamethods that recurse or loop.
    Metamethod(u8),
    /// A to-be-closed variable whose `__close` loops, sleeps or errors, then a runaway loop.
    Close(u8),
}

impl Snippet {
    fn render(self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = match self {
            Snippet::Pattern(f, n, p, k) => {
                let subject = size(n % 6);
                let pat = piece(p).repeat(usize::from(k % 41));
                let call = match f % 4 {
                    0 => "string.find(s, p .. 'b')",
                    1 => "string.match(s, '^' .. p .. '$b')",
                    2 => "for _ in string.gmatch(s, p .. 'b') do end",
                    _ => "string.gsub(s, p .. 'b', '%0%0')",
                };
                writeln!(
                    out,
                    "pcall(function() local s = string.rep('a', {subject}) local p = {pat:?} {call} end)"
                )
            }
            Snippet::TableLoop(f, n) => {
                let n = size(n);
                match f % 4 {
                    0 => writeln!(out, "pcall(table.move, {{}}, 1, {n}, 2)"),
                    1 => writeln!(
                        out,
                        "pcall(table.insert, setmetatable({{}}, {{__len = function() return {n} end}}), 1, 'x')"
                    ),
                    2 => writeln!(
                        out,
                        "pcall(table.remove, setmetatable({{}}, {{__len = function() return {n} end}}), 1)"
                    ),
                    _ => writeln!(out, "pcall(table.concat, {{}}, '', 1, {n})"),
                }
            }
            Snippet::Rep(f, n) => {
                let n = size(n);
                match f % 3 {
                    0 => writeln!(out, "pcall(string.rep, '', {n})"),
                    1 => writeln!(out, "pcall(string.rep, '', {n}, '')"),
                    _ => writeln!(out, "pcall(string.rep, 'ab', {n}, ',')"),
                }
            }
            Snippet::Finalizer(f) => {
                let body = [
                    "while true do end",
                    "goroutine.sleep(10)",
                    "error('in gc')",
                    "ESC = true",
                ][f as usize % 4];
                writeln!(
                    out,
                    "pcall(setmetatable, {{}}, {{__gc = function() {body} end}}) collectgarbage()"
                )
            }
            Snippet::CoroutineMisuse(f) => match f % 4 {
                0 => writeln!(
                    out,
                    "do local h = goroutine.channel(1) local c = goroutine.channel() \
                     goroutine.spawn{{daemon = true, fn = function() h:send(coroutine.running()) c:receive() end}} \
                     local co = h:receive() goroutine.yield() pcall(coroutine.resume, co, 'forged', true) \
                     pcall(coroutine.close, co) pcall(c.try_send, c, 1) end"
                ),
                1 => writeln!(
                    out,
                    "do local h = goroutine.channel(1) local c = goroutine.channel() \
                     goroutine.spawn{{daemon = true, fn = function() local g = coroutine.create(function() c:receive() end) \
                     h:send(g) coroutine.resume(g) end}} local g = h:receive() goroutine.yield() \
                     pcall(coroutine.resume, g, 'forged') pcall(coroutine.close, g) pcall(c.try_send, c, 1) end"
                ),
                2 => writeln!(
                    out,
                    "pcall(coroutine.resume, coroutine.running()) pcall(coroutine.close, coroutine.running()) \
                     pcall(coroutine.yield, 1)"
                ),
                _ => writeln!(
                    out,
                    "do local w = coroutine.wrap(function() goroutine.sleep(1) coroutine.yield(1) end) \
                     pcall(w) pcall(w) pcall(w) end"
                ),
            },
            Snippet::BlockInC(f) => {
                let call =
                    ["goroutine.sleep(1)", "goroutine.yield()", "c:receive()"][f as usize % 3];
                match (f / 3) % 3 {
                    0 => writeln!(
                        out,
                        "do local c = goroutine.channel(1) c:send(1) pcall(tostring, setmetatable({{}}, {{__tostring = function() {call} return 'x' end}})) end"
                    ),
                    1 => writeln!(
                        out,
                        "do local c = goroutine.channel(1) c:send(1) pcall(table.sort, {{3, 1, 2}}, function(a, b) {call} return a < b end) end"
                    ),
                    _ => writeln!(
                        out,
                        "do local c = goroutine.channel(1) c:send(1) pcall(string.gsub, 'abc', '%w', function() {call} end) end"
                    ),
                }
            }
            Snippet::DeepTable(n) => {
                let depth = ["10", "1000", "100000", "1e6"][n as usize % 4];
                writeln!(
                    out,
                    "do local t = {{}} local cur = t for i = 1, {depth} do cur.next = {{}} cur = cur.next end \
                     pcall(log.table, t) local ok = pcall(function() return t == t end) end"
                )
            }
            Snippet::Runaway(f) => match f % 6 {
                0 => writeln!(out, "while true do end"),
                1 => writeln!(out, "pcall(function() while true do end end)"),
                2 => writeln!(
                    out,
                    "xpcall(function() while true do end end, function(e) while true do end end)"
                ),
                3 => writeln!(
                    out,
                    "coroutine.resume(coroutine.create(function() while true do end end))"
                ),
                4 => writeln!(out, "load(function() while true do end end)"),
                _ => writeln!(
                    out,
                    "for i = 1, 10 do pcall(table.sort, {{3, 2, 1}}, function() while true do end end) end"
                ),
            },
            Snippet::SpawnBomb(n) => writeln!(
                out,
                "pcall(goroutine.spawn_many, {}, function() goroutine.sleep(1) end)",
                size(n)
            ),
            Snippet::MemoryBomb(f) => match f % 3 {
                0 => writeln!(
                    out,
                    "do local t = {{}} while true do t[#t + 1] = {{}} end end"
                ),
                1 => writeln!(out, "do local s = 'x' while true do s = s .. s end end"),
                _ => writeln!(
                    out,
                    "do local c = goroutine.channel(1e9) while true do c:send({{}}) end end"
                ),
            },
            Snippet::ErrorValue(f) => {
                let v = [
                    "nil",
                    "{}",
                    "{code = 1}",
                    "setmetatable({}, {__tostring = function() error('again') end})",
                    "function() end",
                    "coroutine.running()",
                    "'\\255\\254'",
                    "1.5",
                ][f as usize % 8];
                writeln!(out, "pcall(error, {v}) log.info('\\255' .. tostring(1))")
            }
            Snippet::Probe(f) => {
                let probe = [
                    "require('os').execute",
                    "require('os').exit",
                    "package.loaded.os and package.loaded.os.execute",
                    "package.loadlib",
                    "io",
                    "debug",
                    "dofile",
                    "load(string.dump(function() end))",
                    "getmetatable('').__index.os",
                    "os.getenv",
                    "(pcall(require, 'io'))",
                    "package.searchers",
                ][f as usize % 12];
                writeln!(
                    out,
                    "if select(2, pcall(function() return {probe} end)) then log.info('ESCAPED {}') end",
                    probe.replace('\'', "")
                )
            }
            Snippet::Collect(f) => {
                let opt = [
                    "collect",
                    "step",
                    "stop",
                    "restart",
                    "incremental",
                    "generational",
                    "count",
                    "isrunning",
                ][f as usize % 8];
                writeln!(out, "pcall(collectgarbage, {opt:?})")
            }
            Snippet::Sleep(n) => writeln!(out, "pcall(goroutine.sleep, {})", size(n)),
            Snippet::Close(f) => {
                let body = [
                    "while true do end",
                    "goroutine.sleep(1)",
                    "error('in close')",
                    "",
                ][f as usize % 4];
                let then =
                    ["while true do end", "error('x')", "goroutine.sleep(1)"][(f / 4) as usize % 3];
                writeln!(
                    out,
                    "pcall(function() local x <close> = setmetatable({{}}, {{__close = function() {body} end}}) {then} end)"
                )
            }
            Snippet::Metamethod(f) => match f % 3 {
                0 => writeln!(
                    out,
                    "do local t = setmetatable({{}}, {{}}) getmetatable(t).__index = function(s, k) return s[k] end pcall(function() return t.x end) end"
                ),
                1 => writeln!(
                    out,
                    "do local mt = {{}} mt.__eq = function(a, b) return a == b end local a, b = setmetatable({{}}, mt), setmetatable({{}}, mt) pcall(function() return a == b end) end"
                ),
                _ => writeln!(
                    out,
                    "do local t = setmetatable({{}}, {{__index = function() while true do end end}}) pcall(function() return t.x end) end"
                ),
            },
        };
    }
}

/// A hostile program: snippets, each run in main or in a goroutine of its own.
#[derive(Arbitrary, Debug, Clone)]
pub struct HostileInput {
    /// The seed (two bytes, so libFuzzer can vary it cheaply).
    pub seed: u16,
    /// The snippets, and whether each runs in its own goroutine.
    pub snippets: Vec<(bool, Snippet)>,
}

impl HostileInput {
    /// The Lua scenario.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (spawned, s) in self.snippets.iter().take(MAX_SNIPPETS) {
            if *spawned {
                out.push_str("goroutine.spawn(function()\n");
                s.render(&mut out);
                out.push_str("end)\n");
            } else {
                s.render(&mut out);
            }
        }
        out.push_str("goroutine.sleep(1)\n");
        out
    }
}

/// The canary's text: a hang found with the guards off.
pub const HANG_FOUND: &str = "planted bug found: a hang with the guards off";

/// Runs a hostile program twice (in a thread, within [`WALL_BOUND`]) and panics on a hang, a
/// gosim panic, a difference between the runs, or an escape. `guards` false is the canary:
/// `--max-instructions 0`, where a hang is expected to be found.
pub fn run_hostile(input: &HostileInput, guards: bool) {
    let src = input.render();
    let seed = u64::from(input.seed);
    let mut opts: RunOptions = options(seed);
    if !guards {
        opts.lua.max_instructions = 0;
    }
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = mpsc::channel();
        let (s, o) = (src.clone(), opts.clone());
        std::thread::spawn(move || {
            let r = run_source("hostile.lua", &s, &o).map(|r| {
                let trace = r.trace_text();
                (r.outcome, trace)
            });
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        match rx.recv_timeout(WALL_BOUND) {
            Ok(Ok(r)) => runs.push(r),
            Ok(Err(e)) => panic!("a generated scenario did not load: {e}\n{src}"),
            Err(_) if !guards => {
                panic!("{HANG_FOUND}\n{}", scenario_text("hostile.lua", &src, seed))
            }
            Err(_) => panic!(
                "a hostile scenario did not end within {} s (a hang)\n{}",
                WALL_BOUND.as_secs(),
                scenario_text("hostile.lua", &src, seed)
            ),
        }
    }
    let (outcome, trace) = &runs[0];
    if let Outcome::Fail(f) = outcome
        && f.kind == FailureKind::Panic
    {
        panic!(
            "gosim panicked: {outcome}\n{}",
            scenario_text("hostile.lua", &src, seed)
        );
    }
    if runs[0].1 != runs[1].1 || runs[0].0.to_string() != runs[1].0.to_string() {
        panic!(
            "nondeterminism: two runs differ\n{}",
            scenario_text("hostile.lua", &src, seed)
        );
    }
    if let Some(line) = trace.lines().find(|l| l.contains("ESCAPED")) {
        panic!(
            "sandbox escape: {line}\n{}",
            scenario_text("hostile.lua", &src, seed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_snippets() -> Vec<Snippet> {
        let mut v = Vec::new();
        for b in 0..24u8 {
            v.extend([
                Snippet::Pattern(b, b, b, b.wrapping_mul(7)),
                Snippet::TableLoop(b, b.wrapping_mul(5)),
                Snippet::Rep(b, b),
                Snippet::Finalizer(b),
                Snippet::CoroutineMisuse(b),
                Snippet::BlockInC(b),
                Snippet::DeepTable(b),
                Snippet::Runaway(b),
                Snippet::SpawnBomb(b),
                Snippet::MemoryBomb(b),
                Snippet::ErrorValue(b),
                Snippet::Probe(b),
                Snippet::Collect(b),
                Snippet::Sleep(b),
                Snippet::Metamethod(b),
                Snippet::Close(b),
            ]);
        }
        v
    }

    /// Every snippet, alone, in main and in a goroutine: ends, the same way twice, no escape.
    #[test]
    fn every_snippet_ends_and_escapes_nothing() {
        for s in all_snippets() {
            for spawned in [false, true] {
                let input = HostileInput {
                    seed: 1,
                    snippets: vec![(spawned, s)],
                };
                run_hostile(&input, true);
            }
        }
    }

    /// The canary's prey exists: with the guards off, a runaway loop hangs.
    #[test]
    fn with_the_guards_off_a_runaway_loop_is_found() {
        let input = HostileInput {
            seed: 1,
            snippets: vec![(false, Snippet::Runaway(0))],
        };
        let err = std::panic::catch_unwind(|| run_hostile(&input, false)).unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains(HANG_FOUND), "{msg}");
    }
}
