//! Spec §6.1: an accepted stream's ACK rides on the application's first frame when it
//! answers at once (one frame, not an empty ACK and then the data), and goes out alone within
//! `ACK_DELAY` when the application sends nothing. A raw peer opens streams on a real server
//! session and records the frames it gets back (paused clock).

mod support;

use std::time::Duration;

use braid::{
    frame::{Flags, Frame},
    proto::ACK_DELAY,
    Config, Session,
};
use support::raw::{self, RawPeer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server session over a pipe to a raw peer that has done its handshake.
async fn server_and_peer() -> (Session, RawPeer) {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let server = Session::server(a, Config::default()).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    (server, peer)
}

/// The next DATA or WINDOW_UPDATE frame on `stream`, answering PINGs on the way.
async fn next_frame_on(peer: &mut RawPeer, stream: u32) -> Frame {
    support::guard("a frame", async {
        loop {
            match peer.recv().await.expect("session still up") {
                Frame::Ping { ack: false, opaque } => {
                    peer.send(Frame::Ping { ack: true, opaque }).await
                }
                f @ (Frame::Data { stream: s, .. } | Frame::WindowUpdate { stream: s, .. })
                    if s == stream =>
                {
                    return f
                }
                _ => {}
            }
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn the_ack_rides_on_an_immediate_reply() {
    let (server, mut peer) = server_and_peer().await;
    peer.send(raw::data(1, Flags::SYN, b"question")).await;
    let mut stream = support::guard("accept", server.accept()).await.unwrap();
    // Let the session's driver run in between, as it would on another thread.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let mut question = [0u8; 8];
    stream.read_exact(&mut question).await.unwrap();
    stream.write_all(b"answer").await.unwrap();
    stream.shutdown().await.unwrap();

    match next_frame_on(&mut peer, 1).await {
        Frame::Data { flags, payload, .. } => {
            assert!(
                flags.contains(Flags::ACK),
                "first frame carries the ACK: {flags:?}"
            );
            assert_eq!(&payload[..], b"answer", "and the reply, in the same frame");
            assert!(flags.contains(Flags::FIN), "and the FIN: {flags:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_acceptor_still_acks_within_the_delay() {
    let (server, mut peer) = server_and_peer().await;
    peer.send(raw::data(1, Flags::SYN, b"work")).await;
    let accepted_at = tokio::time::Instant::now();
    let _stream = support::guard("accept", server.accept()).await.unwrap();
    // The application holds the stream and sends nothing.
    match next_frame_on(&mut peer, 1).await {
        Frame::Data { flags, payload, .. } => {
            assert!(flags.contains(Flags::ACK), "{flags:?}");
            assert!(payload.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let waited = accepted_at.elapsed();
    assert!(
        waited <= ACK_DELAY + Duration::from_millis(1),
        "the ACK came after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_ack_goes_ahead_of_a_window_update() {
    // The reader drains a big first write at once: its WINDOW_UPDATE must not precede the
    // ACK (spec §6.1: nothing but RESET before the ACK).
    let (server, mut peer) = server_and_peer().await;
    let big = vec![7u8; 200 * 1024];
    for (i, chunk) in big.chunks(64 * 1024).enumerate() {
        let flags = if i == 0 { Flags::SYN } else { Flags::NONE };
        peer.send(Frame::Data {
            stream: 1,
            flags,
            payload: chunk.to_vec().into(),
        })
        .await;
    }
    let mut stream = support::guard("accept", server.accept()).await.unwrap();
    let mut got = vec![0u8; big.len()];
    stream.read_exact(&mut got).await.unwrap();
    let first = next_frame_on(&mut peer, 1).await;
    assert!(
        matches!(first, Frame::Data { flags, .. } if flags.contains(Flags::ACK)),
        "{first:?}"
    );
}
