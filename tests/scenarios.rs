//! The scenarios in `scenarios/` as tests: each one's text trace at a fixed seed is a snapshot
//! (reviewed with `cargo insta review`), each one is deterministic across processes, and each
//! passes under a handful of seeds, except `canary.lua`, which must deadlock.

use std::path::{Path, PathBuf};

use gosim::runtime::{FailureKind, Outcome};
use gosim::scenario::{RunOptions, run_file};

const SNAPSHOT_SEED: u64 = 7;

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the example scenarios, found {files:?}"
    );
    files
}

/// Canaries must fail, each in its own way: `canary.lua` and `canary_cycle.lua` close a wait-for
/// cycle (the latter while a daemon keeps running), `canary_leak.lua` leaks.
fn canary_kind(path: &Path) -> Option<FailureKind> {
    match path.file_stem()?.to_str()? {
        "canary" => Some(FailureKind::Cycle),
        "canary_cycle" => Some(FailureKind::Cycle),
        "canary_leak" => Some(FailureKind::Leak),
        _ => None,
    }
}

/// The name used in traces and messages: relative, so snapshots do not depend on the checkout.
fn display_name(path: &Path) -> String {
    format!(
        "scenarios/{}",
        path.file_name().expect("file name").to_string_lossy()
    )
}

fn run(path: &Path, seed: u64) -> gosim::scenario::RunReport {
    let source = std::fs::read_to_string(path).expect("readable scenario");
    gosim::scenario::run_source(&display_name(path), &source, &RunOptions::with_seed(seed))
        .expect("scenario loads")
}

#[test]
fn every_scenario_trace_matches_its_snapshot() {
    for path in scenario_files() {
        let report = run(&path, SNAPSHOT_SEED);
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        let text = format!("{}outcome: {}\n", report.trace_text(), report.outcome);
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(stem, text);
        });
    }
}

#[test]
fn every_scenario_passes_under_many_seeds_and_the_canary_deadlocks() {
    for path in scenario_files() {
        for seed in 1..=25 {
            let report = run(&path, seed);
            if let Some(kind) = canary_kind(&path) {
                match &report.outcome {
                    Outcome::Fail(f) => {
                        assert_eq!(
                            f.kind,
                            kind,
                            "{}: seed {seed}: {}",
                            path.display(),
                            report.outcome
                        );
                        assert!(
                            !f.stuck.is_empty(),
                            "the canary report names the stuck goroutines: {}",
                            report.outcome
                        );
                        assert!(
                            f.stuck.iter().all(|s| s.location.is_some()),
                            "every stuck goroutine has a source line: {}",
                            report.outcome
                        );
                    }
                    other => panic!(
                        "{}: seed {seed}: the canary must fail ({kind:?}), got {other}",
                        path.display()
                    ),
                }
            } else {
                assert!(
                    report.outcome.is_pass(),
                    "{} seed {seed}: {}\n{}",
                    path.display(),
                    report.outcome,
                    report.trace_text()
                );
            }
        }
    }
}

mod common;
use common::gosim as gosim_run;

#[test]
fn traces_are_identical_across_processes() {
    for path in scenario_files() {
        let name = display_name(&path);
        for seed in ["1", "7", "42"] {
            let a = gosim_run(&["run", &name, "--seed", seed]);
            let b = gosim_run(&["run", &name, "--seed", seed]);
            assert!(!a.stdout.is_empty(), "{name}: the trace is printed");
            assert_eq!(
                a.stdout, b.stdout,
                "{name} seed {seed}: two processes printed different traces"
            );
            assert_eq!(
                a.stderr, b.stderr,
                "{name} seed {seed}: two processes printed different reports"
            );
            assert_eq!(a.status.code(), b.status.code());
            let jsonl_a = gosim_run(&["run", &name, "--seed", seed, "--trace", "jsonl"]);
            let jsonl_b = gosim_run(&["run", &name, "--seed", seed, "--trace", "jsonl"]);
            assert_eq!(
                jsonl_a.stdout, jsonl_b.stdout,
                "{name} seed {seed}: JSON Lines traces differ"
            );
        }
    }
}

#[test]
fn the_jsonl_trace_is_one_valid_object_per_text_line() {
    let path = scenario_files()
        .into_iter()
        .find(|p| p.ends_with("producer_consumer.lua"))
        .expect("scenario exists");
    let name = display_name(&path);
    let text = gosim_run(&["run", &name, "--seed", "3"]);
    let jsonl = gosim_run(&["run", &name, "--seed", "3", "--trace", "jsonl"]);
    let text = String::from_utf8(text.stdout).expect("utf-8");
    let jsonl = String::from_utf8(jsonl.stdout).expect("utf-8");
    assert_eq!(text.lines().count(), jsonl.lines().count());
    for (t, j) in text.lines().zip(jsonl.lines()) {
        let v: serde_json::Value = serde_json::from_str(j).expect("each line is JSON");
        let ev = v["ev"].as_str().expect("an event verb");
        assert!(
            t.contains(ev),
            "text line {t:?} and JSON {j:?} describe the same event"
        );
        assert!(
            t.starts_with(v["t"].as_str().expect("a time")),
            "same time in {t:?} and {j:?}"
        );
    }
}

#[test]
fn different_seeds_give_different_interleavings_of_a_racy_scenario() {
    let src = r#"
        local ch = goroutine.channel(10)
        for w = 1, 4 do
          goroutine.spawn(function() for i = 1, 3 do ch:send(w * 10 + i) end end)
        end
        local got = {}
        for i = 1, 12 do got[#got + 1] = ch:receive() end
        log.info(table.concat(got, ","))
    "#;
    let mut traces = std::collections::BTreeSet::new();
    for seed in 1..=20 {
        let r = gosim::scenario::run_source("racy.lua", src, &RunOptions::with_seed(seed))
            .expect("loads");
        assert!(r.outcome.is_pass(), "{}", r.outcome);
        traces.insert(r.trace_text());
    }
    assert!(
        traces.len() >= 10,
        "20 seeds gave only {} distinct interleavings",
        traces.len()
    );
}

#[test]
fn the_canary_fails_with_exit_code_1_and_names_what_each_goroutine_waits_on() {
    let out = gosim_run(&["run", "scenarios/canary.lua", "--seed", "7"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(report.contains("FAIL (deadlock (cycle))"), "{report}");
    assert!(
        report.contains("cycle:"),
        "the cycle is printed in order: {report}"
    );
    assert!(report.contains("waits on"), "{report}");
    assert!(
        report.contains("scenarios/canary.lua:"),
        "the report gives source lines: {report}"
    );
    assert!(
        report.contains("reproduce: gosim run scenarios/canary.lua --seed 7"),
        "{report}"
    );
}

#[test]
fn check_determinism_passes_on_every_scenario() {
    for path in scenario_files() {
        let source = std::fs::read_to_string(&path).expect("readable");
        let d = gosim::scenario::check_determinism(
            &display_name(&path),
            &source,
            1..=3,
            &RunOptions::default(),
        )
        .expect("loads");
        assert_eq!(d, None, "{}", path.display());
    }
}

#[test]
fn run_file_reads_scenarios_and_reports_missing_files() {
    let path = scenario_files().remove(0);
    assert!(run_file(&path, &RunOptions::with_seed(1)).is_ok());
    let err = run_file(
        Path::new("scenarios/does-not-exist.lua"),
        &RunOptions::with_seed(1),
    )
    .unwrap_err();
    assert!(err.0.contains("does-not-exist.lua"), "{err}");
}

/// Lua 5.4 seeds its string hash from the time and addresses, which would make `pairs()` order
/// over string keys differ between processes; gosim builds Lua with a fixed seed. This test fails
/// if that build setting (`.cargo/config.toml`) is lost.
#[test]
fn string_key_order_is_the_same_in_every_process() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pairs-order");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("pairs.lua");
    std::fs::write(
        &path,
        r#"
        local t = {}
        for i = 1, 60 do t["key" .. i] = i end
        local ks = {}
        for k in pairs(t) do ks[#ks + 1] = k end
        log.info(table.concat(ks, ","))
        "#,
    )
    .expect("write script");
    let path = path.to_str().expect("utf-8 path");
    let runs: Vec<Vec<u8>> = (0..3)
        .map(|_| gosim_run(&["run", path, "--seed", "1"]).stdout)
        .collect();
    assert!(
        String::from_utf8_lossy(&runs[0]).contains("key"),
        "the order is logged"
    );
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[1], runs[2]);
}
