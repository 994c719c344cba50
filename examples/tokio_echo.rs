//! gosim inside a tokio program (production mode): a gosim "server" task accepts a TCP
//! connection on 127.0.0.1 with tokio, hands each line to a gosim worker over a gosim channel
//! guarded by a gosim semaphore, and writes the answer back; a tokio task is the client. One
//! thread, one `LocalSet`: gosim tasks await tokio futures, tokio tasks run while gosim waits.
//!
//! Run: `cargo run --example tokio_echo`
//!
//! What is deterministic here: gosim's scheduling choices still come from the seed, but when
//! the socket becomes ready depends on the operating system, so the trace may differ from run to
//! run. Simulated runs (`Sim::with_seed`) cannot await tokio futures at all.

use std::time::Duration;

use gosim::runtime::Config;
use gosim::sim::Sim;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&tokio_rt, async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind on loopback");
        let addr = listener.local_addr().expect("address");

        // The client: a plain tokio task.
        let client = tokio::task::spawn_local(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(b"hello gosim\n").await.expect("write");
            let mut line = String::new();
            BufReader::new(stream)
                .read_line(&mut line)
                .await
                .expect("read");
            line
        });

        let sim = Sim::real(Config {
            trace: true,
            ..Config::default()
        });
        let s = sim.clone();
        let report = sim
            .run_local(async move {
                let jobs = s.channel::<String>(0);
                let answers = s.channel::<String>(0);
                let limit = s.semaphore(1);
                let (j, a) = (jobs.clone(), answers.clone());
                s.spawn_daemon("worker", async move {
                    while let Some(line) = j.recv().await {
                        let permit = limit.acquire().await;
                        a.send(line.to_uppercase()).await.expect("open");
                        drop(permit);
                    }
                });
                // The server: tokio I/O awaited from a gosim task.
                let (socket, _) = listener.accept().await.expect("accept");
                let (read, mut write) = socket.into_split();
                let mut line = String::new();
                BufReader::new(read)
                    .read_line(&mut line)
                    .await
                    .expect("read");
                jobs.send(line).await.expect("open");
                let answer = answers.recv().await.expect("an answer");
                write.write_all(answer.as_bytes()).await.expect("write");
                s.sleep(Duration::from_millis(1)).await;
            })
            .await;
        let reply = client.await.expect("client task");
        println!("client got: {}", reply.trim_end());
        assert_eq!(reply, "HELLO GOSIM\n");
        report
    });
    println!("{}", report.outcome);
    assert!(report.outcome.is_pass());
}
