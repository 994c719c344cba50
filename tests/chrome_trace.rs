//! `--trace chrome`: the Chrome trace-event JSON is valid, complete and deterministic, its slices
//! nest and its flow arrows bind the way Perfetto reads them, and the CLI writes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use gosim::runtime::{Event, Subject, render_chrome};
use gosim::scenario::{RunOptions, RunReport, run_source};
use serde_json::Value;

mod common;

fn scenario_path(stem: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{stem}.lua"))
}

fn run_scenario(stem: &str, seed: u64) -> RunReport {
    let source = std::fs::read_to_string(scenario_path(stem)).expect("readable scenario");
    run_source(
        &format!("scenarios/{stem}.lua"),
        &source,
        &RunOptions::with_seed(seed),
    )
    .expect("scenario loads")
}

fn run_lua(source: &str) -> RunReport {
    common::run(source, 1)
}

fn all_scenarios() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

fn tid(v: &Value) -> u64 {
    v["tid"].as_u64().expect("integer tid")
}

/// Microseconds of a virtual time, as the renderer writes them.
fn micros(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Every goroutine id the text trace mentions (actors and subjects); 0 is the scheduler.
fn goroutine_ids(events: &[Event]) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    for e in events {
        ids.insert(e.task.0);
        if let Subject::Task(t, _) = &e.subject() {
            ids.insert(t.0);
        }
    }
    ids
}

/// The slices of one track in emitted order: `(name, cat, start µs, end µs)` (B/E pairs joined).
fn slices(trace: &[Value], track: u64) -> Vec<(String, String, f64, f64)> {
    let mut out = Vec::new();
    let mut open: Vec<(String, String, f64)> = Vec::new();
    for v in trace.iter().filter(|v| tid(v) == track) {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let cat = v["cat"].as_str().unwrap_or("").to_string();
        match v["ph"].as_str().expect("ph") {
            "X" => out.push((name, cat, num(v, "ts"), num(v, "ts") + num(v, "dur"))),
            "B" => open.push((name, cat, num(v, "ts"))),
            "E" => {
                let (name, cat, start) = open.pop().expect("E after its B");
                out.push((name, cat, start, num(v, "ts")));
            }
            _ => {}
        }
    }
    out
}

/// One slice on the model of a Perfetto thread track's stack: start, duration (`None` while a
/// `B` is open), and whether it is an instant.
#[derive(Debug, Clone, Copy)]
struct Open {
    ts: f64,
    dur: Option<f64>,
}

/// Replays the events the way Perfetto's JSON importer does: a stable sort by `ts` with, among
/// equal `ts`, every `E` first, then `X` slices longest first, then the rest in file order; a
/// per-track stack where a new slice pops the ones that ended (an instant keeps an instant at the
/// same `ts`, so instants stack); a flow binds to the topmost slice of its track. Checks that no
/// `X` partially overlaps an enclosing slice (Perfetto would drop it), that every `E` closes a
/// `B`, and that every flow end binds to a slice that starts exactly at the flow's `ts` (the send,
/// the receive, the wake, the spawn or the blocked slice it was written next to).
fn check_perfetto_binding(trace: &[Value], context: &str) {
    let key = |v: &Value| -> (u64, i128) {
        let ts_ns = (num(v, "ts") * 1000.0).round() as u64;
        let k = match v["ph"].as_str().unwrap_or("") {
            "E" => i128::MIN,
            "X" => i128::MAX - (num(v, "dur") * 1000.0).round() as i128,
            _ => i128::MAX,
        };
        (ts_ns, k)
    };
    let mut order: Vec<&Value> = trace.iter().filter(|v| v["ph"] != "M").collect();
    order.sort_by_key(|v| key(v)); // stable: file order among equals
    let mut stacks: BTreeMap<u64, Vec<Open>> = BTreeMap::new();
    let mut starts: BTreeMap<u64, f64> = BTreeMap::new();
    for v in order {
        let t = tid(v);
        let ts = num(v, "ts");
        let stack = stacks.entry(t).or_default();
        let close = |stack: &mut Vec<Open>, new_dur: Option<f64>| {
            while let Some(top) = stack.last() {
                let Some(dur) = top.dur else { break };
                let end = top.ts + dur;
                let same_and_drop = end == ts && !(dur == 0.0 && new_dur == Some(0.0));
                if end < ts || same_and_drop {
                    stack.pop();
                } else {
                    break;
                }
            }
        };
        match v["ph"].as_str().expect("ph") {
            "X" | "i" => {
                let dur = if v["ph"] == "X" { num(v, "dur") } else { 0.0 };
                close(stack, Some(dur));
                for outer in stack.iter() {
                    if let Some(d) = outer.dur {
                        assert!(
                            ts + dur <= outer.ts + d,
                            "{context}: slice {v} overlaps the end of an enclosing slice"
                        );
                    }
                }
                stack.push(Open { ts, dur: Some(dur) });
            }
            "B" => {
                close(stack, None);
                stack.push(Open { ts, dur: None });
            }
            "E" => {
                close(stack, None);
                let top = stack.pop().expect("E with something open");
                assert!(
                    top.dur.is_none(),
                    "{context}: E at {ts} closes a complete slice"
                );
            }
            "s" | "f" => {
                let top = stack
                    .last()
                    .unwrap_or_else(|| panic!("{context}: flow {v} has no enclosing slice"));
                assert_eq!(
                    top.ts, ts,
                    "{context}: flow {v} binds to a slice that starts elsewhere"
                );
                if v["ph"] == "s" {
                    starts.insert(v["id"].as_u64().expect("id"), ts);
                } else {
                    let id = v["id"].as_u64().expect("id");
                    let s = starts.remove(&id);
                    assert!(
                        s.is_some_and(|s| s <= ts),
                        "{context}: flow end {v} read before its start"
                    );
                }
            }
            other => panic!("{context}: unexpected phase {other}"),
        }
    }
    assert!(
        starts.is_empty(),
        "{context}: flows never finished: {starts:?}"
    );
}

/// Parses and checks one rendering; returns the trace events.
fn check(report: &RunReport, context: &str) -> Vec<Value> {
    let text = render_chrome(&report.events);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_eq!(doc["displayTimeUnit"], "ms", "{context}");
    let trace = doc["traceEvents"]
        .as_array()
        .unwrap_or_else(|| panic!("{context}: no traceEvents array"))
        .clone();
    assert!(!trace.is_empty(), "{context}: empty");

    let mut last_ts: BTreeMap<(u64, u64), f64> = BTreeMap::new();
    let mut open_b: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    let mut flow_starts: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut flow_ends: BTreeSet<u64> = BTreeSet::new();
    let mut thread_names: BTreeMap<u64, String> = BTreeMap::new();
    for v in &trace {
        let ph = v["ph"]
            .as_str()
            .unwrap_or_else(|| panic!("{context}: no ph in {v}"));
        for key in ["pid", "tid", "ts"] {
            assert!(v[key].is_number(), "{context}: {key} not a number in {v}");
        }
        assert_eq!(v["pid"], 1, "{context}: {v}");
        let track = (v["pid"].as_u64().expect("pid"), tid(v));
        let ts = num(v, "ts");
        assert!(ts >= 0.0, "{context}: {v}");
        let last = last_ts.entry(track).or_insert(0.0);
        assert!(
            ts >= *last,
            "{context}: ts goes back on track {track:?} at {v}"
        );
        *last = ts;
        match ph {
            "M" => {
                if v["name"] == "thread_name" {
                    let name = v["args"]["name"].as_str().expect("thread name").to_string();
                    assert!(
                        thread_names.insert(tid(v), name).is_none(),
                        "{context}: {v}"
                    );
                }
            }
            "X" => {
                assert!(num(v, "dur") >= 0.0, "{context}: {v}");
                assert!(v["name"].is_string(), "{context}: {v}");
            }
            "B" => {
                assert!(v["name"].is_string(), "{context}: {v}");
                open_b.entry(tid(v)).or_default().push(ts);
            }
            "E" => {
                let start = open_b
                    .get_mut(&tid(v))
                    .and_then(|s| s.pop())
                    .unwrap_or_else(|| panic!("{context}: E without B: {v}"));
                assert!(start <= ts, "{context}: {v}");
            }
            "i" => {
                assert_eq!(v["s"], "t", "{context}: {v}");
                assert!(v["args"]["trace"].is_string(), "{context}: {v}");
            }
            "s" => {
                let id = v["id"].as_u64().expect("flow id");
                let nc = (v["name"].to_string(), v["cat"].to_string());
                assert!(
                    flow_starts.insert(id, nc).is_none(),
                    "{context}: id reused {v}"
                );
            }
            "f" => {
                let id = v["id"].as_u64().expect("flow id");
                assert_eq!(v["bp"], "e", "{context}: {v}");
                let nc = (v["name"].to_string(), v["cat"].to_string());
                assert_eq!(
                    flow_starts.get(&id),
                    Some(&nc),
                    "{context}: f before s: {v}"
                );
                assert!(flow_ends.insert(id), "{context}: two ends: {v}");
            }
            other => panic!("{context}: unexpected ph {other}"),
        }
    }
    for (t, open) in &open_b {
        assert!(open.is_empty(), "{context}: B without E on track {t}");
    }
    let started: BTreeSet<u64> = flow_starts.keys().copied().collect();
    assert_eq!(started, flow_ends, "{context}: flows without both ends");

    // A named track for every goroutine of the text trace, and a lifetime slice for each.
    for id in goroutine_ids(&report.events) {
        let name = thread_names
            .get(&id)
            .unwrap_or_else(|| panic!("{context}: no thread name for g{id}"));
        if id == 0 {
            assert_eq!(name, "sched", "{context}");
            continue;
        }
        assert!(
            *name == format!("g{id}") || name.starts_with(&format!("g{id} ")),
            "{context}: g{id} named {name:?}"
        );
        assert!(
            slices(&trace, id).iter().any(|s| s.1 == "goroutine"),
            "{context}: no lifetime slice for g{id}"
        );
    }
    // Blocked slices are named after what they wait on.
    let blocks = report
        .events
        .iter()
        .filter(|e| e.verb.starts_with("block"))
        .count();
    let blocked: Vec<_> = trace.iter().filter(|v| v["cat"] == "blocked").collect();
    assert_eq!(
        blocked.len(),
        blocks,
        "{context}: one slice per block event"
    );
    for v in blocked {
        let name = v["name"].as_str().expect("name");
        assert!(name.starts_with("block"), "{context}: {v}");
        assert!(name.contains('#'), "{context}: {name:?} names no resource");
    }
    check_perfetto_binding(&trace, context);
    trace
}

#[test]
fn named_scenarios_render_valid_complete_chrome_json() {
    for stem in ["producer_consumer", "select_timeout", "canary"] {
        for seed in [7, 1, 2] {
            let report = run_scenario(stem, seed);
            check(&report, &format!("{stem} seed {seed}"));
        }
    }
}

#[test]
fn every_scenario_renders_valid_chrome_json() {
    for stem in all_scenarios() {
        let report = run_scenario(&stem, 7);
        check(&report, &format!("{stem} seed 7"));
    }
}

#[test]
fn producer_consumer_has_tracks_lifetimes_and_message_arrows() {
    let report = run_scenario("producer_consumer", 7);
    let trace = check(&report, "producer_consumer");
    let names: BTreeMap<u64, &str> = trace
        .iter()
        .filter(|v| v["name"] == "thread_name")
        .map(|v| (tid(v), v["args"]["name"].as_str().expect("name")))
        .collect();
    assert_eq!(names.get(&1), Some(&"g1 main"));
    assert_eq!(names.get(&2), Some(&"g2 producer"));
    // Both goroutines live from 0 to 500 ms (µs in the trace).
    for g in [1, 2] {
        let life = slices(&trace, g)
            .into_iter()
            .find(|s| s.1 == "goroutine")
            .expect("lifetime");
        assert_eq!((life.2, life.3), (0.0, 500_000.0), "g{g}");
    }
    // Four sleeps of 100 ms on the producer's track.
    let sleeps: Vec<_> = slices(&trace, 2)
        .into_iter()
        .filter(|s| s.1 == "sleep")
        .collect();
    assert!(sleeps.len() >= 4, "{sleeps:?}");
    assert!(
        sleeps
            .iter()
            .all(|s| s.0 == "sleep 100ms" && s.3 - s.2 == 100_000.0)
    );
    // Every item reaches main through the channel: five message arrows between g1 and g2.
    let messages: Vec<(u64, u64)> = {
        let starts: BTreeMap<u64, u64> = trace
            .iter()
            .filter(|v| v["ph"] == "s" && v["cat"] == "message")
            .map(|v| (v["id"].as_u64().expect("id"), tid(v)))
            .collect();
        trace
            .iter()
            .filter(|v| v["ph"] == "f" && v["cat"] == "message")
            .map(|v| (starts[&v["id"].as_u64().expect("id")], tid(v)))
            .collect()
    };
    assert_eq!(messages.len(), 5, "{messages:?}");
    for (from, to) in messages {
        assert_ne!(from, to);
        assert!([1, 2].contains(&from) && [1, 2].contains(&to));
    }
    // The close wakes main: a wake arrow from the producer to main.
    let wakes = trace
        .iter()
        .filter(|v| v["ph"] == "f" && v["cat"] == "wake" && tid(v) == 1)
        .count();
    assert!(wakes >= 1);
}

#[test]
fn the_canary_goroutines_stay_blocked_to_the_end() {
    let report = run_scenario("canary", 7);
    let trace = check(&report, "canary");
    let end = micros(report.events.last().expect("events").time);
    for g in [1, 2, 3] {
        let blocked: Vec<_> = slices(&trace, g)
            .into_iter()
            .filter(|s| s.1 == "blocked")
            .collect();
        let last = blocked
            .last()
            .unwrap_or_else(|| panic!("g{g} never blocked"));
        assert_eq!(
            last.3, end,
            "g{g}'s last blocked slice {last:?} ends before the trace"
        );
        let life = slices(&trace, g)
            .into_iter()
            .find(|s| s.1 == "goroutine")
            .expect("lifetime");
        assert_eq!(life.3, end, "g{g} lives to the end");
    }
    let never: Vec<_> = trace
        .iter()
        .filter(|v| {
            v["cat"] == "blocked"
                && v["args"]["ended_by"]
                    .as_str()
                    .is_some_and(|s| s.contains("end of the trace"))
        })
        .collect();
    assert_eq!(never.len(), 3, "{never:?}");
    // The two transfers wait on the two mutexes.
    let names: BTreeSet<&str> = never.iter().filter_map(|v| v["name"].as_str()).collect();
    assert!(names.contains("block-lock mutex#1"), "{names:?}");
    assert!(names.contains("block-lock mutex#2"), "{names:?}");
}

#[test]
fn arrows_follow_values_wakes_and_spawns() {
    // A parked sender whose value main takes 10 ms later; a parked receiver fed by main; a lock
    // waiter woken by an unlock; a sleeper (no arrow).
    let report = run_lua(
        r#"
        local ch = goroutine.channel()
        local m = goroutine.mutex()
        goroutine.spawn{name = "sender", fn = function() ch:send("a") end}
        goroutine.sleep(10)
        assert(ch:receive() == "a")
        local done = goroutine.channel()
        goroutine.spawn{name = "receiver", fn = function() done:send(ch:receive()) end}
        goroutine.sleep(10)
        ch:send("b")
        assert(done:receive() == "b")
        m:lock()
        goroutine.spawn{name = "locker", fn = function() m:lock() m:unlock() done:send(1) end}
        goroutine.sleep(10)
        m:unlock()
        done:receive()
        "#,
    );
    assert!(report.outcome.is_pass(), "{:?}", report.outcome);
    let trace = check(&report, "arrows");
    let starts: BTreeMap<u64, (String, u64)> = trace
        .iter()
        .filter(|v| v["ph"] == "s")
        .map(|v| {
            let cat = v["cat"].as_str().expect("cat").to_string();
            (v["id"].as_u64().expect("id"), (cat, tid(v)))
        })
        .collect();
    let arrows: BTreeSet<(String, u64, u64)> = trace
        .iter()
        .filter(|v| v["ph"] == "f")
        .map(|v| {
            let (cat, from) = starts[&v["id"].as_u64().expect("id")].clone();
            (cat, from, tid(v))
        })
        .collect();
    let has = |cat: &str, from: u64, to: u64| arrows.contains(&(cat.to_string(), from, to));
    assert!(
        has("spawn", 1, 2) && has("spawn", 1, 3) && has("spawn", 1, 4),
        "{arrows:?}"
    );
    assert!(
        has("message", 2, 1),
        "the sender's value reaches main: {arrows:?}"
    );
    assert!(
        has("message", 1, 3),
        "main's value reaches the receiver: {arrows:?}"
    );
    assert!(
        has("message", 3, 1),
        "the receiver's value reaches main: {arrows:?}"
    );
    assert!(
        has("wake", 1, 4),
        "main's unlock wakes the locker: {arrows:?}"
    );
    assert!(
        !arrows.iter().any(|(_, from, _)| *from == 0),
        "timers of sleeps draw no arrows: {arrows:?}"
    );
}

#[test]
fn rendering_is_deterministic() {
    for stem in [
        "producer_consumer",
        "select_timeout",
        "canary",
        "worker_pool",
    ] {
        let a = render_chrome(&run_scenario(stem, 3).events);
        let b = render_chrome(&run_scenario(stem, 3).events);
        assert!(a == b, "{stem}: two runs of seed 3 render differently");
    }
}

#[test]
fn the_cli_writes_chrome_json_with_trace_out() {
    let out = std::env::temp_dir().join(format!("gosim-chrome-{}.json", std::process::id()));
    for (stem, code) in [("producer_consumer", 0), ("canary", 1)] {
        let _ = std::fs::remove_file(&out);
        let result = Command::new(env!("CARGO_BIN_EXE_gosim"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["run", &format!("scenarios/{stem}.lua"), "--seed", "7"])
            .args(["--trace", "chrome", "--trace-out"])
            .arg(&out)
            .output()
            .expect("gosim runs");
        assert_eq!(result.status.code(), Some(code), "{stem}: {result:?}");
        assert!(
            result.stdout.is_empty(),
            "{stem}: the trace goes to the file only"
        );
        let written = std::fs::read_to_string(&out).expect("trace file written");
        let doc: Value = serde_json::from_str(&written).expect("valid JSON");
        assert!(doc["traceEvents"].as_array().is_some_and(|a| !a.is_empty()));
        // The same bytes as the library renders in this process.
        assert_eq!(
            written,
            render_chrome(&run_scenario(stem, 7).events),
            "{stem}"
        );
    }
    let _ = std::fs::remove_file(&out);
}
