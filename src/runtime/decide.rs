//! Every decision a run makes: which goroutine runs next, which ready `select` case fires, what a
//! random draw returns. A strategy makes them (uniform random, or PCT); a run can record them,
//! and a recorded list can be replayed (exactly, or edited by the shrinker). The scheduler asks
//! here and nowhere else, which is what makes a run a pure function of its seed and strategy.
//!
//! PCT (probabilistic concurrency testing, Burckhardt et al. 2010; as in Coyote and shuttle):
//! each goroutine gets a random priority when spawned; the highest-priority runnable goroutine
//! runs; at `depth - 1` random steps the running goroutine drops below every other. A bug that
//! needs `d` ordering constraints is found with probability at least `1 / (n * k^(d-1))`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use super::backend::{NANOS_PER_MS, Nanos, format_ms, ms_to_nanos};
use super::rng::SimRng;
use super::task::TaskId;

/// How a run's choices are made: which goroutine runs next, and, for the members that model
/// work taking time, how the clock is perturbed. Every variant is a flag value of `--strategy`
/// (`Display` and `FromStr` round-trip), so a reproduce line names the run exactly.
///
/// The timing variants perturb only what real execution could: a step of work takes time
/// (`Cost`), a timer fires late (`Jitter`). Channel order, mutex exclusion and the creation-order
/// firing of timers due at the same instant hold under every variant.
///
/// # Examples
///
/// ```
/// use gosim::runtime::Strategy;
///
/// let pct: Strategy = "pct:3".parse().expect("a strategy flag");
/// assert!(matches!(pct, Strategy::Pct { depth: 3, .. }));
/// assert_eq!(Strategy::Random.to_string(), "random");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Uniformly among the runnable goroutines at every scheduling point.
    #[default]
    Random,
    /// Probabilistic concurrency testing with `depth - 1` priority-change points spread over the
    /// first `steps` scheduling steps.
    Pct {
        /// The bug depth targeted (number of ordering constraints), at least 1.
        depth: u32,
        /// How many steps the change points are spread over (an estimate of the run's length;
        /// 0 until resolved from a probe run, see `scenario::resolve_strategy`).
        steps: u64,
    },
    /// Uniform random scheduling, and every scheduling step advances the clock by a seeded
    /// random amount in `[0, max]` (the same as `--step-cost MAX --step-cost-random`, which it
    /// overrides): running code races short timers as it does on a real machine.
    Cost {
        /// The largest cost of one step, in nanoseconds (at least 1).
        max: Nanos,
    },
    /// Uniform random scheduling, and every timer fires late by a seeded amount in `[0, max]`,
    /// the same amount for every timer due at the same instant (so those still fire in creation
    /// order): timers with different deadlines may fire out of deadline order, as a loaded
    /// machine can make them.
    Jitter {
        /// The largest delay, in nanoseconds (at least 1).
        max: Nanos,
    },
    /// Not a strategy of one run: each seed derives one of the members above from the seed
    /// alone (`Portfolio::member`). A run resolves it first (`Strategy::for_seed`).
    Portfolio(Portfolio),
}

/// The default strategy of `gosim explore`: each seed runs one member, derived from the seed
/// alone, so a sweep covers uniform random scheduling, PCT and the timing members with no flag.
///
/// The mapping (documented in docs/harness.md, "Strategies"): a 64-bit mix of the seed picks one
/// of eight slots: 0-1 `random`, 2 `pct:2`, 3 `pct:3`, 4 `cost:0.1`, 5 `cost:1`, 6 `jitter:1`,
/// 7 `jitter:10` (milliseconds). With `exact` (a scenario that asserts exact virtual instants,
/// marked `-- gosim: exact-time`), the timing slots run `random`, `pct:2`, `pct:3`, `random`
/// instead, so no member moves the clock while code runs. The scales are fixed, not measured
/// from the scenario: the mapping then needs no probe run and stays the same for a Rust sweep;
/// 0.1 and 1 ms per step are small against the 5-100 ms timers typical scenarios use (work stays
/// fast) yet let a few dozen steps outlast a 1 ms sleep, and 1 and 10 ms of lateness reorder
/// timers a few milliseconds apart.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Portfolio, Strategy};
///
/// let p = Portfolio::default();
/// let member = p.member(17); // derived from the seed alone
/// assert_eq!(member, p.member(17));
/// assert!(p.members().contains(&member));
/// assert!(!matches!(member, Strategy::Portfolio(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Portfolio {
    /// The step count PCT members spread their change points over (0: not resolved yet).
    pub pct_steps: u64,
    /// Leave out the members that move the clock (`cost`, `jitter`).
    pub exact: bool,
}

/// The members in slot order (see `Portfolio`); `pct` members get the portfolio's step count.
const SLOTS: [Strategy; 8] = [
    Strategy::Random,
    Strategy::Random,
    Strategy::Pct { depth: 2, steps: 0 },
    Strategy::Pct { depth: 3, steps: 0 },
    Strategy::Cost {
        max: NANOS_PER_MS / 10,
    },
    Strategy::Cost { max: NANOS_PER_MS },
    Strategy::Jitter { max: NANOS_PER_MS },
    Strategy::Jitter {
        max: 10 * NANOS_PER_MS,
    },
];

/// What the exact portfolio runs in the timing slots 4-7.
const EXACT_SLOTS: [Strategy; 4] = [
    Strategy::Random,
    Strategy::Pct { depth: 2, steps: 0 },
    Strategy::Pct { depth: 3, steps: 0 },
    Strategy::Random,
];

/// SplitMix64's finaliser: a fixed, well-mixed function of its input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Portfolio {
    /// How many slots the mapping has (each member's share is its slot count over this).
    pub const SLOTS: usize = SLOTS.len();

    /// The slot of `seed`: a mix of the seed, not `seed % 8`, so a shard (`seed % N`) still
    /// covers every member.
    pub fn slot(seed: u64) -> usize {
        (mix(seed ^ 0x676f_7369_6d5f_7066) % SLOTS.len() as u64) as usize
    }

    /// The strategy seed `seed` runs: a pure function of the seed and the portfolio.
    pub fn member(&self, seed: u64) -> Strategy {
        self.slot_member(Portfolio::slot(seed))
    }

    /// The member of one slot.
    fn slot_member(&self, slot: usize) -> Strategy {
        let s = if self.exact && slot >= 4 {
            EXACT_SLOTS[slot - 4]
        } else {
            SLOTS[slot]
        };
        match s {
            Strategy::Pct { depth, .. } => Strategy::Pct {
                depth,
                steps: self.pct_steps,
            },
            other => other,
        }
    }

    /// Every distinct member (for tests and docs), in slot order.
    pub fn members(&self) -> Vec<Strategy> {
        let mut out: Vec<Strategy> = Vec::new();
        for slot in 0..SLOTS.len() {
            let s = self.slot_member(slot);
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }
}

impl Strategy {
    /// The strategy a run under `seed` follows: a portfolio's member, else itself.
    pub fn for_seed(self, seed: u64) -> Strategy {
        match self {
            Strategy::Portfolio(p) => p.member(seed),
            other => other,
        }
    }

    /// The step cost this strategy imposes (`Cost`), overriding the configured one.
    pub fn step_cost(self) -> Option<Nanos> {
        match self {
            Strategy::Cost { max } => Some(max),
            _ => None,
        }
    }

    /// Whether this strategy moves the clock while code runs, or makes timers late.
    pub fn perturbs_time(self) -> bool {
        matches!(self, Strategy::Cost { .. } | Strategy::Jitter { .. })
    }

    /// The family name, without parameters (`random`, `pct`, `cost`, `jitter`, `portfolio`).
    pub fn family(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::Pct { .. } => "pct",
            Strategy::Cost { .. } => "cost",
            Strategy::Jitter { .. } => "jitter",
            Strategy::Portfolio(_) => "portfolio",
        }
    }
}

/// Milliseconds as a flag value: `1`, `0.1`, `0.000001` (exact, no unit).
fn ms_text(ns: Nanos) -> String {
    let s = format_ms(ns);
    s.trim_end_matches("ms").to_string()
}

/// A positive duration in milliseconds, for `cost:MS` and `jitter:MS`.
fn parse_ms(what: &str, text: &str) -> Result<Nanos, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("bad {what} {text:?} (a number of milliseconds)"))?;
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err(format!(
            "bad {what} {text:?} (milliseconds, more than 0 and at most 1e9)"
        ));
    }
    let ns = ms_to_nanos(v);
    if ns == 0 {
        return Err(format!(
            "bad {what} {text:?} (at least 0.000001 ms, one nanosecond)"
        ));
    }
    Ok(ns)
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Random => write!(f, "random"),
            Strategy::Pct { depth, steps: 0 } => write!(f, "pct:{depth}"),
            Strategy::Pct { depth, steps } => write!(f, "pct:{depth}:{steps}"),
            Strategy::Cost { max } => write!(f, "cost:{}", ms_text(*max)),
            Strategy::Jitter { max } => write!(f, "jitter:{}", ms_text(*max)),
            Strategy::Portfolio(p) => {
                write!(f, "portfolio")?;
                if p.exact {
                    write!(f, ":exact")?;
                }
                if p.pct_steps > 0 {
                    write!(f, ":{}", p.pct_steps)?;
                }
                Ok(())
            }
        }
    }
}

/// The accepted forms, for error messages.
const FORMS: &str = "random, pct[:DEPTH[:STEPS]], cost:MS, jitter:MS, portfolio[:exact][:STEPS]";

impl FromStr for Strategy {
    type Err = String;

    /// `random`, `pct`, `pct:DEPTH`, `pct:DEPTH:STEPS`, `cost:MS`, `jitter:MS`,
    /// `portfolio[:exact][:STEPS]`.
    fn from_str(s: &str) -> Result<Strategy, String> {
        let mut parts = s.split(':');
        match parts.next() {
            Some("random") if parts.next().is_none() => Ok(Strategy::Random),
            Some("pct") => {
                let depth = match parts.next() {
                    None => 3,
                    Some(d) => d.parse().map_err(|_| format!("bad PCT depth {d:?}"))?,
                };
                let steps = match parts.next() {
                    None => 0,
                    Some(k) => k.parse().map_err(|_| format!("bad PCT step count {k:?}"))?,
                };
                if depth == 0 || parts.next().is_some() {
                    return Err(format!(
                        "bad strategy {s:?} (pct:DEPTH:STEPS, both at least 1)"
                    ));
                }
                Ok(Strategy::Pct { depth, steps })
            }
            Some(kind @ ("cost" | "jitter")) => {
                let (Some(ms), None) = (parts.next(), parts.next()) else {
                    return Err(format!(
                        "bad strategy {s:?} ({kind}:MS, MS the largest {})",
                        if kind == "cost" {
                            "cost of one step"
                        } else {
                            "lateness of a timer"
                        }
                    ));
                };
                let max = parse_ms(&format!("{kind} in {s:?}"), ms)?;
                Ok(if kind == "cost" {
                    Strategy::Cost { max }
                } else {
                    Strategy::Jitter { max }
                })
            }
            Some("portfolio") => {
                let mut p = Portfolio::default();
                let mut rest: Vec<&str> = parts.collect();
                if rest.first() == Some(&"exact") {
                    p.exact = true;
                    rest.remove(0);
                }
                match rest.as_slice() {
                    [] => {}
                    [k] => p.pct_steps = k.parse().map_err(|_| {
                        format!(
                            "bad strategy {s:?} (portfolio[:exact][:STEPS], STEPS a whole number)"
                        )
                    })?,
                    _ => {
                        return Err(format!("bad strategy {s:?} (portfolio[:exact][:STEPS])"));
                    }
                }
                Ok(Strategy::Portfolio(p))
            }
            _ => Err(format!("unknown strategy {s:?} ({FORMS})")),
        }
    }
}

/// What a decision chose between.
///
/// # Examples
///
/// ```
/// use gosim::runtime::DecisionKind;
/// use gosim::scenario::{RunOptions, run_source};
///
/// let mut opts = RunOptions::with_seed(3);
/// opts.config.record = true;
/// let report = run_source("d.lua", "local n = math.random(6)", &opts).expect("compiles");
/// assert!(report.decisions.iter().any(|d| d.kind == DecisionKind::Data)); // the draw
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// The next goroutine, when the running one blocked or finished.
    Pick,
    /// At a scheduling point: keep the running goroutine (the last index) or switch.
    Point,
    /// Which ready `select` case fires.
    Case,
    /// A random step cost.
    Cost,
    /// A random draw for the program (`math.random`, `sim.buggify`, jitter).
    Data,
}

impl DecisionKind {
    fn letter(self) -> char {
        match self {
            DecisionKind::Pick => 'P',
            DecisionKind::Point => 'S',
            DecisionKind::Case => 'C',
            DecisionKind::Cost => 'T',
            DecisionKind::Data => 'D',
        }
    }

    fn from_letter(c: char) -> Option<DecisionKind> {
        Some(match c {
            'P' => DecisionKind::Pick,
            'S' => DecisionKind::Point,
            'C' => DecisionKind::Case,
            'T' => DecisionKind::Cost,
            'D' => DecisionKind::Data,
            _ => return None,
        })
    }
}

/// One decision: its kind, how many options there were (0: a full 64-bit draw) and the choice.
///
/// For goroutine choices (`Pick`, `Point`) the choice is the chosen goroutine's id, or
/// `Decision::CONTINUE` when a scheduling point kept the running goroutine: ids survive edits
/// that change how many goroutines are runnable, so an edited schedule stays meaningful. For the
/// other kinds it is the index (or drawn value).
///
/// # Examples
///
/// ```
/// use gosim::scenario::{RunOptions, run_source};
///
/// let mut opts = RunOptions::with_seed(4);
/// opts.config.record = true; // keep every decision, for shrinking and replay
/// let src = "goroutine.spawn(function() end) goroutine.spawn(function() end)";
/// let report = run_source("r.lua", src, &opts).expect("compiles");
/// assert!(!report.decisions.is_empty());
/// let replayed = gosim::scenario::replay("r.lua", src, &opts, &gosim::runtime::Schedule {
///     seed: 4,
///     strategy: report.strategy,
///     failure: String::new(),
///     decisions: report.decisions.clone(),
/// })
/// .expect("compiles");
/// assert_eq!(replayed.trace_hash(), report.trace_hash()); // the decisions are the run
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// What was decided.
    pub kind: DecisionKind,
    /// The number of options (0 for an unbounded 64-bit draw).
    pub n: u64,
    /// The option taken.
    pub value: u64,
    /// For a scheduling point: the running goroutine and how many scheduling points it had
    /// reached before this one. A replay applies the decision at that same point of that same
    /// goroutine, so removing one preemption does not shift the others.
    pub at: Option<(u64, u64)>,
}

impl Decision {
    /// The value of a scheduling point that kept the running goroutine.
    pub const CONTINUE: u64 = u64::MAX;

    /// Whether this decision switched away from a goroutine that could have kept running.
    pub fn is_preemption(&self) -> bool {
        self.kind == DecisionKind::Point && self.value != Decision::CONTINUE
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.value) {
            (DecisionKind::Point, Decision::CONTINUE) => {
                write!(f, "{} {} c", self.kind.letter(), self.n)?
            }
            (DecisionKind::Point | DecisionKind::Pick, v) => {
                write!(f, "{} {} g{v}", self.kind.letter(), self.n)?
            }
            _ => write!(f, "{} {} {}", self.kind.letter(), self.n, self.value)?,
        }
        if let Some((task, nth)) = self.at {
            write!(f, " @g{task}:{nth}")?;
        }
        Ok(())
    }
}

impl FromStr for Decision {
    type Err = String;

    /// `KIND N VALUE [@gTASK:NTH]`, VALUE being `c`, `gID` or a number.
    fn from_str(s: &str) -> Result<Decision, String> {
        let mut it = s.split_whitespace();
        let bad = || format!("bad decision line {s:?} (expected KIND N VALUE [@gTASK:NTH])");
        let kind = it
            .next()
            .and_then(|k| k.chars().next())
            .and_then(DecisionKind::from_letter)
            .ok_or_else(bad)?;
        let n = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        let value = match it.next().ok_or_else(bad)? {
            "c" => Decision::CONTINUE,
            v => v
                .strip_prefix('g')
                .unwrap_or(v)
                .parse()
                .map_err(|_| bad())?,
        };
        let at = match it.next() {
            None => None,
            Some(a) => {
                let (task, nth) = a
                    .strip_prefix("@g")
                    .and_then(|x| x.split_once(':'))
                    .ok_or_else(bad)?;
                Some((
                    task.parse().map_err(|_| bad())?,
                    nth.parse().map_err(|_| bad())?,
                ))
            }
        };
        Ok(Decision { kind, n, value, at })
    }
}

struct Pct {
    priorities: BTreeMap<TaskId, u64>,
    change_points: Vec<u64>,
    next_low: u64,
}

/// A schedule being followed. Scheduling points are looked up by where they happen (the running
/// goroutine and its count of points so far), every other kind is taken in order from its own
/// queue: so an edit (a preemption removed) changes only what it touches.
struct Replay {
    points: BTreeMap<(u64, u64), u64>,
    picks: VecDeque<Decision>,
    cases: VecDeque<Decision>,
    costs: VecDeque<Decision>,
    data: VecDeque<Decision>,
}

impl Replay {
    fn new(list: Vec<Decision>) -> Replay {
        let mut r = Replay {
            points: BTreeMap::new(),
            picks: VecDeque::new(),
            cases: VecDeque::new(),
            costs: VecDeque::new(),
            data: VecDeque::new(),
        };
        for d in list {
            match d.kind {
                DecisionKind::Point => {
                    if let Some(at) = d.at {
                        r.points.insert(at, d.value);
                    }
                }
                DecisionKind::Pick => r.picks.push_back(d),
                DecisionKind::Case => r.cases.push_back(d),
                DecisionKind::Cost => r.costs.push_back(d),
                DecisionKind::Data => r.data.push_back(d),
            }
        }
        r
    }

    fn queue(&mut self, kind: DecisionKind) -> &mut VecDeque<Decision> {
        match kind {
            DecisionKind::Pick | DecisionKind::Point => &mut self.picks,
            DecisionKind::Case => &mut self.cases,
            DecisionKind::Cost => &mut self.costs,
            DecisionKind::Data => &mut self.data,
        }
    }
}

/// The decision maker of one run.
pub(crate) struct Decider {
    sched: SimRng,
    data: SimRng,
    pct: Option<Pct>,
    record: Option<Vec<Decision>>,
    /// A schedule to follow. Past its end (or where an edit left a gap), decisions take the
    /// quietest choice (keep the running goroutine, else the oldest runnable one, first ready
    /// case) instead of the strategy, so an edited schedule stays short.
    replay: Option<Replay>,
    /// Scheduling points reached so far by each goroutine (kept when recording or replaying).
    points_seen: BTreeMap<u64, u64>,
    /// `Jitter`: a key drawn from the seed and the largest lateness of a timer.
    jitter: Option<(u64, Nanos)>,
}

impl Decider {
    pub(crate) fn new(
        seed: u64,
        strategy: Strategy,
        record: bool,
        replay: Option<Vec<Decision>>,
    ) -> Decider {
        let strategy = strategy.for_seed(seed);
        let mut sched = SimRng::new(seed, 0);
        let pct = match strategy {
            Strategy::Random
            | Strategy::Cost { .. }
            | Strategy::Jitter { .. }
            | Strategy::Portfolio(_) => None,
            Strategy::Pct { depth, steps } => {
                let steps = steps.max(1);
                let mut change_points: Vec<u64> =
                    (1..depth).map(|_| sched.below(steps) + 1).collect();
                change_points.sort_unstable();
                Some(Pct {
                    priorities: BTreeMap::new(),
                    change_points,
                    next_low: u64::MAX / 2,
                })
            }
        };
        Decider {
            sched,
            data: SimRng::new(seed, 1),
            pct,
            record: record.then(Vec::new),
            replay: replay.map(Replay::new),
            points_seen: BTreeMap::new(),
            // Its own stream (3), so jitter reshuffles neither the schedule nor program draws.
            jitter: match strategy {
                Strategy::Jitter { max } => Some((SimRng::new(seed, 3).next_u64(), max)),
                _ => None,
            },
        }
    }

    /// When a timer due at `at` fires: `at` itself, or under `Jitter` `at` plus a lateness in
    /// `[0, max]` that is a function of the seed and `at` alone. Timers due at the same instant
    /// get the same lateness, so they still fire in creation order; timers due at different
    /// instants get independent ones, so they may fire out of deadline order. Never earlier.
    pub(crate) fn fire_at(&self, at: Nanos) -> Nanos {
        match self.jitter {
            None => at,
            Some((key, max)) => {
                let late = match max.checked_add(1) {
                    Some(n) => mix(key ^ at) % n,
                    None => mix(key ^ at),
                };
                at.saturating_add(late)
            }
        }
    }

    /// The decisions recorded so far.
    pub(crate) fn take_record(&mut self) -> Vec<Decision> {
        self.record.take().unwrap_or_default()
    }

    /// A new goroutine: PCT gives it a random priority (above every demoted one).
    pub(crate) fn spawned(&mut self, id: TaskId) {
        if let Some(p) = &mut self.pct {
            let prio = u64::MAX / 2 + 1 + (self.sched.next_u64() >> 2);
            p.priorities.insert(id, prio);
        }
    }

    /// At scheduling step `step`, PCT may demote the running goroutine below all others.
    pub(crate) fn step(&mut self, step: u64, current: Option<TaskId>) {
        if let (Some(p), Some(cur)) = (&mut self.pct, current)
            && p.change_points.first() == Some(&step)
        {
            p.change_points.remove(0);
            p.next_low -= 1;
            p.priorities.insert(cur, p.next_low);
        }
    }

    fn recorded(&mut self, kind: DecisionKind, n: u64, value: u64, at: Option<(u64, u64)>) -> u64 {
        if let Some(r) = &mut self.record {
            r.push(Decision { kind, n, value, at });
        }
        value
    }

    /// The quietest choice: keep the running goroutine (the last candidate at a scheduling
    /// point), otherwise the oldest one.
    fn quiet_choice(kind: DecisionKind, candidates: &[TaskId]) -> usize {
        match kind {
            DecisionKind::Point => candidates.len() - 1,
            _ => (0..candidates.len())
                .min_by_key(|&i| candidates[i])
                .expect("a candidate"),
        }
    }

    /// Chooses among `candidates` (at a scheduling point the last one is the running goroutine).
    pub(crate) fn choose_task(&mut self, kind: DecisionKind, candidates: &[TaskId]) -> usize {
        let n = candidates.len();
        // Where a scheduling point happens: the running goroutine and its count of points.
        let at = if kind == DecisionKind::Point && (self.record.is_some() || self.replay.is_some())
        {
            let cur = candidates[n - 1].0;
            let seen = self.points_seen.entry(cur).or_insert(0);
            let nth = *seen;
            *seen += 1;
            Some((cur, nth))
        } else {
            None
        };
        let idx = if let Some(replay) = &mut self.replay {
            let wanted = match kind {
                DecisionKind::Point => at.and_then(|a| replay.points.get(&a).copied()),
                _ => replay.queue(kind).pop_front().map(|d| d.value),
            };
            match wanted {
                Some(v) if v != Decision::CONTINUE => candidates
                    .iter()
                    .position(|t| t.0 == v)
                    .unwrap_or_else(|| Decider::quiet_choice(kind, candidates)),
                _ => Decider::quiet_choice(kind, candidates),
            }
        } else if let Some(p) = &self.pct {
            let prio = |i: usize| p.priorities.get(&candidates[i]).copied().unwrap_or(0);
            (0..n)
                .max_by_key(|&i| (prio(i), std::cmp::Reverse(candidates[i])))
                .expect("a candidate")
        } else {
            self.sched.below(n as u64) as usize
        };
        let value = if kind == DecisionKind::Point && idx == n - 1 {
            Decision::CONTINUE
        } else {
            candidates[idx].0
        };
        self.recorded(kind, n as u64, value, at);
        idx
    }

    /// A uniform choice in `0..n` (`n > 0`) of the scheduling kind (select cases, step costs).
    pub(crate) fn below(&mut self, kind: DecisionKind, n: u64) -> u64 {
        let v = match &mut self.replay {
            Some(replay) => match replay.queue(kind).pop_front() {
                Some(d) if d.value < n => d.value,
                _ => 0,
            },
            None => self.sched.below(n),
        };
        self.recorded(kind, n, v, None)
    }

    /// A program draw: `Some(n)` for a uniform value in `0..n`, `None` for 64 random bits.
    pub(crate) fn data(&mut self, n: Option<u64>) -> u64 {
        let bound = n.unwrap_or(0);
        let replayed = self.replay.as_mut().and_then(|r| r.data.pop_front());
        let v = match replayed {
            Some(d) if bound == 0 || d.value < bound => d.value,
            _ => match n {
                Some(n) => self.data.below(n),
                None => self.data.next_u64(),
            },
        };
        self.recorded(DecisionKind::Data, bound, v, None)
    }

    /// Replaces the program's random stream (`math.randomseed`).
    pub(crate) fn reseed_data(&mut self, seed: u64) {
        self.data = SimRng::new(seed, 2);
    }
}

/// A recorded schedule as a text file: a header naming what it reproduces, then one decision a
/// line. Lines starting with `#` are comments.
///
/// # Examples
///
/// ```
/// use gosim::runtime::{Schedule, Strategy};
///
/// let schedule = Schedule {
///     seed: 7,
///     strategy: Strategy::Random,
///     failure: "fail deadlock x.lua:3".to_string(),
///     decisions: Vec::new(),
/// };
/// let text = schedule.to_text("x.lua");
/// assert!(text.starts_with("# gosim schedule v1"));
/// assert_eq!(Schedule::parse(&text), Ok(schedule)); // the text form round-trips
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The seed of the run (program draws past the schedule come from it).
    pub seed: u64,
    /// The strategy of the recorded run (informative; a replay follows the decisions).
    pub strategy: Strategy,
    /// How the run failed (`fail assertion x.lua:3`), informative.
    pub failure: String,
    /// The decisions.
    pub decisions: Vec<Decision>,
}

impl Schedule {
    /// The text form.
    pub fn to_text(&self, scenario: &str) -> String {
        let mut out = String::from("# gosim schedule v1\n");
        out.push_str(&format!(
            "# replay: gosim replay {scenario} --schedule FILE\n"
        ));
        out.push_str(&format!(
            "scenario {scenario}\nseed {}\nstrategy {}\nfailure {}\n",
            self.seed, self.strategy, self.failure
        ));
        out.push_str(&format!("decisions {}\n", self.decisions.len()));
        for d in &self.decisions {
            out.push_str(&d.to_string());
            out.push('\n');
        }
        out
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let mut seed = None;
        let mut strategy = Strategy::Random;
        let mut failure = String::new();
        let mut decisions = Vec::new();
        let mut in_decisions = false;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if in_decisions {
                decisions.push(line.parse().map_err(|e| format!("line {}: {e}", i + 1))?);
                continue;
            }
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "scenario" => {}
                "seed" => {
                    seed = Some(
                        rest.parse()
                            .map_err(|_| format!("line {}: bad seed {rest:?}", i + 1))?,
                    )
                }
                "strategy" => {
                    strategy = rest.parse().map_err(|e| format!("line {}: {e}", i + 1))?
                }
                "failure" => failure = rest.to_string(),
                "decisions" => in_decisions = true,
                _ => return Err(format!("line {}: unknown key {key:?}", i + 1)),
            }
        }
        let seed = seed.ok_or("the schedule has no seed line")?;
        if !in_decisions {
            return Err("the schedule has no decisions line".into());
        }
        Ok(Schedule {
            seed,
            strategy,
            failure,
            decisions,
        })
    }

    /// How many decisions switched away from a goroutine that could have kept running.
    pub fn preemptions(&self) -> usize {
        self.decisions.iter().filter(|d| d.is_preemption()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_and_print() {
        assert_eq!("random".parse::<Strategy>(), Ok(Strategy::Random));
        assert_eq!(
            "pct".parse::<Strategy>(),
            Ok(Strategy::Pct { depth: 3, steps: 0 })
        );
        assert_eq!(Strategy::Pct { depth: 3, steps: 0 }.to_string(), "pct:3");
        assert_eq!(
            "pct:2:500".parse::<Strategy>(),
            Ok(Strategy::Pct {
                depth: 2,
                steps: 500
            })
        );
        assert!("pct:0".parse::<Strategy>().is_err());
        assert!("dfs".parse::<Strategy>().is_err());
        assert_eq!(
            Strategy::Pct {
                depth: 2,
                steps: 500
            }
            .to_string(),
            "pct:2:500"
        );
    }

    #[test]
    fn jitter_delays_by_a_function_of_the_deadline_within_the_bound() {
        let max = 5 * NANOS_PER_MS;
        let d = Decider::new(9, Strategy::Jitter { max }, false, None);
        let mut moved = 0;
        for at in (0..200u64).map(|i| i * 250_000) {
            let f = d.fire_at(at);
            assert!(f >= at && f - at <= max, "{at} fires at {f}");
            assert_eq!(f, d.fire_at(at), "same deadline, same lateness");
            moved += usize::from(f > at);
        }
        assert!(moved > 190);
        // Another seed, other lateness; no jitter, none at all.
        let e = Decider::new(10, Strategy::Jitter { max }, false, None);
        assert!((1..50u64).any(|at| e.fire_at(at) != d.fire_at(at)));
        let plain = Decider::new(9, Strategy::Random, false, None);
        assert_eq!(plain.fire_at(1234), 1234);
        // A portfolio resolves to its seed's member, here through the Decider.
        let p = Portfolio {
            pct_steps: 5,
            exact: false,
        };
        let seed = (0..100)
            .find(|&s| p.member(s).family() == "jitter")
            .expect("a jitter seed");
        let d = Decider::new(seed, Strategy::Portfolio(p), false, None);
        assert!((0..100u64).any(|at| d.fire_at(at) != at));
    }

    #[test]
    fn a_schedule_round_trips_through_text() {
        let s = Schedule {
            seed: 7,
            strategy: Strategy::Pct {
                depth: 2,
                steps: 100,
            },
            failure: "fail assertion t.lua:3".into(),
            decisions: vec![
                Decision {
                    kind: DecisionKind::Point,
                    n: 3,
                    value: 4,
                    at: Some((2, 5)),
                },
                Decision {
                    kind: DecisionKind::Point,
                    n: 2,
                    value: Decision::CONTINUE,
                    at: None,
                },
                Decision {
                    kind: DecisionKind::Pick,
                    n: 2,
                    value: 1,
                    at: None,
                },
                Decision {
                    kind: DecisionKind::Data,
                    n: 0,
                    value: u64::MAX,
                    at: None,
                },
                Decision {
                    kind: DecisionKind::Case,
                    n: 2,
                    value: 1,
                    at: None,
                },
            ],
        };
        assert_eq!(Schedule::parse(&s.to_text("t.lua")), Ok(s.clone()));
        assert_eq!(s.preemptions(), 1);
    }

    #[test]
    fn replay_follows_the_list_then_falls_back_quietly() {
        let list = vec![Decision {
            kind: DecisionKind::Point,
            n: 2,
            value: 3,
            at: Some((1, 0)),
        }];
        let mut d = Decider::new(1, Strategy::Random, true, Some(list));
        let tasks = [TaskId(3), TaskId(1)];
        assert_eq!(
            d.choose_task(DecisionKind::Point, &tasks),
            0,
            "g3 as recorded"
        );
        // Exhausted: keep the running goroutine (the last candidate).
        assert_eq!(d.choose_task(DecisionKind::Point, &tasks), 1);
        // A pick takes the oldest goroutine.
        assert_eq!(d.choose_task(DecisionKind::Pick, &tasks), 1);
        assert_eq!(d.take_record().len(), 3);
    }

    #[test]
    fn pct_runs_the_highest_priority_and_demotes_at_change_points() {
        let mut d = Decider::new(5, Strategy::Pct { depth: 2, steps: 1 }, false, None);
        for t in 1..=3 {
            d.spawned(TaskId(t));
        }
        let tasks = [TaskId(1), TaskId(2), TaskId(3)];
        let first = d.choose_task(DecisionKind::Pick, &tasks);
        // Same choice while priorities do not change.
        assert_eq!(d.choose_task(DecisionKind::Pick, &tasks), first);
        d.step(1, Some(tasks[first]));
        assert_ne!(
            d.choose_task(DecisionKind::Pick, &tasks),
            first,
            "demoted below the others"
        );
    }
}
