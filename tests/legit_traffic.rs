//! Issue #3: no defence trips on legitimate traffic. With default settings, a million
//! 64-byte messages on one stream (each its own write — what makes h2's defaults fail with
//! `too_many_data_frames`) and rapid open/echo/close churn at 64 in flight (20,000 streams)
//! run clean. (10,000 idle streams: `tests/hostile_memory.rs`; 20,000 concurrent streams:
//! `tests/limits.rs`.)

mod support;

use braid::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_small_writes_on_one_stream_run_clean() {
    const N: usize = 1_000_000;
    let (client, server) = support::duplex_pair(256 * 1024, Config::default(), Config::default());
    let reader = tokio::spawn(async move {
        let mut s = server.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        let mut sum = 0u64;
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
            sum += buf[..n].iter().map(|b| *b as u64).sum::<u64>();
        }
        (total, sum, server)
    });
    let mut s = client.open().await.unwrap();
    let mut msg = [0u8; 68];
    msg[..4].copy_from_slice(&64u32.to_be_bytes());
    msg[4..].fill(1);
    for _ in 0..N {
        s.write_all(&msg).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let (total, sum, server) = reader.await.unwrap();
    assert_eq!(total, N * 68);
    assert_eq!(sum, N as u64 * (64 + 64));
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());
    assert_eq!(server.stats().empty_frames, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_echo_close_churn_at_64_in_flight_runs_clean() {
    const STREAMS: usize = 20_000;
    let (client, server) = support::duplex_pair(256 * 1024, Config::default(), Config::default());
    support::spawn_echo_server(server.clone());
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(STREAMS);
    for i in 0..STREAMS {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let mut s = client.open().await.unwrap();
            let msg = [i as u8; 64];
            s.write_all(&msg).await.unwrap();
            s.shutdown().await.unwrap();
            let mut echo = Vec::new();
            s.read_to_end(&mut echo).await.unwrap();
            assert_eq!(echo, msg);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = server.stats();
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());
    assert_eq!(stats.local_resets, 0);
    assert_eq!(stats.unaccepted_resets, 0);
}
