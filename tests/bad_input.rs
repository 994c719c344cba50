//! Bad input gets a clear error and loses nothing: never a panic, never a hang.
//!
//! Covers syntax errors, misuse of every function of the `goroutine` module (lua-api.md §1: the
//! error names the user's line and the function), runaway scripts cut by each limit
//! (harness.md §1), error values that are tables, `coroutine.yield` misuse, and the standard
//! library a simulation must not expose or must make deterministic.

use std::sync::mpsc;
use std::time::Duration;

use gosim::lua::LuaLimits;
use gosim::runtime::{Config, FailureKind, LimitKind, Outcome};
use gosim::scenario::{RunOptions, RunReport, run_source};

mod common;
use common::logs;
use common::misuse::{CHANS, NOP, check_all, first_line, m, ma};
use common::try_run;

/// Runs `src` as `t.lua` with seed 1 and default limits.
fn run(src: &str) -> RunReport {
    run_with(src, &RunOptions::with_seed(1))
}

fn run_with(src: &str, opts: &RunOptions) -> RunReport {
    match try_run(src, opts) {
        Ok(r) => r,
        Err(e) => panic!("{e}\n--- source ---\n{src}"),
    }
}

/// How long a run that hits a limit may take before it counts as a hang (a debug build runs each
/// of these in well under a second).
const HANG_AFTER: Duration = Duration::from_secs(10);

/// Runs every source on its own thread, all at once, and gives up on those still running after
/// `HANG_AFTER`, so a run that never ends fails the test instead of hanging the suite.
/// Returns, per source, its outcome or why there is none.
fn run_all_guarded(srcs: &[&str], opts: &RunOptions) -> Vec<Result<Outcome, String>> {
    let (tx, rx) = mpsc::channel();
    for (i, src) in srcs.iter().enumerate() {
        let tx = tx.clone();
        let source = src.to_string();
        let opts = opts.clone();
        std::thread::spawn(move || {
            let outcome = try_run(&source, &opts).map(|r| r.outcome);
            let _ = tx.send((i, outcome));
        });
    }
    drop(tx);
    let mut results: Vec<Result<Outcome, String>> = srcs
        .iter()
        .map(|_| {
            Err(format!(
                "the run did not end within {} s (a hang)",
                HANG_AFTER.as_secs()
            ))
        })
        .collect();
    let deadline = std::time::Instant::now() + HANG_AFTER;
    for _ in srcs {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, r)) => results[i] = r,
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    results
}

/// `run_all_guarded` for one source; panics on a hang.
fn run_guarded(src: &str, opts: RunOptions) -> Outcome {
    match run_all_guarded(&[src], &opts).pop().expect("one result") {
        Ok(o) => o,
        Err(e) => panic!("{e}\n--- source ---\n{src}"),
    }
}

/// Runs every source (concurrently, guarded) and checks each ends with the `kind` limit and passes
/// `extra`; reports every case that does not.
fn check_limits(
    kind: LimitKind,
    opts: &RunOptions,
    srcs: &[&str],
    extra: impl Fn(&gosim::runtime::LimitHit) -> Option<String>,
) {
    let mut report = String::new();
    for (src, result) in srcs.iter().zip(run_all_guarded(srcs, opts)) {
        let problem = match result {
            Err(e) => Some(e),
            Ok(Outcome::Limit(l)) if l.kind == kind => extra(&l),
            Ok(other) => Some(format!(
                "expected the {}, got {}",
                kind.word(),
                first_line(&other.to_string())
            )),
        };
        if let Some(p) = problem {
            report.push_str(&format!("\n* {p}\n--- source ---\n{src}"));
        }
    }
    assert!(
        report.is_empty(),
        "runs that did not end with the {}:{report}",
        kind.word()
    );
}

fn opts_with_lua(lua: LuaLimits) -> RunOptions {
    RunOptions {
        lua,
        ..RunOptions::with_seed(1)
    }
}

fn opts_with_config(f: impl FnOnce(&mut Config)) -> RunOptions {
    let mut o = RunOptions::with_seed(1);
    f(&mut o.config);
    o
}

fn expect_pass(r: &RunReport, src: &str) {
    assert!(
        r.outcome.is_pass(),
        "expected pass, got {}\n--- source ---\n{src}",
        r.outcome
    );
}

/// The failure of a run that must have failed with an error.
fn expect_error(r: &RunReport, src: &str) -> (String, Option<String>) {
    match &r.outcome {
        Outcome::Fail(f) if f.kind == FailureKind::Error => (f.message.clone(), f.location.clone()),
        other => panic!("expected an error failure, got {other}\n--- source ---\n{src}"),
    }
}

// ------------------------------------------------------------------------------------------------
// Syntax errors
// ------------------------------------------------------------------------------------------------

#[test]
fn syntax_errors_are_load_errors_with_file_and_line() {
    let cases: &[(&str, u32)] = &[
        ("local x = 1\nlocal y = = 2\n", 2),
        ("log.info('a')\n\n\nif true then\n  log.info('b')\n", 6),
        ("local s = \"unterminated\nlocal t = 1\n", 1),
        ("local function f()\n  return 1\nend end\n", 3),
        ("goroutine.spawn(function()\n  local = 3\nend)\n", 2),
        ("x = 1 +\n", 2),
    ];
    for (src, line) in cases {
        match run_source("file.lua", src, &RunOptions::with_seed(1)) {
            Ok(r) => panic!(
                "a syntax error loaded and ran ({})\n--- source ---\n{src}",
                r.outcome
            ),
            Err(e) => {
                let want = format!("file.lua:{line}");
                assert!(
                    e.0.contains(&want),
                    "load error {:?} does not name {want}\n--- source ---\n{src}",
                    e.0
                );
                assert!(
                    !e.0.contains("[string"),
                    "load error {:?} names a string chunk, not the file",
                    e.0
                );
            }
        }
    }
}

#[test]
fn a_syntax_error_in_load_at_run_time_is_an_ordinary_lua_result() {
    let src = r#"
local f, err = load("x = = 1", "=inner")
assert(f == nil, "load compiled bad code")
assert(type(err) == "string" and err:find("inner:1", 1, true), tostring(err))
log.info("ok")
"#;
    let r = run(src);
    expect_pass(&r, src);
    assert_eq!(logs(&r), ["ok"]);
}

// ------------------------------------------------------------------------------------------------
// Misuse of the API
// ------------------------------------------------------------------------------------------------

#[test]
fn channel_capacity_message_is_exact() {
    let src = "local ok, e = pcall(function() goroutine.channel(-1) end)\nlog.info(e)\ngoroutine.channel(-1)\n";
    let r = run(src);
    assert_eq!(
        logs(&r),
        ["t.lua:1: goroutine.channel: capacity must be a non-negative integer (got -1)"]
    );
    let (message, location) = expect_error(&r, src);
    assert_eq!(
        first_line(&message),
        "t.lua:3: goroutine.channel: capacity must be a non-negative integer (got -1)"
    );
    assert_eq!(location.as_deref(), Some("t.lua:3"));
}

#[test]
fn misuse_of_goroutines_and_waiting() {
    check_all(&[
        m("", "goroutine.spawn(42)", "goroutine.spawn", "(got 42)"),
        m("", "goroutine.spawn(nil)", "goroutine.spawn", "(got nil)"),
        m("", "goroutine.spawn({name = 'w'})", "goroutine.spawn", "fn"),
        m(
            NOP,
            "goroutine.spawn({fn = f, name = 5})",
            "goroutine.spawn",
            "(got 5)",
        ),
        m(
            NOP,
            "goroutine.spawn({fn = f, args = 5})",
            "goroutine.spawn",
            "(got 5)",
        ),
        m(
            NOP,
            "goroutine.spawn_many('x', f)",
            "goroutine.spawn_many",
            "(got \"x\")",
        ),
        m(
            NOP,
            "goroutine.spawn_many(-1, f)",
            "goroutine.spawn_many",
            "(got -1)",
        ),
        m(
            NOP,
            "goroutine.spawn_many(1.5, f)",
            "goroutine.spawn_many",
            "(got 1.5)",
        ),
        m(
            "",
            "goroutine.spawn_many(2, 42)",
            "goroutine.spawn_many",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.sleep('soon')",
            "goroutine.sleep",
            "(got \"soon\")",
        ),
        m("", "goroutine.sleep({})", "goroutine.sleep", "(got"),
        m(
            NOP,
            "goroutine.timeout('x', f)",
            "goroutine.timeout",
            "(got \"x\")",
        ),
        m(
            "",
            "goroutine.timeout(10, 42)",
            "goroutine.timeout",
            "(got 42)",
        ),
        m("", "goroutine.async(42)", "goroutine.async", "(got 42)"),
        m("", "goroutine.await(42)", "goroutine.await", "(got 42)"),
        m("", "goroutine.await({})", "goroutine.await", "(got"),
        m(
            "",
            "goroutine.await_all(42)",
            "goroutine.await_all",
            "(got 42)",
        ),
        m("", "goroutine.name(42)", "goroutine.name", "(got 42)"),
        ma(
            "local wg = goroutine.wait_group()",
            "wg:add(-1)",
            "wait_group:add",
            "negative",
            "wg:wait()",
        ),
        ma(
            "local wg = goroutine.wait_group()",
            "wg:done()",
            "wait_group:done",
            "negative",
            "wg:wait()",
        ),
        ma(
            "local wg = goroutine.wait_group() wg:add(2)",
            "wg:add(-3)",
            "wait_group:add",
            "negative",
            "wg:done() wg:done() wg:wait()",
        ),
        m(
            "local wg = goroutine.wait_group()",
            "wg:add('x')",
            "wait_group:add",
            "(got \"x\")",
        ),
        m(
            "local wg = goroutine.wait_group()",
            "wg.wait(42)",
            "wait_group:wait",
            "(got",
        ),
        m(
            "local wg = goroutine.wait_group()",
            "wg.add(42, 1)",
            "wait_group:add",
            "(got",
        ),
    ]);
}

#[test]
fn misuse_of_pools() {
    check_all(&[
        m(
            "",
            "goroutine.pool_create(42)",
            "goroutine.pool_create",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.pool_create('p', {workers = 0})",
            "goroutine.pool_create",
            "(got 0)",
        ),
        m(
            "",
            "goroutine.pool_create('p', {workers = -2})",
            "goroutine.pool_create",
            "(got -2)",
        ),
        m(
            "",
            "goroutine.pool_create('p', {workers = 'many'})",
            "goroutine.pool_create",
            "(got \"many\")",
        ),
        m(
            "",
            "goroutine.pool_create('p', 5)",
            "goroutine.pool_create",
            "(got 5)",
        ),
        m(
            NOP,
            "goroutine.pool_submit(42, f)",
            "goroutine.pool_submit",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.pool_submit('p', 42)",
            "goroutine.pool_submit",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.pool_wait(42)",
            "goroutine.pool_wait",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.pool_close(42)",
            "goroutine.pool_close",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.pool_stats(42)",
            "goroutine.pool_stats",
            "(got 42)",
        ),
    ]);
}

#[test]
fn misuse_of_channels() {
    check_all(&[
        m(
            "",
            "goroutine.channel(-1)",
            "goroutine.channel",
            "capacity must be a non-negative integer (got -1)",
        ),
        m(
            "",
            "goroutine.channel('big')",
            "goroutine.channel",
            "(got \"big\")",
        ),
        m(
            "",
            "goroutine.channel(1.5)",
            "goroutine.channel",
            "(got 1.5)",
        ),
        m("", "goroutine.channel({})", "goroutine.channel", "(got"),
        m(
            "",
            "goroutine.channel(1, 'sideways')",
            "goroutine.channel",
            "(got \"sideways\")",
        ),
        m(
            "",
            "goroutine.channel(1, 7)",
            "goroutine.channel",
            "(got 7)",
        ),
        ma(
            CHANS,
            "rx:send(1)",
            "channel:send",
            "receive-only",
            "assert(rx:len() == 0)",
        ),
        ma(
            CHANS,
            "rx:try_send(1)",
            "channel:try_send",
            "receive-only",
            "assert(rx:len() == 0)",
        ),
        m(CHANS, "tx:receive()", "channel:receive", "send-only"),
        m(
            CHANS,
            "tx:try_receive()",
            "channel:try_receive",
            "send-only",
        ),
        m(
            CHANS,
            "tx:range(function() end)",
            "channel:range",
            "send-only",
        ),
        m(CHANS, "ch:range(42)", "channel:range", "(got 42)"),
        m(CHANS, "ch.send(42, 1)", "channel:send", "(got"),
        m(CHANS, "ch.receive('x')", "channel:receive", "(got"),
        m(CHANS, "ch.try_send(42, 1)", "channel:try_send", "(got"),
        m(CHANS, "ch.try_receive(42)", "channel:try_receive", "(got"),
        m(CHANS, "ch.close(42)", "channel:close", "(got"),
        m(CHANS, "ch.len(42)", "channel:len", "(got"),
        m(CHANS, "ch.cap(42)", "channel:cap", "(got"),
        m(CHANS, "ch.is_closed(42)", "channel:is_closed", "(got"),
        m(
            CHANS,
            "ch.range(42, function() end)",
            "channel:range",
            "(got",
        ),
        m(
            "",
            "goroutine.channel_send(42, 1)",
            "goroutine.channel_send",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.channel_receive(42)",
            "goroutine.channel_receive",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.channel_close(42)",
            "goroutine.channel_close",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.channel_len(42)",
            "goroutine.channel_len",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.channel_cap(42)",
            "goroutine.channel_cap",
            "(got 42)",
        ),
        m(
            CHANS,
            "goroutine.channel_send(rx, 1)",
            "goroutine.channel_send",
            "receive-only",
        ),
        m(
            CHANS,
            "goroutine.channel_receive(tx)",
            "goroutine.channel_receive",
            "send-only",
        ),
    ]);
}

#[test]
fn misuse_of_select() {
    check_all(&[
        m(CHANS, "goroutine.select(42)", "goroutine.select", "(got"),
        m(CHANS, "goroutine.select()", "goroutine.select", "(got nil)"),
        m(
            CHANS,
            "goroutine.select({42})",
            "goroutine.select",
            "case 1",
        ),
        m(
            CHANS,
            "goroutine.select({{channel = ch}})",
            "goroutine.select",
            "case 1",
        ),
        m(
            CHANS,
            "goroutine.select({{channel = ch, receive = true, send = 1}})",
            "goroutine.select",
            "case 1",
        ),
        m(
            CHANS,
            "goroutine.select({{receive = true}})",
            "goroutine.select",
            "case 1",
        ),
        m(
            CHANS,
            "goroutine.select({{channel = ch, receive = true}, {channel = 42, receive = true}})",
            "goroutine.select",
            "case 2",
        ),
        m(
            CHANS,
            "goroutine.select({{channel = ch, receive = true, handler = 42}})",
            "goroutine.select",
            "case 1",
        ),
        m(
            CHANS,
            "goroutine.select({{default = true}, {default = true}})",
            "goroutine.select",
            "default",
        ),
        m(
            CHANS,
            "goroutine.select({})",
            "goroutine.select",
            "no cases",
        ),
        ma(
            CHANS,
            "goroutine.select({{channel = rx, send = 1}})",
            "goroutine.select",
            "receive-only",
            "assert(rx:len() == 0)",
        ),
        m(
            CHANS,
            "goroutine.select({{channel = tx, receive = true}})",
            "goroutine.select",
            "send-only",
        ),
        m(
            CHANS,
            "goroutine.select_timeout('x', {{channel = ch, receive = true}})",
            "goroutine.select_timeout",
            "(got \"x\")",
        ),
        m(
            CHANS,
            "goroutine.select_timeout(10, 42)",
            "goroutine.select_timeout",
            "(got 42)",
        ),
        m(
            CHANS,
            "goroutine.select_timeout(10, {{default = true}})",
            "goroutine.select_timeout",
            "default",
        ),
        m(
            CHANS,
            "goroutine.select_timeout(10, {{channel = 42, receive = true}})",
            "goroutine.select_timeout",
            "case 1",
        ),
    ]);
}

#[test]
fn misuse_of_locks_and_semaphores() {
    let mutex = "local mu = goroutine.mutex()";
    let rw = "local rw = goroutine.rwmutex()";
    let sem = "local s = goroutine.semaphore(2)";
    check_all(&[
        ma(
            mutex,
            "mu:unlock()",
            "mutex:unlock",
            "unlock",
            "assert(mu:try_lock()) mu:unlock()",
        ),
        ma(
            "local mu = goroutine.mutex() mu:lock() mu:unlock()",
            "mu:unlock()",
            "mutex:unlock",
            "unlock",
            "mu:lock() mu:unlock()",
        ),
        m(mutex, "mu.lock(42)", "mutex:lock", "(got"),
        m(mutex, "mu.unlock(42)", "mutex:unlock", "(got"),
        m(mutex, "mu.try_lock(42)", "mutex:try_lock", "(got"),
        ma(
            rw,
            "rw:unlock()",
            "rwmutex:unlock",
            "unlock",
            "assert(rw:try_lock()) rw:unlock()",
        ),
        ma(
            rw,
            "rw:runlock()",
            "rwmutex:runlock",
            "runlock",
            "assert(rw:try_lock()) rw:unlock()",
        ),
        ma(
            "local rw = goroutine.rwmutex() rw:rlock()",
            "rw:unlock()",
            "rwmutex:unlock",
            "unlock",
            "rw:runlock() assert(rw:try_lock()) rw:unlock()",
        ),
        ma(
            "local rw = goroutine.rwmutex() rw:lock()",
            "rw:runlock()",
            "rwmutex:runlock",
            "runlock",
            "assert(not rw:try_rlock()) rw:unlock()",
        ),
        m(rw, "rw.lock(42)", "rwmutex:lock", "(got"),
        m(rw, "rw.rlock(42)", "rwmutex:rlock", "(got"),
        m(rw, "rw.unlock(42)", "rwmutex:unlock", "(got"),
        m(rw, "rw.runlock(42)", "rwmutex:runlock", "(got"),
        m(rw, "rw.try_lock(42)", "rwmutex:try_lock", "(got"),
        m(rw, "rw.try_rlock(42)", "rwmutex:try_rlock", "(got"),
        m(rw, "rw.rlocker(42)", "rwmutex:rlocker", "(got"),
        m(
            "",
            "goroutine.semaphore(0)",
            "goroutine.semaphore",
            "(got 0)",
        ),
        m(
            "",
            "goroutine.semaphore(-3)",
            "goroutine.semaphore",
            "(got -3)",
        ),
        m(
            "",
            "goroutine.semaphore('x')",
            "goroutine.semaphore",
            "(got \"x\")",
        ),
        m(
            "",
            "goroutine.semaphore()",
            "goroutine.semaphore",
            "(got nil)",
        ),
        m(
            "",
            "goroutine.semaphore(1.5)",
            "goroutine.semaphore",
            "(got 1.5)",
        ),
        ma(
            sem,
            "s:release()",
            "semaphore:release",
            "release",
            "assert(s:available() == 2 and s:capacity() == 2)",
        ),
        ma(
            "local s = goroutine.semaphore(2) s:acquire() s:release()",
            "s:release()",
            "semaphore:release",
            "release",
            "assert(s:available() == 2) s:acquire() s:acquire() assert(not s:try_acquire())",
        ),
        m(sem, "s.acquire(42)", "semaphore:acquire", "(got"),
        m(sem, "s.release(42)", "semaphore:release", "(got"),
        m(sem, "s.try_acquire(42)", "semaphore:try_acquire", "(got"),
        m(sem, "s.available(42)", "semaphore:available", "(got"),
        m(sem, "s.capacity(42)", "semaphore:capacity", "(got"),
    ]);
}

#[test]
fn misuse_of_atomics_once_and_cond() {
    let a = "local a = goroutine.atomic_int(5)";
    let o = "local o = goroutine.once()";
    let c = "local c = goroutine.cond()";
    check_all(&[
        m(
            "",
            "goroutine.atomic_int('x')",
            "goroutine.atomic_int",
            "(got \"x\")",
        ),
        m(
            "",
            "goroutine.atomic_int(1.5)",
            "goroutine.atomic_int",
            "(got 1.5)",
        ),
        ma(
            a,
            "a:add('x')",
            "atomic_int:add",
            "(got \"x\")",
            "assert(a:load() == 5)",
        ),
        ma(
            a,
            "a:store({})",
            "atomic_int:store",
            "(got",
            "assert(a:load() == 5)",
        ),
        ma(
            a,
            "a:swap(nil)",
            "atomic_int:swap",
            "(got nil)",
            "assert(a:load() == 5)",
        ),
        ma(
            a,
            "a:compare_and_swap(5, 'x')",
            "atomic_int:compare_and_swap",
            "(got \"x\")",
            "assert(a:load() == 5)",
        ),
        m(
            a,
            "a:compare_and_swap(nil, 1)",
            "atomic_int:compare_and_swap",
            "(got nil)",
        ),
        m(a, "a.load(42)", "atomic_int:load", "(got"),
        m(a, "a.add(42, 1)", "atomic_int:add", "(got"),
        ma(
            o,
            "o:call(42)",
            "once:call",
            "(got 42)",
            "local n = 0 o:call(function() n = n + 1 end) assert(n == 1)",
        ),
        m(o, "o.call(42, function() end)", "once:call", "(got"),
        m("", "goroutine.cond(42)", "goroutine.cond", "(got 42)"),
        m("", "goroutine.cond({})", "goroutine.cond", "(got"),
        m(c, "c.wait(42)", "cond:wait", "(got"),
        m(c, "c.signal(42)", "cond:signal", "(got"),
        m(c, "c.broadcast(42)", "cond:broadcast", "(got"),
        m(c, "c.get_mutex(42)", "cond:get_mutex", "(got"),
        // Waiting without holding the cond's lock unlocks an unlocked mutex.
        m(c, "c:wait()", "cond:wait", "unlock"),
    ]);
}

#[test]
fn misuse_of_contexts() {
    let ctx = "local ctx, cancel = goroutine.context()";
    check_all(&[
        m(
            ctx,
            "ctx:with_timeout('x')",
            "context:with_timeout",
            "(got \"x\")",
        ),
        m(
            ctx,
            "ctx:with_timeout()",
            "context:with_timeout",
            "(got nil)",
        ),
        m(
            ctx,
            "ctx:with_deadline({})",
            "context:with_deadline",
            "(got",
        ),
        m(ctx, "ctx.with_cancel(42)", "context:with_cancel", "(got"),
        m(
            ctx,
            "ctx.with_timeout(42, 10)",
            "context:with_timeout",
            "(got",
        ),
        m(ctx, "ctx.cancel(42)", "context:cancel", "(got"),
        m(ctx, "ctx.is_cancelled(42)", "context:is_cancelled", "(got"),
        m(ctx, "ctx.err(42)", "context:err", "(got"),
        m(ctx, "ctx.deadline(42)", "context:deadline", "(got"),
        m(ctx, "ctx.done(42)", "context:done", "(got"),
    ]);
}

#[test]
fn misuse_of_patterns_and_log() {
    let ch = "local ch = goroutine.channel(1)";
    check_all(&[
        m(
            "",
            "goroutine.pipeline(42, {})",
            "goroutine.pipeline",
            "(got 42)",
        ),
        m(
            ch,
            "goroutine.pipeline(ch, 42)",
            "goroutine.pipeline",
            "(got 42)",
        ),
        m(
            ch,
            "goroutine.pipeline(ch, {{}})",
            "goroutine.pipeline",
            "stage 1",
        ),
        m(
            ch,
            "goroutine.pipeline(ch, {{fn = function(v) return v end, workers = 0}})",
            "goroutine.pipeline",
            "(got 0)",
        ),
        m(
            "",
            "goroutine.fan_out(42, 2)",
            "goroutine.fan_out",
            "(got 42)",
        ),
        m(
            ch,
            "goroutine.fan_out(ch, 0)",
            "goroutine.fan_out",
            "(got 0)",
        ),
        m(
            ch,
            "goroutine.fan_out(ch, 'two')",
            "goroutine.fan_out",
            "(got \"two\")",
        ),
        m("", "goroutine.fan_in(42)", "goroutine.fan_in", "(got 42)"),
        m("", "goroutine.fan_in({})", "goroutine.fan_in", "channel"),
        m("", "log.info({})", "log.info", "(got table)"),
        m("", "log.warn(nil)", "log.warn", "(got nil)"),
        m("", "log.error(true)", "log.error", "(got boolean)"),
        m(
            "",
            "log.debug(function() end)",
            "log.debug",
            "(got function)",
        ),
        m("", "log.print({})", "log.print", "(got table)"),
    ]);
}

#[test]
fn misuse_of_timers_and_sim() {
    let t = "local t = goroutine.timer(10)";
    let tk = "local tk = goroutine.ticker(10)";
    check_all(&[
        m("", "goroutine.after('x')", "goroutine.after", "(got \"x\")"),
        m("", "goroutine.timer('x')", "goroutine.timer", "(got \"x\")"),
        m("", "goroutine.timer()", "goroutine.timer", "(got nil)"),
        m("", "goroutine.ticker(0)", "goroutine.ticker", "(got 0)"),
        m("", "goroutine.ticker(-5)", "goroutine.ticker", "(got -5)"),
        m(
            "",
            "goroutine.ticker('x')",
            "goroutine.ticker",
            "(got \"x\")",
        ),
        m(
            "",
            "goroutine.after_func(10, 42)",
            "goroutine.after_func",
            "(got 42)",
        ),
        m(
            "",
            "goroutine.after_func('x', function() end)",
            "goroutine.after_func",
            "(got \"x\")",
        ),
        ma(
            t,
            "t:reset('x')",
            "timer:reset",
            "(got \"x\")",
            "assert(t:stop() == true)",
        ),
        m(t, "t.stop(42)", "timer:stop", "(got"),
        m(t, "t.reset(42, 1)", "timer:reset", "(got"),
        m(t, "t.channel(42)", "timer:channel", "(got"),
        m(
            "local t = goroutine.after_func(10, function() end)",
            "t:channel()",
            "timer:channel",
            "after_func",
        ),
        ma(tk, "tk:reset(0)", "ticker:reset", "(got 0)", "tk:stop()"),
        ma(
            tk,
            "tk:reset('x')",
            "ticker:reset",
            "(got \"x\")",
            "tk:stop()",
        ),
        m("", "sim.buggify(2)", "sim.buggify", "(got 2)"),
        m("", "sim.buggify(-0.5)", "sim.buggify", "(got -0.5)"),
        m("", "sim.buggify('x')", "sim.buggify", "(got \"x\")"),
        m(
            "",
            "sim.assert_sometimes(true)",
            "sim.assert_sometimes",
            "(got nil)",
        ),
    ]);
}

#[test]
fn a_failed_send_on_a_receive_only_channel_leaves_the_channel_usable() {
    let src = r#"
local ch = goroutine.channel(2)
local rx = goroutine.channel(2, "receive")
assert(not pcall(rx.send, rx, "x"))
assert(not pcall(rx.try_send, rx, "x"))
assert(rx:len() == 0 and rx:cap() == 2 and not rx:is_closed())
assert(rx:try_receive() == nil)
assert(rx:close() == true)
local v, ok = rx:receive()
assert(v == nil and ok == false)
ch:send(1)
local v, ok = ch:receive()
assert(v == 1 and ok == true)
log.info("ok")
"#;
    let r = run(src);
    expect_pass(&r, src);
    assert_eq!(logs(&r), ["ok"]);
}

#[test]
fn a_misused_wait_group_keeps_its_counter() {
    let src = r#"
local wg = goroutine.wait_group()
wg:add(2)
local ok, e = pcall(wg.add, wg, -5)
assert(not ok)
for i = 1, 2 do goroutine.spawn(function() goroutine.sleep(i) wg:done() end) end
wg:wait()
log.info(goroutine.now())
local ok2 = pcall(wg.done, wg)
assert(not ok2, "done below zero must be misuse")
wg:add(1)
goroutine.spawn(function() goroutine.sleep(5) wg:done() end)
wg:wait()
log.info(goroutine.now())
"#;
    let r = run(src);
    expect_pass(&r, src);
    assert_eq!(logs(&r), ["2", "7"]);
}

// ------------------------------------------------------------------------------------------------
// Runaway scripts and limits
// ------------------------------------------------------------------------------------------------

fn small_instructions() -> RunOptions {
    opts_with_lua(LuaLimits {
        max_instructions: 1_000_000,
        ..Default::default()
    })
}

/// A deadlock report reads every stuck goroutine's line with a little Lua of gosim's own: with
/// a small instruction budget and hundreds of goroutines, that reading once hit the budget inside
/// the report builder and gosim panicked (`RefCell already mutably borrowed`). The report's own
/// reading is not charged to any goroutine.
#[test]
fn a_long_deadlock_report_is_not_charged_to_the_instruction_budget() {
    let src = "local ch = goroutine.channel()\nfor i = 1, 300 do goroutine.spawn(function() ch:receive() end) end\nch:receive()\n";
    let r = run_with(
        src,
        &opts_with_lua(LuaLimits {
            max_instructions: 3_000,
            ..Default::default()
        }),
    );
    let Outcome::Fail(f) = &r.outcome else {
        panic!("a deadlock: {}", r.outcome)
    };
    assert_eq!(f.kind, FailureKind::Deadlock, "{}", r.outcome);
    assert!(
        r.outcome
            .to_string()
            .contains("g301 blocked in receive at t.lua:2"),
        "{}",
        r.outcome
    );
}

#[test]
fn runaway_loops_hit_the_instruction_limit() {
    let srcs = [
        // In main.
        "log.info('start')\nwhile true do end\n",
        // In a goroutine.
        "goroutine.spawn(function()\n  local x = 0\n  while true do x = x + 1 end\nend)\ngoroutine.sleep(10)\n",
        // In a select handler, a generator and a once.
        "local ch = goroutine.channel(1) ch:send(1)\ngoroutine.select({{channel = ch, receive = true, handler = function() while true do end end}})\n",
        "local gen = coroutine.wrap(function() goroutine.sleep(1) while true do end end)\ngen()\n",
        "goroutine.once():call(function() goroutine.yield() while true do end end)\n",
    ];
    check_limits(LimitKind::Instructions, &small_instructions(), &srcs, |l| {
        (l.task.is_none()).then(|| format!("the limit names no goroutine: {l}"))
    });
}

#[test]
fn the_instruction_limit_names_the_goroutine_and_the_line() {
    let srcs = [
        "log.info('start')\nwhile true do end\n",
        "goroutine.spawn(function()\n  local x = 0\n  while true do x = x + 1 end\nend)\ngoroutine.sleep(10)\n",
    ];
    let want = [(1, "t.lua:2"), (2, "t.lua:3")];
    let mut report = String::new();
    for ((src, result), (task, line)) in srcs
        .iter()
        .zip(run_all_guarded(&srcs, &small_instructions()))
        .zip(want)
    {
        match result {
            Ok(Outcome::Limit(l)) if l.kind == LimitKind::Instructions => {
                if l.task.as_ref().map(|t| t.0.0) != Some(task) {
                    report.push_str(&format!(
                        "\n* names goroutine {:?}, not g{task}: {l}",
                        l.task
                    ));
                }
                if l.location.as_deref() != Some(line) {
                    report.push_str(&format!(
                        "\n* location {:?}, not the loop's line {line}: {l}\n  {src:?}",
                        l.location
                    ));
                }
            }
            other => report.push_str(&format!(
                "\n* expected the instruction limit, got {other:?}"
            )),
        }
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn a_runaway_loop_inside_pcall_still_hits_the_instruction_limit() {
    let srcs = [
        // Caught once, then main returns normally.
        "local ok = pcall(function() while true do end end)\nlog.info('after')\n",
        // Caught and retried forever: the limit must still end the run.
        "while true do pcall(function() while true do end end) end\n",
        // xpcall with a handler, retried forever.
        "while true do xpcall(function() while true do end end, function(e) return e end) end\n",
        // The same in a goroutine, with a scheduling point between the attempts.
        "goroutine.spawn(function()\n  while true do pcall(function() while true do end end) goroutine.yield() end\nend)\ngoroutine.sleep(1)\n",
        // A runaway select handler inside pcall.
        "local ch = goroutine.channel(1) ch:send(1)\nwhile true do pcall(goroutine.select, {{channel = ch, receive = true, handler = function() while true do end end}}) end\n",
    ];
    check_limits(
        LimitKind::Instructions,
        &small_instructions(),
        &srcs,
        |_| None,
    );
}

#[test]
fn a_long_loop_with_scheduling_points_is_not_cut() {
    // 200k iterations, each well under the limit between two scheduling points.
    let src = "local n = 0\nfor i = 1, 20000 do\n  for j = 1, 10 do n = n + j end\n  goroutine.yield()\nend\nlog.info(n)\n";
    let r = run_with(src, &small_instructions());
    expect_pass(&r, src);
    assert_eq!(logs(&r), ["1100000"]);
}

fn small_memory() -> RunOptions {
    opts_with_lua(LuaLimits {
        max_memory: 32 * 1024 * 1024,
        max_instructions: 50_000_000,
        ..Default::default()
    })
}

#[test]
fn memory_bombs_hit_the_memory_limit() {
    let srcs = [
        // In main.
        "local t = {} while true do t[#t+1] = string.rep(\"x\", 1000) .. #t end\n",
        // In a goroutine.
        "goroutine.spawn(function()\n  local t = {}\n  while true do t[#t+1] = string.rep(\"x\", 1000) .. #t end\nend)\ngoroutine.sleep(1)\n",
        // Spread over scheduling points.
        "local t = {}\nwhile true do\n  t[#t+1] = string.rep(\"x\", 4000) .. #t\n  goroutine.yield()\nend\n",
        // Through channels: a goroutine fills a big buffered channel.
        "local ch = goroutine.channel(1000000)\nwhile true do ch:send(string.rep(\"y\", 1000) .. ch:len()) end\n",
        // One huge string.
        "local s = string.rep(\"z\", 64 * 1024 * 1024)\nlog.info(#s)\n",
    ];
    check_limits(LimitKind::Memory, &small_memory(), &srcs, |_| None);
}

#[test]
fn a_memory_bomb_inside_pcall_still_hits_the_memory_limit() {
    let srcs = [
        "local ok, e = pcall(function()\n  local t = {}\n  while true do t[#t+1] = string.rep(\"x\", 1000) .. #t end\nend)\nlog.info(tostring(ok))\n",
        "local ok = pcall(string.rep, \"z\", 64 * 1024 * 1024)\nlog.info(tostring(ok))\n",
    ];
    check_limits(LimitKind::Memory, &small_memory(), &srcs, |_| None);
}

#[test]
fn spawn_bombs_hit_the_goroutine_limit() {
    let srcs = [
        "while true do goroutine.spawn(function() goroutine.sleep(1000) end) end\n",
        "local function bomb() goroutine.spawn(bomb) goroutine.spawn(bomb) goroutine.sleep(1) end\nbomb()\n",
        "goroutine.spawn_many(1000, function() goroutine.sleep(1000) end)\n",
        "for i = 1, 1000 do goroutine.async(function() goroutine.sleep(1000) end) end\n",
    ];
    check_limits(
        LimitKind::Goroutines,
        &opts_with_config(|c| c.max_goroutines = 100),
        &srcs,
        |_| None,
    );
}

#[test]
fn a_spawn_bomb_inside_pcall_still_hits_the_goroutine_limit() {
    let srcs = [
        "while true do pcall(goroutine.spawn, function() goroutine.sleep(1000) end) end\n",
        "for i = 1, 1000 do pcall(goroutine.spawn, function() goroutine.sleep(1000) end) end\n",
    ];
    check_limits(
        LimitKind::Goroutines,
        &opts_with_config(|c| c.max_goroutines = 100),
        &srcs,
        |_| None,
    );
}

#[test]
fn goroutines_below_the_limit_are_fine() {
    let opts = opts_with_config(|c| c.max_goroutines = 100);
    // 90 at once (plus main), then 90 more after those ended.
    let src = "for round = 1, 2 do\n  local wg = goroutine.wait_group()\n  for i = 1, 90 do wg:add(1) goroutine.spawn(function() goroutine.sleep(1) wg:done() end) end\n  wg:wait()\nend\nlog.info('ok')\n";
    let r = run_with(src, &opts);
    expect_pass(&r, src);
}

#[test]
fn step_bombs_hit_the_step_limit() {
    let srcs = [
        "while true do goroutine.yield() end\n",
        "goroutine.spawn{daemon = true, fn = function() while true do goroutine.yield() end end}\ngoroutine.sleep(10)\n",
        "goroutine.spawn{daemon = true, fn = function() while true do goroutine.yield() end end}\nlocal ch = goroutine.channel()\nch:receive()\n",
        "local ch = goroutine.channel()\ngoroutine.spawn(function() while true do ch:send(1) end end)\nwhile true do ch:receive() end\n",
        "local mu = goroutine.mutex()\nwhile true do pcall(mu.unlock, mu) mu:lock() mu:unlock() end\n",
    ];
    check_limits(
        LimitKind::Steps,
        &opts_with_config(|c| c.max_steps = 10_000),
        &srcs,
        |_| None,
    );
}

#[test]
fn endless_sleeps_hit_the_time_horizon() {
    let horizon = Duration::from_secs(60);
    let srcs = [
        "while true do goroutine.sleep(1000) end\n",
        "local tk = goroutine.ticker(500)\nwhile true do tk:channel():receive() end\n",
        "goroutine.spawn(function() while true do goroutine.sleep(1000) end end)\nlocal ch = goroutine.channel()\nch:receive()\n",
        "local ctx = goroutine.context()\nwhile true do goroutine.select({{channel = goroutine.after(250), receive = true}, {channel = ctx:done(), receive = true}}) end\n",
        "while true do goroutine.timeout(100, function() goroutine.sleep(1000) end) end\n",
    ];
    check_limits(
        LimitKind::Time,
        &opts_with_config(|c| c.max_time = horizon),
        &srcs,
        |l| (l.time > horizon).then(|| format!("the clock passed the horizon: {l}")),
    );
}

// ------------------------------------------------------------------------------------------------
// Error values that are tables
// ------------------------------------------------------------------------------------------------

#[test]
fn table_errors_survive_pcall_and_xpcall() {
    let src = r#"
local err = {code = 42, reason = "bad"}
local ok, e = pcall(error, err)
assert(ok == false and rawequal(e, err) and e.code == 42, "pcall")
local ok, e = pcall(function() error({code = 42}) end)
assert(ok == false and type(e) == "table" and e.code == 42, "pcall of a function")
local ok, e = xpcall(function() error({code = 42, reason = "x"}) end, function(x) return x end)
assert(ok == false and e.code == 42 and e.reason == "x", "xpcall")
local ok, e = xpcall(function() error({code = 42}) end, function(x) x.seen = true return x end)
assert(e.code == 42 and e.seen == true, "xpcall handler")
-- After a blocking call in the protected function.
local ok, e = pcall(function() goroutine.sleep(5) error({code = 42}) end)
assert(ok == false and e.code == 42, "pcall across a sleep")
-- In a goroutine, sent back over a channel.
local ch = goroutine.channel()
goroutine.spawn(function()
  local ok, e = pcall(function() goroutine.yield() error({code = 7}) end)
  ch:send(e)
end)
local e = ch:receive()
assert(type(e) == "table" and e.code == 7, "in a goroutine")
-- Through a select handler, a once, a channel range and a generator.
local ready = goroutine.channel(1) ready:send(1)
local ok, e = pcall(goroutine.select, {{channel = ready, receive = true, handler = function() error({code = 1}) end}})
assert(ok == false and type(e) == "table" and e.code == 1, "select handler")
local ok, e = pcall(function() goroutine.once():call(function() error({code = 2}) end) end)
assert(ok == false and type(e) == "table" and e.code == 2, "once:call")
local r = goroutine.channel(1) r:send(1) r:close()
local ok, e = pcall(function() r:range(function() error({code = 3}) end) end)
assert(ok == false and type(e) == "table" and e.code == 3, "range")
local gen = coroutine.wrap(function() goroutine.sleep(1) error({code = 4}) end)
local ok, e = pcall(gen)
assert(ok == false and type(e) == "table" and e.code == 4, "coroutine.wrap")
-- An error object with __tostring keeps its metatable.
local mt = {__tostring = function(x) return "E" .. x.code end}
local ok, e = pcall(error, setmetatable({code = 5}, mt))
assert(getmetatable(e) == mt and tostring(e) == "E5", "metatable")
log.info("ok")
"#;
    let r = run(src);
    expect_pass(&r, src);
    assert_eq!(logs(&r), ["ok"]);
}

fn assert_shows_fields(message: &str, src: &str) {
    assert!(
        message.contains("code=42"),
        "the failure does not show code=42: {message}\n--- source ---\n{src}"
    );
    assert!(
        message.contains("reason=\"bad\""),
        "the failure does not show reason: {message}"
    );
    assert!(
        !message.contains("0x"),
        "the failure shows an address: {message}"
    );
    assert!(
        !message.contains("table: "),
        "the failure shows a table address: {message}"
    );
}

#[test]
fn an_uncaught_table_error_shows_its_fields() {
    let src = "log.info('x')\nerror({code = 42, reason = \"bad\"})\n";
    let r = run(src);
    let (message, _) = expect_error(&r, src);
    assert_shows_fields(&message, src);
    let trace = r.trace_text();
    assert!(
        !trace.contains("0x"),
        "the trace shows an address:\n{trace}"
    );

    let src = "goroutine.spawn(function()\n  goroutine.yield()\n  error({code = 42, reason = \"bad\", nested = {1}})\nend)\ngoroutine.sleep(1)\n";
    let r = run(src);
    let (message, _) = expect_error(&r, src);
    assert_shows_fields(&message, src);
    match &r.outcome {
        Outcome::Fail(f) => assert_eq!(f.task.as_ref().map(|t| t.0.0), Some(2), "{f}"),
        _ => unreachable!(),
    }

    // With a __tostring, the error shows what it says.
    let src = "error(setmetatable({code = 42}, {__tostring = function(e) return 'custom error ' .. e.code end}))\n";
    let r = run(src);
    let (message, _) = expect_error(&r, src);
    assert!(message.contains("custom error 42"), "{message}");

    // Other non-string error values.
    for (value, shown) in [("nil", "nil"), ("42", "42"), ("true", "true")] {
        let src = format!("error({value})\n");
        let r = run(&src);
        let (message, _) = expect_error(&r, &src);
        assert!(
            first_line(&message).contains(shown),
            "error({value}) reported as {message:?}"
        );
        assert!(!message.contains("0x"), "{message}");
    }
}

// ------------------------------------------------------------------------------------------------
// Coroutines
// ------------------------------------------------------------------------------------------------

#[test]
fn coroutine_yield_in_a_goroutine_fails_clearly() {
    for (src, task) in [
        ("coroutine.yield()\n", 1),
        ("coroutine.yield(1, 2)\n", 1),
        (
            "goroutine.spawn(function()\n  coroutine.yield()\nend)\ngoroutine.sleep(1)\n",
            2,
        ),
        (
            "goroutine.spawn(function()\n  pcall(coroutine.yield)\nend)\ngoroutine.sleep(1)\n",
            2,
        ),
    ] {
        let r = run_guarded_report(src);
        match &r {
            Outcome::Fail(f) if f.kind == FailureKind::Error => {
                assert!(
                    f.message.contains("coroutine.yield"),
                    "unclear message: {}",
                    f.message
                );
                assert!(
                    f.message.contains("goroutine.yield"),
                    "the message does not point to goroutine.yield: {}",
                    f.message
                );
                assert_eq!(f.task.as_ref().map(|t| t.0.0), Some(task), "{f}");
            }
            other => panic!("expected an error failure, got {other}\n--- source ---\n{src}"),
        }
    }
}

fn run_guarded_report(src: &str) -> Outcome {
    run_guarded(src, RunOptions::with_seed(1))
}

#[test]
fn user_coroutines_can_use_channels_and_sleep() {
    let src = r#"
local ch = goroutine.channel()
goroutine.spawn(function() for i = 1, 3 do ch:send(i) end ch:close() end)
-- A generator that blocks on a channel inside coroutine.wrap.
local gen = coroutine.wrap(function()
  while true do
    local v, ok = ch:receive()
    if not ok then return end
    coroutine.yield(v * 10)
  end
end)
local a, b, c = gen(), gen(), gen()
assert(a == 10 and b == 20 and c == 30, "generator values")
assert(gen() == nil, "generator end")
-- coroutine.create/resume with sleeps inside, values passed both ways.
local co = coroutine.create(function(x)
  goroutine.sleep(5)
  local y = coroutine.yield(x + 1)
  goroutine.sleep(5)
  return y * 2
end)
local ok, v = coroutine.resume(co, 1)
assert(ok and v == 2, "first resume " .. tostring(v))
assert(coroutine.status(co) == "suspended")
local ok, v = coroutine.resume(co, 21)
assert(ok and v == 42, "second resume " .. tostring(v))
assert(coroutine.status(co) == "dead")
assert(goroutine.now() == 10, "virtual time " .. goroutine.now())
-- Generators in two goroutines at once, each over its own channel.
local results = goroutine.channel(2)
for g = 1, 2 do
  goroutine.spawn(function()
    local src = goroutine.channel(1)
    goroutine.spawn(function() for i = 1, 4 do src:send(g * 100 + i) goroutine.yield() end src:close() end)
    local sum = 0
    for v in coroutine.wrap(function() src:range(function(v) coroutine.yield(v) end) end) do sum = sum + v end
    results:send(sum)
  end)
end
local s1, s2 = results:receive(), results:receive()
assert(s1 + s2 == 410 + 810, "sums " .. s1 .. " " .. s2)
-- An error inside a generator that blocked propagates to the caller.
local bad = coroutine.wrap(function() goroutine.sleep(1) error("gen failed") end)
local ok, e = pcall(bad)
assert(not ok and e:find("gen failed"), tostring(e))
log.info("ok")
"#;
    let r = run(src);
    expect_pass(&r, src);
    assert_eq!(logs(&r), ["ok"]);
}

// ------------------------------------------------------------------------------------------------
// The standard library in a simulation
// ------------------------------------------------------------------------------------------------

#[test]
fn unsafe_standard_functions_are_absent() {
    let src = r#"
local absent = {
  io = io, ["os.execute"] = os.execute, ["os.exit"] = os.exit, ["package.loadlib"] = package.loadlib,
  dofile = dofile, loadfile = loadfile, ["os.remove"] = os.remove, ["os.rename"] = os.rename,
  ["os.getenv"] = os.getenv, ["os.tmpname"] = os.tmpname,
}
local names = {"io", "os.execute", "os.exit", "package.loadlib", "dofile", "loadfile", "os.remove", "os.rename", "os.getenv", "os.tmpname"}
for _, name in ipairs(names) do
  log.info(name .. "=" .. type(absent[name]))
end
log.info("require io: " .. tostring((pcall(require, "io"))))
"#;
    let r = run(src);
    expect_pass(&r, src);
    let l = logs(&r);
    for name in [
        "io",
        "os.execute",
        "os.exit",
        "package.loadlib",
        "dofile",
        "loadfile",
    ] {
        assert!(
            l.contains(&format!("{name}=nil")),
            "{name} is available: {l:?}"
        );
    }
    for name in ["os.remove", "os.rename", "os.getenv", "os.tmpname"] {
        assert!(
            l.contains(&format!("{name}=nil")),
            "{name} is available: {l:?}"
        );
    }
    assert!(l.contains(&"require io: false".to_string()), "{l:?}");
}

#[test]
fn time_and_random_come_from_the_seed_and_the_virtual_clock() {
    let src = r#"
local t0, c0 = os.time(), os.clock()
log.info("clock0 " .. c0)
goroutine.sleep(2500)
log.info("dt " .. (os.time() - t0) .. " clock " .. os.clock())
local xs = {}
for i = 1, 8 do xs[#xs + 1] = tostring(math.random(1000000)) end
xs[#xs + 1] = tostring(math.random())
xs[#xs + 1] = tostring(math.random(5, 9))
xs[#xs + 1] = tostring(sim.random(100))
log.info("random " .. table.concat(xs, ","))
log.info("time " .. os.time() .. " date " .. os.date("%Y-%m-%d %H:%M:%S"))
"#;
    let logs_for = |seed: u64| logs(&run_with(src, &RunOptions::with_seed(seed)));
    let a = logs_for(7);
    let b = logs_for(7);
    assert_eq!(a, b, "the same seed gave different values");
    assert_eq!(a[0], "clock0 0.0");
    assert_eq!(a[1], "dt 2 clock 2.5");
    let c = logs_for(8);
    assert_ne!(a[2], c[2], "seeds 7 and 8 drew the same random numbers");
    // Time does not depend on the seed, nor on the wall clock.
    assert_eq!(a[3], c[3]);
    let d = logs_for(9);
    assert_ne!(a[2], d[2]);
    assert_ne!(c[2], d[2]);
}

#[test]
fn a_caught_assert_always_still_fails_the_run() {
    let src = "local ok = pcall(sim.assert_always, false, \"invariant\")\nassert(not ok)\nlog.info(\"went on\")\n";
    let r = run(src);
    match &r.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Assertion, "{}", r.outcome);
            assert!(
                f.message.contains("t.lua:1: assertion failed: invariant"),
                "{}",
                f.message
            );
        }
        other => panic!("expected an assertion failure, got {other}"),
    }
}

/// A failure is an assertion because the prelude's `assert` raised it, not because its text
/// says "assertion failed": the user's own words never change the kind.
#[test]
fn failure_kinds_come_from_what_raised_the_error_not_from_its_text() {
    let kind_of = |src: &str| match run(src).outcome {
        Outcome::Fail(f) => (f.kind, f.location),
        other => panic!("expected a failure, got {other}\n--- source ---\n{src}"),
    };
    let error = Some(FailureKind::Error);
    let assertion = Some(FailureKind::Assertion);
    let cases: [(&str, Option<FailureKind>, &str); 8] = [
        ("error(\"assertion failed: x\")", error, "t.lua:1"),
        ("error(\"assertion failed: x\", 0)", error, ""),
        ("local x = 1\nassert(false, \"x\")", assertion, "t.lua:2"),
        ("assert(false)", assertion, "t.lua:1"),
        ("assert(nil, 42)", assertion, "t.lua:1"),
        // In a goroutine: its own failure, at its own line.
        (
            "goroutine.spawn(function()\n  assert(1 == 2, \"math\")\nend)\ngoroutine.sleep(1)",
            assertion,
            "t.lua:2",
        ),
        (
            "goroutine.spawn(function()\n  error(\"assertion failed in worker\")\nend)\ngoroutine.sleep(1)",
            error,
            "t.lua:2",
        ),
        // A caught assert does not make a later error of the same goroutine an assertion.
        (
            "local ok = pcall(assert, false, \"first\")\nassert(not ok)\nerror(\"assertion failed: second\")",
            error,
            "t.lua:3",
        ),
    ];
    for (src, want, at) in cases {
        let (kind, location) = kind_of(src);
        assert_eq!(Some(kind), want, "{src}");
        assert_eq!(location.as_deref().unwrap_or(""), at, "{src}");
    }
    // A caught assert, re-raised unchanged, is still that assertion.
    let src = "local ok, e = pcall(assert, false, \"kept\")\nerror(e, 0)";
    assert_eq!(kind_of(src).0, FailureKind::Assertion);
    // Another goroutine's assertion is not this goroutine's: g2 raises one and catches it, then
    // main fails with the same words.
    let src = "goroutine.spawn(function() pcall(assert, false, \"x\") end)\ngoroutine.sleep(1)\n\
               error(\"t.lua:1: assertion failed: x\", 0)";
    assert_eq!(kind_of(src).0, FailureKind::Error);
}

#[test]
fn the_channels_of_timers_and_contexts_cannot_be_closed_by_scripts() {
    for (setup, what) in [
        ("local ch = goroutine.after(5)", "after"),
        ("local ch = goroutine.timer(5):channel()", "timer"),
        (
            "local ctx = goroutine.context()\nlocal ch = ctx:done()",
            "context",
        ),
    ] {
        let src =
            format!("{setup}\nlocal ok, e = pcall(ch.close, ch)\nassert(not ok)\nlog.info(e)\n");
        let r = run(&src);
        expect_pass(&r, &src);
        let l = logs(&r);
        assert!(
            l[0].contains("channel:close: this channel belongs to a timer or a context"),
            "{what}: {l:?}"
        );
    }
}

#[test]
fn a_failed_cond_wait_does_not_swallow_the_next_signal() {
    let src = r#"
local c = goroutine.cond()
local m = c:get_mutex()
local ok, e = pcall(c.wait, c)            -- misuse: the locker is not locked
assert(not ok and e:find("cond:wait:"), e)
local woke = false
goroutine.spawn(function() m:lock() c:wait() woke = true m:unlock() end)
goroutine.sleep(1)
c:signal()
goroutine.sleep(1)
assert(woke, "the waiter got the signal")
"#;
    let r = run(src);
    expect_pass(&r, src);
}

#[test]
fn math_random_misuse_is_a_plain_message_at_the_users_line() {
    let src = "local ok, e = pcall(math.random, 1.5)\nassert(type(e) == 'string', type(e))\nlog.info(e)\n";
    let r = run(src);
    expect_pass(&r, src);
    assert_eq!(
        logs(&r),
        ["t.lua:1: math.random: argument 1 must be an integer (got 1.5)"]
    );
}

#[test]
fn bad_arguments_are_shown_by_type_never_by_address() {
    let src = "local ok, e = pcall(goroutine.spawn_many, 1, {})\nlog.info(e)\n";
    let r = run(src);
    expect_pass(&r, src);
    let l = logs(&r);
    assert!(
        l[0].ends_with("goroutine.spawn_many: expects a function (got table)"),
        "{l:?}"
    );
    assert!(!l[0].contains("0x"), "{l:?}");
}

#[test]
fn print_goes_to_the_trace() {
    let src = "print('a', 1, nil, true)\n";
    let r = run(src);
    expect_pass(&r, src);
    assert!(
        r.events
            .iter()
            .any(|e| e.detail().as_deref() == Some("a\t1\tnil\ttrue")),
        "{}",
        r.trace_text()
    );
}
