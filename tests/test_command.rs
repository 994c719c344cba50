//! `gosim test` through the binary: a folder of scenarios as a test suite (exit codes, the
//! summary's reproduce lines, expect-fail, recursion, bad paths), its JUnit XML, and trace
//! snapshots (`__snapshots__/NAME.trace`, `--update-snapshots`, diffs, opting out).

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::gosim;

/// A fresh folder for one test under the target directory (removed first if a previous run
/// left it).
fn folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("test-command")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &Path, rel: &str, body: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    std::fs::write(&path, body).expect("write scenario");
    path
}

fn text(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn both(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const PASSING: &str = "local ch = goroutine.channel()\n\
goroutine.spawn(function() ch:send(1) end)\n\
assert(ch:receive() == 1)\n\
goroutine.sleep(5)\n\
log.info('done at ' .. goroutine.now())\n";

/// Fails only when the spawned goroutine runs before main's next step: some seeds, not all.
const RACY: &str = "local x = 0\n\
goroutine.spawn(function() x = 1 end)\n\
goroutine.yield()\n\
assert(x == 0, 'the spawned goroutine ran first')\n\
goroutine.sleep(1)\n";

#[test]
fn a_folder_of_passing_scenarios_exits_0_and_is_searched_recursively_in_order() {
    let dir = folder("recursive");
    write(&dir, "b.lua", PASSING);
    write(&dir, "a.lua", PASSING);
    write(&dir, "nested/deeper/c.lua", PASSING);
    write(&dir, "notes.txt", "not a scenario");
    // Editor definitions written into the project are no scenario.
    let types = gosim(&["types"]);
    write(&dir, "gosim.d.lua", &String::from_utf8_lossy(&types.stdout));
    let out = gosim(&["test", text(&dir), "--runs", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let s = stdout(&out);
    let order: Vec<&str> = s
        .lines()
        .filter(|l| l.starts_with("ok"))
        .map(|l| l.rsplit('/').next().unwrap_or(l))
        .collect();
    assert_eq!(
        order,
        ["a.lua (5 seeds)", "b.lua (5 seeds)", "c.lua (5 seeds)"],
        "{s}"
    );
    assert!(
        s.contains("tested 3 scenarios (5 seeds each): 3 passed, 0 failed, 0 hit a limit"),
        "{s}"
    );
}

#[test]
fn a_failing_scenario_exits_1_with_its_first_failing_seed_and_a_working_reproduce_line() {
    let dir = folder("failing");
    write(&dir, "ok.lua", PASSING);
    let racy = write(&dir, "racy.lua", RACY);
    let out = gosim(&[
        "test",
        text(&dir),
        "--seeds",
        "1..40",
        "--strategy",
        "random",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let s = stdout(&out);
    assert!(s.contains(&format!("FAIL  {}", text(&racy))), "{s}");
    assert!(s.contains("1 passed, 1 failed, 0 hit a limit"), "{s}");
    // The reproduce line names the first failing seed, and running it fails.
    let line = s
        .lines()
        .find_map(|l| l.trim().strip_prefix("reproduce: "))
        .expect("a reproduce line");
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    assert_eq!(args[0], "run");
    let seed: u64 = args[args.iter().position(|a| *a == "--seed").expect("--seed") + 1]
        .parse()
        .expect("a seed");
    assert!(
        s.contains(&format!("first failing seed {seed} ")),
        "the summary's seed is the reproduce line's: {s}"
    );
    let rerun = gosim(&args);
    assert_eq!(rerun.status.code(), Some(1), "{}", both(&rerun));
    // No smaller seed fails: it is the first.
    for smaller in 1..seed {
        let r = gosim(&["run", text(&racy), "--seed", &smaller.to_string()]);
        assert_eq!(r.status.code(), Some(0), "seed {smaller} fails too");
    }
}

#[test]
fn a_limit_exits_3_and_a_failure_outranks_it() {
    let dir = folder("limit");
    let spin = write(&dir, "spin.lua", "while true do goroutine.yield() end\n");
    let out = gosim(&["test", text(&spin), "--runs", "3", "--max-steps", "50"]);
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let s = stdout(&out);
    assert!(s.contains("LIMIT"), "{s}");
    assert!(
        s.contains("--max-steps 50"),
        "the reproduce line keeps the flag: {s}"
    );
    assert!(s.contains("0 passed, 0 failed, 1 hit a limit"), "{s}");
    write(&dir, "boom.lua", "error('boom')\n");
    let out = gosim(&["test", text(&dir), "--runs", "3", "--max-steps", "50"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
}

#[test]
fn expect_fail_passes_when_the_sweep_fails_and_fails_when_it_does_not() {
    let dir = folder("expect-fail");
    let bug = write(
        &dir,
        "bug.lua",
        &format!("{RACY}-- gosim: expect-fail (a demonstrated race)\n"),
    );
    let out = gosim(&["test", text(&bug), "--runs", "40", "--strategy", "random"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let s = stdout(&out);
    assert!(s.contains("expect-fail"), "{s}");
    assert!(s.contains("failed as expected: fail (assertion)"), "{s}");

    let fixed = write(
        &dir,
        "fixed.lua",
        &format!("{PASSING}-- gosim: expect-fail\n"),
    );
    let out = gosim(&["test", text(&fixed), "--runs", "10"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let s = stdout(&out);
    assert!(
        s.contains("marked expect-fail, but no seed of 10 failed (10 passed, 0 hit a limit)"),
        "{s}"
    );
}

/// The default sweep (100 seeds each) over the shipped scenarios: the canaries and demonstrated
/// bugs, marked expect-fail, are found; everything else passes.
#[test]
fn the_repository_scenarios_pass_as_a_suite_canaries_included() {
    let out = gosim(&["test", "scenarios"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let s = stdout(&out);
    for canary in [
        "canary.lua",
        "canary_cycle.lua",
        "canary_leak.lua",
        "pct_bug.lua",
        "sleep_barrier_bug.lua",
    ] {
        assert!(
            s.lines()
                .any(|l| l.contains(&format!("/{canary} (")) && l.contains("expect-fail")),
            "{canary} is marked expect-fail: {s}"
        );
    }
}

#[test]
fn bad_paths_and_flags_are_usage_errors() {
    let out = gosim(&["test", "no/such/folder"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gosim: test: cannot read no/such/folder"),
        "{err}"
    );

    let empty = folder("empty");
    write(&empty, "readme.md", "no scenarios here");
    let out = gosim(&["test", text(&empty)]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no *.lua scenario under"),
        "{}",
        both(&out)
    );

    let out = gosim(&["test", text(&empty), "--runs", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = gosim(&["test", "scenarios/mutex.lua", "--seeds", "9..1"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seeds"));
}

#[test]
fn a_scenario_that_does_not_load_fails_its_test_and_the_suite_goes_on() {
    let dir = folder("syntax");
    write(&dir, "a_broken.lua", "local x = = 1\n");
    write(&dir, "b_fine.lua", PASSING);
    let out = gosim(&["test", text(&dir), "--runs", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let s = stdout(&out);
    assert!(s.contains("does not load"), "{s}");
    assert!(s.contains("1 passed, 1 failed"), "{s}");
}

/// A small well-formedness check of XML: tags nest and close, attributes are quoted, `&` only
/// starts one of the five entities, no raw `<` in text.
fn assert_well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("an XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt]);
        let gt = rest[lt..].find('>').expect("a tag closes") + lt;
        let tag = &rest[lt + 1..gt];
        assert!(!tag.contains('<'), "raw < inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag.split_whitespace().next().expect("a tag name");
            // Attributes: name="value" pairs with no raw quote inside a value.
            let attrs = &tag[name.len()..];
            assert_eq!(
                attrs.matches('"').count() % 2,
                0,
                "unbalanced quotes: {tag}"
            );
            for value in attrs.split('"').skip(1).step_by(2) {
                check_text(value);
            }
            if !self_closing {
                stack.push(name.to_string());
            }
        }
        rest = &rest[gt + 1..];
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed {stack:?}");
}

fn check_text(t: &str) {
    assert!(!t.contains('>') || t.is_empty() || !t.contains('<'));
    for (i, _) in t.match_indices('&') {
        let entity = &t[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| entity.starts_with(e)),
            "a bare & in {t:?}"
        );
    }
    assert!(
        t.chars().all(|c| c >= ' ' || "\t\n\r".contains(c)),
        "a control character in {t:?}"
    );
}

#[test]
fn junit_xml_has_one_testcase_per_scenario_and_failures_carry_seed_and_reproduce_line() {
    let dir = folder("junit");
    write(&dir, "ok.lua", PASSING);
    write(
        &dir,
        "sub/markup.lua",
        "goroutine.sleep(1)\nerror('bad <tag> & \"quotes\" \\1')\n",
    );
    write(
        &dir,
        "canary.lua",
        "error('found it')\n-- gosim: expect-fail\n",
    );
    let xml_path = dir.join("report.xml");
    let out = gosim(&[
        "test",
        text(&dir),
        "--runs",
        "4",
        "--junit",
        text(&xml_path),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let xml = std::fs::read_to_string(&xml_path).expect("the report was written");
    assert_well_formed(&xml);
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert!(
        xml.contains("<testsuite name=\"gosim\" tests=\"3\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    let failure = &xml[xml.find("<failure ").expect("a failure")..];
    let message = failure
        .split("message=\"")
        .nth(1)
        .and_then(|m| m.split('"').next())
        .expect("a message attribute");
    assert!(message.contains("4 of 4 seeds failed"), "{message}");
    assert!(
        message.contains("first failing seed 1 (error at "),
        "{message}"
    );
    assert!(
        message.contains("reproduce: gosim run ") && message.contains("markup.lua --seed 1"),
        "{message}"
    );
    // The error text is escaped, not dropped.
    assert!(
        failure.contains("bad &lt;tag&gt; &amp; &quot;quotes&quot; ?"),
        "{failure}"
    );
    // Each testcase says which file it is.
    assert!(xml.contains("name=\"markup.lua\""), "{xml}");
    assert!(xml.contains("name=\"canary.lua\""), "{xml}");

    // The report depends on the scenarios and seeds only: a second run writes the same file.
    let again = dir.join("again.xml");
    let _ = gosim(&[
        "test",
        text(&dir),
        "--runs",
        "4",
        "--junit",
        text(&again),
        "--jobs",
        "1",
    ]);
    assert_eq!(std::fs::read_to_string(&again).expect("written"), xml);
}

#[test]
fn snapshots_are_written_compared_diffed_and_refreshed() {
    let dir = folder("snapshots");
    let scenario = write(&dir, "flow.lua", PASSING);
    let snap = dir.join("__snapshots__").join("flow.trace");

    // No snapshot yet: nothing is compared or written.
    let out = gosim(&["test", text(&dir), "--runs", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(!snap.exists());

    // --update-snapshots writes the seed-1 trace: what `gosim run FILE --seed 1` prints.
    let out = gosim(&["test", text(&dir), "--runs", "2", "--update-snapshots"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("snapshot written"), "{}", both(&out));
    let stored = std::fs::read_to_string(&snap).expect("the snapshot");
    let run = gosim(&["run", text(&scenario), "--seed", "1"]);
    assert_eq!(stored, stdout(&run));
    assert!(
        stored.contains("5ms g1(main) log.info done at 5"),
        "{stored}"
    );

    // Unchanged: the comparison passes.
    let out = gosim(&["test", text(&dir), "--runs", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("snapshot matches"), "{}", both(&out));

    // A changed trace fails the scenario with a unified diff of old and new lines.
    write(&dir, "flow.lua", &PASSING.replace("sleep(5)", "sleep(7)"));
    let out = gosim(&["test", text(&dir), "--runs", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let s = stdout(&out);
    assert!(s.contains("the seed-1 trace differs from"), "{s}");
    assert!(s.contains("--update-snapshots"), "{s}");
    assert!(s.contains("@@ -"), "{s}");
    assert!(s.contains("    -5ms g1(main) log.info done at 5"), "{s}");
    assert!(s.contains("    +7ms g1(main) log.info done at 7"), "{s}");
    assert!(s.contains("    -0ms g1(main) sleep 5ms"), "{s}");
    assert!(s.contains("    +0ms g1(main) sleep 7ms"), "{s}");
    // Unchanged lines far from the change are not shown.
    let marked = |sign: &str| {
        s.lines()
            .filter(|l| l.starts_with(&format!("    {sign}")))
            .filter(|l| !l.starts_with(&format!("    {sign}{sign}{sign} ")))
            .count()
    };
    assert_eq!(
        (marked("-"), marked("+")),
        (4, 4),
        "only changed lines: {s}"
    );
    assert!(s.contains("    @@ -5,7 +5,7 @@"), "3 lines of context: {s}");

    // Opting out: for the run, or with the marker comment.
    let out = gosim(&["test", text(&dir), "--runs", "2", "--no-snapshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    write(
        &dir,
        "flow.lua",
        &format!(
            "{}-- gosim: no-snapshot\n",
            PASSING.replace("sleep(5)", "sleep(7)")
        ),
    );
    let out = gosim(&["test", text(&dir), "--runs", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // Refreshing accepts the new trace.
    write(&dir, "flow.lua", &PASSING.replace("sleep(5)", "sleep(7)"));
    let out = gosim(&["test", text(&dir), "--runs", "2", "--update-snapshots"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("snapshot updated"), "{}", both(&out));
    let out = gosim(&["test", text(&dir), "--runs", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

#[test]
fn a_snapshot_does_not_depend_on_the_folder_gosim_test_runs_from() {
    // The chunk is named by the file name alone, so an error location in the trace reads the
    // same from any working directory.
    let dir = folder("snapshot-name");
    write(
        &dir,
        "located.lua",
        "local ok, err = pcall(function() error('here') end)\nlog.info(tostring(err))\n",
    );
    let out = gosim(&["test", text(&dir), "--runs", "1", "--update-snapshots"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let stored = std::fs::read_to_string(dir.join("__snapshots__/located.trace")).expect("snap");
    assert!(stored.contains("log.info located.lua:1: here"), "{stored}");
    assert!(!stored.contains(text(&dir)), "{stored}");
}
