//! Embedding gosim (issue 13): one Lua script (`flaky_service.lua`) calls `fetch(key)` through a
//! retry with backoff and a circuit breaker; the host decides what `fetch` is.
//!
//! - In simulation, `fetch` is a simulated service: a seeded latency (a gosim sleep, so calls
//!   overlap in virtual time), transient faults from `buggify`, and an outage window placed by the
//!   seed. A sweep of seeds finds the runs where the script's resilience gives up on a key, and
//!   one of them is replayed from its recorded decisions, trace for trace.
//! - In production, the same script runs inside tokio against a real TCP service on 127.0.0.1
//!   (started here), which fails every fourth request.
//!
//! Run: `cargo run --example flaky_service`. `tests/embedding.rs` includes this file and calls its
//! functions, so its logic is tested by `cargo test`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use gosim::lua::{LuaLimits, LuaWorld};
use gosim::runtime::{Config, Decision, Outcome, RealClock, Runtime, TraceFormat, render};
use gosim::scenario::failure_signature;
use gosim::sim::Sim;
use mlua::{IntoLuaMulti, MultiValue, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The script, the same in simulation and production.
pub const SCRIPT: &str = include_str!("flaky_service.lua");

/// Its chunk name in messages (`flaky_service.lua:44: ...`).
pub const SCRIPT_NAME: &str = "flaky_service.lua";

/// How one simulated run went.
#[derive(Debug)]
pub struct SimRun {
    /// Pass, or the failure the script's own assertion raised.
    pub outcome: Outcome,
    /// The trace, as text.
    pub trace: String,
    /// Every decision of the run (to replay it).
    pub decisions: Vec<Decision>,
    /// The outage window the seed chose, in virtual milliseconds.
    pub outage: (u64, u64),
}

/// The key a request names, or a Lua error for the caller's line.
fn key_of(args: &MultiValue) -> mlua::Result<String> {
    match args.front() {
        Some(Value::String(s)) => Ok(s.to_string_lossy()),
        _ => Err(mlua::Error::runtime("expects a key (a string)")),
    }
}

/// Registers the simulated service as `fetch` on `world`. Everything it does comes from the
/// run's seed: the outage window (drawn now), each call's latency and its transient faults.
/// Returns the outage window.
pub fn register_simulated_fetch(world: &LuaWorld, sim: &Sim) -> (u64, u64) {
    let start = sim.random_below(600);
    let outage = (start, start + 40 + sim.random_below(200));
    let (sim, lua) = (sim.clone(), world.lua().weak());
    world
        .register_async("fetch", move |args: MultiValue| {
            let (sim, lua) = (sim.clone(), lua.clone());
            async move {
                let key = key_of(&args)?;
                let latency = 5 + sim.random_below(20);
                sim.sleep(Duration::from_millis(latency)).await;
                let now = sim.now().as_millis() as u64;
                if (outage.0..outage.1).contains(&now) {
                    return Err(mlua::Error::runtime("service unavailable (outage)"));
                }
                if sim.buggify(0.1) {
                    return Err(mlua::Error::runtime("transient error"));
                }
                format!("value-of-{key}").into_lua_multi(&lua.upgrade())
            }
        })
        .expect("fetch is a free global name");
    outage
}

/// Runs the script in simulation under `seed` (following `schedule` when given: a replay).
pub fn simulate(seed: u64, schedule: Option<Vec<Decision>>) -> SimRun {
    let rt = Runtime::simulated(Config {
        seed,
        record: true,
        schedule,
        ..Config::default()
    });
    let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
    let outage = register_simulated_fetch(&world, &Sim::on(&rt));
    world
        .spawn_main(SCRIPT_NAME, SCRIPT)
        .expect("the script compiles");
    let outcome = rt.run();
    let run = SimRun {
        outcome,
        trace: render(&rt.take_events(), TraceFormat::Text),
        decisions: rt.take_decisions(),
        outage,
    };
    rt.shutdown();
    drop(world);
    run
}

/// The seeds of `seeds` whose run fails.
pub fn sweep(seeds: impl IntoIterator<Item = u64>) -> Vec<u64> {
    seeds
        .into_iter()
        .filter(|&seed| !simulate(seed, None).outcome.is_pass())
        .collect()
}

/// Shrinks the failing run of `seed`: the shortest prefix of its recorded decisions that still
/// fails the same way (past a schedule's end every choice is the quietest one: no preemption).
/// Returns the original and the shrunk decision lists, or `None` if the seed passes.
pub fn shrink(seed: u64) -> Option<(Vec<Decision>, Vec<Decision>)> {
    let first = simulate(seed, None);
    let signature = failure_signature(&first.outcome)?;
    let shortest = (0..first.decisions.len())
        .map(|k| first.decisions[..k].to_vec())
        .find(|prefix| {
            failure_signature(&simulate(seed, Some(prefix.clone())).outcome).as_ref()
                == Some(&signature)
        })
        .unwrap_or_else(|| first.decisions.clone());
    Some((first.decisions, shortest))
}

/// The real service: one request per connection, a line `KEY`, answered after 5 ms with
/// `OK value-of-KEY`, except every fourth request, answered `ERR busy`.
async fn serve(listener: tokio::net::TcpListener) {
    let served = Rc::new(Cell::new(0u64));
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let served = served.clone();
        tokio::task::spawn_local(async move {
            let mut reader = BufReader::new(socket);
            let mut line = String::new();
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            let n = served.get() + 1;
            served.set(n);
            let reply = if n.is_multiple_of(4) {
                "ERR busy\n".to_string()
            } else {
                format!("OK value-of-{}\n", line.trim())
            };
            let _ = reader.get_mut().write_all(reply.as_bytes()).await;
        });
    }
}

/// Registers `fetch` as a client of the real service at `addr` (tokio I/O: production only).
pub fn register_real_fetch(world: &LuaWorld, addr: std::net::SocketAddr) {
    let lua = world.lua().weak();
    world
        .register_async("fetch", move |args: MultiValue| {
            let lua = lua.clone();
            async move {
                let key = key_of(&args)?;
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
                match line.trim().split_once(' ') {
                    Some(("OK", value)) => value.to_string().into_lua_multi(&lua.upgrade()),
                    Some(("ERR", why)) => Err(mlua::Error::runtime(why.to_string())),
                    _ => Err(mlua::Error::runtime(format!("bad reply {line:?}"))),
                }
            }
        })
        .expect("fetch is a free global name");
}

/// How the production run went: its outcome and its trace (host calls included).
#[derive(Debug)]
pub struct RealRun {
    /// Pass, or why not.
    pub outcome: Outcome,
    /// The trace, as text (wall-clock times).
    pub trace: String,
}

/// Runs the script in production: a tokio current-thread runtime hosts the real service and the
/// gosim run, on one thread.
pub fn production() -> RealRun {
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&tokio_rt, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind on loopback");
        let addr = listener.local_addr().expect("an address");
        tokio::task::spawn_local(serve(listener));
        let rt = Runtime::new(Config::default(), Box::new(RealClock::new()));
        let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
        register_real_fetch(&world, addr);
        world
            .spawn_main(SCRIPT_NAME, SCRIPT)
            .expect("the script compiles");
        let report = Sim::on(&rt).drive_local().await;
        drop(world);
        RealRun {
            trace: report.trace_text(),
            outcome: report.outcome,
        }
    })
}

fn main() {
    let seeds = 1..=200;
    let failing = sweep(seeds.clone());
    println!(
        "simulation: {} of {} seeds fail",
        failing.len(),
        seeds.count()
    );
    if let Some(&seed) = failing.first() {
        let run = simulate(seed, None);
        println!(
            "seed {seed} (outage {}..{} ms): {}",
            run.outage.0, run.outage.1, run.outcome
        );
        let replay = simulate(seed, Some(run.decisions.clone()));
        assert_eq!(
            replay.trace, run.trace,
            "a replay follows the recorded run exactly"
        );
        println!(
            "replayed seed {seed} from its {} recorded decisions: the same trace ({} lines)",
            run.decisions.len(),
            run.trace.lines().count()
        );
        if let Some((original, shrunk)) = shrink(seed) {
            let again = simulate(seed, Some(shrunk.clone()));
            // 0 decisions: the failure needs no preemption at all, the seeded outage suffices.
            println!(
                "shrunk to {} of {} scheduling decisions, still: {}",
                shrunk.len(),
                original.len(),
                again.outcome.to_string().lines().next().unwrap_or("")
            );
        }
    }
    let real = production();
    println!("production against 127.0.0.1: {}", real.outcome);
    for line in real.trace.lines().filter(|l| l.contains("log.info")) {
        println!("  {line}");
    }
}
