//! A sweep's summary as the user sees it (text, or JSON for `--report json`), and `gosim merge`:
//! the JSON summaries of a sweep's shards added up into the whole sweep's. The JSON carries what
//! the reproduce lines need (scenario, flags, strategy), so a merged summary prints the same
//! lines as a one-process sweep; it carries no wall-clock figure, so the merge of the shards'
//! JSON equals the one-process JSON exactly.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gosim::runtime::Strategy;
use gosim::scenario::ExploreSummary;

use super::{EXIT_LIMIT, ReportArg, emit, kind_hint, strategy_flag, usage_error};

/// The largest summary file `merge` reads (a summary holds one line per failure group).
const MAX_SUMMARY_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Args, Debug)]
pub(super) struct MergeArgs {
    /// JSON summaries written by `gosim explore ... --shard K/N --report json`, one per shard.
    #[arg(required = true, value_name = "SUMMARY.json")]
    files: Vec<PathBuf>,
    /// Format of the merged summary.
    #[arg(long, value_enum, default_value_t = ReportArg::Text)]
    report: ReportArg,
}

/// One sweep's summary with what its reproduce lines need.
pub(super) struct Sweep {
    /// The scenario path as given on the command line.
    pub(super) scenario: String,
    /// The non-default limit flags (` --max-steps 10`), repeated in every reproduce line.
    pub(super) flags: String,
    /// The sweep's strategy, resolved (`portfolio:42`, `pct:3:29`, `random`).
    pub(super) strategy: Strategy,
    /// The counts and groups.
    pub(super) summary: ExploreSummary,
}

impl Sweep {
    fn reproduce(&self, verb: &str, seed: u64, member: Strategy) -> String {
        format!(
            "gosim {verb} {} --seed {seed}{}{}",
            self.scenario,
            self.flags,
            strategy_flag(member)
        )
    }

    /// The JSON form: the summary's own fields plus the scenario, flags, strategy, and each
    /// group's reproduce and shrink commands.
    pub(super) fn to_json(&self) -> serde_json::Value {
        let mut v = self.summary.to_json();
        v["scenario"] = self.scenario.clone().into();
        v["flags"] = self.flags.trim().to_string().into();
        v["strategy"] = self.strategy.to_string().into();
        if let Some(groups) = v["groups"].as_array_mut() {
            for (j, g) in groups.iter_mut().zip(&self.summary.groups) {
                j["reproduce"] = self.reproduce("run", g.smallest_seed, g.strategy).into();
                j["shrink"] = self.reproduce("shrink", g.smallest_seed, g.strategy).into();
            }
        }
        v
    }

    fn from_json(v: &serde_json::Value) -> Result<Sweep, String> {
        let text = |key: &str| {
            v.get(key)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("field {key:?} must be a string"))
        };
        let flags = text("flags")?;
        Ok(Sweep {
            scenario: text("scenario")?.to_string(),
            flags: if flags.is_empty() {
                String::new()
            } else {
                format!(" {flags}")
            },
            strategy: text("strategy")?.parse()?,
            summary: ExploreSummary::from_json(v)?,
        })
    }

    /// Everything after the first line of the text summary: the strategy, how each portfolio
    /// member fared, the groups with the members that found them and their reproduce lines.
    /// (Built as a `String`, whose writes cannot fail, and printed at once by `emit`.)
    pub(super) fn details(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let summary = &self.summary;
        let _ = writeln!(out, "strategy: {}", self.strategy);
        if let Strategy::Portfolio(_) = self.strategy {
            // Which members ran and how they fared: what kind of bug each one finds.
            let per: Vec<String> = summary
                .by_strategy
                .iter()
                .map(|(name, c)| {
                    let mut t = format!("{name} {}/{} failed", c.failed, c.runs);
                    if c.limited > 0 {
                        t.push_str(&format!(", {} limit", c.limited));
                    }
                    t
                })
                .collect();
            let _ = writeln!(out, "  by member: {}", per.join("; "));
        }
        if !summary.groups.is_empty() {
            let _ = writeln!(
                out,
                "distinct outcomes other than pass: {}",
                summary.groups.len()
            );
        }
        for g in &summary.groups {
            let loc = g.location.as_deref().unwrap_or("unknown location");
            let _ = writeln!(
                out,
                "  {} ({}) at {}: {} runs, smallest seed {}",
                g.verdict, g.kind, loc, g.count, g.smallest_seed
            );
            let _ = writeln!(out, "    {}", g.message);
            let found: Vec<String> = g
                .found_by
                .iter()
                .map(|(name, n)| format!("{name} ({n})"))
                .collect();
            let _ = writeln!(
                out,
                "    found by: {}{}",
                found.join(", "),
                kind_hint(&g.found_by)
            );
            let _ = writeln!(
                out,
                "    reproduce: {}",
                self.reproduce("run", g.smallest_seed, g.strategy)
            );
            let _ = writeln!(
                out,
                "    shrink:    {}",
                self.reproduce("shrink", g.smallest_seed, g.strategy)
            );
        }
        for s in &summary.never_true {
            let _ = writeln!(out, "  sim.assert_sometimes never true: {s:?}");
        }
        out
    }

    /// 1 if a run failed, else 3 if one hit a limit, else 0.
    pub(super) fn exit_code(&self) -> ExitCode {
        if self.summary.failed() > 0 {
            ExitCode::from(1)
        } else if self.summary.limited() > 0 {
            ExitCode::from(EXIT_LIMIT)
        } else {
            ExitCode::SUCCESS
        }
    }
}

fn read_sweep(path: &PathBuf) -> Result<Sweep, String> {
    let name = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {name}: {e}"))?
        .len();
    if size > MAX_SUMMARY_BYTES {
        return Err(format!(
            "{name} is {size} bytes, more than a summary can be ({MAX_SUMMARY_BYTES})"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {name}: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!("{name} is not a JSON summary (from `gosim explore --report json`): {e}")
    })?;
    Sweep::from_json(&v).map_err(|e| format!("{name}: {e}"))
}

/// `gosim merge`.
pub(super) fn run(a: MergeArgs) -> ExitCode {
    let mut sweeps = Vec::with_capacity(a.files.len());
    for path in &a.files {
        match read_sweep(path) {
            Ok(s) => sweeps.push(s),
            Err(e) => return usage_error(format!("merge: {e}")),
        }
    }
    // Shards of one sweep ran the same scenario, flags and strategy: anything else would add up
    // to a sweep that never existed.
    let first = &sweeps[0];
    for (path, s) in a.files.iter().zip(&sweeps).skip(1) {
        let differs = [
            ("scenario", first.scenario.clone(), s.scenario.clone()),
            ("flags", first.flags.clone(), s.flags.clone()),
            (
                "strategy",
                first.strategy.to_string(),
                s.strategy.to_string(),
            ),
        ]
        .into_iter()
        .find(|(_, x, y)| x != y);
        if let Some((what, x, y)) = differs {
            return usage_error(format!(
                "merge: {} has {what} {:?} but {} has {:?}: not shards of one sweep",
                path.display(),
                y.trim(),
                a.files[0].display(),
                x.trim()
            ));
        }
    }
    let summaries: Vec<ExploreSummary> = sweeps.iter().map(|s| s.summary.clone()).collect();
    let merged = Sweep {
        scenario: first.scenario.clone(),
        flags: first.flags.clone(),
        strategy: first.strategy,
        summary: ExploreSummary::merge(&summaries),
    };
    if a.report == ReportArg::Json {
        emit(&format!("{}\n", merged.to_json()));
    } else {
        let s = &merged.summary;
        emit(&format!(
            "merged {} summaries: {} runs: {} passed, {} failed, {} hit a limit\n{}",
            sweeps.len(),
            s.runs,
            s.passed,
            s.failed(),
            s.limited(),
            merged.details()
        ));
    }
    merged.exit_code()
}
