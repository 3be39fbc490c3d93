//! braid-tunnel end to end with real HTTP software on both sides: a hyper HTTP/1.1 server
//! behind the tunnel, and hyper's client and curl in front of it. Bodies of 0 B, 1 KiB and
//! 100 MiB arrive byte-identical, on one keep-alive connection and on fresh ones; several
//! `--forward` rules work at once.

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::{
    body::{Frame, Incoming},
    client::conn::http1::SendRequest,
    server::conn::http1,
    service::service_fn,
    Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use testkit::{
    harness::{start_client, start_server},
    http::{HttpClient, HttpServer},
    payload::{block, Verifier, BLOCK_LEN},
};
use tokio::{io::AsyncReadExt, net::TcpListener, task::JoinHandle};

const SIZES: [u64; 3] = [0, 1024, 100 << 20];

/// Time one fetch of up to 100 MiB may take before the test fails instead of hanging.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// A hyper HTTP/1.1 server answering `GET /bytes/N` with N bytes of the test pattern;
/// stops when dropped.
struct HyperServer {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for HyperServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HyperServer {
    async fn start() -> HyperServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service_fn(pattern_response))
                        .await;
                });
            }
        });
        HyperServer {
            addr,
            accepted,
            task,
        }
    }
}

/// The pattern body of `len` bytes, streamed in block-sized frames (no copies: every frame
/// starts at a block boundary).
fn pattern_body(
    len: u64,
) -> StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send> {
    let block_len = BLOCK_LEN as u64;
    let frames = (0..len.div_ceil(block_len)).map(move |i| {
        let n = (len - i * block_len).min(block_len) as usize;
        Ok(Frame::data(Bytes::from_static(&block()[..n])))
    });
    StreamBody::new(futures::stream::iter(frames))
}

async fn pattern_response(
    req: Request<Incoming>,
) -> Result<
    Response<StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>,
    Infallible,
> {
    let len = req
        .uri()
        .path()
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<u64>().ok());
    let response = match len {
        Some(len) => Response::builder()
            .header("content-length", len)
            .body(pattern_body(len)),
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(pattern_body(0)),
    };
    Ok(response.unwrap())
}

/// A hyper client connection to `addr`.
async fn hyper_connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// `GET /bytes/{len}` on `sender`; checks the status, the length and every byte.
async fn hyper_fetch(sender: &mut SendRequest<Empty<Bytes>>, addr: SocketAddr, len: u64) {
    let fetch = async {
        sender.ready().await.unwrap();
        let req = Request::get(format!("/bytes/{len}"))
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut verifier = Verifier::default();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                verifier.check(&data).unwrap();
            }
        }
        assert_eq!(verifier.checked(), len, "body length for {len} B");
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .unwrap_or_else(|_| panic!("fetching {len} B took over {FETCH_TIMEOUT:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_bodies_arrive_byte_identical() {
    testkit::init_logs();
    let web = HyperServer::start().await;
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &[web.addr], |_| {}).await;
    client.wait_up(1).await;
    let local = client.local[0];

    // One keep-alive connection for all sizes, then one fresh connection per size.
    let mut keep_alive = hyper_connect(local).await;
    for len in SIZES {
        hyper_fetch(&mut keep_alive, local, len).await;
    }
    drop(keep_alive);
    for len in SIZES {
        hyper_fetch(&mut hyper_connect(local).await, local, len).await;
    }
    assert_eq!(web.accepted.load(Ordering::SeqCst), 4);
    assert_eq!(client.counters.failed.load(Ordering::SeqCst), 0);
    assert!(client.counters.to_tcp.load(Ordering::SeqCst) > 2 * (100 << 20));
}

/// `curl` on the PATH, if installed (`.ci/run` installs it).
fn find_curl() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("curl"))
        .find(|path| path.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_byte_identical_bodies() {
    testkit::init_logs();
    let Some(curl) = find_curl() else {
        // Printed even under libtest's capture, so a skipped run says so.
        println!("SKIPPED curl_fetches_byte_identical_bodies: curl is not on the PATH");
        return;
    };
    let web = HyperServer::start().await;
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &[web.addr], |_| {}).await;
    client.wait_up(1).await;

    for len in SIZES {
        let url = format!("http://{}/bytes/{len}", client.local[0]);
        let mut child = tokio::process::Command::new(&curl)
            .args(["--silent", "--show-error", "--fail", "--max-time", "120"])
            .arg(&url)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
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
    assert_eq!(client.counters.failed.load(Ordering::SeqCst), 0);
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
