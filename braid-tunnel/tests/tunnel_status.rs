//! braid-tunnel's status line: the numbers it prints (tunnel up, open streams, connections,
//! bytes each way, RTT) match what is going on, and its format.

use braid_tunnel as tunnel;

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use std::{sync::atomic::Ordering, time::Duration};

use testkit::{
    echo::EchoServer,
    harness::{start_client, start_server},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tunnel::metrics::Snapshot;

#[test]
fn the_status_line_reads_as_documented() {
    let snap = Snapshot {
        tunnels_up: 1,
        open_streams: 3,
        active: 2,
        failed: 1,
        bytes_out: 1_258_291,
        bytes_in: 30 * 1024,
        rtt: Some(Duration::from_micros(210)),
    };
    assert_eq!(
        snap.to_string(),
        "streams 3, connections 2 (1 failed), sent 1.2 MiB, received 30.0 KiB, rtt 0.21 ms"
    );
    let quiet = Snapshot::default();
    assert_eq!(
        quiet.to_string(),
        "streams 0, connections 0 (0 failed), sent 0 B, received 0 B, rtt -"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_numbers_follow_a_live_connection() {
    testkit::init_logs();
    let echo = EchoServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &[echo.addr], |_| {}).await;
    client.wait_up(1).await;
    let session = client.state.borrow().session.clone().expect("tunnel up");
    let before = Snapshot::take(&client.counters, std::slice::from_ref(&session));
    assert_eq!(before.tunnels_up, 1);
    assert_eq!((before.active, before.failed), (0, 0));
    assert!(before.rtt.is_some(), "the startup PINGs measured the RTT");

    // One forwarded connection, echoed and still open.
    let mut tcp = TcpStream::connect(client.local[0]).await.unwrap();
    let sent = vec![7u8; 1000];
    tcp.write_all(&sent).await.unwrap();
    let mut back = vec![0u8; sent.len()];
    tcp.read_exact(&mut back).await.unwrap();
    assert_eq!(back, sent);

    let live = Snapshot::take(&client.counters, std::slice::from_ref(&session));
    assert_eq!(live.tunnels_up, 1);
    assert_eq!(live.active, 1, "one connection relaying");
    assert_eq!(
        live.open_streams,
        before.open_streams + 1,
        "its stream is open"
    );
    assert_eq!(live.bytes_out - before.bytes_out, 1000);
    assert_eq!(live.bytes_in - before.bytes_in, 1000);
    assert!(live.to_string().contains("connections 1 (0 failed)"));

    // Closed both ways: no longer counted.
    tcp.shutdown().await.unwrap();
    assert_eq!(tcp.read(&mut back).await.unwrap(), 0);
    drop(tcp);
    let idle = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let snap = Snapshot::take(&client.counters, std::slice::from_ref(&session));
            if snap.active == 0 && snap.open_streams == before.open_streams {
                return snap;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the closed connection still counted after 10 s");
    assert_eq!(idle.failed, 0);
    assert_eq!(client.counters.opened.load(Ordering::SeqCst), 1);
}
