//! Helpers shared by the integration tests: session pairs over in-memory pipes and TCP,
//! deterministic data, and a raw-frame peer for hostile input.
#![allow(dead_code)]

pub mod raw;

use braid::{Config, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client and a server session over an in-memory pipe of `buf` bytes.
pub fn duplex_pair(buf: usize, client: Config, server: Config) -> (Session, Session) {
    let (a, b) = tokio::io::duplex(buf);
    let c = Session::client(a, client).expect("client config");
    let s = Session::server(b, server).expect("server config");
    (c, s)
}

/// A client and a server session over a loopback TCP connection.
pub async fn tcp_pair(client: Config, server: Config) -> (Session, Session) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    let c = c.unwrap();
    let s = s.unwrap().0;
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
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
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
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
pub async fn write_random_chunks<W: AsyncWriteExt + Unpin>(w: &mut W, payload: &[u8], seed: u64) -> std::io::Result<()> {
    let mut rng = Rng(seed | 1);
    let mut off = 0;
    while off < payload.len() {
        let n = (1 + rng.below(64 * 1024) as usize).min(payload.len() - off);
        w.write_all(&payload[off..off + n]).await?;
        off += n;
    }
    w.shutdown().await
}
