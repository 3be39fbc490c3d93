//! A quiet session gives memory back (spec §11 L23, `Config::idle_release`): a session that
//! once moved megabytes and then went quiet holds no more heap than a small floor above a
//! never-used one, and a stream that went quiet after a burst holds no buffer. Measured by
//! counting heap bytes with a global allocator, so the tests take a lock and run one at a
//! time; over loopback TCP, whose buffers are the kernel's, not the heap's.
#![allow(unsafe_code)]

#[path = "support/heap.rs"]
mod heap;
mod support;

use std::{sync::Mutex, time::Duration};

use braid::{Config, RecvStream, SendStream, Session, Stream};
use bytes::Bytes;
use heap::{live, Counting};
use tokio::io::AsyncReadExt;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counter is process-wide: one measuring test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Session pairs measured together (the per-pair figure is their average).
const PAIRS: usize = 8;
/// The burst each way on one stream per session, as in the measurement.
const BURST: usize = 4 << 20;
/// What a once-busy, now quiet session may hold beyond a never-used one, per end.
const FLOOR_PER_END: isize = 16 * 1024;

/// Runs `test` on its own current-thread runtime with a paused clock (the idle time costs
/// nothing), holding [`SERIAL`].
fn measured<F: std::future::Future>(test: F) -> F::Output {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let out = rt.block_on(test);
    drop(rt);
    out
}

/// Reads `stream` to its end, dropping the bytes as they come; returns how many arrived.
async fn drain(stream: &mut Stream) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        match stream.read(&mut buf).await.unwrap() {
            0 => return n,
            k => n += k,
        }
    }
}

/// One burst each way on a fresh stream of every pair: the client sends `BURST` bytes and its
/// FIN, the server reads them and answers with as many; both read to the end. The streams
/// are returned still held (closed on the wire, handles alive) when `keep` is set.
async fn burst(
    pairs: &[(Session, Session)],
    payload: &Bytes,
    keep: bool,
) -> Vec<(RecvStream, SendStream)> {
    let mut kept = Vec::new();
    for (client, server) in pairs {
        let c = client.open().await.unwrap();
        let send = payload.clone();
        let sender = tokio::spawn(async move {
            let (rx, mut tx) = c.into_split();
            tx.send(send).await.unwrap();
            tx.finish().unwrap();
            (rx, tx)
        });
        let mut s = server.accept().await.unwrap();
        assert_eq!(drain(&mut s).await, BURST);
        let (srx, mut stx) = s.into_split();
        let reply = payload.clone();
        let replier = tokio::spawn(async move {
            stx.send(reply).await.unwrap();
            stx.finish().unwrap();
            stx
        });
        let (mut crx, ctx) = sender.await.unwrap();
        let mut got = 0;
        while let Some(chunk) = crx.recv().await.unwrap() {
            got += chunk.len();
        }
        assert_eq!(got, BURST);
        let stx = replier.await.unwrap();
        if keep {
            kept.push((srx, stx));
            kept.push((crx, ctx));
        }
    }
    kept
}

async fn quiet_sessions_give_memory_back(config: Config) -> (isize, isize) {
    let payload = Bytes::from(vec![7u8; BURST]);
    let before = live();
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let (c, s) = support::tcp_pair(config.clone(), config.clone()).await;
        c.ping().await.unwrap(); // handshake done, start-up pings answered
        s.ping().await.unwrap();
        pairs.push((c, s));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let never_used = (live() - before) / PAIRS as isize;

    // Streams kept open after their burst must hold no buffer either.
    let kept = burst(&pairs, &payload, true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let once_busy = (live() - before) / PAIRS as isize;
    eprintln!(
        "per session pair: never used {never_used} B, after {BURST} B each way then 1 s idle \
         {once_busy} B ({} kept streams)",
        kept.len()
    );
    drop(kept);
    (never_used, once_busy)
}

/// The target: once busy, then idle for 1 s, a session holds at most 16 KiB per end
/// beyond a never-used one (before `idle_release` it kept its peak read buffers, about
/// 1 MiB per pair).
#[test]
fn a_once_busy_session_idle_for_a_second_holds_a_small_floor() {
    let (never_used, once_busy) = measured(quiet_sessions_give_memory_back(Config::default()));
    assert!(
        once_busy - never_used <= 2 * FLOOR_PER_END,
        "once busy: {once_busy} B per pair, never used: {never_used} B"
    );
}
