//! Running one test under many seeds, in parallel: each worker thread owns its own runner (made
//! by a per-worker factory, so a runner may keep state that never crosses threads, such as a Lua
//! state), seeds are handed out from a shared counter, and the summary is built from results
//! sorted by seed, so it does not depend on thread timing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::RunResult;
use crate::runtime::{Config, Outcome, Strategy};

/// How one seed ended, reduced to what the summary needs.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{ExploreOptions, RunOptions, explore};
///
/// let opts = ExploreOptions { seeds: vec![1, 2], jobs: 1, run: RunOptions::default() };
/// let summary = explore("x.lua", "error('boom')", &opts, &mut |_, _| {}).expect("compiles");
/// let group = &summary.groups[0]; // the seeds' outcomes, grouped by failure
/// assert_eq!((group.count, group.smallest_seed, group.verdict), (2, 1, "fail"));
/// assert!(group.message.contains("boom"));
/// ```
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// The strategy it ran under (a portfolio's member for this seed).
    pub strategy: Strategy,
    /// `pass`, `fail` or `limit`.
    pub verdict: &'static str,
    /// The failure or limit kind (`deadlock`, `step limit`, ...).
    pub kind: String,
    /// Where (`file:line`), when known.
    pub location: Option<String>,
    /// The first line of the report.
    pub message: String,
    /// Sometimes-assertions seen and whether each was true.
    pub sometimes: BTreeMap<String, bool>,
}

/// Failures (or limits) of one kind at one location.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{ExploreOptions, RunOptions, explore};
///
/// let opts = ExploreOptions { seeds: (1..=3).collect(), jobs: 1, run: RunOptions::default() };
/// let src = "local ch = goroutine.channel() ch:receive()";
/// let summary = explore("dl.lua", src, &opts, &mut |_, _| {}).expect("compiles");
/// assert_eq!(summary.groups.len(), 1); // every seed fails the same way
/// assert_eq!(summary.groups[0].kind, "deadlock");
/// assert_eq!(summary.failed(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct Group {
    /// `fail` or `limit`.
    pub verdict: &'static str,
    /// The kind.
    pub kind: String,
    /// The location, if known.
    pub location: Option<String>,
    /// How many seeds ended this way.
    pub count: usize,
    /// The smallest such seed (the one to replay).
    pub smallest_seed: u64,
    /// Its report's first line.
    pub message: String,
    /// The strategy of the smallest seed (what its reproduce line must name).
    pub strategy: Strategy,
    /// How many of the group's runs each strategy found (keyed by the strategy's text), so a
    /// user learns what kind of bug it is: one only `cost` or `jitter` runs find is a timing bug.
    pub found_by: BTreeMap<String, usize>,
}

/// Runs of one strategy in a sweep.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{ExploreOptions, RunOptions, explore};
///
/// let opts = ExploreOptions { seeds: (1..=4).collect(), jobs: 1, run: RunOptions::default() };
/// let summary = explore("ok.lua", "goroutine.sleep(1)", &opts, &mut |_, _| {}).expect("compiles");
/// let counts: Vec<_> = summary.by_strategy.values().collect();
/// assert_eq!(counts.len(), 1); // one strategy ran every seed
/// assert_eq!((counts[0].runs, counts[0].failed), (4, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrategyCount {
    /// Runs under it.
    pub runs: usize,
    /// Those that failed.
    pub failed: usize,
    /// Those that hit a limit.
    pub limited: usize,
}

/// The result of an exploration.
///
/// # Examples
///
/// ```
/// use gosim::explore::ExploreSummary;
/// use gosim::scenario::{ExploreOptions, RunOptions, explore};
///
/// let opts = ExploreOptions { seeds: (1..=5).collect(), jobs: 2, run: RunOptions::default() };
/// let summary = explore("ok.lua", "goroutine.sleep(1)", &opts, &mut |_, _| {}).expect("compiles");
/// assert_eq!((summary.runs, summary.passed, summary.failed()), (5, 5, 0));
/// let back = ExploreSummary::from_json(&summary.to_json()).expect("round trip");
/// assert_eq!(back.runs, 5);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ExploreSummary {
    /// Runs done.
    pub runs: usize,
    /// Runs that passed.
    pub passed: usize,
    /// Failure and limit groups, most frequent first (ties by smallest seed).
    pub groups: Vec<Group>,
    /// `sim.assert_sometimes` messages never true in any run.
    pub never_true: Vec<String>,
    /// Every `sim.assert_sometimes` message seen, and whether it was ever true (what `merge`
    /// needs: a message never true in one shard may be true in another).
    pub sometimes: BTreeMap<String, bool>,
    /// Runs, failures and limits per strategy (keyed by the strategy's text, in text order).
    pub by_strategy: BTreeMap<String, StrategyCount>,
}

impl ExploreSummary {
    /// Adds up the summaries of disjoint parts of one sweep (shards): the result equals the
    /// summary of the whole sweep run in one process (counts add, each group keeps its smallest
    /// seed with that seed's message and strategy, sometimes-assertions are true if true in any).
    pub fn merge(parts: &[ExploreSummary]) -> ExploreSummary {
        let mut groups: BTreeMap<(&'static str, String, Option<String>), Group> = BTreeMap::new();
        let mut out = ExploreSummary::default();
        for part in parts {
            out.runs += part.runs;
            out.passed += part.passed;
            for (k, v) in &part.sometimes {
                *out.sometimes.entry(k.clone()).or_insert(false) |= *v;
            }
            for (k, c) in &part.by_strategy {
                let t = out.by_strategy.entry(k.clone()).or_default();
                t.runs += c.runs;
                t.failed += c.failed;
                t.limited += c.limited;
            }
            for g in &part.groups {
                let key = (g.verdict, g.kind.clone(), g.location.clone());
                match groups.get_mut(&key) {
                    None => {
                        groups.insert(key, g.clone());
                    }
                    Some(m) => {
                        m.count += g.count;
                        for (k, n) in &g.found_by {
                            *m.found_by.entry(k.clone()).or_insert(0) += n;
                        }
                        if g.smallest_seed < m.smallest_seed {
                            m.smallest_seed = g.smallest_seed;
                            m.message = g.message.clone();
                            m.strategy = g.strategy;
                        }
                    }
                }
            }
        }
        out.groups = sorted_groups(groups);
        out.never_true = never_true(&out.sometimes);
        out
    }

    /// The summary as JSON: integer counts, groups, per-strategy counts, sometimes-assertions.
    /// Nothing in it depends on the machine or the wall clock, so the merge of shards' JSON
    /// equals the whole sweep's.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let groups: Vec<serde_json::Value> = self
            .groups
            .iter()
            .map(|g| {
                json!({
                    "verdict": g.verdict,
                    "kind": g.kind,
                    "location": g.location,
                    "count": g.count,
                    "smallest_seed": g.smallest_seed,
                    "message": g.message,
                    "strategy": g.strategy.to_string(),
                    "found_by": g.found_by,
                })
            })
            .collect();
        let by_strategy: serde_json::Map<String, serde_json::Value> = self
            .by_strategy
            .iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    json!({ "runs": c.runs, "failed": c.failed, "limited": c.limited }),
                )
            })
            .collect();
        json!({
            "runs": self.runs,
            "passed": self.passed,
            "failed": self.failed(),
            "limited": self.limited(),
            "by_strategy": by_strategy,
            "groups": groups,
            "sometimes": self.sometimes,
            "never_true": self.never_true,
        })
    }

    /// Reads `to_json`'s form back; the error names the field that is missing or wrong.
    pub fn from_json(v: &serde_json::Value) -> Result<ExploreSummary, String> {
        use serde_json::Value;
        fn count(v: &Value, key: &str) -> Result<usize, String> {
            v.get(key)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("field {key:?} must be a non-negative integer"))
        }
        fn text(v: &Value, key: &str) -> Result<String, String> {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("field {key:?} must be a string"))
        }
        fn object<'a>(
            v: &'a Value,
            key: &str,
        ) -> Result<&'a serde_json::Map<String, Value>, String> {
            v.get(key)
                .and_then(Value::as_object)
                .ok_or_else(|| format!("field {key:?} must be an object"))
        }
        let mut out = ExploreSummary {
            runs: count(v, "runs")?,
            passed: count(v, "passed")?,
            ..ExploreSummary::default()
        };
        for (k, c) in object(v, "by_strategy")? {
            let n = |f: &str| count(c, f).map_err(|e| format!("by_strategy {k:?}: {e}"));
            out.by_strategy.insert(
                k.clone(),
                StrategyCount {
                    runs: n("runs")?,
                    failed: n("failed")?,
                    limited: n("limited")?,
                },
            );
        }
        for (k, b) in object(v, "sometimes")? {
            let b = b
                .as_bool()
                .ok_or_else(|| format!("sometimes {k:?} must be true or false"))?;
            out.sometimes.insert(k.clone(), b);
        }
        let groups = v
            .get("groups")
            .and_then(Value::as_array)
            .ok_or("field \"groups\" must be an array")?;
        for (i, g) in groups.iter().enumerate() {
            let bad = |e: String| format!("group {}: {e}", i + 1);
            let verdict = match text(g, "verdict").map_err(bad)?.as_str() {
                "fail" => "fail",
                "limit" => "limit",
                other => return Err(bad(format!("verdict {other:?} (fail or limit)"))),
            };
            let location = match g.get("location") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(bad("field \"location\" must be a string or null".into())),
            };
            let strategy = text(g, "strategy")
                .map_err(bad)?
                .parse::<Strategy>()
                .map_err(bad)?;
            let mut found_by = BTreeMap::new();
            for (k, n) in object(g, "found_by").map_err(bad)? {
                let n = n
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| bad(format!("found_by {k:?} must be an integer")))?;
                found_by.insert(k.clone(), n);
            }
            out.groups.push(Group {
                verdict,
                kind: text(g, "kind").map_err(bad)?,
                location,
                count: count(g, "count").map_err(bad)?,
                smallest_seed: g
                    .get("smallest_seed")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("field \"smallest_seed\" must be an integer".into()))?,
                message: text(g, "message").map_err(bad)?,
                strategy,
                found_by,
            });
        }
        out.never_true = never_true(&out.sometimes);
        if out.passed + out.failed() + out.limited() != out.runs {
            return Err(format!(
                "the counts do not add up: {} passed + {} failed + {} limited != {} runs",
                out.passed,
                out.failed(),
                out.limited(),
                out.runs
            ));
        }
        Ok(out)
    }

    /// Runs that failed (not counting limits).
    pub fn failed(&self) -> usize {
        self.groups
            .iter()
            .filter(|g| g.verdict == "fail")
            .map(|g| g.count)
            .sum()
    }

    /// Runs that hit a limit.
    pub fn limited(&self) -> usize {
        self.groups
            .iter()
            .filter(|g| g.verdict == "limit")
            .map(|g| g.count)
            .sum()
    }
}

/// Reduces one run's result to what the summary needs.
pub fn reduce(seed: u64, strategy: Strategy, result: RunResult) -> SeedOutcome {
    let (verdict, kind, location, message) = match &result.outcome {
        Outcome::Pass => ("pass", String::new(), None, String::new()),
        Outcome::Fail(f) => (
            "fail",
            f.kind.word().to_string(),
            f.location.clone(),
            f.message.lines().next().unwrap_or("").to_string(),
        ),
        Outcome::Limit(l) => (
            "limit",
            l.kind.word().to_string(),
            l.location.clone(),
            l.message.clone(),
        ),
    };
    SeedOutcome {
        seed,
        strategy,
        verdict,
        kind,
        location,
        message,
        sometimes: result.sometimes,
    }
}

/// Runs every seed of `seeds` under `config` (its seed replaced, tracing off) on `jobs` worker
/// threads, calling `progress(done, total)` as runs finish. Each worker calls `factory` once and
/// runs its seeds with the runner it returns, so a runner's state stays on its thread. The first
/// error a runner returns ends the sweep with that error.
pub fn sweep<E, F, R>(
    seeds: &[u64],
    jobs: usize,
    config: &Config,
    factory: F,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ExploreSummary, E>
where
    E: std::marker::Send,
    F: Fn() -> R + Sync,
    R: FnMut(&Config) -> Result<RunResult, E>,
{
    let total = seeds.len();
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Result<SeedOutcome, E>>();
    let jobs = jobs.max(1).min(total.max(1));
    let (next, factory) = (&next, &factory);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            scope.spawn(move || {
                let mut run = factory();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    let mut cfg = config.clone();
                    cfg.seed = seed;
                    cfg.trace = false;
                    let strategy = cfg.strategy.for_seed(seed);
                    let r = run(&cfg).map(|rep| reduce(seed, strategy, rep));
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut results = Vec::with_capacity(total);
        for r in rx {
            match r {
                Ok(r) => results.push(r),
                Err(e) => {
                    // Stop the other workers at their next seed, then report the error.
                    next.store(usize::MAX / 2, Ordering::Relaxed);
                    return Err(e);
                }
            }
            progress(results.len(), total);
        }
        results.sort_by_key(|r| r.seed);
        Ok(summarize(&results))
    })
}

/// Groups per-seed outcomes (sorted by seed) into a summary.
pub fn summarize(results: &[SeedOutcome]) -> ExploreSummary {
    let mut groups: BTreeMap<(&'static str, String, Option<String>), Group> = BTreeMap::new();
    let mut sometimes: BTreeMap<String, bool> = BTreeMap::new();
    let mut by_strategy: BTreeMap<String, StrategyCount> = BTreeMap::new();
    let mut passed = 0;
    for r in results {
        for (k, v) in &r.sometimes {
            *sometimes.entry(k.clone()).or_insert(false) |= *v;
        }
        let count = by_strategy.entry(r.strategy.to_string()).or_default();
        count.runs += 1;
        match r.verdict {
            "fail" => count.failed += 1,
            "limit" => count.limited += 1,
            _ => {}
        }
        if r.verdict == "pass" {
            passed += 1;
            continue;
        }
        let g = groups
            .entry((r.verdict, r.kind.clone(), r.location.clone()))
            .or_insert_with(|| Group {
                verdict: r.verdict,
                kind: r.kind.clone(),
                location: r.location.clone(),
                count: 0,
                smallest_seed: r.seed,
                message: r.message.clone(),
                strategy: r.strategy,
                found_by: BTreeMap::new(),
            });
        g.count += 1;
        *g.found_by.entry(r.strategy.to_string()).or_insert(0) += 1;
        if r.seed < g.smallest_seed {
            g.smallest_seed = r.seed;
            g.message = r.message.clone();
            g.strategy = r.strategy;
        }
    }
    ExploreSummary {
        runs: results.len(),
        passed,
        groups: sorted_groups(groups),
        never_true: never_true(&sometimes),
        sometimes,
        by_strategy,
    }
}

/// Groups, most frequent first (ties by smallest seed).
fn sorted_groups(groups: BTreeMap<(&'static str, String, Option<String>), Group>) -> Vec<Group> {
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.smallest_seed.cmp(&b.smallest_seed))
    });
    groups
}

/// The sometimes-assertions never true.
fn never_true(sometimes: &BTreeMap<String, bool>) -> Vec<String> {
    sometimes
        .iter()
        .filter(|(_, v)| !**v)
        .map(|(k, _)| k.clone())
        .collect()
}
