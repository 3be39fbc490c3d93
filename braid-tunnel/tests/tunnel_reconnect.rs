//! braid-tunnel when the tunnel connection dies: in-flight connections fail promptly with a
//! reset (never a clean end), the targets' connections are reset too, the client reconnects
//! with backoff, and new connections work again.

use braid_tunnel as tunnel;

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use std::{
    net::SocketAddr,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use testkit::{
    echo::EchoServer,
    harness::{start_client, start_server},
    http::{HttpClient, HttpServer},
    proxy::KillableProxy,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

const IN_FLIGHT: usize = 20;

async fn echo_round_trip(addr: SocketAddr) -> std::io::Result<()> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.write_all(b"ping").await?;
    tcp.shutdown().await?;
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await?;
    assert_eq!(reply, b"ping");
    Ok(())
}

/// Waits until `cond` holds, for at most `secs` seconds.
async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_tunnel_resets_in_flight_connections_and_reconnects() {
    testkit::init_logs();
    let echo = EchoServer::start().await.unwrap();
    let web = HttpServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let proxy = KillableProxy::start(server.addr).await.unwrap();
    let mut client = start_client(proxy.addr, &[echo.addr, web.addr], |_| {}).await;
    client.wait_up(1).await;

    // Connections mid-conversation: bytes went both ways, nobody has sent a FIN.
    let mut conns = Vec::new();
    for _ in 0..IN_FLIGHT {
        let mut tcp = TcpStream::connect(client.local[0]).await.unwrap();
        tcp.write_all(b"hello").await.unwrap();
        let mut reply = [0u8; 5];
        tcp.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"hello");
        conns.push(tcp);
    }
    // And a download that can't finish before the kill (1 TiB).
    let download_addr = client.local[1];
    let download = tokio::spawn(async move {
        let mut http = HttpClient::connect(download_addr).await?;
        http.get_pattern(1 << 40).await
    });
    let counters = client.counters.clone();
    eventually(10, "download under way", || {
        counters.to_tcp.load(Ordering::SeqCst) > 4 << 20
    })
    .await;

    proxy.kill();
    let killed = Instant::now();

    for (i, mut tcp) in conns.into_iter().enumerate() {
        let mut buf = [0u8; 16];
        let read = timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("connection {i} still open 5 s after the tunnel died"));
        let err = read.expect_err("an in-flight connection ended cleanly after the tunnel died");
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset,
            "connection {i}: {err}"
        );
    }
    let result = timeout(Duration::from_secs(5), download)
        .await
        .expect("download still running 5 s after the tunnel died")
        .unwrap();
    assert!(
        result.is_err(),
        "the cut download must fail, not end cleanly"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "errors took {:?}",
        killed.elapsed()
    );
    // The targets' ends were reset too: a silent FIN would look like a finished request.
    let failed = echo.failed.clone();
    eventually(5, "targets' connections reset", || {
        failed.load(Ordering::SeqCst) == IN_FLIGHT as u64
    })
    .await;

    // The client reconnects through the (still listening) proxy and works again.
    client.wait_up(2).await;
    echo_round_trip(client.local[0]).await.unwrap();
    let mut http = HttpClient::connect(client.local[1]).await.unwrap();
    http.get_pattern(1 << 20).await.unwrap();
    http.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_waits_for_the_tunnel_while_the_server_is_down() {
    testkit::init_logs();
    let echo = EchoServer::start().await.unwrap();
    let server_addr = testkit::free_addr();
    let client = start_client(server_addr, &[echo.addr], |o| {
        o.wait_for_tunnel = Duration::from_secs(15);
    })
    .await;

    // The server is not there yet: the client retries with backoff while this connection
    // waits.
    let pending = tokio::spawn(echo_round_trip(client.local[0]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(client.state.borrow().connects, 0);
    let _server = start_server_at(server_addr).await;
    timeout(Duration::from_secs(10), pending)
        .await
        .expect("the waiting connection did not go through")
        .unwrap()
        .unwrap();
}

async fn start_server_at(addr: SocketAddr) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let opts = tunnel::server::ServerOptions::new(testkit::harness::TOKEN.to_vec());
    let server = tunnel::server::Server::bind(&addr.to_string(), opts)
        .await
        .unwrap();
    tokio::spawn(server.run())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_is_reset_when_the_tunnel_stays_down() {
    testkit::init_logs();
    let echo = EchoServer::start().await.unwrap();
    let client = start_client(testkit::free_addr(), &[echo.addr], |o| {
        o.wait_for_tunnel = Duration::from_millis(300);
    })
    .await;
    let mut tcp = TcpStream::connect(client.local[0]).await.unwrap();
    tcp.write_all(b"anyone?").await.unwrap();
    let mut buf = [0u8; 8];
    let read = timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("not reset within 5 s");
    let err = read.expect_err("a connection the tunnel never carried must be reset, not closed");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(client.counters.failed.load(Ordering::SeqCst), 1);
    assert_eq!(echo.accepted.load(Ordering::SeqCst), 0);
}
