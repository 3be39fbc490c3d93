//! Rapid reset (CVE-2023-44487; spec §11 L17, §12, §10 V34), as settled in issue #21: a
//! stream the peer resets while it waits in the accept backlog stays there as a tombstone
//! until the application's `accept` walks past it, and the limit counts the tombstones not yet
//! passed over. A flood of SYN+RESET pairs arriving ahead of any accept ends the session with
//! ENHANCE_YOUR_CALM; a legitimate client that opens and cancels many fresh streams (hedged
//! requests) while the application keeps accepting never accumulates them.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use braid::{
    frame::{ErrorCode, Flags, Frame},
    Config,
};
use bytes::Bytes;
use hostile::{
    assert_goaway, assert_protocol_error, data_frame, quiet, recv_until, server_and_raw, syn, sync,
    until_goaway,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn reset(stream: u32) -> Frame {
    Frame::Reset {
        stream,
        code: ErrorCode::CANCEL,
    }
}

/// Spec §11 L17, §12 (the attack): 5,000 SYN+RESET pairs in one write while the application
/// accepts nothing: the flood arrives ahead of any accept and the session ends with
/// GOAWAY(ENHANCE_YOUR_CALM) once the 1,001st tombstone is laid.
#[tokio::test]
async fn a_flood_of_syn_reset_pairs_ends_the_session() {
    flood(false).await;
}

/// The same flood while the application is accepting in a loop: one read of the flood holds
/// more pairs than the limit, and they are all processed before the accepting task can walk
/// past any of them.
#[tokio::test]
async fn a_flood_of_syn_reset_pairs_ends_the_session_even_while_accepting() {
    flood(true).await;
}

async fn flood(accepting: bool) {
    let (server, mut peer) = server_and_raw(quiet(Config::default()), 1 << 20).await;
    let acceptor = accepting.then(|| {
        let server = server.clone();
        tokio::spawn(async move { while server.accept().await.is_ok() {} })
    });
    let frames: Vec<Frame> = (0..5_000u32)
        .flat_map(|i| [syn(2 * i + 1, b"request"), reset(2 * i + 1)])
        .collect();
    let (rd, mut wr) = tokio::io::split(peer.io);
    let writer = tokio::spawn(async move {
        // The session stops reading once it has failed: the rest of the write may not fit.
        let _ = wr.write_all(&hostile::encode_all(&frames)).await;
        wr
    });
    peer.io = rd.unsplit(writer.await.unwrap());
    let (goaway, before) = until_goaway(&mut peer).await;
    assert_goaway(&goaway, ErrorCode::ENHANCE_YOUR_CALM);
    assert!(
        before.iter().all(|f| matches!(f, Frame::Ping { .. })),
        "no reply to a peer's RESET: {before:?}"
    );
    assert_protocol_error(&server, ErrorCode::ENHANCE_YOUR_CALM);
    let stats = server.stats();
    assert_eq!(stats.unaccepted_resets, 1001, "{stats:?}");
    assert_eq!(stats.tracked_streams, 0, "{stats:?}");
    if let Some(acceptor) = acceptor {
        acceptor.await.unwrap();
    }
}

/// Spec §6.1 step 5, §11 L6, L16, L17: a tombstone holds no backlog slot and no stream state;
/// the application's accept passes over it (the count falls) and takes the next live stream,
/// which earns back one locally generated reset (a refusal); passing a tombstone earns none.
#[tokio::test]
async fn tombstones_hold_no_backlog_slot_and_earn_nothing_back() {
    let config = quiet(Config {
        accept_backlog: 2,
        ..Config::default()
    });
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    // Streams 1 and 3 fill the backlog; 5 is refused (a locally generated reset, L16).
    peer.try_send_all(&[syn(1, b"a"), syn(3, b"b"), syn(5, b"c")])
        .await
        .unwrap();
    let replies = recv_until(&mut peer, "refusal", |f| matches!(f, Frame::Reset { .. })).await;
    assert!(
        matches!(replies[..], [Frame::Reset { stream: 5, code }] if code == ErrorCode::BACKLOG_FULL),
        "{replies:?}"
    );
    // The peer resets 1: a tombstone, so 7 finds a free slot.
    peer.try_send_all(&[reset(1), syn(7, b"d")]).await.unwrap();
    let replies = sync(&mut peer, 1).await;
    assert!(replies.is_empty(), "7 is not refused: {replies:?}");
    let stats = server.stats();
    assert_eq!(
        (stats.backlog, stats.unaccepted_resets, stats.local_resets),
        (2, 1, 1),
        "{stats:?}"
    );
    assert_eq!(
        stats.tracked_streams, 2,
        "the tombstone holds no stream state"
    );
    // accept passes over 1 and takes 3: the count falls, and 3 earns back the refusal.
    let mut s3 = server.accept().await.unwrap();
    assert_eq!(s3.id(), 3);
    let stats = server.stats();
    assert_eq!(
        (stats.backlog, stats.unaccepted_resets, stats.local_resets),
        (1, 0, 0),
        "{stats:?}"
    );
    let mut got = [0u8; 1];
    s3.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"b");
    // A tombstone at the head with nothing behind it: accept passes over it and waits.
    let s7 = server.accept().await.unwrap();
    assert_eq!(s7.id(), 7);
    peer.try_send_all(&[syn(9, b""), reset(9)]).await.unwrap();
    sync(&mut peer, 2).await;
    assert_eq!(server.stats().unaccepted_resets, 1);
    let mut next = Box::pin(server.accept());
    assert!(support::poll_once(&mut next).await.is_pending());
    assert_eq!(server.stats().unaccepted_resets, 0);
    peer.send(data_frame(11, Flags::SYN, Bytes::from_static(b"e")))
        .await;
    assert_eq!(support::guard("accept 11", next).await.unwrap().id(), 11);
    assert!(server.closed_reason().is_none());
}
