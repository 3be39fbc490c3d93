//! A FIN needs no credit (spec §7.2: only DATA payload bytes count against windows), so a
//! stream's FIN must not wait behind another stream whose bytes wait for session credit: one
//! stalled stream may not hold up the others (§7.5).
//!
//! Found by the tight soak: a client's `shutdown()` waited behind a credit-starved stream
//! until the server, done writing, dropped the stream, and the shutdown failed with the
//! server's RESET instead of completing.

mod support;

use std::time::Duration;

use braid::{
    frame::{Flags, Frame},
    Config,
};
use support::raw::{credit_starved_client, data};
use tokio::io::AsyncWriteExt;

#[tokio::test(start_paused = true)]
async fn a_fin_is_not_held_behind_a_stream_waiting_for_session_credit() {
    // No open timeout (the raw peer sends no ACK), and a small session window that the peer
    // never tops up with a session WINDOW_UPDATE.
    let day = Duration::from_secs(24 * 3600);
    let (client, mut peer) =
        credit_starved_client(1 << 20, Config::default().with_open_timeout(day), 2048).await;

    // Stream 1 opens with a few bytes; stream 3 then takes the rest of the session credit
    // (with stream credit to spare) and waits with more bytes queued.
    let mut first = client.open().await.unwrap();
    first.write_all(b"hello").await.unwrap();
    first.flush().await.unwrap();
    let mut second = client.open().await.unwrap();
    second.write_all(&[3u8; 4096]).await.unwrap(); // queued
    let mut sent_on_3 = 0;
    while sent_on_3 == 0 {
        if let Frame::Data {
            stream: 3, payload, ..
        } = peer.recv().await.expect("stream 3 opens")
        {
            sent_on_3 += payload.len(); // its first stream window
        }
    }
    // Accept both streams (an empty DATA with ACK each), then give stream 3 stream credit.
    peer.send(data(1, Flags::ACK, b"")).await;
    peer.send(data(3, Flags::ACK, b"")).await;
    peer.send(Frame::WindowUpdate {
        stream: 3,
        increment: 64 * 1024,
    })
    .await;
    while sent_on_3 < 2048 - 5 {
        let frame = peer.recv().await;
        let frame = frame.unwrap_or_else(|| panic!("EOF: {:?}", client.closed_reason()));
        if let Frame::Data {
            stream: 3, payload, ..
        } = frame
        {
            sent_on_3 += payload.len();
        }
    }
    // The session credit is spent; stream 3 still has 2,053 bytes and stream credit.
    assert_eq!(client.stats().session_send_credit, 0);

    // Stream 1 half-closes: its FIN carries no bytes and needs no credit.
    let shutdown = tokio::spawn(async move {
        first.shutdown().await.unwrap();
        first
    });
    let fin = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = peer.recv().await {
            if matches!(&frame, Frame::Data { stream: 1, flags, .. } if flags.contains(Flags::FIN))
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        fin,
        Ok(true),
        "stream 1's FIN waited behind stream 3's bytes for session credit"
    );
    let _first = tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown() completes once the FIN is out")
        .unwrap();
    drop(second);
}
