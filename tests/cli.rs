//! The command line as users meet it: exit codes, messages, `--help`. Few and coarse on purpose;
//! behaviour is tested through the library in the other test files.

use std::io::Write;

mod common;
use common::gosim;

fn script(name: &str, body: &str) -> tempfile_path::TempScript {
    tempfile_path::TempScript::new(name, body)
}

/// A scenario file in the target directory, removed on drop.
mod tempfile_path {
    use super::Write;

    pub(super) struct TempScript(pub(super) std::path::PathBuf);

    impl TempScript {
        pub(super) fn new(name: &str, body: &str) -> TempScript {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-scripts");
            std::fs::create_dir_all(&dir).expect("temp dir");
            let path = dir.join(name);
            let mut f = std::fs::File::create(&path).expect("create script");
            f.write_all(body.as_bytes()).expect("write script");
            TempScript(path)
        }

        pub(super) fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 path")
        }
    }

    impl Drop for TempScript {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn pass_exits_0_and_prints_the_trace() {
    let s = script(
        "pass.lua",
        "goroutine.sleep(5)\nlog.info('done at ' .. goroutine.now())\n",
    );
    let out = gosim(&["run", s.path(), "--seed", "3"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = String::from_utf8_lossy(&out.stdout);
    assert!(trace.contains("5ms g1(main) log.info done at 5"), "{trace}");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("PASS"));
}

#[test]
fn a_failure_exits_1_with_the_reproducing_command() {
    let s = script("fail.lua", "goroutine.sleep(2)\nerror('boom')\n");
    let out = gosim(&["run", s.path(), "--seed", "11", "--max-steps", "5000"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        report.contains("FAIL (error) at 2ms in g1(main)"),
        "{report}"
    );
    assert!(report.contains("fail.lua:2: boom"), "{report}");
    assert!(
        report.contains(&format!(
            "reproduce: gosim run {} --seed 11 --max-steps 5000",
            s.path()
        )),
        "{report}"
    );
}

#[test]
fn a_limit_exits_3() {
    let s = script("limit.lua", "while true do goroutine.sleep(1000) end\n");
    let out = gosim(&["run", s.path(), "--max-time", "60000", "--trace", "none"]);
    assert_eq!(out.status.code(), Some(3));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(report.contains("LIMIT (time horizon)"), "{report}");
    assert!(
        report.contains("--max-time"),
        "the report names the flag to raise: {report}"
    );
}

#[test]
fn a_syntax_error_exits_2_with_file_and_line() {
    let s = script("syntax.lua", "local x = 1\nlocal y = = 2\n");
    let out = gosim(&["run", s.path()]);
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("syntax.lua:2:"), "{msg}");
}

#[test]
fn a_missing_scenario_exits_2() {
    let out = gosim(&["run", "no/such/file.lua"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.lua"));
}

#[test]
fn bad_usage_exits_2_and_help_exits_0() {
    assert_eq!(gosim(&["run"]).status.code(), Some(2));
    assert_eq!(gosim(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        gosim(&["explore", "x.lua", "--seeds", "9..2"])
            .status
            .code(),
        Some(2)
    );
    for sub in [
        &["--help"][..],
        &["run", "--help"],
        &["explore", "--help"],
        &["check-determinism", "--help"],
        &["bench", "--help"],
    ] {
        let out = gosim(sub);
        assert_eq!(out.status.code(), Some(0), "{sub:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{sub:?}"
        );
    }
}

#[test]
fn explore_groups_failures_and_reports_the_smallest_seed() {
    let s = script(
        "race.lua",
        r#"
        local n = 0
        local wg = goroutine.wait_group()
        for i = 1, 3 do
          wg:add(1)
          goroutine.spawn(function() local x = n; goroutine.yield(); n = x + 1; wg:done() end)
        end
        wg:wait()
        assert(n == 3, "lost update")
        "#,
    );
    let out = gosim(&["explore", s.path(), "--seeds", "1..200", "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("explored 200 runs"), "{text}");
    assert!(text.contains("fail (assertion) at"), "{text}");
    assert!(text.contains("smallest seed"), "{text}");
    // The same sweep twice gives the same summary apart from the timing line.
    let again = gosim(&["explore", s.path(), "--seeds", "1..200", "--jobs", "1"]);
    let strip = |t: &str| t.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&text), strip(&String::from_utf8_lossy(&again.stdout)));
}

#[test]
fn check_determinism_reports_success() {
    let s = script(
        "det.lua",
        "local ch = goroutine.channel(1)\ngoroutine.spawn(function() ch:send(1) end)\nch:receive()\n",
    );
    let out = gosim(&["check-determinism", s.path(), "--seeds", "1..5"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("deterministic: 5 seeds"));
}
