//! `gosim::check` and `Check`: sweeps, the failing seed's report and reproduce line, reruns of
//! that seed (in this process and in a child process), shrinking to a schedule file and its
//! replay, the `GOSIM_*` settings, and task panics captured instead of printed.

use std::path::PathBuf;
use std::rc::Rc;

use gosim::explore::failure_signature;
use gosim::runtime::{Outcome, Schedule};
use gosim::sim::{CheckFailure, capture_panics};
use gosim::{Check, Sim};

mod common;
use common::lost_update;

/// Where this file's checks write their schedules.
fn schedule_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("check")
        .join(test)
}

/// The lost-update sweep, with settings from `env` instead of the process environment.
fn lost_update_check(env: &[(&str, &str)]) -> Result<gosim::sim::CheckPassed, Box<CheckFailure>> {
    Check::new()
        .runs(200)
        .strategy("random")
        .name("lost_update")
        .schedule_dir(schedule_dir("lost_update"))
        .env(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .try_run(lost_update)
}

/// A panic payload's text.
fn text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a text payload")
}

/// The `N` of the `reproduce: GOSIM_SEED=N ...` line.
fn reproduce_seed(message: &str) -> u64 {
    let line = message
        .lines()
        .find(|l| l.starts_with("reproduce: GOSIM_SEED="))
        .unwrap_or_else(|| panic!("no reproduce line in:\n{message}"));
    line["reproduce: GOSIM_SEED=".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a seed")
}

#[test]
fn a_passing_sweep_runs_every_seed() {
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let s2 = seen.clone();
    let passed = Check::new()
        .runs(40)
        .seed(1000)
        .env(Vec::<(String, String)>::new())
        .try_run(move |sim: Sim| {
            s2.borrow_mut().push(sim.seed());
            async move {
                let ch = sim.channel::<i64>(1);
                ch.send(7).await.expect("open");
                assert_eq!(ch.recv().await, Some(7));
            }
        })
        .expect("passes");
    assert_eq!(passed.runs, 40);
    assert_eq!(passed.first_seed, 1000);
    // The probe that sizes PCT runs the first seed once more; the sweep runs 1000..1040 in order.
    let seen = seen.borrow();
    assert_eq!(
        seen[seen.len() - 40..],
        (1000..1040).collect::<Vec<_>>()[..]
    );
    // The free function with the defaults passes too.
    gosim::check(|sim| async move {
        sim.sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(sim.now(), std::time::Duration::from_millis(5));
    });
}

#[test]
fn a_failing_sweep_panics_with_the_seed_and_the_reproduce_line() {
    let caught = std::panic::catch_unwind(|| {
        Check::new()
            .runs(200)
            .strategy("random")
            .name("lost_update")
            .schedule_dir(schedule_dir("panics"))
            .env(Vec::<(String, String)>::new())
            .run(lost_update)
    })
    .expect_err("the sweep finds the lost update");
    let message = caught
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(message.contains("lost update"), "{message}");
    assert!(message.contains("FAIL (panic)"), "{message}");
    let seed = reproduce_seed(message);
    assert!(
        message.contains(&format!(
            "reproduce: GOSIM_SEED={seed} cargo test lost_update\n"
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("failed at seed {seed} (strategy random)")),
        "{message}"
    );
    assert!(message.contains("reproduce: GOSIM_SCHEDULE="), "{message}");
    // The task's panic is reported with where it was raised.
    assert!(
        message.contains("panicked at tests/common/mod.rs:"),
        "{message}"
    );
}

#[test]
fn the_failing_seed_alone_fails_the_same_way() {
    let sweep = lost_update_check(&[]).expect_err("fails");
    let seed = sweep.seed.to_string();
    let alone = lost_update_check(&[("GOSIM_SEED", seed.as_str())]).expect_err("fails again");
    assert_eq!(alone.seed, sweep.seed);
    assert_eq!(alone.outcome.to_string(), sweep.outcome.to_string());
    let line = |r: &str| {
        r.lines()
            .filter(|l| l.starts_with("reproduce:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(line(&alone.report), line(&sweep.report));
    // Alone, the report only lacks the line about the sweep.
    let without_sweep: String = sweep
        .report
        .lines()
        .filter(|l| !l.starts_with("  the first failure in"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(alone.report, without_sweep);
}

#[test]
fn a_shrunk_schedule_replays_the_same_failure() {
    let failure = lost_update_check(&[]).expect_err("fails");
    let shrunk = failure.shrunk.as_ref().expect("shrunk");
    assert!(shrunk.shrunk.decisions.len() <= shrunk.original.decisions.len());
    let path = failure.schedule_file.as_ref().expect("written");
    let text = std::fs::read_to_string(path).expect("readable");
    assert!(text.contains("# replay: GOSIM_SCHEDULE=FILE cargo test lost_update"));
    let schedule = Schedule::parse(&text).expect("the gosim shrink format");
    assert_eq!(schedule, shrunk.shrunk);
    let replayed = lost_update_check(&[("GOSIM_SCHEDULE", path.to_str().expect("utf-8"))])
        .expect_err("the schedule fails");
    assert_eq!(
        failure_signature(&replayed.outcome),
        failure_signature(&failure.outcome)
    );
    assert!(
        replayed.report.ends_with(&format!(
            "reproduce: GOSIM_SCHEDULE={} cargo test lost_update\n",
            path.display()
        )),
        "{}",
        replayed.report
    );
}

#[test]
fn gosim_runs_and_strategy_come_from_the_environment() {
    let passed = Check::new()
        .runs(500)
        .env([("GOSIM_RUNS", "3")])
        .try_run(|sim: Sim| async move { sim.yield_now().await })
        .expect("passes");
    assert_eq!(passed.runs, 3);
    let failure = lost_update_check(&[("GOSIM_STRATEGY", "pct:2")]).expect_err("fails");
    assert!(matches!(
        failure.strategy,
        gosim::runtime::Strategy::Pct { depth: 2, .. }
    ));
    assert!(
        failure.report.contains(&format!(
            "reproduce: GOSIM_SEED={} GOSIM_STRATEGY=pct:2 cargo test lost_update\n",
            failure.seed
        )),
        "{}",
        failure.report
    );
}

#[test]
fn bad_settings_panic_naming_the_variable() {
    let message = |env: &[(&str, &str)]| {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = std::panic::catch_unwind(|| {
            Check::new()
                .env(env)
                .run(|sim: Sim| async move { sim.yield_now().await })
        })
        .expect_err("refused");
        text(e.as_ref())
    };
    let m = message(&[("GOSIM_SEED", "seven")]);
    assert!(
        m.contains("GOSIM_SEED must be a whole number, not \"seven\""),
        "{m}"
    );
    let m = message(&[("GOSIM_RUNS", "0")]);
    assert!(m.contains("GOSIM_RUNS must be at least 1"), "{m}");
    let m = message(&[("GOSIM_STRATEGY", "fastest")]);
    assert!(m.contains("GOSIM_STRATEGY") && m.contains("fastest"), "{m}");
    let m = message(&[("GOSIM_SCHEDULE", "/nonexistent/gosim.schedule")]);
    assert!(
        m.contains("GOSIM_SCHEDULE: cannot read /nonexistent/gosim.schedule"),
        "{m}"
    );
    let e = std::panic::catch_unwind(|| {
        Check::new()
            .strategy("pct:0")
            .env(Vec::<(String, String)>::new())
            .run(|sim: Sim| async move { sim.yield_now().await })
    })
    .expect_err("refused");
    let m = text(e.as_ref());
    assert!(m.contains("strategy \"pct:0\""), "{m}");
}

#[test]
fn capture_panics_records_message_and_location() {
    let line = line!() + 2;
    let (caught, panics) =
        capture_panics(|| std::panic::catch_unwind(|| panic!("captured {}", 42)).is_err());
    assert!(caught);
    assert_eq!(panics.len(), 1);
    assert_eq!(panics[0].message, "captured 42");
    assert_eq!(
        panics[0].location.as_deref(),
        Some(format!("tests/check.rs:{line}").as_str())
    );
    assert!(!gosim::sim::capturing());
    // A check's failing run keeps its tasks' panics.
    let failure = lost_update_check(&[]).expect_err("fails");
    assert!(
        failure
            .panics
            .iter()
            .any(|p| p.message.contains("lost update"))
    );
    assert!(matches!(failure.outcome, Outcome::Fail(_)));
}

/// The child-process side of the two tests below (does nothing unless the parent asked).
#[test]
fn child_process_side() {
    match std::env::var("GOSIM_TEST_CHILD").as_deref() {
        Ok("quiet") => {
            let _ = capture_panics(|| std::panic::catch_unwind(|| panic!("quiet-boom")));
            let _ = std::panic::catch_unwind(|| panic!("loud-boom"));
            eprintln!("child done");
        }
        Ok("seed") => {
            // GOSIM_SEED is in this process's environment: no `env` override.
            let failure = Check::new()
                .runs(200)
                .strategy("random")
                .name("lost_update")
                .schedule_dir(schedule_dir("child"))
                .try_run(lost_update)
                .expect_err("the seed fails");
            println!("<<<{}>>>", failure.report);
        }
        _ => {}
    }
}

fn run_child(mode: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        "child_process_side",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("GOSIM_TEST_CHILD", mode);
    for k in gosim::sim::ENV_VARS {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn captured_panics_are_not_printed() {
    let out = run_child("quiet", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("child done"), "{stderr}");
    assert!(
        stderr.contains("loud-boom"),
        "outside a capture the hook prints: {stderr}"
    );
    assert!(
        !stderr.contains("quiet-boom"),
        "inside a capture it does not: {stderr}"
    );
}

#[test]
fn the_failing_seed_fails_identically_in_another_process() {
    let here = Check::new()
        .runs(200)
        .strategy("random")
        .name("lost_update")
        .schedule_dir(schedule_dir("child"))
        .env(Vec::<(String, String)>::new())
        .try_run(lost_update)
        .expect_err("fails");
    let seed = here.seed.to_string();
    let alone_here = Check::new()
        .runs(200)
        .strategy("random")
        .name("lost_update")
        .schedule_dir(schedule_dir("child"))
        .env([("GOSIM_SEED", seed.as_str())])
        .try_run(lost_update)
        .expect_err("fails");
    let out = run_child("seed", &[("GOSIM_SEED", &seed)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let start = stdout.find("<<<").expect("a report") + 3;
    let end = stdout.rfind(">>>").expect("a report");
    assert_eq!(&stdout[start..end], alone_here.report);
}

#[test]
fn assert_pass_panics_with_the_report_and_a_reproduce_line() {
    let sim = Sim::with_seed(11);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<i64>(0);
        ch.send(1).await.expect("open"); // nobody receives: a deadlock
    });
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| report.assert_pass()))
        .expect_err("a deadlock");
    let m = text(e.as_ref());
    assert!(m.contains("the run of seed 11 did not pass"), "{m}");
    assert!(m.contains("FAIL (deadlock)"), "{m}");
    assert!(
        m.contains("reproduce: run it again with Sim::with_seed(11)"),
        "{m}"
    );
    Sim::with_seed(1).run(async {}).assert_pass();

    let lua = gosim::scenario::run_source(
        "t.lua",
        "local ch = goroutine.channel()\nch:send(1)\n",
        &gosim::scenario::RunOptions::with_seed(5),
    )
    .expect("loads");
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lua.assert_pass()))
        .expect_err("a deadlock");
    let m = text(e.as_ref());
    assert!(m.contains("FAIL (deadlock)"), "{m}");
    assert!(
        m.ends_with("reproduce: gosim run t.lua --seed 5 --strategy random"),
        "{m}"
    );
}

/// One run of the lost update as the generic exploration layer sees it (no `Check` involved).
fn lost_update_result(config: &gosim::runtime::Config) -> gosim::explore::RunResult {
    let rt = gosim::runtime::Runtime::simulated(config.clone());
    let sim = Sim::on(&rt);
    sim.spawn("main", lost_update(sim.clone()));
    let (outcome, _) = capture_panics(|| rt.run());
    let result = gosim::explore::RunResult {
        outcome,
        decisions: rt.take_decisions(),
        sometimes: Default::default(),
        stats: rt.stats(),
    };
    rt.shutdown();
    result
}

#[test]
fn the_generic_sweep_and_shrink_run_rust_bodies_too() {
    let config = gosim::runtime::Config {
        trace: false,
        ..Default::default()
    };
    let seeds: Vec<u64> = (0..200).collect();
    // Two workers, each with its own runner: Rust bodies are not Send, runners never move.
    let factory = || |c: &gosim::runtime::Config| Ok::<_, ()>(lost_update_result(c));
    let summary = gosim::explore::sweep(&seeds, 2, &config, factory, &mut |_, _| {})
        .expect("no runner error");
    assert_eq!(summary.runs, 200);
    assert_eq!(summary.groups.len(), 1, "{:?}", summary.groups);
    let group = &summary.groups[0];
    assert_eq!(group.kind, "panic");
    assert_eq!(summary.passed + group.count, 200);
    // Check's sequential sweep of the same seeds stops at the same first failure.
    let failure = lost_update_check(&[]).expect_err("fails");
    assert_eq!(failure.seed, group.smallest_seed);

    let mut failing = config.clone();
    failing.seed = group.smallest_seed;
    let shrunk = gosim::explore::shrink(&failing, 200, &mut |c: &gosim::runtime::Config| {
        Ok::<_, ()>(lost_update_result(c))
    })
    .expect("no runner error")
    .expect("the seed fails");
    let replayed = lost_update_result(&gosim::explore::replay_config(&config, &shrunk.shrunk));
    assert_eq!(
        failure_signature(&replayed.outcome),
        failure_signature(&shrunk.outcome)
    );
    assert!(failure_signature(&replayed.outcome).is_some());
}
