//! Issue #21, "the spec's edges are settled": one test per edge of `spec/PROTOCOL.md` that the
//! text used to leave open or contradict, each against a raw-frame peer so the wire is exactly
//! what the row says. The item numbers are the issue's.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use std::time::Duration;

use braid::{
    frame::{ErrorCode, Flags, Frame},
    Config, Error, Session,
};
use bytes::Bytes;
use hostile::{data_frame, quiet, recv_until, server_and_raw, syn, sync};
use support::raw::RawPeer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Item 1 (spec §4.2, §6.2, §10 V27): once our FIN is written, a WINDOW_UPDATE for the stream
/// is ignored, even one that would take the credit past 2^31-1; the session goes on and the
/// other direction still works.
#[tokio::test]
async fn a_window_update_after_our_fin_is_ignored_even_if_it_overflows() {
    let (server, mut peer) = server_and_raw(quiet(Config::default()), 1 << 20).await;
    peer.send(syn(1, b"")).await;
    let mut s = server.accept().await.unwrap();
    s.write_all(b"x").await.unwrap();
    s.shutdown().await.unwrap();
    recv_until(
        &mut peer,
        "our FIN",
        |f| matches!(f, Frame::Data { stream: 1, flags, .. } if flags.contains(Flags::FIN)),
    )
    .await;
    // The stream's credit is 256 KiB - 1: this increment would overflow it.
    peer.send(Frame::WindowUpdate {
        stream: 1,
        increment: 0x7fff_ffff,
    })
    .await;
    let replies = sync(&mut peer, 1).await;
    assert!(replies.is_empty(), "{replies:?}");
    assert!(server.closed_reason().is_none());
    peer.send(data_frame(1, Flags::FIN, Bytes::from_static(b"y")))
        .await;
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"y");
    assert!(server.closed_reason().is_none());
}

/// Item 5 (spec §2, §10 V1, V2): a peer that sends ten bytes that are not braid's preface and
/// then nothing is refused at once with GOAWAY(0, PROTOCOL_ERROR), not after the preface
/// timeout with TIMEOUT (V4). The paused clock would jump to that timeout if the session
/// waited for the rest of the preface.
#[tokio::test(start_paused = true)]
async fn ten_wrong_preface_bytes_are_refused_at_once() {
    expect_prefix_refused(b"GET / HTTP", ErrorCode::PROTOCOL_ERROR).await;
    // One wrong byte is enough: the magic is judged byte by byte.
    expect_prefix_refused(b"\x8bBRAIX", ErrorCode::PROTOCOL_ERROR).await;
}

/// Item 5: the version is judged as soon as both its bytes are in (V2).
#[tokio::test(start_paused = true)]
async fn a_wrong_version_is_refused_once_its_two_bytes_are_in() {
    expect_prefix_refused(b"\x8bBRAID\r\n\x00\x02", ErrorCode::VERSION_MISMATCH).await;
}

async fn expect_prefix_refused(prefix: &[u8], code: ErrorCode) {
    let started = tokio::time::Instant::now();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = Session::server(a, Config::default()).unwrap();
    let mut peer = RawPeer::new(b);
    peer.send_raw(prefix).await; // and nothing more, the pipe stays open
    peer.read_preface().await;
    match support::guard("GOAWAY", peer.expect_goaway()).await {
        Some(Frame::GoAway {
            last_stream,
            code: got,
            ..
        }) => assert_eq!((last_stream, got), (0, code)),
        other => panic!("expected GOAWAY(0, {code}), got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused after {:?}: the session waited for the rest",
        started.elapsed()
    );
    match server.closed_reason() {
        Some(Error::Protocol { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected Error::Protocol({code}), got {other:?}"),
    }
}
