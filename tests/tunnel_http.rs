//! braid-tunnel end to end with a real HTTP/1.1 server behind the tunnel: bodies of 0 B,
//! 1 KiB and 100 MiB arrive byte-identical (Rust client and curl), and several `--forward`
//! rules work at once.

#[allow(dead_code)]
#[path = "../examples/braid-tunnel/tunnel.rs"]
mod tunnel;

#[allow(dead_code)]
#[path = "../examples/braid-tunnel/testkit.rs"]
mod testkit;

use std::{path::Path, process::Stdio, sync::atomic::Ordering};

use testkit::{
    harness::{start_client, start_server},
    http::{HttpClient, HttpServer},
    payload::Verifier,
};
use tokio::io::AsyncReadExt;

const SIZES: [u64; 3] = [0, 1024, 100 << 20];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bodies_arrive_byte_identical() {
    testkit::init_logs();
    let web = HttpServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &[web.addr], |_| {}).await;
    client.wait_up(1).await;

    // One keep-alive connection for all sizes, then one fresh connection per size.
    let mut http = HttpClient::connect(client.local[0]).await.unwrap();
    for len in SIZES {
        http.get_pattern(len).await.unwrap();
    }
    http.close().await.unwrap();
    for len in SIZES {
        let mut http = HttpClient::connect(client.local[0]).await.unwrap();
        http.get_pattern(len).await.unwrap();
        http.close().await.unwrap();
    }
    assert_eq!(web.accepted.load(Ordering::SeqCst), 4);
    assert_eq!(client.counters.failed.load(Ordering::SeqCst), 0);
    assert!(client.counters.to_tcp.load(Ordering::SeqCst) > 2 * (100 << 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_byte_identical_bodies() {
    testkit::init_logs();
    let curl = Path::new("/usr/bin/curl");
    if !curl.exists() {
        eprintln!("skipping: /usr/bin/curl not found");
        return;
    }
    let web = HttpServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &[web.addr], |_| {}).await;
    client.wait_up(1).await;

    for len in SIZES {
        let url = format!("http://{}/bytes/{len}", client.local[0]);
        let mut child = tokio::process::Command::new(curl)
            .args([
                "--silent",
                "--show-error",
                "--fail",
                "--max-time",
                "120",
                &url,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut verifier = Verifier::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = stdout.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            verifier.check(&buf[..n]).unwrap();
        }
        assert!(
            child.wait().await.unwrap().success(),
            "curl failed for {len} B"
        );
        assert_eq!(verifier.checked(), len, "curl body length");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_forward_rules_reach_their_own_targets() {
    testkit::init_logs();
    let webs = [
        HttpServer::start().await.unwrap(),
        HttpServer::start().await.unwrap(),
        HttpServer::start().await.unwrap(),
    ];
    let targets: Vec<_> = webs.iter().map(|w| w.addr).collect();
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &targets, |_| {}).await;
    client.wait_up(1).await;
    assert_eq!(client.local.len(), 3);

    for (rule, connections) in [(0, 1), (1, 2), (2, 3)] {
        for _ in 0..connections {
            let mut http = HttpClient::connect(client.local[rule]).await.unwrap();
            http.get_pattern(4096).await.unwrap();
            http.close().await.unwrap();
        }
    }
    let accepted: Vec<u64> = webs
        .iter()
        .map(|w| w.accepted.load(Ordering::SeqCst))
        .collect();
    assert_eq!(accepted, [1, 2, 3], "each rule dialed its own target");
}
