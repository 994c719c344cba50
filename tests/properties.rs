//! Property tests: channels against a model queue, `select` fairness, and determinism of runs.
//!
//! Every property generates a Lua scenario from proptest inputs, runs it, and checks what the
//! scenario logged (`log.info` lines) or its trace.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use gosim::runtime::Outcome;
use gosim::scenario::{RunOptions, check_determinism};
use proptest::prelude::*;

mod common;
use common::{logs, run};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------------------------
// A channel shared by several goroutines behaves like a FIFO queue
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Blocking `send` of a fresh value.
    Send,
    /// `try_send` of a fresh value.
    TrySend,
    /// `try_receive`.
    TryRecv,
    /// `close`.
    Close,
    /// `goroutine.yield()`.
    Yield,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Send),
        3 => Just(Op::TrySend),
        3 => Just(Op::TryRecv),
        1 => Just(Op::Close),
        1 => Just(Op::Yield),
    ]
}

/// Goroutine `g`'s op `i` sends the value `g * 1000 + i`, so every value names its sender and its
/// order among that sender's sends.
fn value(g: usize, i: usize) -> i64 {
    (g * 1000 + i) as i64
}

/// The scenario: workers 1..=n run their ops (logging each result), main receives until the
/// channel is closed and drained, and a closer closes it once every worker is done.
///
/// Log lines: `S g v ok err` (send), `T g v ok err` (try_send), `R g v` (a value received by
/// goroutine g; main is 0), `N g` (try_receive found nothing), `C g ok err` (close), `L len cap`
/// (an observation), `END ...` (main's view after the drain).
fn shared_channel_script(cap: usize, workers: &[Vec<Op>]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "local CAP = {cap}");
    s.push_str(
        r#"local ch = goroutine.channel(CAP)
local wg = goroutine.wait_group()
local function rec(line) log.info(line) end
local function obs()
  local n, c = ch:len(), ch:cap()
  rec("L " .. tostring(n) .. " " .. tostring(c))
end
local function s(x) return tostring(x) end
"#,
    );
    let _ = writeln!(s, "wg:add({})", workers.len());
    for (gi, ops) in workers.iter().enumerate() {
        let g = gi + 1;
        let _ = writeln!(s, "goroutine.spawn(function()");
        for (i, op) in ops.iter().enumerate() {
            let v = value(g, i);
            let line = match op {
                Op::Send => format!(
                    "local ok, err = ch:send({v}) rec('S {g} {v} ' .. s(ok) .. ' ' .. s(err))"
                ),
                Op::TrySend => format!(
                    "local ok, err = ch:try_send({v}) rec('T {g} {v} ' .. s(ok) .. ' ' .. s(err))"
                ),
                Op::TryRecv => format!(
                    "local v, ok = ch:try_receive() if ok then rec('R {g} ' .. s(v)) elseif v ~= nil then rec('BAD try_receive ' .. s(v)) else rec('N {g}') end"
                ),
                Op::Close => {
                    format!("local ok, err = ch:close() rec('C {g} ' .. s(ok) .. ' ' .. s(err))")
                }
                Op::Yield => "goroutine.yield()".to_string(),
            };
            let _ = writeln!(s, "  do {line} end obs()");
        }
        let _ = writeln!(s, "  wg:done()\nend)");
    }
    s.push_str(
        r#"goroutine.spawn(function()
  wg:wait()
  local ok, err = ch:close()
  rec("C 0 " .. s(ok) .. " " .. s(err))
end)
while true do
  local v, ok = ch:receive()
  if not ok then
    if v ~= nil then rec("BAD closed receive gave " .. s(v)) end
    break
  end
  rec("R 0 " .. s(v))
  obs()
end
local v1, ok1 = ch:receive()
local v2, ok2 = ch:try_receive()
rec("END " .. s(v1) .. " " .. s(ok1) .. " " .. s(v2) .. " " .. s(ok2) .. " " .. s(ch:is_closed()) .. " " .. s(ch:len()))
"#,
    );
    s
}

/// Checks the log of a shared-channel run; returns the first violation.
fn check_shared_channel(cap: usize, workers: &[Vec<Op>], lines: &[String]) -> Result<(), String> {
    let mut sent: BTreeSet<i64> = BTreeSet::new();
    let mut refused: BTreeSet<i64> = BTreeSet::new();
    let mut received: Vec<(usize, i64)> = Vec::new();
    let mut closes_ok = 0;
    let mut closed_by: BTreeMap<usize, usize> = BTreeMap::new(); // goroutine -> op count when it closed
    let mut sends_after_own_close: Vec<String> = Vec::new();
    let mut per_g_ops: BTreeMap<usize, usize> = BTreeMap::new();
    let mut end = None;
    for line in lines {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "S" | "T" => {
                let g: usize = f[1].parse().unwrap();
                let v: i64 = f[2].parse().unwrap();
                *per_g_ops.entry(g).or_default() += 1;
                let (ok, err) = (f[3], f[4..].join(" "));
                match (ok, err.as_str()) {
                    ("true", "nil") => {
                        sent.insert(v);
                    }
                    ("false", "send on closed channel") => {
                        refused.insert(v);
                    }
                    ("false", "nil") if f[0] == "T" => {
                        refused.insert(v);
                    }
                    _ => return Err(format!("bad send result: {line}")),
                }
                if closed_by.contains_key(&g) && ok == "true" {
                    sends_after_own_close.push(line.clone());
                }
                if closed_by.contains_key(&g) && f[0] == "T" && err == "nil" {
                    return Err(format!(
                        "try_send after this goroutine closed the channel says full, not closed: {line}"
                    ));
                }
            }
            "R" => {
                let g: usize = f[1].parse().unwrap();
                let v: i64 = f[2]
                    .parse()
                    .map_err(|_| format!("a received value is not an integer: {line}"))?;
                received.push((g, v));
            }
            "N" => {}
            "C" => {
                let g: usize = f[1].parse().unwrap();
                match (f[2], f[3..].join(" ").as_str()) {
                    ("true", "nil") => {
                        closes_ok += 1;
                        closed_by.insert(g, 0);
                    }
                    ("false", "channel already closed") => {
                        closed_by.entry(g).or_insert(0);
                    }
                    _ => return Err(format!("bad close result: {line}")),
                }
            }
            "L" => {
                let n: usize = f[1]
                    .parse()
                    .map_err(|_| format!("len is not an integer: {line}"))?;
                let c: usize = f[2]
                    .parse()
                    .map_err(|_| format!("cap is not an integer: {line}"))?;
                if c != cap || n > c {
                    return Err(format!("observed len {n} cap {c} with capacity {cap}"));
                }
            }
            "END" => end = Some(line.clone()),
            _ => return Err(format!("unexpected line: {line}")),
        }
    }
    if !sends_after_own_close.is_empty() {
        return Err(format!(
            "sends succeeded after their goroutine closed the channel: {sends_after_own_close:?}"
        ));
    }
    if closes_ok != 1 {
        return Err(format!("{closes_ok} closes succeeded, expected exactly 1"));
    }
    // Every worker logged every send op.
    for (gi, ops) in workers.iter().enumerate() {
        let n = ops
            .iter()
            .filter(|o| matches!(o, Op::Send | Op::TrySend))
            .count();
        let got = per_g_ops.get(&(gi + 1)).copied().unwrap_or(0);
        if got != n {
            return Err(format!(
                "goroutine {} logged {got} of its {n} sends",
                gi + 1
            ));
        }
    }
    // Nothing received twice, nothing received that was not sent, nothing sent was lost.
    let mut seen = BTreeSet::new();
    for (_, v) in &received {
        if !seen.insert(*v) {
            return Err(format!("value {v} was received twice"));
        }
        if !sent.contains(v) {
            return Err(format!(
                "value {v} was received but never successfully sent (refused: {})",
                refused.contains(v)
            ));
        }
    }
    if let Some(lost) = sent.iter().find(|v| !seen.contains(v)) {
        return Err(format!("value {lost} was sent but never received"));
    }
    // Per receiver, each sender's values arrive in the order they were sent.
    let mut last: BTreeMap<(usize, i64), i64> = BTreeMap::new();
    for (r, v) in &received {
        let sender = v / 1000;
        if let Some(prev) = last.insert((*r, sender), *v)
            && prev > *v
        {
            return Err(format!(
                "receiver {r} got {v} after {prev} from the same sender (FIFO broken)"
            ));
        }
    }
    match end.as_deref() {
        Some("END nil false nil false true 0") => Ok(()),
        other => Err(format!(
            "after the drain, expected `END nil false nil false true 0`, got {other:?}"
        )),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_shared_channel_conserves_values_in_fifo_order(
        cap in 0usize..5,
        workers in prop::collection::vec(prop::collection::vec(op(), 0..10), 2..=3),
        seed in any::<u64>(),
    ) {
        let src = shared_channel_script(cap, &workers);
        let r = run(&src, seed);
        prop_assert!(r.outcome.is_pass(), "seed {seed}: {}\n--- source ---\n{src}", r.outcome);
        let lines = logs(&r);
        if let Some(bad) = lines.iter().find(|l| l.starts_with("BAD")) {
            prop_assert!(false, "seed {seed}: {bad}\n--- source ---\n{src}");
        }
        if let Err(e) = check_shared_channel(cap, &workers, &lines) {
            prop_assert!(false, "seed {seed}: {e}\n--- log ---\n{}\n--- source ---\n{src}", lines.join("\n"));
        }
    }
}

// ------------------------------------------------------------------------------------------------
// One goroutine against a buffered channel matches a VecDeque exactly
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum QOp {
    Send(u8),
    TrySend(u8),
    Receive,
    TryReceive,
    Close,
    Len,
    IsClosed,
}

fn qop() -> impl Strategy<Value = QOp> {
    prop_oneof![
        3 => any::<u8>().prop_map(QOp::Send),
        4 => any::<u8>().prop_map(QOp::TrySend),
        3 => Just(QOp::Receive),
        4 => Just(QOp::TryReceive),
        1 => Just(QOp::Close),
        2 => Just(QOp::Len),
        1 => Just(QOp::IsClosed),
    ]
}

/// The model: a bounded queue with a closed flag. Returns the Lua statement for `op` and the
/// line it must log. A blocking op that the model says would block (so would deadlock a single
/// goroutine) is turned into its non-blocking form.
fn model_step(q: &mut VecDeque<u8>, closed: &mut bool, cap: usize, op: QOp) -> (String, String) {
    let two = |a: &str, b: &str| format!("{a}|{b}");
    let stmt = |call: &str| {
        format!("do local a, b = {call} log.info(tostring(a) .. '|' .. tostring(b)) end")
    };
    match op {
        QOp::Send(k) if *closed => (
            stmt(&format!("ch:send({k})")),
            two("false", "send on closed channel"),
        ),
        QOp::Send(k) if q.len() < cap => {
            q.push_back(k);
            (stmt(&format!("ch:send({k})")), two("true", "nil"))
        }
        QOp::Send(k) | QOp::TrySend(k) => {
            if *closed {
                (
                    stmt(&format!("ch:try_send({k})")),
                    two("false", "send on closed channel"),
                )
            } else if q.len() < cap {
                q.push_back(k);
                (stmt(&format!("ch:try_send({k})")), two("true", "nil"))
            } else {
                (stmt(&format!("ch:try_send({k})")), two("false", "nil"))
            }
        }
        QOp::Receive if !q.is_empty() || *closed => {
            let expected = match q.pop_front() {
                Some(v) => two(&v.to_string(), "true"),
                None => two("nil", "false"),
            };
            (stmt("ch:receive()"), expected)
        }
        QOp::Receive | QOp::TryReceive => {
            let expected = match q.pop_front() {
                Some(v) => two(&v.to_string(), "true"),
                None => two("nil", "false"),
            };
            (stmt("ch:try_receive()"), expected)
        }
        QOp::Close => {
            let expected = if *closed {
                two("false", "channel already closed")
            } else {
                two("true", "nil")
            };
            *closed = true;
            (stmt("ch:close()"), expected)
        }
        QOp::Len => (
            stmt("ch:len(), math.type(ch:len())"),
            two(&q.len().to_string(), "integer"),
        ),
        QOp::IsClosed => (
            stmt("ch:is_closed(), ch:cap()"),
            two(&closed.to_string(), &cap.to_string()),
        ),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_channel_in_one_goroutine_matches_a_vecdeque(
        cap in 0usize..5,
        ops in prop::collection::vec(qop(), 0..40),
        seed in any::<u64>(),
    ) {
        let mut q = VecDeque::new();
        let mut closed = false;
        let mut src = format!("local ch = goroutine.channel({cap})\n");
        let mut expected = Vec::new();
        for op in &ops {
            let (stmt, want) = model_step(&mut q, &mut closed, cap, *op);
            src.push_str(&stmt);
            src.push('\n');
            expected.push(want);
        }
        let r = run(&src, seed);
        prop_assert!(r.outcome.is_pass(), "seed {seed}: {}\n--- source ---\n{src}", r.outcome);
        let got = logs(&r);
        for (i, (g, w)) in got.iter().zip(&expected).enumerate() {
            prop_assert_eq!(g, w, "op {} ({:?}) differs from the model\n--- source ---\n{}", i + 1, ops[i], src);
        }
        prop_assert_eq!(got.len(), expected.len());
    }
}

// ------------------------------------------------------------------------------------------------
// select picks each ready case about as often as the others
// ------------------------------------------------------------------------------------------------

/// A select over `recv.len()` ready cases: case i receives (from a channel holding `i`) when
/// `recv[i]`, else sends (on a channel with room). A never-ready case and, when `default`, a
/// default case are added; neither may be picked. The script logs the picked case number.
fn select_script(recv: &[bool], default: bool, repeat: usize) -> String {
    let mut s = String::from("local cases, chans = {}, {}\n");
    for (i, r) in recv.iter().enumerate() {
        let n = i + 1;
        if *r {
            let _ = writeln!(
                s,
                "chans[{n}] = goroutine.channel(1)\ncases[{n}] = {{channel = chans[{n}], receive = true, handler = function(v, ok) if v == {n} and ok == true then return {n} end return 'bad receive ' .. tostring(v) end}}"
            );
        } else {
            let _ = writeln!(
                s,
                "chans[{n}] = goroutine.channel(1)\ncases[{n}] = {{channel = chans[{n}], send = {n}, handler = function(ok) return {n} end}}"
            );
        }
    }
    s.push_str("cases[#cases + 1] = {channel = false, receive = true, handler = function() return 'never' end}\n");
    if default {
        s.push_str(
            "cases[#cases + 1] = {default = true, handler = function() return 'default' end}\n",
        );
    }
    let _ = writeln!(s, "for round = 1, {repeat} do");
    for (i, r) in recv.iter().enumerate() {
        let n = i + 1;
        if *r {
            let _ = writeln!(
                s,
                "  if chans[{n}]:len() == 0 then chans[{n}]:send({n}) end"
            );
        } else {
            let _ = writeln!(s, "  chans[{n}]:try_receive()");
        }
    }
    s.push_str("  log.info(tostring(goroutine.select(cases)))\nend\n");
    s
}

fn check_fair(
    counts: &BTreeMap<String, usize>,
    k: usize,
    n: usize,
    what: &str,
) -> Result<(), String> {
    let min = n / k / 2;
    for i in 1..=k {
        let c = counts.get(&i.to_string()).copied().unwrap_or(0);
        if c < min {
            return Err(format!(
                "{what}: case {i} picked {c} times of {n}, fewer than {min}: {counts:?}"
            ));
        }
    }
    let total: usize = (1..=k)
        .map(|i| counts.get(&i.to_string()).copied().unwrap_or(0))
        .sum();
    if total != n {
        return Err(format!(
            "{what}: something other than a ready case was picked: {counts:?}"
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn select_picks_each_ready_case_fairly_across_seeds(
        recv in prop::collection::vec(any::<bool>(), 2..=5),
        default in any::<bool>(),
        first_seed in 0u64..1_000_000,
    ) {
        const N: usize = 400;
        let k = recv.len();
        let src = select_script(&recv, default, 1);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for seed in first_seed..first_seed + N as u64 {
            let r = run(&src, seed);
            prop_assert!(r.outcome.is_pass(), "seed {seed}: {}", r.outcome);
            let l = logs(&r);
            prop_assert_eq!(l.len(), 1, "seed {}: {:?}", seed, l);
            *counts.entry(l[0].clone()).or_default() += 1;
        }
        if let Err(e) = check_fair(&counts, k, N, "across seeds") {
            prop_assert!(false, "{e}\n--- source ---\n{src}");
        }
    }

    #[test]
    fn select_picks_each_ready_case_fairly_within_a_run(
        recv in prop::collection::vec(any::<bool>(), 2..=5),
        default in any::<bool>(),
        seed in any::<u64>(),
    ) {
        const N: usize = 400;
        let k = recv.len();
        let src = select_script(&recv, default, N);
        let r = run(&src, seed);
        prop_assert!(r.outcome.is_pass(), "seed {seed}: {}", r.outcome);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for l in logs(&r) {
            *counts.entry(l).or_default() += 1;
        }
        if let Err(e) = check_fair(&counts, k, N, "within one run") {
            prop_assert!(false, "seed {seed}: {e}\n--- source ---\n{src}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Determinism
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Yield,
    Sleep(u8),
    Log,
    TrySend(u8),
    TryRecv,
    Locked,
    Random,
    Atomic,
    Spawn,
    SelectOrDefault,
    Buggify,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Yield),
        (0u8..4).prop_map(Step::Sleep),
        Just(Step::Log),
        any::<u8>().prop_map(Step::TrySend),
        Just(Step::TryRecv),
        Just(Step::Locked),
        Just(Step::Random),
        Just(Step::Atomic),
        Just(Step::Spawn),
        Just(Step::SelectOrDefault),
        Just(Step::Buggify),
    ]
}

fn scenario_script(goroutines: &[Vec<Step>], cap: usize) -> String {
    let mut s = format!(
        "local ch = goroutine.channel({cap})\nlocal mu = goroutine.mutex()\nlocal counter = goroutine.atomic_int(0)\nlocal wg = goroutine.wait_group()\nlocal seen = {{}}\nwg:add({})\n",
        goroutines.len()
    );
    for (gi, steps) in goroutines.iter().enumerate() {
        let g = gi + 1;
        let _ = writeln!(s, "goroutine.spawn{{name = 'w{g}', fn = function()");
        for (i, st) in steps.iter().enumerate() {
            let line = match st {
                Step::Yield => "goroutine.yield()".to_string(),
                Step::Sleep(ms) => format!("goroutine.sleep({ms})"),
                Step::Log => format!("log.info('w{g} step {i} at ' .. goroutine.now())"),
                Step::TrySend(v) => format!("ch:try_send({v})"),
                Step::TryRecv => {
                    "local v, ok = ch:try_receive() if ok then seen[#seen + 1] = v end".to_string()
                }
                Step::Locked => {
                    format!("mu:lock() log.info('w{g} in lock') goroutine.yield() mu:unlock()")
                }
                Step::Random => format!("log.info('w{g} random ' .. math.random(1000))"),
                Step::Atomic => format!("log.info('w{g} counter ' .. counter:add(1))"),
                Step::Spawn => {
                    format!(
                        "wg:add(1) goroutine.spawn(function() log.info('child of w{g}') wg:done() end)"
                    )
                }
                Step::SelectOrDefault => format!(
                    "goroutine.select({{{{channel = ch, receive = true, handler = function(v) log.info('w{g} selected ' .. tostring(v)) end}}, {{default = true}}}})"
                ),
                Step::Buggify => format!("if sim.buggify(0.5) then log.info('w{g} buggified') end"),
            };
            let _ = writeln!(s, "  {line}");
        }
        let _ = writeln!(s, "  wg:done()\nend}}");
    }
    s.push_str("wg:wait()\nlog.info('seen ' .. table.concat(seen, ',') .. ' counter ' .. counter:load())\n");
    s
}

fn outcome_text(o: &Outcome) -> String {
    o.to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_same_seed_gives_the_same_trace(
        goroutines in prop::collection::vec(prop::collection::vec(step(), 0..8), 1..=4),
        cap in 0usize..3,
        seed in any::<u64>(),
    ) {
        let src = scenario_script(&goroutines, cap);
        let a = run(&src, seed);
        let b = run(&src, seed);
        prop_assert!(a.outcome.is_pass(), "seed {seed}: {}\n--- source ---\n{src}", a.outcome);
        prop_assert_eq!(a.trace_text(), b.trace_text(), "seed {} gave two traces\n--- source ---\n{}", seed, src);
        prop_assert_eq!(outcome_text(&a.outcome), outcome_text(&b.outcome));
        prop_assert_eq!(a.stats.steps, b.stats.steps);
        prop_assert_eq!(a.stats.end_time, b.stats.end_time);
        let divergence = check_determinism("prop.lua", &src, [seed], &RunOptions::with_seed(seed))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(divergence.is_none(), "check_determinism found {:?}", divergence);
    }

    #[test]
    fn a_racy_scenario_gives_different_traces_across_seeds(
        n in 2usize..=4,
        rounds in 1usize..=3,
        first_seed in 0u64..1_000_000,
    ) {
        // n goroutines each log and yield `rounds` times: the interleaving is the seed's choice.
        let src = format!(
            "for g = 1, {n} do\n  goroutine.spawn(function()\n    for i = 1, {rounds} do log.info('g' .. g .. ' i' .. i) goroutine.yield() end\n  end)\nend\n"
        );
        let traces: BTreeSet<String> = (first_seed..first_seed + 20).map(|seed| run(&src, seed).trace_text()).collect();
        prop_assert!(traces.len() >= 2, "20 seeds gave a single trace\n--- source ---\n{}", src);
    }
}
