//! The deadlock detector's `info` shape (issue 9, `patterns.md` "Deadlock detector"):
//! `goroutines = {{id, name, waiting_on, since, line}...}`, with the older names `stuck`,
//! `waits_on` (the list form) and `location` kept as aliases; `blocked_channels` counts distinct
//! channels; a sleeping goroutine is never stuck. Also pins today's behaviour on a lock cycle in
//! a simulation (the run fails the moment the cycle closes, before any periodic check), which
//! the "on_deadlock before the run fails" part of the issue needs a core change to alter (see
//! the report of the `pat-msg` branch).

mod common;

use common::expect_pass_on_seeds;

#[test]
fn info_lists_goroutines_with_the_decided_fields_and_the_old_aliases() {
    expect_pass_on_seeds(
        r#"
local got
local d = goroutine.deadlock_detector{check_interval = 10, timeout = 30}
d:on_deadlock(function(info) got = got or info end)
d:start()
local a, b = goroutine.channel(), goroutine.channel()
local m = goroutine.mutex()
goroutine.spawn{name = "reader-a", fn = function() a:receive() end}
goroutine.spawn{name = "reader-b", fn = function() b:receive() end}
goroutine.spawn{name = "reader-a2", fn = function() a:receive() end}
goroutine.spawn{name = "sleeper", fn = function() goroutine.sleep(1000) end}
m:lock()
goroutine.spawn{name = "locker", fn = function() m:lock() m:unlock() end}
goroutine.sleep(45)
assert(got, "reported")
assert(got.stuck_count == 4, got.stuck_count)          -- the sleeper is never stuck
assert(got.blocked_channels == 2, got.blocked_channels) -- a, b (the mutex is no channel)
assert(got.goroutines == got.stuck)                     -- alias: the same table
local names = {}
for _, g in ipairs(got.goroutines) do
  names[#names + 1] = g.name
  assert(math.type(g.id) == "integer")
  assert(type(g.waiting_on) == "string" and #g.waiting_on > 0)
  assert(g.waiting_on == table.concat(g.waits_on, "; "))
  assert(g.since == 0 and got.time - g.since >= 30)
  assert(g.line and g.line:match("^t%.lua:%d+$"), tostring(g.line))
  assert(g.location == g.line)
end
assert(table.concat(names, ",") == "reader-a,reader-b,reader-a2,locker", table.concat(names, ","))
assert(got.goroutines[1].waiting_on:find("channel#1", 1, true), got.goroutines[1].waiting_on)
assert(got.goroutines[4].waiting_on:find("mutex", 1, true), got.goroutines[4].waiting_on)
assert(got.goroutines[1].line == "t.lua:8", got.goroutines[1].line)
assert(got.cycle == nil)
a:send(1) a:send(2) b:send(3)
m:unlock()
d:stop()
"#,
    );
}

/// In a simulation, a lock cycle still fails the run, but a started detector's `on_deadlock(info)`
/// (with `info.cycle`) is called first, in a goroutine of its own that may block; the run fails
/// once it is done, with the cycle as it was found.
#[test]
fn on_deadlock_is_called_with_the_cycle_before_the_run_fails() {
    let r = common::run(
        r#"
local d = goroutine.deadlock_detector{check_interval = 500, timeout = 1000}
d:on_deadlock(function(info)
  assert(info.cycle and #info.cycle == 2, "the cycle is in the info")
  assert(info.stuck_count == 2 and #info.goroutines == 2)
  log.info("on_deadlock called at " .. goroutine.now())
  goroutine.sleep(5)                     -- a handler may block
  log.info("handler done at " .. goroutine.now())
end)
d:start()
local m1, m2 = goroutine.mutex(), goroutine.mutex()
goroutine.spawn{name = "left", fn = function() m1:lock() goroutine.sleep(1) m2:lock() end}
goroutine.spawn{name = "right", fn = function() m2:lock() goroutine.sleep(1) m1:lock() end}
goroutine.sleep(100)
"#,
        1,
    );
    let text = r.outcome.to_string();
    assert!(
        text.contains("deadlock (cycle)") && text.contains("at 1ms"),
        "{text}"
    );
    assert_eq!(
        common::logs(&r),
        ["on_deadlock called at 1", "handler done at 6"],
        "the handler ran (long before the detector's next check) and finished before the failure"
    );
}

/// A global deadlock (every goroutine asleep) is reported the same way; a stopped detector is
/// not called; without a detector nothing changes.
#[test]
fn on_deadlock_before_a_global_deadlock_and_not_after_stop() {
    let src = |stop: &str| {
        format!(
            r#"
local d = goroutine.deadlock_detector{{check_interval = 500, timeout = 1000}}
d:on_deadlock(function(info)
  log.info("reported " .. info.stuck_count .. " channels=" .. info.blocked_channels)
end)
d:start()
{stop}
local ch = goroutine.channel()
goroutine.spawn{{name = "waiter", fn = function() ch:receive() end}}
ch:receive()
"#
        )
    };
    let r = common::run(&src(""), 1);
    assert!(r.outcome.to_string().contains("deadlock"), "{}", r.outcome);
    assert_eq!(common::logs(&r), ["reported 2 channels=1"]);
    let r = common::run(&src("d:stop()"), 1);
    assert!(r.outcome.to_string().contains("deadlock"), "{}", r.outcome);
    assert!(
        common::logs(&r).is_empty(),
        "a stopped detector is not called"
    );
}

/// The Rust view: `DeadlockInfo::goroutines` is the decided name of `stuck`.
#[test]
fn rust_info_has_goroutines() {
    use gosim::patterns::DeadlockDetector;
    use gosim::sim::Sim;
    use std::time::Duration;
    let sim = Sim::with_seed(1);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch: gosim::sync::Channel<u64> = s.channel(0);
        let rx = ch.clone();
        s.spawn("waiter", async move {
            let _ = rx.recv().await;
        });
        s.sleep(Duration::from_millis(20)).await;
        let d = DeadlockDetector::new(s.runtime(), Duration::from_millis(10));
        let info = d.check().expect("the waiter is stuck");
        assert_eq!(info.goroutines().len(), 1);
        assert_eq!(info.goroutines()[0].name.as_deref(), Some("waiter"));
        assert_eq!(info.goroutines(), info.stuck.as_slice());
        ch.send(1).await.unwrap();
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}
