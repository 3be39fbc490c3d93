//! Echo integrity: 1, 100 and 10,000 concurrent streams carry random data in random write
//! sizes both ways at once (the opener writes while it reads the echo), over loopback TCP and
//! in-memory pipes; both ends check by hash that they received exactly the bytes sent.

mod support;

use std::collections::HashMap;

use braid::{Config, Session};
use support::Rng;

/// Opens one stream on `opener` per entry of `sizes`; `echoer` echoes every stream. Each
/// stream writes `data(seed + i, size)` in random chunks and FIN while concurrently reading
/// the echo to EOF. Checks the echo (opener side) and what the echoer received (its side)
/// against the hash of the bytes sent, then that nothing is left open or buffered.
async fn echo_streams(opener: Session, echoer: Session, sizes: &[usize], seed: u64) {
    let (accept_end, mut reports) = support::spawn_hashing_echo(echoer.clone());
    let mut sent = HashMap::with_capacity(sizes.len());
    let mut tasks = Vec::with_capacity(sizes.len());
    for (i, &size) in sizes.iter().enumerate() {
        let stream = opener.open().await.expect("open");
        let payload = support::data(seed + i as u64, size);
        sent.insert(stream.id(), (size, support::hash(&payload)));
        let chunk_seed = seed ^ ((i as u64) << 24);
        tasks.push(tokio::spawn(async move {
            let id = stream.id();
            let (mut rx, mut tx) = stream.into_split();
            let (wrote, read) = tokio::join!(
                support::write_random_chunks(&mut tx, &payload, chunk_seed),
                support::read_hashed(&mut rx, chunk_seed ^ 0xabcd),
            );
            wrote.unwrap_or_else(|e| panic!("stream {id}: write failed: {e}"));
            let got = read.unwrap_or_else(|e| panic!("stream {id}: read failed: {e}"));
            (id, got)
        }));
    }
    for task in tasks {
        let (id, got) = support::guard("echo stream", task)
            .await
            .expect("stream task");
        assert_eq!(
            got, sent[&id],
            "stream {id}: the echo differs from the bytes sent"
        );
    }
    for _ in 0..sizes.len() {
        let r = support::guard("echo report", reports.recv())
            .await
            .expect("report");
        assert_eq!(
            (r.len, r.hash),
            sent[&r.id],
            "stream {}: echoer received other bytes",
            r.id
        );
    }

    // Every stream ended cleanly on the wire: nothing open, buffered or failed.
    for (name, s) in [("opener", &opener), ("echoer", &echoer)] {
        assert!(
            s.closed_reason().is_none(),
            "{name}: {:?}",
            s.closed_reason()
        );
        let stats = s.stats();
        assert_eq!(stats.open_streams, 0, "{name}: {stats:?}");
        assert_eq!(
            (stats.recv_buffered, stats.send_buffered),
            (0, 0),
            "{name}: {stats:?}"
        );
    }
    let total: usize = sizes.iter().sum();
    assert_eq!(opener.stats().bytes_sent, total as u64);
    assert_eq!(opener.stats().bytes_received, total as u64);
    assert_eq!(echoer.stats().bytes_received, total as u64);
    support::until("echoer drops its stream handles", || {
        echoer.stats().tracked_streams == 0
    })
    .await;
    assert_eq!(opener.stats().tracked_streams, 0);
    accept_end.abort();
}

/// Sizes from 1 byte to `max`, with the extremes always present.
fn sizes(n: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng(seed);
    let mut v: Vec<usize> = (0..n).map(|_| 1 + rng.below(max as u64) as usize).collect();
    v[0] = 1;
    if n > 1 {
        v[n - 1] = max;
    }
    v
}

fn pipe() -> (Session, Session) {
    support::duplex_pair(256 * 1024, Config::default(), Config::default())
}

async fn tcp() -> (Session, Session) {
    support::tcp_pair(Config::default(), Config::default()).await
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn one_stream_8mib_pipe() {
    let (c, s) = pipe();
    echo_streams(c, s, &[8 * MIB], 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_8mib_tcp() {
    let (c, s) = tcp().await;
    echo_streams(c, s, &[8 * MIB], 2).await;
}

#[tokio::test]
async fn one_stream_1_byte_tcp() {
    let (c, s) = tcp().await;
    echo_streams(c, s, &[1], 3).await;
}

/// 100 streams of up to 256 KiB, plus one of 8 MiB among them.
fn hundred_sizes(seed: u64) -> Vec<usize> {
    let mut v = sizes(100, 256 * 1024, seed);
    v[50] = 8 * MIB;
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_streams_pipe() {
    let (c, s) = pipe();
    echo_streams(c, s, &hundred_sizes(4), 4).await;
}

#[tokio::test]
async fn hundred_streams_tcp() {
    let (c, s) = tcp().await;
    echo_streams(c, s, &hundred_sizes(5), 5).await;
}

/// The server opens and the client echoes: the same, with even ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_streams_opened_by_server_tcp() {
    let (c, s) = tcp().await;
    echo_streams(s, c, &hundred_sizes(6), 6).await;
}

/// More streams than the default accept backlog (1,024): opens wait for ACKs and go on.
#[tokio::test]
async fn ten_thousand_streams_pipe() {
    let (c, s) = pipe();
    echo_streams(c, s, &sizes(10_000, 2048, 7), 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_tcp() {
    let (c, s) = tcp().await;
    echo_streams(c, s, &sizes(10_000, 2048, 8), 8).await;
}
