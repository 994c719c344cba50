//! Shrinking a failing run: record its decisions, then look for a shorter list with fewer
//! preemptions that still fails the same way (same outcome, kind and location). Every attempt is
//! a full run with the edited list as its schedule; past the list's end a run takes the quietest
//! choices (no preemption), so shorter lists mean calmer schedules. The result replays exactly.

use super::RunResult;
use crate::runtime::{Config, Decision, DecisionKind, Outcome, Schedule};

/// How a failure is recognised across runs: verdict, kind and location.
pub fn failure_signature(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Pass => None,
        Outcome::Fail(f) => Some(format!(
            "fail {} {}",
            f.kind.word(),
            f.location.as_deref().unwrap_or("?")
        )),
        Outcome::Limit(l) => Some(format!(
            "limit {} {}",
            l.kind.word(),
            l.location.as_deref().unwrap_or("?")
        )),
    }
}

/// The result of a shrink.
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, shrink};
///
/// let src = r#"
///     local ch = goroutine.channel()
///     for i = 1, 3 do goroutine.spawn(function() goroutine.sleep(i) end) end
///     ch:receive() -- a deadlock under every schedule
/// "#;
/// let shrunk = shrink("dl.lua", src, &RunOptions::with_seed(4), 50)
///     .expect("compiles")
///     .expect("it fails, so there is something to shrink");
/// assert_eq!(shrunk.outcome.word(), "fail");
/// assert!(shrunk.shrunk.decisions.len() <= shrunk.original.decisions.len());
/// ```
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The recorded schedule of the original failing run.
    pub original: Schedule,
    /// The shortest failing schedule found.
    pub shrunk: Schedule,
    /// Runs spent.
    pub runs: usize,
    /// The outcome of replaying `shrunk`.
    pub outcome: Outcome,
}

/// Runs with `schedule` (recording, tracing off).
fn attempt<E>(
    run: &mut dyn FnMut(&Config) -> Result<RunResult, E>,
    config: &Config,
    schedule: &[Decision],
) -> Result<RunResult, E> {
    let mut cfg = config.clone();
    cfg.trace = false;
    cfg.record = true;
    cfg.schedule = Some(schedule.to_vec());
    run(&cfg)
}

/// Shrinks the failing run of `config` (its seed and strategy), spending at most `max_runs`
/// runs of `run`. `Ok(None)` if it passes. `run` is one run of the test under a configuration
/// (a Lua scenario's or a Rust closure's); it must honour `record` and `schedule`.
pub fn shrink<E>(
    config: &Config,
    max_runs: usize,
    run: &mut dyn FnMut(&Config) -> Result<RunResult, E>,
) -> Result<Option<Shrunk>, E> {
    let mut cfg = config.clone();
    cfg.trace = false;
    cfg.record = true;
    cfg.schedule = None;
    let first = run(&cfg)?;
    let Some(signature) = failure_signature(&first.outcome) else {
        return Ok(None);
    };
    // A portfolio's seed runs one member: the schedule names that member, which replays it.
    let strategy = config.strategy.for_seed(config.seed);
    let original = Schedule {
        seed: config.seed,
        strategy,
        failure: signature.clone(),
        decisions: first.decisions.clone(),
    };
    let mut best = first.decisions.clone();
    let mut best_outcome = first.outcome.clone();
    let mut runs = 1;
    let mut try_list = |list: &[Decision], runs: &mut usize| -> Result<Option<RunResult>, E> {
        *runs += 1;
        let r = attempt(run, config, list)?;
        Ok((failure_signature(&r.outcome).as_deref() == Some(signature.as_str())).then_some(r))
    };

    // 1. The shortest prefix that still fails (prefixes are not monotone: scan a few lengths).
    let mut len = 0;
    while len < best.len() && runs < max_runs {
        if let Some(r) = try_list(&best[..len], &mut runs)? {
            best = trim_quiet_tail(r.decisions);
            best_outcome = r.outcome;
            break;
        }
        len = if len == 0 {
            1
        } else {
            (len * 2).min(best.len())
        };
    }
    // 2. Many bugs need a single preemption: try schedules made of one switch, at each
    //    scheduling point of the failing run, to each goroutine it involved (the rest quiet).
    if best.iter().filter(|d| d.is_preemption()).count() > 1 {
        let mut targets: Vec<u64> = best
            .iter()
            .filter(|d| {
                matches!(d.kind, DecisionKind::Pick | DecisionKind::Point)
                    && d.value != Decision::CONTINUE
            })
            .map(|d| d.value)
            .collect();
        targets.sort_unstable();
        targets.dedup();
        let points: Vec<Decision> = best
            .iter()
            .filter(|d| d.kind == DecisionKind::Point && d.at.is_some())
            .copied()
            .collect();
        'single: for p in points {
            for &t in &targets {
                if runs >= max_runs {
                    break 'single;
                }
                if p.at.is_some_and(|(task, _)| task == t) {
                    continue;
                }
                let candidate = [Decision { value: t, ..p }];
                if let Some(r) = try_list(&candidate, &mut runs)? {
                    best = trim_quiet_tail(r.decisions);
                    best_outcome = r.outcome;
                    break 'single;
                }
            }
        }
    }
    // 3. Remove preemptions: one at a time, two at a time (a preemption often only matters
    //    together with another), and "merge" two into one (drop one and send the other to the
    //    dropped one's target: the same switch, made at a later point). After each success the
    //    run's own record replaces the edited list, so later edits work on a consistent schedule.
    let mut changed = true;
    while changed && runs < max_runs {
        changed = false;
        let preemptions: Vec<usize> = (0..best.len())
            .filter(|&i| best[i].is_preemption())
            .collect();
        let mut edits: Vec<Edit> = preemptions
            .iter()
            .rev()
            .map(|&i| Edit::Remove(vec![i]))
            .collect();
        if preemptions.len() <= 12 {
            for (a, &i) in preemptions.iter().enumerate() {
                for &j in &preemptions[a + 1..] {
                    edits.push(Edit::Remove(vec![i, j]));
                }
            }
            for &i in &preemptions {
                for &j in &preemptions {
                    if i != j {
                        edits.push(Edit::Merge {
                            drop: i,
                            retarget: j,
                        });
                    }
                }
            }
        }
        for edit in edits {
            if runs >= max_runs {
                break;
            }
            let mut candidate = best.clone();
            match edit {
                Edit::Remove(list) => {
                    for i in list {
                        candidate[i].value = Decision::CONTINUE;
                    }
                }
                Edit::Merge { drop, retarget } => {
                    candidate[retarget].value = candidate[drop].value;
                    candidate[drop].value = Decision::CONTINUE;
                }
            }
            if let Some(r) = try_list(&candidate, &mut runs)? {
                best = trim_quiet_tail(r.decisions);
                best_outcome = r.outcome;
                changed = true;
                break;
            }
        }
    }
    // Scheduling points that kept the running goroutine are what a replay does by default:
    // the file keeps only the decisions that matter.
    best.retain(|d| d.kind != DecisionKind::Point || d.is_preemption());
    let shrunk = Schedule {
        seed: config.seed,
        strategy,
        failure: signature,
        decisions: best,
    };
    Ok(Some(Shrunk {
        original,
        shrunk,
        runs,
        outcome: best_outcome,
    }))
}

/// One edit of a schedule tried by the shrinker.
enum Edit {
    /// Turn these preemptions into "keep running".
    Remove(Vec<usize>),
    /// Drop one preemption and make another switch to its target instead.
    Merge { drop: usize, retarget: usize },
}

/// Drops trailing decisions the quiet fallback would take anyway (scheduling points that kept
/// the running goroutine).
fn trim_quiet_tail(mut list: Vec<Decision>) -> Vec<Decision> {
    while list
        .last()
        .is_some_and(|d| d.kind == DecisionKind::Point && !d.is_preemption())
    {
        list.pop();
    }
    list
}

/// The configuration that replays `schedule`: its seed and strategy, following its decisions
/// (then the quietest choices), the rest of `config` kept.
pub fn replay_config(config: &Config, schedule: &Schedule) -> Config {
    let mut cfg = config.clone();
    cfg.seed = schedule.seed;
    cfg.strategy = schedule.strategy;
    cfg.schedule = Some(schedule.decisions.clone());
    cfg
}
