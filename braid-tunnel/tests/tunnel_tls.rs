//! braid-tunnel over TLS: certificates and keys loaded from PEM files as the CLI does, HTTP
//! through a TLS tunnel, and clients that don't trust the server (or don't speak TLS) never
//! get a tunnel.

use braid_tunnel as tunnel;

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use std::{path::PathBuf, sync::atomic::Ordering, time::Duration};

use testkit::{
    harness::{start_client, start_server},
    http::{HttpClient, HttpServer},
};
use tunnel::tls::{ClientTls, ServerTls};

/// A self-signed certificate for `localhost`, written as PEM files.
struct TestCert {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TestCert {
    fn new(tag: &str) -> TestCert {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir =
            std::env::temp_dir().join(format!("braid-tunnel-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
        TestCert { dir, cert, key }
    }

    fn server(&self) -> ServerTls {
        ServerTls::from_pem_files(&self.cert, &self.key).unwrap()
    }

    fn client(&self) -> ClientTls {
        ClientTls::from_pem_file(&self.cert, Some("localhost")).unwrap()
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_through_a_tls_tunnel() {
    testkit::init_logs();
    let cert = TestCert::new("ok");
    let web = HttpServer::start().await.unwrap();
    let tls = cert.server();
    let server = start_server(move |o| o.tls = Some(tls)).await;
    let tls = cert.client();
    let mut client = start_client(server.addr, &[web.addr], move |o| o.tls = Some(tls)).await;
    client.wait_up(1).await;
    let mut http = HttpClient::connect(client.local[0]).await.unwrap();
    for len in [0, 1024, 8 << 20] {
        http.get_pattern(len).await.unwrap();
    }
    http.close().await.unwrap();
}

/// Starts a TLS server and a client configured by `tweak`; asserts the tunnel never comes
/// up and the target is never dialed.
async fn assert_no_tunnel(tweak: impl FnOnce(&mut tunnel::client::ClientOptions)) {
    let cert = TestCert::new("server");
    let web = HttpServer::start().await.unwrap();
    let tls = cert.server();
    let server = start_server(move |o| o.tls = Some(tls)).await;
    let client = start_client(server.addr, &[web.addr], |o| {
        o.wait_for_tunnel = Duration::from_millis(500);
        tweak(o);
    })
    .await;
    let fetch = async {
        let mut http = HttpClient::connect(client.local[0]).await?;
        http.get_pattern(1024).await
    };
    assert!(fetch.await.is_err(), "fetched through an untrusted tunnel");
    assert_eq!(client.state.borrow().connects, 0, "the tunnel came up");
    assert_eq!(server.counters.sessions.load(Ordering::SeqCst), 0);
    assert_eq!(web.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refuses_a_server_it_does_not_trust() {
    testkit::init_logs();
    let other = TestCert::new("other").client();
    assert_no_tunnel(move |o| o.tls = Some(other)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_client_gets_no_tunnel_from_a_tls_server() {
    testkit::init_logs();
    assert_no_tunnel(|o| o.tls = None).await;
}
