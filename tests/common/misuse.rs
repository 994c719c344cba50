//! The misuse checker shared by the tests of every API: a misuse must be a clear error that names
//! the function, at the user's line, whether uncaught in main, uncaught in a goroutine or caught
//! by `pcall` (and a caught misuse loses nothing: the script goes on).

use gosim::runtime::{FailureKind, Outcome};
use gosim::scenario::RunOptions;

use super::{NAME, logs, try_run};

/// One misuse: `setup` (one line, defines what `call` needs), `call` (one Lua statement that is
/// misuse), the function name the message must start with, a fragment it must contain, and
/// optional Lua statements run after a caught misuse to show nothing was lost.
pub struct Misuse {
    pub setup: &'static str,
    pub call: &'static str,
    pub fname: &'static str,
    pub contains: &'static str,
    pub after: &'static str,
}

pub const fn m(
    setup: &'static str,
    call: &'static str,
    fname: &'static str,
    contains: &'static str,
) -> Misuse {
    Misuse {
        setup,
        call,
        fname,
        contains,
        after: "",
    }
}

pub const fn ma(
    setup: &'static str,
    call: &'static str,
    fname: &'static str,
    contains: &'static str,
    after: &'static str,
) -> Misuse {
    Misuse {
        setup,
        call,
        fname,
        contains,
        after,
    }
}

pub const NOP: &str = "local f = function() end";
pub const CHANS: &str = "local ch, rx, tx = goroutine.channel(1), goroutine.channel(1, 'receive'), goroutine.channel(1, 'send')";

/// Checks one misuse three ways: uncaught in main, uncaught in a goroutine, caught with pcall.
/// Returns a description of every way it went wrong.
pub fn check_misuse(c: &Misuse) -> Vec<String> {
    let mut problems = Vec::new();
    // `t.lua:3: goroutine.select:` or `t.lua:3: goroutine.select case 2:`.
    let prefix = |line: u32| format!("{NAME}:{line}: {}", c.fname);
    let named = |msg: &str, line: u32| {
        msg.strip_prefix(&prefix(line))
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(" case "))
    };

    // 1. Uncaught in main: the run fails with an error at the user's line.
    let src = format!(
        "-- misuse\n{}\n{}\nlog.info('unreachable')\n",
        c.setup, c.call
    );
    let r = match try_run(&src, &RunOptions::with_seed(1)) {
        Ok(r) => r,
        Err(e) => return vec![format!("uncaught in main: {e}")],
    };
    match &r.outcome {
        Outcome::Fail(f) if f.kind == FailureKind::Error => {
            if !named(&f.message, 3) {
                problems.push(format!(
                    "uncaught in main: message does not start with {:?}: {:?}",
                    prefix(3),
                    first_line(&f.message)
                ));
            }
            if !f.message.contains(c.contains) {
                problems.push(format!(
                    "uncaught in main: message lacks {:?}: {:?}",
                    c.contains,
                    first_line(&f.message)
                ));
            }
            if f.location.as_deref() != Some("t.lua:3") {
                problems.push(format!(
                    "uncaught in main: failure location is {:?}, not t.lua:3",
                    f.location
                ));
            }
            if f.task.as_ref().map(|t| t.0.0) != Some(1) {
                problems.push(format!(
                    "uncaught in main: failure names goroutine {:?}, not main",
                    f.task
                ));
            }
        }
        other => problems.push(format!(
            "uncaught in main: expected an error failure, got {}",
            first_line(&other.to_string())
        )),
    }
    if logs(&r).iter().any(|l| l == "unreachable") {
        problems.push("uncaught in main: the script went on after the error".to_string());
    }

    // 2. Uncaught in a goroutine: that goroutine fails the run, at the user's line.
    let src = format!(
        "-- misuse in a goroutine\n{}\ngoroutine.spawn(function()\n  {}\nend)\ngoroutine.sleep(1)\n",
        c.setup, c.call
    );
    let r = match try_run(&src, &RunOptions::with_seed(1)) {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("uncaught in a goroutine: {e}"));
            return problems;
        }
    };
    match &r.outcome {
        Outcome::Fail(f) if f.kind == FailureKind::Error => {
            if !named(&f.message, 4) {
                problems.push(format!(
                    "uncaught in a goroutine: message does not start with {:?}: {:?}",
                    prefix(4),
                    first_line(&f.message)
                ));
            }
            if f.task.as_ref().map(|t| t.0.0) != Some(2) {
                problems.push(format!(
                    "uncaught in a goroutine: failure names goroutine {:?}, not g2",
                    f.task
                ));
            }
        }
        other => problems.push(format!(
            "uncaught in a goroutine: expected an error failure, got {}",
            first_line(&other.to_string())
        )),
    }

    // 3. Caught with pcall: false and the message, and the script (and runtime) carry on.
    let src = format!(
        r#"-- caught misuse
{setup}
local ok, e = pcall(function() {call} end)
log.info(tostring(ok))
log.info(tostring(e))
{after}
local c = goroutine.channel()
goroutine.spawn(function() c:send("alive") end)
local v, got = c:receive()
assert(v == "alive" and got == true, "the runtime is broken after a caught misuse")
log.info("continued")
"#,
        setup = c.setup,
        call = c.call,
        after = c.after
    );
    let r = match try_run(&src, &RunOptions::with_seed(1)) {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("caught: {e}"));
            return problems;
        }
    };
    let l = logs(&r);
    if !r.outcome.is_pass() {
        problems.push(format!(
            "caught: the run did not go on to pass: {}",
            first_line(&r.outcome.to_string())
        ));
    }
    match l.as_slice() {
        [ok, e, cont] => {
            if ok != "false" {
                problems.push(format!("caught: pcall returned {ok}, not false"));
            }
            if !named(e, 3) {
                problems.push(format!(
                    "caught: message does not start with {:?}: {:?}",
                    prefix(3),
                    first_line(e)
                ));
            }
            if !e.contains(c.contains) {
                problems.push(format!(
                    "caught: message lacks {:?}: {:?}",
                    c.contains,
                    first_line(e)
                ));
            }
            if e.contains("stack traceback") {
                problems.push(format!(
                    "caught: the message carries a traceback: {:?}",
                    first_line(e)
                ));
            }
            if cont != "continued" {
                problems.push(format!("caught: unexpected log {cont:?}"));
            }
        }
        other => problems.push(format!("caught: unexpected log lines {other:?}")),
    }
    problems
}

pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

pub fn check_all(cases: &[Misuse]) {
    let mut report = String::new();
    for c in cases {
        let problems = check_misuse(c);
        if !problems.is_empty() {
            report.push_str(&format!("\n* `{}` (setup `{}`):\n", c.call, c.setup));
            for p in problems {
                report.push_str(&format!("    - {p}\n"));
            }
        }
    }
    assert!(
        report.is_empty(),
        "misuse not reported as lua-api.md §1 requires:{report}"
    );
}
