//! The observability patterns (profiler, channel inspector, deadlock detector): their laws,
//! checked against the trace over random scenarios and seeds.

use gosim::runtime::{Event, Subject};
use gosim::scenario::RunReport;
use proptest::prelude::*;

mod common;
use common::{expect_pass_on_seeds, run};

fn logs(r: &RunReport) -> Vec<(usize, String)> {
    r.events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.verb == "log.info")
        .map(|(i, e)| (i, e.detail().unwrap_or_default()))
        .collect()
}

/// Sends and receives of channel `id` in the trace before event `upto`, counting only
/// transfers of a value (not "closed" outcomes).
fn trace_counts(events: &[Event], id: u64, upto: usize) -> (u64, u64) {
    let mut sent = 0;
    let mut received = 0;
    for e in &events[..upto] {
        let Subject::Resource(r) = e.subject() else {
            continue;
        };
        if r.id() != id || e.detail().as_deref() == Some("closed") {
            continue;
        }
        match e.verb {
            "send" => sent += 1,
            "receive" => received += 1,
            _ => {}
        }
    }
    (sent, received)
}

#[derive(Debug, Clone)]
enum Op {
    Send(u8),
    TrySend(u8),
    Receive,
    TryReceive,
    Yield,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..100).prop_map(Op::Send),
        (0u8..100).prop_map(Op::TrySend),
        Just(Op::Receive),
        Just(Op::TryReceive),
        Just(Op::Yield),
    ]
}

fn lua_op(op: &Op) -> String {
    match op {
        Op::Send(v) => format!("ch:send({v})"),
        Op::TrySend(v) => format!("ch:try_send({v})"),
        Op::Receive => "ch:receive()".to_string(),
        Op::TryReceive => "ch:try_receive()".to_string(),
        Op::Yield => "goroutine.yield()".to_string(),
    }
}

/// Goroutines doing random channel operations, each followed by a log of the inspector's
/// counters. Blocking ops that never complete are fine: the channel is closed at the end.
fn inspector_script(cap: usize, goroutines: &[Vec<Op>]) -> String {
    let mut s = format!(
        "local ch = goroutine.channel({cap})\nlocal insp = goroutine.channel_inspector(ch)\n\
         local function show() local st = insp:stats()\n\
           log.info(st.total_sent .. ' ' .. st.total_received .. ' ' .. st.len .. ' ' .. st.cap .. ' ' .. st.dropped) end\n\
         local wg = goroutine.wait_group()\n"
    );
    for ops in goroutines {
        s.push_str("wg:add(1)\ngoroutine.spawn(function()\n");
        for op in ops {
            s.push_str(&format!("  {}\n  show()\n", lua_op(op)));
        }
        s.push_str("  wg:done()\nend)\n");
    }
    // Unblock whoever is stuck: close, then let everyone finish.
    s.push_str("goroutine.sleep(1)\nch:close()\nwg:wait()\nshow()\n");
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The inspector's counters equal the trace's counts at every instant it is read, and
    /// `sent == received + len + dropped`, `len <= cap`.
    #[test]
    fn inspector_counters_equal_the_trace(
        cap in 0usize..4,
        goroutines in prop::collection::vec(prop::collection::vec(op(), 1..8), 1..4),
        seed in 0u64..1000,
    ) {
        let src = inspector_script(cap, &goroutines);
        let r = run(&src, seed);
        // Senders blocked when the channel closes fail their send, which is fine; errors are not.
        prop_assert!(!matches!(&r.outcome, gosim::runtime::Outcome::Fail(f) if f.kind != gosim::runtime::FailureKind::Leak),
            "{}\n{}", r.outcome, src);
        let channel_id = r.events.iter().find_map(|e| match (e.subject(), e.verb) {
            (Subject::Resource(res), "new") if res.kind() == "channel" => Some(res.id()),
            _ => None,
        }).expect("the channel was created");
        for (at, line) in logs(&r) {
            let nums: Vec<u64> = line.split(' ').map(|x| x.parse().expect("numbers")).collect();
            let (sent, received, len, cap_seen, dropped) = (nums[0], nums[1], nums[2], nums[3], nums[4]);
            prop_assert_eq!((sent, received), trace_counts(&r.events, channel_id, at), "at event {}", at);
            prop_assert_eq!(sent, received + len + dropped);
            prop_assert!(len <= cap_seen);
        }
    }

    /// `total_created == active + completed + failed` and `active <= max_active` whenever the
    /// profiler is read, over random spawn trees with failing asyncs.
    #[test]
    fn profiler_counts_add_up(
        fanout in prop::collection::vec(0usize..4, 1..6),
        failing in prop::collection::vec(any::<bool>(), 1..6),
        seed in 0u64..1000,
    ) {
        let mut src = String::from(
            "local p = goroutine.profiler()\np:start()\n\
             local function show() local s = p:stats()\n\
               assert(s.total_created == s.active + s.completed + s.failed, 'sum')\n\
               assert(s.active <= s.max_active, 'max')\n\
               log.info(s.total_created .. ' ' .. s.completed .. ' ' .. s.failed) end\n\
             local wg = goroutine.wait_group()\n",
        );
        for (i, n) in fanout.iter().enumerate() {
            src.push_str(&format!(
                "wg:add(1)\ngoroutine.spawn(function()\n  for j = 1, {n} do wg:add(1) goroutine.spawn(function() goroutine.sleep(j) show() wg:done() end) end\n  show()\n  wg:done()\nend)\n"
            ));
            if failing.get(i).copied().unwrap_or(false) {
                src.push_str("goroutine.await(goroutine.async(function() error('x') end))\nshow()\n");
            }
        }
        src.push_str("wg:wait()\ngoroutine.sleep(100)\nshow()\n");
        let r = run(&src, seed);
        prop_assert!(r.outcome.is_pass(), "{}\n{}", r.outcome, src);
        let last = logs(&r).last().expect("a final show").1.clone();
        let nums: Vec<u64> = last.split(' ').map(|x| x.parse().expect("numbers")).collect();
        let expected_created: u64 = fanout.iter().map(|n| 1 + *n as u64).sum::<u64>()
            + failing.iter().take(fanout.len()).filter(|f| **f).count() as u64;
        prop_assert_eq!(nums[0], expected_created);
        prop_assert_eq!(nums[2], failing.iter().take(fanout.len()).filter(|f| **f).count() as u64);
    }
}

#[test]
fn the_detector_reports_only_goroutines_blocked_past_its_timeout_and_each_situation_once() {
    let src = r#"
local reports = {}
local d = goroutine.deadlock_detector{check_interval = 50, timeout = 200}
d:on_deadlock(function(info)
  reports[#reports + 1] = info
  for _, g in ipairs(info.stuck) do
    assert(goroutine.now() - g.since >= 200, "blocked past the timeout")
  end
end)
d:start()
local a, b = goroutine.channel(), goroutine.channel()
goroutine.spawn{name = "short", fn = function() a:receive() end}   -- released at 150: never reported
goroutine.spawn{name = "long", fn = function() b:receive() end}    -- released at 700
goroutine.sleep(150)
a:send(1)
goroutine.sleep(550)
b:send(2)
goroutine.sleep(300)
assert(#reports == 1, "one situation, one report: " .. #reports)
assert(reports[1].stuck_count == 1 and reports[1].stuck[1].name == "long")
assert(reports[1].blocked_channels == 1)
assert(reports[1].time == 200)
d:stop()
"#;
    expect_pass_on_seeds(src);
}

#[test]
fn the_detectors_loop_never_hides_a_deadlock() {
    // All real goroutines stuck on a channel: the run still ends with a deadlock report, even
    // though the detector's loop keeps sleeping.
    let src = "local d = goroutine.deadlock_detector{check_interval = 10, timeout = 5}\nd:start()\n\
               local ch = goroutine.channel()\nch:receive()\n";
    let r = run(src, 1);
    match &r.outcome {
        gosim::runtime::Outcome::Fail(f) => {
            assert_eq!(f.kind, gosim::runtime::FailureKind::Deadlock, "{f}")
        }
        other => panic!("expected a deadlock, got {other}"),
    }
}

#[test]
fn observing_does_not_change_the_schedule() {
    let base = "local ch = goroutine.channel(2)\n\
                for i = 1, 4 do goroutine.spawn(function() ch:send(i) end) end\n\
                local got = {}\nfor i = 1, 4 do got[#got + 1] = ch:receive() MARK end\n\
                log.info(table.concat(got, ','))\n";
    let plain = base.replace("MARK", "");
    let observed = format!(
        "local p = goroutine.profiler()\np:start()\n{}",
        base.replace(
            "MARK",
            "local _ = goroutine.channel_inspector(ch):stats() local _ = p:stats()"
        )
    );
    for seed in 1..=30 {
        let a = run(&plain, seed);
        let b = run(&observed, seed);
        let order = |r: &RunReport| logs(r).last().expect("logged").1.clone();
        assert_eq!(
            order(&a),
            order(&b),
            "seed {seed}: observing changed the interleaving"
        );
    }
}

/// Observers are told of spawns and exits once the scheduler's state is released, so their
/// callbacks may read the runtime (calling `now()` from one used to panic on a borrowed core).
#[test]
fn an_observer_may_read_the_runtime_from_its_callbacks() {
    use std::cell::RefCell;
    use std::rc::{Rc, Weak};
    use std::time::Duration;

    use gosim::runtime::{NANOS_PER_MS, Nanos, Runtime, TaskId, TaskObserver};
    use gosim::sim::Sim;

    struct Reader {
        rt: Runtime,
        seen: RefCell<Vec<String>>,
    }

    impl Reader {
        fn note(&self, what: &str, id: TaskId, at: Nanos) {
            let (now, live) = (self.rt.now(), self.rt.live_goroutines());
            let ms = |n: Nanos| n / NANOS_PER_MS;
            let line = format!("{what} {id} at {} now {} live {live}", ms(at), ms(now));
            self.seen.borrow_mut().push(line);
        }
    }

    impl TaskObserver for Reader {
        fn spawned(&self, id: TaskId, at: Nanos) {
            self.note("spawn", id, at);
        }

        fn finished(&self, id: TaskId, at: Nanos, _failed: bool, _lifetime: Nanos) {
            self.note("exit", id, at);
        }
    }

    let sim = Sim::with_seed(1);
    let reader = Rc::new(Reader {
        rt: sim.runtime().clone(),
        seen: RefCell::new(Vec::new()),
    });
    let weak: Weak<dyn TaskObserver> = Rc::downgrade(&reader) as Weak<dyn TaskObserver>;
    sim.runtime().observe(weak);
    let s = sim.clone();
    let report = sim.run(async move {
        let t = s.clone();
        s.spawn("worker", async move {
            t.sleep(Duration::from_millis(5)).await;
        });
        s.sleep(Duration::from_millis(10)).await;
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    assert_eq!(
        *reader.seen.borrow(),
        [
            "spawn g1 at 0 now 0 live 1",
            "spawn g2 at 0 now 0 live 2",
            "exit g2 at 5 now 5 live 1",
            "exit g1 at 10 now 10 live 0",
        ]
    );
}
