//! In-process TCP delay proxy for `long-link`: adds a fixed one-way delay in each direction
//! without capping bandwidth. Each chunk read is stamped with its release time and queued; the
//! reader never waits for the writer, so any amount of data can be "in flight" on the link.
//!
//! It runs on its own single-threaded runtime in its own OS thread, whose CPU time is reported
//! so it can be left out of the implementation's CPU cost.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::impls::{accept_tcp, connect_tcp};
use crate::sys;

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Kernel thread id of the proxy thread (for CPU accounting).
    pub tid: Option<u32>,
}

/// Starts a proxy in front of `target` that delays each direction by `one_way`.
pub fn start(target: SocketAddr, one_way: Duration) -> io::Result<Proxy> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("delay-proxy".into())
        .spawn(move || {
            let _ = tid_tx.send(sys::current_tid());
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return eprintln!("delay proxy: {e}"),
            };
            runtime.block_on(async move {
                if let Err(e) = run(listener, target, one_way).await {
                    eprintln!("delay proxy: {e}");
                }
            });
        })?;
    let tid = tid_rx.recv().map_err(io::Error::other)?;
    Ok(Proxy { addr, tid })
}

async fn run(
    listener: std::net::TcpListener,
    target: SocketAddr,
    one_way: Duration,
) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    loop {
        let inbound = accept_tcp(&listener).await?;
        let outbound = connect_tcp(target).await?;
        let (in_read, in_write) = inbound.into_split();
        let (out_read, out_write) = outbound.into_split();
        pipe(in_read, out_write, one_way);
        pipe(out_read, in_write, one_way);
    }
}

/// Moves bytes from `from` to `to`, each chunk released `delay` after it was read.
/// An empty chunk stands for EOF.
fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    tokio::spawn(async move {
        loop {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            // A read error ends the direction like EOF.
            let n: usize = from.read_buf(&mut buf).await.unwrap_or_default();
            if tx.send((Instant::now() + delay, buf.freeze())).is_err() || n == 0 {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if chunk.is_empty() {
                let _ = to.shutdown().await;
                break;
            }
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
}
