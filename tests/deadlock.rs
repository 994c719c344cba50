//! Deadlock diagnosis through the wait-for graph: cycles are reported as soon as they close,
//! even while other goroutines run, in order and with every resource named; waits that something
//! can still end (try_lock, select with default, timeouts, pending timers) are never reported.

use gosim::runtime::{FailureKind, Outcome};

mod common;
use common::{expect_pass_on_seeds as expect_pass, run};

/// Runs under several seeds and returns the failure, which must be a cycle every time.
fn expect_cycle(src: &str) -> gosim::runtime::Failure {
    let mut last = None;
    for seed in 1..=20 {
        let r = run(src, seed);
        match &r.outcome {
            Outcome::Fail(f) if f.kind == FailureKind::Cycle => last = Some(f.clone()),
            other => panic!(
                "seed {seed}: expected a wait-for cycle, got {other}\n{}",
                r.trace_text()
            ),
        }
    }
    last.expect("at least one seed ran")
}

const TICKER: &str = r#"
goroutine.spawn{name = "ticker", daemon = true, fn = function()
  local t = goroutine.ticker(5)
  while true do t:channel():receive() end
end}
"#;

#[test]
fn a_lock_order_inversion_is_a_cycle_even_while_a_ticker_runs() {
    let src = format!(
        "{TICKER}\nlocal a, b = goroutine.mutex(), goroutine.mutex()\n\
         goroutine.spawn{{name = 'w1', fn = function() a:lock() goroutine.sleep(1) b:lock() end}}\n\
         goroutine.spawn{{name = 'w2', fn = function() b:lock() goroutine.sleep(1) a:lock() end}}\n\
         goroutine.sleep(100000)\n"
    );
    let f = expect_cycle(&src);
    assert_eq!(
        f.time,
        std::time::Duration::from_millis(1),
        "found when the cycle closed, at 1 ms"
    );
    assert_eq!(f.cycle.len(), 2, "{f}");
    let text = f.to_string();
    for needle in [
        "w1",
        "w2",
        "mutex#",
        "held by",
        "(created at t.lua:",
        "t.lua:",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("ticker"),
        "the ticker is not part of the cycle:\n{text}"
    );
    // Each line names the goroutine, the mutex it waits on, and that mutex's holder, which is
    // the goroutine on the next line.
    assert!(f.cycle[0].contains("held by"), "{:?}", f.cycle);
    let first = f.cycle[0].split(' ').next().expect("a label");
    assert!(
        f.cycle[1].ends_with(first),
        "the cycle closes back on its first goroutine: {:?}",
        f.cycle
    );
}

#[test]
fn locking_a_mutex_twice_is_a_cycle_of_one() {
    let f = expect_cycle("local m = goroutine.mutex()\nm:lock()\nm:lock()\n");
    assert_eq!(f.cycle.len(), 1);
    assert!(
        f.cycle[0].starts_with("g1(main) waits mutex#1"),
        "{:?}",
        f.cycle
    );
    assert_eq!(f.location.as_deref(), Some("t.lua:3"));
}

#[test]
fn rwmutex_and_semaphore_cycles_are_found() {
    // A reader waits for a mutex whose holder waits to write-lock: the reader blocks the writer.
    expect_cycle(
        "local rw, m = goroutine.rwmutex(), goroutine.mutex()\n\
         goroutine.spawn(function() rw:rlock() goroutine.sleep(1) m:lock() end)\n\
         goroutine.spawn(function() m:lock() goroutine.sleep(1) rw:lock() end)\n\
         goroutine.sleep(10)\n",
    );
    expect_cycle(
        "local s1, s2 = goroutine.semaphore(1), goroutine.semaphore(1)\n\
         goroutine.spawn(function() s1:acquire() goroutine.sleep(1) s2:acquire() end)\n\
         goroutine.spawn(function() s2:acquire() goroutine.sleep(1) s1:acquire() end)\n\
         goroutine.sleep(10)\n",
    );
}

#[test]
fn a_once_that_calls_itself_is_a_cycle() {
    let f =
        expect_cycle("local o = goroutine.once()\no:call(function() o:call(function() end) end)\n");
    assert!(f.cycle[0].contains("once#1"), "{:?}", f.cycle);
}

#[test]
fn a_goroutine_waiting_behind_a_cycle_is_reported_with_it() {
    let src = "local a, b = goroutine.mutex(), goroutine.mutex()\n\
               goroutine.spawn{name = 'w1', fn = function() a:lock() goroutine.sleep(1) b:lock() end}\n\
               goroutine.spawn{name = 'w2', fn = function() b:lock() goroutine.sleep(1) a:lock() end}\n\
               goroutine.sleep(2)\n\
               a:lock()\n";
    // Depending on the seed the cycle closes first or main queues first; either way the cycle is
    // found when it closes, with every goroutine stuck on it.
    let f = expect_cycle(src);
    assert_eq!(f.cycle.len(), 2, "{f}");
}

#[test]
fn waits_that_can_still_end_are_never_reported() {
    // try_lock never blocks.
    expect_pass(
        "local m = goroutine.mutex()\nm:lock()\n\
         goroutine.spawn(function() for i = 1, 5 do assert(not m:try_lock()) goroutine.yield() end end)\n\
         goroutine.sleep(1)\nm:unlock()\n",
    );
    // select with default takes the default.
    expect_pass(
        "local ch = goroutine.channel()\nlocal hit = goroutine.select({{channel = ch, receive = true}, {default = true, handler = function() return 1 end}})\nassert(hit == 1)\n",
    );
    // select_timeout and timeout end by their timers.
    expect_pass(
        "local ch = goroutine.channel()\nlocal timed_out = goroutine.select_timeout(50, {{channel = ch, receive = true}})\nassert(timed_out == true and goroutine.now() == 50)\n",
    );
    expect_pass(
        "local ok, err = goroutine.timeout(20, function() goroutine.sleep(1000) end)\nassert(not ok and err == 'timeout exceeded')\n",
    );
    // A goroutine that a pending timer will wake, and a lock whose holder is only sleeping.
    expect_pass(
        "local m = goroutine.mutex()\n\
         goroutine.spawn(function() m:lock() goroutine.sleep(30) m:unlock() end)\n\
         goroutine.sleep(1)\nm:lock()\nassert(goroutine.now() == 30)\nm:unlock()\n\
         local v = goroutine.after(5):receive()\nassert(v == 35)\n",
    );
    // A mutex held by a goroutine blocked on a channel that main will feed: uncertain, not a cycle.
    expect_pass(
        "local m, ch = goroutine.mutex(), goroutine.channel()\n\
         goroutine.spawn(function() m:lock() ch:receive() m:unlock() end)\n\
         goroutine.spawn(function() goroutine.sleep(1) m:lock() m:unlock() end)\n\
         goroutine.sleep(5)\nch:send(1)\ngoroutine.sleep(5)\n",
    );
}

#[test]
fn a_lock_whose_holder_exited_is_a_partial_deadlock_reported_at_the_end() {
    let src = format!(
        "{TICKER}\nlocal m = goroutine.mutex()\n\
         goroutine.spawn{{name = 'forgetful', fn = function() m:lock() end}}\n\
         goroutine.spawn{{name = 'waiter', fn = function() goroutine.sleep(1) m:lock() end}}\n\
         goroutine.sleep(10)\n"
    );
    let r = run(&src, 3);
    let trace = r.trace_text();
    assert!(trace.contains("partial-deadlock"), "{trace}");
    match &r.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Leak, "{f}");
            assert!(
                f.notes
                    .iter()
                    .any(|n| n.contains("partial deadlock") && n.contains("has exited")),
                "{f}"
            );
            assert!(f.to_string().contains("waiter"), "{f}");
        }
        other => panic!("expected a leak with a partial-deadlock note, got {other}"),
    }
}

#[test]
fn the_report_is_also_json() {
    let f = expect_cycle("local m = goroutine.mutex()\nm:lock()\nm:lock()\n");
    let v = Outcome::Fail(f).to_json();
    assert_eq!(v["outcome"], "fail");
    assert_eq!(v["kind"], "deadlock (cycle)");
    assert_eq!(v["cycle"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["goroutines"][0]["location"], "t.lua:3");
    assert_eq!(v["goroutines"][0]["op"], "lock");
}
