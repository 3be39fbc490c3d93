//! A peer that withholds session credit (spec §7.2) stalls our writers, not our driver: with
//! bytes queued and no session credit, the driver waits for a WINDOW_UPDATE(0) instead of
//! turning at full speed. (It used to spin: the send queue kept "wanting to transmit".) The
//! cross-session memory budget (§7.6) withholds session credit on purpose, which is how the
//! spin was found.

mod support;

use std::time::Duration;

use braid::Config;
use support::raw::credit_starved_client;
use tokio::io::AsyncWriteExt;

/// On a paused clock a spinning task keeps the runtime from ever going idle, so the clock
/// never advances and a one-minute sleep never ends; the scenario runs on its own thread and
/// the test waits for it with a real-time bound.
#[test]
fn a_peer_withholding_session_credit_leaves_the_driver_idle() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            // The smallest session window a preface may give, and never a WINDOW_UPDATE.
            let (client, peer) = credit_starved_client(64 * 1024, Config::default(), 1024).await;
            // The first stream takes the whole session credit; the second still has stream
            // credit, so it waits in the send queue for session credit alone.
            let mut first = client.open().await.unwrap();
            first.write_all(&[7u8; 8 * 1024]).await.unwrap();
            let mut second = client.open().await.unwrap();
            second.write_all(&[8u8; 8 * 1024]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await; // ends only if the driver idles
            let stats = client.stats();
            assert_eq!(stats.bytes_sent, 1024, "only the session credit went out");
            assert!(client.closed_reason().is_none());
            drop(peer);
        });
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the driver spun: the paused clock never advanced");
}
