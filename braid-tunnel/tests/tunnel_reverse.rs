//! braid-tunnel reverse forwarding (`--reverse`): the server listens for the client and the
//! client dials its own local target; the server must opt in with `--allow-reverse`.

use braid_tunnel as tunnel;

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use std::{net::SocketAddr, sync::atomic::Ordering, time::Duration};

use testkit::{
    harness::{start_client, start_server},
    http::{HttpClient, HttpServer},
};
use tunnel::rules::Rule;

/// Fetches a pattern body of `len` bytes through `addr` on a fresh connection.
async fn fetch(addr: SocketAddr, len: u64) -> std::io::Result<()> {
    let mut http = HttpClient::connect(addr).await?;
    http.get_pattern(len).await?;
    http.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_listens_and_client_dials_back() {
    testkit::init_logs();
    let web = HttpServer::start().await.unwrap();
    let server = start_server(|o| o.allow_reverse = true).await;
    let exposed = testkit::free_addr();
    let rule = Rule {
        listen: exposed.to_string(),
        target: web.addr.to_string(),
    };
    let mut client = start_client(server.addr, &[], move |o| o.reverses = vec![rule]).await;
    client.wait_up(1).await; // the reverse listener is up before the tunnel counts as up

    for len in [0, 1024, 4 << 20] {
        fetch(exposed, len).await.unwrap();
    }
    assert_eq!(web.accepted.load(Ordering::SeqCst), 3);

    // The listener lives as long as the client's session: stop the client, it goes away.
    drop(client);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(exposed).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "server still listening"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_is_refused_unless_the_server_allows_it() {
    testkit::init_logs();
    let web = HttpServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let exposed = testkit::free_addr();
    let rule = Rule {
        listen: exposed.to_string(),
        target: web.addr.to_string(),
    };
    let mut client = start_client(server.addr, &[], move |o| o.reverses = vec![rule]).await;
    client.wait_up(1).await;
    assert!(
        tokio::net::TcpStream::connect(exposed).await.is_err(),
        "the server listened without --allow-reverse"
    );
}
