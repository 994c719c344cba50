//! Production mode: the same scheduler and primitives against the wall clock. These tests assert
//! behaviour (durations are at least what was asked, order is kept, outcomes match simulation),
//! never timing precision, and each stays well under a second.

use gosim::runtime::Outcome;
use gosim::scenario::{RunOptions, RunReport, run_source};

fn real(src: &str) -> RunReport {
    let mut o = RunOptions::with_seed(1);
    o.real = true;
    run_source("t.lua", src, &o).expect("the script compiles")
}

fn verdict(o: &Outcome) -> String {
    match o {
        Outcome::Pass => "pass".into(),
        Outcome::Fail(f) => format!("fail {}", f.kind.word()),
        Outcome::Limit(l) => format!("limit {}", l.kind.word()),
    }
}

/// Scenarios whose assertions are about exact virtual instants (`goroutine.now() == 10`) or
/// seeded randomness: they are about simulation, not behaviour that real time can reproduce.
const TIME_SENSITIVE: &[&str] = &[
    "pipeline_patterns",
    "request_reply",
    "debounce",
    "throttle",
    "async_await",
    "canary_leak",
    "channel_close",
    "cond",
    "context_cancel",
    "once",
    "producer_consumer",
    "rwmutex",
    "select_timeout",
    "semaphore",
    "sim_features",
    "timers",
    "wait_group",
    "weighted_semaphore",
    "latch",
    "barrier",
    "rwmutex_upgradeable",
    "rate_limiter",
    "circuit_breaker",
    "retry",
    "bulkhead",
    "coalescing_cache",
    "priority_worker_pool",
    "adaptive_pool",
];

#[test]
fn scenarios_that_are_not_time_sensitive_behave_the_same_in_both_modes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut checked = 0;
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
    {
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        if TIME_SENSITIVE.contains(&stem.as_str()) {
            continue;
        }
        let src = std::fs::read_to_string(path).expect("readable");
        let name = format!("scenarios/{stem}.lua");
        let sim = run_source(&name, &src, &RunOptions::with_seed(1)).expect("loads");
        let mut o = RunOptions::with_seed(1);
        o.real = true;
        let live = run_source(&name, &src, &o).expect("loads");
        assert_eq!(
            verdict(&sim.outcome),
            verdict(&live.outcome),
            "{name}: {}",
            live.outcome
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} scenarios checked");
}

#[test]
fn sleeps_last_at_least_their_duration_and_order_is_kept() {
    let r = real(
        r#"
        assert(not sim.is_simulated())
        assert(sim.buggify(1) == false, "buggify never fires in production")
        local t0 = goroutine.now()
        goroutine.sleep(30)
        assert(goroutine.now() - t0 >= 30, "slept at least 30 ms")
        local ch = goroutine.channel(10)
        for i = 1, 5 do
          -- 25 ms apart: under load two wake-ups 5 ms apart can fall in one scheduler step,
          -- and goroutines runnable together run in the seed's order, not their deadlines'.
          goroutine.spawn(function() goroutine.sleep(25 * i) ch:send(i) end)
        end
        for i = 1, 5 do
          local v = ch:receive()
          assert(v == i, "sleeps 25 ms apart finish in order: got " .. tostring(v) .. " at " .. i)
        end
        local tk = goroutine.ticker(10)
        local last = goroutine.now()
        for i = 1, 3 do
          tk:channel():receive()
          local now = goroutine.now()
          assert(now - last >= 9.0, "ticks at least a period apart")
          last = now
        end
        tk:stop()
        "#,
    );
    assert!(r.outcome.is_pass(), "{}", r.outcome);
}

#[test]
fn deadlocks_and_cycles_are_reported_in_production_too() {
    let r = real("local ch = goroutine.channel()\nch:receive()\n");
    assert_eq!(verdict(&r.outcome), "fail deadlock");
    let r = real("local m = goroutine.mutex()\nm:lock()\nm:lock()\n");
    assert_eq!(verdict(&r.outcome), "fail deadlock (cycle)");
}

#[test]
fn the_cli_runs_for_real_and_prints_logs_as_they_happen() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("hello.lua");
    std::fs::write(
        &path,
        "goroutine.sleep(20)\nlog.info('hello from ' .. tostring(sim.is_simulated()))\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gosim"))
        .args(["run", path.to_str().expect("utf-8"), "--real"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("g1(main) info: hello from false"), "{text}");
}

#[test]
fn a_production_run_hosted_in_tokio_awaits_tokio_io_and_timers() {
    use gosim::sim::Sim;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&tokio_rt, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind on loopback");
        let addr = listener.local_addr().expect("address");
        let client = tokio::task::spawn_local(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.write_all(b"ping").await.expect("write");
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await.expect("read");
            buf
        });
        let sim = Sim::real(gosim::runtime::Config::default());
        let s = sim.clone();
        let report = sim
            .run_local(async move {
                let ch = s.channel::<Vec<u8>>(1);
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 4];
                socket.read_exact(&mut buf).await.expect("read");
                ch.send(buf.to_vec()).await.expect("open");
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                s.sleep(std::time::Duration::from_millis(2)).await;
                let got = ch.recv().await.expect("a value");
                assert_eq!(got, b"ping");
                socket.write_all(b"pong").await.expect("write");
                assert!(s.now() >= std::time::Duration::from_millis(4));
            })
            .await;
        assert_eq!(&client.await.expect("client"), b"pong");
        report
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}

#[test]
fn a_simulated_task_cannot_await_tokio() {
    let sim = gosim::sim::Sim::with_seed(1);
    let report = sim.run(async { tokio::task::yield_now().await });
    match &report.outcome {
        Outcome::Fail(f) => assert!(f.message.contains("not a gosim operation"), "{}", f.message),
        other => panic!("expected a clear failure, got {other}"),
    }
}
