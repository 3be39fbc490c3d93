//! Issue #21, "the spec's edges are settled": one test per edge of `spec/PROTOCOL.md` that the
//! text used to leave open or contradict, each against a raw-frame peer so the wire is exactly
//! what the row says. The item numbers are the issue's.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use braid::{
    frame::{Flags, Frame},
    Config,
};
use bytes::Bytes;
use hostile::{data_frame, quiet, recv_until, server_and_raw, syn, sync};
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
