//! The upgradeable readers-writer lock (seed 5.3): its laws across many seeds and generated
//! workloads, task-fairness, timeouts, the wait-for graph (a real cycle named, no false alarm),
//! misuse, one lock shared by Lua and Rust, and real mode.
//!
//! Cases ported from parking_lot's `src/rwlock.rs` tests: test_rw_arc (a writer excludes readers
//! and other writers: the laws below), test_rwlock_try_read and test_rwlock_try_write (here a
//! timeout of 0: a try refuses while a writer / any reader / the upgradable read holds),
//! test_rwlock_try_upgrade (an upgradable read is granted while a plain reader holds, refused
//! while another upgradable read holds), and parking_lot's documented task-fair policy (readers
//! queue behind a waiting writer, so a recursive read behind it deadlocks).

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use gosim::patterns::UpgradeableRwLock;
use gosim::sim::Sim;
use gosim::sync::Timeout;
use proptest::prelude::*;

use common::misuse::{check_all, m};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One generated action of a worker: what it takes, how long it holds, its timeout.
#[derive(Debug, Clone)]
enum Action {
    Read(u64),
    Write(u64),
    /// upgradable_rlock, hold, upgrade (with the timeout), hold as writer.
    Upgrade(u64, u64),
    /// rlock, hold, try_upgrade.
    TryUpgrade(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u64..6).prop_map(Action::Read),
        (0u64..6).prop_map(Action::Write),
        (0u64..6, 0u64..6).prop_map(|(a, b)| Action::Upgrade(a, b)),
        (0u64..6).prop_map(Action::TryUpgrade),
    ]
}

/// What is held now, checked at every grant.
#[derive(Default)]
struct Census {
    readers: Cell<i64>,
    upgradable: Cell<i64>,
    writers: Cell<i64>,
    data: Cell<i64>,
    upgrades: Cell<u64>,
}

impl Census {
    fn check(&self, seed: u64) {
        let (r, u, w) = (
            self.readers.get(),
            self.upgradable.get(),
            self.writers.get(),
        );
        assert!(w <= 1, "seed {seed}: {w} writers");
        assert!(u <= 1, "seed {seed}: {u} upgradable holders");
        assert!(
            w == 0 || (r == 0 && u == 0),
            "seed {seed}: a writer with {r} readers and {u} upgradable"
        );
    }
    fn add(&self, c: &Cell<i64>, d: i64, seed: u64) {
        c.set(c.get() + d);
        self.check(seed);
    }
}

/// Laws: writers <= 1; a writer excludes readers (plain and upgradable); at most one upgradable
/// holder; a value read under the upgradable (or the only) read lock is unchanged right after
/// the upgrade; the run ends (nobody is left waiting).
fn check_laws(workers: &[(u64, Vec<Action>)], timeout: Option<u64>, seed: u64) {
    let sim = Sim::with_seed(seed);
    let lock = UpgradeableRwLock::new(sim.runtime(), None);
    let census = Rc::new(Census::default());
    let s = sim.clone();
    let (l0, c0) = (lock.clone(), census.clone());
    let workers = workers.to_vec();
    let report = sim.run(async move {
        for (i, (start, actions)) in workers.into_iter().enumerate() {
            let (s, l, c) = (s.clone(), l0.clone(), c0.clone());
            s.clone().spawn(&format!("w{i}"), async move {
                s.sleep(ms(start)).await;
                let t = timeout.map(ms);
                for a in actions {
                    match a {
                        Action::Read(h) => {
                            if l.rlock(t).await.is_ok() {
                                c.add(&c.readers, 1, seed);
                                s.sleep(ms(h)).await;
                                c.add(&c.readers, -1, seed);
                                l.runlock().unwrap();
                            }
                        }
                        Action::Write(h) => {
                            if l.lock(t).await.is_ok() {
                                c.add(&c.writers, 1, seed);
                                c.data.set(c.data.get() + 1);
                                s.sleep(ms(h)).await;
                                c.add(&c.writers, -1, seed);
                                l.unlock().unwrap();
                            }
                        }
                        Action::Upgrade(h1, h2) => {
                            if l.upgradable_rlock(t).await.is_err() {
                                continue;
                            }
                            c.add(&c.upgradable, 1, seed);
                            s.sleep(ms(h1)).await;
                            let v = c.data.get();
                            if l.upgrade(t).await.is_ok() {
                                assert_eq!(c.data.get(), v, "seed {seed}: written under us");
                                c.upgradable.set(c.upgradable.get() - 1);
                                c.add(&c.writers, 1, seed);
                                c.upgrades.set(c.upgrades.get() + 1);
                                c.data.set(v + 1);
                                s.sleep(ms(h2)).await;
                                c.add(&c.writers, -1, seed);
                                l.unlock().unwrap();
                            } else {
                                assert!(l.holds_upgradable(), "a failed upgrade keeps the read");
                                c.add(&c.upgradable, -1, seed);
                                l.upgradable_runlock().unwrap();
                            }
                        }
                        Action::TryUpgrade(h) => {
                            if l.rlock(t).await.is_err() {
                                continue;
                            }
                            c.add(&c.readers, 1, seed);
                            let v = c.data.get();
                            s.sleep(ms(h)).await;
                            assert_eq!(c.data.get(), v, "seed {seed}: written while we read");
                            // The census lags grants (a granted goroutine counts itself when
                            // it runs), so it may only undercount: success implies alone there;
                            // refusal is checked against the lock's own state.
                            let ok = l.try_upgrade().unwrap();
                            if ok {
                                assert!(
                                    c.readers.get() == 1 && c.upgradable.get() == 0,
                                    "seed {seed}: upgraded while others read"
                                );
                            } else {
                                assert!(
                                    l.readers() > 1 || l.is_upgradable_locked(),
                                    "seed {seed}: refused although the only reader"
                                );
                            }
                            if ok {
                                c.readers.set(c.readers.get() - 1);
                                c.add(&c.writers, 1, seed);
                                c.data.set(v + 1);
                                c.add(&c.writers, -1, seed);
                                l.unlock().unwrap();
                            } else {
                                c.add(&c.readers, -1, seed);
                                l.runlock().unwrap();
                            }
                        }
                    }
                }
            });
        }
    });
    assert!(
        report.outcome.is_pass(),
        "seed {seed}: {}\n{}",
        report.outcome,
        report.trace_text()
    );
    assert_eq!(lock.readers(), 0);
    assert!(!lock.is_write_locked() && !lock.is_upgradable_locked());
    assert_eq!(lock.waiting(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn writers_are_alone_and_upgrades_see_what_they_read(
        workers in prop::collection::vec((0u64..10, prop::collection::vec(action(), 1..5)), 1..6),
        timeout in prop::option::weighted(0.4, 0u64..12),
        seed in 0u64..1_000_000,
    ) {
        check_laws(&workers, timeout, seed);
    }
}

#[test]
fn the_laws_hold_over_a_thousand_seeds() {
    let workers: Vec<(u64, Vec<Action>)> = vec![
        (0, vec![Action::Read(3), Action::Upgrade(2, 2)]),
        (1, vec![Action::Upgrade(3, 1), Action::Read(2)]),
        (1, vec![Action::Write(2), Action::TryUpgrade(1)]),
        (2, vec![Action::TryUpgrade(2), Action::Read(1)]),
        (0, vec![Action::Read(4), Action::Write(1)]),
    ];
    for seed in 0..1000 {
        check_laws(&workers, None, seed);
        check_laws(&workers, Some(3), seed);
    }
}

/// parking_lot's test_rwlock_try_read / try_write / try_upgrade, with a timeout of 0 as the try.
#[test]
fn tries_follow_parking_lot() {
    let src = r#"
local rw = goroutine.rwmutex_upgradeable()
-- A plain reader: another read and the upgradable read are granted; a write is refused.
goroutine.spawn(function() rw:rlock() goroutine.sleep(10) rw:runlock() end)
goroutine.sleep(1)
assert(rw:rlock(0) == true) rw:runlock()
assert(rw:upgradable_rlock(0) == true)
local ok, err = rw:lock(0)
assert(ok == false and err == "timeout")
-- Another upgradable read is refused while one is held.
local other
goroutine.spawn(function() other = {rw:upgradable_rlock(0)} end)
goroutine.sleep(1)
assert(other[1] == false and other[2] == "timeout")
-- An upgrade with a plain reader inside is refused at 0, succeeds once it left.
assert(rw:upgrade(0) == false)
assert(rw:try_upgrade() == false, "a plain reader still holds")
goroutine.sleep(10)
assert(rw:try_upgrade() == true)
-- The writer excludes everyone.
local tries
goroutine.spawn(function() tries = {rw:rlock(0), rw:upgradable_rlock(0), rw:lock(0)} end)
goroutine.sleep(1)
assert(tries[1] == false and tries[2] == false and tries[3] == false)
rw:unlock()
-- The seed's try_upgrade: the only reader becomes the writer.
rw:rlock()
assert(rw:try_upgrade() == true)
rw:unlock()
assert(rw:lock(0) == true)
rw:unlock()
"#;
    common::expect_pass_on_seeds(src);
}

/// try_upgrade fails, and the caller keeps its read lock, while another reader holds it or the
/// upgradable read is held by someone else; with two read holds of its own it fails too.
#[test]
fn a_refused_try_upgrade_keeps_the_read_lock() {
    let src = r#"
local rw = goroutine.rwmutex_upgradeable()
goroutine.spawn(function() rw:upgradable_rlock() goroutine.sleep(10) rw:upgradable_runlock() end)
goroutine.sleep(1)
rw:rlock()
assert(rw:try_upgrade() == false, "someone holds the upgradable read")
local ok, err = rw:lock(0)
assert(ok == false, "still a reader")
rw:rlock()
goroutine.sleep(10)
assert(rw:try_upgrade() == false, "two read holds")
rw:runlock()
assert(rw:try_upgrade() == true)
rw:unlock()
"#;
    common::expect_pass_on_seeds(src);
}

/// Task-fair: a queued writer blocks later readers; a pending upgrade blocks later readers and
/// writers slip in neither before nor during it.
#[test]
fn a_queued_writer_or_a_pending_upgrade_blocks_new_readers() {
    let src = r#"
local rw = goroutine.rwmutex_upgradeable()
local order = {}
rw:rlock()
goroutine.spawn{name = "writer", fn = function()
  rw:lock() order[#order + 1] = "writer" rw:unlock()
end}
goroutine.sleep(1)
goroutine.spawn{name = "reader", fn = function()
  rw:rlock() order[#order + 1] = "reader" rw:runlock()
end}
goroutine.sleep(1)
assert(#order == 0, "the reader queues behind the writer, though only readers hold")
rw:runlock()
goroutine.sleep(1)
assert(order[1] == "writer" and order[2] == "reader")

-- A pending upgrade.
order = {}
goroutine.spawn{name = "holder", fn = function() rw:rlock() goroutine.sleep(10) rw:runlock() end}
goroutine.sleep(1)
assert(rw:upgradable_rlock())
goroutine.spawn{name = "upgrader-reader", fn = function()
  goroutine.sleep(1)
  rw:rlock() order[#order + 1] = "reader" rw:runlock()
end}
goroutine.spawn{name = "upgrader-writer", fn = function()
  goroutine.sleep(2)
  rw:lock() order[#order + 1] = "writer" rw:unlock()
end}
assert(rw:upgrade())
assert(goroutine.now() == 13 and #order == 0)
order[#order + 1] = "upgrader"
rw:unlock()
goroutine.sleep(1)
assert(order[1] == "upgrader" and order[2] == "reader" and order[3] == "writer")
"#;
    common::expect_pass_on_seeds(src);
}

/// Timeouts: a queued writer that gives up lets the readers behind it in at that instant; an
/// upgrade that gives up keeps the upgradable read and lets held-back readers in.
#[test]
fn timeouts_leave_the_queue_and_wake_the_next() {
    let src = r#"
local rw = goroutine.rwmutex_upgradeable()
rw:rlock()
local w, r_at
goroutine.spawn{name = "writer", fn = function() w = {rw:lock(10)} end}
goroutine.sleep(1)
goroutine.spawn{name = "reader", fn = function() rw:rlock() r_at = goroutine.now() rw:runlock() end}
goroutine.sleep(20)
assert(w[1] == false and w[2] == "timeout")
assert(r_at == 10, "the reader went in when the writer gave up")
-- main still reads: an upgrade from someone else waits for it, then gives up.
local up, up_held, r2_at
goroutine.spawn{name = "upgrader", fn = function()
  rw:upgradable_rlock()
  up = {rw:upgrade(10)}
  up_held = rw:try_upgrade() -- still the upgradable holder: false while main reads
  rw:upgradable_runlock()
end}
goroutine.sleep(1)
goroutine.spawn{name = "reader2", fn = function() rw:rlock() r2_at = goroutine.now() rw:runlock() end}
goroutine.sleep(20)
assert(up[1] == false and up[2] == "timeout" and up_held == false)
assert(r2_at == 31, "held back by the pending upgrade, then let in")
rw:runlock()
"#;
    common::expect_pass_on_seeds(src);
}

/// patterns.md "Ties at one instant": the last reader leaves in a goroutine at the very instant
/// the upgrade's deadline falls; timers fire first, so the upgrade times out (under every seed)
/// and the upgrader keeps its upgradable read.
#[test]
fn a_reader_leaving_as_an_upgrade_times_out() {
    let src = r#"
local rw = goroutine.rwmutex_upgradeable()
goroutine.spawn{name = "reader", fn = function() rw:rlock() goroutine.sleep(10) rw:runlock() end}
goroutine.sleep(1)
assert(rw:upgradable_rlock())
local ok, err = rw:upgrade(9)
assert(ok == false and err == "timeout" and goroutine.now() == 10)
goroutine.sleep(1)
assert(rw:upgrade(0) == true, "the reader has left now")
rw:unlock()
"#;
    for seed in 0..100 {
        let r = common::run(src, seed);
        assert!(r.outcome.is_pass(), "seed {seed}: {}", r.outcome);
    }
}

/// An upgrade that waits on a reader who waits on the upgrader: a wait-for cycle, named with
/// both goroutines and their lines.
#[test]
fn an_upgrade_waiting_on_a_reader_waiting_on_it_is_a_named_cycle() {
    let src = r#"
local rw = goroutine.rwmutex_upgradeable()
local m = goroutine.mutex()
goroutine.spawn{name = "reader", fn = function()
  rw:rlock()
  goroutine.sleep(5)
  m:lock()
end}
goroutine.spawn{name = "upgrader", fn = function()
  m:lock()
  rw:upgradable_rlock()
  goroutine.sleep(1)
  rw:upgrade()
end}
goroutine.sleep(100)
"#;
    let r = common::run(src, 1);
    let text = r.outcome.to_string();
    assert!(text.contains("deadlock (cycle)"), "{text}");
    for needle in [
        "reader", "upgrader", "t.lua:7", "t.lua:13", "t.lua:2", "mutex#",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
    // The same through the lock itself: the reader asks for the upgradable read the upgrader holds.
    let src2 = r#"
local rw = goroutine.rwmutex_upgradeable()
goroutine.spawn{name = "reader", fn = function()
  rw:rlock()
  goroutine.sleep(5)
  rw:upgradable_rlock()
end}
goroutine.spawn{name = "upgrader", fn = function()
  rw:upgradable_rlock()
  goroutine.sleep(1)
  rw:upgrade()
end}
goroutine.sleep(100)
"#;
    // The core reports the shortest cycle it finds: the reader waits on a lock it holds itself
    // (its read hold) and that the upgrader holds; both are named, with the reader's line.
    let text = common::run(src2, 1).outcome.to_string();
    assert!(text.contains("deadlock (cycle)"), "{text}");
    for needle in ["g2(reader)", "g3(upgrader)", "t.lua:6", "t.lua:2"] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
}

/// parking_lot's warning: a recursive read behind a waiting writer deadlocks (task-fair); the
/// harness reports it as a cycle: the reader waits on a lock it holds itself (the writer queued
/// ahead waits on that same reader), named with its line and the lock's creation line.
#[test]
fn a_recursive_read_behind_a_waiting_writer_is_a_reported_deadlock() {
    let src = r#"
local rw = goroutine.rwmutex_upgradeable()
goroutine.spawn{name = "writer", fn = function()
  goroutine.sleep(1)
  rw:lock()
end}
rw:rlock()
goroutine.sleep(2)
rw:rlock()
"#;
    let text = common::run(src, 1).outcome.to_string();
    assert!(text.contains("deadlock"), "{text}");
    for needle in ["g1(main)", "t.lua:9", "rwmutex_upgradeable#1", "t.lua:2"] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
}

/// No false alarm: the same shapes with a timed wait, and a reader queued behind a timed writer
/// whose holder waits on it (the writer will give up and let it in).
#[test]
fn timed_waits_make_no_false_cycle() {
    common::expect_pass_on_seeds(
        r#"
local rw = goroutine.rwmutex_upgradeable()
local m = goroutine.mutex()
goroutine.spawn{name = "reader", fn = function()
  rw:rlock()
  goroutine.sleep(5)
  m:lock() m:unlock()
  rw:runlock()
end}
goroutine.spawn{name = "upgrader", fn = function()
  m:lock()
  rw:upgradable_rlock()
  goroutine.sleep(1)
  local ok = rw:upgrade(20)
  assert(ok == false)
  m:unlock()
  rw:upgradable_runlock()
end}
goroutine.sleep(100)
"#,
    );
    common::expect_pass_on_seeds(
        r#"
local rw = goroutine.rwmutex_upgradeable()
local m = goroutine.mutex()
goroutine.spawn{name = "holder", fn = function()
  rw:rlock()
  goroutine.sleep(5)
  m:lock() m:unlock()
  rw:runlock()
end}
goroutine.spawn{name = "writer", fn = function()
  goroutine.sleep(1)
  assert(rw:lock(20) == false)
end}
goroutine.spawn{name = "s", fn = function()
  m:lock()
  goroutine.sleep(2)
  rw:rlock()        -- behind the timed writer; granted when it gives up
  rw:runlock()
  m:unlock()
end}
goroutine.sleep(100)
"#,
    );
}

#[test]
fn lua_and_rust_share_one_lock() {
    use gosim::lua::{LuaLimits, LuaWorld};
    let sim = Sim::with_seed(5);
    let world = LuaWorld::new(sim.runtime(), LuaLimits::default()).unwrap();
    let lock = UpgradeableRwLock::new(sim.runtime(), None);
    world.expose("rw", lock.clone()).unwrap();
    world
        .spawn_main(
            "t.lua",
            r#"
goroutine.sleep(1)
assert(rw:rlock())                      -- shares with the Rust reader
assert(rw:upgradable_rlock(0) == false, "Rust holds the upgradable read")
goroutine.sleep(10)
rw:runlock()                            -- lets Rust's upgrade through
assert(rw:rlock(5) == false, "Rust writes")
"#,
        )
        .unwrap();
    let s = sim.clone();
    s.clone().spawn("rust", async move {
        lock.upgradable_rlock(None).await.unwrap();
        s.sleep(ms(5)).await;
        assert_eq!(lock.try_upgrade(), Ok(false), "Lua reads");
        lock.upgrade(None).await.unwrap();
        assert_eq!(s.now(), ms(11));
        s.sleep(ms(20)).await;
        lock.unlock().unwrap();
        assert_eq!(lock.rlock(Some(Duration::ZERO)).await, Ok(()));
        assert_eq!(lock.lock(Some(Duration::ZERO)).await, Err(Timeout));
        lock.runlock().unwrap();
    });
    let outcome = sim.runtime().run();
    sim.runtime().shutdown();
    assert!(outcome.is_pass(), "{outcome}");
}

#[test]
fn misuse_is_a_clear_error_at_the_users_line() {
    const R: &str = "local rw = goroutine.rwmutex_upgradeable()";
    check_all(&[
        m(
            R,
            "rw:try_upgrade()",
            "rwmutex_upgradeable:try_upgrade",
            "without a held read lock",
        ),
        m(
            R,
            "rw:upgrade()",
            "rwmutex_upgradeable:upgrade",
            "without holding the upgradable",
        ),
        m(
            R,
            "rw:runlock()",
            "rwmutex_upgradeable:runlock",
            "without a held read lock",
        ),
        m(
            R,
            "rw:unlock()",
            "rwmutex_upgradeable:unlock",
            "without holding the write lock",
        ),
        m(
            R,
            "rw:upgradable_runlock()",
            "rwmutex_upgradeable:upgradable_runlock",
            "without holding the upgradable",
        ),
        m(
            R,
            "rw:rlock('soon')",
            "rwmutex_upgradeable:rlock",
            "(got \"soon\")",
        ),
        m(
            R,
            "rw:lock({})",
            "rwmutex_upgradeable:lock",
            "duration must be",
        ),
        m(
            R,
            "rw.rlock()",
            "rwmutex_upgradeable:rlock",
            "expects an upgradeable rwmutex",
        ),
    ]);
}

#[test]
fn it_works_in_real_time() {
    let src = r#"
local rw = goroutine.rwmutex_upgradeable()
local data, inside = 0, 0
local wg = goroutine.wait_group()
for i = 1, 3 do
  wg:add(1)
  goroutine.spawn(function()
    rw:rlock() inside = inside + 1
    goroutine.sleep(20)
    inside = inside - 1 rw:runlock()
    wg:done()
  end)
end
goroutine.sleep(1)
assert(rw:upgradable_rlock())
assert(rw:upgrade())
assert(inside == 0, "the plain readers drained before the upgrade")
data = data + 1
rw:unlock()
wg:wait()
rw:rlock()
assert(rw:try_upgrade() == true)
rw:unlock()
"#;
    let mut opts = gosim::scenario::RunOptions::with_seed(7);
    opts.real = true;
    let r = gosim::scenario::run_source("t.lua", src, &opts).unwrap();
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}
