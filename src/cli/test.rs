//! `gosim test`: a folder of scenarios as a test suite. Every `*.lua` under the given paths runs
//! over a seed sweep (explore's machinery, its portfolio default included) and, unless it opts
//! out, its seed-1 trace is compared with a stored snapshot (`__snapshots__/NAME.trace` next to
//! it). Prints a summary with reproduce lines, optionally writes JUnit XML for CI dashboards.
//!
//! Two marker comments steer a scenario (read before the run, so they add no event): a line
//! starting `-- gosim: expect-fail` (the scenario demonstrates a bug: the test passes when the
//! sweep finds a failure) and `-- gosim: no-snapshot` (never compare or write its trace).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use gosim::runtime::{Portfolio, Strategy, TraceFormat, render};
use gosim::scenario::{self, ExploreOptions, ExploreSummary, Group};

use super::{
    EXIT_LIMIT, LimitArgs, emit, jobs, parse_seed_range, progress_bar, strategy_flag, usage_error,
};

/// Seeds each scenario runs when neither `--seeds` nor `--runs` is given: a small sweep, so
/// that a suite of dozens of scenarios stays a quick CI step.
const DEFAULT_RUNS: u64 = 100;

/// The marker of a scenario that must fail (a canary, a demonstrated bug).
pub(super) const EXPECT_FAIL_MARKER: &str = "-- gosim: expect-fail";
/// The marker of a scenario whose trace is never snapshotted.
pub(super) const NO_SNAPSHOT_MARKER: &str = "-- gosim: no-snapshot";
/// The folder, next to a scenario, that holds its trace snapshot.
const SNAPSHOT_DIR: &str = "__snapshots__";
/// The seed of the snapshot run (plain `run` semantics: strategy random).
const SNAPSHOT_SEED: u64 = 1;
/// Lines of context around each change in a snapshot diff.
const DIFF_CONTEXT: usize = 3;
/// The largest table (old lines × new lines, after the common ends are trimmed) the diff's LCS
/// may build; a larger change prints as one replaced block.
const MAX_DIFF_CELLS: usize = 4_000_000;

#[derive(Args, Debug)]
pub(super) struct TestArgs {
    /// Scenario files or folders (searched recursively for `*.lua`, in sorted order).
    #[arg(value_name = "PATHS", default_value = ".")]
    paths: Vec<PathBuf>,
    /// A seed range, inclusive, run for every scenario: `1..500`.
    #[arg(long, value_name = "A..B", conflicts_with = "runs")]
    seeds: Option<String>,
    /// Run seeds 1..=N for every scenario (default 100).
    #[arg(long, value_name = "N")]
    runs: Option<u64>,
    /// Worker threads, 1 to 1024 (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = jobs)]
    jobs: Option<usize>,
    /// Write a JUnit XML report (one testcase per scenario) to FILE, for CI dashboards.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write or refresh every scenario's trace snapshot (`__snapshots__/NAME.trace`) instead of
    /// comparing with it.
    #[arg(long, conflicts_with = "no_snapshot")]
    update_snapshots: bool,
    /// Neither compare nor write trace snapshots.
    #[arg(long)]
    no_snapshot: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// How one scenario's test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    Limit,
}

/// One scenario's result, for the summary and the JUnit report.
#[derive(Debug)]
struct Case {
    /// The path as found (the reproduce lines name it).
    path: String,
    verdict: Verdict,
    /// Seeds run.
    runs: usize,
    /// One line: what went wrong (empty on a pass).
    message: String,
    /// The details: group lines, reproduce lines, a snapshot diff.
    details: String,
    /// Whether the scenario is marked expect-fail.
    expect_fail: bool,
    /// A note on the snapshot (`written`, `matches`, ...), empty when none was involved.
    snapshot: &'static str,
}

/// `gosim test`.
pub(super) fn run(a: TestArgs) -> ExitCode {
    let files = match collect(&a.paths) {
        Ok(f) => f,
        Err(e) => return usage_error(format!("test: {e}")),
    };
    let seeds = match (&a.seeds, a.runs) {
        (Some(r), _) => match parse_seed_range(r) {
            Ok(s) => s,
            Err(e) => return usage_error(format!("test: --seeds: {e}")),
        },
        (None, Some(0)) => return usage_error("test: --runs must be at least 1"),
        (None, Some(n)) => (1..=n).collect(),
        (None, None) => (1..=DEFAULT_RUNS).collect(),
    };
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let per_file = seeds.len() as u64;
    let bar = progress_bar(per_file.saturating_mul(files.len() as u64));
    let mut cases = Vec::with_capacity(files.len());
    for (i, path) in files.iter().enumerate() {
        let offset = per_file * i as u64;
        let case = test_one(&a, path, &seeds, jobs, &mut |done| {
            if let Some(b) = &bar {
                b.set_position(offset + done as u64);
            }
        });
        if let Some(b) = &bar {
            b.set_position(offset + per_file);
        }
        cases.push(case);
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    emit(&summary_text(&cases, seeds.len()));
    if let Some(path) = &a.junit
        && let Err(e) = std::fs::write(path, junit_xml(&cases))
    {
        return usage_error(format!("test: cannot write {}: {e}", path.display()));
    }
    if cases.iter().any(|c| c.verdict == Verdict::Fail) {
        ExitCode::from(1)
    } else if cases.iter().any(|c| c.verdict == Verdict::Limit) {
        ExitCode::from(EXIT_LIMIT)
    } else {
        ExitCode::SUCCESS
    }
}

/// Every `*.lua` file under `paths` (a file is taken as given, a folder searched recursively),
/// sorted and without duplicates. A path that does not exist, or a search that finds nothing,
/// is a usage error.
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        if meta.is_dir() {
            let before = out.len();
            walk(p, &mut out)?;
            if out.len() == before {
                return Err(format!("no *.lua scenario under {}", p.display()));
            }
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut children = Vec::new();
    for e in entries {
        let e = e.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        children.push(e.path());
    }
    // Sorted here too, so that a search's order never depends on the file system's.
    children.sort();
    for c in children {
        let name = c.file_name().map(|n| n.to_string_lossy().to_string());
        let Some(name) = name else { continue };
        // Hidden folders (.git) and build output hold no scenarios.
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if c.is_dir() {
            walk(&c, out)?;
        } else if name.ends_with(".lua") && !is_definitions_file(&c) {
            out.push(c);
        }
    }
    Ok(())
}

/// Whether `path` is a LuaLS/EmmyLua definitions file (its first line is `---@meta`), such as the
/// one `gosim types > gosim.d.lua` writes into a project: a folder search skips it, since it
/// declares an API and is no scenario.
fn is_definitions_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"---@meta")
}

/// Whether a line of `source` starts with `marker` (leading blanks allowed).
fn has_marker(source: &str, marker: &str) -> bool {
    source.lines().any(|l| l.trim_start().starts_with(marker))
}

fn test_one(
    a: &TestArgs,
    path: &Path,
    seeds: &[u64],
    jobs: usize,
    progress: &mut dyn FnMut(usize),
) -> Case {
    let name = path.display().to_string();
    let mut case = Case {
        path: name.clone(),
        verdict: Verdict::Pass,
        runs: 0,
        message: String::new(),
        details: String::new(),
        expect_fail: false,
        snapshot: "",
    };
    let source = match scenario::read_scenario_capped(path, a.limits.max_input_bytes()) {
        Ok(s) => s,
        Err(e) => {
            case.verdict = Verdict::Fail;
            case.message = format!("does not load: {e}");
            return case;
        }
    };
    case.expect_fail = has_marker(&source, EXPECT_FAIL_MARKER);

    // The sweep, exactly as `gosim explore` runs it.
    let mut run = a.limits.options(seeds[0], false);
    if a.limits.strategy.is_none() {
        run.config.strategy = Strategy::Portfolio(Portfolio::default());
    }
    let strategy = match scenario::resolve_strategy(&name, &source, &run) {
        Ok(s) => s,
        Err(e) => {
            case.verdict = Verdict::Fail;
            case.message = format!("does not load: {e}");
            return case;
        }
    };
    run.config.strategy = strategy;
    let options = ExploreOptions {
        seeds: seeds.to_vec(),
        jobs,
        run,
    };
    let summary = match scenario::explore(&name, &source, &options, &mut |done, _| progress(done)) {
        Ok(s) => s,
        Err(e) => {
            case.verdict = Verdict::Fail;
            case.message = format!("does not load: {e}");
            return case;
        }
    };
    case.runs = summary.runs;
    let flags = a.limits.non_default_flags();
    judge_sweep(&mut case, &summary, &flags);

    if !a.no_snapshot && !has_marker(&source, NO_SNAPSHOT_MARKER) {
        snapshot(a, path, &source, &mut case);
    }
    case
}

/// The reproduce line of one group's smallest seed, as `explore` prints it.
fn reproduce(path: &str, g: &Group, flags: &str) -> String {
    format!(
        "gosim run {path} --seed {}{flags}{}",
        g.smallest_seed,
        strategy_flag(g.strategy)
    )
}

/// Sets the case's verdict from the sweep: a plain scenario passes when every seed passed; an
/// expect-fail scenario passes when some seed failed.
fn judge_sweep(case: &mut Case, summary: &ExploreSummary, flags: &str) {
    let first = |verdict: &str| {
        summary
            .groups
            .iter()
            .filter(|g| g.verdict == verdict)
            .min_by_key(|g| g.smallest_seed)
    };
    let mut details = String::new();
    for g in &summary.groups {
        let loc = g.location.as_deref().unwrap_or("unknown location");
        let _ = writeln!(
            details,
            "  {} ({}) at {}: {} of {} seeds, first seed {}\n    {}\n    reproduce: {}",
            g.verdict,
            g.kind,
            loc,
            g.count,
            summary.runs,
            g.smallest_seed,
            g.message,
            reproduce(&case.path, g, flags)
        );
    }
    if case.expect_fail {
        match first("fail") {
            Some(g) => {
                // The expected failure: say which, briefly, so a changed bug is visible.
                case.message = format!(
                    "failed as expected: {} ({}), first seed {}",
                    g.verdict, g.kind, g.smallest_seed
                );
            }
            None => {
                case.verdict = Verdict::Fail;
                case.message = format!(
                    "marked expect-fail, but no seed of {} failed ({} passed, {} hit a limit)",
                    summary.runs,
                    summary.passed,
                    summary.limited()
                );
                case.details = details;
            }
        }
        return;
    }
    if let Some(g) = first("fail") {
        case.verdict = Verdict::Fail;
        case.message = format!(
            "{} of {} seeds failed; first failing seed {} ({} at {}); reproduce: {}",
            summary.failed(),
            summary.runs,
            g.smallest_seed,
            g.kind,
            g.location.as_deref().unwrap_or("unknown location"),
            reproduce(&case.path, g, flags)
        );
    } else if let Some(g) = first("limit") {
        case.verdict = Verdict::Limit;
        case.message = format!(
            "{} of {} seeds hit a limit; first seed {} ({} at {}); reproduce: {}",
            summary.limited(),
            summary.runs,
            g.smallest_seed,
            g.kind,
            g.location.as_deref().unwrap_or("unknown location"),
            reproduce(&case.path, g, flags)
        );
    }
    case.details = details;
}

/// The snapshot file of a scenario: `__snapshots__/STEM.trace` in its folder.
fn snapshot_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    path.parent()
        .unwrap_or(Path::new(""))
        .join(SNAPSHOT_DIR)
        .join(format!("{stem}.trace"))
}

/// The snapshot text: what `gosim run FILE --seed 1` prints on standard output (strategy
/// random, default limits but the user's), with the chunk named by the file name alone, so that
/// the snapshot does not depend on the folder `gosim test` was started from.
fn snapshot_text(a: &TestArgs, path: &Path, source: &str) -> Result<String, String> {
    let chunk = path
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut options = a.limits.options(SNAPSHOT_SEED, true);
    options.config.strategy = Strategy::Random;
    let report = scenario::run_source(&chunk, source, &options).map_err(|e| e.to_string())?;
    Ok(render(&report.events, TraceFormat::Text))
}

fn snapshot(a: &TestArgs, path: &Path, source: &str, case: &mut Case) {
    let file = snapshot_path(path);
    let exists = file.is_file();
    if !exists && !a.update_snapshots {
        return;
    }
    let now = match snapshot_text(a, path, source) {
        Ok(t) => t,
        Err(e) => {
            case.verdict = Verdict::Fail;
            case.message = format!("snapshot run does not load: {e}");
            return;
        }
    };
    let old = if exists {
        match std::fs::read_to_string(&file) {
            Ok(t) => Some(t),
            Err(e) => {
                case.verdict = Verdict::Fail;
                case.message = format!("cannot read snapshot {}: {e}", file.display());
                return;
            }
        }
    } else {
        None
    };
    if a.update_snapshots {
        if old.as_deref() == Some(now.as_str()) {
            case.snapshot = "snapshot unchanged";
            return;
        }
        let written = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&file, &now));
        match written {
            Ok(()) => {
                case.snapshot = if old.is_some() {
                    "snapshot updated"
                } else {
                    "snapshot written"
                }
            }
            Err(e) => {
                case.verdict = Verdict::Fail;
                case.message = format!("cannot write snapshot {}: {e}", file.display());
            }
        }
        return;
    }
    let old = old.unwrap_or_default();
    if old == now {
        case.snapshot = "snapshot matches";
        return;
    }
    case.snapshot = "snapshot differs";
    let diff = unified_diff(
        &old,
        &now,
        &file.display().to_string(),
        &format!("{} (seed {SNAPSHOT_SEED} now)", case.path),
    );
    let what = format!(
        "the seed-{SNAPSHOT_SEED} trace differs from {} (run with --update-snapshots to accept it)",
        file.display()
    );
    if case.verdict == Verdict::Pass {
        case.verdict = Verdict::Fail;
        case.message = what;
    } else {
        let _ = writeln!(case.details, "  {what}");
    }
    case.details.push_str(&diff);
}

/// One line of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Same,
    Old,
    New,
}

/// The edit script from `a` to `b`: common ends trimmed, then a longest common subsequence over
/// the middle (a table of `MAX_DIFF_CELLS` at most; beyond that the middle is one replacement).
fn edits<'t>(a: &[&'t str], b: &[&'t str]) -> Vec<(Edit, &'t str)> {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut out: Vec<(Edit, &str)> = a[..pre].iter().map(|l| (Edit::Same, *l)).collect();
    let (n, m) = (ma.len(), mb.len());
    if n.saturating_mul(m) > MAX_DIFF_CELLS || n == 0 || m == 0 {
        out.extend(ma.iter().map(|l| (Edit::Old, *l)));
        out.extend(mb.iter().map(|l| (Edit::New, *l)));
    } else {
        // lcs[i][j]: the LCS length of ma[i..] and mb[j..].
        let w = m + 1;
        let mut lcs = vec![0u32; (n + 1) * w];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * w + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n && j < m {
            if ma[i] == mb[j] {
                out.push((Edit::Same, ma[i]));
                i += 1;
                j += 1;
            } else if lcs[(i + 1) * w + j] >= lcs[i * w + j + 1] {
                out.push((Edit::Old, ma[i]));
                i += 1;
            } else {
                out.push((Edit::New, mb[j]));
                j += 1;
            }
        }
        out.extend(ma[i..].iter().map(|l| (Edit::Old, *l)));
        out.extend(mb[j..].iter().map(|l| (Edit::New, *l)));
    }
    out.extend(a[a.len() - suf..].iter().map(|l| (Edit::Same, *l)));
    out
}

/// A unified diff of two texts (`-` old, `+` new lines, `DIFF_CONTEXT` lines around each
/// change), indented for the summary. Empty when the texts have the same lines.
fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let script = edits(&a, &b);
    let changed: Vec<usize> = (0..script.len())
        .filter(|&k| script[k].0 != Edit::Same)
        .collect();
    if changed.is_empty() {
        return String::new();
    }
    let mut out = format!("    --- {old_name}\n    +++ {new_name}\n");
    // Hunks: runs of changes whose context windows touch.
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(DIFF_CONTEXT);
        let mut end = (changed[k] + DIFF_CONTEXT + 1).min(script.len());
        k += 1;
        while k < changed.len() && changed[k].saturating_sub(DIFF_CONTEXT) <= end {
            end = (changed[k] + DIFF_CONTEXT + 1).min(script.len());
            k += 1;
        }
        // Line numbers (1-based) where the hunk starts in each text.
        let before = &script[..start];
        let old_start = before.iter().filter(|e| e.0 != Edit::New).count() + 1;
        let new_start = before.iter().filter(|e| e.0 != Edit::Old).count() + 1;
        let hunk = &script[start..end];
        let old_len = hunk.iter().filter(|e| e.0 != Edit::New).count();
        let new_len = hunk.iter().filter(|e| e.0 != Edit::Old).count();
        let _ = writeln!(
            out,
            "    @@ -{old_start},{old_len} +{new_start},{new_len} @@"
        );
        for (e, line) in hunk {
            let sign = match e {
                Edit::Same => ' ',
                Edit::Old => '-',
                Edit::New => '+',
            };
            let _ = writeln!(out, "    {sign}{line}");
        }
    }
    out
}

fn summary_text(cases: &[Case], seeds: usize) -> String {
    let mut out = String::new();
    for c in cases {
        let word = match c.verdict {
            Verdict::Pass => "ok",
            Verdict::Fail => "FAIL",
            Verdict::Limit => "LIMIT",
        };
        let mut notes: Vec<String> = Vec::new();
        if c.runs > 0 {
            notes.push(format!("{} seeds", c.runs));
        }
        if c.expect_fail {
            notes.push("expect-fail".to_string());
        }
        if !c.snapshot.is_empty() {
            notes.push(c.snapshot.to_string());
        }
        if notes.is_empty() {
            let _ = writeln!(out, "{word:5} {}", c.path);
        } else {
            let _ = writeln!(out, "{word:5} {} ({})", c.path, notes.join(", "));
        }
        if !c.message.is_empty() && (c.verdict != Verdict::Pass || c.expect_fail) {
            let _ = writeln!(out, "  {}", c.message);
        }
        if c.verdict != Verdict::Pass {
            out.push_str(&c.details);
        }
    }
    let count = |v: Verdict| cases.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        out,
        "\ntested {} scenarios ({} seeds each): {} passed, {} failed, {} hit a limit",
        cases.len(),
        seeds,
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Limit)
    );
    out
}

/// Text escaped for an XML attribute or element: the five special characters, and control
/// characters XML 1.0 cannot carry (as `?`; tab, newline and carriage return stay).
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report: one `testsuite` named `gosim`, one `testcase` per scenario (classname
/// its folder, name its file), a `failure` (outcome, seed, reproduce line) for a failed one and
/// an `error` of type `limit` for one that hit a limit. No timings: the report is a function of
/// the scenarios and seeds, so two runs write the same file.
fn junit_xml(cases: &[Case]) -> String {
    let count = |v: Verdict| cases.iter().filter(|c| c.verdict == v).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"gosim test\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
        cases.len(),
        count(Verdict::Fail),
        count(Verdict::Limit)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"gosim\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\">",
        cases.len(),
        count(Verdict::Fail),
        count(Verdict::Limit)
    );
    for c in cases {
        let p = Path::new(&c.path);
        let class = p
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let file = p
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_else(|| c.path.clone());
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\"",
            xml_escape(&class),
            xml_escape(&file),
            xml_escape(&c.path)
        );
        let tag = match c.verdict {
            Verdict::Pass => {
                out.push_str("/>\n");
                continue;
            }
            Verdict::Fail => "failure",
            Verdict::Limit => "error",
        };
        let kind = if c.verdict == Verdict::Fail {
            "fail"
        } else {
            "limit"
        };
        let _ = writeln!(
            out,
            ">\n      <{tag} type=\"{kind}\" message=\"{}\">{}</{tag}>\n    </testcase>",
            xml_escape(&c.message),
            xml_escape(&format!("{}\n{}", c.message, c.details))
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(script: &[(Edit, &str)]) -> (Vec<String>, Vec<String>) {
        let old = script
            .iter()
            .filter(|e| e.0 != Edit::New)
            .map(|e| e.1.to_string())
            .collect();
        let new = script
            .iter()
            .filter(|e| e.0 != Edit::Old)
            .map(|e| e.1.to_string())
            .collect();
        (old, new)
    }

    #[test]
    fn the_edit_script_rebuilds_both_texts_and_is_minimal() {
        // Every pair of short texts over a small alphabet: the script's old side is `a`, its new
        // side is `b`, and it keeps exactly an LCS's worth of lines.
        let words = ["x", "y", "z"];
        let texts: Vec<Vec<&str>> = (0..3usize.pow(4))
            .flat_map(|code| {
                (0..=4).map(move |len| {
                    (0..len)
                        .map(|i| words[(code / 3usize.pow(i as u32)) % 3])
                        .collect::<Vec<&str>>()
                })
            })
            .collect();
        fn lcs_len(a: &[&str], b: &[&str]) -> usize {
            if a.is_empty() || b.is_empty() {
                0
            } else if a[0] == b[0] {
                1 + lcs_len(&a[1..], &b[1..])
            } else {
                lcs_len(&a[1..], b).max(lcs_len(a, &b[1..]))
            }
        }
        for a in texts.iter().step_by(7) {
            for b in texts.iter().step_by(5) {
                let s = edits(a, b);
                let (old, new) = apply(&s);
                assert_eq!(old, *a);
                assert_eq!(new, *b);
                let same = s.iter().filter(|e| e.0 == Edit::Same).count();
                assert_eq!(same, lcs_len(a, b), "{a:?} -> {b:?}: {s:?}");
            }
        }
    }

    #[test]
    fn a_unified_diff_shows_the_changed_lines_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let d = unified_diff(old, new, "old", "new");
        assert!(d.contains("@@ -2,7 +2,7 @@"), "{d}");
        assert!(d.contains("    -e\n    +E\n"), "{d}");
        assert!(!d.contains(" a\n"), "context is 3 lines: {d}");
        assert_eq!(unified_diff(old, old, "old", "new"), "");
    }

    #[test]
    fn xml_escaping_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("<a href=\"x\">&'\u{1}\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;?\n"
        );
    }
}
