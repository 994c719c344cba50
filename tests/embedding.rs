//! Issue 13: a host program embedding gosim gives its Lua scripts host functions
//! (`LuaWorld::register_async`, `register_fn`, `register_module`); the same script runs against
//! a simulated service (virtual latency, seeded faults) and a real one (tokio I/O); the
//! production-mode standard library opt-in; the `flaky_service` example's logic.

mod common;

#[allow(dead_code)]
#[path = "../examples/flaky_service.rs"]
mod flaky_service;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gosim::lua::{LuaLimits, LuaWorld, StdlibAccess};
use gosim::runtime::{Config, Outcome, RealClock, Runtime, TraceFormat, render};
use gosim::sim::Mutex;
use gosim::sim::Sim;
use mlua::{IntoLuaMulti, MultiValue, Value};

/// A simulated run of `src` (as `t.lua`) with the host functions `setup` registers: its outcome
/// and its text trace.
fn run_sim(seed: u64, src: &str, setup: impl FnOnce(&LuaWorld, &Sim)) -> (Outcome, String) {
    let rt = Runtime::simulated(Config {
        seed,
        ..Config::default()
    });
    let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
    setup(&world, &Sim::on(&rt));
    world.spawn_main("t.lua", src).expect("the script compiles");
    let outcome = rt.run();
    let trace = render(&rt.take_events(), TraceFormat::Text);
    rt.shutdown();
    drop(world);
    (outcome, trace)
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Integer(n)) => *n,
        Some(Value::Number(x)) => *x as i64,
        _ => 0,
    }
}

/// `latency(ms)`: sleeps `ms` of the run's time, returns `ms, "done"`.
fn register_latency(world: &LuaWorld, sim: &Sim) {
    let (sim, lua) = (sim.clone(), world.lua().weak());
    world
        .register_async("latency", move |args: MultiValue| {
            let (sim, lua) = (sim.clone(), lua.clone());
            async move {
                let ms = int(args.front());
                sim.sleep(Duration::from_millis(ms as u64)).await;
                (ms, "done").into_lua_multi(&lua.upgrade())
            }
        })
        .expect("registered");
}

const THREE_CALLS: &str = r#"
local wg = goroutine.wait_group()
local ends = {}
for i, ms in ipairs({100, 200, 300}) do
  wg:add(1)
  goroutine.spawn{name = "caller-" .. i, fn = function()
    local got, word = latency(ms)
    assert(got == ms and word == "done", "results come back as return values")
    ends[i] = goroutine.now()
    wg:done()
  end}
end
wg:wait()
assert(ends[1] == 100 and ends[2] == 200 and ends[3] == 300, "each call took its own latency")
assert(goroutine.now() == 300, "the calls overlapped: all done at 300 ms, not 600")
"#;

#[test]
fn three_overlapping_host_calls_finish_together_at_the_longest_latency() {
    for seed in 1..=30 {
        let (outcome, trace) = run_sim(seed, THREE_CALLS, register_latency);
        assert!(outcome.is_pass(), "seed {seed}: {outcome}\n{trace}");
    }
}

#[test]
fn host_calls_are_in_the_trace_and_runs_are_reproducible() {
    let (outcome, trace) = run_sim(7, THREE_CALLS, register_latency);
    assert!(outcome.is_pass(), "{outcome}");
    for i in 1..=3 {
        let ms = 100 * i;
        assert!(
            trace.contains(&format!("g{}(caller-{i}) host-call latency({ms})", i + 1)),
            "{trace}"
        );
        assert!(
            trace.contains(&format!(
                "{ms}ms g{}(caller-{i}) host-return latency",
                i + 1
            )),
            "{trace}"
        );
    }
    let (_, again) = run_sim(7, THREE_CALLS, register_latency);
    assert_eq!(trace, again, "same seed, same trace");
}

#[test]
fn a_host_error_is_a_lua_error_at_the_callers_line() {
    let setup = |world: &LuaWorld, _: &Sim| {
        world
            .register_async("broken", |_args: MultiValue| async {
                Err::<MultiValue, _>(mlua::Error::runtime("connection refused"))
            })
            .expect("registered");
    };
    let src = "local ok, err = pcall(broken, 1)\n\
               assert(not ok and err == 't.lua:1: broken: connection refused', err)\n\
               broken()\n";
    let (outcome, _) = run_sim(1, src, setup);
    match &outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.location.as_deref(), Some("t.lua:3"), "{outcome}");
            assert!(
                f.message.contains("broken: connection refused"),
                "{outcome}"
            );
        }
        other => panic!("expected an error, got {other}"),
    }
}

#[test]
fn a_host_error_after_a_park_is_raised_at_the_callers_line_too() {
    let setup = |world: &LuaWorld, sim: &Sim| {
        let sim = sim.clone();
        world
            .register_async("slow_fail", move |_args: MultiValue| {
                let sim = sim.clone();
                async move {
                    sim.sleep(Duration::from_millis(5)).await;
                    Err::<MultiValue, _>(mlua::Error::runtime("timed out"))
                }
            })
            .expect("registered");
    };
    let src = "goroutine.sleep(1)\n\
               local ok, err = pcall(slow_fail)\n\
               assert(err == 't.lua:2: slow_fail: timed out', err)\n\
               assert(goroutine.now() == 6)\n";
    let (outcome, trace) = run_sim(1, src, setup);
    assert!(outcome.is_pass(), "{outcome}\n{trace}");
}

#[test]
fn plain_functions_and_modules_return_any_number_of_values() {
    let setup = |world: &LuaWorld, sim: &Sim| {
        let lua = world.lua().weak();
        world
            .register_fn("spread", move |args: MultiValue| {
                let n = int(args.front());
                let lua = lua.upgrade();
                let mut out = MultiValue::new();
                for i in 1..=n {
                    out.push_back(if i == 2 {
                        Value::Nil
                    } else {
                        Value::Integer(i)
                    });
                }
                let _ = &lua;
                Ok(out)
            })
            .expect("registered");
        let lua = world.lua();
        let module = lua.create_table().expect("table");
        let weak = lua.weak();
        let get = world
            .function("kv.get", move |args: MultiValue| {
                let key = match args.front() {
                    Some(Value::String(s)) => s.to_string_lossy(),
                    _ => return Err(mlua::Error::runtime("key must be a string")),
                };
                format!("value of {key}").into_lua_multi(&weak.upgrade())
            })
            .expect("function");
        let sim2 = sim.clone();
        let sim = sim.clone();
        let wait = world
            .async_function("kv.wait", move |_args: MultiValue| {
                let sim = sim.clone();
                async move {
                    sim.sleep(Duration::from_millis(10)).await;
                    Ok(MultiValue::new())
                }
            })
            .expect("async function");
        let many = world
            .async_function("kv.many", move |args: MultiValue| {
                let sim = sim2.clone();
                async move {
                    sim.sleep(Duration::from_millis(1)).await;
                    let mut out = args;
                    out.push_back(Value::Nil);
                    out.push_back(Value::Boolean(true));
                    Ok(out)
                }
            })
            .expect("async function");
        module.set("many", many).expect("set");
        module.set("get", get).expect("set");
        module.set("wait", wait).expect("set");
        world.register_module("kv", module).expect("module");
    };
    let src = r##"
        assert(select("#", spread(3)) == 3)
        local a, b, c = spread(3)
        assert(a == 1 and b == nil and c == 3)
        assert(select("#", spread(0)) == 0)
        assert(select("#", spread(1)) == 1 and spread(1) == 1)
        assert(select("#", spread(2)) == 2 and select(2, spread(2)) == nil)
        local kv = require("kv")
        assert(kv == require "kv")
        assert(kv.get("x") == "value of x")
        assert(select("#", kv.wait()) == 0 and goroutine.now() == 10)
        local ok, err = pcall(kv.get, 42)
        assert(err == "t.lua:12: kv.get: key must be a string", err)
        local n = select("#", kv.many("a", nil, 3))
        local a, b, c, d, e = kv.many("a", nil, 3)
        assert(n == 5 and a == "a" and b == nil and c == 3 and d == nil and e == true)
        assert(select("#", kv.many()) == 2)
    "##;
    let (outcome, trace) = run_sim(1, src, setup);
    assert!(outcome.is_pass(), "{outcome}\n{trace}");
    assert!(trace.contains("host-call kv.get(\"x\")"), "{trace}");
}

#[test]
fn a_goroutine_blocked_in_a_host_call_is_named_in_deadlock_reports() {
    let setup = |world: &LuaWorld, sim: &Sim| {
        let ch = sim.channel::<i64>(0);
        world
            .register_async("wait_for_reply", move |_args: MultiValue| {
                let ch = ch.clone();
                async move {
                    let _ = ch.recv().await;
                    Ok(MultiValue::new())
                }
            })
            .expect("registered");
    };
    let (outcome, trace) = run_sim(1, "local x = 1\nwait_for_reply()\n", setup);
    let text = outcome.to_string();
    assert!(matches!(outcome, Outcome::Fail(_)), "{text}");
    assert!(text.contains("deadlock"), "{text}");
    assert!(
        text.contains("t.lua:2 (in host function wait_for_reply)"),
        "{text}\n{trace}"
    );
}

#[test]
fn a_lock_cycle_through_host_calls_is_found_by_the_wait_for_graph() {
    let setup = |world: &LuaWorld, sim: &Sim| {
        let a = sim.mutex(());
        let b = sim.mutex(());
        for (name, m) in [("lock_a", a.clone()), ("lock_b", b.clone())] {
            world
                .register_async(name, move |_args: MultiValue| {
                    let m = m.clone();
                    async move {
                        // Held past the call (the script deadlocks before any unlock).
                        std::mem::forget(m.lock().await);
                        Ok(MultiValue::new())
                    }
                })
                .expect("registered");
        }
        let _: (Mutex<()>, Mutex<()>) = (a, b);
    };
    let src = "lock_a()\n\
               goroutine.spawn{name = 'other', fn = function()\n\
                 lock_b()\n\
                 goroutine.sleep(10)\n\
                 lock_a()\n\
               end}\n\
               goroutine.sleep(5)\n\
               lock_b()\n";
    let (outcome, trace) = run_sim(1, src, setup);
    let text = outcome.to_string();
    assert!(text.contains("deadlock (cycle)"), "{text}\n{trace}");
    assert!(text.contains("(in host function lock_b)"), "{text}");
    assert!(text.contains("(in host function lock_a)"), "{text}");
}

#[test]
fn awaiting_a_foreign_future_in_a_simulation_fails_the_run_even_under_pcall() {
    let setup = |world: &LuaWorld, _: &Sim| {
        world
            .register_async("fetch", |_args: MultiValue| async {
                tokio::task::yield_now().await;
                Ok(MultiValue::new())
            })
            .expect("registered");
    };
    let src = "local ok = pcall(fetch, 'k')\nwhile true do goroutine.yield() end\n";
    let (outcome, _) = run_sim(1, src, setup);
    match &outcome {
        Outcome::Fail(f) => {
            assert!(
                f.message.contains(
                    "fetch: the host function awaited a future that is not a gosim operation"
                ),
                "{outcome}"
            );
            assert_eq!(f.location.as_deref(), Some("t.lua:1"));
        }
        other => panic!("expected a failure, got {other}"),
    }
}

#[test]
fn a_foreign_future_after_a_gosim_sleep_is_located_at_the_caller_too() {
    let setup = |world: &LuaWorld, sim: &Sim| {
        let sim = sim.clone();
        world
            .register_async("fetch", move |_args: MultiValue| {
                let sim = sim.clone();
                async move {
                    sim.sleep(Duration::from_millis(5)).await;
                    tokio::task::yield_now().await;
                    Ok(MultiValue::new())
                }
            })
            .expect("registered");
    };
    let (outcome, _) = run_sim(1, "local x = 1\nfetch('k')\n", setup);
    match &outcome {
        Outcome::Fail(f) => {
            assert!(f.message.contains("not a gosim operation"), "{outcome}");
            assert_eq!(f.location.as_deref(), Some("t.lua:2"), "{outcome}");
        }
        other => panic!("expected a failure, got {other}"),
    }
}

#[test]
fn a_panicking_host_function_fails_the_run_as_a_panic() {
    let setup = |world: &LuaWorld, _: &Sim| {
        world
            .register_fn("explode", |_args: MultiValue| -> mlua::Result<MultiValue> {
                panic!("host bug")
            })
            .expect("registered");
    };
    let (outcome, _) = run_sim(1, "pcall(explode)\n", setup);
    match &outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, gosim::runtime::FailureKind::Panic, "{outcome}");
            assert!(
                f.message
                    .contains("explode: the host function panicked: host bug")
            );
        }
        other => panic!("expected a panic failure, got {other}"),
    }
}

#[test]
fn bad_names_and_non_functions_are_refused_with_clear_errors() {
    let rt = Runtime::simulated(Config::default());
    let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
    let ok = |_: MultiValue| Ok(MultiValue::new());
    let err = |r: Result<(), gosim::lua::LoadError>| r.expect_err("refused").to_string();
    for taken in [
        "goroutine",
        "sim",
        "log",
        "print",
        "string",
        "io",
        "require",
        "_G",
    ] {
        let e = err(world.register_fn(taken, ok));
        assert!(
            e.contains(&format!("register_fn: {taken:?} is taken")),
            "{e}"
        );
    }
    for bad in ["", "1abc", "end", "a.b", "a b", "fé"] {
        let e = err(world.register_fn(bad, ok));
        assert!(e.contains("the name must be a Lua identifier"), "{e}");
    }
    world.register_fn("once", ok).expect("first time");
    let e = err(world.register_fn("once", ok));
    assert!(e.contains("\"once\" is already defined"), "{e}");
    let e = err(world.register_async("once", |_: MultiValue| async { Ok(MultiValue::new()) }));
    assert!(
        e.contains("register_async: \"once\" is already defined"),
        "{e}"
    );

    let lua = world.lua();
    let t = lua.create_table().expect("table");
    t.set("get", world.function("m.get", ok).expect("f"))
        .expect("set");
    t.set("timeout", 30).expect("set");
    let e = err(world.register_module("m", t.clone()));
    assert!(
        e.contains("m.timeout is not a function (got integer)"),
        "{e}"
    );
    for taken in ["string", "goroutine", "os", "io", "debug"] {
        let e = err(world.register_module(taken, lua.create_table().expect("t")));
        assert!(e.contains("register_module"), "{e}");
        assert!(e.contains(&format!("{taken:?}")), "{e}");
    }
    let e = err(world.register_module("svc..http", lua.create_table().expect("t")));
    assert!(e.contains("identifiers joined by dots"), "{e}");
    world
        .register_module("svc.http", lua.create_table().expect("t"))
        .expect("a dotted name");
    rt.shutdown();
}

#[test]
fn a_host_function_called_outside_a_goroutine_says_so() {
    let rt = Runtime::simulated(Config::default());
    let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
    world
        .register_async("fetch", |_: MultiValue| async { Ok(MultiValue::new()) })
        .expect("registered");
    let e = world
        .lua()
        .load("fetch()")
        .set_name("@host.lua")
        .exec()
        .expect_err("not in a goroutine");
    assert!(
        e.to_string()
            .contains("fetch: a host function can only be called by a goroutine"),
        "{e}"
    );
    rt.shutdown();
}

/// The production half: the same kind of script, hosted in tokio, calling a host function that
/// does tokio I/O against a server on 127.0.0.1. The server answers nobody until it has three
/// requests open at once, so the run can only pass if the three calls overlap.
#[test]
fn in_production_host_calls_do_tokio_io_and_overlap() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let local = tokio::task::LocalSet::new();
    let order = Rc::new(RefCell::new(Vec::<String>::new()));
    let report = local.block_on(&tokio_rt, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind on loopback");
        let addr = listener.local_addr().expect("address");
        let log = order.clone();
        tokio::task::spawn_local(async move {
            let mut open = Vec::new();
            while open.len() < 3 {
                let (socket, _) = listener.accept().await.expect("accept");
                let mut reader = BufReader::new(socket);
                let mut line = String::new();
                reader.read_line(&mut line).await.expect("a request");
                log.borrow_mut().push(format!("request {}", line.trim()));
                open.push((reader, line.trim().to_string()));
            }
            log.borrow_mut().push("all three open".to_string());
            for (reader, key) in open {
                let mut socket = reader.into_inner();
                socket
                    .write_all(format!("value-of-{key}\n").as_bytes())
                    .await
                    .expect("reply");
            }
        });

        let rt = Runtime::new(Config::default(), Box::new(RealClock::new()));
        let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
        let lua = world.lua().weak();
        world
            .register_async("fetch", move |args: MultiValue| {
                let lua = lua.clone();
                async move {
                    let key = match args.front() {
                        Some(Value::String(s)) => s.to_string_lossy(),
                        _ => return Err(mlua::Error::runtime("key must be a string")),
                    };
                    let socket = tokio::net::TcpStream::connect(addr)
                        .await
                        .map_err(mlua::Error::external)?;
                    let mut reader = BufReader::new(socket);
                    reader
                        .get_mut()
                        .write_all(format!("{key}\n").as_bytes())
                        .await
                        .map_err(mlua::Error::external)?;
                    let mut line = String::new();
                    reader
                        .read_line(&mut line)
                        .await
                        .map_err(mlua::Error::external)?;
                    line.trim().to_string().into_lua_multi(&lua.upgrade())
                }
            })
            .expect("registered");
        let log = order.clone();
        let lua = world.lua().weak();
        world
            .register_fn("note", move |args: MultiValue| {
                let _ = lua.upgrade();
                if let Some(Value::String(s)) = args.front() {
                    log.borrow_mut().push(s.to_string_lossy());
                }
                Ok(MultiValue::new())
            })
            .expect("registered");
        world
            .spawn_main(
                "t.lua",
                r#"
                assert(not sim.is_simulated())
                local wg = goroutine.wait_group()
                for _, key in ipairs({"a", "b", "c"}) do
                  wg:add(1)
                  goroutine.spawn(function()
                    local v = fetch(key)
                    assert(v == "value-of-" .. key, v)
                    note("got " .. key)
                    wg:done()
                  end)
                end
                wg:wait()
                "#,
            )
            .expect("the script compiles");
        let sim = Sim::on(&rt);
        let report = tokio::time::timeout(Duration::from_secs(30), sim.drive_local())
            .await
            .expect("the run ends (a hang here means the calls did not overlap)");
        rt.shutdown();
        drop(world);
        report
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
    let order = order.borrow();
    let opened = order
        .iter()
        .position(|l| l == "all three open")
        .expect("the server saw three open requests");
    assert_eq!(opened, 3, "three requests before any answer: {order:?}");
    assert_eq!(
        order.iter().filter(|l| l.starts_with("got ")).count(),
        3,
        "{order:?}"
    );
}

#[test]
fn the_standard_library_opt_in_is_for_production_runs_only() {
    let sim_rt = Runtime::simulated(Config::default());
    let limits = LuaLimits {
        allow_stdlib: StdlibAccess {
            io: true,
            os: false,
        },
        ..LuaLimits::default()
    };
    let e = LuaWorld::new(&sim_rt, limits.clone()).expect_err("refused in a simulation");
    assert!(e.to_string().contains("only in a production run"), "{e}");

    let check = |allow: StdlibAccess, src: &str| {
        let rt = Runtime::new(Config::default(), Box::new(RealClock::new()));
        let world = LuaWorld::new(
            &rt,
            LuaLimits {
                allow_stdlib: allow,
                ..LuaLimits::default()
            },
        )
        .expect("a Lua state");
        world.spawn_main("t.lua", src).expect("compiles");
        let outcome = rt.run();
        rt.shutdown();
        drop(world);
        assert!(outcome.is_pass(), "{allow:?}: {outcome}");
    };
    check(
        StdlibAccess::default(),
        "assert(io == nil and os.getenv == nil and os.execute == nil)\n\
         assert(not pcall(require, 'io'))\n",
    );
    check(
        StdlibAccess {
            io: true,
            os: false,
        },
        "assert(type(io.write) == 'function' and require('io') == io and os.getenv == nil)\n",
    );
    check(
        StdlibAccess {
            io: false,
            os: true,
        },
        "assert(io == nil and type(os.getenv) == 'function' and type(os.time()) == 'number')\n",
    );
    assert_eq!(
        StdlibAccess::parse("io, os"),
        Ok(StdlibAccess { io: true, os: true })
    );
    let e = StdlibAccess::parse("io,net").expect_err("unknown");
    assert!(e.contains("unknown library \"net\""), "{e}");
}

#[test]
fn the_cli_allows_the_standard_library_only_with_real() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("embedding-cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("io.lua");
    std::fs::write(&path, "io.write('written by io\\n')\n").expect("write");
    let p = path.to_str().expect("utf-8");
    let out = common::gosim(&["run", p, "--allow-stdlib", "io"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-stdlib needs --real"), "{err}");
    let out = common::gosim(&["run", p, "--real", "--allow-stdlib", "io,os"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("written by io"));
    let out = common::gosim(&["run", p, "--real", "--allow-stdlib", "net"]);
    assert_eq!(out.status.code(), Some(2));
    let out = common::gosim(&["run", p, "--real"]);
    assert_ne!(out.status.code(), Some(0), "io is absent by default");
}

#[test]
fn the_flaky_service_example_finds_and_replays_a_failing_seed() {
    let failing = flaky_service::sweep(1..=60);
    assert!(
        !failing.is_empty(),
        "some seed's outage defeats the retry and breaker"
    );
    assert!(failing.len() < 60, "transient faults alone are survived");
    let seed = failing[0];
    let run = flaky_service::simulate(seed, None);
    match &run.outcome {
        Outcome::Fail(f) => {
            assert!(f.message.contains("gave up on"), "{}", run.outcome);
            assert!(
                f.location
                    .as_deref()
                    .is_some_and(|l| l.starts_with("flaky_service.lua:")),
                "{}",
                run.outcome
            );
        }
        other => panic!("seed {seed}: expected the script's assertion, got {other}"),
    }
    assert!(
        run.trace.contains("host-call fetch(\"user1-1\")"),
        "{}",
        run.trace
    );
    let again = flaky_service::simulate(seed, None);
    assert_eq!(run.trace, again.trace, "a seed reproduces its run");
    let replay = flaky_service::simulate(seed, Some(run.decisions.clone()));
    assert_eq!(run.trace, replay.trace, "the recorded decisions replay it");
    assert_eq!(run.outcome.to_string(), replay.outcome.to_string());
    let (original, shrunk) = flaky_service::shrink(seed).expect("the seed fails");
    assert!(shrunk.len() <= original.len());
    let calm = flaky_service::simulate(seed, Some(shrunk));
    assert_eq!(
        gosim::scenario::failure_signature(&calm.outcome),
        gosim::scenario::failure_signature(&run.outcome),
        "the shrunk schedule fails the same way"
    );
}

#[test]
fn the_flaky_service_example_passes_against_the_real_service() {
    let real = flaky_service::production();
    assert!(real.outcome.is_pass(), "{}\n{}", real.outcome, real.trace);
    let calls = real.trace.matches("host-call fetch(").count();
    assert!(
        calls > 12,
        "every fourth request fails, so 12 keys take retries: {calls} calls"
    );
    assert!(real.trace.contains("fetched 12 of 12"), "{}", real.trace);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The law behind "calls overlap": n goroutines calling a host function with latencies
    /// L1..Ln are all answered at max(L), each at its own Li, whatever the seed.
    #[test]
    fn concurrent_host_calls_end_at_their_own_latency(
        seed in 0u64..10_000,
        latencies in proptest::collection::vec(0u64..500, 1..6),
    ) {
        let list: Vec<String> = latencies.iter().map(|l| l.to_string()).collect();
        let src = format!(
            "local ls = {{{}}}\n\
             local wg = goroutine.wait_group()\n\
             for i, ms in ipairs(ls) do\n\
               wg:add(1)\n\
               goroutine.spawn(function()\n\
                 latency(ms)\n\
                 assert(goroutine.now() == ms, 'call ' .. i .. ' ended at ' .. goroutine.now())\n\
                 wg:done()\n\
               end)\n\
             end\n\
             wg:wait()\n\
             assert(goroutine.now() == {})\n",
            list.join(", "),
            latencies.iter().max().copied().unwrap_or(0)
        );
        let (outcome, trace) = run_sim(seed, &src, register_latency);
        proptest::prop_assert!(outcome.is_pass(), "{}\n{}", outcome, trace);
    }
}

/// The example's simulated run is a function of its seed in any process: this test runs itself
/// again as a child process (the marker variable selects the child's half) and compares traces.
#[test]
fn the_example_trace_is_the_same_in_another_process() {
    const CHILD: &str = "GOSIM_EMBEDDING_CHILD_SEED";
    const NAME: &str = "the_example_trace_is_the_same_in_another_process";
    if let Ok(seed) = std::env::var(CHILD) {
        let run = flaky_service::simulate(seed.parse().expect("a seed"), None);
        println!("TRACE-BEGIN\n{}TRACE-END", run.trace);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, "3")
        .output()
        .expect("the child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let child = text
        .split_once("TRACE-BEGIN\n")
        .and_then(|(_, rest)| rest.split_once("TRACE-END"))
        .map(|(trace, _)| trace.to_string())
        .unwrap_or_else(|| panic!("no trace from the child:\n{text}"));
    let here = flaky_service::simulate(3, None).trace;
    assert!(here.contains("host-call fetch("), "{here}");
    assert_eq!(child, here, "seed 3 gives the same trace in two processes");
}

#[test]
fn host_calls_work_inside_user_coroutines_and_refuse_to_park_where_lua_cannot_yield() {
    let src = "local gen = coroutine.wrap(function() coroutine.yield(latency(10)) end)\n\
               local v = gen()\n\
               assert(v == 10 and goroutine.now() == 10, 'a host call inside a coroutine')\n";
    let (outcome, trace) = run_sim(1, src, register_latency);
    assert!(outcome.is_pass(), "{outcome}\n{trace}");

    let src = "local t = setmetatable({}, {__tostring = function() latency(5) return 'x' end})\n\
               local ok, err = pcall(tostring, t)\n\
               goroutine.sleep(100)\n";
    let (outcome, _) = run_sim(1, src, register_latency);
    let text = outcome.to_string();
    assert!(
        matches!(outcome, Outcome::Fail(_)) && text.contains("cannot switch goroutines here"),
        "{text}"
    );
}
