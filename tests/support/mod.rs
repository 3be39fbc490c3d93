//! Helpers shared by the integration tests: session pairs over in-memory pipes and TCP,
//! deterministic data, and a raw-frame peer for hostile input.
#![allow(dead_code)]

pub mod fault;
pub mod pair;
pub mod raw;

use std::{future::Future, io, time::Duration};

use braid::{Config, ErrorCode, Session, Side};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// A client and a server session over an in-memory pipe of `buf` bytes.
pub fn duplex_pair(buf: usize, client: Config, server: Config) -> (Session, Session) {
    let (a, b) = tokio::io::duplex(buf);
    let c = Session::client(a, client).expect("client config");
    let s = Session::server(b, server).expect("server config");
    (c, s)
}

/// Both ends of one loopback TCP connection (client, server), Nagle off.
pub async fn tcp_connection() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    let c = c.unwrap();
    let s = s.unwrap().0;
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    (c, s)
}

/// A client and a server session over a loopback TCP connection.
pub async fn tcp_pair(client: Config, server: Config) -> (Session, Session) {
    let (c, s) = tcp_connection().await;
    (
        Session::client(c, client).unwrap(),
        Session::server(s, server).unwrap(),
    )
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A small deterministic generator for sizes and choices.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// FNV-1a, to compare large transfers by hash.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = Hasher::default();
    h.update(bytes);
    h.finish()
}

/// Incremental FNV-1a: the same value as [`hash`] of all bytes fed, in order.
#[derive(Debug, Clone, Copy)]
pub struct Hasher(u64);

impl Default for Hasher {
    fn default() -> Self {
        Hasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Reads `r` to EOF in pseudo-random read sizes; returns (length, hash) of what arrived.
/// The read buffer starts small and grows while reads fill it, so many idle readers stay
/// cheap and big transfers still use big reads.
pub async fn read_hashed<R: AsyncRead + Unpin>(r: &mut R, seed: u64) -> io::Result<(usize, u64)> {
    let mut rng = Rng(seed | 1);
    let mut buf = vec![0u8; 1024];
    let (mut len, mut h) = (0, Hasher::default());
    loop {
        let want = 1 + rng.below(buf.len() as u64) as usize;
        let n = r.read(&mut buf[..want]).await?;
        if n == 0 {
            return Ok((len, h.finish()));
        }
        len += n;
        h.update(&buf[..n]);
        if n == buf.len() && buf.len() < 64 * 1024 {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// Asserts that `err` is the `io::Error` form of `StreamReset { code, by }`.
pub fn assert_reset(err: &io::Error, code: ErrorCode, by: Side) {
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    match braid::Error::from_io(err) {
        Some(braid::Error::StreamReset { code: c, by: b }) => {
            assert_eq!((*c, *b), (code, by), "{err}");
        }
        other => panic!("expected StreamReset({code}, {by:?}), got {other:?} ({err})"),
    }
}

/// Polls `fut` once with the current task's waker (so a `Pending` future still wakes us).
pub async fn poll_once<F: Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

/// Hang guard: `fut`'s output, or a panic naming `what` if it takes longer than a minute (of
/// the paused test clock where the test pauses it, so it costs no real time).
pub async fn guard<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(60), fut).await {
        Ok(out) => out,
        Err(_) => panic!("hung: {what}"),
    }
}

/// Yields to the other tasks until `cond` holds; panics (instead of hanging) if it never does.
/// For conditions that other tasks' progress makes true, without sleeping.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1_000_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// Waits until `session` has ended and returns why. Round-trip PINGs keep both drivers busy
/// meanwhile; a PING fails as soon as the session ends.
pub async fn wait_closed(session: &Session) -> braid::Error {
    for _ in 0..10_000 {
        if let Some(reason) = session.closed_reason() {
            return reason;
        }
        let _ = guard("ping", session.ping()).await;
        tokio::task::yield_now().await;
    }
    panic!("session never closed: {:?}", session.stats());
}

/// What a [`spawn_hashing_echo`] server saw on one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReport {
    pub id: u32,
    pub len: usize,
    pub hash: u64,
}

/// Serves echo on every accepted stream, reporting the length and hash of the bytes each
/// stream delivered up to its EOF. The task ends with the error that ended `accept`.
pub fn spawn_hashing_echo(
    server: Session,
) -> (
    tokio::task::JoinHandle<braid::Error>,
    tokio::sync::mpsc::UnboundedReceiver<EchoReport>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let stream = match server.accept().await {
                Ok(stream) => stream,
                Err(err) => return err,
            };
            let reports = tx.clone();
            tokio::spawn(async move {
                let id = stream.id();
                let (mut rx, mut tx) = stream.into_split();
                let mut rng = Rng(id as u64 | 1);
                let mut buf = vec![0u8; 1024];
                let (mut len, mut h) = (0, Hasher::default());
                loop {
                    let want = 1 + rng.below(buf.len() as u64) as usize;
                    match rx.read(&mut buf[..want]).await {
                        Ok(0) => break,
                        Ok(n) => {
                            len += n;
                            h.update(&buf[..n]);
                            if tx.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                            if n == buf.len() && buf.len() < 64 * 1024 {
                                buf.resize(buf.len() * 2, 0);
                            }
                        }
                        Err(_) => return,
                    }
                }
                if tx.shutdown().await.is_ok() {
                    let _ = reports.send(EchoReport {
                        id,
                        len,
                        hash: h.finish(),
                    });
                }
            });
        }
    });
    (task, rx)
}

/// Serves echo on every accepted stream until the session ends.
pub fn spawn_echo_server(server: Session) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(stream) = server.accept().await {
            tokio::spawn(async move {
                let (mut rx, mut tx) = stream.into_split();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match rx.read(&mut buf).await {
                        Ok(0) => {
                            let _ = tx.shutdown().await;
                            break;
                        }
                        Ok(n) => {
                            if tx.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            });
        }
    })
}

/// Writes `payload` in pseudo-random write sizes, then shuts down.
pub async fn write_random_chunks<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    payload: &[u8],
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = Rng(seed | 1);
    let mut off = 0;
    while off < payload.len() {
        let n = (1 + rng.below(64 * 1024) as usize).min(payload.len() - off);
        w.write_all(&payload[off..off + n]).await?;
        off += n;
    }
    w.shutdown().await
}
