//! The batch processor (seed 7.2): its laws across many seeds and generated workloads, the
//! behaviour of its references (RxJS `bufferTime(timeSpan, null, maxBufferSize)`: a buffer is
//! emitted when full or when its time span ends, never empty, the last one on completion;
//! OpenTelemetry's BatchSpanProcessor: `maxExportBatchSize`, `scheduledDelay`, `ForceFlush`,
//! `Shutdown` does a final export and later `OnEnd`s are dropped, a bounded queue), exact
//! instants (a batch due at exactly `flush_interval`), `max_queue` blocking with timeouts and
//! close, misuse, one processor shared by Lua and Rust, and a real run.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::{BatchError, BatchOptions, BatchProcessor};
use gosim::sim::Sim;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One producer step: sleep `gap` ms, then add the next item (or flush).
#[derive(Debug, Clone, Copy)]
struct StepSpec {
    gap: u64,
    flush: bool,
}

fn step_spec() -> impl Strategy<Value = StepSpec> {
    (0u64..12, prop::bool::weighted(0.15)).prop_map(|(gap, flush)| StepSpec { gap, flush })
}

#[derive(Default)]
struct Log {
    /// Per producer: (item, instant its add returned Ok).
    added: Vec<(u64, Duration)>,
    /// Batches: items, instant handed to fn, instant fn returned.
    batches: Vec<(Vec<u64>, Duration, Duration)>,
    flushes: Vec<Duration>,
    closed_at: Option<Duration>,
    busy: bool,
    refused: u64,
}

/// The laws on one run with `producers` producers running `steps` each (item ids are
/// `producer * 1000 + k`): each item in exactly one batch and, per producer, in add order;
/// 1 ≤ |batch| ≤ batch_size; fn one batch at a time; a batch smaller than batch_size was due by
/// time, flush or close; a full batch is handed when its last item came (or when fn returned);
/// no item waits longer than flush_interval unless fn was busy; pending ≤ max_queue; close
/// returns once every batch was processed.
fn check_laws(opts: BatchOptions, producers: usize, steps: &[StepSpec], work: u64, seed: u64) {
    let sim = Sim::with_seed(seed);
    let log = Rc::new(RefCell::new(Log::default()));
    let s = sim.clone();
    let log2 = log.clone();
    let steps = steps.to_vec();
    let report = sim.run(async move {
        let (s3, log3) = (s.clone(), log.clone());
        let b: BatchProcessor<u64> =
            BatchProcessor::start(s.runtime(), &s, opts, move |items: Vec<u64>| {
                let (s4, log4) = (s3.clone(), log3.clone());
                async move {
                    let start = s4.now();
                    {
                        let mut l = log4.borrow_mut();
                        assert!(!l.busy, "fn runs one batch at a time");
                        l.busy = true;
                    }
                    s4.sleep(ms(work)).await;
                    let mut l = log4.borrow_mut();
                    l.busy = false;
                    l.batches.push((items, start, s4.now()));
                    Ok(())
                }
            });
        let mut hs = Vec::new();
        for p in 0..producers {
            let (s5, b5, log5, steps5) = (s.clone(), b.clone(), log.clone(), steps.clone());
            hs.push(s.go(async move {
                for (k, st) in steps5.iter().enumerate() {
                    s5.sleep(ms(st.gap)).await;
                    if st.flush {
                        log5.borrow_mut().flushes.push(s5.now());
                        b5.flush();
                        continue;
                    }
                    let id = p as u64 * 1000 + k as u64;
                    b5.add(id, None).await.unwrap();
                    let pending = b5.stats().pending;
                    if let Some(m) = opts.max_queue {
                        assert!(pending <= m, "pending {pending} > max_queue {m}");
                    }
                    log5.borrow_mut().added.push((id, s5.now()));
                }
            }));
        }
        s.join_all(&hs).await;
        log.borrow_mut().closed_at = Some(s.now());
        b.close(None).await.unwrap();
        if b.add(1, None).await == Err(BatchError::Closed) {
            log.borrow_mut().refused += 1;
        }
        let st = b.stats();
        assert_eq!(st.pending, 0);
        assert_eq!(
            st.batches as usize,
            log.borrow().batches.len(),
            "close waits for fn"
        );
        assert!(!log.borrow().busy);
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    let l = log2.borrow();
    assert_eq!(l.refused, 1, "add after close is refused");
    let fi = opts.flush_interval;
    let all: Vec<u64> = l.batches.iter().flat_map(|b| b.0.iter().copied()).collect();
    let mut sorted = all.clone();
    sorted.sort();
    let mut expected: Vec<u64> = l.added.iter().map(|a| a.0).collect();
    expected.sort();
    assert_eq!(
        sorted, expected,
        "seed {seed}: each item in exactly one batch"
    );
    for p in 0..producers as u64 {
        let mine: Vec<u64> = all.iter().copied().filter(|i| i / 1000 == p).collect();
        let mut ordered = mine.clone();
        ordered.sort();
        assert_eq!(mine, ordered, "seed {seed}: batches keep add order");
    }
    let added_at = |id: u64| l.added.iter().find(|a| a.0 == id).unwrap().1;
    let mut prev_end: Option<Duration> = None;
    for (items, h, end) in &l.batches {
        let (h, end) = (*h, *end);
        assert!(
            !items.is_empty() && items.len() <= opts.batch_size,
            "seed {seed}: |batch| = {}",
            items.len()
        );
        let first = items.iter().map(|&i| added_at(i)).min().unwrap();
        let last = items.iter().map(|&i| added_at(i)).max().unwrap();
        let fn_returned_now = prev_end == Some(h);
        // No item waits longer than flush_interval unless fn was busy.
        assert!(
            h <= first + fi || fn_returned_now,
            "seed {seed}: batch {items:?} handed at {h:?}, first item at {first:?}"
        );
        if items.len() == opts.batch_size {
            assert!(
                h == last || fn_returned_now || h <= first + fi,
                "seed {seed}: full batch {items:?} late"
            );
        } else {
            let flushed = l.flushes.iter().any(|&f| f >= first && f <= h);
            let closed = l.closed_at.is_some_and(|c| c <= h);
            assert!(
                h >= first + fi || flushed || closed || fn_returned_now,
                "seed {seed}: partial batch {items:?} at {h:?} without a trigger"
            );
        }
        prev_end = Some(end);
    }
}

fn opts(batch_size: usize, fi: u64, max_queue: Option<usize>) -> BatchOptions {
    BatchOptions {
        batch_size,
        flush_interval: ms(fi),
        max_queue,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn every_item_is_in_one_batch_in_order(
        batch_size in 1usize..6,
        fi in 1u64..40,
        extra in prop::option::of(0usize..4),
        producers in 1usize..3,
        steps in prop::collection::vec(step_spec(), 1..25),
        work in 0u64..15,
        seed in 0u64..1_000_000,
    ) {
        let max_queue = extra.map(|e| batch_size + e);
        check_laws(opts(batch_size, fi, max_queue), producers, &steps, work, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let steps: Vec<StepSpec> = (0..14)
        .map(|i| StepSpec {
            gap: (i * 7) % 5,
            flush: i % 9 == 8,
        })
        .collect();
    for seed in 0..1000 {
        let max_queue = if seed % 2 == 0 { Some(4) } else { None };
        check_laws(opts(3, 6, max_queue), 2, &steps, 4, seed);
    }
}

/// Exact instants: a lone item is handed over at exactly `flush_interval` after it came (the
/// deadline is the first item's, not the last one's); an add at that very instant by another
/// goroutine is a real race (in that batch or the next, the seed decides, both happen); with a
/// busy fn items wait for it and go at once when it returns.
#[test]
fn a_batch_is_due_at_exactly_flush_interval() {
    common::expect_pass_on_seeds(
        r#"
local got = {}
local b = goroutine.batch_processor{batch_size = 10, flush_interval = 100, fn = function(items)
  got[#got + 1] = {at = goroutine.now(), n = #items}
end}
b:add("a")              -- t=0: due at 100
goroutine.sleep(60)
b:add("b")              -- t=60: joins the batch, does not move its deadline
goroutine.sleep(39)
assert(#got == 0)       -- t=99: not yet
goroutine.sleep(2)
assert(#got == 1 and got[1].at == 100 and got[1].n == 2, got[1] and got[1].at)
b:add("c")              -- t=101: a new batch, due at 201
goroutine.sleep(101)
assert(#got == 2 and got[2].at == 201 and got[2].n == 1)
assert(b:close())
"#,
    );
    // The tie at the deadline instant: both outcomes occur across seeds.
    let src = r#"
local sizes = {}
local b = goroutine.batch_processor{batch_size = 10, flush_interval = 100, fn = function(items)
  sizes[#sizes + 1] = #items
end}
b:add(1)
goroutine.spawn(function() goroutine.sleep(100) b:add(2) end)
goroutine.sleep(150)
assert(b:close())
log.info(table.concat(sizes, ","))
"#;
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..=40 {
        let r = common::run(src, seed);
        assert!(r.outcome.is_pass(), "{}", r.outcome);
        seen.insert(common::logs(&r).join(""));
    }
    assert!(seen.iter().all(|s| s == "2" || s == "1,1"), "{seen:?}");
    assert_eq!(seen.len(), 2, "the seed decides the tie: {seen:?}");
}

/// OpenTelemetry's bounded queue: while fn is busy, add buffers up to max_queue, then blocks
/// (FIFO); a blocked add with a timeout fails at its deadline and its item is in no batch; a
/// full batch is due at once (size trigger) and a refused add changes nothing.
#[test]
fn max_queue_blocks_adds_while_fn_is_busy() {
    common::expect_pass_on_seeds(
        r#"
local got = {}
local b = goroutine.batch_processor{batch_size = 2, flush_interval = 1000, max_queue = 3,
  fn = function(items)
    got[#got + 1] = table.concat(items, "")
    goroutine.sleep(100)
  end}
b:add("a") b:add("b")           -- full: handed over at once, fn busy until 100
goroutine.yield()
b:add("c") b:add("d") b:add("e") -- buffered (3 = max_queue)
local ok, err = b:add("x", 0)   -- a try: refused at once
assert(ok == false and err == "timeout")
ok, err = b:add("y", 30)        -- gives up at t=30
assert(ok == false and err == "timeout" and goroutine.now() == 30)
goroutine.spawn(function() assert(b:add("f")) end)
goroutine.sleep(1)
goroutine.spawn(function() assert(b:add("g")) end)
goroutine.sleep(1)
assert(b:stats().pending == 3)
goroutine.sleep(100)            -- t=132: fn took "cd" at 100, admitting f then g (FIFO)
assert(b:close())
assert(table.concat(got, "|") == "ab|cd|ef|g", table.concat(got, "|"))
local s = b:stats()
assert(s.added == 7 and s.batches == 4 and s.pending == 0)
"#,
    );
}

/// RxJS emits the last buffer on completion and OpenTelemetry's Shutdown exports what is left:
/// close is the final flush and waits for it; adds blocked on max_queue when close comes are
/// refused (their items were never added); add after close is `false, "closed"`; flush with
/// nothing pending calls nothing (fn never gets an empty batch); flush hands over everything
/// added before it, in batch_size pieces; a failing fn is counted and the processor goes on.
#[test]
fn close_is_the_final_flush() {
    common::expect_pass_on_seeds(
        r#"
local got = {}
local b = goroutine.batch_processor{batch_size = 2, flush_interval = 5000, max_queue = 2,
  fn = function(items)
    got[#got + 1] = table.concat(items, "")
    if items[1] == "a" then error("boom") end
    goroutine.sleep(10)
  end}
b:flush()                        -- nothing pending: no call
goroutine.sleep(1)
assert(#got == 0)
b:add("a") b:add("b")            -- full at once; fn raises: counted, the loop goes on
goroutine.sleep(1)
b:add("c")
b:flush()                        -- "c" alone, at once
goroutine.sleep(1)
assert(got[2] == "c")
b:add("d") b:add("e")            -- cut at once, fn busy until 12
goroutine.yield()
b:add("f") b:add("g")            -- max_queue reached
local r = {}
goroutine.spawn(function() r[1], r[2] = b:add("h") end)
goroutine.yield()
local ok, err = b:close(1)       -- times out: the final flush goes on
assert(ok == false and err == "timeout")
assert(b:close())                -- waits for it
assert(r[1] == false and r[2] == "closed", tostring(r[2]))
assert(table.concat(got, "|") == "ab|c|de|fg", table.concat(got, "|"))
ok, err = b:add("i")
assert(ok == false and err == "closed")
b:flush()                        -- a no-op once closed
assert(b:close(0))               -- done: even a try succeeds
local s = b:stats()
assert(s.failed == 1 and s.batches == 4 and s.added == 7, s.added)
"#,
    );
}

/// A processor never closed: its goroutine is reported as a leak naming the processor (never a
/// wait-for cycle); an add blocked on max_queue with nobody to drain it is a deadlock, not a
/// cycle either.
#[test]
fn an_unclosed_processor_is_a_leak_not_a_cycle() {
    let r = common::run(
        r#"
local b = goroutine.batch_processor{batch_size = 3, flush_interval = 10, fn = function() end}
b:add(1)
goroutine.sleep(20)
"#,
        1,
    );
    let text = r.outcome.to_string();
    assert!(
        text.contains("leak") && text.contains("batch_processor"),
        "{text}"
    );
    assert!(!text.contains("cycle"), "{text}");
}

#[test]
fn lua_and_rust_share_one_processor() {
    use gosim::lua::LuaValue;
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let got: Rc<RefCell<Vec<usize>>> = Rc::default();
    let g = got.clone();
    let b: BatchProcessor<LuaValue> =
        BatchProcessor::start(sim.runtime(), &sim, opts(3, 50, None), move |items| {
            g.borrow_mut().push(items.len());
            async { Ok(()) }
        });
    world.expose("b", b.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
for i = 1, 7 do assert(b:add(i)) end
goroutine.sleep(60)
assert(b:stats().batches == 3 and b:stats().pending == 0)
assert(b:close())
assert(b:add(8) == false)
"#,
        )
        .unwrap();
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
    assert_eq!(*got.borrow(), vec![3, 3, 1]);
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const F: &str = "fn = function() end";
    let _ = F;
    check_all(&[
        m(
            "",
            "goroutine.batch_processor(3)",
            "goroutine.batch_processor",
            "options must be a table (got 3)",
        ),
        m(
            "",
            "goroutine.batch_processor{batch_size = 3}",
            "goroutine.batch_processor",
            "fn must be a function (got nil)",
        ),
        m(
            "",
            "goroutine.batch_processor{batch_size = 0, fn = print}",
            "goroutine.batch_processor",
            "batch_size must be a positive integer (got 0)",
        ),
        m(
            "",
            "goroutine.batch_processor{batch_size = 2.5, fn = print}",
            "goroutine.batch_processor",
            "(got 2.5)",
        ),
        m(
            "",
            "goroutine.batch_processor{flush_interval = 0, fn = print}",
            "goroutine.batch_processor",
            "flush_interval must be a positive number of milliseconds (got 0)",
        ),
        m(
            "",
            "goroutine.batch_processor{flush_interval = 'soon', fn = print}",
            "goroutine.batch_processor",
            "(got \"soon\")",
        ),
        m(
            "",
            "goroutine.batch_processor{batch_size = 5, max_queue = 4, fn = print}",
            "goroutine.batch_processor",
            "max_queue must be at least batch_size (5) (got 4)",
        ),
    ]);
    // Methods: the processor's goroutine exists, so these are checked caught, by message.
    let r = common::run(
        r#"
local b = goroutine.batch_processor{fn = function() end}
local function msg(f) local ok, e = pcall(f) assert(not ok) log.info(e) end
msg(function() b:add(nil) end)
msg(function() b:add(1, "soon") end)
msg(function() b.add(1) end)
msg(function() b:close("x") end)
assert(b:add(1))                 -- nothing was lost
assert(b:close())
"#,
        1,
    );
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    let logs = common::logs(&r);
    let want = [
        "t.lua:4: batch_processor:add: item must not be nil",
        "t.lua:5: batch_processor:add: duration must be a number of milliseconds (got \"soon\")",
        "t.lua:6: batch_processor:add: expects a batch_processor",
        "t.lua:7: batch_processor:close: duration must be a number of milliseconds (got \"x\")",
    ];
    for (got, want) in logs.iter().zip(want) {
        assert!(got.starts_with(want), "{got:?} vs {want:?}");
    }
    assert_eq!(logs.len(), 4);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local got = {}
local b = goroutine.batch_processor{batch_size = 3, flush_interval = 30, fn = function(items)
  got[#got + 1] = #items
end}
local t0 = goroutine.now()
for i = 1, 4 do assert(b:add(i)) end
goroutine.sleep(60)
assert(#got == 2 and got[1] == 3 and got[2] == 1, #got)
assert(b:close(2000))
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
