//! `gosim bench`: the scheduler's speed, measured side by side with its anchor (raw Lua coroutines
//! in the same process) and printed as a table of figures, ratios and targets.
//!
//! These are measurements, not tests: nothing asserts on them. Each figure is the median of
//! several repetitions; the anchor is measured in the same run so ratios survive a noisy machine.

use std::process::ExitCode;
use std::time::Instant;

use gosim::scenario::{ExploreOptions, RunOptions, explore, run_source};

use super::alloc_count;

/// Options of `gosim bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    /// Fewer repetitions and smaller sizes (a smoke run, about a second).
    #[arg(long)]
    quick: bool,
    /// Worker threads for the explore throughput figure.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
}

struct Row {
    name: &'static str,
    value: f64,
    unit: &'static str,
    anchor: Option<(f64, &'static str)>,
    target: &'static str,
    met: bool,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).expect("no NaN timings"));
    xs[xs.len() / 2]
}

/// Runs `f` `reps` times and returns the median wall time in nanoseconds.
fn time_ns(reps: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_nanos() as f64
            })
            .collect(),
    )
}

fn run_ok(name: &str, src: &str) {
    let mut opts = RunOptions::with_seed(1);
    opts.config.trace = false;
    let r = run_source(name, src, &opts).expect("bench scenario loads");
    assert!(
        r.outcome.is_pass(),
        "bench scenario {name} must pass: {}",
        r.outcome
    );
}

/// One pure-Lua coroutine resume/yield round trip, in ns (the anchor of the ping-pong).
fn raw_coroutine_round_trip(n: u64, reps: usize) -> f64 {
    let lua = mlua::Lua::new();
    let f: mlua::Function = lua
        .load(
            r#"
            local n = ...
            local co = coroutine.wrap(function() while true do coroutine.yield() end end)
            for i = 1, n do co() end
            "#,
        )
        .into_function()
        .expect("anchor compiles");
    time_ns(reps, || f.call::<()>(n).expect("anchor runs")) / n as f64
}

/// Two goroutines passing `n` values back and forth over two unbuffered channels.
fn ping_pong_source(n: u64) -> String {
    format!(
        r#"
        local a, b = goroutine.channel(), goroutine.channel()
        goroutine.spawn(function()
          for i = 1, {n} do local v = a:receive(); b:send(v) end
        end)
        for i = 1, {n} do a:send(i); b:receive() end
        "#
    )
}

fn ping_pong(n: u64, reps: usize) -> f64 {
    let src = ping_pong_source(n);
    // Two messages per iteration.
    time_ns(reps, || run_ok("ping_pong.lua", &src)) / (2 * n) as f64
}

fn spawn_finish(n: u64, reps: usize) -> f64 {
    let src = format!("for i = 1, {n} do goroutine.spawn(function() end) end");
    time_ns(reps, || run_ok("spawn.lua", &src)) / n as f64
}

fn parked_memory(n: u64) -> f64 {
    let src = format!(
        r#"
        local ch = goroutine.channel()
        for i = 1, {n} do goroutine.spawn(function() ch:receive() end) end
        goroutine.sleep(1)          -- every goroutine is parked on ch now
        ch:close()
        "#
    );
    alloc_count::count_globally(true);
    let base = alloc_count::reset_peak();
    run_ok("parked.lua", &src);
    let grown = alloc_count::peak() - base;
    alloc_count::count_globally(false);
    grown as f64 / n as f64
}

/// The timer anchor: plain Lua resuming a random one of `tasks` parked coroutines, per resume
/// (what a timer firing must do at least: wake one of many suspended goroutines, cache misses
/// included).
fn random_resume(tasks: u64, resumes: u64, reps: usize) -> f64 {
    let lua = mlua::Lua::new();
    let f: mlua::Function = lua
        .load(
            r#"
            local tasks, resumes = ...
            local cos = {}
            for i = 1, tasks do
              local co = coroutine.create(function() while true do coroutine.yield() end end)
              coroutine.resume(co)
              cos[i] = co
            end
            local resume, x = coroutine.resume, 1
            for i = 1, resumes do
              x = (x * 1103515245 + 12345) % 2147483648
              resume(cos[x % tasks + 1])
            end
            "#,
        )
        .into_function()
        .expect("anchor compiles");
    time_ns(reps, || {
        f.call::<()>((tasks, resumes)).expect("anchor runs")
    }) / resumes as f64
}

fn timer_firings(tasks: u64, sleeps: u64, reps: usize) -> f64 {
    let src = format!(
        r#"
        for i = 1, {tasks} do
          goroutine.spawn(function() for j = 1, {sleeps} do goroutine.sleep(1 + i % 7) end end)
        end
        "#
    );
    time_ns(reps, || run_ok("timers.lua", &src)) / (tasks * sleeps) as f64
}

/// A 10-goroutine, ~200-operation scenario, explored with one Lua state per worker, reset
/// between runs.
const EXPLORE_SCENARIO: &str = r#"
local ch = goroutine.channel(2)
local m = goroutine.mutex()
local wg = goroutine.wait_group()
local total = 0
for w = 1, 10 do
  wg:add(1)
  goroutine.spawn(function()
    for i = 1, 5 do
      ch:send(i)
      local v = ch:receive()
      m:lock(); total = total + v; m:unlock()
    end
    wg:done()
  end)
end
wg:wait()
assert(total == 150)
"#;

fn explore_throughput(runs: u64, jobs: usize) -> f64 {
    let opts = ExploreOptions {
        seeds: (1..=runs).collect(),
        jobs,
        run: RunOptions::with_seed(0),
    };
    let t = Instant::now();
    let summary = explore("explore.lua", EXPLORE_SCENARIO, &opts, &mut |_, _| {}).expect("loads");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        summary.passed as u64, runs,
        "the explore scenario passes under every seed"
    );
    runs as f64 / secs
}

/// Rust tasks passing a value back and forth over two rendezvous channels, per message.
fn rust_ping_pong(n: u64, reps: usize) -> f64 {
    time_ns(reps, || {
        let mut config = gosim::runtime::Config {
            seed: 1,
            trace: false,
            ..Default::default()
        };
        config.max_steps = u64::MAX;
        let sim = gosim::sim::Sim::new(config);
        let s = sim.clone();
        let report = sim.run(async move {
            let (a, b) = (s.channel::<u64>(0), s.channel::<u64>(0));
            let (a2, b2) = (a.clone(), b.clone());
            s.spawn("pong", async move {
                while let Some(v) = a2.recv().await {
                    b2.send(v).await.expect("open");
                }
            });
            for i in 0..n {
                a.send(i).await.expect("open");
                b.recv().await.expect("open");
            }
            a.close();
        });
        assert!(report.outcome.is_pass(), "{}", report.outcome);
    }) / (2 * n) as f64
}

/// The same ping-pong between two tokio tasks on a current-thread runtime, mpsc capacity 1.
fn tokio_ping_pong(n: u64, reps: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio");
    time_ns(reps, || {
        rt.block_on(async {
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async {
                    let (tx_a, mut rx_a) = tokio::sync::mpsc::channel::<u64>(1);
                    let (tx_b, mut rx_b) = tokio::sync::mpsc::channel::<u64>(1);
                    tokio::task::spawn_local(async move {
                        while let Some(v) = rx_a.recv().await {
                            tx_b.send(v).await.expect("open");
                        }
                    });
                    for i in 0..n {
                        tx_a.send(i).await.expect("open");
                        rx_b.recv().await.expect("open");
                    }
                })
                .await;
        })
    }) / (2 * n) as f64
}

/// Rust tasks each sleeping `sleeps` times, per timer firing.
fn rust_timer_firings(tasks: u64, sleeps: u64, reps: usize) -> f64 {
    time_ns(reps, || {
        let sim = gosim::sim::Sim::new(gosim::runtime::Config {
            seed: 1,
            trace: false,
            ..Default::default()
        });
        let s = sim.clone();
        let report = sim.run(async move {
            for i in 0..tasks {
                let t = s.clone();
                s.spawn("sleeper", async move {
                    for _ in 0..sleeps {
                        t.sleep(std::time::Duration::from_millis(1 + i % 7)).await;
                    }
                });
            }
        });
        assert!(report.outcome.is_pass(), "{}", report.outcome);
    }) / (tasks * sleeps) as f64
}

/// The same with tokio's paused clock (auto-advancing virtual time).
fn tokio_timer_firings(tasks: u64, sleeps: u64, reps: usize) -> f64 {
    time_ns(reps, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("tokio");
        rt.block_on(async {
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async {
                    let mut handles = Vec::new();
                    for i in 0..tasks {
                        handles.push(tokio::task::spawn_local(async move {
                            for _ in 0..sleeps {
                                tokio::time::sleep(std::time::Duration::from_millis(1 + i % 7))
                                    .await;
                            }
                        }));
                    }
                    for h in handles {
                        h.await.expect("task");
                    }
                })
                .await;
        })
    }) / (tasks * sleeps) as f64
}

/// A 1 ms ticker in production mode: how late each tick arrives after the previous one plus
/// the period, in microseconds (mean, max).
fn real_ticker_lateness(ticks: usize) -> (f64, f64) {
    let sim = gosim::sim::Sim::real(gosim::runtime::Config {
        trace: false,
        ..Default::default()
    });
    let s = sim.clone();
    let lateness = std::rc::Rc::new(std::cell::RefCell::new(Vec::with_capacity(ticks)));
    let out = lateness.clone();
    let report = sim.run(async move {
        let (ticker, ch) = s.ticker(std::time::Duration::from_millis(1));
        let mut last = s.now();
        for _ in 0..ticks {
            ch.recv().await.expect("ticks");
            let now = s.now();
            let late = now
                .saturating_sub(last)
                .saturating_sub(std::time::Duration::from_millis(1));
            out.borrow_mut().push(late.as_secs_f64() * 1e6);
            last = now;
        }
        ticker.stop();
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    let l = lateness.borrow();
    let mean = l.iter().sum::<f64>() / l.len().max(1) as f64;
    let max = l.iter().copied().fold(0.0, f64::max);
    (mean, max)
}

/// Per-call cost of a Lua scenario's loop of `n` calls: the run's wall time over `n` (the run's
/// fixed cost, a Lua state and the prelude, is amortised over the calls).
fn lua_per_call(name: &str, src: &str, n: u64, reps: usize) -> f64 {
    time_ns(reps, || run_ok(name, src)) / n as f64
}

/// `lim:allow()` per call (a limiter that always has tokens), and the same token bucket written
/// by hand in Lua over `goroutine.now()`.
fn limiter_allow(n: u64, reps: usize) -> (f64, f64) {
    let pattern = format!(
        "local lim = goroutine.rate_limiter{{rate = 1000000, per = 1, burst = 1000000}}\n\
         for i = 1, {n} do lim:allow() end"
    );
    let by_hand = format!(
        "local rate, burst = 1000000, 1000000\n\
         local tokens, last = burst, goroutine.now()\n\
         local function allow()\n\
           local now = goroutine.now()\n\
           tokens = math.min(burst, tokens + (now - last) * rate)\n\
           last = now\n\
           if tokens >= 1 then tokens = tokens - 1 return true end\n\
           return false\n\
         end\n\
         for i = 1, {n} do allow() goroutine.yield() end"
    );
    (
        lua_per_call("limiter_allow.lua", &pattern, n, reps),
        lua_per_call("limiter_allow_by_hand.lua", &by_hand, n, reps),
    )
}

/// `lim:wait()` per call when every call must sleep for its token (1 per ms), and the same
/// written by hand with `goroutine.sleep`.
fn limiter_wait(n: u64, reps: usize) -> (f64, f64) {
    let pattern = format!(
        "local lim = goroutine.rate_limiter{{rate = 1, per = 1, burst = 1}}\n\
         for i = 1, {n} do lim:wait() end"
    );
    let by_hand = format!(
        "local next_at = goroutine.now()\n\
         local function wait()\n\
           local now = goroutine.now()\n\
           if next_at > now then goroutine.sleep(next_at - now) end\n\
           next_at = math.max(now, next_at) + 1\n\
         end\n\
         for i = 1, {n} do wait() end"
    );
    (
        lua_per_call("limiter_wait.lua", &pattern, n, reps),
        lua_per_call("limiter_wait_by_hand.lua", &by_hand, n, reps),
    )
}

/// `cb:call(fn)` per call on a closed breaker, and a hand-written breaker (a state table and
/// `pcall`).
fn breaker_call(n: u64, reps: usize) -> (f64, f64) {
    let pattern = format!(
        "local cb = goroutine.circuit_breaker{{threshold = 5, timeout = 1000}}\n\
         local function f() return 1 end\n\
         for i = 1, {n} do cb:call(f) end"
    );
    let by_hand = format!(
        "local st = {{state = \"closed\", failures = 0, opened = 0}}\n\
         local function call(f)\n\
           if st.state == \"open\" then\n\
             if goroutine.now() - st.opened <= 1000 then return false, \"open\" end\n\
             st.state = \"half-open\"\n\
           end\n\
           local ok, v = pcall(f)\n\
           if ok then st.failures = 0 st.state = \"closed\" return true, v end\n\
           st.failures = st.failures + 1\n\
           if st.failures >= 5 then st.state = \"open\" st.opened = goroutine.now() end\n\
           return false, v\n\
         end\n\
         local function f() return 1 end\n\
         for i = 1, {n} do call(f) goroutine.yield() end"
    );
    (
        lua_per_call("breaker_call.lua", &pattern, n, reps),
        lua_per_call("breaker_call_by_hand.lua", &by_hand, n, reps),
    )
}

/// `batch:add(item)` per item (batches of 100 to a processor goroutine, size trigger, final
/// flush on close), and the same written by hand: a buffer table handed over a channel to a
/// goroutine that calls fn, plus a `goroutine.yield()` per item (the scheduling point `add`
/// takes). The hand-written one has no time trigger: no virtual time passes in either run.
fn batch_throughput(n: u64, reps: usize) -> (f64, f64) {
    let pattern = format!(
        "local seen = 0\n\
         local b = goroutine.batch_processor{{batch_size = 100, flush_interval = 1000,\n\
           fn = function(items) seen = seen + #items end}}\n\
         for i = 1, {n} do b:add(i) end\n\
         b:close()\n\
         assert(seen == {n})"
    );
    let by_hand = format!(
        "local seen = 0\n\
         local ch, done = goroutine.channel(1), goroutine.channel(0)\n\
         goroutine.spawn(function()\n\
           ch:range(function(items) seen = seen + #items end)\n\
           done:send(true)\n\
         end)\n\
         local buf = {{}}\n\
         local function add(v)\n\
           buf[#buf + 1] = v\n\
           if #buf >= 100 then ch:send(buf) buf = {{}} end\n\
         end\n\
         for i = 1, {n} do add(i) goroutine.yield() end\n\
         if #buf > 0 then ch:send(buf) end\n\
         ch:close()\n\
         done:receive()\n\
         assert(seen == {n})"
    );
    (
        lua_per_call("batch_processor.lua", &pattern, n, reps),
        lua_per_call("batch_by_hand.lua", &by_hand, n, reps),
    )
}

/// What the text trace costs: the Lua ping-pong with the trace on (recorded, rendered as text the
/// way `gosim run` does, and freed) minus the same run with it off, over the events recorded,
/// in ns; the two are run alternately in this process so a drifting machine shifts both, and
/// the fastest run of each is compared. Also
/// the memory per goroutine parked on a channel with the trace on, in bytes (`parked_memory`'s
/// scenario: its events stay alive until the run ends).
fn text_trace_cost(n: u64, parked: u64, reps: usize) -> (f64, f64) {
    let src = ping_pong_source(n);
    let timed = |trace: bool| {
        let mut opts = RunOptions::with_seed(1);
        opts.config.trace = trace;
        let t = Instant::now();
        let r = run_source("ping_pong.lua", &src, &opts).expect("bench scenario loads");
        let text = trace.then(|| r.trace_text());
        let events = r.events.len();
        assert!(r.outcome.is_pass(), "ping-pong must pass: {}", r.outcome);
        drop((r, text));
        (t.elapsed().as_nanos() as f64, events)
    };
    let (mut on, mut off, mut events) = (Vec::new(), Vec::new(), 0);
    for _ in 0..reps {
        off.push(timed(false).0);
        let (ns, n_events) = timed(true);
        on.push(ns);
        events = n_events;
    }
    // The least disturbed run of each: a difference of two medians on a busy machine is mostly
    // the noise of the ping-pong itself (several times the trace's cost).
    let least = |xs: Vec<f64>| xs.into_iter().fold(f64::INFINITY, f64::min);
    let per_event = (least(on) - least(off)) / events.max(1) as f64;

    let parked_src = format!(
        r#"
        local ch = goroutine.channel()
        for i = 1, {parked} do goroutine.spawn(function() ch:receive() end) end
        goroutine.sleep(1)
        ch:close()
        "#
    );
    let mut opts = RunOptions::with_seed(1);
    opts.config.trace = true;
    alloc_count::count_globally(true);
    let base = alloc_count::reset_peak();
    let r = run_source("parked_traced.lua", &parked_src, &opts).expect("bench scenario loads");
    let grown = alloc_count::peak() - base;
    alloc_count::count_globally(false);
    assert!(r.outcome.is_pass(), "parked must pass: {}", r.outcome);
    (per_event, grown as f64 / parked as f64)
}

pub(crate) fn run(a: BenchArgs) -> ExitCode {
    let (reps, scale) = if a.quick { (3, 10) } else { (7, 1) };
    eprintln!("measuring ({} repetitions each; medians)...", reps);
    let anchor = raw_coroutine_round_trip(2_000_000 / scale, reps);
    let pp = ping_pong(200_000 / scale, reps);
    let spawn = spawn_finish(100_000 / scale, reps);
    let mem = parked_memory(100_000 / scale);
    let timers = timer_firings(10_000 / scale, 100, reps.min(3));
    let resume_anchor = random_resume(10_000 / scale, 1_000_000 / scale, reps.min(3));
    let throughput = explore_throughput(20_000 / scale, a.jobs);
    let rust_pp = rust_ping_pong(200_000 / scale, reps);
    let tokio_pp = tokio_ping_pong(200_000 / scale, reps);
    let rust_timers = rust_timer_firings(10_000 / scale, 100, reps.min(3));
    let tokio_timers = tokio_timer_firings(10_000 / scale, 100, reps.min(3));
    let (late_mean, late_max) = real_ticker_lateness(if a.quick { 200 } else { 1000 });
    let (allow, allow_hand) = limiter_allow(100_000 / scale, reps);
    let (wait, wait_hand) = limiter_wait(100_000 / scale, reps);
    let (cb_call, cb_hand) = breaker_call(100_000 / scale, reps);
    let (batch, batch_hand) = batch_throughput(100_000 / scale, reps);
    let (trace_event, traced_mem) = text_trace_cost(50_000 / scale, 100_000 / scale, reps);
    let rows = [
        Row {
            name: "unbuffered ping-pong, per message",
            value: pp,
            unit: "ns",
            anchor: Some((anchor, "Lua coroutine resume+yield")),
            target: "ratio <= 2.0",
            met: pp / anchor <= 2.0,
        },
        Row {
            name: "spawn + finish of a goroutine",
            value: spawn,
            unit: "ns",
            anchor: None,
            target: "<= 1000 ns",
            met: spawn <= 1000.0,
        },
        Row {
            name: "memory per goroutine parked on a channel",
            value: mem,
            unit: "B",
            anchor: None,
            target: "<= 1536 B",
            met: mem <= 1536.0,
        },
        Row {
            name: "virtual timer firing (10k x 100 sleeps)",
            value: timers,
            unit: "ns",
            anchor: Some((resume_anchor, "resume 1 of 10k parked coroutines")),
            target: "ratio <= 2.5",
            met: timers / resume_anchor <= 2.5,
        },
        Row {
            name: "explore throughput (10 goroutines, ~200 ops)",
            value: throughput,
            unit: "runs/s",
            anchor: None,
            target: ">= 15000 runs/s",
            met: throughput >= 15_000.0,
        },
        Row {
            name: "Rust channel ping-pong, per message",
            value: rust_pp,
            unit: "ns",
            anchor: Some((tokio_pp, "tokio current-thread mpsc(1)")),
            target: "ratio <= 0.5",
            met: rust_pp / tokio_pp <= 0.5,
        },
        Row {
            name: "Rust virtual timer firing (10k x 100)",
            value: rust_timers,
            unit: "ns",
            anchor: Some((tokio_timers, "tokio paused clock")),
            target: "ratio <= 0.5",
            met: rust_timers / tokio_timers <= 0.5,
        },
        Row {
            name: "real 1 ms ticker: mean lateness",
            value: late_mean,
            unit: "us",
            anchor: None,
            target: "(reported)",
            met: true,
        },
        Row {
            name: "real 1 ms ticker: max lateness",
            value: late_max,
            unit: "us",
            anchor: None,
            target: "(reported)",
            met: true,
        },
        Row {
            name: "rate limiter allow, per call",
            value: allow,
            unit: "ns",
            anchor: Some((allow_hand, "token bucket by hand in Lua")),
            target: "(reported)",
            met: true,
        },
        Row {
            name: "rate limiter wait (sleeps each time), per call",
            value: wait,
            unit: "ns",
            anchor: Some((wait_hand, "by hand with goroutine.sleep")),
            target: "(reported)",
            met: true,
        },
        Row {
            name: "circuit breaker call (closed), per call",
            value: cb_call,
            unit: "ns",
            anchor: Some((cb_hand, "breaker by hand (table + pcall)")),
            target: "(reported)",
            met: true,
        },
        Row {
            name: "batch processor add (batches of 100), per item",
            value: batch,
            unit: "ns",
            anchor: Some((batch_hand, "buffer + channel by hand")),
            target: "(reported)",
            met: true,
        },
        Row {
            name: "text trace, cost per event",
            value: trace_event,
            unit: "ns",
            anchor: None,
            target: "<= 150 ns",
            met: trace_event <= 150.0,
        },
        Row {
            name: "memory per parked goroutine, text trace on",
            value: traced_mem,
            unit: "B",
            anchor: None,
            target: "<= 1536 B",
            met: traced_mem <= 1536.0,
        },
    ];
    println!(
        "{:<46} {:>12}  {:<38} {:>7}  {:<16} met",
        "benchmark", "figure", "anchor (same run)", "ratio", "target"
    );
    for r in &rows {
        let (anchor_text, ratio) = match r.anchor {
            Some((v, what)) => (format!("{v:.0} ns {what}"), format!("{:.2}", r.value / v)),
            None => ("-".to_string(), "-".to_string()),
        };
        println!(
            "{:<46} {:>9.0} {:<2}  {:<38} {:>7}  {:<16} {}",
            r.name,
            r.value,
            r.unit,
            anchor_text,
            ratio,
            r.target,
            if r.met { "yes" } else { "NO" }
        );
    }
    println!(
        "(jobs for explore: {}; machine: {} cores)",
        a.jobs,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    ExitCode::SUCCESS
}
