//! The seven scenarios a Rust user writes first (issue 14's "Done means"), with the public API
//! only, as a new user would from `docs/rust-api.md`:
//!
//! 1. a bounded producer/consumer delivers every item exactly once, over 500 seeds;
//! 2. a lock-order inversion beside a ticker is found, named with both tasks and lines, and
//!    reproduces from its seed;
//! 3. a proptest property over the inputs *and* the seed;
//! 4. an insta snapshot of a run's trace;
//! 5. a Rust task and a Lua goroutine on one channel;
//! 6. timeouts, `gosim::select!` and contexts;
//! 7. the same service code in production inside tokio, fed by a real TCP socket.

use std::time::Duration;

use gosim::Sim;
use gosim::sync::Channel;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// 1. ---------------------------------------------------------------------------------------------

/// Three producers, a buffer of 2, two consumers that return what they took through their join
/// handles: whatever the interleaving, every item arrives once.
#[gosim::test(runs = 500)]
async fn bounded_producer_consumer_delivers_each_item_exactly_once(sim: Sim) {
    const PRODUCERS: u64 = 3;
    const ITEMS: u64 = 10;
    let ch = sim.channel::<u64>(2);
    let done = sim.wait_group();
    for p in 0..PRODUCERS {
        let (tx, s, done) = (ch.clone(), sim.clone(), done.clone());
        done.add(1).expect("add");
        sim.spawn(&format!("producer-{p}"), async move {
            for i in 0..ITEMS {
                if s.buggify(0.1) {
                    s.sleep(ms(1)).await;
                }
                tx.send(p * 100 + i)
                    .await
                    .expect("open until every producer is done");
            }
            done.done();
        });
    }
    let (closer, waiter) = (ch.clone(), done.clone());
    sim.spawn("closer", async move {
        waiter.wait().await;
        closer.close();
    });
    let consumers: Vec<_> = (0..2)
        .map(|c| {
            let rx = ch.clone();
            sim.spawn(&format!("consumer-{c}"), async move {
                let mut got = Vec::new();
                while let Some(v) = rx.recv().await {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.await.expect("a consumer does not panic"));
    }
    all.sort_unstable();
    let expected: Vec<u64> = (0..PRODUCERS)
        .flat_map(|p| (0..ITEMS).map(move |i| p * 100 + i))
        .collect();
    assert_eq!(all, expected, "every item exactly once");
}

// 2. ---------------------------------------------------------------------------------------------

/// Two tasks take two locks in opposite orders while a ticker keeps the run busy (so the run
/// never goes idle: only the wait-for graph can tell it is stuck).
async fn lock_inversion_beside_a_ticker(sim: Sim) {
    let accounts = sim.mutex(100_i64);
    let audit = sim.mutex(Vec::<String>::new());
    let (_ticker, ticks) = sim.ticker(ms(1));
    sim.spawn_daemon(
        "metrics",
        async move { while ticks.recv().await.is_some() {} },
    );
    let (a1, l1, s1) = (accounts.clone(), audit.clone(), sim.clone());
    let transfer = sim.spawn("transfer", async move {
        let mut balance = a1.lock().await;
        s1.sleep(ms(2)).await;
        let mut log = l1.lock().await;
        *balance -= 10;
        log.push("transfer".to_string());
    });
    let (a2, l2, s2) = (accounts.clone(), audit.clone(), sim.clone());
    let report = sim.spawn("report", async move {
        let mut log = l2.lock().await;
        s2.sleep(ms(2)).await;
        let balance = a2.lock().await;
        log.push(format!("balance {}", *balance));
    });
    transfer.await.expect("transfer");
    report.await.expect("report");
}

#[test]
fn a_lock_inversion_beside_a_ticker_is_named_with_tasks_and_lines_and_reproduces() {
    let failure = gosim::Check::new()
        .runs(20)
        .name("a_lock_inversion")
        .try_run(lock_inversion_beside_a_ticker)
        .expect_err("the inversion deadlocks");
    let text = failure.to_string();
    assert!(text.contains("cycle"), "{text}");
    assert!(
        text.contains("transfer") && text.contains("report"),
        "{text}"
    );
    assert!(
        text.contains("tests/user_scenarios.rs:"),
        "names our lines: {text}"
    );
    let seed_line = format!("GOSIM_SEED={} cargo test a_lock_inversion", failure.seed);
    assert!(text.contains(&seed_line), "{text}");
    // The reproduce line's seed alone fails the same way, with the same report.
    let again = gosim::Check::new()
        .name("a_lock_inversion")
        .env([("GOSIM_SEED", failure.seed.to_string())])
        .try_run(lock_inversion_beside_a_ticker)
        .expect_err("the seed alone fails");
    assert_eq!(again.seed, failure.seed);
    assert!(again.to_string().contains(&seed_line));
}

// 3. ---------------------------------------------------------------------------------------------

/// A fan-in of `producers` producers over a channel of capacity `cap`: per producer, the order is
/// kept; across producers, nothing is lost. proptest draws the shape and the seed, and shrinks
/// both when the property breaks.
fn fan_in_run(seed: u64, cap: usize, producers: u64, items: u64) -> (bool, Vec<(u64, u64)>) {
    let sim = Sim::with_seed(seed);
    let s = sim.clone();
    let report = sim.run(async move {
        let ch = s.channel::<u64>(cap);
        for p in 0..producers {
            let (tx, t) = (ch.clone(), s.clone());
            s.spawn(&format!("p{p}"), async move {
                for i in 0..items {
                    t.sleep(ms(t.random_below(3))).await;
                    tx.send(p * 1000 + i).await.expect("open");
                }
            });
        }
        let mut got = Vec::new();
        for _ in 0..producers * items {
            let v = ch.recv().await.expect("open");
            got.push((v / 1000, v % 1000));
        }
        got
    });
    (report.outcome.is_pass(), report.value.unwrap_or_default())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn fan_in_keeps_each_producers_order(
        seed in 0u64..10_000,
        cap in 0usize..4,
        producers in 1u64..4,
        items in 0u64..8,
    ) {
        let (passed, got) = fan_in_run(seed, cap, producers, items);
        proptest::prop_assert!(passed);
        proptest::prop_assert_eq!(got.len() as u64, producers * items);
        for p in 0..producers {
            let mine: Vec<u64> = got.iter().filter(|(q, _)| *q == p).map(|(_, i)| *i).collect();
            proptest::prop_assert_eq!(mine, (0..items).collect::<Vec<_>>());
        }
        // The same seed is the same run.
        proptest::prop_assert_eq!(fan_in_run(seed, cap, producers, items).1, got);
    }
}

// 4. ---------------------------------------------------------------------------------------------

/// A run's trace is a value: snapshot it, and any change of schedule shows in review.
#[test]
fn a_request_reply_trace_is_a_snapshot() {
    let sim = Sim::with_seed(42);
    let s = sim.clone();
    let report = sim.run(async move {
        let requests = s.channel::<u64>(0);
        let replies = s.channel::<u64>(0);
        let (rq, rp, t) = (requests.clone(), replies.clone(), s.clone());
        s.spawn("server", async move {
            while let Some(n) = rq.recv().await {
                t.sleep(ms(5)).await;
                rp.send(n * n).await.expect("open");
            }
        });
        let mut sum = 0;
        for n in 1..=3 {
            requests.send(n).await.expect("open");
            sum += replies.recv().await.expect("a reply");
        }
        requests.close();
        sum
    });
    report.assert_pass();
    assert_eq!(report.value, Some(14));
    assert_eq!(report.stats.end_time, ms(15));
    insta::assert_snapshot!(report.trace_text());
}

// 5. ---------------------------------------------------------------------------------------------

/// A Lua goroutine produces jobs, a Rust task squares them, the Lua side checks the answers: one
/// channel type, one scheduler, one seed.
#[test]
fn a_rust_task_and_a_lua_goroutine_share_channels() {
    use gosim::lua::{LuaLimits, LuaValue, LuaWorld};
    use gosim::runtime::{Config, Runtime};

    for seed in 0..20 {
        let rt = Runtime::simulated(Config {
            seed,
            ..Config::default()
        });
        let world = LuaWorld::new(&rt, LuaLimits::default()).expect("a Lua state");
        let sim = Sim::on(&rt);
        let jobs: Channel<LuaValue> = sim.channel(1);
        let answers: Channel<LuaValue> = sim.channel(1);
        world.expose_channel("jobs", &jobs).expect("exposed");
        world.expose_channel("answers", &answers).expect("exposed");
        world
            .spawn_main(
                "squares.lua",
                r#"
                goroutine.spawn(function()
                  for i = 1, 5 do jobs:send(i) end
                  jobs:close()
                end)
                local sum = 0
                for _ = 1, 5 do sum = sum + answers:receive() end
                assert(sum == 1 + 4 + 9 + 16 + 25, "sum " .. sum)
                "#,
            )
            .expect("the script loads");
        sim.spawn("squarer", async move {
            while let Some(LuaValue(v)) = jobs.recv().await {
                let n = v.as_i64().expect("an integer job");
                answers
                    .send(LuaValue(mlua::Value::Integer(n * n)))
                    .await
                    .expect("open");
            }
        });
        let outcome = rt.run();
        rt.shutdown();
        assert!(outcome.is_pass(), "seed {seed}: {outcome}");
    }
}

// 6. ---------------------------------------------------------------------------------------------

/// A client asks a slow backend under a 20 ms deadline, with a heartbeat ticker beside it:
/// `gosim::select!` over the reply, the context and the ticks. The deadline wins at exactly 20 ms
/// of virtual time; the backend's late reply is still taken afterwards with a non-blocking
/// `default` arm; `sim.timeout` bounds a whole task; a cancelled parent cancels its child.
#[gosim::test(runs = 200)]
async fn deadlines_select_and_contexts_work_in_virtual_time(sim: Sim) {
    use gosim::sync::ContextError;

    let replies = sim.channel::<String>(1);
    let (r, s) = (replies.clone(), sim.clone());
    sim.spawn("backend", async move {
        s.sleep(ms(50)).await;
        r.send("late".to_string())
            .await
            .expect("room for one reply");
    });
    let ctx = sim.context().with_timeout(ms(20));
    let (ticker, ticks) = sim.ticker(ms(5));
    let mut heartbeats = 0;
    let answer = loop {
        gosim::select! {
            v = replies.recv() => break Ok(v),
            e = ctx.done() => break Err(e),
            _ = ticks.recv() => heartbeats += 1,
        }
    };
    ticker.stop();
    assert_eq!(answer, Err(ContextError::DeadlineExceeded));
    assert_eq!(sim.now(), ms(20), "the deadline, to the nanosecond");
    // Ticks at 5, 10 and 15 ms; at 20 ms the deadline and a tick are both ready and the seed
    // picks one, as Go's select does.
    assert!((3..=4).contains(&heartbeats), "{heartbeats} heartbeats");
    let early = gosim::select! {
        v = replies.recv() => v,
        default => None,
    };
    assert_eq!(early, None, "nothing yet: default");
    // The reply comes at 50 ms; waking at 50 ms too would race it (a sweep finds the seeds where
    // main runs first), so wait past it.
    sim.sleep(ms(31)).await;
    let late = gosim::select! {
        v = replies.recv() => v,
        default => None,
    };
    assert_eq!(late.as_deref(), Some("late"));

    // A whole task under a time limit: it keeps running after the limit, as in Go.
    let s = sim.clone();
    let slow = sim.timeout(ms(10), async move {
        s.sleep(ms(15)).await;
        7
    });
    assert!(slow.await.is_err(), "timed out at 10 ms");
    let s = sim.clone();
    let fast = sim.timeout(ms(10), async move {
        s.sleep(ms(5)).await;
        7
    });
    assert_eq!(fast.await.ok(), Some(7));

    // Cancellation flows down the context tree.
    let parent = sim.context().with_cancel();
    let child = parent.with_timeout(ms(1_000));
    let waiter = sim.spawn("waiter", async move { child.done().await });
    sim.sleep(ms(1)).await;
    parent.cancel();
    assert_eq!(waiter.await.expect("no panic"), ContextError::Canceled);
}

// 7. ---------------------------------------------------------------------------------------------

/// The service under test: reads lines from `requests`, answers each upper-cased on `replies`
/// after a processing delay, and counts them. It knows nothing of sockets or of simulation.
async fn upper_service(sim: Sim, requests: Channel<String>, replies: Channel<String>) -> usize {
    let mut served = 0;
    while let Some(line) = requests.recv().await {
        sim.sleep(ms(1)).await;
        replies.send(line.to_uppercase()).await.expect("open");
        served += 1;
    }
    replies.close();
    served
}

#[test]
fn the_service_runs_simulated() {
    let sim = Sim::with_seed(3);
    let s = sim.clone();
    let report = sim.run(async move {
        let (requests, replies) = (s.channel::<String>(1), s.channel::<String>(1));
        let service = s.spawn(
            "service",
            upper_service(s.clone(), requests.clone(), replies.clone()),
        );
        for word in ["ping", "pong"] {
            requests.send(word.to_string()).await.expect("open");
        }
        requests.close();
        let mut got = Vec::new();
        while let Some(r) = replies.recv().await {
            got.push(r);
        }
        assert_eq!(got, ["PING", "PONG"]);
        service.await.expect("the service")
    });
    report.assert_pass();
    assert_eq!(report.value, Some(2));
}

#[test]
fn the_same_service_runs_in_production_behind_a_tcp_socket() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let local = tokio::task::LocalSet::new();
    let (report, echoed) = local.block_on(&tokio_rt, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind on loopback");
        let addr = listener.local_addr().expect("address");
        let client = tokio::task::spawn_local(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (read, mut write) = stream.into_split();
            write.write_all(b"ping\npong\n").await.expect("write");
            write.shutdown().await.expect("half-close");
            let mut lines = BufReader::new(read).lines();
            let mut got = Vec::new();
            while let Some(l) = lines.next_line().await.expect("read") {
                got.push(l);
            }
            got
        });
        let sim = Sim::real(gosim::runtime::Config::default());
        let s = sim.clone();
        let report = sim
            .run_local(async move {
                let (socket, _) = listener.accept().await.expect("accept");
                let (read, mut write) = socket.into_split();
                let (requests, replies) = (s.channel::<String>(1), s.channel::<String>(1));
                let service = s.spawn(
                    "service",
                    upper_service(s.clone(), requests.clone(), replies.clone()),
                );
                // A gosim task awaiting tokio's socket: the TCP future feeds the channel.
                s.spawn("reader", async move {
                    let mut lines = BufReader::new(read).lines();
                    while let Some(l) = lines.next_line().await.expect("read") {
                        requests.send(l).await.expect("open");
                    }
                    requests.close();
                });
                while let Some(r) = replies.recv().await {
                    write
                        .write_all(format!("{r}\n").as_bytes())
                        .await
                        .expect("write");
                }
                write.shutdown().await.expect("close");
                service.await.expect("the service")
            })
            .await;
        (report, client.await.expect("client"))
    });
    report.assert_pass();
    assert_eq!(report.value, Some(2));
    assert_eq!(echoed, ["PING", "PONG"]);
    // Real time passed: at least the two 1 ms processing delays.
    assert!(report.stats.end_time >= ms(2));
}
