//! braid-tunnel under concurrency: 200 client connections at once through one tunnel, each
//! echoing its own random bytes with a half-close; every byte comes back in order.

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use std::{sync::atomic::Ordering, time::Duration};

use testkit::{
    echo::EchoServer,
    harness::{start_client, start_server},
    payload::Rng,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const CONNECTIONS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_half_closed_echoes() {
    testkit::init_logs();
    let echo = EchoServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &[echo.addr], |_| {}).await;
    client.wait_up(1).await;
    let local = client.local[0];

    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(i);
            // Mostly small, some empty, some spanning many frames and windows.
            let len = match i % 10 {
                0 => 0,
                1 => 512 * 1024 + rng.below(64 * 1024) as usize,
                _ => rng.below(64 * 1024) as usize,
            };
            let data = rng.bytes(len);
            let tcp = TcpStream::connect(local).await?;
            let (mut rx, mut tx) = tcp.into_split();
            let writer = async {
                // Uneven writes, then a half-close: the reply must still arrive in full.
                for piece in data.chunks(7919) {
                    tx.write_all(piece).await?;
                }
                tx.shutdown().await
            };
            let mut echoed = Vec::with_capacity(len);
            let reader = rx.read_to_end(&mut echoed);
            let (w, r) = tokio::join!(writer, reader);
            w?;
            r?;
            assert_eq!(echoed.len(), data.len(), "connection {i}: length");
            assert!(echoed == data, "connection {i}: bytes differ");
            Ok::<u64, std::io::Error>(len as u64)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("echo did not finish within 60 s")
            .unwrap()
            .unwrap();
    }
    assert_eq!(echo.accepted.load(Ordering::SeqCst), CONNECTIONS);
    assert_eq!(client.counters.failed.load(Ordering::SeqCst), 0);
    assert_eq!(client.counters.from_tcp.load(Ordering::SeqCst), total);
    // Every forwarded connection ends; none is left relaying.
    tokio::time::timeout(Duration::from_secs(5), async {
        while client.counters.active.load(Ordering::SeqCst) != 0
            || server.counters.active.load(Ordering::SeqCst) != 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("connections still active after the echoes finished");
}
