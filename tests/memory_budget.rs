//! A receive-memory budget shared by many sessions (spec §7.6, `Config::memory_budget`): 1,000
//! server sessions whose applications stop reading buffer at most the budget plus their
//! floors, and one more session keeps moving data meanwhile (no head-of-line blocking across
//! sessions). In-memory pipes and a paused clock: what is measured is the sessions' own
//! accounting (`Stats::recv_buffered`), not the kernel's.

mod support;

use std::{sync::Arc, time::Duration};

use braid::{Config, MemoryBudget, Session, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SESSIONS: usize = 1000;
/// Small windows so a thousand sessions stay cheap: stream window 1 KiB, session window
/// 32 KiB, so the floor (16 × the stream window) is 16 KiB and the preface promises 16 KiB
/// more.
const STREAM_WINDOW: u32 = 1024;
const SESSION_WINDOW: u32 = 32 * 1024;
const FLOOR: usize = 16 * STREAM_WINDOW as usize;
/// Read in full by each server application first: spends the promise above the floor, so
/// the budget governs what follows.
const FIRST_STREAM: usize = 20 * 1024;
/// Streams each client then fills while its server application reads none of them: together
/// they could hold the whole session window.
const STALLED_STREAMS: usize = 32;
const BUDGET: u64 = 1 << 20;

fn config(budget: Option<Arc<MemoryBudget>>) -> Config {
    Config::default()
        .with_initial_stream_window(STREAM_WINDOW)
        .with_max_stream_window(STREAM_WINDOW)
        .with_session_window(SESSION_WINDOW)
        .with_max_frame_payload(16 * 1024)
        .with_memory_budget(budget)
        .with_keepalive_interval(None)
}

/// One session whose application reads its first stream and then stops reading: returns the
/// server session (kept alive) once the client has written everything it will.
async fn stalled_session(budget: Option<Arc<MemoryBudget>>) -> (Session, Session, Vec<Stream>) {
    let (client, server) = support::duplex_pair(256 * 1024, config(None), config(budget));
    let mut first = client.open().await.unwrap();
    first.write_all(&[1u8; FIRST_STREAM]).await.unwrap();
    first.shutdown().await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    let mut got = Vec::new();
    accepted.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), FIRST_STREAM);
    // Now streams the server application never reads: each can take one stream window.
    let mut held = Vec::new();
    for _ in 0..STALLED_STREAMS {
        let mut s = client.open().await.unwrap();
        s.write_all(&[2u8; STREAM_WINDOW as usize]).await.unwrap();
        held.push(s); // held open, never finished
    }
    (client, server, held)
}

async fn thousand_stalled_sessions(budget: Option<Arc<MemoryBudget>>) -> (usize, usize) {
    let mut sessions = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        tasks.push(tokio::spawn(stalled_session(budget.clone())));
    }
    for t in tasks {
        sessions.push(t.await.unwrap());
    }
    // Let every grant the budget allows go out and the peers fill it (paused clock).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let buffered: usize = sessions
        .iter()
        .map(|(_, s, _)| s.stats().recv_buffered)
        .sum();

    // One more session moves 1 MiB while the thousand hold their memory.
    let (client, server) = support::duplex_pair(256 * 1024, config(None), config(budget));
    let echo = tokio::spawn(async move {
        let mut s = server.accept().await.unwrap();
        let mut n = 0;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match s.read(&mut buf).await.unwrap() {
                0 => return n,
                k => n += k,
            }
        }
    });
    let mut s = client.open().await.unwrap();
    let moved = tokio::time::timeout(Duration::from_secs(600), async {
        s.write_all(&vec![3u8; 1 << 20]).await.unwrap();
        s.shutdown().await.unwrap();
        echo.await.unwrap()
    })
    .await
    .expect("the moving session was starved");
    for (_, s, _) in &sessions {
        assert!(s.closed_reason().is_none());
    }
    (buffered, moved)
}

fn measured<F: std::future::Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(test)
}

/// The budget caps what a thousand stalled sessions buffer at the budget plus their floors
/// (without it they hold their whole session windows: about twice as much here), and a
/// session whose application reads still moves 1 MiB.
#[test]
fn a_thousand_stalled_sessions_stay_within_the_budget_and_another_still_moves() {
    let budget = MemoryBudget::new(BUDGET);
    let (buffered, moved) = measured(thousand_stalled_sessions(Some(budget.clone())));
    let cap = BUDGET as usize + SESSIONS * FLOOR;
    eprintln!(
        "{SESSIONS} stalled sessions buffer {buffered} B (cap {cap} B, budget charged {} B); \
         the moving session moved {moved} B",
        budget.charged()
    );
    assert_eq!(moved, 1 << 20);
    assert!(buffered <= cap, "{buffered} B buffered, cap {cap} B");
    assert!(budget.charged() <= budget.limit());
}
