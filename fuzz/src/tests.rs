//! The harness's checks must pass on correct behaviour and catch planted faults: each fault test
//! replaces a gosim primitive by a broken imitation (in Lua, after the harness) and expects the
//! named invariant to break.

use gosim::runtime::{FailureKind, Outcome};
use gosim::scenario::run_source;

use super::*;

fn outcome(src: &str, seed: u64) -> Outcome {
    run_source("t.lua", src, &options(seed))
        .expect("the scenario loads")
        .outcome
}

fn chan(cap: u8) -> Channel {
    Channel {
        cap,
        ..Channel::default()
    }
}

/// A proxy for channel 1 that forwards everything but the methods in `overrides` (a Lua table
/// constructor whose functions see `real`, the real channel).
fn proxy_channel(overrides: &str) -> String {
    format!(
        "\ndo\n  local real = chans[1]\n  local over = {overrides}\n  \
         chans[1] = setmetatable({{}}, {{ __index = function(_, k)\n    \
         return over[k] or function(_, ...) return real[k](real, ...) end\n  end }})\nend\n"
    )
}

fn expect_broken(sc: &Scenario, fault: &str, what: &str) {
    let src = sc.render_with(fault);
    for seed in 0..5 {
        match outcome(&src, seed) {
            Outcome::Fail(f) if f.kind == FailureKind::Error => assert!(
                f.message.contains("invariant broken") && f.message.contains(what),
                "seed {seed}: expected {what:?}, got: {}\n{src}",
                f.message
            ),
            other => panic!("seed {seed}: the fault went unnoticed: {other}\n{src}"),
        }
    }
}

fn main_only(channels: Vec<Channel>, ops: Vec<Op>) -> Scenario {
    let mut sc = Scenario {
        channels,
        mutexes: 1,
        bodies: vec![ops],
        ..Scenario::default()
    };
    sc.clamp();
    sc
}

#[test]
fn correct_scenarios_pass() {
    let mut sc = Scenario {
        channels: vec![chan(0), chan(2)],
        mutexes: 2,
        rwmutexes: 1,
        semaphores: vec![2],
        spawn_all_at_start: true,
        bodies: vec![
            vec![
                Op::Recv(0),
                Op::Select(vec![Case::Recv(1), Case::After(5)], Mode::Timeout(3)),
                Op::Lock(0),
                Op::Sleep(2),
                Op::Unlock(0),
                Op::WgWait,
                Op::Len(1),
                Op::Select(vec![Case::Done(1), Case::NilSend], Mode::Block),
                Op::CtxErr,
                Op::Once(3),
                Op::Cancel,
                Op::Select(vec![Case::Done(0), Case::Recv(0)], Mode::Default),
                Op::CtxErr,
            ],
            vec![
                Op::WgAdd(0),
                Op::Send(0),
                Op::TrySend(1),
                Op::Select(vec![Case::Send(1), Case::NilRecv], Mode::Default),
                Op::TimerNew(4),
                Op::TimerWait(10),
                Op::TimerStop,
                Op::Acquire(0),
                Op::RLock(0),
                Op::Yield,
                Op::WgDone,
            ],
            vec![
                Op::Lock(1),
                Op::TryLock(0),
                Op::Lock(1),
                Op::WLock(0),
                Op::After(3),
                Op::TryAcquire(0),
                Op::Once(0),
                Op::Close(1),
            ],
        ],
        ..Scenario::default()
    };
    sc.clamp();
    let src = sc.render();
    for seed in 0..50 {
        let report = run_checked("t.lua", &src, seed);
        assert!(report.outcome.is_pass(), "seed {seed}: {}", report.outcome);
    }
}

#[test]
fn a_lost_value_is_caught() {
    let sc = main_only(vec![chan(1)], vec![Op::Send(0)]);
    expect_broken(
        &sc,
        &proxy_channel("{ send = function() return true end }"),
        "was lost",
    );
}

#[test]
fn a_duplicated_value_is_caught() {
    let sc = main_only(
        vec![chan(2)],
        vec![Op::Send(0), Op::Recv(0), Op::Close(0), Op::Recv(0)],
    );
    let fault = proxy_channel(
        "{ receive = function() local v, ok = real:receive() if ok then last_v = v return v, ok end \
         return last_v, true end }",
    );
    expect_broken(&sc, &fault, "received twice");
}

#[test]
fn reordered_values_are_caught() {
    let sc = main_only(
        vec![chan(2)],
        vec![Op::Send(0), Op::Send(0), Op::Recv(0), Op::Recv(0)],
    );
    let fault = proxy_channel(
        "{ send = function(_, v) if held == nil then held = v return true end \
         local ok = real:send(v) real:send(held) held = nil return ok end }",
    );
    expect_broken(&sc, &fault, "FIFO broken");
}

#[test]
fn a_mutex_that_does_not_exclude_is_caught() {
    let mut sc = Scenario {
        channels: vec![chan(0)],
        mutexes: 1,
        bodies: vec![
            vec![Op::Lock(0), Op::Spawn(0), Op::Sleep(1), Op::Unlock(0)],
            vec![Op::Lock(0)],
        ],
        ..Scenario::default()
    };
    sc.clamp();
    let fault = "\nmx[1] = { lock = function() end, unlock = function() end }\n";
    expect_broken(&sc, fault, "locked by g2 while g1 holds it");
}

#[test]
fn a_default_taken_while_a_case_is_ready_is_caught() {
    let closed = Channel {
        cap: 1,
        prefill: 1,
        closed_at_start: true,
    };
    let sc = main_only(
        vec![closed],
        vec![Op::Select(vec![Case::Recv(0)], Mode::Default)],
    );
    let fault = "\ndo\n  local real = G.select\n  G.select = function(cases)\n    \
                 local d = cases[#cases]\n    if d.default then return d.handler() end\n    \
                 return real(cases)\n  end\nend\n";
    expect_broken(&sc, fault, "select took default although a case was ready");
}

#[test]
fn a_late_sleeper_is_caught() {
    let sc = main_only(vec![chan(0)], vec![Op::Sleep(3)]);
    let fault = "\ndo\n  local real = G.sleep\n  G.sleep = function(ms) real(ms + 1) end\nend\n";
    expect_broken(&sc, fault, "sleep(3) from 0 woke at 4");
}

#[test]
fn a_stale_timer_value_is_caught() {
    let sc = main_only(
        vec![chan(0)],
        vec![Op::TimerNew(0), Op::Sleep(5), Op::TimerStop],
    );
    let fault = "\ndo\n  local real = G.timer\n  G.timer = function(ms)\n    local t = real(ms)\n    \
                 return { stop = function() return false end, channel = function() return t:channel() end }\n  \
                 end\nend\n";
    expect_broken(&sc, fault, "a stopped timer delivered 1");
}

#[test]
fn the_canary_deadlocks_only_on_opposite_transfers() {
    // Byte layout: teller in bits 0-1, kind in bits 2-3 (non-zero: transfer), from in bits 4-5,
    // to in bits 6-7.
    let transfer = |teller: u8, from: u8, to: u8| teller | 0b0100 | from << 4 | to << 6;
    let opposite = CanaryInput {
        seed: 0,
        steps: vec![transfer(0, 0, 1), transfer(1, 1, 0)],
    };
    let same_way = CanaryInput {
        seed: 0,
        steps: vec![transfer(0, 0, 1), transfer(1, 0, 1)],
    };
    let deadlocks = |input: &CanaryInput| {
        let src = input.render();
        (0..200)
            .filter(|&seed| match outcome(&src, seed) {
                Outcome::Pass => false,
                Outcome::Fail(f) if f.kind.word().starts_with("deadlock") => true,
                other => panic!("seed {seed}: {other}\n{src}"),
            })
            .count()
    };
    let n = deadlocks(&opposite);
    assert!(n > 0 && n < 200, "{n} of 200 seeds deadlock");
    assert_eq!(deadlocks(&same_way), 0);
}
