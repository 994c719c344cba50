//! Shared code of the gosim fuzz targets.
//!
//! A fuzz input is decoded (with [`arbitrary`]) into a small program: channels, locks, a wait
//! group, and up to [`MAX_BODIES`] goroutine bodies holding at most [`MAX_OPS`] operations in all.
//! [`Scenario::render`] turns it into a Lua scenario: a fixed harness (`harness.lua`) whose
//! functions perform each operation through the `goroutine` module and check gosim's laws, followed
//! by the generated bodies. [`run_checked`] runs that scenario twice under the input's seed and
//! panics (a crash for libFuzzer) when:
//!
//! - gosim panicked (`FAIL (panic)`);
//! - the two runs differ (trace text or outcome): nondeterminism;
//! - a limit was hit: every generated scenario is finite, so a limit means a hang;
//! - the scenario failed with an error or an assertion: a harness check ("invariant broken: ...")
//!   or a misuse error, which the generator never produces on purpose.
//!
//! Deadlocks and leaks are legitimate outcomes of random operations and pass.

use std::fmt::Write as _;

use arbitrary::{Arbitrary, Unstructured};
use gosim::runtime::{FailureKind, Outcome};
use gosim::scenario::{RunOptions, RunReport, run_source};

/// Goroutine bodies in one scenario (main included); also the most goroutines alive at once.
pub const MAX_BODIES: usize = 8;
/// Operations in one scenario, all bodies together (a select counts as one).
pub const MAX_OPS: usize = 64;
/// Cases in one select.
pub const MAX_CASES: usize = 4;
/// Channels in one scenario.
pub const MAX_CHANNELS: usize = 4;
/// Longest duration of any one operation (sleep, timer, select timeout), in ms.
pub const MAX_MS: u8 = 20;

const HARNESS: &str = include_str!("harness.lua");

pub mod hostile;

/// Declares an enum of unit and tuple variants whose `Arbitrary` impl reads the variant from one
/// byte (the derive reads a `u32`): five bytes per operation instead of two would keep libFuzzer's
/// small early inputs to a couple of operations.
macro_rules! compact_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident {
            $( $(#[$vm:meta])* $variant:ident $( ( $($t:ty),+ ) )? ),+ $(,)?
        }
    ) => {
        $(#[$m])*
        pub enum $name {
            $( $(#[$vm])* $variant $( ( $($t),+ ) )? ),+
        }

        impl<'a> Arbitrary<'a> for $name {
            #[allow(unused_assignments)]
            fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
                const COUNT: usize = [$(stringify!($variant)),+].len();
                let mut tag = usize::from(u8::arbitrary(u)?) % COUNT;
                $(
                    if tag == 0 {
                        return Ok($name::$variant $( ( $( <$t as Arbitrary>::arbitrary(u)? ),+ ) )?);
                    }
                    tag -= 1;
                )+
                unreachable!("the tag is below the number of variants")
            }
        }
    };
}

compact_enum! {
    /// One operation of a goroutine body. Indices are taken modulo the number of things of that
    /// kind.
    #[derive(Debug, Clone)]
    pub enum Op {
        /// Spawn another body as a new goroutine (at most `MAX_BODIES - 1` spawns per run).
        Spawn(u8),
        /// `ch:send(v)`.
        Send(u8),
        /// `ch:receive()`.
        Recv(u8),
        /// `ch:try_send(v)`.
        TrySend(u8),
        /// `ch:try_receive()`.
        TryRecv(u8),
        /// `ch:close()`.
        Close(u8),
        /// `ch:len()`, `ch:cap()`, `ch:is_closed()`.
        Len(u8),
        /// `goroutine.select` (with or without default) or `goroutine.select_timeout`: the cases,
        /// and blocking, with a default case, or with a timeout.
        Select(Vec<Case>, Mode),
        /// `m:lock()` (or a `try_lock` that must fail, if this body holds it).
        Lock(u8),
        /// `m:unlock()`, if this body holds it.
        Unlock(u8),
        /// `m:try_lock()`, unlocked again at once.
        TryLock(u8),
        /// `rw:rlock()`.
        RLock(u8),
        /// `rw:runlock()`.
        RUnlock(u8),
        /// `rw:lock()`.
        WLock(u8),
        /// `rw:unlock()`.
        WUnlock(u8),
        /// `rw:try_rlock()`, released at once.
        TryRLock(u8),
        /// `rw:try_lock()`, released at once.
        TryWLock(u8),
        /// `sem:acquire()`.
        Acquire(u8),
        /// `sem:release()`, if this body holds a permit.
        Release(u8),
        /// `sem:try_acquire()` (released at once) and `sem:available()`.
        TryAcquire(u8),
        /// `wg:add(1 + n % 3)`.
        WgAdd(u8),
        /// `wg:done()`, if the counter is positive.
        WgDone,
        /// `wg:wait()`.
        WgWait,
        /// `goroutine.sleep(ms)`.
        Sleep(u8),
        /// `goroutine.yield()`.
        Yield,
        /// `goroutine.after(ms):receive()`.
        After(u8),
        /// `goroutine.timer(ms)` into this goroutine's timer slot.
        TimerNew(u8),
        /// `t:stop()`: no value may be received afterwards.
        TimerStop,
        /// `t:reset(ms)`: no stale value may be received afterwards.
        TimerReset(u8),
        /// `select_timeout(ms, {t:channel()})`.
        TimerWait(u8),
        /// `cancel()` of the root context.
        Cancel,
        /// `ctx:err()` of the root context and of its child (deadline at 15 ms).
        CtxErr,
        /// `once:call(f)` where `f` sleeps `ms`: `f` runs once, and has finished when `call`
        /// returns.
        Once(u8),
    }
}

compact_enum! {
    /// One case of a select.
    #[derive(Debug, Clone, Copy)]
    pub enum Case {
        /// `{channel = ch, receive = true}`.
        Recv(u8),
        /// `{channel = ch, send = v}`.
        Send(u8),
        /// `{channel = false, receive = true}`: never ready.
        NilRecv,
        /// `{channel = false, send = 1}`: never ready.
        NilSend,
        /// `{channel = goroutine.after(ms), receive = true}`.
        After(u8),
        /// `{channel = ctx:done(), receive = true}` (even: the root context; odd: its child,
        /// whose deadline is at 15 ms).
        Done(u8),
    }
}

compact_enum! {
    /// How a select waits.
    #[derive(Debug, Clone, Copy)]
    pub enum Mode {
        /// `goroutine.select(cases)`.
        Block,
        /// `goroutine.select(cases)` with a `default` case.
        Default,
        /// `goroutine.select_timeout(ms, cases)`.
        Timeout(u8),
    }
}

/// A channel of the scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct Channel {
    /// Capacity (0: rendezvous).
    pub cap: u8,
    /// Values main sends into it before anything else (at most `cap`).
    pub prefill: u8,
    /// Whether main closes it right after the prefill.
    pub closed_at_start: bool,
}

/// A whole generated program.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// Channels (1 to `MAX_CHANNELS`).
    pub channels: Vec<Channel>,
    /// Number of mutexes.
    pub mutexes: usize,
    /// Number of rwmutexes.
    pub rwmutexes: usize,
    /// Capacities of the semaphores.
    pub semaphores: Vec<u8>,
    /// Only main ever receives (enables the exact closed-and-drained and select-readiness checks).
    pub single_receiver: bool,
    /// Main spawns every other body once before its own operations.
    pub spawn_all_at_start: bool,
    /// Bodies; `bodies[0]` is main.
    pub bodies: Vec<Vec<Op>>,
}

fn pick(x: u8, n: usize) -> Option<usize> {
    (n > 0).then(|| 1 + x as usize % n)
}

fn ms(x: u8) -> u8 {
    x % (MAX_MS + 1)
}

/// What one body holds at a point of its straight-line code.
#[derive(Default)]
struct Held {
    mutex: Vec<bool>,
    /// 0: nothing, 1: read, 2: write.
    rw: Vec<u8>,
    sem: Vec<u8>,
}

impl Scenario {
    /// Clamps the sizes to the limits: at most `MAX_BODIES` bodies, `MAX_OPS` operations in all,
    /// `MAX_CASES` cases per select, `MAX_CHANNELS` channels (at least one).
    pub fn clamp(&mut self) {
        self.channels.truncate(MAX_CHANNELS);
        if self.channels.is_empty() {
            self.channels.push(Channel::default());
        }
        for c in &mut self.channels {
            c.cap %= 4;
            c.prefill = c.prefill.min(c.cap);
        }
        self.mutexes = self.mutexes.min(3);
        self.rwmutexes = self.rwmutexes.min(2);
        self.semaphores.truncate(2);
        for s in &mut self.semaphores {
            *s = 1 + *s % 3;
        }
        if self.bodies.is_empty() {
            self.bodies.push(Vec::new());
        }
        self.bodies.truncate(MAX_BODIES);
        let mut budget = MAX_OPS;
        for body in &mut self.bodies {
            body.truncate(budget);
            budget -= body.len();
            for op in body.iter_mut() {
                if let Op::Select(cases, _) = op {
                    cases.truncate(MAX_CASES);
                }
            }
        }
    }

    /// The Lua scenario: configuration, harness, bodies, main.
    pub fn render(&self) -> String {
        self.render_with("")
    }

    /// The Lua scenario with `extra` (Lua code that sees the harness's locals) between the
    /// harness and the bodies: the tests use it to plant faults that the checks must catch.
    pub fn render_with(&self, extra: &str) -> String {
        let mut s = String::with_capacity(HARNESS.len() + 4096);
        s.push_str("-- generated by gosim-fuzz (fuzz/src/lib.rs)\n");
        let list = |v: Vec<String>| v.join(", ");
        let _ = writeln!(
            s,
            "local CAPS = {{ {} }}",
            list(self.channels.iter().map(|c| c.cap.to_string()).collect())
        );
        let _ = writeln!(
            s,
            "local PREFILL_N = {{ {} }}",
            list(
                self.channels
                    .iter()
                    .map(|c| c.prefill.to_string())
                    .collect()
            )
        );
        let _ = writeln!(
            s,
            "local CLOSED_AT_START = {{ {} }}",
            list(
                self.channels
                    .iter()
                    .map(|c| c.closed_at_start.to_string())
                    .collect()
            )
        );
        let _ = writeln!(
            s,
            "local NMUTEX, NRW = {}, {}",
            self.mutexes, self.rwmutexes
        );
        let _ = writeln!(
            s,
            "local SEMCAPS = {{ {} }}",
            list(self.semaphores.iter().map(|c| c.to_string()).collect())
        );
        let _ = writeln!(s, "local SINGLE_RECEIVER = {}", self.single_receiver);
        let _ = writeln!(s, "local MAXSPAWN = {}", MAX_BODIES - 1);
        s.push_str(HARNESS);
        s.push_str(extra);
        s.push_str("\n-- bodies\n");
        for (i, body) in self.bodies.iter().enumerate().skip(1) {
            let _ = writeln!(s, "B[{}] = function()", i + 1);
            self.render_body(body, &mut s);
            s.push_str("end\n");
        }
        s.push_str("\n-- main\nPREFILL()\n");
        if self.spawn_all_at_start {
            for i in 1..self.bodies.len() {
                let _ = writeln!(s, "SPAWN({})", i + 1);
            }
        }
        self.render_body(&self.bodies[0], &mut s);
        s.push_str("FINAL()\n");
        s
    }

    fn render_body(&self, ops: &[Op], s: &mut String) {
        let nch = self.channels.len();
        let nm = self.mutexes;
        let nrw = self.rwmutexes;
        let nsem = self.semaphores.len();
        let others = self.bodies.len() - 1;
        let mut held = Held {
            mutex: vec![false; nm + 1],
            rw: vec![0; nrw + 1],
            sem: vec![0; nsem + 1],
        };
        let mut line = |text: String| {
            s.push_str("  ");
            s.push_str(&text);
            s.push('\n');
        };
        for op in ops {
            match *op {
                Op::Spawn(x) => {
                    if let Some(i) = pick(x, others) {
                        line(format!("SPAWN({})", i + 1));
                    }
                }
                Op::Send(c) => line(format!("SEND({})", pick(c, nch).unwrap())),
                Op::Recv(c) => line(format!("RECV({})", pick(c, nch).unwrap())),
                Op::TrySend(c) => line(format!("TRYSEND({})", pick(c, nch).unwrap())),
                Op::TryRecv(c) => line(format!("TRYRECV({})", pick(c, nch).unwrap())),
                Op::Close(c) => line(format!("CLOSE({})", pick(c, nch).unwrap())),
                Op::Len(c) => line(format!("LEN({})", pick(c, nch).unwrap())),
                Op::Select(ref cases, mode) => {
                    if cases.is_empty() && matches!(mode, Mode::Block) {
                        continue; // a select with no case at all is misuse
                    }
                    let specs: Vec<String> = cases
                        .iter()
                        .map(|c| match *c {
                            Case::Recv(x) => format!("{{ \"r\", {} }}", pick(x, nch).unwrap()),
                            Case::Send(x) => format!("{{ \"s\", {} }}", pick(x, nch).unwrap()),
                            Case::NilRecv => "{ \"nr\" }".to_string(),
                            Case::NilSend => "{ \"ns\" }".to_string(),
                            Case::After(x) => format!("{{ \"a\", {} }}", ms(x)),
                            Case::Done(x) => format!("{{ \"d\", {} }}", x % 2),
                        })
                        .collect();
                    let specs = specs.join(", ");
                    match mode {
                        Mode::Block => line(format!("SEL({{ {specs} }}, \"block\")")),
                        Mode::Default => line(format!("SEL({{ {specs} }}, \"default\")")),
                        Mode::Timeout(x) => {
                            line(format!("SEL({{ {specs} }}, \"timeout\", {})", ms(x)))
                        }
                    }
                }
                Op::Lock(m) => {
                    if let Some(m) = pick(m, nm) {
                        if held.mutex[m] {
                            line(format!("TRYLOCK_HELD({m})"));
                        } else {
                            held.mutex[m] = true;
                            line(format!("LOCK({m})"));
                        }
                    }
                }
                Op::Unlock(m) => {
                    if let Some(m) = pick(m, nm).filter(|&m| held.mutex[m]) {
                        held.mutex[m] = false;
                        line(format!("UNLOCK({m})"));
                    }
                }
                Op::TryLock(m) => {
                    if let Some(m) = pick(m, nm) {
                        if held.mutex[m] {
                            line(format!("TRYLOCK_HELD({m})"));
                        } else {
                            line(format!("TRYLOCK({m})"));
                        }
                    }
                }
                Op::RLock(r) | Op::WLock(r) | Op::TryRLock(r) | Op::TryWLock(r) => {
                    if let Some(r) = pick(r, nrw) {
                        if held.rw[r] != 0 {
                            line(format!("TRYRW_HELD({r})"));
                        } else {
                            match op {
                                Op::RLock(_) => {
                                    held.rw[r] = 1;
                                    line(format!("RLOCK({r})"));
                                }
                                Op::WLock(_) => {
                                    held.rw[r] = 2;
                                    line(format!("WLOCK({r})"));
                                }
                                Op::TryRLock(_) => line(format!("TRYRLOCK({r})")),
                                _ => line(format!("TRYWLOCK({r})")),
                            }
                        }
                    }
                }
                Op::RUnlock(r) => {
                    if let Some(r) = pick(r, nrw).filter(|&r| held.rw[r] == 1) {
                        held.rw[r] = 0;
                        line(format!("RUNLOCK({r})"));
                    }
                }
                Op::WUnlock(r) => {
                    if let Some(r) = pick(r, nrw).filter(|&r| held.rw[r] == 2) {
                        held.rw[r] = 0;
                        line(format!("WUNLOCK({r})"));
                    }
                }
                Op::Acquire(x) => {
                    if let Some(i) = pick(x, nsem).filter(|&i| held.sem[i] < self.semaphores[i - 1])
                    {
                        held.sem[i] += 1;
                        line(format!("ACQ({i})"));
                    }
                }
                Op::Release(x) => {
                    if let Some(i) = pick(x, nsem).filter(|&i| held.sem[i] > 0) {
                        held.sem[i] -= 1;
                        line(format!("REL({i})"));
                    }
                }
                Op::TryAcquire(x) => {
                    if let Some(i) = pick(x, nsem) {
                        line(format!("TRYACQ({i})"));
                    }
                }
                Op::WgAdd(n) => line(format!("WGADD({})", 1 + n % 3)),
                Op::WgDone => line("WGDONE()".to_string()),
                Op::WgWait => line("WGWAIT()".to_string()),
                Op::Sleep(x) => line(format!("SLEEP({})", ms(x))),
                Op::Yield => line("YIELD()".to_string()),
                Op::After(x) => line(format!("AFTER({})", ms(x))),
                Op::TimerNew(x) => line(format!("TNEW({})", 1 + x % MAX_MS)),
                Op::TimerStop => line("TSTOP()".to_string()),
                Op::TimerReset(x) => line(format!("TRESET({})", 1 + x % MAX_MS)),
                Op::TimerWait(x) => line(format!("TWAIT({})", ms(x))),
                Op::Cancel => line("CANCEL()".to_string()),
                Op::CtxErr => line("CTXERR()".to_string()),
                Op::Once(x) => line(format!("ONCE({})", ms(x))),
            }
        }
        // Release whatever the body still holds, so that the others can finish.
        for m in (1..=nm).rev().filter(|&m| held.mutex[m]) {
            line(format!("UNLOCK({m})"));
        }
        for r in (1..=nrw).rev() {
            match held.rw[r] {
                1 => line(format!("RUNLOCK({r})")),
                2 => line(format!("WUNLOCK({r})")),
                _ => {}
            }
        }
        for i in (1..=nsem).rev() {
            for _ in 0..held.sem[i] {
                line(format!("REL({i})"));
            }
        }
    }
}

/// The options of every fuzz run: small limits, so that a hang ends quickly as a `LIMIT`.
pub fn options(seed: u64) -> RunOptions {
    let mut opts = RunOptions::with_seed(seed);
    opts.config.max_steps = 1_000_000;
    opts.config.max_time = std::time::Duration::from_secs(100_000);
    opts.config.drain_time = std::time::Duration::from_secs(1);
    opts.config.max_goroutines = 64;
    opts.config.trace = true;
    opts.lua.max_memory = 64 * 1024 * 1024;
    opts.lua.max_instructions = 1_000_000;
    opts
}

/// The `gosim run` flags that give the same limits as [`options`].
pub const CLI_LIMITS: &str = "--max-steps 1000000 --max-time 100000000 --drain-time 1000 \
                              --max-goroutines 64 --max-memory 64 --max-instructions 1000000";

fn show() -> bool {
    std::env::var_os("GOSIM_FUZZ_SHOW").is_some()
}

/// The end of every crash report: the scenario (without the fixed harness, which is long) and
/// how to run it with the `gosim` binary.
pub fn scenario_text(name: &str, src: &str, seed: u64) -> String {
    let lines = HARNESS.lines().count();
    let shown = src.replacen(
        HARNESS,
        &format!("-- [src/harness.lua: {lines} lines, left out here]\n"),
        1,
    );
    format!(
        "--- scenario {name} (seed {seed}) ---\n{shown}--- end of scenario ---\n\
         reproduce: run the crashing input again with GOSIM_FUZZ_WRITE={name} set (it writes the \
         whole scenario there), then: gosim run {name} --seed {seed} {CLI_LIMITS}"
    )
}

/// Runs `src` twice under `seed` and panics if the runs differ or gosim panicked. Returns the
/// first run's report.
pub fn run_twice(name: &str, src: &str, seed: u64) -> RunReport {
    if let Some(path) = std::env::var_os("GOSIM_FUZZ_WRITE") {
        std::fs::write(&path, src).expect("GOSIM_FUZZ_WRITE names a writable file");
    }
    let opts = options(seed);
    let a = run_source(name, src, &opts).unwrap_or_else(|e| {
        panic!("generated scenario does not load: {e}\n--- scenario ---\n{src}")
    });
    if show() {
        eprintln!(
            "--- scenario (seed {seed}) ---\n{src}\n--- trace ---\n{}\n--- outcome ---\n{}",
            a.trace_text(),
            a.outcome
        );
    }
    if let Outcome::Fail(f) = &a.outcome
        && f.kind == FailureKind::Panic
    {
        panic!(
            "gosim panicked: {}\n{}",
            a.outcome,
            scenario_text(name, src, seed)
        );
    }
    let b = run_source(name, src, &opts).expect("it loaded once");
    let (ta, tb) = (a.trace_text(), b.trace_text());
    let (oa, ob) = (a.outcome.to_string(), b.outcome.to_string());
    if ta != tb || oa != ob {
        let first = ta
            .lines()
            .zip(tb.lines())
            .position(|(x, y)| x != y)
            .map(|i| {
                format!(
                    "first difference at event {}:\n  {}\n  {}",
                    i + 1,
                    ta.lines().nth(i).unwrap_or(""),
                    tb.lines().nth(i).unwrap_or("")
                )
            })
            .unwrap_or_else(|| "traces agree up to the shorter one".to_string());
        panic!(
            "nondeterminism: two runs of the same scenario and seed differ\n{first}\n\
             outcome 1: {oa}\noutcome 2: {ob}\n{}",
            scenario_text(name, src, seed)
        );
    }
    a
}

/// Runs a generated scenario twice and panics unless it passed, deadlocked or leaked (and ran
/// the same way twice).
pub fn run_checked(name: &str, src: &str, seed: u64) -> RunReport {
    let report = run_twice(name, src, seed);
    match &report.outcome {
        Outcome::Pass => {}
        // Deadlocks (of any kind: gosim may report a lock cycle on its own) and leaks are fine.
        Outcome::Fail(f)
            if matches!(
                f.kind,
                FailureKind::Error | FailureKind::Assertion | FailureKind::Panic
            ) =>
        {
            panic!(
                "scenario failed: {}\n{}",
                report.outcome,
                scenario_text(name, src, seed)
            )
        }
        Outcome::Fail(_) => {}
        Outcome::Limit(_) => panic!(
            "a finite scenario hit a limit (a hang?): {}\n{}",
            report.outcome,
            scenario_text(name, src, seed)
        ),
    }
    report
}

// ------------------------------------------------------------------------------------------------
// ops_sim
// ------------------------------------------------------------------------------------------------

/// A channel as the fuzzer describes it.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ChannelSpec {
    /// Capacity, modulo 4.
    pub cap: u8,
    /// Values main sends first (at most the capacity).
    pub prefill: u8,
    /// Closed by main right after the prefill.
    pub closed_at_start: bool,
}

/// The input of `ops_sim`: every kind of operation, in any goroutine.
#[derive(Arbitrary, Debug, Clone)]
pub struct OpsInput {
    /// The run's seed.
    pub seed: u32,
    /// Channels.
    pub channels: Vec<ChannelSpec>,
    /// Mutexes, rwmutexes (each modulo 4 and 3).
    pub locks: (u8, u8),
    /// Semaphore capacities.
    pub semaphores: Vec<u8>,
    /// Main spawns every body first (otherwise only `Spawn` operations do).
    pub spawn_all_at_start: bool,
    /// `bodies[0]` is main.
    pub bodies: Vec<Vec<Op>>,
}

impl OpsInput {
    /// The scenario it stands for.
    pub fn scenario(&self) -> Scenario {
        let mut sc = Scenario {
            channels: self
                .channels
                .iter()
                .map(|c| Channel {
                    cap: c.cap,
                    prefill: c.prefill,
                    closed_at_start: c.closed_at_start,
                })
                .collect(),
            mutexes: self.locks.0 as usize % 4,
            rwmutexes: self.locks.1 as usize % 3,
            semaphores: self.semaphores.clone(),
            single_receiver: false,
            spawn_all_at_start: self.spawn_all_at_start,
            bodies: self.bodies.clone(),
        };
        sc.clamp();
        sc
    }
}

// ------------------------------------------------------------------------------------------------
// select
// ------------------------------------------------------------------------------------------------

compact_enum! {
    /// A case a producer may offer: sends, never-ready cases and timers.
    #[derive(Debug, Clone, Copy)]
    pub enum ProducerCase {
        /// `{channel = ch, send = v}`.
        Send(u8),
        /// `{channel = false, receive = true}`.
        NilRecv,
        /// `{channel = false, send = 1}`.
        NilSend,
        /// `{channel = goroutine.after(ms), receive = true}`.
        After(u8),
    }
}

compact_enum! {
    /// What a producer goroutine does.
    #[derive(Debug, Clone)]
    pub enum ProducerOp {
        /// `ch:send(v)`.
        Send(u8),
        /// `ch:try_send(v)`.
        TrySend(u8),
        /// `ch:close()`.
        Close(u8),
        /// `goroutine.sleep(ms)`.
        Sleep(u8),
        /// `goroutine.yield()`.
        Yield,
        /// `cancel()` of the root context.
        Cancel,
        /// A select over send cases (and never-ready and timer cases).
        Select(Vec<ProducerCase>, Mode),
    }
}

compact_enum! {
    /// What the consumer (main, the only receiver) does.
    #[derive(Debug, Clone)]
    pub enum ConsumerOp {
        /// A select over any cases.
        Select(Vec<Case>, Mode),
        /// A select over receive cases only, with a default.
        Poll(Vec<u8>),
        /// `ch:receive()`.
        Recv(u8),
        /// `ch:try_receive()`.
        TryRecv(u8),
        /// `ch:close()`.
        Close(u8),
        /// `ch:len()` and friends.
        Len(u8),
        /// `goroutine.sleep(ms)`.
        Sleep(u8),
        /// `goroutine.yield()`.
        Yield,
    }
}

/// The input of `select`: producers feed channels, main selects over them.
#[derive(Arbitrary, Debug, Clone)]
pub struct SelectInput {
    /// The run's seed.
    pub seed: u32,
    /// Channels (some prefilled and closed at the start).
    pub channels: Vec<ChannelSpec>,
    /// Producer goroutines, all spawned at the start.
    pub producers: Vec<Vec<ProducerOp>>,
    /// Main's operations.
    pub consumer: Vec<ConsumerOp>,
}

impl SelectInput {
    /// The scenario it stands for.
    pub fn scenario(&self) -> Scenario {
        let consumer = self
            .consumer
            .iter()
            .map(|op| match op {
                ConsumerOp::Select(cases, mode) => Op::Select(cases.clone(), *mode),
                ConsumerOp::Poll(chs) => {
                    Op::Select(chs.iter().map(|&c| Case::Recv(c)).collect(), Mode::Default)
                }
                ConsumerOp::Recv(c) => Op::Recv(*c),
                ConsumerOp::TryRecv(c) => Op::TryRecv(*c),
                ConsumerOp::Close(c) => Op::Close(*c),
                ConsumerOp::Len(c) => Op::Len(*c),
                ConsumerOp::Sleep(x) => Op::Sleep(*x),
                ConsumerOp::Yield => Op::Yield,
            })
            .collect();
        let producer = |ops: &Vec<ProducerOp>| -> Vec<Op> {
            ops.iter()
                .map(|op| match op {
                    ProducerOp::Send(c) => Op::Send(*c),
                    ProducerOp::TrySend(c) => Op::TrySend(*c),
                    ProducerOp::Close(c) => Op::Close(*c),
                    ProducerOp::Sleep(x) => Op::Sleep(*x),
                    ProducerOp::Yield => Op::Yield,
                    ProducerOp::Cancel => Op::Cancel,
                    ProducerOp::Select(cases, mode) => Op::Select(
                        cases
                            .iter()
                            .map(|c| match *c {
                                ProducerCase::Send(x) => Case::Send(x),
                                ProducerCase::NilRecv => Case::NilRecv,
                                ProducerCase::NilSend => Case::NilSend,
                                ProducerCase::After(x) => Case::After(x),
                            })
                            .collect(),
                        *mode,
                    ),
                })
                .collect()
        };
        let mut bodies = vec![consumer];
        bodies.extend(self.producers.iter().map(producer));
        let mut sc = Scenario {
            channels: self
                .channels
                .iter()
                .map(|c| Channel {
                    cap: c.cap,
                    prefill: c.prefill,
                    closed_at_start: c.closed_at_start,
                })
                .collect(),
            single_receiver: true,
            spawn_all_at_start: true,
            bodies,
            ..Scenario::default()
        };
        sc.clamp();
        sc
    }
}

// ------------------------------------------------------------------------------------------------
// canary
// ------------------------------------------------------------------------------------------------

/// The input of `canary`: tellers moving money between three accounts.
///
/// Compact on purpose (the fuzzer should reach the bug's shape within seconds): every byte of
/// `steps` is one step, `b & 3` the teller (1 to 4), `(b >> 2) & 3` the kind (0: yield, otherwise
/// a transfer), `(b >> 4) & 3` and `b >> 6` the source and destination accounts (modulo 3; a
/// transfer to the same account is skipped). At most 32 steps.
#[derive(Arbitrary, Debug, Clone)]
pub struct CanaryInput {
    /// The run's seed.
    pub seed: u16,
    /// The steps, one byte each.
    pub steps: Vec<u8>,
}

/// The message the canary panics with when the fuzzer finds its planted bug.
pub const PLANTED_BUG: &str = "planted bug found";

impl CanaryInput {
    /// The canary scenario. Its planted bug: `transfer` locks the source account, then the
    /// destination, with no global lock order, so two tellers moving money in opposite directions
    /// can each hold one lock and wait for the other (a lock-order inversion). Only inputs with
    /// two such transfers in different goroutines, under a seed whose schedule switches between
    /// the two `lock` calls, deadlock.
    pub fn render(&self) -> String {
        const N: usize = 3;
        let mut tellers: [Vec<String>; 4] = Default::default();
        for &b in self.steps.iter().take(32) {
            let teller = &mut tellers[(b & 3) as usize];
            let (from, to) = (1 + ((b >> 4) & 3) as usize % N, 1 + (b >> 6) as usize % N);
            if (b >> 2) & 3 == 0 {
                teller.push("G.yield()".to_string());
            } else if from != to {
                teller.push(format!("transfer({from}, {to}, {})", 1 + b % 10));
            }
        }
        let tellers: Vec<(usize, &Vec<String>)> = tellers
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .collect();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "local G = goroutine\nlocal N = {N}\nlocal balance, lock = {{}}, {{}}\n\
             for i = 1, N do balance[i] = 100; lock[i] = G.mutex() end\n\
             local function transfer(from, to, amount)\n\
             \x20 lock[from]:lock()   -- PLANTED BUG: no global lock order\n\
             \x20 lock[to]:lock()\n\
             \x20 if balance[from] >= amount then\n\
             \x20   balance[from] = balance[from] - amount\n\
             \x20   balance[to] = balance[to] + amount\n\
             \x20 end\n\
             \x20 lock[to]:unlock()\n\
             \x20 lock[from]:unlock()\n\
             end\n\
             local wg = G.wait_group()\n\
             wg:add({})",
            tellers.len()
        );
        for (i, steps) in tellers {
            let _ = writeln!(s, "G.spawn{{name = \"teller{}\", fn = function()", i + 1);
            for step in steps {
                let _ = writeln!(s, "  {step}");
            }
            s.push_str("  wg:done()\nend}\n");
        }
        s.push_str(
            "wg:wait()\nlocal total = 0\nfor i = 1, N do total = total + balance[i] end\n\
             assert(total == 100 * N, \"money was created or lost: \" .. total)\n",
        );
        s
    }
}

#[cfg(test)]
mod tests;
